"""Cross-cutting handlers: who is talking, /cancel, input limits, blocked users, where a typed
message goes (an open question, the flow in progress, a new problem, or a chooser among them),
the fallbacks for anything no feature understood, and the error handler.

Where a private message goes (`private_message`): the person's open questions that this kind of
message answers (bot/services/prompts.py; a flow that is itself the place to answer one of them
hides it, FLOW_COVERS), and their flow in progress, are the candidates. None: a feature may take
it as a fresh start (UNSOLICITED: a problem typed straight in), else the fallback (or, for
someone who has not joined, how to join). One: it goes there. Several: the message is kept in the
database and the person taps which one it answers (PROMPT_PICK), with the fresh starts
(FRESH_STARTS: "作为新问题提交") last; the kept message is then replayed there as if typed there.

取消 (/cancel, and the 取消 buttons through `confirm_cancel`) never throws away what the person
typed without asking: a flow that holds typed content offers 放弃这段内容 / 回到上一步."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import ChatMember, ChatMemberUpdated, Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop, CallbackQueryHandler

from bot import callbacks as cb
from bot.context import BotContext
from bot.outbox import Button
from bot.services.flows import FlowState
from bot.services.prompts import Question
from handlers.common import Callback, Command, answer_callback, edit_text, keyboard, lang_of, reply

log = logging.getLogger(__name__)

MAX_INPUT = 4096  # Telegram's own limit for one message's text
# Multi-step flows register here: flow name -> handler of the person's next message.
FLOW_HANDLERS: dict[str, Callback] = {}
# Features may claim a private message that is in no flow (e.g. a problem typed straight in);
# each returns True when it took the message.
UNSOLICITED: list[Callable[[Update, BotContext], Awaitable[bool]]] = []
# Open questions (bot/services/prompts.py): kind -> how a message answers it (as if typed under it).
Answer = Callable[[Update, BotContext, Question], Awaitable[None]]
ANSWERS: dict[str, Answer] = {}
# A flow that is itself the place to answer an open question (补充 pressed): (kind, subject), or None.
FLOW_COVERS: dict[str, Callable[[FlowState], tuple[str, int] | None]] = {}
# Whether a flow holds something the person typed (default: a non-empty data["items"]).
FLOW_HOLDS: dict[str, Callable[[FlowState], bool]] = {}
# The chooser's words for a flow in progress (a catalog key; values from the flow's data).
FLOW_LABELS: dict[str, str] = {}
# 回到上一步 after 取消: show the flow's current step again (default: a line saying all is still there).
FLOW_RESUME: dict[str, Callable[[Update, BotContext, FlowState], Awaitable[None]]] = {}
MAX_CHOICES = 12
MEDIA = ("photo", "voice", "video", "video_note", "audio", "document", "location")  # what may answer besides text
LABEL_ROOM = 60
PREVIEW_ROOM = 40


@dataclass(frozen=True)
class FreshStart:
    """A chooser's last choices: the message starts something new (e.g. "作为新问题提交")."""

    label_key: str
    may: Callable[[BotContext, int], Awaitable[bool]]  # whether this person may start it
    start: Callback                                    # handles the message (as if typed with nothing open)
    flow: str | None = None                            # its own flow, which is then not offered separately


FRESH_STARTS: list[FreshStart] = []


async def remember_person(update: Update, context: BotContext) -> None:
    """Keep the person's name and Telegram language current (no write when nothing changed)."""
    user = update.effective_user
    if user is not None and not user.is_bot:
        # Someone writing to us or pressing a button has evidently not blocked the bot.
        interacting = update.effective_chat is not None and update.effective_chat.type == "private" and (
            update.message is not None or update.callback_query is not None)
        await context.core.people.touch(user.id, user.full_name, user.username, user.language_code,
                                         interacting=interacting)


