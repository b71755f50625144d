"""问题墙 + 回音壁 in chat: /submit, /my, /wall for residents; /inbox, the ticket buttons,
/bindwall and /blocked for secretaries and organizers."""

from __future__ import annotations

import secrets
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler

from bot.context import BotContext
from bot.i18n import format_day, format_time
from bot.outbox import Button
from bot.services.orgs import NotAllowed, NotFound
from bot.services.tickets import MAX_ITEMS, RATINGS, Done, Item, Refused, Ticket, TicketService
from handlers import system
from handlers.common import LEADERS, Command, answer_callback, as_int, keyboard, lang_of, reply

SUBMIT = "submit"
REPLY, ASK, TRANSFER, DECLINE, INFO, RATE_REASON = (
    "ticket_reply", "ticket_ask", "ticket_transfer", "ticket_decline", "ticket_info", "ticket_rate")
PRESET_REASONS = 3


def service(context: BotContext) -> TicketService:
    return context.core.tickets


def item_of(message: Message) -> Item | None:
    """What a message contributes to a ticket; None for what we do not take (stickers, contacts)."""
    where = {"chat_id": message.chat_id, "message_id": message.message_id}
    if message.text:
        return Item("text", message.text)
    if message.location:
        return Item("location", f"📍 {message.location.latitude:.5f},{message.location.longitude:.5f}", **where)
    for kind in ("photo", "voice", "video", "audio", "document"):
        if getattr(message, kind):
            return Item(kind, message.caption, **where)
    return None


async def say(update: Update, context: BotContext, done: Done | Refused) -> None:
    """Tell the actor the outcome of a service call."""
    c = context.core
    lang = await lang_of(update, context)
    values = dict(done.values)
    if "status" in values:
        values["status"] = c.t(lang, f"ticket.status.{values['status']}")
    text = c.t(lang, done.key, **values)
    if update.callback_query is not None:
        await update.callback_query.answer(text if isinstance(done, Done) and not done.changed else None)
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, text)


# --- submitting ---------------------------------------------------------------------------------

async def submit_command(update: Update, context: BotContext) -> None:
    """Start describing a problem."""
    user = update.effective_user
    assert user is not None
    try:
        await service(context).check_can_submit(user.id)
    except Refused as refused:
        await reply(update, context, refused.key, **refused.values)
        return
    await context.core.flows.set(user.id, SUBMIT, "content", _new_draft())
    await reply(update, context, "ticket.submit.describe")


def _new_draft() -> dict[str, Any]:
    return {"draft": secrets.token_hex(3), "items": [], "category": None, "public": True, "anonymous": False}


async def submit_content(update: Update, context: BotContext) -> None:
    """Collect one more piece of the problem, then offer the categories (or the confirmation)."""
    c = context.core
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    state = await c.flows.get(user.id)
    data = state.data if state and state.flow == SUBMIT else _new_draft()
    item = item_of(message)
    if item is None:
        await reply(update, context, "ticket.submit.unsupported")
        return
    if len(data["items"]) >= MAX_ITEMS:
        await reply(update, context, "ticket.refused.too_many_items", limit=MAX_ITEMS)
        return
    data["items"].append(item.to_dict())
    await c.flows.set(user.id, SUBMIT, "content", data)
    await _show_draft(update, context, data, edit=False)


