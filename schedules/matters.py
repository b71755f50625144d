"""四议两公开: remind of matters stalled on a step (the secretary after the org's limit, the organiser
above after twice the limit). Each reminder is claimed once in the database, so the job may run
twice, or late after downtime, and still sends each exactly once."""

from __future__ import annotations

import logging

from bot.actors import SYSTEM_ACTOR
from bot.context import BotApplication
from schedules.jobs import every

log = logging.getLogger(__name__)

INTERVAL = 600.0  # seconds: the limits are counted in days; a pass with nothing due is one read


async def tick(app: BotApplication) -> None:
    done = await app.core.matters.tick(SYSTEM_ACTOR)
    if done:
        log.info("matters: %s stalled-step reminder(s)", done)


async def start(app: BotApplication) -> None:
    every(app, "matters", INTERVAL, tick)


async def stop(app: BotApplication) -> None:
    """Nothing to stop: the JobQueue job is removed with the others."""
