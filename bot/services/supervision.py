"""Supervision bulletins (督查通报): per org, by month, quarter or year, rolled up the tree —
meetings required by the quotas against those held, attendance and minutes; problems received,
accepted and answered in time, overdue, escalated, satisfaction; deliberation rounds and turnout;
四议两公开 matters by stage; who blocked the bot and failed deliveries.

Who may read one: organisers at or above the org (and admins), for the org and everything below;
an org's secretary, for their org. Checked here, from the database, on every call. The counting
is SQL (bot/services/supervision_count.py), off the event loop; the text, chart and workbook are
drawn in bot/services/supervision_render.py, also off the event loop. The automatic monthly
bulletin goes out on the 1st at 09:00 (the next working day when the 1st is not one) to the
organisers of every org, once per org and month (supervision_runs)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bot.actors import Actor, SystemActor
from bot.clock import to_db
from bot.infra import Infra
from bot.outbox import Priority
from bot.services import supervision_render as render
from bot.services.ledger_period import counted
from bot.services.meeting_model import QUOTA_KINDS, Period
from bot.services.meeting_time import parse_period, period_end, period_start, periods_between
from bot.services.meetings import MeetingService
from bot.services.orgs import NotAllowed, NotFound, Org
from bot.services.orgs import Refused as Refused
from bot.services.supervision_count import Query, Raw, count

log = logging.getLogger(__name__)

SEND_AT = time(9, 0)
# Who lags: these rules are said in the bulletin's text.
SATISFACTION_BAR = 0.8
SATISFACTION_MIN_RATED = 3
MAX_YEARS = 1  # one bulletin covers at most a year


class Purpose:
    BULLETIN = "supervision/bulletin"        # the text: a low-priority kind for the daily digests
    FILE = "supervision/bulletin_file"       # its chart and workbook


@dataclass(frozen=True)
class Row:
    """One line of the workbook: an org's own records (`own`) or its whole subtree."""

    org: Org
    own: bool
    figures: Counter[str]


@dataclass(frozen=True)
class Lag:
    org: Org
    quota: list[tuple[str, int, int]]  # (kind, met, required) short of the quota
    overdue: int
    satisfaction: float | None  # below the bar, with enough ratings


@dataclass(frozen=True)
class Bulletin:
    org: Org
    first: date
    last: date
    now: datetime
    orgs: int
    rows: list[Row]
    total: Counter[str]
    kinds: list[str]
    lagging: list[Lag]


@dataclass(frozen=True)
class Built:
    bulletin: Bulletin
    texts: list[str]
    chart: bytes
    chart_name: str
    workbook: bytes
    workbook_name: str


Progress = Callable[[str], Awaitable[None]]


def parse(text: str, today: date) -> tuple[date, date] | None:
    """2026-11, 2026-Q4, 2026, 本月, 上季度, month, quarter, year … (the ledger's words)."""
    return parse_period(text, today)


