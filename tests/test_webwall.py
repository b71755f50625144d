"""The echo wall for people without the bot: the web page (over real HTTP, and in headless Chromium)
and the monthly poster (rendered to PNG, its QR code decoded).

Tests that need Chromium, a CJK font or pdftoppm skip when those are missing, except in CI
(CI=true), where they fail: .ci/system-deps.sh installs them."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import aiohttp
import pytest
import zxingcpp
from pg import ON_PG, env_database
from PIL import Image
from service_fixtures import (  # noqa: F401  (the `clock`, `core` and `tree` fixtures)
    ADMIN,
    RESIDENT,
    SECRETARY,
    TREE,
    clock_fixture,
    core_fixture,
    load,
    make_core,
    tree_fixture,
)
from webwall_fixtures import (
    NEVER,
    PHONE,
    SECRETS,
    Seeded,
    cjk_font_or_skip,
    need,
    pdf_pages,
    pdf_text,
    seed_real,
    seed_rounds_and_matters,
)

from bench.webwall import seed_bulk, seed_bulk_parts
from bot.clock import SettableClock
from bot.core import Core
from bot.poster import make_poster, wrap
from bot.services.echo_wall import MATTER_PAGE_SIZE, PAGE_SIZE, ROUND_PAGE_SIZE, BadCursor, EchoWall
from bot.services.orgs import NotAllowed
from bot.services.tickets import Item
from bot.web import WallSite, parse_address

ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("WEBWALL_SHOTS", "")) if os.environ.get("WEBWALL_SHOTS") else None


@pytest.fixture
async def site(tree: Core, clock: SettableClock) -> AsyncIterator[tuple[str, Core, list[int]]]:
    made = await seed_real(tree, clock)
    wall = WallSite(tree)
    await wall.start("127.0.0.1", 0)
    assert wall.runner is not None
    port = wall.runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", tree, made
    finally:
        await wall.stop()


@pytest.fixture
async def seeded(site: tuple[str, Core, list[int]], clock: SettableClock) -> Seeded:
    """Deliberation rounds and 四议两公开 matters on the same wall, made through their services."""
    return await seed_rounds_and_matters(site[1], clock)


async def get(url: str, method: str = "GET") -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.request(method, url) as response:
        return response.status, await response.text(), dict(response.headers)


def assert_nothing_private(text: str) -> None:
    leaked = [s for s in (*SECRETS, *NEVER) if s in text]
    assert leaked == [], f"private data on a public page: {leaked}"


# --- the page over HTTP ---------------------------------------------------------------------------

async def test_page_shows_answered_public_problems_masked_newest_first(site: tuple[str, Core, list[int]]) -> None:
    base, _, made = site
    status, html, headers = await get(f"{base}/wall/sanyi")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "三义村党支部" in html and "回音壁" in html and '<html lang="zh-CN">' in html
    shown = [int(i) for i in re.findall(r'<article id="p(\d+)"', html)]
    assert shown == list(reversed(made))
    assert "138****5678" in html and "611025********423X" in html and "139****4321" in html
    assert "（位置：三义村党支部）" in html  # a shared location, as the village only
    assert "（村民发的是语音或照片，这里不显示）" in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html and "<script" not in html
    assert "已答复" in html and "基础设施" in html and "环境卫生" in html
    assert_nothing_private(html)
    assert "default-src 'none'" in headers["Content-Security-Policy"]


async def test_english_switch(site: tuple[str, Core, list[int]]) -> None:
    base, _, _ = site
    _, html, _ = await get(f"{base}/wall/sanyi?lang=en")
    assert '<html lang="en">' in html and "Echo wall" in html and "Problem:" in html
    assert "Infrastructure" in html or "infrastructure" in html.lower()
    assert 'href="/wall/sanyi"' in html  # back to Chinese
    _, zh, _ = await get(f"{base}/wall/sanyi")
    assert 'href="/wall/sanyi?lang=en"' in zh
    assert_nothing_private(html)


async def test_rounds_part_shows_closed_results_only_masked(site: tuple[str, Core, list[int]],
                                                            seeded: Seeded) -> None:
    base, _, _ = site
    status, html, _ = await get(f"{base}/wall/sanyi?show=rounds")
    assert status == 200
    # Both closed in the same tick: the newer round first. The cancelled round and the one still open
    # (whose counts the chat shows live) are not there.
    shown = [int(i) for i in re.findall(r'<article id="r(\d+)"', html)]
    assert shown == [seeded.secret, seeded.voted]
    assert 'aria-current="page">民主议事结果</a>' in html and "<article id=\"p" not in html
    voted = html[html.index(f'id="r{seeded.voted}"'):]
    assert "修不修村西的路" in voted and "修水泥路<b>2票</b>" in voted
    assert "先不修，有事打138****5678<b>1票</b>" in voted  # a label typed by the opener, masked too
    assert "投票人数：3人，可以投票的共3人，参与率100%" in voted and "其中代投 1 票" in voted
    assert "共收到2条意见" in voted and "大家最支持的意见：" in voted
    assert "水泥路结实，有事打我电话138****5678（1人支持）" in voted  # anonymous: no name, masked
    assert "建议先修到小学门口（0人支持）" in voted  # signed in the bot: no name on the wall either
    secret = html[html.index(f'id="r{seeded.secret}"'):html.index(f'id="r{seeded.voted}"')]
    assert "无记名投票" in secret and "甲方案<b>1票</b>" in secret and "乙方案<b>2票</b>" in secret
    assert "其中代投 1 票" in secret
    assert_nothing_private(html)


async def test_matters_part_shows_published_decisions_and_results(site: tuple[str, Core, list[int]],
                                                                  seeded: Seeded) -> None:
    base, _, _ = site
    status, html, _ = await get(f"{base}/wall/sanyi?show=matters")
    assert status == 200
    # Newest publication first: the road's result came after the lamps' decision. The matter still
    # under way and the rejected one are not there.
    assert [int(i) for i in re.findall(r'<article id="m(\d+)"', html)] == [seeded.road, seeded.lamps]
    road = html[html.index(f'id="m{seeded.road}"'):html.index(f'id="m{seeded.lamps}"')]
    assert "修建村道" in road and "预算：12万元" in road and "决议公开 · 2026年11月30日" in road
    assert "修建村西到小学的水泥路，明年春天开工。监督电话0914-" in road
    assert "<b>党支部提议：2026年11月30日，通过</b>" in road
    assert "<b>村民（代表）会议决议：2026年11月30日，通过</b>" in road
    assert "会议：商量修路，联系138****5678（2026年11月30日）" in road and "说明：支委会一致同意" in road
    assert "议事投票「修不修村西的路」：修水泥路：2票，先不修，有事打138****5678：1票（投票3人，共3人可以投）" in road
    assert "纸质投票：赞成41票，反对3票，弃权2票" in road
    assert "实施结果公开 · 2026年11月30日" in road and "路修好了，花了11.5万元。" in road
    assert "另有2张照片，网上不登" in road and "<img" not in html and not re.search(r"\b50[12]\b", html)
    lamps = html[html.index(f'id="m{seeded.lamps}"'):]
    assert "在村东安装十盏太阳能路灯。" in lamps and "办完后会在这里公开实施结果" in lamps
    assert_nothing_private(html)


async def test_rounds_and_matters_in_english_keep_their_part(site: tuple[str, Core, list[int]], seeded: Seeded) -> None:
    base, _, _ = site
    _, zh, _ = await get(f"{base}/wall/sanyi?show=rounds")
    assert 'href="/wall/sanyi?show=rounds&amp;lang=en"' in zh  # the language switch stays on this part
    _, html, _ = await get(f"{base}/wall/sanyi?show=rounds&lang=en")
    assert '<html lang="en">' in html and 'aria-current="page">Deliberation results</a>' in html
    assert "of which 1 cast on someone&#x27;s behalf" in html and "secret ballot" in html
    assert "1 supporter)" in html and "0 supporters)" in html
    assert 'href="/wall/sanyi?show=matters&amp;lang=en"' in html and 'href="/wall/sanyi?lang=en"' in html
    _, html, _ = await get(f"{base}/wall/sanyi?show=matters&lang=en")
    assert "Decision published" in html and "Result published" in html and "2 photos" in html
    assert "Party branch" in html or "party branch" in html
    assert_nothing_private(html)


async def test_rounds_and_matters_page_both_ways(site: tuple[str, Core, list[int]], seeded: Seeded) -> None:
    _, core, _ = site
    wall = EchoWall(core)
    for fetch, ids in ((wall.rounds, [seeded.secret, seeded.voted]), (wall.matters, [seeded.road, seeded.lamps])):
        first = await fetch("sanyi", "zh_CN", size=1)
        assert [e.id for e in first.entries] == ids[:1] and first.newer is None and first.older
        second = await fetch("sanyi", "zh_CN", before=first.older, size=1)
        assert [e.id for e in second.entries] == ids[1:] and second.older is None and second.newer
        back = await fetch("sanyi", "zh_CN", after=second.newer, size=1)
        assert [e.id for e in back.entries] == ids[:1] and back.newer is None
        with pytest.raises(BadCursor):
            await fetch("sanyi", "zh_CN", before="x")
    empty = await wall.rounds("erlang", "zh_CN")
    assert empty.entries == [] and empty.older is None


async def test_rounds_and_matters_queries_use_the_org_index(site: tuple[str, Core, list[int]], seeded: Seeded) -> None:
    """The org's own rounds and matters only, found by index: never a scan of every org's."""
    _, core, _ = site
    captured: list[tuple[str, tuple[object, ...]]] = []
    real = core.db.fetchall

    async def spy(sql: str, params: tuple[object, ...] = ()) -> list[object]:
        captured.append((sql, params))
        return await real(sql, params)

    core.db.fetchall = spy  # type: ignore[method-assign]
    try:
        await EchoWall(core).rounds("sanyi", "zh_CN")
        await EchoWall(core).matters("sanyi", "zh_CN")
    finally:
        core.db.fetchall = real  # type: ignore[method-assign]
    for table, index in (("delib_rounds", "delib_rounds_org"), ("matters", "matters_org")):
        sql, params = next(c for c in captured if f"FROM {table} " in c[0])
        plan = await query_plan(core, sql, params)
        if ON_PG:  # which index its planner takes on a test's few rows is its own guess: not a scan
            assert "Index Scan" in plan and f"Seq Scan on {table}" not in plan, plan
        else:
            assert f"USING INDEX {index}" in plan, plan


async def test_wall_parts_unknown_and_bad_links(site: tuple[str, Core, list[int]]) -> None:
    base, _, _ = site
    status, _, _ = await get(f"{base}/wall/sanyi?show=secrets")
    assert status == 404
    status, _, _ = await get(f"{base}/wall/sanyi?show=rounds&before=nope")
    assert status == 400
    status, html, _ = await get(f"{base}/wall/sanyi?show=matters")
    assert status == 200 and "这里还没有公开的村务决议。" in html and "<article" not in html


async def test_only_get_and_head(site: tuple[str, Core, list[int]]) -> None:
    base, core, _ = site
    before = [tuple(r) for r in await core.db.fetchall("SELECT * FROM tickets ORDER BY id")]
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for path in ("/wall/sanyi", "/", "/anything"):
            status, _, headers = await get(base + path, method)
            assert status == 405, (method, path)
            assert headers["Allow"] == "GET, HEAD"
    status, body, _ = await get(f"{base}/wall/sanyi", "HEAD")
    assert status == 200 and body == ""
    assert [tuple(r) for r in await core.db.fetchall("SELECT * FROM tickets ORDER BY id")] == before


async def test_unknown_org_and_bad_page_links(site: tuple[str, Core, list[int]]) -> None:
    base, _, _ = site
    status, html, _ = await get(f"{base}/wall/nowhere")
    assert status == 404 and "没有找到" in html
    status, _, _ = await get(f"{base}/wall/sanyi?before=1%20OR%201=1")
    assert status == 400
    status, html, _ = await get(f"{base}/wall/erlang")
    assert status == 200 and "还没有" in html and "<article" not in html


async def test_keyset_paging_walks_every_problem_once_both_ways(tree: Core) -> None:
    await seed_bulk(tree, "sanyi", 2 * PAGE_SIZE + 5, RESIDENT)
    wall = EchoWall(tree)
    seen, page = [], await wall.page("sanyi", "zh_CN")
    pages = [page]
    while page.older:
        page = await wall.page("sanyi", "zh_CN", before=page.older)
        pages.append(page)
    seen = [e.id for p in pages for e in p.entries]
    assert [len(p.entries) for p in pages] == [PAGE_SIZE, PAGE_SIZE, 5]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 2 * PAGE_SIZE + 5
    assert pages[0].newer is None and pages[1].newer is not None
    back = await wall.page("sanyi", "zh_CN", after=pages[2].newer)
    assert [e.id for e in back.entries] == [e.id for e in pages[1].entries]
    first = await wall.page("sanyi", "zh_CN", after=back.newer)
    assert [e.id for e in first.entries] == [e.id for e in pages[0].entries] and first.newer is None


async def test_rounds_and_matters_page_through_many(tree: Core) -> None:
    """The bench's bulk rounds and matters, walked page by page: each once, newest first."""
    assert ROUND_PAGE_SIZE == MATTER_PAGE_SIZE == 10
    await seed_bulk_parts(tree, "sanyi", 25)
    await seed_bulk_parts(tree, "erlang", 3, start_id=5_000_000)
    wall = EchoWall(tree)
    for fetch in (wall.rounds, wall.matters):
        page = await fetch("sanyi", "en")
        pages = [page]
        while page.older:
            page = await fetch("sanyi", "en", before=page.older)
            pages.append(page)
        ids = [e.id for p in pages for e in p.entries]
        assert [len(p.entries) for p in pages] == [10, 10, 5] and ids == sorted(set(ids), reverse=True)
        assert all(i < 5_000_000 for i in ids)


