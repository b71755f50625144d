"""`python -m bench wall`: problem-wall submissions (text → category → confirm) through the real
Application, against a bare PTB echo bot on the same fake Bot API server in the same run."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.app import build_application, start_application, stop_application
from bot.clock import Clock, to_db
from bot.config import Settings
from fakebotapi import TOKEN, Call, FakeBotApi, FakeUser

FIRST_RESIDENT = 7_000_000
ANSWERS = ("sendMessage", "editMessageText")


class Answers:
    """Per chat, the bot's answers as they arrive (an observer of the fake server)."""

    def __init__(self, fake: FakeBotApi) -> None:
        self.queues: dict[int, asyncio.Queue[float]] = defaultdict(asyncio.Queue)
        fake.observers.append(self._seen)

    def _seen(self, call: Call) -> None:
        if call.method in ANSWERS and call.status == 200 and isinstance(call.params.get("chat_id"), int):
            self.queues[call.params["chat_id"]].put_nowait(time.monotonic())

    async def next(self, chat_id: int, timeout: float = 30.0) -> float:
        return await asyncio.wait_for(self.queues[chat_id].get(), timeout)


async def step(fake: FakeBotApi, answers: Answers, chat_id: int, send: Callable[[], dict],
               latencies: list[float]) -> None:
    """One update and the bot's answer to it; latency counts from when the bot received it."""
    update = send()
    answered = await answers.next(chat_id)
    received = fake.delivered_at.get(update["update_id"], answered)
    latencies.append(answered - received)


async def submission(fake: FakeBotApi, answers: Answers, user: FakeUser, n: int, latencies: list[float]) -> None:
    await step(fake, answers, user.id, lambda: user.send(f"第{n}号：村道{n}号路灯坏了，请尽快修理"), latencies)
    await step(fake, answers, user.id, lambda: user.press(fake.last(user.id), "基础设施"), latencies)
    await step(fake, answers, user.id, lambda: user.press(fake.last(user.id), "✅ 提交"), latencies)


async def echo_round(fake: FakeBotApi, answers: Answers, user: FakeUser, n: int, latencies: list[float]) -> None:
    for i in range(3):
        await step(fake, answers, user.id, lambda i=i: user.send(f"{n}-{i}"), latencies)


async def closed_loop(fake: FakeBotApi, answers: Answers, users: list[FakeUser],
                      flow: Callable[..., Awaitable[None]]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    started = time.monotonic()
    await asyncio.gather(*(flow(fake, answers, user, n, latencies) for n, user in enumerate(users)))
    return time.monotonic() - started, latencies


async def open_loop(fake: FakeBotApi, answers: Answers, users: list[FakeUser], rate: float) -> list[float]:
    """New submissions arrive at `rate` per second whatever the bot does."""
    latencies: list[float] = []
    tasks = []
    started = time.monotonic()
    for n, user in enumerate(users):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(submission(fake, answers, user, n, latencies)))
    await asyncio.gather(*tasks)
    return latencies


async def echo_baseline(k: int) -> float:
    """A bare PTB bot answering each text on the same fake server: updates per second."""
    fake = FakeBotApi(limits=None, auto_chats=True)
    await fake.start()
    app = ApplicationBuilder().token(TOKEN).base_url(fake.base_url).concurrent_updates(256).build()

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(update.effective_message.text or "")

    app.add_handler(MessageHandler(filters.TEXT, echo))
    await app.initialize()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    await app.start()
    answers = Answers(fake)
    users = [fake.user(FIRST_RESIDENT + n) for n in range(k)]
    elapsed, _ = await closed_loop(fake, answers, users, echo_round)
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    await fake.stop()
    return 3 * k / elapsed


async def wall_run(k: int, rate: float, seconds: float) -> tuple[float, float, float, float]:
    """(updates/s, submissions/s) closed-loop, then p50/p99 in ms with `rate` submissions/s arriving."""
    fake = FakeBotApi(limits=None, auto_chats=True)
    await fake.start()
    latency_users = int(rate * seconds)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(token=TOKEN, api_url=fake.base_url, file_url=fake.base_file_url,
                            database=Path(tmp) / "bench.sqlite3", _env_file=None)  # type: ignore[call-arg]
        app = build_application(settings, Clock())
        core = app.bot_data["core"]
        await core.open()
        await _residents(core, k + latency_users)
        await core.close()
        await start_application(app, poll_timeout=1)
        answers = Answers(fake)
        users = [fake.user(FIRST_RESIDENT + n) for n in range(k + latency_users)]
        elapsed, _ = await closed_loop(fake, answers, users[:k], submission)
        latencies = await open_loop(fake, answers, users[k:], rate)
        submitted = await core.db.fetchval("SELECT COUNT(*) FROM tickets")
        await stop_application(app)
    await fake.stop()
    if submitted != k + latency_users:
        raise RuntimeError(f"only {submitted} of {k + latency_users} submissions were stored")
    ms = sorted(x * 1000 for x in latencies)
    return 3 * k / elapsed, k / elapsed, statistics.median(ms), ms[int(len(ms) * 0.99) - 1]


async def _residents(core: object, count: int) -> None:
    """The org tree of the tests, and `count` residents of the village sanyi."""
    from bot.services import orgfile
    from conftest import SAMPLE_ORGS

    now = to_db(core.clock.now())  # type: ignore[attr-defined]
    async with core.db.transaction() as tx:  # type: ignore[attr-defined]
        await orgfile.apply(core.orgs, tx, orgfile.parse(SAMPLE_ORGS), "bench")  # type: ignore[attr-defined]
        org_id = await tx.fetchval("SELECT id FROM orgs WHERE code = 'sanyi'")
        people = [(FIRST_RESIDENT + n, f"村民{n}", now, now) for n in range(count)]
        await tx.executemany("INSERT INTO people (telegram_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
                             people)
        await tx.executemany("INSERT INTO roles (person_id, org_id, role, granted_at) VALUES (?, ?, 'resident', ?)",
                             [(pid, org_id, now) for pid, _, _, _ in people])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--k", type=int, default=500, help="submissions for the throughput runs")
    parser.add_argument("--rate", type=float, default=50.0, help="submissions per second for the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")


def run(args: argparse.Namespace) -> list[str]:
    echo = asyncio.run(echo_baseline(args.k))
    updates, submissions, p50, p99 = asyncio.run(wall_run(args.k, args.rate, args.seconds))
    line = (f"wall: {updates:.0f} updates/s ({submissions:.1f} submissions/s), p50={p50:.1f}ms p99={p99:.1f}ms;"
            f" echo baseline {echo:.0f} updates/s")
    print(line, flush=True)
    return [line]
