"""Outbox rows claimed by instances sharing one PostgreSQL database (bot/outbox_claims.py): each
instance has its own connection pool, as separate processes would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pg import ON_PG, database_for

from bot.clock import SettableClock, to_db
from bot.database import open_database
from bot.outbox import Outbox
from bot.outbox_claims import OutboxClaims
from bot.sendslots import NOW

pytestmark = pytest.mark.skipif(not ON_PG,
                                reason="claims across instances need PostgreSQL (BOT_TEST_BACKEND=postgresql)")

COLUMNS = "id, chat_id, priority, not_before, dedup_key"


@pytest.fixture
async def dbs(tmp_path: Path) -> AsyncIterator[list[Any]]:
    url = database_for(tmp_path / "claims.sqlite3")
    opened = [open_database(url) for _ in range(2)]
    for db in opened:
        await db.connect()
    yield opened
    for db in opened:
        await db.close()


async def queue(db: Any, clock: SettableClock, rows: list[tuple[str, int]]) -> None:
    outbox = Outbox(db, clock)
    async with db.transaction() as tx:
        for key, chat in rows:
            await outbox.send_text(tx, key=key, chat_id=chat, text=key)


async def claim(claims: OutboxClaims, clock: SettableClock, limit: int = 100) -> list[str]:
    rows = await claims.claim(COLUMNS, "status = 'pending' AND not_before <= ?", "priority, not_before, id",
                              (to_db(clock.now()),), limit)
    return [row["dedup_key"] for row in rows]


async def test_two_instances_never_claim_one_row_nor_two_rows_of_one_chat(dbs: list[Any], clock: SettableClock) -> None:
    await queue(dbs[0], clock, [(f"k{i}", 100 + i // 2) for i in range(40)])  # two rows for each chat
    a, b = OutboxClaims(dbs[0]), OutboxClaims(dbs[1])
    got_a, got_b = await asyncio.gather(claim(a, clock, 12), claim(b, clock, 12))
    assert not set(got_a) & set(got_b)
    chats_a = {int(k[1:]) // 2 for k in got_a}
    chats_b = {int(k[1:]) // 2 for k in got_b}
    assert not chats_a & chats_b  # one chat's rows at one instance at a time (their order)
    assert sorted(got_a, key=lambda k: int(k[1:])) == got_a  # in sending order
    owners = await dbs[0].fetchall("SELECT claimed_by, COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL"
                                   " GROUP BY claimed_by")
    assert {row[0]: row[1] for row in owners} == {a.instance: len(got_a), b.instance: len(got_b)}
    # What a lets go (rows it did not start), a third instance may claim; what b holds stays b's.
    mine = await dbs[0].fetchall("SELECT id FROM outbox WHERE claimed_by = ?", (a.instance,))
    await a.release([row[0] for row in mine])
    again = await claim(OutboxClaims(dbs[1]), clock)
    assert set(got_a) <= set(again) and not set(got_b) & set(again)


async def test_a_row_held_for_its_backoff_is_not_claimed_and_an_expired_lease_is(
        dbs: list[Any], clock: SettableClock) -> None:
    await queue(dbs[0], clock, [("held", 1), ("dead", 2), ("alive", 3)])
    async with dbs[0].transaction() as tx:
        await tx.execute(f"UPDATE outbox SET lease_until = {NOW} + 30 WHERE dedup_key = 'held'")
        await tx.execute(f"UPDATE outbox SET claimed_by = 'gone', lease_until = {NOW} - 1 WHERE dedup_key = 'dead'")
        await tx.execute(f"UPDATE outbox SET claimed_by = 'other', lease_until = {NOW} + 30 WHERE dedup_key = 'alive'")
    assert await claim(OutboxClaims(dbs[1]), clock) == ["dead"]
