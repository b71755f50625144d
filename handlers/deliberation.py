"""Deliberation rounds (民主议事) in chat.

  /deliberations   open and recent rounds for the person; each round's card has what they may do:
                   write or read opinions, support one, vote, see the result; the opener manages
                   it there (extend once, close early, cancel, add a choice, hide an opinion), and a
                   secretary votes on someone's behalf (代投)
  /newdeliberation the opening flow: org → (scope) → topic → background → audience → opinion
                   deadline → vote? → (vote deadline → choices → single/multiple → secret → live
                   results) → confirm

Typed steps go through the flow store (bot/services/flows.py, FLOW below, registered in
handlers/system.py FLOW_HANDLERS). Every button's data is a kind from bot/callbacks.py; the service
checks every right again, so a forged, stale or late press changes nothing and is answered."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from telegram import InputFile, Message, Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import (
    DELIB_BALLOT,
    DELIB_FLOW,
    DELIB_LEDGER,
    DELIB_MANAGE,
    DELIB_OPINION,
    DELIB_PROXY,
    DELIB_VIEW,
    BallotAction,
    DelibFlowAction,
    DelibManage,
    DelibView,
    OpinionAct,
)
from bot.context import BotContext
from bot.core import Core
from bot.limits import clip
from bot.outbox import Button
from bot.services import opinions_ledger
from bot.services.deliberation import (
    EXTEND_DAYS,
    MAX_BACKGROUND,
    MAX_MEDIA,
    MAX_OPTIONS,
    MAX_TITLE,
    OPINION_PAGE,
    Audience,
    DeliberationService,
    Phase,
    Refused,
    RoundSpec,
)
from bot.services.flows import FlowState
from bot.services.meeting_time import Unreadable, parse_when
from bot.services.orgs import NotAllowed, NotFound
from handlers import opinions, system
from handlers.common import (
    LEADERS,
    Command,
    answer_callback,
    answer_text,
    lang_of,
    person,
    say,
    say_key,
)

FLOW = "delib"
AUDIENCES = list(Audience)
DEADLINE_HOUR = time(20, 0)  # a phase typed or picked as a day ends at 20:00 local, before quiet hours
OPINION_DAYS = (3, 5, 7)
VOTE_DAYS = (2, 3, 5)
MAX_CHOICE_BUTTONS = (2, 3)
PROXY_REASONS = ("delib.proxy.reason.no_phone", "delib.proxy.reason.elderly", "delib.proxy.reason.away")
MAX_PEOPLE_BUTTONS = 60
MAX_LEDGER_BUTTONS = 5
PAGE_OPINION_ROOM = 600

AUDIENCE_KEYS = {Audience.MEMBERS: "delib.audience.members", Audience.RESIDENTS: "delib.audience.residents",
                 Audience.BOTH: "delib.audience.both"}
PHASE_SHORT = {Phase.OPINIONS: "delib.phase_short.opinions", Phase.VOTING: "delib.phase_short.voting",
               Phase.ENDED: "delib.phase_short.ended", Phase.CLOSED: "delib.phase_short.closed",
               Phase.CANCELLED: "delib.phase_short.cancelled"}

Handler = Callable[..., Awaitable[None]]


def svc(context: BotContext) -> DeliberationService:
    return context.core.deliberation


async def refuse(update: Update, context: BotContext, exc: Exception) -> None:
    """A clear answer for anything the service refused; nothing was changed."""
    c = context.core
    lang = await lang_of(update, context)
    if isinstance(exc, Refused):
        text = c.t(lang, exc.key, **exc.values)
    elif isinstance(exc, NotAllowed):
        text = c.t(lang, "delib.error.not_allowed")
    else:
        text = c.t(lang, "error.stale_button")
    if update.callback_query is not None:
        await answer_text(update, text, alert=True)
    else:
        assert update.effective_message is not None
        await update.effective_message.reply_text(text)


def guarded(handler: Handler) -> Handler:
    """Whatever the service refused is answered in words; data that does not parse is stale."""

    @functools.wraps(handler)
    async def run(update: Update, context: BotContext, *args: Any) -> None:
        try:
            await handler(update, context, *args)
        except (Refused, NotAllowed, NotFound, ValueError) as exc:
            await refuse(update, context, exc)

    return run


async def flow_data(context: BotContext, person_id: int, mode: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """(step, data) of the person's deliberation flow, in `mode` when given."""
    state = await context.core.flows.get(person_id)
    if state is None or state.flow != FLOW or (mode is not None and state.data.get("mode") != mode):
        return None
    return state.step, state.data


async def save(context: BotContext, person_id: int, step: str, data: dict[str, Any]) -> None:
    await context.core.flows.set(person_id, FLOW, step, data)


def numbered(items: Sequence[str]) -> str:
    return "\n".join(f"{i + 1}. {item}" for i, item in enumerate(items))


# --- /deliberations and a round's card -------------------------------------------------------------

async def deliberations_command(update: Update, context: BotContext) -> None:
    c = context.core
    lang = await lang_of(update, context)
    me = person(update)
    rounds = await svc(context).mine(me)
    now = c.clock.now()
    rows = [[Button(c.t(lang, "delib.list.line", title=r.title,
                        phase=c.t(lang, PHASE_SHORT[r.phase(now)])),
                    DELIB_VIEW(DelibView.CARD, r.id))] for r, _ in rounds]
    if await svc(context).openable_orgs(me):
        rows.append([Button(c.t(lang, "delib.button.new"), DELIB_FLOW(DelibFlowAction.NEW))])
    year = c.clock.now().astimezone(c.settings.tz).year
    led = {g.org.id: g.org.name for g in await c.orgs.grants(me) if g.role in ("secretary", "organizer")}
    rows += [[Button(c.t(lang, "delib.button.ledger", org=name, year=year), DELIB_LEDGER(org_id, year))]
             for org_id, name in list(led.items())[:MAX_LEDGER_BUTTONS]]
    await say_key(update, context, "delib.list.head" if rounds else "delib.list.none", rows)


