"""Scheduling: creating a meeting, inviting more people, editing and cancelling it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from bot.clock import to_db
from bot.database import Tx
from bot.services.meeting_model import (
    Created,
    Draft,
    Meeting,
    Refused,
)
from bot.services.meeting_notices import NoticesPart
from bot.services.orgs import NotAllowed, NotFound

log = logging.getLogger(__name__)


class SchedulingPart(NoticesPart):
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

