"""问题墙 + 回音壁 in chat: /submit, /my, /wall for residents; /inbox, the ticket buttons,
/bindwall and /blocked for secretaries and organizers. Handlers parse (callback data through
bot/callbacks.py), call the service, which checks every right, and render."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import CallbackQuery, Message, Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler

from bot import callbacks as cb
from bot.context import BotContext
from bot.formatting import Formatter
from bot.limits import MAX_TEXT, clip
from bot.outbox import Button
from bot.services.flows import FlowState
from bot.services.orgs import NotAllowed, NotFound
from bot.services.prompts import Question
from bot.services.tickets import (
    INFO_QUESTION,
    MAX_ITEMS,
    RATE_QUESTION,
    Done,
    Item,
    Rating,
    Refused,
    Status,
    TicketService,
    render,
)
from handlers import system
from handlers.common import LEADERS, Command, answer_callback, edit_text, keyboard, lang_of, reply

SUBMIT = "submit"
REPLY, ASK, TRANSFER, DECLINE, INFO, RATE_REASON = (
    "ticket_reply", "ticket_ask", "ticket_transfer", "ticket_decline", "ticket_info", "ticket_rate")
PRESET_REASONS = 3
DRAFT_SUMMARY_ROOM = 1000
RATING_OF = {cb.RatingChoice.GOOD: Rating.GOOD, cb.RatingChoice.OK: Rating.OK, cb.RatingChoice.BAD: Rating.BAD}

ServiceCall = Callable[[TicketService], Awaitable[Done]]


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
    """Tell the actor the outcome of a service call, in the actor's language."""
    text = render(context.core.t, await lang_of(update, context), done)
    if update.callback_query is not None:
        await update.callback_query.answer(text if isinstance(done, Done) and not done.changed else None)
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, text)


async def stale(update: Update, context: BotContext) -> None:
    """A button whose data does not parse: forged, or from an older version."""
    await answer_callback(update, context, "error.stale_button", alert=True)


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
    return {"draft": cb.Token.new(), "items": [], "category": None, "public": True, "anonymous": False}


async def submit_content(update: Update, context: BotContext) -> None:
    """Collect one more piece of the problem, then offer the categories (or the confirmation) under
    it. The buttons live under the newest piece only: the previous prompt loses its buttons."""
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
    previous = data.get("prompt")
    prompt = await _show_draft(update, context, data, edit=False)
    data["prompt"] = prompt.message_id
    await c.flows.set(user.id, SUBMIT, "content", data)
    if previous is not None:
        await _drop_buttons(context, message.chat_id, previous)


async def _drop_buttons(context: BotContext, chat_id: int, message_id: int) -> None:
    """Take the buttons off an older prompt of the draft, so that only the newest one has them."""
    try:
        await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
    except TelegramError:  # already gone, or nothing to change: the new prompt stands either way
        pass


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


async def _show_draft(update: Update, context: BotContext, data: dict[str, Any], edit: bool) -> Message:
    """Categories until one is chosen; then the summary with the two privacy switches and 提交.
    Returns the message that carries the draft's buttons."""
    c = context.core
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    svc = service(context)
    draft = data["draft"]
    count = len(data["items"])
    if data["category"] is None:
        categories = await svc.categories_for(user.id)
        buttons = [Button(svc.category_name(lang, cat), cb.SUBMIT_DRAFT(draft, cb.DraftAction.CATEGORY, i))
                   for i, cat in enumerate(categories)]
        rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
        rows.append([Button(c.t(lang, "ticket.button.cancel"), cb.SUBMIT_DRAFT(draft, cb.DraftAction.CANCEL))])
        got = c.formatter.count(lang, "readable.submit.got", count)
        text = c.t(lang, "ticket.submit.pick_category", got=got)
    else:
        # Switches show their state as a ticked or an empty box and say what a tick means.
        public = c.t(lang, "ticket.submit.public_on" if data["public"] else "ticket.submit.public_off")
        anonymous = c.t(lang, "ticket.submit.anonymous_on" if data["anonymous"] else "ticket.submit.anonymous_off")
        rows = [
            [Button(public, cb.SUBMIT_DRAFT(draft, cb.DraftAction.PUBLIC))],
            [Button(anonymous, cb.SUBMIT_DRAFT(draft, cb.DraftAction.ANONYMOUS))],
            [Button(c.t(lang, "ticket.button.confirm"), cb.SUBMIT_DRAFT(draft, cb.DraftAction.CONFIRM)),
             Button(c.t(lang, "ticket.button.cancel"), cb.SUBMIT_DRAFT(draft, cb.DraftAction.CANCEL))],
        ]
        texts = [i["text"] for i in data["items"] if i.get("text")]
        summary = clip("\n".join(texts), DRAFT_SUMMARY_ROOM) if texts else c.t(lang, "ticket.no_text")
        text = c.t(lang, "ticket.submit.confirm", items=item_tally(c.formatter, lang, data["items"]),
                   category=svc.category_name(lang, data["category"]), summary=summary)
    markup = keyboard(rows)
    if edit and update.callback_query is not None:
        await edit_text(update.callback_query, text, reply_markup=markup)
        assert isinstance(update.callback_query.message, Message)
        return update.callback_query.message
    assert update.effective_message is not None
    return await update.effective_message.reply_text(text, reply_markup=markup)


