"""`python -m bot migrate --from data/bot.sqlite3 --to postgresql://…`: a county's SQLite database
copied into an empty PostgreSQL database, then verified table by table (row count and a checksum of
every row's values, independent of row order, compared between the two sides).

The target gets the same migrations first (bot/database_pg.py), so its schema is the code's; the
source must be at the same schema version (run `python -m bot db migrate` on it first). A target
holding any row is refused: nothing is ever overwritten. The copy is one transaction, so a failure
leaves the target as it was (empty), and so does a failed verification. Foreign keys are checked
at the end of that transaction, as the rows of a self-referencing table (orgs) may come in any order."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bot.database import _migrations
from bot.database_pg import PgDatabase

BATCH = 2000


class CopyRefused(Exception):
    """The copy was not made; the message says why and what to do."""


@dataclass
class CopyReport:
    tables: dict[str, int]  # rows copied and verified per table
    version: int


def row_digest(values: tuple[Any, ...]) -> int:
    """One row's fingerprint; values compared as text, as both engines give them back."""
    parts = ["\x00" if v is None else (v.hex() if isinstance(v, bytes) else str(v)) for v in values]
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:16], "big")


def _source_tables(conn: sqlite3.Connection) -> dict[str, list[str]]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name != 'schema_migrations' ORDER BY name")]
    return {name: [c[1] for c in conn.execute(f'PRAGMA table_info("{name}")')] for name in names}


# Rows the migrations themselves write (020: the masking key); the copy replaces them with the source's.
SEEDED = {"meta": "key NOT IN ('privacy_key')"}


async def _refuse_non_empty(pg: asyncpg.Connection) -> None:
    """A target that holds any row but the migrations' own is refused (one made by `db migrate` is not)."""
    tables = [r[0] for r in await pg.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename != 'schema_migrations'")]
    for table in tables:
        where = f" WHERE {SEEDED[table]}" if table in SEEDED else ""
        if await pg.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}"{where})'):
            raise CopyRefused(f"the target is not empty (table {table} has rows): copy only into a new database")


async def copy_sqlite_to_pg(source: Path, url: str) -> CopyReport:
    """Long because it is the whole copy in order: checks, schema, rows, sequences, verification."""
    if not source.exists():  # noqa: ASYNC240 — one stat before a long copy
        raise CopyRefused(f"{source}: no such file")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        have = {r[0] for r in src.execute("SELECT version FROM schema_migrations")}
        want = {v for v, _, _ in _migrations()}
        if have != want:
            raise CopyRefused(f"{source} is not at the code's schema (missing {sorted(want - have)}):"
                              " run `python -m bot db migrate` on it first")
        admin = await asyncpg.connect(url)
        try:
            await _refuse_non_empty(admin)
        finally:
            await admin.close()
        target = PgDatabase(url, pool_size=1)
        await target.connect()  # the schema, from the same migrations
        try:
            assert target._pool is not None
            tables = _source_tables(src)
            async with target._pool.acquire() as pg:
                await _refuse_non_empty(pg)
                counts = await _copy(src, pg, tables)
        finally:
            await target.close()
        return CopyReport(tables=counts, version=max(want))
    finally:
        src.close()


async def _copy(src: sqlite3.Connection, pg: asyncpg.Connection, tables: dict[str, list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with pg.transaction():
        # Foreign keys checked at COMMIT, not row by row (parents may come after their children).
        await pg.execute("SET CONSTRAINTS ALL DEFERRED")
        # (the migrations make every foreign key DEFERRABLE on PostgreSQL: bot/dialect.py).
        for table, columns in tables.items():
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
            insert = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'
            if table in SEEDED:
                await pg.execute(f'DELETE FROM "{table}"')  # only the migrations' rows (checked empty otherwise)
            cursor = src.execute(f'SELECT {names} FROM "{table}"')
            counts[table] = 0
            while batch := cursor.fetchmany(BATCH):
                await pg.executemany(insert, batch)
                counts[table] += len(batch)
            if "id" in columns:
                # Identity columns continue after the highest id copied.
                await pg.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), COALESCE(MAX(id), 0) + 1, false)"
                    f' FROM "{table}" WHERE pg_get_serial_sequence(\'"{table}"\', \'id\') IS NOT NULL')
        # Verified before COMMIT: a copy that does not match is rolled back, the target stays empty.
        await _verify(src, pg, tables, counts)
    return counts


async def _verify(src: sqlite3.Connection, pg: asyncpg.Connection, tables: dict[str, list[str]],
                  counts: dict[str, int]) -> None:
    for table, columns in tables.items():
        names = ", ".join(f'"{c}"' for c in columns)
        mine = sum(row_digest(tuple(r)) for r in src.execute(f'SELECT {names} FROM "{table}"')) % (1 << 128)
        theirs = 0
        async with pg.transaction():
            async for r in pg.cursor(f'SELECT {names} FROM "{table}"', prefetch=BATCH):
                theirs += row_digest(tuple(r))
        n = await pg.fetchval(f'SELECT COUNT(*) FROM "{table}"')
        if n != counts[table] or theirs % (1 << 128) != mine:
            raise RuntimeError(f"verification failed for {table}: {counts[table]} rows copied, {n} found,"
                               f" checksum {'equal' if theirs % (1 << 128) == mine else 'different'}")