@guarded
async def ledger_button(update: Update, context: BotContext) -> None:
    """The rounds of an org (and the orgs below it) opened in a year, as an Excel file for the ledger."""
    query = update.callback_query
    assert query is not None
    data = DELIB_LEDGER.parse(query.data)
    if data is None or not 2000 <= data.year <= 2100:
        raise ValueError(query.data)
    c = context.core
    lang = await lang_of(update, context)
    await answer_callback(update, context, "delib.ledger.making")
    first, last = date(data.year, 1, 1), date(data.year, 12, 31)
    maps = await c.opinions.ledger_maps(person(update), data.org_id, first, last)
    extra = [functools.partial(opinions_ledger.add_sheets, maps=maps, t=c.t, fmt=c.formatter, lang=lang)]
    filename, content = await svc(context).ledger(person(update), data.org_id, first, last, lang, extra)
    org = await c.orgs.get(data.org_id)
    assert update.effective_chat is not None
    await context.bot.send_document(update.effective_chat.id, InputFile(content, filename=filename),
                                    caption=c.t(lang, "delib.ledger.caption", org=org.name if org else "",
                                                year=data.year))


async def card(c: Core, service: DeliberationService, lang: str, me: int,
               round_id: int) -> tuple[str, list[list[Button]]]:
    """The round as this person may see it, and the buttons they may use."""
    rnd = await service.get(me, round_id)
    now = c.clock.now()
    audience, manage, proxy = await service.rights(me, rnd.id)
    phase = rnd.phase(now)
    text = service.card_text(lang, rnd, now, full=True)
    options = await service.options(me, rnd.id)
    if options:
        text += "\n" + c.t(lang, "delib.card.options", options=numbered(options))
    rows: list[list[Button]] = []
    # The opinion map (handlers/opinions.py), when on, takes the place of free opinions.
    mapped, map_line, map_rows = await opinions.card_rows(c, lang, me, rnd, audience, manage)
    if map_line:
        text += "\n" + map_line
    if audience and phase == Phase.OPINIONS and not mapped:
        rows.append([Button(c.t(lang, "delib.button.write"), DELIB_VIEW(DelibView.WRITE, rnd.id))])
    if audience and phase == Phase.VOTING:
        rows.append([Button(c.t(lang, "delib.button.vote"), DELIB_VIEW(DelibView.BALLOT, rnd.id))])
    rows += map_rows
    rows.append([Button(c.t(lang, "delib.button.opinions"), DELIB_VIEW(DelibView.OPINIONS, rnd.id))])
    if rnd.result is not None or (rnd.live_results and phase == Phase.VOTING):
        rows.append([Button(c.t(lang, "delib.button.result"), DELIB_VIEW(DelibView.RESULT, rnd.id))])
    if proxy and phase == Phase.VOTING:
        rows.append([Button(c.t(lang, "delib.button.proxy"), DELIB_MANAGE(DelibManage.PROXY, rnd.id))])
    if manage and rnd.status == "open":
        rows.append([Button(c.t(lang, "delib.button.manage"), DELIB_VIEW(DelibView.MANAGE, rnd.id))])
    return text, rows


@guarded
async def view_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = DELIB_VIEW.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    handlers: dict[DelibView, Callable[[Update, BotContext, int, int], Awaitable[None]]] = {
        DelibView.CARD: show_card, DelibView.OPINIONS: show_opinions, DelibView.PAGE: turn_page,
        DelibView.WRITE: start_opinion,
        DelibView.BALLOT: show_ballot, DelibView.RESULT: show_result, DelibView.MANAGE: show_manage}
    await handlers[data.action](update, context, data.round_id, data.page)