# The count keys of each kind of piece (written out so that the catalog check sees each key).
ITEM_COUNT_KEYS = {"text": "readable.item.text", "photo": "readable.item.photo", "voice": "readable.item.voice",
                   "location": "readable.item.location", "video": "readable.item.video",
                   "audio": "readable.item.audio", "document": "readable.item.document"}


def item_tally(fmt: Formatter, lang: str, items: list[dict[str, Any]]) -> str:
    """文字 1 条、照片 1 张、语音 1 条 / 1 text, 1 photo, 1 voice note: each kind once, in the order sent."""
    counts = Counter(ITEM_COUNT_KEYS.get(i["kind"], "readable.item.document") for i in items)
    return fmt.tally(lang, counts.items())


async def submit_button(update: Update, context: BotContext) -> None:
    """Category, the privacy switches, confirm and cancel of the person's open draft."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.SUBMIT_DRAFT.parse(query.data)
    state = await c.flows.get(user.id)
    if button is None or state is None or state.flow != SUBMIT or state.data.get("draft") != button.draft:
        await answer_callback(update, context, "ticket.submit.stale", alert=True)
        return
    data, action = state.data, button.action
    await _adopt_prompt(context, query, data)
    if action == cb.DraftAction.CANCEL:
        if await system.confirm_cancel(update, context):  # the draft holds what they typed: ask first
            return
        await c.flows.clear(user.id)
        await query.answer()
        await edit_text(query, c.t(await lang_of(update, context), "cancel.done"))
        return
    if not data["items"]:
        await answer_callback(update, context, "ticket.refused.empty", alert=True)
        return
    if action == cb.DraftAction.CATEGORY:
        categories = await service(context).categories_for(user.id)
        if not 0 <= button.index < len(categories):
            await stale(update, context)
            return
        data["category"] = categories[button.index]
    elif action == cb.DraftAction.PUBLIC:
        data["public"] = not data["public"]
    elif action == cb.DraftAction.ANONYMOUS:
        data["anonymous"] = not data["anonymous"]
    elif action == cb.DraftAction.CONFIRM and data["category"] is not None:
        await _confirm_draft(update, context, data)
        return
    else:
        await stale(update, context)
        return
    await c.flows.set(user.id, SUBMIT, "confirm", data)
    await query.answer()
    await _show_draft(update, context, data, edit=True)


async def _adopt_prompt(context: BotContext, query: CallbackQuery, data: dict[str, Any]) -> None:
    """A tap on an older prompt (whose buttons could not be taken off) makes it the one with buttons."""
    message = query.message
    if not isinstance(message, Message) or data.get("prompt") in (None, message.message_id):
        return
    await _drop_buttons(context, message.chat_id, data["prompt"])
    data["prompt"] = message.message_id


async def _confirm_draft(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    svc = service(context)
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
    await edit_text(query, c.t(lang, "ticket.submit.done", id=ticket.id,
                                      due=svc.due_day(lang, ticket.accept_due)))


# --- residents' own tickets ---------------------------------------------------------------------

async def my_command(update: Update, context: BotContext) -> None:
    """The person's tickets with status and age."""
    user = update.effective_user
    assert user is not None and update.effective_message is not None and update.effective_chat is not None
    lang = await lang_of(update, context)
    svc = service(context)
    mine = await svc.mine(user.id)
    if not mine:
        await reply(update, context, "ticket.my.none")
        return
    shown = svc.my_screen(lang, mine)
    sent = await update.effective_message.reply_text(shown.text, reply_markup=keyboard(shown.buttons))
    await svc.remember_list(user.id, "my", update.effective_chat.id, sent.message_id, shown)  # states follow


