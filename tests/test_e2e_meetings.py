"""End to end: meetings as people see them in their chats, through the fake Bot API, with the
settable clock (START is Friday 2026-11-27, 09:00 in Shanghai).

The sample tree: 中共丹凤县委 → 龙驹寨街道党工委 (organizer 1002 李明) → 三义村党支部 (secretary 1001
王建国) and 二郎村党支部 (secretary 1003 赵强). Each test adds the party members it needs.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from orgtree import ERLANG_SECRETARY, SECRETARY, in_use_from
from orgtree import TOWN_ORG as ORGANIZER

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.callbacks import (
    MEETING_FLOW,
    MEETING_MANAGE,
    MEETING_MEMBER,
    MEETING_QUOTA,
    MEETING_SETTINGS,
    FlowAction,
    ManageAction,
    MemberAction,
    SettingsAction,
)
from bot.clock import SettableClock
from bot.services.meeting_ics import unfold
from bot.services.meeting_time import Rule
from bot.services.meetings import Draft, MeetingService, SeriesSpec
from conftest import BotRunner

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def service(bot: BotRunner) -> MeetingService:
    return bot.core.meetings


async def add_member(bot: BotRunner, fake: FakeBotApi, user_id: int, name: str, org: str = "sanyi") -> FakeUser:
    user = fake.user(user_id, first_name=name)
    target = await bot.core.orgs.by_code(org)
    assert target is not None
    async with bot.core.db.transaction() as tx:
        await bot.core.people.ensure(tx, user_id, name)
        await bot.core.orgs.grant(tx, person_id=user_id, org_id=target.id, role="member", actor_id=None,
                                  source="test")
    return user


async def settle(bot: BotRunner, when: datetime) -> None:
    """Move the clock, run every periodic job, and wait until the outbox has drained what is due."""
    bot.clock.set(when)
    await bot.ticks()


async def edited(fake: FakeBotApi, message: SentMessage, contains: str) -> SentMessage:
    """Wait until this message (edited in place after a button press) shows `contains`."""
    def ready() -> bool:
        current = fake.message(message.chat_id, message.message_id)
        return current is not None and current.has(contains)

    await fake.wait_for(ready, message=f"message {message.message_id} never showed {contains!r}")
    current = fake.message(message.chat_id, message.message_id)
    assert current is not None
    return current


async def alert_text(fake: FakeBotApi, press: dict[str, Any]) -> str:
    answer = await fake.wait_callback_answer(press)
    return str(answer.get("text") or "")


async def outbox_keys(bot: BotRunner, prefix: str, status: str | None = None) -> list[str]:
    sql = "SELECT dedup_key FROM outbox WHERE dedup_key LIKE ?" + (" AND status = ?" if status else "")
    params: tuple[Any, ...] = (prefix + "%", status) if status else (prefix + "%",)
    return sorted(r[0] for r in await bot.core.db.fetchall(sql, params))


def texts_with(fake: FakeBotApi, chat_id: int, needle: str) -> list[str]:
    return [m.text for m in fake.history(chat_id) if needle in m.text]


async def schedule(bot: BotRunner, start: datetime, *, by: int = SECRETARY, kind: str = "general_meeting",
                   org: str = "sanyi", place: str = "村委会会议室", topic: str = "学习党章") -> int:
    target = await bot.core.orgs.by_code(org)
    assert target is not None
    created = await service(bot).create(by, Draft(kind=kind, org_id=target.id, starts_at=start,
                                                  ends_at=start + timedelta(hours=2), place=place, topic=topic))
    return created.meeting.id


# --------------------------------------------------------------------------- the whole journey

async def test_schedule_notice_answers_reminders_checkin_minutes_and_ledger(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    zhang = await add_member(bot, fake, 2101, "张三")
    li = await add_member(bot, fake, 2102, "李四")
    wang = await add_member(bot, fake, 2103, "王五")

    # /newmeeting: kind → (one org, so no org step) → date → hour → length → place → topic → confirm.
    secretary.send("/newmeeting")
    step = await fake.wait_message(SECRETARY, contains="请选择会议类型")
    secretary.press(step, "支部党员大会")
    step = await fake.wait_text(SECRETARY, "请选择开会日期")
    secretary.press(step, MEETING_FLOW(FlowAction.DAY, 20261205))
    step = await fake.wait_text(SECRETARY, "几点开会")
    secretary.press(step, "下午3:00")
    step = await fake.wait_text(SECRETARY, "开多长时间")
    assert step.button_texts == ["1小时", "1.5小时", "2小时", "半天（4小时）", "✖️ 不安排了"]
    secretary.press(step, "2小时")
    await fake.wait_text(SECRETARY, "请输入开会地点")
    secretary.send("村委会会议室")
    await fake.wait_message(SECRETARY, contains="请输入会议议题")
    secretary.send("学习党的二十届四中全会精神")
    confirm = await fake.wait_message(SECRETARY, contains="请核对会议信息")
    assert "时间：12月5日（周六）下午3:00—5:00" in confirm.text
    assert "应到 4 人" in confirm.text
    assert fake.texts(2101) == []  # nothing is sent before the confirmation
    secretary.press(confirm, "✅ 确认，发通知")
    await fake.wait_text(SECRETARY, "✅ 会议已安排，正在通知 3 人。")
    meeting_id = await bot.core.db.fetchval("SELECT MAX(id) FROM meetings")

    # The notice, with its buttons, to everyone invited but the secretary who scheduled it.
    notices = {u.id: await fake.wait_message(u.id, contains="📢 会议通知") for u in (zhang, li, wang)}
    for notice in notices.values():
        assert "地点：村委会会议室" in notice.text and "议题：学习党的二十届四中全会精神" in notice.text
        assert notice.button_texts == ["✅ 参加", "📝 请假", "📆 加入手机日历"]
    assert texts_with(fake, SECRETARY, "📢 会议通知") == []

    # Attend; leave with a picked reason; the calendar file.
    press = zhang.press(notices[2101], "✅ 参加")
    assert await alert_text(fake, press) == "已回复：参加。谢谢！"
    await fake.wait_text(2101, "👉 您的回复：✅ 参加")
    li.press(notices[2102], "📝 请假")
    reasons = await fake.wait_message(2102, contains="请选一个请假原因")
    li.press(reasons, "身体不适")
    await fake.wait_text(2102, "已请假：身体不适")
    wang.press(notices[2103], "📆 加入手机日历")
    ics = await fake.wait_message(2103, contains="手机日历")
    assert ics.document is not None and ics.document[0] == "支部党员大会-12月5日.ics"
    lines = unfold(ics.document[1])
    assert "DTSTART:20261205T070000Z" in lines and "LOCATION:村委会会议室" in lines
    assert "SUMMARY:支部党员大会：学习党的二十届四中全会精神" in lines

    # The 1-day reminder at 15:00 the day before, to all but the one on leave; not a minute early.
    await settle(bot, local(2026, 12, 4, 14, 59))
    assert texts_with(fake, 2101, "会议提醒") == []
    await settle(bot, local(2026, 12, 4, 15, 0))
    for uid in (SECRETARY, 2101, 2103):
        reminder = await fake.wait_message(uid, contains="⏰ 会议提醒：明天下午3:00开会")
        assert reminder.button_texts[0] == "📍 签到"
    assert texts_with(fake, 2102, "会议提醒") == []
    # The 2-hour reminder at 13:00 on the day.
    await settle(bot, local(2026, 12, 5, 13, 0))
    for uid in (SECRETARY, 2101, 2103):
        await fake.wait_message(uid, contains="⏰ 会议提醒：今天下午3:00开会")
    assert texts_with(fake, 2102, "会议提醒") == []

    # Check-in before the window: refused, nothing recorded. From 14:30: recorded.
    reminder = fake.last(2101)
    press = zhang.press(reminder, "📍 签到")
    assert "还没到签到时间" in await alert_text(fake, press)
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM meeting_attendees WHERE checked_in_at IS NOT NULL") == 0
    await settle(bot, local(2026, 12, 5, 14, 40))
    press = zhang.press(reminder, "📍 签到")
    assert "签到成功" in await alert_text(fake, press)
    wang.send("/checkin")
    await fake.wait_message(2103, contains="📍 签到成功：学习党的二十届四中全会精神")
    secretary.send("/checkin")
    await fake.wait_message(SECRETARY, contains="签到成功")

    # After the meeting: answers are closed; the roster, minutes (text and a photo), close as held.
    await settle(bot, local(2026, 12, 5, 17, 30))
    assert fake.message(2102, notices[2102].message_id).buttons == []  # type: ignore[union-attr]
    press = li.press_data(notices[2102].message_id, str(notices[2102].button("✅ 参加")[1]))  # an old client
    assert await alert_text(fake, press) == "会议已经开始了，不能再改。"
    secretary.send("/meetings")
    listing = await fake.wait_message(SECRETARY, contains="我负责的会议")
    secretary.press(listing, listing.buttons[0][0])
    card = await fake.wait_message(SECRETARY, contains="📅 会议详情")
    secretary.press(card, "👥 参会名单")
    roster = await fake.wait_text(SECRETARY, "👥 支部党员大会")
    assert "📍 已到会（3）" in roster.text and "📝 请假（1）：李四（身体不适）" in roster.text
    secretary.press(roster, "⬅️ 返回")
    card = await edited(fake, roster, "📅 会议详情")
    secretary.press(card, "📝 会议记录")
    await fake.wait_message(SECRETARY, contains="请发会议记录")
    secretary.send("会议学习了全会精神，讨论了冬季防火。")
    await fake.wait_message(SECRETARY, contains="文字1条")
    secretary.send_photo(caption="会场照片")
    saved = await fake.wait_message(SECRETARY, contains="照片1张")
    secretary.press(saved, "✅ 结束会议（已召开）")
    closed = await fake.wait_text(SECRETARY, "已结束并归档")
    assert "到会3人" in closed.text and "请假" in closed.text
    assert await bot.core.db.fetchval("SELECT status FROM meetings WHERE id = ?", (meeting_id,)) == "held"

    # The ledger for the quarter, as an Excel file.
    secretary.send("/ledger 2026Q4")
    ledger = await fake.wait_message(SECRETARY, contains="会议台账")
    assert ledger.document is not None and ledger.document[0] == "台账-三义村党支部-2026年第4季度.xlsx"
    book = load_workbook(io.BytesIO(ledger.document[1]))
    assert book.sheetnames[0] == "汇总" and "支部党员大会" in book.sheetnames
    sheet = book["支部党员大会"]
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert row["日期"] == "2026年12月5日（周六）"
    assert row["议题"] == "学习党的二十届四中全会精神" and row["地点"] == "村委会会议室"
    assert row["应到人数"] == 4 and row["实到人数"] == 3
    assert row["请假人员（原因）"] == "李四（身体不适）" and row["缺席人员"] in (None, "")
    assert "冬季防火" in row["会议记录摘要"] and "照片1张" in row["会议记录摘要"]
    assert row["状态"] == "已召开"
    summary = book["汇总"]
    rows = [[c.value for c in r] for r in summary.iter_rows(min_row=5)]
    assert ["2026年第4季度", "支部党员大会", "—", 1, "已完成"] in rows
    assert ["2026年12月", "主题党日", 1, 0, "进行中"] in rows


# --------------------------------------------------------------------------- bad input

async def test_bad_input_gets_a_clear_message_and_changes_nothing(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    stranger = await add_member(bot, fake, 2201, "外村党员", org="erlang")
    secretary.send("/newmeeting")
    step = await fake.wait_message(SECRETARY, contains="请选择会议类型")
    secretary.press(step, "党课")
    await fake.wait_text(SECRETARY, "请选择开会日期")
    for typed, answer in (("下周吧", "没看懂这个时间"), ("2026-11-20 15:00", "这个时间已经过去了"),
                          ("2030-01-01 09:00", "时间太远了"), ("12月5日 17:00-15:00", "结束时间要晚于开始时间")):
        secretary.send(typed)
        assert answer in (await fake.wait_message(SECRETARY)).text
    secretary.send("12月6日 上午9点")
    await fake.wait_message(SECRETARY, contains="开多长时间")
    secretary.send("一会儿")
    assert "没看懂开多长时间" in (await fake.wait_message(SECRETARY)).text
    secretary.send("13个小时")
    assert "一次会议最长 12 小时" in (await fake.wait_message(SECRETARY)).text
    secretary.send("1个半小时")
    await fake.wait_message(SECRETARY, contains="请输入开会地点")
    secretary.send("地" * 101)
    assert "地点太长了（101个字），最多100个字" in (await fake.wait_message(SECRETARY)).text
    secretary.send("党员活动室")
    await fake.wait_message(SECRETARY, contains="请输入党课题目")
    secretary.send("题" * 501)
    assert "议题太长了（501个字），最多500个字" in (await fake.wait_message(SECRETARY)).text
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM meetings") == 0
    secretary.send("不忘初心")
    step = await fake.wait_message(SECRETARY, contains="主讲人")
    secretary.press(step, "🎤 我来讲")
    confirm = await fake.wait_text(SECRETARY, "主讲：王建国")
    secretary.press(confirm, "✅ 确认，发通知")
    await fake.wait_text(SECRETARY, "正在通知")
    meeting_id = await bot.core.db.fetchval("SELECT MAX(id) FROM meetings")
    await bot.idle()

    # A member of another branch forges the buttons of a meeting they were not invited to.
    before = await bot.core.db.fetchall("SELECT * FROM meeting_attendees ORDER BY person_id")
    for member_action in (MemberAction.ATTEND, MemberAction.LEAVE, MemberAction.CHECKIN, MemberAction.CALENDAR):
        press = stranger.press_data(1, MEETING_MEMBER(member_action, meeting_id))
        assert "不在这次会议的通知名单里" in await alert_text(fake, press)
    for manage_action in (ManageAction.ROSTER, ManageAction.CANCEL, ManageAction.NUDGE, ManageAction.MINUTES):
        press = stranger.press_data(1, MEETING_MANAGE(manage_action, meeting_id))
        assert await alert_text(fake, press) == "您没有权限进行这项操作。"
    # A button sent before the callback codec still works for the person it was for, and only for them.
    assert "不在这次会议的通知名单里" in await alert_text(fake, stranger.press_data(1, f"mt:a:{meeting_id}"))
    assert await alert_text(fake, stranger.press_data(1, f"mt:r:{meeting_id}")) == "这个按钮已失效，请重新操作。"
    for data in ("mtm:a:999999", "mtm:zz:1", "mtm:a:abc", "mtf:ok", "mtk:1", "mst:so:abc"):
        press = stranger.press_data(1, data)
        assert await alert_text(fake, press) in ("找不到这个会议，可能已经删除了。", "这个按钮已失效，请重新操作。")
    assert [tuple(r) for r in await bot.core.db.fetchall(
        "SELECT * FROM meeting_attendees ORDER BY person_id")] == [tuple(r) for r in before]
    assert fake.texts(2201) == []


# --------------------------------------------------------------------------- edit and cancel

async def test_edit_moves_reminders_and_cancel_stops_them(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    zhang = await add_member(bot, fake, 2301, "张三")
    meeting_id = await schedule(bot, local(2026, 12, 5, 15, 0))
    notice = await fake.wait_message(2301, contains="📢 会议通知")

    # The secretary moves it to 12月8日 09:00 through the card's buttons, with a typed reason.
    secretary.send("/meetings")
    listing = await fake.wait_message(SECRETARY, contains="我的会议")
    secretary.press(listing, listing.buttons[0][0])
    card = await fake.wait_message(SECRETARY, contains="📅 会议详情")
    secretary.press(card, "✏️ 修改")
    menu = await fake.wait_text(SECRETARY, "要修改什么")
    secretary.press(menu, "🕒 时间")
    step = await fake.wait_message(SECRETARY, contains="请选择新的日期")
    secretary.press(step, MEETING_FLOW(FlowAction.DAY, 20261208))
    step = await fake.wait_text(SECRETARY, "几点开会")
    secretary.press(step, "上午9:00")
    await fake.wait_text(SECRETARY, "请输入修改原因")
    secretary.send("与镇里的会冲突")
    card = await fake.wait_message(SECRETARY, contains="✅ 已修改，已告诉 1 人")
    change = await fake.wait_message(2301, contains="✏️ 会议有变动")
    assert "时间：12月5日（周六）下午3:00—5:00 → 12月8日（周二）上午9:00—11:00" in change.text
    assert "原因：与镇里的会冲突" in change.text

    # Only the new time's reminders remain: none on 4 Dec, one on 7 Dec at 09:00.
    assert await outbox_keys(bot, f"mt:{meeting_id}:r", "pending") == sorted(
        [f"mt:{meeting_id}:r2:{SECRETARY}:1440", f"mt:{meeting_id}:r2:{SECRETARY}:120",
         f"mt:{meeting_id}:r2:2301:1440", f"mt:{meeting_id}:r2:2301:120"])
    await settle(bot, local(2026, 12, 4, 15, 0))
    assert texts_with(fake, 2301, "会议提醒") == []
    await settle(bot, local(2026, 12, 7, 9, 0))
    await fake.wait_message(2301, contains="⏰ 会议提醒：明天上午9:00开会")
    assert len(texts_with(fake, 2301, "会议提醒")) == 1

    # Cancel with a picked reason: the member is told, the old buttons now say so, nothing else comes.
    secretary.press(card, "🚫 取消会议")
    ask = await fake.wait_message(SECRETARY, contains="请选择或输入取消原因")
    secretary.press(ask, "天气原因")
    await fake.wait_text(SECRETARY, "已取消「学习党章」，已告诉 1 人")
    cancelled = await fake.wait_message(2301, contains="🚫 会议取消了")
    assert "原因：天气原因" in cancelled.text
    press = zhang.press_data(notice.message_id, str(notice.button("✅ 参加")[1]))  # an old client
    assert await alert_text(fake, press) == "这次会议已经取消了（原因：天气原因）。"
    assert await bot.core.db.fetchval(
        "SELECT answer FROM meeting_attendees WHERE meeting_id = ? AND person_id = 2301", (meeting_id,)) is None
    assert await outbox_keys(bot, f"mt:{meeting_id}:r", "pending") == []
    await settle(bot, local(2026, 12, 8, 7, 0))
    assert len(texts_with(fake, 2301, "会议提醒")) == 1


async def test_edits_tell_members_at_most_three_times_a_day(bot: BotRunner, fake: FakeBotApi) -> None:
    """A secretary who keeps moving the meeting cannot flood the members: three rounds of change
    notices a day; the fourth change applies quietly, and /meetings shows it."""
    secretary = fake.user(SECRETARY, first_name="王建国")
    zhang = await add_member(bot, fake, 2351, "张三")
    meeting_id = await schedule(bot, local(2026, 12, 5, 15, 0))
    notice = await fake.wait_message(2351, contains="📢 会议通知")
    # A button in the old format (sent before the callback codec) still answers for its person.
    assert await alert_text(fake, zhang.press_data(notice.message_id, f"mt:a:{meeting_id}")) == "已回复：参加。谢谢！"
    assert await bot.core.db.fetchval("SELECT answer FROM meeting_attendees WHERE person_id = 2351") == "attend"
    secretary.send("/meetings")
    listing = await fake.wait_message(SECRETARY, contains="我的会议")
    secretary.press(listing, listing.buttons[0][0])
    card = await fake.wait_message(SECRETARY, contains="📅 会议详情")
    for round_, place in enumerate(["党员活动室", "村小学", "文化广场", "祠堂"], start=1):
        secretary.press(card, "✏️ 修改")
        menu = await edited(fake, card, "要修改什么")
        secretary.press(menu, "🏠 地点")
        await fake.wait_message(SECRETARY, contains="请输入新的地点")
        secretary.send(place)
        ask = await fake.wait_message(SECRETARY, contains="请输入修改原因")
        secretary.press(ask, "不写原因")
        card = await edited(fake, ask, f"地点：{place}")
        if round_ <= 3:
            assert "✅ 已修改，已告诉 1 人" in card.text
            change = await fake.wait_message(2351, contains="✏️ 会议有变动")
            assert f"→ {place}" in change.text
        else:
            assert "今天已经发过三次变更通知" in card.text
    await bot.idle()
    assert len(texts_with(fake, 2351, "会议有变动")) == 3
    # No new message says so; the earlier ones, kept true, are edited (quietly: an edit does not ring).
    assert all(m.edits > 0 for m in fake.history(2351) if "祠堂" in m.text)
    zhang.send("/meetings")
    mine = await fake.wait_message(2351, contains="我的会议")
    assert "祠堂" in mine.text


# --------------------------------------------------------------------------- quiet hours

async def test_reminders_in_quiet_hours_go_the_evening_before(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    fake.user(SECRETARY)
    await add_member(bot, fake, 2401, "张三")
    await schedule(bot, local(2026, 12, 5, 7, 30), topic="早会")
    await fake.wait_message(2401, contains="📢 会议通知")
    # 1 day before is 07:30 on the 4th (allowed); 2 hours before is 05:30, inside 22:00–07:00, so it
    # goes at 21:59 on the 4th — the end of the allowed window before it, not after.
    await settle(bot, local(2026, 12, 4, 7, 30))
    first = await fake.wait_message(2401, contains="⏰ 会议提醒：明天早上7:30开会")
    await settle(bot, local(2026, 12, 4, 21, 58, 59))
    assert len(texts_with(fake, 2401, "会议提醒")) == 1
    await settle(bot, local(2026, 12, 4, 21, 59))
    second = await fake.wait_message(2401, contains="⏰ 会议提醒：明天早上7:30开会")
    assert second.message_id != first.message_id
    await settle(bot, local(2026, 12, 5, 7, 0))
    assert len(texts_with(fake, 2401, "会议提醒")) == 2
    sent = [c for c in fake.calls_to("sendMessage") if c.ok and c.params["chat_id"] == 2401]
    assert len(sent) == 3


# --------------------------------------------------------------------------- a restart

async def test_a_restart_between_scheduling_and_the_reminder_loses_nothing_and_sends_once(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    fake.user(SECRETARY)
    await add_member(bot, fake, 2501, "张三")
    meeting_id = await schedule(bot, local(2026, 12, 5, 15, 0))
    await fake.wait_message(2501, contains="📢 会议通知")
    await bot.restart()
    await settle(bot, local(2026, 12, 4, 15, 0))
    await fake.wait_message(2501, contains="⏰ 会议提醒：明天下午3:00开会")
    await bot.restart()
    await settle(bot, local(2026, 12, 4, 15, 5))
    assert len(texts_with(fake, 2501, "会议提醒")) == 1
    assert await outbox_keys(bot, f"mt:{meeting_id}:r1:2501:1440", "sent") == [f"mt:{meeting_id}:r1:2501:1440"]

    # Down from before the 2-hour reminder until after the start: that reminder is never sent late.
    await bot.stop()
    clock.set(local(2026, 12, 5, 15, 10))
    await bot.start()
    await bot.ticks()
    assert len(texts_with(fake, 2501, "会议提醒")) == 1
    assert await outbox_keys(bot, f"mt:{meeting_id}:r1:2501:120", "cancelled") == [f"mt:{meeting_id}:r1:2501:120"]


# --------------------------------------------------------------------------- recurring series

async def test_a_monthly_series_across_national_day_make_up_days_and_an_unknown_year(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    organizer = fake.user(ORGANIZER, first_name="李明")
    fake.user(SECRETARY)
    fake.user(ERLANG_SECRETARY)
    await settle(bot, local(2026, 9, 15, 10, 0))
    # Reminders are switched off for the township and everything below (the setting is inherited):
    # this test is about the dates; the clock jumps over many meetings.
    township = await bot.core.orgs.by_code("longjuzhai")
    assert township is not None
    for minutes in (1440, 120):
        await service(bot).toggle_offset(ORGANIZER, township.id, minutes)
    assert await service(bot).reminder_offsets((await bot.core.orgs.by_code("erlang")).id) == []  # type: ignore[union-attr]

    # The organizer sets up "月例会 on the 1st at 09:00" for the township and every org below.
    organizer.send("/newmeeting")
    step = await fake.wait_message(ORGANIZER, contains="请选择会议类型")
    organizer.press(step, "月例会")
    step = await fake.wait_text(ORGANIZER, "请选择组织")
    organizer.press(step, "龙驹寨街道党工委")
    step = await fake.wait_text(ORGANIZER, "这次会议通知谁")
    organizer.press(step, "通知「龙驹寨街道党工委」和下面所有组织")
    await fake.wait_text(ORGANIZER, "请选择开会日期")
    organizer.send("10月1日 上午9点")
    step = await fake.wait_message(ORGANIZER, contains="开多长时间")
    organizer.press(step, "半天（4小时）")
    await fake.wait_text(ORGANIZER, "请输入开会地点")
    organizer.send("街道办三楼会议室")
    await fake.wait_message(ORGANIZER, contains="请输入会议议题")
    organizer.send("基层党建工作月例会")
    confirm = await fake.wait_message(ORGANIZER, contains="请核对会议信息")
    organizer.press(confirm, "🔁 设为每月重复")
    repeat = await fake.wait_text(ORGANIZER, "怎样重复")
    assert "重复：每月1日 上午9:00；遇到节假日：顺延到下一个工作日；提前7天通知" in repeat.text
    organizer.press(repeat, "✅ 好了")
    confirm = await fake.wait_text(ORGANIZER, "应到")
    organizer.press(confirm, "✅ 确认，发通知")
    done = await fake.wait_text(ORGANIZER, "已设为每月重复")
    # 1 October is National Day: the first meeting moves to Thursday 8 October, announced on 1 October.
    assert "第一次会议在10月8日（周四），10月1日（周四）会自动通知大家" in done.text
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM meetings") == 0

    # A second series, on the 10th: 10 October 2026 is a Saturday worked in exchange (调休), so it stays.
    longjuzhai = await bot.core.orgs.by_code("sanyi")
    assert longjuzhai is not None
    start = local(2026, 10, 10, 15, 0)
    await service(bot).create_series(SECRETARY, Draft(
        kind="theme_day", org_id=longjuzhai.id, starts_at=start, ends_at=start + timedelta(hours=2),
        place="村委会", topic="主题党日"), SeriesSpec(rule=Rule("monthday", day=10)))

    await settle(bot, local(2026, 9, 30, 23, 0))
    assert texts_with(fake, SECRETARY, "会议通知") == []
    await settle(bot, local(2026, 10, 1, 7, 0))
    notice = await fake.wait_message(SECRETARY, contains="📢 会议通知")
    assert "会议：月例会" in notice.text and "时间：10月8日（周四）上午9:00" in notice.text
    await fake.wait_message(ERLANG_SECRETARY, contains="时间：10月8日（周四）上午9:00")
    await settle(bot, local(2026, 10, 3, 9, 0))
    notice = await fake.wait_message(SECRETARY, contains="📢 会议通知")
    assert "会议：主题党日" in notice.text and "时间：10月10日（周六）下午3:00" in notice.text

    # 1 November is a Sunday → Monday 2 November; 10 November is a Tuesday.
    for when, expected in ((local(2026, 10, 26, 9, 0), "时间：11月2日（周一）上午9:00"),
                           (local(2026, 11, 3, 9, 0), "时间：11月10日（周二）下午3:00"),
                           (local(2026, 11, 24, 9, 0), "时间：12月1日（周二）上午9:00"),
                           (local(2026, 12, 3, 9, 0), "时间：12月10日（周四）下午3:00")):
        await settle(bot, when)
        assert expected in (await fake.wait_message(SECRETARY, contains="📢 会议通知")).text

    # 2027 is not in the holidays package yet: Monday to Friday count as working days, so Friday
    # 1 January stays (an admin can load the official list), and Sunday 10 January moves to the 11th.
    await settle(bot, local(2026, 12, 25, 9, 0))
    assert "时间：2027年1月1日（周五）上午9:00" in (
        await fake.wait_message(SECRETARY, contains="📢 会议通知")).text
    await settle(bot, local(2027, 1, 4, 9, 0))
    assert "时间：1月11日（周一）下午3:00" in (
        await fake.wait_message(SECRETARY, contains="📢 会议通知")).text

    # Each occurrence exists once, however often the job ran.
    rows = await bot.core.db.fetchall("SELECT series_id, occurrence, starts_at FROM meetings ORDER BY starts_at")
    assert [(r[1], r[2][:10]) for r in rows] == [
        ("2026-10-01", "2026-10-08"), ("2026-10-10", "2026-10-10"), ("2026-11-01", "2026-11-02"),
        ("2026-11-10", "2026-11-10"), ("2026-12-01", "2026-12-01"), ("2026-12-10", "2026-12-10"),
        ("2027-01-01", "2027-01-01"), ("2027-01-10", "2027-01-11")]
    assert len([t for t in texts_with(fake, ERLANG_SECRETARY, "📢 会议通知") if "月例会" in t]) == 4


# --------------------------------------------------------------------------- quota reminders

async def test_quota_reminders_at_a_quarters_end(bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    fake.user(SECRETARY)
    fake.user(ORGANIZER)
    fake.user(ERLANG_SECRETARY)
    await add_member(bot, fake, 2601, "张三")
    await add_member(bot, fake, 2602, "钱六", org="erlang")
    await in_use_from(bot.core, local(2026, 1, 5, 9, 0))  # so that the quarter and the year count
    # 三义 holds its quarter's general meeting (with minutes); 二郎 holds nothing.
    meeting_id = await schedule(bot, local(2026, 12, 10, 9, 0))
    await settle(bot, local(2026, 12, 10, 12, 0))
    await service(bot).add_minutes(SECRETARY, meeting_id, "text", "学习党章，讨论发展党员。")
    await service(bot).close(SECRETARY, meeting_id)

    # Seven days before the quarter ends (25 December, 09:00) each secretary hears what is still due.
    await settle(bot, local(2026, 12, 25, 8, 59))
    assert texts_with(fake, SECRETARY, "会议任务提醒") == []
    await settle(bot, local(2026, 12, 25, 9, 0))
    sanyi = await fake.wait_message(SECRETARY, contains="📋 会议任务提醒（三义村党支部）")
    assert "本季度还没有召开支部党员大会" not in sanyi.text
    assert "• 本月还没有召开支部委员会会议" in sanyi.text and "• 本季度还没有召开党课" in sanyi.text
    assert "• 本年度书记还没有讲过党课" in sanyi.text
    erlang = await fake.wait_message(ERLANG_SECRETARY, contains="📋 会议任务提醒（二郎村党支部）")
    assert "• 本季度还没有召开支部党员大会" in erlang.text
    assert "请在12月31日（周四）前召开" in erlang.text
    # Its button starts scheduling right away.
    fake.user(ERLANG_SECRETARY).press(erlang, "🗓 安排会议")
    await fake.wait_message(ERLANG_SECRETARY, contains="请选择会议类型")

    # At the quarter's end the organizer above is told what was missed, once.
    await settle(bot, local(2027, 1, 1, 9, 0))
    digest = await fake.wait_message(ORGANIZER, contains="📋 截至2026年12月31日（周四）")
    assert "• 二郎村党支部：" in digest.text and "支部党员大会（2026年第4季度）" in digest.text
    sanyi_line = next(line for line in digest.text.split("\n") if line.startswith("• 三义村党支部"))
    assert "支部党员大会" not in sanyi_line and "党课（2026年第4季度）" in sanyi_line
    await settle(bot, local(2027, 1, 1, 10, 0))
    await settle(bot, local(2027, 1, 2, 9, 0))
    assert len(texts_with(fake, ORGANIZER, "截至2026年12月31日")) == 1
    assert len(texts_with(fake, SECRETARY, "会议任务提醒")) == 1
    assert len(texts_with(fake, ERLANG_SECRETARY, "会议任务提醒")) == 1


# --------------------------------------------------------------------------- missing minutes, nudges

async def test_no_minutes_two_days_after_reminds_the_secretary_once_and_nudges(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY)
    zhang = await add_member(bot, fake, 2701, "张三")
    await add_member(bot, fake, 2702, "李四")
    meeting_id = await schedule(bot, local(2026, 12, 2, 15, 0))
    notice = await fake.wait_message(2701, contains="📢 会议通知")
    zhang.press(notice, "✅ 参加")
    await fake.wait_text(2701, "👉 您的回复")

    # One tap nudges only those who have not answered; a second tap the same day sends nothing.
    secretary.send("/meetings")
    listing = await fake.wait_message(SECRETARY, contains="我的会议")
    secretary.press(listing, listing.buttons[0][0])
    card = await fake.wait_message(SECRETARY, contains="📅 会议详情")
    secretary.press(card, "👥 参会名单")
    roster = await fake.wait_text(SECRETARY, "❔ 未回复（2）")
    # (The secretary, who has not answered either, does not nudge himself.)
    press = secretary.press(roster, "🔔 提醒未回复的人（1人）")
    assert await alert_text(fake, press) == "已提醒 1 位还没回复的人。"
    await fake.wait_message(2702, contains="🔔 您还没有回复这次会议")
    press = secretary.press(roster, "🔔 提醒未回复的人（1人）")
    assert await alert_text(fake, press) == "今天已经提醒过他们了，明天可以再提醒。"
    assert texts_with(fake, 2701, "您还没有回复") == []

    await settle(bot, local(2026, 12, 4, 16, 59))
    assert texts_with(fake, SECRETARY, "还没有会议记录") == []
    await settle(bot, local(2026, 12, 4, 17, 0))
    reminder = await fake.wait_message(SECRETARY, contains="结束已经两天了，还没有会议记录")
    assert reminder.button_texts == ["📝 会议记录"]
    await settle(bot, local(2026, 12, 6, 9, 0))
    assert len(texts_with(fake, SECRETARY, "还没有会议记录")) == 1
    secretary.press(reminder, "📝 会议记录")
    await fake.wait_message(SECRETARY, contains="请发会议记录")
    secretary.send_document("记录.pdf", b"%PDF-1.4 minutes")
    saved = await fake.wait_message(SECRETARY, contains="文件1个")
    secretary.press(saved, "✅ 结束会议（已召开）")
    await fake.wait_text(SECRETARY, "已结束并归档")
    row = await bot.core.db.fetchone("SELECT kind, file_name FROM meeting_minutes WHERE meeting_id = ?",
                                     (meeting_id,))
    assert tuple(row) == ("document", "记录.pdf")


async def test_english_speakers_get_english_notices(bot: BotRunner, fake: FakeBotApi) -> None:
    fake.user(SECRETARY)
    user = await add_member(bot, fake, 2801, "Ann")
    await bot.core.people.set_language(user.id, "en")
    await schedule(bot, datetime(2026, 12, 5, 7, 0, tzinfo=UTC))
    notice = await fake.wait_message(2801, contains="Meeting notice")
    assert re.search(r"Time: Sat, Dec 5, 3:00\sPM – 5:00\sPM\n", notice.text)  # Babel may use a narrow space
    assert notice.button_texts == ["✅ Attend", "📝 Ask for leave", "📆 Add to calendar"]



# --------------------------------------------------------------------------- settings, committee, people

async def test_settings_committee_and_adding_people(bot: BotRunner, fake: FakeBotApi) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    organizer = fake.user(ORGANIZER, first_name="李明")
    zhang = await add_member(bot, fake, 2901, "张三")
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None

    # The secretary turns on a reminder 30 minutes before; frequencies are the organizers' to change.
    secretary.send("/meetingsettings")
    screen = await fake.wait_message(SECRETARY, contains="⚙️「三义村党支部」的会议设置")
    assert "会前提醒：1天和2小时" in screen.text and "• 支部党员大会：每季度至少1次" in screen.text
    assert not [b for b in screen.button_texts if b.startswith("支部党员大会")]
    secretary.press(screen, "⬜ 30分钟")
    await edited(fake, screen, "会前提醒：1天、2小时和30分钟")
    for data in (MEETING_SETTINGS(SettingsAction.OFFSET, sanyi.id, 60), MEETING_QUOTA(sanyi.id, "general_meeting"),
                 MEETING_SETTINGS(SettingsAction.DEFAULTS, sanyi.id),
                 MEETING_SETTINGS(SettingsAction.COMMITTEE_PERSON, sanyi.id, 2901)):
        assert await alert_text(fake, zhang.press_data(1, data)) == "您没有权限进行这项操作。"
    assert await service(bot).reminder_offsets(sanyi.id) == [1440, 120, 30]

    organizer.send("/meetingsettings")
    pick = await fake.wait_message(ORGANIZER, contains="设置哪个组织的会议")
    organizer.press(pick, "· 三义村党支部")
    screen = await edited(fake, pick, "会议设置")
    organizer.press(screen, "支部党员大会：每季度至少1次")
    await edited(fake, screen, "• 支部党员大会：每年至少1次")

    # The committee: 张三 becomes a committee member and is invited to committee meetings.
    secretary.send("/committee")
    committee = await fake.wait_message(SECRETARY, contains="支部委员会")
    assert committee.button_texts == ["王建国：书记", "张三：—"]
    secretary.press(committee, "张三：—")
    await fake.wait_for(lambda: fake.message(SECRETARY, committee.message_id).button_texts  # type: ignore[union-attr]
                        == ["王建国：书记", "张三：委员"])
    await schedule(bot, local(2026, 12, 3, 15, 0), kind="committee_meeting", topic="研究发展党员")
    notice = await fake.wait_message(2901, contains="📢 会议通知")
    assert "会议：支部委员会会议" in notice.text

    # The organizer adds people by id, @username or name while scheduling.
    organizer.send("/newmeeting")
    step = await fake.wait_message(ORGANIZER, contains="请选择会议类型")
    organizer.press(step, "其他会议")
    step = await edited(fake, step, "请选择组织")
    organizer.press(step, "· 二郎村党支部")
    step = await edited(fake, step, "请选择开会日期")
    organizer.press(step, MEETING_FLOW(FlowAction.DAY, 20261204))
    step = await edited(fake, step, "几点开会")
    organizer.press(step, "上午10:00")
    step = await edited(fake, step, "开多长时间")
    organizer.press(step, "1小时")
    await edited(fake, step, "请输入开会地点")
    organizer.send("村委会")
    await fake.wait_message(ORGANIZER, contains="请输入会议议题")
    organizer.send("修路协调会")
    confirm = await fake.wait_message(ORGANIZER, contains="应到 1 人")
    organizer.press(confirm, "➕ 添加参会人员")
    await edited(fake, confirm, "请输入要添加的人")
    organizer.send("张三，@nobody 不存在的人")
    confirm = await fake.wait_message(ORGANIZER, contains="应到 2 人")
    assert "已添加：张三" in confirm.text and "没找到：@nobody和不存在的人" in confirm.text
    organizer.press(confirm, "✅ 确认，发通知")
    await edited(fake, confirm, "正在通知 2 人")
    notice = await fake.wait_message(2901, contains="修路协调会")
    assert "组织：二郎村党支部" in notice.text
