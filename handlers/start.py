"""/start (with or without a join link), /help and the main menu."""

from __future__ import annotations

from telegram import KeyboardButton, ReplyKeyboardMarkup, Update
from telegram.ext import Application

from bot.context import BotContext
from bot.services.invites import PAYLOAD_PREFIX, JoinOutcome
from handlers.common import Command, lang_of


async def main_menu(update: Update, context: BotContext) -> ReplyKeyboardMarkup:
    """The reply keyboard: the menu buttons this person's roles allow, two to a row."""
    from handlers import all_commands  # the registry lists every feature's commands

    c = context.core
    user = update.effective_user
    assert user is not None
    lang = await c.people.language(user.id)
    roles = await c.orgs.role_names(user.id)
    labels = [c.t(lang, cmd.menu_key) for cmd in all_commands() if cmd.menu_key and cmd.visible_to(roles)]
    rows = [[KeyboardButton(label) for label in labels[i:i + 2]] for i in range(0, len(labels), 2)]
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, is_persistent=True)


async def start(update: Update, context: BotContext) -> None:
    """Greet the person; with a join payload, join the org or ask for approval."""
    c = context.core
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None:
        return
    payload = context.args[0] if context.args else ""
    lang = await lang_of(update, context)
    if payload.startswith(PAYLOAD_PREFIX):
        result = await c.invites.join(user.id, payload)
        values = {}
        if result.org is not None:
            values = {"org": result.org.name, "role": c.t(lang, f"role.{result.role}")}
        text = c.t(lang, f"join.{result.outcome.value}", **values)
        if result.outcome in (JoinOutcome.invalid, JoinOutcome.revoked):
            text += "\n\n" + c.t(lang, "start.no_roles")
        await message.reply_text(text, reply_markup=await main_menu(update, context))
        return
    roles = await c.orgs.role_names(user.id)
    text = c.t(lang, "start.welcome", name=user.first_name)
    if not roles:
        text += "\n\n" + c.t(lang, "start.no_roles")
    await message.reply_text(text, reply_markup=await main_menu(update, context))


async def help_command(update: Update, context: BotContext) -> None:
    """List the commands this person's roles allow."""
    from handlers import all_commands

    c = context.core
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None:
        return
    lang = await lang_of(update, context)
    roles = await c.orgs.role_names(user.id)
    lines = [c.t(lang, "help.title")]
    for cmd in all_commands():
        if cmd.visible_to(roles):
            lines.append(f"/{cmd.name} — {c.t(lang, f'command.{cmd.name}')}")
    await message.reply_text("\n".join(lines), reply_markup=await main_menu(update, context))


COMMANDS = [
    Command("start", start),
    Command("help", help_command, menu_key="menu.help"),
]


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Nothing beyond the commands."""