async def view_button(update: Update, context: BotContext) -> None:
    """Open one ticket: content, history and what this person may do with it."""
    query = update.callback_query
    assert query is not None
    button = cb.TICKET_VIEW.parse(query.data)
    if button is None:
        await stale(update, context)
        return
    await send_view(update, context, button.ticket_id)


async def send_view(update: Update, context: BotContext, ticket_id: int) -> None:
    """The ticket as the service renders it for this reader, in as many messages as it takes."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None and update.callback_query is not None
    try:
        view = await service(context).view(user.id, ticket_id, await lang_of(update, context))
    except NotFound:
        await stale(update, context)
        return
    except NotAllowed:
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    await update.callback_query.answer()
    for n, text in enumerate(view.texts):
        last = n == len(view.texts) - 1
        sent = await context.bot.send_message(chat.id, text, reply_markup=keyboard(view.buttons)
                                              if last and view.buttons else None)
        if last and view.buttons:  # its buttons follow the ticket from now on
            await service(context).remember_view(user.id, ticket_id, chat.id, sent.message_id, view)
    for item in view.media:
        assert item.chat_id is not None and item.message_id is not None
        try:
            await context.bot.copy_message(chat.id, item.chat_id, item.message_id)
        except TelegramError:  # the original may be gone; the text above still stands
            pass


async def withdraw_button(update: Update, context: BotContext) -> None:
    """Withdraw one's own ticket (asks once more first)."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.TICKET_WITHDRAW.parse(query.data)
    if button is None:
        await stale(update, context)
        return
    if button.confirm != cb.Confirm.YES:
        lang = await lang_of(update, context)
        await query.answer()
        assert update.effective_message is not None
        yes = cb.TICKET_WITHDRAW(button.ticket_id, cb.Confirm.YES)
        await update.effective_message.reply_text(
            c.t(lang, "ticket.withdraw_confirm", id=button.ticket_id),
            reply_markup=keyboard([[Button(c.t(lang, "ticket.button.withdraw_yes"), yes)]]))
        return
    await _run(update, context, lambda svc: svc.withdraw(user.id, button.ticket_id))


async def rating_button(update: Update, context: BotContext) -> None:
    """满意 / 基本满意 close; 不满意 asks for a reason (picked or typed)."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.TICKET_RATE.parse(query.data)
    if button is None:
        await stale(update, context)
        return
    ticket_id, rating = button.ticket_id, RATING_OF[button.rating]
    if rating != Rating.BAD:
        await _run(update, context, lambda svc: svc.rate(user.id, ticket_id, rating))
        return
    if not await _own_ticket_in(update, context, ticket_id, Status.ANSWERED):
        return
    lang = await lang_of(update, context)
    # An open question, not a flow: a draft being written stays, and the next text is the reason.
    await service(context).ask_rate_reason(user.id, ticket_id)
    await query.answer()
    rows = [[Button(c.t(lang, f"ticket.reason.{n}"), cb.TICKET_PRESET_REASON(ticket_id, n))]
            for n in range(PRESET_REASONS)]
    assert update.effective_message is not None
    await update.effective_message.reply_text(c.t(lang, "ticket.rate_reason"), reply_markup=keyboard(rows))


async def preset_reason_button(update: Update, context: BotContext) -> None:
    """A reason picked with one tap."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.TICKET_PRESET_REASON.parse(query.data)
    if button is None or not 0 <= button.reason < PRESET_REASONS:
        await stale(update, context)
        return
    reason = c.t(await lang_of(update, context), f"ticket.reason.{button.reason}")
    state = await c.flows.get(user.id)
    if state is not None and state.flow == RATE_REASON:  # a reason flow of an older version
        await c.flows.clear(user.id)
    await _run(update, context, lambda svc: svc.rate(user.id, button.ticket_id, Rating.BAD, reason))


async def answer_rate_question(update: Update, context: BotContext, question: Question) -> None:
    """The text typed after 不满意 (an open question) is the reason."""
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    if not message.text:
        await reply(update, context, "ticket.rate_reason")
        return
    text = message.text
    await _run(update, context, lambda svc: svc.rate(user.id, question.subject_id, Rating.BAD, text))


