"""Meetings — 三会一课, 主题党日, 月例会 and others: scheduling (once or as a monthly series),
notices, attend/leave answers, reminders, check-in, the roster, minutes, quota reminders and the
.ics file. Every right is checked here, from the database, on every call; every message to
someone other than the person acting is an outbox row written in the same transaction.

Outbox keys (one per meeting, person and purpose, so nothing is ever queued twice):
  mt:{meeting}:n:{person}              the notice
  mt:{meeting}:r{gen}:{person}:{min}   a reminder `min` minutes before the start; `gen` grows with
                                       every edit, whose pending reminders are cancelled first
  mt:{meeting}:e{edit}:{person}        what changed
  mt:{meeting}:x:{person}              the cancellation
  mt:{meeting}:u{yyyymmdd}:{person}    a nudge to answer (one a day)
  mt:{meeting}:mm:{person}             "no minutes yet" to the secretary
  mq:{boundary}:s:{org}:{person}       quota: still due this period (to the secretary)
  mq:{boundary}:o:{person}:{part}      quota: missed (to an organizer above)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.clock import from_db, to_db
from bot.database import Database, Tx
from bot.i18n import language_for
from bot.infra import Infra
from bot.outbox import Button
from bot.services.meeting_text import MeetingText, local_today
from bot.services.meeting_time import (
    Rule,
    add_years,
    after_quiet,
    ends_at_boundary,
    months_from,
    next_boundary,
    period_end,
    period_start,
    plan_reminders,
    previous_boundary,
)
from bot.services.orgs import NotAllowed, NotFound, Org

log = logging.getLogger(__name__)

KINDS = ("general_meeting", "committee_meeting", "group_meeting", "party_lecture", "theme_day", "life_meeting",
         "monthly", "other")
# What the quotas count: the kinds, and "the secretary lectured" (a held 党课 given by a secretary).
QUOTA_KINDS = (*KINDS[:6], "monthly", "secretary_lecture")
QUOTA_PERIODS = ("month", "quarter", "year", "none")
BRANCH_ORG_KINDS = frozenset({"village_branch", "grid_branch", "community", "other"})
# DOMAIN.md's usual minimum frequencies, by the kind of org they apply to.
DEFAULT_QUOTAS: dict[str, dict[str, str]] = {
    "branch": {"general_meeting": "quarter", "committee_meeting": "month", "party_lecture": "quarter",
               "theme_day": "month", "life_meeting": "year", "secretary_lecture": "year"},
    "party_group": {"group_meeting": "month"},
    "county": {"monthly": "month"},
}
MEMBER_ROLES = ("member", "secretary", "organizer")

DEFAULT_OFFSETS = (1440, 120)          # 1 day and 2 hours before
OFFSET_CHOICES = (4320, 1440, 240, 120, 60, 30)
MAX_OFFSETS = 4
DEFAULT_DURATION = timedelta(hours=2)
MAX_DURATION = timedelta(hours=12)
MAX_YEARS_AHEAD = 3
CHECKIN_OPENS = timedelta(minutes=30)
MINUTES_GRACE = timedelta(days=2)
QUOTA_WARN_DAYS = 7
QUOTA_HOUR = time(9, 0)
PLACE_MAX = 100
TOPIC_MAX = 500
LECTURER_MAX = 50
REASON_MAX = 200
MINUTES_TEXT_MAX = 4000
MAX_MESSAGE = 3800  # below Telegram's 4096, for the long digests
# Quiet-hours reminders are moved before 22:00 by this much per recipient, so a big meeting's
# reminders are all delivered by 22:00 at about 25 a second (the outbox sends 29.5 a second).
QUEUE_RATE = 25.0


class Refused(Exception):
    """Bad input, or the meeting's state does not allow this; nothing was changed. `key` is the
    message for the person; datetime values are formatted by the caller in their language."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass(frozen=True)
class Meeting:
    id: int
    org_id: int
    org_name: str
    kind: str
    include_below: bool
    series_id: int | None
    starts_at: datetime
    ends_at: datetime
    place: str
    topic: str
    lecturer: str | None
    lecturer_id: int | None
    status: str
    cancel_reason: str | None
    remind_gen: int
    edits: int
    created_by: int
    held_at: datetime | None


@dataclass(frozen=True)
class Attendee:
    person_id: int
    name: str
    source: str
    answer: str | None
    leave_reason: str | None
    checked_in_at: datetime | None
    presence: str | None

    @property
    def attended(self) -> bool:
        """The secretary's mark wins over the check-in (they correct mistakes)."""
        if self.presence is not None:
            return self.presence == "present"
        return self.checked_in_at is not None


@dataclass
class Draft:
    """A meeting as the scheduling flow collected it."""

    kind: str
    org_id: int
    starts_at: datetime
    ends_at: datetime
    place: str
    topic: str
    include_below: bool = False
    lecturer: str | None = None
    lecturer_id: int | None = None
    extra_people: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SeriesSpec:
    rule: Rule
    holiday_shift: bool = True
    lead_days: int = 7


@dataclass(frozen=True)
class Created:
    meeting: Meeting
    invited: int
    notified: int


@dataclass(frozen=True)
class Roster:
    meeting: Meeting
    attendees: list[Attendee]

    def with_answer(self, answer: str | None) -> list[Attendee]:
        return [a for a in self.attendees if a.answer == answer]


@dataclass(frozen=True)
class TickReport:
    created: int = 0
    minutes_reminders: int = 0
    quota_messages: int = 0


def meeting_from_row(row: Any) -> Meeting:
    return Meeting(
        id=row["id"], org_id=row["org_id"], org_name=row["org_name"], kind=row["kind"],
        include_below=bool(row["include_below"]), series_id=row["series_id"],
        starts_at=from_db(row["starts_at"]), ends_at=from_db(row["ends_at"]), place=row["place"],
        topic=row["topic"], lecturer=row["lecturer"], lecturer_id=row["lecturer_id"], status=row["status"],
        cancel_reason=row["cancel_reason"], remind_gen=row["remind_gen"], edits=row["edits"],
        created_by=row["created_by"], held_at=from_db(row["held_at"]) if row["held_at"] else None,
    )


def _attendee(row: Any) -> Attendee:
    return Attendee(
        person_id=row["person_id"], name=row["name"] or (f"@{row['username']}" if row["username"]
                                                         else str(row["person_id"])),
        source=row["source"], answer=row["answer"], leave_reason=row["leave_reason"],
        checked_in_at=from_db(row["checked_in_at"]) if row["checked_in_at"] else None, presence=row["presence"],
    )


_MEETING_SQL = "SELECT m.*, o.name AS org_name FROM meetings m JOIN orgs o ON o.id = m.org_id"
_ATTENDEE_SQL = ("SELECT a.*, p.name, p.username FROM meeting_attendees a"
                 " LEFT JOIN people p ON p.telegram_id = a.person_id")
# The org, and (with include_below) everything under it; party groups belong to their branch.
_SCOPE_CTE = ("WITH RECURSIVE scope(id) AS (SELECT :org UNION SELECT o.id FROM orgs o JOIN scope ON"
              " o.parent_id = scope.id WHERE :below OR (:groups AND o.kind = 'party_group'))")


def org_group(kind: str) -> str | None:
    if kind in BRANCH_ORG_KINDS:
        return "branch"
    if kind in ("party_group", "county"):
        return kind
    return None


