"""Cross-cutting handlers: who is talking, /cancel, input limits, blocked users, the fallbacks
for anything no feature understood, and the error handler."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import ChatMember, ChatMemberUpdated, Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.context import BotContext
from handlers.common import Callback, Command, lang_of, reply

log = logging.getLogger(__name__)

MAX_INPUT = 4096  # Telegram's own limit for one message's text
# Multi-step flows register here: flow name -> handler of the person's next message.
FLOW_HANDLERS: dict[str, Callback] = {}
# Features may claim a private message that is in no flow (e.g. a problem typed straight in);
# each returns True when it took the message.
UNSOLICITED: list[Callable[[Update, BotContext], Awaitable[bool]]] = []


async def remember_person(update: Update, context: BotContext) -> None:
    """Keep the person's name and Telegram language current (no write when nothing changed)."""
    user = update.effective_user
    if user is not None and not user.is_bot:
        # Someone writing to us or pressing a button has evidently not blocked the bot.
        interacting = update.effective_chat is not None and update.effective_chat.type == "private" and (
            update.message is not None or update.callback_query is not None)
        await context.core.people.touch(user.id, user.full_name, user.username, user.language_code,
                                         interacting=interacting)


async def guard_input(update: Update, context: BotContext) -> None:
    """Refuse text longer than Telegram allows before any feature sees it."""
    message = update.effective_message
    text = (message.text or message.caption or "") if message else ""
    if len(text) > MAX_INPUT:
        await reply(update, context, "error.too_long", limit=MAX_INPUT, length=len(text))
        raise ApplicationHandlerStop


async def cancel_command(update: Update, context: BotContext) -> None:
    """Leave any multi-step flow."""
    from handlers.start import main_menu

    user = update.effective_user
    assert user is not None and update.effective_message is not None
    state = await context.core.flows.clear(user.id)
    c = context.core
    lang = await lang_of(update, context)
    await update.effective_message.reply_text(
        c.t(lang, "cancel.done" if state else "cancel.nothing"), reply_markup=await main_menu(update, context)
    )


async def chat_member(update: Update, context: BotContext) -> None:
    """A private chat's my_chat_member update says whether the person blocked or unblocked us; a
    group's or channel's, whether it removed the bot (or muted it) or added it back."""
    change: ChatMemberUpdated | None = update.my_chat_member
    if change is None:
        return
    status = change.new_chat_member.status
    blocked = status in (ChatMember.BANNED, ChatMember.LEFT)
    if change.chat.type != "private":
        member = change.new_chat_member
        muted = status == ChatMember.RESTRICTED and not (
            getattr(member, "is_member", True) and getattr(member, "can_send_messages", True))
        await context.core.outbox.set_chat_blocked(change.chat.id, blocked or muted, f"bot {status} in the chat")
        log.info("chat %s %s the bot", change.chat.id, "removed or muted" if blocked or muted else "added")
        return
    await context.core.people.set_blocked(change.chat.id, blocked)
    log.info("person %s %s the bot", change.chat.id, "blocked" if blocked else "unblocked")


async def private_message(update: Update, context: BotContext) -> None:
    """Hand the message to the person's open flow, or explain what the bot understands."""
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None:
        return
    state = await context.core.flows.get(user.id)
    if state is not None and state.flow in FLOW_HANDLERS:
        await FLOW_HANDLERS[state.flow](update, context)
        return
    for claim in UNSOLICITED:
        if await claim(update, context):
            return
    key = "fallback.text" if message.text else "fallback.unsupported"
    await reply(update, context, key)


async def unknown_command(update: Update, context: BotContext) -> None:
    """A command no feature knows."""
    message = update.effective_message
    command = (message.text or "").split()[0].split("@")[0] if message else ""
    await reply(update, context, "fallback.unknown_command", command=command)


async def stale_button(update: Update, context: BotContext) -> None:
    """A button whose data no feature recognises (forged or from an old version)."""
    query = update.callback_query
    assert query is not None
    lang = await lang_of(update, context)
    await query.answer(context.core.t(lang, "error.stale_button"), show_alert=True)


async def error_handler(update: object, context: BotContext) -> None:
    """Log the error and tell the user something went wrong, in their language."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        lang = await lang_of(update, context)
        text = context.core.t(lang, "error.internal")
    except Exception:  # the database itself may be what failed
        text = context.core.t(None, "error.internal")
    private = update.effective_chat is not None and update.effective_chat.type == "private"
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(text, show_alert=True)
            return
        except TelegramError:  # the press was answered already (the failure came after): say it in the chat
            pass
    if private and update.effective_chat is not None:
        try:
            await context.bot.send_message(update.effective_chat.id, text)
        except TelegramError:  # the network may be what failed; the log already has the cause
            log.warning("could not tell the user about the error", exc_info=True)


COMMANDS = [Command("cancel", cancel_command)]
