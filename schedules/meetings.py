"""Meetings' periodic work: a series' meetings entering their lead window, secretaries reminded of
missing minutes, and the quota checks. Reminders themselves need no job: they are outbox rows with
a not-before time, sent by the delivery worker.

This module starts before the delivery worker (it is first in SCHEDULES) so that, after downtime,
reminders of meetings that have started meanwhile are cancelled before anything is sent."""

from __future__ import annotations

import logging

from bot.actors import SYSTEM_ACTOR
from bot.context import BotApplication
from schedules.jobs import every

log = logging.getLogger(__name__)

INTERVAL = 60.0  # seconds; every step is idempotent, so a short interval only costs a few reads


async def tick(app: BotApplication) -> None:
    """One pass (reads now from the Core's clock; catches up after downtime)."""
    report = await app.core.meetings.tick(SYSTEM_ACTOR)
    if report.created or report.minutes_reminders or report.quota_messages:
        log.info("meetings: %s created, %s minutes reminders, %s quota messages", report.created,
                 report.minutes_reminders, report.quota_messages)


async def start(app: BotApplication) -> None:
    core = app.core
    await core.meetings.expire_reminders(SYSTEM_ACTOR)
    every(app, "meetings", INTERVAL, tick)


async def stop(app: BotApplication) -> None:
    """Nothing to stop: the JobQueue job is removed with the others."""
