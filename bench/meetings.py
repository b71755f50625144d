"""`python -m bench meetings [--m M]`: an organizer schedules one meeting for an org subtree of M
members through the chat (the real Application against the fake Bot API, which enforces Telegram's
limits); then reminders of a few branch meetings fall due during the run, on a real clock.

Prints `meetings: notices to <M> members in <t> s = <r> msg/s of <limit> limit; reminders
due→sent p50=<ms> p99=<ms>, lost=<k>, duplicates=<d>`:
- t runs from the organizer's "confirm" tap to the last notice arriving at the server (it includes
  writing the meeting, its M attendees, M notices and 2·M reminder rows in one transaction);
- reminder lateness is arrival at the server minus the row's not-before time, measured once the
  big notice run is over (so not rate-limited by it);
- lost and duplicates count every notice and reminder against what each member should get.

The bot runs in a fixed-offset time zone chosen so that it is midday there: the default
Asia/Shanghai would move reminders due at night (22:00–07:00) to the evening before.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bench.fakebotapi import TOKEN, FakeBotApi, Limits
from bench.stats import percentile
from bot.app import build_application, start_application, stop_application
from bot.callbacks import MEETING_FLOW, FlowAction
from bot.clock import Clock
from bot.config import Settings
from bot.services import orgfile
from bot.services.meetings import Draft

log = logging.getLogger(__name__)

ORGANIZER = 8_000_000
FIRST_MEMBER = 8_000_001
TOWNSHIPS = 5
BRANCHES_PER_TOWNSHIP = 20
BIG_TOPIC = "全县基层党建工作月例会"
SMALL_MEETINGS = 5          # branch meetings whose 2-hour reminders fall due during the run
REMINDER_LEAD = 25.0        # seconds after scheduling that the first of them falls due
REMINDER_STEP = 10.0        # seconds between their due times
REMINDER_OFFSET = timedelta(hours=2)  # the default reminder before a meeting (the 1-day one has passed)


def midday_zone() -> str:
    """An Etc/GMT zone where it is about noon now (Etc/GMT-8 is UTC+8)."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def org_file(m: int) -> str:
    """County → townships → branches, M members spread over the branches, one organizer at the top."""
    lines = ["orgs:", "  - code: bench", "    name: 基准县委", "    kind: county", "    children:"]
    for t in range(TOWNSHIPS):
        lines += [f"      - code: t{t}", f"        name: 第{t + 1}镇党委", "        kind: township",
                  "        children:"]
        for b in range(BRANCHES_PER_TOWNSHIP):
            lines.append(f"          - {{code: b{t}x{b}, name: 第{t + 1}镇第{b + 1}村党支部, kind: village_branch}}")
    lines += ["people:", f"  - {{telegram_id: {ORGANIZER}, name: 县组织委员, roles: [organizer@bench]}}"]
    branches = TOWNSHIPS * BRANCHES_PER_TOWNSHIP
    for i in range(m):
        code = f"b{(i % branches) // BRANCHES_PER_TOWNSHIP}x{(i % branches) % BRANCHES_PER_TOWNSHIP}"
        lines.append(f"  - {{telegram_id: {FIRST_MEMBER + i}, name: 党员{i}, roles: [member@{code}]}}")
    return "\n".join(lines) + "\n"


def attendees(org_text: str, code: str) -> set[int]:
    """Everyone with a member, secretary or organizer role in `code` or an org below it, read from
    the org file itself (what a meeting of that org with "every org below" must reach)."""
    data = yaml.safe_load(org_text)
    below: set[str] = set()

    def walk(nodes: list[dict], inside: bool) -> None:
        for node in nodes:
            here = inside or node["code"] == code
            if here:
                below.add(node["code"])
            walk(node.get("children", []), here)

    walk(data["orgs"], False)
    found = set()
    for person in data["people"]:
        for role in person["roles"]:
            name, _, org = role.partition("@")
            if name in ("member", "secretary", "organizer") and org in below:
                found.add(int(person["telegram_id"]))
    return found


