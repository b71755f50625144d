"""/report [month | quarter | year | 2026-11 | 2026-Q4 | 2026]: the supervision bulletin (督查通报) of
the person's org and everything below (organisers) or of their own org (secretaries), built while
one message shows the progress, then sent as the text, the chart and the workbook. The right is
checked by the service, again on the org button."""

from __future__ import annotations

from datetime import date

from telegram import InputFile, Message, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import REPORT_ORG
from bot.context import BotContext
from bot.outbox import Button
from bot.services.orgs import NotAllowed, NotFound, Refused
from bot.services.supervision import parse
from bot.services.supervision_render import period_words
from handlers.common import LEADERS, Command, answer_callback, keyboard, lang_of, person, reply


def _day(value: date) -> int:
    return value.year * 10000 + value.month * 100 + value.day


def _date(value: int) -> date | None:
    try:
        return date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return None


async def report_command(update: Update, context: BotContext) -> None:
    c = context.core
    actor = person(update)
    today = c.formatter.local(c.clock.now()).date()
    period = parse(" ".join(context.args or []) or "month", today)
    if period is None:
        await reply(update, context, "supervision.bad_period")
        return
    orgs = await c.supervision.report_orgs(actor)
    if not orgs:
        await reply(update, context, "supervision.nothing")
        return
    first, last = period
    if len(orgs) == 1:
        await _build(update, context, orgs[0].id, first, last)
        return
    rows = [[Button(org.name, REPORT_ORG(org.id, _day(first), _day(last)))] for org in orgs[:20]]
    await reply(update, context, "supervision.ask_org", reply_markup=keyboard(rows))


async def report_org(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = REPORT_ORG.parse(query.data)
    first, last = (_date(data.first), _date(data.last)) if data else (None, None)
    if data is None or first is None or last is None:
        await answer_callback(update, context, "error.stale_button")
        return
    await answer_callback(update, context, "supervision.progress.counting")
    await _build(update, context, data.org_id, first, last)


async def _build(update: Update, context: BotContext, org_id: int, first: date, last: date) -> None:
    """One progress message edited at each step, then the text, the chart and the workbook."""
    c = context.core
    lang = await lang_of(update, context)
    chat = update.effective_chat
    assert chat is not None
    try:
        await c.supervision.check_report(person(update), org_id)
    except (NotAllowed, NotFound):
        await context.bot.send_message(chat.id, c.t(lang, "supervision.not_allowed"))
        return
    status: Message = await context.bot.send_message(chat.id, c.t(lang, "supervision.progress.counting"))

    async def progress(key: str) -> None:
        await _edit(status, c.t(lang, key))

    try:
        built = await c.supervision.build(person(update), org_id, first, last, lang, progress)
    except NotAllowed:
        await _edit(status, c.t(lang, "supervision.not_allowed"))
        return
    except Refused as refused:
        await _edit(status, c.t(lang, refused.key, **refused.values))
        return
    for text in built.texts:
        await context.bot.send_message(chat.id, text)
    words = period_words(built.bulletin, c.formatter, lang)
    org = built.bulletin.org.name
    await context.bot.send_photo(chat.id, InputFile(built.chart, filename=built.chart_name),
                                 caption=c.t(lang, "supervision.chart_caption", org=org, period=words))
    await context.bot.send_document(chat.id, InputFile(built.workbook, filename=built.workbook_name),
                                    caption=c.t(lang, "supervision.document_caption", org=org, period=words))
    await _edit(status, c.t(lang, "supervision.progress.done"))


async def _edit(message: Message, text: str) -> None:
    try:
        await message.edit_text(text)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


COMMANDS = [Command("report", report_command, audience=LEADERS)]


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CallbackQueryHandler(report_org, pattern=REPORT_ORG.pattern))