async def answer_info_question(update: Update, context: BotContext, question: Question) -> None:
    """What a resident sends after the secretary asked for more (an open question) is added to the
    ticket, as 补充 then typing would, and the secretary is told."""
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    item = item_of(message)
    if item is None:
        await reply(update, context, "ticket.submit.unsupported")
        return
    await _run(update, context, lambda svc: svc.add_info(user.id, question.subject_id, [item]))


async def may_submit(context: BotContext, person_id: int) -> bool:
    try:
        await context.core.tickets.check_can_submit(person_id)
    except Refused:
        return False
    return True


async def rate_reason_message(update: Update, context: BotContext) -> None:
    """A typed reason for 不满意 (the flow of an older version; now an open question)."""
    c = context.core
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    state = await c.flows.get(user.id)
    if state is None or not message.text:
        await reply(update, context, "ticket.rate_reason")
        return
    await _run(update, context, lambda svc: svc.rate(user.id, state.data["ticket"], Rating.BAD, message.text),
               clear_flow=True)


async def add_info_button(update: Update, context: BotContext) -> None:
    """Start (or send) the resident's answer to a request for more information."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.TICKET_ADD_INFO.parse(query.data)
    if button is None:
        await stale(update, context)
        return
    ticket_id = button.ticket_id
    if button.step == cb.InfoStep.SEND:
        state = await c.flows.get(user.id)
        if state is None or state.flow != INFO or state.data.get("ticket") != ticket_id:
            await answer_callback(update, context, "ticket.submit.stale", alert=True)
            return
        items = [Item.from_dict(i) for i in state.data["items"]]
        await _run(update, context, lambda svc: svc.add_info(user.id, ticket_id, items), clear_flow=True)
        return
    if not await _own_ticket_in(update, context, ticket_id, Status.NEED_INFO):
        return
    await c.flows.set(user.id, INFO, "content", {"ticket": ticket_id, "items": []})
    await query.answer()
    await reply(update, context, "ticket.info_prompt")

# --- secretaries ----------------------------------------------------------------------------------

async def inbox_command(update: Update, context: BotContext) -> None:
    """Open tickets for the orgs this person answers for: new, overdue, mine."""
    user = update.effective_user
    assert user is not None and update.effective_message is not None and update.effective_chat is not None
    lang = await lang_of(update, context)
    svc = service(context)
    shown = svc.inbox_screen(lang, await svc.inbox(user.id))
    sent = await update.effective_message.reply_text(shown.text, reply_markup=keyboard(shown.buttons)
                                                     if shown.buttons else None)
    if shown.buttons:  # the states on its buttons follow their tickets
        await svc.remember_list(user.id, "inbox", update.effective_chat.id, sent.message_id, shown)


async def handler_button(update: Update, context: BotContext) -> None:
    """The secretary's buttons on a ticket: accept, reply, ask, transfer, decline, resolve, history, block."""
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.TICKET_ACTION.parse(query.data)
    if button is None:
        await stale(update, context)
        return
    action, ticket_id = button.action, button.ticket_id
    if action == cb.TicketAction.ACCEPT:
        await _run(update, context, lambda svc: svc.accept(user.id, ticket_id))
        return
    if action == cb.TicketAction.BLOCK:
        await _run(update, context, lambda svc: svc.block_submitter(user.id, ticket_id))
        return
    if action == cb.TicketAction.HISTORY:
        await send_view(update, context, ticket_id)
        return
    svc = service(context)
    try:
        ticket = await svc.check_can_act(user.id, ticket_id)
    except (NotFound, NotAllowed) as error:
        await answer_callback(update, context, "error.stale_button" if isinstance(error, NotFound)
                              else "error.not_allowed", alert=True)
        return
    replying = action in (cb.TicketAction.REPLY, cb.TicketAction.RESOLVE)
    if not ticket.is_open and not (replying and ticket.status == Status.ANSWERED):
        await say(update, context, await svc.handled_by(user.id, ticket_id))
        return
    await query.answer()
    await _start_handler_flow(update, context, action, ticket_id)


