"""SQLite: one writer connection behind a lock, one reader, numbered migrations.

Statements that never wait run on the event loop's thread with plain sqlite3: the bot's are point
lookups and small writes on indexed keys that take microseconds, and handing each to a database
thread and back cost several times more (`python -m bench wall`: about half of the bot's CPU per
update). In WAL mode a reader never waits for the writer, and commits do not fsync
(synchronous=NORMAL). What may wait goes to aiosqlite's thread, so the loop never stops: the write
lock while another process (a command-line import) holds it (the loop's writer has busy_timeout=0
and, when refused, waits for the lock there and tries again), the migrations at start-up, and the
WAL checkpoint, the one step that waits for the disk."""

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
import asyncpg

from bot.dialect import split_sql

log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]
Row = sqlite3.Row
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Commits between two checkpoints; SQLite's own default is about every 1,000 pages written.
CHECKPOINT_EVERY = 200
# A broken UNIQUE or FOREIGN KEY constraint, whichever the backend: `except IntegrityError`.
IntegrityError = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


class Tx:
    """An open write transaction; callbacks registered here run once it has committed."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._after_commit: list[Callable[[], None]] = []

    async def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return _fetchall(self._conn, sql, params)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def insert(self, sql: str, params: Params = ()) -> int:
        return int(self._conn.execute(sql, params).lastrowid or 0)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)


class Snapshot:
    """Reads from one snapshot, off the event loop (`Database.snapshot`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await asyncio.to_thread(_fetchall, self._conn, sql, params)


class Database:
    """The bot's one SQLite file. Writes go through `transaction()`, reads through `fetch*`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.dialect = "sqlite"
        # One process owns a SQLite file: per-process caches of what only this process writes are
        # safe, and a row read for sending cannot be taken by another instance.
        self.shared = False
        self.skip_locked = ""  # appended to a SELECT that claims rows (PostgreSQL: FOR UPDATE SKIP LOCKED)
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._waiter: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._commits = 0
        self._checkpointing: asyncio.Task[None] | None = None
        self.applied: list[str] = []  # the migrations `connect` applied
        self.last_checkpoint: tuple[int, int, int] | None = None  # (busy, WAL frames, frames copied)

    async def connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The connection that waits: for the lock, for migrations, for checkpoints (its own thread).
        self._waiter = await aiosqlite.connect(self.path, isolation_level=None)
        await self._waiter.execute("PRAGMA busy_timeout=10000")
        await self._waiter.execute("PRAGMA journal_mode=WAL")
        await self._waiter.execute("PRAGMA foreign_keys=ON")
        self.applied = await self.migrate()
        self._writer = self._open(busy_ms=0)  # never waits on the loop: see _locked
        self._writer.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint
        # A WAL reader is kept waiting only while another connection recovers the WAL.
        self._reader = self._open(busy_ms=2000)

    def _open(self, busy_ms: int) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
        return conn

    async def close(self) -> None:
        if self._checkpointing is not None:
            await self._checkpointing
            self._checkpointing = None
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        if self._waiter is not None:
            await self._waiter.close()  # the last connection to close checkpoints the WAL
        self._reader = self._writer = self._waiter = None

    async def migrate(self) -> list[str]:
        """Apply every migration in bot/migrations not yet applied, in number order (on the
        waiting connection: another process may hold the lock at start-up)."""
        assert self._waiter is not None
        conn = self._waiter
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        done = {row[0] for row in await conn.execute_fetchall("SELECT version FROM schema_migrations")}
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

    async def _locked(self, statement: Callable[[], Any]) -> Any:
        """Run `statement` on the loop's writer; when another process holds the write lock, wait
        for it on aiosqlite's thread (the loop serves other chats meanwhile) and try again."""
        assert self._waiter is not None
        while True:
            try:
                return statement()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            # busy_timeout there: an error after 10 s, as a wait on the loop would have given.
            await self._waiter.execute("BEGIN IMMEDIATE")
            await self._waiter.execute("ROLLBACK")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """BEGIN IMMEDIATE … COMMIT; rolled back on any exception."""
        assert self._writer is not None, "database not connected"
        tx = Tx(self._writer)
        writer = self._writer
        async with self._write_lock:
            await self._locked(lambda: writer.execute("BEGIN IMMEDIATE"))
            try:
                yield tx
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")
            self._committed()
        for callback in tx._after_commit:
            callback()

    async def write(self, sql: str, params: Params = ()) -> int:
        """One statement on its own, atomic by itself (SQLite's autocommit), for the many small
        writes (flow state, names). Returns the number of rows changed."""
        assert self._writer is not None, "database not connected"
        writer = self._writer
        async with self._write_lock:
            changed = await self._locked(lambda: writer.execute(sql, params).rowcount)
            self._committed()
        return changed

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        assert self._reader is not None, "database not connected"
        return _fetchall(self._reader, sql, params)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Snapshot]:
        """Long reads (a county's year of records for a bulletin) on a read-only connection of their
        own, each statement in a worker thread so that the loop goes on, all from one snapshot
        (a read transaction)."""
        conn = await asyncio.to_thread(self._open_snapshot)
        try:
            yield Snapshot(conn)
        finally:
            await asyncio.to_thread(conn.close)

    def _open_snapshot(self) -> sqlite3.Connection:
        # check_same_thread=False: used by one task at a time, from whichever worker thread.
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("BEGIN")
        return conn

    def _committed(self) -> None:
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and self._checkpointing is None:
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        """Copy the WAL back into the database file on aiosqlite's thread: this is the step that
        waits for the disk (fsync), so the loop must not do it. PASSIVE: it never blocks the writer
        or the readers; what it cannot copy now, the next one will."""
        try:
            assert self._waiter is not None
            rows = await self._waiter.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
            busy, frames, copied = next(iter(rows))
            self.last_checkpoint = (busy, frames, copied)
        except (sqlite3.Error, ValueError, AssertionError) as exc:
            log.warning("WAL checkpoint failed: %s", exc)
        finally:
            self._checkpointing = None


def _fetchall(conn: sqlite3.Connection, sql: str, params: Params = ()) -> list[Row]:
    """Execute and read to the end with no await in between: a statement left open would hold the
    connection's read snapshot, and later reads would not see what was committed since."""
    cursor = conn.execute(sql, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


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
    return split_sql(sql)


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_database(target: Path | str) -> Any:
    """BOT_DATABASE → the backend: a postgresql:// URL → PgDatabase (bot/database_pg.py), a file path
    or sqlite:///path → Database. The one place that chooses; nothing else branches on it."""
    if is_postgres_url(target):
        from bot.database_pg import PgDatabase

        return PgDatabase(str(target))
    text = str(target)
    return Database(Path(text.removeprefix("sqlite:///")) if text.startswith("sqlite:///") else Path(text))
