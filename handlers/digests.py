"""Digests in chat: /settings (and the two buttons under /me) to take the low-priority notices at
once or in one daily digest at 08:00; each digest item's button, which sends the original notice.

The pressed screen is edited in place; the service checks every right again."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import DG_OPEN, DG_SET, DG_WALL, WALL_PAGE, DigestMode, DigestScreen
from bot.context import BotContext
from bot.core import Core
from bot.limits import MAX_TEXT, clip
from bot.outbox import Button
from bot.services.digests import Refused
from bot.services.orgs import NotAllowed, NotFound
from handlers.common import Command, answer_callback, answer_text, edit_text, keyboard, lang_of, person
from handlers.me import me_screen


async def settings_screen(c: Core, user_id: int, lang: str) -> tuple[str, list[list[Button]]]:
    daily = await c.digests.daily(user_id)
    line, rows = c.digests.choice(lang, daily, DigestScreen.SETTINGS, await c.digests.held(user_id) if daily else 0)
    return c.t(lang, "digest.settings", choice=line), rows


async def settings_command(update: Update, context: BotContext) -> None:
    """The person's settings: how the low-priority notices come."""
    assert update.effective_message is not None
    lang = await lang_of(update, context)
    text, rows = await settings_screen(context.core, person(update), lang)
    await update.effective_message.reply_text(text, reply_markup=keyboard(rows))


async def set_button(update: Update, context: BotContext) -> None:
    """☑/☐ at once / daily: save the choice, then edit the screen it was pressed on."""
    c = context.core
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    data = DG_SET.parse(query.data)
    if data is None:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    uid = person(update)
    try:
        released = await c.digests.choose(uid, data.mode == DigestMode.DAILY)
    except NotAllowed:
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    lang = await lang_of(update, context)
    if data.mode == DigestMode.DAILY:
        await answer_text(update, c.t(lang, "digest.set.daily"))
    elif released:
        await answer_text(update, c.formatter.count(lang, "digest.set.released", released))
    else:
        await answer_text(update, c.t(lang, "digest.set.now"))
    if data.screen == DigestScreen.ME:
        text, rows = await me_screen(c, uid, update.effective_user.full_name, lang)
    else:
        text, rows = await settings_screen(c, uid, lang)
    await edit_text(query, text, keyboard(rows))


async def open_button(update: Update, context: BotContext) -> None:
    """An item of a digest: the original notice is sent to the person who pressed it."""
    query = update.callback_query
    assert query is not None
    data = DG_OPEN.parse(query.data)
    key, values = "digest.opened", {}
    try:
        if data is None:
            raise NotFound("digest item")
        await context.core.digests.open(person(update), data.item_id)
    except Refused as exc:
        key, values = exc.key, exc.values
    except NotAllowed:
        key = "digest.error.not_yours"
    except NotFound:
        key = "error.stale_button"
    await answer_callback(update, context, key, alert=key != "digest.opened", **values)


async def wall_button(update: Update, context: BotContext) -> None:
    """A digest's echo-wall line: that org's wall (public, as /wall shows it), as a new message, so
    that the digest stays as it is."""
    c = context.core
    query = update.callback_query
    assert query is not None and update.effective_chat is not None
    data = DG_WALL.parse(query.data)
    org = await c.orgs.get(data.org_id) if data is not None else None
    if org is None:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    await query.answer()
    lang = await lang_of(update, context)
    posts, more = await c.tickets.wall(org.id, 0)
    if posts:
        text = c.t(lang, "ticket.wall.title", org=org.name, page=1) + "\n\n" + "\n\n".join(
            c.tickets.wall_text(lang, post, short=True) for post in posts)
    else:
        text = c.t(lang, "ticket.wall.empty", org=org.name)
    rows = [[Button(c.t(lang, "ticket.wall.older"), WALL_PAGE(org.id, 1))]] if more else []
    await update.effective_chat.send_message(clip(text, MAX_TEXT), reply_markup=keyboard(rows) if rows else None)


COMMANDS = [
    Command("settings", settings_command),
]

BUTTONS = [
    (DG_SET, set_button),
    (DG_OPEN, open_button),
    (DG_WALL, wall_button),
]


def register(app: Application) -> None:  # type: ignore[type-arg]
    for kind, callback in BUTTONS:
        app.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern))
