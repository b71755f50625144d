"""The broadcast service on a real SQLite file: who may broadcast where, audience sizes, content
limits, what is queued (one BULK row per recipient, the sender excluded, blocked people stored as
blocked), quiet hours, the daily limit of big broadcasts, cancel, progress and final figures from
the outbox rows (also after a restart), 收到 and the one reminder, the history."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from service_fixtures import (
    ADMIN,
    COUNTY_ORG,
    ERLANG_SECRETARY,
    MEMBER,
    OTHER_TOWN_ORG,
    RESIDENT,
    SECRETARY,
    STRANGER,
    TOWN_ORG,
    VILLAGE_ORG,
    clock_fixture,  # noqa: F401  (the `clock` fixture)
    core_fixture,  # noqa: F401  (the `core` fixture)
    make_core,
    org_id,
    outbox_rows,
    tree_fixture,  # noqa: F401  (the `tree` fixture)
)

from bench.scale import listed_audience
from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock, to_db
from bot.core import Core
from bot.outbox import Priority
from bot.services.broadcasts import BIG, PURPOSE, ROLES, Refused
from bot.services.orgs import NotAllowed

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def ready(core: Core, sender: int, org: str, roles: tuple[str, ...] = ("member",), text: str = "通知") -> int:
    b = await core.broadcasts.start(sender, await org_id(core, org))
    for role in set(b.roles) ^ set(roles):
        await core.broadcasts.toggle_role(sender, b.id, role)
    await core.broadcasts.set_content(sender, b.id, "text", text)
    return b.id


async def add_members(core: Core, org: str, first: int, n: int) -> None:
    target = await org_id(core, org)
    async with core.db.transaction() as tx:
        for pid in range(first, first + n):
            await core.people.ensure(tx, pid, f"党员{pid}")
            await core.orgs.grant(tx, person_id=pid, org_id=target, role="member", actor_id=None, source="test")


async def test_audience_counts_agree_with_the_people_through_any_changes(tree: Core) -> None:
    """Roles granted and revoked at random (people with one role, with several, in one org or
    several; the sender among them): every count of every scope equals the people listed."""
    rnd = random.Random(27)
    orgs = [await org_id(tree, code) for code in ("longjuzhai", "sanyi", "erlang")]
    people = [9001, 9002, 9003, 9004, MEMBER, ADMIN]  # ADMIN sends too: never counted
    for step in range(120):
        person, org, role = rnd.choice(people), rnd.choice(orgs), rnd.choice(ROLES)
        async with tree.db.transaction() as tx:
            await tree.people.ensure(tx, person)
            change = tree.orgs.grant if rnd.random() < 0.6 else tree.orgs.revoke
            await change(tx, person_id=person, org_id=org, role=role, actor_id=None, source="test")
        if step % 10:
            continue
        for sender, org_code in ((ADMIN, "longjuzhai"), (ADMIN, "sanyi"), (SECRETARY, "sanyi")):
            b = await tree.broadcasts.start(sender, await org_id(tree, org_code))
            for r in rnd.sample(ROLES, rnd.randrange(len(ROLES) + 1)):
                b = await tree.broadcasts.toggle_role(sender, b.id, r)
            audience = await tree.broadcasts.audience(b)
            by_role, total = await listed_audience(tree, b)  # the people, one by one
            assert audience.by_role == by_role, (step, b)
            assert audience.total == total, (step, b)
    # Rebuilt from the roles alone (a bulk load's way), the counts are the ones kept step by step.
    kept = await tree.db.fetchall("SELECT org_id, role, n FROM role_counts WHERE n != 0 ORDER BY 1, 2")
    repeats = await tree.db.fetchall("SELECT person_id, org_id, role FROM role_repeats ORDER BY 1, 2, 3")
    async with tree.db.transaction() as tx:
        await tree.orgs.recount_roles(tx)
    assert [tuple(r) for r in kept] == [tuple(r) for r in await tree.db.fetchall(
        "SELECT org_id, role, n FROM role_counts ORDER BY 1, 2")]
    assert [tuple(r) for r in repeats] == [tuple(r) for r in await tree.db.fetchall(
        "SELECT person_id, org_id, role FROM role_repeats ORDER BY 1, 2, 3")]
    assert repeats, "the changes made people with several roles"


async def test_audience_counts_hold_when_one_person_gets_two_roles_at_once(tree: Core, tmp_path: Path) -> None:
    """Two instances on one database grant one person two roles in transactions open at the same
    time (side by side on PostgreSQL): the second waits for the first and sees its role, so the
    person is counted once."""
    sanyi, erlang = await org_id(tree, "sanyi"), await org_id(tree, "erlang")
    async with tree.db.transaction() as tx:
        await tree.people.ensure(tx, 9100)  # known already: nothing in ensure makes the two wait
    other = make_core(tmp_path / "t.sqlite", tree.clock)  # a second instance on the same database
    await other.open()

    async def grant(core: Core, role: str, org: int) -> None:
        async with core.db.transaction() as tx:
            await core.orgs.grant(tx, person_id=9100, org_id=org, role=role, actor_id=None, source="test")
            await asyncio.sleep(0.2)  # both transactions open at once

    try:
        await asyncio.gather(grant(tree, "member", sanyi), grant(other, "resident", erlang))
    finally:
        await other.close()
    b = await tree.broadcasts.start(ADMIN, await org_id(tree, "longjuzhai"))
    b = await tree.broadcasts.toggle_role(ADMIN, b.id, "resident")
    assert (await tree.broadcasts.audience(b)).total == (await listed_audience(tree, b))[1]


async def test_who_may_broadcast_where(tree: Core) -> None:
    s = tree.broadcasts
    sanyi, erlang = await org_id(tree, "sanyi"), await org_id(tree, "erlang")
    town = await org_id(tree, "longjuzhai")
    assert await s.reach(SECRETARY, sanyi) is False          # their org only
    assert await s.reach(SECRETARY, erlang) is None
    assert await s.reach(TOWN_ORG, town) is True             # the subtree
    assert await s.reach(TOWN_ORG, sanyi) is True
    assert await s.reach(OTHER_TOWN_ORG, sanyi) is None
    assert await s.reach(MEMBER, sanyi) is None
    assert await s.reach(ADMIN, sanyi) is True
    assert await s.reach(SYSTEM_ACTOR, sanyi) is None
    for actor in (MEMBER, RESIDENT, STRANGER, OTHER_TOWN_ORG, ERLANG_SECRETARY):
        with pytest.raises(NotAllowed):
            await s.start(actor, sanyi)


async def test_audience_by_roles_over_the_subtree(tree: Core) -> None:
    s = tree.broadcasts
    b = await s.start(TOWN_ORG, await org_id(tree, "longjuzhai"))
    assert b.below and b.roles == ("member",)
    audience = await s.audience(b)
    # TREE: sanyi has a secretary, a member, a resident, an organiser; erlang a secretary.
    assert audience.by_role == {"member": 1, "secretary": 2, "resident": 1, "organizer": 1}
    assert audience.total == 1
    b = await s.toggle_role(TOWN_ORG, b.id, "secretary")
    b = await s.toggle_role(TOWN_ORG, b.id, "resident")
    assert (await s.audience(b)).total == 4
    # The secretary's broadcast covers sanyi alone, without the sender.
    own = await s.start(SECRETARY, await org_id(tree, "sanyi"))
    own = await s.toggle_role(SECRETARY, own.id, "secretary")
    assert not own.below
    assert (await s.audience(own)).total == 1  # the member; not the secretary themself


async def test_audience_counts_a_person_once(tree: Core) -> None:
    """Someone holding a role in two orgs of the scope, or two of the chosen roles, is one person."""
    s = tree.broadcasts
    erlang = await org_id(tree, "erlang")
    async with tree.db.transaction() as tx:
        for role in ("member", "resident"):
            await tree.orgs.grant(tx, person_id=MEMBER, org_id=erlang, role=role, actor_id=None, source="test")
    b = await s.start(TOWN_ORG, await org_id(tree, "longjuzhai"))
    audience = await s.audience(b)
    assert audience.by_role == {"member": 1, "secretary": 2, "resident": 2, "organizer": 1}
    assert audience.total == 1
    b = await s.toggle_role(TOWN_ORG, b.id, "resident")
    assert (await s.audience(b)).total == 2  # the member (also a resident) and the resident


async def test_content_limits_and_exact_message(tree: Core) -> None:
    s = tree.broadcasts
    b = await s.start(SECRETARY, await org_id(tree, "sanyi"))
    with pytest.raises(Refused) as refused:
        await s.set_content(SECRETARY, b.id, "photo", "字" * 1020, file_id="F1")
    assert refused.value.key == "broadcast.error.too_long"
    with pytest.raises(Refused):
        await s.set_content(SECRETARY, b.id, "text", "   ")
    with pytest.raises(ValueError):
        await s.set_content(SECRETARY, b.id, "sticker", "", file_id="S")
    b = await s.set_content(SECRETARY, b.id, "photo", "村口照片", file_id="F1")
    b = await s.toggle_ack(SECRETARY, b.id)
    method, payload = await s.preview(SECRETARY, b.id, "zh_CN")
    assert method == "sendPhoto"
    assert payload["photo"] == "F1" and payload["caption"] == "📢 三义村党支部\n\n村口照片"
    assert payload["reply_markup"]["inline_keyboard"][0][0]["text"] == "✅ 收到"
    with pytest.raises(NotAllowed):
        await s.preview(TOWN_ORG, b.id, "zh_CN")  # someone else's draft


async def test_confirm_queues_one_bulk_row_per_recipient(tree: Core) -> None:
    s = tree.broadcasts
    await tree.people.set_blocked(MEMBER, True)
    bid = await ready(tree, TOWN_ORG, "longjuzhai", ("member", "secretary", "organizer"))
    b = await s.confirm(TOWN_ORG, bid)
    assert b.status == "queued" and b.total == 4
    rows = [r for r in await outbox_rows(tree) if r["purpose"] == PURPOSE]
    assert sorted(r["chat_id"] for r in rows) == sorted([SECRETARY, ERLANG_SECRETARY, MEMBER, VILLAGE_ORG])
    assert {r["priority"] for r in rows} == {Priority.BULK}
    assert {r["dedup_key"] for r in rows} == {f"bcast:{bid}:{r['chat_id']}" for r in rows}
    assert {r["chat_id"]: r["status"] for r in rows}[MEMBER] == "blocked"
    with pytest.raises(Refused):
        await s.confirm(TOWN_ORG, bid)  # once only
    figures = await s.figures(b)
    assert (figures.pending, figures.blocked, figures.total) == (3, 1, 4)


async def test_quiet_hours_and_urgent(tree: Core, clock: SettableClock) -> None:
    s = tree.broadcasts
    clock.set(datetime(2026, 11, 27, 22, 30, tzinfo=SHANGHAI))
    bid = await ready(tree, SECRETARY, "sanyi")
    start, deferred = s.planned_start(await s.get(bid))
    assert deferred and start == datetime(2026, 11, 28, 7, 0, tzinfo=SHANGHAI)
    await s.toggle_urgent(SECRETARY, bid)
    start, deferred = s.planned_start(await s.get(bid))
    assert not deferred and start == clock.now()
    await s.toggle_urgent(SECRETARY, bid)
    at = datetime(2026, 11, 28, 9, 0, tzinfo=SHANGHAI)
    await s.set_time(SECRETARY, bid, at)
    assert s.planned_start(await s.get(bid)) == (at, False)
    with pytest.raises(Refused):
        await s.set_time(SECRETARY, bid, clock.now() - timedelta(minutes=1))
    b = await s.confirm(SECRETARY, bid)
    rows = [r for r in await outbox_rows(tree) if r["purpose"] == PURPOSE]
    assert {r["not_before"] for r in rows} == {to_db(at)}
    assert b.starts_at == at


async def test_at_most_three_big_broadcasts_a_day(tree: Core, clock: SettableClock) -> None:
    s = tree.broadcasts
    await add_members(tree, "sanyi", 100_000, BIG)  # with MEMBER: BIG + 1 members
    for _ in range(3):
        await s.confirm(TOWN_ORG, await ready(tree, TOWN_ORG, "longjuzhai"))
    # A small one is not limited; another sender has their own three.
    await s.confirm(TOWN_ORG, await ready(tree, TOWN_ORG, "erlang", ("secretary",)))
    await s.confirm(COUNTY_ORG, await ready(tree, COUNTY_ORG, "longjuzhai"))
    big = await ready(tree, TOWN_ORG, "longjuzhai")
    with pytest.raises(Refused) as refused:
        await s.confirm(TOWN_ORG, big)
    assert refused.value.key == "broadcast.error.daily_limit"
    assert (await s.get(big)).status == "draft"
    assert await tree.db.fetchval("SELECT COUNT(*) FROM outbox WHERE subject_id = ? AND purpose = ?",
                                  (big, PURPOSE)) == 0
    # Tomorrow it goes.
    clock.advance(timedelta(days=1))
    assert (await s.confirm(TOWN_ORG, big)).total == BIG + 1


async def test_cancel_progress_and_final_figures_survive_a_restart(tree: Core, clock: SettableClock,
                                                                   tmp_path: Path) -> None:
    s = tree.broadcasts
    await add_members(tree, "sanyi", 200_000, 5)
    bid = await ready(tree, SECRETARY, "sanyi")
    await s.confirm(SECRETARY, bid)
    await s.set_progress_message(SECRETARY, bid, 77)
    # Two rows went out (as the delivery worker records them).
    async with tree.db.transaction() as tx:
        await tx.execute("UPDATE outbox SET status = 'sent', sent_at = ? WHERE id IN (SELECT id FROM outbox"
                         " WHERE purpose = ? ORDER BY id LIMIT 2)", (to_db(clock.now()), PURPOSE))
    assert await s.tick(SYSTEM_ACTOR) == 0  # less than 3 s since the confirm
    clock.advance(timedelta(seconds=3))
    assert await s.tick(SYSTEM_ACTOR) == 1
    assert await s.tick(SYSTEM_ACTOR) == 0  # not again within 3 s
    edit = [r for r in await outbox_rows(tree, SECRETARY) if r["method"] == "editMessageText"][-1]
    assert edit["payload"]["message_id"] == 77 and "已发出 2 / 6 人" in edit["payload"]["text"]
    assert edit["priority"] == Priority.NORMAL  # not behind the bulk rows
    with pytest.raises(NotAllowed):
        await s.cancel(TOWN_ORG, bid)
    assert await s.cancel(SECRETARY, bid) == 4
    with pytest.raises(Refused):
        await s.cancel(SECRETARY, bid)
    # A restart: a new Core on the same file carries on from the database.
    await tree.close()
    again = Core.build(tree.settings, clock)
    await again.open()
    try:
        clock.advance(timedelta(seconds=3))
        assert await again.broadcasts.tick(SYSTEM_ACTOR) == 1
        final = [r for r in await outbox_rows(again, SECRETARY) if r["method"] == "editMessageText"][-1]
        assert "停止前发出 2 / 6 人" in final["payload"]["text"] and "收回没发的：4 条" in final["payload"]["text"]
        row = await again.db.fetchone("SELECT status, sent, withdrawn, finished_at FROM broadcasts WHERE id = ?",
                                      (bid,))
        assert row is not None and (row[0], row[1], row[2]) == ("cancelled", 2, 4) and row[3]
        clock.advance(timedelta(seconds=3))
        assert await again.broadcasts.tick(SYSTEM_ACTOR) == 0  # finished: no more edits
        history = await again.broadcasts.history(SECRETARY)
        assert [(b.id, f.sent, f.withdrawn) for b, f in history] == [(bid, 2, 4)]
        assert await again.broadcasts.history(TOWN_ORG) == []
    finally:
        await again.close()
        await tree.open()


async def test_ack_and_one_reminder(tree: Core) -> None:
    s = tree.broadcasts
    await add_members(tree, "sanyi", 300_000, 2)
    bid = await ready(tree, SECRETARY, "sanyi")
    with pytest.raises(Refused):
        await s.ack(MEMBER, bid)  # a draft: only a preview exists
    await s.toggle_ack(SECRETARY, bid)
    await s.confirm(SECRETARY, bid)
    async with tree.db.transaction() as tx:
        await tx.execute("UPDATE outbox SET status = 'sent' WHERE purpose = ?", (PURPOSE,))
    assert await s.ack(MEMBER, bid) is True
    assert await s.ack(MEMBER, bid) is False
    with pytest.raises(NotAllowed):
        await s.ack(RESIDENT, bid)  # not a recipient
    acks = await s.acks(SECRETARY, bid)
    assert (acks.total, acks.acked, sorted(acks.missing), acks.reminded) == (3, 1, ["党员300000", "党员300001"], False)
    with pytest.raises(NotAllowed):
        await s.acks(MEMBER, bid)
    with pytest.raises(NotAllowed):
        await s.remind(ADMIN, bid)  # the sender's own act
    assert await s.remind(SECRETARY, bid) == 2
    with pytest.raises(Refused) as refused:
        await s.remind(SECRETARY, bid)
    assert refused.value.key == "broadcast.error.reminded"
    reminders = [r for r in await outbox_rows(tree) if r["purpose"] == "broadcast/reminder"]
    assert sorted(r["chat_id"] for r in reminders) == [300_000, 300_001]
    assert (await s.acks(SECRETARY, bid)).reminded


async def test_the_tick_is_for_the_system(tree: Core) -> None:
    with pytest.raises(NotAllowed):
        await tree.broadcasts.tick(ADMIN)


async def test_a_sender_who_no_longer_leads_may_stop_but_not_see_names(tree: Core) -> None:
    s = tree.broadcasts
    bid = await ready(tree, SECRETARY, "sanyi")
    await s.toggle_ack(SECRETARY, bid)
    await s.confirm(SECRETARY, bid)
    async with tree.db.transaction() as tx:
        await tree.orgs.revoke(tx, person_id=SECRETARY, org_id=await org_id(tree, "sanyi"), role="secretary",
                               actor_id=None, source="test")
    with pytest.raises(NotAllowed):
        await s.acks(SECRETARY, bid)
    with pytest.raises(NotAllowed):
        await s.remind(SECRETARY, bid)
    assert await s.cancel(SECRETARY, bid) == 1
