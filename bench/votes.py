"""`python -m bench votes [--v V]`: an organizer opens a deliberation round with a vote for V party
members through the chat (the real Application against the fake Bot API, which enforces Telegram's
limits); when voting starts, every voter presses a choice within a window (60 s), some change their
ballot, some press twice, and outsiders press forged ballots; then the round closes on the settable
clock and its published result is checked against the presses.

Prints `votes: notices to <V> in <t> s = <r> msg/s of <limit> limit; <n> ballots in <s> s,
p99=<ms> ms; counted=<c> expected=<e> lost=<k> double=<d>`:
- t runs from the organizer's "confirm" tap to the last opening notice arriving at the server (it
  includes writing the round and queueing V notices in one transaction); r = voters notified / t;
- n is every press made (ballots, changes, second presses and forged ones), open loop: each press is
  injected at its planned time whether or not earlier ones were answered; s runs from the first
  press to the last answer; p99 is from a press's injection to its answerCallbackQuery arriving;
- counted is what the result message (sent after the close) says per choice, summed; expected is
  what the bench computes from its own presses (each eligible voter's last choice); lost is the
  expected ballots missing from the published counts, double the published ballots beyond what
  was expected, both compared choice by choice (a forged ballot counted would show as double).

The clock is settable (the round runs over two days in minutes): the bot opens the round at 10:00
Shanghai time with opinions until 20:00 the same day (less than a day: no opinion reminders) and a
vote until 20:00 the next day (started at 20:01: no vote reminders either). So the only bulk messages
are the opening notices, the vote-start notices (the bench waits for them before the presses) and
the results.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bench.fakebotapi import TOKEN, FakeBotApi, Limits
from bench.meetings import ORGANIZER, attendees, org_file, wait_until
from bench.stats import percentile
from bot.app import build_application, start_application, stop_application
from bot.callbacks import DELIB_BALLOT, DELIB_VIEW, BallotAction
from bot.clock import SettableClock
from bot.config import Settings
from bot.context import BotApplication
from bot.services import orgfile
from schedules import run_all

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)          # a Wednesday morning
OPINIONS_UNTIL = datetime(2026, 12, 2, 20, 0, tzinfo=SHANGHAI)  # typed as "今天"
VOTES_UNTIL = datetime(2026, 12, 3, 20, 0, tzinfo=SHANGHAI)     # typed as "1天" (after the opinions' day)
TITLE = "全县村级道路硬化方案表决"
CHOICES = ("修水泥路", "修柏油路", "先不修")
NOTICE = "民主议事，请您参加"      # the opening notice (delib.notice)
VOTE_START = "开始投票了"           # the vote-start notice (delib.vote_start)
FIRST_OUTSIDER = 9_000_001
CHANGE_SHARE = 0.10
TWICE_SHARE = 0.01
FORGED_SHARE = 0.01
TWICE_GAP = 0.05      # seconds between the two presses of a double press
CHANGE_GAP = 1.0      # a changed ballot comes at least this long after the first (each chat is serial anyway)


@dataclass(frozen=True)
class Press:
    at: float          # seconds after the window opens
    user: int
    choice: int
    eligible: bool


@dataclass
class Outcome:
    voters: int
    notice_time: float
    rate: float
    presses: int
    press_span: float
    p99_ms: float
    counted: dict[str, int]
    expected: dict[str, int]
    ballots: int            # the result's turnout line
    refused_forged: int     # forged presses answered with a refusal
    unanswered: int

    @property
    def lost(self) -> int:
        return sum(max(0, n - self.counted.get(label, 0)) for label, n in self.expected.items())

    @property
    def double(self) -> int:
        return sum(max(0, n - self.expected.get(label, 0)) for label, n in self.counted.items())


def share(n: int, fraction: float) -> int:
    """`fraction` of n people, at least one (a small run still has each kind of press)."""
    return max(1, round(n * fraction)) if n else 0


def votes_org_file(v: int, outsiders: int) -> str:
    """bench/meetings.py's county of V members under an organizer, plus a neighbouring county
    whose members are outside the round's audience (they press forged ballots)."""
    data = yaml.safe_load(org_file(v))
    data["orgs"].append({"code": "neighbour", "name": "邻县党委", "kind": "county"})
    data["people"] += [{"telegram_id": FIRST_OUTSIDER + i, "name": f"邻县党员{i}", "roles": ["member@neighbour"]}
                       for i in range(outsiders)]
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def plan_presses(voters: list[int], outsiders: list[int], window: float,
                 rng: random.Random) -> tuple[list[Press], dict[int, int]]:
    """Every voter's press at a random moment of the window; 10% change to another choice later,
    1% press the same twice quickly; each outsider one forged ballot. Returns the presses in time
    order and each voter's last choice (what must be counted)."""
    shuffled = rng.sample(voters, len(voters))
    changers = set(shuffled[:share(len(voters), CHANGE_SHARE)])
    twice = set(shuffled[len(changers):len(changers) + share(len(voters), TWICE_SHARE)])
    presses: list[Press] = []
    last: dict[int, int] = {}
    for uid in voters:
        choice = rng.randrange(len(CHOICES))
        if uid in changers:
            first = rng.uniform(0, max(0.0, window - CHANGE_GAP))
            other = (choice + rng.randrange(1, len(CHOICES))) % len(CHOICES)
            presses += [Press(first, uid, choice, True),
                        Press(rng.uniform(first + CHANGE_GAP, max(first + CHANGE_GAP, window)), uid, other, True)]
            choice = other
        elif uid in twice:
            at = rng.uniform(0, max(0.0, window - TWICE_GAP))
            presses += [Press(at, uid, choice, True), Press(at + TWICE_GAP, uid, choice, True)]
        else:
            presses.append(Press(rng.uniform(0, window), uid, choice, True))
        last[uid] = choice
    presses += [Press(rng.uniform(0, window), uid, rng.randrange(len(CHOICES)), False) for uid in outsiders]
    return sorted(presses, key=lambda p: p.at), last


