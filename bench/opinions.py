"""`python -m bench opinions`: the opinion map's analysis on planted data, then its vote loop through
the real Application and the fake Bot API.

1. Analysis: bench/opinion_data.py plants 3 opinion groups (P = 5,000 participants × S = 300
   statements, 40% of votes missing, 10 statements shared by every group); `t` is the time of
   bot/services/opinion_analysis.analyse (PCA, k-means k = 2..5 by silhouette, every statement's
   shares, consensus and representativeness) in this process; `ari` the adjusted Rand index of the
   groups found against the planted ones.
2. Vote loop: an organizer's round for the county's V = 500 party members with an opinion map of 30
   seeded statements, opened through the service; every member taps 🗳 表态 on the notice as it
   arrives (the notice is edited into the first statement), and once everyone has a statement in
   front of them, all V vote at once: each reads for a random 1.5–4.5 s
   (people read a sentence before tapping) and taps a choice (their planted group's position), K = 10
   times. `vote p99` runs from the injection of a tap to the fake server receiving the edit that
   shows the next statement (press → next statement shown, measured at the server). Halfway, the
   map is recomputed (as the minute job does), in its worker thread, while the taps go on.

Prints `opinions: <P> participants x <S> statements -> groups=<k> ari=<a> in <t> s; vote p99=<ms> ms`.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import logging
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sklearn.metrics import adjusted_rand_score

from bench.fakebotapi import TOKEN, FakeBotApi, Limits
from bench.meetings import ORGANIZER, attendees, org_file, wait_until
from bench.opinion_data import plant
from bench.stats import percentile
from bot.app import build_application, start_application, stop_application
from bot.callbacks import OM_ROUND, OM_VOTE, OmAct, OmChoice
from bot.clock import SettableClock
from bot.config import Settings
from bot.services import orgfile
from bot.services.deliberation import Audience, RoundSpec
from bot.services.opinion_analysis import analyse

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)
TITLE = "村级道路养护办法"
NOTICE = "开始表态了"
CHOICE_OF = {1: OmChoice.AGREE, -1: OmChoice.DISAGREE, 0: OmChoice.PASS}


@dataclass
class Figures:
    participants: int
    statements: int
    groups: int
    ari: float
    seconds: float
    voters: int = 0
    votes: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    unanswered: int = 0
    stored: int = 0          # votes in the database after the loop


def analysis_run(p: int, s: int, missing: float, seed: int = 1) -> Figures:
    planted = plant(participants=p, statements=s, groups=3, missing=missing, shared=10, seed=seed)
    started = time.perf_counter()
    result = analyse(planted.votes, planted.seen)
    seconds = time.perf_counter() - started
    ari = float(adjusted_rand_score(planted.groups[result.rows], result.labels))
    return Figures(participants=p, statements=s, groups=result.k, ari=ari, seconds=seconds)


class Edits:
    """The edits (and new statement messages) reaching the fake server, read incrementally."""

    def __init__(self, fake: FakeBotApi) -> None:
        self.fake = fake
        self.seen = 0

    def new(self) -> list[tuple[int, int, float, str | None]]:
        """(chat, message id, arrival, the first vote button's data) of each edit that arrived."""
        out = []
        calls = self.fake.calls
        for call in calls[self.seen:]:
            if not call.ok or call.method != "editMessageText":
                continue
            markup = call.params.get("reply_markup") or {}
            rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
            data = rows[0][0].get("callback_data") if rows and rows[0] else None
            if data is None or OM_VOTE.parse(data) is None:
                data = None
            out.append((int(call.chat_id), int(call.params.get("message_id") or 0), call.at, data))
        self.seen = len(calls)
        return out


async def setup_round(app: object, statements: int) -> int:
    """The organizer's round for every member of the county, with `statements` seeds, opened."""
    core = app.core  # type: ignore[attr-defined]
    county = await core.orgs.by_code("bench")
    rnd = await core.deliberation.open(ORGANIZER, RoundSpec(
        org_id=county.id, title=TITLE, audience=Audience.MEMBERS, include_below=True,
        opinions_until=START + timedelta(days=3)))
    await core.opinions.enable(ORGANIZER, rnd.id)
    seeds = [f"第{i + 1}条：养护费用按{i + 1}成由村里出" for i in range(statements)]
    await core.opinions.seed(ORGANIZER, rnd.id, seeds)
    await core.opinions.open_map(ORGANIZER, rnd.id)
    return int(rnd.id)


async def vote_loop(fake: FakeBotApi, app: object, voters: list[int], round_id: int, statements: int,
                    per_person: int, think: tuple[float, float], rng: random.Random) -> Figures:
    """Long because: the loop drives every voter (taps at planned moments, each after the previous
    screen arrived) and reads the server's arrivals in one place, so nothing is scanned twice."""
    planted = plant(participants=len(voters), statements=statements, groups=3, missing=0.0, shared=3, seed=2)
    row = {uid: i for i, uid in enumerate(voters)}
    core = app.core  # type: ignore[attr-defined]
    first_sid = int(await core.db.fetchval("SELECT MIN(id) FROM om_statements WHERE round_id = ?", (round_id,)))
    users = {uid: fake.user(uid, first_name=f"党员{uid}") for uid in voters}
    edits = Edits(fake)
    screens: dict[int, tuple[int, str]] = {}
    notices = {}
    deadline = time.monotonic() + len(voters) / 10 + 120
    while len(notices) < len(voters) and time.monotonic() < deadline:
        for uid in voters:  # each taps 🗳 表态 as soon as the map's notice is there
            notice = next((m for m in fake.sent(uid) if m.has(NOTICE)), None) if uid not in notices else None
            if notice is not None:
                notices[uid] = notice.message_id
                users[uid].press_data(notices[uid], OM_ROUND(OmAct.START, round_id))
        await asyncio.sleep(0.05)

    def collect() -> list[tuple[int, int, float, str | None]]:
        arrived = edits.new()
        for chat, message_id, _, data in arrived:
            if data is not None and chat in row:
                screens[chat] = (message_id, data)
        return arrived

    def everyone_has_one() -> bool:
        collect()
        return len(screens) == len(voters)

    await wait_until(everyone_has_one, time.monotonic() + len(voters) / 10 + 120)
    # Everyone has a statement in front of them: from now on they all vote.
    now = time.monotonic()
    due = [(now + rng.uniform(*think), uid) for uid in voters]
    heapq.heapify(due)
    pressed: dict[int, float] = {}
    done = {uid: 0 for uid in voters}
    latencies: list[float] = []
    recompute: asyncio.Task[object] | None = None
    total = len(voters) * per_person
    deadline = time.monotonic() + per_person * (think[1] + 5) + 120
    while (due or pressed) and time.monotonic() < deadline:
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, uid = heapq.heappop(due)
            message_id, data = screens[uid]
            vote = OM_VOTE.parse(data)
            assert vote is not None
            choice = CHOICE_OF[int(planted.votes[row[uid], (vote.statement_id - first_sid) % statements])]
            users[uid].press_data(message_id, OM_VOTE(vote.statement_id, choice))
            pressed[uid] = time.monotonic()
        for chat, message_id, at, data in collect():
            if chat not in pressed or message_id != notices[chat]:  # only the screen's own edit answers a tap
                continue
            latencies.append((at - pressed.pop(chat)) * 1000)
            done[chat] += 1
            if done[chat] < per_person and data is not None:  # the next statement is in front of them
                heapq.heappush(due, (at + rng.uniform(*think), chat))
        if recompute is None and len(latencies) >= total // 2:
            recompute = asyncio.ensure_future(core.opinions.recompute(round_id, TITLE, "zh_CN"))
        await asyncio.sleep(0.002)
    failed = sum(1 for c in fake.calls if c.method == "editMessageText" and not c.ok)
    print(f"opinions: loop ended {'in time' if time.monotonic() < deadline else 'at the deadline'};"
          f" {len(pressed)} taps unanswered, {len(due)} still to make, {failed} failed edits", flush=True)
    if recompute is not None:
        await recompute
    stored = int(await core.db.fetchval("SELECT COUNT(*) FROM om_votes WHERE round_id = ?", (round_id,)))
    return Figures(participants=0, statements=statements, groups=0, ari=0.0, seconds=0.0, voters=len(voters),
                   votes=len(latencies), p50_ms=percentile(latencies, 50), p99_ms=percentile(latencies, 99),
                   unanswered=total - len(latencies), stored=stored)


async def loop_run(v: int, statements: int, per_person: int, think: tuple[float, float], seed: int = 1) -> Figures:
    fake = FakeBotApi(limits=Limits(), auto_chats=True)
    await fake.start()
    clock = SettableClock(START)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(token=TOKEN, api_url=fake.base_url, file_url=fake.base_file_url,
                            database=Path(tmp) / "bench.sqlite3", timezone="Asia/Shanghai")
        app = build_application(settings, clock)
        core = app.core
        await core.open()
        org_text = org_file(v)
        async with core.db.transaction() as tx:
            await orgfile.apply(core.orgs, tx, orgfile.parse(org_text), "bench")
        await core.close()
        await start_application(app, poll_timeout=1)
        try:
            voters = sorted(attendees(org_text, "bench") - {ORGANIZER})
            round_id = await setup_round(app, statements)
            return await vote_loop(fake, app, voters, round_id, statements, per_person, think, random.Random(seed))
        finally:
            await stop_application(app)
            await fake.stop()


def line(analysis: Figures, loop: Figures) -> str:
    return (f"opinions: {analysis.participants} participants x {analysis.statements} statements -> "
            f"groups={analysis.groups} ari={analysis.ari:.3f} in {analysis.seconds:.2f} s; "
            f"vote p99={loop.p99_ms:.0f} ms")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--p", type=int, default=5000, help="participants in the planted analysis")
    parser.add_argument("--s", type=int, default=300, help="statements in the planted analysis")
    parser.add_argument("--missing", type=float, default=0.4, help="share of votes missing")
    parser.add_argument("--v", type=int, default=500, help="people voting at once through the fake Bot API")
    parser.add_argument("--k", type=int, default=10, help="votes each of them makes")
    parser.add_argument("--read", type=float, nargs=2, default=(1.5, 4.5), metavar=("MIN", "MAX"),
                        help="seconds each person reads a statement before tapping (uniform)")


def run(args: argparse.Namespace) -> list[str]:
    analysis = analysis_run(args.p, args.s, args.missing)
    loop = asyncio.run(loop_run(args.v, 30, args.k, (args.read[0], args.read[1])))
    detail = (f"opinions: vote loop {loop.voters} people x {args.k} (reading {args.read[0]:g}-{args.read[1]:g} s):"
              f" {loop.votes} votes answered,"
              f" {loop.unanswered} unanswered, {loop.stored} stored; p50={loop.p50_ms:.0f} ms")
    text = line(analysis, loop)
    print(text, flush=True)
    print(detail, flush=True)
    return [text, detail]
