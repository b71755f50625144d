"""Deliberation rounds' periodic work: start the vote phases and close the rounds whose deadline
has passed. Each is claimed by a conditional update of the round's row, so the job may run twice,
or late after downtime, and still does each exactly once. Notices and reminders need no job: they
are outbox rows with a not-before time."""

from __future__ import annotations

import logging

from bot.actors import SYSTEM_ACTOR
from bot.context import BotApplication
from schedules.jobs import every

log = logging.getLogger(__name__)

INTERVAL = 60.0  # seconds: a round closes at most a minute late; a pass with nothing due costs two reads


async def tick(app: BotApplication) -> None:
    done = await app.core.deliberation.tick(SYSTEM_ACTOR)
    if done:
        log.info("deliberation: %s vote starts and closes", done)


async def start(app: BotApplication) -> None:
    every(app, "deliberation", INTERVAL, tick)


async def stop(app: BotApplication) -> None:
    """Nothing to stop: the JobQueue job is removed with the others."""
