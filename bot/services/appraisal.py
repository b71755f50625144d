"""The secretary's annual report and appraisal (书记双述双评).

An organiser opens an appraisal for a year (2026年度) for the secretaries of the orgs below them
(all, or those picked), with a window. Each secretary is told, and posts a report (述职: text, voice
or document). The report may be replaced until the first rating of it is cast: after that, everyone
rates the same report. When a report is first posted, the org's members and residents (the raters;
there is no "resident representative" role in the org model, so every resident counts) are told
and, a day before the close, reminded if they have not rated.

A rating is 满意 / 基本满意 / 不满意, one each, in a secret ballot box (bot/services/ballot_box.py,
box "appraisal:<target id>"): "has rated" is stored apart from the counts, so a rating can't be
changed and no row links a rater to a choice. Right after rating, the rater may add one comment:
the comment slot is the rater's flow state (COMMENT_FLOW, cleared when the comment is stored), and the
comment is stored masked, with no person, no time and no rowid, under a random key (see the
migration), so neither its row nor the table's order says whose it is or when it came. A secretary
does not rate themselves. The notice that asks a secretary for the report (it says they may just type
it) opens a question (REPORT_QUESTION, bot/services/prompts.py), so their next message is the report.

At the close (the periodic job; exactly once, restart-safe: the status is the claim) the result is
fixed: counts, satisfaction rate ((满意 + 基本满意) / rated), turnout (rated / raters at the close),
and the comments. The organiser gets every result with the comments and a button to publish; each
secretary gets their own. Publishing sends the counts (not the comments) to the org's wall chat and
to its members and residents.

Every method takes the acting person (or SYSTEM_ACTOR for the job) and checks the right from the
database at that moment; everything sent to someone else is an outbox row in the same transaction."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

from bot.actors import Actor, SystemActor, is_system
from bot.callbacks import SA_ACT, SA_VIEW, SaAction, SaView
from bot.clock import from_db, to_db
from bot.database import Database, Tx
from bot.infra import Infra
from bot.limits import MAX_TEXT, clip
from bot.outbox import Button, Priority
from bot.services.ballot_box import AlreadyVoted, BallotBox
from bot.services.masking import mask_public
from bot.services.meeting_time import after_quiet, before_quiet
from bot.services.orgs import NotAllowed, NotFound, Refused, Role
from bot.services.prompts import Question, QuestionKind

log = logging.getLogger(__name__)

# Flow names (handlers/appraisal.py), one per step kind so that a chooser can name each in plain words.
FLOW = "appraisal"                  # opening an appraisal
REPORT_FLOW = "appraisal_report"    # the secretary's report, after 交述职报告
COMMENT_FLOW = "appraisal_comment"  # the rater's comment, right after rating
REPORT_QUESTION = "appraisal/report"  # the opened notice: the secretary's next message is the report
MIN_DAYS, MAX_DAYS = 1, 30
MIN_YEAR, MAX_YEAR = 2000, 2100
MAX_REPORT = 3000
MAX_COMMENT = 500
REMIND_BEFORE = timedelta(days=1)
# A comment is taken only this soon after the rating: a message typed days later is something else
# (a problem for the wall, say), not a comment on the secretary.
COMMENT_WINDOW = timedelta(minutes=30)
REPORT_TYPED_FOR = timedelta(days=1)  # how long after the notice the secretary's next message is the report
RECENT_DAYS = 60
REPORT_ROOM = 1500          # of a report's text in a notice (the rest is a tap away)
RESULT_ROOM = MAX_TEXT - 300  # a result inside a message that says what it is
RATERS = ("member", "resident")


class Rating(IntEnum):
    """A ballot's choice in the box (the numbers are what ballot_tallies stores)."""

    SATISFIED = 0           # 满意
    BASICALLY = 1           # 基本满意
    UNSATISFIED = 2         # 不满意


RATING_KEYS = {Rating.SATISFIED: "appraisal.rating.satisfied", Rating.BASICALLY: "appraisal.rating.basically",
               Rating.UNSATISFIED: "appraisal.rating.unsatisfied"}


class Purpose(StrEnum):
    OPENED = "appraisal/opened"
    REPORT_REMINDER = "appraisal/report_reminder"
    REPORT = "appraisal/report"
    REMINDER = "appraisal/reminder"
    RESULT = "appraisal/result"
    OWN_RESULT = "appraisal/own_result"
    PUBLISHED = "appraisal/published"
    WALL = "appraisal/wall"


@dataclass(frozen=True)
class Candidate:
    """A secretary the organiser may appraise."""

    org_id: int
    org_name: str
    person_id: int
    name: str
    scope_org_id: int       # the organiser's org above it


