"""End to end: what a person sees in their chat for the cross-cutting parts of the bot.

Unknown commands and unsupported messages, over-long input, forged and stale buttons, /me, /org,
/appoint, /invite, /cancel, the main-menu buttons, people who block the bot, and the error handler.
Each test checks the chat (texts from locales/) and what changed, or did not, in the database.

Replies to one private chat are paced at about one a second (Telegram's per-chat limit), so the
tests spread their checks over several people rather than sending many messages in one chat.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from orgtree import ERLANG_SECRETARY, SECRETARY
from orgtree import TOWN_ORG as ORGANIZER

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.actors import SYSTEM_ACTOR
from conftest import ADMIN_ID, BotRunner
from handlers import system

NOT_ALLOWED = "您没有权限进行这项操作。"
STALE = "这个按钮已失效，请重新操作。"
INTERNAL = "抱歉，出了点问题，请稍后再试。"
FALLBACK = "没看懂您的意思。请用下方菜单，或发送 /help 查看可用功能。"
UNSUPPORTED = "暂不支持这类消息。请用下方菜单，或发送 /help。"
NOT_JOINED = "您还没有加入。请向本村（社区）的书记要加入二维码或加入链接"
NO_ROLES = "您还没有加入任何组织。请向村（社区）党支部索取加入二维码或链接。"


# --------------------------------------------------------------------------- helpers

async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 5.0) -> None:
    """Poll an async condition (the database) until it holds; no fixed sleep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)


async def snapshot(bot: BotRunner) -> dict[str, list[tuple[Any, ...]]]:
    """The tables a forged button could change."""
    db = bot.core.db
    return {
        "roles": [tuple(r) for r in await db.fetchall("SELECT person_id, org_id, role FROM roles ORDER BY 1, 2, 3")],
        "role_audit": [tuple(r) for r in await db.fetchall("SELECT * FROM role_audit ORDER BY id")],
        "join_requests": [tuple(r) for r in await db.fetchall("SELECT * FROM join_requests ORDER BY id")],
        "invites": [tuple(r) for r in await db.fetchall("SELECT * FROM invites ORDER BY id")],
        "chosen_languages": [tuple(r) for r in await db.fetchall(
            "SELECT telegram_id, language FROM people WHERE language IS NOT NULL ORDER BY 1")],
    }


async def org_id(bot: BotRunner, code: str) -> int:
    org = await bot.core.orgs.by_code(code)
    assert org is not None
    return org.id


async def grants(bot: BotRunner, person_id: int) -> list[tuple[str, str]]:
    return [(g.org.code, g.role) for g in await bot.core.orgs.grants(person_id)]


async def make_resident(bot: BotRunner, fake: FakeBotApi, user_id: int, org: str = "sanyi") -> FakeUser:
    """A person who joined `org` as a resident (through the service, so their chat stays empty)."""
    user = fake.user(user_id, first_name=f"居民{user_id}")
    invite = await bot.core.invites.create(org, "resident", created_by=SYSTEM_ACTOR)
    await bot.core.invites.join(user_id, invite.payload)
    return user


async def make_member(bot: BotRunner, fake: FakeBotApi, user_id: int, name: str, org: str = "sanyi") -> FakeUser:
    """A party member of `org`, granted directly (as an org file would)."""
    user = fake.user(user_id, first_name=name)
    target = await org_id(bot, org)
    async with bot.core.db.transaction() as tx:
        await bot.core.people.ensure(tx, user_id, name)
        await bot.core.orgs.grant(tx, person_id=user_id, org_id=target, role="member", actor_id=None,
                                  source="test")
    return user


async def alert(fake: FakeBotApi, press: dict[str, Any]) -> str:
    """The text of the pop-up alert the bot answered a button press with."""
    answer = await fake.wait_callback_answer(press)
    assert answer.get("show_alert") in (True, "true"), answer
    return str(answer.get("text"))


async def ask(fake: FakeBotApi, user: FakeUser, text: str, contains: str | None = None) -> SentMessage:
    user.send(text)
    return await fake.wait_message(user.id, contains=contains)


# --------------------------------------------------------------------------- 1. fallbacks