class MeetingService:
    def __init__(self, core: Infra) -> None:
        self.core = core
        self.db: Database = core.db
        self.clock = core.clock
        self.outbox = core.outbox
        self.orgs = core.orgs
        self.people = core.people
        self.calendar = core.calendar
        self.t = core.t
        self.tz = core.settings.tz
        self.default_locale = core.settings.locale
        self.text = MeetingText(core.t, self.tz)

    # --- reading ----------------------------------------------------------------------------
    async def get(self, meeting_id: int, tx: Tx | None = None) -> Meeting:
        src = tx or self.db
        row = await src.fetchone(f"{_MEETING_SQL} WHERE m.id = ?", (meeting_id,))
        if row is None:
            raise NotFound("meeting")
        return meeting_from_row(row)

    async def attendee(self, meeting_id: int, person_id: int, tx: Tx | None = None) -> Attendee | None:
        src = tx or self.db
        row = await src.fetchone(f"{_ATTENDEE_SQL} WHERE a.meeting_id = ? AND a.person_id = ?",
                                 (meeting_id, person_id))
        return _attendee(row) if row else None

    async def attendees(self, meeting_id: int, tx: Tx | None = None) -> list[Attendee]:
        src = tx or self.db
        rows = await src.fetchall(f"{_ATTENDEE_SQL} WHERE a.meeting_id = ? ORDER BY p.name, a.person_id",
                                  (meeting_id,))
        return [_attendee(r) for r in rows]

    async def minutes_counts(self, meeting_id: int, tx: Tx | None = None) -> dict[str, int]:
        src = tx or self.db
        rows = await src.fetchall("SELECT kind, COUNT(*) FROM meeting_minutes WHERE meeting_id = ? GROUP BY kind",
                                  (meeting_id,))
        counts = {"text": 0, "photo": 0, "document": 0}
        counts.update({r[0]: r[1] for r in rows})
        return counts

    async def minutes(self, meeting_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.db.fetchall(
            "SELECT * FROM meeting_minutes WHERE meeting_id = ? ORDER BY id", (meeting_id,))]

    # --- rights -----------------------------------------------------------------------------
    async def can_schedule(self, person_id: int, org_id: int, tx: Tx | None = None) -> bool:
        """Organizers at or above the org and admins; the org's own secretaries (and a branch's
        secretaries for the party groups under it)."""
        if await self.orgs.can_manage(person_id, org_id, tx):
            return True
        src = tx or self.db
        row = await src.fetchone(
            "SELECT 1 FROM roles WHERE person_id = ? AND role = 'secretary' AND (org_id = ? OR org_id ="
            " (SELECT parent_id FROM orgs WHERE id = ? AND kind = 'party_group')) LIMIT 1",
            (person_id, org_id, org_id))
        return row is not None

    async def can_view_ledger(self, person_id: int, org_id: int) -> bool:
        return await self.can_schedule(person_id, org_id)

    async def schedulable_orgs(self, person_id: int) -> list[tuple[int, Org]]:
        """Orgs the person may schedule for, in tree order (organizers: their whole subtree)."""
        found: list[tuple[int, Org]] = list(await self.orgs.manageable_orgs(person_id))
        seen = {org.id for _, org in found}
        rows = await self.db.fetchall(
            "SELECT DISTINCT org_id FROM roles WHERE person_id = ? AND role = 'secretary' ORDER BY org_id",
            (person_id,))
        for row in rows:
            for depth, org in await self.orgs.subtree(row["org_id"]):
                if org.id in seen or (depth > 0 and org.kind != "party_group"):
                    continue
                if depth > 1:
                    continue
                seen.add(org.id)
                found.append((depth, org))
        return found

    async def _require_manager(self, tx: Tx, person_id: int, meeting: Meeting) -> None:
        if not await self.can_schedule(person_id, meeting.org_id, tx):
            raise NotAllowed("meeting")

    # --- validation -------------------------------------------------------------------------
    def check_start(self, starts_at: datetime, ends_at: datetime | None = None) -> None:
        now = self.clock.now()
        if starts_at <= now:
            raise Refused("meeting.error.past")
        limit = add_years(now, MAX_YEARS_AHEAD)
        if starts_at > limit:
            raise Refused("meeting.error.too_far", limit=limit)
        if ends_at is not None:
            if ends_at <= starts_at:
                raise Refused("meeting.error.end_before_start")
            if ends_at - starts_at > MAX_DURATION:
                raise Refused("meeting.error.duration", hours=int(MAX_DURATION.total_seconds() // 3600))

    @staticmethod
    def check_text(value: str | None, limit: int, too_long_key: str) -> str:
        text = (value or "").strip()
        if not text:
            raise Refused("meeting.error.empty")
        if len(text) > limit:
            raise Refused(too_long_key, length=len(text), limit=limit)
        return text

    def check_place(self, value: str | None) -> str:
        return self.check_text(value, PLACE_MAX, "meeting.error.place_long")

    def check_topic(self, value: str | None) -> str:
        return self.check_text(value, TOPIC_MAX, "meeting.error.topic_long")

    def check_lecturer(self, value: str | None) -> str:
        return self.check_text(value, LECTURER_MAX, "meeting.error.lecturer_long")

    def check_reason(self, value: str | None) -> str:
        return self.check_text(value, REASON_MAX, "meeting.error.reason_long")

    def _check_draft(self, draft: Draft) -> Draft:
        if draft.kind not in KINDS:
            raise Refused("meeting.error.not_found")
        self.check_start(draft.starts_at, draft.ends_at)
        draft.place = self.check_place(draft.place)
        draft.topic = self.check_topic(draft.topic)
        if draft.lecturer is not None:
            draft.lecturer = self.check_lecturer(draft.lecturer)
        return draft

    # --- who is invited -----------------------------------------------------------------------
    async def _invitees(self, src: Database | Tx, org_id: int, kind: str, include_below: bool) -> list[int]:
        """Attendees follow from the kind: a committee meeting goes to the committee (secretaries and
        the committee list), the others to every member, secretary and organizer of the org(s)."""
        params = {"org": org_id, "below": int(include_below), "groups": int(kind != "committee_meeting")}
        if kind == "committee_meeting":
            sql = (f"{_SCOPE_CTE} SELECT person_id FROM roles WHERE org_id IN (SELECT id FROM scope)"
                   " AND role = 'secretary' UNION SELECT person_id FROM meeting_committee"
                   " WHERE org_id IN (SELECT id FROM scope)")
        else:
            sql = (f"{_SCOPE_CTE} SELECT DISTINCT person_id FROM roles WHERE org_id IN (SELECT id FROM scope)"
                   " AND role IN ('member', 'secretary', 'organizer')")
        rows = await src.fetchall(sql + " ORDER BY 1", params)
        return [r[0] for r in rows]

    async def preview_count(self, actor: int, draft: Draft) -> int:
        """How many people a draft would invite (the flow's confirmation shows it)."""
        if not await self.can_schedule(actor, draft.org_id):
            raise NotAllowed("meeting")
        people = set(await self._invitees(self.db, draft.org_id, draft.kind, draft.include_below))
        return len(people | set(draft.extra_people))

    async def resolve_people(self, tokens: Iterable[str]) -> tuple[dict[int, str], list[str]]:
        """Telegram ids, @usernames or exact names of people the bot knows → ({id: name}, not found)."""
        found: dict[int, str] = {}
        unknown: list[str] = []
        for token in tokens:
            token = token.strip()
            if not token:
                continue
            if token.lstrip("-").isdigit():
                rows = await self.db.fetchall("SELECT telegram_id, name, username FROM people WHERE telegram_id = ?",
                                              (int(token),))
            elif token.startswith("@"):
                rows = await self.db.fetchall(
                    "SELECT telegram_id, name, username FROM people WHERE lower(username) = lower(?)", (token[1:],))
            else:
                rows = await self.db.fetchall("SELECT telegram_id, name, username FROM people WHERE name = ?",
                                              (token,))
            if len(rows) == 1:
                row = rows[0]
                found[row["telegram_id"]] = row["name"] or row["username"] or str(row["telegram_id"])
            else:
                unknown.append(token)  # nobody, or two people of that name: better to ask again
        return found, unknown

    # --- creating ---------------------------------------------------------------------------
    async def create(self, actor: int, draft: Draft) -> Created:
        """Schedule one meeting: invite, notify everyone but the actor, plan the reminders."""
        self._check_draft(draft)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            await self._check_create_rights(tx, actor, draft)
            meeting_id = await self._insert(tx, draft, created_by=actor, now=now)
            invited, notified = await self._invite_and_announce(tx, meeting_id, draft, skip=actor, now=now,
                                                                notice_at=now)
            meeting = await self.get(meeting_id, tx)
        log.info("meeting %s scheduled by %s for org %s: %s invited", meeting_id, actor, draft.org_id, invited)
        return Created(meeting=meeting, invited=invited, notified=notified)

    async def _check_create_rights(self, tx: Tx, actor: int, draft: Draft) -> None:
        if await tx.fetchval("SELECT 1 FROM orgs WHERE id = ?", (draft.org_id,)) is None:
            raise NotFound("org")
        if not await self.can_schedule(actor, draft.org_id, tx):
            raise NotAllowed("meeting")
        if draft.include_below and not await self.orgs.can_manage(actor, draft.org_id, tx):
            raise NotAllowed("meeting")  # only organizers send a meeting down the tree

    async def _insert(self, tx: Tx, draft: Draft, *, created_by: int, now: datetime, series_id: int | None = None,
                      occurrence: str | None = None) -> int:
        return await tx.insert(
            "INSERT INTO meetings (org_id, kind, include_below, series_id, occurrence, starts_at, ends_at, place,"
            " topic, lecturer, lecturer_id, created_by, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (draft.org_id, draft.kind, int(draft.include_below), series_id, occurrence, to_db(draft.starts_at),
             to_db(draft.ends_at), draft.place, draft.topic, draft.lecturer, draft.lecturer_id, created_by,
             to_db(now), to_db(now)))

    async def _invite_and_announce(self, tx: Tx, meeting_id: int, draft: Draft, *, skip: int | None,
                                   now: datetime, notice_at: datetime) -> tuple[int, int]:
        people = await self._invitees(tx, draft.org_id, draft.kind, draft.include_below)
        added = [p for p in dict.fromkeys(draft.extra_people) if p not in set(people)]
        for pid in added:
            await self.people.ensure(tx, pid)
        await tx.executemany(
            "INSERT INTO meeting_attendees (meeting_id, person_id, source) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(meeting_id, p, "kind") for p in people] + [(meeting_id, p, "added") for p in added])
        everyone = people + added
        meeting = await self.get(meeting_id, tx)
        langs = await self._langs(tx, everyone)
        notified = await self._send_notices(tx, meeting, [p for p in everyone if p != skip], langs, notice_at, now)
        await self._plan_reminders(tx, meeting, everyone, langs, now)
        return len(everyone), notified

    async def _langs(self, tx: Tx, people: Sequence[int]) -> dict[int, str]:
        """Everyone's language in one query (a county-wide meeting has thousands of people)."""
        langs = {p: self.default_locale for p in people}
        rows = await tx.fetchall(
            "SELECT telegram_id, language, tg_language_code FROM people"
            " WHERE telegram_id IN (SELECT value FROM json_each(?))", (json.dumps(list(people)),))
        for row in rows:
            langs[row[0]] = language_for(row[1], row[2], self.default_locale)
        return langs

    async def _send_notices(self, tx: Tx, meeting: Meeting, people: Sequence[int], langs: dict[int, str],
                            at: datetime, now: datetime, replace: bool = False) -> int:
        rendered: dict[str, tuple[str, list[list[Button]]]] = {}
        sends = []
        for pid in people:
            lang = langs.get(pid, self.default_locale)
            if lang not in rendered:
                rendered[lang] = (self.notice_text(lang, meeting, now), self.text.reply_buttons(lang, meeting.id))
            text, buttons = rendered[lang]
            sends.append(self.outbox.send_text(tx, key=f"mt:{meeting.id}:n:{pid}", chat_id=pid, text=text,
                                               buttons=buttons, not_before=at, replace=replace))
        return sum(await _pipelined(sends))

    # --- texts for others ---------------------------------------------------------------------
    def card(self, lang: str, meeting: Meeting, now: datetime | None = None) -> list[str]:
        return self.text.card_lines(lang, org=meeting.org_name, kind=meeting.kind, starts_at=meeting.starts_at,
                                    ends_at=meeting.ends_at, place=meeting.place, topic=meeting.topic,
                                    lecturer=meeting.lecturer, now=now)

    def notice_text(self, lang: str, meeting: Meeting, now: datetime) -> str:
        return "\n".join([self.t(lang, "meeting.notice.title"), *self.card(lang, meeting, now), "",
                          self.t(lang, "meeting.notice.footer")])

    def reminder_text(self, lang: str, meeting: Meeting, at: datetime) -> str:
        today = local_today(at, self.tz)
        day = self.text.day_word(lang, local_today(meeting.starts_at, self.tz), today)
        title = self.t(lang, "meeting.reminder.title", day=day, time=self.text.clock(lang, meeting.starts_at))
        return "\n".join([title, *self.card(lang, meeting, at), "", self.t(lang, "meeting.reminder.footer")])

    # --- reminders ------------------------------------------------------------------------------
    async def reminder_offsets(self, org_id: int, tx: Tx | None = None) -> list[int]:
        """Minutes before the start; the org's own setting, else its nearest ancestor's, else the default."""
        src = tx or self.db
        value = await src.fetchval(
            "WITH RECURSIVE up(id, n) AS (SELECT ?, 0 UNION ALL SELECT o.parent_id, up.n + 1 FROM orgs o"
            " JOIN up ON o.id = up.id WHERE o.parent_id IS NOT NULL)"
            " SELECT s.reminder_offsets FROM up JOIN meeting_settings s ON s.org_id = up.id"
            " WHERE s.reminder_offsets IS NOT NULL ORDER BY up.n LIMIT 1", (org_id,))
        return sorted(json.loads(value), reverse=True) if value is not None else list(DEFAULT_OFFSETS)

    async def _sent_reminders(self, tx: Tx, meeting_id: int) -> dict[tuple[int, int], datetime]:
        """(person, offset) → when a reminder of that offset last went out, over all generations."""
        rows = await tx.fetchall(
            "SELECT dedup_key, sent_at FROM outbox WHERE dedup_key >= ? AND dedup_key < ? AND status = 'sent'",
            (f"mt:{meeting_id}:r", f"mt:{meeting_id}:s"))
        sent: dict[tuple[int, int], datetime] = {}
        for row in rows:
            parts = row["dedup_key"].split(":")
            if len(parts) == 5 and row["sent_at"]:
                key = (int(parts[3]), int(parts[4]))
                at = from_db(row["sent_at"])
                if key not in sent or sent[key] < at:
                    sent[key] = at
        return sent

    async def _plan_reminders(self, tx: Tx, meeting: Meeting, people: Sequence[int], langs: dict[int, str],
                              now: datetime) -> int:
        """Queue the reminders of everyone in `people` who has not asked for leave. A reminder of the
        same offset already sent within one offset of the new time (the meeting moved a little) is
        not sent again."""
        leave = {r[0] for r in await tx.fetchall(
            "SELECT person_id FROM meeting_attendees WHERE meeting_id = ? AND answer = 'leave'", (meeting.id,))}
        people = [p for p in people if p not in leave]
        if not people or meeting.status != "scheduled":
            return 0
        offsets = await self.reminder_offsets(meeting.org_id, tx)
        lead = timedelta(seconds=max(60.0, len(people) / QUEUE_RATE))
        plan = plan_reminders(meeting.starts_at, offsets, now, self.tz, lead)
        if not plan:
            return 0
        sent = await self._sent_reminders(tx, meeting.id)
        rendered: dict[tuple[str, datetime], tuple[str, list[list[Button]]]] = {}
        sends = []
        for offset, at in plan:
            nominal = meeting.starts_at - timedelta(minutes=offset)
            for pid in people:
                before = sent.get((pid, offset))
                if before is not None and before > nominal - timedelta(minutes=offset):
                    continue
                lang = langs.get(pid, self.default_locale)
                if (lang, at) not in rendered:
                    rendered[(lang, at)] = (self.reminder_text(lang, meeting, at),
                                            self.text.reply_buttons(lang, meeting.id, checkin=True))
                text, buttons = rendered[(lang, at)]
                sends.append(self.outbox.send_text(
                    tx, key=f"mt:{meeting.id}:r{meeting.remind_gen}:{pid}:{offset}", chat_id=pid, text=text,
                    buttons=buttons, not_before=at, replace=True))
        await _pipelined(sends)
        return len(sends)

    # --- members' answers -----------------------------------------------------------------------
    async def _invited(self, tx: Tx, meeting_id: int, person_id: int) -> tuple[Meeting, Attendee]:
        meeting = await self.get(meeting_id, tx)
        attendee = await self.attendee(meeting_id, person_id, tx)
        if attendee is None:
            raise Refused("meeting.error.not_invited")
        return meeting, attendee

    @staticmethod
    def _open_for_answers(meeting: Meeting, now: datetime) -> None:
        if meeting.status == "cancelled":
            raise Refused("meeting.error.cancelled", reason=meeting.cancel_reason or "")
        if meeting.status == "held" or now >= meeting.starts_at:
            raise Refused("meeting.error.started")

    async def answer(self, person_id: int, meeting_id: int, answer: str, reason: str | None = None) -> Attendee:
        """Attend or ask for leave (with a reason); changeable until the meeting starts. Leave cancels the
        person's pending reminders; coming back from leave plans them again."""
        if answer not in ("attend", "leave"):
            raise ValueError(answer)
        reason = self.check_reason(reason) if answer == "leave" else None
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting, before = await self._invited(tx, meeting_id, person_id)
            self._open_for_answers(meeting, now)
            await tx.execute(
                "UPDATE meeting_attendees SET answer = ?, leave_reason = ?, answered_at = ?"
                " WHERE meeting_id = ? AND person_id = ?", (answer, reason, to_db(now), meeting_id, person_id))
            if answer == "leave":
                await self.outbox.cancel(tx, key_prefix=f"mt:{meeting_id}:r{meeting.remind_gen}:{person_id}:")
            elif before.answer == "leave":
                await self._plan_reminders(tx, meeting, [person_id], await self._langs(tx, [person_id]), now)
            after = await self.attendee(meeting_id, person_id, tx)
        assert after is not None
        return after

    async def check_in(self, person_id: int, meeting_id: int) -> tuple[Meeting, datetime, bool]:
        """签到 from 30 minutes before the start until the end. Returns (meeting, when, already)."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting, attendee = await self._invited(tx, meeting_id, person_id)
            if meeting.status == "cancelled":
                raise Refused("meeting.error.cancelled", reason=meeting.cancel_reason or "")
            opens, closes = meeting.starts_at - CHECKIN_OPENS, meeting.ends_at
            if attendee.checked_in_at is not None:
                return meeting, attendee.checked_in_at, True
            if now < opens:
                raise Refused("meeting.error.checkin_early", opens=opens, closes=closes)
            if now > closes or meeting.status == "held":
                raise Refused("meeting.error.checkin_closed", closes=closes)
            await tx.execute("UPDATE meeting_attendees SET checked_in_at = ? WHERE meeting_id = ? AND person_id = ?",
                             (to_db(now), meeting_id, person_id))
        return meeting, now, False

    async def checkin_candidates(self, person_id: int) -> list[Meeting]:
        """The person's meetings whose check-in is open now."""
        now = self.clock.now()
        rows = await self.db.fetchall(
            f"{_MEETING_SQL} JOIN meeting_attendees a ON a.meeting_id = m.id WHERE a.person_id = ?"
            " AND m.status = 'scheduled' AND m.starts_at <= ? AND m.ends_at >= ? ORDER BY m.starts_at",
            (person_id, to_db(now + CHECKIN_OPENS), to_db(now)))
        return [meeting_from_row(r) for r in rows]

    async def upcoming(self, person_id: int, limit: int = 15) -> list[tuple[Meeting, Attendee]]:
        """The person's meetings that have not ended, soonest first."""
        now = self.clock.now()
        rows = await self.db.fetchall(
            f"{_MEETING_SQL} JOIN meeting_attendees a ON a.meeting_id = m.id WHERE a.person_id = ?"
            " AND m.status = 'scheduled' AND m.ends_at > ? ORDER BY m.starts_at LIMIT ?",
            (person_id, to_db(now), limit))
        out = []
        for row in rows:
            attendee = await self.attendee(row["id"], person_id)
            if attendee is not None:
                out.append((meeting_from_row(row), attendee))
        return out

    async def managed(self, person_id: int, limit: int = 15) -> list[Meeting]:
        """Meetings the person may manage that have not ended, or ended and still wait for minutes."""
        orgs = [org.id for _, org in await self.schedulable_orgs(person_id)]
        if not orgs:
            return []
        now = self.clock.now()
        rows = await self.db.fetchall(
            f"{_MEETING_SQL} WHERE m.org_id IN (SELECT value FROM json_each(?)) AND m.status = 'scheduled'"
            " AND m.ends_at > ? ORDER BY m.starts_at LIMIT ?",
            (json.dumps(orgs), to_db(now - timedelta(days=14)), limit))
        return [meeting_from_row(r) for r in rows]

    async def viewable(self, person_id: int, meeting_id: int) -> tuple[Meeting, Attendee | None, bool]:
        """(meeting, the person's attendance, may manage); NotAllowed for anyone else."""
        meeting = await self.get(meeting_id)
        attendee = await self.attendee(meeting_id, person_id)
        manages = await self.can_schedule(person_id, meeting.org_id)
        if attendee is None and not manages:
            raise Refused("meeting.error.not_invited")
        return meeting, attendee, manages

    async def answerable(self, person_id: int, meeting_id: int) -> Meeting:
        """The meeting, if the person may still answer it (else Refused, with the reason)."""
        meeting = await self.get(meeting_id)
        if await self.attendee(meeting_id, person_id) is None:
            raise Refused("meeting.error.not_invited")
        self._open_for_answers(meeting, self.clock.now())
        return meeting

    async def manageable(self, actor: int, meeting_id: int, *, before_start: bool = False) -> Meeting:
        """The meeting, if the person may manage it (and, with before_start, it has not started)."""
        meeting = await self.get(meeting_id)
        if not await self.can_schedule(actor, meeting.org_id):
            raise NotAllowed("meeting")
        if before_start:
            self._open_for_answers(meeting, self.clock.now())
        return meeting

    async def begin_minutes(self, actor: int, meeting_id: int) -> dict[str, int]:
        """May the person record minutes now? Returns what is recorded so far."""
        meeting = await self.manageable(actor, meeting_id)
        if meeting.status == "cancelled":
            raise Refused("meeting.error.cancelled", reason=meeting.cancel_reason or "")
        if meeting.status == "held":
            raise Refused("meeting.error.held")
        if self.clock.now() < meeting.starts_at:
            raise Refused("meeting.error.minutes_early")
        return await self.minutes_counts(meeting_id)

    async def recent_places(self, org_id: int, limit: int = 3) -> list[str]:
        """The org's last few meeting places (offered as buttons)."""
        rows = await self.db.fetchall(
            "SELECT place FROM meetings WHERE org_id = ? GROUP BY place ORDER BY MAX(id) DESC LIMIT ?",
            (org_id, limit))
        return [r[0] for r in rows]

    # --- managing -------------------------------------------------------------------------------
    async def roster(self, actor: int, meeting_id: int) -> Roster:
        meeting = await self.get(meeting_id)
        if not await self.can_schedule(actor, meeting.org_id):
            raise NotAllowed("meeting")
        return Roster(meeting=meeting, attendees=await self.attendees(meeting_id))

    async def mark(self, actor: int, meeting_id: int, person_id: int) -> str | None:
        """The secretary's mark, cycled: none → present → absent → none. From check-in time on."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting = await self.get(meeting_id, tx)
            await self._require_manager(tx, actor, meeting)
            if meeting.status == "cancelled":
                raise Refused("meeting.error.cancelled", reason=meeting.cancel_reason or "")
            if now < meeting.starts_at - CHECKIN_OPENS:
                raise Refused("meeting.error.mark_early")
            attendee = await self.attendee(meeting_id, person_id, tx)
            if attendee is None:
                raise Refused("meeting.error.not_invited")
            new = {None: "present", "present": "absent", "absent": None}[attendee.presence]
            await tx.execute("UPDATE meeting_attendees SET presence = ?, marked_by = ? WHERE meeting_id = ?"
                             " AND person_id = ?", (new, actor, meeting_id, person_id))
        return new

    async def nudge(self, actor: int, meeting_id: int) -> int:
        """Remind everyone who has not answered (one nudge a person a day; never in quiet hours)."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting = await self.get(meeting_id, tx)
            await self._require_manager(tx, actor, meeting)
            self._open_for_answers(meeting, now)
            silent = [r[0] for r in await tx.fetchall(
                "SELECT person_id FROM meeting_attendees WHERE meeting_id = ? AND answer IS NULL AND person_id != ?"
                " ORDER BY person_id", (meeting_id, actor))]
            if not silent:
                raise Refused("meeting.error.nobody_to_nudge")
            langs = await self._langs(tx, silent)
            day = local_today(now, self.tz).strftime("%Y%m%d")
            at = after_quiet(now, self.tz)
            sent = 0
            for pid in silent:
                lang = langs[pid]
                text = "\n".join([self.t(lang, "meeting.nudge.title"), *self.card(lang, meeting, now), "",
                                  self.t(lang, "meeting.notice.footer")])
                if await self.outbox.send_text(tx, key=f"mt:{meeting_id}:u{day}:{pid}", chat_id=pid, text=text,
                                               buttons=self.text.reply_buttons(lang, meeting_id), not_before=at):
                    sent += 1
            if not sent:
                raise Refused("meeting.error.nudged_today")
        return sent

    async def add_people(self, actor: int, meeting_id: int, people: Sequence[int]) -> list[int]:
        """Invite more people to a scheduled meeting; they get the notice and the reminders."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting = await self.get(meeting_id, tx)
            await self._require_manager(tx, actor, meeting)
            self._open_for_answers(meeting, now)
            added = []
            for pid in dict.fromkeys(people):
                await self.people.ensure(tx, pid)
                cur = await tx.execute("INSERT INTO meeting_attendees (meeting_id, person_id, source)"
                                       " VALUES (?, ?, 'added') ON CONFLICT DO NOTHING", (meeting_id, pid))
                if cur.rowcount:
                    added.append(pid)
            langs = await self._langs(tx, added)
            await self._send_notices(tx, meeting, [p for p in added if p != actor], langs, now, now)
            await self._plan_reminders(tx, meeting, added, langs, now)
        return added

    async def edit(self, actor: int, meeting_id: int, *, starts_at: datetime | None = None,
                   ends_at: datetime | None = None, place: str | None = None, topic: str | None = None,
                   reason: str | None = None) -> tuple[Meeting, int]:
        """Change the time, place or agenda. Everyone invited is told what changed (someone whose
        notice has not gone out yet just gets the corrected notice); pending reminders are
        cancelled and planned again for the new time. Returns (meeting, people told)."""
        now = self.clock.now()
        reason = self.check_reason(reason) if reason else None
        async with self.db.transaction() as tx:
            old = await self.get(meeting_id, tx)
            await self._require_manager(tx, actor, old)
            self._open_for_answers(old, now)
            new_start, new_end = old.starts_at, old.ends_at
            if starts_at is not None:
                new_start = starts_at
                new_end = ends_at or starts_at + (old.ends_at - old.starts_at)
                self.check_start(new_start, new_end)
            new_place = self.check_place(place) if place is not None else old.place
            new_topic = self.check_topic(topic) if topic is not None else old.topic
            if (new_start, new_end, new_place, new_topic) == (old.starts_at, old.ends_at, old.place, old.topic):
                raise Refused("meeting.error.no_change")
            await tx.execute(
                "UPDATE meetings SET starts_at = ?, ends_at = ?, place = ?, topic = ?, edits = edits + 1,"
                " remind_gen = remind_gen + 1, updated_at = ? WHERE id = ?",
                (to_db(new_start), to_db(new_end), new_place, new_topic, to_db(now), meeting_id))
            meeting = await self.get(meeting_id, tx)
            await self.outbox.cancel(tx, key_prefix=f"mt:{meeting_id}:r")
            people = [a.person_id for a in await self.attendees(meeting_id, tx)]
            langs = await self._langs(tx, people)
            waiting = await self._pending_notices(tx, meeting_id)
            await self._send_notices(tx, meeting, [p for p in people if p in waiting and p != actor], langs,
                                     now, now, replace=True)
            told = 0
            for pid in people:
                if pid == actor or pid in waiting:
                    continue
                lang = langs[pid]
                await self.outbox.send_text(
                    tx, key=f"mt:{meeting_id}:e{meeting.edits}:{pid}", chat_id=pid,
                    text=self.change_text(lang, old, meeting, reason, now),
                    buttons=self.text.reply_buttons(lang, meeting_id))
                told += 1
            await self._plan_reminders(tx, meeting, people, langs, now)
        return meeting, told + len([p for p in waiting if p != actor])

    async def _pending_notices(self, tx: Tx, meeting_id: int) -> set[int]:
        rows = await tx.fetchall(
            "SELECT dedup_key FROM outbox WHERE dedup_key >= ? AND dedup_key < ? AND status = 'pending'",
            (f"mt:{meeting_id}:n:", f"mt:{meeting_id}:n;"))
        return {int(r[0].rsplit(":", 1)[1]) for r in rows}

    def change_text(self, lang: str, old: Meeting, new: Meeting, reason: str | None, now: datetime) -> str:
        lines = [self.t(lang, "meeting.changed.title")]
        if (old.starts_at, old.ends_at) != (new.starts_at, new.ends_at):
            lines.append(self.t(lang, "meeting.changed.time", old=self.text.span(lang, old.starts_at, old.ends_at, now),
                                new=self.text.span(lang, new.starts_at, new.ends_at, now)))
        if old.place != new.place:
            lines.append(self.t(lang, "meeting.changed.place", old=old.place, new=new.place))
        if old.topic != new.topic:
            lines.append(self.t(lang, "meeting.changed.topic", old=old.topic, new=new.topic))
        if reason:
            lines.append(self.t(lang, "meeting.changed.reason", reason=reason))
        lines += ["", *self.card(lang, new, now), "", self.t(lang, "meeting.changed.footer")]
        return "\n".join(lines)

    async def cancel(self, actor: int, meeting_id: int, reason: str | None) -> tuple[Meeting, int]:
        """Call a meeting off (before it ends), with a reason. Whoever had heard of it is told; every
        message still waiting about it (notices, reminders) is cancelled."""
        reason = self.check_reason(reason)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting = await self.get(meeting_id, tx)
            await self._require_manager(tx, actor, meeting)
            if meeting.status == "cancelled":
                raise Refused("meeting.error.cancelled", reason=meeting.cancel_reason or "")
            if meeting.status == "held" or now >= meeting.ends_at:
                raise Refused("meeting.error.ended")
            await tx.execute("UPDATE meetings SET status = 'cancelled', cancel_reason = ?, updated_at = ?"
                             " WHERE id = ?", (reason, to_db(now), meeting_id))
            meeting = await self.get(meeting_id, tx)
            invited = {a.person_id for a in await self.attendees(meeting_id, tx)}
            heard = {int(r[0].split(":")[3]) for r in await tx.fetchall(
                "SELECT dedup_key FROM outbox WHERE dedup_key >= ? AND dedup_key < ? AND status = 'sent'",
                (f"mt:{meeting_id}:", f"mt:{meeting_id};"))}
            heard.add(meeting.created_by)
            await self.outbox.cancel(tx, key_prefix=f"mt:{meeting_id}:")
            tell = sorted((heard & invited) - {actor})
            langs = await self._langs(tx, tell)
            for pid in tell:
                lang = langs[pid]
                text = "\n".join([self.t(lang, "meeting.cancelled.title"),
                                  self.t(lang, "meeting.cancelled.reason", reason=reason), "",
                                  *self.card(lang, meeting, now)])
                await self.outbox.send_text(tx, key=f"mt:{meeting_id}:x:{pid}", chat_id=pid, text=text)
        return meeting, len(tell)

    # --- minutes ----------------------------------------------------------------------------
    async def add_minutes(self, actor: int, meeting_id: int, kind: str, text: str | None = None,
                          file_id: str | None = None, file_name: str | None = None) -> dict[str, int]:
        """Record minutes (text, a photo or a document), once the meeting has started."""
        if kind not in ("text", "photo", "document"):
            raise ValueError(kind)
        if kind == "text":
            text = self.check_text(text, MINUTES_TEXT_MAX, "meeting.error.minutes_long")
        elif text:
            text = text.strip()[:MINUTES_TEXT_MAX]
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting = await self.get(meeting_id, tx)
            await self._require_manager(tx, actor, meeting)
            if meeting.status == "cancelled":
                raise Refused("meeting.error.cancelled", reason=meeting.cancel_reason or "")
            if now < meeting.starts_at:
                raise Refused("meeting.error.minutes_early")
            await tx.execute(
                "INSERT INTO meeting_minutes (meeting_id, kind, text, file_id, file_name, added_by, added_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", (meeting_id, kind, text, file_id, file_name, actor, to_db(now)))
            return await self.minutes_counts(meeting_id, tx)

    async def close(self, actor: int, meeting_id: int) -> tuple[Meeting, dict[str, int]]:
        """Close the meeting as held (it needs minutes). Returns attendance figures."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting = await self.get(meeting_id, tx)
            await self._require_manager(tx, actor, meeting)
            if meeting.status == "cancelled":
                raise Refused("meeting.error.cancelled", reason=meeting.cancel_reason or "")
            if meeting.status == "held":
                raise Refused("meeting.error.held")
            if now < meeting.starts_at:
                raise Refused("meeting.error.minutes_early")
            if not sum((await self.minutes_counts(meeting_id, tx)).values()):
                raise Refused("meeting.error.no_minutes")
            await tx.execute("UPDATE meetings SET status = 'held', held_at = ?, closed_by = ?, updated_at = ?"
                             " WHERE id = ?", (to_db(now), actor, to_db(now), meeting_id))
            await self.outbox.cancel(tx, key_prefix=f"mt:{meeting_id}:r")
            meeting = await self.get(meeting_id, tx)
            attendees = await self.attendees(meeting_id, tx)
        stats = {"attended": sum(a.attended for a in attendees),
                 "leave": sum(1 for a in attendees if not a.attended and a.answer == "leave"),
                 "absent": sum(1 for a in attendees if not a.attended and a.answer != "leave")}
        return meeting, stats

    # --- the calendar file --------------------------------------------------------------------
    async def ics(self, person_id: int, meeting_id: int, lang: str) -> tuple[str, bytes]:
        """An iCalendar (RFC 5545) file of the meeting for an invitee or a manager."""
        from bot.services.meeting_ics import build_ics

        meeting, _, _ = await self.viewable(person_id, meeting_id)
        if meeting.status == "cancelled":
            raise Refused("meeting.error.cancelled", reason=meeting.cancel_reason or "")
        offsets = await self.reminder_offsets(meeting.org_id)
        summary = f"{self.text.kind(lang, meeting.kind)}：{meeting.topic}" if lang == "zh_CN" else \
            f"{self.text.kind(lang, meeting.kind)}: {meeting.topic}"
        description = "\n".join(self.card(lang, meeting))
        content = build_ics(uid=f"meeting-{meeting.id}@branchbot", sequence=meeting.edits, stamp=self.clock.now(),
                            start=meeting.starts_at, end=meeting.ends_at, summary=summary, location=meeting.place,
                            description=description, alarms=offsets[:2])
        return f"meeting-{meeting.id}.ics", content

    # --- series -------------------------------------------------------------------------------
    async def create_series(self, actor: int, draft: Draft, spec: SeriesSpec) -> tuple[int, list[Meeting]]:
        """A monthly series from the first meeting's date; meetings are created `lead_days` ahead
        (now, if the first one is that close). Returns (series id, meetings created now)."""
        self._check_draft(draft)
        if not 1 <= spec.lead_days <= 60:
            raise ValueError(spec.lead_days)
        now = self.clock.now()
        local = draft.starts_at.astimezone(self.tz)
        async with self.db.transaction() as tx:
            await self._check_create_rights(tx, actor, draft)
            series_id = await tx.insert(
                "INSERT INTO meeting_series (org_id, kind, include_below, rule, day, nth, weekday, local_time,"
                " duration_min, place, topic, lecturer, lecturer_id, extra_people, holiday_shift, lead_days,"
                " first_date, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (draft.org_id, draft.kind, int(draft.include_below), spec.rule.kind, spec.rule.day, spec.rule.nth,
                 spec.rule.weekday, local.strftime("%H:%M"),
                 int((draft.ends_at - draft.starts_at).total_seconds() // 60), draft.place, draft.topic,
                 draft.lecturer, draft.lecturer_id, json.dumps(draft.extra_people), int(spec.holiday_shift),
                 spec.lead_days, local.date().isoformat(), actor, to_db(now)))
            created = await self._generate(tx, now, series_id=series_id, skip=actor)
            meetings = [await self.get(mid, tx) for mid in created]
        return series_id, meetings

    async def series(self, series_id: int) -> dict[str, Any] | None:
        row = await self.db.fetchone("SELECT * FROM meeting_series WHERE id = ?", (series_id,))
        return dict(row) if row else None

    def series_rule(self, row: dict[str, Any]) -> Rule:
        return Rule(row["rule"], day=row["day"], nth=row["nth"], weekday=row["weekday"])

    def occurrence_date(self, row: dict[str, Any], year: int, month: int) -> tuple[date, date]:
        """(nominal, actual) date of a series' meeting in a month: a day that is not a working day
        moves to the next working day, unless the series keeps it."""
        nominal = self.series_rule(row).nominal(year, month)
        actual = self.calendar.next_working_day(nominal) if row["holiday_shift"] else nominal
        return nominal, actual

    async def next_occurrence(self, series_id: int) -> date | None:
        """The next date the series will hold a meeting on (for the confirmation)."""
        row = await self.series(series_id)
        if row is None or not row["active"]:
            return None
        now = self.clock.now()
        today = local_today(now, self.tz)
        first = date.fromisoformat(row["first_date"])
        start = max(first, today)
        for year, month in months_from(start.year, start.month, 3):
            nominal, actual = self.occurrence_date(row, year, month)
            if nominal >= first and actual >= today:
                return actual
        return None

    async def stop_series(self, actor: int, series_id: int) -> None:
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT org_id, active FROM meeting_series WHERE id = ?", (series_id,))
            if row is None:
                raise NotFound("series")
            if not await self.can_schedule(actor, row["org_id"], tx):
                raise NotAllowed("series")
            if not row["active"]:
                raise Refused("meeting.error.series_stopped")
            await tx.execute("UPDATE meeting_series SET active = 0, stopped_at = ? WHERE id = ?",
                             (to_db(self.clock.now()), series_id))

    async def _due_occurrences(self, src: Database | Tx, now: datetime,
                               series_id: int | None) -> list[tuple[dict[str, Any], date, date]]:
        """(series, nominal, actual) of every occurrence that should exist by now and does not."""
        sql = "SELECT * FROM meeting_series WHERE active = 1" + (" AND id = ?" if series_id else "")
        rows = await src.fetchall(sql, (series_id,) if series_id else ())
        today = local_today(now, self.tz)
        due = []
        for row in map(dict, rows):
            first = date.fromisoformat(row["first_date"])
            # From the month before (a shifted date can cross into this month) up to the lead window.
            start = max(first, today) - timedelta(days=31)
            hour, minute = map(int, row["local_time"].split(":"))
            for year, month in months_from(start.year, start.month, 3 + row["lead_days"] // 28):
                nominal, actual = self.occurrence_date(row, year, month)
                if nominal < first or actual - timedelta(days=row["lead_days"]) > today:
                    continue
                if datetime.combine(actual, time(hour, minute), tzinfo=self.tz) <= now:
                    continue  # never create a meeting in the past (after a long downtime)
                exists = await src.fetchval("SELECT 1 FROM meetings WHERE series_id = ? AND occurrence = ?",
                                            (row["id"], nominal.isoformat()))
                if not exists:
                    due.append((row, nominal, actual))
        return due

    async def _generate(self, tx: Tx, now: datetime, series_id: int | None = None,
                        skip: int | None = None) -> list[int]:
        created = []
        for row, nominal, actual in await self._due_occurrences(tx, now, series_id):
            hour, minute = map(int, row["local_time"].split(":"))
            starts = datetime.combine(actual, time(hour, minute), tzinfo=self.tz)
            draft = Draft(kind=row["kind"], org_id=row["org_id"], include_below=bool(row["include_below"]),
                          starts_at=starts, ends_at=starts + timedelta(minutes=row["duration_min"]),
                          place=row["place"], topic=row["topic"], lecturer=row["lecturer"],
                          lecturer_id=row["lecturer_id"], extra_people=json.loads(row["extra_people"]))
            meeting_id = await self._insert(tx, draft, created_by=row["created_by"], now=now, series_id=row["id"],
                                            occurrence=nominal.isoformat())
            # A job may run at night: its notices wait for the morning.
            await self._invite_and_announce(tx, meeting_id, draft, skip=skip, now=now,
                                            notice_at=after_quiet(now, self.tz))
            created.append(meeting_id)
            log.info("series %s: meeting %s created for %s (nominal %s)", row["id"], meeting_id, actual, nominal)
        return created

    # --- periodic work ----------------------------------------------------------------------------
    async def tick(self) -> TickReport:
        """Create the series' meetings that have come into their lead window, remind secretaries of
        missing minutes, and make the quota checks. Idempotent; catches up after downtime."""
        now = self.clock.now()
        await self.expire_reminders(now)
        created = 0
        if await self._due_occurrences(self.db, now, None):
            async with self.db.transaction() as tx:
                created = len(await self._generate(tx, now))
        reminded = await self.remind_missing_minutes(now)
        quota = await self.check_quotas(now)
        return TickReport(created=created, minutes_reminders=reminded, quota_messages=quota)

    async def expire_reminders(self, now: datetime) -> int:
        """Cancel reminders still waiting when their meeting has started (the bot was down, or the
        queue was long): "meeting tomorrow" must never arrive after the meeting. Once per meeting:
        after the start nothing plans reminders again (answers, edits and additions are closed)."""
        rows = await self.db.fetchall(
            "SELECT id FROM meetings WHERE reminders_closed = 0 AND starts_at <= ? ORDER BY id", (to_db(now),))
        if not rows:
            return 0
        cancelled = 0
        async with self.db.transaction() as tx:
            for row in rows:
                cancelled += await self.outbox.cancel(tx, key_prefix=f"mt:{row[0]}:r")
                await tx.execute("UPDATE meetings SET reminders_closed = 1 WHERE id = ?", (row[0],))
        if cancelled:
            log.info("meetings: %s reminders of meetings that had already started were not sent", cancelled)
        return cancelled

    async def secretaries_of(self, src: Database | Tx, org_id: int) -> list[int]:
        """A branch's secretaries (a party group's are its branch's when it has none)."""
        rows = await src.fetchall("SELECT person_id FROM roles WHERE org_id = ? AND role = 'secretary'"
                                  " ORDER BY person_id", (org_id,))
        if not rows:
            rows = await src.fetchall(
                "SELECT person_id FROM roles WHERE role = 'secretary' AND org_id ="
                " (SELECT parent_id FROM orgs WHERE id = ? AND kind = 'party_group') ORDER BY person_id", (org_id,))
        return [r[0] for r in rows]

    async def remind_missing_minutes(self, now: datetime) -> int:
        """A meeting with no minutes 2 days after its end: tell the secretary, once."""
        rows = await self.db.fetchall(
            f"{_MEETING_SQL} WHERE m.status = 'scheduled' AND m.ends_at <= ? AND m.minutes_reminded_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM meeting_minutes x WHERE x.meeting_id = m.id)",
            (to_db(now - MINUTES_GRACE),))
        if not rows:
            return 0
        count = 0
        async with self.db.transaction() as tx:
            for meeting in map(meeting_from_row, rows):
                people = await self.secretaries_of(tx, meeting.org_id) or [meeting.created_by]
                langs = await self._langs(tx, people)
                for pid in people:
                    lang = langs[pid]
                    text = self.t(lang, "meeting.minutes.reminder", topic=meeting.topic,
                                  when=self.text.when(lang, meeting.starts_at, now), org=meeting.org_name)
                    buttons = [[Button(self.t(lang, "meeting.button.minutes"), f"mt:m:{meeting.id}")]]
                    if await self.outbox.send_text(tx, key=f"mt:{meeting.id}:mm:{pid}", chat_id=pid, text=text,
                                                   buttons=buttons, not_before=after_quiet(now, self.tz)):
                        count += 1
                await tx.execute("UPDATE meetings SET minutes_reminded_at = ? WHERE id = ?",
                                 (to_db(now), meeting.id))
        return count

    # --- settings -------------------------------------------------------------------------------
    async def settings_of(self, org_id: int) -> tuple[list[int], dict[str, str], bool]:
        """(reminder offsets, effective quotas, whether the org has its own settings row)."""
        offsets = await self.reminder_offsets(org_id)
        quotas = (await self.effective_quotas())[org_id]
        own = await self.db.fetchval("SELECT 1 FROM meeting_settings WHERE org_id = ?", (org_id,))
        return offsets, quotas, bool(own)

    async def _own_settings(self, tx: Tx, org_id: int) -> tuple[list[int] | None, dict[str, str]]:
        row = await tx.fetchone("SELECT reminder_offsets, quotas FROM meeting_settings WHERE org_id = ?", (org_id,))
        if row is None:
            return None, {}
        return (json.loads(row[0]) if row[0] is not None else None), json.loads(row[1])

    async def _save_settings(self, tx: Tx, actor: int, org_id: int, offsets: list[int] | None,
                             quotas: dict[str, str]) -> None:
        await tx.execute(
            "INSERT INTO meeting_settings (org_id, reminder_offsets, quotas, updated_by, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(org_id) DO UPDATE SET reminder_offsets = excluded.reminder_offsets,"
            " quotas = excluded.quotas, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (org_id, json.dumps(sorted(offsets, reverse=True)) if offsets is not None else None,
             json.dumps(quotas, sort_keys=True), actor, to_db(self.clock.now())))

    async def toggle_offset(self, actor: int, org_id: int, minutes: int) -> list[int]:
        """Turn one reminder time on or off for the org (its secretary or an organizer above).
        Meetings already scheduled keep their reminders; new ones follow the setting."""
        if minutes not in OFFSET_CHOICES:
            raise ValueError(minutes)
        async with self.db.transaction() as tx:
            if not await self.can_schedule(actor, org_id, tx):
                raise NotAllowed("settings")
            current = await self.reminder_offsets(org_id, tx)
            _, quotas = await self._own_settings(tx, org_id)
            if minutes in current:
                current.remove(minutes)
            elif len(current) >= MAX_OFFSETS:
                raise Refused("meeting.error.too_many_offsets", limit=MAX_OFFSETS)
            else:
                current.append(minutes)
            await self._save_settings(tx, actor, org_id, current, quotas)
        return sorted(current, reverse=True)

    async def cycle_quota(self, actor: int, org_id: int, kind: str) -> str:
        """An organizer (or admin) changes how often the org must hold a kind of meeting:
        month → quarter → year → not required → month."""
        if kind not in QUOTA_KINDS:
            raise ValueError(kind)
        async with self.db.transaction() as tx:
            if not await self.orgs.can_manage(actor, org_id, tx):
                raise NotAllowed("settings")
            offsets, quotas = await self._own_settings(tx, org_id)
            # The reader sees what is committed, and we hold the write lock: nobody changes it meanwhile.
            current = (await self.effective_quotas())[org_id].get(kind, "none")
            new = QUOTA_PERIODS[(QUOTA_PERIODS.index(current) + 1) % len(QUOTA_PERIODS)]
            quotas[kind] = new
            await self._save_settings(tx, actor, org_id, offsets, quotas)
        return new

    async def reset_settings(self, actor: int, org_id: int) -> None:
        """Back to the inherited settings: everything for an organizer, the reminders for a secretary."""
        async with self.db.transaction() as tx:
            if await self.orgs.can_manage(actor, org_id, tx):
                await tx.execute("DELETE FROM meeting_settings WHERE org_id = ?", (org_id,))
                return
            if not await self.can_schedule(actor, org_id, tx):
                raise NotAllowed("settings")
            _, quotas = await self._own_settings(tx, org_id)
            await self._save_settings(tx, actor, org_id, None, quotas)

    async def effective_quotas(self) -> dict[int, dict[str, str]]:
        """Every org's required frequencies: the defaults for its kind of org, then the settings of
        its ancestors from the top down, then its own. An ancestor's setting reaches only the kinds
        that apply to an org below (a township's "theme day: quarterly" does not make a party group
        hold theme days); the org's own settings may add any kind."""
        orgs = {r["id"]: dict(r) for r in await self.db.fetchall("SELECT id, parent_id, kind FROM orgs")}
        own = {r["org_id"]: json.loads(r["quotas"]) for r in await self.db.fetchall(
            "SELECT org_id, quotas FROM meeting_settings")}
        out: dict[int, dict[str, str]] = {}

        def resolve(org_id: int) -> dict[str, str]:
            if org_id in out:
                return out[org_id]
            org = orgs[org_id]
            chain = [org_id]
            parent = org["parent_id"]
            while parent is not None and parent in orgs and len(chain) < 64:
                chain.append(parent)
                parent = orgs[parent]["parent_id"]
            group = org_group(org["kind"])
            quotas = dict(DEFAULT_QUOTAS.get(group or "", {}))
            for ancestor in reversed(chain[1:]):
                for kind, period in own.get(ancestor, {}).items():
                    if kind in quotas:
                        quotas[kind] = period
            quotas.update(own.get(org_id, {}))
            out[org_id] = {k: v for k, v in quotas.items() if k in QUOTA_KINDS}
            return out[org_id]

        for org_id in orgs:
            resolve(org_id)
        return out

    # --- committee ------------------------------------------------------------------------------
    async def committee(self, actor: int, org_id: int) -> list[tuple[int, str, str | None]]:
        """(person, name, title) for everyone who may be on the org's committee: secretaries
        ('secretary'), then the org's members with their title ('deputy', 'member' or None)."""
        if not await self.can_schedule(actor, org_id):
            raise NotAllowed("committee")
        titles = {r[0]: r[1] for r in await self.db.fetchall(
            "SELECT person_id, title FROM meeting_committee WHERE org_id = ?", (org_id,))}
        out = []
        for pid, name, roles in await self.orgs.people_in(org_id):
            if "secretary" in roles:
                out.append((pid, name, "secretary"))
            elif set(roles) & set(MEMBER_ROLES):
                out.append((pid, name, titles.get(pid)))
        out.sort(key=lambda p: ({"secretary": 0, "deputy": 1, "member": 2}.get(p[2] or "", 3), p[1]))
        return out

    async def cycle_committee(self, actor: int, org_id: int, person_id: int) -> str | None:
        """Not on the committee → 委员 → 副书记 → not on it (the secretary keeps the list)."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            if not await self.can_schedule(actor, org_id, tx):
                raise NotAllowed("committee")
            roles = {r[0] for r in await tx.fetchall("SELECT role FROM roles WHERE org_id = ? AND person_id = ?",
                                                     (org_id, person_id))}
            if "secretary" in roles:
                raise Refused("meeting.error.secretary_always")
            if not roles & set(MEMBER_ROLES):
                raise Refused("meeting.error.not_member")
            title = await tx.fetchval("SELECT title FROM meeting_committee WHERE org_id = ? AND person_id = ?",
                                      (org_id, person_id))
            new = {None: "member", "member": "deputy", "deputy": None}[title]
            if new is None:
                await tx.execute("DELETE FROM meeting_committee WHERE org_id = ? AND person_id = ?",
                                 (org_id, person_id))
            else:
                await tx.execute(
                    "INSERT INTO meeting_committee (org_id, person_id, title, added_by, added_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT(org_id, person_id) DO UPDATE SET title = excluded.title",
                    (org_id, person_id, new, actor, to_db(now)))
        return new

    # --- quotas -----------------------------------------------------------------------------------
    async def check_quotas(self, now: datetime) -> int:
        """Seven days before a period ends (09:00), tell each secretary what their org has still not
        held; when it has ended (09:00 on the first day after), tell the organizers above what was
        missed. Each org and boundary is checked once; a check missed while the bot was down is made
        when it comes back (for the latest boundary)."""
        today = local_today(now, self.tz)
        sent = 0
        coming = next_boundary(today)
        if now >= datetime.combine(coming - timedelta(days=QUOTA_WARN_DAYS), QUOTA_HOUR, tzinfo=self.tz):
            sent += await self._quota_stage(now, coming, "due")
        passed = previous_boundary(today)
        if now >= datetime.combine(passed, QUOTA_HOUR, tzinfo=self.tz):
            sent += await self._quota_stage(now, passed, "missed")
        return sent

    async def _quota_stage(self, now: datetime, boundary: date, stage: str) -> int:
        # Orgs that existed before the warning (a branch set up in the last week is not blamed).
        cutoff = to_db(datetime.combine(boundary - timedelta(days=QUOTA_WARN_DAYS), time(0, 0), tzinfo=self.tz))
        pending = [dict(r) for r in await self.db.fetchall(
            "SELECT o.id, o.name, o.kind, o.parent_id FROM orgs o WHERE o.created_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM meeting_quota_checks c WHERE c.org_id = o.id AND c.boundary = ?"
            " AND c.stage = ?) ORDER BY o.id", (cutoff, boundary.isoformat(), stage))]
        if not pending:
            return 0
        quotas = await self.effective_quotas()
        populated = {r[0] for r in await self.db.fetchall(
            "SELECT DISTINCT org_id FROM roles WHERE role IN ('member', 'secretary', 'organizer')")}
        parents = {r[0]: r[1] for r in await self.db.fetchall("SELECT id, parent_id FROM orgs")}
        earliest = min(period_start(p, boundary - timedelta(days=1)) for p in ("month", "quarter", "year"))
        window_start = datetime.combine(earliest, time(0, 0), tzinfo=self.tz)
        window_end = datetime.combine(boundary, time(0, 0), tzinfo=self.tz)
        meetings = [dict(r) for r in await self.db.fetchall(
            "SELECT id, org_id, include_below, kind, status, starts_at, lecturer_id FROM meetings"
            " WHERE status IN ('held', 'scheduled') AND starts_at >= ? AND starts_at < ?",
            (to_db(window_start), to_db(window_end)))]
        secretaries: dict[int, set[int]] = {}
        for row in await self.db.fetchall("SELECT org_id, person_id FROM roles WHERE role = 'secretary'"):
            secretaries.setdefault(row[0], set()).add(row[1])

        def ancestors(org_id: int) -> list[int]:
            chain = [org_id]
            while parents.get(chain[-1]) is not None and len(chain) < 64:
                chain.append(parents[chain[-1]])  # type: ignore[arg-type]
            return chain

        def counts_for(meeting: dict[str, Any], org_id: int, chain: list[int]) -> bool:
            return meeting["org_id"] == org_id or (bool(meeting["include_below"]) and meeting["org_id"] in chain)

        missed_by_org: dict[int, list[tuple[str, str, date, list[datetime]]]] = {}
        async with self.db.transaction() as tx:
            for org in pending:
                chain = ancestors(org["id"])
                missing: list[tuple[str, str, date, list[datetime]]] = []
                if org["id"] in populated:
                    for kind, period in sorted(quotas.get(org["id"], {}).items()):
                        if period == "none" or not ends_at_boundary(period, boundary):
                            continue
                        start = period_start(period, boundary - timedelta(days=1))
                        lo = datetime.combine(start, time(0, 0), tzinfo=self.tz)
                        relevant = [m for m in meetings if counts_for(m, org["id"], chain)
                                    and from_db(m["starts_at"]) >= lo and self._quota_match(m, kind, org["id"],
                                                                                          secretaries)]
                        if any(m["status"] == "held" for m in relevant):
                            continue
                        planned = sorted(from_db(m["starts_at"]) for m in relevant
                                         if m["status"] == "scheduled" and from_db(m["starts_at"]) > now)
                        missing.append((kind, period, start, planned))
                await tx.execute(
                    "INSERT INTO meeting_quota_checks (org_id, boundary, stage, missing, done_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (org["id"], boundary.isoformat(), stage, json.dumps([m[:2] for m in missing]), to_db(now)))
                if missing:
                    missed_by_org[org["id"]] = missing
            if stage == "due":
                return await self._tell_secretaries(tx, now, boundary, pending, missed_by_org)
            return await self._tell_organizers(tx, now, boundary, pending, missed_by_org, parents)

    @staticmethod
    def _quota_match(meeting: dict[str, Any], kind: str, org_id: int, secretaries: dict[int, set[int]]) -> bool:
        if kind == "secretary_lecture":
            return meeting["kind"] == "party_lecture" and meeting["lecturer_id"] in secretaries.get(org_id, set())
        return bool(meeting["kind"] == kind)

    def _missing_lines(self, lang: str, missing: list[tuple[str, str, date, list[datetime]]]) -> list[str]:
        lines = []
        this_period = {"month": "meeting.period.this_month", "quarter": "meeting.period.this_quarter",
                       "year": "meeting.period.this_year"}
        for kind, period, _, planned in missing:
            label = self.t(lang, this_period[period])
            if kind == "secretary_lecture":
                line = self.t(lang, "meeting.quota.line_secretary_lecture", period=label)
            else:
                line = self.t(lang, "meeting.quota.line", period=label, kind=self.text.kind(lang, kind))
            if planned:
                line += self.t(lang, "meeting.quota.planned",
                               dates="、".join(self.text.short_day(lang, local_today(p, self.tz)) for p in planned))
            lines.append(line)
        return lines

    async def _tell_secretaries(self, tx: Tx, now: datetime, boundary: date, orgs: list[dict[str, Any]],
                                missed: dict[int, list[tuple[str, str, date, list[datetime]]]]) -> int:
        sent = 0
        names = {o["id"]: o["name"] for o in orgs}
        at = after_quiet(now, self.tz)
        for org_id, missing in missed.items():
            people = await self.secretaries_of(tx, org_id)
            langs = await self._langs(tx, people)
            last_day = boundary - timedelta(days=1)
            for pid in people:
                lang = langs[pid]
                text = "\n".join([self.t(lang, "meeting.quota.due_title", org=names[org_id]),
                                  *self._missing_lines(lang, missing),
                                  self.t(lang, "meeting.quota.due_footer", deadline=self.text.day(lang, last_day))])
                buttons = [[Button(self.t(lang, "meeting.button.new"), "mt:new")]]
                if await self.outbox.send_text(tx, key=f"mq:{boundary.isoformat()}:s:{org_id}:{pid}", chat_id=pid,
                                               text=text, buttons=buttons, not_before=at):
                    sent += 1
        return sent

    async def _tell_organizers(self, tx: Tx, now: datetime, boundary: date, orgs: list[dict[str, Any]],
                               missed: dict[int, list[tuple[str, str, date, list[datetime]]]],
                               parents: dict[int, int | None]) -> int:
        """One digest per organizer: the nearest org above each late org that has organizers."""
        organizers: dict[int, list[int]] = {}
        for row in await tx.fetchall("SELECT org_id, person_id FROM roles WHERE role = 'organizer' ORDER BY person_id"):
            organizers.setdefault(row[0], []).append(row[1])
        names = {r[0]: r[1] for r in await tx.fetchall("SELECT id, name FROM orgs")}
        digest: dict[int, list[int]] = {}
        for org_id in missed:
            above = parents.get(org_id)
            while above is not None and above not in organizers:
                above = parents.get(above)
            if above is None:
                log.info("quota: nobody above org %s to tell what it missed", org_id)
                continue
            for pid in organizers[above]:
                digest.setdefault(pid, []).append(org_id)
        langs = await self._langs(tx, list(digest))
        at = after_quiet(now, self.tz)
        last_day = boundary - timedelta(days=1)
        sent = 0
        for pid, late in digest.items():
            lang = langs[pid]
            head = self.t(lang, "meeting.quota.missed_title", date=self.text.day(lang, last_day, with_year=True))
            lines = []
            for org_id in late:
                items = "、".join(
                    self.t(lang, "meeting.quota.missed_item", kind=self.text.kind(lang, kind),
                           period=self.text.period_label(lang, period, start))
                    for kind, period, start, _ in missed[org_id])
                lines.append(self.t(lang, "meeting.quota.missed_line", org=names.get(org_id, "?"), items=items))
            for part, chunk in enumerate(_chunks(head, lines, MAX_MESSAGE)):
                if await self.outbox.send_text(tx, key=f"mq:{boundary.isoformat()}:o:{pid}:{part}", chat_id=pid,
                                               text=chunk, not_before=at):
                    sent += 1
        return sent

    # --- the ledger -------------------------------------------------------------------------------
    async def ledger(self, actor: int | None, org_id: int, first: date, last: date, lang: str) -> tuple[str, bytes]:
        """The org's meeting ledger (台账) as an Excel workbook; `actor` None is the command line."""
        from bot.services.ledger import build_ledger

        if actor is not None and not await self.can_view_ledger(actor, org_id):
            raise NotAllowed("ledger")
        org = await self.orgs.get(org_id)
        if org is None:
            raise NotFound("org")
        if last < first:
            raise Refused("meeting.error.bad_range")
        content = await build_ledger(self, org, first, last, lang)
        return f"ledger-{org.code}-{first.isoformat()}-{last.isoformat()}.xlsx", content


async def _pipelined(calls: Sequence[Coroutine[Any, Any, bool]], batch: int = 256) -> list[bool]:
    """Outbox writes of one transaction, a batch at a time: the database thread then runs them back
    to back instead of waiting for the event loop between each (a county-wide meeting writes three
    rows a member; one by one that is seconds)."""
    results: list[bool] = []
    for i in range(0, len(calls), batch):
        # Every call finishes before an error propagates: none may run after the rollback.
        done = await asyncio.gather(*calls[i:i + batch], return_exceptions=True)
        for result in done:
            if isinstance(result, BaseException):
                for call in calls[i + batch:]:
                    call.close()  # never started: nothing to wait for
                raise result
        results += done  # type: ignore[arg-type]
    return results


def _chunks(head: str, lines: list[str], limit: int) -> list[str]:
    """`head` and the lines, split into messages under `limit` characters."""
    out, current = [], [head]
    for line in lines:
        if sum(len(x) + 1 for x in current) + len(line) > limit and len(current) > 1:
            out.append("\n".join(current))
            current = [head]
        current.append(line[:limit - len(head) - 2])
    out.append("\n".join(current))
    return out


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """(first day, first day after) of the period containing `day`."""
    return period_start(period, day), period_end(period, day)
