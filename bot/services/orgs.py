"""The org tree, who holds which role where, and who may do what there."""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from bot.actors import Actor, is_system
from bot.clock import Clock, to_db
from bot.database import Database, Tx
from bot.i18n import Translator
from bot.outbox import Outbox
from bot.services.people import PeopleService


class Role(enum.StrEnum):
    resident = "resident"
    member = "member"
    secretary = "secretary"
    organizer = "organizer"


class OrgKind(enum.StrEnum):
    county = "county"
    township = "township"
    village_branch = "village_branch"
    community = "community"
    grid_branch = "grid_branch"
    party_group = "party_group"
    other = "other"


ROLES = tuple(r.value for r in Role)
ORG_KINDS = tuple(k.value for k in OrgKind)
APPOINTABLE = (Role.secretary.value, Role.organizer.value)
# Rebuild the broadcast audience's counts (migration 027) from the roles, for a bulk load that wrote
# roles directly (bench data, tests of many people). Plain SQL: bench/scaledata.py runs it on sqlite3.
RECOUNT_ROLES = (
    "DELETE FROM role_counts",
    "INSERT INTO role_counts (org_id, role, n) SELECT org_id, role, COUNT(*) FROM roles GROUP BY org_id, role",
    "DELETE FROM role_repeats",
    "INSERT INTO role_repeats (org_id, role, person_id) SELECT org_id, role, person_id FROM roles"
    " WHERE person_id IN (SELECT person_id FROM roles GROUP BY person_id HAVING COUNT(*) > 1)",
)


@dataclass(frozen=True)
class Org:
    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None


@dataclass(frozen=True)
class Grant:
    org: Org
    role: str


@dataclass(frozen=True)
class TreeLine:
    depth: int
    org: Org
    counts: dict[str, int]


class NotAllowed(Exception):
    """The person has no right to do this; nothing was changed."""


class NotFound(Exception):
    """An org, person or record named by the caller does not exist."""


