"""End to end: a bulk send fills Telegram's 30 a second and never goes over it, with slow answers
and people using the bot meanwhile. The judge is the fake server: its limiter (any 429 fails)
and the moments at which it took each send, counted per one-second window."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.fakebotapi import SEND_METHODS, Call, FakeBotApi, FakeUser
from bot.clock import SettableClock
from bot.outbox import Priority
from conftest import BotRunner
from schedules.delivery import Limits as DeliveryLimits

pytestmark = pytest.mark.telegram_limits  # Telegram's real limits at the fake (tests/conftest.py)


@pytest.fixture
async def bot(fake: FakeBotApi, tmp_path: Path, clock: SettableClock) -> AsyncIterator[BotRunner]:
    runner = BotRunner(fake, tmp_path / "bot.sqlite3", clock, limits=DeliveryLimits())
    await runner.start()
    yield runner
    await runner.stop()


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    first, most = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


async def keep_asking(fake: FakeBotApi, user: FakeUser, stop: asyncio.Event) -> int:
    """/help, wait for the answer, again at once, until told to stop: how many answers came."""
    answers = 0
    while not stop.is_set():
        before = fake.delivered(user.id)
        user.send("/help")
        await fake.wait_for(lambda: fake.delivered(user.id) > before, timeout=30)  # noqa: B023
        answers += 1
    return answers


async def test_slow_answers_and_people_asking_meanwhile_fill_the_window_and_never_overfill_it(
        bot: BotRunner, fake: FakeBotApi) -> None:
    taken: list[float] = []  # when the server took each send (what its limiter counts)

    def record(call: Call) -> None:
        if call.ok and call.method in SEND_METHODS:
            taken.append(time.monotonic())

    fake.observers.append(record)
    # Every send is held 20 ms before the server takes it: as late as it can be and still be
    # answered when it is, the case the bot cannot tell from a fast one.
    fake.slow(0.02, count=100_000, method=SEND_METHODS)
    chats = [fake.user(46000 + i).id for i in range(240)]
    people = [fake.user(46900 + i) for i in range(4)]
    async with bot.core.db.transaction() as tx:
        for i, chat in enumerate(chats):
            await bot.core.outbox.send_text(tx, key=f"bulk:{i}", chat_id=chat, text=f"通知 {i}",
                                            priority=Priority.BULK)
    stop = asyncio.Event()
    askers = [asyncio.create_task(keep_asking(fake, person, stop)) for person in people]
    try:
        await fake.wait_for(lambda: all(fake.delivered(chat) for chat in chats), timeout=60)
    finally:
        stop.set()
    answers = await asyncio.gather(*askers)
    await bot.idle()
    assert fake.stats.rate_limited == 0  # not one 429: no window at the server ever held 31 of ours
    assert most_in_one_second(taken) == 30  # and the sends filled it
    counts = Counter(c.params["chat_id"] for c in fake.calls_to("sendMessage") if c.ok)
    assert {counts[chat] for chat in chats} == {1}
    assert all(n >= 3 for n in answers)  # the people were answered all along, not after the bulk
