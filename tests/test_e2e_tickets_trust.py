"""End to end, through the fake Bot API: the anonymity rule walked over everything the people
who handle a ticket can see, the block oracle, a forged transfer target, the /bindwall answer
budget, and a ticket with maximal content delivered in full.

The resident's name, username and id are distinctive, and they read English while every reader
reads Chinese: any of the four reaching a reader is a leak."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from test_cli import run_cli
from test_e2e_tickets_flow import (
    ERLANG_SECRETARY,
    NOT_ALLOWED,
    ORGANIZER,
    SECRETARY,
    WAIT,
    alert,
    eventually,
    leaders,
    resident,
    seed,
    status_is,
    svc,
    traces,
)

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot import callbacks as cb
from bot.actors import SYSTEM_ACTOR
from bot.i18n import load_catalog
from bot.services.tickets import Item
from conftest import BotRunner

HIDDEN_ID = 7770001
FIRST, LAST, USERNAME = "Quixotl", "Marlowzed", "zq_leaky_77"
READERS = (SECRETARY, ORGANIZER, ERLANG_SECRETARY)


def english_fragments() -> set[str]:
    """Pieces of the English catalog that no Chinese text contains: any of them in a reader's chat
    means a text was rendered in the resident's language."""
    zh = "\n".join(load_catalog("zh_CN").values())
    found = set()
    for value in load_catalog("en").values():
        for piece in re.split(r"\{[^}]*\}", value):
            piece = piece.strip(" \n:.,()!?«»")
            if len(piece) >= 8 and re.search(r"[A-Za-z]{3,} [A-Za-z]{3,}", piece) and piece not in zh:
                found.add(piece)
    return found


def leaks(value: Any) -> list[str]:
    found: list[str] = []
    for token in (FIRST, LAST, USERNAME):
        found += traces(value, token, HIDDEN_ID)
    return found


async def the_hidden_resident(bot: BotRunner, fake: FakeBotApi) -> FakeUser:
    user = fake.user(HIDDEN_ID, first_name=FIRST, last_name=LAST, username=USERNAME, language_code="en")
    await bot.core.people.touch(HIDDEN_ID, f"{FIRST} {LAST}", USERNAME, "en")
    invite = await bot.core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    await bot.core.invites.join(HIDDEN_ID, invite.payload)
    return user


async def submit_anonymously_in_english(fake: FakeBotApi, user: FakeUser) -> None:
    user.send("/submit")
    await fake.wait_message(user.id, contains="What is the problem?", timeout=WAIT)
    user.send("Someone dumps rubbish by the river every morning")
    await fake.wait_message(user.id, contains="Got 1 item.", timeout=WAIT)
    user.send_location(33.7, 110.3)
    categories = await fake.wait_message(user.id, contains="Got 2 items.", timeout=WAIT)
    user.press(categories, "Sanitation")
    confirm = await fake.wait_text(user.id, "Please check")
    user.press(confirm, "☐ Keep my name from the secretary")
    await fake.wait_for(lambda: "☑ Keep my name from the secretary" in (
        fake.message(user.id, confirm.message_id) or confirm).button_texts, WAIT, message="toggled")
    user.press(confirm, "✅ Submit")
    await fake.wait_text(user.id, "Submitted! Your problem number is #1")


class Walk:
    """Presses made by the readers, so their pop-up answers are checked too."""

    def __init__(self, fake: FakeBotApi) -> None:
        self.fake = fake
        self.presses: list[dict[str, Any]] = []

    def press(self, user: FakeUser, message: SentMessage, label: str) -> None:
        self.presses.append(user.press(message, label))

    def press_old(self, user: FakeUser, message: SentMessage, data: str) -> None:
        """A button the message no longer shows (the screen was kept true), pressed by an old client."""
        self.presses.append(user.press_data(message.message_id, data))

    async def wait(self, chat: int, contains: str) -> SentMessage:
        return await self.fake.wait_message(chat, contains=contains, timeout=WAIT)


