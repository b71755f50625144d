"""SQLite: one writer connection (aiosqlite) behind a lock, one reader, numbered migrations.

Writes go through aiosqlite's thread: a write may wait for SQLite's lock (another process, a
command-line import) or for the disk (a commit's or a checkpoint's fsync), and the event loop
must never wait with it. Reads run on the loop's thread with plain sqlite3: they are point lookups
on indexed keys that take microseconds, a WAL reader never waits for a writer, and the hop to a
database thread and back cost several times the read itself (`python -m bench wall`: half of the
bot's CPU per update went to those hops)."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class Tx:
    """An open write transaction; callbacks registered here run once it has committed."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._after_commit: list[Callable[[], None]] = []

    async def execute(self, sql: str, params: Params = ()) -> aiosqlite.Cursor:
        return await self._conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        async with self._conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        async with self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def insert(self, sql: str, params: Params = ()) -> int:
        cur = await self._conn.execute(sql, params)
        return int(cur.lastrowid or 0)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)


class Database:
    """The bot's one SQLite file. Writes go through `transaction()`, reads through `fetch*`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()
        self.applied: list[str] = []  # the migrations `connect` applied

    async def connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._open()
        await self._writer.execute("PRAGMA journal_mode=WAL")
        self.applied = await self.migrate()
        self._reader = self._open_reader()

    async def _open(self) -> aiosqlite.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _open_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys=ON")
        # A WAL reader waits only while another connection recovers the WAL after a crash.
        conn.execute("PRAGMA busy_timeout=2000")
        return conn

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._writer is not None:
            await self._writer.close()  # the last connection to close checkpoints the WAL
        self._reader = self._writer = None

    async def migrate(self) -> list[str]:
        """Apply every migration in bot/migrations not yet applied, in number order."""
        assert self._writer is not None
        conn = self._writer
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
        )
        async with conn.execute("SELECT version FROM schema_migrations") as cur:
            done = {row[0] for row in await cur.fetchall()}
        applied = []
        for version, name, sql in _migrations():
            if version in done:
                continue
            log.info("applying migration %s", name)
            await conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(sql):
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (version, name))
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            applied.append(name)
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """BEGIN IMMEDIATE … COMMIT; rolled back on any exception."""
        assert self._writer is not None, "database not connected"
        tx = Tx(self._writer)
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")
        for callback in tx._after_commit:
            callback()

    async def write(self, sql: str, params: Params = ()) -> int:
        """One statement on its own, atomic by itself (SQLite's autocommit): one trip to the
        database thread instead of three, for the many small writes (flow state, names).
        Returns the number of rows changed."""
        assert self._writer is not None, "database not connected"
        async with self._write_lock:
            cur = await self._writer.execute(sql, params)
            changed = cur.rowcount
            await cur.close()
        return changed

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        assert self._reader is not None, "database not connected"
        # Execute, read to the end and close with no await in between: a statement left open
        # would hold the connection's read snapshot, and later reads would miss later commits.
        cursor = self._reader.execute(sql, params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("bot.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a number: {sorted(versions)}")
    return found


def _split_sql(sql: str) -> list[str]:
    """Split a migration file on ';' at line ends (our migrations hold no triggers)."""
    statements, current = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current))
            current = []
    if "".join(current).strip():
        statements.append("\n".join(current))
    return statements
