"""Several instances on one database (issue 11), at the service level: the update store
(bot/updates.py: claimed once, a chat's order, leases, the grace for gaps) and the claims of the
periodic jobs (schedules/jobs.py). Two stores or two Applications on one database stand for two
instances; they run on both backends (SQLite stands in for the shared database here: the rules
are the same SQL). Time is a settable clock given to the stores, never real sleeping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from orgtree import make_core
from pg import ON_PG, database_for

from bot.app import build_application, close_requests
from bot.clock import SettableClock
from bot.config import Settings
from bot.context import BotApplication
from bot.database import open_database
from bot.updates import GRACE, LEASE, MAX_ATTEMPTS, UpdatePump, UpdateStore
from schedules.jobs import JOB_LEASE, JobClaims, register, run_claimed, take_over_expired

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
BOT = 777


@pytest.fixture
def wall() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
async def two(tmp_path: Path, wall: SettableClock) -> AsyncIterator[tuple[UpdateStore, UpdateStore]]:
    """Two instances' stores of one bot on one database (each with its own connection)."""
    target = database_for(tmp_path / "shared.sqlite3")
    dbs = [open_database(target), open_database(target)]
    for db in dbs:
        await db.connect()
    try:
        yield UpdateStore(dbs[0], BOT, "host-a:1", wall), UpdateStore(dbs[1], BOT, "host-b:2", wall)
    finally:
        for db in dbs:
            await db.close()


def payload(update_id: int, chat_id: int) -> str:
    return json.dumps({"update_id": update_id, "message": {"chat": {"id": chat_id}}})


async def put(store: UpdateStore, update_id: int, chat_id: int | None) -> bool:
    return await store.put(update_id, chat_id, payload(update_id, chat_id or 0))


async def ids(store: UpdateStore, limit: int = 16) -> list[int]:
    return [c.update_id for c in await store.claim(limit)]


async def settle(store: UpdateStore, wall: SettableClock, first: int) -> None:
    """A first update has arrived, waited the grace time and been handled: the mark is past it."""
    await put(store, first, 1)
    wall.advance(GRACE)
    assert await ids(store) == [first]
    await store.finish(first)


async def test_an_update_is_stored_once_and_claimed_once_by_two_pumps(
        two: tuple[UpdateStore, UpdateStore], wall: SettableClock) -> None:
    a, b = two
    await settle(a, wall, 100)
    for n in range(101, 141):  # 40 chats, alternately posted to the two instances, some posted twice
        assert await put(a if n % 2 else b, n, 1000 + n)
        if n % 5 == 0:
            assert not await put(b if n % 2 else a, n, 1000 + n)  # Telegram's retry, the other instance
    claimed = await asyncio.gather(a.claim(15), b.claim(15), a.claim(15), b.claim(15))
    everyone = [c.update_id for batch in claimed for c in batch]
    assert sorted(everyone) == list(range(101, 141))  # every one, once
    assert await a.claim(16) == [] and await b.claim(16) == []
    assert await a.unfinished() == 40


async def test_a_chats_order_is_kept_when_its_updates_reach_two_instances_out_of_order(
        two: tuple[UpdateStore, UpdateStore], wall: SettableClock) -> None:
    a, b = two
    await settle(a, wall, 10)
    await put(b, 12, 7)  # the chat's second message reached instance b first
    await put(b, 13, 8)  # another chat's, after it
    assert await ids(a) == [] and await ids(b) == []  # 11 is on its way: nothing after it goes
    await put(a, 11, 7)
    assert await ids(b) == [11, 13]  # 12 waits for 11 (same chat); chat 8 goes meanwhile
    assert await ids(a) == []  # 11 is being handled
    await b.finish(11)
    assert await ids(a) == [12]
    await put(a, 14, 7)
    assert await ids(b) == []  # 12 still being handled, by a: the chat is one at a time
    await a.finish(12)
    assert await ids(b) == [14]


