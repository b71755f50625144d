"""Backups of a real database (SQLite's backup API, or pg_dump with BOT_TEST_BACKEND=postgresql): one
taken while the services write is a consistent snapshot, and a restore checks it and writes only
into an empty database."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import tarfile
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from pg import ON_PG, database_for
from service_fixtures import (  # noqa: F401  (fixtures)
    MEMBER,
    RESIDENT,
    clock_fixture,
    core_fixture,
    make_core,
    tree_fixture,
)

from bot.backup import BackupError, backup, restore, verify
from bot.clock import SettableClock
from bot.core import Core
from bot.services.tickets import Item


class Writer:
    """Residents submitting problems through the services, one transaction each, until told to stop;
    the backup's steps wait for the next commit, so the copy is made while writes go on."""

    def __init__(self, core: Core, clock: SettableClock) -> None:
        self.core, self.clock = core, clock
        self.committed = 0
        self.changed = threading.Condition()
        self.stop = False

    async def run(self) -> None:
        while not self.stop:
            person = (RESIDENT, MEMBER)[self.committed % 2]
            await self.core.tickets.submit(person, [Item("text", f"第{self.committed}个问题：路灯坏了")],
                                           "infrastructure", True, False)
            self.clock.advance(timedelta(minutes=15))  # under the five-an-hour limit
            with self.changed:
                self.committed += 1
                self.changed.notify_all()
            await asyncio.sleep(0)

    def wait_for_a_commit(self, *_: object) -> None:
        """The backup's progress callback (its own thread): go on once one more write committed."""
        with self.changed:
            seen = self.committed
            assert self.changed.wait_for(lambda: self.committed > seen, timeout=10), "the writer stopped"


    def wait_for_commits(self, n: int) -> None:
        for _ in range(n):
            self.wait_for_a_commit()


async def table_counts(core: Core) -> dict[str, int]:
    tables = [r[0] for r in await core.db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {t: await core.db.fetchval(f'SELECT COUNT(*) FROM "{t}"') for t in tables}


async def test_backup_while_writing_is_a_consistent_snapshot(tree: Core, clock: SettableClock,
                                                             tmp_path: Path) -> None:
    writer = Writer(tree, clock)
    task = asyncio.create_task(writer.run())
    await asyncio.to_thread(writer.wait_for_a_commit)
    before = writer.committed
    out = tmp_path / "backup.sqlite3"
    # SQLite copies two pages per step and waits for a commit between steps; pg_dump starts once six
    # more commits followed the snapshot it reads.
    steps = (lambda *_: writer.wait_for_commits(6)) if ON_PG else writer.wait_for_a_commit
    report = await asyncio.to_thread(backup, tree.settings.database, out, 2, steps)
    writer.stop = True
    await task
    after = await tree.db.fetchval("SELECT COUNT(*) FROM tickets")
    # Writes committed during the copy are not in it; it holds what was committed when it began.
    assert before <= report.counts["tickets"] < after
    assert writer.committed - before > 5, "the backup did not overlap the writes"

    target = tmp_path / "restored" / "bot.sqlite3"
    assert restore(out, database_for(target)).counts == report.counts
    if not ON_PG:  # SQLite's own checks of the file (PostgreSQL checked every key as it loaded)
        conn = sqlite3.connect(target)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        finally:
            conn.close()
    restored = make_core(target, clock)
    await restored.open()
    try:
        # Each submission is one transaction: none is in the copy without its items and its event.
        assert await restored.db.fetchval(
            "SELECT COUNT(*) FROM tickets WHERE id NOT IN (SELECT ticket_id FROM ticket_items)") == 0
        assert await restored.db.fetchval(
            "SELECT COUNT(*) FROM ticket_events WHERE action = 'submitted'") == report.counts["tickets"]
        assert await table_counts(restored) == report.counts
        assert len(await restored.tickets.mine(RESIDENT)) == (report.counts["tickets"] + 1) // 2
    finally:
        await restored.close()


async def test_restore_refuses_a_database_that_holds_data(tree: Core, tmp_path: Path) -> None:
    out = tmp_path / "b.sqlite3"
    backup(tree.settings.database, out)
    with pytest.raises(BackupError, match="is not empty"):
        restore(out, tree.settings.database)
    # A freshly migrated database is empty: the backup goes in.
    empty = make_core(tmp_path / "fresh.sqlite3", SettableClock(tree.clock.now()))
    await empty.open()
    await empty.close()
    assert restore(out, database_for(tmp_path / "fresh.sqlite3")).counts["people"] > 0


@pytest.mark.skipif(ON_PG, reason="an SQLite backup file (PostgreSQL's: test_a_damaged_dump_is_refused)")
async def test_a_damaged_backup_is_refused(tree: Core, tmp_path: Path) -> None:
    out = tmp_path / "b.sqlite3"
    backup(tree.settings.database, out)
    conn = sqlite3.connect(out)
    conn.execute("DELETE FROM role_audit WHERE person_id = ?", (RESIDENT,))  # no longer what was counted
    conn.commit()
    conn.close()
    with pytest.raises(BackupError, match="rows differ from the backup's own count in role_audit"):
        verify(out)
    (tmp_path / "junk").write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="not an SQLite database"):
        restore(tmp_path / "junk", tmp_path / "target.sqlite3")
    assert not (tmp_path / "target.sqlite3").exists()


def test_backup_refuses_to_write_over_the_database_or_to_copy_junk(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="not an SQLite database"):
        backup(tmp_path / "junk", tmp_path / "out.sqlite3")
    assert list(tmp_path.iterdir()) == [tmp_path / "junk"]
    with pytest.raises(BackupError, match="the database itself"):
        backup(tmp_path / "junk", tmp_path / "junk")
    with pytest.raises(BackupError, match="cannot connect"):
        backup(f"postgresql://nobody@/bot?host={tmp_path}", tmp_path / "out")
    assert list(tmp_path.iterdir()) == [tmp_path / "junk"]


@pytest.mark.skipif(not ON_PG, reason="a PostgreSQL backup (SQLite's: test_a_damaged_backup_is_refused)")
async def test_a_damaged_dump_is_refused(tree: Core, tmp_path: Path) -> None:
    out = tmp_path / "b.backup"
    backup(tree.settings.database, out)
    verify(out)
    with tarfile.open(out) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    dump = bytearray(members["pg-dump.custom"])
    dump[len(dump) // 2] ^= 0xFF
    with tarfile.open(out, "w") as tar:
        for name, data in (("backup-manifest.json", members["backup-manifest.json"]), ("pg-dump.custom", bytes(dump))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    target = database_for(tmp_path / "target.sqlite3")
    with pytest.raises(BackupError, match="damaged"):
        restore(out, target)
    (tmp_path / "junk").write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="not an SQLite database"):
        restore(tmp_path / "junk", target)
    with pytest.raises(BackupError, match="restores only into"):
        restore(out, tmp_path / "file.sqlite3")
    assert not (tmp_path / "file.sqlite3").exists()
