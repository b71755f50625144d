"""Meetings — 三会一课, 主题党日, 月例会 and others. `MeetingService` (core.meetings) is the one entry
point; its parts live beside it:

  meeting_model.py       kinds and statuses (enums), records, limits, Refused
  meeting_base.py        reading, rights, validation, who is invited, shared texts
  meeting_notices.py     notices, reminders, change notices, nudges, "no minutes yet"
  meeting_scheduling.py  create, add people, edit, cancel
  meeting_attendance.py  answers, check-in, listings, roster, marks, minutes, close, .ics
  meeting_series.py      monthly series
  meeting_settings.py    reminder times, quotas and their checks, the committee
  ledger.py              the ledger workbook, rendered from data this service reads

Every right is checked in the service, from the database, on every call, against the acting
person (`bot.actors.SYSTEM_ACTOR` for the command line and jobs); every message to someone other
than the person acting is an outbox row written in the same transaction, with its purpose
(`Purpose`) and the meeting's id in their own columns.

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
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from openpyxl import Workbook

from bot.actors import SYSTEM_ACTOR
from bot.clock import to_db
from bot.formatting import file_name
from bot.infra import Infra
from bot.services import ledger as ledger_renderer
from bot.services.ledger_period import describe
from bot.services.meeting_attendance import AttendancePart
from bot.services.meeting_model import (
    DEFAULT_DURATION,
    KINDS,
    LEDGER_MAX_YEARS,
    OFFSET_CHOICES,
    QUOTA_KINDS,
    Attendee,
    Created,
    Draft,
    Edited,
    HeldMeeting,
    LedgerData,
    LedgerMeeting,
    Meeting,
    MeetingKind,
    MeetingStatus,
    MinutesEntry,
    MinutesKind,
    Refused,
    Roster,
    SeriesSpec,
    TickReport,
    meeting_from_row,
)
from bot.services.meeting_scheduling import SchedulingPart
from bot.services.meeting_series import SeriesPart
from bot.services.meeting_settings import SettingsPart
from bot.services.meeting_time import add_years
from bot.services.orgs import NotAllowed, NotFound, Org

__all__ = ["DEFAULT_DURATION", "KINDS", "OFFSET_CHOICES", "QUOTA_KINDS", "Attendee", "Created", "Draft", "Edited",
           "Meeting", "MeetingKind", "MeetingService", "MeetingStatus", "Refused", "Roster", "SeriesSpec",
           "TickReport", "meeting_from_row"]


class MeetingService(SchedulingPart, AttendancePart, SeriesPart, SettingsPart):
    """Meetings, all parts together (see the module's docstring for where each part lives)."""

    def __init__(self, core: Infra) -> None:
        super().__init__(core)
        self.register_questions()

    # --- periodic work ----------------------------------------------------------------------------
    async def tick(self, actor: int) -> TickReport:
        """Create the series' meetings that have come into their lead window, remind secretaries of
        missing minutes, and make the quota checks. Idempotent; catches up after downtime. The
        periodic job's work: the system only."""
        _require_system(actor)
        now = self.clock.now()
        await self._expire_reminders(now)
        await self._expire_screens(now)
        created = 0
        if await self._due_occurrences(self.db, now, None):
            async with self.db.transaction() as tx:
                created = len(await self._generate(tx, now))
        reminded = await self._remind_missing_minutes(now)
        quota = await self._check_quotas(now)
        return TickReport(created=created, minutes_reminders=reminded, quota_messages=quota)

    async def expire_reminders(self, actor: int) -> int:
        """At start-up, before delivery begins: cancel reminders of meetings that started meanwhile."""
        _require_system(actor)
        return await self._expire_reminders(self.clock.now())

    async def attendees(self, actor: int, meeting_id: int) -> list[Attendee]:
        """Everyone invited, with their answers: for whoever may manage the meeting."""
        meeting = await self.manageable(actor, meeting_id)
        return await self._attendees(meeting.id)

    # --- the ledger -------------------------------------------------------------------------------
    async def ledger_org(self, actor: int, org_id: int) -> Org:
        """The org whose ledger the actor asks for, when they may see it (the picker and the
        typed-dates prompt check before offering anything)."""
        if actor != SYSTEM_ACTOR and not await self.can_view_ledger(actor, org_id):
            raise NotAllowed("ledger")
        org = await self.orgs.get(org_id)
        if org is None:
            raise NotFound("org")
        return org

    async def ledger_data(self, actor: int, org_id: int, first: date, last: date) -> LedgerData:
        """What the org's ledger shows, for someone who may schedule its meetings (or the system).
        Rows are the org's own meetings and the meetings an org above sent down to it; for the
        latter only the org's own people are listed. At most five years at a time."""
        org = await self.ledger_org(actor, org_id)
        if last < first:
            raise Refused("meeting.error.bad_range")
        if last >= add_years(datetime.combine(first, time(0, 0)), LEDGER_MAX_YEARS).date():
            raise Refused("meeting.error.range_too_long", years=LEDGER_MAX_YEARS)
        above = json.dumps([o.id for o in (await self.orgs.ancestors(org.id))[1:]])
        rows = await self._ledger_rows(org.id, above, first, last + timedelta(days=1))
        own_people = {r[0] for r in await self.db.fetchall(
            "WITH RECURSIVE down(id) AS (SELECT CAST(? AS BIGINT)"
            " UNION SELECT o.id FROM orgs o JOIN down ON o.parent_id = down.id)"
            " SELECT DISTINCT person_id FROM roles WHERE org_id IN (SELECT id FROM down)", (org.id,))}
        meetings = []
        for meeting in map(meeting_from_row, rows):
            attendees = await self._attendees(meeting.id)
            if meeting.org_id != org.id:  # sent down from an org above: only this org's people
                attendees = [a for a in attendees if a.person_id in own_people]
            minutes = [MinutesEntry(kind=MinutesKind(m["kind"]), text=m["text"])
                       for m in await self._minutes(meeting.id)]
            meetings.append(LedgerMeeting(meeting=meeting, attendees=attendees, minutes=minutes))
        # Every quota period (month, quarter or year) lies inside one calendar year: counting the
        # whole years around the ledger counts each period's meetings in full.
        held = [HeldMeeting(kind=m.kind, day=self.fmt.local(m.starts_at).date(), lecturer_id=m.lecturer_id)
                for m in map(meeting_from_row, await self._ledger_rows(
                    org.id, above, date(first.year, 1, 1), date(last.year + 1, 1, 1)))
                if m.status == MeetingStatus.HELD]
        return LedgerData(org_name=org.name, org_code=org.code, first=first, last=last, now=self.clock.now(),
                          meetings=meetings, quotas=(await self.effective_quotas()).get(org.id, {}),
                          secretaries=frozenset(await self._secretaries_of(self.db, org.id)),
                          held=held, since=await self.in_use_since(org.id))

    async def _ledger_rows(self, org_id: int, above: str, first: date, end: date) -> list[Any]:
        """The org's meetings and those sent down to it from above, starting in [first, end)."""
        lo = datetime.combine(first, time(0, 0), tzinfo=self.tz)
        hi = datetime.combine(end, time(0, 0), tzinfo=self.tz)
        return list(await self.db.fetchall(
            "SELECT m.*, o.name AS org_name FROM meetings m JOIN orgs o ON o.id = m.org_id"
            " WHERE (m.org_id = ? OR (m.include_below = 1 AND m.org_id IN (SELECT value FROM json_each(?))))"
            " AND m.starts_at >= ? AND m.starts_at < ? ORDER BY m.starts_at, m.id",
            (org_id, above, to_db(lo), to_db(hi))))

    async def ledger(self, actor: int, org_id: int, first: date, last: date, lang: str) -> tuple[str, bytes]:
        """The org's meeting ledger (台账) as an Excel workbook, built off the event loop."""
        return await self.render_ledger(await self.ledger_data(actor, org_id, first, last), lang)

    async def render_ledger(self, data: LedgerData, lang: str,
                            extra: Sequence[Callable[[Workbook], None]] = ()) -> tuple[str, bytes]:
        """(file name, workbook) of data read by `ledger_data`, rendered in a worker thread so that
        other chats go on meanwhile; `extra` adds the org's other records (see Core.ledger)."""
        content = await asyncio.to_thread(ledger_renderer.render, data, self.t, self.text, self.fmt, lang, extra)
        return self.ledger_file_name(data, lang), content

    def ledger_file_name(self, data: LedgerData, lang: str) -> str:
        """台账-三义村党支部-2026.xlsx, 台账-三义村党支部-2026年第3季度.xlsx,
        台账-三义村党支部-2026年1月1日-6月30日.xlsx: what the file is, in the reader's language (the
        org's name as it is, never its code)."""
        period = describe(self.fmt, lang, data.first, data.last, for_file=True)
        return file_name(self.t(lang, "meeting.ledger.file_name", org=data.org_name[:60], period=period))


def _require_system(actor: int) -> None:
    if actor != SYSTEM_ACTOR:
        raise NotAllowed("system")