async def test_the_wall_query_uses_the_index(tree: Core) -> None:
    """No table scan and no sort, whatever the page: the cost does not grow with the wall."""
    org = await tree.orgs.by_code("sanyi")
    assert org is not None
    wall = EchoWall(tree)
    captured: list[tuple[str, tuple[object, ...]]] = []
    real = tree.db.fetchall

    async def spy(sql: str, params: tuple[object, ...] = ()) -> list[object]:
        captured.append((sql, params))
        return await real(sql, params)

    tree.db.fetchall = spy  # type: ignore[method-assign]
    try:
        await wall.page("sanyi", "zh_CN", before="2026-11-01T00:00:00.000000Z_5")
    finally:
        tree.db.fetchall = real  # type: ignore[method-assign]
    sql, params = next(c for c in captured if "FROM tickets" in c[0])
    plan = await query_plan(tree, sql, params)
    if ON_PG:  # sorting only the rows of one time by id (Incremental Sort) is not a sort of the wall
        assert "Index Scan" in plan and not re.search(r"(?<!Incremental )Sort\b", plan), plan
    else:
        assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, plan


async def query_plan(core: Core, sql: str, params: tuple[object, ...]) -> str:
    """The plan of a query, as one line: SQLite's EXPLAIN QUERY PLAN, or PostgreSQL's EXPLAIN with
    sequential scans priced out (a test's tables are so small that a scan would always win there)."""
    if not ON_PG:
        return " ".join(str(tuple(r)) for r in await core.db.fetchall("EXPLAIN QUERY PLAN " + sql, params))
    async with core.db.transaction() as tx:
        await tx.execute("SET LOCAL enable_seqscan = off")
        return " ".join(r[0] for r in await tx.fetchall("EXPLAIN " + sql, params))


