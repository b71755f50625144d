"""Broadcasts in chat: /broadcast (audience by org and roles with its size, content, a preview of
exactly what recipients get, when, 收到, urgent), the progress message with 停止发送, recipients'
收到, and /broadcasts (past broadcasts, who has not tapped 收到, one reminder).

Every button is a kind from bot/callbacks.py; the service checks every right again."""

from __future__ import annotations

import contextlib
from datetime import datetime, time, timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import (
    BC_ACK,
    BC_ACKS,
    BC_DRAFT,
    BC_ORG,
    BC_REMIND,
    BC_STOP,
    BroadcastAction,
)
from bot.context import BotContext
from bot.limits import MAX_TEXT, clip
from bot.outbox import Button
from bot.services.broadcasts import ROLE_KEYS, ROLES, STATUS_KEYS, Broadcast, Refused, excerpt
from bot.services.meeting_time import Unreadable, parse_when
from bot.services.orgs import NotAllowed, NotFound, Org
from handlers import system
from handlers.common import LEADERS, Command, answer_callback, edit_text, keyboard, lang_of, reply

FLOW = "broadcast"
STEP_CONTENT = "content"
STEP_TIME = "time"
MAX_ORGS = 30  # org choices offered at once
MAX_NAMES = 60  # names listed of those who have not tapped 收到


def _uid(update: Update) -> int:
    assert update.effective_user is not None
    return update.effective_user.id


def _mark(on: bool) -> str:
    return "☑" if on else "☐"


# --- /broadcast: the org, then the audience -----------------------------------------------------------
async def broadcast_command(update: Update, context: BotContext) -> None:
    """Start a broadcast: choose the org when there are several."""
    c = context.core
    uid = _uid(update)
    choices = await _org_choices(context, uid)
    if not choices:
        await reply(update, context, "broadcast.error.not_allowed")
        return
    if len(choices) == 1:
        b = await c.broadcasts.start(uid, choices[0].id)
        await show_draft(update, context, b)
        return
    rows = [[Button(org.name, BC_ORG(org.id))] for org in choices[:MAX_ORGS]]
    await reply(update, context, "broadcast.pick_org", reply_markup=keyboard(rows))


async def _org_choices(context: BotContext, uid: int) -> list[Org]:
    """The orgs where the person may broadcast, and for organisers the orgs right below them."""
    c = context.core
    out: list[Org] = []
    for root in await c.broadcasts.orgs_for(uid):
        below = await c.broadcasts.reach(uid, root.id)
        if below is None:
            continue
        out.append(root)
        if below:
            out.extend(org for depth, org in await c.orgs.subtree(root.id) if depth == 1)
    return list({org.id: org for org in out}.values())


async def org_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = BC_ORG.parse(query.data)
    assert data is not None
    async with _refusals(update, context):
        b = await context.core.broadcasts.start(_uid(update), data.org_id)
        await query.answer()
        await show_draft(update, context, b, edit=True)


async def show_draft(update: Update, context: BotContext, b: Broadcast, edit: bool = False) -> None:
    """The audience screen: one toggle per role with its size, and the total."""
    c = context.core
    lang = await lang_of(update, context)
    audience = await c.broadcasts.audience(b)
    rows = [[Button(c.t(lang, "broadcast.role_button", mark=_mark(role in b.roles),
                        role=c.t(lang, ROLE_KEYS[role]), n=audience.by_role[role]),
                    BC_DRAFT(b.id, BroadcastAction.ROLE, i))] for i, role in enumerate(ROLES)]
    rows.append([Button(c.t(lang, "broadcast.next"), BC_DRAFT(b.id, BroadcastAction.CONTENT)),
                 Button(c.t(lang, "broadcast.abort"), BC_DRAFT(b.id, BroadcastAction.ABORT))])
    key = "broadcast.draft.below" if b.below else "broadcast.draft.only"
    text = c.t(lang, key, org=b.org_name, n=audience.total)
    await _show(update, text, keyboard(rows), edit)


async def _show(update: Update, text: str, markup: InlineKeyboardMarkup, edit: bool) -> Message | None:
    if edit and update.callback_query is not None:
        await edit_text(update.callback_query, text, reply_markup=markup)
        return None
    assert update.effective_message is not None
    return await update.effective_message.reply_text(text, reply_markup=markup)


