"""Opinion maps' periodic work: redraw each open map whose votes changed (at most once a minute:
the analysis and the chart run in a worker thread), and fix and publish the result of each map
whose round the deliberation job has closed. The map's status is the claim, so running twice or
late after downtime still publishes once; the last map is stored, so a restart loses nothing."""

from __future__ import annotations

import logging

from bot.actors import SYSTEM_ACTOR
from bot.context import BotApplication
from schedules.jobs import every

log = logging.getLogger(__name__)

INTERVAL = 60.0  # seconds: the live map is at most a minute old


async def tick(app: BotApplication) -> None:
    done = await app.core.opinions.tick(SYSTEM_ACTOR)
    if done:
        log.info("opinion maps: %s drawn or published", done)


async def start(app: BotApplication) -> None:
    every(app, "opinions", INTERVAL, tick)


async def stop(app: BotApplication) -> None:
    """Nothing to stop: the JobQueue job is removed with the others."""
