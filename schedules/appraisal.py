"""The appraisals' (书记双述双评) periodic work: close those whose window has ended. Each is claimed
by a conditional update of its row, so the job may run twice, or late after downtime, and still
closes each exactly once. Notices and reminders need no job: they are outbox rows with a
not-before time."""

from __future__ import annotations

import logging

from bot.actors import SYSTEM_ACTOR
from bot.context import BotApplication
from schedules.jobs import every

log = logging.getLogger(__name__)

INTERVAL = 60.0  # seconds: an appraisal closes at most a minute late


async def tick(app: BotApplication) -> None:
    done = await app.core.appraisal.tick(SYSTEM_ACTOR)
    if done:
        log.info("appraisal: %s closed", done)


async def start(app: BotApplication) -> None:
    every(app, "appraisal", INTERVAL, tick)


async def stop(app: BotApplication) -> None:
    """Nothing to stop: the JobQueue job is removed with the others."""
