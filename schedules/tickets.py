"""Problem-wall deadlines: escalate overdue tickets up the tree, close answers left unrated.
Reminders before a deadline are outbox rows with a not-before time, written when the deadline
is set; this job only handles what has come due. Idempotent and catches up after downtime."""

from __future__ import annotations

import logging

from bot.actors import SYSTEM_ACTOR
from bot.context import BotApplication
from schedules.jobs import every

log = logging.getLogger(__name__)

INTERVAL = 60.0


async def tick(app: BotApplication) -> None:
    changes = await app.core.tickets.tick(SYSTEM_ACTOR)
    if changes:
        log.info("tickets: %s deadline change(s)", changes)


async def start(app: BotApplication) -> None:
    every(app, "tickets", INTERVAL, tick)


async def stop(app: BotApplication) -> None:
    """The JobQueue stops with the Application."""
