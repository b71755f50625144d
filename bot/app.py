"""The Application factory: production and the tests build the bot here, the same way."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Any

from telegram import BotCommand
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, BaseUpdateProcessor

import schedules
from bot.clock import Clock
from bot.config import SUPPORTED_LOCALES, Settings
from bot.core import Core
from bot.http import AiohttpRequest
from schedules.delivery import DirectSendRecorder, Limits, Throttle

log = logging.getLogger(__name__)

TELEGRAM_LANGUAGE = {"zh_CN": "zh", "en": "en"}
# A small pool and as many updates in flight: with hundreds of requests at once an HTTP client
# spends its time on bookkeeping (PTB's default pool is 256).
CONNECTION_POOL = 16
CONCURRENT_UPDATES = 16
# Edited messages are not asked for: an edit must not re-run a command or a flow step.
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member", "channel_post"]


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Different chats are handled concurrently; one chat's updates stay in order (flows need it)."""

    def __init__(self, max_concurrent_updates: int = CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        # chat id -> (its lock, how many of its updates hold or wait for it); dropped at zero.
        self._locks: dict[int | None, tuple[asyncio.Lock, list[int]]] = {}

    async def do_process_update(self, update: object, coroutine: Any) -> None:
        chat = getattr(update, "effective_chat", None)
        key = chat.id if chat is not None else None
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                await coroutine
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def build_application(settings: Settings, clock: Clock | None = None,
                      delivery_limits: Limits | None = None) -> Application:  # type: ignore[type-arg]
    """Build the bot: settings → Core (database, services) → handlers → delivery and jobs."""
    from handlers import register_all

    core = Core.build(settings, clock)
    throttle = Throttle(delivery_limits or Limits())
    requests = (AiohttpRequest(CONNECTION_POOL, proxy=settings.proxy), AiohttpRequest(1, proxy=settings.proxy))
    builder = (
        ApplicationBuilder()
        .token(settings.require_token())
        .base_url(settings.api_url)
        .base_file_url(settings.file_url)
        .concurrent_updates(PerChatUpdateProcessor())
        .request(requests[0])
        .get_updates_request(requests[1])
        .rate_limiter(DirectSendRecorder(throttle))
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
    )
    app = builder.build()
    app.bot_data["core"] = core
    app.bot_data["throttle"] = throttle
    app.bot_data["requests"] = requests  # closed by `close_requests` even if start-up never finished
    register_all(app, core.t)
    return app


async def _post_init(app: Application) -> None:  # type: ignore[type-arg]
    core: Core = app.bot_data["core"]
    await core.open()
    await core.remember_bot_username(app.bot.username)
    await schedules.start_all(app)
    app.bot_data["commands_task"] = asyncio.create_task(_register_commands(app))
    _tune_gc()


def _tune_gc() -> None:
    """PTB builds a few hundred short-lived objects for every update (each Update, Message and
    button is an object); with the default thresholds the collector runs every 700 allocations
    and keeps re-scanning what start-up loaded. What exists now (modules, catalogs, handlers) lives
    as long as the process: freeze it out of the scans, and collect young objects less often
    (about a tenth less CPU per update in `python -m bench wall`)."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def _post_stop(app: Application) -> None:  # type: ignore[type-arg]
    task = app.bot_data.pop("commands_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await schedules.stop_all(app)


async def _post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
    await app.bot_data["core"].close()


async def _register_commands(app: Application) -> None:  # type: ignore[type-arg]
    """setMyCommands for each language (and the default), retried with backoff if the network is down."""
    from handlers import all_commands

    core: Core = app.bot_data["core"]
    public = [cmd for cmd in all_commands() if cmd.audience is None]
    delay = 1.0
    while True:
        try:
            for locale in SUPPORTED_LOCALES:
                commands = [BotCommand(cmd.name, core.t(locale, f"command.{cmd.name}")) for cmd in public]
                await app.bot.set_my_commands(commands, language_code=TELEGRAM_LANGUAGE[locale])
                if locale == core.settings.locale:
                    await app.bot.set_my_commands(commands)
            return
        except TelegramError as exc:
            log.warning("could not register bot commands (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 300)


async def close_requests(app: Application) -> None:  # type: ignore[type-arg]
    """Close the HTTP sessions; PTB skips its shutdown when stopped before start-up completed."""
    for request in app.bot_data.get("requests", ()):
        await request.shutdown()


async def start_application(app: Application, poll_timeout: int = 10) -> None:  # type: ignore[type-arg]
    """What `run_polling` does before it idles; the tests and benchmarks start the bot this way."""
    await app.initialize()
    if app.post_init:
        await app.post_init(app)
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=poll_timeout, drop_pending_updates=False,
                                    allowed_updates=ALLOWED_UPDATES)
    await app.start()


async def stop_application(app: Application) -> None:  # type: ignore[type-arg]
    """What `run_polling` does on SIGTERM."""
    assert app.updater is not None
    if app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
        if app.post_stop:
            await app.post_stop(app)
    await app.shutdown()
    if app.post_shutdown:
        await app.post_shutdown(app)
