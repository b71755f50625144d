"""The echo wall (回音壁) for people without the bot: what the web page (bot/web.py) and the monthly
poster (bot/poster.py) show, read-only.

Tickets are read here by SQL, not through TicketService, and every published text goes through
`_publish` below: that function and `_wall_rows` are the one place that knows the tickets tables and
the masking rule, so that a rewrite of the tickets service or of the masking is adapted here only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from bot.actors import Actor
from bot.clock import from_db, to_db
from bot.infra import Infra
from bot.services.orgs import NotAllowed, NotFound, Org, Role

PAGE_SIZE = 20
# Only what the chat's echo wall shows (TicketService.wall): answered or closed, the resident said
# it may be public, and there is an answer in words.
_PUBLIC = "public_ok = 1 AND answer_text IS NOT NULL AND status IN ('answered', 'closed')"
_COLUMNS = "id, category, status, summary, answer_text, created_at, answered_at"
# A shared location as the bot stores it in the problem text ("📍 34.12345,110.12345"), or coordinates
# typed or pasted by hand (three or more decimals: 34.123,110.456).
_COORDINATES = re.compile(r"📍\s*-?\d{1,3}(?:\.\d+)?\s*,\s*-?\d{1,3}(?:\.\d+)?"
                          r"|(?<![\d.])-?\d{1,3}\.\d{3,}\s*[,，]\s*-?\d{1,3}\.\d{3,}(?![\d.])")
_CURSOR = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)_(\d{1,19})$")
MAX_POSTER_ENTRIES = 200  # a month's poster beyond this is unreadable on a wall; the newest are kept


def _publish(text: str, place: str) -> str:
    """A text as it may be shown publicly: a shared location becomes `place` (the org's name, never
    the coordinates), then phone and ID-card numbers are masked exactly as the chat's wall does."""
    from bot.services.tickets import mask_private  # the coupling to the tickets service, in one place

    return mask_private(_COORDINATES.sub(lambda _: place, text))


@dataclass(frozen=True)
class WallEntry:
    """One answered problem as the public sees it: no person, no id of a person, masked texts."""

    id: int
    category: str       # the stored category (a code such as "infrastructure", or an org's own name)
    status: str         # answered | closed
    problem: str        # masked; "" when the problem had no words (a voice note, photos)
    answer: str         # masked
    created_at: datetime
    answered_at: datetime

    @property
    def cursor(self) -> str:
        return f"{to_db(self.answered_at)}_{self.id}"


@dataclass(frozen=True)
class WallPage:
    org: Org
    entries: list[WallEntry]
    newer: str | None   # the cursor for the page before (newer problems), None on the first page
    older: str | None   # the cursor for the page after (older problems), None on the last page


class BadCursor(ValueError):
    """A page link that was not made by us."""


def parse_cursor(text: str) -> tuple[str, int]:
    match = _CURSOR.match(text)
    if match is None:
        raise BadCursor(text)
    return match.group(1), int(match.group(2))


