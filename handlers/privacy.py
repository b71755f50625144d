"""/mydata: the person gets everything the bot keeps about them, as a JSON document.

Sent straight back in the person's own chat (they are the acting person), never through the outbox:
the export must not be kept as a copy in the database it describes."""

from __future__ import annotations

from telegram import InputFile, Update
from telegram.ext import Application

from bot.context import BotContext
from handlers.common import Command, lang_of, person, reply


async def mydata(update: Update, context: BotContext) -> None:
    c = context.core
    me = person(update)
    lang = await lang_of(update, context)
    await reply(update, context, "privacy.making")
    data = await c.privacy.export(me, me, via="chat")
    day = c.formatter.local(c.clock.now()).date().isoformat()
    assert update.effective_chat is not None
    await context.bot.send_document(
        update.effective_chat.id, InputFile(c.privacy.to_json(data), filename=c.t(lang, "privacy.file_name", day=day)),
        caption=c.t(lang, "privacy.caption"))


COMMANDS = [Command("mydata", mydata)]


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Nothing beyond the command."""
