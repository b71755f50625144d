"""What an operator watches: Prometheus metrics of one Application (`run --health HOST:PORT` serves
them at /metrics, bot/ops.py).

Each Application has its own registry, not prometheus-client's global one: the tests and the
benchmarks build many Applications in one process, and a metric registered twice in one registry
is an error. Counters are incremented where things happen (bot/context.py for updates,
schedules/delivery.py for sends, schedules/jobs.py for job lag); the outbox depth is read from the
database when Prometheus scrapes (`refresh`), so it is right even after a restart.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector

from bot.outbox import Outbox, row_kind

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
# No `_created` series beside every counter and histogram: they double the page and nobody graphs them.
prometheus_client.disable_created_metrics()
# Handling one update: most answer within tens of milliseconds; a poster or a ledger takes seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# How late a periodic job ran: normally milliseconds; seconds mean a blocked event loop or a tick
# longer than its interval (the next run waits for it).
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0)
UPDATE_TYPES = ("message", "callback_query", "my_chat_member", "channel_post", "edited_message")


def update_type(update: object) -> str:
    """The kind of a Telegram update (a small fixed set, so it can be a label)."""
    return next((name for name in UPDATE_TYPES if getattr(update, name, None) is not None), "other")


class Metrics:
    """The bot's metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # memory, CPU, open files: what a province's operators watch first
        PlatformCollector(registry=registry)
        self.updates = Counter("bot_updates", "Updates handled, by type", ["type"], registry=registry)
        self.latency = Histogram("bot_handler_seconds", "Time to handle one update (all its handlers)",
                                 ["type"], buckets=LATENCY_BUCKETS, registry=registry)
        self.sends = Counter("bot_outbox_sent", "Outbox messages Telegram accepted, by kind", ["kind"],
                             registry=registry)
        self.retry_after = Counter("bot_outbox_429", "Outbox sends refused with 429 Too Many Requests, by kind",
                                   ["kind"], registry=registry)
        self.failures = Counter(
            "bot_outbox_failures", "Outbox sends that failed, by kind; final=true: refused for good (400),"
            " final=false: tried again later (5xx, timeout, network)", ["kind", "final"], registry=registry)
        self.blocked = Counter("bot_outbox_blocked", "Outbox sends refused because the chat blocked or removed"
                               " the bot (403), by kind", ["kind"], registry=registry)
        self.depth = Gauge("bot_outbox_depth", "Outbox messages due now and not sent yet, by kind", ["kind"],
                           registry=registry)
        self.oldest = Gauge("bot_outbox_oldest_due_seconds", "How long the oldest unsent due message has been"
                            " due (0 when none)", registry=registry)
        self.job_lag = Histogram("bot_job_lag_seconds", "How late a periodic job started, after its due time",
                                 ["job"], buckets=LAG_BUCKETS, registry=registry)
        self.job_last_lag = Gauge("bot_job_last_lag_seconds", "How late the last run of a periodic job started",
                                  ["job"], registry=registry)
        self.api_calls = Counter(
            "bot_api_requests", "Every Bot API request, replies and polling included, by method and outcome"
            " (the HTTP status, or timeout / network)", ["method", "outcome"], registry=registry)
        self.webhook = Counter("bot_webhook_requests", "Requests to the webhook, by outcome: ok, forbidden (no"
                               " or a wrong secret token), bad (not an update), stopping, unstored (the"
                               " database did not take it: 503)", ["outcome"], registry=registry)
        self.database_up = Gauge("bot_database_up", "1 if the database answered the last scrape, else 0",
                                 registry=registry)
        self.last_update_age = Gauge("bot_last_update_age_seconds", "Seconds since the last update was handled"
                                     " (-1: none since start)", registry=registry)
        self.last_update_age.set_function(self._update_age)
        # Several instances on one database: which one this is (hostname:pid), 1 while it serves.
        self.instance = Gauge("bot_instance", "This instance's id (hostname:pid) when several instances share"
                              " the database (webhook mode on PostgreSQL)", ["instance"], registry=registry)
        self.last_update: float | None = None  # time.monotonic() when the last update was handled
        self._kinds_seen: set[str] = set()

    # --- updates ----------------------------------------------------------------------------------
    def update_handled(self, update: object, seconds: float) -> None:
        kind = update_type(update)
        self.updates.labels(kind).inc()
        self.latency.labels(kind).observe(seconds)
        self.last_update = time.monotonic()

    def seconds_since_update(self) -> float | None:
        return None if self.last_update is None else time.monotonic() - self.last_update

    def _update_age(self) -> float:
        age = self.seconds_since_update()
        return -1.0 if age is None else age

    # --- delivery (schedules/delivery.py: one call per outcome) ------------------------------------
    def sent(self, row: Mapping[str, Any]) -> None:
        self.sends.labels(_kind(row)).inc()

    def too_many_requests(self, row: Mapping[str, Any]) -> None:
        self.retry_after.labels(_kind(row)).inc()

    def failed(self, row: Mapping[str, Any], final: bool) -> None:
        self.failures.labels(_kind(row), "true" if final else "false").inc()

    def chat_blocked(self, row: Mapping[str, Any]) -> None:
        self.blocked.labels(_kind(row)).inc()

    def api_call(self, method: str, outcome: str) -> None:
        self.api_calls.labels(method, outcome).inc()

    # --- periodic jobs ----------------------------------------------------------------------------
    def job_ran(self, job: str, lag: float) -> None:
        lag = max(lag, 0.0)  # a timer may fire a hair early
        self.job_lag.labels(job).observe(lag)
        self.job_last_lag.labels(job).set(lag)

    # --- scrape -----------------------------------------------------------------------------------
    async def refresh(self, outbox: Outbox, now: datetime) -> None:
        """Read the outbox depth from the database (a kind that emptied drops to 0, not away)."""
        depth = await outbox.depth(now)
        self._kinds_seen.update(depth)
        for kind in self._kinds_seen:
            self.depth.labels(kind).set(depth[kind][0] if kind in depth else 0)
        oldest = min((due for _, due in depth.values()), default=None)
        self.oldest.set(max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0)

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


def _kind(row: Mapping[str, Any]) -> str:
    return row_kind(row.get("purpose"), str(row.get("dedup_key") or ""))