async def test_nothing_a_handler_can_see_tells_who_an_anonymous_resident_is(
        bot: BotRunner, fake: FakeBotApi, clock: Any, tmp_path: Path) -> None:
    hidden = await the_hidden_resident(bot, fake)
    secretary, organizer, erlang = leaders(fake)
    group = fake.group(-1002001, "三义村回音壁", "supergroup")
    group.add_member(secretary, "administrator")
    group.add_bot(secretary)
    await svc(bot).bind_wall(SECRETARY, (await bot.core.orgs.by_code("sanyi")).id, group.id,  # type: ignore[union-attr]
                             "三义村回音壁")
    walk = Walk(fake)
    await submit_anonymously_in_english(fake, hidden)

    # The secretary: the card, the copies, /inbox, the details, accept, ask for more.
    card = await walk.wait(SECRETARY, "📥 新问题")
    assert "提交人：匿名群众" in card.text
    secretary.send("/inbox")
    inbox = await walk.wait(SECRETARY, "待办问题")
    walk.press(secretary, inbox, inbox.button_texts[0])
    await walk.wait(SECRETARY, "办理记录：")
    walk.press(secretary, card, "✅ 受理")
    await walk.wait(SECRETARY, "已受理问题 #1")
    walk.press(secretary, card, "❓ 要求补充")
    await walk.wait(SECRETARY, "请输入需要群众补充的内容")
    secretary.send("大概几点？")
    await walk.wait(SECRETARY, "已请群众补充信息")
    await svc(bot).add_info(HIDDEN_ID, 1, [Item("text", "Around six in the morning")])
    await walk.wait(SECRETARY, "群众补充了信息")

    # Blocking, /blocked and lifting it.
    walk.press(secretary, card, "📜 详情和记录")
    view = await walk.wait(SECRETARY, "办理记录：")
    walk.press(secretary, view, "⛔ 暂停此人提交")
    await walk.wait(SECRETARY, "已暂停问题 #1 提交人的提交")
    secretary.send("/blocked")
    blocked = await walk.wait(SECRETARY, "被暂停提交的人")
    assert blocked.button_texts[0].startswith("问题 #1 的提交人")
    walk.press(secretary, blocked, blocked.button_texts[0])
    await walk.wait(SECRETARY, "已取消问题 #1 对提交人的暂停")

    # Overdue: the township organizer gets the escalation card, and opens it.
    ticket = await svc(bot).get(SECRETARY, 1)
    clock.set(ticket.answer_due + timedelta(minutes=5))
    escalated = await walk.wait(ORGANIZER, "下级超期未答复的问题")
    walk.press(organizer, escalated, "📜 详情和记录")
    await walk.wait(ORGANIZER, "办理记录：")
    organizer.send("/inbox")
    await walk.wait(ORGANIZER, "待办问题")

    # Transferred to erlang: its secretary gets the card, opens it and answers in public.
    walk.press(secretary, card, "↪️ 转交")
    targets = await walk.wait(SECRETARY, "把问题 #1 转交给")
    walk.press(secretary, targets, "二郎村党支部")
    await walk.wait(SECRETARY, "请写明转交问题 #1 的原因")
    secretary.send("河道归二郎村管")
    moved = await walk.wait(ERLANG_SECRETARY, "转交来的问题")
    walk.press(erlang, moved, "📜 详情和记录")
    await walk.wait(ERLANG_SECRETARY, "办理记录：")
    walk.press(erlang, moved, "💬 答复")
    await walk.wait(ERLANG_SECRETARY, "请输入对问题 #1 的答复")
    erlang.send("已安排清理")
    collected = await walk.wait(ERLANG_SECRETARY, "已记录 1 条")
    walk.press(erlang, collected, "📨 发送")
    preview = await walk.wait(ERLANG_SECRETARY, "回音壁上会这样显示")
    assert "📍三义村党支部" in preview.text and "33.7" not in preview.text
    walk.press(erlang, preview, "✅ 确定发送")
    await walk.wait(ERLANG_SECRETARY, "答复已发给群众")
    await group.wait_message(contains="【回音壁】#1", timeout=WAIT)

    # The resident is unhappy, then withdraws; late buttons say who handled it, in Chinese.
    await svc(bot).rate(HIDDEN_ID, 1, "bad", "Still dirty")
    await walk.wait(ERLANG_SECRETARY, "群众对答复不满意")
    await svc(bot).withdraw(HIDDEN_ID, 1)
    await walk.wait(ERLANG_SECRETARY, "群众撤回了问题 #1")
    walk.press_old(erlang, moved, cb.TICKET_ACTION(cb.TicketAction.ACCEPT, 1))
    already = await walk.wait(ERLANG_SECRETARY, "处理过")
    assert already.text == "问题 #1 已由 匿名群众 处理过，当前状态：已撤回。"
    walk.press_old(secretary, card, cb.TICKET_ACTION(cb.TicketAction.ACCEPT, 1))  # no longer theirs
    secretary.send("/wall")
    await walk.wait(SECRETARY, "回音壁")
    await bot.idle()
    # The operator's tickets commands, on the same database.
    cli = [await asyncio.to_thread(run_cli, tmp_path, *args) for args in (
        ("tickets", "settings", "sanyi", "--accept-days", "2"), ("tickets", "assign", "sanyi", "sanitation", "1001"),
        ("tickets", "assign", "sanyi", "sanitation", "none"))]
    assert [c.returncode for c in cli] == [0, 0, 0]

    english = english_fragments()
    assert "anonymous resident" in english  # the check can see the word that leaked before
    seen = [(chat, m.message) for chat in (*READERS, group.id) for m in fake.history(chat)]
    answers = [fake.answers(press) or {} for press in walk.presses]
    assert len(seen) > 30 and len(answers) == len(walk.presses)
    assert [a.get("text") for a in answers if a.get("text")] == [
        "问题 #1 已由 匿名群众 处理过，当前状态：已撤回。", NOT_ALLOWED]
    outputs = [(1, {"stdout": c.stdout, "stderr": c.stderr}) for c in cli]
    for where, value in [*seen, *((0, a) for a in answers), *outputs]:
        assert leaks(value) == [], (where, value)
        shown = repr(value)
        assert [piece for piece in english if piece in shown] == [], (where, value)


