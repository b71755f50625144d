"""Periodic jobs on PTB's JobQueue; see schedules/__init__.py for the rules a tick follows.

Several instances on one database (`db.shared`, PostgreSQL): every instance schedules every job, and
each run is claimed in the database (`job_claims`, one row per job) for its due time, the start of
the interval it falls in (UTC wall time, the same slots on every instance). The first instance to
claim a due time runs it; the others skip it; a run that is still going makes the next due time's
claim fail too, so one job never runs twice at once across the instances (the tick catches up the
next time). A claim has a lease (JOB_LEASE) renewed every JOB_RENEW while the tick runs; every
instance looks every TAKEOVER_EVERY for a claim whose lease has run out (its instance died) and
runs that job itself, so a dead instance's job is taken over within JOB_LEASE + TAKEOVER_EVERY
(13 s). Re-running a half-done tick is safe: ticks are idempotent. A run started directly
(`run_tick`, `run_all`: tests after moving the settable clock) is not claimed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram.ext import ContextTypes

from bot.clock import Clock, from_db, to_db
from bot.context import BotApplication
from bot.updates import instance_of

log = logging.getLogger(__name__)

Tick = Callable[[BotApplication], Awaitable[None]]
FIRST_RUN = 1.0  # seconds after start-up
JOB_LEASE = timedelta(seconds=10)  # a claim on a running job; renewed while it runs
JOB_RENEW = 3.0  # seconds between renewals
TAKEOVER_EVERY = 3.0  # seconds between looks for a dead instance's job


class JobClaims:
    """The claims of one instance on the periodic jobs. Times come from `clock`: real UTC time
    unless a test gives a settable one (not the Core's clock, which tests move by days)."""

    def __init__(self, db: Any, instance: str, clock: Clock | None = None, lease: timedelta = JOB_LEASE) -> None:
        self.db = db
        self.instance = instance
        self.clock = clock or Clock()
        self.lease = lease

    def due(self, seconds: float) -> datetime:
        """The due time a run now belongs to: the start of its interval, counted from the epoch."""
        stamp = self.clock.now().timestamp()
        return datetime.fromtimestamp(stamp - stamp % seconds, UTC)

    async def claim(self, job: str, due: datetime) -> bool:
        """Claim the run of `job` for `due`: False if that due time (or a later one) was claimed
        already, or another instance's run of the job is still going (its lease holds)."""
        now = self.clock.now()
        changed = await self.db.write(
            "INSERT INTO job_claims (job, due_at, claimed_by, lease_until) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (job) DO UPDATE SET due_at = excluded.due_at, claimed_by = excluded.claimed_by,"
            " lease_until = excluded.lease_until, done_at = NULL"
            " WHERE job_claims.due_at < excluded.due_at"
            " AND (job_claims.done_at IS NOT NULL OR job_claims.lease_until < ?)",
            (job, to_db(due), self.instance, to_db(now + self.lease), to_db(now)))
        return bool(changed)

    async def expired(self) -> list[str]:
        """Jobs whose run's instance stopped renewing its claim (it died mid-run)."""
        rows = await self.db.fetchall("SELECT job FROM job_claims WHERE done_at IS NULL AND lease_until < ?",
                                      (to_db(self.clock.now()),))
        return [row["job"] for row in rows]

    async def take_over(self, job: str) -> datetime | None:
        """Claim a run whose lease ran out; returns its due time (None: another instance was first)."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "UPDATE job_claims SET claimed_by = ?, lease_until = ? WHERE job = ? AND done_at IS NULL"
                " AND lease_until < ? RETURNING due_at", (self.instance, to_db(now + self.lease), job, to_db(now)))
        return None if row is None else from_db(row["due_at"])

    async def renew(self, job: str, due: datetime) -> bool:
        changed = await self.db.write(
            "UPDATE job_claims SET lease_until = ? WHERE job = ? AND due_at = ? AND claimed_by = ? AND done_at IS NULL",
            (to_db(self.clock.now() + self.lease), job, to_db(due), self.instance))
        return bool(changed)

    async def finish(self, job: str, due: datetime) -> None:
        await self.db.write(
            "UPDATE job_claims SET done_at = ?, lease_until = NULL WHERE job = ? AND due_at = ? AND claimed_by = ?",
            (to_db(self.clock.now()), job, to_db(due), self.instance))


def claims_of(app: BotApplication) -> JobClaims:
    claims = app.bot_data.get("job_claims")
    if claims is None:
        claims = app.bot_data["job_claims"] = JobClaims(app.core.db, instance_of(app))
    assert isinstance(claims, JobClaims)
    return claims


def register(app: BotApplication, name: str, tick: Tick) -> None:
    """Make `tick` known by `name` (run_tick, run_all, claims) without scheduling it."""
    app.bot_data.setdefault("ticks", {})[name] = (tick, asyncio.Lock())


def every(app: BotApplication, name: str, seconds: float, tick: Tick) -> None:
    """Run `tick(app)` every `seconds` on PTB's JobQueue (first run right after start-up); on a
    shared database, once per due time across the instances (the module's doc)."""
    assert app.job_queue is not None, "python-telegram-bot[job-queue] is required"
    # When the next run is due (monotonic): the scheduler's own timetable, kept here because the
    # scheduler does not tell a job when it was due. A run it skipped (late by more than its
    # grace time, or the previous run still busy) shows as the next run's lag, counted from the
    # skipped run's due time.
    due = [time.monotonic() + FIRST_RUN]

    async def run(context: ContextTypes.DEFAULT_TYPE) -> None:
        started = time.monotonic()
        app.core.metrics.job_ran(name, started - due[0])
        due[0] += seconds * (max(0.0, (started - due[0]) // seconds) + 1)
        if app.core.db.shared:
            claims = claims_of(app)
            await run_claimed(app, name, claims.due(seconds))
        else:
            await run_tick(app, name)

    register(app, name, tick)
    app.job_queue.run_repeating(run, interval=seconds, first=FIRST_RUN, name=name)
    if app.core.db.shared and not app.job_queue.get_jobs_by_name(TAKEOVER):
        async def take_over(context: ContextTypes.DEFAULT_TYPE) -> None:
            await take_over_expired(app)

        app.job_queue.run_repeating(take_over, interval=TAKEOVER_EVERY, first=TAKEOVER_EVERY, name=TAKEOVER)


TAKEOVER = "job-takeover"


async def run_claimed(app: BotApplication, name: str, due: datetime) -> bool:
    """Run the job for `due` if this instance claims it; True if it ran."""
    claims = claims_of(app)
    try:
        claimed = await claims.claim(name, due)
    except Exception:
        log.exception("periodic job %s: could not claim its run", name)
        return False
    if claimed:
        await _run_leased(app, claims, name, due)
    return claimed


async def take_over_expired(app: BotApplication) -> list[str]:
    """Run the jobs whose claimer died mid-run (their lease ran out); returns those taken."""
    claims = claims_of(app)
    taken: list[tuple[str, datetime]] = []
    try:
        for name in await claims.expired():
            if name in app.bot_data.get("ticks", {}) and (due := await claims.take_over(name)) is not None:
                log.warning("periodic job %s (due %s): its instance stopped; taken over", name, to_db(due))
                taken.append((name, due))
    except Exception:
        log.exception("could not look for periodic jobs to take over")
    # At once: a dead instance may have left several jobs half-run.
    await asyncio.gather(*(_run_leased(app, claims, name, due) for name, due in taken))
    return [name for name, _ in taken]


async def _run_leased(app: BotApplication, claims: JobClaims, name: str, due: datetime) -> None:
    async def renew() -> None:
        while True:
            await asyncio.sleep(JOB_RENEW)
            try:
                await claims.renew(name, due)
            except Exception as exc:
                log.warning("periodic job %s: could not renew its claim (%s)", name, exc)

    renewer = asyncio.get_running_loop().create_task(renew())
    try:
        await run_tick(app, name)
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
    try:
        await claims.finish(name, due)
    except Exception:
        log.exception("periodic job %s: could not mark its run done (its lease will run out)", name)


async def run_tick(app: BotApplication, name: str) -> None:
    """Run one periodic job now (never two copies of the same job at once in this process)."""
    tick, lock = app.bot_data["ticks"][name]
    async with lock:
        try:
            await tick(app)
        except Exception:
            log.exception("periodic job %s failed; it will run again", name)


async def run_all(app: BotApplication) -> None:
    """Run every periodic job once, in registration order (tests call this after moving the clock)."""
    for name in list(app.bot_data.get("ticks", {})):
        await run_tick(app, name)


def run_all_soon(app: BotApplication) -> None:
    if app.bot_data.get("ticks"):
        app.create_task(run_all(app))
