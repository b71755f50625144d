"""Fixtures and helpers for the service tests: a real Core on a real SQLite file in tmp_path.

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

import pytest

from bot.clock import SettableClock
from bot.config import Settings
from bot.core import Core
from bot.services import orgfile
from bot.services.orgfile import ImportReport

START = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ADMIN = 9

# The sample from the issue.
SAMPLE = """\
orgs:
  - code: danfeng
    name: 中共丹凤县委
    kind: county
    children:
      - code: longjuzhai
        name: 龙驹寨街道党工委
        kind: township
        children:
          - {code: sanyi, name: 三义村党支部, kind: village_branch}
people:
  - {telegram_id: 1001, name: 王建国, roles: [secretary@sanyi, member@sanyi]}
  - {telegram_id: 1002, name: 李明, roles: [organizer@longjuzhai]}
"""

# A wider tree for the rights tests (ids are chosen so that every role has one holder):
#   danfeng (county)                      1 organizer
#     longjuzhai (township)               2 organizer
#       sanyi (village_branch)            3 secretary, 4 member, 5 resident, 7 organizer
#       erlang (village_branch)           8 secretary
#     chengguan (township)                6 organizer
#       xijie (village_branch)            (nobody)
#   lonely (other, a second root)         (nobody)
TREE = """\
orgs:
  - code: danfeng
    name: 中共丹凤县委
    kind: county
    children:
      - code: longjuzhai
        name: 龙驹寨街道党工委
        kind: township
        children:
          - {code: sanyi, name: 三义村党支部, kind: village_branch}
          - {code: erlang, name: 二郎庙村党支部, kind: village_branch}
      - code: chengguan
        name: 城关街道党工委
        kind: township
        children:
          - {code: xijie, name: 西街社区党支部, kind: village_branch}
  - {code: lonely, name: 独立党支部, kind: other}
people:
  - {telegram_id: 1, name: 县组织委员, roles: [organizer@danfeng]}
  - {telegram_id: 2, name: 李明, roles: [organizer@longjuzhai]}
  - {telegram_id: 3, name: 王建国, roles: [secretary@sanyi]}
  - {telegram_id: 4, name: 党员张三, roles: [member@sanyi]}
  - {telegram_id: 5, name: 村民赵四, roles: [resident@sanyi]}
  - {telegram_id: 6, name: 城关组织委员, roles: [organizer@chengguan]}
  - {telegram_id: 7, name: 三义组织委员, roles: [organizer@sanyi]}
  - {telegram_id: 8, name: 二郎书记, roles: [secretary@erlang]}
"""

# Who is who in TREE.
COUNTY_ORG = 1        # organizer@danfeng
TOWN_ORG = 2          # organizer@longjuzhai
SECRETARY = 3         # secretary@sanyi
MEMBER = 4            # member@sanyi
RESIDENT = 5          # resident@sanyi
OTHER_TOWN_ORG = 6    # organizer@chengguan (another branch)
VILLAGE_ORG = 7       # organizer@sanyi
ERLANG_SECRETARY = 8  # secretary@erlang (a sibling of sanyi)
STRANGER = 4242       # not in the database


def make_core(db_path: Path, clock: SettableClock | None = None) -> Core:
    settings = Settings(_env_file=None, token=None, database=db_path, admins=frozenset({ADMIN}),  # type: ignore[call-arg]
                        locale="zh_CN", timezone="Asia/Shanghai")
    return Core.build(settings, clock=clock or SettableClock(START))


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


async def load(core: Core, text: str, note: str = "test.yaml") -> ImportReport:
    """What `python -m bot orgs import` does: check against the known codes, then apply in one transaction."""
    known = {r["code"] for r in await core.db.fetchall("SELECT code FROM orgs")}
    plan = orgfile.parse(text, known)
    async with core.db.transaction() as tx:
        return await orgfile.apply(core.orgs, tx, plan, source_note=note)


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
