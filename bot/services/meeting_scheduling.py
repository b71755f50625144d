"""Scheduling: creating a meeting, inviting more people, editing and cancelling it."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime

from bot.clock import to_db
from bot.database import Tx
from bot.services.meeting_model import (
    NOTICE_ROUNDS_PER_DAY,
    Created,
    Draft,
    Edited,
    InviteSource,
    Meeting,
    MeetingStatus,
    Purpose,
    Refused,
)
from bot.services.meeting_notices import NoticesPart
from bot.services.meeting_screens import SUBJECT, MemberMessage
from bot.services.meeting_text import local_today
from bot.services.orgs import NotAllowed, NotFound

log = logging.getLogger(__name__)


class SchedulingPart(NoticesPart):
    """Create, add people, edit, cancel."""

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
            meeting = await self._get(meeting_id, tx)
        log.info("meeting %s scheduled by %s for org %s: %s invited", meeting_id, actor, draft.org_id, invited)
        return Created(meeting=meeting, invited=invited, notified=notified)

    async def _check_create_rights(self, tx: Tx, actor: int, draft: Draft) -> None:
        if await tx.fetchval("SELECT 1 FROM orgs WHERE id = ?", (draft.org_id,)) is None:
            raise NotFound("org")
        if not await self.can_schedule(actor, draft.org_id, tx):
            raise NotAllowed("meeting")
        if draft.include_below and not await self.orgs.can_manage(actor, draft.org_id, tx):
            raise NotAllowed("meeting")  # only organizers send a meeting down the tree
        await self._check_reach(tx, actor, draft.extra_people)

    async def _check_reach(self, tx: Tx, actor: int, people: Sequence[int]) -> None:
        """Extra invitees must hold a role in the actor's own subtree (never any person the bot saw)."""
        if set(people) - await self.in_reach(tx, actor, people):
            raise NotAllowed("invitee")

    async def _insert(self, tx: Tx, draft: Draft, *, created_by: int, now: datetime, series_id: int | None = None,
                      occurrence: str | None = None) -> int:
        return await tx.insert(
            "INSERT INTO meetings (org_id, kind, include_below, series_id, occurrence, starts_at, ends_at, place,"
            " topic, lecturer, lecturer_id, created_by, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (draft.org_id, draft.kind, int(draft.include_below), series_id, occurrence, to_db(draft.starts_at),
             to_db(draft.ends_at), draft.place, draft.topic, draft.lecturer, draft.lecturer_id, created_by,
             to_db(now), to_db(now)))


    async def add_people(self, actor: int, meeting_id: int, people: Sequence[int]) -> list[int]:
        """Invite more people to a scheduled meeting; they get the notice and the reminders."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting = await self._get(meeting_id, tx)
            await self._require_manager(tx, actor, meeting)
            self._open_for_answers(meeting, now)
            await self._check_reach(tx, actor, people)
            added = []
            for pid in dict.fromkeys(people):
                await self.people.ensure(tx, pid)
                cur = await tx.execute("INSERT INTO meeting_attendees (meeting_id, person_id, source) VALUES"
                                       " (?, ?, ?) ON CONFLICT DO NOTHING", (meeting_id, pid, InviteSource.ADDED))
                if cur.rowcount:
                    added.append(pid)
            langs = await self._langs(tx, added)
            await self._send_notices(tx, meeting, [p for p in added if p != actor], langs, now, now)
            await self._plan_reminders(tx, meeting, added, langs, now)
            await self.core.screens.refresh(tx, SUBJECT, meeting_id, views=["roster"])
        return added

    async def edit(self, actor: int, meeting_id: int, *, starts_at: datetime | None = None,
                   ends_at: datetime | None = None, place: str | None = None, topic: str | None = None,
                   reason: str | None = None) -> Edited:
        """Change the time, place or agenda. Pending reminders are cancelled and planned again, and
        a notice not yet sent is corrected. Everyone invited is told what changed only when the time
        or the place changed, and at most NOTICE_ROUNDS_PER_DAY times a day per meeting; later
        changes still apply (and /meetings shows them), quietly."""
        now = self.clock.now()
        reason = self.check_reason(reason) if reason else None
        async with self.db.transaction() as tx:
            old = await self._get(meeting_id, tx)
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
            meeting = await self._get(meeting_id, tx)
            await self.outbox.cancel(tx, key_prefix=f"mt:{meeting_id}:r")
            people = [a.person_id for a in await self._attendees(meeting_id, tx)]
            langs = await self._langs(tx, people)
            waiting = await self._pending_notices(tx, meeting_id) - {actor}
            await self._send_notices(tx, meeting, [p for p in people if p in waiting], langs, now, now, replace=True)
            told, quiet = 0, False
            if (old.starts_at, old.ends_at, old.place) != (meeting.starts_at, meeting.ends_at, meeting.place):
                quiet = not await self._take_notice_round(tx, meeting_id, now)
                if not quiet:
                    told = await self._tell_change(tx, old, meeting, [p for p in people if p != actor and
                                                                        p not in waiting], langs, reason, now)
            await self._plan_reminders(tx, meeting, people, langs, now)
            # The earlier notices, reminders and nudges show the new time or place; so does the roster.
            await self._refresh_screens(tx, meeting_id)
        return Edited(meeting=meeting, told=told + len(waiting), quiet=quiet)

    async def _take_notice_round(self, tx: Tx, meeting_id: int, now: datetime) -> bool:
        """Count one round of change notices for today (local), if the day's limit allows it."""
        day = local_today(now, self.tz).isoformat()
        rounds = await tx.fetchval("SELECT COUNT(*) FROM meeting_notice_rounds WHERE meeting_id = ? AND day = ?",
                                   (meeting_id, day))
        if rounds >= NOTICE_ROUNDS_PER_DAY:
            log.info("meeting %s: change applied without notices (%s rounds today)", meeting_id, rounds)
            return False
        await tx.execute("INSERT INTO meeting_notice_rounds (meeting_id, day, at) VALUES (?, ?, ?)",
                         (meeting_id, day, to_db(now)))
        return True

    async def _tell_change(self, tx: Tx, old: Meeting, meeting: Meeting, people: list[int], langs: dict[int, str],
                           reason: str | None, now: datetime) -> int:
        tracked = []
        for pid in people:
            lang = langs[pid]
            key, text = f"mt:{meeting.id}:e{meeting.edits}:{pid}", self.change_text(lang, old, meeting, reason, now)
            buttons = self.text.reply_buttons(lang, meeting.id)
            await self.outbox.send_text(tx, key=key, chat_id=pid, text=text, buttons=buttons,
                                        purpose=Purpose.CHANGE, subject_id=meeting.id)
            tracked.append(MemberMessage(key, pid, text, buttons, "change",
                                         head=self.change_head(lang, old, meeting, reason, now)))
        await self._track_members(tx, meeting.id, tracked)
        return len(people)

    async def _pending_notices(self, tx: Tx, meeting_id: int) -> set[int]:
        rows = await tx.fetchall("SELECT recipient FROM outbox WHERE purpose = ? AND subject_id = ?"
                                 " AND status = 'pending'", (Purpose.NOTICE, meeting_id))
        return {r[0] for r in rows}

    async def cancel(self, actor: int, meeting_id: int, reason: str | None) -> tuple[Meeting, int]:
        """Call a meeting off (before it ends), with a reason. Whoever had heard of it is told; every
        message still waiting about it (notices, reminders) is cancelled."""
        reason = self.check_reason(reason)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting = await self._get(meeting_id, tx)
            await self._require_manager(tx, actor, meeting)
            self.check_cancellable(meeting, now)
            await tx.execute("UPDATE meetings SET status = ?, cancel_reason = ?, updated_at = ?"
                             " WHERE id = ?", (MeetingStatus.CANCELLED, reason, to_db(now), meeting_id))
            meeting = await self._get(meeting_id, tx)
            invited = {a.person_id for a in await self._attendees(meeting_id, tx)}
            heard = {r[0] for r in await tx.fetchall(
                "SELECT DISTINCT recipient FROM outbox WHERE subject_id = ? AND status = 'sent'"
                " AND purpose IN (SELECT value FROM json_each(?))",
                (meeting_id, json.dumps([Purpose.NOTICE, Purpose.REMINDER, Purpose.CHANGE, Purpose.NUDGE])))}
            heard.add(meeting.created_by)
            await self.outbox.cancel(tx, key_prefix=f"mt:{meeting_id}:")
            tell = sorted((heard & invited) - {actor})
            langs = await self._langs(tx, tell)
            for pid in tell:
                lang = langs[pid]
                text = "\n".join([self.t(lang, "meeting.cancelled.title"),
                                  self.t(lang, "meeting.cancelled.reason", reason=reason), "",
                                  *self.card(lang, meeting, now)])
                await self.outbox.send_text(tx, key=f"mt:{meeting_id}:x:{pid}", chat_id=pid, text=text,
                                            purpose=Purpose.CANCEL, subject_id=meeting_id)
            # Every notice, reminder and nudge says 已取消 and loses its buttons; so does the roster.
            await self._refresh_screens(tx, meeting_id)
        return meeting, len(tell)

