"""What every handler module uses: the Core, the person's language, commands and menu entries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from bot.context import BotContext
from bot.outbox import Button

Callback = Callable[[Update, BotContext], Awaitable[None]]
EVERYONE = None
LEADERS = frozenset({"secretary", "organizer", "admin"})
MANAGERS = frozenset({"organizer", "admin"})


@dataclass(frozen=True)
class Command:
    """A slash command: who sees it in /help and the menu, and its main-menu button if any."""

    name: str
    callback: Callback
    audience: frozenset[str] | None = EVERYONE
    menu_key: str | None = None
    private_only: bool = True  # group commands (e.g. binding a wall) set this to False

    def visible_to(self, roles: set[str]) -> bool:
        return self.audience is None or bool(self.audience & roles)


async def lang_of(update: Update, context: BotContext) -> str:
    user = update.effective_user
    c = context.core
    if user is None:
        return c.settings.locale
    return await c.people.language(user.id)


def keyboard(rows: list[list[Button]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.text, callback_data=b.data, url=b.url) for b in row] for row in rows]
    )


async def reply(update: Update, context: BotContext, key: str, /,
                reply_markup: object | None = None, **values: object) -> Message | None:
    """Answer the person who acted, in their language (sent directly: they are the actor)."""
    lang = await lang_of(update, context)
    text = context.core.t(lang, key, **values)
    if update.effective_message is None:
        return None
    return await update.effective_message.reply_text(text, reply_markup=reply_markup)  # type: ignore[arg-type]


async def answer_callback(update: Update, context: BotContext, key: str, /,
                          alert: bool = False, **values: object) -> None:
    query = update.callback_query
    assert query is not None
    lang = await lang_of(update, context)
    await query.answer(context.core.t(lang, key, **values), show_alert=alert)


def split_data(data: str | None, prefix: str, parts: int) -> list[str] | None:
    """Split callback data `prefix:a:b…` into exactly `parts` fields after the prefix, else None."""
    if not data or not data.startswith(prefix + ":"):
        return None
    fields = data.split(":")[1:]
    return fields if len(fields) == parts else None


def as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