async def wait_until(check: object, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


async def meetings_run(m: int, limit: int) -> str:
    fake = FakeBotApi(limits=Limits(global_per_second=limit), auto_chats=True)
    await fake.start()
    zone = midday_zone()
    tz = ZoneInfo(zone)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(token=TOKEN, api_url=fake.base_url, file_url=fake.base_file_url,
                            database=Path(tmp) / "bench.sqlite3", timezone=zone)
        app = build_application(settings, Clock())
        core = app.core
        await core.open()
        org_text = org_file(m)
        plan = orgfile.parse(org_text)
        async with core.db.transaction() as tx:
            await orgfile.apply(core.orgs, tx, plan, "bench")
        await core.close()
        await start_application(app, poll_timeout=1)
        try:
            members = attendees(org_text, "bench") - {ORGANIZER}

            def notices(topic: str) -> list[int]:
                return [c.params["chat_id"] for c in fake.calls_to("sendMessage")
                        if c.ok and "会议通知" in c.params["text"] and topic in c.params["text"]]

            # The organizer schedules the meeting in chat: kind, org, "and every org below", date, place, topic.
            organizer = fake.user(ORGANIZER, first_name="县组织委员")
            day = (datetime.now(tz) + timedelta(days=3)).date()
            organizer.send("/newmeeting")
            step = await fake.wait_message(ORGANIZER, contains="请选择会议类型")
            organizer.press(step, "月例会")
            step = await fake.wait_text(ORGANIZER, "请选择组织")
            organizer.press(step, "基准县委")
            step = await fake.wait_text(ORGANIZER, "这次会议通知谁")
            organizer.press(step, MEETING_FLOW(FlowAction.SCOPE, 1))
            await fake.wait_text(ORGANIZER, "请选择开会日期")
            organizer.send(f"{day.isoformat()} 10:00-12:00")  # with its end: no length step
            await fake.wait_message(ORGANIZER, contains="请输入开会地点")
            organizer.send("县委大礼堂")
            await fake.wait_message(ORGANIZER, contains="请输入会议议题")
            organizer.send(BIG_TOPIC)
            confirm = await fake.wait_message(ORGANIZER, contains=f"应到 {m + 1} 人", timeout=60)
            confirmed = time.monotonic()
            organizer.press(confirm, "✅ 确认，发通知")
            finished = await wait_until(lambda: len(notices(BIG_TOPIC)) >= m, confirmed + m / limit * 3 + 120)
            sent = [c for c in fake.calls_to("sendMessage") if c.ok and BIG_TOPIC in c.params["text"]
                    and "会议通知" in c.params["text"]]
            last = max(c.at for c in sent) if sent else time.monotonic()
            first = min(c.at for c in sent) if sent else last
            log.info("meetings: confirm→first notice %.1f s, first→last %.1f s = %.1f msg/s", first - confirmed,
                     last - first, (len(sent) - 1) / max(last - first, 1e-9))
            elapsed = last - confirmed
            rate = len(set(notices(BIG_TOPIC)) & members) / elapsed if finished else 0.0

            # Reminders on a real clock: branch meetings whose 2-hour reminder falls due shortly.
            # Who should hear and when comes from the org file and each meeting's start, not from
            # what the bot queued: a member the bot never queued counts as lost.
            service = core.meetings
            wall, mono = datetime.now(UTC), time.monotonic()
            expected_small: dict[tuple[str, int], float] = {}  # (topic, chat) → monotonic time it falls due
            for i in range(SMALL_MEETINGS):
                branch = await core.orgs.by_code(f"b0x{i}")
                start = wall + REMINDER_OFFSET + timedelta(seconds=REMINDER_LEAD + REMINDER_STEP * i)
                topic = f"第{i + 1}支部会议"
                await service.create(ORGANIZER, Draft(
                    kind="general_meeting", org_id=branch.id, starts_at=start, ends_at=start + timedelta(hours=2),
                    place="村委会", topic=topic))
                due = mono + (start - REMINDER_OFFSET - wall).total_seconds()
                for chat in attendees(org_text, f"b0x{i}") - {ORGANIZER}:
                    expected_small[(topic, chat)] = due

            def sent_about(kind: str, topic: str) -> list[tuple[int, float]]:
                return [(c.params["chat_id"], c.at) for c in fake.calls_to("sendMessage")
                        if c.ok and kind in c.params["text"] and topic in c.params["text"]]

            topics = sorted({t for t, _ in expected_small})

            def reminded() -> dict[tuple[str, int], list[float]]:
                got: dict[tuple[str, int], list[float]] = {}
                for c in fake.calls_to("sendMessage"):
                    if c.ok and "会议提醒" in c.params["text"]:
                        for topic in topics:
                            if topic in c.params["text"]:
                                got.setdefault((topic, c.params["chat_id"]), []).append(c.at)
                return got

            await wait_until(lambda: set(expected_small) <= set(reminded()),
                             mono + REMINDER_LEAD + REMINDER_STEP * SMALL_MEETINGS + 60)
            await asyncio.sleep(1.0)  # let a would-be duplicate show itself
            reminders = reminded()
            lateness = [(min(reminders[key]) - due) * 1000 for key, due in expected_small.items() if key in reminders]

            expected: Counter[tuple[str, int]] = Counter({("big", c): 1 for c in members})
            got: Counter[tuple[str, int]] = Counter(("big", c) for c, _ in sent_about("会议通知", BIG_TOPIC))
            for topic, chat in expected_small:
                expected[("reminder " + topic, chat)] = expected[("notice " + topic, chat)] = 1
            for topic in topics:
                got.update(("notice " + topic, c) for c, _ in sent_about("会议通知", topic))
                got.update(("reminder " + topic, c) for c, _ in sent_about("会议提醒", topic))
            lost = sum(1 for key in expected if got[key] == 0)
            duplicates = sum(max(0, got[key] - 1) for key in got)
        finally:
            await stop_application(app)
    await fake.stop()
    p50, p99 = percentile(lateness, 50), percentile(lateness, 99)
    return (f"meetings: notices to {m} members in {elapsed:.1f} s = {rate:.1f} msg/s of {limit} limit;"
            f" reminders due→sent p50={p50:.0f} p99={p99:.0f}, lost={lost}, duplicates={duplicates}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--m", type=int, default=5000, help="members in the org subtree")
    parser.add_argument("--limit", type=int, default=30, help="messages per second the fake server allows")


def run(args: argparse.Namespace) -> list[str]:
    """One run; the line is also appended to bench/results/meetings.txt."""
    line = asyncio.run(meetings_run(args.m, args.limit))
    print(line, flush=True)
    return [line]
