"""End to end: earlier messages with buttons are kept true when their ticket or meeting changes
(bot/services/screens.py), through the fake Bot API."""

from __future__ import annotations

from datetime import timedelta

from orgtree import SECRETARY
from test_e2e_meetings import add_member, local, schedule, service, settle

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.actors import SYSTEM_ACTOR
from bot.outbox import Priority
from bot.services.tickets import Item, Status, status_word
from conftest import BotRunner

WAIT = 10.0


async def resident(bot: BotRunner, fake: FakeBotApi, user_id: int, name: str = "老张") -> FakeUser:
    invite = await bot.core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    user = fake.user(user_id, first_name=name)
    user.send(f"/start {invite.payload}")
    await fake.wait_message(user_id, contains="欢迎")
    return user


async def submitted(bot: BotRunner, fake: FakeBotApi, villager: FakeUser, text: str) -> SentMessage:
    """The villager submits a problem; returns the secretary's card."""
    fake.user(SECRETARY, first_name="王建国")
    villager.send(text)
    categories = await fake.wait_message(villager.id, contains="请选择问题类别")
    villager.press(categories, "基础设施")
    confirm = await fake.wait_text(villager.id, "请确认")
    villager.press(confirm, "✅ 提交")
    await fake.wait_text(villager.id, "已提交！")
    return await fake.wait_message(SECRETARY, contains="📥 新问题", timeout=WAIT)


async def until(fake: FakeBotApi, chat_id: int, message_id: int, test: object, what: str) -> SentMessage:
    """Wait until the message reads as `test` (a predicate on it) says."""
    found: list[SentMessage] = []

    def ready() -> bool:
        message = fake.message(chat_id, message_id)
        if message is not None and test(message):  # type: ignore[operator]
            found.append(message)
            return True
        return False

    await fake.wait_for(ready, WAIT, message=what)
    return found[-1]


async def test_the_secretary_card_follows_the_ticket(bot: BotRunner, fake: FakeBotApi) -> None:
    villager = await resident(bot, fake, 2001)
    secretary = fake.user(SECRETARY, first_name="王建国")
    card = await submitted(bot, fake, villager, "村口路灯坏了一个月了")
    assert "状态：待受理" in card.text and "✅ 受理" in card.button_texts
    secretary.send("/inbox")
    inbox = await fake.wait_message(SECRETARY, contains="待办问题 1 个")
    assert inbox.button_texts == ["#1 基础设施 · 待受理"]
    villager.send("/my")
    mine = await fake.wait_message(villager.id, contains="您反映的问题")
    assert "· 待受理 ·" in mine.button_texts[0]

    secretary.press(card, "✅ 受理")
    await fake.wait_message(SECRETARY, contains="已受理问题 #1")
    inbox = await until(fake, SECRETARY, inbox.message_id, lambda m: "已受理" in str(m.buttons), "inbox not edited")
    assert inbox.button_texts == ["#1 基础设施 · 已受理"] and "新 0" in inbox.text
    await until(fake, villager.id, mine.message_id, lambda m: "· 已受理 ·" in str(m.buttons), "/my not edited")
    card = await until(fake, SECRETARY, card.message_id, lambda m: "状态：已受理" in m.text, "card not edited")
    assert "待受理" not in card.text
    assert "✅ 受理" not in card.button_texts and "💬 答复" in card.button_texts
    assert card.text.startswith("📥 新问题")

    # The details view, sent directly, is kept true as well.
    secretary.press(card, "📜 详情和记录")
    details = await fake.wait_message(SECRETARY, contains="办理记录")
    assert "❓ 要求补充" in details.button_texts

    secretary.press(card, "❓ 要求补充")
    await fake.wait_message(SECRETARY, contains="请输入需要群众补充的内容")
    secretary.send("是哪个路口？")
    asked = await fake.wait_message(villager.id, contains="书记需要您补充", timeout=WAIT)
    assert "✍️ 补充信息" in asked.button_texts
    card = await until(fake, SECRETARY, card.message_id, lambda m: "状态：待补充" in m.text, "card not edited")
    assert "❓ 要求补充" not in card.button_texts and "💬 答复" in card.button_texts
    details = await until(fake, SECRETARY, details.message_id, lambda m: "待补充" in m.text, "details not edited")
    assert "❓ 要求补充" not in details.button_texts

    # The answer comes before the information: the request loses its button and says where it stands.
    secretary.press(card, "💬 答复")
    await fake.wait_message(SECRETARY, contains="请输入对问题 #1 的答复")
    secretary.send("已联系电工，明天修好。")
    collected = await fake.wait_message(SECRETARY, contains="已记录 1 条")
    secretary.press(collected, "📨 发送")
    secretary.press(await fake.wait_message(SECRETARY, contains="回音壁上会这样显示"), "✅ 确定发送")
    answer = await fake.wait_message(villager.id, contains="有答复了", timeout=WAIT)
    asked = await until(fake, villager.id, asked.message_id, lambda m: not m.buttons, "request not edited")
    assert "（现在：已答复）" in asked.text and asked.text.startswith("关于问题 #1，书记需要您补充")
    card = await until(fake, SECRETARY, card.message_id, lambda m: "状态：已答复" in m.text, "card not edited")
    assert card.button_texts == ["💬 答复", "🏁 办结", "📜 详情和记录"]

    villager.press(answer, "😊 满意")
    await fake.wait_message(villager.id, contains="谢谢您的评价")
    card = await until(fake, SECRETARY, card.message_id, lambda m: "状态：已办结" in m.text, "card not edited")
    assert card.buttons == []
    answer = await until(fake, villager.id, answer.message_id, lambda m: not m.buttons, "answer not edited")
    assert "（现在：已办结）" in answer.text
    details = await until(fake, SECRETARY, details.message_id, lambda m: "已办结" in m.text, "details not edited")
    assert details.buttons == []
    await until(fake, villager.id, mine.message_id, lambda m: "· 已办结 ·" in str(m.buttons), "/my not edited")
    inbox = await until(fake, SECRETARY, inbox.message_id, lambda m: not m.buttons, "inbox not edited")
    assert "目前没有待办问题" in inbox.text
    # Final: nothing of it is kept any more, and nothing more is sent.
    assert await bot.core.screens.live("ticket", 1) == []
    await bot.idle()
    assert not [c for c in fake.calls if c.method == "editMessageText" and not c.ok]