async def test_unknown_command_plain_text_and_unsupported_messages(bot: BotRunner, fake: FakeBotApi) -> None:
    before = await snapshot(bot)
    commander, talker, sticker, contact, location = (fake.user(i) for i in (2001, 2002, 2003, 2004, 2005))
    commander.send("/foo")
    talker.send("你好，我想反映个问题")
    sticker.send_sticker("👍")
    contact.send_contact("+8613800000000", "老张")
    location.send_location(33.7, 110.3)

    assert (await fake.wait_message(commander.id)).text == "没有 /foo 这个命令。发送 /help 查看可用功能。"
    # None of them has joined: each is told how to (tests/test_e2e_prompts.py has the rest).
    for user in (talker, sticker, contact, location):
        assert (await fake.wait_message(user.id)).text.startswith(NOT_JOINED)
    for user in (commander, talker, sticker, contact, location):
        assert len(fake.texts(user.id)) == 1
    # Someone who has joined but reports no problems (a township organiser) gets the plain fallbacks.
    organizer = fake.user(ORGANIZER)
    organizer.send("你好")
    assert (await fake.wait_message(ORGANIZER)).text == FALLBACK
    organizer.send_sticker("👍")
    assert (await fake.wait_message(ORGANIZER)).text == UNSUPPORTED
    assert await snapshot(bot) == before


async def test_fallbacks_speak_the_persons_language(bot: BotRunner, fake: FakeBotApi) -> None:
    english = fake.user(2006, language_code="en")
    english.send("/foo")
    assert (await fake.wait_message(english.id)).text == "There is no command /foo. Send /help to see what you can do."
    other = fake.user(2007, language_code="en-GB")
    other.send_sticker()
    assert (await fake.wait_message(other.id)).text.startswith("You have not joined yet.")


# --------------------------------------------------------------------------- 2. over-long input

async def test_text_over_4096_characters_is_refused_and_nothing_else_happens(
        bot: BotRunner, fake: FakeBotApi, monkeypatch: pytest.MonkeyPatch) -> None:
    # The person is in a multi-step flow: an over-long text must not reach it either.
    seen: list[str] = []

    async def demo_step(update: Any, context: Any) -> None:
        seen.append(update.effective_message.text)
        await update.effective_message.reply_text("demo got it")

    monkeypatch.setitem(system.FLOW_HANDLERS, "demo", demo_step)
    user = fake.user(2010)
    await bot.core.flows.set(user.id, "demo", "text")

    user.send("字" * 5000)
    reply = await fake.wait_message(user.id)
    assert reply.text == "内容太长了（5000 字），最多 4096 字。请分几条发送。"

    # Exactly at the limit it is accepted (and goes to the flow). Updates of one chat are handled
    # in order, so had the long text caused anything else, it would show before this reply.
    user.send("字" * 4096)
    assert (await fake.wait_message(user.id)).text == "demo got it"
    assert fake.texts(user.id) == [reply.text, "demo got it"]
    assert seen == ["字" * 4096]
    assert await bot.core.flows.get(user.id) is not None


async def test_over_long_text_outside_a_flow_gets_no_fallback(bot: BotRunner, fake: FakeBotApi) -> None:
    user = fake.user(2011)
    user.send("/start " + "x" * 4500)  # a command is no exception
    first = await fake.wait_message(user.id)
    assert first.text == "内容太长了（4507 字），最多 4096 字。请分几条发送。"
    user.send("/foo")
    await fake.wait_message(user.id, contains="/foo")
    assert fake.texts(user.id) == [first.text, "没有 /foo 这个命令。发送 /help 查看可用功能。"]
    assert await grants(bot, user.id) == []


# --------------------------------------------------------------------------- 3. forged and stale buttons

async def _member_request(bot: BotRunner, fake: FakeBotApi, applicant_id: int) -> tuple[int, SentMessage]:
    invite = await bot.core.invites.create("sanyi", "member", created_by=SYSTEM_ACTOR)
    applicant = fake.user(applicant_id, first_name="小王")
    fake.user(SECRETARY)
    fake.user(ORGANIZER)
    applicant.send(f"/start {invite.payload}")
    await fake.wait_message(applicant.id, contains="已提交加入")
    request = await fake.wait_message(SECRETARY, contains="申请以党员身份加入「三义村党支部」")
    await fake.wait_message(ORGANIZER, contains="申请以党员身份加入「三义村党支部」")
    request_id = await bot.core.db.fetchval("SELECT id FROM join_requests WHERE person_id = ?", (applicant_id,))
    assert request.button("✅ 同意") == ("✅ 同意", f"jr:a:{request_id}")
    return request_id, request