# --- the draft's buttons ------------------------------------------------------------------------------
class _refusals:
    """Turns the service's refusals into a clear answer to the button (or message)."""

    def __init__(self, update: Update, context: BotContext) -> None:
        self.update = update
        self.context = context

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None:
            return False
        if isinstance(exc, Refused):
            key, values = exc.key, exc.values
        elif isinstance(exc, NotAllowed):
            key, values = "broadcast.error.not_allowed", {}
        elif isinstance(exc, NotFound):
            key, values = "error.stale_button", {}
        else:
            return False
        if self.update.callback_query is not None:
            await answer_callback(self.update, self.context, key, alert=True, **values)
        else:
            await reply(self.update, self.context, key, **values)
        return True


async def draft_button(update: Update, context: BotContext) -> None:
    """Long because it is the draft's one dispatch table: each action is one or two lines."""
    query = update.callback_query
    assert query is not None
    data = BC_DRAFT.parse(query.data)
    assert data is not None
    s = context.core.broadcasts
    uid, bid, action = _uid(update), data.broadcast_id, data.action
    async with _refusals(update, context):
        if action == BroadcastAction.ROLE:
            if not 0 <= data.value < len(ROLES):
                raise NotFound("role")
            await show_draft(update, context, await s.toggle_role(uid, bid, ROLES[data.value]), edit=True)
        elif action == BroadcastAction.CONTENT:
            b = await s.draft(uid, bid)
            if not b.roles:
                raise Refused("broadcast.error.no_roles")
            await context.core.flows.set(uid, FLOW, STEP_CONTENT, {"id": bid})
            lang = await lang_of(update, context)
            await edit_text(query, context.core.t(lang, "broadcast.ask_content"), keyboard(
                [[Button(context.core.t(lang, "broadcast.abort"), BC_DRAFT(bid, BroadcastAction.ABORT))]]))
        elif action == BroadcastAction.ACK:
            await show_options(update, context, await s.toggle_ack(uid, bid), edit=True)
        elif action == BroadcastAction.URGENT:
            await show_options(update, context, await s.toggle_urgent(uid, bid), edit=True)
        elif action == BroadcastAction.NOW:
            await show_options(update, context, await s.set_time(uid, bid, None), edit=True)
        elif action == BroadcastAction.AT:
            await show_options(update, context, await s.set_time(uid, bid, _decode_time(context, data.value)),
                               edit=True)
        elif action == BroadcastAction.TYPE_TIME:
            await s.draft(uid, bid)
            await context.core.flows.set(uid, FLOW, STEP_TIME, {"id": bid})
            await reply(update, context, "broadcast.ask_time")
        elif action == BroadcastAction.PREVIEW:
            await send_preview(update, context, bid)
            await show_options(update, context, await s.get(bid))
        elif action == BroadcastAction.SEND:
            await confirm(update, context, bid)
        elif action == BroadcastAction.ABORT:
            await s.drop(uid, bid)
            await context.core.flows.clear(uid)
            lang = await lang_of(update, context)
            await edit_text(query, context.core.t(lang, "broadcast.dropped"))
    with contextlib.suppress(BadRequest):  # answered already (a refusal, or the confirm)
        await query.answer()


def _decode_time(context: BotContext, value: int) -> datetime:
    """A time button's value: local yyyymmddhhmm."""
    try:
        day = datetime.strptime(f"{value:012d}", "%Y%m%d%H%M")
    except ValueError:
        raise NotFound("time") from None
    return day.replace(tzinfo=context.core.settings.tz)


def _encode_time(moment: datetime) -> int:
    return int(moment.strftime("%Y%m%d%H%M"))


async def show_options(update: Update, context: BotContext, b: Broadcast, edit: bool = False) -> None:
    """The confirm screen: audience and size, 收到, urgent, when; 确认发送."""
    c = context.core
    s = c.broadcasts
    lang = await lang_of(update, context)
    audience = await s.audience(b)
    starts, deferred = s.planned_start(b)
    now = c.clock.now()
    if b.send_at is None and not deferred:
        when = c.t(lang, "broadcast.when.now")
    else:
        when = c.t(lang, "broadcast.when.deferred" if deferred else "broadcast.when.at",
                   when=c.formatter.moment(lang, starts, now))
    text = c.t(lang, "broadcast.options", audience=s.audience_label(b, lang), n=audience.total, when=when)
    rows = [
        [Button(c.t(lang, "broadcast.ack_toggle", mark=_mark(b.ack)), BC_DRAFT(b.id, BroadcastAction.ACK))],
        [Button(c.t(lang, "broadcast.urgent_toggle", mark=_mark(b.urgent)), BC_DRAFT(b.id, BroadcastAction.URGENT))],
        [Button(c.t(lang, "broadcast.when.now_button"), BC_DRAFT(b.id, BroadcastAction.NOW))]
        + [Button(c.formatter.moment(lang, at, now), BC_DRAFT(b.id, BroadcastAction.AT, _encode_time(at)))
           for at in _time_choices(context, now)]
        + [Button(c.t(lang, "broadcast.when.type_button"), BC_DRAFT(b.id, BroadcastAction.TYPE_TIME))],
        [Button(c.t(lang, "broadcast.preview_button"), BC_DRAFT(b.id, BroadcastAction.PREVIEW)),
         Button(c.t(lang, "broadcast.change_content"), BC_DRAFT(b.id, BroadcastAction.CONTENT))],
        [Button(c.t(lang, "broadcast.send_button"), BC_DRAFT(b.id, BroadcastAction.SEND)),
         Button(c.t(lang, "broadcast.abort"), BC_DRAFT(b.id, BroadcastAction.ABORT))],
    ]
    await _show(update, text, keyboard(rows), edit)


