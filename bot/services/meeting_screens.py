"""Meeting screens that stay true (bot/services/screens.py): the notices, change notices, nudges
and reminders a member got, and the organiser's roster. When a meeting changes (an answer, a
check-in, a mark, an edit, a cancellation, its start and end, closing it) the service refreshes
them in the same transaction: the member's messages read as the current notice with their
answer, and lose the buttons that no longer work; the roster fills in as replies come, at most
once a minute."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.callbacks import MEETING_MANAGE, MEETING_MARK, MEETING_MEMBER, ManageAction, MemberAction
from bot.clock import from_db, to_db
from bot.database import Database, Tx
from bot.infra import Infra
from bot.limits import MAX_TEXT, clip, telegram_length
from bot.outbox import Button
from bot.services.meeting_base import MeetingBase
from bot.services.meeting_model import Answer, Attendee, Meeting, MeetingStatus, Presence, Roster
from bot.services.meeting_text import local_today
from bot.services.orgs import NotFound
from bot.services.screens import Rendered, Screen, digest

SUBJECT = "meeting"  # screens' subject kind
ANSWER_MARK = "👉 "  # the line under a notice that shows the person's answer
ROSTER_EVERY = timedelta(minutes=1)  # the roster is edited at most this often
ROSTER_NAMES = 60  # names listed per line; the rest are counted


@dataclass(frozen=True)
class MemberMessage:
    """A message with answer buttons queued to a member, to be kept true."""

    key: str
    person: int
    text: str
    buttons: list[list[Button]]
    shown_as: str  # notice | change | nudge | reminder
    at: datetime | None = None  # a reminder's time (its "明天" is counted from it)
    head: list[str] | None = None  # a change notice's lines saying what changed


class ScreensPart(MeetingBase):
    """Keeping members' messages and the roster true."""

    def __init__(self, core: Infra) -> None:
        super().__init__(core)
        core.screens.register(SUBJECT, "member", self._screen_member)
        core.screens.register(SUBJECT, "roster", self._screen_roster, every=ROSTER_EVERY)

    async def _track_members(self, tx: Tx, meeting_id: int, messages: list[MemberMessage]) -> None:
        """Remember the messages just queued (in one statement: a county's notice has thousands)."""
        if not messages:
            return
        now = to_db(self.clock.now())
        await tx.executemany(
            "INSERT INTO screens (chat_id, source_key, subject_kind, subject_id, view, recipient, data, shown,"
            " created_at) VALUES (?, ?, ?, ?, 'member', ?, ?, ?, ?) ON CONFLICT(source_key)"
            " WHERE source_key IS NOT NULL DO UPDATE SET data = excluded.data, shown = excluded.shown",
            [(m.person, m.key, SUBJECT, meeting_id, m.person,
              json.dumps({"as": m.shown_as, "at": to_db(m.at) if m.at else None, "head": m.head},
                         ensure_ascii=False), digest(m.text, m.buttons), now)
             for m in messages])

    async def _refresh_screens(self, tx: Tx, meeting_id: int, *, person: int | None = None) -> None:
        """After a change: everyone's screens, or (an answer, a check-in) that person's and the rosters."""
        if person is None:
            await self.core.screens.refresh(tx, SUBJECT, meeting_id)
            return
        await self.core.screens.refresh(tx, SUBJECT, meeting_id, recipient=person, views=["member"])
        await self.core.screens.refresh(tx, SUBJECT, meeting_id, views=["roster"])

    async def _screen_meeting(self, src: Database | Tx, screen: Screen, cache: dict[str, Any]) -> Meeting | None:
        if "meeting" not in cache:
            try:
                cache["meeting"] = await self._get(screen.subject_id, src if isinstance(src, Tx) else None)
            except NotFound:
                cache["meeting"] = None
        meeting: Meeting | None = cache["meeting"]
        return meeting

    async def _screen_member(self, src: Database | Tx, screen: Screen, cache: dict[str, Any]) -> Rendered | None:
        tx = src if isinstance(src, Tx) else None
        meeting = await self._screen_meeting(src, screen, cache)
        attendee = await self._attendee(screen.subject_id, screen.recipient, tx) if meeting else None
        if meeting is None or attendee is None:
            return None
        lang = await self.people.language(screen.recipient, tx)
        return self.member_screen(lang, meeting, attendee, screen.data.get("as", "notice"),
                                  from_db(screen.data["at"]) if screen.data.get("at") else None,
                                  screen.data.get("head"))

    def member_screen(self, lang: str, meeting: Meeting, attendee: Attendee, shown_as: str,
                      at: datetime | None = None, head: list[str] | None = None) -> Rendered:
        """A member's notice (or reminder) as it stands now: the current card, what became of the
        meeting, their answer, and the buttons that still work. Once answered, a nudge reads as the
        notice: it no longer says they have not replied."""
        now = self.clock.now()
        open_ = meeting.open_for_answers(now)
        reminder = shown_as == "reminder" and at is not None
        if at is not None and reminder:
            day = self.text.day_word(lang, local_today(meeting.starts_at, self.tz), local_today(at, self.tz))
            lines = [self.t(lang, "meeting.reminder.title", day=day, time=self.text.clock(lang, meeting.starts_at)),
                     *self.card(lang, meeting, at)]
            footer = self.t(lang, "meeting.reminder.footer")
        elif shown_as == "change" and head:
            lines = [*head, "", *self.card(lang, meeting, now)]
            footer = self.t(lang, "meeting.changed.footer")
        else:
            nudge = shown_as == "nudge" and attendee.answer is None and open_
            lines = [self.t(lang, "meeting.nudge.title" if nudge else "meeting.notice.title"),
                     *self.card(lang, meeting, now)]
            footer = self.t(lang, "meeting.notice.footer")
        final = meeting.status != MeetingStatus.SCHEDULED or now >= meeting.ends_at
        if meeting.status == MeetingStatus.CANCELLED:
            lines.append(self.t(lang, "meeting.card.cancelled", reason=meeting.cancel_reason or ""))
        elif meeting.status == MeetingStatus.HELD:
            lines.append(self.t(lang, "meeting.card.held"))
        elif final:
            lines.append(self.t(lang, "screen.meeting_over"))
        elif not open_:
            lines.append(self.t(lang, "screen.meeting_started"))
        if open_ or (reminder and meeting.checkin_open(now)):
            lines += ["", footer]
        if attendee.answer is not None:
            lines.append(ANSWER_MARK + self.text.answer_line(lang, attendee.answer, attendee.leave_reason))
        if attendee.checked_in_at is not None:
            lines.append(ANSWER_MARK + self.t(lang, "meeting.card.checked_in",
                                              time=self.text.clock(lang, attendee.checked_in_at)))
        buttons: list[list[Button]] = []
        if open_:
            buttons = self.text.reply_buttons(lang, meeting.id, checkin=reminder)
        elif meeting.checkin_open(now) and attendee.checked_in_at is None:
            buttons = [[Button(self.t(lang, "meeting.button.checkin"),
                               MEETING_MEMBER(MemberAction.CHECKIN, meeting.id))]]
        return Rendered(clip("\n".join(lines), MAX_TEXT), buttons, final=final)

    # --- the roster ---------------------------------------------------------------------------
    async def _screen_roster(self, src: Database | Tx, screen: Screen, cache: dict[str, Any]) -> Rendered | None:
        tx = src if isinstance(src, Tx) else None
        meeting = await self._screen_meeting(src, screen, cache)
        if meeting is None or not await self.can_schedule(screen.recipient, meeting.org_id, tx):
            return None
        if "attendees" not in cache:
            cache["attendees"] = await self._attendees(meeting.id, tx)
        roster = Roster(meeting=meeting, attendees=cache["attendees"])
        lang = await self.people.language(screen.recipient, tx)
        return Rendered(self.roster_text(lang, roster), self.roster_buttons(lang, roster, screen.recipient),
                        final=meeting.status != MeetingStatus.SCHEDULED)

    def roster_buttons(self, lang: str, roster: Roster, reader: int) -> list[list[Button]]:
        """Nudge the silent ones (before the start), mark attendance (from check-in time), back to
        the card. No 🔄: the roster updates itself."""
        meeting, now = roster.meeting, self.clock.now()
        rows: list[list[Button]] = []
        silent = sum(1 for a in roster.attendees if a.answer is None and a.person_id != reader)
        if meeting.open_for_answers(now) and silent:
            rows.append([Button(self.t(lang, "meeting.button.nudge", count=silent),
                                MEETING_MANAGE(ManageAction.NUDGE, meeting.id))])
        if meeting.markable(now):
            rows.append([Button(self.t(lang, "meeting.button.mark"), MEETING_MARK(meeting.id, 0))])
        rows.append([Button(self.t(lang, "meeting.button.back"), MEETING_MANAGE(ManageAction.CARD, meeting.id))])
        return rows

    def roster_text(self, lang: str, roster: Roster) -> str:
        """Who answered what, who is on leave and why, who came."""
        meeting = roster.meeting
        # Each list gets its share of the message, so that long names never push the later lists
        # (and their counts) out of it; the names left out are counted, and the mark sheet pages them all.
        title = self.t(lang, "meeting.roster.title", kind=self.text.kind(lang, meeting.kind), topic=meeting.topic,
                       when=self.text.when(lang, meeting.starts_at, self.clock.now()), count=len(roster.attendees))
        budget = max(200, (MAX_TEXT - 96 - telegram_length(title)) // 6 - 40)

        def names(people: list[Attendee], with_reason: bool = False) -> str:
            if not people:
                return self.t(lang, "meeting.roster.none")
            shown: list[str] = []
            used = 0
            for a in people[:ROSTER_NAMES]:
                item = clip(self.t(lang, "meeting.roster.leave_item", name=a.name, reason=a.leave_reason or "")
                            if with_reason else a.name, budget // 2)
                used += telegram_length(item) + 2
                if shown and used > budget:
                    break
                shown.append(item)
            more = self.t(lang, "meeting.roster.more", count=len(people) - len(shown)) \
                if len(people) > len(shown) else ""
            return self.fmt.join(lang, shown) + more

        everyone = roster.attendees
        present = [a for a in everyone if a.attended]
        absent = [a for a in everyone if a.presence == Presence.ABSENT]
        lines = [title,
                 self.t(lang, "meeting.roster.attending", count=len(roster.with_answer(Answer.ATTEND)),
                        names=names(roster.with_answer(Answer.ATTEND))),
                 self.t(lang, "meeting.roster.leave", count=len(roster.with_answer(Answer.LEAVE)),
                        names=names(roster.with_answer(Answer.LEAVE), with_reason=True)),
                 self.t(lang, "meeting.roster.no_answer", count=len(roster.with_answer(None)),
                        names=names(roster.with_answer(None))),
                 self.t(lang, "meeting.roster.checked_in", count=len(present), names=names(present))]
        if absent:
            lines.append(self.t(lang, "meeting.roster.absent", count=len(absent), names=names(absent)))
        if meeting.status == MeetingStatus.CANCELLED:
            lines.append(self.t(lang, "meeting.card.cancelled", reason=meeting.cancel_reason or ""))
        elif meeting.status == MeetingStatus.HELD:
            lines.append(self.t(lang, "meeting.card.held"))
        return clip("\n".join(lines), MAX_TEXT - 96, marker="\n…")

    async def remember_roster(self, reader: int, meeting_id: int, chat_id: int, message_id: int, text: str,
                              buttons: list[list[Button]]) -> None:
        """The roster the organiser opened updates itself from now on (at most once a minute)."""
        await self.core.screens.remember(chat_id=chat_id, message_id=message_id, kind=SUBJECT,
                                         subject_id=meeting_id, view="roster", recipient=reader, text=text,
                                         buttons=buttons)

    async def _refresh_started(self, tx: Tx, meeting_id: int) -> None:
        """A meeting started: answers are closed, so its members' messages lose those buttons."""
        await self.core.screens.refresh(tx, SUBJECT, meeting_id, views=["member"])

    async def _expire_screens(self, now: datetime) -> int:
        """Meetings that ended: their members' messages lose their last buttons (check-in) and are
        forgotten; so each meeting is found here once."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT s.subject_id FROM screens s JOIN meetings m ON m.id = s.subject_id"
            " WHERE s.subject_kind = ? AND s.view = 'member' AND m.ends_at <= ? ORDER BY s.subject_id",
            (SUBJECT, to_db(now)))
        if rows:
            async with self.db.transaction() as tx:
                for row in rows:
                    await self._refresh_started(tx, row[0])
        return len(rows)
