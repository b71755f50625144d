"""`python -m bench delivery [--n N] [--bots B]`: outbox throughput through the fake Bot API under
Telegram's limits; with several bots (BOT_TOKENS, one county each) the limit is the sum of theirs."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import yaml

from bench.fakebotapi import TOKEN, FakeBotApi, Limits
from bot.app import build_application, start_application, stop_application
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
        for i in range(n):
            if len(tokens) > 1:
                await tx.execute("INSERT INTO chat_bots (chat_id, bot_id, updated_at) VALUES (?, ?, '')",
                                 (FIRST_CHAT + i, bot_id_of(tokens[i % len(tokens)])))
            await core.outbox.send_text(tx, key=f"bench:{i}", chat_id=FIRST_CHAT + i, text=f"通知 {i}")
    await core.close()


async def delivery_run(n: int, storm_at: float | None, limit: int, bots: int = 1) -> str:
    """Queue n messages to n chats, start the real Application, wait until the fake saw them all."""
    fake = FakeBotApi(limits=Limits(global_per_second=limit), auto_chats=True)
    tokens = bench_tokens(bots)
    fakes = [fake] + [fake.add_bot(token, limits=Limits(global_per_second=limit), auto_chats=True,
                                   bot_id=bot_id_of(token), username=f"bench_bot_{b}")
                      for b, token in enumerate(tokens[1:], 1)]
    await fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        several = {"tokens": {token: [f"county{b}"] for b, token in enumerate(tokens)}} if bots > 1 else {}
        settings = Settings(token=TOKEN, api_url=fake.base_url, file_url=fake.base_file_url,  # type: ignore[arg-type]
                            database=Path(tmp) / "bench.sqlite3", **several)
        await _queue(settings, n, tokens)
        app = build_application(settings, Clock())
        started = time.monotonic()
        await start_application(app, poll_timeout=1)
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
        await stop_application(app)
    await fake.stop()
    return _line(fakes, n, limit * bots, storm_at)


def _line(fakes: list[FakeBotApi], n: int, limit: int, storm_at: float | None) -> str:
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
    return (f"delivery: {achieved:.1f} msg/s of {limit} limit, n={n}, lost={lost}, duplicates={duplicates},"
            f" 429s={rate_limited} (injected {rate_limited - earned}, earned {earned}){label}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--limit", type=int, default=30, help="messages per second the fake server allows each bot")
    parser.add_argument("--bots", type=int, default=1, help="bots in the deployment (BOT_TOKENS), one county each")
    parser.add_argument("--no-burst", action="store_true", help="skip the second run with a 429 burst")


def run(args: argparse.Namespace) -> list[str]:
    """N messages to N chats, then the same with a 1-second 429 burst a third of the way in."""
    lines = [asyncio.run(delivery_run(args.n, None, args.limit, args.bots))]
    print(lines[-1], flush=True)
    if not args.no_burst:
        lines.append(asyncio.run(delivery_run(args.n, 1 / 3, args.limit, args.bots)))
        print(lines[-1], flush=True)
    return lines