class EchoWall:
    """Read-only: nothing here writes, except `join_link` making the org's first resident link."""

    def __init__(self, core: Infra) -> None:
        self.core = core
        self.db = core.db

    async def page(self, org_code: str, lang: str, *, before: str | None = None, after: str | None = None,
                   size: int = PAGE_SIZE) -> WallPage:
        """One page, newest first. Keyset paging on (answered_at, id), which the partial index
        tickets_wall (org_id, answered_at) serves: any page costs the same on a wall of any length."""
        org = await self.core.orgs.by_code(org_code)
        if org is None:
            raise NotFound(org_code)
        place = self.core.t(lang, "web.place", org=org.name)
        if after is not None:
            answered, ticket_id = parse_cursor(after)
            rows = await self._wall_rows(
                org, "(answered_at, id) > (?, ?)", (answered, ticket_id), "ASC", size + 1)
            rows.reverse()
            more_newer = len(rows) > size
            entries = [self._entry(r, place) for r in rows[-size:]]
            newer = entries[0].cursor if more_newer and entries else None
            older = entries[-1].cursor if entries and await self._exists(org, "<", entries[-1]) else None
            return WallPage(org, entries, newer, older)
        where, params = ("(answered_at, id) < (?, ?)", parse_cursor(before)) if before is not None else ("1", ())
        rows = await self._wall_rows(org, where, params, "DESC", size + 1)
        entries = [self._entry(r, place) for r in rows[:size]]
        older = entries[-1].cursor if len(rows) > size else None
        newer = entries[0].cursor if before is not None and entries and await self._exists(
            org, ">", entries[0]) else None
        return WallPage(org, entries, newer, older)

    async def month(self, org: Org, first_day: date, tz: ZoneInfo, lang: str) -> list[WallEntry]:
        """The problems answered in one calendar month (local time), newest first."""
        place = self.core.t(lang, "web.place", org=org.name)
        next_month = date(first_day.year + first_day.month // 12, first_day.month % 12 + 1, 1)
        start = datetime.combine(first_day.replace(day=1), time(), tz)
        end = datetime.combine(next_month, time(), tz)
        rows = await self._wall_rows(org, "answered_at >= ? AND answered_at < ?", (to_db(start), to_db(end)),
                                     "DESC", MAX_POSTER_ENTRIES)
        return [self._entry(r, place) for r in rows]

    async def _wall_rows(self, org: Org, where: str, params: tuple[Any, ...], order: str,
                         limit: int) -> list[Any]:
        return await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM tickets WHERE org_id = ? AND {_PUBLIC}"
            f" AND {where} ORDER BY answered_at {order}, id {order} LIMIT ?", (org.id, *params, limit))

    async def _exists(self, org: Org, direction: str, entry: WallEntry) -> bool:
        row = await self.db.fetchone(
            f"SELECT 1 FROM tickets WHERE org_id = ? AND {_PUBLIC}"
            f" AND (answered_at, id) {direction} (?, ?) LIMIT 1", (org.id, to_db(entry.answered_at), entry.id))
        return row is not None

    @staticmethod
    def _entry(row: Any, place: str) -> WallEntry:
        return WallEntry(id=row["id"], category=row["category"], status=row["status"],
                         problem=_publish(row["summary"] or "", place).strip(),
                         answer=_publish(row["answer_text"] or "", place).strip(),
                         created_at=from_db(row["created_at"]), answered_at=from_db(row["answered_at"]))

    # --- the join link on the poster ---------------------------------------------------------------
    async def existing_join_link(self, org: Org) -> str | None:
        """The org's newest working resident link, if there is one and the bot's name is known."""
        username = await self.core.bot_username()
        payload = await self.db.fetchval(
            "SELECT payload FROM invites WHERE org_id = ? AND role = ? AND revoked_at IS NULL"
            " ORDER BY id DESC LIMIT 1", (org.id, Role.resident.value))
        return f"https://t.me/{username}?start={payload}" if username and payload else None

    async def join_link(self, org: Org, username: str, actor: Actor) -> str:
        """The link residents of the org join with: the newest working one, else a new one (made in
        the actor's name, which checks they may invite residents there; SYSTEM_ACTOR on the command
        line)."""
        payload = await self.db.fetchval(
            "SELECT payload FROM invites WHERE org_id = ? AND role = ? AND revoked_at IS NULL"
            " ORDER BY id DESC LIMIT 1", (org.id, Role.resident.value))
        if payload is None:
            payload = (await self.core.invites.create(org.code, Role.resident.value, created_by=actor)).payload
        return f"https://t.me/{username}?start={payload}"

    async def poster_orgs(self, actor_id: int) -> list[Org]:
        """The orgs whose poster this person may make: where they are secretary (resident links are
        theirs to give). Organizers and admins name the org: /poster <code>."""
        rows = await self.db.fetchall(
            "SELECT org_id FROM roles WHERE person_id = ? AND role = 'secretary' ORDER BY org_id", (actor_id,))
        return [org for r in rows if (org := await self.core.orgs.get(r["org_id"])) is not None]

    async def check_poster(self, actor_id: int, org_id: int) -> Org:
        """The org, if this person may make its poster now (the right is read from the database)."""
        org = await self.core.orgs.get(org_id)
        if org is None:
            raise NotFound(str(org_id))
        if not await self.core.orgs.can_approve(actor_id, org.id, Role.resident.value):
            raise NotAllowed("poster")
        return org