async def take_unsolicited(update: Update, context: BotContext) -> bool:
    """A problem typed (or photographed) straight into the chat starts a submission."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None or item_of(message) is None:
        return False
    try:
        await service(context).check_can_submit(user.id)
    except Refused as refused:
        if refused.key == "ticket.refused.no_org":
            return False  # not someone who reports problems: the general fallback answers
        await reply(update, context, refused.key, **refused.values)
        return True
    await submit_content(update, context)
    return True


async def _show_draft(update: Update, context: BotContext, data: dict[str, Any], edit: bool) -> None:
    """Categories until one is chosen; then the summary with the two privacy switches and 提交."""
    c = context.core
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    svc = service(context)
    draft = data["draft"]
    count = len(data["items"])
    if data["category"] is None:
        org = await svc.home_org(user.id)
        categories = await svc.categories(org.id) if org else []
        buttons = [Button(svc.category_name(lang, cat), f"sb:{draft}:c:{i}") for i, cat in enumerate(categories)]
        rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
        rows.append([Button(c.t(lang, "ticket.button.cancel"), f"sb:{draft}:x")])
        text = c.t(lang, "ticket.submit.pick_category", count=count)
    else:
        yes, no = c.t(lang, "ticket.submit.yes"), c.t(lang, "ticket.submit.no")
        rows = [
            [Button(c.t(lang, "ticket.submit.public", value=yes if data["public"] else no), f"sb:{draft}:p")],
            [Button(c.t(lang, "ticket.submit.anonymous", value=yes if data["anonymous"] else no), f"sb:{draft}:a")],
            [Button(c.t(lang, "ticket.button.confirm"), f"sb:{draft}:ok"),
             Button(c.t(lang, "ticket.button.cancel"), f"sb:{draft}:x")],
        ]
        texts = [i["text"] for i in data["items"] if i.get("text")]
        text = c.t(lang, "ticket.submit.confirm", count=count, category=svc.category_name(lang, data["category"]),
                   summary="\n".join(texts)[:1000] or c.t(lang, "ticket.no_text"))
    markup = keyboard(rows)
    if edit and update.callback_query is not None:
        await update.callback_query.edit_message_text(text, reply_markup=markup)
    else:
        assert update.effective_message is not None
        await update.effective_message.reply_text(text, reply_markup=markup)


async def submit_button(update: Update, context: BotContext) -> None:
    """Category, the privacy switches, confirm and cancel of the person's open draft."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    fields = (query.data or "").split(":")[1:]
    state = await c.flows.get(user.id)
    if state is None or state.flow != SUBMIT or not fields or state.data.get("draft") != fields[0]:
        await answer_callback(update, context, "ticket.submit.stale", alert=True)
        return
    data, action = state.data, fields[1:]
    svc = service(context)
    if action == ["x"]:
        await c.flows.clear(user.id)
        await query.answer()
        await query.edit_message_text(c.t(await lang_of(update, context), "cancel.done"))
        return
    if not data["items"]:
        await answer_callback(update, context, "ticket.refused.empty", alert=True)
        return
    if len(action) == 2 and action[0] == "c" and (index := as_int(action[1])) is not None:
        org = await svc.home_org(user.id)
        categories = await svc.categories(org.id) if org else []
        if not 0 <= index < len(categories):
            await answer_callback(update, context, "error.stale_button", alert=True)
            return
        data["category"] = categories[index]
    elif action == ["p"]:
        data["public"] = not data["public"]
    elif action == ["a"]:
        data["anonymous"] = not data["anonymous"]
    elif action == ["ok"] and data["category"] is not None:
        try:
            ticket = await svc.submit(user.id, [Item.from_dict(i) for i in data["items"]], data["category"],
                                      data["public"], data["anonymous"])
        except Refused as refused:
            await answer_callback(update, context, refused.key, alert=True, **refused.values)
            if refused.key in ("ticket.refused.duplicate", "ticket.refused.too_many", "ticket.refused.blocked"):
                await c.flows.clear(user.id)  # nothing to fix in this draft
            return
        await c.flows.clear(user.id)
        await query.answer()
        lang = await lang_of(update, context)
        await query.edit_message_text(c.t(lang, "ticket.submit.done", id=ticket.id,
                                          due=format_day(ticket.accept_due, lang, svc.tz, end=True)))
        return
    else:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    await c.flows.set(user.id, SUBMIT, "confirm", data)
    await query.answer()
    await _show_draft(update, context, data, edit=True)


# --- residents' own tickets ---------------------------------------------------------------------