async def show_card(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    lang = await lang_of(update, context)
    text, rows = await card(context.core, svc(context), lang, person(update), round_id)
    await say(update, context, text, rows)


async def show_result(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    service = svc(context)
    lang = await lang_of(update, context)
    result = await service.result(person(update), round_id)
    rnd = await service.get(person(update), round_id)
    if result is None:
        await say_key(update, context, "delib.result.hidden")
        return
    await say(update, context, service.result_text(lang, rnd, result))


async def show_manage(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    c, service = context.core, svc(context)
    lang = await lang_of(update, context)
    rnd = await service.get(person(update), round_id)
    _, manage, _ = await service.rights(person(update), round_id)
    if not manage or rnd.status != "open":
        raise NotAllowed("manage")
    rows: list[list[Button]] = []
    if rnd.extended_at is None:
        rows.append([Button(c.t(lang, "delib.button.extend", n=d), DELIB_MANAGE(DelibManage.EXTEND, rnd.id, d))
                     for d in EXTEND_DAYS])
    if rnd.votes_until is not None and rnd.phase(c.clock.now()) == Phase.OPINIONS:
        rows.append([Button(c.t(lang, "delib.button.add_option"), DELIB_MANAGE(DelibManage.OPTION, rnd.id))])
    rows.append([Button(c.t(lang, "delib.button.close"), DELIB_MANAGE(DelibManage.CLOSE, rnd.id))])
    rows.append([Button(c.t(lang, "delib.button.cancel_round"), DELIB_MANAGE(DelibManage.CANCEL, rnd.id))])
    await say_key(update, context, "delib.manage.head", rows, title=rnd.title)


# --- opinions --------------------------------------------------------------------------------------

NUMBERS = "①②③④⑤⑥⑦⑧⑨⑩"


async def opinions_page(c: Core, service: DeliberationService, lang: str, me: int, round_id: int,
                        page: int) -> tuple[str, list[list[Button]]]:
    """One page of opinions, masked; signed ones with the name; buttons to support, listen, and for
    the opener to hide or to make one a choice of the vote."""
    rnd = await service.get(me, round_id)
    opinions, total = await service.opinions(me, round_id, page)
    _, manage, _ = await service.rights(me, round_id)
    now = c.clock.now()
    lines = [c.t(lang, "delib.opinions.head", title=rnd.title, n=total)]
    rows: list[list[Button]] = []
    open_phase = rnd.phase(now) in (Phase.OPINIONS, Phase.VOTING)
    for n, op in enumerate(opinions):
        mark = NUMBERS[n]
        if op.hidden_reason is not None:
            lines.append(c.t(lang, "delib.opinions.hidden", n=mark, reason=op.hidden_reason))
            continue
        who = op.author if op.author is not None else c.t(lang, "delib.opinions.anonymous")
        # Five opinions of up to 1,000 characters would not fit in one message: the page shows the
        # start of each (the voice note, or the opinion in the result, is the rest).
        body = clip(op.text, PAGE_OPINION_ROOM, c.t(lang, "delib.opinions.clipped")) if op.text \
            else c.t(lang, "delib.opinions.voice")
        lines.append(c.t(lang, "delib.opinions.line", n=mark, who=who, text=body, supports=op.supports))
        row = []
        if open_phase:
            row.append(Button(c.t(lang, "delib.button.support", n=mark),
                              DELIB_OPINION(OpinionAct.SUPPORT, op.id, page)))
        if op.kind == "voice":
            row.append(Button(c.t(lang, "delib.button.listen", n=mark), DELIB_OPINION(OpinionAct.VOICE, op.id, page)))
        if manage and rnd.status == "open":
            row.append(Button(c.t(lang, "delib.button.hide", n=mark), DELIB_OPINION(OpinionAct.HIDE, op.id, page)))
            if rnd.votes_until is not None and rnd.phase(now) == Phase.OPINIONS and op.text:
                row.append(Button(c.t(lang, "delib.button.to_option", n=mark),
                                  DELIB_OPINION(OpinionAct.TO_OPTION, op.id, page)))
        if row:
            rows.append(row)
    if not opinions:
        lines.append(c.t(lang, "delib.opinions.none"))
    nav = []
    if page > 0:
        nav.append(Button(c.t(lang, "delib.button.previous"), DELIB_VIEW(DelibView.PAGE, round_id, page - 1)))
    if (page + 1) * OPINION_PAGE < total:
        nav.append(Button(c.t(lang, "delib.button.next"), DELIB_VIEW(DelibView.PAGE, round_id, page + 1)))
    if nav:
        rows.append(nav)
    return "\n\n".join(lines), rows


async def show_opinions(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    lang = await lang_of(update, context)
    text, rows = await opinions_page(context.core, svc(context), lang, person(update), round_id, page)
    await say(update, context, text, rows)


async def turn_page(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    lang = await lang_of(update, context)
    text, rows = await opinions_page(context.core, svc(context), lang, person(update), round_id, page)
    await say(update, context, text, rows, edit=True)


@guarded
async def opinion_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = DELIB_OPINION.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    c, service, me = context.core, svc(context), person(update)
    round_id = (await service.round_of_opinion(me, data.opinion_id)).id
    lang = await lang_of(update, context)
    if data.action == OpinionAct.SUPPORT:
        added = await service.support(me, data.opinion_id)
        await answer_callback(update, context, "delib.supported" if added else "delib.supported_already")
        if added:  # the count on the page changed
            text, rows = await opinions_page(c, service, lang, me, round_id, data.page)
            await say(update, context, text, rows, edit=True)
    elif data.action == OpinionAct.VOICE:
        opinions, _ = await service.opinions(me, round_id, data.page)
        found = next((o for o in opinions if o.id == data.opinion_id and o.chat_id), None)
        if found is None or found.chat_id is None or found.message_id is None:
            raise NotFound("voice")
        await query.answer()
        assert update.effective_chat is not None
        await context.bot.copy_message(update.effective_chat.id, found.chat_id, found.message_id)
    elif data.action == OpinionAct.HIDE:
        await service.check_manage(me, round_id)
        await save(context, me, "reason", {"mode": "reason", "what": "hide", "round": round_id,
                                             "value": data.opinion_id})
        await say_key(update, context, "delib.ask.hide_reason")
    else:
        place = await service.add_option(me, round_id, opinion_id=data.opinion_id)
        await answer_callback(update, context, "delib.option_added", n=place + 1)


@guarded
async def start_opinion(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    await svc(context).check_can_give_opinion(person(update), round_id)
    await save(context, person(update), "text", {"mode": "opinion", "round": round_id})
    await say_key(update, context, "delib.ask.opinion")


async def opinion_message(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    """The opinion typed or spoken: kept in the flow until the person says signed or anonymous."""
    message = update.effective_message
    assert message is not None
    if message.voice is not None:
        data.update(kind="voice", text=message.caption or "", chat=message.chat_id, message=message.message_id)
    elif message.text:
        data.update(kind="text", text=message.text)
    else:
        await say_key(update, context, "delib.ask.opinion_text_or_voice")
        return
    await svc(context).check_can_give_opinion(person(update), int(data["round"]))
    await save(context, person(update), "anon", data)
    lang = await lang_of(update, context)
    c = context.core
    rows = [[Button(c.t(lang, "delib.button.signed"), DELIB_FLOW(DelibFlowAction.ANONYMOUS, 0)),
             Button(c.t(lang, "delib.button.anonymous"), DELIB_FLOW(DelibFlowAction.ANONYMOUS, 1))]]
    await say_key(update, context, "delib.ask.signed", rows)


async def finish_opinion(update: Update, context: BotContext, data: dict[str, Any], anonymous: bool) -> None:
    me = person(update)
    voice = (int(data["chat"]), int(data["message"])) if data.get("kind") == "voice" else None
    await svc(context).give_opinion(me, int(data["round"]), str(data.get("text", "")), anonymous=anonymous,
                                    voice=voice)
    await context.core.flows.clear(me)
    lang = await lang_of(update, context)
    c = context.core
    rows = [[Button(c.t(lang, "delib.button.opinions"), DELIB_VIEW(DelibView.OPINIONS, int(data["round"])))]]
    await say(update, context, c.t(lang, "delib.opinion_saved_anonymous" if anonymous else "delib.opinion_saved"),
              rows, edit=True)


# --- the ballot ------------------------------------------------------------------------------------

def chosen(mask: int, count: int) -> list[int]:
    return [i for i in range(count) if mask >> i & 1]


def toggled(mask: int, index: int, multiple: bool) -> int:
    """The ticks after tapping option `index`: in a single-choice ballot it replaces the others."""
    bit = 1 << index
    if multiple:
        return mask ^ bit
    return 0 if mask == bit else bit


async def ballot_screen(update: Update, context: BotContext, round_id: int, mask: int | None, for_person: int,
                        edit: bool) -> None:
    """The options with ☑/☐ and the button that casts; the person's current choice pre-selected
    in an open ballot; a secret ballot already cast cannot be changed."""
    c, service = context.core, svc(context)
    lang = await lang_of(update, context)
    ballot = await service.ballot(person(update), round_id, for_person or None)
    rnd = ballot.round
    if ballot.voted and rnd.secret:
        await say_key(update, context, "delib.ballot.secret_done")
        return
    if mask is None:
        mask = sum(1 << i for i in ballot.mine or [])
    rule = (c.t(lang, "delib.card.rule_multiple", n=min(rnd.max_choices, len(ballot.options))) if rnd.multiple
            else c.t(lang, "delib.card.rule_single"))
    lines = [c.t(lang, "delib.ballot.head", title=rnd.title, rule=rule,
                 secrecy=c.t(lang, "delib.card.secret" if rnd.secret else "delib.card.open_ballot"))]
    if for_person:
        lines.append(c.t(lang, "delib.ballot.for", name=await c.people.display_name(for_person)))
    if ballot.voted and ballot.mine is not None:
        mine = [ballot.options[i] for i in ballot.mine if i < len(ballot.options)]
        lines.append(c.t(lang, "delib.ballot.current", choice=c.formatter.join(lang, mine)))
    rows = [[Button(("☑ " if mask >> i & 1 else "☐ ") + label,
                    DELIB_BALLOT(BallotAction.TOGGLE, rnd.id, toggled(mask, i, rnd.multiple), for_person))]
            for i, label in enumerate(ballot.options)]
    rows.append([Button(c.t(lang, "delib.button.cast"), DELIB_BALLOT(BallotAction.CAST, rnd.id, mask, for_person))])
    await say(update, context, "\n".join(lines), rows, edit=edit)


async def show_ballot(update: Update, context: BotContext, round_id: int, page: int = 0) -> None:
    await ballot_screen(update, context, round_id, None, 0, edit=False)


@guarded
async def ballot_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = DELIB_BALLOT.parse(query.data)
    if data is None or data.mask < 0:
        raise ValueError(query.data)
    service = svc(context)
    if data.action == BallotAction.TOGGLE:
        ballot = await service.ballot(person(update), data.round_id, data.for_person or None)
        if data.mask >= 1 << len(ballot.options):
            raise Refused("delib.refused.bad_choice")
        limit = min(ballot.round.max_choices, len(ballot.options)) if ballot.round.multiple else 1
        if bin(data.mask).count("1") > limit:
            raise Refused("delib.refused.too_many_choices", n=limit)
        await query.answer()
        await ballot_screen(update, context, data.round_id, data.mask, data.for_person, edit=True)
        return
    await cast(update, context, data.round_id, data.mask, data.for_person)


async def cast(update: Update, context: BotContext, round_id: int, mask: int, for_person: int) -> None:
    c, service, me = context.core, svc(context), person(update)
    reason = None
    if for_person:
        await service.ballot(me, round_id, for_person)  # the rights first: a forged proxy ballot is "not allowed"
        state = await flow_data(context, me, "proxy")
        if state is None or state[1].get("round") != round_id or state[1].get("person") != for_person \
                or state[0] != "ballot":
            raise ValueError("no proxy in progress")
        reason = str(state[1]["reason"])
    options = await service.options(me, round_id)
    picked = chosen(mask, MAX_OPTIONS) if mask < 1 << MAX_OPTIONS else [MAX_OPTIONS]
    if not picked:
        await answer_callback(update, context, "delib.ballot.pick_first", alert=True)
        return
    first = await service.cast(me, round_id, picked, for_person=for_person or None, reason=reason)
    if for_person:
        await c.flows.clear(me)
    lang = await lang_of(update, context)
    labels = c.formatter.join(lang, [options[i] for i in picked if i < len(options)])
    key = "delib.ballot.cast" if first else "delib.ballot.changed"
    if for_person:
        key = "delib.ballot.proxy_cast"
    await answer_callback(update, context, key, choice=labels, name="")
    await say(update, context, c.t(lang, key, choice=labels,
                                   name=await c.people.display_name(for_person) if for_person else ""), edit=True)


# --- managing: reasons, choices, proxy ballots -------------------------------------------------------

REASON_PROMPTS = {"extend": "delib.ask.extend_reason", "close": "delib.ask.close_reason",
                  "cancel": "delib.ask.cancel_reason", "hide": "delib.ask.hide_reason",
                  "proxy": "delib.ask.proxy_reason"}


@guarded
async def manage_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = DELIB_MANAGE.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    service, me = svc(context), person(update)
    if data.action == DelibManage.PROXY:
        await proxy_list(update, context, data.round_id, "")
        return
    await service.check_manage(me, data.round_id)
    if data.action == DelibManage.OPTION:
        await save(context, me, "option", {"mode": "option", "round": data.round_id})
        await say_key(update, context, "delib.ask.option")
        return
    what = {DelibManage.EXTEND: "extend", DelibManage.CLOSE: "close", DelibManage.CANCEL: "cancel"}[data.action]
    if what == "extend" and data.value not in EXTEND_DAYS:
        raise ValueError(query.data)
    await save(context, me, "reason", {"mode": "reason", "what": what, "round": data.round_id, "value": data.value})
    await say_key(update, context, REASON_PROMPTS[what])


async def reason_message(update: Update, context: BotContext, data: dict[str, Any], reason: str) -> None:
    """A typed reason (or a preset one): extend, close early, cancel, hide, or a proxy ballot's."""
    c, service, me = context.core, svc(context), person(update)
    what, round_id, value = data["what"], int(data["round"]), int(data.get("value", 0))
    if what == "proxy":
        data.update(mode="proxy", reason=reason, person=value)
        await save(context, me, "ballot", data)
        await ballot_screen(update, context, round_id, None, value, edit=False)
        return
    if what == "extend":
        rnd = await service.extend(me, round_id, value, reason)
        key, values = "delib.done.extended", {"when": c.formatter.moment(await lang_of(update, context), rnd.deadline)}
    elif what == "close":
        await service.close_early(me, round_id, reason)
        key, values = "delib.done.closed", {}
    elif what == "cancel":
        await service.cancel(me, round_id, reason)
        key, values = "delib.done.cancelled", {}
    else:
        changed = await service.hide(me, value, reason)
        key, values = ("delib.done.hidden" if changed else "delib.done.hidden_already"), {}
    await c.flows.clear(me)
    await say_key(update, context, key, **values)


async def option_message(update: Update, context: BotContext, data: dict[str, Any], text: str) -> None:
    place = await svc(context).add_option(person(update), int(data["round"]), text)
    await context.core.flows.clear(person(update))
    await say_key(update, context, "delib.option_added", n=place + 1)


async def proxy_list(update: Update, context: BotContext, round_id: int, query: str) -> None:
    """Who the secretary may vote for (eligible, not voted yet); a name can be typed to find one."""
    c, service, me = context.core, svc(context), person(update)
    targets = await service.proxy_targets(me, round_id, query)
    lang = await lang_of(update, context)
    await save(context, me, "find", {"mode": "proxy_find", "round": round_id})
    rows = [[Button(t.name, DELIB_PROXY(round_id, t.person_id))] for t in targets[:MAX_PEOPLE_BUTTONS]]
    key = "delib.proxy.pick" if targets else "delib.proxy.nobody"
    await say(update, context, c.t(lang, key, n=len(targets)), rows)


@guarded
async def proxy_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = DELIB_PROXY.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    c, me = context.core, person(update)
    await svc(context).ballot(me, data.round_id, data.person_id)  # every check, before asking the reason
    lang = await lang_of(update, context)
    await save(context, me, "reason", {"mode": "reason", "what": "proxy", "round": data.round_id,
                                         "value": data.person_id})
    rows = [[Button(c.t(lang, key), DELIB_FLOW(DelibFlowAction.REASON, i))] for i, key in enumerate(PROXY_REASONS)]
    await say_key(update, context, "delib.ask.proxy_reason", rows, name=await c.people.display_name(data.person_id))


# --- opening a round -------------------------------------------------------------------------------

async def newdeliberation_command(update: Update, context: BotContext) -> None:
    """Start the opening flow: the org (when the person may open for more than one), else the topic."""
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    orgs = await svc(context).openable_orgs(me)
    if not orgs:
        await say_key(update, context, "delib.new.not_allowed")
        return
    if len(orgs) == 1:
        await org_chosen(update, context, {"mode": "open"}, orgs[0][0], orgs[0][2])
        return
    await save(context, me, "org", {"mode": "open"})
    rows = [[Button(name, DELIB_FLOW(DelibFlowAction.ORG, org_id))] for org_id, name, _ in orgs[:MAX_PEOPLE_BUTTONS]]
    rows.append([abort_button(c, lang)])
    await say_key(update, context, "delib.new.org", rows)


def abort_button(c: Core, lang: str) -> Button:
    return Button(c.t(lang, "delib.button.abort"), DELIB_FLOW(DelibFlowAction.ABORT))


async def org_chosen(update: Update, context: BotContext, data: dict[str, Any], org_id: int, below: bool) -> None:
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    await svc(context).check_open(me, org_id, False if not below else True)
    data.update(org=org_id, below=False)
    if below:
        await save(context, me, "scope", data)
        rows = [[Button(c.t(lang, "delib.new.scope_org"), DELIB_FLOW(DelibFlowAction.SCOPE, 0))],
                [Button(c.t(lang, "delib.new.scope_below"), DELIB_FLOW(DelibFlowAction.SCOPE, 1))]]
        await say_key(update, context, "delib.new.scope", rows)
        return
    await ask_title(update, context, data)


async def ask_title(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    await save(context, person(update), "title", data)
    await say_key(update, context, "delib.new.title")


def done_button(c: Core, lang: str, key: str) -> list[list[Button]]:
    return [[Button(c.t(lang, key), DELIB_FLOW(DelibFlowAction.DONE))]]


async def ask_audience(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c = context.core
    lang = await lang_of(update, context)
    await save(context, person(update), "audience", data)
    rows = [[Button(c.t(lang, AUDIENCE_KEYS[a]), DELIB_FLOW(DelibFlowAction.AUDIENCE, i))]
            for i, a in enumerate(AUDIENCES)]
    await say_key(update, context, "delib.new.audience", rows)


async def ask_days(update: Update, context: BotContext, data: dict[str, Any], step: str) -> None:
    c = context.core
    lang = await lang_of(update, context)
    await save(context, person(update), step, data)
    days = OPINION_DAYS if step == "opinions" else VOTE_DAYS
    rows = [[Button(c.t(lang, "delib.new.days", n=d), DELIB_FLOW(DelibFlowAction.DAYS, d)) for d in days]]
    await say_key(update, context, "delib.new.opinions" if step == "opinions" else "delib.new.votes", rows)


def deadline(c: Core, data: dict[str, Any], step: str, days: int | None, typed: str | None) -> datetime:
    """A phase's end: `days` after today (opinions) or after the opinion phase's day (votes), at
    20:00 local; or a typed date and time (20:00 when only a day is typed)."""
    tz = c.settings.tz
    base = datetime.fromisoformat(data["opinions_until"]).astimezone(tz) if step == "votes" \
        else c.clock.now().astimezone(tz)
    in_days = re.fullmatch(r"\s*(\d{1,2})\s*(?:天|天后|days?)\s*", typed or "")
    if typed is None or in_days is not None:
        day = base.date() + timedelta(days=int(in_days.group(1)) if in_days else days or 0)
        return datetime.combine(day, DEADLINE_HOUR, tzinfo=tz)
    when = parse_when(typed, c.clock.now().astimezone(tz).date())
    return datetime.combine(when.day or base.date(), when.start or DEADLINE_HOUR, tzinfo=tz)


async def deadline_chosen(update: Update, context: BotContext, data: dict[str, Any], step: str,
                          days: int | None, typed: str | None) -> None:
    c = context.core
    try:
        until = deadline(c, data, step, days, typed)
    except Unreadable:
        await say_key(update, context, "delib.new.unreadable_date")
        return
    lower = c.clock.now() if step == "opinions" else datetime.fromisoformat(data["opinions_until"])
    if until <= lower + timedelta(hours=1):
        await say_key(update, context, "delib.refused.bad_deadline" if step == "opinions"
                      else "delib.refused.bad_vote_deadline")
        return
    data[f"{step}_until"] = until.isoformat()
    if step == "votes":
        await save(context, person(update), "options", data)
        lang = await lang_of(update, context)
        await say_key(update, context, "delib.new.options", done_button(c, lang, "delib.button.options_done"))
        return
    lang = await lang_of(update, context)
    await save(context, person(update), "vote", data)
    rows = [[Button(c.t(lang, "delib.new.vote_yes"), DELIB_FLOW(DelibFlowAction.VOTE, 1))],
            [Button(c.t(lang, "delib.new.vote_no"), DELIB_FLOW(DelibFlowAction.VOTE, 0))]]
    await say_key(update, context, "delib.new.vote", rows)


async def ask_multiple(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c = context.core
    lang = await lang_of(update, context)
    await save(context, person(update), "multiple", data)
    rows = [[Button(c.t(lang, "delib.new.single"), DELIB_FLOW(DelibFlowAction.MULTIPLE, 0))]]
    rows += [[Button(c.t(lang, "delib.new.multiple_max", n=n), DELIB_FLOW(DelibFlowAction.MULTIPLE, n))]
             for n in MAX_CHOICE_BUTTONS]
    await say_key(update, context, "delib.new.multiple", rows)


async def ask_secret(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c = context.core
    lang = await lang_of(update, context)
    await save(context, person(update), "secret", data)
    rows = [[Button(c.t(lang, "delib.new.open_ballot"), DELIB_FLOW(DelibFlowAction.SECRET, 0))],
            [Button(c.t(lang, "delib.new.secret_ballot"), DELIB_FLOW(DelibFlowAction.SECRET, 1))]]
    await say_key(update, context, "delib.new.secret", rows)


async def ask_live(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c = context.core
    lang = await lang_of(update, context)
    await save(context, person(update), "live", data)
    rows = [[Button(c.t(lang, "delib.new.live_yes"), DELIB_FLOW(DelibFlowAction.LIVE, 1))],
            [Button(c.t(lang, "delib.new.live_no"), DELIB_FLOW(DelibFlowAction.LIVE, 0))]]
    await say_key(update, context, "delib.new.live", rows)


def spec_of(data: dict[str, Any]) -> RoundSpec:
    votes = data.get("votes_until") if data.get("vote") else None
    return RoundSpec(
        org_id=int(data["org"]), title=str(data["title"]), audience=AUDIENCES[int(data["audience"])],
        opinions_until=datetime.fromisoformat(data["opinions_until"]), background=str(data.get("background", "")),
        media=tuple((m[0], int(m[1]), int(m[2])) for m in data.get("media", [])), include_below=bool(data["below"]),
        votes_until=datetime.fromisoformat(votes) if votes else None, options=tuple(data.get("options", [])),
        multiple=int(data.get("max", 0)) > 0, max_choices=max(int(data.get("max", 0)), 1),
        secret=bool(data.get("secret")), live_results=bool(data.get("live")))


async def ask_confirm(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    """Everything chosen, in plain words, before anyone is told."""
    c = context.core
    lang = await lang_of(update, context)
    await save(context, person(update), "confirm", data)
    spec = spec_of(data)
    org = await c.orgs.get(spec.org_id)
    now = c.clock.now()
    lines = [c.t(lang, "delib.confirm.head"),
             c.t(lang, "delib.card.title", title=spec.title, org=org.name if org else ""),
             c.t(lang, "delib.confirm.audience", audience=c.t(lang, AUDIENCE_KEYS[spec.audience]),
                 scope=c.t(lang, "delib.confirm.below" if spec.include_below else "delib.confirm.only")),
             c.t(lang, "delib.card.opinions_until", when=c.formatter.moment(lang, spec.opinions_until, now))]
    if spec.background or spec.media:
        lines.append(c.t(lang, "delib.confirm.background", n=len(spec.media), text=spec.background or "—"))
    if spec.votes_until is not None:
        rule = (c.t(lang, "delib.card.rule_multiple", n=spec.max_choices) if spec.multiple
                else c.t(lang, "delib.card.rule_single"))
        lines.append(c.t(lang, "delib.card.votes_until", when=c.formatter.moment(lang, spec.votes_until, now),
                         rule=rule,
                         secrecy=c.t(lang, "delib.card.secret" if spec.secret else "delib.card.open_ballot")))
        lines.append(c.t(lang, "delib.confirm.options",
                         options=numbered(spec.options) or c.t(lang, "delib.confirm.no_options")))
        lines.append(c.t(lang, "delib.confirm.live" if spec.live_results and not spec.secret
                         else "delib.confirm.hidden"))
    size = await svc(context).audience_size(person(update), spec.org_id, spec.include_below, spec.audience)
    lines.append(c.t(lang, "delib.confirm.size", n=size))
    rows = [[Button(c.t(lang, "delib.button.confirm"), DELIB_FLOW(DelibFlowAction.CONFIRM))], [abort_button(c, lang)]]
    await say(update, context, "\n".join(lines), rows)


async def confirm(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c, me = context.core, person(update)
    rnd = await svc(context).open(me, spec_of(data))
    await c.flows.clear(me)
    lang = await lang_of(update, context)
    rows = [[Button(c.t(lang, "delib.button.open"), DELIB_VIEW(DelibView.CARD, rnd.id))]]
    await say(update, context, c.t(lang, "delib.done.opened", title=rnd.title), rows, edit=True)


Step = Callable[[Update, BotContext, dict[str, Any], int], Awaitable[None]]


async def _org(update: Update, context: BotContext, data: dict[str, Any], value: int) -> None:
    orgs = {org_id: below for org_id, _, below in await svc(context).openable_orgs(person(update))}
    if value not in orgs:
        raise NotAllowed("open")
    await org_chosen(update, context, data, value, orgs[value])


async def _scope(update: Update, context: BotContext, data: dict[str, Any], value: int) -> None:
    await svc(context).check_open(person(update), int(data["org"]), bool(value))
    data["below"] = bool(value)
    await ask_title(update, context, data)


async def _done(update: Update, context: BotContext, data: dict[str, Any], value: int) -> None:
    if data.get("step") == "options":
        await ask_multiple(update, context, data)
    else:
        await ask_audience(update, context, data)


async def _audience(update: Update, context: BotContext, data: dict[str, Any], value: int) -> None:
    if not 0 <= value < len(AUDIENCES):
        raise ValueError(value)
    data["audience"] = value
    await ask_days(update, context, data, "opinions")


async def _days(update: Update, context: BotContext, data: dict[str, Any], value: int) -> None:
    step = str(data["step"])
    if value not in (OPINION_DAYS if step == "opinions" else VOTE_DAYS):
        raise ValueError(value)
    await deadline_chosen(update, context, data, step, value, None)


async def _vote(update: Update, context: BotContext, data: dict[str, Any], value: int) -> None:
    data["vote"] = bool(value)
    if value:
        await ask_days(update, context, data, "votes")
    else:
        await ask_confirm(update, context, data)


async def _multiple(update: Update, context: BotContext, data: dict[str, Any], value: int) -> None:
    if value not in (0, *MAX_CHOICE_BUTTONS):
        raise ValueError(value)
    data["max"] = value
    await ask_secret(update, context, data)


async def _secret(update: Update, context: BotContext, data: dict[str, Any], value: int) -> None:
    data["secret"] = bool(value)
    if value:
        data["live"] = False
        await ask_confirm(update, context, data)
    else:
        await ask_live(update, context, data)


async def _live(update: Update, context: BotContext, data: dict[str, Any], value: int) -> None:
    data["live"] = bool(value)
    await ask_confirm(update, context, data)


async def _confirm(update: Update, context: BotContext, data: dict[str, Any], value: int) -> None:
    await confirm(update, context, data)


# Which button is valid at which step of the opening flow.
OPEN_BUTTONS: dict[tuple[str, DelibFlowAction], Step] = {
    ("org", DelibFlowAction.ORG): _org,
    ("scope", DelibFlowAction.SCOPE): _scope,
    ("background", DelibFlowAction.DONE): _done,
    ("options", DelibFlowAction.DONE): _done,
    ("audience", DelibFlowAction.AUDIENCE): _audience,
    ("opinions", DelibFlowAction.DAYS): _days,
    ("votes", DelibFlowAction.DAYS): _days,
    ("vote", DelibFlowAction.VOTE): _vote,
    ("multiple", DelibFlowAction.MULTIPLE): _multiple,
    ("secret", DelibFlowAction.SECRET): _secret,
    ("live", DelibFlowAction.LIVE): _live,
    ("confirm", DelibFlowAction.CONFIRM): _confirm,
}


@guarded
async def flow_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = DELIB_FLOW.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    me = person(update)
    if data.action == DelibFlowAction.NEW:
        await newdeliberation_command(update, context)
        return
    if data.action == DelibFlowAction.ABORT:
        await context.core.flows.clear(me)
        await say_key(update, context, "delib.new.aborted")
        return
    state = await flow_data(context, me)
    if state is None:
        raise ValueError("no flow")
    step, values = state
    values["step"] = step
    if data.action == DelibFlowAction.ANONYMOUS and values.get("mode") == "opinion" and step == "anon":
        await finish_opinion(update, context, values, bool(data.value))
        return
    if data.action == DelibFlowAction.REASON and values.get("what") == "proxy" and step == "reason":
        if not 0 <= data.value < len(PROXY_REASONS):
            raise ValueError(data.value)
        lang = await lang_of(update, context)
        await reason_message(update, context, values, context.core.t(lang, PROXY_REASONS[data.value]))
        return
    handler = OPEN_BUTTONS.get((step, data.action)) if values.get("mode") == "open" else None
    if handler is None:
        raise ValueError("not at this step")
    await handler(update, context, values, data.value)


def media_of(message: Message) -> tuple[str, int, int] | None:
    for kind in ("photo", "document"):
        if getattr(message, kind):
            return kind, message.chat_id, message.message_id
    return None


async def open_typed(update: Update, context: BotContext, step: str, data: dict[str, Any]) -> None:
    """A typed (or sent) answer in the opening flow."""
    c, me = context.core, person(update)
    message = update.effective_message
    assert message is not None
    text = (message.text or "").strip()
    lang = await lang_of(update, context)
    if step == "title" and len(text) > MAX_TITLE:
        await say_key(update, context, "delib.refused.too_long", limit=MAX_TITLE)
    elif step == "title" and text:
        data["title"] = text
        await save(context, me, "background", data)
        await say_key(update, context, "delib.new.background", done_button(c, lang, "delib.button.background_done"))
    elif step == "background" and (text or media_of(message)):
        item = media_of(message)
        if item is not None:
            if len(data.get("media", [])) >= MAX_MEDIA:
                await say_key(update, context, "delib.refused.too_many_media", limit=MAX_MEDIA)
                return
            data.setdefault("media", []).append(list(item))
            text = (message.caption or "").strip()
        background = (data.get("background", "") + "\n" + text).strip()
        if len(background) > MAX_BACKGROUND:
            await say_key(update, context, "delib.refused.too_long", limit=MAX_BACKGROUND)
            return
        data["background"] = background
        await save(context, me, "background", data)
        await say_key(update, context, "delib.new.background_more",
                      done_button(c, lang, "delib.button.background_done"))
    elif step in ("opinions", "votes") and text:
        await deadline_chosen(update, context, data, step, None, text)
    elif step == "options" and text:
        typed = [line.strip() for line in text.splitlines() if line.strip()]
        options = list(dict.fromkeys([*data.get("options", []), *typed]))
        if len(options) > MAX_OPTIONS:
            await say_key(update, context, "delib.refused.too_many_options", limit=MAX_OPTIONS)
            return
        data["options"] = options
        await save(context, me, "options", data)
        await say_key(update, context, "delib.new.options_more", done_button(c, lang, "delib.button.options_done"),
                      options=numbered(options))
    elif step == "multiple" and text.isdigit() and 1 <= int(text) <= MAX_OPTIONS:
        data["max"] = int(text) if int(text) > 1 else 0
        await ask_secret(update, context, data)
    else:
        await say_key(update, context, "delib.new.use_buttons" if step not in ("title", "background")
                      else "delib.new.text_please")


@guarded
async def flow_message(update: Update, context: BotContext) -> None:
    """The person's next message in a deliberation flow."""
    me = person(update)
    message = update.effective_message
    assert message is not None
    state = await flow_data(context, me)
    if state is None:
        await context.core.flows.clear(me)
        return
    step, data = state
    mode = data.get("mode")
    text = (message.text or "").strip()
    if mode == "open":
        await open_typed(update, context, step, data)
    elif mode == "opinion" and step == "text":
        await opinion_message(update, context, data)
    elif mode == "reason" and text:
        await reason_message(update, context, data, text)
    elif mode == "option" and text:
        await option_message(update, context, data, text)
    elif mode == "proxy_find" and text:
        await proxy_list(update, context, int(data["round"]), text)
    elif text or mode in ("reason", "option", "proxy_find"):
        key = "delib.new.use_buttons" if mode in ("opinion", "proxy") else "delib.new.text_please"
        await say_key(update, context, key)
    else:
        await say_key(update, context, "delib.new.use_buttons")


MEMBERS_AND_RESIDENTS = None  # everyone: the audience may be residents, members, or both

COMMANDS = [
    Command("deliberations", deliberations_command, audience=MEMBERS_AND_RESIDENTS, menu_key="menu.deliberations"),
    Command("newdeliberation", newdeliberation_command, audience=LEADERS),
]

BUTTONS = [
    (DELIB_FLOW, flow_button),
    (DELIB_VIEW, view_button),
    (DELIB_BALLOT, ballot_button),
    (DELIB_MANAGE, manage_button),
    (DELIB_OPINION, opinion_button),
    (DELIB_PROXY, proxy_button),
    (DELIB_LEDGER, ledger_button),
]

TYPED_KEYS = ("title", "background", "media", "options", "text", "kind", "reason")  # what the person gave


def holds_typing(state: FlowState) -> bool:
    """Whether 取消 would drop something the person typed or sent (so it asks first)."""
    return any(state.data.get(key) for key in TYPED_KEYS)


def register(app: Application) -> None:  # type: ignore[type-arg]
    for kind, callback in BUTTONS:
        app.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern))
    system.FLOW_HANDLERS[FLOW] = flow_message
    system.FLOW_LABELS[FLOW] = "delib.chooser"  # the chooser: a message could answer something else too
    system.FLOW_HOLDS[FLOW] = holds_typing

