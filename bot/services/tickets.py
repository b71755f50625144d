"""The problem wall (问题墙) and echo wall (回音壁): collect → assign → handle/reply → publish → evaluate.

Every action checks the actor's right from the database at that moment; every message to
someone else (the secretary, the resident, the parent org, the wall chat) is an outbox row in the
same transaction as the change.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from bot.clock import from_db, to_db
from bot.core import Core
from bot.database import Tx
from bot.i18n import format_day
from bot.outbox import Button
from bot.services.masking import mask_public
from bot.services.orgs import NotAllowed, NotFound, Org

DEFAULT_CATEGORIES = ("infrastructure", "sanitation", "welfare", "industry", "disputes", "suggestions", "other")
DEFAULT_ACCEPT_DAYS = 1
DEFAULT_ANSWER_DAYS = 5
MAX_PER_HOUR = 5
MAX_ITEMS = 20
MAX_REASON = 500
RATING_DAYS = 3
WALL_PAGE = 5
REMIND_HOUR = 9  # reminders go out at 09:00 local on the last day before a deadline

OPEN = ("new", "accepted", "need_info", "reopened")
RATINGS = ("good", "ok", "bad")


class Status(enum.StrEnum):
    new = "new"
    accepted = "accepted"
    need_info = "need_info"
    answered = "answered"
    reopened = "reopened"
    closed = "closed"
    withdrawn = "withdrawn"
    declined = "declined"


@dataclass(frozen=True)
class Item:
    """One piece of content: text, or a message (photo, voice, ...) to copy from its chat."""

    kind: str
    text: str | None = None
    chat_id: int | None = None
    message_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "chat_id": self.chat_id, "message_id": self.message_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Item:
        return cls(kind=data["kind"], text=data.get("text"), chat_id=data.get("chat_id"),
                   message_id=data.get("message_id"))


class Refused(Exception):
    """The request is refused for a reason the person should read; nothing was stored."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass(frozen=True)
