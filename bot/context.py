"""The Application and callback context types the bot runs with: handlers and jobs reach the
Core through a typed `.core` instead of `bot_data`."""

from __future__ import annotations

import time
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.core import Core
from bot.logs import update_context

# The HTTP sessions are closed by `close_requests` even when start-up never finished.
Requests = tuple[Any, ...]


class BotApplication(Application):  # type: ignore[type-arg]
    """PTB's Application, carrying the Core, the delivery throttle and the HTTP sessions."""

    def __init__(self, *, core: Core, throttle: Any, requests: Requests, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.core = core
        self.throttle = throttle
        self.requests = requests

    async def process_update(self, update: object) -> None:
        """Every update is handled inside its log context (its id and chat on every line) and timed
        for /metrics. Here rather than in a handler group: it covers every group, the error
        handler, and only the handling (not the wait for the chat's earlier updates)."""
        with update_context(update):
            started = time.perf_counter()
            try:
                await super().process_update(update)
            finally:
                self.core.metrics.update_handled(update, time.perf_counter() - started)


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """The context every handler receives: `context.core` is the Core."""

    @property
    def core(self) -> Core:
        app = self.application
        assert isinstance(app, BotApplication)
        return app.core