async def _start_handler_flow(update: Update, context: BotContext, action: cb.TicketAction, ticket_id: int) -> None:
    """Ask for the reply, question, reason or transfer target."""
    c = context.core
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    lang = await lang_of(update, context)
    if action in (cb.TicketAction.REPLY, cb.TicketAction.RESOLVE):
        final = action == cb.TicketAction.RESOLVE
        await c.flows.set(user.id, REPLY, "content", {"ticket": ticket_id, "final": final, "items": []})
        await message.reply_text(
            c.t(lang, "ticket.reply_prompt", id=ticket_id),
            reply_markup=keyboard([[Button(c.t(lang, "ticket.button.send"), cb.TICKET_REPLY_SEND(ticket_id)),
                                    Button(c.t(lang, "ticket.button.cancel"), cb.TICKET_FLOW_CANCEL())]]))
    elif action == cb.TicketAction.ASK:
        await c.flows.set(user.id, ASK, "question", {"ticket": ticket_id})
        await message.reply_text(c.t(lang, "ticket.ask_prompt", id=ticket_id))
    elif action == cb.TicketAction.DECLINE:
        await c.flows.set(user.id, DECLINE, "reason", {"ticket": ticket_id})
        await message.reply_text(c.t(lang, "ticket.decline_prompt", id=ticket_id))
    elif action == cb.TicketAction.TRANSFER:
        orgs, people = await service(context).transfer_targets(user.id, ticket_id)
        org, person = cb.TargetKind.ORG, cb.TargetKind.PERSON
        rows = [[Button(o.name, cb.TICKET_TRANSFER(ticket_id, org, o.id))] for o in orgs[:20]]
        rows += [[Button(f"👤 {name}", cb.TICKET_TRANSFER(ticket_id, person, pid))] for pid, name in people[:10]]
        await message.reply_text(c.t(lang, "ticket.transfer_pick", id=ticket_id),
                                 reply_markup=keyboard(rows) if rows else None)


async def transfer_target_button(update: Update, context: BotContext) -> None:
    """The transfer target was picked: ask for the reason (the service checks the target is one
    it offered when the transfer is made)."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.TICKET_TRANSFER.parse(query.data)
    if button is None:
        await stale(update, context)
        return
    try:
        orgs, people = await service(context).transfer_targets(user.id, button.ticket_id)
    except (NotFound, NotAllowed) as error:
        await answer_callback(update, context, "error.stale_button" if isinstance(error, NotFound)
                              else "error.not_allowed", alert=True)
        return
    offered = {o.id for o in orgs} if button.kind == cb.TargetKind.ORG else {pid for pid, _ in people}
    if button.target_id not in offered:
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    key = "to_org" if button.kind == cb.TargetKind.ORG else "to_person"
    await c.flows.set(user.id, TRANSFER, "reason", {"ticket": button.ticket_id, key: button.target_id})
    await query.answer()
    await reply(update, context, "ticket.transfer_reason", id=button.ticket_id)


async def reply_send_button(update: Update, context: BotContext) -> None:
    """Send the reply typed so far; when it will be public, first show exactly what the wall will say."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.TICKET_REPLY_SEND.parse(query.data) or cb.TICKET_REPLY_PUBLISH.parse(query.data)
    state = await c.flows.get(user.id)
    if button is None or state is None or state.flow != REPLY or state.data.get("ticket") != button.ticket_id:
        await answer_callback(update, context, "ticket.submit.stale", alert=True)
        return
    items = [Item.from_dict(i) for i in state.data["items"]]
    if not items:
        await answer_callback(update, context, "ticket.refused.empty", alert=True)
        return
    ticket_id, final = button.ticket_id, bool(state.data.get("final"))
    if cb.TICKET_REPLY_SEND.parse(query.data) is not None:
        try:
            preview = await service(context).preview_answer(user.id, ticket_id, items)
        except (NotFound, NotAllowed):
            preview = None  # the answer below says why
        if preview is not None:
            lang = await lang_of(update, context)
            await query.answer()
            assert update.effective_message is not None
            buttons = [[Button(c.t(lang, "ticket.button.publish"), cb.TICKET_REPLY_PUBLISH(ticket_id)),
                        Button(c.t(lang, "ticket.button.cancel"), cb.TICKET_FLOW_CANCEL())]]
            await update.effective_message.reply_text(clip(c.t(lang, "ticket.preview", post=preview), MAX_TEXT),
                                                      reply_markup=keyboard(buttons))
            return
    await _run(update, context, lambda svc: svc.answer(user.id, ticket_id, items, final=final), clear_flow=True)