async def _status(bot: BotRunner, request_id: int) -> str:
    return await bot.core.db.fetchval("SELECT status FROM join_requests WHERE id = ?", (request_id,))


async def test_forged_approval_by_a_resident_is_not_allowed(bot: BotRunner, fake: FakeBotApi) -> None:
    request_id, _ = await _member_request(bot, fake, 2020)
    resident = await make_resident(bot, fake, 2021)
    before = await snapshot(bot)

    press = resident.press_data(1, f"jr:a:{request_id}")
    assert await alert(fake, press) == NOT_ALLOWED
    # Nor may the applicant approve their own request.
    press = fake.user(2020).press_data(1, f"jr:a:{request_id}")
    assert await alert(fake, press) == NOT_ALLOWED

    assert await _status(bot, request_id) == "pending"
    assert await grants(bot, 2020) == []
    assert await snapshot(bot) == before
    await bot.delivery_idle()  # a notice a wrong right would have queued has been sent by now
    assert fake.texts(resident.id) == []
    assert fake.calls_to("editMessageText") == []


async def test_stale_request_id_gets_the_stale_alert(bot: BotRunner, fake: FakeBotApi) -> None:
    request_id, request = await _member_request(bot, fake, 2022)
    before = await snapshot(bot)
    press = fake.user(SECRETARY).press_data(request.message_id, "jr:a:999999")
    assert await alert(fake, press) == STALE
    assert await _status(bot, request_id) == "pending"
    assert await snapshot(bot) == before
    current = fake.message(SECRETARY, request.message_id)
    assert current is not None and current.edits == 0 and current.button_texts == ["✅ 同意", "❌ 拒绝"]


@pytest.mark.parametrize("who", ["resident", "secretary", "newcomer"])
async def test_garbage_button_data_changes_nothing(bot: BotRunner, fake: FakeBotApi, who: str) -> None:
    if who == "resident":
        person = await make_resident(bot, fake, 2030)
    else:
        person = fake.user(SECRETARY if who == "secretary" else 2031)
    sanyi = await org_id(bot, "sanyi")
    before = await snapshot(bot)
    cases = {
        "zz:1": STALE,
        "jr:x:1": STALE,
        "jr:a:": STALE,
        "lang:fr": STALE,
        "lang:": STALE,
        "ap:g:1:2:s": NOT_ALLOWED,
        f"ap:g:{sanyi}:{person.id}:s": NOT_ALLOWED,        # make oneself secretary
        f"ap:g:{sanyi}:{person.id}:o": NOT_ALLOWED,        # or organizer
        f"ap:r:{sanyi}:{SECRETARY}:s": NOT_ALLOWED,        # remove the secretary
        f"ap:o:{sanyi}": NOT_ALLOWED,
        f"ap:p:{sanyi}:{SECRETARY}": NOT_ALLOWED,
        "ap:x:y:z:w": STALE,
        f"iv:r:{sanyi}:o": NOT_ALLOWED,                    # an organizer link
        "iv:o:abc": STALE,
    }
    for data, expected in cases.items():
        press = person.press_data(1, data)
        assert await alert(fake, press) == expected, data
    assert await snapshot(bot) == before
    await bot.delivery_idle()  # a notice a wrong right would have queued has been sent by now
    assert fake.texts(person.id) == []
    assert fake.calls_to("editMessageText") == []


async def test_button_of_another_persons_chat_is_not_allowed(bot: BotRunner, fake: FakeBotApi) -> None:
    """Another branch's secretary replays the approve button of 王建国's message (another chat)."""
    request_id, request = await _member_request(bot, fake, 2040)
    intruder = fake.user(ERLANG_SECRETARY)
    before = await snapshot(bot)
    press = fake._queue_callback(intruder, SECRETARY, dict(request.message), f"jr:a:{request_id}")
    assert await alert(fake, press) == NOT_ALLOWED
    # The same from a group chat where the bot never sent that message.
    group = fake.group(-100500, "村民群")
    press = intruder.press_data(request.message_id, f"jr:a:{request_id}", chat=group)
    assert await alert(fake, press) == NOT_ALLOWED

    assert await _status(bot, request_id) == "pending"
    assert await snapshot(bot) == before
    current = fake.message(SECRETARY, request.message_id)
    assert current is not None and current.edits == 0 and current.button_texts == ["✅ 同意", "❌ 拒绝"]
    await bot.delivery_idle()
    assert fake.sent(group.id) == [] and fake.texts(ERLANG_SECRETARY) == []


