"""Retention (PIPL): once a day, strip the tickets closed longer ago than BOT_RETENTION_DAYS (their
resident link, name and media go; their texts stay masked) and record the run's counts in
retention_runs. Stripped tickets are marked, so a second run, or one after downtime, does only what
is left to do."""

from __future__ import annotations

import logging

from bot.actors import SYSTEM_ACTOR
from bot.context import BotApplication
from schedules.jobs import every

log = logging.getLogger(__name__)

INTERVAL = 24 * 3600.0  # seconds: the limit is counted in days


async def tick(app: BotApplication) -> None:
    run = await app.core.retention.run(SYSTEM_ACTOR)
    if run.removed.total():
        log.info("retention: %s ticket(s) stripped, %s kept message(s) deleted (run %s)",
                 run.removed.tickets, run.removed.kept_messages, run.id)


async def start(app: BotApplication) -> None:
    every(app, "retention", INTERVAL, tick)


async def stop(app: BotApplication) -> None:
    """Nothing to stop: the JobQueue job is removed with the others."""
