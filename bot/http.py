"""PTB's network layer on aiohttp instead of httpx.

Why: under load the bot's process spent more of its time in httpx/httpcore (connection-pool
bookkeeping, anyio wrappers) than in our own code; aiohttp's client does the same requests for
a fraction of the CPU, which is what keeps a reply under 100 ms while 50 submissions a second
arrive (`python -m bench wall`). Proxies: http(s) natively, socks through aiohttp-socks.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

if TYPE_CHECKING:
    from bot.metrics import Metrics


class AiohttpRequest(BaseRequest):
    """One aiohttp session per instance (PTB uses one for getUpdates and one for everything else)."""

    def __init__(self, connection_pool_size: int = 16, proxy: str | None = None, read_timeout: float = 5.0,
                 write_timeout: float = 5.0, connect_timeout: float = 5.0, pool_timeout: float = 30.0,
                 media_write_timeout: float = 20.0, metrics: Metrics | None = None) -> None:
        self.metrics = metrics  # every Bot API call's outcome, replies included (bot_api_requests_total)
        self._pool_size = connection_pool_size
        self._proxy = proxy
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is not None and not self._session.closed:
            return
        if self._proxy and self._proxy.startswith("socks"):
            from aiohttp_socks import ProxyConnector

            connector: aiohttp.BaseConnector = ProxyConnector.from_url(self._proxy, limit=self._pool_size)
        else:
            connector = aiohttp.TCPConnector(limit=self._pool_size)
        self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        write = (self._media_write_timeout if files else self._write_timeout) \
            if isinstance(write_timeout, DefaultValue) else write_timeout
        # aiohttp has no separate write timeout: a request may take its write and read time in all.
        total = None if read is None or write is None else read + write + (connect or 0) + (pool or 0)
        timeout = aiohttp.ClientTimeout(total=total, connect=pool, sock_connect=connect, sock_read=read)
        data: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            if files:
                # Unquoted UTF-8 names, as PTB's httpx layer sends them: 台账.xlsx must arrive as 台账.xlsx.
                form = aiohttp.FormData(quote_fields=False)
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, (filename, content, mime) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mime)
                data = form
            else:
                # JSON, which the Bot API accepts for every method without files: aiohttp's form
                # encoding percent-escapes each byte of a Chinese text in Python, several times the cost.
                data = request_data.json_payload
                headers = {"Content-Type": "application/json"}
        proxy = self._proxy if self._proxy and not self._proxy.startswith("socks") else None
        try:
            async with self._session.request(method, url, data=data, headers=headers, timeout=timeout,
                                             proxy=proxy) as response:
                body = await response.read()
        except TimeoutError as err:
            self._count(method, url, "timeout")
            raise TimedOut from err
        except asyncio.CancelledError:
            raise
        except aiohttp.ClientError as err:
            self._count(method, url, "network")
            raise NetworkError(f"{err.__class__.__name__} (aiohttp): {err}") from err
        self._count(method, url, str(response.status))
        return response.status, body

    def _count(self, method: str, url: str, outcome: str) -> None:
        if self.metrics is not None:
            # A Bot API method is the URL's last part; a file download's (GET) is its file name.
            self.metrics.api_call(url.rsplit("/", 1)[-1] if method == "POST" else "file", outcome)