async def test_an_update_whose_instance_died_is_taken_over_when_its_lease_runs_out(
        two: tuple[UpdateStore, UpdateStore], wall: SettableClock) -> None:
    a, b = two
    await settle(a, wall, 1)
    await put(a, 2, 5)
    await put(a, 3, 5)
    assert await ids(a) == [2]  # a takes it, then renews while handling
    wall.advance(LEASE - timedelta(seconds=1))
    assert await a.renew(2)
    wall.advance(LEASE - timedelta(seconds=1))
    assert await ids(b) == []  # renewed: still a's
    wall.advance(timedelta(seconds=2))  # a died: no renewal, the lease runs out
    [taken] = await b.claim(16)
    assert (taken.update_id, taken.attempts) == (2, 2)
    assert not await a.renew(2)  # a (if it was only stalled) learns it lost the update
    await a.finish(2)  # and its late finish changes nothing
    assert await ids(b) == []  # 3 waits for 2, which b is handling
    await b.finish(2)
    assert await ids(a) == [3]


async def test_a_missing_id_is_waited_for_only_the_grace_time(
        two: tuple[UpdateStore, UpdateStore], wall: SettableClock) -> None:
    a, b = two
    await settle(a, wall, 20)
    await put(a, 22, 3)  # 21 never comes (a gap in Telegram's numbering)
    assert await ids(b) == []
    wall.advance(GRACE / 2)
    assert await ids(b) == []
    wall.advance(GRACE / 2)
    assert await ids(b) == [22]
    await put(a, 21, 4)  # it came after all, later than the grace: handled at once
    assert await ids(b) == [21]


async def test_the_first_update_ever_waits_the_grace_time_and_old_done_rows_go(
        two: tuple[UpdateStore, UpdateStore], wall: SettableClock) -> None:
    a, b = two
    await put(a, 500, None)  # nothing known before it: it may be the second of two
    await put(b, 502, None)
    assert await ids(a) == []
    await put(b, 501, None)
    wall.advance(GRACE)
    assert await ids(a) == [500, 501, 502]  # updates of no chat are ordered with nothing
    for n in (500, 501, 502):
        await a.finish(n)
    wall.advance(timedelta(hours=23))
    assert await a.purge() == 0  # kept a day for diagnosis
    wall.advance(timedelta(hours=2))
    assert await a.purge() == 3


# --- periodic jobs --------------------------------------------------------------------------------

@pytest.fixture
async def apps(tmp_path: Path, wall: SettableClock) -> AsyncIterator[tuple[BotApplication, BotApplication]]:
    """Two Applications (built by the production factory, not polling) on one database, each with
    a periodic job 'count' that records which instance ran it."""
    target = database_for(tmp_path / "jobs.sqlite3")
    built = []
    for name in ("host-a:1", "host-b:2"):
        settings = Settings(token="123456:" + "A" * 35, api_url="http://127.0.0.1:9/bot", database=target)
        app = build_application(settings, SettableClock(NOW))
        await app.core.open()
        app.bot_data["job_claims"] = JobClaims(app.core.db, name, wall)
        built.append(app)
    try:
        yield built[0], built[1]
    finally:
        for app in built:
            await app.core.close()
            await close_requests(app)


def count_runs(apps: tuple[BotApplication, ...]) -> list[str]:
    ran: list[str] = []
    for app in apps:
        async def tick(app: Any, me: str = app.bot_data["job_claims"].instance) -> None:
            ran.append(me)
            await asyncio.sleep(0)
        register(app, "count", tick)
    return ran


async def test_two_instances_run_a_job_once_per_due_time(
        apps: tuple[BotApplication, BotApplication], wall: SettableClock) -> None:
    ran = count_runs(apps)
    a, b = apps
    due = a.bot_data["job_claims"].due(60)
    assert due == NOW and b.bot_data["job_claims"].due(60) == due  # the same slots on every instance
    results = await asyncio.gather(run_claimed(a, "count", due), run_claimed(b, "count", due))
    assert sorted(results) == [False, True] and len(ran) == 1
    assert not await run_claimed(b, "count", due)  # that due time is done
    wall.advance(timedelta(seconds=61))
    later = b.bot_data["job_claims"].due(60)
    assert await run_claimed(b, "count", later) and len(ran) == 2
    assert not await run_claimed(a, "count", due)  # an older due time never runs after a newer one