async def open_by_chat(fake: FakeBotApi, v: int) -> float:
    """/newdeliberation by the organizer: the county and every org below, party members, opinions
    until tonight, a vote with three choices, single choice, open ballot, results at the close.
    Returns the moment of the "confirm" tap."""
    organizer = fake.user(ORGANIZER, first_name="县组织委员")
    organizer.send("/newdeliberation")
    step = await fake.wait_message(ORGANIZER, contains="要为哪个组织发起议事")
    organizer.press(step, "基准县委")
    step = await fake.wait_message(ORGANIZER, contains="请谁参加")
    organizer.press(step, "这个组织和下面所有的组织")
    await fake.wait_message(ORGANIZER, contains="请输入议题")
    organizer.send(TITLE)
    step = await fake.wait_message(ORGANIZER, contains="请介绍一下情况")
    organizer.press(step, "✅ 介绍完了")
    step = await fake.wait_message(ORGANIZER, contains="请哪些人参加")
    organizer.press(step, "党员")
    await fake.wait_message(ORGANIZER, contains="说意见到什么时候截止")
    organizer.send("今天")
    step = await fake.wait_message(ORGANIZER, contains="要不要大家投票")
    organizer.press(step, "要投票")
    await fake.wait_message(ORGANIZER, contains="投票到什么时候截止")
    organizer.send("1天")
    await fake.wait_message(ORGANIZER, contains="请输入投票的选项")
    organizer.send("\n".join(CHOICES))
    step = await fake.wait_message(ORGANIZER, contains=f"{len(CHOICES)}. {CHOICES[-1]}")
    organizer.press(step, "✅ 选项写完了")
    step = await fake.wait_message(ORGANIZER, contains="每人能选几项")
    organizer.press(step, "只能选一项")
    step = await fake.wait_message(ORGANIZER, contains="记名还是无记名")
    organizer.press(step, "记名投票（投了可以改）")
    step = await fake.wait_message(ORGANIZER, contains="随时看到结果")
    organizer.press(step, "不能，结束后再公布")
    confirm = await fake.wait_message(ORGANIZER, contains=f"发起后会马上通知{v}人", timeout=60)
    confirmed = time.monotonic()
    organizer.press(confirm, "✅ 确定发起")
    return confirmed


