"""`python -m bench wall`: problem-wall submissions (text → category → confirm) through the real
Application, against a bare PTB echo bot on the same fake Bot API server in the same run."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path

from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.app import CONCURRENT_UPDATES, CONNECTION_POOL, build_application, start_application, stop_application
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


async def open_loop(fake: FakeBotApi, answers: Answers, users: list[FakeUser], rate: float,
                    flow: Callable[..., Awaitable[None]]) -> list[float]:
    """New submissions arrive at `rate` per second whatever the bot does."""
    latencies: list[float] = []
    tasks = []
    started = time.monotonic()
    for n, user in enumerate(users):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(flow(fake, answers, user, n, latencies)))
    await asyncio.gather(*tasks)
    return latencies


# The fake server and the people it plays run in a second process, so that the bot's process has
# a core of its own, as it would in production; the two talk HTTP over 127.0.0.1.

def _driver_process(conn: Connection, flow_name: str, k: int, rate: float, seconds: float) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    asyncio.run(_driver(conn, flow_name, k, rate, seconds))


async def _driver(conn: Connection, flow_name: str, k: int, rate: float, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    fake = FakeBotApi(limits=None, auto_chats=True)
    await fake.start()
    conn.send((fake.base_url, fake.base_file_url))
    await loop.run_in_executor(None, conn.recv)  # the bot is polling
    answers = Answers(fake)
    flow = submission if flow_name == "wall" else echo_round
    users = [fake.user(FIRST_RESIDENT + n) for n in range(k + int(rate * seconds))]
    elapsed, _ = await closed_loop(fake, answers, users[:k], flow)
    latencies = await open_loop(fake, answers, users[k:], rate, flow) if flow_name == "wall" else []
    conn.send((elapsed, latencies))
    await loop.run_in_executor(None, conn.recv)  # the bot has stopped
    await fake.stop()


class Driver:
    """The second process: start it, learn the fake server's URLs, run, collect the figures."""

    def __init__(self, flow_name: str, k: int, rate: float = 0.0, seconds: float = 0.0) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_driver_process, args=(child, flow_name, k, rate, seconds))
        self.process.start()
        self.base_url, self.file_url = self.conn.recv()

    async def run(self) -> tuple[float, list[float]]:
        self.conn.send("go")
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    def finish(self) -> None:
        self.conn.send("done")
        self.process.join(30)


async def echo_baseline(k: int) -> float:
    """A bare PTB bot answering each text on the same kind of fake server: updates per second."""
    driver = Driver("echo", k)
    # Configured as the bot itself is (bot/app.py), so the comparison is of the handlers' work.
    app = (ApplicationBuilder().token(TOKEN).base_url(driver.base_url).connection_pool_size(CONNECTION_POOL)
           .concurrent_updates(CONCURRENT_UPDATES).build())

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(update.effective_message.text or "")

    app.add_handler(MessageHandler(filters.TEXT, echo))
    await app.initialize()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    await app.start()
    elapsed, _ = await driver.run()
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    driver.finish()
    return 3 * k / elapsed


async def wall_run(k: int, rate: float, seconds: float) -> tuple[float, float, float, float]:
    """(updates/s, submissions/s) closed-loop, then p50/p99 in ms with `rate` submissions/s arriving."""
    latency_users = int(rate * seconds)
    driver = Driver("wall", k, rate, seconds)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(token=TOKEN, api_url=driver.base_url, file_url=driver.file_url,
                            database=Path(tmp) / "bench.sqlite3", _env_file=None)  # type: ignore[call-arg]
        app = build_application(settings, Clock())
        core = app.core
        await core.open()
        await _residents(core, k + latency_users)
        await core.close()
        await start_application(app, poll_timeout=1)
        elapsed, latencies = await driver.run()
        submitted = await core.db.fetchval("SELECT COUNT(*) FROM tickets")
        await stop_application(app)
    driver.finish()
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