# --------------------------------------------------------------------------- meetings

async def test_a_cancelled_meeting_takes_the_buttons_off_its_notice_and_reminders(
        bot: BotRunner, fake: FakeBotApi) -> None:
    fake.user(SECRETARY)
    await add_member(bot, fake, 2401, "张三")
    meeting_id = await schedule(bot, local(2026, 12, 5, 15, 0))
    notice = await fake.wait_message(2401, contains="📢 会议通知")
    await settle(bot, local(2026, 12, 4, 15, 0))
    reminder = await fake.wait_message(2401, contains="⏰ 会议提醒：明天下午3:00开会")
    assert "✅ 参加" in notice.button_texts and "📍 签到" in reminder.button_texts

    await service(bot).cancel(SECRETARY, meeting_id, "天气原因")
    await fake.wait_message(2401, contains="🚫 会议取消了")
    for message in (notice, reminder):
        now = await until(fake, 2401, message.message_id, lambda m: "已取消" in m.text, "not edited")
        assert now.buttons == [] and "❌ 会议已取消（原因：天气原因）" in now.text
    assert "⏰ 会议提醒" in fake.message(2401, reminder.message_id).text  # type: ignore[union-attr]
    await bot.idle()
    assert await bot.core.screens.live("meeting", meeting_id) == []
    # The 2-hour reminder, still waiting, was cancelled with the meeting: nothing more arrives.
    await settle(bot, local(2026, 12, 5, 13, 0))
    assert len([m for m in fake.history(2401) if "会议提醒" in m.text]) == 1


