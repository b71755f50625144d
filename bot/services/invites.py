"""Join links: residents join at once; members, secretaries and organizers wait for approval."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

from bot.actors import Actor, is_system
from bot.callbacks import JOIN_DECISION, Verdict
from bot.clock import Clock, to_db
from bot.database import Database, Tx
from bot.i18n import Translator
from bot.outbox import Button, Outbox
from bot.services.orgs import ROLES, NotAllowed, NotFound, Org, OrgService, Role

PAYLOAD_PREFIX = "j-"  # deep-link payloads of other kinds can use other prefixes


@dataclass(frozen=True)
class Invite:
    id: int
    payload: str
    org: Org
    role: str
    revoked: bool


class JoinOutcome(enum.StrEnum):
    joined = "joined"            # resident link: role granted at once
    moved = "moved"              # resident link of another org: moved there
    requested = "requested"      # approval asked for
    already = "already"          # the person holds that role already
    pending = "pending"          # a request for it is already waiting
    invalid = "invalid"          # no such link
    revoked = "revoked"          # the link was revoked


@dataclass(frozen=True)
class JoinResult:
    outcome: JoinOutcome
    org: Org | None = None
    role: str | None = None


class RequestStatus(enum.StrEnum):
    """A join request's state (join_requests.status)."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class DecisionOutcome(enum.StrEnum):
    approved = "approved"
    rejected = "rejected"
    already = "already"          # someone decided before; `by` says who
    not_found = "not_found"


@dataclass(frozen=True)
class Decision:
    outcome: DecisionOutcome
    org: Org | None = None
    role: str | None = None
    person_name: str | None = None
    by: str | None = None
    status: str | None = None