async def my_command(update: Update, context: BotContext) -> None:
    """The person's tickets with status and age."""
    c = context.core
    user = update.effective_user
    assert user is not None and update.effective_message is not None
    lang = await lang_of(update, context)
    svc = service(context)
    mine = await svc.mine(user.id)
    if not mine:
        await reply(update, context, "ticket.my.none")
        return
    now = c.clock.now()
    rows = [[Button(c.t(lang, "ticket.my.line", id=t.id, category=svc.category_name(lang, t.category),
                        status=c.t(lang, f"ticket.status.{t.status}"), days=(now - t.created_at).days),
                    f"tv:{t.id}")] for t in mine]
    await update.effective_message.reply_text(c.t(lang, "ticket.my.title"), reply_markup=keyboard(rows))


async def view_button(update: Update, context: BotContext) -> None:
    """Open one ticket: content, history and what this person may do with it."""
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    ticket_id = as_int((query.data or "").split(":")[-1])
    svc = service(context)
    try:
        ticket = await svc.get(ticket_id or 0)
    except NotFound:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    if not await svc.can_view(user.id, ticket):
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    await query.answer()
    await send_view(update, context, ticket, as_handler=user.id != ticket.resident_id)


async def send_view(update: Update, context: BotContext, ticket: Ticket, as_handler: bool) -> None:
    c = context.core
    lang = await lang_of(update, context)
    svc = service(context)
    lines = [c.t(lang, "ticket.view.head", id=ticket.id, category=svc.category_name(lang, ticket.category),
                 status=c.t(lang, f"ticket.status.{ticket.status}"))]
    if as_handler and ticket.anonymous:
        lines.append(c.t(lang, "ticket.anonymous"))
    elif as_handler:
        lines.append(f"{await c.people.display_name(ticket.resident_id)} (ID {ticket.resident_id})")
    if ticket.escalation:
        lines.append(c.t(lang, "ticket.escalation_level", level=ticket.escalation))
    items = await svc.items(ticket.id)
    media: list[Item] = []
    for side, item in items:
        label = c.t(lang, f"ticket.view.{side}")
        if item.text:
            lines.append(f"{label}: {item.text}")
        if item.kind not in ("text", "location") and item.chat_id is not None:
            media.append(item)
    lines.append(c.t(lang, "ticket.view.history"))
    for event in await svc.events(ticket.id):
        who = ""
        if event.actor_id is not None:
            hidden = event.actor_id == ticket.resident_id and ticket.anonymous and as_handler
            who = c.t(lang, "ticket.anonymous") if hidden else await c.people.display_name(event.actor_id)
        note = f"：{event.note}" if event.note and event.action not in ("escalated",) else ""
        lines.append(f"· {format_time(event.at, lang, svc.tz)} {who} {c.t(lang, f'ticket.event.{event.action}')}{note}")
    rows: list[list[Button]] = []
    if as_handler and ticket.is_open:
        rows = svc.handler_buttons(lang, ticket.id)[:-1]
    if as_handler:
        rows.append([Button(c.t(lang, "ticket.button.block"), f"tk:b:{ticket.id}")])
    else:
        if ticket.is_open:
            rows.append([Button(c.t(lang, "ticket.button.withdraw"), f"tw:{ticket.id}")])
        if ticket.status == "need_info":
            rows.append([Button(c.t(lang, "ticket.button.add_info"), f"tn:{ticket.id}")])
        if ticket.status == "answered":
            rows.append([Button(c.t(lang, f"ticket.rating.{r}"), f"tr:{r[0]}:{ticket.id}") for r in RATINGS])
    text = "\n".join(lines)[:4000]
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, text, reply_markup=keyboard(rows) if rows else None)
    for item in media[:10]:
        assert item.chat_id is not None and item.message_id is not None
        try:
            await context.bot.copy_message(update.effective_chat.id, item.chat_id, item.message_id)
        except TelegramError:  # the original may be gone; the text above still stands
            pass


