"""Log lines: plain text (the default) or JSON lines (`BOT_LOG_FORMAT=json`), the update and chat
being handled on every line logged while handling it, and never the bot's token.

The update id and chat id live in context variables, set where the Application handles an update
(`BotApplication.process_update`, bot/context.py): asyncio copies them into every task started from
there, and each update is handled in a task of its own, so concurrent updates never mix them up.
The filters sit on the handlers, not on loggers: a logger's filter misses the records that
propagate to it from other loggers (PTB's, aiohttp's, ours).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

update_id_var: ContextVar[int | None] = ContextVar("update_id", default=None)
chat_id_var: ContextVar[int | None] = ContextVar("chat_id", default=None)

# Which process wrote a line, when several instances run (issue 11): hostname:pid, as in the claims.
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"
REDACTED = "<redacted>"
# Any bot token's shape (digits, a colon, 35 URL-safe characters), wherever it appears: the
# configured token is replaced exactly, this catches another bot's token or a truncated setting.
TOKEN_SHAPE = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def update_context(update: object) -> Iterator[None]:
    """Every line logged inside carries this update's id and chat id."""
    chat = getattr(update, "effective_chat", None)
    tokens = (update_id_var.set(getattr(update, "update_id", None)),
              chat_id_var.set(chat.id if chat is not None else None))
    try:
        yield
    finally:
        chat_id_var.reset(tokens[1])
        update_id_var.reset(tokens[0])


class UpdateContextFilter(logging.Filter):
    """Adds `update_id` and `chat_id` (None outside an update's handling) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.update_id = update_id_var.get()
        record.chat_id = chat_id_var.get()
        return True


class RedactFilter(logging.Filter):
    """Removes bot tokens from a record's message, arguments and exception text, in place, before
    any formatter sees it (a URL `…/bot<token>/sendMessage` in an aiohttp error, a token in a
    traceback's message)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN_SHAPE.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatted once here; the formatters print exc_text as it is.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """The plain format, with the update and chat in brackets while one is being handled."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        update_id, chat_id = getattr(record, "update_id", None), getattr(record, "chat_id", None)
        if update_id is None and chat_id is None:
            return line
        head, sep, rest = line.partition(": ")
        return f"{head} [update {update_id} chat {chat_id}]{sep}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, instance (hostname:pid),
    update_id and chat_id when handling an update, and the exception's traceback as `exc`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "instance": INSTANCE,
        }
        for field in ("update_id", "chat_id"):
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def make_handler(log_format: str, secrets: Iterable[str] = (), stream: object = None) -> logging.Handler:
    """A handler writing `log_format` ('text' or 'json') lines, with the context and redaction filters."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT))
    handler.addFilter(UpdateContextFilter())
    handler.addFilter(RedactFilter(secrets))
    return handler


def setup(log_format: str, secrets: Iterable[str] = (), level: int = logging.INFO) -> logging.Handler:
    """Replace the root logger's handlers with one that writes `log_format` lines to stderr."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = make_handler(log_format, secrets)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
