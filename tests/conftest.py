"""Fixtures for end-to-end tests: the fake Bot API server and the real Application built by
the production factory, talking to it over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from orgtree import CHAT_TREE
from pg import ON_PG, database_for, missing_reason

from bench.fakebotapi import TOKEN, FakeBotApi, Limits
from bot.app import build_application, start_application, stop_application
from bot.clock import SettableClock
from bot.config import Settings
from bot.core import Core
from schedules import run_all
from schedules.delivery import DeliveryWorker
from schedules.delivery import Limits as DeliveryLimits

ADMIN_ID = 9001
START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # a Friday, 09:00 in Shanghai
SAMPLE_ORGS = CHAT_TREE  # the end-to-end tests' part of the shared tree (tests/orgtree.py); bench/wall.py reads it
# Telegram's limits with a shorter spacing per chat, kept by the bot and enforced by the fake server
# alike: a test waits for messages to one chat in real time, and screens that stay true add edits
# to every chat. The real spacing is tested in test_throttle.py and measured by the benches.
FAKE_LIMITS = Limits(per_chat_per_second=5)
BOT_LIMITS = DeliveryLimits(chat_interval=0.2)


class BotRunner:
    """Starts, stops and restarts the production Application against the fake server."""

    def __init__(self, fake: FakeBotApi, database: Path, clock: SettableClock,
                 limits: DeliveryLimits = BOT_LIMITS) -> None:
        self.fake = fake
        self.clock = clock
        self.limits = limits
        self.settings = Settings(
            token=TOKEN, api_url=fake.base_url, file_url=fake.base_file_url, database=database_for(database),
            admins=frozenset({ADMIN_ID}),
        )
        self.app = None

    @property
    def core(self) -> Core:
        assert self.app is not None, "bot not started"
        return self.app.core

    async def start(self) -> None:
        self.app = build_application(self.settings, self.clock, delivery_limits=self.limits)
        await start_application(self.app, poll_timeout=1)

    async def stop(self) -> None:
        if self.app is not None:
            await stop_application(self.app)
            self.app = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def delivery_idle(self, timeout: float = 30.0) -> None:
        """Wait until the delivery worker has nothing due and nothing in flight: every message due
        so far has its outcome recorded. A "nothing was sent" check waits for this, not a sleep."""
        assert self.app is not None, "bot not started"
        worker: DeliveryWorker = self.app.bot_data["delivery"]
        await worker.wait_idle(timeout)

    async def idle(self, timeout: float = 30.0) -> None:
        """Wait until every update sent so far has been handled and then the delivery worker is idle.
        A negative check ("nothing was sent", "answered only once") waits for this, never a sleep.

        The fake drops an update only when the next getUpdates confirms it, which the bot sends only
        after queueing the update; the update queue counts an update until its handler returned."""
        assert self.app is not None, "bot not started"
        while True:
            await self.fake.wait_for(lambda: not self.fake.pending_updates, timeout=timeout,
                                     message="updates not fetched")
            await asyncio.wait_for(self.app.update_queue.join(), timeout)
            await self.delivery_idle(timeout)
            if not self.fake.pending_updates:
                return

    async def ticks(self) -> None:
        """Run every periodic job once now (what a jump of the settable clock starts), then wait for
        `idle`: whatever the jobs queued has been delivered."""
        assert self.app is not None, "bot not started"
        await run_all(self.app)
        await self.idle()

    async def load_orgs(self, text: str = CHAT_TREE) -> None:
        from bot.services import orgfile

        plan = orgfile.parse(text)
        async with self.core.db.transaction() as tx:
            await orgfile.apply(self.core.orgs, tx, plan, "test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """BOT_TEST_BACKEND=postgresql without PostgreSQL: every test skipped with one reason; under
    CI=true that is a failure, not a skip (tests/pg.py)."""
    reason = missing_reason() if ON_PG else None
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.exit(f"{reason} (CI=true: failing)", returncode=1)
    config.pg_skip_reason = reason  # type: ignore[attr-defined]
    for item in items:
        item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    reason = getattr(config, "pg_skip_reason", None)
    if reason:
        terminalreporter.write_line(reason)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeBotApi]:
    # Delivery's modules (pytestmark = pytest.mark.telegram_limits) run under Telegram's real limits.
    server = FakeBotApi(limits=Limits() if request.node.get_closest_marker("telegram_limits") else FAKE_LIMITS)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(fake: FakeBotApi, tmp_path: Path, clock: SettableClock) -> AsyncIterator[BotRunner]:
    runner = BotRunner(fake, tmp_path / "bot.sqlite3", clock)
    await runner.start()
    await runner.load_orgs()
    yield runner
    await runner.stop()