async def test_blocking_from_a_ticket_answers_the_same_whoever_the_author_is(bot: BotRunner, fake: FakeBotApi) -> None:
    """Tickets 1 and 2 are one resident's, ticket 3 another's, all anonymous. The first author is
    blocked from ticket 1; then blocking from 2 and from 3 must look exactly alike."""
    await resident(bot, fake, 2001, "老张")
    await resident(bot, fake, 2002, "小李")
    secretary, _, _ = leaders(fake)
    for person, what in ((2001, "第一个问题"), (2001, "第二个问题"), (2002, "第三个问题")):
        await seed(bot, person, what, anonymous=True)
    replies = []
    for ticket_id in (1, 2, 3):
        secretary.press_data(1, f"tk:h:{ticket_id}")
        view = await fake.wait_message(SECRETARY, contains=f"问题 #{ticket_id}（基础设施）", timeout=WAIT)
        assert view.button_texts[-1] == "⛔ 暂停此人提交"
        press = secretary.press(view, "⛔ 暂停此人提交")
        done = await fake.wait_message(SECRETARY, contains="暂停", timeout=WAIT)
        replies.append((done.text.replace(f"#{ticket_id}", "#N"), (fake.answers(press) or {}).get("text")))
    assert replies[0] == replies[1] == replies[2]
    assert replies[1] == ("已暂停问题 #N 提交人的提交（可在 /blocked 恢复）。", None)
    secretary.send("/blocked")
    blocked = await fake.wait_message(SECRETARY, contains="被暂停提交的人", timeout=WAIT)
    lines = [re.sub(r"#\d+", "#N", line) for line in blocked.button_texts]
    assert len(lines) == 3 and len(set(lines)) == 1


async def test_a_forged_transfer_target_is_refused(bot: BotRunner, fake: FakeBotApi) -> None:
    await resident(bot, fake, 2001, "老张")
    secretary, _, _ = leaders(fake)
    await seed(bot, 2001, "村口路灯坏了")
    card = await fake.wait_message(SECRETARY, contains="📥 新问题", timeout=WAIT)
    secretary.press(card, "↪️ 转交")
    menu = await fake.wait_message(SECRETARY, contains="把问题 #1 转交给", timeout=WAIT)
    offered = set(menu.button_texts)
    assert "二郎村党支部" in offered and "中共丹凤县委" not in offered
    county = (await bot.core.orgs.by_code("danfeng")).id  # type: ignore[union-attr]
    before = await bot.core.db.fetchall("SELECT * FROM tickets")
    for data in (f"tt:1:o:{county}", "tt:1:o:99999", f"tt:1:p:{ORGANIZER}", "tt:1:p:2001", f"tt:1:p:{SECRETARY}"):
        assert await alert(fake, secretary.press_data(menu.message_id, data)) == NOT_ALLOWED
    assert await bot.core.flows.get(SECRETARY) is None  # no reason is even asked for
    assert [tuple(r) for r in await bot.core.db.fetchall("SELECT * FROM tickets")] == [tuple(r) for r in before]
    secretary.press(menu, "二郎村党支部")
    await fake.wait_message(SECRETARY, contains="请写明转交问题 #1 的原因", timeout=WAIT)
    secretary.send("路在二郎村")
    await fake.wait_message(SECRETARY, contains="问题 #1 已转交给「二郎村党支部」", timeout=WAIT)


