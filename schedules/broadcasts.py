"""Broadcast progress: every second, each running broadcast whose progress message was last
edited 3 s ago or more (by the Core's clock) gets its figures, counted from its outbox rows; a
broadcast with nothing left to send gets its final figures once. Idempotent: everything it needs
is in the database, so a restart carries on where it was."""

from __future__ import annotations

from bot.actors import SYSTEM_ACTOR
from bot.context import BotApplication
from schedules.jobs import every

INTERVAL = 1.0  # the 3-second spacing is kept by the service, on the clock


async def tick(app: BotApplication) -> None:
    await app.core.broadcasts.tick(SYSTEM_ACTOR)


async def start(app: BotApplication) -> None:
    every(app, "broadcasts", INTERVAL, tick)


async def stop(app: BotApplication) -> None:
    """The JobQueue stops with the Application."""
