"""The opinion map of a deliberation round in chat (issue 13).

  round card (/deliberations → a round)  the opener: 🗺 开启看法地图 → type seed statements →
                                         ▶️ 开放表态; later 🗺 看法地图 (the live map) and 📝 管理看法
                                         (hide an abusive statement); participants: 🗳 表态
  表态                                   one statement per message: 同意 / 不同意 / 跳过, ✍️ 写一条我的
                                         看法, ⏸ 先停一下; each vote is one tap and one edit of the same
                                         message (the next statement replaces it)

Typed steps (a statement, the opener's seeds) go through the flow store (FLOW below, registered in
handlers/system.py FLOW_HANDLERS). The service checks every right again on every press."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from telegram import InputFile, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import OM_HIDE, OM_ROUND, OM_VOTE, OmAct, OmChoice
from bot.context import BotContext
from bot.core import Core
from bot.limits import MAX_CAPTION, MAX_TEXT, clip
from bot.outbox import Button
from bot.services.deliberation import Phase, Round
from bot.services.flows import FlowState
from bot.services.opinion_text import result_lines
from bot.services.opinions import HIDE_REASONS, LIST_PAGE, MIN_VOTES, Choice, OpinionMapService, VoteScreen
from handlers import system
from handlers.common import (
    Command,
    answer_callback,
    edit_text,
    guarded_by,
    keyboard,
    lang_of,
    person,
    say,
    say_key,
)

FLOW = "om"
CHOICES = {OmChoice.AGREE: Choice.AGREE, OmChoice.DISAGREE: Choice.DISAGREE, OmChoice.PASS: Choice.PASS}
NUMBERS = "①②③④⑤⑥⑦⑧⑨⑩"
PICK_REASON = 9   # OM_HIDE's reason value that asks which reason

Handler = Callable[..., Awaitable[None]]


def svc(context: BotContext) -> OpinionMapService:
    return context.core.opinions


guarded = guarded_by("om.error.not_allowed")


# --- the round's card ------------------------------------------------------------------------------

async def card_rows(c: Core, lang: str, me: int, rnd: Round, audience: bool,
                    manage: bool) -> tuple[bool, str, list[list[Button]]]:
    """For handlers/deliberation.py's card: (the map takes the place of free opinions, a line for
    the card, the buttons this person may use)."""
    state = await c.opinions.state(me, rnd.id)
    active = rnd.status == "open" and rnd.phase(c.clock.now()) in (Phase.OPINIONS, Phase.VOTING)
    rows: list[list[Button]] = []
    if state is None:
        if manage and active:
            rows.append([Button(c.t(lang, "om.button.enable"), OM_ROUND(OmAct.ENABLE, rnd.id))])
        return False, "", rows
    if state.status == "draft":
        if manage and active:
            rows.append([Button(c.t(lang, "om.button.seed"), OM_ROUND(OmAct.SEED, rnd.id))])
            rows.append([Button(c.t(lang, "om.button.open"), OM_ROUND(OmAct.OPEN, rnd.id))])
        return True, c.t(lang, "om.card.draft", n=state.seeds), rows
    if state.status == "open":
        if audience and active:
            rows.append([Button(c.t(lang, "om.button.vote"), OM_ROUND(OmAct.START, rnd.id))])
        if manage:
            rows.append([Button(c.t(lang, "om.button.map"), OM_ROUND(OmAct.MAP, rnd.id)),
                         Button(c.t(lang, "om.button.list"), OM_ROUND(OmAct.LIST, rnd.id))])
        return True, c.t(lang, "om.card.open", n=state.statements), rows
    rows.append([Button(c.t(lang, "om.button.result"), OM_ROUND(OmAct.MAP, rnd.id))])
    return True, c.t(lang, "om.card.final", n=state.statements), rows


# --- voting ----------------------------------------------------------------------------------------

def vote_screen(c: Core, lang: str, screen: VoteScreen) -> tuple[str, list[list[Button]]]:
    """One statement with its three buttons, or "all done"; where the person stands once they have
    voted on MIN_VOTES statements."""
    rnd = screen.round
    write = [Button(c.t(lang, "om.button.write"), OM_ROUND(OmAct.WRITE, rnd.id))]
    if screen.position is not None:
        where = c.t(lang, "om.position", n=screen.position[0], size=screen.position[1])
    elif screen.voted < MIN_VOTES:
        where = c.t(lang, "om.position_soon", n=MIN_VOTES - screen.voted)
    else:
        where = c.t(lang, "om.position_later")
    if screen.statement is None:
        text = "\n\n".join([c.t(lang, "om.vote.done", title=rnd.title, n=screen.total), where])
        return text, [write]
    s = screen.statement
    text = "\n\n".join([c.t(lang, "om.vote.head", title=rnd.title, n=screen.voted + 1, total=screen.total),
                        c.t(lang, "om.vote.statement", text=s.text), c.t(lang, "om.vote.ask"), where])
    rows = [[Button(c.t(lang, "om.button.agree"), OM_VOTE(s.id, OmChoice.AGREE)),
             Button(c.t(lang, "om.button.disagree"), OM_VOTE(s.id, OmChoice.DISAGREE)),
             Button(c.t(lang, "om.button.pass"), OM_VOTE(s.id, OmChoice.PASS))],
            write, [Button(c.t(lang, "om.button.stop"), OM_ROUND(OmAct.STOP, rnd.id))]]
    return text, rows


@guarded
async def vote_button(update: Update, context: BotContext) -> None:
    """One tap: the vote is stored and the same message shows the next statement (one edit)."""
    query = update.callback_query
    assert query is not None
    data = OM_VOTE.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    screen = await svc(context).vote(person(update), data.statement_id, CHOICES[data.choice])
    lang = await lang_of(update, context)
    text, rows = vote_screen(context.core, lang, screen)
    # The next statement first, then the press's answer: the person sees it one round trip sooner.
    await edit_text(query, text, keyboard(rows))
    with contextlib.suppress(BadRequest):  # a press too old to answer: the edit has been made
        await query.answer()


@guarded
async def round_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = OM_ROUND.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    actions: dict[OmAct, Callable[[Update, BotContext, int, int], Awaitable[None]]] = {
        OmAct.START: start_voting, OmAct.WRITE: ask_statement, OmAct.STOP: stop_voting, OmAct.MAP: show_map,
        OmAct.ENABLE: enable, OmAct.SEED: ask_seeds, OmAct.OPEN: open_map, OmAct.LIST: show_list}
    await actions[data.action](update, context, data.round_id, data.page)


async def start_voting(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    """The pressed message (the notice, the round's card) becomes the voting screen: an edit, so
    that hundreds starting at once never queue behind the 30-messages-a-second limit."""
    screen = await svc(context).screen(person(update), round_id)
    text, rows = vote_screen(context.core, await lang_of(update, context), screen)
    await say(update, context, text, rows, edit=True)


async def stop_voting(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    await svc(context).state(person(update), round_id)  # a round this person may read (a forged press is refused)
    await say_key(update, context, "om.vote.stopped", edit=True)


async def show_map(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    """The opener's live map (or, after the close, everyone's result) as a photo."""
    c = context.core
    lang = await lang_of(update, context)
    png, snapshot = await svc(context).live_map(person(update), round_id)
    rnd = await c.deliberation.get(person(update), round_id)
    if png is None or snapshot is None:
        await say_key(update, context, "om.map.none")
        return
    await answer_callback(update, context, "om.map.sending")
    assert update.effective_chat is not None
    caption = c.t(lang, "om.map.caption", title=rnd.title, people=snapshot["participants"],
                  grouped=snapshot["grouped"], groups=snapshot["k"])
    photo = InputFile(png, filename=c.t(lang, "om.chart.file"))
    await context.bot.send_photo(update.effective_chat.id, photo, caption=clip(caption, MAX_CAPTION))
    text = "\n".join(result_lines(c.t, c.formatter, lang, rnd.title, snapshot))
    await context.bot.send_message(update.effective_chat.id, clip(text, MAX_TEXT))


# --- statements --------------------------------------------------------------------------------------

async def ask_statement(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    await svc(context).check_can_write(person(update), round_id)
    await context.core.flows.set(person(update), FLOW, "text", {"mode": "statement", "round": round_id})
    await say_key(update, context, "om.ask.statement")


async def enable(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    await svc(context).enable(person(update), round_id)
    await ask_seeds(update, context, round_id)


async def ask_seeds(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    c = context.core
    seeds = await svc(context).check_seed(person(update), round_id)
    await context.core.flows.set(person(update), FLOW, "seed", {"mode": "seed", "round": round_id})
    lang = await lang_of(update, context)
    rows = [[Button(c.t(lang, "om.button.open"), OM_ROUND(OmAct.OPEN, round_id))]]
    await say_key(update, context, "om.ask.seed", rows, n=seeds)


async def open_map(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    told = await svc(context).open_map(person(update), round_id)
    state = await context.core.flows.get(person(update))
    if state is not None and state.flow == FLOW:
        await context.core.flows.clear(person(update))
    await say_key(update, context, "om.done.opened", n=told)


async def show_list(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    """The opener's list of statements (newest first), to hide an abusive one."""
    c = context.core
    lang = await lang_of(update, context)
    items, total = await svc(context).statements(person(update), round_id, page)
    lines = [c.t(lang, "om.list.head", n=total)]
    rows: list[list[Button]] = []
    for n, s in enumerate(items):
        if s.hidden:
            lines.append(c.t(lang, "om.list.hidden", n=NUMBERS[n]))
            continue
        lines.append(c.t(lang, "om.list.line", n=NUMBERS[n], text=s.text, votes=s.votes))
        rows.append([Button(c.t(lang, "om.button.hide", n=NUMBERS[n]), OM_HIDE(s.id, PICK_REASON))])
    if (page + 1) * LIST_PAGE < total:
        rows.append([Button(c.t(lang, "om.button.more"), OM_ROUND(OmAct.LIST, round_id, page + 1))])
    await say(update, context, "\n\n".join(lines), rows)


