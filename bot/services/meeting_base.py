"""The meetings service's common ground: reading meetings and attendees, who may schedule for
an org, checking what people type, who a meeting invites, everyone's language, and the texts
every message about a meeting shares. The feature's parts (scheduling, attendance, notices,
series, settings) build on this class; bot/services/meetings.py puts them together."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from bot.clock import from_db
from bot.database import Database, Tx
from bot.i18n import language_for
from bot.infra import Infra
from bot.limits import clip, telegram_length
from bot.services.meeting_model import (
    KINDS,
    LECTURER_MAX,
    MAX_DURATION,
    MAX_YEARS_AHEAD,
    MEMBER_ROLES,
    PLACE_MAX,
    REASON_MAX,
    TOPIC_MAX,
    Attendee,
    Draft,
    Meeting,
    MeetingStatus,
    Refused,
    attendee_from_row,
    meeting_from_row,
)
from bot.services.meeting_text import MeetingText, local_today
from bot.services.meeting_time import (
    add_years,
    period_end,
    period_start,
)
from bot.services.orgs import NotAllowed, NotFound, Org, OrgKind

log = logging.getLogger(__name__)

MEETING_SQL = "SELECT m.*, o.name AS org_name FROM meetings m JOIN orgs o ON o.id = m.org_id"
ATTENDEE_SQL = ("SELECT a.*, p.name, p.username FROM meeting_attendees a"
                 " LEFT JOIN people p ON p.telegram_id = a.person_id")
# The org, and (with include_below) everything under it; party groups belong to their branch.
SCOPE_CTE = ("WITH RECURSIVE scope(id) AS (SELECT CAST(:org AS BIGINT) UNION SELECT o.id FROM orgs o JOIN scope ON"
              " o.parent_id = scope.id WHERE :below = 1 OR (:groups = 1 AND o.kind = 'party_group'))")


class MeetingBase:
    """Reading, rights, validation, who is invited, languages and shared texts."""

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
        self.fmt = core.formatter
        self.text = MeetingText(core.formatter)

    # --- reading ----------------------------------------------------------------------------
    async def in_use_since(self, org_id: int) -> date | None:
        """The first day the bot was in use for the org (see `in_use_since_by_org`)."""
        return (await self.in_use_since_by_org(org_id)).get(org_id)

    async def in_use_since_by_org(self, org_id: int | None = None) -> dict[int, date]:
        """The first day the bot was in use for each org (or just `org_id`): the later of the day
        the org was loaded (orgs.created_at) and the first day someone who takes part in its
        meetings (member, secretary, organizer) held a role in it (role_audit keeps grants later
        revoked; roles covers rows older than the audit). Not the first meeting: a branch that
        never met in the bot is exactly what the ledger must show as 未完成. Not created_at alone: a
        county loads all its villages at once, and a village whose secretary joins months later
        could not record those months here. The ledger's 不适用 and the quota warnings both use it,
        so an organiser is never told of a miss that the ledger calls 不适用. Orgs nobody joined
        are absent."""
        roles = json.dumps(MEMBER_ROLES)
        only = "" if org_id is None else " AND org_id = ?"
        extra: tuple[int, ...] = () if org_id is None else (org_id,)
        rows = await self.db.fetchall(
            "SELECT o.id, o.created_at, j.joined FROM orgs o JOIN (SELECT org_id, MIN(at) AS joined FROM"
            " (SELECT org_id, at FROM role_audit WHERE action = 'grant'"
            f" AND role IN (SELECT value FROM json_each(?)){only}"
            f" UNION ALL SELECT org_id, granted_at FROM roles WHERE role IN (SELECT value FROM json_each(?)){only}) u"
            " GROUP BY org_id) j ON j.org_id = o.id",
            (roles, *extra, roles, *extra))
        return {row[0]: self.fmt.local(max(from_db(row[1]), from_db(row[2]))).date() for row in rows}

    async def _get(self, meeting_id: int, tx: Tx | None = None) -> Meeting:
        src = tx or self.db
        row = await src.fetchone(f"{MEETING_SQL} WHERE m.id = ?", (meeting_id,))
        if row is None:
            raise NotFound("meeting")
        return meeting_from_row(row)

    async def _attendee(self, meeting_id: int, person_id: int, tx: Tx | None = None) -> Attendee | None:
        src = tx or self.db
        row = await src.fetchone(f"{ATTENDEE_SQL} WHERE a.meeting_id = ? AND a.person_id = ?",
                                 (meeting_id, person_id))
        return attendee_from_row(row) if row else None

    async def _attendees(self, meeting_id: int, tx: Tx | None = None) -> list[Attendee]:
        src = tx or self.db
        rows = await src.fetchall(f"{ATTENDEE_SQL} WHERE a.meeting_id = ? ORDER BY p.name, a.person_id",
                                  (meeting_id,))
        return [attendee_from_row(r) for r in rows]

    async def _minutes_counts(self, meeting_id: int, tx: Tx | None = None) -> dict[str, int]:
        src = tx or self.db
        rows = await src.fetchall("SELECT kind, COUNT(*) FROM meeting_minutes WHERE meeting_id = ? GROUP BY kind",
                                  (meeting_id,))
        counts = {"text": 0, "photo": 0, "document": 0}
        counts.update({r[0]: r[1] for r in rows})
        return counts

    async def _minutes(self, meeting_id: int) -> list[dict[str, Any]]:
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

    async def can_set_quotas(self, person_id: int, org_id: int, tx: Tx | None = None) -> bool:
        """Only an organizer strictly above the org (or an admin) sets how often it must meet: a
        village's own organizer must not switch off what the county required."""
        if self.orgs.is_admin(person_id):
            return True
        row = await (tx or self.db).fetchone(
            "WITH RECURSIVE up(id) AS (SELECT parent_id FROM orgs WHERE id = ? AND parent_id IS NOT NULL"
            " UNION ALL SELECT o.parent_id FROM orgs o JOIN up ON o.id = up.id WHERE o.parent_id IS NOT NULL)"
            " SELECT 1 FROM roles WHERE person_id = ? AND role = 'organizer' AND org_id IN (SELECT id FROM up)"
            " LIMIT 1", (org_id, person_id))
        return row is not None

    async def in_reach(self, src: Database | Tx, actor: int, people: Iterable[int]) -> set[int]:
        """Those of `people` who hold a role in the actor's own subtree (under the orgs where the
        actor is secretary or organizer; any role anywhere for an admin): the only people a
        meeting may invite by name."""
        wanted = list(dict.fromkeys(people))
        if not wanted:
            return set()
        if self.orgs.is_admin(actor):
            rows = await src.fetchall("SELECT DISTINCT person_id FROM roles WHERE person_id IN"
                                      " (SELECT value FROM json_each(?))", (json.dumps(wanted),))
        else:
            rows = await src.fetchall(
                "WITH RECURSIVE down(id) AS (SELECT org_id FROM roles WHERE person_id = ? AND role IN"
                " ('secretary', 'organizer') UNION SELECT o.id FROM orgs o JOIN down ON o.parent_id = down.id)"
                " SELECT DISTINCT person_id FROM roles WHERE org_id IN (SELECT id FROM down)"
                " AND person_id IN (SELECT value FROM json_each(?))", (actor, json.dumps(wanted)))
        return {r[0] for r in rows}

    async def schedulable_orgs(self, person_id: int) -> list[tuple[int, Org]]:
        """Orgs the person may schedule for, in tree order (organizers: their whole subtree)."""
        found: list[tuple[int, Org]] = list(await self.orgs.manageable_orgs(person_id))
        seen = {org.id for _, org in found}
        rows = await self.db.fetchall(
            "SELECT DISTINCT org_id FROM roles WHERE person_id = ? AND role = 'secretary' ORDER BY org_id",
            (person_id,))
        for row in rows:
            for depth, org in await self.orgs.subtree(row["org_id"]):
                if org.id in seen or (depth > 0 and org.kind != OrgKind.party_group):
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
            sql = (f"{SCOPE_CTE} SELECT person_id FROM roles WHERE org_id IN (SELECT id FROM scope)"
                   " AND role = 'secretary' UNION SELECT person_id FROM meeting_committee"
                   " WHERE org_id IN (SELECT id FROM scope)")
        else:
            sql = (f"{SCOPE_CTE} SELECT DISTINCT person_id FROM roles WHERE org_id IN (SELECT id FROM scope)"
                   " AND role IN ('member', 'secretary', 'organizer')")
        rows = await src.fetchall(sql + " ORDER BY 1", params)
        return [r[0] for r in rows]

    async def preview_count(self, actor: int, draft: Draft) -> int:
        """How many people a draft would invite (the flow's confirmation shows it)."""
        if not await self.can_schedule(actor, draft.org_id):
            raise NotAllowed("meeting")
        people = set(await self._invitees(self.db, draft.org_id, draft.kind, draft.include_below))
        return len(people | set(draft.extra_people))

    async def resolve_people(self, actor: int, tokens: Iterable[str]) -> tuple[dict[int, str], list[str]]:
        """Telegram ids, @usernames or exact names → ({id: name}, not found). Only people with a role
        in the actor's own subtree are found (`in_reach`); anyone else reads as unknown."""
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
            rows = [r for r in rows if r["telegram_id"] in await self.in_reach(self.db, actor, [r["telegram_id"]])]
            if len(rows) == 1:
                row = rows[0]
                found[row["telegram_id"]] = row["name"] or row["username"] or str(row["telegram_id"])
            else:
                unknown.append(token)  # nobody, or two people of that name: better to ask again
        return found, unknown


    async def _langs(self, tx: Tx, people: Sequence[int]) -> dict[int, str]:
        """Everyone's language in one query (a county-wide meeting has thousands of people)."""
        langs = {p: self.default_locale for p in people}
        rows = await tx.fetchall(
            "SELECT telegram_id, language, tg_language_code FROM people"
            " WHERE telegram_id IN (SELECT value FROM json_each(?))", (json.dumps(list(people)),))
        for row in rows:
            langs[row[0]] = language_for(row[1], row[2], self.default_locale)
        return langs


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


    # --- members' answers -----------------------------------------------------------------------
    async def _invited(self, tx: Tx, meeting_id: int, person_id: int) -> tuple[Meeting, Attendee]:
        meeting = await self._get(meeting_id, tx)
        attendee = await self._attendee(meeting_id, person_id, tx)
        if attendee is None:
            raise Refused("meeting.error.not_invited")
        return meeting, attendee

    @staticmethod
    def check_cancellable( meeting: Meeting, now: datetime) -> None:
        """Refused unless the meeting may still be called off (scheduled, not yet ended)."""
        not_cancelled(meeting)
        if not meeting.cancellable(now):
            raise Refused("meeting.error.ended")

    @staticmethod
    def _open_for_answers(meeting: Meeting, now: datetime) -> None:
        not_cancelled(meeting)
        if not meeting.open_for_answers(now):
            raise Refused("meeting.error.started")

    async def _secretaries_of(self, src: Database | Tx, org_id: int) -> list[int]:
        """A branch's secretaries (a party group's are its branch's when it has none)."""
        rows = await src.fetchall("SELECT person_id FROM roles WHERE org_id = ? AND role = 'secretary'"
                                  " ORDER BY person_id", (org_id,))
        if not rows:
            rows = await src.fetchall(
                "SELECT person_id FROM roles WHERE role = 'secretary' AND org_id ="
                " (SELECT parent_id FROM orgs WHERE id = ? AND kind = 'party_group') ORDER BY person_id", (org_id,))
        return [r[0] for r in rows]



async def pipelined(calls: Sequence[Coroutine[Any, Any, bool]], batch: int = 256) -> list[bool]:
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


def not_cancelled(meeting: Meeting) -> None:
    if meeting.status == MeetingStatus.CANCELLED:
        raise Refused("meeting.error.cancelled", reason=meeting.cancel_reason or "")


def chunks(head: str, lines: list[str], limit: int) -> list[str]:
    """`head` and the lines, split into messages under `limit` characters as Telegram counts them
    (UTF-16: an emoji in an org's name counts twice); a line too long for one message is clipped."""
    out, current = [], [head]
    for line in lines:
        line = clip(line, limit - telegram_length(head) - 1)
        if telegram_length("\n".join([*current, line])) > limit and len(current) > 1:
            out.append("\n".join(current))
            current = [head]
        current.append(line)
    out.append("\n".join(current))
    return out


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """(first day, first day after) of the period containing `day`."""
    return period_start(period, day), period_end(period, day)

