"""The Application and callback context types the bot runs with: handlers and jobs reach the
Core through a typed `.core` instead of `bot_data`."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.core import Core

# The HTTP sessions are closed by `close_requests` even when start-up never finished.
Requests = tuple[Any, ...]


class BotApplication(Application):  # type: ignore[type-arg]
    """PTB's Application, carrying the Core, the delivery throttle and the HTTP sessions."""

    def __init__(self, *, core: Core, throttle: Any, requests: Requests, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.core = core
        self.throttle = throttle
        self.requests = requests


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """The context every handler receives: `context.core` is the Core."""

    @property
    def core(self) -> Core:
        app = self.application
        assert isinstance(app, BotApplication)
        return app.core
