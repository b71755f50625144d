"""The one org tree and cast of people every test starts from, and the helpers to load it into a
Core on a SQLite file. Service tests load all of it (`TREE`); end-to-end tests load the part whose
people have chats on the fake Bot API server (`CHAT_TREE`); org-file tests load `SAMPLE`. A test that
needs someone or something more adds it on top (`org_file(..., extra_orgs=..., extra_people=...)`).

    danfeng 中共丹凤县委 (county)              COUNTY_ORG organizer
      longjuzhai 龙驹寨街道党工委 (township)    TOWN_ORG organizer
        sanyi 三义村党支部 (village_branch)     SECRETARY secretary, MEMBER member,
                                                RESIDENT resident, VILLAGE_ORG organizer
        erlang 二郎村党支部 (village_branch)    ERLANG_SECRETARY secretary
      chengguan 城关街道党工委 (township)       OTHER_TOWN_ORG organizer (another branch)
        xijie 西街社区党支部 (village_branch)   (nobody)
    lonely 独立党支部 (other, a second root)   (nobody)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pg import database_for

from bot.clock import SettableClock, to_db
from bot.config import Settings
from bot.core import Core
from bot.services import orgfile
from bot.services.orgfile import ImportReport

# The tree, as the org file writes it (`children` nest).
ORGS: list[dict[str, Any]] = [
    {"code": "danfeng", "name": "中共丹凤县委", "kind": "county", "children": [
        {"code": "longjuzhai", "name": "龙驹寨街道党工委", "kind": "township", "children": [
            {"code": "sanyi", "name": "三义村党支部", "kind": "village_branch"},
            {"code": "erlang", "name": "二郎村党支部", "kind": "village_branch"},
        ]},
        {"code": "chengguan", "name": "城关街道党工委", "kind": "township", "children": [
            {"code": "xijie", "name": "西街社区党支部", "kind": "village_branch"},
        ]},
    ]},
    {"code": "lonely", "name": "独立党支部", "kind": "other"},
]


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    roles: tuple[str, ...]  # role@org_code

    def entry(self) -> dict[str, Any]:
        return {"telegram_id": self.id, "name": self.name, "roles": list(self.roles)}


# Who is who (every role of the tree has one holder).
SECRETARY = 1001         # secretary@sanyi (in CHAT_TREE and SAMPLE also a member there)
TOWN_ORG = 1002          # organizer@longjuzhai
ERLANG_SECRETARY = 1003  # secretary@erlang (a sibling of sanyi)
COUNTY_ORG = 1004        # organizer@danfeng
MEMBER = 1005            # member@sanyi
RESIDENT = 1006          # resident@sanyi
OTHER_TOWN_ORG = 1007    # organizer@chengguan (another branch)
VILLAGE_ORG = 1008       # organizer@sanyi
STRANGER = 4242          # not in the database
ADMIN = 1009             # the operator in the service tests' settings (not in the tree)

PEOPLE: dict[int, Person] = {p.id: p for p in (
    Person(SECRETARY, "王建国", ("secretary@sanyi",)),
    Person(TOWN_ORG, "李明", ("organizer@longjuzhai",)),
    Person(ERLANG_SECRETARY, "赵强", ("secretary@erlang",)),
    Person(COUNTY_ORG, "县组织委员", ("organizer@danfeng",)),
    Person(MEMBER, "党员张三", ("member@sanyi",)),
    Person(RESIDENT, "村民赵四", ("resident@sanyi",)),
    Person(OTHER_TOWN_ORG, "城关组织委员", ("organizer@chengguan",)),
    Person(VILLAGE_ORG, "三义组织委员", ("organizer@sanyi",)),
)}

# The people with a chat in the end-to-end tests (the others would be sent notices nobody reads).
CHAT_CAST = (SECRETARY, TOWN_ORG, ERLANG_SECRETARY)


def _prune(orgs: Sequence[Mapping[str, Any]], keep: set[str]) -> list[dict[str, Any]]:
    """The orgs whose code is in `keep`, with their ancestors."""
    out = []
    for org in orgs:
        children = _prune(org.get("children", []), keep)
        if org["code"] in keep or children:
            node = {k: v for k, v in org.items() if k != "children"}
            if children:
                node["children"] = children
            out.append(node)
    return out


def _graft(orgs: Sequence[Mapping[str, Any]], extra: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """A copy of the tree with extra children added under the orgs named in `extra`."""
    out = []
    for org in orgs:
        node = {k: v for k, v in org.items() if k != "children"}
        children = _graft(org.get("children", []), extra) + [dict(c) for c in extra.get(org["code"], ())]
        if children:
            node["children"] = children
        out.append(node)
    return out


def org_file(people: Iterable[int] | None = None, *, only: Iterable[str] | None = None,
             extra_orgs: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
             extra_people: Iterable[Person] = (), extra_roles: Mapping[int, Sequence[str]] | None = None) -> str:
    """The org file (YAML, the import format) of the tree: `people` by id (all when None), only
    the orgs in `only` and their ancestors (all when None), then extra orgs grafted under existing
    ones ({parent code: [org, ...]}), extra people, and extra roles for people of the cast."""
    orgs = _prune(ORGS, set(only)) if only is not None else ORGS
    orgs = _graft(orgs, extra_orgs or {})
    more = extra_roles or {}
    cast = [Person(p.id, p.name, p.roles + tuple(more.get(p.id, ()))) for p in
            (PEOPLE[i] for i in (PEOPLE if people is None else people))] + list(extra_people)
    return yaml.safe_dump({"orgs": orgs, "people": [p.entry() for p in cast]}, allow_unicode=True, sort_keys=False)


TREE = org_file()
# What the end-to-end tests start from: the branch with its two villages and the chat cast.
# Its secretary is also a party member of the branch, as a village secretary is.
CHAT_TREE = org_file(CHAT_CAST, only={"sanyi", "erlang"}, extra_roles={SECRETARY: ["member@sanyi"]})
# The smallest whole file (a chain of three orgs, two people), for the org file's own tests.
SAMPLE = org_file((SECRETARY, TOWN_ORG), only={"sanyi"}, extra_roles={SECRETARY: ["member@sanyi"]})


def make_settings(database: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"token": None, "database": database_for(database), "admins": frozenset({ADMIN}),
                              "locale": "zh_CN", "timezone": "Asia/Shanghai"}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_core(database: Path, clock: SettableClock | datetime) -> Core:
    """A Core on this SQLite file, not opened yet."""
    settable = clock if isinstance(clock, SettableClock) else SettableClock(clock)
    return Core.build(make_settings(database), clock=settable)


async def load(core: Core, text: str, note: str = "test.yaml") -> ImportReport:
    """What `python -m bot orgs import` does: check against the known codes, then apply in one transaction."""
    known = {r["code"] for r in await core.db.fetchall("SELECT code FROM orgs")}
    plan = orgfile.parse(text, known)
    async with core.db.transaction() as tx:
        return await orgfile.apply(core.orgs, tx, plan, source_note=note)


async def in_use_from(core: Core, day: datetime) -> None:
    """As if the whole tree had been loaded, and its people had joined, on `day`: the quota checks
    and the ledger count a period only when the bot was in use for at least half of it, and the
    fixtures load the tree on 27 November, too late for the fourth quarter and the year."""
    async with core.db.transaction() as tx:
        await tx.execute("UPDATE orgs SET created_at = ?", (to_db(day),))
        await tx.execute("UPDATE roles SET granted_at = ?", (to_db(day),))
        await tx.execute("UPDATE role_audit SET at = ?", (to_db(day),))