class Refused(Exception):
    """The request is refused for a reason the person should read (`key`, a catalog key, and its
    values; datetimes are formatted by the caller in the reader's language); nothing was changed.
    Every service raises this one class (each module re-exports it as its own `Refused`)."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


_ORG_COLUMNS = "o.id, o.code, o.name, o.kind, o.parent_id"


def _org(row: object) -> Org:
    return Org(id=row["id"], code=row["code"], name=row["name"], kind=row["kind"], parent_id=row["parent_id"])  # type: ignore[index]


class OrgService:
    def __init__(self, db: Database, clock: Clock, people: PeopleService, outbox: Outbox, t: Translator,
                 admins: Collection[int]) -> None:
        self.db = db
        self.clock = clock
        self.people = people
        self.outbox = outbox
        self.t = t
        self.admins = frozenset(admins)

    # --- reading the tree -------------------------------------------------------------------
    async def by_code(self, code: str) -> Org | None:
        row = await self.db.fetchone(f"SELECT {_ORG_COLUMNS} FROM orgs o WHERE o.code = ?", (code,))
        return _org(row) if row else None

    async def get(self, org_id: int) -> Org | None:
        row = await self.db.fetchone(f"SELECT {_ORG_COLUMNS} FROM orgs o WHERE o.id = ?", (org_id,))
        return _org(row) if row else None

    async def ancestors(self, org_id: int, tx: Tx | None = None) -> list[Org]:
        """The org itself first, then its parent, up to the root."""
        sql = (
            "WITH RECURSIVE up(id, n) AS (SELECT CAST(? AS BIGINT), 0 UNION ALL"
            " SELECT o.parent_id, up.n + 1 FROM orgs o JOIN up ON o.id = up.id WHERE o.parent_id IS NOT NULL)"
            f" SELECT {_ORG_COLUMNS} FROM up JOIN orgs o ON o.id = up.id ORDER BY up.n"
        )
        rows = await (tx or self.db).fetchall(sql, (org_id,))
        return [_org(r) for r in rows]

    async def subtree(self, org_id: int) -> list[tuple[int, Org]]:
        """(depth, org) in display order: each org followed by its children (by position, then id)."""
        rows = await self.db.fetchall(
            "WITH RECURSIVE down(id, depth) AS (SELECT id, 0 FROM orgs WHERE id = ?"
            " UNION ALL SELECT o.id, down.depth + 1 FROM orgs o JOIN down ON o.parent_id = down.id)"
            f" SELECT down.depth, o.position, {_ORG_COLUMNS} FROM down JOIN orgs o ON o.id = down.id",
            (org_id,),
        )
        # Ordered here, not in SQL: the zero-padded path that did it needs printf, which only SQLite has.
        children: dict[int | None, list[Any]] = {}
        for r in rows:
            children.setdefault(r["parent_id"] if r["depth"] else None, []).append(r)
        out: list[tuple[int, Org]] = []
        stack = sorted(children.get(None, []), key=_display_key, reverse=True)
        while stack:
            r = stack.pop()
            out.append((r["depth"], _org(r)))
            stack.extend(sorted(children.get(r["id"], []), key=_display_key, reverse=True))
        return out

    async def roots(self) -> list[Org]:
        rows = await self.db.fetchall(
            f"SELECT {_ORG_COLUMNS} FROM orgs o WHERE o.parent_id IS NULL ORDER BY o.position, o.id"
        )
        return [_org(r) for r in rows]

    async def grants(self, person_id: int) -> list[Grant]:
        rows = await self.db.fetchall(
            f"SELECT r.role, {_ORG_COLUMNS} FROM roles r JOIN orgs o ON o.id = r.org_id"
            " WHERE r.person_id = ? ORDER BY o.id, r.role",
            (person_id,),
        )
        return [Grant(org=_org(r), role=r["role"]) for r in rows]

    async def role_names(self, person_id: int) -> set[str]:
        """The kinds of role a person holds anywhere, plus 'admin' (what /help and the menu show)."""
        rows = await self.db.fetchall("SELECT DISTINCT role FROM roles WHERE person_id = ?", (person_id,))
        names = {r["role"] for r in rows}
        if self.is_admin(person_id):
            names.add("admin")
        return names

    def is_admin(self, person_id: int) -> bool:
        return person_id in self.admins

    # --- rights -----------------------------------------------------------------------------
    async def has_role_at_or_above(self, person_id: int, org_id: int, roles: Collection[str],
                                   tx: Tx | None = None) -> bool:
        """True if the person holds one of `roles` in the org or an org above it."""
        marks = ",".join("?" * len(roles))
        sql = (
            "WITH RECURSIVE up(id) AS (SELECT CAST(? AS BIGINT) UNION ALL"
            " SELECT o.parent_id FROM orgs o JOIN up ON o.id = up.id WHERE o.parent_id IS NOT NULL)"
            f" SELECT 1 FROM roles WHERE person_id = ? AND role IN ({marks}) AND org_id IN (SELECT id FROM up) LIMIT 1"
        )
        params = (org_id, person_id, *roles)
        row = await (tx or self.db).fetchone(sql, params)
        return row is not None

    async def can_manage(self, person_id: int, org_id: int, tx: Tx | None = None) -> bool:
        """Admins, and organizers of the org or any org above it, manage it (appoint, invite)."""
        return self.is_admin(person_id) or await self.has_role_at_or_above(
            person_id, org_id, [Role.organizer], tx
        )

    async def can_approve(self, person_id: int, org_id: int, role: str = "member", tx: Tx | None = None) -> bool:
        """Who may let someone into an org with `role` (or issue such a link): the org's secretary for
        residents, members and fellow secretaries; only an organizer at or above it, or an admin,
        for organizers (a secretary must not be able to raise anyone, themselves included, above them)."""
        if await self.can_manage(person_id, org_id, tx):
            return True
        if role == Role.organizer:
            return False
        sql = "SELECT 1 FROM roles WHERE person_id = ? AND org_id = ? AND role = 'secretary'"
        row = await (tx or self.db).fetchone(sql, (person_id, org_id))
        return row is not None

    async def approvers(self, org_id: int, role: str, tx: Tx, exclude: int | None = None) -> list[int]:
        """Who is asked to approve a request for `role`: the org's secretaries (not for organizer
        requests) and the organizers of the nearest org at or above it that has any; the admins when
        there is nobody. The requester is never asked about their own request."""
        ids: list[int] = []
        if role != Role.organizer:
            ids = [r[0] for r in await tx.fetchall(
                "SELECT person_id FROM roles WHERE org_id = ? AND role = 'secretary' ORDER BY person_id", (org_id,))]
        for org in await self.ancestors(org_id, tx):
            organizers = [r[0] for r in await tx.fetchall(
                "SELECT person_id FROM roles WHERE org_id = ? AND role = 'organizer' AND person_id IS DISTINCT FROM ?"
                " ORDER BY person_id", (org.id, exclude))]
            if organizers:
                ids.extend(organizers)
                break
        ids = [i for i in ids if i != exclude]
        if not ids:
            ids = sorted(a for a in self.admins if a != exclude)
        return list(dict.fromkeys(ids))

    async def scope_roots(self, person_id: int) -> list[Org]:
        """The orgs whose subtrees /org shows: all roots for admins, else where the person leads."""
        if self.is_admin(person_id):
            return await self.roots()
        rows = await self.db.fetchall(
            f"SELECT DISTINCT {_ORG_COLUMNS} FROM roles r JOIN orgs o ON o.id = r.org_id"
            " WHERE r.person_id = ? AND r.role IN ('secretary', 'organizer') ORDER BY o.id",
            (person_id,),
        )
        orgs = [_org(r) for r in rows]
        ids = {o.id for o in orgs}
        # Leave out an org already inside another one shown.
        kept = []
        for org in orgs:
            above = await self.ancestors(org.id)
            if not any(a.id in ids for a in above[1:]):
                kept.append(org)
        return kept

    async def tree_view(self, person_id: int) -> list[TreeLine]:
        roots = await self.scope_roots(person_id)
        if not roots:
            raise NotAllowed("no org to show")
        lines: list[TreeLine] = []
        for root in roots:
            for depth, org in await self.subtree(root.id):
                rows = await self.db.fetchall(
                    "SELECT role, COUNT(*) FROM roles WHERE org_id = ? GROUP BY role", (org.id,))
                lines.append(TreeLine(depth=depth, org=org, counts={r[0]: r[1] for r in rows}))
        return lines

    async def manageable_orgs(self, person_id: int) -> list[tuple[int, Org]]:
        """Orgs where the person may appoint: every org under their organizer roles (all for admins)."""
        if self.is_admin(person_id):
            roots = await self.roots()
        else:
            rows = await self.db.fetchall(
                f"SELECT {_ORG_COLUMNS} FROM roles r JOIN orgs o ON o.id = r.org_id"
                " WHERE r.person_id = ? AND r.role = 'organizer' ORDER BY o.id",
                (person_id,),
            )
            roots = [_org(r) for r in rows]
        seen: set[int] = set()
        out: list[tuple[int, Org]] = []
        for root in roots:
            for depth, org in await self.subtree(root.id):
                if org.id not in seen:
                    seen.add(org.id)
                    out.append((depth, org))
        return out

    async def people_in(self, actor: Actor, org_id: int) -> list[tuple[int, str, list[str]]]:
        """(id, name, roles) of everyone with a role in the org: names are private, so only for the
        system, admins, and those who lead (secretary or organizer) at or above the org."""
        if not (is_system(actor) or (isinstance(actor, int) and (
                self.is_admin(actor) or await self.has_role_at_or_above(actor, org_id, APPOINTABLE)))):
            raise NotAllowed("people")
        rows = await self.db.fetchall(
            "SELECT p.telegram_id, p.name, p.username, r.role FROM roles r"
            " JOIN people p ON p.telegram_id = r.person_id WHERE r.org_id = ?"
            " ORDER BY p.name, p.telegram_id, r.role",
            (org_id,),
        )
        people: dict[int, tuple[int, str, list[str]]] = {}
        for r in rows:
            name = r["name"] or (r["username"] or str(r["telegram_id"]))
            people.setdefault(r["telegram_id"], (r["telegram_id"], name, []))[2].append(r["role"])
        return list(people.values())

    # --- changing roles ---------------------------------------------------------------------
    async def grant(self, tx: Tx, *, person_id: int, org_id: int, role: str, actor_id: int | None,
                    source: str, note: str | None = None) -> int:
        """Give a role, recorded in the audit trail; returns the audit id, 0 when it was held already."""
        now = to_db(self.clock.now())
        await self.people.ensure(tx, person_id)
        await self._hold(tx, person_id)
        cur = await tx.execute(
            "INSERT INTO roles (person_id, org_id, role, granted_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (person_id, org_id, role, now),
        )
        if not cur.rowcount:
            return 0
        await self._recount(tx, person_id, org_id, role, 1)
        return await self._audit(tx, "grant", person_id, org_id, role, actor_id, source, note)

    async def revoke(self, tx: Tx, *, person_id: int, org_id: int, role: str, actor_id: int | None,
                     source: str, note: str | None = None) -> int:
        """Take a role away, recorded in the audit trail; returns the audit id, 0 when not held."""
        await self._hold(tx, person_id)
        cur = await tx.execute(
            "DELETE FROM roles WHERE person_id = ? AND org_id = ? AND role = ?", (person_id, org_id, role))
        if not cur.rowcount:
            return 0
        await self._recount(tx, person_id, org_id, role, -1)
        return await self._audit(tx, "revoke", person_id, org_id, role, actor_id, source, note)

    @staticmethod
    async def _hold(tx: Tx, person_id: int) -> None:
        """Take the person's row lock (PostgreSQL; SQLite has one writer): two changes of one
        person's roles at once would each count the person's roles without the other's."""
        await tx.execute("UPDATE people SET updated_at = updated_at WHERE telegram_id = ?", (person_id,))

    @staticmethod
    async def _recount(tx: Tx, person_id: int, org_id: int, role: str, change: int) -> None:
        """Keep what the broadcast audience reads (migration 027) true after one role came or went."""
        await tx.execute(
            "INSERT INTO role_counts (org_id, role, n) VALUES (?, ?, ?)"
            " ON CONFLICT (org_id, role) DO UPDATE SET n = role_counts.n + excluded.n", (org_id, role, change))
        await tx.execute("DELETE FROM role_repeats WHERE person_id = ?", (person_id,))
        await tx.execute(  # a person's few rows, copied while they hold more than one
            "INSERT INTO role_repeats (org_id, role, person_id) SELECT org_id, role, person_id FROM roles"
            " WHERE person_id = ? AND (SELECT COUNT(*) FROM roles WHERE person_id = ?) > 1", (person_id, person_id))

    @staticmethod
    async def recount_roles(tx: Tx) -> None:
        """Rebuild those counts from the roles, after rows were written around grant/revoke (a bulk load)."""
        for statement in RECOUNT_ROLES:
            await tx.execute(statement)

    async def _audit(self, tx: Tx, action: str, person_id: int, org_id: int, role: str, actor_id: int | None,
                     source: str, note: str | None) -> int:
        return await tx.insert(
            "INSERT INTO role_audit (at, actor_id, source, action, person_id, org_id, role, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (to_db(self.clock.now()), actor_id, source, action, person_id, org_id, role, note),
        )

    async def audit_trail(self, actor: Actor, org_id: int | None = None,
                          person_id: int | None = None) -> list[dict[str, object]]:
        """Who gave or took which role: the system and admins read all of it, an organizer the rows
        of the orgs they manage, anyone else nothing."""
        where, params = [], []
        if org_id is not None:
            where.append("org_id = ?")
            params.append(org_id)
        if person_id is not None:
            where.append("person_id = ?")
            params.append(person_id)
        sql = "SELECT * FROM role_audit" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        found = [dict(r) for r in await self.db.fetchall(sql, params)]
        if is_system(actor):
            return found
        assert isinstance(actor, int)
        return [r for r in found if await self.can_manage(actor, r["org_id"])]

    async def appoint(self, actor_id: int, person_id: int, org_id: int, role: str, remove: bool = False) -> bool:
        """An organizer (at or above the org) or an admin appoints or removes a secretary/organizer.
        The person concerned is told through the outbox. Returns False when nothing changed."""
        if role not in APPOINTABLE:
            raise ValueError(f"role {role!r} cannot be appointed")
        async with self.db.transaction() as tx:
            if not await self.can_manage(actor_id, org_id, tx):
                raise NotAllowed("appoint")
            org_row = await tx.fetchone("SELECT name FROM orgs WHERE id = ?", (org_id,))
            if org_row is None:
                raise NotFound("org")
            if remove:
                changed = await self.revoke(tx, person_id=person_id, org_id=org_id, role=role,
                                            actor_id=actor_id, source="chat")
            else:
                if await tx.fetchval("SELECT 1 FROM people WHERE telegram_id = ?", (person_id,)) is None:
                    raise NotFound("person")
                changed = await self.grant(tx, person_id=person_id, org_id=org_id, role=role,
                                           actor_id=actor_id, source="chat")
            if changed and person_id != actor_id:
                lang = await self.people.language(person_id, tx)
                key = "appoint.removed_notice" if remove else "appoint.granted_notice"
                text = self.t(lang, key, org=org_row["name"], role=self.t(lang, f"role.{role}"))
                await self.outbox.send_text(
                    tx, key=f"role-audit:{changed}", chat_id=person_id, text=text, purpose="role/change",
                    subject_id=org_id)
            return bool(changed)


def _display_key(row: Any) -> tuple[int, int]:
    return (row["position"], row["id"])
