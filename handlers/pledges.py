"""Pledges (设岗承诺) in chat.

  /pledges   the branch's posts and pledges (everyone's); a member takes a post or writes a
             pledge, and reports progress (践诺: text and photos, then 提交); the secretary adds
             posts and confirms reports (督诺), from the notice or from 待督诺.

Typed steps (a pledge, a post's name, a report) go through the flow store (WRITE_FLOW, POST_FLOW,
REPORT_FLOW, registered in handlers/system.py FLOW_HANDLERS). Every button's data is a kind from
bot/callbacks.py; the service checks every right again."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import PG, PgAct, PgAction
from bot.context import BotContext
from bot.limits import MAX_TEXT, clip
from bot.outbox import Button
from bot.services.flows import FlowState
from bot.services.orgs import NotAllowed
from bot.services.pledges import MAX_MEDIA, Pledge, PledgeService
from bot.services.pledges import MAX_TEXT as MAX_REPORT
from handlers import system
from handlers.common import Command, lang_of, person, say, say_key
from handlers.points import POINT_HOLDERS, guarded

WRITE_FLOW = "pledge/write"
POST_FLOW = "pledge/post"
REPORT_FLOW = "pledge/report"
FLOWS = (WRITE_FLOW, POST_FLOW, REPORT_FLOW)
LABEL_ROOM = 24
MAX_PENDING_SHOWN = 10
MAX_BUTTONS = 80


def svc(context: BotContext) -> PledgeService:
    return context.core.pledges


async def pledges_command(update: Update, context: BotContext) -> None:
    """The board of the person's (first) branch; someone of no branch is told so."""
    orgs = await svc(context).orgs_of(person(update))
    if not orgs:
        await say_key(update, context, "pledge.no_org")
        return
    await show_board(update, context, orgs[0][0])


def pledge_line(context: BotContext, lang: str, pledge: Pledge) -> str:
    key = "pledge.board.post" if pledge.post_id is not None else "pledge.board.pledge"
    return context.core.t(lang, key, name=pledge.name, text=pledge.text, n=pledge.confirmed)


async def show_board(update: Update, context: BotContext, org_id: int, edit: bool = False) -> None:
    """Everyone's posts and pledges; the member's own buttons (take, write, 践诺); the secretary's."""
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    board = await svc(context).board(me, org_id)
    org = await c.orgs.get(org_id)
    assert org is not None
    lines = "\n".join(pledge_line(context, lang, p) for p in board) or c.t(lang, "pledge.board.empty")
    rows: list[list[Button]] = []
    if await svc(context).is_member(me, org_id):
        rows.append([Button(c.t(lang, "pledge.button.posts"), PG.encode(PgAct(PgAction.POSTS, org_id))),
                     Button(c.t(lang, "pledge.button.write"), PG.encode(PgAct(PgAction.WRITE, org_id)))])
        for pledge in [p for p in board if p.person_id == me][:MAX_BUTTONS]:
            rows.append([Button(c.t(lang, "pledge.button.report", text=clip(pledge.text, LABEL_ROOM)),
                                PG.encode(PgAct(PgAction.REPORT, pledge.id)))])
    if await svc(context).is_secretary(me, org_id):
        waiting = len(await svc(context).pending(me, org_id))
        rows.append([Button(c.t(lang, "pledge.button.add_post"), PG.encode(PgAct(PgAction.ADD_POST, org_id))),
                     Button(c.t(lang, "pledge.button.pending", n=waiting), PG.encode(PgAct(PgAction.PENDING, org_id)))])
    await say(update, context, clip(c.t(lang, "pledge.board.head", org=org.name, lines=lines), MAX_TEXT), rows,
              edit=edit)


