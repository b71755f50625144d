"""Problem-wall deadlines: escalate overdue tickets up the tree, close answers left unrated.
Reminders before a deadline are outbox rows with a not-before time, written when the deadline
is set; this job only handles what has come due. Idempotent and catches up after downtime."""

from __future__ import annotations

import logging

from telegram.ext import Application

from bot.services.tickets import tickets
from schedules.jobs import every

log = logging.getLogger(__name__)

INTERVAL = 60.0


async def tick(app: Application) -> None:  # type: ignore[type-arg]
    changes = await tickets(app.bot_data["core"]).tick()
    if changes:
        log.info("tickets: %s deadline change(s)", changes)


async def start(app: Application) -> None:  # type: ignore[type-arg]
    every(app, "tickets", INTERVAL, tick)


async def stop(app: Application) -> None:  # type: ignore[type-arg]
    """The JobQueue stops with the Application."""