async def withdraw_button(update: Update, context: BotContext) -> None:
    """Withdraw one's own ticket (asks once more first)."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    parsed = await _ticket_button(update, context)
    if parsed is None:
        return
    ticket_id, fields = parsed
    if fields[1:] != ["y"]:
        lang = await lang_of(update, context)
        await query.answer()
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            c.t(lang, "ticket.withdraw_confirm", id=ticket_id),
            reply_markup=keyboard([[Button(c.t(lang, "ticket.button.withdraw_yes"), f"tw:{ticket_id}:y")]]))
        return
    await _run(update, context, lambda svc: svc.withdraw(user.id, ticket_id))


async def rating_button(update: Update, context: BotContext) -> None:
    """满意 / 基本满意 close; 不满意 asks for a reason (picked or typed)."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    fields = (query.data or "").split(":")[1:]
    ticket_id = as_int(fields[1]) if len(fields) == 2 else None
    rating = {"g": "good", "o": "ok", "b": "bad"}.get(fields[0] if fields else "")
    if ticket_id is None or rating is None:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    if rating != "bad":
        await _run(update, context, lambda svc: svc.rate(user.id, ticket_id, rating))
        return
    if await _own_ticket_in(update, context, ticket_id, "answered") is None:
        return
    lang = await lang_of(update, context)
    await c.flows.set(user.id, RATE_REASON, "reason", {"ticket": ticket_id})
    await query.answer()
    rows = [[Button(c.t(lang, f"ticket.reason.{n}"), f"tq:{ticket_id}:{n}")] for n in range(PRESET_REASONS)]
    assert update.effective_message is not None
    await update.effective_message.reply_text(c.t(lang, "ticket.rate_reason"), reply_markup=keyboard(rows))


async def preset_reason_button(update: Update, context: BotContext) -> None:
    """A reason picked with one tap."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    fields = (query.data or "").split(":")[1:]
    ticket_id, n = (as_int(fields[0]), as_int(fields[1])) if len(fields) == 2 else (None, None)
    if ticket_id is None or n is None or not 0 <= n < PRESET_REASONS:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    reason = c.t(await lang_of(update, context), f"ticket.reason.{n}")
    await c.flows.clear(user.id)
    await _run(update, context, lambda svc: svc.rate(user.id, ticket_id, "bad", reason))


async def rate_reason_message(update: Update, context: BotContext) -> None:
    """A typed reason for 不满意."""
    c = context.core
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    state = await c.flows.get(user.id)
    if state is None or not message.text:
        await reply(update, context, "ticket.rate_reason")
        return
    await _run(update, context, lambda svc: svc.rate(user.id, state.data["ticket"], "bad", message.text),
               clear_flow=True)


async def add_info_button(update: Update, context: BotContext) -> None:
    """Start (or send) the resident's answer to a request for more information."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    parsed = await _ticket_button(update, context)
    if parsed is None:
        return
    ticket_id, fields = parsed
    if fields[1:] == ["send"]:
        state = await c.flows.get(user.id)
        if state is None or state.flow != INFO or state.data.get("ticket") != ticket_id:
            await answer_callback(update, context, "ticket.submit.stale", alert=True)
            return
        items = [Item.from_dict(i) for i in state.data["items"]]
        await _run(update, context, lambda svc: svc.add_info(user.id, ticket_id, items), clear_flow=True)
        return
    if await _own_ticket_in(update, context, ticket_id, "need_info") is None:
        return
    await c.flows.set(user.id, INFO, "content", {"ticket": ticket_id, "items": []})
    await query.answer()
    await reply(update, context, "ticket.info_prompt")


# --- secretaries ----------------------------------------------------------------------------------

async def inbox_command(update: Update, context: BotContext) -> None:
    """Open tickets for the orgs this person answers for: new, overdue, mine."""
    c = context.core
    user = update.effective_user
    assert user is not None and update.effective_message is not None
    lang = await lang_of(update, context)
    svc = service(context)
    inbox = await svc.inbox(user.id)
    text = c.t(lang, "ticket.inbox.title", total=len(inbox.lines), new=inbox.new, overdue=inbox.overdue,
               mine=inbox.mine)
    rows = []
    for line in inbox.lines[:30]:
        marks = ("⚠️" if line.overdue else "") + ("👤" if line.mine else "")
        rows.append([Button(c.t(lang, "ticket.inbox.line", id=line.ticket.id, marks=marks,
                                category=svc.category_name(lang, line.ticket.category),
                                status=c.t(lang, f"ticket.status.{line.ticket.status}")), f"tv:{line.ticket.id}")])
    if not rows:
        text += "\n" + c.t(lang, "ticket.inbox.empty")
    await update.effective_message.reply_text(text, reply_markup=keyboard(rows) if rows else None)