class Arrivals:
    """What reached the fake server, read incrementally (the bench runs in the bot's process:
    rescanning every call while polling would take CPU from the bot it measures)."""

    def __init__(self, fake: FakeBotApi, markers: tuple[str, ...]) -> None:
        self.fake = fake
        self.markers = markers
        self.seen = 0
        self.notices: dict[str, dict[int, tuple[int, float]]] = {}  # marker → chat → (message id, arrival)
        self.answers: dict[str, tuple[float, str]] = {}              # callback id → (arrival, text)

    def update(self) -> None:
        calls = self.fake.calls
        for call in calls[self.seen:]:
            if call.ok and call.method == "sendMessage":
                text = call.params.get("text") or ""
                for marker in self.markers:
                    if marker in text and TITLE in text:
                        self.notices.setdefault(marker, {}).setdefault(
                            call.chat_id, (call.result["message_id"], call.at))
            elif call.method == "answerCallbackQuery":
                cb = str(call.params.get("callback_query_id"))
                self.answers.setdefault(cb, (call.at, str(call.params.get("text") or "")))
        self.seen = len(calls)

    def delivered(self, marker: str) -> dict[int, tuple[int, float]]:
        self.update()
        return self.notices.get(marker, {})


async def wait_notices(arrivals: Arrivals, marker: str, voters: set[int], since: float,
                       limit: int) -> tuple[float, float]:
    """Wait for `marker` notices to every voter; (seconds from `since` to the last, rate)."""
    def done() -> bool:
        return voters <= set(arrivals.delivered(marker))

    await wait_until(done, since + len(voters) / limit * 3 + 120)
    got = {chat: at for chat, (_, at) in arrivals.delivered(marker).items() if chat in voters}
    last = max(got.values(), default=time.monotonic())
    elapsed = max(last - since, 1e-9)
    return elapsed, len(got) / elapsed


async def settle(fake: FakeBotApi, app: BotApplication, timeout: float = 120.0) -> None:
    """Every update injected so far has been fetched and handled."""
    await fake.wait_for(lambda: not fake.pending_updates, timeout=timeout, message="updates not fetched")
    await asyncio.wait_for(app.update_queue.join(), timeout)


async def press_all(fake: FakeBotApi, presses: list[Press], round_id: int,
                    messages: dict[int, int]) -> dict[str, tuple[float, Press]]:
    """Inject every press at its planned moment (open loop: never waiting for answers); returns
    callback query id → (injection moment, press)."""
    sent: dict[str, tuple[float, Press]] = {}
    users = {p.user: fake.user(p.user, first_name=f"党员{p.user}") for p in presses}
    opened = time.monotonic()
    for press in presses:
        delay = opened + press.at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data = DELIB_BALLOT(BallotAction.CAST, round_id, 1 << press.choice)
        # An outsider has no notice of this round: the forged press names a message of their own chat.
        update = users[press.user].press_data(messages.get(press.user, 1), data)
        sent[update["callback_query"]["id"]] = (time.monotonic(), press)
    return sent


def read_result(text: str) -> tuple[dict[str, int], int]:
    """The published counts per choice and the turnout, from the result message's lines
    "· 修水泥路：12票" and "投票人数：40人"."""
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^· (.+?)：(\d+)票$", text, re.MULTILINE)}
    turnout = re.search(r"投票人数：(\d+)人", text)
    return counts, int(turnout.group(1)) if turnout else 0


