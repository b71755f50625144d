"""Background and periodic work, one module per job, started after the database is open and
stopped before the bot's connection closes. A module exposes `async start(app)` and
`async stop(app)`; a periodic job calls `every(app, name, seconds, tick)` in its start.

A tick reads "now" from the Core's clock and must be idempotent and catch up (run twice, or
after a day of downtime, it does what running it once on time would have done). When a test's
settable clock jumps, every tick runs once at once, so tests never wait for real minutes."""

from __future__ import annotations

from bot.context import BotApplication
from schedules import (
    appraisal,
    broadcasts,
    deliberation,
    delivery,
    digests,
    matters,
    meetings,
    opinions,
    points,
    retention,
    supervision,
    tickets,
)
from schedules.jobs import every, run_all, run_all_soon, run_tick

__all__ = ["SCHEDULES", "every", "run_all", "run_tick", "start_all", "stop_all"]

# Order: started in this order, stopped in reverse. Features add their module here.
SCHEDULES = [meetings, delivery, tickets, deliberation, opinions, matters, appraisal, broadcasts, digests, retention,
             points, supervision]


async def start_all(app: BotApplication) -> None:
    app.bot_data.setdefault("ticks", {})
    for module in SCHEDULES:
        await module.start(app)
    app.bot_data["clock_listener"] = app.core.clock.on_change(lambda: run_all_soon(app))


async def stop_all(app: BotApplication) -> None:
    unsubscribe = app.bot_data.pop("clock_listener", None)
    if unsubscribe is not None:
        unsubscribe()
    for module in reversed(SCHEDULES):
        await module.stop(app)
    if app.job_queue is not None:
        for job in app.job_queue.jobs():
            job.schedule_removal()


