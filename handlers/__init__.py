"""Every handler, registered in one visible place, in order.

A feature is one module here with `COMMANDS` (slash commands, their audience and menu button)
and `register(app)` (its other handlers); add it to FEATURES and it is wired up, listed in
/help and the menu, and registered with Telegram.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.i18n import Translator
from handlers import (
    appoint,
    appraisal,
    broadcasts,
    deliberation,
    digests,
    lang,
    matters,
    me,
    meetings,
    membership,
    opinions,
    pledges,
    points,
    poster,
    privacy,
    report,
    start,
    system,
    tickets,
)
from handlers.common import Callback, Command

# Order matters only for /help and the menu (commands are matched by name).
FEATURES = [start, tickets, meetings, deliberation, opinions, matters, appraisal, broadcasts, report, points,
            pledges, me, digests, lang, appoint, membership, poster, privacy, system]


def all_commands() -> list[Command]:
    return [cmd for feature in FEATURES for cmd in feature.COMMANDS]


def register_all(app: Application, t: Translator) -> None:  # type: ignore[type-arg]
    # New messages only: an edited message must not re-run a command or a flow step.
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    # Before anything else: who is talking, then refuse over-long input.
    app.add_handler(TypeHandler(Update, system.remember_person), group=-2)
    app.add_handler(MessageHandler(private & (filters.TEXT | filters.CAPTION), system.guard_input), group=-1)
    app.add_handler(ChatMemberHandler(system.chat_member, ChatMemberHandler.MY_CHAT_MEMBER), group=-1)

    for cmd in all_commands():
        app.add_handler(CommandHandler(cmd.name, cmd.callback,
                                       filters=private if cmd.private_only else filters.UpdateType.MESSAGE))
    for feature in FEATURES:
        register = getattr(feature, "register", None)
        if register is not None:
            register(app)

    # Main-menu buttons arrive as plain text in either language.
    menu: dict[str, Callback] = {}
    for cmd in all_commands():
        if cmd.menu_key:
            for label in t.all_languages(cmd.menu_key):
                menu[label] = cmd.callback
    app.add_handler(MessageHandler(private & filters.Text(list(menu)), _menu_dispatch(menu)))

    # Last: whatever nobody above took.
    app.add_handler(MessageHandler(private & filters.COMMAND, system.unknown_command))
    app.add_handler(MessageHandler(private & ~filters.StatusUpdate.ALL, system.private_message))
    app.add_handler(CallbackQueryHandler(system.stale_button))
    app.add_error_handler(system.error_handler)


def _menu_dispatch(menu: dict[str, Callback]) -> Callback:
    async def dispatch(update: Update, context: object) -> None:
        """Run the command behind a main-menu button."""
        assert update.effective_message is not None and update.effective_message.text is not None
        await menu[update.effective_message.text](update, context)  # type: ignore[arg-type]

    return dispatch