async def test_an_answered_nudge_reads_as_the_notice_with_the_answer(bot: BotRunner, fake: FakeBotApi) -> None:
    fake.user(SECRETARY)
    li = await add_member(bot, fake, 2501, "李四")
    meeting_id = await schedule(bot, local(2026, 12, 5, 15, 0))
    notice = await fake.wait_message(2501, contains="📢 会议通知")
    assert await service(bot).nudge(SECRETARY, meeting_id) == 1
    nudge = await fake.wait_message(2501, contains="🔔 您还没有回复这次会议")

    li.press(nudge, "✅ 参加")
    nudge = await until(fake, 2501, nudge.message_id, lambda m: "👉 您的回复：✅ 参加" in m.text, "nudge not edited")
    assert "🔔" not in nudge.text and nudge.text.startswith("📢 会议通知")
    assert nudge.button_texts == ["✅ 参加", "📝 请假", "📆 加入手机日历"]  # the answer can still change
    notice = await until(fake, 2501, notice.message_id, lambda m: "👉 您的回复：✅ 参加" in m.text,
                         "notice not edited")
    await bot.idle()
    # The handler showed it at once and the outbox's edit changed nothing more ("not modified" is done).
    assert fake.message(2501, nudge.message_id).edits == 1  # type: ignore[union-attr]
    rows = await bot.core.db.fetchall("SELECT status FROM outbox WHERE purpose = 'meeting/screen'")
    assert rows and {r[0] for r in rows} == {"sent"}

    # Leave instead: both say so.
    li.press(nudge, "📝 请假")
    reasons = await fake.wait_message(2501, contains="请选一个请假原因")
    li.press(reasons, "身体不适")
    for message in (nudge, notice):
        await until(fake, 2501, message.message_id, lambda m: "👉 您的回复：📝 请假（身体不适）" in m.text,
                    "not edited")


async def open_roster(fake: FakeBotApi) -> SentMessage:
    secretary = fake.user(SECRETARY)
    secretary.send("/meetings")
    listing = await fake.wait_message(SECRETARY, contains="我的会议")
    secretary.press(listing, listing.buttons[0][0])
    card = await fake.wait_message(SECRETARY, contains="📅 会议详情")
    secretary.press(card, "👥 参会名单")
    return await until(fake, SECRETARY, card.message_id, lambda m: "❔ 未回复" in m.text, "no roster")


async def test_the_roster_fills_in_by_itself_at_most_once_a_minute(bot: BotRunner, fake: FakeBotApi) -> None:
    members = [await add_member(bot, fake, 2600 + n, f"党员{n}") for n in (1, 2, 3)]
    meeting_id = await schedule(bot, local(2026, 12, 5, 15, 0), by=SECRETARY)
    for member in members:
        await fake.wait_message(member.id, contains="📢 会议通知")
    roster = await open_roster(fake)
    assert "🔄 刷新" not in roster.button_texts and "✅ 参加（0）" in roster.text
    svc = service(bot)

    await svc.answer(2601, meeting_id, "attend")
    roster = await until(fake, SECRETARY, roster.message_id, lambda m: "✅ 参加（1）" in m.text, "roster not updated")
    edits = roster.edits
    # Two more answers within the minute: one edit, a minute after the last, with both.
    bot.clock.advance(timedelta(seconds=20))
    await svc.answer(2602, meeting_id, "leave", "出差")
    bot.clock.advance(timedelta(seconds=20))
    await svc.answer(2603, meeting_id, "attend")
    await bot.idle()
    still = fake.message(SECRETARY, roster.message_id)
    assert still is not None and still.edits == edits and "✅ 参加（1）" in still.text
    # Restart-safe: the edit waits in the database.
    await bot.restart()
    bot.clock.advance(timedelta(seconds=19))
    await bot.idle()
    assert fake.message(SECRETARY, roster.message_id).edits == edits  # type: ignore[union-attr]
    bot.clock.advance(timedelta(seconds=1))
    roster = await until(fake, SECRETARY, roster.message_id, lambda m: "✅ 参加（2）" in m.text, "roster not updated")
    assert "📝 请假（1）：党员2（出差）" in roster.text and roster.edits == edits + 1
    await bot.idle()
    assert fake.message(SECRETARY, roster.message_id).edits == edits + 1  # type: ignore[union-attr]


async def test_a_cancelled_meetings_roster_says_so_at_once(bot: BotRunner, fake: FakeBotApi) -> None:
    members = [await add_member(bot, fake, 2670 + n, f"党员{n}") for n in (1, 2)]
    meeting_id = await schedule(bot, local(2026, 12, 5, 15, 0), by=SECRETARY)
    for member in members:
        await fake.wait_message(member.id, contains="📢 会议通知")
    roster = await open_roster(fake)
    await service(bot).answer(2671, meeting_id, "attend")
    roster = await until(fake, SECRETARY, roster.message_id, lambda m: "✅ 参加（1）" in m.text, "not updated")
    await service(bot).answer(2672, meeting_id, "attend")  # waits for its minute
    await bot.idle()
    await service(bot).cancel(SECRETARY, meeting_id, "天气原因")
    roster = await until(fake, SECRETARY, roster.message_id, lambda m: "已取消" in m.text, "not updated at once")
    assert "✅ 参加（2）" in roster.text and roster.buttons == []
    await bot.idle()
    assert await bot.core.db.fetchval(
        "SELECT COUNT(*) FROM outbox WHERE purpose = 'meeting/screen' AND status = 'pending'") == 0