async def test_a_job_whose_instance_died_is_taken_over_by_another(
        apps: tuple[BotApplication, BotApplication], wall: SettableClock) -> None:
    ran = count_runs(apps)
    a, b = apps
    due = a.bot_data["job_claims"].due(60)
    assert await a.bot_data["job_claims"].claim("count", due)  # a claims, then dies before it runs
    assert not await run_claimed(b, "count", due)
    assert await take_over_expired(b) == []  # a's lease still holds
    wall.advance(JOB_LEASE / 2)
    later = b.bot_data["job_claims"].due(2)  # a job of a short interval: the next due time came
    assert later > due and not await run_claimed(b, "count", later)  # but never two runs at once
    wall.advance(JOB_LEASE)
    assert await take_over_expired(b) == ["count"]
    assert ran == ["host-b:2"]
    assert await take_over_expired(a) == []  # done: nothing left to take


# --- per-process copies of shared state ------------------------------------------------------------

@pytest.mark.skipif(not ON_PG, reason="several instances share only a PostgreSQL database")
async def test_no_instance_keeps_a_stale_copy_of_what_another_changed(tmp_path: Path) -> None:
    cores = [make_core(tmp_path / "people.sqlite3", NOW) for _ in range(2)]
    for core in cores:
        await core.open()
    a, b = cores
    try:
        await a.people.touch(4242, "王五", None, "zh-hans", interacting=True)
        await b.people.touch(4242, "王五", None, "zh-hans", interacting=True)
        assert await b.people.language(4242) == "zh_CN"
        await a.people.set_language(4242, "en")
        assert await b.people.language(4242) == "en"
        await a.people.set_blocked(4242, True)
        await b.people.touch(4242, "王五", None, "zh-hans", interacting=True)  # wrote to the bot again
        assert not (await a.people.get(4242)).blocked_bot  # type: ignore[union-attr]

        assert await b.flows.get(4242) is None
        await a.flows.set(4242, "ask", "text", {"n": 1})
        assert (await b.flows.get(4242)).data == {"n": 1}  # type: ignore[union-attr]
        await a.flows.clear(4242)
        assert await b.flows.get(4242) is None
    finally:
        for core in cores:
            await core.close()


async def test_the_pump_gives_up_an_update_that_was_handed_out_too_often(
        apps: tuple[BotApplication, BotApplication], wall: SettableClock) -> None:
    """An update whose handling killed its instance MAX_ATTEMPTS times is marked done unhandled,
    so it cannot take the deployment down one instance after another."""
    app = apps[0]
    store = UpdateStore(app.core.db, BOT, "host-a:1", wall)
    await store.put(90, 6, payload(90, 6))
    await app.core.db.write("UPDATE updates SET attempts = ? WHERE update_id = 90", (MAX_ATTEMPTS,))
    wall.advance(GRACE)
    pump = UpdatePump(app, store, poll=0.01)
    pump.start()
    try:
        for _ in range(1000):
            if await store.unfinished() == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        await pump.stop()
    row = await app.core.db.fetchone("SELECT attempts, done_at FROM updates WHERE update_id = 90")
    assert row["attempts"] == MAX_ATTEMPTS + 1 and row["done_at"] is not None
    assert app.core.metrics.last_update is None  # never handed to the Application


async def test_the_pump_stops_when_a_wake_up_comes_with_the_stop(
        apps: tuple[BotApplication, BotApplication], wall: SettableClock) -> None:
    """stop() just after a wake-up (a handler finishing as SIGTERM comes): on Python 3.11 the pump's
    asyncio.wait_for returned normally then and swallowed stop()'s cancel, and the pump, and so the
    process's shutdown, went on for ever. The stop comes 0 to 3 loop turns after the wake-up."""
    app = apps[0]
    store = UpdateStore(app.core.db, BOT, "host-a:1", wall)
    for turns in range(4):
        pump = UpdatePump(app, store, poll=60.0)
        pump.start()
        await asyncio.sleep(0.2)  # the pump has looked at the table and waits for a wake-up
        pump.wake()
        for _ in range(turns):
            await asyncio.sleep(0)
        stopping = asyncio.ensure_future(pump.stop())
        done, _ = await asyncio.wait({stopping}, timeout=10)
        if not done:  # let the test end: the pump's loop is left running otherwise
            assert pump._loop is not None
            pump._loop.cancel()
            await asyncio.sleep(1)
        assert done, f"the pump did not stop when stopped {turns} loop turns after a wake-up"
        stopping.result()