def _time_choices(context: BotContext, now: datetime) -> list[datetime]:
    """One-tap times: this evening at 20:00 (while ahead) and tomorrow at 08:00, local."""
    tz = context.core.settings.tz
    local = now.astimezone(tz)
    tonight = datetime.combine(local.date(), time(20, 0), tzinfo=tz)
    tomorrow = datetime.combine(local.date() + timedelta(days=1), time(8, 0), tzinfo=tz)
    return [at for at in (tonight, tomorrow) if at > now]


async def send_preview(update: Update, context: BotContext, bid: int) -> None:
    """Exactly the message a recipient in the sender's language gets, sent to the sender."""
    c = context.core
    lang = await lang_of(update, context)
    method, payload = await c.broadcasts.preview(_uid(update), bid, lang)
    await reply(update, context, "broadcast.preview_title")
    kwargs = dict(payload)
    if "reply_markup" in kwargs:
        kwargs["reply_markup"] = InlineKeyboardMarkup.de_json(kwargs["reply_markup"], context.bot)
    sender = getattr(context.bot, "".join("_" + ch.lower() if ch.isupper() else ch for ch in method))
    await sender(chat_id=_uid(update), **kwargs)


async def confirm(update: Update, context: BotContext, bid: int) -> None:
    """Queue it; the confirm screen becomes the progress message."""
    c = context.core
    query = update.callback_query
    assert query is not None and query.message is not None
    uid = _uid(update)
    b = await c.broadcasts.confirm(uid, bid)
    await c.flows.clear(uid)
    lang = await lang_of(update, context)
    figures = await c.broadcasts.figures(b)
    text, buttons = await c.broadcasts.progress_text(b, figures, lang)
    await c.broadcasts.set_progress_message(uid, bid, query.message.message_id)
    await query.answer()
    await edit_text(query, text, keyboard(buttons))


# --- typed content and time ---------------------------------------------------------------------------
def _content(message: Message) -> tuple[str, str, str | None] | None:
    """(kind, text or caption, file id) of what was sent, or None for anything else."""
    caption = message.caption or ""
    if message.text:
        return "text", message.text, None
    if message.photo:
        return "photo", caption, message.photo[-1].file_id
    if message.document:
        return "document", caption, message.document.file_id
    if message.voice:
        return "voice", caption, message.voice.file_id
    return None


async def flow_message(update: Update, context: BotContext) -> None:
    """The sender's content, or a typed time."""
    c = context.core
    uid = _uid(update)
    message = update.effective_message
    state = await c.flows.get(uid)
    assert message is not None and state is not None
    bid = state.data.get("id")
    if not isinstance(bid, int):
        await c.flows.clear(uid)
        await reply(update, context, "error.stale_button")
        return
    async with _refusals(update, context):
        if state.step == STEP_TIME:
            await typed_time(update, context, bid, message.text or "")
            return
        content = _content(message)
        if content is None:
            await reply(update, context, "broadcast.error.kind")
            return
        await c.broadcasts.set_content(uid, bid, content[0], content[1], content[2])
        await c.flows.clear(uid)
        await send_preview(update, context, bid)
        await show_options(update, context, await c.broadcasts.get(bid))


async def typed_time(update: Update, context: BotContext, bid: int, text: str) -> None:
    c = context.core
    tz = c.settings.tz
    now = c.clock.now()
    try:
        when = parse_when(text, now.astimezone(tz).date())
    except Unreadable:
        when = None
    if when is None or when.start is None:
        await reply(update, context, "broadcast.error.time_unreadable")
        return
    day = when.day or now.astimezone(tz).date()
    moment = datetime.combine(day, when.start, tzinfo=tz)
    if when.day is None and moment <= now:
        moment += timedelta(days=1)  # "8点" after eight: tomorrow's
    b = await c.broadcasts.set_time(_uid(update), bid, moment)
    await c.flows.clear(_uid(update))
    await show_options(update, context, b)