@dataclass(frozen=True)
class Appraisal:
    id: int
    scope_org_id: int
    year: int
    opened_by: int
    opened_at: datetime
    closes_at: datetime
    status: str
    published_at: datetime | None

    def is_open(self, now: datetime) -> bool:
        return self.status == "open" and now < self.closes_at

    @classmethod
    def from_row(cls, r: Any) -> Appraisal:
        return cls(id=r["id"], scope_org_id=r["scope_org_id"], year=r["year"], opened_by=r["opened_by"],
                   opened_at=from_db(r["opened_at"]), closes_at=from_db(r["closes_at"]), status=r["status"],
                   published_at=from_db(r["published_at"]) if r["published_at"] else None)


@dataclass(frozen=True)
class Target:
    """One secretary in one appraisal, with their report."""

    id: int
    appraisal: Appraisal
    org_id: int
    org_name: str
    secretary_id: int
    secretary_name: str
    report_kind: str | None
    report_text: str
    report_chat_id: int | None
    report_message_id: int | None
    result: dict[str, Any] | None

    @property
    def box(self) -> BallotBox:
        return BallotBox(f"appraisal:{self.id}", secret=True)


@dataclass(frozen=True)
class Progress:
    """What the organiser sees while the appraisal runs: never what anyone chose."""

    target: Target
    rated: int
    eligible: int


@dataclass(frozen=True)
class Result:
    target: Target
    counts: tuple[int, int, int]   # 满意, 基本满意, 不满意
    rated: int
    eligible: int
    comments: list[str]            # masked, in the random order of their keys

    @property
    def satisfaction(self) -> int | None:
        """(满意 + 基本满意) / rated, in whole percent; None when nobody rated."""
        return round(100 * (self.counts[0] + self.counts[1]) / self.rated) if self.rated else None

    @property
    def turnout(self) -> int | None:
        return round(100 * self.rated / self.eligible) if self.eligible else None


@dataclass(frozen=True)
class Overview:
    """/appraisal for one person: what they lead, their own reports, what they may rate."""

    led: list[Appraisal]
    own: list[Target]
    to_rate: list[tuple[Target, bool]]   # (target, rated already)
    may_open: bool


def _person(actor: Actor) -> int:
    return 0 if isinstance(actor, SystemActor) else actor


APPRAISAL_SQL = "SELECT * FROM appraisals"
TARGET_SQL = ("SELECT t.*, o.name AS org_name FROM appraisal_targets t JOIN orgs o ON o.id = t.org_id")
DOWN = ("WITH RECURSIVE down(id) AS (SELECT CAST(? AS BIGINT)"
        " UNION ALL SELECT o.id FROM orgs o JOIN down ON o.parent_id = down.id)")


