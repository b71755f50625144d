"""End to end: broadcasts as people see them in their chats, through the fake Bot API, with the
settable clock (START is Friday 2026-11-27, 09:00 in Shanghai).

The sample tree: 中共丹凤县委 → 龙驹寨街道党工委 (organiser 1002 李明) → 三义村党支部 (secretary 1001
王建国, also a member there) and 二郎村党支部 (secretary 1003 赵强). Each test adds the members it needs."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from orgtree import ERLANG_SECRETARY, SECRETARY
from orgtree import TOWN_ORG as ORGANIZER

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.callbacks import BC_REMIND
from bot.clock import SettableClock, to_db
from bot.outbox import Priority
from bot.services.broadcasts import PURPOSE
from conftest import BotRunner
from schedules import run_tick

SHANGHAI = ZoneInfo("Asia/Shanghai")
HEADER = "📢 龙驹寨街道党工委"


async def add_people(bot: BotRunner, fake: FakeBotApi, first: int, n: int, org: str = "sanyi",
                     role: str = "member", chats: bool = True) -> list[FakeUser]:
    target = await bot.core.orgs.by_code(org)
    assert target is not None
    users = []
    async with bot.core.db.transaction() as tx:
        for i in range(n):
            pid = first + i
            if chats:
                users.append(fake.user(pid, first_name=f"党员{i}"))
            await bot.core.people.ensure(tx, pid, f"党员{i}")
            await bot.core.orgs.grant(tx, person_id=pid, org_id=target.id, role=role, actor_id=None, source="test")
    return users


async def edited(fake: FakeBotApi, message: SentMessage, contains: str, timeout: float = 10.0) -> SentMessage:
    def ready() -> bool:
        current = fake.message(message.chat_id, message.message_id)
        return current is not None and current.has(contains)

    await fake.wait_for(ready, timeout=timeout, message=f"message {message.message_id} never showed {contains!r}")
    current = fake.message(message.chat_id, message.message_id)
    assert current is not None
    return current


async def with_button(fake: FakeBotApi, message: SentMessage, label: str) -> SentMessage:
    def ready() -> bool:
        current = fake.message(message.chat_id, message.message_id)
        return current is not None and label in current.button_texts

    await fake.wait_for(ready, message=f"message {message.message_id} never had the button {label!r}")
    current = fake.message(message.chat_id, message.message_id)
    assert current is not None
    return current


async def alert(fake: FakeBotApi, press: dict[str, Any]) -> str:
    return str((await fake.wait_callback_answer(press)).get("text") or "")


async def compose(fake: FakeBotApi, sender: FakeUser, text: str, *, org: str | None = "龙驹寨街道党工委",
                  roles: tuple[str, ...] = ()) -> SentMessage:
    """/broadcast → (org) → (role toggles) → the content → the options screen."""
    sender.send("/broadcast")
    if org is not None:
        pick = await sender.wait_text("要发给哪个组织")
        sender.press(pick, org)
    draft = await sender.wait_text("点下面的名称选择")
    for role in roles:
        label = next(b for b in (fake.message(draft.chat_id, draft.message_id) or draft).button_texts if role in b)
        before = (fake.message(draft.chat_id, draft.message_id) or draft).edits
        sender.press(fake.message(draft.chat_id, draft.message_id) or draft, label)
        await fake.wait_for(lambda d=draft, b=before: (fake.message(d.chat_id, d.message_id) or d).edits > b)
    current = fake.message(draft.chat_id, draft.message_id) or draft
    sender.press(current, "下一步：写内容 ➡️")
    await edited(fake, draft, "请发来要群发的内容")
    sender.send(text)
    return await sender.wait_text("看过上面的样子")


def received(fake: FakeBotApi, chat_id: int, needle: str) -> list[SentMessage]:
    return [m for m in fake.history(chat_id) if needle in m.text and m.text.startswith("📢 ")]


async def test_audience_sizes_preview_send_and_final_figures(bot: BotRunner, fake: FakeBotApi) -> None:
    organiser = fake.user(ORGANIZER, first_name="李明")
    fake.user(SECRETARY, first_name="王建国")
    fake.user(ERLANG_SECRETARY, first_name="赵强")
    members = await add_people(bot, fake, 3100, 3) + await add_people(bot, fake, 3200, 1, org="erlang")
    organiser.send("/broadcast")
    pick = await organiser.wait_text("要发给哪个组织")
    assert pick.button_texts == ["龙驹寨街道党工委", "三义村党支部", "二郎村党支部"]
    organiser.press(pick, "龙驹寨街道党工委")
    draft = await organiser.wait_text("点下面的名称选择")
    # Members: the four added and the secretary of sanyi (also a member); the two secretaries.
    assert "已选 5 人" in draft.text
    assert draft.button_texts[:4] == ["☑ 党员（5人）", "☐ 书记（2人）", "☐ 群众（0人）", "☐ 组织委员（0人）"]
    organiser.press(draft, "☐ 书记（2人）")
    draft = await edited(fake, draft, "已选 6 人")
    assert "☑ 书记（2人）" in draft.button_texts
    organiser.press(draft, "下一步：写内容 ➡️")
    await edited(fake, draft, "请发来要群发的内容")
    organiser.send("下周一上午9点在街道开会，请准时参加。")
    options = await organiser.wait_text("看过上面的样子")
    assert "共 6 人" in options.text and "马上发" in options.text
    preview = [m for m in fake.history(ORGANIZER) if HEADER in m.text]
    assert len(preview) == 1
    organiser.press(options, "☐ 请大家点「收到」")
    options = await with_button(fake, options, "☑ 请大家点「收到」")
    organiser.press(options, "再看一遍")
    await fake.wait_for(lambda: len([m for m in fake.history(ORGANIZER) if HEADER in m.text]) == 2)
    preview_with_ack = [m for m in fake.history(ORGANIZER) if HEADER in m.text][-1]
    await fake.wait_for(lambda: "看过上面的样子" in fake.last(ORGANIZER).text)
    options = fake.last(ORGANIZER)
    organiser.press(options, "✅ 确认发送")
    progress = await edited(fake, options, "正在群发")
    await bot.idle()
    for chat in [m.id for m in members] + [SECRETARY, ERLANG_SECRETARY]:
        got = received(fake, chat, "准时参加")
        assert len(got) == 1, chat
        # Exactly what the preview showed.
        assert got[0].text == preview_with_ack.text
        assert got[0].button_texts == preview_with_ack.button_texts == ["✅ 收到"]
    assert not received(fake, ORGANIZER, "准时参加")[2:]  # only the two previews, no copy to the sender
    bot.clock.advance(timedelta(seconds=3))
    await bot.ticks()
    final = await edited(fake, progress, "群发完成")
    assert "发出 6 / 6 人" in final.text and "屏蔽了本助手：0 人" in final.text
    assert final.button_texts == ["👀 谁收到了"]
    # Recorded: who, audience, when, figures.
    row = await bot.core.db.fetchone("SELECT * FROM broadcasts WHERE sender_id = ?", (ORGANIZER,))
    assert row is not None
    assert (row["status"], row["roles"], row["below"], row["total"], row["sent"], row["blocked"]) == (
        "done", "member,secretary", 1, 6, 6, 0)


async def test_quiet_hours_defer_unless_urgent(bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    members = await add_people(bot, fake, 3300, 2)
    clock.set(datetime(2026, 11, 27, 23, 0, tzinfo=SHANGHAI))
    options = await compose(fake, secretary, "明早停水通知", org=None)
    assert "早上再发" in options.text and "7:00" in options.text
    secretary.press(options, "✅ 确认发送")
    progress = await edited(fake, options, "已安排好")
    await bot.ticks()
    assert not any(received(fake, m.id, "停水") for m in members)
    # Urgent: the same at night goes at once.
    options = await compose(fake, secretary, "水管爆了，马上关闸", org=None)
    secretary.press(options, "☐ 紧急（夜里也发）")
    options = await with_button(fake, options, "☑ 紧急（夜里也发）")
    assert "马上发" in options.text
    secretary.press(options, "✅ 确认发送")
    await edited(fake, options, "正在群发")
    await bot.idle()
    assert all(len(received(fake, m.id, "关闸")) == 1 for m in members)
    assert not any(received(fake, m.id, "停水") for m in members)
    # Morning: the deferred one goes.
    clock.set(datetime(2026, 11, 28, 7, 0, tzinfo=SHANGHAI))
    await bot.ticks()
    assert all(len(received(fake, m.id, "停水")) == 1 for m in members)
    clock.advance(timedelta(seconds=3))
    await bot.ticks()
    await edited(fake, progress, "群发完成")


async def test_ack_and_the_one_reminder(bot: BotRunner, fake: FakeBotApi) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    a, b, c = await add_people(bot, fake, 3400, 3)
    options = await compose(fake, secretary, "请确认收到本通知", org=None)
    secretary.press(options, "☐ 请大家点「收到」")
    options = await with_button(fake, options, "☑ 请大家点「收到」")
    secretary.press(options, "✅ 确认发送")
    await bot.idle()
    got = received(fake, a.id, "请确认收到")[0]
    assert "好的" in await alert(fake, a.press(got, "✅ 收到"))
    await with_button(fake, got, "✅ 已收到")
    assert "已经点过" in await alert(fake, a.press(fake.message(a.id, got.message_id) or got, "✅ 已收到"))
    secretary.send("/broadcasts")
    history = await secretary.wait_text("我发过的群发")
    assert "发出 3 / 3" in history.text
    secretary.press(history, next(t for t in history.button_texts if "谁收到了" in t))
    view = await secretary.wait_text("已点「收到」：1 / 3")
    assert "党员1" in view.text and "党员2" in view.text and "党员0" not in view.text
    assert "已提醒 2 人" in await alert(fake, secretary.press(view, "⏰ 提醒还没点的 2 人（只能提醒一次）"))
    await bot.idle()
    for user in (b, c):
        assert any("还没点「收到」" in m.text for m in fake.history(user.id))
    assert not any("还没点「收到」" in m.text for m in fake.history(a.id))
    # Once only: a second tap (a forged or old button) is refused and sends nothing.
    assert "已经提醒过一次" in await alert(fake, secretary.press_data(view.message_id, BC_REMIND(_bid(view))))
    await bot.idle()
    assert sum("还没点「收到」" in m.text for m in fake.history(b.id)) == 1


def _bid(view: SentMessage) -> int:
    data = [d for _, d in view.buttons if d]
    return int(data[0].split(":")[1]) if data else 1


async def test_progress_every_3s_cancel_midway_and_blocked(bot: BotRunner, fake: FakeBotApi,
                                                          clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    users = await add_people(bot, fake, 3500, 300)  # 10 s of sending: time to stop it midway
    fake.block(users[0].id)  # blocked the bot; we learn it from the 403
    options = await compose(fake, secretary, "大家好，这是一条很长的群发", org=None)
    secretary.press(options, "✅ 确认发送")
    progress = await edited(fake, options, "正在群发")
    edits = progress.edits

    def delivered() -> int:
        return sum(1 for c in fake.calls_to("sendMessage")
                   if c.ok and "很长的群发" in c.params["text"] and c.params["chat_id"] != SECRETARY)

    await fake.wait_for(lambda: delivered() >= 10, timeout=20)
    # The clock has not moved: no progress edit, however often the job runs.
    await run_tick(bot.app, "broadcasts")
    await run_tick(bot.app, "broadcasts")
    clock.advance(timedelta(seconds=2))
    await run_tick(bot.app, "broadcasts")
    assert (fake.message(SECRETARY, progress.message_id) or progress).edits == edits
    clock.advance(timedelta(seconds=1))
    await run_tick(bot.app, "broadcasts")
    midway = await edited(fake, progress, "大约还要")
    assert "/ 300 人" in midway.text
    secretary.press(midway, "⏹ 停止发送")
    await edited(fake, progress, "正在停止")
    await bot.idle()
    out = delivered()
    assert 10 <= out < 299
    clock.advance(timedelta(seconds=3))
    await bot.ticks()
    final = await edited(fake, progress, "群发已停止")
    withdrawn = 300 - out - 1
    assert f"停止前发出 {out} / 300 人" in final.text
    assert f"收回没发的：{withdrawn} 条" in final.text
    assert "屏蔽了本助手：1 人" in final.text
    await bot.idle()
    assert delivered() == out  # nothing went out after the stop
    rows = await bot.core.db.fetchall("SELECT status, COUNT(*) FROM outbox WHERE purpose = ? GROUP BY status",
                                      (PURPOSE,))
    assert dict((r[0], r[1]) for r in rows) == {"sent": out, "cancelled": withdrawn, "blocked": 1}


async def test_daily_limit_of_big_broadcasts(bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    organiser = fake.user(ORGANIZER, first_name="李明")
    await add_people(bot, fake, 500_000, 1001, chats=False)  # a big audience (nobody reads these chats)
    now = to_db(clock.now())
    sanyi = await bot.core.orgs.by_code("longjuzhai")
    assert sanyi is not None
    async with bot.core.db.transaction() as tx:
        for _ in range(3):  # three big ones earlier today
            await tx.execute(
                "INSERT INTO broadcasts (sender_id, org_id, below, roles, kind, body, status, created_at,"
                " confirmed_at, total) VALUES (?, ?, 1, 'member', 'text', '早些时候', 'done', ?, ?, 1500)",
                (ORGANIZER, sanyi.id, now, now))
    options = await compose(fake, organiser, "第四次大群发")
    assert "共 1002 人" in options.text
    answer = await alert(fake, organiser.press(options, "✅ 确认发送"))
    assert "每人每天最多发3次超过1000人的群发" in answer
    await bot.idle()
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM outbox WHERE purpose = ?", (PURPOSE,)) == 0
    # The next day it goes.
    clock.advance(timedelta(days=1))
    organiser.press(options, "✅ 确认发送")
    await edited(fake, options, "正在群发")


async def test_an_urgent_row_waits_for_one_bulk_slot_at_most(bot: BotRunner, fake: FakeBotApi) -> None:
    """A broadcast's rows are BULK: a message someone waits for (a ticket notice, an answer), queued
    while the broadcast is going out, goes before the next broadcast message."""
    fake.user(SECRETARY, first_name="王建国")
    waiting = fake.user(ERLANG_SECRETARY, first_name="赵强")
    await add_people(bot, fake, 3600, 90)
    s = bot.core.broadcasts
    b = await s.start(SECRETARY, (await bot.core.orgs.by_code("sanyi")).id)  # type: ignore[union-attr]
    await s.set_content(SECRETARY, b.id, "text", "排序测试通知")
    await s.confirm(SECRETARY, b.id)

    def bulk() -> list[float]:
        return [c.at for c in fake.calls_to("sendMessage") if c.ok and "排序测试" in c.params["text"]]

    await fake.wait_for(lambda: len(bulk()) >= 5, timeout=20)
    async with bot.core.db.transaction() as tx:
        await bot.core.outbox.send_text(tx, key="tk:99:new", chat_id=waiting.id, text="新的问题等您受理",
                                        priority=Priority.URGENT)
    queued = time.monotonic()
    await waiting.wait_text("新的问题等您受理", timeout=20)
    arrived = next(c.at for c in fake.calls_to("sendMessage") if c.ok and "新的问题" in c.params["text"])
    between = [at for at in bulk() if queued <= at <= arrived]
    # At most the one in flight when it was queued and the slot already claimed; never a batch.
    assert len(between) <= 3, len(between)
    await bot.idle()
    assert len(bulk()) == 90  # the rest of the broadcast still goes out (not to the sender)


async def test_a_photo_at_a_typed_time(bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    members = await add_people(bot, fake, 3700, 2)
    secretary.send("/broadcast")
    draft = await secretary.wait_text("点下面的名称选择")
    secretary.press(draft, "下一步：写内容 ➡️")
    await edited(fake, draft, "请发来要群发的内容")
    secretary.send_photo(caption="村口新修的路")
    options = await secretary.wait_text("看过上面的样子")
    preview = [c for c in fake.calls_to("sendPhoto") if c.ok and c.params["chat_id"] == SECRETARY]
    assert len(preview) == 1 and preview[0].params["caption"] == "📢 三义村党支部\n\n村口新修的路"
    secretary.press(options, "输入时间")
    await secretary.wait_text("请输入发送时间")
    secretary.send("等我想想")
    await secretary.wait_text("没看懂这个时间")
    secretary.send("明天上午9点")
    await fake.wait_for(lambda: all(w in fake.last(SECRETARY).text for w in ("11月28日", "上午9:00", "看过上面的样子")))
    options = fake.last(SECRETARY)
    secretary.press(options, "✅ 确认发送")
    await edited(fake, options, "已安排好")
    await bot.ticks()
    assert not [c for c in fake.calls_to("sendPhoto") if c.ok and c.params["chat_id"] != SECRETARY]
    clock.set(datetime(2026, 11, 28, 9, 0, tzinfo=SHANGHAI))
    await bot.ticks()
    sent = [c for c in fake.calls_to("sendPhoto") if c.ok and c.params["chat_id"] != SECRETARY]
    assert sorted(c.params["chat_id"] for c in sent) == sorted(m.id for m in members)
    assert {c.params["caption"] for c in sent} == {"📢 三义村党支部\n\n村口新修的路"}
    assert {c.params["photo"] for c in sent} == {preview[0].params["photo"]}