@guarded
async def hide_button(update: Update, context: BotContext) -> None:
    """Hide a statement: first pick the reason (buttons), then it is hidden."""
    query = update.callback_query
    assert query is not None
    data = OM_HIDE.parse(query.data)
    if data is None or not (0 <= data.reason < len(HIDE_REASONS) or data.reason == PICK_REASON):
        raise ValueError(query.data)
    c = context.core
    lang = await lang_of(update, context)
    if data.reason == PICK_REASON:
        rows = [[Button(c.t(lang, key), OM_HIDE(data.statement_id, i))] for i, key in enumerate(HIDE_REASONS)]
        await say_key(update, context, "om.hide.pick", rows)
        return
    changed = await svc(context).hide(person(update), data.statement_id, c.t(lang, HIDE_REASONS[data.reason]))
    await say_key(update, context, "om.hide.done" if changed else "om.hide.already", edit=True)


@guarded
async def flow_message(update: Update, context: BotContext) -> None:
    """A typed statement, or the opener's seed statements (one a line, in one or more messages)."""
    c, me = context.core, person(update)
    message = update.effective_message
    assert message is not None
    state = await c.flows.get(me)
    if state is None or state.flow != FLOW:
        return
    text = (message.text or "").strip()
    round_id = int(state.data["round"])
    lang = await lang_of(update, context)
    if not text:
        await say_key(update, context, "om.ask.text_please")
    elif state.data.get("mode") == "seed":
        lines = [line.strip(" -·•").strip() for line in text.splitlines()]
        n = await svc(context).seed(me, round_id, [line for line in lines if line])
        rows = [[Button(c.t(lang, "om.button.open"), OM_ROUND(OmAct.OPEN, round_id))]]
        await say_key(update, context, "om.seeded", rows, n=n)
    else:
        await svc(context).add_statement(me, round_id, text)
        await c.flows.clear(me)
        rows = [[Button(c.t(lang, "om.button.continue"), OM_ROUND(OmAct.START, round_id))]]
        await say_key(update, context, "om.done.statement", rows)


def holds_typing(state: FlowState) -> bool:
    """Nothing typed is kept in the flow: a statement or a seed is stored as soon as it is sent."""
    return False


COMMANDS: list[Command] = []

BUTTONS = [(OM_ROUND, round_button), (OM_VOTE, vote_button), (OM_HIDE, hide_button)]


def register(app: Application) -> None:  # type: ignore[type-arg]
    for kind, callback in BUTTONS:
        app.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern))
    system.FLOW_HANDLERS[FLOW] = flow_message
    system.FLOW_LABELS[FLOW] = "om.chooser"
    system.FLOW_HOLDS[FLOW] = holds_typing