def test_sized_for_large_text() -> None:
    """Every size is relative (rem/em/%), so the phone's text-size setting scales the whole page, and
    nothing stops zooming."""
    from bot.web import CSS, _document

    assert not re.search(r"font-size:\s*[\d.]+px", CSS)
    assert re.search(r"html\{font-size:1[2-9]\d%", CSS)  # larger than the browser's default
    head = _document("zh_CN", "t", "")
    assert "user-scalable" not in head and "maximum-scale" not in head


def test_address_parsing() -> None:
    assert parse_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_address("[::1]:80") == ("::1", 80)
    for bad in ("8080", "host:", "host:99999", ":80"):
        with pytest.raises(ValueError):
            parse_address(bad)


# --- the page in a real browser ---------------------------------------------------------------------

def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    browser = need("chromium")
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--force-device-scale-factor=1", "--disable-dev-shm-usage", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("name", "width"), [("phone", 390), ("desktop", 1280)])
async def test_screenshot_in_chromium(site: tuple[str, Core, list[int]], seeded: Seeded, tmp_path: Path, name: str,
                                      width: int) -> None:
    """Each part of the wall, rendered by Chromium at a phone's and a desktop's width: the page has its
    style (the red header band, the filled button of the part shown) and its content, and nothing
    private is in what the browser built."""
    need("chromium")
    base, _, _ = site
    parts = {
        "": ("村东头路灯坏了三个月", "138****5678"),
        "?show=rounds": ("修不修村西的路", "其中代投 1 票", "无记名投票", "水泥路结实，有事打我电话138****5678"),
        "?show=matters": ("修建村道", "纸质投票：赞成41票，反对3票，弃权2票", "路修好了，花了11.5万元。",
                          "在村东安装十盏太阳能路灯。"),
    }
    for query, expected in parts.items():
        shot = (SHOTS or tmp_path) / f"wall{query.replace('?show=', '-')}-{name}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        url = f"{base}/wall/sanyi{query}"
        done = await asyncio.to_thread(chromium, f"--screenshot={shot}", f"--window-size={width},1400", url)
        assert shot.is_file(), done.stderr[-2000:]
        image = Image.open(shot).convert("RGB")
        assert image.size == (width, 1400)
        # The page rendered with its style: the red header band across the whole width at the top,
        # then, below it, the filled red button of the part shown (a red run no text makes).
        band = [y for y in range(0, 400, 2) if _red_run(image, y) == width]
        assert band and band[0] == 0, query
        assert any(40 < _red_run(image, y) < width for y in range(band[-1] + 2, 700, 2)), query
        colors = {c for _, c in image.getcolors(maxcolors=1 << 20) or []}
        assert any(r < 60 and g < 60 and b < 60 for r, g, b in colors)
        dom = await asyncio.to_thread(chromium, "--dump-dom", url)
        assert all(text in dom.stdout for text in expected), (query, dom.stdout[:3000])
        assert dom.stdout.count('aria-current="page"') == 1
        assert_nothing_private(dom.stdout)