async def test_a_non_admin_gets_one_bindwall_answer_an_hour_per_group(
        bot: BotRunner, fake: FakeBotApi, clock: Any) -> None:
    zhang = await resident(bot, fake, 2001, "老张")
    secretary, _, _ = leaders(fake)
    group = fake.group(-1002002, "三义村群", "supergroup")
    group.add_member(secretary, "administrator")
    group.add_member(zhang)
    group.add_bot(secretary)
    for _ in range(5):
        zhang.send("/bindwall", chat=group)
    await group.wait_message(contains="只有那个群或频道的管理员才能绑定。", timeout=WAIT)
    await bot.idle()
    refusals = [m for m in fake.history(group.id) if "只有那个群或频道的管理员" in m.text]
    assert len(refusals) == 1
    clock.advance(timedelta(minutes=61))
    zhang.send("/bindwall", chat=group)
    await bot.idle()
    assert len([m for m in fake.history(group.id) if "只有那个群或频道的管理员" in m.text]) == 2
    # An admin is still answered at once.
    secretary.send("/bindwall", chat=group)
    await group.wait_message(contains="绑定为哪个组织的回音壁", timeout=WAIT)


async def test_a_ticket_with_maximal_content_is_delivered_in_full(bot: BotRunner, fake: FakeBotApi, clock: Any) -> None:
    """Twenty 4096-character texts and every kind of notice: the fake Bot API (which refuses what
    Telegram refuses) accepts every message, and nothing in the outbox fails. (That the details
    carry all of it, split into messages, is checked on the service: sending ~80 messages to one
    chat at Telegram's pace would take over a minute.)"""
    await resident(bot, fake, 2001, "老张")
    secretary, _, _ = leaders(fake)
    group = fake.group(-1002003, "三义村回音壁", "supergroup")
    group.add_member(secretary, "administrator")
    group.add_bot(secretary)
    s = svc(bot)
    await s.bind_wall(SECRETARY, (await bot.core.orgs.by_code("sanyi")).id, group.id, "墙")  # type: ignore[union-attr]
    long_text = ("村里的路坏了，下雨天没法走。" * 300)[:4096]
    ticket = await s.submit(2001, [Item("text", f"{n}{long_text}"[:4096]) for n in range(20)], "infrastructure",
                            True, False)
    clock.set(ticket.accept_due + timedelta(minutes=5))  # escalation cards and overdue notices
    await fake.wait_message(ORGANIZER, contains="下级超期未受理的问题", timeout=WAIT)
    await s.ask_info(SECRETARY, 1, "问" * 500)
    await s.add_info(2001, 1, [Item("text", long_text)] * 20)
    await s.transfer(SECRETARY, 1, "转" * 500, to_org=(await bot.core.orgs.by_code("erlang")).id)  # type: ignore[union-attr]
    await s.answer(ERLANG_SECRETARY, 1, [Item("text", long_text)] * 20)
    await s.rate(2001, 1, "bad", "差" * 500)
    await s.answer(ERLANG_SECRETARY, 1, [Item("text", long_text)] * 20, final=True)
    await s.rate(2001, 1, "good")
    await status_is(bot, 1, "closed")

    async def settled() -> bool:
        return not await bot.core.db.fetchval("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")

    await eventually(settled, "every queued message delivered", timeout=90)
    statuses = {r[0]: r[1] for r in await bot.core.db.fetchall("SELECT status, COUNT(*) FROM outbox GROUP BY status")}
    assert set(statuses) <= {"sent", "cancelled"}, statuses
    assert statuses["sent"] >= 12
    assert not fake.stats.errors, fake.stats.errors
    kinds = {"📥 新问题", "下级超期未受理的问题", "已超过受理期限", "群众补充了信息", "转交来的问题",
             "群众对答复不满意", "群众对问题 #1 的答复表示满意"}
    delivered = "\n".join(m.text for chat in (SECRETARY, ORGANIZER, ERLANG_SECRETARY) for m in fake.history(chat))
    assert all(kind in delivered for kind in kinds), [k for k in kinds if k not in delivered]
    assert any("有答复了" in m.text and "发送 /my" in m.text for m in fake.history(2001))
    assert any(m.text.startswith("【回音壁】#1") for m in fake.history(group.id))
