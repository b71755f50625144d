"""End to end: a digest day, as people see it in their chats through the fake Bot API, with the
settable clock (START is Friday 2026-11-27, 09:00 in Shanghai).

Two members of 三义村党支部: 党员0 takes the low-priority notices in one daily digest (chosen under
/me), 党员1 at once (the default). During the day the secretary 王建国 sends broadcasts (plain, urgent,
a photo, one cancelled), schedules a meeting for tomorrow, and a supervision summary arrives. The
bot is restarted in the night; at 08:00 the digest comes, and each of its buttons sends the
original."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from orgtree import SECRETARY
from test_e2e_broadcasts import add_people, compose, edited, with_button

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.clock import SettableClock
from bot.services.digests import MESSAGE
from bot.services.meetings import Draft
from conftest import BotRunner

SHANGHAI = ZoneInfo("Asia/Shanghai")
BULLETIN = "supervision/bulletin"  # the supervision helper's summary rows
DAILY, NOW = "每天早上8点汇总一次", "有消息马上收到"


def bot_texts(fake: FakeBotApi, chat: int, needle: str) -> list[SentMessage]:
    return [m for m in fake.history(chat) if needle in m.text]


def photos(fake: FakeBotApi, chat: int) -> list[SentMessage]:
    return [m for m in fake.history(chat) if m.method == "sendPhoto"]


async def send(bot: BotRunner, fake: FakeBotApi, secretary: FakeUser, text: str, urgent: bool = False) -> None:
    options = await compose(fake, secretary, text, org=None)
    if urgent:
        secretary.press(options, "☐ 紧急（夜里也发）")
        options = await with_button(fake, options, "☑ 紧急（夜里也发）")
    secretary.press(options, "✅ 确认发送")
    await edited(fake, options, "正在群发")
    await bot.idle()


async def send_photo(bot: BotRunner, fake: FakeBotApi, secretary: FakeUser, caption: str) -> None:
    secretary.send("/broadcast")
    draft = await secretary.wait_text("点下面的名称选择")
    secretary.press(draft, "下一步：写内容 ➡️")
    await edited(fake, draft, "请发来要群发的内容")
    secretary.send_photo(caption=caption)
    options = await secretary.wait_text("看过上面的样子")
    secretary.press(options, "✅ 确认发送")
    await edited(fake, options, "正在群发")
    await bot.idle()


async def supervision_summary(bot: BotRunner, people: list[int], text: str) -> None:
    """A summary row as the supervision bulletins will queue it (that feature is another branch's)."""
    async with bot.core.db.transaction() as tx:
        for person in people:
            await bot.core.outbox.send_text(tx, key=f"sv-test:{person}:{text}", chat_id=person, text=text,
                                            purpose=BULLETIN, subject_id=1)
    await bot.idle()


async def choose_daily_under_me(fake: FakeBotApi, user: FakeUser) -> None:
    user.send("/me")
    me = await user.wait_text("语言：中文")
    assert me.button_texts == [f"☑ {NOW}", f"☐ {DAILY}"]
    answer = await fake.wait_callback_answer(user.press(me, f"☐ {DAILY}"))
    assert "每天早上8点" in str(answer.get("text"))
    # The same /me message, edited: the choice moved.
    await with_button(fake, me, f"☑ {DAILY}")
    assert len(bot_texts(fake, user.id, "语言：中文")) == 1


async def test_a_digest_day(bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    daily, at_once = await add_people(bot, fake, 3900, 2)
    await choose_daily_under_me(fake, daily)

    # The day: low-priority notices for both, urgent ones, and a broadcast that is withdrawn.
    await send(bot, fake, secretary, "周六上午打扫村道，请大家参加")
    await send(bot, fake, secretary, "水管爆了，马上关闸", urgent=True)
    await send_photo(bot, fake, secretary, "村口新修的路")
    await supervision_summary(bot, [daily.id, at_once.id], "十一月督查通报：三义村会议按时召开")
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    tomorrow = datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)
    await bot.core.meetings.create(SECRETARY, Draft(kind="general_meeting", org_id=sanyi.id, starts_at=tomorrow,
                                                    ends_at=tomorrow + timedelta(hours=2), place="村委会",
                                                    topic="学习党章"))
    later = await bot.core.broadcasts.start(SECRETARY, sanyi.id)
    await bot.core.broadcasts.set_content(SECRETARY, later.id, "text", "下午三点停电")
    await bot.core.broadcasts.set_time(SECRETARY, later.id, datetime(2026, 11, 27, 15, 0, tzinfo=SHANGHAI))
    await bot.core.broadcasts.confirm(SECRETARY, later.id)
    await bot.core.broadcasts.cancel(SECRETARY, later.id)
    await bot.idle()

    # At once: everything. The digest's person: only the urgent kinds.
    for needle in ("打扫村道", "关闸", "督查通报", "学习党章"):
        assert len(bot_texts(fake, at_once.id, needle)) == 1, needle
    assert len(photos(fake, at_once.id)) == 1
    assert len(bot_texts(fake, daily.id, "关闸")) == 1
    assert len(bot_texts(fake, daily.id, "学习党章")) == 1  # a meeting within 24 h
    for needle in ("打扫村道", "督查通报", "停电"):
        assert not bot_texts(fake, daily.id, needle), needle
    assert not photos(fake, daily.id)
    daily.send("/settings")
    settings = await daily.wait_text("不急的消息")
    assert "明早要汇总的：3条" in settings.text and f"☑ {DAILY}" in settings.button_texts

    # The night: a restart loses nothing; 07:59 is not yet.
    clock.set(datetime(2026, 11, 28, 7, 59, tzinfo=SHANGHAI))
    await bot.restart()
    await bot.ticks()
    assert not bot_texts(fake, daily.id, "每日汇总")
    clock.set(datetime(2026, 11, 28, 8, 0, tzinfo=SHANGHAI))
    await bot.ticks()
    (digest,) = bot_texts(fake, daily.id, "每日汇总")
    assert "有3条不急的消息" in digest.text and "停电" not in digest.text
    lines = [line for line in digest.text.split("\n") if line[:1].isdigit()]
    assert [line.split("【")[1].split("】")[0] for line in lines] == ["通知", "通知", "督查通报"]
    assert "打扫村道" in lines[0] and "（图片）" in lines[1] and "村口新修的路" in lines[1]
    assert digest.button_texts == ["看第1条", "看第2条", "看第3条"]
    assert not bot_texts(fake, at_once.id, "每日汇总")
    await bot.idle()
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM outbox WHERE purpose = ?", (MESSAGE,)) == 1

    # Each button sends the original: the broadcast's text, its photo, the summary.
    daily.press(digest, "看第2条")
    await fake.wait_for(lambda: len(photos(fake, daily.id)) == 1)
    assert photos(fake, daily.id)[0].text == "📢 三义村党支部\n\n村口新修的路"
    assert photos(fake, daily.id)[0].photo == photos(fake, at_once.id)[0].photo
    daily.press(digest, "看第1条")
    await daily.wait_text("周六上午打扫村道，请大家参加")
    daily.press(digest, "看第3条")
    await daily.wait_text("十一月督查通报：三义村会议按时召开")
    # Someone else's digest button changes nothing.
    item = digest.button("看第3条")[1]
    assert item is not None
    answer = await fake.wait_callback_answer(at_once.press_data(digest.message_id, item))
    assert "不是发给您的" in str(answer.get("text"))
    await bot.idle()
    assert not bot_texts(fake, at_once.id, "每日汇总")


async def test_back_to_at_once_sends_what_was_held(bot: BotRunner, fake: FakeBotApi) -> None:
    (person,) = await add_people(bot, fake, 3950, 1)
    await choose_daily_under_me(fake, person)
    await supervision_summary(bot, [person.id], "第一份通报")
    assert not bot_texts(fake, person.id, "第一份通报")
    person.send("/settings")
    settings = await person.wait_text("不急的消息")
    answer = await fake.wait_callback_answer(person.press(settings, f"☐ {NOW}"))
    assert "攒着的1条现在就发" in str(answer.get("text"))
    settings = await with_button(fake, settings, f"☑ {NOW}")  # the /settings message, edited
    assert "有消息马上收到" in settings.text
    await person.wait_text("第一份通报")
    await supervision_summary(bot, [person.id], "第二份通报")
    await person.wait_text("第二份通报")


async def test_a_long_digest_comes_in_as_few_messages_as_fit(bot: BotRunner, fake: FakeBotApi,
                                                             clock: SettableClock) -> None:
    (person,) = await add_people(bot, fake, 3960, 1)
    await choose_daily_under_me(fake, person)
    async with bot.core.db.transaction() as tx:
        for n in range(60):
            await bot.core.outbox.send_text(tx, key=f"sv-long:{n}", chat_id=person.id, purpose=BULLETIN,
                                            text=f"第{n + 1}份：" + "本月三会一课按时召开，会议记录齐全。" * 20)
    clock.set(datetime(2026, 11, 28, 8, 0, tzinfo=SHANGHAI))
    await bot.ticks()
    parts = bot_texts(fake, person.id, "每日汇总")
    assert len(parts) == 2  # 60 lines of 120 characters: past 4096 once
    assert "有60条不急的消息" in parts[0].text and "（接上条）" in parts[1].text
    assert all(len(p.text) <= 4096 for p in parts)
    assert sum(len(p.button_texts) for p in parts) == 60
    last = parts[1].button_texts[-1]
    assert last == "看第60条"
    person.press(parts[1], last)
    await person.wait_text("第60份：")


async def test_the_echo_wall_line_opens_the_wall(bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    from bot.services.tickets import Item

    (person,) = await add_people(bot, fake, 3970, 1)
    await choose_daily_under_me(fake, person)
    resident = 3971
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    async with bot.core.db.transaction() as tx:
        await bot.core.people.ensure(tx, resident, "村民")
        await bot.core.orgs.grant(tx, person_id=resident, org_id=sanyi.id, role="resident", actor_id=None,
                                  source="test")
    ticket = await bot.core.tickets.submit(resident, [Item("text", "村口路灯坏了")], "infrastructure", True, False)
    await bot.core.tickets.answer(SECRETARY, ticket.id, [Item("text", "路灯已经换好了")])
    await bot.idle()
    clock.set(datetime(2026, 11, 28, 8, 0, tzinfo=SHANGHAI))
    await bot.ticks()
    (digest,) = bot_texts(fake, person.id, "每日汇总")
    assert "【回音壁】三义村党支部答复了1个群众反映的问题" in digest.text
    person.press(digest, "看第1条")
    wall = await person.wait_text("「三义村党支部」回音壁")
    assert "路灯已经换好了" in wall.text
    current = fake.message(person.id, digest.message_id)
    assert current is not None and current.text == digest.text and current.edits == 0  # the digest stays