async def handler_button(update: Update, context: BotContext) -> None:
    """The secretary's buttons on a ticket: accept, reply, ask, transfer, decline, resolve, history, block."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    fields = (query.data or "").split(":")[1:]
    ticket_id = as_int(fields[1]) if len(fields) == 2 else None
    action = fields[0] if fields else ""
    if ticket_id is None or action not in "arzitdhb" or len(action) != 1:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    if action == "a":
        await _run(update, context, lambda svc: svc.accept(user.id, ticket_id))
        return
    if action == "b":
        await _run(update, context, lambda svc: svc.block_submitter(user.id, ticket_id))
        return
    svc = service(context)
    ticket = await _ticket_or_answer(update, context, ticket_id)
    if ticket is None:
        return
    if not await svc.can_act(user.id, ticket):
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    if action == "h":
        await query.answer()
        await send_view(update, context, ticket, as_handler=True)
        return
    if not ticket.is_open and not (action in "rz" and ticket.status == "answered"):
        done = await svc.handled_by(ticket)
        await say(update, context, done)
        return
    lang = await lang_of(update, context)
    await query.answer()
    assert update.effective_message is not None
    if action in "rz":
        await c.flows.set(user.id, REPLY, "content", {"ticket": ticket_id, "final": action == "z", "items": []})
        await update.effective_message.reply_text(
            c.t(lang, "ticket.reply_prompt", id=ticket_id),
            reply_markup=keyboard([[Button(c.t(lang, "ticket.button.send"), f"ts:{ticket_id}"),
                                    Button(c.t(lang, "ticket.button.cancel"), "tx")]]))
    elif action == "i":
        await c.flows.set(user.id, ASK, "question", {"ticket": ticket_id})
        await update.effective_message.reply_text(c.t(lang, "ticket.ask_prompt", id=ticket_id))
    elif action == "d":
        await c.flows.set(user.id, DECLINE, "reason", {"ticket": ticket_id})
        await update.effective_message.reply_text(c.t(lang, "ticket.decline_prompt", id=ticket_id))
    elif action == "t":
        orgs, people = await svc.transfer_targets(user.id, ticket_id)
        rows = [[Button(org.name, f"tt:{ticket_id}:o:{org.id}")] for org in orgs[:20]]
        rows += [[Button(f"👤 {name}", f"tt:{ticket_id}:p:{pid}")] for pid, name in people[:10]]
        await update.effective_message.reply_text(c.t(lang, "ticket.transfer_pick", id=ticket_id),
                                                  reply_markup=keyboard(rows) if rows else None)


async def transfer_target_button(update: Update, context: BotContext) -> None:
    """The transfer target was picked: ask for the reason."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    fields = (query.data or "").split(":")[1:]
    if len(fields) != 3 or fields[1] not in ("o", "p") or as_int(fields[0]) is None or as_int(fields[2]) is None:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    ticket_id, target = int(fields[0]), int(fields[2])
    ticket = await _ticket_or_answer(update, context, ticket_id)
    if ticket is None:
        return
    if not await service(context).can_act(user.id, ticket):
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    key = "to_org" if fields[1] == "o" else "to_person"
    await c.flows.set(user.id, TRANSFER, "reason", {"ticket": ticket_id, key: target})
    await query.answer()
    await reply(update, context, "ticket.transfer_reason", id=ticket_id)


