"""The Application factory: production and the tests build the bot here, the same way."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections import OrderedDict
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from telegram import BotCommand, Update
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import ApplicationBuilder, BaseUpdateProcessor, ContextTypes, ExtBot, TypeHandler

import schedules
from bot.bots import bot_id_of
from bot.clock import Clock
from bot.config import SUPPORTED_LOCALES, Settings
from bot.context import BotApplication, BotContext
from bot.core import Core
from bot.http import AiohttpRequest
from bot.updates import start_pump, stop_pump
from schedules.delivery import DirectSendRecorder, Limits, Throttle

if TYPE_CHECKING:
    from bot.ops import Webhook

log = logging.getLogger(__name__)

TELEGRAM_LANGUAGE = {"zh_CN": "zh", "en": "en"}
# A small pool and as many updates in flight: with hundreds of requests at once an HTTP client
# spends its time on bookkeeping (PTB's default pool is 256).
CONNECTION_POOL = 16
CONCURRENT_UPDATES = 16
# Edited messages are not asked for: an edit must not re-run a command or a flow step.
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member", "channel_post"]


class BotClient(ExtBot[None]):
    """PTB's bot, answering each button press at most once. A handler that answered a press and
    then met a refusal gets BadRequest at once, without a request that Telegram would refuse with
    400; `handlers.common.answer_text` then sends the refusal as a message."""

    __slots__ = ("_answered",)
    REMEMBERED = 10_000  # presses are answered within seconds; older ids are forgotten

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with self._unfrozen():
            self._answered: OrderedDict[str, None] = OrderedDict()

    async def answer_callback_query(self, callback_query_id: str, *args: Any, **kwargs: Any) -> bool:
        if callback_query_id in self._answered:
            raise BadRequest("Query is already answered")
        answered = await super().answer_callback_query(callback_query_id, *args, **kwargs)
        # Remembered once Telegram took it: an answer that failed (5xx) may be tried again.
        self._answered[callback_query_id] = None
        if len(self._answered) > self.REMEMBERED:
            self._answered.popitem(last=False)
        return answered


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
                      delivery_limits: Limits | None = None) -> BotApplication:
    """Build the bot: settings → Core (database, services) → handlers → delivery and jobs. With
    several bots (BOT_TOKENS) this is the first bot's Application; the others share its Core, are
    in `app.bot_data["siblings"]`, and start and stop with it (start_application, stop_application)."""
    core = Core.build(settings, clock)
    specs = core.bots.specs or settings.bots()
    app = _build_one(core, specs[0].token, delivery_limits, primary=True)
    app.bot_data["siblings"] = [_build_one(core, spec.token, delivery_limits, primary=False) for spec in specs[1:]]
    return app


def all_applications(app: BotApplication) -> list[BotApplication]:
    """The first bot's Application and its siblings (one per further bot of BOT_TOKENS)."""
    return [app, *app.bot_data.get("siblings", [])]


def _build_one(core: Core, token: str, delivery_limits: Limits | None, primary: bool) -> BotApplication:
    """One bot's Application on the shared Core: its own HTTP sessions, polling and delivery throttle
    (Telegram's limits are per bot). Only the first bot opens the Core and runs the periodic jobs."""
    from handlers import register_all

    settings = core.settings
    throttle = Throttle(delivery_limits or Limits())
    requests = (AiohttpRequest(CONNECTION_POOL, proxy=settings.proxy, metrics=core.metrics),
                AiohttpRequest(1, proxy=settings.proxy, metrics=core.metrics))
    builder = (
        ApplicationBuilder()
        .bot(BotClient(token=token, base_url=settings.api_url, base_file_url=settings.file_url,
                       request=requests[0], get_updates_request=requests[1],
                       rate_limiter=DirectSendRecorder(throttle)))
        .concurrent_updates(PerChatUpdateProcessor())
        .post_init(_post_init if primary else _sibling_post_init)
        .post_stop(_post_stop if primary else _sibling_post_stop)
        .context_types(ContextTypes(context=BotContext))
        .application_class(BotApplication, kwargs={"core": core, "throttle": throttle, "requests": requests})
    )
    if primary:
        builder = builder.post_shutdown(_post_shutdown)
    app = builder.build()
    assert isinstance(app, BotApplication)
    if core.bots.several:
        app.add_handler(TypeHandler(Update, _record_chat_bot), group=RECORD_GROUP)
    register_all(app, core.t)
    return app


POST_INIT_BEGUN = "post_init_begun"  # bot_data: post_init was entered (post_stop is then due)
RECORD_GROUP = -1000  # before every feature's handlers: a reply already goes out through this bot


async def _record_chat_bot(update: Update, context: BotContext) -> None:
    """The chat's messages go out through the bot that received its last update (bot/bots.py)."""
    chat = update.effective_chat
    if chat is not None:
        await context.core.bots.record_chat(chat.id, bot_id_of(context.bot.token))


async def _post_init(app: BotApplication) -> None:
    core = app.core
    await core.open()
    await core.bots.configure()
    await core.remember_bot_username(app.bot.username)
    await core.bots.remember_username(bot_id_of(app.bot.token), app.bot.username)
    await schedules.start_all(app)
    app.bot_data["commands_task"] = asyncio.create_task(_register_commands(app))
    _tune_gc()


async def _sibling_post_init(app: BotApplication) -> None:
    """A further bot: the Core is open and the jobs run on the first bot; it sends its own chats' rows."""
    await app.core.bots.remember_username(bot_id_of(app.bot.token), app.bot.username)
    await schedules.delivery.start(app)
    app.bot_data["commands_task"] = asyncio.create_task(_register_commands(app))


