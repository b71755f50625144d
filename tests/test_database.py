"""The database layer: reads that see every commit, rollback, WAL checkpoints off the loop, and a
write that waits for another process's lock without stopping the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.database import CHECKPOINT_EVERY, Database


async def test_a_read_sees_what_was_committed_just_before(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.sqlite3")
    await db.connect()
    try:
        assert db.applied, "a fresh file gets every migration"
        for n in range(3):
            await db.write("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{n}", str(n)))
            assert await db.fetchval("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'") == n + 1
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await tx.execute("DELETE FROM meta")
                raise RuntimeError("changed my mind")
        assert await db.fetchval("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'") == 3
    finally:
        await db.close()


async def test_the_wal_is_checkpointed_off_the_loop_every_so_many_commits(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = Database(path)
    await db.connect()
    try:
        for n in range(CHECKPOINT_EVERY):
            await db.write("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{n}", "x" * 500))
        task = db._checkpointing
        assert task is not None, "the commit that reached the count started a checkpoint"
        assert db.last_checkpoint is None
        await task
        assert db.last_checkpoint is not None
        busy, frames, copied = db.last_checkpoint
        assert busy == 0 and frames >= CHECKPOINT_EVERY and copied == frames
    finally:
        await db.close()


async def test_a_write_waiting_for_another_process_does_not_stop_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = Database(path)
    await db.connect()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # a command-line import holding the write lock
        write = asyncio.create_task(db.write("INSERT INTO meta (key, value) VALUES ('w', '1')"))
        ticks = 0
        for _ in range(20):  # the loop keeps serving other chats meanwhile, reads included
            await asyncio.sleep(0.01)
            ticks += 1
            assert await db.fetchval("SELECT COUNT(*) FROM meta WHERE key = 'w'") == 0
        assert ticks == 20 and not write.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(write, timeout=10) == 1
        assert await db.fetchval("SELECT value FROM meta WHERE key = 'w'") == "1"
    finally:
        other.close()
        await db.close()
