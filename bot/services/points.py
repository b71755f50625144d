"""Points (积分), monthly statements and the annual star rating (评星定级).

Points are never a stored counter: they are computed from the records every time, so that anyone
can reproduce them. The sources: meetings attended (a 主题党日 has its own rule), deliberation
rounds taken part in (an opinion given, or a ballot cast: only *that* someone voted, from
`ballot_voters`, never *how*, which a secret box does not even keep), progress reports (践诺)
confirmed by the secretary (督诺), and, for secretaries, problems they answered in time that the
resident rated 满意 or 基本满意. A secretary's additions and deductions are stored rows with a reason.

The points per event and the star thresholds are settings per org (point_rules; an org inherits its
nearest ancestor's, else DEFAULT_RULES), changed only by organisers at or above the org (never by
the branch's own secretary), checked here from the database.

The star rating: the secretary proposes the year's stars from the points; the branch's members
confirm the proposal in a deliberation round's vote (同意 / 不同意; the round is the deliberation
feature's own, with its notices, reminders and ballot secrecy). The periodic job reads the closed
round's fixed result: more 同意 than 不同意 confirms it."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.actors import SYSTEM_ACTOR, Actor, SystemActor
from bot.clock import from_db, to_db
from bot.database import Database, Tx
from bot.infra import Infra
from bot.limits import clip
from bot.outbox import Priority
from bot.services.deliberation import Audience, DeliberationService, RoundSpec
from bot.services.meeting_time import after_quiet
from bot.services.orgs import NotAllowed, NotFound, Refused, Role

log = logging.getLogger(__name__)

__all__ = ["NotAllowed", "NotFound", "PointsService", "Refused", "Source"]


class Source(StrEnum):
    MEETING = "meeting"
    THEME_DAY = "theme_day"
    DELIBERATION = "deliberation"
    PLEDGE = "pledge"
    TICKET = "ticket"
    ADJUST = "adjust"          # a secretary's addition or deduction (its points are its own delta)


RULE_KEYS = (Source.MEETING, Source.THEME_DAY, Source.DELIBERATION, Source.PLEDGE, Source.TICKET)
DEFAULT_RULES: dict[str, int] = {"meeting": 2, "theme_day": 3, "deliberation": 1, "pledge": 5, "ticket": 2}
DEFAULT_STARS = (20, 40, 60, 80)   # a year's points for 2, 3, 4 and 5 stars; below the first: 1 star
MAX_RULE = 100
MAX_THRESHOLD = 10_000
MAX_DELTA = 50
MAX_REASON = 200
SATISFIED = ("good", "ok")         # 满意, 基本满意
STATEMENT_DAY_HOUR = 9             # the statement goes out on the 1st from 09:00
STATEMENT_CATCH_UP_DAYS = 3        # after downtime, still sent on the 2nd or 3rd; never later
OPINIONS_FOR = timedelta(days=1)   # the star vote's round: a day for opinions, then three for votes
VOTES_FOR = timedelta(days=3)
BACKGROUND_ROOM = 1800


SOURCE_KEYS = {Source.MEETING: "points.source.meeting", Source.THEME_DAY: "points.source.theme_day",
               Source.DELIBERATION: "points.source.deliberation", Source.PLEDGE: "points.source.pledge",
               Source.TICKET: "points.source.ticket", Source.ADJUST: "points.source.adjust"}
OUTCOME_KEYS = {"confirmed": "points.stars.confirmed", "rejected": "points.stars.rejected",
                "cancelled": "points.stars.cancelled"}


class Purpose(StrEnum):
    ADJUST = "points/adjust"
    STATEMENT = "points/statement"
    STARS = "points/stars"


@dataclass(frozen=True)
class Rules:
    points: dict[str, int]
    stars: tuple[int, int, int, int]

    def stars_for(self, total: int) -> int:
        return 1 + sum(1 for threshold in self.stars if total >= threshold)

    def to_json(self) -> str:
        return json.dumps({**self.points, "stars": list(self.stars)})


DEFAULTS = Rules(dict(DEFAULT_RULES), DEFAULT_STARS)


@dataclass
class Tally:
    """One person's points in a period: how many events of each source, and their points."""

    counts: dict[str, int] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.points.values())

    def add(self, source: str, count: int, points: int) -> None:
        self.counts[source] = self.counts.get(source, 0) + count
        self.points[source] = self.points.get(source, 0) + points


