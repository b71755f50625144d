"""/poster: a secretary gets the month's echo-wall poster (A4 PDF) to print for the notice board.

`/poster` offers last month and this month for each village the person is secretary of;
organizers and admins name the org: `/poster <code>`. The right is checked again on the button.
"""

from __future__ import annotations

from datetime import date

from babel.dates import format_skeleton
from telegram import InputFile, Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import POSTER
from bot.context import BotContext
from bot.outbox import Button
from bot.poster import FontMissing, file_name, make_poster, previous_month
from bot.services.orgs import NotAllowed, NotFound, Org
from handlers.common import LEADERS, Command, answer_callback, keyboard, lang_of, reply

MAX_ORGS = 10


async def poster_command(update: Update, context: BotContext) -> None:
    c = context.core
    user = update.effective_user
    assert user is not None
    wall = c.echo_wall
    lang = await lang_of(update, context)
    orgs: list[Org]
    if context.args:
        org = await c.orgs.by_code(context.args[0])
        if org is None:
            await reply(update, context, "error.not_allowed")
            return
        orgs = [org]
    else:
        orgs = await wall.poster_orgs(user.id)
    allowed = []
    for org in orgs[:MAX_ORGS]:
        try:
            allowed.append(await wall.check_poster(user.id, org.id))
        except (NotAllowed, NotFound):
            continue
    if not allowed:
        await reply(update, context, "poster.none")
        return
    today = c.clock.now().astimezone(c.settings.tz).date()
    months = [(previous_month(today), "poster.last_month"), (today.replace(day=1), "poster.this_month")]
    rows = []
    for org in allowed:
        prefix = f"{org.name}：" if len(allowed) > 1 else ""
        rows.append([Button(prefix + c.t(lang, key, month=format_skeleton("MMMM", month, locale=lang)),
                            POSTER(org.id, month.year * 100 + month.month)) for month, key in months])
    await reply(update, context, "poster.pick", reply_markup=keyboard(rows))


async def poster_chosen(update: Update, context: BotContext) -> None:
    """Make the PDF (the right is read from the database now) and send it to the person who asked."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    data = POSTER.parse(query.data)
    if data is None or not 1 <= data.month % 100 <= 12:
        await answer_callback(update, context, "error.stale_button")
        return
    wall = c.echo_wall
    try:
        org = await wall.check_poster(user.id, data.org_id)
    except NotAllowed:
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    except NotFound:
        await answer_callback(update, context, "error.stale_button")
        return
    lang = await lang_of(update, context)
    month = date(data.month // 100, data.month % 100, 1)
    await answer_callback(update, context, "poster.making")
    username = await c.bot_username(org.id) or context.bot.username
    link = await wall.join_link(org, username, user.id)
    # The poster is for the village's notice board: in the bot's language, whoever asks for it.
    poster_lang = c.settings.locale
    try:
        pdf = await make_poster(c, org, month, poster_lang, link)
    except FontMissing:
        await reply(update, context, "poster.no_font")
        return
    assert query.message is not None
    await context.bot.send_document(
        query.message.chat.id, InputFile(pdf, filename=file_name(c.t, poster_lang, org, month)),
        caption=c.t(lang, "poster.caption", org=org.name, month=format_skeleton("yMMMM", month, locale=lang)))


COMMANDS = [Command("poster", poster_command, audience=LEADERS)]


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CallbackQueryHandler(poster_chosen, pattern=POSTER.pattern))