class AppraisalService:
    def __init__(self, core: Infra) -> None:
        self.core = core
        self.db: Database = core.db
        self.clock = core.clock
        self.t = core.t
        self.fmt = core.formatter
        self.outbox = core.outbox
        self.orgs = core.orgs
        self.people = core.people
        self.flows = core.flows
        self.prompts = core.prompts
        self.tz = core.settings.tz
        self.prompts.register(QuestionKind(REPORT_QUESTION, self._describe_report, media=True))

    async def _ask_reports(self, now: datetime) -> None:
        """The report questions of notices held back by quiet hours, once the notices are out (each
        once: a question asked before, answered or not, is never asked again)."""
        rows = await self.db.fetchall(
            "SELECT t.id, t.secretary_id, a.opened_at, a.closes_at FROM appraisal_targets t"
            " JOIN appraisals a ON a.id = t.appraisal_id WHERE a.status = 'open' AND a.closes_at > ?"
            " AND t.report_kind IS NULL AND NOT EXISTS (SELECT 1 FROM open_questions q WHERE q.kind = ?"
            " AND q.subject_id = t.id AND q.person_id = t.secretary_id)", (to_db(now), REPORT_QUESTION))
        for row in rows:
            if after_quiet(from_db(row["opened_at"]), self.tz) <= now:
                async with self.db.transaction() as tx:
                    await self.prompts.ask(tx, row["secretary_id"], REPORT_QUESTION, row["id"],
                                           lasts=min(REPORT_TYPED_FOR, from_db(row["closes_at"]) - now))

    async def _describe_report(self, lang: str, question: Question) -> str | None:
        """"交2026年度述职报告"; None once the report is in, fixed, or the window has closed."""
        try:
            target = await self._reporting(self.db, question.person_id, question.subject_id)
        except (Refused, NotAllowed, NotFound):
            return None
        if target.report_kind is not None:
            return None
        return self.t(lang, "appraisal.question.report", year=target.appraisal.year)

    # --- reading ----------------------------------------------------------------------------
    async def _appraisal(self, src: Tx | Database, appraisal_id: int) -> Appraisal:
        row = await src.fetchone(f"{APPRAISAL_SQL} WHERE id = ?", (appraisal_id,))
        if row is None:
            raise NotFound("appraisal")
        return Appraisal.from_row(row)

    async def _target_of(self, src: Tx | Database, row: Any, appraisal: Appraisal | None = None) -> Target:
        appraisal = appraisal or await self._appraisal(src, row["appraisal_id"])
        return Target(id=row["id"], appraisal=appraisal, org_id=row["org_id"], org_name=row["org_name"],
                      secretary_id=row["secretary_id"],
                      secretary_name=await self.people.display_name(row["secretary_id"]),
                      report_kind=row["report_kind"], report_text=row["report_text"],
                      report_chat_id=row["report_chat_id"], report_message_id=row["report_message_id"],
                      result=json.loads(row["result"]) if row["result"] else None)

    async def _target(self, src: Tx | Database, target_id: int) -> Target:
        row = await src.fetchone(f"{TARGET_SQL} WHERE t.id = ?", (target_id,))
        if row is None:
            raise NotFound("target")
        return await self._target_of(src, row)

    async def _targets(self, src: Tx | Database, appraisal: Appraisal) -> list[Target]:
        rows = await src.fetchall(f"{TARGET_SQL} WHERE t.appraisal_id = ? ORDER BY t.id", (appraisal.id,))
        return [await self._target_of(src, r, appraisal) for r in rows]

    # --- rights -----------------------------------------------------------------------------
    async def _may_lead(self, src: Tx | Database, actor: Actor, appraisal: Appraisal) -> bool:
        """Organisers at or above the org the appraisal was opened from (the opener among them)."""
        if is_system(actor):
            return True
        return isinstance(actor, int) and await self.orgs.has_role_at_or_above(
            actor, appraisal.scope_org_id, [Role.organizer], src)  # type: ignore[arg-type]

    def _raters_sql(self) -> str:
        marks = ",".join("?" * len(RATERS))
        return f"{DOWN} SELECT DISTINCT person_id FROM roles WHERE org_id IN (SELECT id FROM down)" \
               f" AND role IN ({marks}) AND person_id != ?"

    async def _raters(self, src: Tx | Database, target: Target) -> list[int]:
        """The members and residents of the secretary's org and the orgs below it, but the secretary."""
        rows = await src.fetchall(self._raters_sql(), (target.org_id, *RATERS, target.secretary_id))
        return sorted(r[0] for r in rows)

    async def _is_rater(self, src: Tx | Database, actor: Actor, target: Target) -> bool:
        if not isinstance(actor, int) or is_system(actor):
            return False
        row = await src.fetchone(f"{self._raters_sql()} AND person_id = ? LIMIT 1",
                                 (target.org_id, *RATERS, target.secretary_id, actor))
        return row is not None

    async def _may_read(self, src: Tx | Database, actor: Actor, target: Target) -> bool:
        return (actor == target.secretary_id or await self._may_lead(src, actor, target.appraisal)
                or await self._is_rater(src, actor, target))

    async def _is_own_rater_self(self, src: Tx | Database, actor: Actor, target: Target) -> bool:
        """The secretary is a member of their own org: they are no rater of themselves."""
        row = await src.fetchone(f"{DOWN} SELECT 1 FROM roles WHERE org_id IN (SELECT id FROM down)"
                                 f" AND role IN ('member', 'resident') AND person_id = ? LIMIT 1",
                                 (target.org_id, actor))
        return actor == target.secretary_id and row is not None

    # --- opening ----------------------------------------------------------------------------
    async def _scopes(self, src: Tx | Database, actor: int) -> list[tuple[int, set[int]]]:
        """(organiser org, the orgs strictly below it) for each of the person's organiser orgs,
        nearest first (the smallest subtree)."""
        rows = await src.fetchall("SELECT org_id FROM roles WHERE person_id = ? AND role = 'organizer'"
                                  " ORDER BY org_id", (actor,))
        scopes = []
        for row in rows:
            below = {org.id for depth, org in await self.orgs.subtree(row[0]) if depth > 0}
            scopes.append((row[0], below))
        return sorted(scopes, key=lambda s: (len(s[1]), s[0]))

    async def candidates(self, actor: Actor, src: Tx | Database | None = None) -> list[Candidate]:
        """The secretaries of the orgs strictly below the person's organiser orgs, by org."""
        if not isinstance(actor, int) or is_system(actor):
            return []
        src = src or self.db
        scopes = await self._scopes(src, actor)
        below = sorted(set().union(*(orgs for _, orgs in scopes))) if scopes else []
        out = []
        for org_id in below:
            org = await self.orgs.get(org_id)
            scope = next(s for s, orgs in scopes if org_id in orgs)
            for row in await src.fetchall("SELECT person_id FROM roles WHERE org_id = ? AND role = 'secretary'"
                                          " ORDER BY person_id", (org_id,)):
                out.append(Candidate(org_id, org.name if org else "", row[0],
                                     await self.people.display_name(row[0]), scope))
        return out

    async def _scope(self, src: Tx | Database, actor: int, picked: Sequence[Candidate]) -> int:
        """The nearest of the person's organiser orgs above every picked secretary's org."""
        for scope, orgs in await self._scopes(src, actor):
            if all(c.org_id in orgs for c in picked):
                return scope
        raise Refused("appraisal.refused.mixed")

    async def open(self, actor: Actor, year: int, picked: Sequence[tuple[int, int]], days: int) -> Appraisal:
        """Open the appraisal for the picked (org, secretary) pairs; the window ends at 20:00 local,
        `days` days from today. Each secretary is told and reminded a day before the close."""
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise Refused("appraisal.refused.bad_year")
        if not MIN_DAYS <= days <= MAX_DAYS:
            raise Refused("appraisal.refused.bad_days", low=MIN_DAYS, high=MAX_DAYS)
        if not picked:
            raise Refused("appraisal.refused.none_picked")
        now = self.clock.now()
        local = now.astimezone(self.tz)
        closes = datetime.combine(local.date() + timedelta(days=days), datetime.min.time(),
                                  self.tz).replace(hour=20)
        async with self.db.transaction() as tx:
            known = await self.candidates(actor, tx)
            by_key = {(c.org_id, c.person_id): c for c in known}
            chosen = [by_key.get((org, person)) for org, person in dict.fromkeys(picked)]
            if not known or any(c is None for c in chosen):
                raise NotAllowed("open")
            targets = [c for c in chosen if c is not None]
            for c in targets:
                if await tx.fetchone(
                        "SELECT 1 FROM appraisal_targets t JOIN appraisals a ON a.id = t.appraisal_id"
                        " WHERE a.year = ? AND t.org_id = ? AND t.secretary_id = ?", (year, c.org_id, c.person_id)):
                    raise Refused("appraisal.refused.duplicate", name=c.name, org=c.org_name, year=year)
            appraisal_id = await tx.insert(
                "INSERT INTO appraisals (scope_org_id, year, opened_by, opened_at, closes_at) VALUES (?, ?, ?, ?, ?)",
                (await self._scope(tx, _person(actor), targets), year, _person(actor), to_db(now), to_db(closes)))
            await tx.executemany(
                "INSERT INTO appraisal_targets (appraisal_id, org_id, secretary_id) VALUES (?, ?, ?)",
                [(appraisal_id, c.org_id, c.person_id) for c in targets])
            appraisal = await self._appraisal(tx, appraisal_id)
            for target in await self._targets(tx, appraisal):
                await self._tell_secretary(tx, target, now)
        return appraisal

    async def _tell_secretary(self, tx: Tx, target: Target, now: datetime) -> None:
        a = target.appraisal
        lang = await self.people.language(target.secretary_id, tx)
        when = self.fmt.moment(lang, a.closes_at, now)
        buttons = [[Button(self.t(lang, "appraisal.button.post_report"), SA_ACT(SaAction.REPORT, target.id))]]
        await self.outbox.send_text(
            tx, key=f"sa:{a.id}:n:{target.id}", chat_id=target.secretary_id, buttons=buttons,
            text=self.t(lang, "appraisal.opened_notice", year=a.year, org=target.org_name, when=when),
            not_before=after_quiet(now, self.tz), purpose=Purpose.OPENED, subject_id=a.id)
        # The notice says "可以打字": whatever the secretary sends next (text, voice, file) is the report,
        # for a day (later, 交述职报告 is a tap away; an older question would put a chooser before every
        # message a busy secretary types in other flows, such as answering problems).
        # A notice held back by quiet hours opens its question when it goes out (`_ask_reports`):
        # what they type at night, before seeing it, is about something else.
        if after_quiet(now, self.tz) <= now:
            await self.prompts.ask(tx, target.secretary_id, REPORT_QUESTION, target.id,
                                   lasts=min(REPORT_TYPED_FOR, a.closes_at - now))
        remind = before_quiet(a.closes_at - REMIND_BEFORE, self.tz)
        if remind > now:
            await self.outbox.send_text(
                tx, key=f"sa:{a.id}:rs:{target.id}:", chat_id=target.secretary_id, buttons=buttons,
                text=self.t(lang, "appraisal.report_reminder", year=a.year, when=when), not_before=remind,
                purpose=Purpose.REPORT_REMINDER, subject_id=a.id)

    # --- overview and reading ---------------------------------------------------------------
    async def overview(self, actor: Actor) -> Overview:
        """What /appraisal shows the person."""
        if not isinstance(actor, int) or is_system(actor):
            return Overview([], [], [], False)
        since = to_db(self.clock.now() - timedelta(days=RECENT_DAYS))
        rows = await self.db.fetchall(f"{APPRAISAL_SQL} WHERE status = 'open' OR closed_at >= ?"
                                      " ORDER BY id DESC LIMIT 100", (since,))
        recent = [Appraisal.from_row(r) for r in rows]
        led = [a for a in recent if await self._may_lead(self.db, actor, a)][:10]
        own, to_rate = [], []
        now = self.clock.now()
        for a in recent:
            for target in await self._targets(self.db, a):
                if target.secretary_id == actor:
                    own.append(target)
                elif a.is_open(now) and target.report_kind and await self._is_rater(self.db, actor, target):
                    to_rate.append((target, await target.box.has_voted(self.db, actor)))
        return Overview(led, own[:10], to_rate[:20], bool(await self.candidates(actor)))

    async def appraisal(self, actor: Actor, appraisal_id: int) -> Appraisal:
        appraisal = await self._appraisal(self.db, appraisal_id)
        if not await self._may_lead(self.db, actor, appraisal):
            raise NotAllowed("appraisal")
        return appraisal

    async def progress(self, actor: Actor, appraisal_id: int) -> list[Progress]:
        """How many have rated each secretary, of how many may: never who chose what."""
        appraisal = await self.appraisal(actor, appraisal_id)
        out = []
        for target in await self._targets(self.db, appraisal):
            tally = await target.box.tally(self.db)
            out.append(Progress(target, tally.ballots, len(await self._raters(self.db, target))))
        return out

    async def target(self, actor: Actor, target_id: int) -> Target:
        """A secretary's report, for the raters, the secretary and those who lead the appraisal."""
        target = await self._target(self.db, target_id)
        if not await self._may_read(self.db, actor, target):
            raise NotAllowed("target")
        return target

    async def rating_state(self, actor: Actor, target_id: int) -> tuple[bool, bool]:
        """(may rate it now, has rated it) for which buttons to show; rating checks again."""
        target = await self._target(self.db, target_id)
        may = (await self._is_rater(self.db, actor, target) and target.appraisal.is_open(self.clock.now())
               and target.report_kind is not None)
        voted = isinstance(actor, int) and not is_system(actor) and await target.box.has_voted(self.db, actor)
        return may and not voted, bool(voted)

    # --- the report ---------------------------------------------------------------------------
    async def _reporting(self, src: Tx | Database, actor: Actor, target_id: int) -> Target:
        target = await self._target(src, target_id)
        if actor != target.secretary_id or not await src.fetchone(
                "SELECT 1 FROM roles WHERE person_id = ? AND org_id = ? AND role = 'secretary'",
                (target.secretary_id, target.org_id)):
            raise NotAllowed("report")
        if not target.appraisal.is_open(self.clock.now()):
            raise Refused("appraisal.refused.closed")
        if (await target.box.tally(src)).ballots:
            raise Refused("appraisal.refused.report_fixed")
        return target

    async def check_report(self, actor: Actor, target_id: int) -> Target:
        """Before the chat asks for the report: the same checks as `post_report`."""
        return await self._reporting(self.db, actor, target_id)

    async def post_report(self, actor: Actor, target_id: int, kind: str, text: str,
                          message: tuple[int, int] | None = None) -> bool:
        """Post (or, until the first rating, replace) the report: text, or a voice note or document
        (chat id, message id) with optional words. True for the first posting, which tells the raters."""
        text = text.strip()
        if kind not in ("text", "voice", "document") or (kind == "text") != (message is None):
            raise ValueError(kind)
        if kind == "text" and not text:
            raise Refused("appraisal.refused.empty_report")
        if len(text) > MAX_REPORT:
            raise Refused("appraisal.refused.too_long", limit=MAX_REPORT)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            target = await self._reporting(tx, actor, target_id)
            first = target.report_kind is None
            await tx.execute(
                "UPDATE appraisal_targets SET report_kind = ?, report_text = ?, report_chat_id = ?,"
                " report_message_id = ?, report_at = ? WHERE id = ?",
                (kind, text, message[0] if message else None, message[1] if message else None, to_db(now), target.id))
            await self.prompts.close_about(tx, [REPORT_QUESTION], target.id, why="answered")
            if first:
                await self.outbox.cancel(tx, key_prefix=f"sa:{target.appraisal.id}:rs:{target.id}:")
                await self._tell_raters(tx, await self._target(tx, target.id), now)
        return first

    async def _tell_raters(self, tx: Tx, target: Target, now: datetime) -> None:
        """The report's notice to every rater (after quiet hours, in bulk) and the reminder a day
        before the close, cancelled when they rate."""
        a = target.appraisal
        remind = before_quiet(a.closes_at - REMIND_BEFORE, self.tz)
        for pid in await self._raters(tx, target):
            lang = await self.people.language(pid, tx)
            when = self.fmt.moment(lang, a.closes_at, now)
            buttons = [[Button(self.t(lang, "appraisal.button.read_and_rate"), SA_VIEW(SaView.TARGET, target.id))]]
            text = self.t(lang, "appraisal.report_notice", year=a.year, org=target.org_name,
                          name=target.secretary_name, when=when, report=self.report_excerpt(lang, target))
            await self.outbox.send_text(tx, key=f"sa:{a.id}:t:{target.id}:{pid}", chat_id=pid, text=text,
                                        buttons=buttons, not_before=after_quiet(now, self.tz),
                                        purpose=Purpose.REPORT, subject_id=a.id, priority=Priority.BULK)
            if remind > now:
                await self.outbox.send_text(
                    tx, key=f"sa:{a.id}:rr:{target.id}:{pid}:", chat_id=pid, buttons=buttons, not_before=remind,
                    text=self.t(lang, "appraisal.rate_reminder", name=target.secretary_name, org=target.org_name,
                                when=when), purpose=Purpose.REMINDER, subject_id=a.id, priority=Priority.BULK)

    def report_excerpt(self, lang: str, target: Target, room: int = REPORT_ROOM) -> str:
        """The report's words as a notice or card shows them (a voice note or document is a tap away)."""
        words = clip(target.report_text, room, self.t(lang, "appraisal.clipped")) if target.report_text else ""
        if target.report_kind == "voice":
            return self.t(lang, "appraisal.report_voice", text=words).strip()
        if target.report_kind == "document":
            return self.t(lang, "appraisal.report_document", text=words).strip()
        return words

    # --- rating -------------------------------------------------------------------------------
    async def rate(self, actor: Actor, target_id: int, rating: int) -> None:
        """A secret rating, once, while the window is open and the report is there. Opens the rater's
        comment slot (their flow), which `comment` uses once."""
        if rating not in tuple(Rating):
            raise Refused("appraisal.refused.bad_choice")
        async with self.db.transaction() as tx:
            target = await self._target(tx, target_id)
            if isinstance(actor, int) and await self._is_own_rater_self(tx, actor, target):
                raise Refused("appraisal.refused.own")
            if not await self._is_rater(tx, actor, target):
                raise NotAllowed("rate")
            if not target.appraisal.is_open(self.clock.now()):
                raise Refused("appraisal.refused.closed")
            if target.report_kind is None:
                raise Refused("appraisal.refused.no_report")
            assert isinstance(actor, int)
            try:
                await target.box.cast(tx, actor, [int(rating)])
            except AlreadyVoted:
                raise Refused("appraisal.refused.rated") from None
            await self.outbox.cancel(tx, key_prefix=f"sa:{target.appraisal.id}:rr:{target.id}:{actor}:")
        until = self.clock.now() + COMMENT_WINDOW
        await self.flows.set(actor, COMMENT_FLOW, "comment",
                             {"mode": "comment", "target": target.id, "until": to_db(until)})

    async def comment_slot(self, actor: Actor) -> int | None:
        """The target the person may comment on now (their rating was just cast), if any; a slot
        past its time is closed here."""
        if not isinstance(actor, int) or is_system(actor):
            return None
        state = await self.flows.get(actor)
        if state is None or state.flow != COMMENT_FLOW:
            return None
        until = state.data.get("until")
        if not isinstance(until, str) or from_db(until) <= self.clock.now():
            await self.flows.clear(actor)
            return None
        return int(state.data["target"])

    async def comment(self, actor: Actor, target_id: int, text: str) -> None:
        """The rater's one comment, right after rating: stored masked, without a person or a time,
        under a random key."""
        text = text.strip()
        if not text:
            raise Refused("appraisal.refused.empty_comment")
        if len(text) > MAX_COMMENT:
            raise Refused("appraisal.refused.too_long", limit=MAX_COMMENT)
        if await self.comment_slot(actor) != target_id:
            raise NotAllowed("comment")
        target = await self._target(self.db, target_id)
        if not await target.box.has_voted(self.db, actor) or not await self._is_rater(self.db, actor, target):
            raise NotAllowed("comment")
        if not target.appraisal.is_open(self.clock.now()):
            raise Refused("appraisal.refused.closed")
        await self.flows.clear(actor)  # the slot is used up before the comment exists: never two
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO appraisal_comments (target_id, sort_key, text) VALUES (?, ?, ?)",
                             (target.id, secrets.randbits(62), mask_public(text)))

    async def skip_comment(self, actor: Actor) -> None:
        """The rater wants to add nothing: the slot is closed."""
        if isinstance(actor, int) and not is_system(actor):
            state = await self.flows.get(actor)
            if state is not None and state.flow == COMMENT_FLOW:
                await self.flows.clear(actor)

    # --- results ------------------------------------------------------------------------------
    async def _count(self, src: Tx | Database, target: Target) -> Result:
        tally = await target.box.tally(src)
        rows = await src.fetchall("SELECT text FROM appraisal_comments WHERE target_id = ? ORDER BY sort_key",
                                  (target.id,))
        counts = (tally.counts.get(0, 0), tally.counts.get(1, 0), tally.counts.get(2, 0))
        return Result(target, counts, tally.ballots, len(await self._raters(src, target)), [r[0] for r in rows])

    def _fixed(self, target: Target, comments: list[str]) -> Result:
        data = target.result or {}
        counts = tuple(int(n) for n in data.get("counts", (0, 0, 0)))
        return Result(target, (counts[0], counts[1], counts[2]), int(data.get("rated", 0)),
                      int(data.get("eligible", 0)), comments)

    async def _result(self, src: Tx | Database, target: Target) -> Result:
        rows = await src.fetchall("SELECT text FROM appraisal_comments WHERE target_id = ? ORDER BY sort_key",
                                  (target.id,))
        return self._fixed(target, [r[0] for r in rows])

    async def results(self, actor: Actor, appraisal_id: int) -> list[Result]:
        """Every secretary's fixed result with the comments, for those who lead it, after the close."""
        appraisal = await self.appraisal(actor, appraisal_id)
        if appraisal.status != "closed":
            raise Refused("appraisal.refused.not_closed")
        return [await self._result(self.db, t) for t in await self._targets(self.db, appraisal)]

    async def own_result(self, actor: Actor, target_id: int) -> Result:
        """The secretary's own result (with the comments, never who rated what), after the close."""
        target = await self._target(self.db, target_id)
        if actor != target.secretary_id:
            raise NotAllowed("own result")
        if target.appraisal.status != "closed":
            raise Refused("appraisal.refused.not_closed")
        return await self._result(self.db, target)

    def result_text(self, lang: str, result: Result, *, comments: bool, head: bool = True) -> str:
        """One secretary's result: counts, satisfaction rate, turnout and (for the organiser and the
        secretary) the masked comments, clipped to one message."""
        t, target = self.t, result.target
        lines = [t(lang, "appraisal.result.head", year=target.appraisal.year, name=target.secretary_name,
                   org=target.org_name)] if head else []
        for rating, n in zip(Rating, result.counts, strict=True):
            lines.append(t(lang, "appraisal.result.count", label=t(lang, RATING_KEYS[rating]),
                           count=self.fmt.count(lang, "appraisal.result.people", n)))
        if result.satisfaction is None:
            lines.append(t(lang, "appraisal.result.nobody"))
        else:
            lines.append(t(lang, "appraisal.result.satisfaction", percent=result.satisfaction))
        lines.append(t(lang, "appraisal.result.turnout", rated=result.rated, eligible=result.eligible,
                       percent=result.turnout or 0))
        if target.report_kind is None:
            lines.append(t(lang, "appraisal.result.no_report"))
        if comments:
            lines.append(t(lang, "appraisal.result.comments", n=len(result.comments)) if result.comments
                         else t(lang, "appraisal.result.no_comments"))
            lines += [t(lang, "appraisal.result.comment", text=c) for c in result.comments]
        return clip("\n".join(lines), RESULT_ROOM, t(lang, "appraisal.clipped_result"))

    # --- publishing ---------------------------------------------------------------------------
    async def publish(self, actor: Actor, appraisal_id: int) -> bool:
        """Publish the results (counts, not the comments) to each org's wall chat and its members and
        residents. Once: False when published already."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            appraisal = await self._appraisal(tx, appraisal_id)
            if not await self._may_lead(tx, actor, appraisal):
                raise NotAllowed("publish")
            if appraisal.status != "closed":
                raise Refused("appraisal.refused.not_closed")
            cur = await tx.execute("UPDATE appraisals SET published_at = ?, published_by = ? WHERE id = ?"
                                   " AND published_at IS NULL", (to_db(now), _person(actor), appraisal.id))
            if not cur.rowcount:
                return False
            for target in await self._targets(tx, appraisal):
                await self._publish_one(tx, await self._result(tx, target), now)
        return True

    async def _publish_one(self, tx: Tx, result: Result, now: datetime) -> None:
        target, a = result.target, result.target.appraisal
        for pid in await self._raters(tx, target):
            lang = await self.people.language(pid, tx)
            await self.outbox.send_text(
                tx, key=f"sa:{a.id}:pub:{target.id}:{pid}", chat_id=pid, not_before=after_quiet(now, self.tz),
                text=self.t(lang, "appraisal.published", result=self.result_text(lang, result, comments=False)),
                purpose=Purpose.PUBLISHED, subject_id=a.id, priority=Priority.BULK)
        chat = await tx.fetchone("SELECT chat_id FROM wall_chats WHERE org_id = ?", (target.org_id,))
        if chat is not None:
            lang = self.core.settings.locale
            await self.outbox.send_text(
                tx, key=f"sa:{a.id}:pub:{target.id}:wall", chat_id=chat[0], purpose=Purpose.WALL, subject_id=a.id,
                text=self.t(lang, "appraisal.published", result=self.result_text(lang, result, comments=False)))

    # --- the periodic job ---------------------------------------------------------------------
    async def tick(self, actor: Actor) -> int:
        """Open the report questions of notices sent after quiet hours; close the appraisals whose
        window has ended: each exactly once (the status is the claim), catching up after downtime."""
        if not isinstance(actor, SystemActor):
            raise NotAllowed("tick")
        now = self.clock.now()
        await self._ask_reports(now)
        rows = await self.db.fetchall("SELECT id FROM appraisals WHERE status = 'open' AND closes_at <= ?"
                                      " ORDER BY id", (to_db(now),))
        done = 0
        for row in rows:
            async with self.db.transaction() as tx:
                closed = await self._close(tx, await self._appraisal(tx, row[0]), now)
            if closed:
                await self._clear_slots(row[0])
            done += closed
        return done

    async def _clear_slots(self, appraisal_id: int) -> None:
        """Comment slots still open at the close are of no use any more: gone, through the flow
        store (which caches them)."""
        rows = await self.db.fetchall(
            "SELECT f.person_id FROM flows f JOIN appraisal_targets t"
            " ON t.id = CAST(json_extract(f.data, '$.target') AS BIGINT)"
            " WHERE f.flow = ? AND f.step = 'comment' AND t.appraisal_id = ?", (COMMENT_FLOW, appraisal_id))
        for row in rows:
            await self.flows.clear(row[0])

    async def _close(self, tx: Tx, appraisal: Appraisal, now: datetime) -> int:
        cur = await tx.execute("UPDATE appraisals SET status = 'closed', closed_at = ?"
                               " WHERE id = ? AND status = 'open'", (to_db(now), appraisal.id))
        if not cur.rowcount:
            return 0
        appraisal = await self._appraisal(tx, appraisal.id)
        for tag in ("n", "rs", "t", "rr"):  # what was still to be sent about a window that is over
            await self.outbox.cancel(tx, key_prefix=f"sa:{appraisal.id}:{tag}:")
        at = after_quiet(now, self.tz)
        opener_lang = await self.people.language(appraisal.opened_by, tx)
        for target in await self._targets(tx, appraisal):
            counted = await self._count(tx, target)
            await tx.execute("UPDATE appraisal_targets SET result = ? WHERE id = ?", (json.dumps(
                {"counts": list(counted.counts), "rated": counted.rated, "eligible": counted.eligible}), target.id))
            result = await self._result(tx, await self._target(tx, target.id))
            await self.outbox.send_text(
                tx, key=f"sa:{appraisal.id}:res:{target.id}:org", chat_id=appraisal.opened_by, not_before=at,
                text=self.result_text(opener_lang, result, comments=True), purpose=Purpose.RESULT,
                subject_id=appraisal.id)
            lang = await self.people.language(target.secretary_id, tx)
            await self.outbox.send_text(
                tx, key=f"sa:{appraisal.id}:res:{target.id}:sec", chat_id=target.secretary_id, not_before=at,
                text=self.t(lang, "appraisal.own_result", result=self.result_text(lang, result, comments=True)),
                purpose=Purpose.OWN_RESULT, subject_id=appraisal.id)
        buttons = [[Button(self.t(opener_lang, "appraisal.button.publish"), SA_ACT(SaAction.PUBLISH, appraisal.id))]]
        await self.outbox.send_text(
            tx, key=f"sa:{appraisal.id}:sum", chat_id=appraisal.opened_by, not_before=at, buttons=buttons,
            text=self.t(opener_lang, "appraisal.closed_summary", year=appraisal.year), purpose=Purpose.RESULT,
            subject_id=appraisal.id)
        log.info("appraisal %s closed", appraisal.id)
        return 1
