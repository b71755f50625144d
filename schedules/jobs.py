"""Periodic jobs on PTB's JobQueue; see schedules/__init__.py for the rules a tick follows."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from telegram.ext import ContextTypes

from bot.context import BotApplication

log = logging.getLogger(__name__)

Tick = Callable[[BotApplication], Awaitable[None]]
FIRST_RUN = 1.0  # seconds after start-up


def every(app: BotApplication, name: str, seconds: float, tick: Tick) -> None:
    """Run `tick(app)` every `seconds` on PTB's JobQueue (first run right after start-up)."""
    assert app.job_queue is not None, "python-telegram-bot[job-queue] is required"
    lock = asyncio.Lock()
    # When the next run is due (monotonic): the scheduler's own timetable, kept here because the
    # scheduler does not tell a job when it was due. A run it skipped (late by more than its
    # grace time, or the previous run still busy) shows as the next run's lag, counted from the
    # skipped run's due time.
    due = [time.monotonic() + FIRST_RUN]

    async def run(context: ContextTypes.DEFAULT_TYPE) -> None:
        started = time.monotonic()
        app.core.metrics.job_ran(name, started - due[0])
        due[0] += seconds * (max(0.0, (started - due[0]) // seconds) + 1)
        await run_tick(app, name)

    app.bot_data.setdefault("ticks", {})[name] = (tick, lock)
    app.job_queue.run_repeating(run, interval=seconds, first=FIRST_RUN, name=name)


async def run_tick(app: BotApplication, name: str) -> None:
    """Run one periodic job now (never two copies of the same job at once)."""
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