async def reply_send_button(update: Update, context: BotContext) -> None:
    """Send the reply typed so far."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    state = await c.flows.get(user.id)
    ticket_id = as_int((query.data or "").split(":")[-1])
    if state is None or state.flow != REPLY or state.data.get("ticket") != ticket_id:
        await answer_callback(update, context, "ticket.submit.stale", alert=True)
        return
    items = [Item.from_dict(i) for i in state.data["items"]]
    if not items:
        await answer_callback(update, context, "ticket.refused.empty", alert=True)
        return
    final = bool(state.data.get("final"))
    await _run(update, context, lambda svc: svc.answer(user.id, state.data["ticket"], items, final=final),
               clear_flow=True)


async def flow_cancel_button(update: Update, context: BotContext) -> None:
    """Leave the reply being typed."""
    user = update.effective_user
    assert user is not None and update.callback_query is not None
    await context.core.flows.clear(user.id)
    await update.callback_query.answer()
    await reply(update, context, "cancel.done")


async def collect_items(update: Update, context: BotContext) -> None:
    """Messages typed into a reply (secretary) or an answer to 补充信息 (resident)."""
    c = context.core
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    state = await c.flows.get(user.id)
    if state is None:
        return
    item = item_of(message)
    if item is None:
        await reply(update, context, "ticket.submit.unsupported")
        return
    if len(state.data["items"]) >= MAX_ITEMS:
        await reply(update, context, "ticket.refused.too_many_items", limit=MAX_ITEMS)
        return
    state.data["items"].append(item.to_dict())
    await c.flows.set(user.id, state.flow, state.step, state.data)
    lang = await lang_of(update, context)
    ticket_id = state.data["ticket"]
    data = f"ts:{ticket_id}" if state.flow == REPLY else f"tn:{ticket_id}:send"
    await message.reply_text(
        c.t(lang, "ticket.collected", count=len(state.data["items"])),
        reply_markup=keyboard([[Button(c.t(lang, "ticket.button.send"), data),
                                Button(c.t(lang, "ticket.button.cancel"), "tx")]]))


async def reason_message(update: Update, context: BotContext) -> None:
    """The typed question (补充信息), transfer reason or decline reason."""
    c = context.core
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    state = await c.flows.get(user.id)
    if state is None:
        return
    if not message.text:
        await reply(update, context, "ticket.type_text")
        return
    data, text = state.data, message.text
    if state.flow == ASK:
        await _run(update, context, lambda svc: svc.ask_info(user.id, data["ticket"], text), clear_flow=True)
    elif state.flow == DECLINE:
        await _run(update, context, lambda svc: svc.decline(user.id, data["ticket"], text), clear_flow=True)
    elif state.flow == TRANSFER:
        await _run(update, context, lambda svc: svc.transfer(
            user.id, data["ticket"], text, to_org=data.get("to_org"), to_person=data.get("to_person")),
            clear_flow=True)


async def blocked_command(update: Update, context: BotContext) -> None:
    """People stopped from submitting, with a button to lift each block."""
    c = context.core
    user = update.effective_user
    assert user is not None and update.effective_message is not None
    lang = await lang_of(update, context)
    blocks = await service(context).blocks(user.id)
    if not blocks:
        await reply(update, context, "ticket.blocked.none")
        return
    rows = [[Button(c.t(lang, "ticket.blocked.line", ticket=ticket_id or "—", org=org,
                        since=format_day(since, lang, service(context).tz)), f"ub:{block_id}")]
            for block_id, ticket_id, org, since in blocks[:30]]
    await update.effective_message.reply_text(c.t(lang, "ticket.blocked.title"), reply_markup=keyboard(rows))


async def unblock_button(update: Update, context: BotContext) -> None:
    """Lift a block."""
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    block_id = as_int((query.data or "").split(":")[-1])
    if block_id is None:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    await _run(update, context, lambda svc: svc.unblock(user.id, block_id))


# --- the echo wall --------------------------------------------------------------------------------

async def wall_command(update: Update, context: BotContext) -> None:
    """The echo wall of the person's org, newest first."""
    user = update.effective_user
    assert user is not None
    org = await service(context).home_org(user.id)
    if org is None:
        await reply(update, context, "ticket.refused.no_org")
        return
    await _send_wall_page(update, context, org.id, 0)