@dataclass(frozen=True)
class Line:
    person_id: int
    name: str
    month: Tally
    year: Tally


@dataclass(frozen=True)
class Proposal:
    id: int
    org_id: int
    year: int
    round_id: int | None
    status: str
    decided_at: datetime | None
    yes: int | None
    no: int | None
    ratings: list[tuple[int, str, int, int]]   # (person, name, points, stars)


@dataclass(frozen=True)
class Adjustment:
    at: datetime
    person: str
    delta: int
    reason: str
    by: str


@dataclass(frozen=True)
class LedgerPoints:
    """What the ledger's points sheets show for a period (bot/services/points_ledger.py)."""

    org_name: str
    rules: Rules
    table: list[tuple[str, Tally]]
    adjustments: list[Adjustment]
    proposals: list[Proposal]


def month_start(tz: ZoneInfo, year: int, month: int) -> datetime:
    return datetime.combine(date(year, month, 1), time(0), tz)


def month_bounds(tz: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    first = month_start(tz, day.year, day.month)
    nxt = month_start(tz, day.year + day.month // 12, day.month % 12 + 1)
    return first, nxt


def year_bounds(tz: ZoneInfo, year: int) -> tuple[datetime, datetime]:
    return month_start(tz, year, 1), month_start(tz, year + 1, 1)


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))