# --------------------------------------------------------------------------- 4. /me

async def test_me_for_secretary_admin_and_newcomer(bot: BotRunner, fake: FakeBotApi) -> None:
    secretary, admin, newcomer = fake.user(SECRETARY), fake.user(ADMIN_ID, first_name="管理员"), fake.user(2050)
    secretary.send("/me")
    admin.send("/me")
    newcomer.send("/me")

    title, roles_line, language = (await fake.wait_message(SECRETARY)).text.split("\n")
    assert title == "王建国"  # no Telegram number: that is for administrators
    assert roles_line.startswith("• 三义村党支部：")
    assert roles_line.removeprefix("• 三义村党支部：") in ("书记和党员", "党员和书记")
    assert language == "语言：中文"

    assert (await fake.wait_message(ADMIN_ID)).text == "管理员（编号 9001）\n• 系统管理员\n语言：中文"
    assert (await fake.wait_message(newcomer.id)).text == f"Test\n{NO_ROLES}\n语言：中文"


# --------------------------------------------------------------------------- 5. /org

async def test_org_tree_per_role(bot: BotRunner, fake: FakeBotApi) -> None:
    resident = await make_resident(bot, fake, 2060)
    for uid in (SECRETARY, ORGANIZER, ADMIN_ID, resident.id):
        fake.user(uid).send("/org")
    # Codes only for the administrator, who uses them in the org file and on the command line.
    assert (await fake.wait_message(SECRETARY)).text == "组织架构：\n• 三义村党支部 — 居民1 党员1 书记1"
    assert (await fake.wait_message(ORGANIZER)).text == "\n".join([
        "组织架构：",
        "• 龙驹寨街道党工委 — 组织委员1",
        "　• 三义村党支部 — 居民1 党员1 书记1",
        "　• 二郎村党支部 — 书记1",
    ])
    assert (await fake.wait_message(ADMIN_ID)).text == "\n".join([
        "组织架构（括号内为代码）：",
        "• 中共丹凤县委 (danfeng) — 暂无人员",
        "　• 龙驹寨街道党工委 (longjuzhai) — 组织委员1",
        "　　• 三义村党支部 (sanyi) — 居民1 党员1 书记1",
        "　　• 二郎村党支部 (erlang) — 书记1",
    ])
    assert (await fake.wait_message(resident.id)).text == NOT_ALLOWED


# --------------------------------------------------------------------------- 6. /appoint

async def _audit_rows(bot: BotRunner, person_id: int) -> list[tuple[Any, ...]]:
    return [(r["actor_id"], r["source"], r["action"], r["org_id"], r["role"])
            for r in await bot.core.orgs.audit_trail(SYSTEM_ACTOR, person_id=person_id)]