async def test_the_roster_stops_when_the_organiser_moves_on(bot: BotRunner, fake: FakeBotApi) -> None:
    member = await add_member(bot, fake, 2651, "党员1")
    meeting_id = await schedule(bot, local(2026, 12, 5, 15, 0), by=SECRETARY)
    await fake.wait_message(member.id, contains="📢 会议通知")
    roster = await open_roster(fake)
    fake.user(SECRETARY).press(roster, "⬅️ 返回")
    await until(fake, SECRETARY, roster.message_id, lambda m: "📅 会议详情" in m.text, "not back to the card")
    await service(bot).answer(2651, meeting_id, "attend")
    await bot.idle()
    assert "📅 会议详情" in fake.message(SECRETARY, roster.message_id).text  # type: ignore[union-attr]


# --------------------------------------------------------------------------- delivery

async def test_edits_go_after_new_messages(bot: BotRunner, fake: FakeBotApi) -> None:
    villager = await resident(bot, fake, 2001)
    await submitted(bot, fake, villager, "村口路灯坏了一个月了")
    await bot.core.tickets.ask_info(SECRETARY, 1, "是哪个路口？")
    asked = await fake.wait_message(villager.id, contains="书记需要您补充", timeout=WAIT)
    await bot.idle()
    fake.clear_calls()
    # One transaction queues the edit of the question first, then the answer: the answer goes first.
    await bot.core.tickets.answer(SECRETARY, 1, [Item("text", "已经修好了")])
    await fake.wait_message(villager.id, contains="有答复了", timeout=WAIT)
    await until(fake, villager.id, asked.message_id, lambda m: not m.buttons, "question not edited")
    rows = await bot.core.db.fetchall(
        "SELECT method, priority FROM outbox WHERE recipient = ? AND purpose IN ('ticket/screen', 'ticket/resident')"
        " ORDER BY id DESC LIMIT 2", (villager.id,))
    assert [tuple(r) for r in rows] == [("sendMessage", int(Priority.NORMAL)), ("editMessageText", int(Priority.EDIT))]
    calls = [c.method for c in fake.calls if c.params.get("chat_id") == villager.id
             and c.method in ("sendMessage", "editMessageText")]
    assert calls == ["sendMessage", "editMessageText"]


async def test_a_deleted_message_or_a_blocked_reader_does_not_loop(bot: BotRunner, fake: FakeBotApi) -> None:
    villager = await resident(bot, fake, 2001)
    other = await resident(bot, fake, 2002, "小李")
    tickets = bot.core.tickets
    await submitted(bot, fake, villager, "村口路灯坏了")
    await submitted(bot, fake, other, "水管漏水")
    for ticket_id in (1, 2):
        await tickets.ask_info(SECRETARY, ticket_id, "是哪里？")
    asked = await fake.wait_message(villager.id, contains="书记需要您补充", timeout=WAIT)
    await fake.wait_message(other.id, contains="书记需要您补充", timeout=WAIT)
    # One deletes the question (the fake does what Telegram does); the other blocks the bot.
    fake._messages[villager.id].pop(asked.message_id).deleted = True
    other.block()
    await bot.idle()
    for ticket_id in (1, 2):
        await tickets.answer(SECRETARY, ticket_id, [Item("text", "已经修好了")])
    await fake.wait_message(villager.id, contains="有答复了", timeout=WAIT)
    await bot.idle()
    failed = await bot.core.db.fetchall(
        "SELECT subject_id, attempts, last_error FROM outbox WHERE purpose = 'ticket/screen' AND status = 'failed'")
    assert [(r[0], r[1]) for r in failed] == [(1, 1)] and "message to edit not found" in failed[0][2].lower()
    blocked = await bot.core.db.fetchval(
        "SELECT COUNT(*) FROM outbox WHERE purpose = 'ticket/screen' AND subject_id = 2 AND status = 'blocked'")
    assert blocked == 1
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM outbox WHERE status = 'pending'") == 0
    # The secretary's cards were edited all the same; the gone message is forgotten, not tried again.
    for ticket_id in (1, 2):
        assert await until_card(bot, fake, ticket_id)
    await tickets.rate(villager.id, 1, "good")
    await bot.idle()
    assert len(await bot.core.db.fetchall(
        "SELECT 1 FROM outbox WHERE purpose = 'ticket/screen' AND status = 'failed'")) == 1


