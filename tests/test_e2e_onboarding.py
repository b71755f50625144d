"""End to end: onboarding by each kind of link, approval and rejection, /lang, /help per role."""

from __future__ import annotations

from orgtree import SECRETARY
from orgtree import TOWN_ORG as ORGANIZER

from bench.fakebotapi import FakeBotApi
from bot.actors import SYSTEM_ACTOR
from conftest import ADMIN_ID, BotRunner


async def test_resident_link_joins_at_once(bot: BotRunner, fake: FakeBotApi) -> None:
    invite = await bot.core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    villager = fake.user(2001, first_name="老张")
    villager.send(f"/start {invite.payload}")
    reply = await fake.wait_message(villager.id, contains="欢迎")
    assert reply.text == "欢迎！您已作为居民加入「三义村党支部」。"
    assert "❓ 帮助" in fake.keyboard(villager.id)
    assert [(g.org.code, g.role) for g in await bot.core.orgs.grants(villager.id)] == [("sanyi", "resident")]


async def test_member_link_is_approved_by_the_secretary(bot: BotRunner, fake: FakeBotApi) -> None:
    invite = await bot.core.invites.create("sanyi", "member", created_by=SYSTEM_ACTOR)
    member = fake.user(2002, first_name="小王")
    secretary = fake.user(SECRETARY, first_name="王建国")
    organizer = fake.user(ORGANIZER, first_name="李明", language_code="en")
    await bot.core.people.set_language(ORGANIZER, "en")  # texts for others use the recipient's language

    member.send(f"/start {invite.payload}")
    await fake.wait_message(member.id, contains="已提交加入「三义村党支部」（党员）的申请")
    request = await fake.wait_message(secretary.id, contains="申请以党员身份加入「三义村党支部」")
    assert request.button_texts == ["✅ 同意", "❌ 拒绝"]
    organizer_copy = await fake.wait_message(organizer.id, contains="asks to join")
    assert await bot.core.orgs.grants(member.id) == []

    secretary.press(request, "✅ 同意")
    await fake.wait_text(secretary.id, "已同意 小王 以党员身份加入「三义村党支部」。")
    await fake.wait_message(member.id, contains="申请已通过")
    assert [(g.org.code, g.role) for g in await bot.core.orgs.grants(member.id)] == [("sanyi", "member")]

    # The organizer's copy is now stale: pressing it says who handled it and changes nothing.
    press = organizer.press(organizer_copy, "✅ Approve")
    answer = await fake.wait_callback_answer(press)
    assert "王建国 already approved 小王" in answer["text"]
    await bot.delivery_idle()
    assert len(fake.texts(member.id)) == 2


async def test_secretary_link_is_rejected_by_the_organizer(bot: BotRunner, fake: FakeBotApi) -> None:
    invite = await bot.core.invites.create("sanyi", "secretary", created_by=SYSTEM_ACTOR)
    candidate = fake.user(2003, first_name="小刘")
    organizer = fake.user(ORGANIZER, first_name="李明")
    candidate.send(f"/start {invite.payload}")
    request = await fake.wait_message(organizer.id, contains="申请以书记身份加入")
    organizer.press(request, "❌ 拒绝")
    await fake.wait_text(organizer.id, "已拒绝 小刘 以书记身份加入「三义村党支部」。")
    notice = await fake.wait_message(candidate.id, contains="未通过")
    assert "三义村党支部" in notice.text
    assert await bot.core.orgs.grants(candidate.id) == []


async def test_organizer_link_goes_to_organizers_not_the_secretary(bot: BotRunner, fake: FakeBotApi) -> None:
    invite = await bot.core.invites.create("sanyi", "organizer", created_by=SYSTEM_ACTOR)
    candidate = fake.user(2004, first_name="小陈")
    fake.user(SECRETARY)
    organizer = fake.user(ORGANIZER)
    candidate.send(f"/start {invite.payload}")
    request = await fake.wait_message(organizer.id, contains="申请以组织委员身份加入")
    organizer.press(request, "✅ 同意")
    await fake.wait_message(candidate.id, contains="申请已通过")
    await bot.delivery_idle()
    assert fake.texts(SECRETARY) == []


async def test_revoked_and_invalid_links(bot: BotRunner, fake: FakeBotApi) -> None:
    invite = await bot.core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    await bot.core.invites.revoke(invite.payload, actor=SYSTEM_ACTOR)
    villager = fake.user(2005)
    villager.send(f"/start {invite.payload}")
    assert "已作废" in (await fake.wait_message(villager.id)).text
    villager.send("/start j-nonsense")
    assert "这个链接无效" in (await fake.wait_message(villager.id)).text
    assert await bot.core.orgs.grants(villager.id) == []


async def test_lang_is_remembered_across_restart(bot: BotRunner, fake: FakeBotApi) -> None:
    user = fake.user(2006, language_code="zh-hans")
    user.send("/lang")
    choice = await fake.wait_message(user.id, contains="Choose your language")
    user.press(choice, "English")
    await fake.wait_text(user.id, "Language set to English.")
    menu = await fake.wait_message(user.id, contains="menu is updated")
    assert menu is not None and "❓ Help" in fake.keyboard(user.id)
    await bot.restart()
    user.send("/help")
    help_text = await fake.wait_message(user.id, contains="You can also send these commands")
    assert "/lang — Language / 语言" in help_text.text


async def test_telegram_language_is_used_until_one_is_chosen(bot: BotRunner, fake: FakeBotApi) -> None:
    user = fake.user(2007, language_code="en-US")
    user.send("/start")
    assert (await fake.wait_message(user.id)).text.startswith("Hello")


async def _help_commands(fake: FakeBotApi, user_id: int) -> set[str]:
    user = fake.user(user_id)
    user.send("/help")
    text = (await fake.wait_message(user_id, contains="也可以发送下面的命令")).text
    return {line.split(" ")[0] for line in text.splitlines() if line.startswith("/")}


async def test_help_lists_only_what_each_role_allows(bot: BotRunner, fake: FakeBotApi) -> None:
    everyone = {"/start", "/help", "/me", "/lang", "/cancel", "/submit", "/my", "/wall"}
    leaders = {"/org", "/invite", "/inbox", "/blocked", "/bindwall"}
    invite = await bot.core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    fake.user(2008).send(f"/start {invite.payload}")
    await fake.wait_message(2008)
    resident = await _help_commands(fake, 2008)
    assert everyone <= resident and not (leaders | {"/appoint"}) & resident
    secretary = await _help_commands(fake, SECRETARY)
    assert everyone | leaders <= secretary and "/appoint" not in secretary
    assert everyone | leaders | {"/appoint"} <= await _help_commands(fake, ORGANIZER)
    assert everyone | leaders | {"/appoint"} <= await _help_commands(fake, ADMIN_ID)


async def test_commands_are_registered_in_both_languages(bot: BotRunner, fake: FakeBotApi) -> None:
    await fake.wait_for(lambda: len(fake.calls_to("setMyCommands")) >= 3)
    zh = {c["command"]: c["description"] for c in fake.get_commands(language_code="zh")}
    en = {c["command"]: c["description"] for c in fake.get_commands(language_code="en")}
    default = {c["command"]: c["description"] for c in fake.get_commands()}
    assert zh["help"] == "帮助" and en["help"] == "Help" and default == zh
    assert set(zh) == set(en)
    assert {"start", "help", "me", "lang", "cancel", "submit", "my", "wall"} <= set(zh)
    assert not {"org", "appoint", "invite", "inbox"} & set(zh)  # leaders' commands are in their /help only