async def test_organizer_appoints_and_removes_a_secretary(bot: BotRunner, fake: FakeBotApi) -> None:
    sanyi = await org_id(bot, "sanyi")
    appointee = await make_member(bot, fake, 2070, "小李")
    organizer = fake.user(ORGANIZER)
    audit_before = await _audit_rows(bot, appointee.id)

    menu = await ask(fake, organizer, "/appoint", contains="请选择组织")
    assert menu.text == "请选择组织："
    assert menu.button_texts == ["龙驹寨街道党工委", "· 三义村党支部", "· 二郎村党支部"]
    organizer.press(menu, "· 三义村党支部")
    people = await fake.wait_text(ORGANIZER, "「三义村党支部」的人员，请选择：")
    assert people.button_texts == ["小李 (党员)", "王建国 (党员和书记)"]
    organizer.press(people, "小李 (党员)")
    actions = await fake.wait_text(ORGANIZER, "小李（「三义村党支部」）：")
    assert actions.button_texts == ["设为书记", "设为组织委员"]
    organizer.press(actions, "设为书记")
    done = await fake.wait_text(ORGANIZER, "已任命")
    assert done.text == "已任命 小李 为「三义村党支部」书记。" and done.buttons == []
    assert done.message_id == menu.message_id  # the same message, edited step by step

    notice = await fake.wait_message(appointee.id)
    assert notice.text == "您已被任命为「三义村党支部」书记。发送 /help 查看可用功能。"
    assert set(await grants(bot, appointee.id)) == {("sanyi", "member"), ("sanyi", "secretary")}
    assert await _audit_rows(bot, appointee.id) == [*audit_before, (ORGANIZER, "chat", "grant", sanyi, "secretary")]

    # And remove it again.
    menu = await ask(fake, organizer, "/appoint", contains="请选择组织")
    organizer.press(menu, "· 三义村党支部")
    people = await fake.wait_text(ORGANIZER, "「三义村党支部」的人员，请选择：")
    assert people.button_texts == ["小李 (党员和书记)", "王建国 (党员和书记)"]
    organizer.press(people, "小李 (党员和书记)")
    actions = await fake.wait_text(ORGANIZER, "小李（「三义村党支部」）：")
    assert actions.button_texts == ["撤销书记", "设为组织委员"]
    organizer.press(actions, "撤销书记")
    done = await fake.wait_text(ORGANIZER, "已撤销")
    assert done.text == "已撤销 小李 的「三义村党支部」书记职务。"
    notice = await fake.wait_message(appointee.id)
    assert notice.text == "您在「三义村党支部」的书记职务已被撤销。"
    assert await grants(bot, appointee.id) == [("sanyi", "member")]
    assert await _audit_rows(bot, appointee.id) == [
        *audit_before,
        (ORGANIZER, "chat", "grant", sanyi, "secretary"),
        (ORGANIZER, "chat", "revoke", sanyi, "secretary"),
    ]
    assert fake.texts(appointee.id) == ["您已被任命为「三义村党支部」书记。发送 /help 查看可用功能。",
                                        "您在「三义村党支部」的书记职务已被撤销。"]

    async def both_sent() -> bool:  # the fake sees a send just before we record it
        rows = await bot.core.db.fetchall("SELECT status FROM outbox WHERE chat_id = ? ORDER BY id", (appointee.id,))
        return [r[0] for r in rows] == ["sent", "sent"]

    await eventually(both_sent, "both notices recorded as sent")


async def test_secretary_cannot_appoint_nor_replay_the_organizers_buttons(bot: BotRunner, fake: FakeBotApi) -> None:
    sanyi = await org_id(bot, "sanyi")
    appointee = await make_member(bot, fake, 2071, "小李")
    secretary = fake.user(SECRETARY)
    before = await snapshot(bot)

    assert (await ask(fake, secretary, "/appoint")).text == NOT_ALLOWED
    for data in (f"ap:o:{sanyi}", f"ap:p:{sanyi}:{appointee.id}", f"ap:g:{sanyi}:{appointee.id}:s",
                 f"ap:g:{sanyi}:{SECRETARY}:o", f"ap:r:{sanyi}:{SECRETARY}:s"):
        press = secretary.press_data(1, data)  # message 1 is the bot's "not allowed" reply
        assert await alert(fake, press) == NOT_ALLOWED, data
    assert await snapshot(bot) == before
    await bot.delivery_idle()
    assert fake.texts(SECRETARY) == [NOT_ALLOWED]
    assert fake.texts(appointee.id) == []


async def test_admin_appoints_anywhere(bot: BotRunner, fake: FakeBotApi) -> None:
    erlang = await org_id(bot, "erlang")
    admin = fake.user(ADMIN_ID)
    fake.user(ERLANG_SECRETARY)
    menu = await ask(fake, admin, "/appoint", contains="请选择组织")
    assert menu.button_texts == ["中共丹凤县委", "· 龙驹寨街道党工委", "· · 三义村党支部", "· · 二郎村党支部"]
    admin.press(menu, "· · 二郎村党支部")
    people = await fake.wait_text(ADMIN_ID, "「二郎村党支部」的人员")
    assert people.button_texts == ["赵强 (书记)"]
    admin.press(people, "赵强 (书记)")
    actions = await fake.wait_text(ADMIN_ID, "赵强（「二郎村党支部」）：")
    assert actions.button_texts == ["撤销书记", "设为组织委员"]
    admin.press(actions, "设为组织委员")
    assert (await fake.wait_text(ADMIN_ID, "已任命")).text == "已任命 赵强 为「二郎村党支部」组织委员。"
    notice = await fake.wait_message(ERLANG_SECRETARY)
    assert notice.text == "您已被任命为「二郎村党支部」组织委员。发送 /help 查看可用功能。"
    assert set(await grants(bot, ERLANG_SECRETARY)) == {("erlang", "secretary"), ("erlang", "organizer")}
    assert (await _audit_rows(bot, ERLANG_SECRETARY))[-1] == (ADMIN_ID, "chat", "grant", erlang, "organizer")

    # The county itself has nobody yet: the admin is told to invite people first.
    menu = await ask(fake, admin, "/appoint", contains="请选择组织")
    admin.press(menu, "中共丹凤县委")
    nobody = await fake.wait_text(ADMIN_ID, "「中共丹凤县委」还没有人员")
    assert nobody.text == "「中共丹凤县委」还没有人员。请先用 /invite 生成链接邀请对方加入。"
    assert nobody.buttons == []