class SupervisionService:
    def __init__(self, core: Infra, meetings: MeetingService) -> None:
        self.core = core
        self.db = core.db
        self.clock = core.clock
        self.orgs = core.orgs
        self.t = core.t
        self.fmt = core.formatter
        self.tz = core.settings.tz
        self.meetings = meetings

    # --- rights -----------------------------------------------------------------------------
    async def may_report(self, actor: Actor, org_id: int) -> bool:
        if isinstance(actor, SystemActor):
            return True
        if await self.orgs.can_manage(actor, org_id):
            return True
        return await self.db.fetchone("SELECT 1 FROM roles WHERE person_id = ? AND org_id = ? AND role = 'secretary'",
                                      (actor, org_id)) is not None

    async def check_report(self, actor: Actor, org_id: int) -> Org:
        org = await self.orgs.get(org_id)
        if org is None:
            raise NotFound("org")
        if not await self.may_report(actor, org_id):
            raise NotAllowed("report")
        return org

    async def report_orgs(self, actor: int) -> list[Org]:
        """The orgs a person reads bulletins of at the top of their reach: where they are organiser
        (the highest, each once), then where they are secretary."""
        rows = await self.db.fetchall(
            "SELECT org_id, role FROM roles WHERE person_id = ? AND role IN ('organizer', 'secretary')"
            " ORDER BY role = 'secretary', org_id", (actor,))
        organised = {r["org_id"] for r in rows if r["role"] == "organizer"}
        out: list[Org] = []
        for row in rows:
            org = await self.orgs.get(row["org_id"])
            if org is None or org.id in {o.id for o in out}:
                continue
            above = {o.id for o in (await self.orgs.ancestors(org.id))[1:]}
            if above & organised:
                continue  # inside a subtree already listed
            out.append(org)
        return out

    # --- figures ------------------------------------------------------------------------------
    async def bulletin(self, actor: Actor, org_id: int, first: date, last: date) -> Bulletin:
        """Every figure of the org and its subtree for [first, last], for someone who may read it."""
        org = await self.check_report(actor, org_id)
        if last < first:
            raise Refused("supervision.error.bad_period")
        if (last - first).days > 366 * MAX_YEARS:
            raise Refused("supervision.error.too_long")
        now = self.clock.now()
        tree = await self.orgs.subtree(org.id)
        ids = [o.id for _, o in tree]
        quotas = await self.meetings.effective_quotas()
        since = await self.meetings.in_use_since_by_org()
        due = self._due_periods(ids, quotas, first, last, self.fmt.local(now).date())
        raw = await count(self.db, self._query(ids, first, last, now, due))
        own = {i: raw.own.get(i, Counter()) for i in ids}
        for i in ids:
            own[i].update(self._quota_figures(i, due.get(i, []), since.get(i), raw))
        return self._assemble(org, tree, own, raw, first, last, now)

    def _due_periods(self, ids: list[int], quotas: dict[int, dict[str, str]], first: date, last: date,
                     today: date) -> dict[int, list[tuple[str, date, date]]]:
        """Each org's quota periods that fall due in the report: (kind, start, end) for those that
        end within it and have ended by today (a month still under way is not yet owed)."""
        limit = min(last + timedelta(days=1), today)
        out: dict[int, list[tuple[str, date, date]]] = {}
        for org_id in ids:
            for kind, period in sorted(quotas.get(org_id, {}).items()):
                if period == Period.NONE or kind not in QUOTA_KINDS:
                    continue
                for start, end in periods_between(period, first, last):
                    if first < end <= limit:
                        out.setdefault(org_id, []).append((kind, start, end))
        return out

    def _query(self, ids: list[int], first: date, last: date, now: datetime,
               due: dict[int, list[tuple[str, date, date]]]) -> Query:
        starts = [start for periods in due.values() for _, start, _ in periods]
        months: list[tuple[int, str, str]] = []
        if starts:
            month = period_start("month", min(starts))
            end = max(end for periods in due.values() for _, _, end in periods)
            while month < end:
                following = period_end("month", month)
                months.append((_month_index(month), self._utc(month), self._utc(following)))
                month = following
        return Query(orgs=ids, lo=self._utc(first), hi=self._utc(last + timedelta(days=1)), now=to_db(now),
                     buckets=months)

    def _utc(self, day: date) -> str:
        return to_db(datetime.combine(day, time(0, 0), tzinfo=self.tz))

    @staticmethod
    def _quota_figures(org_id: int, due: list[tuple[str, date, date]], since: date | None, raw: Raw) -> Counter[str]:
        """Required: each due period the org was in the bot for at least half of (the ledger's
        `counted`: before that it is 不适用); met: those of them with a meeting of the kind held."""
        out: Counter[str] = Counter()
        for kind, start, end in due:
            if not counted(start, end, since):
                continue
            out[f"req:{kind}"] += 1
            out["required"] += 1
            month = start
            held = 0
            while month < end:
                held += raw.held.get((org_id, kind, _month_index(month)), 0)
                month = period_end("month", month)
            if held:
                out[f"met:{kind}"] += 1
                out["met"] += 1
        return out

    def _assemble(self, org: Org, tree: list[tuple[int, Org]], own: dict[int, Counter[str]], raw: Raw,
                  first: date, last: date, now: datetime) -> Bulletin:
        children: dict[int, list[int]] = {}
        for _, o in tree:
            if o.parent_id is not None:
                children.setdefault(o.parent_id, []).append(o.id)
        rolled: dict[int, Counter[str]] = {}

        def roll(org_id: int) -> Counter[str]:
            total = Counter(own[org_id])
            for child in children.get(org_id, []):
                total.update(roll(child))
            total["blocked"] = raw.subtree.get(org_id, Counter())["blocked"]
            total["failed"] = raw.subtree.get(org_id, Counter())["failed"]
            rolled[org_id] = total
            return total

        total = roll(org.id)
        by_id = {o.id: o for _, o in tree}
        rows = [Row(org, True, Counter(own[org.id]))]
        rows += [Row(by_id[c], False, rolled[c]) for c in children.get(org.id, [])]
        kinds = [k for k in QUOTA_KINDS if total[f"req:{k}"]]
        lagging = [lag for _, o in tree if (lag := self._lag(o, own[o.id])) is not None]
        return Bulletin(org=org, first=first, last=last, now=now, orgs=len(tree), rows=rows, total=total,
                        kinds=kinds, lagging=lagging)

    @staticmethod
    def _lag(org: Org, figures: Counter[str]) -> Lag | None:
        """An org lags (by its own records): a quota short, a problem overdue now, or satisfaction
        under 80% with at least three ratings."""
        quota = [(k, figures[f"met:{k}"], figures[f"req:{k}"]) for k in QUOTA_KINDS
                 if figures[f"met:{k}"] < figures[f"req:{k}"]]
        rated = figures["rated"]
        rate = figures["satisfied"] / rated if rated >= SATISFACTION_MIN_RATED else None
        low = rate if rate is not None and rate < SATISFACTION_BAR else None
        if not quota and not figures["overdue"] and low is None:
            return None
        return Lag(org=org, quota=quota, overdue=figures["overdue"], satisfaction=low)

    # --- the outputs --------------------------------------------------------------------------
    async def build(self, actor: Actor, org_id: int, first: date, last: date, lang: str,
                    progress: Progress | None = None) -> Built:
        """The text (split to fit), the chart (PNG) and the workbook, each built off the event loop."""
        async def step(key: str) -> None:
            if progress is not None:
                await progress(key)

        await step("supervision.progress.counting")
        b = await self.bulletin(actor, org_id, first, last)
        texts = render.texts(b, self.t, self.fmt, lang)
        await step("supervision.progress.chart")
        chart = await asyncio.to_thread(render.chart, b, self.t, self.fmt, lang)
        await step("supervision.progress.workbook")
        workbook = await asyncio.to_thread(render.workbook, b, self.t, self.fmt, lang)
        return Built(bulletin=b, texts=texts, chart=chart,
                     chart_name=render.file_name(b, self.t, self.fmt, lang, "png"), workbook=workbook,
                     workbook_name=render.file_name(b, self.t, self.fmt, lang, "xlsx"))

    # --- the monthly bulletin -----------------------------------------------------------------
    def send_time(self, today: date) -> datetime:
        """09:00 on the month's first working day from the 1st on."""
        day = self.core.calendar.next_working_day(date(today.year, today.month, 1))
        return datetime.combine(day, SEND_AT, tzinfo=self.tz)

    async def tick(self, actor: Actor) -> int:
        """Once the month's send time has come: last month's bulletin to the organisers of every
        org that has them, for its subtree, once per org (supervision_runs, written with the
        outbox rows). Returns how many orgs were sent one now."""
        if not isinstance(actor, SystemActor):
            raise NotAllowed("tick")
        now = self.clock.now()
        today = self.fmt.local(now).date()
        if now < self.send_time(today):
            return 0
        first = period_start("month", date(today.year, today.month, 1) - timedelta(days=1))
        last = date(today.year, today.month, 1) - timedelta(days=1)
        key = first.strftime("%Y-%m")
        # An org set up after the month ended has nothing to report for it (a new deployment's first
        # day would otherwise send last month's empty bulletin to every organiser).
        month_began = self.fmt.local(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        rows = await self.db.fetchall(
            "SELECT org_id, json_group_array(person_id) FROM roles WHERE role = 'organizer' AND org_id NOT IN"
            " (SELECT org_id FROM supervision_runs WHERE period = ?)"
            " AND org_id IN (SELECT id FROM orgs WHERE created_at < ?) GROUP BY org_id ORDER BY org_id",
            (key, to_db(month_began)))
        done = 0
        for row in rows:
            try:
                await self._send(row[0], sorted(set(json.loads(row[1]))), first, last, key, actor)
            except Exception:  # one org's failure must not hold back the others' (it is retried next pass)
                log.exception("supervision: bulletin %s of org %s failed", key, row[0])
                continue
            done += 1
        return done

    async def _send(self, org_id: int, people: list[int], first: date, last: date, key: str,
                    actor: SystemActor) -> None:
        langs = {p: await self.core.people.language(p) for p in people}
        built = {lang: await self.build(actor, org_id, first, last, lang)
                 for lang in sorted(set(langs.values()))}
        now = self.clock.now()
        async with self.db.transaction() as tx:
            claimed = await tx.execute(
                "INSERT OR IGNORE INTO supervision_runs (org_id, period, sent_to, done_at) VALUES (?, ?, ?, ?)",
                (org_id, key, len(people), to_db(now)))
            if not claimed.rowcount:
                return
            for pid in people:
                b = built[langs[pid]]
                base = f"sv:{key}:{org_id}:{pid}"
                for i, text in enumerate(b.texts):
                    await self.core.outbox.send_text(tx, key=f"{base}:t{i}", chat_id=pid, text=text,
                                                     purpose=Purpose.BULLETIN, subject_id=org_id,
                                                     priority=Priority.BULK)
                caption = self.t(langs[pid], "supervision.chart_caption", org=b.bulletin.org.name,
                                 period=render.period_words(b.bulletin, self.fmt, langs[pid]))
                await self.core.outbox.enqueue(
                    tx, key=f"{base}:c", chat_id=pid, method="sendPhoto", purpose=Purpose.FILE, subject_id=org_id,
                    priority=Priority.BULK, payload={"chat_id": pid, "caption": caption, "photo": render.b64_file(
                        b.chart_name, b.chart)})
                await self.core.outbox.send_document(tx, key=f"{base}:x", chat_id=pid, filename=b.workbook_name,
                                                     content=b.workbook, purpose=Purpose.FILE, subject_id=org_id,
                                                     priority=Priority.BULK)
        log.info("supervision: bulletin %s of org %s to %s organiser(s)", key, org_id, len(people))


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1
