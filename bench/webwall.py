"""`python -m bench webwall [--n N]`: load time of the echo wall web page (20 problems a page) on a wall of N
answered public problems, first page, deep pages and backwards, over real HTTP on 127.0.0.1; and of its
two other parts, deliberation results and 四议两公开 matters (N/50 of each, 10 a page)."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from bot.clock import SettableClock, to_db
from bot.config import Settings
from bot.core import Core
from bot.services import orgfile
from bot.services.echo_wall import MATTER_PAGE_SIZE, PAGE_SIZE, ROUND_PAGE_SIZE
from bot.web import WallSite

ROUNDS = 30
RESIDENT = 2001
ORG_FILE = f"""\
orgs:
  - code: longjuzhai
    name: 龙驹寨街道党工委
    kind: township
    children:
      - {{code: sanyi, name: 三义村党支部, kind: village_branch}}
      - {{code: erlang, name: 二郎村党支部, kind: village_branch}}
people:
  - {{telegram_id: {RESIDENT}, name: 村民, roles: [resident@sanyi]}}
"""


async def seed_bulk(core: Core, org_code: str, n: int, resident: int, start_id: int = 1_000_000) -> None:
    """n answered public problems, one a minute, written straight into the tickets table."""
    org = await core.orgs.by_code(org_code)
    assert org is not None
    now = core.clock.now()
    rows = []
    for i in range(n):
        at = to_db(now - timedelta(minutes=n - i))
        rows.append((start_id + i, org.id, org.id, resident, "infrastructure", 1, 0, "closed" if i % 3 else "answered",
                     f"第{i}号问题：水管漏水，电话{13800000000 + i}", f"k{i}", at, at, f"已修好 {i}", at, at, at))
    async with core.db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO tickets (id, org_id, handler_org_id, resident_id, category, public_ok, anonymous, status,"
            " summary, content_key, accept_due, answer_due, answer_text, created_at, accepted_at, answered_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)



async def seed_bulk_parts(core: Core, org_code: str, n: int, start_id: int = 1_000_000) -> None:
    """n closed deliberation rounds with a fixed result and n matters with both publications and four
    stages, one an hour, written straight into the tables."""
    org = await core.orgs.by_code(org_code)
    assert org is not None
    now = core.clock.now()
    result = json.dumps({"options": [["修水泥路", 30], ["先不修", 12]], "ballots": 42, "proxies": 3, "eligible": 60,
                         "opinions": 9, "top": [["先修到小学门口", 7]], "voted": True}, ensure_ascii=False)
    rounds, matters, stages = [], [], []
    for i in range(n):
        at = to_db(now - timedelta(hours=n - i))
        rounds.append((start_id + i, org.id, "both", f"第{i}次议事：修不修路", 1, at, at, at, at, result))
        matters.append((start_id + i, org.id, f"第{i}件事：修建村道", "12万元", 1, at, 4, at,
                        "修建村西到小学的水泥路。", at, "路修好了。", at))
        stages.extend((start_id + i, stage, at[:10], "passed", 1, at) for stage in (1, 2, 3, 4))
    async with core.db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO delib_rounds (id, org_id, audience, title, opened_by, opened_at, opinions_until, votes_until,"
            " ended_at, result, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'closed')", rounds)
        await tx.executemany(
            "INSERT INTO matters (id, org_id, title, estimate, opened_by, opened_at, stage, waiting_since,"
            " decision_text, decision_at, result_text, result_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " 'done')", matters)
        await tx.executemany(
            "INSERT INTO matter_stages (matter_id, stage, held_on, outcome, recorded_by, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?)", stages)





def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=100_000, help="answered public problems on the wall")


async def timed(session: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with session.get(url) as response:
        body = await response.text()
    elapsed = (time.perf_counter() - start) * 1000
    expected = ROUND_PAGE_SIZE if "show=rounds" in url else MATTER_PAGE_SIZE if "show=matters" in url else PAGE_SIZE
    assert response.status == 200 and body.count("<article") == expected, (response.status, url)
    return elapsed


async def measure(n: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, token=None, database=Path(tmp) / "wall.sqlite3")  # type: ignore[call-arg]
        core = Core.build(settings, SettableClock(datetime.now(UTC)))
        await core.open()
        async with core.db.transaction() as tx:
            await orgfile.apply(core.orgs, tx, orgfile.parse(ORG_FILE), source_note="bench")
        await seed_bulk(core, "sanyi", n, RESIDENT)
        wall = core.echo_wall
        await seed_bulk(core, "erlang", n // 10, RESIDENT, start_id=5_000_000)  # a neighbour's wall in the same table
        await seed_bulk_parts(core, "sanyi", n // 50)
        await seed_bulk_parts(core, "erlang", n // 50, start_id=5_000_000)
        deep_round = (await wall.rounds("sanyi", "zh_CN", size=n // 100)).older if n >= 1000 else None
        # Cursors of a page in the middle and of the last full page, walked to as a reader would.
        middle_at, last_at = n // PAGE_SIZE // 2, n // PAGE_SIZE - 1
        page, cursors = await wall.page("sanyi", "zh_CN"), {}  # page number (from 0) -> its `before` link
        for number in range(1, last_at + 1):
            assert page.older is not None
            cursors[number] = page.older
            page = await wall.page("sanyi", "zh_CN", before=page.older)
        site = WallSite(core)
        await site.start("127.0.0.1", 0)
        assert site.runner is not None
        base = f"http://127.0.0.1:{site.runner.addresses[0][1]}/wall/sanyi"
        urls = {
            "first page": base,
            "first page, English": base + "?lang=en",
            f"page {middle_at + 1} (older)": base + f"?before={cursors[middle_at]}",
            f"page {last_at + 1} (last)": base + f"?before={cursors[last_at]}",
            "a middle page, backwards (after=)": base + f"?after={cursors[middle_at + 1]}",
            f"deliberation results, first page (of {n // 50})": base + "?show=rounds",
            "四议两公开 matters, first page": base + "?show=matters",
        }
        if deep_round is not None:
            urls["deliberation results, a middle page"] = base + f"?show=rounds&before={deep_round}"
        lines = []
        try:
            async with aiohttp.ClientSession() as session:
                for name, url in urls.items():
                    await timed(session, url)  # warm
                    times = sorted([await timed(session, url) for _ in range(ROUNDS)])
                    lines.append(f"webwall n={n} {name}: median {statistics.median(times):.1f} ms,"
                                 f" worst {times[-1]:.1f} ms of {ROUNDS}")
        finally:
            await site.stop()
            await core.close()
    return lines


def run(args: argparse.Namespace) -> list[str]:
    lines = asyncio.run(measure(args.n))
    for line in lines:
        print(line)
    return lines
