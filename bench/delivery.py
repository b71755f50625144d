"""`python -m bench delivery [--n N] [--bots B] [--instances K]`: outbox throughput through the fake Bot API under
Telegram's limits; with several bots (BOT_TOKENS, one county each) the limit is the sum of theirs. With
K instances (one PostgreSQL database: BOT_BENCH_DATABASE, or a throwaway server from tests/pg.py)
the limit is the deployment's, not each instance's."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.fakebotapi import TOKEN, FakeBotApi, Limits
from bot.app import all_applications, build_application, start_application, stop_application
from bot.bots import bot_id_of
from bot.clock import Clock
from bot.config import Settings
from bot.core import Core

FIRST_CHAT = 5_000_000


def bench_tokens(bots: int) -> list[str]:
    return [TOKEN] + [f"{700_000 + i}:BENCH-TOKEN" for i in range(1, bots)]


async def _queue(settings: Settings, n: int, tokens: list[str]) -> None:
    """The counties (one per bot), the chats spread over the bots as if each person had talked to
    their county's bot, and the n messages."""
    from bot.services import orgfile

    core = Core.build(settings, Clock())
    await core.open()
    if len(tokens) > 1:
        counties = [{"code": f"county{b}", "name": f"县{b}", "kind": "county"} for b in range(len(tokens))]
        async with core.db.transaction() as tx:
            await orgfile.apply(core.orgs, tx, orgfile.parse(yaml.safe_dump({"orgs": counties, "people": []})),
                                "bench")
    async with core.db.transaction() as tx:
        await tx.execute("DELETE FROM outbox WHERE dedup_key LIKE 'bench:%'")  # BOT_BENCH_DATABASE, run again
        for i in range(n):
            if len(tokens) > 1:
                await tx.execute("INSERT INTO chat_bots (chat_id, bot_id, updated_at) VALUES (?, ?, '')",
                                 (FIRST_CHAT + i, bot_id_of(tokens[i % len(tokens)])))
            await core.outbox.send_text(tx, key=f"bench:{i}", chat_id=FIRST_CHAT + i, text=f"通知 {i}")
    await core.close()


async def _start_instances(settings: Settings, instances: int) -> list[object]:
    """One Application (polling), or K of them on one database that only deliver (K pollers of
    one token would take each other's updates; the bench has none)."""
    if instances == 1:
        app = build_application(settings, Clock())
        await start_application(app, poll_timeout=1)
        return [app]
    apps = []
    for _ in range(instances):
        app = build_application(settings, Clock())
        for each in all_applications(app):
            await each.initialize()
            if each.post_init:
                await each.post_init(each)
            await each.start()
        apps.append(app)
    return apps


def _postgres(instances: int) -> tuple[str | None, Callable[[], None]]:
    """The database several instances share: BOT_BENCH_DATABASE, or a throwaway PostgreSQL server
    (tests/pg.py); None for one instance on SQLite."""
    if os.environ.get("BOT_BENCH_DATABASE"):
        return os.environ["BOT_BENCH_DATABASE"], lambda: None
    if instances == 1:
        return None, lambda: None
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pg import Server  # type: ignore[import-not-found]

    server = Server()

    def stop() -> None:
        atexit.unregister(server.stop)
        server.stop()

    return server.fresh("bench"), stop


async def delivery_run(n: int, storm_at: float | None, limit: int, bots: int = 1, instances: int = 1) -> str:
    """Long because it is the run: queue n messages to n chats, start the real Application (K of
    them on one database), wait until the fake saw them all, and one more moment for duplicates."""
    fake = FakeBotApi(limits=Limits(global_per_second=limit), auto_chats=True)
    tokens = bench_tokens(bots)
    fakes = [fake] + [fake.add_bot(token, limits=Limits(global_per_second=limit), auto_chats=True,
                                   bot_id=bot_id_of(token), username=f"bench_bot_{b}")
                      for b, token in enumerate(tokens[1:], 1)]
    await fake.start()
    database, stop_server = _postgres(instances)
    with tempfile.TemporaryDirectory() as tmp:
        several = {"tokens": {token: [f"county{b}"] for b, token in enumerate(tokens)}} if bots > 1 else {}
        settings = Settings(token=TOKEN, api_url=fake.base_url, file_url=fake.base_file_url,  # type: ignore[arg-type]
                            database=database or Path(tmp) / "bench.sqlite3", **several)
        await _queue(settings, n, tokens)
        started = time.monotonic()
        apps = await _start_instances(settings, instances)
        stormed = False
        deadline = started + n / (limit * bots) * 3 + 60
        while time.monotonic() < deadline:
            delivered = sum(f.stats.sends_ok for f in fakes)
            if storm_at is not None and not stormed and delivered >= n * storm_at:
                for each in fakes:
                    each.storm(1.0, status=429, retry_after=1)
                stormed = True
            if delivered >= n:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # let a would-be duplicate show itself
        for app in apps:
            await stop_application(app)  # type: ignore[arg-type]
    stop_server()
    await fake.stop()
    return _line(fakes, n, limit * bots, storm_at, instances)


def busiest_second(times: list[float]) -> int:
    """The most sends in any one-second window (what Telegram's limit counts)."""
    times, first, most = sorted(times), 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def _line(fakes: list[FakeBotApi], n: int, limit: int, storm_at: float | None, instances: int = 1) -> str:
    calls = sorted((c for f in fakes for c in f.calls_to("sendMessage")), key=lambda c: c.at)
    ok = [c for c in calls if c.status == 200]
    chats = [c.params["chat_id"] for c in ok]
    distinct = set(chats)
    lost = n - len(distinct & set(range(FIRST_CHAT, FIRST_CHAT + n)))
    duplicates = len(chats) - len(distinct)
    elapsed = ok[-1].at - ok[0].at if len(ok) > 1 else float("nan")
    achieved = (len(ok) - 1) / elapsed if len(ok) > 1 else 0.0
    rate_limited = sum(1 for c in calls if c.status == 429)
    # Earned: the fake's limits refused a send the bot should not have made yet; injected: the burst.
    earned = sum(f.stats.limit_hits for f in fakes)
    label = " (1-second 429 burst injected)" if storm_at is not None else ""
    # Several instances: the rate is the deployment's, and its busiest second at the server.
    spread = (f", instances={instances} (one PostgreSQL database), busiest second at the server"
              f" {busiest_second([c.at for c in ok])}" if instances > 1 else "")
    return (f"delivery: {achieved:.1f} msg/s of {limit} limit, n={n}, lost={lost}, duplicates={duplicates},"
            f" 429s={rate_limited} (injected {rate_limited - earned}, earned {earned}){spread}{label}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--limit", type=int, default=30, help="messages per second the fake server allows each bot")
    parser.add_argument("--bots", type=int, default=1, help="bots in the deployment (BOT_TOKENS), one county each")
    parser.add_argument("--no-burst", action="store_true", help="skip the second run with a 429 burst")
    parser.add_argument("--instances", type=int, default=1,
                        help="instances sharing one PostgreSQL database (BOT_BENCH_DATABASE, or a throwaway server)")


def run(args: argparse.Namespace) -> list[str]:
    """N messages to N chats, then the same with a 1-second 429 burst a third of the way in."""
    lines = [asyncio.run(delivery_run(args.n, None, args.limit, args.bots, args.instances))]
    print(lines[-1], flush=True)
    if not args.no_burst:
        lines.append(asyncio.run(delivery_run(args.n, 1 / 3, args.limit, args.bots, args.instances)))
        print(lines[-1], flush=True)
    return lines
