"""What every handler module uses: the Core, the person's language, commands and menu entries."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from bot.context import BotContext
from bot.limits import MAX_ANSWER, telegram_length
from bot.outbox import Button
from bot.services.orgs import NotAllowed, NotFound, Refused

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


async def edit_text(query: CallbackQuery, text: str, reply_markup: InlineKeyboardMarkup | None = None) -> None:
    """Edit the message whose button was pressed. A second tap that would change nothing is not an
    error (Telegram answers "message is not modified")."""
    try:
        await query.edit_message_text(text, reply_markup=reply_markup)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


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
    lang = await lang_of(update, context)
    await answer_text(update, context.core.t(lang, key, **values), alert=alert)


async def answer_text(update: Update, text: str, alert: bool = False) -> None:
    """Answer the pressed button with `text`. A button can be answered once: when the handler has
    answered it already (or it is too old), the text comes as a message instead of being lost."""
    query = update.callback_query
    assert query is not None
    fits = telegram_length(text) <= MAX_ANSWER
    try:
        await query.answer(text if fits else None, show_alert=alert and fits)
        if fits:
            return
    except BadRequest:
        pass
    if update.effective_chat is not None:
        await update.effective_chat.send_message(text)


def person(update: Update) -> int:
    """The Telegram id of whoever sent the update."""
    user = update.effective_user
    assert user is not None
    return user.id


async def say(update: Update, context: BotContext, text: str, rows: list[list[Button]] | None = None,
              edit: bool = False) -> None:
    """Edit the pressed message (edit=True), else send a new one; a press is always answered."""
    markup = keyboard(rows) if rows else None
    query = update.callback_query
    if query is not None:
        try:
            await query.answer()
        except BadRequest:  # answered already (with a toast): the press needs no second answer
            pass
        if edit and query.message is not None:
            await edit_text(query, text, markup)
            return
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, text, reply_markup=markup)


async def say_key(update: Update, context: BotContext, key: str, rows: list[list[Button]] | None = None,
                  edit: bool = False, **values: Any) -> None:
    """`say` with a catalog text in the person's language."""
    lang = await lang_of(update, context)
    await say(update, context, context.core.t(lang, key, **values), rows, edit)


Handler = Callable[..., Awaitable[None]]


def guarded_by(not_allowed_key: str, gone_key: str | None = None) -> Callable[[Handler], Handler]:
    """A decorator for a feature's handlers: whatever the service refused is answered in words (an
    alert under a pressed button, a reply to typing); `not_allowed_key` says a right is missing; data
    that does not parse or names nothing any more is a stale button (`gone_key` when it was typed)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(update: Update, context: BotContext, *args: Any) -> None:
            try:
                await handler(update, context, *args)
            except (Refused, NotAllowed, NotFound, ValueError) as exc:
                c = context.core
                lang = await lang_of(update, context)
                if isinstance(exc, Refused):
                    text = c.t(lang, exc.key, **exc.values)
                elif isinstance(exc, NotAllowed):
                    text = c.t(lang, not_allowed_key)
                else:
                    pressed = update.callback_query is not None or gone_key is None
                    text = c.t(lang, "error.stale_button" if pressed else gone_key)
                if update.callback_query is not None:
                    await answer_text(update, text, alert=True)
                elif update.effective_message is not None:
                    await update.effective_message.reply_text(text)

        return run

    return decorate