class InviteService:
    def __init__(self, db: Database, clock: Clock, orgs: OrgService, outbox: Outbox, t: Translator) -> None:
        self.db = db
        self.clock = clock
        self.orgs = orgs
        self.outbox = outbox
        self.t = t

    async def create(self, org_code: str, role: str, created_by: Actor, revoke_old: bool = False) -> Invite:
        """Issue a new link, for someone who may let people into the org with that role (or the
        system: the command line); with `revoke_old`, the org's earlier links for that role stop working."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        org = await self.orgs.by_code(org_code)
        if org is None:
            raise NotFound(f"no org with code {org_code!r}")
        async with self.db.transaction() as tx:
            if not await self._may_issue(created_by, org.id, role, tx):
                raise NotAllowed("invite")
            now = to_db(self.clock.now())
            if revoke_old:
                await tx.execute(
                    "UPDATE invites SET revoked_at = ? WHERE org_id = ? AND role = ? AND revoked_at IS NULL",
                    (now, org.id, role))
            payload = PAYLOAD_PREFIX + secrets.token_urlsafe(12)
            invite_id = await tx.insert(
                "INSERT INTO invites (payload, org_id, role, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
                (payload, org.id, role, now, None if is_system(created_by) else created_by))
        return Invite(id=invite_id, payload=payload, org=org, role=role, revoked=False)

    async def revoke(self, payload: str, *, actor: Actor) -> Invite:
        invite = await self.get(payload)
        if invite is None:
            raise NotFound(f"no link with payload {payload!r}")
        async with self.db.transaction() as tx:
            if not await self._may_issue(actor, invite.org.id, invite.role, tx):
                raise NotAllowed("invite")
            await tx.execute("UPDATE invites SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                             (to_db(self.clock.now()), invite.id))
        return Invite(id=invite.id, payload=invite.payload, org=invite.org, role=invite.role, revoked=True)

    async def _may_issue(self, actor: Actor, org_id: int, role: str, tx: Tx | None = None) -> bool:
        """Links are keys into an org: only the system and those who may approve that role there."""
        return is_system(actor) or (isinstance(actor, int) and await self.orgs.can_approve(actor, org_id, role, tx))

    async def get(self, payload: str) -> Invite | None:
        row = await self.db.fetchone("SELECT * FROM invites WHERE payload = ?", (payload,))
        if row is None:
            return None
        org = await self.orgs.get(row["org_id"])
        assert org is not None
        return Invite(id=row["id"], payload=row["payload"], org=org, role=row["role"],
                      revoked=row["revoked_at"] is not None)

    async def waiting_for(self, person_id: int) -> list[str]:
        """The names of the orgs where the person's join request awaits a decision."""
        rows = await self.db.fetchall(
            "SELECT o.name FROM join_requests r JOIN orgs o ON o.id = r.org_id"
            " WHERE r.person_id = ? AND r.status = 'pending' ORDER BY r.id", (person_id,))
        return [r["name"] for r in rows]

    async def list(self, org_code: str | None = None, *, actor: Actor) -> list[Invite]:
        """The links (all, or one org's) that the actor could have issued: a link is a key."""
        rows = await self.db.fetchall(
            "SELECT i.payload FROM invites i JOIN orgs o ON o.id = i.org_id"
            " WHERE (CAST(? AS TEXT) IS NULL OR o.code = ?) ORDER BY i.id", (org_code, org_code))
        return [inv for r in rows if (inv := await self.get(r["payload"])) is not None
                and await self._may_issue(actor, inv.org.id, inv.role)]

    async def join(self, person_id: int, payload: str) -> JoinResult:
        """Follow a join link. Approvers are told in the same transaction as the request."""
        invite = await self.get(payload)
        if invite is None:
            return JoinResult(JoinOutcome.invalid)
        if invite.revoked:
            return JoinResult(JoinOutcome.revoked, invite.org, invite.role)
        org, role = invite.org, invite.role
        async with self.db.transaction() as tx:
            await self.orgs.people.ensure(tx, person_id)
            held = await tx.fetchval(
                "SELECT 1 FROM roles WHERE person_id = ? AND org_id = ? AND role = ?", (person_id, org.id, role))
            if held:
                return JoinResult(JoinOutcome.already, org, role)
            if role == Role.resident:
                # A resident belongs to the one org that covers where they live.
                moved = False
                for row in await tx.fetchall(
                        "SELECT org_id FROM roles WHERE person_id = ? AND role = 'resident'", (person_id,)):
                    moved = True
                    await self.orgs.revoke(tx, person_id=person_id, org_id=row["org_id"], role=role,
                                           actor_id=person_id, source="invite", note=payload)
                await self.orgs.grant(tx, person_id=person_id, org_id=org.id, role=role, actor_id=person_id,
                                      source="invite", note=payload)
                return JoinResult(JoinOutcome.moved if moved else JoinOutcome.joined, org, role)
            pending = await tx.fetchval(
                "SELECT id FROM join_requests WHERE person_id = ? AND org_id = ? AND role = ? AND status = ?",
                (person_id, org.id, role, RequestStatus.pending))
            if pending:
                return JoinResult(JoinOutcome.pending, org, role)
            request_id = await tx.insert(
                "INSERT INTO join_requests (invite_id, person_id, org_id, role, created_at) VALUES (?, ?, ?, ?, ?)",
                (invite.id, person_id, org.id, role, to_db(self.clock.now())))
            await self._ask_approvers(tx, request_id, person_id, org, role)
        return JoinResult(JoinOutcome.requested, org, role)

    async def _ask_approvers(self, tx: Tx, request_id: int, person_id: int, org: Org, role: str) -> None:
        name = await self.orgs.people.display_name(person_id, tx)
        for approver in await self.orgs.approvers(org.id, role, tx, exclude=person_id):
            lang = await self.orgs.people.language(approver, tx)
            await self.outbox.send_text(
                tx,
                key=f"join-request:{request_id}:{approver}",
                chat_id=approver, purpose="join/request", subject_id=request_id,
                text=self.t(lang, "join.approval_request", name=name, person_id=person_id, org=org.name,
                            role=self.t(lang, f"readable.role_as.{role}")),
                buttons=[[Button(self.t(lang, "join.approve"), JOIN_DECISION(Verdict.APPROVE, request_id)),
                          Button(self.t(lang, "join.reject"), JOIN_DECISION(Verdict.REJECT, request_id))]],
            )

    async def decide(self, actor_id: int, request_id: int, approve: bool) -> Decision:
        """Approve or reject; the right is checked now, whatever the button said."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT * FROM join_requests WHERE id = ?", (request_id,))
            if row is None:
                return Decision(DecisionOutcome.not_found)
            org = await self.orgs.get(row["org_id"])
            assert org is not None
            if actor_id == row["person_id"] or not await self.orgs.can_approve(actor_id, org.id, row["role"], tx):
                raise NotAllowed("approve")
            person_name = await self.orgs.people.display_name(row["person_id"], tx)
            if row["status"] != RequestStatus.pending:
                by = await self.orgs.people.display_name(row["decided_by"], tx) if row["decided_by"] else None
                return Decision(DecisionOutcome.already, org, row["role"], person_name, by, row["status"])
            status = RequestStatus.approved if approve else RequestStatus.rejected
            await tx.execute(
                "UPDATE join_requests SET status = ?, decided_at = ?, decided_by = ? WHERE id = ?",
                (status, to_db(self.clock.now()), actor_id, request_id))
            if approve:
                await self.orgs.grant(tx, person_id=row["person_id"], org_id=org.id, role=row["role"],
                                      actor_id=actor_id, source="invite", note=f"join request {request_id}")
            lang = await self.orgs.people.language(row["person_id"], tx)
            await self.outbox.send_text(
                tx, key=f"join-decision:{request_id}", chat_id=row["person_id"], purpose="join/decision",
                subject_id=request_id,
                text=self.t(lang, f"join.{status}_notice", org=org.name,
                            role=self.t(lang, f"readable.role_as.{row['role']}")))
        return Decision(DecisionOutcome(status), org, row["role"], person_name)
