"""The digest service on a real SQLite file: which outbox rows are held for a person who chose the
daily digest (low-priority kinds only; urgent broadcasts and everything else go at once), the 08:00
run (one digest per person, items marked in the same transaction, idempotent, after a restart too),
withdrawn subjects left out, switching back to "at once", the split at 4096 characters, and the
button that sends an item's original."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from service_fixtures import (
    MEMBER,
    RESIDENT,
    SECRETARY,
    clock_fixture,  # noqa: F401  (the `clock` fixture)
    core_fixture,  # noqa: F401  (the `core` fixture)
    make_core,
    org_id,
    outbox_rows,
    tree_fixture,  # noqa: F401  (the `tree` fixture)
)

from bot.actors import SYSTEM_ACTOR
from bot.callbacks import DG_OPEN, DG_WALL, DigestScreen
from bot.clock import SettableClock, to_db
from bot.core import Core
from bot.digest_kinds import DIGESTIBLE, URGENT_SUBJECT, WITHDRAWN_SUBJECT
from bot.limits import MAX_BUTTONS, MAX_TEXT, check_payload, telegram_length
from bot.outbox import Priority
from bot.services import appraisal, broadcasts, deliberation, matters, tickets
from bot.services.digests import MESSAGE, OPEN, Refused
from bot.services.meeting_model import Purpose as MeetingPurpose
from bot.services.orgs import NotAllowed, NotFound
from bot.services.tickets import Item

SHANGHAI = ZoneInfo("Asia/Shanghai")
BULLETIN = "supervision/bulletin"  # the supervision helper's summary rows (not built on this branch)
NEXT_MORNING = datetime(2026, 11, 28, 8, 0, tzinfo=SHANGHAI)  # START is 2026-11-27 16:00 in Shanghai


async def notice(core: Core, key: str, person: int, text: str, purpose: str = BULLETIN,
                 subject_id: int | None = None) -> str:
    async with core.db.transaction() as tx:
        await core.outbox.send_text(tx, key=key, chat_id=person, text=text, purpose=purpose, subject_id=subject_id)
    return await status(core, key)


async def status(core: Core, key: str) -> str:
    return str(await core.db.fetchval("SELECT status FROM outbox WHERE dedup_key = ?", (key,)))


async def digests_to(core: Core, person: int) -> list[dict[str, object]]:
    return [r for r in await outbox_rows(core, person) if r["purpose"] == MESSAGE]


async def broadcast(core: Core, text: str, urgent: bool = False) -> int:
    b = await core.broadcasts.start(SECRETARY, await org_id(core, "sanyi"))
    await core.broadcasts.set_content(SECRETARY, b.id, "text", text)
    if urgent:
        await core.broadcasts.toggle_urgent(SECRETARY, b.id)
    await core.broadcasts.confirm(SECRETARY, b.id)
    return b.id


def test_the_purposes_are_the_services_own() -> None:
    assert set(DIGESTIBLE) == {broadcasts.PURPOSE, MeetingPurpose.MINUTES, BULLETIN, tickets.Purpose.WALL,
                               deliberation.Purpose.WALL, matters.Purpose.WALL, appraisal.Purpose.WALL}
    assert set(URGENT_SUBJECT) | set(WITHDRAWN_SUBJECT) <= set(DIGESTIBLE)


async def test_only_low_priority_rows_of_those_who_chose_are_held(tree: Core) -> None:
    assert not await tree.digests.daily(MEMBER)
    assert await notice(tree, "a", MEMBER, "通报") == "pending"  # the default is "at once"
    assert await tree.digests.choose(MEMBER, True) == 0
    assert await tree.digests.daily(MEMBER)
    assert await notice(tree, "b", MEMBER, "通报") == "digest"
    assert await notice(tree, "c", RESIDENT, "通报") == "pending"  # someone else's choice
    for urgent in (MeetingPurpose.CHANGE, MeetingPurpose.REMINDER, MeetingPurpose.NOTICE,
                   tickets.Purpose.RESIDENT, tickets.Purpose.CARD, None):
        assert await notice(tree, f"u-{urgent}", MEMBER, "急", purpose=urgent) == "pending", urgent
    plain = await broadcast(tree, "下周开会")
    urgent_one = await broadcast(tree, "水管爆了", urgent=True)
    assert await status(tree, f"bcast:{plain}:{MEMBER}") == "digest"
    assert await status(tree, f"bcast:{urgent_one}:{MEMBER}") == "pending"
    # The broadcast counts a held message as delivered (the digest delivers it).
    figures = await tree.broadcasts.figures(await tree.broadcasts.get(plain))
    assert figures.pending == figures.total - figures.sent
    assert await tree.digests.held(MEMBER) == 2


async def test_the_morning_digest_once_with_every_item(tree: Core, clock: SettableClock) -> None:
    await tree.digests.choose(MEMBER, True)
    await notice(tree, "s1", MEMBER, "十一月督查通报：三义村会议按时召开")
    bid = await broadcast(tree, "下周一上午9点在街道开会\n请准时参加")
    assert await tree.digests.run(SYSTEM_ACTOR) == 0  # 16:00: the last 08:00 was before they came
    clock.set(NEXT_MORNING - timedelta(minutes=1))
    assert await tree.digests.run(SYSTEM_ACTOR) == 0
    await notice(tree, "s2", MEMBER, "迟到的一条")  # 07:59: still in this morning's digest
    clock.set(NEXT_MORNING)
    assert await tree.digests.run(SYSTEM_ACTOR) == 1
    (digest,) = await digests_to(tree, MEMBER)
    text = digest["payload"]["text"]
    assert text.startswith("📬 每日汇总 11月28日")
    assert "有3条不急的消息" in text
    assert "1. 【督查通报】十一月督查通报：三义村会议按时召开" in text
    assert "2. 【通知】📢 三义村党支部 下周一上午9点在街道开会 请准时参加" in text
    assert "3. 【督查通报】迟到的一条" in text
    labels = [b["text"] for row in digest["payload"]["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["看第1条", "看第2条", "看第3条"]
    assert {await status(tree, k) for k in ("s1", "s2", f"bcast:{bid}:{MEMBER}")} == {"digested"}
    assert await tree.digests.run(SYSTEM_ACTOR) == 0  # once
    await notice(tree, "s3", MEMBER, "明天的")
    clock.set(NEXT_MORNING + timedelta(hours=3))
    assert await tree.digests.run(SYSTEM_ACTOR) == 0  # waits for the next 08:00
    clock.set(NEXT_MORNING + timedelta(days=1))
    assert await tree.digests.run(SYSTEM_ACTOR) == 1
    assert len(await digests_to(tree, MEMBER)) == 2


async def test_nothing_is_lost_across_a_restart(tmp_path: Path, clock: SettableClock) -> None:
    from orgtree import TREE, load

    core = make_core(tmp_path / "r.sqlite", clock)
    await core.open()
    await load(core, TREE)
    await core.digests.choose(MEMBER, True)
    await notice(core, "held", MEMBER, "重启前的通报")
    await core.close()
    clock.set(NEXT_MORNING + timedelta(hours=2))  # the bot was down at 08:00
    core = make_core(tmp_path / "r.sqlite", clock)
    await core.open()
    try:
        assert await core.digests.run(SYSTEM_ACTOR) == 1
        (digest,) = await digests_to(core, MEMBER)
        assert "重启前的通报" in digest["payload"]["text"]
    finally:
        await core.close()


async def test_withdrawn_subjects_are_left_out(tree: Core, clock: SettableClock) -> None:
    await tree.digests.choose(MEMBER, True)
    clock.set(datetime(2026, 11, 27, 17, 0, tzinfo=SHANGHAI))
    kept = await broadcast(tree, "留着的通知")
    b = await tree.broadcasts.start(SECRETARY, await org_id(tree, "sanyi"))
    await tree.broadcasts.set_content(SECRETARY, b.id, "text", "撤回的通知")
    await tree.broadcasts.confirm(SECRETARY, b.id)
    assert await tree.broadcasts.cancel(SECRETARY, b.id) >= 1  # the held row is withdrawn as well
    assert await status(tree, f"bcast:{b.id}:{MEMBER}") == "cancelled"
    clock.set(NEXT_MORNING)
    await tree.digests.run(SYSTEM_ACTOR)
    (digest,) = await digests_to(tree, MEMBER)
    assert "留着的通知" in digest["payload"]["text"] and "撤回" not in digest["payload"]["text"]
    assert await status(tree, f"bcast:{kept}:{MEMBER}") == "digested"


async def test_nothing_held_means_no_digest(tree: Core, clock: SettableClock) -> None:
    await tree.digests.choose(MEMBER, True)
    clock.set(NEXT_MORNING)
    assert await tree.digests.run(SYSTEM_ACTOR) == 0
    assert await digests_to(tree, MEMBER) == []


async def test_back_to_at_once_sends_what_was_held(tree: Core) -> None:
    await tree.digests.choose(MEMBER, True)
    await notice(tree, "h1", MEMBER, "一")
    await notice(tree, "h2", MEMBER, "二")
    assert await tree.digests.choose(MEMBER, False) == 2
    assert {await status(tree, "h1"), await status(tree, "h2")} == {"pending"}
    assert not await tree.digests.daily(MEMBER)
    assert await notice(tree, "h3", MEMBER, "三") == "pending"


async def test_choosing_is_ones_own(tree: Core) -> None:
    with pytest.raises(NotAllowed):
        await tree.digests.choose(SYSTEM_ACTOR, True)
    with pytest.raises(NotAllowed):
        await tree.digests.run(MEMBER)


async def test_a_long_day_is_split_only_at_the_limit(tree: Core, clock: SettableClock) -> None:
    await tree.digests.choose(MEMBER, True)
    for n in range(130):
        await notice(tree, f"long{n}", MEMBER, f"第{n}条" + "很长的督查通报内容" * 30)
    clock.set(NEXT_MORNING)
    assert await tree.digests.run(SYSTEM_ACTOR) == 1
    parts = await digests_to(tree, MEMBER)
    assert len(parts) >= 2
    listed: list[int] = []
    for k, part in enumerate(parts):
        payload = part["payload"]
        check_payload("sendMessage", payload)
        buttons = [b for row in payload["reply_markup"]["inline_keyboard"] for b in row]
        assert len(buttons) <= MAX_BUTTONS
        lines = [line for line in payload["text"].split("\n") if "【督查通报】" in line]
        assert len(lines) == len(buttons)
        listed += [int(line.split(".")[0]) for line in lines]
        if k < len(parts) - 1:  # full: one more line would not have fitted
            following = parts[k + 1]["payload"]["text"].split("\n")[2]
            assert telegram_length(payload["text"]) + telegram_length(following) + 1 > MAX_TEXT - 60 \
                or len(buttons) == MAX_BUTTONS
    assert listed == list(range(1, 131))
    assert "（接上条）" in parts[1]["payload"]["text"]
    row = await tree.db.fetchone("SELECT items, parts FROM digests WHERE person_id = ?", (MEMBER,))
    assert tuple(row) == (130, len(parts))


async def test_open_sends_the_original_to_its_recipient_only(tree: Core, clock: SettableClock) -> None:
    await tree.digests.choose(MEMBER, True)
    await notice(tree, "orig", MEMBER, "原文：十一月督查通报全文")
    clock.set(NEXT_MORNING)
    await tree.digests.run(SYSTEM_ACTOR)
    (digest,) = await digests_to(tree, MEMBER)
    data = digest["payload"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    parsed = DG_OPEN.parse(data)
    assert parsed is not None
    with pytest.raises(NotAllowed):
        await tree.digests.open(RESIDENT, parsed.item_id)
    other = await tree.db.fetchval("SELECT id FROM outbox WHERE purpose = ?", (MESSAGE,))
    with pytest.raises(NotFound):
        await tree.digests.open(MEMBER, other)  # not an item: the digest itself
    await tree.digests.open(MEMBER, parsed.item_id)
    with pytest.raises(Refused):
        await tree.digests.open(MEMBER, parsed.item_id)  # the first copy is still on its way
    copies = [r for r in await outbox_rows(tree, MEMBER) if r["purpose"] == OPEN]
    assert len(copies) == 1 and copies[0]["payload"]["text"] == "原文：十一月督查通报全文"
    assert copies[0]["status"] == "pending" and copies[0]["priority"] == 10
    async with tree.db.transaction() as tx:  # delivered
        await tx.execute("UPDATE outbox SET status = 'sent' WHERE purpose = ?", (OPEN,))
    await tree.digests.open(MEMBER, parsed.item_id)  # asked again later: sent again
    assert len([r for r in await outbox_rows(tree, MEMBER) if r["purpose"] == OPEN]) == 2


async def test_the_choice_buttons(tree: Core) -> None:
    line, rows = tree.digests.choice("zh_CN", False, DigestScreen.SETTINGS)
    assert [b.text for row in rows for b in row] == ["☑ 有消息马上收到", "☐ 每天早上8点汇总一次"]
    line, rows = tree.digests.choice("zh_CN", True, DigestScreen.ME, held=3)
    assert [b.text for row in rows for b in row] == ["☐ 有消息马上收到", "☑ 每天早上8点汇总一次"]
    assert "3条" in line
    assert json.dumps([b.data for row in rows for b in row]) == '["dgs:n:m", "dgs:d:m"]'


async def answered_on_the_wall(core: Core, problem: str, public: bool = True) -> int:
    ticket = await core.tickets.submit(RESIDENT, [Item("text", problem)], "infrastructure", public, False)
    await core.tickets.answer(SECRETARY, ticket.id, [Item("text", "已经修好了")])
    return ticket.id


async def test_echo_wall_posts_of_ones_org_are_listed(tree: Core, clock: SettableClock) -> None:
    await tree.digests.choose(MEMBER, True)
    clock.set(datetime(2026, 11, 27, 17, 0, tzinfo=SHANGHAI))
    await answered_on_the_wall(tree, "村口路灯坏了")
    await answered_on_the_wall(tree, "垃圾没人收")
    await answered_on_the_wall(tree, "私事", public=False)  # not on the wall: not in the digest
    clock.set(NEXT_MORNING)
    assert await tree.digests.run(SYSTEM_ACTOR) == 1
    (digest,) = await digests_to(tree, MEMBER)
    assert "1. 【回音壁】三义村党支部答复了2个群众反映的问题" in digest["payload"]["text"]
    button = digest["payload"]["reply_markup"]["inline_keyboard"][0][0]
    assert button["callback_data"] == DG_WALL(await org_id(tree, "sanyi"))
    assert await tree.digests.run(SYSTEM_ACTOR) == 0  # once
    assert not await digests_to(tree, RESIDENT)  # at once (the default): the wall chat is theirs
    # The next morning: only what was answered since.
    await answered_on_the_wall(tree, "井水浑了")
    clock.set(NEXT_MORNING + timedelta(days=1))
    tree.digests._wall_scanned = None  # as after a restart: looked for again, from the database
    assert await tree.digests.run(SYSTEM_ACTOR) == 1
    assert await tree.digests.run(SYSTEM_ACTOR) == 0
    second = (await digests_to(tree, MEMBER))[1]["payload"]["text"]
    assert "答复了1个群众反映的问题" in second


async def test_wall_posts_from_before_the_choice_are_not_news(tree: Core, clock: SettableClock) -> None:
    await answered_on_the_wall(tree, "村口路灯坏了")
    clock.advance(timedelta(minutes=1))
    await tree.digests.choose(MEMBER, True)
    clock.set(NEXT_MORNING)
    assert await tree.digests.run(SYSTEM_ACTOR) == 0


async def test_a_digest_caught_up_at_night_waits_for_the_morning(tree: Core, clock: SettableClock) -> None:
    await tree.digests.choose(MEMBER, True)
    await notice(tree, "night", MEMBER, "通报")
    clock.set(datetime(2026, 11, 28, 23, 0, tzinfo=SHANGHAI))  # the bot was down from 08:00 till 23:00
    assert await tree.digests.run(SYSTEM_ACTOR) == 1
    (digest,) = await digests_to(tree, MEMBER)
    assert digest["not_before"] == to_db(datetime(2026, 11, 29, 7, 0, tzinfo=SHANGHAI))
    assert digest["priority"] == Priority.BULK