async def flow_cancel_button(update: Update, context: BotContext) -> None:
    """Leave the reply being typed (asking first when something was typed)."""
    user = update.effective_user
    assert user is not None and update.callback_query is not None
    if await system.confirm_cancel(update, context):
        return
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
    await show_collected(update, context, state)


async def show_collected(update: Update, context: BotContext, state: FlowState) -> None:
    """How many pieces the reply (or the added information) has, with 发送 and 取消. Like the
    draft's categories, the buttons live under the newest count only: the previous one loses them."""
    c = context.core
    lang = await lang_of(update, context)
    ticket_id = state.data["ticket"]
    data = cb.TICKET_REPLY_SEND(ticket_id) if state.flow == REPLY else cb.TICKET_ADD_INFO(ticket_id, cb.InfoStep.SEND)
    assert update.effective_chat is not None and update.effective_user is not None
    sent = await context.bot.send_message(
        update.effective_chat.id, c.t(lang, "ticket.collected", count=len(state.data["items"])),
        reply_markup=keyboard([[Button(c.t(lang, "ticket.button.send"), data),
                                Button(c.t(lang, "ticket.button.cancel"), cb.TICKET_FLOW_CANCEL())]]))
    previous = state.data.get("prompt")
    state.data["prompt"] = sent.message_id
    await c.flows.set(update.effective_user.id, state.flow, state.step, state.data)
    if previous is not None:
        await _drop_buttons(context, update.effective_chat.id, previous)


async def show_draft_again(update: Update, context: BotContext, state: FlowState) -> None:
    """回到上一步 after 取消: the draft's screen again, with its buttons."""
    await _show_draft(update, context, state.data, edit=False)


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
    """Blocks by ticket (never by person), with a button to lift each."""
    c = context.core
    user = update.effective_user
    assert user is not None and update.effective_message is not None
    lang = await lang_of(update, context)
    svc = service(context)
    blocks = await svc.blocks(user.id)
    if not blocks:
        await reply(update, context, "ticket.blocked.none")
        return
    rows = [[Button(c.t(lang, "ticket.blocked.line", ticket=block.ticket_id or "—", org=block.org,
                        since=svc.fmt.day(lang, block.since, weekday=False)), cb.TICKET_UNBLOCK(block.id))]
            for block in blocks[:30]]
    await update.effective_message.reply_text(c.t(lang, "ticket.blocked.title"), reply_markup=keyboard(rows))


async def unblock_button(update: Update, context: BotContext) -> None:
    """Lift a block."""
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.TICKET_UNBLOCK.parse(query.data)
    if button is None:
        await stale(update, context)
        return
    await _run(update, context, lambda svc: svc.unblock(user.id, button.block_id))

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
    button = cb.WALL_PAGE.parse(query.data)
    if button is None or button.page < 0:
        await stale(update, context)
        return
    await query.answer()
    await _send_wall_page(update, context, button.org_id, button.page, edit=True)


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
            svc.wall_text(lang, post, short=True) for post in posts)
    nav = []
    if page > 0:
        nav.append(Button(c.t(lang, "ticket.wall.newer"), cb.WALL_PAGE(org_id, page - 1)))
    if more:
        nav.append(Button(c.t(lang, "ticket.wall.older"), cb.WALL_PAGE(org_id, page + 1)))
    markup = keyboard([nav]) if nav else None
    text = clip(text, MAX_TEXT)
    if edit and update.callback_query is not None:
        await edit_text(update.callback_query, text, reply_markup=markup)
    else:
        assert update.effective_message is not None
        await update.effective_message.reply_text(text, reply_markup=markup)


async def _refuse_bindwall(update: Update, context: BotContext, key: str) -> None:
    """In a group, a refusal is said at most once an hour (nobody may spend the group's budget)."""
    chat = update.effective_chat
    assert chat is not None
    if chat.type != "private" and not service(context).may_answer_bindwall(chat.id):
        return
    await reply(update, context, key)


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
        arg = context.args[0]
        target: int | str = int(arg) if arg.lstrip("-").isdigit() else arg
    else:
        target = chat.id
    try:
        wall_chat = await context.bot.get_chat(target)
        me = await context.bot.get_chat_member(wall_chat.id, context.bot.id)
        them = await context.bot.get_chat_member(wall_chat.id, user.id)
    except TelegramError:
        await _refuse_bindwall(update, context, "ticket.bindwall.not_found")
        return
    if them.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
        await _refuse_bindwall(update, context, "ticket.bindwall.you_not_admin")
        return
    if me.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
        await _refuse_bindwall(update, context, "ticket.bindwall.bot_not_admin")
        return
    orgs = await service(context).wall_orgs(user.id)
    if not orgs:
        await _refuse_bindwall(update, context, "error.not_allowed")
        return
    rows = [[Button(org.name, cb.WALL_BIND(org.id, wall_chat.id))] for org in orgs[:20]]
    assert update.effective_message is not None
    await update.effective_message.reply_text(c.t(lang, "ticket.bindwall.pick", chat=wall_chat.title or ""),
                                              reply_markup=keyboard(rows))


