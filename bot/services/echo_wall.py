"""The echo wall (回音壁) for people without the bot: what the web page (bot/web.py) and the monthly
poster (bot/poster.py) show, read-only: answered public problems, closed deliberation rounds' fixed
results (bot/services/deliberation.py) and published 四议两公开 matters (bot/services/matters.py).

Their tables are read here by SQL, not through the services (whose reads check a person's rights;
the wall is for everyone and shows only what those services publish to the org's wall chat), and
every published text goes through `_publish` below: that function and the `_Source`s are the one
place that knows those tables and the masking rule, so that a rewrite of a service or of the masking
is adapted here only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from bot.actors import Actor
from bot.clock import from_db, to_db
from bot.infra import Infra
from bot.services.orgs import NotAllowed, NotFound, Org, Role

PAGE_SIZE = 20
# A round's result or a matter's two publications fill a phone's screen or more: fewer a page.
ROUND_PAGE_SIZE = 10
MATTER_PAGE_SIZE = 10
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


E = TypeVar("E")


@dataclass(frozen=True)
class RoundEntry:
    """A closed deliberation round's fixed result, as the chat's result message shows it: counts per
    choice (a secret ballot never had anything else), turnout, proxy ballots, the most supported
    opinions (texts only: no author, signed or not). Every text masked."""

    id: int
    title: str
    closed_at: datetime
    secret: bool
    had_vote: bool                     # the round planned a vote phase
    voted: bool                        # … and there was a vote (two choices or more)
    options: list[tuple[str, int]]     # masked label, votes
    ballots: int
    eligible: int
    proxies: int
    opinions: int
    top: list[tuple[str, int]]         # masked text, supports
    early_reason: str | None           # masked; set when the opener closed it early
    opinion_map: dict[str, Any] | None = None  # the opinion map's fixed result (counts, masked statements)

    @property
    def turnout(self) -> int:
        return round(100 * self.ballots / self.eligible) if self.eligible else 0


@dataclass(frozen=True)
class StageVote:
    """A stage's vote: a paper vote's counts, or the result of a closed deliberation round."""

    kind: str                          # paper | round
    yes: int = 0
    no: int = 0
    abstain: int = 0
    present: int | None = None
    title: str = ""                    # the round's, masked
    options: tuple[tuple[str, int], ...] = ()
    ballots: int = 0
    eligible: int = 0


@dataclass(frozen=True)
class StageLine:
    stage: int                         # 1..4
    held_on: date
    passed: bool
    meeting: str                       # the meeting's topic, masked; "" without one
    meeting_day: date | None
    vote: StageVote | None
    note: str                          # masked


@dataclass(frozen=True)
class MatterEntry:
    """A 四议两公开 matter as its two publications show it: the decision (决议公开) with the path it
    took, later the result of carrying it out (实施结果公开). The result's photos are Telegram
    messages (no file of ours): only their number is known here."""

    id: int
    title: str
    estimate: str
    decision: str
    decided_at: datetime
    stages: list[StageLine]
    result: str | None
    result_at: datetime | None
    photos: int


@dataclass(frozen=True)
class Page(Generic[E]):
    org: Org
    entries: list[E]
    newer: str | None   # the cursor for the page before (newer entries), None on the first page
    older: str | None   # the cursor for the page after (older entries), None on the last page


WallPage = Page[WallEntry]


@dataclass(frozen=True)
class _Source:
    """One public list on the wall, in one table: what may be shown, and the time it is ordered by
    (newest first, then the id)."""

    table: str
    columns: str
    public: str
    key: str


_TICKETS = _Source("tickets", _COLUMNS, _PUBLIC, "answered_at")
# A round is on the wall once its result is fixed at the close (the close posts it to the org's wall
# chat, whatever its audience); an open round (even with live counts) and a cancelled one never are.
_ROUNDS = _Source("delib_rounds", "id, title, ended_at, votes_until, secret, ended_early, end_reason, result,"
                  # The opinion map's fixed result (bot/services/opinions.py), when the round had one.
                  " (SELECT m.snapshot FROM om_maps m WHERE m.round_id = delib_rounds.id AND m.status = 'final')"
                  " AS om_snapshot",
                  "status = 'closed' AND result IS NOT NULL AND ended_at IS NOT NULL", "ended_at")
# A matter is on the wall once its decision is published (决议公开), ordered by its newest
# publication, so a result published today comes first.
_MATTERS = _Source("matters", "id, title, estimate, decision_text, decision_at, result_text, result_media, result_at",
                   "status IN ('published', 'done') AND decision_at IS NOT NULL AND decision_text IS NOT NULL",
                   "COALESCE(result_at, decision_at)")


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

    async def _org(self, org_code: str) -> Org:
        org = await self.core.orgs.by_code(org_code)
        if org is None:
            raise NotFound(org_code)
        return org

    async def page(self, org_code: str, lang: str, *, before: str | None = None, after: str | None = None,
                   size: int = PAGE_SIZE) -> WallPage:
        """One page of answered problems, newest first. Keyset paging on (answered_at, id), which the
        partial index tickets_wall (org_id, answered_at) serves: any page costs the same on a wall of
        any length."""
        org = await self._org(org_code)
        place = self.core.t(lang, "web.place", org=org.name)
        rows, newer, older = await self._keyset(org, _TICKETS, before, after, size)
        return Page(org, [self._entry(r, place) for r in rows], newer, older)

    async def rounds(self, org_code: str, lang: str, *, before: str | None = None, after: str | None = None,
                     size: int = ROUND_PAGE_SIZE) -> Page[RoundEntry]:
        """One page of the org's closed deliberation rounds, the newest close first. The index
        delib_rounds_org (org_id, status) finds the org's closed rounds; they are few (a village holds
        a few a month), so ordering them costs nothing next to the problems."""
        org = await self._org(org_code)
        place = self.core.t(lang, "web.place", org=org.name)
        rows, newer, older = await self._keyset(org, _ROUNDS, before, after, size)
        return Page(org, [_round_entry(r, place) for r in rows], newer, older)

    async def matters(self, org_code: str, lang: str, *, before: str | None = None, after: str | None = None,
                      size: int = MATTER_PAGE_SIZE) -> Page[MatterEntry]:
        """One page of the org's published 四议两公开 matters, the newest publication first (the
        index matters_org (org_id, status) finds them; like rounds, they are few)."""
        org = await self._org(org_code)
        place = self.core.t(lang, "web.place", org=org.name)
        rows, newer, older = await self._keyset(org, _MATTERS, before, after, size)
        stages = await self._stages([r["id"] for r in rows], place)
        return Page(org, [_matter_entry(r, stages.get(r["id"], []), place) for r in rows], newer, older)

    async def _keyset(self, org: Org, src: _Source, before: str | None, after: str | None,
                      size: int) -> tuple[list[Any], str | None, str | None]:
        """A page of rows newest first, and the cursors of the pages around it (None at either end)."""
        if after is not None:
            rows = await self._rows(org, src, f"({src.key}, id) > (?, ?)", parse_cursor(after), "ASC", size + 1)
            rows.reverse()
            more_newer = len(rows) > size
            rows = rows[-size:]
            newer = _cursor(rows[0]) if more_newer and rows else None
            older = _cursor(rows[-1]) if rows and await self._exists(org, src, "<", rows[-1]) else None
            return rows, newer, older
        where, params = (f"({src.key}, id) < (?, ?)", parse_cursor(before)) if before is not None else ("1 = 1", ())
        rows = await self._rows(org, src, where, params, "DESC", size + 1)
        older = _cursor(rows[size - 1]) if len(rows) > size else None
        rows = rows[:size]
        newer = _cursor(rows[0]) if before is not None and rows and await self._exists(org, src, ">", rows[0]) else None
        return rows, newer, older

    async def _rows(self, org: Org, src: _Source, where: str, params: tuple[Any, ...], order: str,
                    limit: int) -> list[Any]:
        return await self.db.fetchall(
            f"SELECT {src.columns}, {src.key} AS at FROM {src.table} WHERE org_id = ? AND {src.public}"
            f" AND {where} ORDER BY {src.key} {order}, id {order} LIMIT ?", (org.id, *params, limit))

    async def _exists(self, org: Org, src: _Source, direction: str, row: Any) -> bool:
        found = await self.db.fetchone(
            f"SELECT 1 FROM {src.table} WHERE org_id = ? AND {src.public}"
            f" AND ({src.key}, id) {direction} (?, ?) LIMIT 1", (org.id, row["at"], row["id"]))
        return found is not None

    async def _stages(self, matter_ids: list[int], place: str) -> dict[int, list[StageLine]]:
        """The recorded stages of these matters, with their meetings' topics and the fixed results of
        the rounds they voted in, in one query."""
        if not matter_ids:
            return {}
        marks = ", ".join("?" * len(matter_ids))
        rows = await self.db.fetchall(
            "SELECT s.matter_id, s.stage, s.held_on, s.outcome, s.note, s.vote, s.yes, s.no, s.abstain, s.present,"
            " m.topic, m.starts_at, r.title AS round_title, r.result AS round_result"
            " FROM matter_stages s LEFT JOIN meetings m ON m.id = s.meeting_id"
            " LEFT JOIN delib_rounds r ON r.id = s.round_id AND r.status = 'closed'"
            f" WHERE s.matter_id IN ({marks}) ORDER BY s.matter_id, s.stage", tuple(matter_ids))
        out: dict[int, list[StageLine]] = {}
        for r in rows:
            out.setdefault(r["matter_id"], []).append(self._stage(r, place))
        return out

    def _stage(self, r: Any, place: str) -> StageLine:
        vote: StageVote | None = None
        if r["vote"] == "paper":
            vote = StageVote("paper", yes=r["yes"] or 0, no=r["no"] or 0, abstain=r["abstain"] or 0,
                             present=r["present"])
        elif r["vote"] == "round" and r["round_result"]:
            result = json.loads(r["round_result"])
            vote = StageVote("round", title=_publish(r["round_title"] or "", place),
                             options=tuple((_publish(str(label), place), int(n)) for label, n in result["options"]),
                             ballots=int(result["ballots"]), eligible=int(result["eligible"]))
        meeting_day = from_db(r["starts_at"]).astimezone(self.core.settings.tz).date() if r["starts_at"] else None
        return StageLine(stage=r["stage"], held_on=date.fromisoformat(r["held_on"]), passed=r["outcome"] == "passed",
                         meeting=_publish(r["topic"] or "", place).strip(), meeting_day=meeting_day, vote=vote,
                         note=_publish(r["note"] or "", place).strip())

    async def month(self, org: Org, first_day: date, tz: ZoneInfo, lang: str) -> list[WallEntry]:
        """The problems answered in one calendar month (local time), newest first."""
        place = self.core.t(lang, "web.place", org=org.name)
        next_month = date(first_day.year + first_day.month // 12, first_day.month % 12 + 1, 1)
        start = datetime.combine(first_day.replace(day=1), time(), tz)
        end = datetime.combine(next_month, time(), tz)
        rows = await self._rows(org, _TICKETS, "answered_at >= ? AND answered_at < ?", (to_db(start), to_db(end)),
                                "DESC", MAX_POSTER_ENTRIES)
        return [self._entry(r, place) for r in rows]

    @staticmethod
    def _entry(row: Any, place: str) -> WallEntry:
        return WallEntry(id=row["id"], category=row["category"], status=row["status"],
                         problem=_publish(row["summary"] or "", place).strip(),
                         answer=_publish(row["answer_text"] or "", place).strip(),
                         created_at=from_db(row["created_at"]), answered_at=from_db(row["answered_at"]))

    # --- the join link on the poster ---------------------------------------------------------------
    async def existing_join_link(self, org: Org) -> str | None:
        """The org's newest working resident link, if there is one and the bot's name is known."""
        username = await self.core.bot_username(org.id)
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


def _cursor(row: Any) -> str:
    """A page link's position: the row's ordering time, as stored, and its id."""
    return f"{row['at']}_{row['id']}"


def _round_entry(r: Any, place: str) -> RoundEntry:
    """The result fixed at the close (masked there already: the opinions; masked here again, with the
    title, labels and reason the chat shows as typed: masking what is masked changes nothing)."""
    result = json.loads(r["result"])
    early = r["end_reason"] if r["ended_early"] and r["end_reason"] else None
    return RoundEntry(
        id=r["id"], title=_publish(r["title"], place).strip(), closed_at=from_db(r["ended_at"]),
        secret=bool(r["secret"]), had_vote=r["votes_until"] is not None, voted=bool(result["voted"]),
        options=[(_publish(str(label), place), int(n)) for label, n in result["options"]],
        ballots=int(result["ballots"]), eligible=int(result["eligible"]), proxies=int(result["proxies"]),
        opinions=int(result["opinions"]), top=[(_publish(str(text), place), int(n)) for text, n in result["top"]],
        early_reason=_publish(early, place).strip() if early else None,
        opinion_map=json.loads(r["om_snapshot"]) if r["om_snapshot"] else None)


def _matter_entry(r: Any, stages: list[StageLine], place: str) -> MatterEntry:
    return MatterEntry(
        id=r["id"], title=_publish(r["title"], place).strip(), estimate=_publish(r["estimate"] or "", place).strip(),
        decision=_publish(r["decision_text"], place).strip(), decided_at=from_db(r["decision_at"]), stages=stages,
        result=_publish(r["result_text"], place).strip() if r["result_text"] else None,
        result_at=from_db(r["result_at"]) if r["result_at"] else None,
        photos=len(json.loads(r["result_media"] or "[]")))
