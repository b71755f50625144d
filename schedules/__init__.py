"""Background and periodic work, one module per job, started after the database is open and
stopped before the bot's connection closes. A module exposes `async start(app)` and
`async stop(app)`; a periodic job calls `every(app, name, seconds, tick)` in its start.

A tick reads "now" from the Core's clock and must be idempotent and catch up (run twice, or
after a day of downtime, it does what running it once on time would have done). When a test's
settable clock jumps, every tick runs once at once, so tests never wait for real minutes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram.ext import Application, ContextTypes

from schedules import delivery

log = logging.getLogger(__name__)

Tick = Callable[[Application], Awaitable[None]]  # type: ignore[type-arg]

# Order: started in this order, stopped in reverse. Features add their module here.
SCHEDULES = [delivery]


async def start_all(app: Application) -> None:  # type: ignore[type-arg]
    app.bot_data.setdefault("ticks", {})
    for module in SCHEDULES:
        await module.start(app)
    app.bot_data["clock_listener"] = app.bot_data["core"].clock.on_change(lambda: _run_all_soon(app))


async def stop_all(app: Application) -> None:  # type: ignore[type-arg]
    unsubscribe = app.bot_data.pop("clock_listener", None)
    if unsubscribe is not None:
        unsubscribe()
    for module in reversed(SCHEDULES):
        await module.stop(app)
    if app.job_queue is not None:
        for job in app.job_queue.jobs():
            job.schedule_removal()


def every(app: Application, name: str, seconds: float, tick: Tick) -> None:  # type: ignore[type-arg]
    """Run `tick(app)` every `seconds` on PTB's JobQueue (first run right after start-up)."""
    assert app.job_queue is not None, "python-telegram-bot[job-queue] is required"
    lock = asyncio.Lock()

    async def run(context: ContextTypes.DEFAULT_TYPE) -> None:
        await run_tick(app, name)

    app.bot_data.setdefault("ticks", {})[name] = (tick, lock)
    app.job_queue.run_repeating(run, interval=seconds, first=1.0, name=name)


async def run_tick(app: Application, name: str) -> None:  # type: ignore[type-arg]
    """Run one periodic job now (never two copies of the same job at once)."""
    tick, lock = app.bot_data["ticks"][name]
    async with lock:
        try:
            await tick(app)
        except Exception:
            log.exception("periodic job %s failed; it will run again", name)


async def run_all(app: Application) -> None:  # type: ignore[type-arg]
    """Run every periodic job once, in registration order (tests call this after moving the clock)."""
    for name in list(app.bot_data.get("ticks", {})):
        await run_tick(app, name)


def _run_all_soon(app: Application) -> None:  # type: ignore[type-arg]
    if app.bot_data.get("ticks"):
        app.create_task(run_all(app))
