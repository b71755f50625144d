"""Background and periodic work, one module per job, started after the database is open and
stopped before the bot's connection closes. A module exposes `async start(app)` and
`async stop(app)`; periodic jobs use `app.job_queue` there and read "now" from the Core's clock."""

from __future__ import annotations

from telegram.ext import Application

from schedules import delivery

SCHEDULES = [delivery]


async def start_all(app: Application) -> None:  # type: ignore[type-arg]
    for module in SCHEDULES:
        await module.start(app)


async def stop_all(app: Application) -> None:  # type: ignore[type-arg]
    for module in reversed(SCHEDULES):
        await module.stop(app)
