"""The operations server: `/healthz` and `/metrics` (`run --health HOST:PORT`) and the webhook that
Telegram posts updates to (`run --webhook URL --listen HOST:PORT`), with aiohttp like the web wall.

The webhook is an aiohttp handler of our own rather than PTB's `run_webhook` (tornado): it shares
this server, its event loop and its lifecycle with the health endpoints, adds no second HTTP
framework, and it is where an update will be stored (claimed once in the database) before the
200 is returned when several instances share one database (issue 11, bot/updates.py): PTB's handler
puts the update in memory and answers, which would lose it if the process died then.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update

from bot import updates
from bot.context import BotApplication
from bot.metrics import CONTENT_TYPE
from bot.web import parse_address

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HEALTH_PATHS = ("/healthz", "/metrics")
DB_TIMEOUT = 2.0  # seconds: a database slower than this counts as unreachable for /healthz
MAX_UPDATE = 1 << 20  # bytes; an update is a few KB (Telegram sends no files in updates)


@dataclass
class Webhook:
    """Where Telegram posts updates (`url`, public), and the secret it sends back with each."""

    url: str
    secret: str = field(default="", repr=False)  # none given: a random one (see `generated`)
    accepting: bool = True  # False once the bot stops: Telegram then gets 503 and sends again later
    # No secret was given (BOT_WEBHOOK_SECRET): on a shared database every instance then uses one
    # kept in the database (bot/updates.py shared_secret), or each would set its own and the
    # instances would refuse each other's updates.
    generated: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if not self.secret:
            self.secret, self.generated = secrets.token_urlsafe(32), True
        parts = urlsplit(self.url)
        # http:// too: a self-hosted Bot API server (BOT_API_URL) may post to one; Telegram will not.
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"--webhook expects an https:// URL, e.g. https://bot.example.org/telegram,"
                             f" not {self.url!r}")
        if self.path in HEALTH_PATHS:
            raise ValueError(f"--webhook: the path {self.path} is taken by the health endpoints")

    @property
    def path(self) -> str:
        """The path this server answers on: the URL's, so a reverse proxy can pass it through."""
        return urlsplit(self.url).path or "/"


