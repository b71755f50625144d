"""Points' periodic work: the monthly statement to every member on the 1st (from 09:00; once per
person and month, even across restarts: each statement's outbox key is the claim), and the star
ratings whose members' vote has closed (each settled once: its status is the claim)."""

from __future__ import annotations

import logging

from bot.actors import SYSTEM_ACTOR
from bot.context import BotApplication
from schedules.jobs import every

log = logging.getLogger(__name__)

INTERVAL = 300.0  # seconds: a statement or a settled rating is at most five minutes late


async def tick(app: BotApplication) -> None:
    sent = await app.core.points.send_statements(SYSTEM_ACTOR)
    settled = await app.core.points.settle_stars(SYSTEM_ACTOR)
    if sent or settled:
        log.info("points: %s statements queued, %s star ratings settled", sent, settled)


async def start(app: BotApplication) -> None:
    every(app, "points", INTERVAL, tick)


async def stop(app: BotApplication) -> None:
    """Nothing to stop: the JobQueue job is removed with the others."""
