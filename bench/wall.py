"""`python -m bench wall`: problem-wall submissions (text → category → confirm) through the real
Application, against two echo bots on the same kind of fake Bot API server in the same run: one on
the bot's own HTTP stack (bot/http.py, same pool sizes), the fair floor, and one on PTB's stock stack."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bench.fakebotapi import TOKEN, Call, FakeBotApi, FakeUser
from bench.stats import percentile
from bot.app import CONCURRENT_UPDATES, CONNECTION_POOL, build_application, start_application, stop_application
from bot.clock import Clock, to_db
from bot.config import Settings
from bot.http import AiohttpRequest

FIRST_RESIDENT = 7_000_000
ANSWERS = ("sendMessage", "editMessageText")
ORGS = """
orgs:
  - code: danfeng
    name: 中共丹凤县委
    kind: county
    children:
      - {code: sanyi, name: 三义村党支部, kind: village_branch}
people:
  - {telegram_id: 1001, name: 王建国, roles: [secretary@sanyi, member@sanyi]}
"""


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
    """One update and the bot's answer to it; latency counts from when the person sent it (queued
    at the server), so time it waits there for the bot's next getUpdates counts too."""
    sent = time.monotonic()
    send()
    answered = await answers.next(chat_id)
    latencies.append(answered - sent)


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


def echo_application(base_url: str, same_stack: bool) -> Application:  # type: ignore[type-arg]
    """An echo bot configured as the bot itself is (bot/app.py: pool size, updates in flight), on the
    bot's HTTP stack or on PTB's stock one, so the comparison is of the handlers' work."""
    builder = ApplicationBuilder().token(TOKEN).base_url(base_url).concurrent_updates(CONCURRENT_UPDATES)
    if same_stack:
        builder = builder.request(AiohttpRequest(CONNECTION_POOL)).get_updates_request(AiohttpRequest(1))
    else:
        builder = builder.connection_pool_size(CONNECTION_POOL)
    app = builder.build()

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(update.effective_message.text or "")

    app.add_handler(MessageHandler(filters.TEXT, echo))
    return app


async def echo_baseline(k: int, same_stack: bool) -> float:
    """An echo bot answering each text on a fresh fake server: updates per second."""
    driver = Driver("echo", k)
    app = echo_application(driver.base_url, same_stack)
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
    ms = [x * 1000 for x in latencies]
    return 3 * k / elapsed, k / elapsed, percentile(ms, 50), percentile(ms, 99)


async def _residents(core: object, count: int) -> None:
    """A village branch with its secretary, and `count` residents of it."""
    from bot.services import orgfile

    now = to_db(core.clock.now())  # type: ignore[attr-defined]
    async with core.db.transaction() as tx:  # type: ignore[attr-defined]
        await orgfile.apply(core.orgs, tx, orgfile.parse(ORGS), "bench")  # type: ignore[attr-defined]
        org_id = await tx.fetchval("SELECT id FROM orgs WHERE code = 'sanyi'")
        people = [(FIRST_RESIDENT + n, f"村民{n}", now, now) for n in range(count)]
        await tx.executemany("INSERT INTO people (telegram_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
                             people)
        await tx.executemany("INSERT INTO roles (person_id, org_id, role, granted_at) VALUES (?, ?, 'resident', ?)",
                             [(pid, org_id, now) for pid, _, _, _ in people])
        await core.orgs.recount_roles(tx)  # type: ignore[attr-defined]  # the broadcast audience's counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--k", type=int, default=500, help="submissions for the throughput runs")
    parser.add_argument("--rate", type=float, default=50.0, help="submissions per second for the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")


def run(args: argparse.Namespace) -> list[str]:
    echo = asyncio.run(echo_baseline(args.k, same_stack=True))
    echo_stock = asyncio.run(echo_baseline(args.k, same_stack=False))
    updates, submissions, p50, p99 = asyncio.run(wall_run(args.k, args.rate, args.seconds))
    line = (f"wall: {updates:.0f} updates/s ({submissions:.1f} submissions/s), p50={p50:.1f}ms p99={p99:.1f}ms;"
            f" echo baseline {echo:.0f} updates/s (same stack), {echo_stock:.0f} updates/s (PTB stock)")
    print(line, flush=True)
    return [line]