async def bindwall_button(update: Update, context: BotContext) -> None:
    """Bind the picked org's wall to the chat (the right is checked again in the service)."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.WALL_BIND.parse(query.data)
    if button is None:
        await stale(update, context)
        return
    try:
        them = await context.bot.get_chat_member(button.chat_id, user.id)
        wall_chat = await context.bot.get_chat(button.chat_id)
    except TelegramError:
        await answer_callback(update, context, "ticket.bindwall.not_found", alert=True)
        return
    if them.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
        await answer_callback(update, context, "ticket.bindwall.you_not_admin", alert=True)
        return
    try:
        await service(context).bind_wall(user.id, button.org_id, button.chat_id, wall_chat.title)
    except NotAllowed:
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    org = await c.orgs.get(button.org_id)
    await query.answer()
    await edit_text(query, c.t(await lang_of(update, context), "ticket.bindwall.done",
                                      org=org.name if org else "", chat=wall_chat.title or ""))


# --- shared ---------------------------------------------------------------------------------------

async def _own_ticket_in(update: Update, context: BotContext, ticket_id: int, status: Status) -> bool:
    """Whether it is the person's own ticket in `status` (else the button is answered)."""
    assert update.effective_user is not None
    try:
        await service(context).check_own(update.effective_user.id, ticket_id, status)
    except NotFound:
        await stale(update, context)
        return False
    except NotAllowed:
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return False
    except Refused as refused:
        await answer_callback(update, context, refused.key, alert=True)
        return False
    return True


async def _run(update: Update, context: BotContext, action: ServiceCall, clear_flow: bool = False) -> None:
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
            await stale(update, context)
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
    system.ANSWERS[INFO_QUESTION] = answer_info_question
    system.ANSWERS[RATE_QUESTION] = answer_rate_question
    system.FLOW_COVERS[INFO] = lambda state: (INFO_QUESTION, state.data["ticket"])
    system.FLOW_RESUME.update({SUBMIT: show_draft_again, REPLY: show_collected, INFO: show_collected})
    system.FLOW_COVERS[RATE_REASON] = lambda state: (RATE_QUESTION, state.data["ticket"])
    system.FLOW_LABELS.update({
        REPLY: "prompt.flow.ticket_reply", ASK: "prompt.flow.ticket_ask", TRANSFER: "prompt.flow.ticket_transfer",
        DECLINE: "prompt.flow.ticket_decline", INFO: "prompt.flow.ticket_info", RATE_REASON: "prompt.flow.ticket_rate"})
    if not any(fresh.flow == SUBMIT for fresh in system.FRESH_STARTS):
        system.FRESH_STARTS.append(system.FreshStart("prompt.new_problem", may_submit, submit_content, SUBMIT))
    if take_unsolicited not in system.UNSOLICITED:
        system.UNSOLICITED.append(take_unsolicited)
    for kind, callback in (
        (cb.SUBMIT_DRAFT, submit_button), (cb.TICKET_VIEW, view_button), (cb.TICKET_WITHDRAW, withdraw_button),
        (cb.TICKET_RATE, rating_button), (cb.TICKET_PRESET_REASON, preset_reason_button),
        (cb.TICKET_ADD_INFO, add_info_button), (cb.TICKET_ACTION, handler_button),
        (cb.TICKET_TRANSFER, transfer_target_button), (cb.TICKET_REPLY_SEND, reply_send_button),
        (cb.TICKET_REPLY_PUBLISH, reply_send_button), (cb.TICKET_FLOW_CANCEL, flow_cancel_button),
        (cb.TICKET_UNBLOCK, unblock_button), (cb.WALL_PAGE, wall_page_button), (cb.WALL_BIND, bindwall_button),
    ):
        app.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern))
