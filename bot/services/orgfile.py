"""The org tree as a YAML file: validated whole before anything is written, and exported in the same shape."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.clock import to_db
from bot.database import Tx
from bot.services.orgs import ORG_KINDS, ROLES, OrgService

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_NAME = 100
MAX_PERSON_NAME = 200  # Telegram full names reach 129 characters
ORG_KEYS = {"code", "name", "kind", "children"}
PERSON_KEYS = {"telegram_id", "name", "roles"}


@dataclass
class OrgEntry:
    code: str
    name: str
    kind: str
    parent_code: str | None
    position: int


@dataclass
class PersonEntry:
    telegram_id: int
    name: str
    roles: list[tuple[str, str]]  # (role, org code)


@dataclass
class OrgFile:
    orgs: list[OrgEntry] = field(default_factory=list)
    people: list[PersonEntry] = field(default_factory=list)


@dataclass
class ImportReport:
    orgs_added: int = 0
    orgs_changed: int = 0
    people_added: int = 0
    roles_granted: int = 0
    roles_revoked: int = 0
    orgs_not_in_file: list[str] = field(default_factory=list)


class OrgFileError(Exception):
    """Every problem found in the file, each with its path; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse(text: str, known_codes: set[str] | frozenset[str] = frozenset()) -> OrgFile:
    """Check the whole file; raise OrgFileError listing every problem with its path."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise OrgFileError([f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})"]) from None
    problems: list[str] = []
    result = OrgFile()
    if not isinstance(doc, dict):
        raise OrgFileError(["(top): expected a mapping with 'orgs' and 'people'"])
    for key in doc:
        if key not in ("orgs", "people"):
            problems.append(f"{key}: unknown key (expected 'orgs' and 'people')")
    first_seen: dict[str, str] = {}
    if "orgs" not in doc:
        problems.append("orgs: missing")
    else:
        _walk_orgs(doc["orgs"], "orgs", None, first_seen, problems, result)

    codes = set(first_seen) | set(known_codes)
    people = doc.get("people") or []
    if not isinstance(people, list):
        problems.append("people: expected a list")
        people = []
    seen_ids: dict[int, str] = {}
    for i, item in enumerate(people):
        entry = _check_person(item, f"people[{i}]", codes, seen_ids, problems)
        if entry is not None:
            result.people.append(entry)
    if problems:
        raise OrgFileError(problems)
    return result


def _walk_orgs(items: Any, path: str, parent: str | None, first_seen: dict[str, str], problems: list[str],
               result: OrgFile) -> None:
    """Check a list of orgs and, depth first, their children; good ones go into `result`."""
    if not isinstance(items, list):
        problems.append(f"{path}: expected a list of orgs")
        return
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{here}: expected a mapping with code, name, kind")
            continue
        for key in item:
            if key not in ORG_KEYS:
                problems.append(f"{here}.{key}: unknown key (expected {', '.join(sorted(ORG_KEYS))})")
        code, name, kind = item.get("code"), item.get("name"), item.get("kind")
        ok = _check_code(code, here, first_seen, problems)
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{here}.name: missing or empty")
            ok = False
        elif len(name) > MAX_NAME:
            problems.append(f"{here}.name: longer than {MAX_NAME} characters")
            ok = False
        if kind not in ORG_KINDS:
            problems.append(f"{here}.kind: {kind!r} is not one of {' | '.join(ORG_KINDS)}")
            ok = False
        if ok:
            result.orgs.append(OrgEntry(code=code, name=name.strip(), kind=kind, parent_code=parent, position=i))
        if "children" in item and item["children"] is not None:
            _walk_orgs(item["children"], f"{here}.children", code if isinstance(code, str) else None, first_seen,
                       problems, result)


def _check_code(code: Any, here: str, first_seen: dict[str, str], problems: list[str]) -> bool:
    if code is None:
        problems.append(f"{here}.code: missing")
        return False
    if not isinstance(code, str) or not CODE_PATTERN.match(code):
        problems.append(f"{here}.code: {code!r} is not a valid code (lower-case letters, digits, - and _,"
                        " at most 32, starting with a letter or digit)")
        return False
    if code in first_seen:
        problems.append(f"{here}.code: duplicate code {code!r} (first at {first_seen[code]})")
        return False
    first_seen[code] = f"{here}.code"
    return True


def _check_person(item: Any, here: str, codes: set[str], seen_ids: dict[int, str],
                  problems: list[str]) -> PersonEntry | None:
    """One entry of `people`, or None (with its problems added) when it is not right."""
    if not isinstance(item, dict):
        problems.append(f"{here}: expected a mapping with telegram_id, name, roles")
        return None
    for key in item:
        if key not in PERSON_KEYS:
            problems.append(f"{here}.{key}: unknown key (expected {', '.join(sorted(PERSON_KEYS))})")
    tid, name, roles = item.get("telegram_id"), item.get("name", ""), item.get("roles") or []
    ok = True
    if not isinstance(tid, int) or isinstance(tid, bool) or tid <= 0:
        problems.append(f"{here}.telegram_id: {tid!r} is not a Telegram user id (a positive whole number)")
        ok = False
    elif tid in seen_ids:
        problems.append(f"{here}.telegram_id: duplicate id {tid} (first at {seen_ids[tid]})")
        ok = False
    else:
        seen_ids[tid] = f"{here}.telegram_id"
    if not isinstance(name, str) or len(name) > MAX_PERSON_NAME:
        problems.append(f"{here}.name: expected text of at most {MAX_PERSON_NAME} characters")
        ok = False
    parsed: list[tuple[str, str]] = []
    if not isinstance(roles, list):
        problems.append(f"{here}.roles: expected a list such as [secretary@sanyi]")
        roles = []
    for j, spec in enumerate(roles):
        role_ok, role = _check_role(spec, f"{here}.roles[{j}]", codes, parsed, problems)
        ok = ok and role_ok
        if role is not None:
            parsed.append(role)
    if not ok:
        return None
    return PersonEntry(telegram_id=tid, name=(name or "").strip(), roles=parsed)


def _check_role(spec: Any, where: str, codes: set[str], parsed: list[tuple[str, str]],
                problems: list[str]) -> tuple[bool, tuple[str, str] | None]:
    """(whether `role@code` is right, the pair when it could be split at all)."""
    if not isinstance(spec, str) or spec.count("@") != 1:
        problems.append(f"{where}: {spec!r} is not role@org_code")
        return False, None
    role, code = spec.split("@")
    ok = True
    if role not in ROLES:
        problems.append(f"{where}: unknown role {role!r} (expected {' | '.join(ROLES)})")
        ok = False
    if code not in codes:
        problems.append(f"{where}: no org with code {code!r}")
        ok = False
    if (role, code) in parsed:
        problems.append(f"{where}: {spec!r} listed twice")
        ok = False
    return ok, (role, code)


async def apply(orgs: OrgService, tx: Tx, plan: OrgFile, source_note: str) -> ImportReport:
    """Write a checked file: orgs are added or updated by code; each listed person's roles become
    exactly those listed. Orgs missing from the file are kept (they may hold history) and reported."""
    report = ImportReport()
    now = orgs.clock.now()
    ids: dict[str, int] = {r["code"]: r["id"] for r in await tx.fetchall("SELECT id, code FROM orgs")}
    for entry in plan.orgs:  # parents come before their children in the file's order
        parent_id = ids[entry.parent_code] if entry.parent_code else None
        row = await tx.fetchone("SELECT name, kind, parent_id, position FROM orgs WHERE code = ?", (entry.code,))
        if row is None:
            ids[entry.code] = await tx.insert(
                "INSERT INTO orgs (code, name, kind, parent_id, position, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (entry.code, entry.name, entry.kind, parent_id, entry.position, to_db(now)))
            report.orgs_added += 1
        elif (row["name"], row["kind"], row["parent_id"], row["position"]) != (
                entry.name, entry.kind, parent_id, entry.position):
            await tx.execute("UPDATE orgs SET name = ?, kind = ?, parent_id = ?, position = ? WHERE code = ?",
                             (entry.name, entry.kind, parent_id, entry.position, entry.code))
            report.orgs_changed += 1
    in_file = {e.code for e in plan.orgs}
    report.orgs_not_in_file = sorted(code for code in ids if code not in in_file)

    for person in plan.people:
        existing = await tx.fetchone("SELECT name FROM people WHERE telegram_id = ?", (person.telegram_id,))
        if existing is None:
            await tx.execute("INSERT INTO people (telegram_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
                             (person.telegram_id, person.name, to_db(now), to_db(now)))
            report.people_added += 1
        elif person.name and existing["name"] != person.name:
            await tx.execute("UPDATE people SET name = ?, updated_at = ? WHERE telegram_id = ?",
                             (person.name, to_db(now), person.telegram_id))
        wanted = {(role, ids[code]) for role, code in person.roles}
        held = {(r["role"], r["org_id"]) for r in await tx.fetchall(
            "SELECT role, org_id FROM roles WHERE person_id = ?", (person.telegram_id,))}
        for role, org_id in sorted(held - wanted):
            if await orgs.revoke(tx, person_id=person.telegram_id, org_id=org_id, role=role, actor_id=None,
                                 source="file", note=source_note):
                report.roles_revoked += 1
        for role, org_id in sorted(wanted - held):
            if await orgs.grant(tx, person_id=person.telegram_id, org_id=org_id, role=role, actor_id=None,
                                source="file", note=source_note):
                report.roles_granted += 1
    return report


async def export(orgs: OrgService) -> str:
    """The whole tree and everyone holding a role, in the import format."""
    db = orgs.db
    rows = await db.fetchall("SELECT id, code, name, kind, parent_id FROM orgs ORDER BY position, id")
    children: dict[int | None, list[Any]] = {}
    for row in rows:
        children.setdefault(row["parent_id"], []).append(row)

    def build(parent: int | None) -> list[dict[str, Any]]:
        out = []
        for row in children.get(parent, []):
            node: dict[str, Any] = {"code": row["code"], "name": row["name"], "kind": row["kind"]}
            kids = build(row["id"])
            if kids:
                node["children"] = kids
            out.append(node)
        return out

    people_rows = await db.fetchall(
        "SELECT p.telegram_id, p.name, r.role, o.code FROM people p JOIN roles r ON r.person_id = p.telegram_id"
        " JOIN orgs o ON o.id = r.org_id ORDER BY p.telegram_id, o.code, r.role")
    people: dict[int, dict[str, Any]] = {}
    for row in people_rows:
        entry = people.setdefault(row["telegram_id"], {"telegram_id": row["telegram_id"], "name": row["name"],
                                                       "roles": []})
        entry["roles"].append(f"{row['role']}@{row['code']}")
    doc = {"orgs": build(None), "people": list(people.values())}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=120)
