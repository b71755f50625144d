"""bot/http.py: PTB's requests on aiohttp, including proxies (needed in mainland China)."""

from __future__ import annotations

from aiohttp_socks import ProxyConnector
from telegram import Bot, InputFile
from telegram.error import NetworkError

from bench.fakebotapi import TOKEN, FakeBotApi
from bot.http import AiohttpRequest


async def test_requests_and_uploads_reach_the_api(fake: FakeBotApi) -> None:
    one, two = fake.user(4242), fake.user(4243)
    async with Bot(TOKEN, base_url=fake.base_url, request=AiohttpRequest(4)) as bot:
        await bot.send_message(one.id, "你好")
        await bot.send_document(two.id, InputFile(b"BEGIN:VCALENDAR", filename="会议.ics"), caption="日历")
    assert fake.texts(one.id) == ["你好"]
    assert fake.texts(two.id) == ["日历"]
    assert fake.sent(two.id)[0].document == ("会议.ics", b"BEGIN:VCALENDAR")


async def test_a_refused_connection_is_a_network_error() -> None:
    request = AiohttpRequest(1, connect_timeout=1.0)
    await request.initialize()
    try:
        status = None
        try:
            status, _ = await request.do_request("http://127.0.0.1:9/bot1:x/getMe", "POST")
        except NetworkError as exc:
            assert "aiohttp" in str(exc)
        assert status is None
    finally:
        await request.shutdown()


async def test_socks_and_http_proxies() -> None:
    socks = AiohttpRequest(2, proxy="socks5://127.0.0.1:1080")
    await socks.initialize()
    assert isinstance(socks._session.connector, ProxyConnector)  # type: ignore[union-attr]
    await socks.shutdown()
    http = AiohttpRequest(2, proxy="http://127.0.0.1:3128")
    await http.initialize()
    assert not isinstance(http._session.connector, ProxyConnector)  # type: ignore[union-attr]
    assert http._proxy == "http://127.0.0.1:3128"  # passed with every request
    await http.shutdown()