class OpsSite:
    """One aiohttp server on one address, serving the health endpoints, the webhook, or both."""

    def __init__(self, app: BotApplication, host: str, port: int, *, health: bool = False,
                 webhook: Webhook | None = None) -> None:
        self.app = app
        self.host, self.port = host, port
        self.health = health
        self.webhook = webhook
        self.runner: web.AppRunner | None = None
        self.mode = "webhook" if webhook is not None else "polling"

    def application(self) -> web.Application:
        site = web.Application(client_max_size=MAX_UPDATE)
        if self.health:
            site.router.add_get("/healthz", self.healthz)
            site.router.add_get("/metrics", self.metrics)
        if self.webhook is not None:
            site.router.add_post(self.webhook.path, self.receive)
        return site

    async def start(self) -> None:
        self.runner = web.AppRunner(self.application(), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, self.port).start()
        if self.port == 0:  # any free port was asked for (tests): which one it got
            self.port = self.runner.addresses[0][1]
        served = [*(HEALTH_PATHS if self.health else ()), *((self.webhook.path,) if self.webhook else ())]
        log.info("serving %s on http://%s:%s", ", ".join(served), self.host, self.port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # --- health -----------------------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        """200 while the database answers, 503 when it does not; the rest is for the operator."""
        core = self.app.core
        try:
            depth = await asyncio.wait_for(core.outbox.depth(core.clock.now()), DB_TIMEOUT)
        except Exception as exc:  # any failure to read means the bot cannot work: say so, do not crash
            log.warning("healthz: database unreachable (%s)", exc)
            depth = None
        age = core.metrics.seconds_since_update()
        body = {
            "status": "ok" if depth is not None else "unavailable",
            "database": depth is not None,
            "mode": self.mode,
            "last_update_age_seconds": round(age, 3) if age is not None else None,
            "outbox_depth": sum(count for count, _ in depth.values()) if depth is not None else None,
        }
        return web.json_response(body, status=200 if depth is not None else 503,
                                 headers={"Cache-Control": "no-store"})

    async def metrics(self, request: web.Request) -> web.Response:
        core = self.app.core
        try:
            await asyncio.wait_for(core.metrics.refresh(core.outbox, core.clock.now()), DB_TIMEOUT)
            core.metrics.database_up.set(1)
        except Exception as exc:  # the rest of the metrics are still worth reading
            log.warning("metrics: could not read the outbox (%s)", exc)
            core.metrics.database_up.set(0)
        return web.Response(body=core.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    # --- webhook ----------------------------------------------------------------------------------
    async def receive(self, request: web.Request) -> web.Response:
        """An update from Telegram: checked, queued for the Application, answered 200."""
        hook = self.webhook
        assert hook is not None
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), hook.secret.encode()):
            self.app.core.metrics.webhook.labels("forbidden").inc()
            log.warning("webhook: refused a request from %s without the right secret token", request.remote)
            return web.Response(status=403, text="403: forbidden")
        if not hook.accepting:
            self.app.core.metrics.webhook.labels("stopping").inc()
            return web.Response(status=503, text="503: stopping", headers={"Retry-After": "5"})
        try:
            data: Any = await request.json()
            update = Update.de_json(data, self.app.bot)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self.app.core.metrics.webhook.labels("bad").inc()
            log.warning("webhook: not an update (%s)", exc)
            return web.Response(status=400, text="400: not an update")
        if self.app.core.db.shared:
            return await self.store(update, data)
        await self.app.update_queue.put(update)
        self.app.core.metrics.webhook.labels("ok").inc()
        return web.Response(text="ok")

    async def store(self, update: Update, data: Any) -> web.Response:
        """Several instances (issue 11): the update is stored, committed, before the 200, and any
        instance's pump handles it (bot/updates.py); a retried or twice-posted update is stored
        once. If it cannot be stored, Telegram gets 503 and posts it again later."""
        try:
            await updates.store_of(self.app).put(update.update_id, updates.chat_of(update),
                                                 json.dumps(data, ensure_ascii=False))
        except Exception as exc:  # the database is away: not answering 200 keeps the update at Telegram
            self.app.core.metrics.webhook.labels("unstored").inc()
            log.warning("webhook: could not store update %s (%s)", update.update_id, exc)
            return web.Response(status=503, text="503: database unavailable", headers={"Retry-After": "5"})
        updates.wake_pump(self.app)
        self.app.core.metrics.webhook.labels("ok").inc()
        return web.Response(text="ok")


def attach(app: BotApplication, *, health: str | None = None, listen: str | None = None,
           webhook: Webhook | None = None) -> list[OpsSite]:
    """The servers for `--health` and `--listen` (one server when both name the same address):
    started after the bot's post_init (the database is open), stopped before its post_shutdown
    closes the database."""
    if webhook is not None and listen is None:
        raise ValueError("--webhook needs --listen HOST:PORT (where this process receives the updates)")
    addresses: dict[tuple[str, int], dict[str, Any]] = {}
    if health:
        addresses.setdefault(parse_address(health, "--health"), {})["health"] = True
    if webhook is not None and listen is not None:
        addresses.setdefault(parse_address(listen, "--listen"), {})["webhook"] = webhook
    sites = [OpsSite(app, host, port, **parts) for (host, port), parts in addresses.items()]
    if not sites:
        return sites
    inner_init, inner_shutdown = app.post_init, app.post_shutdown

    async def post_init(application: Any) -> None:
        if inner_init is not None:
            await inner_init(application)
        if webhook is not None and webhook.generated and application.core.db.shared:
            webhook.secret = await updates.shared_secret(application.core.db, webhook.secret)
            webhook.generated = False
        for site in sites:
            await site.start()

    async def post_shutdown(application: Any) -> None:
        for site in sites:
            await site.stop()
        if inner_shutdown is not None:
            await inner_shutdown(application)

    app.post_init, app.post_shutdown = post_init, post_shutdown
    return sites