class Done:
    """What the actor is told after an action: a locale key and its values."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)
    changed: bool = True


@dataclass
class Ticket:
    id: int
    org_id: int
    handler_org_id: int
    assignee_id: int | None
    resident_id: int
    category: str
    public_ok: bool
    anonymous: bool
    status: str
    summary: str
    escalation: int
    accept_due: datetime
    answer_due: datetime
    next_escalation_at: datetime | None
    answer_text: str | None
    rating: str | None
    created_at: datetime
    accepted_at: datetime | None
    answered_at: datetime | None
    closed_at: datetime | None
    wall_posts: int

    @classmethod
    def from_row(cls, row: Any) -> Ticket:
        def when(name: str) -> datetime | None:
            return from_db(row[name]) if row[name] else None

        return cls(
            id=row["id"], org_id=row["org_id"], handler_org_id=row["handler_org_id"],
            assignee_id=row["assignee_id"], resident_id=row["resident_id"], category=row["category"],
            public_ok=bool(row["public_ok"]), anonymous=bool(row["anonymous"]), status=row["status"],
            summary=row["summary"], escalation=row["escalation"], accept_due=from_db(row["accept_due"]),
            answer_due=from_db(row["answer_due"]), next_escalation_at=when("next_escalation_at"),
            answer_text=row["answer_text"], rating=row["rating"], created_at=from_db(row["created_at"]),
            accepted_at=when("accepted_at"), answered_at=when("answered_at"), closed_at=when("closed_at"),
            wall_posts=row["wall_posts"],
        )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


@dataclass(frozen=True)
class Event:
    at: datetime
    actor_id: int | None
    action: str
    note: str | None


@dataclass(frozen=True)
class InboxLine:
    ticket: Ticket
    overdue: bool
    mine: bool


@dataclass(frozen=True)
class Inbox:
    lines: list[InboxLine]
    new: int
    overdue: int
    mine: int


_PHONE = re.compile(r"(?<!\d)((?:\+?86[ -]?)?1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3}-?)(\d{3,4})(\d{4})(?!\d)")
_ID_CARD = re.compile(r"(?<![0-9Xx])(\d{6})(\d{8})(\d{3}[0-9Xx])(?![0-9Xx])")


def mask_private(text: str) -> str:
    """Hide phone and ID-card numbers in text that will be shown publicly."""
    return mask_public(text)


def content_key(summary: str) -> str:
    return re.sub(r"\s+", "", summary).lower()


class TicketService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.db = core.db
        self.clock = core.clock
        self.t = core.t
        self.orgs = core.orgs
        self.people = core.people
        self.outbox = core.outbox
        self.tz = core.settings.tz

    # --- settings and lookups ---------------------------------------------------------------
    async def categories(self, org_id: int) -> list[str]:
        raw = await self.db.fetchval("SELECT categories FROM ticket_settings WHERE org_id = ?", (org_id,))
        return list(json.loads(raw)) if raw else list(DEFAULT_CATEGORIES)

    def category_name(self, lang: str, category: str) -> str:
        return self.t(lang, f"ticket.category.{category}") if category in DEFAULT_CATEGORIES else category

    async def configure(self, org_code: str, *, accept_days: int | None = None, answer_days: int | None = None,
                        categories: list[str] | None = None) -> None:
        """Per-org deadlines and category list (an admin's command-line setting)."""
        org = await self.orgs.by_code(org_code)
        if org is None:
            raise NotFound(f"no org with code {org_code!r}")
        for days in (accept_days, answer_days):
            if days is not None and not 1 <= days <= 60:
                raise ValueError("working days must be between 1 and 60")
        if categories is not None and (not categories or any(not c.strip() or len(c) > 20 for c in categories)):
            raise ValueError("categories must be 1 to 20 characters each")
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO ticket_settings (org_id) VALUES (?) ON CONFLICT DO NOTHING", (org.id,))
            if accept_days is not None:
                await tx.execute("UPDATE ticket_settings SET accept_days = ? WHERE org_id = ?", (accept_days, org.id))
            if answer_days is not None:
                await tx.execute("UPDATE ticket_settings SET answer_days = ? WHERE org_id = ?", (answer_days, org.id))
            if categories is not None:
                await tx.execute("UPDATE ticket_settings SET categories = ? WHERE org_id = ?",
                                 (json.dumps([c.strip() for c in categories], ensure_ascii=False), org.id))

    async def assign_category(self, org_code: str, category: str, person_id: int | None) -> None:
        """Route an org's problems of one category to one person (None: back to the secretary)."""
        org = await self.orgs.by_code(org_code)
        if org is None:
            raise NotFound(f"no org with code {org_code!r}")
        async with self.db.transaction() as tx:
            if person_id is None:
                await tx.execute("DELETE FROM category_assignees WHERE org_id = ? AND category = ?", (org.id, category))
            else:
                await self.people.ensure(tx, person_id)
                await tx.execute(
                    "INSERT INTO category_assignees (org_id, category, person_id) VALUES (?, ?, ?)"
                    " ON CONFLICT(org_id, category) DO UPDATE SET person_id = excluded.person_id",
                    (org.id, category, person_id))

    async def _days(self, org_id: int, tx: Tx | None = None) -> tuple[int, int]:
        sql = "SELECT accept_days, answer_days FROM ticket_settings WHERE org_id = ?"
        row = await (tx or self.db).fetchone(sql, (org_id,))
        accept = row["accept_days"] if row and row["accept_days"] else DEFAULT_ACCEPT_DAYS
        answer = row["answer_days"] if row and row["answer_days"] else DEFAULT_ANSWER_DAYS
        return accept, answer

    async def home_org(self, person_id: int) -> Org | None:
        """The org a person's problems go to: where they live (resident), else their branch (member)."""
        row = await self.db.fetchone(
            "SELECT org_id FROM roles WHERE person_id = ? AND role IN ('resident', 'member')"
            " ORDER BY CASE role WHEN 'resident' THEN 0 ELSE 1 END, org_id LIMIT 1", (person_id,))
        return await self.orgs.get(row["org_id"]) if row else None

    async def get(self, ticket_id: int, tx: Tx | None = None) -> Ticket:
        sql = "SELECT * FROM tickets WHERE id = ?"
        row = await (tx or self.db).fetchone(sql, (ticket_id,))
        if row is None:
            raise NotFound("ticket")
        return Ticket.from_row(row)

    async def events(self, ticket_id: int) -> list[Event]:
        rows = await self.db.fetchall(
            "SELECT at, actor_id, action, note FROM ticket_events WHERE ticket_id = ? ORDER BY id", (ticket_id,))
        return [Event(from_db(r["at"]), r["actor_id"], r["action"], r["note"]) for r in rows]

    async def items(self, ticket_id: int, tx: Tx | None = None) -> list[tuple[str, Item]]:
        rows = await (tx or self.db).fetchall(
            "SELECT side, kind, text, chat_id, message_id FROM ticket_items WHERE ticket_id = ? ORDER BY id",
            (ticket_id,))
        return [(r["side"], Item(r["kind"], r["text"], r["chat_id"], r["message_id"])) for r in rows]

    # --- rights -------------------------------------------------------------------------------
    async def can_act(self, person_id: int, ticket: Ticket, tx: Tx | None = None) -> bool:
        """The assignee, the handling org's secretaries, organizers at or above it, admins, and the
        secretaries of the orgs the ticket has been escalated to."""
        if self.orgs.is_admin(person_id) or ticket.assignee_id == person_id:
            return True
        if await self.orgs.has_role_at_or_above(person_id, ticket.handler_org_id, ["organizer"], tx):
            return True
        levels = (await self.orgs.ancestors(ticket.handler_org_id, tx))[: ticket.escalation + 1]
        marks = ",".join("?" * len(levels))
        sql = f"SELECT 1 FROM roles WHERE person_id = ? AND role = 'secretary' AND org_id IN ({marks}) LIMIT 1"
        params = (person_id, *[o.id for o in levels])
        row = await (tx or self.db).fetchone(sql, params)
        return row is not None

    async def can_view(self, person_id: int, ticket: Ticket) -> bool:
        return person_id == ticket.resident_id or await self.can_act(person_id, ticket)

    async def handlers_of(self, ticket: Ticket, tx: Tx | None = None) -> list[int]:
        """Who is told about a ticket: its assignee, else the handling org's secretaries, else the
        nearest organizers above, else the admins."""
        if ticket.assignee_id is not None:
            return [ticket.assignee_id]
        ids = [r[0] for r in await (tx or self.db).fetchall(
            "SELECT person_id FROM roles WHERE org_id = ? AND role = 'secretary' ORDER BY person_id",
            (ticket.handler_org_id,))]
        if ids:
            return ids
        for org in await self.orgs.ancestors(ticket.handler_org_id, tx):
            ids = [r[0] for r in await (tx or self.db).fetchall(
                "SELECT person_id FROM roles WHERE org_id = ? AND role = 'organizer' ORDER BY person_id", (org.id,))]
            if ids:
                return ids
        return sorted(self.orgs.admins)

    # --- residents ----------------------------------------------------------------------------
    async def check_can_submit(self, person_id: int) -> Org:
        """Why a person may not start a submission now, as Refused; else their org."""
        org = await self.home_org(person_id)
        if org is None:
            raise Refused("ticket.refused.no_org")
        if await self.db.fetchval(
                "SELECT 1 FROM submit_blocks WHERE person_id = ? AND lifted_at IS NULL", (person_id,)):
            raise Refused("ticket.refused.blocked")
        since = to_db(self.clock.now() - timedelta(hours=1))
        count = await self.db.fetchval(
            "SELECT COUNT(*) FROM tickets WHERE resident_id = ? AND created_at > ?", (person_id, since))
        if count >= MAX_PER_HOUR:
            raise Refused("ticket.refused.too_many", limit=MAX_PER_HOUR)
        return org

    async def submit(self, person_id: int, items: list[Item], category: str, public_ok: bool,
                     anonymous: bool) -> Ticket:
        """Create the ticket, route it and tell whoever answers for it, in one transaction."""
        if not items:
            raise Refused("ticket.refused.empty")
        if len(items) > MAX_ITEMS:
            raise Refused("ticket.refused.too_many_items", limit=MAX_ITEMS)
        org = await self.check_can_submit(person_id)
        if category not in await self.categories(org.id):
            raise Refused("ticket.refused.category")
        summary = "\n".join(i.text for i in items if i.text).strip()  # texts, captions, places
        key = content_key(summary)
        now = self.clock.now()
        # Everything that can be read before taking the write lock is read here: under load the
        # lock, not the CPU, is what submissions wait for.
        handler_org, assignee = await self._route(org, category)
        accept_days, answer_days = await self._days(handler_org.id)
        accept_due = self.core.calendar.deadline(now, accept_days, self.tz)
        answer_due = self.core.calendar.deadline(now, answer_days, self.tz)
        ticket = Ticket(
            id=0, org_id=org.id, handler_org_id=handler_org.id, assignee_id=assignee, resident_id=person_id,
            category=category, public_ok=public_ok, anonymous=anonymous, status="new", summary=summary,
            escalation=0, accept_due=accept_due, answer_due=answer_due, next_escalation_at=accept_due,
            answer_text=None, rating=None, created_at=now, accepted_at=None, answered_at=None, closed_at=None,
            wall_posts=0)
        recipients = await self.handlers_of(ticket)
        languages = {person: await self.people.language(person) for person in recipients}
        who = None if anonymous else f"{await self.people.display_name(person_id)} (ID {person_id})"
        async with self.db.transaction() as tx:
            if key:
                earlier = await tx.fetchval(
                    "SELECT id FROM tickets WHERE resident_id = ? AND content_key = ? AND created_at > ?",
                    (person_id, key, to_db(now - timedelta(days=1))))
                if earlier:
                    raise Refused("ticket.refused.duplicate", id=earlier)
            ticket.id = await tx.insert(
                "INSERT INTO tickets (org_id, handler_org_id, assignee_id, resident_id, category, public_ok,"
                " anonymous, status, summary, content_key, accept_due, answer_due, next_escalation_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, ?)",
                (org.id, handler_org.id, assignee, person_id, category, int(public_ok), int(anonymous), summary,
                 key, to_db(accept_due), to_db(answer_due), to_db(accept_due), to_db(now)))
            await self._add_items(tx, ticket.id, "resident", person_id, items)
            stamp = await self._event(tx, ticket.id, person_id, "submitted")
            for person, lang in languages.items():
                text = self.t(lang, "ticket.to_handler.new", id=ticket.id, note="") + "\n\n" + self._card_text(
                    lang, ticket, org.name, who)
                await self.outbox.send_text(tx, key=f"tk:{ticket.id}:{stamp}:{person}", chat_id=person, text=text,
                                            buttons=self.handler_buttons(lang, ticket.id))
                await self._relay(tx, ticket.id, stamp, person, items)
            await self._schedule_reminder(tx, ticket, "accept", languages)
        return ticket

    async def _route(self, org: Org, category: str) -> tuple[Org, int | None]:
        assignee = await self.db.fetchval(
            "SELECT person_id FROM category_assignees WHERE org_id = ? AND category = ?", (org.id, category))
        if assignee is not None:
            return org, assignee
        for candidate in await self.orgs.ancestors(org.id):
            if await self.db.fetchval("SELECT 1 FROM roles WHERE org_id = ? AND role = 'secretary'", (candidate.id,)):
                return candidate, None
        return org, None

    async def mine(self, person_id: int) -> list[Ticket]:
        rows = await self.db.fetchall(
            "SELECT * FROM tickets WHERE resident_id = ? ORDER BY id DESC LIMIT 20", (person_id,))
        return [Ticket.from_row(r) for r in rows]

    async def withdraw(self, person_id: int, ticket_id: int) -> Done:
        async with self.db.transaction() as tx:
            ticket = await self.get(ticket_id, tx)
            if ticket.resident_id != person_id:
                raise NotAllowed("withdraw")
            if not ticket.is_open:
                return await self._already(tx, ticket)
            await self._set(tx, ticket, status="withdrawn", closed_at=self.clock.now(), next_escalation_at=None)
            stamp = await self._event(tx, ticket.id, person_id, "withdrawn")
            await self._cancel_reminders(tx, ticket.id)
            await self._notify_handlers(tx, ticket, "withdrawn", stamp=stamp)
        return Done("ticket.done.withdrawn", {"id": ticket_id})

    async def add_info(self, person_id: int, ticket_id: int, items: list[Item]) -> Done:
        """The resident answers a request for more information."""
        if not items:
            raise Refused("ticket.refused.empty")
        async with self.db.transaction() as tx:
            ticket = await self.get(ticket_id, tx)
            if ticket.resident_id != person_id:
                raise NotAllowed("add_info")
            if ticket.status != "need_info":
                return await self._already(tx, ticket)
            status = "accepted" if ticket.accepted_at else "new"
            due = ticket.answer_due if ticket.accepted_at else ticket.accept_due
            await self._set(tx, ticket, status=status, next_escalation_at=max(due, self.clock.now()))
            await self._add_items(tx, ticket.id, "resident", person_id, items)
            stamp = await self._event(tx, ticket.id, person_id, "info_added")
            await self._notify_handlers(tx, await self.get(ticket.id, tx), "info_added", items=items, stamp=stamp)
        return Done("ticket.done.info_added", {"id": ticket_id})

    async def rate(self, person_id: int, ticket_id: int, rating: str, reason: str | None = None) -> Done:
        """满意 / 基本满意 close the ticket; 不满意 (with a reason) reopens it to the same handler."""
        if rating not in RATINGS:
            raise ValueError(rating)
        if rating == "bad" and not (reason and reason.strip()):
            raise Refused("ticket.refused.reason_needed")
        if reason and len(reason) > MAX_REASON:
            raise Refused("ticket.refused.too_long", limit=MAX_REASON)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            ticket = await self.get(ticket_id, tx)
            if ticket.resident_id != person_id:
                raise NotAllowed("rate")
            if ticket.status != "answered":
                return await self._already(tx, ticket)
            await tx.execute("UPDATE tickets SET rating = ?, rating_reason = ? WHERE id = ?",
                             (rating, reason, ticket.id))
            stamp = await self._event(tx, ticket.id, person_id, f"rated_{rating}", reason)
            if rating == "bad":
                # The clock is not restarted: the original answer deadline still counts.
                await self._set(tx, ticket, status="reopened", answered_at=None,
                                next_escalation_at=max(ticket.answer_due, now))
                await tx.execute("UPDATE tickets SET reopen_count = reopen_count + 1 WHERE id = ?", (ticket.id,))
                ticket = await self.get(ticket.id, tx)
                await self._notify_handlers(tx, ticket, "reopened", note=reason, stamp=stamp)
                await self._post_to_wall(tx, ticket)
                return Done("ticket.done.reopened", {"id": ticket_id})
            await self._set(tx, ticket, status="closed", closed_at=now)
            await self._notify_handlers(tx, ticket, f"rated_{rating}", stamp=stamp)
        return Done("ticket.done.rated", {"id": ticket_id})

    # --- secretaries --------------------------------------------------------------------------
    async def inbox(self, person_id: int) -> Inbox:
        """Open tickets this person may act on, overdue first."""
        rows = await self.db.fetchall(
            f"SELECT * FROM tickets WHERE status IN ({','.join('?' * len(OPEN))}) ORDER BY id", OPEN)
        now = self.clock.now()
        lines = []
        for row in rows:
            ticket = Ticket.from_row(row)
            if not await self.can_act(person_id, ticket):
                continue
            due = ticket.accept_due if ticket.status == "new" else ticket.answer_due
            lines.append(InboxLine(ticket, overdue=due <= now, mine=ticket.assignee_id == person_id))
        lines.sort(key=lambda line: (not line.overdue, line.ticket.status != "new", line.ticket.id))
        return Inbox(lines=lines, new=sum(1 for x in lines if x.ticket.status == "new"),
                     overdue=sum(1 for x in lines if x.overdue), mine=sum(1 for x in lines if x.mine))

    async def accept(self, actor_id: int, ticket_id: int) -> Done:
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor_id, ticket_id)
            if ticket.status != "new":
                return await self._already(tx, ticket)
            now = self.clock.now()
            await self._set(tx, ticket, status="accepted", accepted_at=now,
                            next_escalation_at=max(ticket.answer_due, now))
            stamp = await self._event(tx, ticket.id, actor_id, "accepted")
            await self._cancel_reminders(tx, ticket.id)
            ticket = await self.get(ticket.id, tx)
            await self._schedule_reminder(tx, ticket, "answer")
            await self._tell_resident(tx, ticket, "accepted", actor_id=actor_id, stamp=stamp)
            await self._tell_co_handlers(tx, ticket, actor_id, "accepted", stamp=stamp)
        return Done("ticket.done.accepted", {"id": ticket_id})

    async def answer(self, actor_id: int, ticket_id: int, items: list[Item], final: bool = False) -> Done:
        """The reply (text, photos, voice): the resident is asked to rate it; the wall shows it."""
        if not items:
            raise Refused("ticket.refused.empty")
        text = "\n".join(i.text for i in items if i.kind == "text" and i.text).strip()
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor_id, ticket_id)
            if ticket.status not in ("new", "accepted", "reopened", "need_info"):
                return await self._already(tx, ticket)
            now = self.clock.now()
            await self._set(tx, ticket, status="answered", answered_at=now, next_escalation_at=None,
                            accepted_at=ticket.accepted_at or now)
            await tx.execute("UPDATE tickets SET answer_text = ?, rating = NULL WHERE id = ?",
                             (text or None, ticket.id))
            await self._add_items(tx, ticket.id, "handler", actor_id, items)
            stamp = await self._event(tx, ticket.id, actor_id, "resolved" if final else "answered", text[:200] or None)
            await self._cancel_reminders(tx, ticket.id)
            ticket = await self.get(ticket.id, tx)
            await self._tell_resident(tx, ticket, "answered", actor_id=actor_id, items=items, final=final, stamp=stamp)
            await self._tell_co_handlers(tx, ticket, actor_id, "answered", stamp=stamp)
            await self._post_to_wall(tx, ticket)
        return Done("ticket.done.answered", {"id": ticket_id})

    async def ask_info(self, actor_id: int, ticket_id: int, question: str) -> Done:
        question = question.strip()
        if not question:
            raise Refused("ticket.refused.empty")
        if len(question) > MAX_REASON:
            raise Refused("ticket.refused.too_long", limit=MAX_REASON)
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor_id, ticket_id)
            if ticket.status not in ("new", "accepted", "reopened"):
                return await self._already(tx, ticket)
            # While the resident is asked for more, the secretary's clock does not run out on them.
            await self._set(tx, ticket, status="need_info", accepted_at=ticket.accepted_at or self.clock.now(),
                            next_escalation_at=None)
            stamp = await self._event(tx, ticket.id, actor_id, "asked_info", question)
            await self._tell_resident(tx, ticket, "need_info", actor_id=actor_id, note=question, stamp=stamp)
        return Done("ticket.done.asked_info", {"id": ticket_id})

    async def transfer_targets(self, actor_id: int, ticket_id: int) -> tuple[list[Org], list[tuple[int, str]]]:
        """Orgs near the handling org (parent, siblings, children) and its other secretaries."""
        ticket = await self.get(ticket_id)
        if not await self.can_act(actor_id, ticket):
            raise NotAllowed("transfer")
        here = await self.orgs.get(ticket.handler_org_id)
        assert here is not None
        orgs: list[Org] = []
        if here.parent_id is not None:
            parent = await self.orgs.get(here.parent_id)
            assert parent is not None
            orgs.append(parent)
            orgs += [o for _, o in (await self.orgs.subtree(parent.id))[1:] if o.parent_id == parent.id]
        orgs += [o for depth, o in await self.orgs.subtree(here.id) if depth == 1]
        orgs = [o for o in dict((o.id, o) for o in orgs).values() if o.id != here.id]
        people = [(pid, name) for pid, name, roles in await self.orgs.people_in(here.id)
                  if "secretary" in roles and pid != actor_id and pid != ticket.assignee_id]
        return orgs, people

    async def transfer(self, actor_id: int, ticket_id: int, reason: str, *, to_org: int | None = None,
                       to_person: int | None = None) -> Done:
        reason = reason.strip()
        if not reason:
            raise Refused("ticket.refused.reason_needed")
        if len(reason) > MAX_REASON:
            raise Refused("ticket.refused.too_long", limit=MAX_REASON)
        if (to_org is None) == (to_person is None):
            raise ValueError("transfer to one org or one person")
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor_id, ticket_id)
            if not ticket.is_open:
                return await self._already(tx, ticket)
            if to_org is not None:
                target = await tx.fetchone("SELECT name FROM orgs WHERE id = ?", (to_org,))
                if target is None or (to_org == ticket.handler_org_id and ticket.assignee_id is None):
                    raise NotFound("org")
                await self._set(tx, ticket, handler_org_id=to_org, assignee_id=None, escalation=0)
                target_name = target["name"]
            else:
                leads = await tx.fetchval(
                    "SELECT 1 FROM roles WHERE person_id = ? AND role IN ('secretary', 'organizer')", (to_person,))
                if not leads or to_person == ticket.assignee_id:
                    raise NotFound("person")
                await self._set(tx, ticket, assignee_id=to_person, escalation=0)
                target_name = await self.people.display_name(to_person, tx)  # type: ignore[arg-type]
            stamp = await self._event(tx, ticket.id, actor_id, "transferred", f"{target_name}: {reason}")
            await self._cancel_reminders(tx, ticket.id)
            ticket = await self.get(ticket.id, tx)
            items = [item for side, item in await self.items(ticket.id, tx) if side == "resident"]
            await self._notify_handlers(tx, ticket, "transferred", items=items, note=reason, stamp=stamp)
            await self._schedule_reminder(tx, ticket, "accept" if ticket.status == "new" else "answer")
            await self._tell_resident(tx, ticket, "transferred", actor_id=actor_id, note=target_name, stamp=stamp)
        return Done("ticket.done.transferred", {"id": ticket_id, "target": target_name})

    async def decline(self, actor_id: int, ticket_id: int, reason: str) -> Done:
        """Outside the branch's remit: closed with the reason, which the resident reads."""
        reason = reason.strip()
        if not reason:
            raise Refused("ticket.refused.reason_needed")
        if len(reason) > MAX_REASON:
            raise Refused("ticket.refused.too_long", limit=MAX_REASON)
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor_id, ticket_id)
            if not ticket.is_open:
                return await self._already(tx, ticket)
            await self._set(tx, ticket, status="declined", closed_at=self.clock.now(), next_escalation_at=None)
            stamp = await self._event(tx, ticket.id, actor_id, "declined", reason)
            await self._cancel_reminders(tx, ticket.id)
            await self._tell_resident(tx, ticket, "declined", actor_id=actor_id, note=reason, stamp=stamp)
            await self._tell_co_handlers(tx, ticket, actor_id, "declined", stamp=stamp)
        return Done("ticket.done.declined", {"id": ticket_id})

    async def block_submitter(self, actor_id: int, ticket_id: int) -> Done:
        """Stop the ticket's author from submitting (recorded; their name stays hidden if anonymous)."""
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor_id, ticket_id)
            if await tx.fetchval("SELECT 1 FROM submit_blocks WHERE person_id = ? AND lifted_at IS NULL",
                                 (ticket.resident_id,)):
                return Done("ticket.done.already_blocked", {"id": ticket_id}, changed=False)
            await tx.insert(
                "INSERT INTO submit_blocks (org_id, person_id, blocked_by, blocked_at, ticket_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (ticket.org_id, ticket.resident_id, actor_id, to_db(self.clock.now()), ticket.id))
            await self._event(tx, ticket.id, actor_id, "blocked_submitter")
        return Done("ticket.done.blocked", {"id": ticket_id})

    async def blocks(self, actor_id: int) -> list[tuple[int, int, str, datetime]]:
        """Active blocks the person may lift: (block id, ticket id, org name, since)."""
        rows = await self.db.fetchall(
            "SELECT b.id, b.ticket_id, b.org_id, b.blocked_at, o.name FROM submit_blocks b"
            " JOIN orgs o ON o.id = b.org_id WHERE b.lifted_at IS NULL ORDER BY b.id")
        return [(r["id"], r["ticket_id"], r["name"], from_db(r["blocked_at"])) for r in rows
                if await self._may_block(actor_id, r["org_id"])]

    async def unblock(self, actor_id: int, block_id: int) -> Done:
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT * FROM submit_blocks WHERE id = ?", (block_id,))
            if row is None:
                raise NotFound("block")
            if not await self._may_block(actor_id, row["org_id"], tx):
                raise NotAllowed("unblock")
            if row["lifted_at"] is not None:
                return Done("ticket.done.already_unblocked", {}, changed=False)
            await tx.execute("UPDATE submit_blocks SET lifted_by = ?, lifted_at = ? WHERE id = ?",
                             (actor_id, to_db(self.clock.now()), block_id))
            if row["ticket_id"]:
                await self._event(tx, row["ticket_id"], actor_id, "unblocked_submitter")
        return Done("ticket.done.unblocked", {})

    async def _may_block(self, actor_id: int, org_id: int, tx: Tx | None = None) -> bool:
        if await self.orgs.can_manage(actor_id, org_id, tx):
            return True
        return await self.orgs.has_role_at_or_above(actor_id, org_id, ["secretary"], tx)

    # --- the echo wall --------------------------------------------------------------------------
    async def wall(self, org_id: int, page: int) -> tuple[list[Ticket], bool]:
        """Answered problems of an org that their residents allowed to be shown, newest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM tickets WHERE org_id = ? AND public_ok = 1 AND answer_text IS NOT NULL"
            " AND status IN ('answered', 'closed') ORDER BY answered_at DESC, id DESC LIMIT ? OFFSET ?",
            (org_id, WALL_PAGE + 1, max(page, 0) * WALL_PAGE))
        tickets = [Ticket.from_row(r) for r in rows]
        return tickets[:WALL_PAGE], len(tickets) > WALL_PAGE

    async def bind_wall(self, actor_id: int, org_id: int, chat_id: int, title: str | None) -> Done:
        if not await self._may_block(actor_id, org_id):
            raise NotAllowed("bindwall")
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO wall_chats (org_id, chat_id, title, bound_by, bound_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(org_id) DO UPDATE SET chat_id = excluded.chat_id, title = excluded.title,"
                " bound_by = excluded.bound_by, bound_at = excluded.bound_at",
                (org_id, chat_id, title, actor_id, to_db(self.clock.now())))
        return Done("ticket.done.wall_bound", {})

    async def wall_orgs(self, actor_id: int) -> list[Org]:
        """Orgs whose wall this person may bind (they are its secretary or an organizer above)."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT org_id FROM roles WHERE person_id = ? AND role IN ('secretary', 'organizer')",
            (actor_id,))
        orgs = [o for r in rows if (o := await self.orgs.get(r["org_id"])) is not None]
        if self.orgs.is_admin(actor_id) and not orgs:
            orgs = await self.orgs.roots()
        return orgs

    def wall_text(self, lang: str, ticket: Ticket) -> str:
        status = self.t(lang, "ticket.wall_reopened") if ticket.status == "reopened" else ""
        return self.t(
            lang, "ticket.wall_post", id=ticket.id, category=self.category_name(lang, ticket.category),
            problem=mask_private(ticket.summary) or self.t(lang, "ticket.no_text"),
            answer=mask_private(ticket.answer_text or ""), submitted=format_day(ticket.created_at, lang, self.tz),
            answered=format_day(ticket.answered_at or ticket.created_at, lang, self.tz)) + status

    async def _post_to_wall(self, tx: Tx, ticket: Ticket) -> None:
        """Post a newly answered ticket in the org's wall chat, or edit the post it already has."""
        if not ticket.public_ok or not ticket.answer_text:
            return
        chat = await tx.fetchone("SELECT chat_id FROM wall_chats WHERE org_id = ?", (ticket.org_id,))
        if chat is None:
            return
        text = self.wall_text(self.core.settings.locale, ticket)
        if ticket.wall_posts == 0:
            await self.outbox.send_text(tx, key=f"wall:{ticket.id}", chat_id=chat["chat_id"], text=text)
        else:
            await self.outbox.enqueue(
                tx, key=f"wall-edit:{ticket.id}:{ticket.wall_posts}", chat_id=chat["chat_id"],
                method="editMessageText",
                payload={"chat_id": chat["chat_id"], "text": text, "message_id_from": f"wall:{ticket.id}"})
        await tx.execute("UPDATE tickets SET wall_posts = wall_posts + 1 WHERE id = ?", (ticket.id,))

    # --- deadlines ------------------------------------------------------------------------------
    async def tick(self) -> int:
        """Escalate what is overdue (each level once, catching up after downtime) and close answers
        left unrated for three days. Returns how many changes were made."""
        now = self.clock.now()
        changes = 0
        rows = await self.db.fetchall(
            "SELECT id FROM tickets WHERE next_escalation_at IS NOT NULL AND next_escalation_at <= ?", (to_db(now),))
        for row in rows:
            changes += await self._escalate(row["id"], now)
        cutoff = to_db(now - timedelta(days=RATING_DAYS))
        for row in await self.db.fetchall(
                "SELECT id FROM tickets WHERE status = 'answered' AND answered_at <= ?", (cutoff,)):
            async with self.db.transaction() as tx:
                ticket = await self.get(row["id"], tx)
                if ticket.status != "answered":
                    continue
                await self._set(tx, ticket, status="closed", closed_at=now)
                await tx.execute("UPDATE tickets SET rating = 'unrated' WHERE id = ?", (ticket.id,))
                await self._event(tx, ticket.id, None, "closed_unrated")
                changes += 1
        return changes

    async def _escalate(self, ticket_id: int, now: datetime) -> int:
        changes = 0
        async with self.db.transaction() as tx:
            ticket = await self.get(ticket_id, tx)
            while ticket.is_open and ticket.next_escalation_at is not None and ticket.next_escalation_at <= now:
                chain = await self.orgs.ancestors(ticket.handler_org_id, tx)
                level = min(ticket.escalation + 1, len(chain))  # one past the top: the admins hear of it
                if level == ticket.escalation:  # nobody higher to tell: stop counting
                    await self._set(tx, ticket, next_escalation_at=None)
                    break
                step = "accept" if ticket.status == "new" else "answer"
                accept_days, answer_days = await self._days(ticket.handler_org_id, tx)
                days = accept_days if step == "accept" else answer_days
                # The deadline is 24:00 of its last day; the next period starts on that day.
                following = self.core.calendar.deadline(ticket.next_escalation_at - timedelta(microseconds=1),
                                                        days, self.tz)
                await self._set(tx, ticket, escalation=level, next_escalation_at=following)
                await self._event(tx, ticket.id, None, "escalated", f"{step}:{level}")
                ticket = await self.get(ticket.id, tx)
                target = chain[level] if level < len(chain) else None
                await self._tell_escalation(tx, ticket, target, level, step)
                changes += 1
        return changes

    async def _tell_escalation(self, tx: Tx, ticket: Ticket, target: Org | None, level: int, step: str) -> None:
        if target is not None:
            recipients = [r[0] for r in await tx.fetchall(
                "SELECT DISTINCT person_id FROM roles WHERE org_id = ? AND role IN ('secretary', 'organizer')"
                " ORDER BY person_id", (target.id,))]
        else:
            recipients = []
        if not recipients:
            recipients = sorted(self.orgs.admins)
        for person in recipients:
            lang = await self.people.language(person, tx)
            text = self.t(lang, f"ticket.escalated_{step}", level=level) + "\n\n" + await self._card(tx, ticket, lang)
            await self.outbox.send_text(tx, key=f"tk-esc:{ticket.id}:{level}:{step}:{person}", chat_id=person,
                                        text=text, buttons=self.handler_buttons(lang, ticket.id))
        for person in await self.handlers_of(ticket, tx):
            lang = await self.people.language(person, tx)
            await self.outbox.send_text(
                tx, key=f"tk-late:{ticket.id}:{level}:{step}:{person}", chat_id=person,
                text=self.t(lang, f"ticket.overdue_{step}", id=ticket.id, level=level))

    async def _schedule_reminder(self, tx: Tx, ticket: Ticket, step: str,
                                 languages: dict[int, str] | None = None) -> None:
        """A reminder at 09:00 local on the last working day before the deadline."""
        due = ticket.accept_due if step == "accept" else ticket.answer_due
        last_day = (due - timedelta(minutes=1)).astimezone(self.tz).date()
        when = datetime.combine(last_day, time(REMIND_HOUR), tzinfo=self.tz)
        if when <= self.clock.now():
            return
        if languages is None:
            languages = {p: await self.people.language(p, tx) for p in await self.handlers_of(ticket, tx)}
        for person, lang in languages.items():
            await self.outbox.send_text(
                tx, key=f"tk-remind:{ticket.id}:{step}:{person}:{to_db(due)}", chat_id=person, not_before=when,
                text=self.t(lang, f"ticket.remind_{step}", id=ticket.id, due=format_day(due, lang, self.tz, end=True)),
                buttons=[[Button(self.t(lang, "ticket.button.open"), f"tv:{ticket.id}")]])

    async def _cancel_reminders(self, tx: Tx, ticket_id: int) -> None:
        await self.outbox.cancel(tx, key_prefix=f"tk-remind:{ticket_id}:")

    # --- rendering for other people (the outbox) -------------------------------------------------
    def handler_buttons(self, lang: str, ticket_id: int) -> list[list[Button]]:
        def b(key: str, action: str) -> Button:
            return Button(self.t(lang, f"ticket.button.{key}"), f"tk:{action}:{ticket_id}")

        return [[b("accept", "a"), b("reply", "r")], [b("ask", "i"), b("transfer", "t")],
                [b("decline", "d"), b("resolve", "z")], [b("history", "h")]]

    async def _card(self, tx: Tx, ticket: Ticket, lang: str) -> str:
        org = await tx.fetchone("SELECT name FROM orgs WHERE id = ?", (ticket.org_id,))
        who = None if ticket.anonymous else \
            f"{await self.people.display_name(ticket.resident_id, tx)} (ID {ticket.resident_id})"
        return self._card_text(lang, ticket, org["name"] if org else "", who)

    def _card_text(self, lang: str, ticket: Ticket, org_name: str, who: str | None) -> str:
        """What a secretary sees of a ticket; `who` is None for an anonymous one."""
        card = self.t(lang, "ticket.card", id=ticket.id, org=org_name,
                      category=self.category_name(lang, ticket.category),
                      summary=ticket.summary or self.t(lang, "ticket.no_text"),
                      who=who or self.t(lang, "ticket.anonymous"),
                      accept_due=format_day(ticket.accept_due, lang, self.tz, end=True),
                      answer_due=format_day(ticket.answer_due, lang, self.tz, end=True),
                      status=self.t(lang, f"ticket.status.{ticket.status}"))
        if ticket.escalation:
            card += "\n" + self.t(lang, "ticket.escalation_level", level=ticket.escalation)
        return card

    async def _notify_handlers(self, tx: Tx, ticket: Ticket, what: str, items: list[Item] | None = None,
                               note: str | None = None, *, stamp: int) -> None:
        """`stamp`: the id of the event being told, which keeps each notice's outbox key unique."""
        for person in await self.handlers_of(ticket, tx):
            lang = await self.people.language(person, tx)
            head = self.t(lang, f"ticket.to_handler.{what}", id=ticket.id, note=note or "")
            text = head + "\n\n" + await self._card(tx, ticket, lang)
            buttons = self.handler_buttons(lang, ticket.id) if ticket.is_open else None
            await self.outbox.send_text(tx, key=f"tk:{ticket.id}:{stamp}:{person}", chat_id=person, text=text,
                                        buttons=buttons)
            await self._relay(tx, ticket.id, stamp, person, items or [])

    async def _tell_co_handlers(self, tx: Tx, ticket: Ticket, actor_id: int, what: str, *, stamp: int) -> None:
        """The other people who got this ticket learn it was handled (and by whom)."""
        by = await self.people.display_name(actor_id, tx)
        for person in await self.handlers_of(ticket, tx):
            if person == actor_id:
                continue
            lang = await self.people.language(person, tx)
            await self.outbox.send_text(
                tx, key=f"tk-co:{ticket.id}:{stamp}:{person}", chat_id=person,
                text=self.t(lang, "ticket.handled_by", id=ticket.id, by=by,
                            action=self.t(lang, f"ticket.action.{what}")))

    async def _tell_resident(self, tx: Tx, ticket: Ticket, what: str, *, actor_id: int,
                             items: list[Item] | None = None, note: str | None = None, final: bool = False,
                             stamp: int) -> None:
        lang = await self.people.language(ticket.resident_id, tx)
        org = await tx.fetchone("SELECT name FROM orgs WHERE id = ?", (ticket.handler_org_id,))
        values = {"id": ticket.id, "note": note or "", "org": org["name"] if org else "",
                  "by": await self.people.display_name(actor_id, tx)}
        buttons: list[list[Button]] | None = None
        key = f"ticket.to_resident.{what}"
        if what == "answered":
            key = "ticket.to_resident.resolved" if final else key
            values["answer"] = ticket.answer_text or ""
            buttons = [[Button(self.t(lang, f"ticket.rating.{r}"), f"tr:{r[0]}:{ticket.id}") for r in RATINGS]]
        elif what == "need_info":
            buttons = [[Button(self.t(lang, "ticket.button.add_info"), f"tn:{ticket.id}")]]
        await self.outbox.send_text(tx, key=f"tk-res:{ticket.id}:{stamp}", chat_id=ticket.resident_id,
                                    text=self.t(lang, key, **values), buttons=buttons)
        await self._relay(tx, ticket.id, stamp, ticket.resident_id, [i for i in items or [] if i.kind != "text"])

    async def _relay(self, tx: Tx, ticket_id: int, stamp: int, person: int, items: list[Item]) -> None:
        """Photos, voice and files are copied, so the recipient never sees who sent them."""
        for n, item in enumerate(items):
            if item.kind == "text" or item.chat_id is None or item.message_id is None:
                continue
            await self.outbox.enqueue(
                tx, key=f"tk-copy:{ticket_id}:{stamp}:{person}:{n}", chat_id=person, method="copyMessage",
                payload={"chat_id": person, "from_chat_id": item.chat_id, "message_id": item.message_id})

    # --- helpers ------------------------------------------------------------------------------------
    async def _acting(self, tx: Tx, actor_id: int, ticket_id: int) -> Ticket:
        ticket = await self.get(ticket_id, tx)
        if not await self.can_act(actor_id, ticket, tx):
            raise NotAllowed("ticket")
        return ticket

    async def handled_by(self, ticket: Ticket) -> Done:
        """Who handled a ticket last, and what state it is in (for a button pressed too late)."""
        return await self._already(None, ticket)

    async def _already(self, tx: Tx | None, ticket: Ticket) -> Done:
        """Someone handled it before: say who, and what state it is in."""
        row = await (tx or self.db).fetchone(
            "SELECT actor_id, action FROM ticket_events WHERE ticket_id = ? AND action NOT IN"
            " ('escalated', 'blocked_submitter', 'unblocked_submitter') ORDER BY id DESC LIMIT 1", (ticket.id,))
        by = "—"
        if row and row["actor_id"]:
            hidden = ticket.anonymous and row["actor_id"] == ticket.resident_id
            by = self.t(await self.people.language(row["actor_id"], tx), "ticket.anonymous") if hidden \
                else await self.people.display_name(row["actor_id"], tx)
        # `status` is a code: the handler shows it in the reader's language.
        return Done("ticket.done.already", {"id": ticket.id, "by": by, "status": ticket.status}, changed=False)

    async def _set(self, tx: Tx, ticket: Ticket, **changes: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in changes)
        values = [to_db(v) if isinstance(v, datetime) else v for v in changes.values()]
        await tx.execute(f"UPDATE tickets SET {columns} WHERE id = ?", (*values, ticket.id))

    async def _event(self, tx: Tx, ticket_id: int, actor_id: int | None, action: str, note: str | None = None) -> int:
        return await tx.insert(
            "INSERT INTO ticket_events (ticket_id, at, actor_id, action, note) VALUES (?, ?, ?, ?, ?)",
            (ticket_id, to_db(self.clock.now()), actor_id, action, note))

    async def _add_items(self, tx: Tx, ticket_id: int, side: str, author: int, items: list[Item]) -> None:
        now = to_db(self.clock.now())
        await tx.executemany(
            "INSERT INTO ticket_items (ticket_id, side, author_id, kind, text, chat_id, message_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(ticket_id, side, author, i.kind, i.text, i.chat_id, i.message_id, now) for i in items])


def tickets(core: Core) -> TicketService:
    """The Core's one TicketService."""
    return core.service("tickets", TicketService)