async def _sibling_post_stop(app: BotApplication) -> None:
    await _stop_commands(app)
    await schedules.delivery.stop(app)


def _tune_gc() -> None:
    """PTB builds a few hundred short-lived objects for every update (each Update, Message and
    button is an object); with the default thresholds the collector runs every 700 allocations
    and keeps re-scanning what start-up loaded. What exists now (modules, catalogs, handlers) lives
    as long as the process: freeze it out of the scans, and collect young objects less often
    (about a tenth less CPU per update in `python -m bench wall`)."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def _post_stop(app: BotApplication) -> None:
    await _stop_commands(app)
    await schedules.stop_all(app)


async def _stop_commands(app: BotApplication) -> None:
    task = app.bot_data.pop("commands_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _post_shutdown(app: BotApplication) -> None:
    await app.core.close()


async def _register_commands(app: BotApplication) -> None:
    """setMyCommands for each language (and the default), retried with backoff if the network is down."""
    from handlers import all_commands

    core = app.core
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


async def close_requests(app: BotApplication) -> None:
    """Close the HTTP sessions; PTB skips its shutdown when stopped before start-up completed."""
    for each in all_applications(app):
        for request in each.requests:
            await request.shutdown()


async def start_application(app: BotApplication, poll_timeout: int = 10) -> None:
    """What `run_polling` does before it idles; the tests and benchmarks start the bot this way.
    Several bots: the first one (which opens the Core), then the others, each polling for itself."""
    for each in all_applications(app):
        await each.initialize()
        each.bot_data[POST_INIT_BEGUN] = True
        if each.post_init:
            await each.post_init(each)
        assert each.updater is not None
        await each.updater.start_polling(poll_interval=0.0, timeout=poll_timeout, drop_pending_updates=False,
                                         allowed_updates=ALLOWED_UPDATES)
        await each.start()


async def serve_polling(app: BotApplication) -> None:
    """`run` with several bots: every bot polls in this one process until SIGINT or SIGTERM."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        if await _start_unless_stopped(start_application(app), stopping):
            await stopping.wait()
            log.info("stopping")
    finally:
        await stop_application(app)
        await close_requests(app)


async def _start_unless_stopped(start: Coroutine[Any, Any, None], stopping: asyncio.Event) -> bool:
    """Run the start-up unless SIGTERM or SIGINT comes first: then the start-up is cancelled where it
    waits (setWebhook retried while Telegram cannot be reached, the database, a slow machine) and
    False is returned, and the caller stops what had started. A stop asked for during start-up
    used to wait for the start-up to end, which a retry loop never does."""
    starting = asyncio.ensure_future(start)
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if starting.done():
        starting.result()  # start-up's own error, if any
        return True
    log.info("stopping during start-up")
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    return False


async def start_webhook_application(app: BotApplication, webhook: Webhook) -> None:
    """`start_application` for webhook mode: the server (bot/ops.py, started in post_init) is
    listening before Telegram is told where to post, then the Application starts handling."""
    await app.initialize()
    app.bot_data[POST_INIT_BEGUN] = True
    if app.post_init:
        await app.post_init(app)
    app.bot_data["webhook"] = webhook
    await _set_webhook(app, webhook)
    await app.start()
    if app.core.db.shared:  # several instances: the stored updates are handled by the pump
        start_pump(app)


async def _set_webhook(app: BotApplication, webhook: Webhook) -> None:
    """setWebhook, retried with backoff while the network is down (a refusal is not retried)."""
    delay = 1.0
    while True:
        try:
            await app.bot.set_webhook(webhook.url, secret_token=webhook.secret, allowed_updates=ALLOWED_UPDATES,
                                      max_connections=CONCURRENT_UPDATES)
            log.info("webhook set: Telegram posts updates to %s", webhook.url)
            return
        except BadRequest:  # a URL Telegram refuses: waiting will not help
            raise
        except NetworkError as exc:
            log.warning("could not set the webhook (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)


async def serve_webhook(app: BotApplication, webhook: Webhook) -> None:
    """`run --webhook`: start, handle what Telegram posts until SIGINT or SIGTERM, stop. The webhook
    stays set when the bot stops (Telegram keeps the updates until it is back); polling deletes it."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        if await _start_unless_stopped(start_webhook_application(app, webhook), stopping):
            await stopping.wait()
            log.info("stopping")
    finally:
        await stop_application(app)
        await close_requests(app)


async def stop_application(app: BotApplication) -> None:
    """What `run_polling` does on SIGTERM. In webhook mode, updates posted from now on get 503
    (Telegram sends them again later); those already taken are handled before the stop."""
    for sibling in reversed(app.bot_data.get("siblings", [])):  # before the first bot closes the Core
        await _stop_one(sibling)
    webhook = app.bot_data.get("webhook")
    if webhook is not None:
        webhook.accepting = False
    await stop_pump(app)  # what it handles now finishes; what it has not claimed another instance takes
    await _stop_one(app)


async def _stop_one(app: BotApplication) -> None:
    assert app.updater is not None
    if app.updater.running:
        await app.updater.stop()
    # post_stop undoes post_init (the jobs, the delivery worker), also when a stop during start-up
    # cancelled it before the Application ran: each of its steps does nothing where nothing began.
    begun = app.bot_data.pop(POST_INIT_BEGUN, False) or app.running
    if app.running:
        await app.stop()
    if begun and app.post_stop:
        await app.post_stop(app)
    await app.shutdown()
    if app.post_shutdown:
        await app.post_shutdown(app)
