"""`python -m bench broadcast [--n B]`: one broadcast to B members through the chat, while 20 people use the bot.

An organiser sends one broadcast to the members of a county subtree of B members through the chat
(/broadcast → the county → next → the text → 确认发送), against the real Application and the fake
Bot API, which enforces Telegram's limits. While it goes out, 20 residents (not in its audience)
use the bot: each sends /help, waits for the answer, thinks for a while, and again.

Prints `broadcast: <B> in <t> s = <r> msg/s of <limit> limit, lost=<k>, duplicates=<d>; interactive
p99=<ms> ms during the broadcast`:
- t runs from the organiser's 确认发送 tap to the last broadcast message arriving at the server (it
  includes writing the B outbox rows in one transaction); r = B / t;
- lost and duplicates count the broadcast's messages at the server against the members the org
  file puts in the audience (never from the bot's tables);
- interactive latency: a resident sends /help → the answer arrives at the server, for every /help
  sent between the tap and the last broadcast message.

A second line says how the bot used the limit meanwhile (first to last broadcast message at the
server), a second: the broadcast, the other sends (the residents' answers) and the edits (its
progress message); the bot counts an edit against the limit as it does a send.

The bot runs in a fixed-offset time zone where it is midday, so that quiet hours do not apply.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from bench.fakebotapi import SEND_METHODS, TOKEN, Call, FakeBotApi, FakeUser, SentMessage
from bench.fakebotapi import Limits as ServerLimits
from bench.meetings import midday_zone
from bench.stats import percentile
from bot.app import build_application, start_application, stop_application
from bot.clock import Clock
from bot.config import Settings
from bot.services import orgfile
from schedules.delivery import Limits

log = logging.getLogger(__name__)

ORGANIZER = 9_000_000
FIRST_MEMBER = 9_000_001
FIRST_USER = 9_900_001
TOWNSHIPS = 5
BRANCHES_PER_TOWNSHIP = 20
MARKER = "全县防汛紧急通知"


def org_file(b: int, users: int) -> str:
    """County → townships → branches; B members spread over the branches; the interactive people
    are residents (outside the broadcast's audience); one organiser at the top."""
    lines = ["orgs:", "  - code: bench", "    name: 基准县委", "    kind: county", "    children:"]
    for t in range(TOWNSHIPS):
        lines += [f"      - code: t{t}", f"        name: 第{t + 1}镇党委", "        kind: township",
                  "        children:"]
        for br in range(BRANCHES_PER_TOWNSHIP):
            lines.append(f"          - {{code: b{t}x{br}, name: 第{t + 1}镇第{br + 1}村党支部, kind: village_branch}}")
    lines += ["people:", f"  - {{telegram_id: {ORGANIZER}, name: 县组织委员, roles: [organizer@bench]}}"]
    branches = TOWNSHIPS * BRANCHES_PER_TOWNSHIP
    for i in range(b):
        code = f"b{(i % branches) // BRANCHES_PER_TOWNSHIP}x{(i % branches) % BRANCHES_PER_TOWNSHIP}"
        lines.append(f"  - {{telegram_id: {FIRST_MEMBER + i}, name: 党员{i}, roles: [member@{code}]}}")
    for i in range(users):
        lines.append(f"  - {{telegram_id: {FIRST_USER + i}, name: 村民{i}, roles: [resident@b0x{i % 20}]}}")
    return "\n".join(lines) + "\n"


def audience(org_text: str) -> set[int]:
    """The members in the org file (the whole tree is the county's subtree), less the sender."""
    data = yaml.safe_load(org_text)
    return {int(p["telegram_id"]) for p in data["people"] if any(r.startswith("member@") for r in p["roles"])
            and int(p["telegram_id"]) != ORGANIZER}


async def current(fake: FakeBotApi, message: SentMessage, contains: str, timeout: float = 60.0) -> SentMessage:
    """The message as edited in place, once it shows `contains` (in its text or a button)."""
    def ready() -> bool:
        now = fake.message(message.chat_id, message.message_id)
        return now is not None and (now.has(contains) or any(contains in b for b in now.button_texts))

    await fake.wait_for(ready, timeout=timeout, message=f"never showed {contains!r}")
    now = fake.message(message.chat_id, message.message_id)
    assert now is not None
    return now


async def compose(fake: FakeBotApi, organizer: FakeUser, b: int) -> SentMessage:
    """Through the chat up to the confirm screen."""
    organizer.send("/broadcast")
    pick = await fake.wait_text(ORGANIZER, "要发给哪个组织", timeout=30)
    organizer.press(pick, "基准县委")
    draft = await fake.wait_text(ORGANIZER, "点下面的名称选择", timeout=60)
    await current(fake, draft, f"已选 {b} 人")
    organizer.press(draft, "下一步：写内容 ➡️")
    await current(fake, draft, "请发来要群发的内容")
    organizer.send(f"{MARKER}：今晚有大雨，请各支部组织党员做好防汛准备。")
    return await fake.wait_text(ORGANIZER, "看过上面的样子", timeout=60)


async def interactive(fake: FakeBotApi, user: FakeUser, rng: random.Random, think: float,
                      stop: asyncio.Event, latencies: list[tuple[float, float]]) -> None:
    """Send /help, wait for the answer, think, again: (sent at, latency in ms) of each."""
    await asyncio.sleep(rng.uniform(0, think))
    while not stop.is_set():
        before = fake.delivered(user.id)
        sent = time.monotonic()
        user.send("/help")
        try:
            await fake.wait_for(lambda n=before: fake.delivered(user.id) > n, timeout=60)  # type: ignore[misc]
        except AssertionError:
            latencies.append((sent, 60_000.0))
            continue
        # From the newest call back: the answer is among the last few (not a copy of every call).
        answer = next(c.at for c in reversed(fake.calls)
                      if c.method == "sendMessage" and c.ok and c.params.get("chat_id") == user.id)
        latencies.append((sent, (answer - sent) * 1000))
        with_jitter = rng.uniform(think * 0.5, think * 1.5)
        try:
            await asyncio.wait_for(stop.wait(), timeout=with_jitter)
        except TimeoutError:
            pass


def budget(fake: FakeBotApi, broadcast: list[float], limit: int) -> str:
    """The bot's calls at the server between the first and the last broadcast message, a second."""
    first, last = min(broadcast, default=0.0), max(broadcast, default=0.0)
    span = last - first
    if span <= 0:
        return "budget: nothing to measure"
    calls = [c for c in fake.calls if c.ok and first <= c.at <= last]
    sends = sum(1 for c in calls if c.method in SEND_METHODS)
    edits = sum(1 for c in calls if c.method.startswith("edit"))
    ours = len(broadcast)
    return (f"budget: {(sends + edits) / span:.1f} of {limit} msg/s in all while it went out ="
            f" broadcast {ours / span:.1f} + other sends {(sends - ours) / span:.1f} + edits {edits / span:.1f}")


async def broadcast_run(b: int, users: int, limit: int, think: float, seed: int) -> list[str]:
    """Long because it is the benchmark's one script: set up, compose, measure, count, tear down."""
    fake = FakeBotApi(limits=ServerLimits(global_per_second=limit), auto_chats=True)
    await fake.start()
    zone = midday_zone()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(token=TOKEN, api_url=fake.base_url, file_url=fake.base_file_url,
                            database=Path(tmp) / "bench.sqlite3", timezone=zone)
        app = build_application(settings, Clock(), delivery_limits=Limits(per_second=float(limit)))
        core = app.core
        await core.open()
        org_text = org_file(b, users)
        async with core.db.transaction() as tx:
            await orgfile.apply(core.orgs, tx, orgfile.parse(org_text), "bench")
        await core.close()
        await start_application(app, poll_timeout=1)
        try:
            expected = audience(org_text)
            organizer = fake.user(ORGANIZER, first_name="县组织委员")
            people = [fake.user(FIRST_USER + i, first_name=f"村民{i}") for i in range(users)]
            options = await compose(fake, organizer, b)
            rng = random.Random(seed)
            stop = asyncio.Event()
            latencies: list[tuple[float, float]] = []
            tasks = [asyncio.create_task(interactive(fake, u, random.Random(rng.random()), think, stop, latencies))
                     for u in people]

            def arrivals() -> list[tuple[int, float]]:
                return [(c.params["chat_id"], c.at) for c in fake.calls_to("sendMessage")
                        if c.ok and MARKER in c.params.get("text", "") and c.params["chat_id"] != ORGANIZER]

            # Counted as they arrive: rescanning every call five times a second took the event
            # loop the bot shares with the fake server for tens of ms at a time near the end.
            arrived: set[int] = set()

            def watch(call: Call) -> None:
                if call.method == "sendMessage" and call.ok and MARKER in call.params.get("text", "") \
                        and call.params.get("chat_id") in expected:
                    arrived.add(call.params["chat_id"])

            fake.observers.append(watch)
            confirmed = time.monotonic()
            organizer.press(options, "✅ 确认发送")
            deadline = confirmed + b / limit * 3 + 120
            while time.monotonic() < deadline and len(arrived) < len(expected):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            got = arrivals()
            last = max((at for _, at in got), default=time.monotonic())
            stop.set()
            await asyncio.gather(*tasks)
            await asyncio.sleep(1.0)  # let a would-be duplicate show itself
            got = arrivals()
            counts = Counter(c for c, _ in got)
            lost = sum(1 for c in expected if counts[c] == 0)
            duplicates = sum(n - 1 for n in counts.values() if n > 1)
            elapsed = last - confirmed
            rate = len(set(counts) & expected) / elapsed if elapsed > 0 else 0.0
            during = [ms for sent, ms in latencies if confirmed <= sent <= last]
        finally:
            await stop_application(app)
    await fake.stop()
    log.info("broadcast: %d interactive answers during the broadcast", len(during))
    p99 = percentile(during, 99) if during else float("nan")
    return [f"broadcast: {b} in {elapsed:.1f} s = {rate:.1f} msg/s of {limit} limit, lost={lost},"
            f" duplicates={duplicates}; interactive p99={p99:.0f} ms during the broadcast",
            budget(fake, [at for _, at in got], limit)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=10_000, help="members the broadcast goes to (B)")
    parser.add_argument("--users", type=int, default=20, help="people using the bot meanwhile")
    parser.add_argument("--think", type=float, default=20.0, help="seconds a person waits between commands (mean)")
    parser.add_argument("--limit", type=int, default=30, help="messages per second the fake server allows")
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> list[str]:
    """One run; the lines are also appended to bench/results/broadcast.txt."""
    lines = asyncio.run(broadcast_run(args.n, args.users, args.limit, args.think, args.seed))
    for line in lines:
        print(line, flush=True)
    return lines
