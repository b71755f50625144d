"""Notices and reminders: the notice to everyone invited, the reminders before the start (outbox
rows with a not-before time), what changed, nudges to answer, and "no minutes yet" to the
secretary. Every message is an outbox row written in the caller's transaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.callbacks import MEETING_MANAGE, ManageAction
from bot.clock import from_db, to_db
from bot.database import Tx
from bot.limits import clip
from bot.outbox import Button
from bot.services.meeting_base import (
    MEETING_SQL,
    pipelined,
)
from bot.services.meeting_model import (
    DEFAULT_OFFSETS,
    MINUTES_GRACE,
    QUEUE_RATE,
    Draft,
    Meeting,
    MeetingStatus,
    Purpose,
    Refused,
    meeting_from_row,
)
from bot.services.meeting_screens import MemberMessage, ScreensPart
from bot.services.meeting_text import local_today
from bot.services.meeting_time import (
    after_quiet,
    plan_reminders,
)

log = logging.getLogger(__name__)


# How much of a changed topic the change line shows (the card under it has the new one in full).
TOPIC_PREVIEW = 100


class NoticesPart(ScreensPart):
    """Notices, reminders and the other messages about a meeting."""

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
        meeting = await self._get(meeting_id, tx)
        langs = await self._langs(tx, everyone)
        notified = await self._send_notices(tx, meeting, [p for p in everyone if p != skip], langs, notice_at, now)
        await self._plan_reminders(tx, meeting, everyone, langs, now)
        return len(everyone), notified


    async def _send_notices(self, tx: Tx, meeting: Meeting, people: Sequence[int], langs: dict[int, str],
                            at: datetime, now: datetime, replace: bool = False) -> int:
        rendered: dict[str, tuple[str, list[list[Button]]]] = {}
        sends = []
        tracked = []
        for pid in people:
            lang = langs.get(pid, self.default_locale)
            if lang not in rendered:
                rendered[lang] = (self.notice_text(lang, meeting, now), self.text.reply_buttons(lang, meeting.id))
            text, buttons = rendered[lang]
            sends.append(self.outbox.send_text(tx, key=f"mt:{meeting.id}:n:{pid}", chat_id=pid, text=text,
                                               purpose=Purpose.NOTICE, subject_id=meeting.id,
                                               buttons=buttons, not_before=at, replace=replace))
            tracked.append(MemberMessage(f"mt:{meeting.id}:n:{pid}", pid, text, buttons, "notice"))
        sent = sum(await pipelined(sends))
        await self._track_members(tx, meeting.id, tracked)
        return sent


    # --- reminders ------------------------------------------------------------------------------
    async def reminder_offsets(self, org_id: int, tx: Tx | None = None) -> list[int]:
        """Minutes before the start; the org's own setting, else its nearest ancestor's, else the default."""
        src = tx or self.db
        value = await src.fetchval(
            "WITH RECURSIVE up(id, n) AS (SELECT CAST(? AS BIGINT), 0"
            " UNION ALL SELECT o.parent_id, up.n + 1 FROM orgs o"
            " JOIN up ON o.id = up.id WHERE o.parent_id IS NOT NULL)"
            " SELECT s.reminder_offsets FROM up JOIN meeting_settings s ON s.org_id = up.id"
            " WHERE s.reminder_offsets IS NOT NULL ORDER BY up.n LIMIT 1", (org_id,))
        return sorted(json.loads(value), reverse=True) if value is not None else list(DEFAULT_OFFSETS)

    async def _sent_reminders(self, tx: Tx, meeting_id: int) -> dict[tuple[int, int], datetime]:
        """(person, offset) → when a reminder of that offset last went out, over all generations."""
        rows = await tx.fetchall(
            "SELECT recipient, dedup_key, sent_at FROM outbox WHERE purpose = ? AND subject_id = ?"
            " AND status = 'sent'", (Purpose.REMINDER, meeting_id))
        sent: dict[tuple[int, int], datetime] = {}
        for row in rows:
            # The offset is part of the reminder's identity (the key's last field), not whom it is for.
            offset = row["dedup_key"].rsplit(":", 1)[1]
            if row["sent_at"] and row["recipient"] is not None and offset.isdigit():
                key = (row["recipient"], int(offset))
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
        if not people or meeting.status != MeetingStatus.SCHEDULED:
            return 0
        offsets = await self.reminder_offsets(meeting.org_id, tx)
        lead = timedelta(seconds=max(60.0, len(people) / QUEUE_RATE))
        plan = plan_reminders(meeting.starts_at, offsets, now, self.tz, lead)
        if not plan:
            return 0
        sent = await self._sent_reminders(tx, meeting.id)
        rendered: dict[tuple[str, datetime], tuple[str, list[list[Button]]]] = {}
        sends = []
        tracked = []
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
                key = f"mt:{meeting.id}:r{meeting.remind_gen}:{pid}:{offset}"
                sends.append(self.outbox.send_text(
                    tx, key=key, chat_id=pid, text=text,
                    buttons=buttons, not_before=at, replace=True, purpose=Purpose.REMINDER, subject_id=meeting.id))
                tracked.append(MemberMessage(key, pid, text, buttons, "reminder", at))
        await pipelined(sends)
        await self._track_members(tx, meeting.id, tracked)
        return len(sends)


    async def nudge(self, actor: int, meeting_id: int) -> int:
        """Remind everyone who has not answered (one nudge a person a day; never in quiet hours)."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            meeting = await self._get(meeting_id, tx)
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
            tracked = []
            for pid in silent:
                lang = langs[pid]
                text = "\n".join([self.t(lang, "meeting.nudge.title"), *self.card(lang, meeting, now), "",
                                  self.t(lang, "meeting.notice.footer")])
                buttons = self.text.reply_buttons(lang, meeting_id)
                if await self.outbox.send_text(tx, key=f"mt:{meeting_id}:u{day}:{pid}", chat_id=pid, text=text,
                                               purpose=Purpose.NUDGE, subject_id=meeting_id,
                                               buttons=buttons, not_before=at):
                    sent += 1
                    tracked.append(MemberMessage(f"mt:{meeting_id}:u{day}:{pid}", pid, text, buttons, "nudge"))
            await self._track_members(tx, meeting_id, tracked)
            if not sent:
                raise Refused("meeting.error.nudged_today")
        return sent


    def change_text(self, lang: str, old: Meeting, new: Meeting, reason: str | None, now: datetime) -> str:
        lines = [*self.change_head(lang, old, new, reason, now), "", *self.card(lang, new, now), "",
                 self.t(lang, "meeting.changed.footer")]
        return "\n".join(lines)

    def change_head(self, lang: str, old: Meeting, new: Meeting, reason: str | None, now: datetime) -> list[str]:
        """What changed (kept as it was on the change notice when the notice is edited later)."""
        lines = [self.t(lang, "meeting.changed.title")]
        if (old.starts_at, old.ends_at) != (new.starts_at, new.ends_at):
            lines.append(self.t(lang, "meeting.changed.time", old=self.text.span(lang, old.starts_at, old.ends_at, now),
                                new=self.text.span(lang, new.starts_at, new.ends_at, now)))
        if old.place != new.place:
            lines.append(self.t(lang, "meeting.changed.place", old=old.place, new=new.place))
        if old.topic != new.topic:
            # The full new topic is on the card below; both in full, three times, would not fit.
            lines.append(self.t(lang, "meeting.changed.topic", old=clip(old.topic, TOPIC_PREVIEW),
                                new=clip(new.topic, TOPIC_PREVIEW)))
        if reason:
            lines.append(self.t(lang, "meeting.changed.reason", reason=reason))
        return lines


    async def _expire_reminders(self, now: datetime) -> int:
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
                await self._refresh_started(tx, row[0])
        if cancelled:
            log.info("meetings: %s reminders of meetings that had already started were not sent", cancelled)
        return cancelled


    async def _remind_missing_minutes(self, now: datetime) -> int:
        """A meeting with no minutes 2 days after its end: tell the secretary, once."""
        rows = await self.db.fetchall(
            f"{MEETING_SQL} WHERE m.status = 'scheduled' AND m.ends_at <= ? AND m.minutes_reminded_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM meeting_minutes x WHERE x.meeting_id = m.id)",
            (to_db(now - MINUTES_GRACE),))
        if not rows:
            return 0
        count = 0
        async with self.db.transaction() as tx:
            for meeting in map(meeting_from_row, rows):
                people = await self._secretaries_of(tx, meeting.org_id) or [meeting.created_by]
                langs = await self._langs(tx, people)
                for pid in people:
                    lang = langs[pid]
                    text = self.t(lang, "meeting.minutes.reminder", topic=meeting.topic,
                                  when=self.text.when(lang, meeting.starts_at, now), org=meeting.org_name)
                    buttons = [[Button(self.t(lang, "meeting.button.minutes"),
                                       MEETING_MANAGE(ManageAction.MINUTES, meeting.id))]]
                    if await self.outbox.send_text(tx, key=f"mt:{meeting.id}:mm:{pid}", chat_id=pid, text=text,
                                                   purpose=Purpose.MINUTES, subject_id=meeting.id,
                                                   buttons=buttons, not_before=after_quiet(now, self.tz)):
                        count += 1
                await tx.execute("UPDATE meetings SET minutes_reminded_at = ? WHERE id = ?",
                                 (to_db(now), meeting.id))
        return count