def _red_run(image: Image.Image, y: int) -> int:
    """The longest run of the header's red in row y."""
    longest = run = 0
    for x in range(image.width):
        r, g, b = image.getpixel((x, y))  # type: ignore[misc]
        run = run + 1 if r > 150 and g < 40 and b < 50 else 0
        longest = max(longest, run)
    return longest


# --- the poster ---------------------------------------------------------------------------------------

async def test_poster_has_the_month_and_a_qr_code_that_opens_the_join_link(
        site: tuple[str, Core, list[int]], tmp_path: Path) -> None:
    cjk_font_or_skip()
    _, core, _ = site
    org = await core.orgs.by_code("sanyi")
    assert org is not None
    link = await EchoWall(core).join_link(org, "branch_test_bot", SECRETARY)
    assert link.startswith("https://t.me/branch_test_bot?start=j-")
    assert await EchoWall(core).join_link(org, "branch_test_bot", SECRETARY) == link  # reused
    pdf = await make_poster(core, org, date(2026, 11, 1), "zh_CN", link)
    assert pdf.startswith(b"%PDF")
    path = (SHOTS or tmp_path) / "poster.pdf"
    path.write_bytes(pdf)
    pages = await asyncio.to_thread(pdf_pages, path, tmp_path / "poster")
    assert len(pages) == 2  # five problems with long answers flow onto a second page
    image = Image.open(pages[0]).convert("L")
    assert 1200 < image.width < 1300 and 1700 < image.height < 1800  # A4 at 150 dpi
    dark = sum(image.histogram()[:128])
    assert dark > image.width * image.height // 100  # plenty of text, not an empty page
    decoded = zxingcpp.read_barcodes(image)
    assert [d.text for d in decoded if d.format == zxingcpp.BarcodeFormat.QRCode] == [link]
    text = await asyncio.to_thread(pdf_text, path)
    assert "三义村党支部" in text and "2026年11月" in text and "138****5678" in text, text[:500]
    assert_nothing_private(text)