async def wall_page_button(update: Update, context: BotContext) -> None:
    """Another page of the wall."""
    query = update.callback_query
    assert query is not None
    fields = (query.data or "").split(":")[1:]
    org_id, page = (as_int(fields[0]), as_int(fields[1])) if len(fields) == 2 else (None, None)
    if org_id is None or page is None or page < 0:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    await query.answer()
    await _send_wall_page(update, context, org_id, page, edit=True)


async def _send_wall_page(update: Update, context: BotContext, org_id: int, page: int,
                          edit: bool = False) -> None:
    c = context.core
    lang = await lang_of(update, context)
    svc = service(context)
    org = await c.orgs.get(org_id)
    posts, more = await svc.wall(org_id, page)
    if not posts and page == 0:
        text = c.t(lang, "ticket.wall.empty", org=org.name if org else "")
    else:
        text = c.t(lang, "ticket.wall.title", org=org.name if org else "", page=page + 1) + "\n\n" + "\n\n".join(
            svc.wall_text(lang, ticket) for ticket in posts)
    nav = []
    if page > 0:
        nav.append(Button(c.t(lang, "ticket.wall.newer"), f"wl:{org_id}:{page - 1}"))
    if more:
        nav.append(Button(c.t(lang, "ticket.wall.older"), f"wl:{org_id}:{page + 1}"))
    markup = keyboard([nav]) if nav else None
    if edit and update.callback_query is not None:
        await update.callback_query.edit_message_text(text[:4096], reply_markup=markup)
    else:
        assert update.effective_message is not None
        await update.effective_message.reply_text(text[:4096], reply_markup=markup)


async def bindwall_command(update: Update, context: BotContext) -> None:
    """Bind this group (or, from a private chat, `/bindwall @channel`) as an org's echo wall."""
    c = context.core
    user, chat = update.effective_user, update.effective_chat
    assert chat is not None
    if user is None:  # a channel post has no author we could check
        return
    lang = await lang_of(update, context)
    if chat.type == "private":
        if not context.args:
            await reply(update, context, "ticket.bindwall.usage")
            return
        target: int | str = as_int(context.args[0]) or context.args[0]
    else:
        target = chat.id
    try:
        wall_chat = await context.bot.get_chat(target)
        me = await context.bot.get_chat_member(wall_chat.id, context.bot.id)
        them = await context.bot.get_chat_member(wall_chat.id, user.id)
    except TelegramError:
        await reply(update, context, "ticket.bindwall.not_found")
        return
    if me.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
        await reply(update, context, "ticket.bindwall.bot_not_admin")
        return
    if them.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
        await reply(update, context, "ticket.bindwall.you_not_admin")
        return
    orgs = await service(context).wall_orgs(user.id)
    if not orgs:
        await reply(update, context, "error.not_allowed")
        return
    rows = [[Button(org.name, f"bw:{org.id}:{wall_chat.id}")] for org in orgs[:20]]
    assert update.effective_message is not None
    await update.effective_message.reply_text(c.t(lang, "ticket.bindwall.pick", chat=wall_chat.title or ""),
                                              reply_markup=keyboard(rows))


