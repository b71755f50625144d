"""The problem wall (问题墙) and echo wall (回音壁): collect → assign → handle/reply → publish → evaluate.

Every method that reads private data or changes state takes the acting person (or the explicit
SYSTEM_ACTOR of the command line and the periodic job) and checks the right itself, from the
database, at that moment. Every message to someone else (the secretary, the resident, the parent
org, the wall chat) is an outbox row in the same transaction as the change.

Anonymity: nothing a handler can see (an answer, a count, a list, a card, a history line) depends
on who the author of an anonymous ticket is, and every text is rendered in its reader's language.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

from bot import callbacks as cb
from bot.actors import Actor, SystemActor, is_system
from bot.clock import from_db, to_db
from bot.database import Database, Tx
from bot.infra import Infra
from bot.limits import MAX_TEXT, clip, split
from bot.outbox import Button
from bot.services.masking import mask_public
from bot.services.orgs import NotAllowed, NotFound, Org, Refused
from bot.services.prompts import Question, QuestionKind
from bot.services.screens import Rendered, Screen, list_kind

DEFAULT_CATEGORIES = ("infrastructure", "sanitation", "welfare", "industry", "disputes", "suggestions", "other")
DEFAULT_ACCEPT_DAYS = 1
DEFAULT_ANSWER_DAYS = 5
MAX_PER_HOUR = 5
MAX_ITEMS = 20
MAX_REASON = 500
RATING_DAYS = 3
WALL_PAGE = 5
REMIND_HOUR = 9  # reminders go out at 09:00 local on the last day before a deadline
# Room for a resident's text in a card or notice, and for texts on the wall; the rest is a tap away
# (详情和记录 / the resident's /my). A card with these and a 500-character note stays far below 4096.
CARD_ROOM = 1500
NOTICE_ROOM = 2500
INFO_QUESTION, RATE_QUESTION = "ticket/info", "ticket/rate"  # open questions (bot/services/prompts.py)
QUESTIONS = (INFO_QUESTION, RATE_QUESTION)
RATE_REASON_LASTS = timedelta(days=1)  # a 不满意 tap asks why; typing after a day is something else
LABEL_ROOM = 16  # characters of the problem named on a chooser button
WALL_PROBLEM_ROOM = 1500
WALL_ANSWER_ROOM = 2000
WALL_PAGE_ROOM = 300  # problem and answer of each post on a /wall page: five posts fit in one message
LEADS = ("secretary", "organizer")


class Status(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    NEED_INFO = "need_info"
    ANSWERED = "answered"
    REOPENED = "reopened"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"
    DECLINED = "declined"


OPEN = (Status.NEW, Status.ACCEPTED, Status.NEED_INFO, Status.REOPENED)
FINAL = (Status.CLOSED, Status.WITHDRAWN, Status.DECLINED)

# The one word for each state, for every reader and every place that shows it (the resident's view
# and /my, the secretary's card and /inbox, the web wall): a ticket rated 满意 is 已办结 for all.
STATUS_KEYS = {
    Status.NEW: "ticket.status.new", Status.ACCEPTED: "ticket.status.accepted",
    Status.NEED_INFO: "ticket.status.need_info", Status.ANSWERED: "ticket.status.answered",
    Status.REOPENED: "ticket.status.reopened", Status.CLOSED: "ticket.status.closed",
    Status.WITHDRAWN: "ticket.status.withdrawn", Status.DECLINED: "ticket.status.declined",
}


def status_word(t: Any, lang: str, status: str) -> str:
    """The state's word in the reader's language (the one mapping every screen uses)."""
    return str(t(lang, STATUS_KEYS[Status(status)]))


class Rating(StrEnum):
    GOOD = "good"
    OK = "ok"
    BAD = "bad"
    UNRATED = "unrated"  # closed after three days without a rating


RATINGS = (Rating.GOOD, Rating.OK, Rating.BAD)  # what a resident may choose
RATING_CHOICE = {Rating.GOOD: cb.RatingChoice.GOOD, Rating.OK: cb.RatingChoice.OK, Rating.BAD: cb.RatingChoice.BAD}


class Purpose(StrEnum):
    """What an outbox row is for (its `purpose` column; the subject is the ticket's id)."""

    CARD = "ticket/card"  # a new problem, to whoever answers for it
    NOTICE = "ticket/notice"  # a change the handlers hear of (added info, withdrawn, rated, transferred)
    HANDLED = "ticket/handled"  # another handler acted
    ESCALATION = "ticket/escalation"  # the card, to the level above
    OVERDUE = "ticket/overdue"  # to the handlers, when it went up
    REMINDER = "ticket/reminder"
    RESIDENT = "ticket/resident"  # to the resident
    MEDIA = "ticket/media"  # a copied photo, voice or file
    WALL = "ticket/wall"  # the post in the wall chat


class Side(StrEnum):
    RESIDENT = "resident"
    HANDLER = "handler"


class Action(StrEnum):
    """What a history line records (ticket_events.action)."""

    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    ASKED_INFO = "asked_info"
    INFO_ADDED = "info_added"
    ANSWERED = "answered"
    RESOLVED = "resolved"
    TRANSFERRED = "transferred"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    RATED_GOOD = "rated_good"
    RATED_OK = "rated_ok"
    RATED_BAD = "rated_bad"
    CLOSED_UNRATED = "closed_unrated"
    ESCALATED = "escalated"
    BLOCKED = "blocked_submitter"
    UNBLOCKED = "unblocked_submitter"


# What the resident's own history shows, and with which notes: what they were told anyway (the
# question, the answer, the decline reason), never an internal transfer reason, an escalation's
# internals or who stopped them from submitting.
RESIDENT_SEES = {
    Action.SUBMITTED: False, Action.ACCEPTED: False, Action.ASKED_INFO: True, Action.INFO_ADDED: False,
    Action.ANSWERED: True, Action.RESOLVED: True, Action.TRANSFERRED: False, Action.DECLINED: True,
    Action.WITHDRAWN: False, Action.RATED_GOOD: False, Action.RATED_OK: False, Action.RATED_BAD: True,
    Action.CLOSED_UNRATED: False, Action.ESCALATED: False,
}


@dataclass(frozen=True)
class Item:
    """One piece of content: text, or a message (photo, voice, location, ...) to copy from its chat."""

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


@dataclass(frozen=True)
class Say:
    """A value of an answer that is a catalog text, rendered in the reader's language (never in
    the language of the person it is about)."""

    key: str


@dataclass(frozen=True)
class Done:
    """What the actor is told after an action: a locale key and its values (a `Say` value is
    rendered in the reader's language)."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)
    changed: bool = True


def render(t: Any, lang: str, outcome: Done | Refused) -> str:
    """An answer in the reader's language."""
    values = {k: t(lang, v.key) if isinstance(v, Say) else v for k, v in outcome.values.items()}
    return str(t(lang, outcome.key, **values))


# The secretary's buttons that still make sense in each state (the service checks again on a tap).
_A = cb.TicketAction
HANDLER_ACTIONS: dict[Status, tuple[cb.TicketAction, ...]] = {
    Status.NEW: (_A.ACCEPT, _A.REPLY, _A.ASK, _A.TRANSFER, _A.DECLINE, _A.RESOLVE, _A.HISTORY),
    Status.ACCEPTED: (_A.REPLY, _A.ASK, _A.TRANSFER, _A.DECLINE, _A.RESOLVE, _A.HISTORY),
    Status.REOPENED: (_A.REPLY, _A.ASK, _A.TRANSFER, _A.DECLINE, _A.RESOLVE, _A.HISTORY),
    Status.NEED_INFO: (_A.REPLY, _A.TRANSFER, _A.DECLINE, _A.RESOLVE, _A.HISTORY),
    Status.ANSWERED: (_A.REPLY, _A.RESOLVE, _A.HISTORY),
}
SUBJECT = "ticket"  # screens' subject kind (bot/services/screens.py)
INBOX_ROOM = 30  # tickets listed as buttons under /inbox
LIST_LIFE = timedelta(days=1)  # an /inbox or /my list is kept true this long


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
    status: Status
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
            public_ok=bool(row["public_ok"]), anonymous=bool(row["anonymous"]), status=Status(row["status"]),
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
    lines: list[InboxLine]  # the first INBOX_ROOM, overdue first
    total: int
    new: int
    overdue: int
    mine: int


@dataclass(frozen=True)
class View:
    """One ticket as its reader may see it: messages (each within Telegram's limit; the buttons
    go on the last) and the media to copy after them."""

    texts: list[str]
    buttons: list[list[Button]]
    media: list[Item]


@dataclass(frozen=True)
class WallPost:
    """A ticket as the public sees it: only masked texts, and no coordinates."""

    ticket: Ticket
    problem: str
    answer: str


@dataclass(frozen=True)
class Block:
    """A block as /blocked lists it: by ticket, never by person."""

    id: int
    ticket_id: int | None
    org: str
    since: datetime


# A point as a location item carries it (and as people paste one): never on the wall.
_COORDINATES = re.compile(r"📍?\s*-?\d{1,3}\.\d{3,}\s*[,，]\s*-?\d{1,3}\.\d{3,}")


def mask_private(text: str) -> str:
    """Hide identifiers (phones, ID cards, bank cards, e-mail, QQ/WeChat) in text shown publicly."""
    return mask_public(text)


def public_text(text: str, place: str) -> str:
    """What the wall may show of a text: coordinates become the village's name, then masking."""
    return mask_private(_COORDINATES.sub(f"📍{place}", text))


def content_key(summary: str) -> str:
    return re.sub(r"\s+", "", summary).lower()


class TicketService:
    def __init__(self, core: Infra) -> None:
        self.core = core
        self.db = core.db
        self.clock = core.clock
        self.t = core.t
        self.orgs = core.orgs
        self.people = core.people
        self.outbox = core.outbox
        self.tz = core.settings.tz
        self.fmt = core.formatter
        self._bindwall_told: dict[int, datetime] = {}
        self.prompts = core.prompts
        # Questions a resident answers by typing (bot/services/prompts.py; answered in handlers/tickets.py).
        self.prompts.register(QuestionKind(INFO_QUESTION, self._describe_question, media=True))
        self.prompts.register(QuestionKind(RATE_QUESTION, self._describe_question))
        self._register_screens()

    # --- settings and lookups ---------------------------------------------------------------
    async def categories(self, org_id: int) -> list[str]:
        raw = await self.db.fetchval("SELECT categories FROM ticket_settings WHERE org_id = ?", (org_id,))
        return list(json.loads(raw)) if raw else list(DEFAULT_CATEGORIES)

    async def categories_for(self, person_id: int) -> list[str]:
        """The categories a person picks from: their home org's (none without a home org)."""
        org = await self.home_org(person_id)
        return await self.categories(org.id) if org else []

    def category_name(self, lang: str, category: str) -> str:
        return self.t(lang, f"ticket.category.{category}") if category in DEFAULT_CATEGORIES else category

    def due_day(self, lang: str, due: datetime) -> str:
        """A deadline at 24:00 shows as the day it closes (2 Dec 00:00 is "by 1 Dec")."""
        return self.fmt.day(lang, due - timedelta(minutes=1))

    async def _settings_org(self, actor: Actor, org_code: str) -> Org:
        if not (is_system(actor) or (isinstance(actor, int) and self.orgs.is_admin(actor))):
            raise NotAllowed("tickets settings")
        org = await self.orgs.by_code(org_code)
        if org is None:
            raise NotFound(f"no org with code {org_code!r}")
        return org

    async def configure(self, actor: Actor, org_code: str, *, accept_days: int | None = None,
                        answer_days: int | None = None, categories: list[str] | None = None) -> None:
        """Per-org deadlines and category list (an admin's command-line setting)."""
        org = await self._settings_org(actor, org_code)
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

    async def assign_category(self, actor: Actor, org_code: str, category: str, person_id: int | None) -> None:
        """Route an org's problems of one category to one person (None: back to the secretary). The
        person must hold a secretary or organizer role at or above the org."""
        org = await self._settings_org(actor, org_code)
        if person_id is not None and not await self.orgs.has_role_at_or_above(person_id, org.id, LEADS):
            raise ValueError(f"person {person_id} is not a secretary or organizer at or above {org_code}")
        async with self.db.transaction() as tx:
            if person_id is None:
                await tx.execute("DELETE FROM category_assignees WHERE org_id = ? AND category = ?", (org.id, category))
            else:
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

    async def _load(self, ticket_id: int, tx: Tx | None = None) -> Ticket:
        sql = "SELECT * FROM tickets WHERE id = ?"
        row = await (tx or self.db).fetchone(sql, (ticket_id,))
        if row is None:
            raise NotFound("ticket")
        return Ticket.from_row(row)

    async def get(self, actor: Actor, ticket_id: int) -> Ticket:
        """The ticket, for its resident and the people who may act on it."""
        ticket = await self._load(ticket_id)
        if not await self.can_view(actor, ticket):
            raise NotAllowed("ticket")
        return ticket

    async def events(self, actor: Actor, ticket_id: int) -> list[Event]:
        """The full history, for those who may act on the ticket (the resident reads `view`)."""
        ticket = await self._load(ticket_id)
        if not await self.can_act(actor, ticket):
            raise NotAllowed("ticket")
        return await self._events(ticket_id)

    async def _events(self, ticket_id: int, tx: Tx | None = None) -> list[Event]:
        rows = await (tx or self.db).fetchall(
            "SELECT at, actor_id, action, note FROM ticket_events WHERE ticket_id = ? ORDER BY id", (ticket_id,))
        return [Event(from_db(r["at"]), r["actor_id"], r["action"], r["note"]) for r in rows]

    async def items(self, actor: Actor, ticket_id: int) -> list[tuple[str, Item]]:
        """The content of both sides, for the resident and those who may act on the ticket."""
        await self.get(actor, ticket_id)
        return await self._items(ticket_id)

    async def _items(self, ticket_id: int, tx: Tx | None = None) -> list[tuple[str, Item]]:
        rows = await (tx or self.db).fetchall(
            "SELECT side, kind, text, chat_id, message_id FROM ticket_items WHERE ticket_id = ? ORDER BY id",
            (ticket_id,))
        return [(r["side"], Item(r["kind"], r["text"], r["chat_id"], r["message_id"])) for r in rows]

    # --- rights -------------------------------------------------------------------------------
    async def can_act(self, actor: Actor, ticket: Ticket, tx: Tx | None = None) -> bool:
        """The system, admins, the handling org's secretaries and organizers at or above it, the
        secretaries of the orgs it has been escalated to, and its assignee while they still hold a
        secretary or organizer role at or above the handling org."""
        if isinstance(actor, SystemActor):
            return True
        if self.orgs.is_admin(actor):
            return True
        if ticket.assignee_id == actor and await self.orgs.has_role_at_or_above(
                actor, ticket.handler_org_id, LEADS, tx):
            return True
        if await self.orgs.has_role_at_or_above(actor, ticket.handler_org_id, ["organizer"], tx):
            return True
        levels = (await self.orgs.ancestors(ticket.handler_org_id, tx))[: ticket.escalation + 1]
        marks = ",".join("?" * len(levels))
        sql = f"SELECT 1 FROM roles WHERE person_id = ? AND role = 'secretary' AND org_id IN ({marks}) LIMIT 1"
        params = (actor, *[o.id for o in levels])
        row = await (tx or self.db).fetchone(sql, params)
        return row is not None

    async def can_view(self, actor: Actor, ticket: Ticket) -> bool:
        return actor == ticket.resident_id or await self.can_act(actor, ticket)

    async def handlers_of(self, ticket: Ticket, tx: Tx | None = None) -> list[int]:
        """Who is told about a ticket: its assignee (while they hold a lead role there), else the
        handling org's secretaries, else the nearest organizers above, else the admins."""
        if ticket.assignee_id is not None and await self.orgs.has_role_at_or_above(
                ticket.assignee_id, ticket.handler_org_id, LEADS, tx):
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
            category=category, public_ok=public_ok, anonymous=anonymous, status=Status.NEW, summary=summary,
            escalation=0, accept_due=accept_due, answer_due=answer_due, next_escalation_at=accept_due,
            answer_text=None, rating=None, created_at=now, accepted_at=None, answered_at=None, closed_at=None,
            wall_posts=0)
        recipients = await self.handlers_of(ticket)
        languages = {person: await self.people.language(person) for person in recipients}
        who = None if anonymous else await self._who(person_id)
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
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (org.id, handler_org.id, assignee, person_id, category, int(public_ok), int(anonymous),
                 Status.NEW.value, summary, key, to_db(accept_due), to_db(answer_due), to_db(accept_due), to_db(now)))
            await self._add_items(tx, ticket.id, Side.RESIDENT, person_id, items)
            stamp = await self._event(tx, ticket.id, person_id, Action.SUBMITTED)
            for person, lang in languages.items():
                text = self.t(lang, "ticket.to_handler.new", id=ticket.id, note="") + "\n\n" + self._card_text(
                    lang, ticket, org.name, who)
                buttons = self.handler_buttons(lang, ticket.id)
                await self.outbox.send_text(tx, key=f"tk:{ticket.id}:{stamp}:{person}", chat_id=person, text=text,
                                            buttons=buttons, purpose=Purpose.CARD, subject_id=ticket.id)
                await self._track_card(tx, f"tk:{ticket.id}:{stamp}:{person}", person, ticket.id, text, buttons,
                                       "ticket.to_handler.new", {"id": ticket.id, "note": ""})
                await self._relay(tx, ticket.id, stamp, person, items)
            await self._schedule_reminder(tx, ticket, "accept", languages)
        return ticket

    async def _who(self, person_id: int, tx: Tx | None = None) -> str:
        return await self.people.display_name(person_id, tx)  # a name, never a Telegram number

    async def _route(self, org: Org, category: str) -> tuple[Org, int | None]:
        assignee = await self.db.fetchval(
            "SELECT person_id FROM category_assignees WHERE org_id = ? AND category = ?", (org.id, category))
        # An assignee who no longer holds a lead role at or above the org is passed over.
        if assignee is not None and await self.orgs.has_role_at_or_above(assignee, org.id, LEADS):
            return org, assignee
        for candidate in await self.orgs.ancestors(org.id):
            if await self.db.fetchval("SELECT 1 FROM roles WHERE org_id = ? AND role = 'secretary'", (candidate.id,)):
                return candidate, None
        return org, None

    async def mine(self, person_id: int, tx: Tx | None = None) -> list[Ticket]:
        rows = await (tx or self.db).fetchall(
            "SELECT * FROM tickets WHERE resident_id = ? ORDER BY id DESC LIMIT 20", (person_id,))
        return [Ticket.from_row(r) for r in rows]

    async def _own(self, tx: Tx, person_id: int, ticket_id: int) -> Ticket:
        ticket = await self._load(ticket_id, tx)
        if ticket.resident_id != person_id:
            raise NotAllowed("not their ticket")
        return ticket

    async def check_own(self, person_id: int, ticket_id: int, status: Status) -> Ticket:
        """The person's own ticket, which must be in `status` (before a flow starts on it)."""
        ticket = await self._load(ticket_id)
        if ticket.resident_id != person_id:
            raise NotAllowed("not their ticket")
        if ticket.status != status:
            raise Refused("ticket.submit.stale")
        return ticket

    async def ask_rate_reason(self, person_id: int, ticket_id: int) -> None:
        """不满意 was tapped: the resident's next text (within a day) is the reason."""
        ticket = await self.check_own(person_id, ticket_id, Status.ANSWERED)
        await self.prompts.ask_now(person_id, RATE_QUESTION, ticket.id, lasts=RATE_REASON_LASTS)

    async def _describe_question(self, lang: str, question: Question) -> str | None:
        """A resident's open question in plain words ("补充问题：路灯坏了…"); None once the ticket
        has moved on (or was never theirs)."""
        try:
            ticket = await self._load(question.subject_id)
        except NotFound:
            return None
        wanted = Status.NEED_INFO if question.kind == INFO_QUESTION else Status.ANSWERED
        if ticket.resident_id != question.person_id or ticket.status != wanted:
            return None
        texts = [item.text for side, item in await self._items(ticket.id)
                 if side == Side.RESIDENT and item.kind == "text" and item.text]
        summary = " ".join(texts[0].split()) if texts else self.category_name(lang, ticket.category)
        summary = summary if len(summary) <= LABEL_ROOM else summary[:LABEL_ROOM] + "…"
        key = "prompt.label.ticket_info" if question.kind == INFO_QUESTION else "prompt.label.ticket_rate"
        return self.t(lang, key, summary=summary)

    async def withdraw(self, person_id: int, ticket_id: int) -> Done:
        async with self.db.transaction() as tx:
            ticket = await self._own(tx, person_id, ticket_id)
            if not ticket.is_open:
                return await self._already(tx, ticket)
            await self._set(tx, ticket, status=Status.WITHDRAWN, closed_at=self.clock.now(), next_escalation_at=None)
            await self.prompts.close_about(tx, QUESTIONS, ticket.id)
            stamp = await self._event(tx, ticket.id, person_id, Action.WITHDRAWN)
            await self._cancel_reminders(tx, ticket.id)
            await self._notify_handlers(tx, ticket, "withdrawn", stamp=stamp)
        return Done("ticket.done.withdrawn", {"id": ticket_id})

    async def add_info(self, person_id: int, ticket_id: int, items: list[Item]) -> Done:
        """The resident answers a request for more information."""
        if not items:
            raise Refused("ticket.refused.empty")
        if len(items) > MAX_ITEMS:
            raise Refused("ticket.refused.too_many_items", limit=MAX_ITEMS)
        async with self.db.transaction() as tx:
            ticket = await self._own(tx, person_id, ticket_id)
            if ticket.status != Status.NEED_INFO:
                return await self._already(tx, ticket)
            status = Status.ACCEPTED if ticket.accepted_at else Status.NEW
            due = ticket.answer_due if ticket.accepted_at else ticket.accept_due
            await self._set(tx, ticket, status=status, next_escalation_at=max(due, self.clock.now()))
            await self.prompts.close_about(tx, QUESTIONS, ticket.id, why="answered")
            await self._add_items(tx, ticket.id, Side.RESIDENT, person_id, items)
            stamp = await self._event(tx, ticket.id, person_id, Action.INFO_ADDED)
            await self._notify_handlers(tx, await self._load(ticket.id, tx), "info_added", items=items, stamp=stamp)
        return Done("ticket.done.info_added", {"id": ticket_id})

    async def rate(self, person_id: int, ticket_id: int, rating: str, reason: str | None = None) -> Done:
        """满意 / 基本满意 close the ticket; 不满意 (with a reason) reopens it to the same handler."""
        if rating not in RATINGS:
            raise ValueError(rating)
        if rating == Rating.BAD and not (reason and reason.strip()):
            raise Refused("ticket.refused.reason_needed")
        if reason and len(reason) > MAX_REASON:
            raise Refused("ticket.refused.too_long", limit=MAX_REASON)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            ticket = await self._own(tx, person_id, ticket_id)
            if ticket.status != Status.ANSWERED:
                return await self._already(tx, ticket)
            await tx.execute("UPDATE tickets SET rating = ?, rating_reason = ? WHERE id = ?",
                             (str(rating), reason, ticket.id))
            stamp = await self._event(tx, ticket.id, person_id, Action(f"rated_{rating}"), reason)
            await self.prompts.close_about(tx, QUESTIONS, ticket.id, why="answered")
            if rating == Rating.BAD:
                # The clock is not restarted: the original answer deadline still counts.
                await self._set(tx, ticket, status=Status.REOPENED, answered_at=None,
                                next_escalation_at=max(ticket.answer_due, now))
                await tx.execute("UPDATE tickets SET reopen_count = reopen_count + 1 WHERE id = ?", (ticket.id,))
                ticket = await self._load(ticket.id, tx)
                await self._notify_handlers(tx, ticket, "reopened", note=reason, stamp=stamp)
                await self._post_to_wall(tx, ticket)
                return Done("ticket.done.reopened", {"id": ticket_id})
            await self._set(tx, ticket, status=Status.CLOSED, closed_at=now)
            await self._notify_handlers(tx, ticket, f"rated_{rating}", stamp=stamp)
        return Done("ticket.done.rated", {"id": ticket_id})

    # --- secretaries --------------------------------------------------------------------------
    async def inbox(self, actor: Actor, tx: Tx | None = None, room: int = INBOX_ROOM) -> Inbox:
        """Open tickets this person may act on (can_act, in SQL), overdue first: the counts over
        all of them, the lines of the first `room` (a province's organiser may have 250,000)."""
        now = self.clock.now()
        src = tx or self.db
        (head, before), (body, after) = self._actionable(actor)
        due = f"CASE WHEN t.status = '{Status.NEW.value}' THEN t.accept_due ELSE t.answer_due END"
        counts = await src.fetchone(
            f"{head} SELECT COUNT(*), SUM(CASE WHEN t.status = '{Status.NEW.value}' THEN 1 ELSE 0 END),"
            f" SUM(CASE WHEN {due} <= ? THEN 1 ELSE 0 END), SUM(CASE WHEN t.assignee_id = ? THEN 1 ELSE 0 END)"
            f" {body}", (*before, to_db(now), actor if isinstance(actor, int) else None, *after))
        assert counts is not None
        # The first lines are picked from the index alone (migration 022), then only they are read.
        first = [r[0] for r in await src.fetchall(
            f"{head} SELECT t.id {body} ORDER BY CASE WHEN {due} <= ? THEN 0 ELSE 1 END,"
            f" CASE WHEN t.status = '{Status.NEW.value}' THEN 0 ELSE 1 END, t.id LIMIT ?",
            (*before, *after, to_db(now), room))]
        rows = await src.fetchall(
            f"SELECT * FROM tickets WHERE id IN ({','.join('?' * len(first))})", tuple(first)) if first else []
        lines = []
        for row in rows:
            ticket = Ticket.from_row(row)
            due_at = ticket.accept_due if ticket.status == Status.NEW else ticket.answer_due
            lines.append(InboxLine(ticket, overdue=due_at <= now, mine=ticket.assignee_id == actor))
        lines.sort(key=lambda line: (not line.overdue, line.ticket.status != Status.NEW, line.ticket.id))
        return Inbox(lines=lines, total=counts[0], new=counts[1] or 0, overdue=counts[2] or 0, mine=counts[3] or 0)

    def _actionable(self, actor: Actor) -> tuple[tuple[str, tuple[Any, ...]], tuple[str, tuple[Any, ...]]]:
        """The open tickets can_act allows, in SQL: the WITH clause and the FROM ... WHERE over
        tickets t, each with its parameters. From each of the person's secretary and organizer
        roles down the tree (with the distance), a ticket handled at an org reached is theirs when
        they organise at or above it, when it has been escalated at least that far to a secretary,
        or when it is assigned to them (they lead at or above it)."""
        # Written out, not bound: only then may SQLite use the partial index of open tickets.
        statuses = ", ".join(f"'{s.value}'" for s in OPEN)
        if isinstance(actor, SystemActor) or self.orgs.is_admin(actor):
            return ("", ()), (f"FROM tickets t WHERE t.status IN ({statuses})", ())
        head = (
            "WITH RECURSIVE down(org_id, role, depth) AS ("
            " SELECT org_id, role, 0 FROM roles WHERE person_id = ? AND role IN ('secretary', 'organizer')"
            " UNION ALL SELECT o.id, down.role, down.depth + 1 FROM orgs o JOIN down ON o.parent_id = down.org_id),"
            " reach(org_id, every, secretary) AS (SELECT org_id, MAX(CASE WHEN role = 'organizer' THEN 1 ELSE 0 END),"
            " MIN(CASE WHEN role = 'secretary' THEN depth END) FROM down GROUP BY org_id)")
        body = (f"FROM reach JOIN tickets t ON t.handler_org_id = reach.org_id WHERE t.status IN ({statuses})"
                " AND (reach.every = 1 OR t.escalation >= reach.secretary OR t.assignee_id = ?)")
        return (head, (actor,)), (body, (actor,))

    async def check_can_act(self, actor: Actor, ticket_id: int) -> Ticket:
        """The ticket, if the actor may act on it (before a reply, question or reason is typed)."""
        ticket = await self._load(ticket_id)
        if not await self.can_act(actor, ticket):
            raise NotAllowed("ticket")
        return ticket

    async def accept(self, actor: Actor, ticket_id: int) -> Done:
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor, ticket_id)
            if ticket.status != Status.NEW:
                return await self._already(tx, ticket)
            now = self.clock.now()
            await self._set(tx, ticket, status=Status.ACCEPTED, accepted_at=now,
                            next_escalation_at=max(ticket.answer_due, now))
            stamp = await self._event(tx, ticket.id, actor, Action.ACCEPTED)
            await self._cancel_reminders(tx, ticket.id)
            ticket = await self._load(ticket.id, tx)
            await self._schedule_reminder(tx, ticket, "answer")
            await self._tell_resident(tx, ticket, "accepted", stamp=stamp)
            await self._tell_co_handlers(tx, ticket, actor, "accepted", stamp=stamp)
        return Done("ticket.done.accepted", {"id": ticket_id})

    @staticmethod
    def answer_text(items: list[Item]) -> str:
        return "\n".join(i.text for i in items if i.kind == "text" and i.text).strip()

    async def preview_answer(self, actor: Actor, ticket_id: int, items: list[Item]) -> str | None:
        """Exactly what the wall would show with this answer (masked, without coordinates), for the
        secretary to read before sending; None when nothing of it would be public."""
        ticket = await self.check_can_act(actor, ticket_id)
        text = self.answer_text(items)
        if not ticket.public_ok or not text:
            return None
        ticket.answer_text = text
        ticket.answered_at = self.clock.now()
        ticket.status = Status.ANSWERED
        post = await self._wall_post(None, ticket)
        return self.wall_text(self.core.settings.locale, post)

    async def answer(self, actor: Actor, ticket_id: int, items: list[Item], final: bool = False) -> Done:
        """The reply (text, photos, voice): the resident is asked to rate it; the wall shows it."""
        if not items:
            raise Refused("ticket.refused.empty")
        if len(items) > MAX_ITEMS:
            raise Refused("ticket.refused.too_many_items", limit=MAX_ITEMS)
        text = self.answer_text(items)
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor, ticket_id)
            if ticket.status not in OPEN:
                return await self._already(tx, ticket)
            now = self.clock.now()
            await self._set(tx, ticket, status=Status.ANSWERED, answered_at=now, next_escalation_at=None,
                            accepted_at=ticket.accepted_at or now)
            await tx.execute("UPDATE tickets SET answer_text = ?, rating = NULL WHERE id = ?",
                             (text or None, ticket.id))
            await self._add_items(tx, ticket.id, Side.HANDLER, self._person(actor), items)
            await self.prompts.close_about(tx, QUESTIONS, ticket.id)
            stamp = await self._event(tx, ticket.id, actor, Action.RESOLVED if final else Action.ANSWERED,
                                      text[:200] or None)
            await self._cancel_reminders(tx, ticket.id)
            ticket = await self._load(ticket.id, tx)
            await self._tell_resident(tx, ticket, "answered", items=items, final=final, stamp=stamp)
            await self._tell_co_handlers(tx, ticket, actor, "answered", stamp=stamp)
            await self._post_to_wall(tx, ticket)
        return Done("ticket.done.answered", {"id": ticket_id})

    async def ask_info(self, actor: Actor, ticket_id: int, question: str) -> Done:
        question = question.strip()
        if not question:
            raise Refused("ticket.refused.empty")
        if len(question) > MAX_REASON:
            raise Refused("ticket.refused.too_long", limit=MAX_REASON)
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor, ticket_id)
            if ticket.status not in (Status.NEW, Status.ACCEPTED, Status.REOPENED):
                return await self._already(tx, ticket)
            # While the resident is asked for more, the secretary's clock does not run out on them.
            await self._set(tx, ticket, status=Status.NEED_INFO, accepted_at=ticket.accepted_at or self.clock.now(),
                            next_escalation_at=None)
            stamp = await self._event(tx, ticket.id, actor, Action.ASKED_INFO, question)
            await self._tell_resident(tx, ticket, "need_info", note=question, stamp=stamp)
            # The resident's next message answers it (with the message that asks, or neither).
            await self.prompts.ask(tx, ticket.resident_id, INFO_QUESTION, ticket.id)
        return Done("ticket.done.asked_info", {"id": ticket_id})

    async def transfer_targets(self, actor: Actor, ticket_id: int,
                               tx: Tx | None = None) -> tuple[list[Org], list[tuple[int, str]]]:
        """Orgs near the handling org (parent, siblings, children) and its other secretaries: the
        only targets a ticket may be transferred to."""
        ticket = await self._load(ticket_id, tx)
        if not await self.can_act(actor, ticket, tx):
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
        people = [(pid, name) for pid, name, roles in await self.orgs.people_in(actor, here.id)
                  if "secretary" in roles and pid != actor and pid != ticket.assignee_id]
        return orgs, people

    @staticmethod
    def _reason(reason: str) -> str:
        reason = reason.strip()
        if not reason:
            raise Refused("ticket.refused.reason_needed")
        if len(reason) > MAX_REASON:
            raise Refused("ticket.refused.too_long", limit=MAX_REASON)
        return reason

    async def transfer(self, actor: Actor, ticket_id: int, reason: str, *, to_org: int | None = None,
                       to_person: int | None = None) -> Done:
        """To one of `transfer_targets` (checked again here: a forged target is refused)."""
        reason = self._reason(reason)
        if (to_org is None) == (to_person is None):
            raise ValueError("transfer to one org or one person")
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor, ticket_id)
            if not ticket.is_open:
                return await self._already(tx, ticket)
            orgs, people = await self.transfer_targets(actor, ticket_id, tx)
            if to_org is not None:
                target = next((o for o in orgs if o.id == to_org), None)
                if target is None:
                    raise NotAllowed("not a transfer target")
                await self._set(tx, ticket, handler_org_id=to_org, assignee_id=None, escalation=0)
                target_name = target.name
            else:
                name = dict(people).get(to_person)  # type: ignore[arg-type]
                if name is None:
                    raise NotAllowed("not a transfer target")
                await self._set(tx, ticket, assignee_id=to_person, escalation=0)
                target_name = name
            stamp = await self._event(tx, ticket.id, actor, Action.TRANSFERRED, f"{target_name}: {reason}")
            await self._cancel_reminders(tx, ticket.id)
            ticket = await self._load(ticket.id, tx)
            items = [item for side, item in await self._items(ticket.id, tx) if side == Side.RESIDENT]
            await self._notify_handlers(tx, ticket, "transferred", items=items, note=reason, stamp=stamp)
            await self._schedule_reminder(tx, ticket, "accept" if ticket.status == Status.NEW else "answer")
            await self._tell_resident(tx, ticket, "transferred", note=target_name, stamp=stamp)
        return Done("ticket.done.transferred", {"id": ticket_id, "target": target_name})

    async def decline(self, actor: Actor, ticket_id: int, reason: str) -> Done:
        """Outside the branch's remit: closed with the reason, which the resident reads."""
        reason = self._reason(reason)
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor, ticket_id)
            if not ticket.is_open:
                return await self._already(tx, ticket)
            await self._set(tx, ticket, status=Status.DECLINED, closed_at=self.clock.now(), next_escalation_at=None)
            await self.prompts.close_about(tx, QUESTIONS, ticket.id)
            stamp = await self._event(tx, ticket.id, actor, Action.DECLINED, reason)
            await self._cancel_reminders(tx, ticket.id)
            await self._tell_resident(tx, ticket, "declined", note=reason, stamp=stamp)
            await self._tell_co_handlers(tx, ticket, actor, "declined", stamp=stamp)
        return Done("ticket.done.declined", {"id": ticket_id})

    async def block_submitter(self, actor: Actor, ticket_id: int) -> Done:
        """Stop the ticket's author from submitting. A block belongs to the ticket: whether its author
        was blocked already (from another ticket) changes nothing in the answer, the list or the
        history, so an anonymous author's other tickets cannot be found out this way."""
        async with self.db.transaction() as tx:
            ticket = await self._acting(tx, actor, ticket_id)
            if await tx.fetchval("SELECT 1 FROM submit_blocks WHERE ticket_id = ? AND lifted_at IS NULL",
                                 (ticket.id,)):
                return Done("ticket.done.already_blocked", {"id": ticket_id}, changed=False)
            await tx.insert(
                "INSERT INTO submit_blocks (org_id, person_id, blocked_by, blocked_at, ticket_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (ticket.org_id, ticket.resident_id, self._person(actor), to_db(self.clock.now()), ticket.id))
            await self._event(tx, ticket.id, actor, Action.BLOCKED)
        return Done("ticket.done.blocked", {"id": ticket_id})

    async def blocks(self, actor: Actor) -> list[Block]:
        """Active blocks the person may lift, by ticket (never by person)."""
        rows = await self.db.fetchall(
            "SELECT b.id, b.ticket_id, b.org_id, b.blocked_at, o.name FROM submit_blocks b"
            " JOIN orgs o ON o.id = b.org_id WHERE b.lifted_at IS NULL ORDER BY b.id")
        return [Block(r["id"], r["ticket_id"], r["name"], from_db(r["blocked_at"])) for r in rows
                if await self._may_block(actor, r["org_id"])]

    async def unblock(self, actor: Actor, block_id: int) -> Done:
        """Lift one ticket's block (the author may still be blocked from another ticket; saying so
        would tell who they are)."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT * FROM submit_blocks WHERE id = ?", (block_id,))
            if row is None:
                raise NotFound("block")
            if not await self._may_block(actor, row["org_id"], tx):
                raise NotAllowed("unblock")
            if row["lifted_at"] is not None:
                return Done("ticket.done.already_unblocked", {}, changed=False)
            await tx.execute("UPDATE submit_blocks SET lifted_by = ?, lifted_at = ? WHERE id = ?",
                             (self._person(actor), to_db(self.clock.now()), block_id))
            if row["ticket_id"]:
                await self._event(tx, row["ticket_id"], actor, Action.UNBLOCKED)
        return Done("ticket.done.unblocked", {"id": row["ticket_id"] or "—"})

    async def _may_block(self, actor: Actor, org_id: int, tx: Tx | None = None) -> bool:
        if isinstance(actor, SystemActor):
            return True
        if await self.orgs.can_manage(actor, org_id, tx):
            return True
        return await self.orgs.has_role_at_or_above(actor, org_id, ["secretary"], tx)

    # --- reading one ticket ---------------------------------------------------------------------
    async def view(self, actor: Actor, ticket_id: int, lang: str) -> View:
        """One ticket in `lang` as this reader may see it: a handler sees everything (an anonymous
        author stays 匿名群众); the resident sees their content and what was meant for them."""
        ticket = await self.get(actor, ticket_id)
        return await self._view(None, ticket, lang, actor != ticket.resident_id)

    async def _view(self, tx: Tx | None, ticket: Ticket, lang: str, as_handler: bool) -> View:
        lines = [self.t(lang, "ticket.view.head", id=ticket.id, category=self.category_name(lang, ticket.category),
                        status=status_word(self.t, lang, ticket.status))]
        if as_handler:
            lines.append(self.t(lang, "ticket.anonymous") if ticket.anonymous
                         else await self._who(ticket.resident_id, tx))
        if ticket.escalation:
            lines.append(self.t(lang, "ticket.escalation_level", level=ticket.escalation))
        media: list[Item] = []
        for side, item in await self._items(ticket.id, tx):
            if item.text:
                lines.append(self.t(lang, "readable.view.said", who=self.t(lang, f"ticket.view.{side}"),
                                    text=item.text))
            if item.kind not in ("text", "location") and item.chat_id is not None:
                media.append(item)
        lines.append(self.t(lang, "ticket.view.history"))
        lines += await self._history_lines(ticket, lang, as_handler, tx)
        buttons = self._view_buttons(lang, ticket, as_handler)
        return View(texts=split("\n".join(lines), MAX_TEXT), buttons=buttons, media=media[:10])

    async def _history_lines(self, ticket: Ticket, lang: str, as_handler: bool, tx: Tx | None = None) -> list[str]:
        lines = []
        for event in await self._events(ticket.id, tx):
            action = Action(event.action)
            if not as_handler and action not in RESIDENT_SEES:
                continue
            who = ""
            if event.actor_id is not None:
                hidden = event.actor_id == ticket.resident_id and ticket.anonymous and as_handler
                who = self.t(lang, "ticket.anonymous") if hidden else await self.people.display_name(event.actor_id, tx)
            shown = RESIDENT_SEES.get(action, False) if not as_handler else action != Action.ESCALATED
            note = self.t(lang, "ticket.view.note", note=event.note) if event.note and shown else ""
            lines.append(f"· {self.fmt.moment_near(lang, event.at, self.clock.now())} {who} "
                         f"{self.t(lang, f'ticket.event.{action}')}{note}")
        return lines

    def _view_buttons(self, lang: str, ticket: Ticket, as_handler: bool) -> list[list[Button]]:
        rows: list[list[Button]] = []
        if as_handler:
            rows = self.handler_buttons(lang, ticket.id, ticket.status, history=False)
            rows.append([Button(self.t(lang, "ticket.button.block"),
                                cb.TICKET_ACTION(cb.TicketAction.BLOCK, ticket.id))])
            return rows
        if ticket.is_open:
            rows.append([Button(self.t(lang, "ticket.button.withdraw"), cb.TICKET_WITHDRAW(ticket.id))])
        if ticket.status == Status.NEED_INFO:
            rows.append([Button(self.t(lang, "ticket.button.add_info"), cb.TICKET_ADD_INFO(ticket.id))])
        if ticket.status == Status.ANSWERED:
            rows.append(self.rating_buttons(lang, ticket.id))
        return rows

    def rating_buttons(self, lang: str, ticket_id: int) -> list[Button]:
        return [Button(self.t(lang, f"ticket.rating.{r}"), cb.TICKET_RATE(RATING_CHOICE[r], ticket_id))
                for r in RATINGS]

    # --- the echo wall --------------------------------------------------------------------------
    async def wall(self, org_id: int, page: int) -> tuple[list[WallPost], bool]:
        """Answered problems of an org that their residents allowed to be shown, newest first (public)."""
        # The statuses written out as the index tickets_wall's condition (migration 026), so that
        # both engines pick the page from that index alone (the posts before it are skipped there:
        # page 50 of a village is 245 of them) and read only the page's rows.
        rows = await self.db.fetchall(
            "SELECT * FROM tickets WHERE id IN (SELECT id FROM tickets WHERE org_id = ? AND public_ok = 1"
            " AND answer_text IS NOT NULL AND status IN ('answered', 'closed')"
            " ORDER BY answered_at DESC, id DESC LIMIT ? OFFSET ?) ORDER BY answered_at DESC, id DESC",
            (org_id, WALL_PAGE + 1, max(page, 0) * WALL_PAGE))
        tickets = [Ticket.from_row(r) for r in rows]
        place = await self._place(None, org_id)  # once for the page: every post is the org's
        return [self._public(t, place) for t in tickets[:WALL_PAGE]], len(tickets) > WALL_PAGE

    async def _wall_post(self, tx: Tx | None, ticket: Ticket) -> WallPost:
        return self._public(ticket, await self._place(tx, ticket.org_id))

    async def _place(self, tx: Tx | None, org_id: int) -> str:
        org = await (tx or self.db).fetchone("SELECT name FROM orgs WHERE id = ?", (org_id,))
        return org["name"] if org else ""

    @staticmethod
    def _public(ticket: Ticket, place: str) -> WallPost:
        """The public texts: a shared place shows as the village's name, numbers are masked."""
        return WallPost(ticket, public_text(ticket.summary, place), public_text(ticket.answer_text or "", place))

    def wall_text(self, lang: str, post: WallPost, short: bool = False) -> str:
        """A wall post; `short` for a /wall page, where five must fit in one message."""
        ticket = post.ticket
        marker = self.t(lang, "ticket.clipped_wall")
        problem_room, answer_room = (WALL_PAGE_ROOM, WALL_PAGE_ROOM) if short else (WALL_PROBLEM_ROOM,
                                                                                     WALL_ANSWER_ROOM)
        status = self.t(lang, "ticket.wall_reopened") if ticket.status == Status.REOPENED else ""
        return self.t(
            lang, "ticket.wall_post", id=ticket.id, category=self.category_name(lang, ticket.category),
            problem=clip(post.problem, problem_room, marker) or self.t(lang, "ticket.no_text"),
            answer=clip(post.answer, answer_room, marker),
            submitted=self.fmt.day(lang, ticket.created_at, weekday=False),
            answered=self.fmt.day(lang, ticket.answered_at or ticket.created_at, weekday=False)) + status

    async def _post_to_wall(self, tx: Tx, ticket: Ticket) -> None:
        """Post a newly answered ticket in the org's wall chat, or edit the post it already has."""
        if not ticket.public_ok or not ticket.answer_text:
            return
        chat = await tx.fetchone("SELECT chat_id FROM wall_chats WHERE org_id = ?", (ticket.org_id,))
        if chat is None:
            return
        text = self.wall_text(self.core.settings.locale, await self._wall_post(tx, ticket))
        if ticket.wall_posts == 0:
            await self.outbox.send_text(tx, key=f"wall:{ticket.id}", chat_id=chat["chat_id"], text=text,
                                        purpose=Purpose.WALL, subject_id=ticket.id)
        else:
            await self.outbox.enqueue(
                tx, key=f"wall-edit:{ticket.id}:{ticket.wall_posts}", chat_id=chat["chat_id"],
                method="editMessageText", purpose=Purpose.WALL, subject_id=ticket.id,
                payload={"chat_id": chat["chat_id"], "text": text, "message_id_from": f"wall:{ticket.id}"})
        await tx.execute("UPDATE tickets SET wall_posts = wall_posts + 1 WHERE id = ?", (ticket.id,))

    async def bind_wall(self, actor: Actor, org_id: int, chat_id: int, title: str | None) -> Done:
        if not await self._may_block(actor, org_id):
            raise NotAllowed("bindwall")
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO wall_chats (org_id, chat_id, title, bound_by, bound_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(org_id) DO UPDATE SET chat_id = excluded.chat_id, title = excluded.title,"
                " bound_by = excluded.bound_by, bound_at = excluded.bound_at",
                (org_id, chat_id, title, self._person(actor), to_db(self.clock.now())))
        return Done("ticket.done.wall_bound", {})

    async def wall_orgs(self, actor: Actor) -> list[Org]:
        """Orgs whose wall this person may bind (they are its secretary or an organizer above)."""
        if isinstance(actor, SystemActor):
            return await self.orgs.roots()
        rows = await self.db.fetchall(
            "SELECT DISTINCT org_id FROM roles WHERE person_id = ? AND role IN ('secretary', 'organizer')",
            (actor,))
        orgs = [o for r in rows if (o := await self.orgs.get(r["org_id"])) is not None]
        if self.orgs.is_admin(actor) and not orgs:
            orgs = await self.orgs.roots()
        return orgs

    def may_answer_bindwall(self, chat_id: int) -> bool:
        """A refused /bindwall in a group is answered at most once an hour per group, so nobody can
        spend the group's 20-messages-a-minute budget on refusals."""
        now = self.clock.now()
        last = self._bindwall_told.get(chat_id)
        if last is not None and now - last < timedelta(hours=1):
            return False
        self._bindwall_told[chat_id] = now
        if len(self._bindwall_told) > 10_000:  # forget the oldest: the table must not grow forever
            for old in sorted(self._bindwall_told, key=self._bindwall_told.__getitem__)[:5_000]:
                del self._bindwall_told[old]
        return True

    # --- deadlines ------------------------------------------------------------------------------
    async def tick(self, actor: Actor) -> int:
        """Escalate what is overdue (each level once, catching up after downtime) and close answers
        left unrated for three days. Returns how many changes were made. The periodic job's work."""
        if not isinstance(actor, SystemActor):
            raise NotAllowed("tick")
        now = self.clock.now()
        changes = 0
        rows = await self.db.fetchall(
            "SELECT id FROM tickets WHERE next_escalation_at IS NOT NULL AND next_escalation_at <= ?", (to_db(now),))
        for row in rows:
            changes += await self._escalate(row["id"], now)
        await self.core.screens.prune(list_kind(SUBJECT), now - LIST_LIFE)  # old /inbox and /my lists
        cutoff = to_db(now - timedelta(days=RATING_DAYS))
        for row in await self.db.fetchall(
                "SELECT id FROM tickets WHERE status = ? AND answered_at <= ?", (Status.ANSWERED.value, cutoff)):
            async with self.db.transaction() as tx:
                ticket = await self._load(row["id"], tx)
                if ticket.status != Status.ANSWERED:
                    continue
                await self._set(tx, ticket, status=Status.CLOSED, closed_at=now)
                await tx.execute("UPDATE tickets SET rating = ? WHERE id = ?", (Rating.UNRATED.value, ticket.id))
                await self._event(tx, ticket.id, None, Action.CLOSED_UNRATED)
                changes += 1
        return changes

    async def _escalate(self, ticket_id: int, now: datetime) -> int:
        changes = 0
        async with self.db.transaction() as tx:
            ticket = await self._load(ticket_id, tx)
            while ticket.is_open and ticket.next_escalation_at is not None and ticket.next_escalation_at <= now:
                chain = await self.orgs.ancestors(ticket.handler_org_id, tx)
                level = min(ticket.escalation + 1, len(chain))  # one past the top: the admins hear of it
                if level == ticket.escalation:  # nobody higher to tell: stop counting
                    await self._set(tx, ticket, next_escalation_at=None)
                    break
                step = "accept" if ticket.status == Status.NEW else "answer"
                accept_days, answer_days = await self._days(ticket.handler_org_id, tx)
                days = accept_days if step == "accept" else answer_days
                # The deadline is 24:00 of its last day; the next period starts on that day.
                following = self.core.calendar.deadline(ticket.next_escalation_at - timedelta(microseconds=1),
                                                        days, self.tz)
                await self._set(tx, ticket, escalation=level, next_escalation_at=following)
                await self._event(tx, ticket.id, None, Action.ESCALATED, f"{step}:{level}")
                ticket = await self._load(ticket.id, tx)
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
            buttons = self.handler_buttons(lang, ticket.id, ticket.status)
            key = f"tk-esc:{ticket.id}:{level}:{step}:{person}"
            await self.outbox.send_text(tx, key=key, chat_id=person, text=text, buttons=buttons,
                                        purpose=Purpose.ESCALATION, subject_id=ticket.id)
            await self._track_card(tx, key, person, ticket.id, text, buttons, f"ticket.escalated_{step}",
                                   {"level": level})
        for person in await self.handlers_of(ticket, tx):
            lang = await self.people.language(person, tx)
            await self.outbox.send_text(
                tx, key=f"tk-late:{ticket.id}:{level}:{step}:{person}", chat_id=person,
                text=self.t(lang, f"ticket.overdue_{step}", id=ticket.id, level=level),
                purpose=Purpose.OVERDUE, subject_id=ticket.id)

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
                text=self.t(lang, f"ticket.remind_{step}", id=ticket.id, due=self.due_day(lang, due)),
                buttons=[[Button(self.t(lang, "ticket.button.open"), cb.TICKET_VIEW(ticket.id))]],
                purpose=Purpose.REMINDER, subject_id=ticket.id)

    async def _cancel_reminders(self, tx: Tx, ticket_id: int) -> None:
        await self.outbox.cancel(tx, key_prefix=f"tk-remind:{ticket_id}:")

    # --- rendering for other people (the outbox) -------------------------------------------------
    def handler_buttons(self, lang: str, ticket_id: int, status: Status = Status.NEW,
                        history: bool = True) -> list[list[Button]]:
        """The secretary's buttons that make sense for a ticket in `status` (none once it is final)."""
        a = cb.TicketAction
        keys = {a.ACCEPT: "accept", a.REPLY: "reply", a.ASK: "ask", a.TRANSFER: "transfer", a.DECLINE: "decline",
                a.RESOLVE: "resolve", a.HISTORY: "history"}
        allowed = set(HANDLER_ACTIONS.get(status, ())) - (set() if history else {a.HISTORY})
        layout = [[a.ACCEPT, a.REPLY], [a.ASK, a.TRANSFER], [a.DECLINE, a.RESOLVE], [a.HISTORY]]
        rows = [[Button(self.t(lang, f"ticket.button.{keys[x]}"), cb.TICKET_ACTION(x, ticket_id))
                 for x in row if x in allowed] for row in layout]
        return [row for row in rows if row]

    async def _card(self, tx: Tx | None, ticket: Ticket, lang: str) -> str:
        org = await (tx or self.db).fetchone("SELECT name FROM orgs WHERE id = ?", (ticket.org_id,))
        who = None if ticket.anonymous else await self._who(ticket.resident_id, tx)
        return self._card_text(lang, ticket, org["name"] if org else "", who)

    def _card_text(self, lang: str, ticket: Ticket, org_name: str, who: str | None) -> str:
        """What a secretary sees of a ticket; `who` is None for an anonymous one. A long problem is
        cut with a marker: the full text is under 详情和记录."""
        summary = clip(ticket.summary, CARD_ROOM, self.t(lang, "ticket.clipped_card")) if ticket.summary \
            else self.t(lang, "ticket.no_text")
        card = self.t(lang, "ticket.card", id=ticket.id, org=org_name,
                      category=self.category_name(lang, ticket.category), summary=summary,
                      who=who or self.t(lang, "ticket.anonymous"),
                      accept_due=self.due_day(lang, ticket.accept_due),
                      answer_due=self.due_day(lang, ticket.answer_due),
                      status=status_word(self.t, lang, ticket.status))
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
            buttons = self.handler_buttons(lang, ticket.id, ticket.status) if ticket.is_open else None
            key = f"tk:{ticket.id}:{stamp}:{person}"
            await self.outbox.send_text(tx, key=key, chat_id=person, text=text,
                                        buttons=buttons, purpose=Purpose.NOTICE, subject_id=ticket.id)
            if buttons:
                await self._track_card(tx, key, person, ticket.id, text, buttons, f"ticket.to_handler.{what}",
                                       {"id": ticket.id, "note": note or ""})
            await self._relay(tx, ticket.id, stamp, person, items or [])

    async def _tell_co_handlers(self, tx: Tx, ticket: Ticket, actor: Actor, what: str, *, stamp: int) -> None:
        """The other people who got this ticket learn it was handled (and by whom)."""
        if isinstance(actor, SystemActor):
            return
        by = await self.people.display_name(actor, tx)
        for person in await self.handlers_of(ticket, tx):
            if person == actor:
                continue
            lang = await self.people.language(person, tx)
            await self.outbox.send_text(
                tx, key=f"tk-co:{ticket.id}:{stamp}:{person}", chat_id=person,
                text=self.t(lang, "ticket.handled_by", id=ticket.id, by=by,
                            action=self.t(lang, f"ticket.action.{what}")),
                purpose=Purpose.HANDLED, subject_id=ticket.id)

    async def _tell_resident(self, tx: Tx, ticket: Ticket, what: str, *, items: list[Item] | None = None,
                             note: str | None = None, final: bool = False, stamp: int) -> None:
        lang = await self.people.language(ticket.resident_id, tx)
        org = await tx.fetchone("SELECT name FROM orgs WHERE id = ?", (ticket.handler_org_id,))
        values = {"id": ticket.id, "note": note or "", "org": org["name"] if org else ""}
        buttons: list[list[Button]] | None = None
        key = f"ticket.to_resident.{what}"
        if what == "answered":
            key = "ticket.to_resident.resolved" if final else key
            values["answer"] = clip(ticket.answer_text or "", NOTICE_ROOM, self.t(lang, "ticket.clipped_resident"))
            buttons = [self.rating_buttons(lang, ticket.id)]
        elif what == "need_info":
            buttons = [[Button(self.t(lang, "ticket.button.add_info"), cb.TICKET_ADD_INFO(ticket.id))]]
        text = self.t(lang, key, **values)
        await self.outbox.send_text(tx, key=f"tk-res:{ticket.id}:{stamp}", chat_id=ticket.resident_id,
                                    text=text, buttons=buttons, purpose=Purpose.RESIDENT, subject_id=ticket.id)
        if buttons:
            await self.core.screens.track(
                tx, source_key=f"tk-res:{ticket.id}:{stamp}", chat_id=ticket.resident_id, kind=SUBJECT,
                subject_id=ticket.id, view="resident", recipient=ticket.resident_id, text=text, buttons=buttons,
                data={"text": text, "wants": what})
        await self._relay(tx, ticket.id, stamp, ticket.resident_id, [i for i in items or [] if i.kind != "text"])

    async def _relay(self, tx: Tx, ticket_id: int, stamp: int, person: int, items: list[Item]) -> None:
        """Photos, voice and files are copied, so the recipient never sees who sent them."""
        for n, item in enumerate(items):
            if item.kind == "text" or item.chat_id is None or item.message_id is None:
                continue
            await self.outbox.enqueue(
                tx, key=f"tk-copy:{ticket_id}:{stamp}:{person}:{n}", chat_id=person, method="copyMessage",
                payload={"chat_id": person, "from_chat_id": item.chat_id, "message_id": item.message_id},
                purpose=Purpose.MEDIA, subject_id=ticket_id)

    # --- screens that stay true (bot/services/screens.py) ------------------------------------------
    def _register_screens(self) -> None:
        screens = self.core.screens
        screens.register(SUBJECT, "card", self._screen_card)
        screens.register(SUBJECT, "resident", self._screen_resident)
        screens.register(SUBJECT, "details", self._screen_details)
        screens.register(list_kind(SUBJECT), "inbox", self._screen_list)
        screens.register(list_kind(SUBJECT), "my", self._screen_list)

    async def _track_card(self, tx: Tx, key: str, person: int, ticket_id: int, text: str,
                          buttons: list[list[Button]], head: str, values: dict[str, Any]) -> None:
        """A card with buttons to a handler: its status and buttons follow the ticket."""
        await self.core.screens.track(tx, source_key=key, chat_id=person, kind=SUBJECT, subject_id=ticket_id,
                                      view="card", recipient=person, text=text, buttons=buttons,
                                      data={"head": head, "values": values})

    async def _screen_ticket(self, src: Database | Tx, screen: Screen, cache: dict[str, Any]) -> Ticket | None:
        if "ticket" not in cache:
            row = await src.fetchone("SELECT * FROM tickets WHERE id = ?", (screen.subject_id,))
            cache["ticket"] = Ticket.from_row(row) if row is not None else None
        ticket: Ticket | None = cache["ticket"]
        return ticket

    async def _screen_card(self, src: Database | Tx, screen: Screen, cache: dict[str, Any]) -> Rendered | None:
        """A handler's card: the head it was sent with, the card as it stands, the buttons that
        still make sense for this reader (none once it is final or no longer theirs)."""
        tx = src if isinstance(src, Tx) else None
        ticket = await self._screen_ticket(src, screen, cache)
        if ticket is None:
            return None
        lang = await self.people.language(screen.recipient, tx)
        head = self.t(lang, screen.data["head"], **screen.data["values"])
        text = head + "\n\n" + await self._card(tx, ticket, lang)
        if ticket.status in FINAL or not await self.can_act(screen.recipient, ticket, tx):
            return Rendered(text, final=True)
        return Rendered(text, self.handler_buttons(lang, ticket.id, ticket.status))

    async def _screen_resident(self, src: Database | Tx, screen: Screen, cache: dict[str, Any]) -> Rendered | None:
        """The resident's message with buttons (rate an answer, add information): as sent while its
        buttons still apply; then with the state now, and without them."""
        tx = src if isinstance(src, Tx) else None
        ticket = await self._screen_ticket(src, screen, cache)
        if ticket is None:
            return None
        lang = await self.people.language(screen.recipient, tx)
        text: str = screen.data["text"]
        if screen.data.get("wants") == "answered" and ticket.status == Status.ANSWERED:
            return Rendered(text, [self.rating_buttons(lang, ticket.id)])
        if screen.data.get("wants") == "need_info" and ticket.status == Status.NEED_INFO:
            return Rendered(text, [[Button(self.t(lang, "ticket.button.add_info"), cb.TICKET_ADD_INFO(ticket.id))]])
        now = self.t(lang, "screen.ticket_now", status=status_word(self.t, lang, ticket.status))
        return Rendered(clip(text, MAX_TEXT - len(now) - 2) + "\n\n" + now, final=True)

    async def _screen_details(self, src: Database | Tx, screen: Screen, cache: dict[str, Any]) -> Rendered | None:
        """详情和记录 as its reader opened it: read again (when it still fits one message), with the
        buttons for the state now."""
        tx = src if isinstance(src, Tx) else None
        ticket = await self._screen_ticket(src, screen, cache)
        if ticket is None:
            return None
        reader = screen.recipient
        as_handler = reader != ticket.resident_id
        if as_handler and not await self.can_act(reader, ticket, tx):
            return None
        view = await self._view(tx, ticket, await self.people.language(reader, tx), as_handler)
        text = view.texts[0] if len(view.texts) == 1 and screen.data.get("single") else screen.data["text"]
        return Rendered(text, view.buttons, final=ticket.status in FINAL)

    def inbox_screen(self, lang: str, inbox: Inbox) -> Rendered:
        """/inbox: the counts, and a button for each of the first 30 (with its state)."""
        text = self.t(lang, "ticket.inbox.title", total=inbox.total, new=inbox.new, overdue=inbox.overdue,
                      mine=inbox.mine)
        rows = []
        for line in inbox.lines[:INBOX_ROOM]:
            marks = ("⚠️" if line.overdue else "") + ("👤" if line.mine else "")
            rows.append([Button(self.t(lang, "ticket.inbox.line", id=line.ticket.id, marks=marks,
                                       category=self.category_name(lang, line.ticket.category),
                                       status=status_word(self.t, lang, line.ticket.status)),
                                cb.TICKET_VIEW(line.ticket.id))])
        if not rows:
            text += "\n" + self.t(lang, "ticket.inbox.empty")
        return Rendered(text, rows, data={"ids": [line.ticket.id for line in inbox.lines[:INBOX_ROOM]]})

    def my_screen(self, lang: str, mine: list[Ticket]) -> Rendered:
        """/my: a button for each of the person's latest tickets, with its state and age."""
        today = self.fmt.local(self.clock.now()).date()
        rows = [[Button(self.t(lang, "ticket.my.line", id=t.id, category=self.category_name(lang, t.category),
                               status=status_word(self.t, lang, t.status),
                               when=self.fmt.relative_day(lang, t.created_at, today)),
                        cb.TICKET_VIEW(t.id))] for t in mine]
        return Rendered(self.t(lang, "ticket.my.title"), rows, data={"ids": [t.id for t in mine]})

    async def _screen_list(self, src: Database | Tx, screen: Screen, cache: dict[str, Any]) -> Rendered | None:
        """/inbox or /my as its reader sent it: kept true for a day (then it is an old list)."""
        tx = src if isinstance(src, Tx) else None
        if self.clock.now() - screen.created_at > LIST_LIFE:
            return None
        lang = await self.people.language(screen.recipient, tx)
        if screen.view == "inbox":
            return self.inbox_screen(lang, await self.inbox(screen.recipient, tx))
        mine = await self.mine(screen.recipient, tx)
        return self.my_screen(lang, mine) if mine else None

    async def remember_list(self, reader: int, view: str, chat_id: int, message_id: int, shown: Rendered) -> None:
        """/inbox (view "inbox") or /my ("my"), sent directly: its lines follow their tickets."""
        await self.core.screens.remember(chat_id=chat_id, message_id=message_id, kind=list_kind(SUBJECT),
                                         subject_id=reader, view=view, recipient=reader, text=shown.text,
                                         buttons=shown.buttons, data=shown.data)

    async def remember_view(self, reader: int, ticket_id: int, chat_id: int, message_id: int, view: View) -> None:
        """The details view a handler sent (its last message carries the buttons) stays true."""
        await self.core.screens.remember(
            chat_id=chat_id, message_id=message_id, kind=SUBJECT, subject_id=ticket_id, view="details",
            recipient=reader, text=view.texts[-1], buttons=view.buttons,
            data={"text": view.texts[-1], "single": len(view.texts) == 1})

    # --- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _person(actor: Actor) -> int:
        """The id stored for who did something: 0 for the system (columns that may not be NULL)."""
        return 0 if isinstance(actor, SystemActor) else actor

    async def _acting(self, tx: Tx, actor: Actor, ticket_id: int) -> Ticket:
        ticket = await self._load(ticket_id, tx)
        if not await self.can_act(actor, ticket, tx):
            raise NotAllowed("ticket")
        return ticket

    async def handled_by(self, actor: Actor, ticket_id: int) -> Done:
        """Who handled a ticket last, and what state it is in (for a button pressed too late)."""
        ticket = await self._load(ticket_id)
        if not await self.can_view(actor, ticket):
            raise NotAllowed("ticket")
        return await self._already(None, ticket)

    async def _already(self, tx: Tx | None, ticket: Ticket) -> Done:
        """Someone handled it before: say who, and what state it is in. An anonymous author is
        `Say("ticket.anonymous")`, rendered in the reader's language, never in the author's."""
        row = await (tx or self.db).fetchone(
            "SELECT actor_id, action FROM ticket_events WHERE ticket_id = ? AND action NOT IN (?, ?, ?)"
            " ORDER BY id DESC LIMIT 1", (ticket.id, Action.ESCALATED.value, Action.BLOCKED.value,
                                          Action.UNBLOCKED.value))
        by: str | Say = "—"
        if row and row["actor_id"]:
            hidden = ticket.anonymous and row["actor_id"] == ticket.resident_id
            by = Say("ticket.anonymous") if hidden else await self.people.display_name(row["actor_id"], tx)
        return Done("ticket.done.already", {"id": ticket.id, "by": by,
                                            "status": Say(STATUS_KEYS[ticket.status])}, changed=False)

    async def _set(self, tx: Tx, ticket: Ticket, **changes: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in changes)
        values = [to_db(v) if isinstance(v, datetime) else str(v) if isinstance(v, StrEnum) else v
                  for v in changes.values()]
        await tx.execute(f"UPDATE tickets SET {columns} WHERE id = ?", (*values, ticket.id))
        # Every earlier message about it that still has buttons is made to read as it stands now.
        await self.core.screens.refresh(tx, SUBJECT, ticket.id)

    async def _event(self, tx: Tx, ticket_id: int, actor: Actor | None, action: Action, note: str | None = None) -> int:
        actor_id = None if actor is None or isinstance(actor, SystemActor) else actor
        return await tx.insert(
            "INSERT INTO ticket_events (ticket_id, at, actor_id, action, note) VALUES (?, ?, ?, ?, ?)",
            (ticket_id, to_db(self.clock.now()), actor_id, action.value, note))

    async def _add_items(self, tx: Tx, ticket_id: int, side: Side, author: int, items: list[Item]) -> None:
        now = to_db(self.clock.now())
        await tx.executemany(
            "INSERT INTO ticket_items (ticket_id, side, author_id, kind, text, chat_id, message_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(ticket_id, side.value, author, i.kind, i.text, i.chat_id, i.message_id, now) for i in items])