async def until_card(bot: BotRunner, fake: FakeBotApi, ticket_id: int) -> bool:
    key = await bot.core.db.fetchval(
        "SELECT dedup_key FROM outbox WHERE purpose = 'ticket/card' AND subject_id = ?", (ticket_id,))
    message_id = await bot.core.db.fetchval("SELECT message_id FROM outbox WHERE dedup_key = ?", (key,))
    await until(fake, SECRETARY, message_id, lambda m: "状态：已答复" in m.text, "card not edited")
    return True


# --------------------------------------------------------------------------- one word for one state

async def test_one_status_word_for_each_state_and_every_reader(bot: BotRunner, fake: FakeBotApi) -> None:
    villager = await resident(bot, fake, 2001)
    secretary = fake.user(SECRETARY, first_name="王建国")
    tickets = bot.core.tickets
    ticket = await tickets.submit(villager.id, [Item("text", "村口路灯坏了")], "infrastructure", True, False)
    t = bot.core.t
    for lang in ("zh_CN", "en"):
        words = [status_word(t, lang, s) for s in Status]
        assert len(set(words)) == len(Status), words  # no two states share a word
    for state in Status:
        await bot.core.db.write("UPDATE tickets SET status = ? WHERE id = ?", (state.value, ticket.id))
        for lang in ("zh_CN", "en"):
            word = status_word(t, lang, state)
            mine = await tickets.view(villager.id, ticket.id, lang)
            theirs = await tickets.view(SECRETARY, ticket.id, lang)
            card = await tickets._card(None, await tickets.get(SECRETARY, ticket.id), lang)
            assert f"· {word}" in mine.texts[0].split("\n")[0], (state, lang, mine.texts[0])
            assert f"· {word}" in theirs.texts[0].split("\n")[0], (state, lang, theirs.texts[0])
            assert {"zh_CN": f"状态：{word}", "en": f"Status: {word}"}[lang] in card.split("\n"), (state, card)
        word = status_word(t, "zh_CN", state)
        villager.send("/my")
        listing = await fake.wait_message(villager.id, contains="您反映的问题")
        assert f"· {word} ·" in listing.button_texts[0], (state, listing.button_texts)
        secretary.send("/inbox")
        inbox = await fake.wait_message(SECRETARY, contains="待办问题")
        if state in (Status.NEW, Status.ACCEPTED, Status.NEED_INFO, Status.REOPENED):
            assert inbox.button_texts[0].endswith(f"· {word}"), (state, inbox.button_texts)
        else:
            assert inbox.button_texts == []


async def test_a_message_not_sent_yet_is_rewritten_and_no_change_means_no_edit(
        bot: BotRunner, fake: FakeBotApi) -> None:
    fake.user(SECRETARY)
    await add_member(bot, fake, 2801, "张三")
    meeting_id = await schedule(bot, local(2026, 12, 5, 15, 0))
    await fake.wait_message(2801, contains="📢 会议通知")
    await bot.idle()
    # The reminders wait for their time: answering rewrites them, with no edit.
    await service(bot).answer(2801, meeting_id, "attend")
    await bot.idle()
    reminders = await bot.core.db.fetchall(
        "SELECT payload FROM outbox WHERE purpose = 'meeting/reminder' AND recipient = 2801 AND status = 'pending'")
    assert reminders and all("👉 您的回复：✅ 参加" in r[0] for r in reminders)
    edits = await bot.core.db.fetchall(
        "SELECT dedup_key FROM outbox WHERE purpose = 'meeting/screen' AND recipient = 2801")
    assert len(edits) == 1  # the notice's, only
    # Nothing changed: nothing is queued.
    async with bot.core.db.transaction() as tx:
        assert await bot.core.screens.refresh(tx, "meeting", meeting_id) == 0
    await settle(bot, local(2026, 12, 4, 15, 0))
    reminder = await fake.wait_message(2801, contains="⏰ 会议提醒")
    assert "👉 您的回复：✅ 参加" in reminder.text and reminder.edits == 0