# --------------------------------------------------------------------------- 7. /invite

async def test_secretary_invites_a_resident_by_link(bot: BotRunner, fake: FakeBotApi) -> None:
    sanyi = await org_id(bot, "sanyi")
    secretary = fake.user(SECRETARY)
    menu = await ask(fake, secretary, "/invite", contains="为哪个组织")
    assert menu.text == "为哪个组织生成加入链接？"
    assert menu.button_texts == ["三义村党支部"]
    secretary.press(menu, "三义村党支部")
    roles = await fake.wait_text(SECRETARY, "加入后的身份是？")
    assert roles.text == "「三义村党支部」：加入后的身份是？"
    assert roles.button_texts == ["居民", "党员", "书记"]  # no 组织委员: a secretary cannot hand that out
    assert "组织委员" not in roles.button_texts

    # Nor by replaying the organizer-link button that is not shown.
    before = await snapshot(bot)
    press = secretary.press_data(roles.message_id, f"iv:r:{sanyi}:o")
    assert await alert(fake, press) == NOT_ALLOWED
    assert await snapshot(bot) == before

    secretary.press(roles, "居民")
    shown = await fake.wait_text(SECRETARY, "加入链接")
    first, link = shown.text.split("\n")
    assert first == "「三义村党支部」居民加入链接（扫码即加入）："
    match = re.fullmatch(r"https://t\.me/branch_test_bot\?start=(j-[A-Za-z0-9_-]+)", link)
    assert match is not None, link
    invite = await bot.core.invites.get(match.group(1))
    assert invite is not None and invite.role == "resident" and invite.org.code == "sanyi"
    assert await bot.core.db.fetchval("SELECT created_by FROM invites WHERE id = ?", (invite.id,)) == SECRETARY

    villager = fake.user(2080, first_name="老李")
    villager.send(f"/start {match.group(1)}")
    assert (await fake.wait_message(villager.id)).text == "欢迎！您已作为居民加入「三义村党支部」。"
    assert await grants(bot, villager.id) == [("sanyi", "resident")]


async def test_invite_link_for_members_needs_approval(bot: BotRunner, fake: FakeBotApi) -> None:
    organizer = fake.user(ORGANIZER)
    menu = await ask(fake, organizer, "/invite", contains="为哪个组织")
    assert menu.button_texts == ["龙驹寨街道党工委", "· 三义村党支部", "· 二郎村党支部"]
    organizer.press(menu, "· 二郎村党支部")
    roles = await fake.wait_text(ORGANIZER, "加入后的身份是？")
    assert roles.button_texts == ["居民", "党员", "书记", "组织委员"]
    organizer.press(roles, "党员")
    shown = await fake.wait_text(ORGANIZER, "加入链接")
    assert shown.text.startswith("「二郎村党支部」党员加入链接（需书记或组织委员审核）：\nhttps://t.me/branch_test_bot?start=j-")


# --------------------------------------------------------------------------- 8. /cancel

async def test_cancel_with_and_without_an_open_flow(bot: BotRunner, fake: FakeBotApi) -> None:
    idle, busy = fake.user(2090), fake.user(2091)
    idle.send("/cancel")
    await bot.core.flows.set(busy.id, "demo", "step")
    busy.send("/cancel")
    nothing = await fake.wait_message(idle.id)
    assert nothing.text == "当前没有进行中的操作。"
    assert "❓ 帮助" in (fake.keyboard(idle.id) or [])
    done = await fake.wait_message(busy.id)
    assert done.text == "已取消。"
    assert await bot.core.flows.get(busy.id) is None
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM flows WHERE person_id = ?", (busy.id,)) == 0


# --------------------------------------------------------------------------- 9. main-menu buttons

