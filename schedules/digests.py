"""The daily digest: every minute, whoever has notices held until the latest 08:00 (the bot's time
zone) gets them as one message (bot/services/digests.py). Idempotent and catching up: the held rows
are in the database, and each is marked in the transaction that queues its digest, so a restart
(or a day of downtime) sends each digest once, with everything it should hold."""

from __future__ import annotations

from bot.actors import SYSTEM_ACTOR
from bot.context import BotApplication
from schedules.jobs import every

INTERVAL = 60.0  # seconds: a digest goes within a minute of 08:00; the query reads a partial index


async def tick(app: BotApplication) -> None:
    await app.core.digests.run(SYSTEM_ACTOR)


async def start(app: BotApplication) -> None:
    every(app, "digests", INTERVAL, tick)


async def stop(app: BotApplication) -> None:
    """The JobQueue stops with the Application."""