async def show_posts(update: Update, context: BotContext, org_id: int) -> None:
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    posts = await svc(context).posts(me, org_id)
    secretary = await svc(context).is_secretary(me, org_id)
    rows: list[list[Button]] = []
    for post in posts[:MAX_BUTTONS // 2]:
        row = [Button(c.t(lang, "pledge.button.take", title=post.title, n=post.takers),
                      PG.encode(PgAct(PgAction.TAKE, post.id)))]
        if secretary:
            row.append(Button(c.t(lang, "pledge.button.remove"), PG.encode(PgAct(PgAction.REMOVE_POST, post.id))))
        rows.append(row)
    rows.append([Button(c.t(lang, "pledge.button.back"), PG.encode(PgAct(PgAction.BOARD, org_id)))])
    await say_key(update, context, "pledge.posts.head" if posts else "pledge.posts.none", rows, edit=True)


async def start_report(update: Update, context: BotContext, pledge_id: int) -> None:
    me = person(update)
    pledge = await svc(context).check_report(me, pledge_id)
    await context.core.flows.set(me, REPORT_FLOW, "collect", {"pledge": pledge.id, "text": [], "media": []})
    lang = await lang_of(update, context)
    rows = [[Button(context.core.t(lang, "pledge.button.submit"), PG.encode(PgAct(PgAction.SUBMIT, pledge.id)))]]
    await say_key(update, context, "pledge.ask.report", rows, text=clip(pledge.text, 200), limit=MAX_MEDIA)


async def submit_report(update: Update, context: BotContext, pledge_id: int) -> None:
    me = person(update)
    state = await context.core.flows.get(me)
    if state is None or state.flow != REPORT_FLOW or int(state.data["pledge"]) != pledge_id:
        raise ValueError("no report in progress")
    text = "\n".join(state.data["text"])
    await svc(context).report(me, pledge_id, text, list(state.data["media"]))
    await context.core.flows.clear(me)
    await say_key(update, context, "pledge.reported", edit=True)


async def show_pending(update: Update, context: BotContext, org_id: int) -> None:
    """Each report waiting for 督诺, with its photos (the secretary is the one asking: sent directly)."""
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    reports = await svc(context).pending(me, org_id)
    if not reports:
        await say_key(update, context, "pledge.pending.none")
        return
    for report in reports[:MAX_PENDING_SHOWN]:
        text = c.t(lang, "pledge.pending.item", name=report.name, pledge=clip(report.pledge_text, 200),
                   text=clip(report.text, 1500) or c.t(lang, "pledge.photos_only"), n=len(report.media),
                   when=c.formatter.moment(lang, report.created_at, c.clock.now()))
        await say(update, context, text, [[Button(c.t(lang, "pledge.button.confirm"),
                                                  PG.encode(PgAct(PgAction.CONFIRM, report.id)))]])
        for item in report.media:
            await context.bot.copy_message(me, item["chat_id"], item["message_id"])


async def ask_typed(update: Update, context: BotContext, flow: str, org_id: int) -> None:
    """写承诺 / 添加岗位: the words are typed next."""
    me = person(update)
    if flow == POST_FLOW and not await svc(context).is_secretary(me, org_id):
        raise NotAllowed("add_post")
    if flow == WRITE_FLOW and not await svc(context).is_member(me, org_id):
        raise NotAllowed("write")
    await context.core.flows.set(me, flow, "text", {"org": org_id})
    await say_key(update, context, "pledge.ask.post" if flow == POST_FLOW else "pledge.ask.pledge")


@guarded
async def pledge_button(update: Update, context: BotContext) -> None:
    """Long because it is the one dispatch of every pledge button (each branch one call)."""
    query = update.callback_query
    assert query is not None
    parsed = PG.parse(query.data)
    if parsed is None:
        raise ValueError(query.data)
    action, ident, me = parsed.action, parsed.id, person(update)
    if action == PgAction.BOARD:
        await show_board(update, context, ident, edit=True)
    elif action == PgAction.POSTS:
        await show_posts(update, context, ident)
    elif action == PgAction.TAKE:
        pledge = await svc(context).take_post(me, ident)
        lang = await lang_of(update, context)
        rows = [[Button(context.core.t(lang, "pledge.button.report", text=clip(pledge.text, LABEL_ROOM)),
                        PG.encode(PgAct(PgAction.REPORT, pledge.id)))]]
        await say_key(update, context, "pledge.taken", rows, edit=True, title=pledge.text)
    elif action == PgAction.REMOVE_POST:
        await svc(context).remove_post(me, ident)
        await say_key(update, context, "pledge.post_removed", edit=True)
    elif action == PgAction.WRITE:
        await ask_typed(update, context, WRITE_FLOW, ident)
    elif action == PgAction.ADD_POST:
        await ask_typed(update, context, POST_FLOW, ident)
    elif action == PgAction.REPORT:
        await start_report(update, context, ident)
    elif action == PgAction.SUBMIT:
        await submit_report(update, context, ident)
    elif action == PgAction.PENDING:
        await show_pending(update, context, ident)
    elif action == PgAction.CONFIRM:
        report = await svc(context).confirm(me, ident)
        await say_key(update, context, "pledge.confirmed", edit=True, name=report.name,
                      pledge=clip(report.pledge_text, 200))


async def collect(update: Update, context: BotContext, state: FlowState) -> None:
    """A 践诺 message: its words and photo are added until 提交."""
    c, me = context.core, person(update)
    message = update.effective_message
    assert message is not None
    data: dict[str, Any] = dict(state.data)
    words = (message.text or message.caption or "").strip()
    if message.photo:
        if len(data["media"]) >= MAX_MEDIA:
            await say_key(update, context, "pledge.refused.too_many_photos", limit=MAX_MEDIA)
            return
        data["media"] = [*data["media"], {"kind": "photo", "file_id": message.photo[-1].file_id,
                                          "chat_id": message.chat_id, "message_id": message.message_id}]
    elif not words:
        await say_key(update, context, "pledge.ask.report_kind")
        return
    if words:
        if len("\n".join([*data["text"], words])) > MAX_REPORT:
            await say_key(update, context, "pledge.refused.too_long", limit=MAX_REPORT)
            return
        data["text"] = [*data["text"], words]
    await c.flows.set(me, REPORT_FLOW, "collect", data)
    lang = await lang_of(update, context)
    rows = [[Button(c.t(lang, "pledge.button.submit"), PG.encode(PgAct(PgAction.SUBMIT, int(data["pledge"]))))]]
    await say_key(update, context, "pledge.collected", rows, texts=len(data["text"]), photos=len(data["media"]))


@guarded
async def flow_message(update: Update, context: BotContext) -> None:
    c, me = context.core, person(update)
    message = update.effective_message
    assert message is not None
    state = await c.flows.get(me)
    if state is None or state.flow not in FLOWS:
        return
    if state.flow == REPORT_FLOW:
        await collect(update, context, state)
        return
    if not message.text:
        await say_key(update, context, "pledge.ask.text_please")
        return
    org_id = int(state.data["org"])
    if state.flow == POST_FLOW:
        post = await svc(context).add_post(me, org_id, message.text)
        await c.flows.clear(me)
        await say_key(update, context, "pledge.post_added", title=post.title)
    else:
        pledge = await svc(context).write_pledge(me, org_id, message.text)
        await c.flows.clear(me)
        lang = await lang_of(update, context)
        rows = [[Button(c.t(lang, "pledge.button.report", text=clip(pledge.text, LABEL_ROOM)),
                        PG.encode(PgAct(PgAction.REPORT, pledge.id)))]]
        await say_key(update, context, "pledge.written", rows, text=pledge.text)


COMMANDS = [Command("pledges", pledges_command, audience=POINT_HOLDERS)]


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CallbackQueryHandler(pledge_button, pattern=PG.pattern))
    for flow in FLOWS:
        system.FLOW_HANDLERS[flow] = flow_message
    system.FLOW_LABELS.update({WRITE_FLOW: "pledge.flow.write", POST_FLOW: "pledge.flow.post",
                               REPORT_FLOW: "pledge.flow.report"})
    system.FLOW_HOLDS[REPORT_FLOW] = lambda state: bool(state.data.get("text") or state.data.get("media"))
