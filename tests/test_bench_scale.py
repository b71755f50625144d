"""`python -m bench scale` on a tiny province (no timing): the province is generated in the shape
the issue asks for, every read runs, and the line is printed in the issue's format, on SQLite and
(when PostgreSQL is installed) on PostgreSQL, which gets the very same rows. On that province,
/inbox's rights filter (in SQL) picks exactly the open problems can_act allows."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
from pathlib import Path

import pytest
from pg import missing_reason, server

from bench import scale
from bench.scaledata import FIRST_BRANCH, TABLES, sizes
from bot.database_pg import PgDatabase
from bot.pgcopy import row_digest
from bot.services.tickets import INBOX_ROOM, OPEN, Ticket

LINE = (r"scale\[sqlite\]: people=(\d+) tickets=(\d+) inbox p99=[\d.]+ my p99=[\d.]+ wall p99=[\d.]+"
        r" meetings p99=[\d.]+ report=[\d.]+ s audience=[\d.]+ rss=\d+ MB")


def test_bench_scale_tiny(tmp_path: Path) -> None:
    database = str(tmp_path / "province.sqlite3")
    lines = scale.run(argparse.Namespace(scale=0.01, database=[database], samples=5))
    assert len(lines) == 1
    found = re.fullmatch(LINE, lines[0])
    assert found is not None, lines[0]
    n = sizes(0.01)
    # 1M people and 5M problems at scale 1; the organisers of the province, its 10 cities and counties.
    assert (int(found.group(1)), int(found.group(2))) == (n["people"] + 1 + 10 + n["counties"], n["tickets"])
    again = scale.run(argparse.Namespace(scale=0.01, database=[f"sqlite:///{database}"], samples=5))
    assert re.fullmatch(LINE, again[0]) is not None  # the filled file is reused, not generated twice


def test_bench_scale_tiny_on_postgresql(tmp_path: Path) -> None:
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: failing)")
        pytest.skip(reason)
    if not hasattr(PgDatabase, "snapshot"):  # the report's counts on PostgreSQL (db.snapshot, branch pgsuite)
        pytest.skip("the supervision report does not run on PostgreSQL in this tree yet")
    source = tmp_path / "province.sqlite3"
    url = server().fresh(str(tmp_path / "province-pg"))
    lines = scale.run(argparse.Namespace(scale=0.01, database=[str(source), url], samples=5))
    assert len(lines) == 2
    on_pg = re.fullmatch(LINE.replace("sqlite", "postgresql"), lines[1])
    assert on_pg is not None, lines[1]
    assert on_pg.group(1, 2) == re.fullmatch(LINE, lines[0]).group(1, 2)  # type: ignore[union-attr]
    asyncio.run(_same_rows(source, url))
    again = scale.run(argparse.Namespace(scale=0.01, database=[url], samples=5))
    assert re.fullmatch(LINE.replace("sqlite", "postgresql"), again[0]) is not None  # reused, not copied twice


async def _same_rows(source: Path, url: str) -> None:
    """Every row of the province's tables, compared by checksum between the two backends."""
    import asyncpg

    src = sqlite3.connect(source)
    pg = await asyncpg.connect(url)
    try:
        for table in TABLES:
            columns = ", ".join(f'"{c[1]}"' for c in src.execute(f'PRAGMA table_info("{table}")'))
            mine = sum(row_digest(tuple(r)) for r in src.execute(f'SELECT {columns} FROM "{table}"'))
            theirs = sum(row_digest(tuple(r)) for r in await pg.fetch(f'SELECT {columns} FROM "{table}"'))
            assert (table, mine) == (table, theirs)
    finally:
        await pg.close()
        src.close()


def test_inbox_filter_in_sql_matches_can_act(tmp_path: Path) -> None:
    path = tmp_path / "province.sqlite3"
    scale.prepare(path, 0.01)  # runs its own event loop
    asyncio.run(_compare(path))


async def _compare(path: Path) -> None:
    core = scale.core_for(path)
    await core.open()
    try:
        db = core.db
        # Some problems escalated one or two levels up and some assigned, so every rule is used.
        secretary_of_county = 2
        async with db.transaction() as tx:
            await core.orgs.grant(tx, person_id=secretary_of_county, org_id=100, role="secretary", actor_id=None,
                                  source="test")
        await db.write("UPDATE tickets SET escalation = id % 3 WHERE status IN ('new', 'accepted')")
        await db.write("UPDATE tickets SET assignee_id = 1 + (handler_org_id - ?) WHERE id % 7 = 0",
                         (FIRST_BRANCH,))
        await db.write("UPDATE tickets SET assignee_id = 3 WHERE id % 11 = 0")  # 3 leads only its branch
        await db.write("UPDATE tickets SET assignee_id = ? WHERE id % 5 = 0", (secretary_of_county,))
        organisers = [r[0] for r in await db.fetchall(
            "SELECT person_id FROM roles WHERE role = 'organizer' ORDER BY org_id LIMIT 3")]
        rows = await db.fetchall(
            f"SELECT * FROM tickets WHERE status IN ({','.join('?' * len(OPEN))}) ORDER BY id",
            tuple(s.value for s in OPEN))
        everyone = [Ticket.from_row(r) for r in rows]
        now = core.clock.now()
        for actor in [1, 3, secretary_of_county, 100, *organisers]:
            theirs = [t for t in everyone if await core.tickets.can_act(actor, t)]
            whole = await core.tickets.inbox(actor, room=len(everyone) + 1)
            assert sorted(line.ticket.id for line in whole.lines) == [t.id for t in theirs], actor
            # The counts over all of them, the first lines in the order the secretary reads them.
            overdue = {t.id for t in theirs if (t.accept_due if t.status == "new" else t.answer_due) <= now}
            theirs.sort(key=lambda t: (t.id not in overdue, t.status != "new", t.id))
            inbox = await core.tickets.inbox(actor)
            assert [line.ticket.id for line in inbox.lines] == [t.id for t in theirs[:INBOX_ROOM]], actor
            assert [line.overdue for line in inbox.lines] == [t.id in overdue for t in theirs[:INBOX_ROOM]]
            assert (inbox.total, inbox.new, inbox.overdue, inbox.mine) == (
                len(theirs), sum(t.status == "new" for t in theirs), len(overdue),
                sum(t.assignee_id == actor for t in theirs)), actor
        assert (await core.tickets.inbox(organisers[0])).total == len(everyone)  # the province's
        assert (await core.tickets.inbox(100)).total == 0  # a resident
    finally:
        await core.close()
