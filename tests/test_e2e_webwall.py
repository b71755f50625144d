"""End to end: the running bot serves the echo wall page (`run --web`), and a secretary asks it for the
month's echo-wall poster and gets a PDF whose QR code opens the residents' join link."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import zxingcpp
from PIL import Image
from webwall_fixtures import PHONE, cjk_font_or_skip, need, pdf_pages, pdf_text

from bench.fakebotapi import FakeBotApi
from bot.actors import SYSTEM_ACTOR
from bot.app import build_application, start_application, stop_application
from bot.clock import SettableClock
from bot.services import orgfile
from bot.services.tickets import Item
from bot.web import attach
from conftest import SAMPLE_ORGS, BotRunner

SECRETARY = 1001


async def test_secretary_gets_the_poster_as_a_document(bot: BotRunner, fake: FakeBotApi, tmp_path: Path) -> None:
    need("pdftoppm")
    cjk_font_or_skip()
    invite = await bot.core.invites.create("sanyi", "resident", SYSTEM_ACTOR)
    villager = fake.user(2001, first_name="老张")
    villager.send(f"/start {invite.payload}")
    await fake.wait_message(2001, contains="欢迎")
    ticket = await bot.core.tickets.submit(2001, [Item("text", f"桥栏杆松了，电话{PHONE}")], "infrastructure",
                                           public_ok=True, anonymous=False)
    await bot.core.tickets.answer(SECRETARY, ticket.id, [Item("text", "已加固栏杆。")])

    secretary = fake.user(SECRETARY, first_name="王建国")
    secretary.send("/poster")
    pick = await fake.wait_message(SECRETARY, contains="做哪个月的回音壁海报")
    assert pick.button_texts == ["上个月（10月）", "本月（11月）"]
    secretary.press(pick, "本月（11月）")
    sent = await fake.wait_message(SECRETARY, contains="回音壁海报")
    assert sent.document is not None and sent.document[0] == "回音壁-三义村党支部-2026年11月.pdf"
    pdf = tmp_path / "poster.pdf"
    pdf.write_bytes(sent.document[1])
    pages = await asyncio.to_thread(pdf_pages, pdf, tmp_path / "p")
    image = Image.open(pages[0]).convert("L")
    link = f"https://t.me/{await bot.core.bot_username()}?start={invite.payload}"  # the existing link, reused
    assert [d.text for d in zxingcpp.read_barcodes(image)] == [link]
    text = await asyncio.to_thread(pdf_text, pdf)
    assert "桥栏杆松了" in text and PHONE not in text

    # A resident is no secretary: no poster, and the secretary's button, forged, is refused.
    villager.send("/poster")
    await fake.wait_message(2001, contains="不能做回音壁海报")
    press = villager.press_data(pick.message_id, pick.button("本月（11月）")[1] or "")
    answer = await fake.wait_callback_answer(press)
    assert "没有权限" in answer.get("text", "")


async def test_run_with_web_serves_the_wall_while_the_bot_runs(fake: FakeBotApi, tmp_path: Path,
                                                               clock: SettableClock) -> None:
    settings = BotRunner(fake, tmp_path / "bot.sqlite3", clock).settings
    app = build_application(settings, clock)
    site = attach(app, "127.0.0.1:0")  # what `python -m bot run --web 127.0.0.1:8080` does
    await start_application(app, poll_timeout=1)
    try:
        assert site.runner is not None
        url = f"http://127.0.0.1:{site.runner.addresses[0][1]}/wall/sanyi"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                assert response.status == 404  # no orgs yet
            async with app.core.db.transaction() as tx:
                await orgfile.apply(app.core.orgs, tx, orgfile.parse(SAMPLE_ORGS), "test")
            async with session.get(url) as response:
                assert response.status == 200 and "三义村党支部" in await response.text()
            # The wall's other two parts, from the same running bot (empty for a new village).
            for part, empty in (("rounds", "还没有已经结束的民主议事"), ("matters", "还没有公开的村务决议")):
                async with session.get(f"{url}?show={part}") as response:
                    assert response.status == 200 and empty in await response.text()
    finally:
        await stop_application(app)
    assert site.runner is None  # stopped with the bot, before the database closed
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(url)