async def test_poster_of_an_empty_month_still_carries_the_qr_code(tree: Core, tmp_path: Path) -> None:
    cjk_font_or_skip()
    org = await tree.orgs.by_code("erlang")
    assert org is not None
    link = "https://t.me/branch_test_bot?start=j-empty"
    path = tmp_path / "empty.pdf"
    path.write_bytes(await make_poster(tree, org, date(2026, 10, 1), "en", link))
    image = Image.open((await asyncio.to_thread(pdf_pages, path, tmp_path / "empty"))[0]).convert("L")
    assert [d.text for d in zxingcpp.read_barcodes(image)] == [link]
    assert "No answered public problems" in await asyncio.to_thread(pdf_text, path)


async def test_only_a_secretary_or_above_may_make_the_poster(tree: Core) -> None:
    wall = EchoWall(tree)
    sanyi = await tree.orgs.by_code("sanyi")
    assert sanyi is not None
    assert [o.code for o in await wall.poster_orgs(SECRETARY)] == ["sanyi"]
    assert (await wall.check_poster(SECRETARY, sanyi.id)).code == "sanyi"
    assert (await wall.check_poster(ADMIN, sanyi.id)).code == "sanyi"
    with pytest.raises(NotAllowed):
        await wall.check_poster(8, sanyi.id)  # the secretary of another village
    with pytest.raises(NotAllowed):
        await wall.check_poster(5, sanyi.id)  # a resident