class PointsService:
    def __init__(self, core: Infra, deliberation: DeliberationService) -> None:
        self.core = core
        self.db: Database = core.db
        self.clock = core.clock
        self.t = core.t
        self.fmt = core.formatter
        self.outbox = core.outbox
        self.orgs = core.orgs
        self.people = core.people
        self.tz = core.settings.tz
        self.deliberation = deliberation

    # --- rights -----------------------------------------------------------------------------
    async def _has(self, src: Tx | Database, person: Actor, org_id: int, roles: Iterable[str]) -> bool:
        if not isinstance(person, int):
            return False
        roles = list(roles)
        sql = f"SELECT 1 FROM roles WHERE person_id = ? AND org_id = ? AND role IN ({_marks(roles)})"
        row = await src.fetchone(sql, (person, org_id, *roles))
        return row is not None

    async def is_secretary(self, actor: Actor, org_id: int, src: Tx | Database | None = None) -> bool:
        return await self._has(src or self.db, actor, org_id, [Role.secretary])

    async def _may_read(self, src: Tx | Database, actor: Actor, org_id: int) -> bool:
        """The branch's table: its secretary, organisers at or above it, the operator."""
        if isinstance(actor, SystemActor):
            return True
        if not isinstance(actor, int):
            return False
        return (self.orgs.is_admin(actor) or await self.is_secretary(actor, org_id, src)
                or await self.orgs.has_role_at_or_above(actor, org_id, [Role.organizer], src))  # type: ignore[arg-type]

    async def may_set_rules(self, actor: Actor, org_id: int, src: Tx | Database | None = None) -> bool:
        """Organisers at or above the org (and the operator); a branch's secretary never sets its own rules."""
        if not isinstance(actor, int):
            return False
        return self.orgs.is_admin(actor) or await self.orgs.has_role_at_or_above(
            actor, org_id, [Role.organizer], src)  # type: ignore[arg-type]

    async def member_orgs(self, person: Actor) -> list[tuple[int, str]]:
        """(org id, name) where the person is a party member or secretary: whose points they earn."""
        if not isinstance(person, int):
            return []
        rows = await self.db.fetchall(
            "SELECT DISTINCT o.id, o.name FROM roles r JOIN orgs o ON o.id = r.org_id WHERE r.person_id = ?"
            " AND r.role IN ('member', 'secretary') ORDER BY o.id", (person,))
        return [(r[0], r[1]) for r in rows]

    async def secretary_orgs(self, person: Actor) -> list[tuple[int, str]]:
        if not isinstance(person, int):
            return []
        rows = await self.db.fetchall(
            "SELECT o.id, o.name FROM roles r JOIN orgs o ON o.id = r.org_id WHERE r.person_id = ?"
            " AND r.role = 'secretary' ORDER BY o.id", (person,))
        return [(r[0], r[1]) for r in rows]

    async def supervised_orgs(self, person: Actor, limit: int) -> list[tuple[int, str]]:
        """(org id, name) of the orgs with members in the person's organiser subtrees, in id order."""
        if not isinstance(person, int):
            return []
        rows = await self.db.fetchall(
            "WITH RECURSIVE down(id) AS (SELECT org_id FROM roles WHERE person_id = ? AND role = 'organizer'"
            " UNION SELECT o.id FROM orgs o JOIN down ON o.parent_id = down.id)"
            " SELECT o.id, o.name FROM orgs o WHERE o.id IN (SELECT id FROM down) AND EXISTS (SELECT 1 FROM roles r"
            " WHERE r.org_id = o.id AND r.role IN ('member', 'secretary')) ORDER BY o.id LIMIT ?", (person, limit))
        return [(r[0], r[1]) for r in rows]

    async def members(self, src: Tx | Database, org_id: int) -> list[int]:
        rows = await src.fetchall("SELECT DISTINCT person_id FROM roles WHERE org_id = ? AND role IN"
                                  " ('member', 'secretary') ORDER BY person_id", (org_id,))
        return [r[0] for r in rows]

    # --- rules ------------------------------------------------------------------------------
    async def rules(self, org_id: int, src: Tx | Database | None = None) -> Rules:
        """The org's own rules, else its nearest ancestor's, else the defaults."""
        for org in await self.orgs.ancestors(org_id, src if isinstance(src, Tx) else None):  # nearest first
            text = await (src or self.db).fetchval("SELECT rules FROM point_rules WHERE org_id = ?", (org.id,))
            if text:
                data = json.loads(text)
                stars = tuple(int(x) for x in data.pop("stars", DEFAULT_STARS))
                return Rules({k: int(data.get(k, v)) for k, v in DEFAULT_RULES.items()}, stars)  # type: ignore[arg-type]
        return DEFAULTS

    async def set_rule(self, actor: Actor, org_id: int, key: str, value: int) -> Rules:
        """Set one rule (a RULE_KEYS key, or "stars2".."stars5" for a threshold) for the org and the
        orgs below that have none of their own."""
        async with self.db.transaction() as tx:
            if await self.orgs.get(org_id) is None:
                raise NotFound("org")
            if not await self.may_set_rules(actor, org_id, tx):
                raise NotAllowed("rules")
            rules = await self.rules(org_id, tx)
            points, stars = dict(rules.points), list(rules.stars)
            if key in DEFAULT_RULES:
                if not 0 <= value <= MAX_RULE:
                    raise Refused("points.refused.bad_rule", high=MAX_RULE)
                points[key] = value
            elif key in ("stars2", "stars3", "stars4", "stars5"):
                stars[int(key[-1]) - 2] = value
                if not (0 < stars[0] < stars[1] < stars[2] < stars[3] <= MAX_THRESHOLD):
                    raise Refused("points.refused.bad_thresholds")
            else:
                raise ValueError(key)
            new = Rules(points, tuple(stars))  # type: ignore[arg-type]
            await tx.execute(
                "INSERT INTO point_rules (org_id, rules, updated_by, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(org_id) DO UPDATE SET rules = excluded.rules, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at", (org_id, new.to_json(), actor, to_db(self.clock.now())))
        return new

    # --- counting ---------------------------------------------------------------------------
    async def tally(self, src: Tx | Database, people: Sequence[int], first: datetime, last: datetime,
                    rules: Rules) -> dict[int, Tally]:
        """Each person's points from the records of [first, last)."""
        out = {p: Tally() for p in people}
        if not people:
            return out
        for source, rows in (await self._counts(src, list(people), to_db(first), to_db(min(last, self.clock.now()))
                                                )).items():
            for person, n in rows:
                if person in out and n:
                    out[person].add(source, n, n * rules.points.get(source, 0))
        rows = await src.fetchall(
            f"SELECT person_id, COUNT(*), SUM(delta) FROM point_adjustments WHERE person_id IN ({_marks(people)})"
            " AND at >= ? AND at < ? GROUP BY person_id", (*people, to_db(first), to_db(last)))
        for person, n, total in rows:
            out[person].add(Source.ADJUST, int(n), int(total))
        return out

    async def _counts(self, src: Tx | Database, people: list[int], first: str,
                      last: str) -> dict[str, list[tuple[int, int]]]:
        """Long because each source is one query over its own tables: (person, events) per source."""
        marks = _marks(people)
        out: dict[str, list[tuple[int, int]]] = {}
        # A meeting attended: the secretary's mark wins over the check-in (as in the roster and ledger).
        rows = await src.fetchall(
            "SELECT a.person_id, m.kind = 'theme_day', COUNT(*) FROM meeting_attendees a"
            " JOIN meetings m ON m.id = a.meeting_id WHERE m.status != 'cancelled' AND m.starts_at >= ?"
            " AND m.starts_at < ? AND (a.presence = 'present' OR (a.presence IS NULL AND a.checked_in_at IS NOT NULL))"
            f" AND a.person_id IN ({marks}) GROUP BY a.person_id, m.kind = 'theme_day'", (first, last, *people))
        out[Source.MEETING] = [(r[0], r[2]) for r in rows if not r[1]]
        out[Source.THEME_DAY] = [(r[0], r[2]) for r in rows if r[1]]
        # A deliberation round taken part in, counted in the month it closed: an opinion, or a ballot.
        # Only the voter list is read (never the choices); a round is counted once per person.
        rows = await src.fetchall(
            "SELECT person_id, COUNT(DISTINCT round_id) FROM ("
            " SELECT o.author_id AS person_id, r.id AS round_id FROM delib_opinions o JOIN delib_rounds r"
            " ON r.id = o.round_id WHERE r.status = 'closed' AND r.ended_at >= ? AND r.ended_at < ?"
            " UNION SELECT v.person_id, r.id FROM ballot_voters v JOIN delib_rounds r ON v.box = 'delib:' || r.id"
            " WHERE r.status = 'closed' AND r.ended_at >= ? AND r.ended_at < ?)"
            f" WHERE person_id IN ({marks}) GROUP BY person_id", (first, last, first, last, *people))
        out[Source.DELIBERATION] = [(r[0], r[1]) for r in rows]
        rows = await src.fetchall(
            "SELECT person_id, COUNT(*) FROM pledge_reports WHERE status = 'confirmed' AND decided_at >= ?"
            f" AND decided_at < ? AND person_id IN ({marks}) GROUP BY person_id", (first, last, *people))
        out[Source.PLEDGE] = [(r[0], r[1]) for r in rows]
        # A problem answered in time and rated 满意 or 基本满意, to whoever gave the (last) answer,
        # if they are a secretary.
        rows = await src.fetchall(
            "SELECT e.actor_id, COUNT(*) FROM tickets t JOIN ticket_events e ON e.id = (SELECT MAX(id) FROM"
            " ticket_events WHERE ticket_id = t.id AND action IN ('answered', 'resolved'))"
            f" WHERE t.answered_at >= ? AND t.answered_at < ? AND t.answered_at <= t.answer_due"
            f" AND t.rating IN ({_marks(SATISFIED)}) AND e.actor_id IN ({marks})"
            " AND EXISTS (SELECT 1 FROM roles WHERE person_id = e.actor_id AND role = 'secretary')"
            " GROUP BY e.actor_id", (first, last, *SATISFIED, *people))
        out[Source.TICKET] = [(r[0], r[1]) for r in rows]
        return out

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()

    async def home_org(self, person: Actor) -> tuple[int, str]:
        orgs = await self.member_orgs(person)
        if not orgs:
            raise Refused("points.refused.no_org")
        return orgs[0]

    async def mine(self, actor: Actor) -> tuple[str, Tally, Tally]:
        """The person's own points: (org name, this month, this year), by their branch's rules."""
        org_id, org_name = await self.home_org(actor)
        assert isinstance(actor, int)
        rules = await self.rules(org_id)
        today = self.today()
        month = (await self.tally(self.db, [actor], *month_bounds(self.tz, today), rules))[actor]
        year = (await self.tally(self.db, [actor], *year_bounds(self.tz, today.year), rules))[actor]
        return org_name, month, year

    async def table(self, actor: Actor, org_id: int) -> list[Line]:
        """The branch's members with this month's and this year's points, highest this year first."""
        if not await self._may_read(self.db, actor, org_id):
            raise NotAllowed("table")
        rules = await self.rules(org_id)
        people = await self.members(self.db, org_id)
        today = self.today()
        month = await self.tally(self.db, people, *month_bounds(self.tz, today), rules)
        year = await self.tally(self.db, people, *year_bounds(self.tz, today.year), rules)
        lines = [Line(p, await self.people.display_name(p), month[p], year[p]) for p in people]
        return sorted(lines, key=lambda x: (-x.year.total, x.name, x.person_id))

    async def person(self, actor: Actor, org_id: int, person_id: int) -> Line:
        for line in await self.table(actor, org_id):
            if line.person_id == person_id:
                return line
        raise NotFound("person")

    # --- adjustments ------------------------------------------------------------------------
    async def adjust(self, actor: Actor, org_id: int, person_id: int, delta: int, reason: str) -> int:
        """A secretary adds or deducts points for a member of their branch (never their own), with a
        reason; the member is told. Returns the adjustment's id."""
        reason = reason.strip()
        if not reason:
            raise Refused("points.refused.empty_reason")
        if len(reason) > MAX_REASON:
            raise Refused("points.refused.too_long", limit=MAX_REASON)
        if delta == 0 or abs(delta) > MAX_DELTA:
            raise Refused("points.refused.bad_delta", limit=MAX_DELTA)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            if not await self.is_secretary(actor, org_id, tx):
                raise NotAllowed("adjust")
            if person_id not in await self.members(tx, org_id):
                raise NotFound("person")
            if person_id == actor:
                raise Refused("points.refused.self")
            adj_id = await tx.insert(
                "INSERT INTO point_adjustments (org_id, person_id, delta, reason, by_id, at) VALUES (?, ?, ?, ?, ?, ?)",
                (org_id, person_id, delta, reason, actor, to_db(now)))
            lang = await self.people.language(person_id, tx)
            org = await self.orgs.get(org_id)
            key = "points.notice.added" if delta > 0 else "points.notice.deducted"
            await self.outbox.send_text(tx, key=f"pn:adj:{adj_id}", chat_id=person_id,
                                        text=self.t(lang, key, n=abs(delta), reason=reason,
                                                    org=org.name if org else ""),
                                        purpose=Purpose.ADJUST, subject_id=adj_id)
        return adj_id

    # --- monthly statements -----------------------------------------------------------------
    def statement_due(self, now: datetime) -> date | None:
        """The first day of the month a statement is due for now, or None: from 09:00 on the 1st,
        caught up on the 2nd and 3rd after downtime, never later (a bot started mid-month sends none)."""
        local = now.astimezone(self.tz)
        if local.day > STATEMENT_CATCH_UP_DAYS or (local.day == 1 and local.hour < STATEMENT_DAY_HOUR):
            return None
        last = local.date().replace(day=1) - timedelta(days=1)
        return last.replace(day=1)

    async def send_statements(self, actor: Actor) -> int:
        """The monthly statement to every member, once per person and month (the outbox key is the
        claim; the run row only saves work once all are queued). Returns how many were queued."""
        if not isinstance(actor, SystemActor):
            raise NotAllowed("statements")
        now = self.clock.now()
        month = self.statement_due(now)
        if month is None:
            return 0
        tag = f"{month:%Y-%m}"
        if await self.db.fetchval("SELECT 1 FROM point_statement_runs WHERE month = ?", (tag,)):
            return 0
        sent = 0
        done: set[int] = set()
        for (org_id,) in await self.db.fetchall(
                "SELECT DISTINCT org_id FROM roles WHERE role IN ('member', 'secretary') ORDER BY org_id"):
            sent += await self._statements_for(org_id, month, tag, done, now)
        async with self.db.transaction() as tx:
            await tx.execute("INSERT OR IGNORE INTO point_statement_runs (month, done_at) VALUES (?, ?)",
                             (tag, to_db(now)))
        return sent

    async def _statements_for(self, org_id: int, month: date, tag: str, done: set[int], now: datetime) -> int:
        org = await self.orgs.get(org_id)
        if org is None:
            return 0
        rules = await self.rules(org_id)
        people = [p for p in await self.members(self.db, org_id) if p not in done]
        done.update(people)
        first, last = month_bounds(self.tz, month)
        tallies = await self.tally(self.db, people, first, last, rules)
        years = await self.tally(self.db, people, year_bounds(self.tz, month.year)[0], last, rules)
        sent = 0
        async with self.db.transaction() as tx:
            for person in people:
                lang = await self.people.language(person, tx)
                text = self.t(lang, "points.statement", month=self.fmt.month(lang, month), org=org.name,
                              total=tallies[person].total, sources=self.sources_text(lang, tallies[person]),
                              year=month.year, year_total=years[person].total)
                sent += await self.outbox.send_text(
                    tx, key=f"pn:st:{person}:{tag}", chat_id=person, text=text, not_before=after_quiet(now, self.tz),
                    purpose=Purpose.STATEMENT, subject_id=org_id, priority=Priority.BULK)
        return sent

    def sources_text(self, lang: str, tally: Tally) -> str:
        """One line per source that counted: 参加会议 3次，+6分."""
        lines = [self.t(lang, SOURCE_KEYS[source], n=tally.counts[source], points=tally.points[source])
                 for source in (*RULE_KEYS, Source.ADJUST) if tally.counts.get(source)]
        return "\n".join(lines) or self.t(lang, "points.source.none")

    # --- star rating (评星定级) --------------------------------------------------------------
    async def star_preview(self, actor: Actor, org_id: int, year: int) -> list[tuple[int, str, int, int]]:
        """(person, name, the year's points, proposed stars) for the branch's secretary."""
        if not await self.is_secretary(actor, org_id):
            raise NotAllowed("stars")
        if not self.today().year - 1 <= year <= self.today().year:
            raise Refused("points.refused.bad_year")
        rules = await self.rules(org_id)
        people = await self.members(self.db, org_id)
        tallies = await self.tally(self.db, people, *year_bounds(self.tz, year), rules)
        out = [(p, await self.people.display_name(p), tallies[p].total, rules.stars_for(tallies[p].total))
               for p in people]
        return sorted(out, key=lambda x: (-x[2], x[1], x[0]))

    async def propose_stars(self, actor: Actor, org_id: int, year: int) -> Proposal:
        """Open the members' vote on the year's proposed stars (a deliberation round)."""
        preview = await self.star_preview(actor, org_id, year)
        if not preview:
            raise Refused("points.refused.no_members")
        if await self.db.fetchval("SELECT 1 FROM star_proposals WHERE org_id = ? AND year = ? AND status IN"
                                  " ('voting', 'confirmed')", (org_id, year)):
            raise Refused("points.refused.stars_exist", year=year)
        lang = self.core.settings.locale  # the round is the branch's: in its language
        lines = "\n".join(self.t(lang, "points.stars.line", name=name, points=pts, stars="★" * stars)
                          for _, name, pts, stars in preview)
        now = self.clock.now()
        rnd = await self.deliberation.open(actor, RoundSpec(
            org_id=org_id, title=self.t(lang, "points.stars.title", year=year), audience=Audience.MEMBERS,
            opinions_until=now + OPINIONS_FOR, votes_until=now + OPINIONS_FOR + VOTES_FOR,
            background=clip(self.t(lang, "points.stars.background", year=year, lines=lines), BACKGROUND_ROOM),
            options=(self.t(lang, "points.stars.agree"), self.t(lang, "points.stars.disagree")), secret=True))
        try:
            async with self.db.transaction() as tx:
                proposal_id = await tx.insert(
                    "INSERT INTO star_proposals (org_id, year, round_id, proposed_by, proposed_at)"
                    " VALUES (?, ?, ?, ?, ?)", (org_id, year, rnd.id, actor, to_db(now)))
                await tx.executemany(
                    "INSERT INTO star_ratings (proposal_id, person_id, points, stars) VALUES (?, ?, ?, ?)",
                    [(proposal_id, p, pts, stars) for p, _, pts, stars in preview])
        except sqlite3.IntegrityError:
            # Another proposal of the same year got in between: this round is withdrawn at once.
            await self.deliberation.cancel(actor, rnd.id, self.t(lang, "points.stars.duplicate"))
            raise Refused("points.refused.stars_exist", year=year) from None
        return await self._proposal(self.db, proposal_id)

    async def _proposal(self, src: Tx | Database, proposal_id: int) -> Proposal:
        row = await src.fetchone("SELECT * FROM star_proposals WHERE id = ?", (proposal_id,))
        if row is None:
            raise NotFound("proposal")
        ratings = await src.fetchall("SELECT person_id, points, stars FROM star_ratings WHERE proposal_id = ?"
                                     " ORDER BY points DESC, person_id", (proposal_id,))
        return Proposal(id=row["id"], org_id=row["org_id"], year=row["year"], round_id=row["round_id"],
                        status=row["status"], decided_at=from_db(row["decided_at"]) if row["decided_at"] else None,
                        yes=row["yes"], no=row["no"],
                        ratings=[(r[0], await self.people.display_name(r[0]), r[1], r[2]) for r in ratings])

    async def proposals(self, actor: Actor, org_id: int, years: Iterable[int] | None = None) -> list[Proposal]:
        if not await self._may_read(self.db, actor, org_id):
            raise NotAllowed("stars")
        rows = await self.db.fetchall("SELECT id, year FROM star_proposals WHERE org_id = ? ORDER BY year, id",
                                      (org_id,))
        wanted = set(years) if years is not None else None
        return [await self._proposal(self.db, r[0]) for r in rows if wanted is None or r[1] in wanted]

    async def settle_stars(self, actor: Actor) -> int:
        """Fix each proposal whose round has ended: 同意 more than 不同意 confirms it (once: the
        status is the claim). The proposer is told, and on confirmation each member their stars."""
        if not isinstance(actor, SystemActor):
            raise NotAllowed("settle")
        rows = await self.db.fetchall(
            "SELECT p.id, r.status, r.result FROM star_proposals p JOIN delib_rounds r ON r.id = p.round_id"
            " WHERE p.status = 'voting' AND r.status != 'open' ORDER BY p.id")
        done = 0
        for proposal_id, round_status, result in rows:
            options = json.loads(result)["options"] if result else []
            yes, no = (int(options[0][1]), int(options[1][1])) if len(options) >= 2 else (0, 0)
            status = "cancelled" if round_status == "cancelled" else "confirmed" if yes > no else "rejected"
            async with self.db.transaction() as tx:
                cur = await tx.execute(
                    "UPDATE star_proposals SET status = ?, decided_at = ?, yes = ?, no = ? WHERE id = ?"
                    " AND status = 'voting'", (status, to_db(self.clock.now()), yes, no, proposal_id))
                if cur.rowcount:
                    done += 1
                    await self._tell_stars(tx, await self._proposal(tx, proposal_id), yes, no)
        return done

    async def _tell_stars(self, tx: Tx, proposal: Proposal, yes: int, no: int) -> None:
        proposer = await tx.fetchval("SELECT proposed_by FROM star_proposals WHERE id = ?", (proposal.id,))
        at = after_quiet(self.clock.now(), self.tz)
        lang = await self.people.language(proposer, tx)
        await self.outbox.send_text(
            tx, key=f"pn:sr:{proposal.id}:p", chat_id=proposer, not_before=at, purpose=Purpose.STARS,
            subject_id=proposal.id, text=self.t(lang, OUTCOME_KEYS[proposal.status], year=proposal.year,
                                                yes=yes, no=no))
        if proposal.status != "confirmed":
            return
        for person, _, points, stars in proposal.ratings:
            lang = await self.people.language(person, tx)
            await self.outbox.send_text(
                tx, key=f"pn:sr:{proposal.id}:{person}", chat_id=person, not_before=at, purpose=Purpose.STARS,
                subject_id=proposal.id, priority=Priority.BULK,
                text=self.t(lang, "points.stars.yours", year=proposal.year, points=points, stars="★" * stars))

    # --- the ledger -------------------------------------------------------------------------
    async def ledger_points(self, actor: Actor, org_id: int, first: date, last: date) -> LedgerPoints:
        """The points of the period (first..last, local days) per member, the adjustments made in
        it, and the star ratings of its years."""
        if not await self._may_read(self.db, actor, org_id):
            raise NotAllowed("ledger")
        org = await self.orgs.get(org_id)
        if org is None:
            raise NotFound("org")
        rules = await self.rules(org_id)
        start = datetime.combine(first, time(0), self.tz)
        end = datetime.combine(last + timedelta(days=1), time(0), self.tz)
        people = await self.members(self.db, org_id)
        tallies = await self.tally(self.db, people, start, end, rules)
        table = sorted([(await self.people.display_name(p), tallies[p]) for p in people],
                       key=lambda x: (-x[1].total, x[0]))
        rows = await self.db.fetchall(
            "SELECT at, person_id, delta, reason, by_id FROM point_adjustments WHERE org_id = ? AND at >= ?"
            " AND at < ? ORDER BY at, id", (org_id, to_db(start), to_db(end)))
        adjustments = [Adjustment(from_db(r[0]), await self.people.display_name(r[1]), r[2], r[3],
                                  await self.people.display_name(r[4])) for r in rows]
        proposals = await self.proposals(SYSTEM_ACTOR, org_id, range(first.year, last.year + 1))
        return LedgerPoints(org.name, rules, table, adjustments, proposals)