async def bindwall_button(update: Update, context: BotContext) -> None:
    """Bind the picked org's wall to the chat (the right is checked again in the service)."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    fields = (query.data or "").split(":")[1:]
    org_id, chat_id = (as_int(fields[0]), as_int(fields[1])) if len(fields) == 2 else (None, None)
    if org_id is None or chat_id is None:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    try:
        them = await context.bot.get_chat_member(chat_id, user.id)
        wall_chat = await context.bot.get_chat(chat_id)
    except TelegramError:
        await answer_callback(update, context, "ticket.bindwall.not_found", alert=True)
        return
    if them.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
        await answer_callback(update, context, "ticket.bindwall.you_not_admin", alert=True)
        return
    try:
        await service(context).bind_wall(user.id, org_id, chat_id, wall_chat.title)
    except NotAllowed:
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    org = await c.orgs.get(org_id)
    await query.answer()
    await query.edit_message_text(c.t(await lang_of(update, context), "ticket.bindwall.done",
                                      org=org.name if org else "", chat=wall_chat.title or ""))


# --- shared ---------------------------------------------------------------------------------------

async def _ticket_button(update: Update, context: BotContext) -> tuple[int, list[str]] | None:
    """`xx:<ticket id>[:more]` → (ticket id, [id, more...]); a malformed button is answered as stale."""
    assert update.callback_query is not None
    fields = (update.callback_query.data or "").split(":")[1:]
    ticket_id = as_int(fields[0]) if fields else None
    if ticket_id is None:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return None
    return ticket_id, fields


async def _own_ticket_in(update: Update, context: BotContext, ticket_id: int,
                         status: str) -> Ticket | None:
    """The person's own ticket in `status`, else None (and the button is answered)."""
    assert update.effective_user is not None
    ticket = await _ticket_or_answer(update, context, ticket_id)
    if ticket is None:
        return None
    if ticket.resident_id != update.effective_user.id:
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return None
    if ticket.status != status:
        await answer_callback(update, context, "ticket.submit.stale", alert=True)
        return None
    return ticket


async def _ticket_or_answer(update: Update, context: BotContext, ticket_id: int) -> Ticket | None:
    try:
        return await service(context).get(ticket_id)
    except NotFound:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return None


async def _run(update: Update, context: BotContext, action: Any, clear_flow: bool = False) -> None:
    """Call a service action and tell the actor how it went; rights failures change nothing."""
    user = update.effective_user
    assert user is not None
    try:
        done = await action(service(context))
    except NotAllowed:
        if update.callback_query is not None:
            await answer_callback(update, context, "error.not_allowed", alert=True)
        else:
            await reply(update, context, "error.not_allowed")
        if clear_flow:
            await context.core.flows.clear(user.id)
        return
    except NotFound:
        if update.callback_query is not None:
            await answer_callback(update, context, "error.stale_button", alert=True)
        else:
            await reply(update, context, "error.stale_button")
        return
    except Refused as refused:
        await say(update, context, refused)
        return
    if clear_flow:
        await context.core.flows.clear(user.id)
    await say(update, context, done)


COMMANDS = [
    Command("submit", submit_command, menu_key="menu.submit"),
    Command("my", my_command, menu_key="menu.my"),
    Command("wall", wall_command, menu_key="menu.wall"),
    Command("inbox", inbox_command, audience=LEADERS, menu_key="menu.inbox"),
    Command("blocked", blocked_command, audience=LEADERS),
    Command("bindwall", bindwall_command, audience=LEADERS, private_only=False),
]


def register(app: Application) -> None:  # type: ignore[type-arg]
    system.FLOW_HANDLERS[SUBMIT] = submit_content
    system.FLOW_HANDLERS[REPLY] = collect_items
    system.FLOW_HANDLERS[INFO] = collect_items
    system.FLOW_HANDLERS[ASK] = reason_message
    system.FLOW_HANDLERS[DECLINE] = reason_message
    system.FLOW_HANDLERS[TRANSFER] = reason_message
    system.FLOW_HANDLERS[RATE_REASON] = rate_reason_message
    if take_unsolicited not in system.UNSOLICITED:
        system.UNSOLICITED.append(take_unsolicited)
    for pattern, callback in (
        (r"^sb:", submit_button), (r"^tv:", view_button), (r"^tw:", withdraw_button), (r"^tr:", rating_button),
        (r"^tq:", preset_reason_button), (r"^tn:", add_info_button), (r"^tk:", handler_button),
        (r"^tt:", transfer_target_button), (r"^ts:", reply_send_button), (r"^tx$", flow_cancel_button),
        (r"^ub:", unblock_button), (r"^wl:", wall_page_button), (r"^bw:", bindwall_button),
    ):
        app.add_handler(CallbackQueryHandler(callback, pattern=pattern))