def test_chinese_line_breaking_keeps_punctuation_and_numbers_in_place() -> None:
    lines = wrap("村里的路灯坏了，晚上看不见。电话138****5678，请联系。", 14, len)
    assert all(len(line) <= 14 for line in lines) and len(lines) > 2
    assert not any(line[0] in "，。" for line in lines if line)
    assert any("138****5678" in line for line in lines)
    assert "".join(lines) == "村里的路灯坏了，晚上看不见。电话138****5678，请联系。"


def test_poster_command_line(tmp_path: Path) -> None:
    cjk_font_or_skip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATABASE=env_database(tmp_path / "bot.sqlite3"), PYTHONPATH=str(ROOT))

    async def prepare() -> None:
        core = make_core(tmp_path / "bot.sqlite3", SettableClock(datetime(2026, 11, 20, 2, tzinfo=UTC)))
        await core.open()
        await load(core, TREE)
        await core.remember_bot_username("branch_test_bot")
        await core.tickets.submit(RESIDENT, [Item("text", f"井水发黄，电话{PHONE}")], "welfare", public_ok=True,
                                  anonymous=False)
        await core.tickets.answer(SECRETARY, 1, [Item("text", "已联系水务站检测")])
        await core.close()

    asyncio.run(prepare())
    out = tmp_path / "回音壁.pdf"
    result = subprocess.run([sys.executable, "-m", "bot", "poster", "sanyi", "--month", "2026-11", "--out", str(out)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    link = re.search(r"opens (https://t\.me/branch_test_bot\?start=j-\S+)", result.stdout)
    assert link is not None, result.stdout
    text = pdf_text(out)
    assert "井水发黄" in text and "138****5678" in text and PHONE not in text
    bad = subprocess.run([sys.executable, "-m", "bot", "poster", "nowhere", "--month", "2026-13"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "YYYY-MM" in bad.stderr


def test_no_chinese_font_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bot import fonts

    monkeypatch.setenv("PATH", str(tmp_path))  # no fc-match
    monkeypatch.setattr(fonts, "KNOWN_FONTS", (("/nonexistent/a.ttc", None, 0),))
    with pytest.raises(fonts.FontMissing) as caught:
        fonts.find_cjk_font()
    assert "\n" not in str(caught.value) and "fonts-noto-cjk" in str(caught.value)