async def test_menu_button_runs_me_in_either_language(bot: BotRunner, fake: FakeBotApi) -> None:
    secretary = fake.user(SECRETARY)
    secretary.send("👤 我的")
    english = fake.user(2100, first_name="Tom", language_code="en")
    english.send("👤 Me")
    chinese_pressing_english = fake.user(2101, first_name="小赵")
    chinese_pressing_english.send("👤 Me")  # an old English keyboard still works

    text = (await fake.wait_message(SECRETARY)).text
    assert text.startswith("王建国\n• 三义村党支部：") and text.endswith("\n语言：中文")
    assert (await fake.wait_message(english.id)).text == "\n".join([
        "Tom",
        "You have not joined any organisation yet. Ask your village or community branch for its join QR code"
        " or link.",
        "Language: English",
    ])
    assert (await fake.wait_message(chinese_pressing_english.id)).text == f"小赵\n{NO_ROLES}\n语言：中文"


async def test_english_secretary_sees_roles_in_english(bot: BotRunner, fake: FakeBotApi) -> None:
    await bot.core.people.set_language(SECRETARY, "en")
    fake.user(SECRETARY).send("👤 Me")
    title, roles_line, language = (await fake.wait_message(SECRETARY)).text.split("\n")
    assert title == "王建国"
    assert roles_line.startswith("• 三义村党支部: ")
    assert roles_line.removeprefix("• 三义村党支部: ") in ("secretary and party member", "party member and secretary")
    assert language == "Language: English"


# --------------------------------------------------------------------------- 10. blocking the bot

async def _blocked_flag(bot: BotRunner, user_id: int) -> int | None:
    return await bot.core.db.fetchval("SELECT blocked_bot FROM people WHERE telegram_id = ?", (user_id,))


async def _outbox_status(bot: BotRunner, key: str) -> str | None:
    return await bot.core.db.fetchval("SELECT status FROM outbox WHERE dedup_key = ?", (key,))


async def test_blocking_and_unblocking_the_bot(bot: BotRunner, fake: FakeBotApi) -> None:
    user = await make_resident(bot, fake, 2110)
    user.send("/start")
    welcome = await fake.wait_message(user.id)
    assert welcome.text.startswith("居民2110，您好！")

    user.block()
    await eventually(lambda: _is(bot, user.id, 1), "people.blocked_bot set")
    async with bot.core.db.transaction() as tx:
        await bot.core.outbox.send_text(tx, key="test:while-blocked", chat_id=user.id, text="停水通知")
    assert await _outbox_status(bot, "test:while-blocked") == "blocked"
    assert await grants(bot, user.id) == [("sanyi", "resident")]  # their data is kept

    user.unblock()
    await eventually(lambda: _is(bot, user.id, 0), "people.blocked_bot cleared")
    async with bot.core.db.transaction() as tx:
        await bot.core.outbox.send_text(tx, key="test:after-unblock", chat_id=user.id, text="恢复供水通知")
    assert (await fake.wait_message(user.id)).text == "恢复供水通知"
    await eventually(lambda: _has_status(bot, "test:after-unblock", "sent"), "the new notice marked sent")

    # The notice queued while blocked never reached the chat, and the bot never tried.
    await bot.delivery_idle()
    assert fake.texts(user.id) == [welcome.text, "恢复供水通知"]
    assert await _outbox_status(bot, "test:while-blocked") == "blocked"
    assert [c.params["text"] for c in fake.calls_to("sendMessage") if c.chat_id == user.id] == \
        [welcome.text, "恢复供水通知"]


async def test_a_403_from_telegram_marks_the_person_blocked(bot: BotRunner, fake: FakeBotApi) -> None:
    """Without a my_chat_member update (missed while the bot was down), the 403 tells us."""
    user = await make_resident(bot, fake, 2111)
    fake.block(user.id)
    async with bot.core.db.transaction() as tx:
        await bot.core.outbox.send_text(tx, key="test:403", chat_id=user.id, text="会议通知")
    await eventually(lambda: _has_status(bot, "test:403", "blocked"), "row marked blocked after a 403")
    assert await _blocked_flag(bot, user.id) == 1
    await bot.delivery_idle()
    assert fake.texts(user.id) == []


