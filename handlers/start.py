"""/start (with or without a join link), /help and the main menu."""

from __future__ import annotations

from telegram import KeyboardButton, ReplyKeyboardMarkup, Update
from telegram.ext import Application

from bot.context import BotContext
from bot.core import Core
from bot.services.invites import PAYLOAD_PREFIX, JoinOutcome
from bot.services.tickets import Refused
from handlers.common import Command, lang_of


async def main_menu(update: Update, context: BotContext) -> ReplyKeyboardMarkup:
    """The reply keyboard: the menu buttons this person's roles allow, two to a row."""
    c = context.core
    user = update.effective_user
    assert user is not None
    lang = await c.people.language(user.id)
    labels = menu_labels(c, lang, await c.orgs.role_names(user.id))
    rows = [[KeyboardButton(label) for label in labels[i:i + 2]] for i in range(0, len(labels), 2)]
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, is_persistent=True)


def menu_labels(c: Core, lang: str, roles: set[str]) -> list[str]:
    from handlers import all_commands  # the registry lists every feature's commands

    return [c.t(lang, cmd.menu_key) for cmd in all_commands() if cmd.menu_key and cmd.visible_to(roles)]


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
            values = {"org": result.org.name, "role": c.t(lang, f"readable.role_as.{result.role}")}
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


# /help groups the commands by task; a command not listed here goes under 其他 (add new ones here).
HELP_GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("readable.help.group_tickets", frozenset({"submit", "my", "wall", "inbox", "blocked", "bindwall", "poster"})),
    ("readable.help.group_meetings", frozenset({"meetings", "newmeeting", "checkin", "ledger", "meetingsettings",
                                                "committee"})),
    ("readable.help.group_deliberation", frozenset({"deliberations", "newdeliberation", "matters", "appraisal"})),
    ("readable.help.group_notices", frozenset({"broadcast", "broadcasts"})),
    ("readable.help.group_supervision", frozenset({"report"})),
    ("readable.help.group_points", frozenset({"points", "pledges", "pointrules"})),
    ("readable.help.group_people", frozenset({"org", "invite", "appoint"})),
    ("readable.help.group_privacy", frozenset({"mydata"})),
)
OTHER_GROUP = "readable.help.group_other"


async def help_command(update: Update, context: BotContext) -> None:
    """What a person does first: the menu buttons, and (for whoever reports problems) that sending a
    photo, a voice note or a text is enough. Then the commands this person's roles allow, by task."""
    c = context.core
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None:
        return
    lang = await lang_of(update, context)
    roles = await c.orgs.role_names(user.id)
    # The menu's own ❓ 帮助 is left out: the person is reading its answer.
    buttons = [c.t(lang, "readable.help.button", label=label) for label in menu_labels(c, lang, roles)
               if label != c.t(lang, "menu.help")]
    lines = [c.t(lang, "readable.help.menu", buttons=c.formatter.join(lang, buttons))]
    try:
        await c.tickets.check_can_submit(user.id)
        lines.append(c.t(lang, "readable.help.just_send"))
    except Refused:  # not someone who reports problems here (or stopped): no promise of it
        if not roles:
            lines.append(c.t(lang, "start.no_roles"))
    lines += ["", c.t(lang, "help.title")]
    for title, commands in help_groups(roles):
        lines.append("")
        lines.append(c.t(lang, title))
        lines += [f"/{cmd.name} — {c.t(lang, f'command.{cmd.name}')}" for cmd in commands]
    await message.reply_text("\n".join(lines), reply_markup=await main_menu(update, context))


def help_groups(roles: set[str]) -> list[tuple[str, list[Command]]]:
    """The groups with at least one command these roles may use, each with those commands in order."""
    from handlers import all_commands

    visible = [cmd for cmd in all_commands() if cmd.visible_to(roles)]
    groups = [(title, [cmd for cmd in visible if cmd.name in names]) for title, names in HELP_GROUPS]
    grouped = {name for _, names in HELP_GROUPS for name in names}
    groups.append((OTHER_GROUP, [cmd for cmd in visible if cmd.name not in grouped]))
    return [(title, commands) for title, commands in groups if commands]


COMMANDS = [
    Command("start", start),
    Command("help", help_command, menu_key="menu.help"),
]


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Nothing beyond the commands."""
