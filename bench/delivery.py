"""`python -m bench delivery [--n N]`: outbox throughput through the fake Bot API under Telegram's limits."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.fakebotapi import TOKEN, FakeBotApi, Limits
from bot.app import build_application, start_application, stop_application
from bot.clock import Clock
from bot.config import Settings

FIRST_CHAT = 5_000_000


async def delivery_run(n: int, storm_at: float | None, limit: int) -> str:
    """Queue n messages to n chats, start the real Application, wait until the fake saw them all."""
    fake = FakeBotApi(limits=Limits(global_per_second=limit), auto_chats=True)
    await fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(token=TOKEN, api_url=fake.base_url, file_url=fake.base_file_url,
                            database=Path(tmp) / "bench.sqlite3")
        app = build_application(settings, Clock())
        core = app.core
        await core.open()
        async with core.db.transaction() as tx:
            for i in range(n):
                await core.outbox.send_text(tx, key=f"bench:{i}", chat_id=FIRST_CHAT + i, text=f"通知 {i}")
        await core.close()
        started = time.monotonic()
        await start_application(app, poll_timeout=1)
        stormed = False
        deadline = started + n / limit * 3 + 60
        while time.monotonic() < deadline:
            delivered = fake.stats.sends_ok
            if storm_at is not None and not stormed and delivered >= n * storm_at:
                fake.storm(1.0, status=429, retry_after=1)
                stormed = True
            if delivered >= n:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # let a would-be duplicate show itself
        await stop_application(app)
    await fake.stop()
    ok = [c for c in fake.calls_to("sendMessage") if c.status == 200]
    chats = [c.params["chat_id"] for c in ok]
    distinct = set(chats)
    lost = n - len(distinct & set(range(FIRST_CHAT, FIRST_CHAT + n)))
    duplicates = len(chats) - len(distinct)
    elapsed = ok[-1].at - ok[0].at if len(ok) > 1 else float("nan")
    achieved = (len(ok) - 1) / elapsed if len(ok) > 1 else 0.0
    rate_limited = sum(1 for c in fake.calls_to("sendMessage") if c.status == 429)
    # Earned: the fake's limits refused a send the bot should not have made yet; injected: the burst.
    earned = fake.stats.limit_hits
    label = " (1-second 429 burst injected)" if storm_at is not None else ""
    return (f"delivery: {achieved:.1f} msg/s of {limit} limit, n={n}, lost={lost}, duplicates={duplicates},"
            f" 429s={rate_limited} (injected {rate_limited - earned}, earned {earned}){label}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--limit", type=int, default=30, help="messages per second the fake server allows")
    parser.add_argument("--no-burst", action="store_true", help="skip the second run with a 429 burst")


def run(args: argparse.Namespace) -> list[str]:
    """N messages to N chats, then the same with a 1-second 429 burst a third of the way in."""
    lines = [asyncio.run(delivery_run(args.n, None, args.limit))]
    print(lines[-1], flush=True)
    if not args.no_burst:
        lines.append(asyncio.run(delivery_run(args.n, 1 / 3, args.limit)))
        print(lines[-1], flush=True)
    return lines