async def guard_input(update: Update, context: BotContext) -> None:
    """Refuse text longer than Telegram allows before any feature sees it."""
    message = update.effective_message
    text = (message.text or message.caption or "") if message else ""
    if len(text) > MAX_INPUT:
        await reply(update, context, "error.too_long", limit=MAX_INPUT, length=len(text))
        raise ApplicationHandlerStop


async def cancel_command(update: Update, context: BotContext) -> None:
    """Leave any multi-step flow (asking first when it holds what the person typed)."""
    from handlers.start import main_menu

    user = update.effective_user
    assert user is not None and update.effective_message is not None
    if await confirm_cancel(update, context):
        return
    c = context.core
    state = await c.flows.clear(user.id)
    closed = await c.prompts.close_tapped(user.id)  # a leave reason asked by their own tap, say
    lang = await lang_of(update, context)
    await update.effective_message.reply_text(
        c.t(lang, "cancel.done" if state or closed else "cancel.nothing"), reply_markup=await main_menu(update, context)
    )


async def chat_member(update: Update, context: BotContext) -> None:
    """A private chat's my_chat_member update says whether the person blocked or unblocked us; a
    group's or channel's, whether it removed the bot (or muted it) or added it back."""
    change: ChatMemberUpdated | None = update.my_chat_member
    if change is None:
        return
    status = change.new_chat_member.status
    blocked = status in (ChatMember.BANNED, ChatMember.LEFT)
    if change.chat.type != "private":
        member = change.new_chat_member
        muted = status == ChatMember.RESTRICTED and not (
            getattr(member, "is_member", True) and getattr(member, "can_send_messages", True))
        await context.core.outbox.set_chat_blocked(change.chat.id, blocked or muted, f"bot {status} in the chat")
        log.info("chat %s %s the bot", change.chat.id, "removed or muted" if blocked or muted else "added")
        return
    await context.core.people.set_blocked(change.chat.id, blocked)
    log.info("person %s %s the bot", change.chat.id, "blocked" if blocked else "unblocked")


async def private_message(update: Update, context: BotContext) -> None:
    """Hand the message to the open question or flow it answers, ask which when there are several,
    or take it as a fresh start; else explain what the bot understands (or how to join)."""
    c = context.core
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None:
        return
    state = await c.flows.get(user.id)
    flow = state if state is not None and state.flow in FLOW_HANDLERS else None
    questions = await _open_questions(update, context, flow)
    if questions and (flow is not None or len(questions) > 1):
        await offer_choice(update, context, questions, flow)
        return
    if questions:
        await ANSWERS[questions[0][0].kind](update, context, questions[0][0])
        return
    if flow is not None:
        await FLOW_HANDLERS[flow.flow](update, context)
        return
    for claim in UNSOLICITED:
        if await claim(update, context):
            return
    await fallback(update, context)


async def _open_questions(update: Update, context: BotContext,
                          flow: FlowState | None) -> list[tuple[Question, str]]:
    """The person's open questions this message can answer, less the one their flow answers."""
    message = update.effective_message
    assert update.effective_user is not None and message is not None
    if not message.text and not any(getattr(message, kind, None) for kind in MEDIA):
        return []  # a sticker or a contact answers nothing
    found = await context.core.prompts.pending(update.effective_user.id, await lang_of(update, context),
                                               media=not message.text)
    covers = FLOW_COVERS.get(flow.flow) if flow is not None else None
    covered = covers(flow) if covers is not None and flow is not None else None
    return [(q, label) for q, label in found if q.kind in ANSWERS and (q.kind, q.subject_id) != covered]


async def fallback(update: Update, context: BotContext) -> None:
    """Nothing took the message: someone who has not joined is told how to join; others, what the
    bot understands."""
    c = context.core
    user = update.effective_user
    assert user is not None and update.effective_message is not None
    if not await c.orgs.role_names(user.id):
        waiting = await c.invites.waiting_for(user.id)
        lang = await lang_of(update, context)
        if waiting:
            await reply(update, context, "prompt.join.waiting", orgs=c.formatter.join(lang, waiting))
        else:
            await reply(update, context, "prompt.join.how")
        return
    await reply(update, context, "fallback.text" if update.effective_message.text else "fallback.unsupported")