async def test_writing_to_the_bot_clears_a_stale_blocked_flag(bot: BotRunner, fake: FakeBotApi) -> None:
    user = await make_resident(bot, fake, 2112)
    fake.block(user.id)
    async with bot.core.db.transaction() as tx:
        await bot.core.outbox.send_text(tx, key="test:403-first", chat_id=user.id, text="会议通知")
    await eventually(lambda: _is(bot, user.id, 1), "people.blocked_bot set by the 403")
    # The person unblocks, but that my_chat_member update never reached us (the bot was down for
    # longer than Telegram keeps updates). Then they write: the chat is evidently open again.
    fake.unblock(user.id)
    user.send("/me")
    assert (await fake.wait_message(user.id)).text.startswith("居民2112\n")
    async with bot.core.db.transaction() as tx:
        await bot.core.outbox.send_text(tx, key="test:403-second", chat_id=user.id, text="会议通知二")
    assert (await fake.wait_message(user.id, timeout=3.0)).text == "会议通知二"


async def _is(bot: BotRunner, user_id: int, flag: int) -> bool:
    return await _blocked_flag(bot, user_id) == flag


async def _has_status(bot: BotRunner, key: str, status: str) -> bool:
    return await _outbox_status(bot, key) == status


# --------------------------------------------------------------------------- 11. the error handler

async def test_failed_reply_is_reported_and_the_bot_keeps_working(bot: BotRunner, fake: FakeBotApi) -> None:
    user = fake.user(2120, first_name="小周")
    fake.fail_next(500, method="sendMessage", chat_id=user.id)
    user.send("/me")
    assert (await fake.wait_message(user.id)).text == INTERNAL
    failed = [c for c in fake.calls_to("sendMessage") if c.chat_id == user.id]
    assert [c.status for c in failed] == [500, 200]
    assert "小周\n" in failed[0].params["text"]  # the /me reply was what failed

    user.send("/me")
    assert (await fake.wait_message(user.id)).text == f"小周\n{NO_ROLES}\n语言：中文"
    assert fake.texts(user.id) == [INTERNAL, f"小周\n{NO_ROLES}\n语言：中文"]


async def test_error_is_reported_in_the_persons_language(bot: BotRunner, fake: FakeBotApi) -> None:
    user = fake.user(2121, language_code="en")
    fake.fail_next(500, method="sendMessage", chat_id=user.id)
    user.send("hello")
    assert (await fake.wait_message(user.id)).text == "Sorry, something went wrong. Please try again later."
    user.send("hello")
    assert (await fake.wait_message(user.id)).text.startswith("You have not joined yet.")


async def test_error_before_a_button_is_answered_shows_an_alert(bot: BotRunner, fake: FakeBotApi) -> None:
    """A callback whose handler fails before answering: the alert says something went wrong."""
    user = fake.user(2122)
    fake.fail_next(500, method="answerCallbackQuery", chat_id=None)
    press = user.press_data(1, "lang:fr")  # the stale alert fails once; the error handler answers instead
    assert await alert(fake, press) == INTERNAL
    assert [c.status for c in fake.calls_to("answerCallbackQuery")] == [500, 200]
    assert await bot.core.people.language(user.id) == "zh_CN"


async def test_error_after_a_button_was_answered_is_still_reported(bot: BotRunner, fake: FakeBotApi) -> None:
    organizer = fake.user(ORGANIZER)
    menu = await ask(fake, organizer, "/appoint", contains="请选择组织")
    fake.fail_next(500, method="editMessageText", chat_id=ORGANIZER)
    press = organizer.press(menu, "· 三义村党支部")

    def told() -> bool:
        answer = fake.answers(press) or {}
        return answer.get("text") == INTERNAL or INTERNAL in fake.texts(ORGANIZER)

    await fake.wait_for(told, timeout=3.0, message="the organizer was not told about the error")


# --------------------------------------------------------------------------- edits of earlier messages

async def test_editing_an_earlier_message_is_not_a_new_message(
        bot: BotRunner, fake: FakeBotApi, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    async def demo_step(update: Any, context: Any) -> None:
        seen.append(update.effective_message.text)
        await update.effective_message.reply_text("demo got it")

    monkeypatch.setitem(system.FLOW_HANDLERS, "demo", demo_step)
    user = fake.user(2130)
    await bot.core.flows.set(user.id, "demo", "describe")
    sent = user.send("路灯坏了")
    await fake.wait_message(user.id)
    edited = {**sent["message"], "text": "村口路灯坏了", "edit_date": int(time.time())}
    fake.queue_update({"edited_message": edited})
    user.send("在村口")  # the person's real next answer; the chat is handled in order
    await fake.wait_message(user.id, contains="demo got it")
    assert seen == ["路灯坏了", "在村口"]
    assert fake.texts(user.id) == ["demo got it", "demo got it"]
