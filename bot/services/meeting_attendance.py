"""Attendance: members' answers and check-in, what a person sees of their meetings, the roster
and the secretary's marks, minutes, closing a meeting, and the calendar file."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from bot.clock import to_db
from bot.formatting import file_name
from bot.services.meeting_base import (
    ATTENDEE_SQL,
    MEETING_SQL,
    not_cancelled,
)
from bot.services.meeting_model import (
    CHECKIN_OPENS,
    MINUTES_TEXT_MAX,
    Answer,
    Attendee,
    Meeting,
    MeetingStatus,
    MeetingView,
    Presence,
    Refused,
    Roster,
    attendee_from_row,
    meeting_from_row,
)
from bot.services.meeting_notices import NoticesPart
from bot.services.meeting_screens import SUBJECT
from bot.services.orgs import NotAllowed, NotFound
from bot.services.prompts import Question, QuestionKind

log = logging.getLogger(__name__)

LEAVE_QUESTION = "meeting/leave"  # an open question (bot/services/prompts.py): why the person asks for leave
LEAVE_REASON_LASTS = timedelta(hours=3)  # typing long after the 请假 tap is about something else


class AttendancePart(NoticesPart):
    """Answers, check-in, what a person sees, roster, marks, minutes, closing, .ics."""

    def register_questions(self) -> None:
        self.core.prompts.register(QuestionKind(LEAVE_QUESTION, self._describe_leave))

    async def ask_leave_reason(self, person_id: int, meeting_id: int) -> Meeting:
        """请假 was tapped: the reason is asked, and the person's next text answers it."""
        meeting = await self.answerable(person_id, meeting_id)
        await self.core.prompts.ask_now(person_id, LEAVE_QUESTION, meeting.id, lasts=LEAVE_REASON_LASTS)
        return meeting

    async def _describe_leave(self, lang: str, question: Question) -> str | None:
        """"请假原因：12月5日 党员大会"; None once the person can no longer answer."""
        try:
            meeting = await self.answerable(question.person_id, question.subject_id)
        except (Refused, NotFound):
            return None
        day = self.text.short_day(lang, meeting.starts_at.astimezone(self.tz).date())
        topic = meeting.topic if len(meeting.topic) <= 16 else meeting.topic[:16] + "…"
        return self.t(lang, "prompt.label.meeting_leave", day=day, topic=topic)

    async def answer(self, person_id: int, meeting_id: int, answer: str, reason: str | None = None) -> Attendee:
        """Attend or ask for leave (with a reason); changeable until the meeting starts. Leave cancels the
        person's pending reminders; coming back from leave plans them again."""
        if answer not in (Answer.ATTEND, Answer.LEAVE):
            raise ValueError(answer)
        reason = self.check_reason(reason) if answer == Answer.LEAVE else None
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting, before = await self._invited(tx, meeting_id, person_id)
            self._open_for_answers(meeting, now)
            await tx.execute(
                "UPDATE meeting_attendees SET answer = ?, leave_reason = ?, answered_at = ?"
                " WHERE meeting_id = ? AND person_id = ?", (answer, reason, to_db(now), meeting_id, person_id))
            if answer == Answer.LEAVE:
                await self.outbox.cancel(tx, key_prefix=f"mt:{meeting_id}:r{meeting.remind_gen}:{person_id}:")
            elif before.answer == Answer.LEAVE:
                await self._plan_reminders(tx, meeting, [person_id], await self._langs(tx, [person_id]), now)
            # Their earlier messages show the answer (a nudge no longer says they have not replied);
            # the organiser's roster fills in.
            await self._refresh_screens(tx, meeting_id, person=person_id)
            after = await self._attendee(meeting_id, person_id, tx)
            await self.core.prompts.close_about(tx, [LEAVE_QUESTION], meeting_id, person_id=person_id,
                                                why="answered")
        assert after is not None
        return after

    async def check_in(self, person_id: int, meeting_id: int) -> tuple[Meeting, datetime, bool]:
        """签到 from 30 minutes before the start until the end. Returns (meeting, when, already)."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting, attendee = await self._invited(tx, meeting_id, person_id)
            not_cancelled(meeting)
            opens, closes = meeting.starts_at - CHECKIN_OPENS, meeting.ends_at
            if attendee.checked_in_at is not None:
                return meeting, attendee.checked_in_at, True
            if now < opens:
                raise Refused("meeting.error.checkin_early", opens=opens, closes=closes)
            if now > closes or meeting.status == MeetingStatus.HELD:
                raise Refused("meeting.error.checkin_closed", closes=closes)
            await tx.execute("UPDATE meeting_attendees SET checked_in_at = ? WHERE meeting_id = ? AND person_id = ?",
                             (to_db(now), meeting_id, person_id))
            await self._refresh_screens(tx, meeting_id, person=person_id)
        return meeting, now, False

    async def checkin_candidates(self, person_id: int) -> list[Meeting]:
        """The person's meetings whose check-in is open now."""
        now = self.clock.now()
        rows = await self.db.fetchall(
            f"{MEETING_SQL} JOIN meeting_attendees a ON a.meeting_id = m.id WHERE a.person_id = ?"
            " AND m.status = 'scheduled' AND m.starts_at <= ? AND m.ends_at >= ? ORDER BY m.starts_at",
            (person_id, to_db(now + CHECKIN_OPENS), to_db(now)))
        return [meeting_from_row(r) for r in rows]

    async def upcoming(self, person_id: int, limit: int = 15) -> list[tuple[Meeting, Attendee]]:
        """The person's meetings that have not ended, soonest first."""
        now = self.clock.now()
        rows = await self.db.fetchall(
            f"{MEETING_SQL} JOIN meeting_attendees a ON a.meeting_id = m.id WHERE a.person_id = ?"
            " AND m.status = 'scheduled' AND m.ends_at > ? ORDER BY m.starts_at LIMIT ?",
            (person_id, to_db(now), limit))
        # The person's attendance of all of them in one read, not one per meeting (a round trip each
        # on a database server).
        ids = [row["id"] for row in rows]
        mine = {r["meeting_id"]: attendee_from_row(r) for r in await self.db.fetchall(
            f"{ATTENDEE_SQL} WHERE a.person_id = ? AND a.meeting_id IN (SELECT value FROM json_each(?))",
            (person_id, json.dumps(ids)))} if ids else {}
        return [(meeting_from_row(row), mine[row["id"]]) for row in rows if row["id"] in mine]

    async def managed(self, person_id: int, limit: int = 15) -> list[Meeting]:
        """Meetings the person may manage that have not ended, or ended and still wait for minutes."""
        orgs = [org.id for _, org in await self.schedulable_orgs(person_id)]
        if not orgs:
            return []
        now = self.clock.now()
        rows = await self.db.fetchall(
            f"{MEETING_SQL} WHERE m.org_id IN (SELECT value FROM json_each(?)) AND m.status = 'scheduled'"
            " AND m.ends_at > ? ORDER BY m.starts_at LIMIT ?",
            (json.dumps(orgs), to_db(now - timedelta(days=14)), limit))
        return [meeting_from_row(r) for r in rows]

    async def viewable(self, person_id: int, meeting_id: int) -> tuple[Meeting, Attendee | None, bool]:
        """(meeting, the person's attendance, may manage); NotAllowed for anyone else."""
        meeting = await self._get(meeting_id)
        attendee = await self._attendee(meeting_id, person_id)
        manages = await self.can_schedule(person_id, meeting.org_id)
        if attendee is None and not manages:
            raise Refused("meeting.error.not_invited")
        return meeting, attendee, manages

    async def answerable(self, person_id: int, meeting_id: int) -> Meeting:
        """The meeting, if the person may still answer it (else Refused, with the reason)."""
        meeting = await self._get(meeting_id)
        if await self._attendee(meeting_id, person_id) is None:
            raise Refused("meeting.error.not_invited")
        self._open_for_answers(meeting, self.clock.now())
        return meeting

    async def manageable(self, actor: int, meeting_id: int, *, before_start: bool = False) -> Meeting:
        """The meeting, if the person may manage it (and, with before_start, it has not started)."""
        meeting = await self._get(meeting_id)
        if not await self.can_schedule(actor, meeting.org_id):
            raise NotAllowed("meeting")
        if before_start:
            self._open_for_answers(meeting, self.clock.now())
        return meeting

    async def begin_minutes(self, actor: int, meeting_id: int) -> dict[str, int]:
        """May the person record minutes now? Returns what is recorded so far."""
        meeting = await self.manageable(actor, meeting_id)
        not_cancelled(meeting)
        if meeting.status == MeetingStatus.HELD:
            raise Refused("meeting.error.held")
        if self.clock.now() < meeting.starts_at:
            raise Refused("meeting.error.minutes_early")
        return await self._minutes_counts(meeting_id)

    async def view(self, person_id: int, meeting_id: int) -> MeetingView:
        """The meeting card's content for this person (NotAllowed-like Refused for anyone else)."""
        meeting, attendee, manages = await self.viewable(person_id, meeting_id)
        now = self.clock.now()
        series_active = False
        if manages and meeting.series_id is not None:
            series_active = bool(await self.db.fetchval("SELECT active FROM meeting_series WHERE id = ?",
                                                        (meeting.series_id,)))
        return MeetingView(meeting=meeting, attendee=attendee, manages=manages,
                           attendees=await self._attendees(meeting_id) if manages else [],
                           series_active=series_active, can_answer=attendee is not None and
                           meeting.open_for_answers(now), can_check_in=attendee is not None and
                           meeting.checkin_open(now))

    async def cancellable(self, actor: int, meeting_id: int) -> Meeting:
        """The meeting, if the person may call it off now (else NotAllowed or Refused with the reason)."""
        meeting = await self.manageable(actor, meeting_id)
        self.check_cancellable(meeting, self.clock.now())
        return meeting

    async def mark_sheet(self, actor: int, meeting_id: int) -> Roster:
        """The roster for marking attendance, from check-in time on."""
        roster = await self.roster(actor, meeting_id)
        if not roster.meeting.markable(self.clock.now()):
            raise Refused("meeting.error.mark_early")
        return roster

    async def recent_places(self, actor: int, org_id: int, limit: int = 3) -> list[str]:
        """The org's last few meeting places (offered as buttons), for someone who may schedule there."""
        if not await self.can_schedule(actor, org_id):
            raise NotAllowed("meeting")
        rows = await self.db.fetchall(
            "SELECT place FROM meetings WHERE org_id = ? GROUP BY place ORDER BY MAX(id) DESC LIMIT ?",
            (org_id, limit))
        return [r[0] for r in rows]

    # --- managing -------------------------------------------------------------------------------
    async def roster(self, actor: int, meeting_id: int) -> Roster:
        meeting = await self._get(meeting_id)
        if not await self.can_schedule(actor, meeting.org_id):
            raise NotAllowed("meeting")
        return Roster(meeting=meeting, attendees=await self._attendees(meeting_id))

    async def mark(self, actor: int, meeting_id: int, person_id: int) -> str | None:
        """The secretary's mark, cycled: none → present → absent → none. From check-in time on."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting = await self._get(meeting_id, tx)
            await self._require_manager(tx, actor, meeting)
            not_cancelled(meeting)
            if not meeting.markable(now):
                raise Refused("meeting.error.mark_early")
            attendee = await self._attendee(meeting_id, person_id, tx)
            if attendee is None:
                raise Refused("meeting.error.not_invited")
            new = {None: Presence.PRESENT, Presence.PRESENT: Presence.ABSENT, Presence.ABSENT: None}[attendee.presence]
            await tx.execute("UPDATE meeting_attendees SET presence = ?, marked_by = ? WHERE meeting_id = ?"
                             " AND person_id = ?", (new, actor, meeting_id, person_id))
            await self.core.screens.refresh(tx, SUBJECT, meeting_id, views=["roster"])
        return new


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
            meeting = await self._get(meeting_id, tx)
            await self._require_manager(tx, actor, meeting)
            not_cancelled(meeting)
            if now < meeting.starts_at:
                raise Refused("meeting.error.minutes_early")
            await tx.execute(
                "INSERT INTO meeting_minutes (meeting_id, kind, text, file_id, file_name, added_by, added_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", (meeting_id, kind, text, file_id, file_name, actor, to_db(now)))
            return await self._minutes_counts(meeting_id, tx)

    async def close(self, actor: int, meeting_id: int) -> tuple[Meeting, dict[str, int]]:
        """Close the meeting as held (it needs minutes). Returns attendance figures."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting = await self._get(meeting_id, tx)
            await self._require_manager(tx, actor, meeting)
            not_cancelled(meeting)
            if meeting.status == MeetingStatus.HELD:
                raise Refused("meeting.error.held")
            if now < meeting.starts_at:
                raise Refused("meeting.error.minutes_early")
            if not sum((await self._minutes_counts(meeting_id, tx)).values()):
                raise Refused("meeting.error.no_minutes")
            await tx.execute("UPDATE meetings SET status = 'held', held_at = ?, closed_by = ?, updated_at = ?"
                             " WHERE id = ?", (to_db(now), actor, to_db(now), meeting_id))
            await self.outbox.cancel(tx, key_prefix=f"mt:{meeting_id}:r")
            await self._refresh_screens(tx, meeting_id)  # held: the last buttons go
            meeting = await self._get(meeting_id, tx)
            attendees = await self._attendees(meeting_id, tx)
        stats = {"attended": sum(a.attended for a in attendees),
                 "leave": sum(1 for a in attendees if not a.attended and a.answer == Answer.LEAVE),
                 "absent": sum(1 for a in attendees if not a.attended and a.answer != Answer.LEAVE)}
        return meeting, stats

    # --- the calendar file --------------------------------------------------------------------
    async def ics(self, person_id: int, meeting_id: int, lang: str) -> tuple[str, bytes]:
        """An iCalendar (RFC 5545) file of the meeting for an invitee or a manager."""
        from bot.services.meeting_ics import build_ics

        meeting, _, _ = await self.viewable(person_id, meeting_id)
        not_cancelled(meeting)
        offsets = await self.reminder_offsets(meeting.org_id)
        summary = self.t(lang, "meeting.calendar.summary", kind=self.text.kind(lang, meeting.kind), topic=meeting.topic)
        description = "\n".join(self.card(lang, meeting))
        content = build_ics(uid=f"meeting-{meeting.id}@branchbot", sequence=meeting.edits, stamp=self.clock.now(),
                            start=meeting.starts_at, end=meeting.ends_at, summary=summary, location=meeting.place,
                            description=description, alarms=offsets[:2])
        name = self.t(lang, "readable.calendar.file_name", kind=self.text.kind(lang, meeting.kind),
                      day=self.fmt.day(lang, meeting.starts_at, weekday=False))
        return file_name(name), content