# --- progress, 收到, history --------------------------------------------------------------------------
async def stop_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = BC_STOP.parse(query.data)
    assert data is not None
    c = context.core
    async with _refusals(update, context):
        withdrawn = await c.broadcasts.cancel(_uid(update), data.broadcast_id)
        lang = await lang_of(update, context)
        await answer_callback(update, context, "broadcast.stopped", n=withdrawn)
        b = await c.broadcasts.get(data.broadcast_id)
        text, _ = await c.broadcasts.progress_text(b, await c.broadcasts.figures(b), lang)
        await edit_text(query, text)


async def ack_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = BC_ACK.parse(query.data)
    assert data is not None
    async with _refusals(update, context):
        first = await context.core.broadcasts.ack(_uid(update), data.broadcast_id)
        await answer_callback(update, context, "broadcast.ack.thanks" if first else "broadcast.ack.already")
        lang = await lang_of(update, context)
        await query.edit_message_reply_markup(keyboard(
            [[Button(context.core.t(lang, "broadcast.ack.done"), BC_ACK(data.broadcast_id))]]))


async def broadcasts_command(update: Update, context: BotContext) -> None:
    """The sender's past broadcasts with their figures."""
    c = context.core
    lang = await lang_of(update, context)
    history = await c.broadcasts.history(_uid(update))
    if not history:
        await reply(update, context, "broadcast.history.empty")
        return
    lines, rows = [c.t(lang, "broadcast.history.title")], []
    now = c.clock.now()
    for b, f in history:
        when = c.formatter.moment(lang, b.confirmed_at or b.created_at, now)
        status = c.t(lang, STATUS_KEYS[b.status])
        lines.append(c.t(lang, "broadcast.history.line", when=when, audience=c.broadcasts.audience_label(b, lang),
                         status=status, sent=f.sent, total=f.total, blocked=f.blocked, failed=f.failed,
                         withdrawn=f.withdrawn, pending=f.pending, excerpt=excerpt(b.body)))
        if b.ack:
            rows.append([Button(c.t(lang, "broadcast.history.acks", when=when), BC_ACKS(b.id))])
    text = clip("\n\n".join(lines), MAX_TEXT)
    assert update.effective_message is not None
    await update.effective_message.reply_text(text, reply_markup=keyboard(rows) if rows else None)


async def acks_button(update: Update, context: BotContext) -> None:
    """Who has tapped 收到, who has not, and the one reminder."""
    query = update.callback_query
    assert query is not None
    data = BC_ACKS.parse(query.data)
    assert data is not None
    c = context.core
    async with _refusals(update, context):
        acks = await c.broadcasts.acks(_uid(update), data.broadcast_id)
        await query.answer()
        lang = await lang_of(update, context)
        names = acks.missing[:MAX_NAMES]
        more = len(acks.missing) - len(names)
        missing = c.formatter.join(lang, names) if names else c.t(lang, "broadcast.acks.nobody")
        if more:
            missing = c.t(lang, "broadcast.acks.more", names=missing, n=more)
        text = clip(c.t(lang, "broadcast.acks.view", acked=acks.acked, total=acks.total, missing=missing), MAX_TEXT)
        rows = []
        if acks.missing and not acks.reminded:
            rows.append([Button(c.t(lang, "broadcast.acks.remind", n=len(acks.missing)),
                                BC_REMIND(data.broadcast_id))])
        elif acks.reminded:
            text += "\n" + c.t(lang, "broadcast.acks.reminded")
        assert query.message is not None
        await query.message.reply_text(text, reply_markup=keyboard(rows) if rows else None)


async def remind_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = BC_REMIND.parse(query.data)
    assert data is not None
    async with _refusals(update, context):
        n = await context.core.broadcasts.remind(_uid(update), data.broadcast_id)
        await answer_callback(update, context, "broadcast.acks.remind_done", n=n)
        await query.edit_message_reply_markup(None)


COMMANDS = [
    Command("broadcast", broadcast_command, audience=LEADERS),
    Command("broadcasts", broadcasts_command, audience=LEADERS),
]

BUTTONS = [
    (BC_ORG, org_button),
    (BC_DRAFT, draft_button),
    (BC_STOP, stop_button),
    (BC_ACK, ack_button),
    (BC_ACKS, acks_button),
    (BC_REMIND, remind_button),
]


def register(app: Application) -> None:  # type: ignore[type-arg]
    for kind, callback in BUTTONS:
        app.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern))
    system.FLOW_HANDLERS[FLOW] = flow_message
    system.FLOW_LABELS[FLOW] = "broadcast.flow"