# --- several open questions: which one does this message answer? ------------------------------------

async def offer_choice(update: Update, context: BotContext, questions: list[tuple[Question, str]],
                       flow: FlowState | None) -> None:
    """Keep the message and ask, with one tap each, which open question (or the flow, or a fresh
    start) it is for."""
    c = context.core
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    lang = await lang_of(update, context)
    token = await c.prompts.keep(user.id, message.to_dict())
    rows = [[Button(_label(label), cb.PROMPT_PICK(token, q.id))] for q, label in questions[:MAX_CHOICES]]
    fresh_flows = {fresh.flow for fresh in FRESH_STARTS}
    if flow is not None and flow.flow not in fresh_flows:
        rows.append([Button(_label(flow_label(context, lang, flow)), cb.PROMPT_PICK(token, 0))])
    for n, fresh in enumerate(FRESH_STARTS):
        if await fresh.may(context, user.id):
            rows.append([Button(c.t(lang, fresh.label_key), cb.PROMPT_PICK(token, -1 - n))])
    preview = " ".join((message.text or message.caption or "").split()) or c.t(lang, "prompt.media")
    preview = preview if len(preview) <= PREVIEW_ROOM else preview[:PREVIEW_ROOM] + "…"
    await message.reply_text(c.t(lang, "prompt.choose", preview=preview), reply_markup=keyboard(rows))


def _label(text: str) -> str:
    return text if len(text) <= LABEL_ROOM else text[:LABEL_ROOM - 1] + "…"


def flow_label(context: BotContext, lang: str, flow: FlowState) -> str:
    values = {k: v for k, v in flow.data.items() if isinstance(v, str | int)}
    return context.core.t(lang, FLOW_LABELS.get(flow.flow, "prompt.flow.other"), **values)


async def pick_button(update: Update, context: BotContext) -> None:
    """The person tapped which question their kept message answers: it goes there, as if typed there."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.PROMPT_PICK.parse(query.data)
    kept = await c.prompts.kept(user.id, button.kept) if button is not None else None
    if button is None or kept is None:
        await answer_callback(update, context, "prompt.pick_stale", alert=True)
        return
    lang = await lang_of(update, context)
    original = Message.de_json(kept, context.bot)
    assert original is not None
    target = await _target(context, user.id, button.target, lang, media=not original.text)
    if target is None:
        await answer_callback(update, context, "prompt.pick_gone", alert=True)
        return
    route, label = target
    if not await c.prompts.drop(user.id, button.kept):  # a second tap meanwhile placed it already
        await answer_callback(update, context, "prompt.pick_stale", alert=True)
        return
    await query.answer()
    await edit_text(query, c.t(lang, "prompt.placed", label=label))
    await route(Update(update.update_id, message=original), context)


async def _target(context: BotContext, person_id: int, target: int, lang: str,
                  media: bool) -> tuple[Callback, str] | None:
    """Where a chooser's tap sends the kept message, checked again now (None: nowhere any more)."""
    c = context.core
    if target > 0:
        live = await c.prompts.live(person_id, target, lang, media)
        if live is None or live[0].kind not in ANSWERS:
            return None
        question, label = live
        answer = ANSWERS[question.kind]

        async def to_question(update: Update, ctx: BotContext) -> None:
            await answer(update, ctx, question)

        return to_question, label
    if target == 0:
        state = await c.flows.get(person_id)
        if state is None or state.flow not in FLOW_HANDLERS:
            return None
        return FLOW_HANDLERS[state.flow], flow_label(context, lang, state)
    n = -1 - target
    if n >= len(FRESH_STARTS) or not await FRESH_STARTS[n].may(context, person_id):
        return None
    return FRESH_STARTS[n].start, c.t(lang, FRESH_STARTS[n].label_key)


