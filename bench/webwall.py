"""`python -m bench webwall [--n N]`: load time of the echo wall web page (20 problems a page) on a wall of N
answered public problems, first page, deep pages and backwards, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from service_fixtures import TREE, load, make_core
from webwall_fixtures import seed_bulk

from bot.services.echo_wall import PAGE_SIZE, EchoWall
from bot.web import WallSite

ROUNDS = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=100_000, help="answered public problems on the wall")


async def timed(session: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with session.get(url) as response:
        body = await response.text()
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status == 200 and body.count("<article") == PAGE_SIZE, (response.status, url)
    return elapsed


async def measure(n: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        core = make_core(Path(tmp) / "wall.sqlite3")
        await core.open()
        await load(core, TREE)
        await seed_bulk(core, "sanyi", n)
        await seed_bulk(core, "erlang", n // 10, start_id=5_000_000)  # a neighbour's wall in the same table
        wall = EchoWall(core)
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
        }
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
