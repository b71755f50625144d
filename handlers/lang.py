"""/lang: choose 中文 or English; the choice is remembered."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import LANG
from bot.config import SUPPORTED_LOCALES
from bot.context import BotContext
from bot.outbox import Button
from handlers.common import Command, edit_text, keyboard, lang_of
from handlers.start import main_menu


async def lang_command(update: Update, context: BotContext) -> None:
    """Offer the two languages as buttons."""
    c = context.core
    lang = await lang_of(update, context)
    buttons = [[Button(c.t(code, "lang.name"), LANG(code)) for code in SUPPORTED_LOCALES]]
    assert update.effective_message is not None
    await update.effective_message.reply_text(c.t(lang, "lang.choose"), reply_markup=keyboard(buttons))


async def lang_chosen(update: Update, context: BotContext) -> None:
    """Store the language and show the menu in it."""
    c = context.core
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    data = LANG.parse(query.data)
    if data is None:
        await query.answer(c.t(await lang_of(update, context), "error.stale_button"), show_alert=True)
        return
    chosen = str(data.code)
    await c.people.set_language(update.effective_user.id, chosen)
    await query.answer()
    await edit_text(query, c.t(chosen, "lang.set"))
    assert update.effective_chat is not None
    await context.bot.send_message(
        update.effective_chat.id, c.t(chosen, "lang.menu_updated"), reply_markup=await main_menu(update, context)
    )


COMMANDS = [Command("lang", lang_command, menu_key="menu.lang")]


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CallbackQueryHandler(lang_chosen, pattern=LANG.pattern))
