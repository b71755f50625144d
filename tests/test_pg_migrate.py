"""`python -m bot migrate --from FILE --to postgresql://…`: a county's SQLite database copied into an
empty PostgreSQL database and verified; a non-empty target is refused. Runs wherever PostgreSQL is
installed (tests/pg.py), whichever backend the rest of the suite uses."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from orgtree import TREE, load
from pg import missing_reason, server

from bot.__main__ import main
from bot.clock import SettableClock
from bot.config import Settings
from bot.core import Core
from bot.database_pg import PgDatabase

if missing_reason() is not None:
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError(f"{missing_reason()} (CI=true)")
    pytest.skip(missing_reason() or "", allow_module_level=True)


START = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


async def _county(path: Path) -> dict[str, int]:
    core = Core.build(Settings(_env_file=None, token=None, database=path), clock=SettableClock(START))  # type: ignore[call-arg]
    await core.open()
    try:
        await load(core, TREE)
        async with core.db.transaction() as tx:
            await core.people.ensure(tx, 5_000_000_001, "张三")
        tables = [r[0] for r in await core.db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: await core.db.fetchval(f'SELECT COUNT(*) FROM "{t}"') for t in tables}
    finally:
        await core.close()


async def test_copy_verified_then_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "bot.sqlite3"
    counts = await _county(source)
    url = server().fresh(str(tmp_path / "target"), migrated=False)
    assert await asyncio.to_thread(main, ["migrate", "--from", str(source), "--to", url]) == 0
    assert "row counts and checksums verified" in capsys.readouterr().out
    db = PgDatabase(url)
    await db.connect()
    try:
        for table, n in counts.items():
            assert await db.fetchval(f'SELECT COUNT(*) FROM "{table}"') == n, table
        assert await db.fetchval("SELECT name FROM people WHERE telegram_id = ?", (5_000_000_001,)) == "张三"
        # Ids continue after the copied ones.
        async with db.transaction() as tx:
            new = await tx.insert("INSERT INTO orgs (code, name, kind, created_at) VALUES (?, ?, ?, ?)",
                                  ("new", "新", "branch", "2026-01-01T00:00:00Z"))
        assert new > await db.fetchval("SELECT MAX(id) FROM orgs WHERE code != 'new'")
    finally:
        await db.close()
    assert await asyncio.to_thread(main, ["migrate", "--from", str(source), "--to", url]) == 1
    assert "not empty" in capsys.readouterr().err
