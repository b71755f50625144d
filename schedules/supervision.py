"""Supervision bulletins: on the month's first working day from the 1st on, at 09:00, last month's
bulletin to the organisers of every org (for its subtree). Each org's bulletin is claimed once in
supervision_runs with its outbox rows, so the job may run twice, or late after downtime, and still
sends each exactly once."""

from __future__ import annotations

import logging

from bot.actors import SYSTEM_ACTOR
from bot.context import BotApplication
from schedules.jobs import every

log = logging.getLogger(__name__)

INTERVAL = 600.0  # seconds: the send time is 09:00; a pass before it, or after the month's run, is one read


async def tick(app: BotApplication) -> None:
    done = await app.core.supervision.tick(SYSTEM_ACTOR)
    if done:
        log.info("supervision: %s monthly bulletin(s) queued", done)


async def start(app: BotApplication) -> None:
    every(app, "supervision", INTERVAL, tick)


async def stop(app: BotApplication) -> None:
    """Nothing to stop: the JobQueue job is removed with the others."""
