"""Fixtures and helpers for the service tests: a real Core on a real SQLite file in tmp_path, with
the shared org tree of tests/orgtree.py.

Kept out of conftest.py on purpose (the end-to-end tests own that file). A test module imports the
fixtures it uses (`core_fixture` is the fixture named `core`, and so on); fixtures defined in a test
module take precedence over conftest.py's fixtures of the same name.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orgtree
import pytest
from orgtree import (  # noqa: F401  (the shared tree, re-exported: service tests import from here)
    ADMIN,
    COUNTY_ORG,
    ERLANG_SECRETARY,
    MEMBER,
    OTHER_TOWN_ORG,
    RESIDENT,
    SAMPLE,
    SECRETARY,
    STRANGER,
    TOWN_ORG,
    TREE,
    VILLAGE_ORG,
    load,
)

from bot.clock import SettableClock
from bot.core import Core

START = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)

def make_core(db_path: Path, clock: SettableClock | None = None) -> Core:
    return orgtree.make_core(db_path, clock or SettableClock(START))


@pytest.fixture(name="clock")
def clock_fixture() -> SettableClock:
    return SettableClock(START)


@pytest.fixture(name="core")
async def core_fixture(tmp_path: Path, clock: SettableClock) -> AsyncIterator[Core]:
    c = make_core(tmp_path / "t.sqlite", clock)
    await c.open()
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture(name="tree")
async def tree_fixture(core: Core) -> Core:
    """The Core with TREE loaded."""
    await load(core, TREE)
    return core


async def org_id(core: Core, code: str) -> int:
    org = await core.orgs.by_code(code)
    assert org is not None, code
    return org.id


async def rows(core: Core, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return [dict(r) for r in await core.db.fetchall(sql, params)]


async def snapshot(core: Core) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table that a service writes (to prove that nothing changed)."""
    out = {}
    for table in ("orgs", "people", "roles", "role_audit", "invites", "join_requests", "outbox", "flows", "meta"):
        out[table] = [tuple(r) for r in await core.db.fetchall(f"SELECT * FROM {table} ORDER BY 1, 2")]
    return out


async def roles_of(core: Core, person_id: int) -> set[tuple[str, str]]:
    """{(role, org code)} held by a person."""
    return {(g.role, g.org.code) for g in await core.orgs.grants(person_id)}


async def outbox_rows(core: Core, chat_id: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM outbox" + (" WHERE chat_id = ?" if chat_id is not None else "") + " ORDER BY id"
    found = await rows(core, sql, (chat_id,) if chat_id is not None else ())
    for row in found:
        row["payload"] = json.loads(row["payload"])
    return found