# --- 取消 with typed content ---------------------------------------------------------------------------

def fingerprint(state: FlowState) -> str:
    """Six hex digits that change whenever the flow does (a 取消 choice for an older state is stale)."""
    text = json.dumps([state.flow, state.step, state.data], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def holds_typing(state: FlowState) -> bool:
    check = FLOW_HOLDS.get(state.flow)
    return check(state) if check is not None else bool(state.data.get("items"))


async def confirm_cancel(update: Update, context: BotContext) -> bool:
    """取消 of a flow that holds what the person typed: offer 放弃这段内容 / 回到上一步 and return
    True; otherwise False (the caller cancels as usual)."""
    c = context.core
    user = update.effective_user
    assert user is not None
    state = await c.flows.get(user.id)
    if state is None or not holds_typing(state):
        return False
    lang = await lang_of(update, context)
    mark = fingerprint(state)
    rows = [[Button(c.t(lang, "prompt.cancel.discard"), cb.PROMPT_CANCEL(mark, cb.CancelChoice.DISCARD))],
            [Button(c.t(lang, "prompt.cancel.back"), cb.PROMPT_CANCEL(mark, cb.CancelChoice.BACK))]]
    if update.callback_query is not None:
        await update.callback_query.answer()
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, c.t(lang, "prompt.cancel.ask"),
                                   reply_markup=keyboard(rows))
    return True


async def cancel_choice_button(update: Update, context: BotContext) -> None:
    """放弃这段内容 (the flow and its content are gone) or 回到上一步 (nothing changes)."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    button = cb.PROMPT_CANCEL.parse(query.data)
    state = await c.flows.get(user.id)
    if button is None or state is None or fingerprint(state) != button.flow:
        await answer_callback(update, context, "prompt.cancel.stale", alert=True)
        return
    lang = await lang_of(update, context)
    await query.answer()
    if button.choice == cb.CancelChoice.DISCARD:
        await c.flows.clear(user.id)
        await c.prompts.close_tapped(user.id)
        await edit_text(query, c.t(lang, "prompt.cancel.discarded"))
    else:
        await edit_text(query, c.t(lang, "prompt.cancel.kept"))
        resume = FLOW_RESUME.get(state.flow)
        if resume is not None:
            await resume(update, context, state)


async def unknown_command(update: Update, context: BotContext) -> None:
    """A command no feature knows."""
    message = update.effective_message
    command = (message.text or "").split()[0].split("@")[0] if message else ""
    await reply(update, context, "fallback.unknown_command", command=command)


async def stale_button(update: Update, context: BotContext) -> None:
    """A button whose data no feature recognises (forged or from an old version)."""
    query = update.callback_query
    assert query is not None
    lang = await lang_of(update, context)
    await query.answer(context.core.t(lang, "error.stale_button"), show_alert=True)


async def error_handler(update: object, context: BotContext) -> None:
    """Log the error and tell the user something went wrong, in their language."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        lang = await lang_of(update, context)
        text = context.core.t(lang, "error.internal")
    except Exception:  # the database itself may be what failed
        text = context.core.t(None, "error.internal")
    private = update.effective_chat is not None and update.effective_chat.type == "private"
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(text, show_alert=True)
            return
        except TelegramError:  # the press was answered already (the failure came after): say it in the chat
            pass
    if private and update.effective_chat is not None:
        try:
            await context.bot.send_message(update.effective_chat.id, text)
        except TelegramError:  # the network may be what failed; the log already has the cause
            log.warning("could not tell the user about the error", exc_info=True)


COMMANDS = [Command("cancel", cancel_command)]


def register(app: Application) -> None:  # type: ignore[type-arg]
    for kind, callback in ((cb.PROMPT_PICK, pick_button), (cb.PROMPT_CANCEL, cancel_choice_button)):
        app.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern))