async def votes_run(v: int, limit: int, window: float, seed: int = 1) -> Outcome:
    """Long because: one run reads best as the story it measures, step by step."""
    fake = FakeBotApi(limits=Limits(global_per_second=limit), auto_chats=True)
    await fake.start()
    clock = SettableClock(START)
    outsiders = [FIRST_OUTSIDER + i for i in range(share(v, FORGED_SHARE))]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(token=TOKEN, api_url=fake.base_url, file_url=fake.base_file_url,
                            database=Path(tmp) / "bench.sqlite3", timezone="Asia/Shanghai")
        app = build_application(settings, clock)
        core = app.core
        await core.open()
        org_text = votes_org_file(v, len(outsiders))
        async with core.db.transaction() as tx:
            await orgfile.apply(core.orgs, tx, orgfile.parse(org_text), "bench")
        await core.close()
        await start_application(app, poll_timeout=1)
        try:
            voters = attendees(org_text, "bench") - {ORGANIZER}
            arrivals = Arrivals(fake, (NOTICE, VOTE_START))
            confirmed = await open_by_chat(fake, v)
            notice_time, rate = await wait_notices(arrivals, NOTICE, voters, confirmed, limit)
            first_notice = arrivals.delivered(NOTICE)[min(voters)][0]
            notice = fake.message(min(voters), first_notice)
            assert notice is not None and notice.reply_markup is not None
            view = DELIB_VIEW.parse(notice.reply_markup["inline_keyboard"][0][0]["callback_data"])
            assert view is not None, "the notice has no button to the round"
            round_id = view.round_id

            # Voting starts at the opinions' deadline (the job, on the settable clock).
            started = time.monotonic()
            clock.set(OPINIONS_UNTIL + timedelta(minutes=1))
            await run_all(app)
            vote_time, vote_rate = await wait_notices(arrivals, VOTE_START, voters, started, limit)
            log.info("votes: vote-start notices to %d in %.1f s = %.1f msg/s", len(voters), vote_time, vote_rate)
            messages = {chat: mid for chat, (mid, _) in arrivals.delivered(VOTE_START).items()}

            presses, last = plan_presses(sorted(voters), outsiders, window, random.Random(seed))
            sent = await press_all(fake, presses, round_id, messages)
            def answered() -> bool:
                arrivals.update()
                return set(sent) <= set(arrivals.answers)

            await wait_until(answered, time.monotonic() + 120)
            await settle(fake, app)
            arrivals.update()
            answers = {cb: arrivals.answers[cb] for cb in sent if cb in arrivals.answers}
            latencies = [(answers[cb][0] - at) * 1000 for cb, (at, _) in sent.items() if cb in answers]
            span = max((a for a, _ in answers.values()), default=0.0) - min(at for at, _ in sent.values())
            refused = sum(1 for cb, (_, p) in sent.items() if not p.eligible and cb in answers
                          and "权限" in answers[cb][1])

            # The close: past the vote's deadline, the job fixes and sends the result (the opener's first).
            clock.set(VOTES_UNTIL + timedelta(minutes=1))
            await run_all(app)
            result = await fake.wait_message(ORGANIZER, contains=f"📊 民主议事结果：{TITLE}", timeout=120)
            counted, ballots = read_result(result.text)
        finally:
            await stop_application(app)
    await fake.stop()
    expected = {label: sum(1 for c in last.values() if c == i) for i, label in enumerate(CHOICES)}
    return Outcome(voters=len(voters), notice_time=notice_time, rate=rate, presses=len(sent), press_span=span,
                   p99_ms=percentile(latencies, 99), counted=counted, expected=expected, ballots=ballots,
                   refused_forged=refused, unanswered=len(sent) - len(answers))


def line(out: Outcome, limit: int) -> str:
    return (f"votes: notices to {out.voters} in {out.notice_time:.1f} s = {out.rate:.1f} msg/s of {limit} limit;"
            f" {out.presses} ballots in {out.press_span:.1f} s, p99={out.p99_ms:.0f} ms;"
            f" counted={sum(out.counted.values())} expected={sum(out.expected.values())}"
            f" lost={out.lost} double={out.double}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--v", type=int, default=5000, help="eligible voters (party members in the county)")
    parser.add_argument("--limit", type=int, default=30, help="messages per second the fake server allows")
    parser.add_argument("--window", type=float, default=60.0, help="seconds over which the voters press")


def run(args: argparse.Namespace) -> list[str]:
    """One run; the line is also appended to bench/results/votes.txt."""
    out = asyncio.run(votes_run(args.v, args.limit, args.window))
    log.info("votes: counted %s expected %s, turnout %d, forged refused %d, unanswered %d",
             out.counted, out.expected, out.ballots, out.refused_forged, out.unanswered)
    text = line(out, args.limit)
    print(text, flush=True)
    return [text]
