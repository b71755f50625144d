"""The secretary's annual report and appraisal (书记双述双评) in chat.

  /appraisal   for organisers: open an appraisal (year → secretaries → window → confirm), follow
               its progress (how many rated, never who chose what), read the results, publish them;
               for secretaries: post or replace their report (述职), see their own result; for the
               members and residents: read a report and rate it (满意 / 基本满意 / 不满意), then
               optionally add a comment, which is stored without their name.

Typed steps (the year, the days, the report, the comment) go through the flow store (FLOW,
REPORT_FLOW, COMMENT_FLOW, registered in handlers/system.py FLOW_HANDLERS, with their words for a
chooser in FLOW_LABELS). The notice that asks a secretary for the report opens a question
(REPORT_QUESTION, answered by `answer_report_question`), so a report typed, spoken or sent right
after it is taken as the report. Every button's data is a kind from bot/callbacks.py;
the service checks every right again, so a forged, stale or late press changes nothing and is
answered in words."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import (
    SA_ACT,
    SA_FLOW,
    SA_RATE,
    SA_VIEW,
    SaAction,
    SaChoice,
    SaFlowAction,
    SaView,
)
from bot.context import BotContext
from bot.core import Core
from bot.limits import MAX_TEXT, clip
from bot.outbox import Button
from bot.services.appraisal import (
    COMMENT_FLOW,
    FLOW,
    MAX_DAYS,
    MAX_YEAR,
    MIN_DAYS,
    MIN_YEAR,
    RATING_KEYS,
    REPORT_FLOW,
    REPORT_QUESTION,
    AppraisalService,
    Rating,
    Target,
)
from bot.services.orgs import NotAllowed
from bot.services.prompts import Question
from handlers import system
from handlers.common import Command, answer_callback, guarded_by, lang_of, person, say, say_key

WINDOW_DAYS = (3, 7, 14)
MAX_PICK_BUTTONS = 90
MAX_TARGET_BUTTONS = 90
REPORT_ALONE = 3000        # characters of a report's words on its page
REPORT_WITH_RESULT = 300   # … when the result follows on the same page
CHOICES = {SaChoice.SATISFIED: Rating.SATISFIED, SaChoice.BASICALLY: Rating.BASICALLY,
           SaChoice.UNSATISFIED: Rating.UNSATISFIED}

Handler = Callable[..., Awaitable[None]]
FLOWS = {"open": FLOW, "report": REPORT_FLOW, "comment": COMMENT_FLOW}  # by the data's "mode"


def svc(context: BotContext) -> AppraisalService:
    return context.core.appraisal


guarded = guarded_by("appraisal.error.not_allowed")


async def flow_data(context: BotContext, me: int) -> dict[str, Any] | None:
    state = await context.core.flows.get(me)
    if state is None or state.flow not in FLOWS.values():
        return None
    return dict(state.data, step=state.step)


async def save(context: BotContext, me: int, step: str, data: dict[str, Any]) -> None:
    await context.core.flows.set(me, FLOWS[data["mode"]], step, {k: v for k, v in data.items() if k != "step"})


# --- /appraisal ------------------------------------------------------------------------------------

async def appraisal_command(update: Update, context: BotContext) -> None:
    """What the person leads, their own reports, and what they may rate."""
    c = context.core
    lang = await lang_of(update, context)
    view = await svc(context).overview(person(update))
    now = c.clock.now()
    rows: list[list[Button]] = []
    for a in view.led:
        state = c.t(lang, "appraisal.state.open" if a.status == "open" else "appraisal.state.closed")
        rows.append([Button(c.t(lang, "appraisal.list.led", year=a.year, state=state),
                            SA_VIEW(SaView.APPRAISAL, a.id))])
    for target in view.own:
        state = c.t(lang, "appraisal.state.open" if target.appraisal.is_open(now) else "appraisal.state.closed")
        rows.append([Button(c.t(lang, "appraisal.list.own", year=target.appraisal.year, state=state),
                            SA_VIEW(SaView.TARGET, target.id))])
    for target, rated in view.to_rate:
        key = "appraisal.list.rated" if rated else "appraisal.list.rate"
        rows.append([Button(c.t(lang, key, name=target.secretary_name, org=target.org_name),
                            SA_VIEW(SaView.TARGET, target.id))])
    if view.may_open:
        rows.append([Button(c.t(lang, "appraisal.button.new"), SA_FLOW(SaFlowAction.NEW))])
    key = "appraisal.list.head" if rows else "appraisal.list.none"
    await say_key(update, context, key, rows)


@guarded
async def view_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = SA_VIEW.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    views: dict[SaView, Callable[[Update, BotContext, int], Awaitable[None]]] = {
        SaView.APPRAISAL: show_appraisal, SaView.TARGET: show_target,
        SaView.PLAY: play_report}
    await views[data.view](update, context, data.id)


async def show_appraisal(update: Update, context: BotContext, appraisal_id: int) -> None:
    """For those who lead it: each secretary's report and how many rated (open), or results (closed)."""
    c, service = context.core, svc(context)
    lang = await lang_of(update, context)
    me = person(update)
    a = await service.appraisal(me, appraisal_id)
    now = c.clock.now()
    lines = [c.t(lang, "appraisal.card.head", year=a.year, when=c.formatter.moment(lang, a.closes_at, now),
                 state=c.t(lang, "appraisal.state.open" if a.status == "open" else "appraisal.state.closed"))]
    targets: list[Target] = []
    extra: list[list[Button]] = []
    if a.status == "closed":
        for result in await service.results(me, a.id):
            lines.append(service.result_text(lang, result, comments=False))
            targets.append(result.target)
        if a.published_at is None:
            extra.append([Button(c.t(lang, "appraisal.button.publish"), SA_ACT(SaAction.PUBLISH, a.id))])
        else:
            lines.append(c.t(lang, "appraisal.card.published"))
    else:
        for p in await service.progress(me, a.id):
            key = "appraisal.card.progress" if p.target.report_kind else "appraisal.card.no_report"
            lines.append(c.t(lang, key, name=p.target.secretary_name, org=p.target.org_name, rated=p.rated,
                             eligible=p.eligible))
            targets.append(p.target)
    # Many secretaries: the text is clipped and the buttons capped; each one's page is a tap away.
    rows = [[Button(c.t(lang, "appraisal.button.details", name=t.secretary_name), SA_VIEW(SaView.TARGET, t.id))]
            for t in targets[:MAX_TARGET_BUTTONS]] + extra
    await say(update, context, clip("\n\n".join(lines), MAX_TEXT, c.t(lang, "appraisal.clipped")), rows)


def report_text(c: Core, service: AppraisalService, lang: str, target: Target, room: int) -> str:
    a = target.appraisal
    head = c.t(lang, "appraisal.report.head", year=a.year, name=target.secretary_name, org=target.org_name,
               when=c.formatter.moment(lang, a.closes_at, c.clock.now()))
    if target.report_kind is None:
        return head + "\n" + c.t(lang, "appraisal.report.none")
    return head + "\n" + service.report_excerpt(lang, target, room=room)


async def show_target(update: Update, context: BotContext, target_id: int) -> None:
    """One secretary's report, with what this person may do with it."""
    c, service = context.core, svc(context)
    lang = await lang_of(update, context)
    me = person(update)
    target = await service.target(me, target_id)
    closed = target.appraisal.status == "closed"
    # With a result below it, the report is only its beginning (the result must fit beside it).
    text = report_text(c, service, lang, target, REPORT_WITH_RESULT if closed else REPORT_ALONE)
    rows: list[list[Button]] = []
    if target.report_kind in ("voice", "document"):
        key = "appraisal.button.play_voice" if target.report_kind == "voice" else "appraisal.button.play_document"
        rows.append([Button(c.t(lang, key), SA_VIEW(SaView.PLAY, target.id))])
    if me == target.secretary_id:
        if closed:
            text += "\n\n" + service.result_text(lang, await service.own_result(me, target.id), comments=True)
        elif target.appraisal.is_open(c.clock.now()):
            key = "appraisal.button.replace_report" if target.report_kind else "appraisal.button.post_report"
            rows.append([Button(c.t(lang, key), SA_ACT(SaAction.REPORT, target.id))])
    elif closed and await leads(service, me, target):
        result = next(r for r in await service.results(me, target.appraisal.id) if r.target.id == target.id)
        text += "\n\n" + service.result_text(lang, result, comments=True, head=False)
    else:
        may, rated = await service.rating_state(me, target.id)
        if may:
            text += "\n\n" + c.t(lang, "appraisal.report.ask")
            rows += [[Button(c.t(lang, RATING_KEYS[rating]), SA_RATE(target.id, choice))]
                     for choice, rating in CHOICES.items()]
        elif rated:
            text += "\n\n" + c.t(lang, "appraisal.report.rated")
        elif closed or not target.appraisal.is_open(c.clock.now()):
            text += "\n\n" + c.t(lang, "appraisal.report.over")
    await say(update, context, clip(text, MAX_TEXT, c.t(lang, "appraisal.clipped_result")), rows)


async def leads(service: AppraisalService, me: int, target: Target) -> bool:
    try:
        await service.appraisal(me, target.appraisal.id)
    except NotAllowed:
        return False
    return True


async def play_report(update: Update, context: BotContext, target_id: int) -> None:
    target = await svc(context).target(person(update), target_id)
    if target.report_chat_id is None or target.report_message_id is None:
        raise ValueError("no voice note or document")
    await answer_callback(update, context, "appraisal.playing")
    assert update.effective_chat is not None
    await context.bot.copy_message(update.effective_chat.id, target.report_chat_id, target.report_message_id)


# --- rating and commenting -------------------------------------------------------------------------

@guarded
async def rate_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = SA_RATE.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    c = context.core
    lang = await lang_of(update, context)
    await svc(context).rate(person(update), data.target_id, CHOICES[data.choice])
    # The choice is said only here, in the rater's own chat: nothing stored repeats it.
    rows = [[Button(c.t(lang, "appraisal.button.no_comment"), SA_ACT(SaAction.NO_COMMENT, data.target_id))]]
    await say(update, context, c.t(lang, "appraisal.rated", choice=c.t(lang, RATING_KEYS[CHOICES[data.choice]])),
              rows, edit=True)


@guarded
async def act_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = SA_ACT.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    me = person(update)
    if data.action == SaAction.REPORT:
        await svc(context).check_report(me, data.id)
        await save(context, me, "report", {"mode": "report", "target": data.id})
        await say_key(update, context, "appraisal.ask.report")
    elif data.action == SaAction.PUBLISH:
        done = await svc(context).publish(me, data.id)
        await answer_callback(update, context, "appraisal.published_done" if done else "appraisal.published_already",
                              alert=True)
    else:
        await svc(context).skip_comment(me)
        await say_key(update, context, "appraisal.thanks", edit=True)


async def report_message(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    """The report typed, spoken or sent as a file."""
    message = update.effective_message
    assert message is not None
    me = person(update)
    if message.voice is not None:
        kind, text, where = "voice", message.caption or "", (message.chat_id, message.message_id)
    elif message.document is not None:
        kind, text, where = "document", message.caption or "", (message.chat_id, message.message_id)
    elif message.text:
        kind, text, where = "text", message.text, None
    else:
        await say_key(update, context, "appraisal.ask.report_kind")
        return
    first = await svc(context).post_report(me, int(data["target"]), kind, text, where)
    state = await context.core.flows.get(me)
    if state is not None and state.flow == REPORT_FLOW:  # another flow (a draft, say) is left alone
        await context.core.flows.clear(me)
    await say_key(update, context, "appraisal.report_posted" if first else "appraisal.report_replaced")


@guarded
async def flow_message(update: Update, context: BotContext) -> None:
    """The person's next message in an appraisal flow."""
    me = person(update)
    message = update.effective_message
    assert message is not None
    data = await flow_data(context, me)
    if data is None:
        return
    mode, text = data.get("mode"), (message.text or "").strip()
    if mode == "comment" and await svc(context).comment_slot(me) is None:
        await system.private_message(update, context)  # the slot has passed: an ordinary message
        return
    if mode == "report":
        await report_message(update, context, data)
    elif mode == "comment" and message.text is not None:  # blank words are refused, the slot stays open
        await svc(context).comment(me, int(data["target"]), message.text)
        await say_key(update, context, "appraisal.comment_saved")
    elif mode == "comment":
        await say_key(update, context, "appraisal.ask.comment_text")
    elif mode == "open":
        await open_typed(update, context, data, text)


@guarded
async def answer_report_question(update: Update, context: BotContext, question: Question) -> None:
    """What the secretary sent after the notice that asks for the report (an open question): the
    report, as if sent after 交述职报告; the service checks the right again."""
    await report_message(update, context, {"target": question.subject_id})


# --- opening ---------------------------------------------------------------------------------------

async def open_typed(update: Update, context: BotContext, data: dict[str, Any], text: str) -> None:
    """A typed year or number of days, where the step asks for one; the step stays open otherwise."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if data["step"] == "year" and len(digits) == 4 and MIN_YEAR <= int(digits) <= MAX_YEAR:
        await ask_pick(update, context, dict(data, year=int(digits)))
    elif data["step"] == "year":
        await say_key(update, context, "appraisal.refused.bad_year")
    elif data["step"] == "days" and digits and len(digits) <= 2:
        await ask_confirm(update, context, dict(data, days=int(digits)))
    elif data["step"] == "days":
        await say_key(update, context, "appraisal.refused.bad_days", low=MIN_DAYS, high=MAX_DAYS)
    else:  # picking the secretaries, confirming: buttons only
        await say_key(update, context, "appraisal.new.use_buttons")


async def start_open(update: Update, context: BotContext) -> None:
    c, me = context.core, person(update)
    if not await svc(context).candidates(me):
        raise NotAllowed("open")
    lang = await lang_of(update, context)
    year = c.clock.now().astimezone(c.settings.tz).year
    await save(context, me, "year", {"mode": "open"})
    rows = [[Button(c.t(lang, "appraisal.new.year", year=y), SA_FLOW(SaFlowAction.YEAR, y)) for y in (year - 1, year)],
            [abort_button(c, lang)]]
    await say_key(update, context, "appraisal.new.ask_year", rows)


def abort_button(c: Core, lang: str) -> Button:
    return Button(c.t(lang, "appraisal.button.abort"), SA_FLOW(SaFlowAction.ABORT))


async def ask_pick(update: Update, context: BotContext, data: dict[str, Any], edit: bool = False) -> None:
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    candidates = await svc(context).candidates(me)
    picked = {tuple(p) for p in data.get("picked", [])}
    await save(context, me, "pick", data)
    rows = [[Button(("☑ " if (x.org_id, x.person_id) in picked else "☐ ")
                    + c.t(lang, "appraisal.new.candidate", name=x.name, org=x.org_name),
                    SA_FLOW(SaFlowAction.PICK, i))] for i, x in enumerate(candidates[:MAX_PICK_BUTTONS])]
    rows.append([Button(c.t(lang, "appraisal.button.all", n=len(candidates)), SA_FLOW(SaFlowAction.ALL)),
                 Button(c.t(lang, "appraisal.button.picked"), SA_FLOW(SaFlowAction.PICKED))])
    rows.append([abort_button(c, lang)])
    await say_key(update, context, "appraisal.new.ask_pick", rows, edit=edit, year=data["year"], n=len(picked))


async def ask_days(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c = context.core
    lang = await lang_of(update, context)
    await save(context, person(update), "days", data)
    rows = [[Button(c.t(lang, "appraisal.new.days", n=d), SA_FLOW(SaFlowAction.DAYS, d)) for d in WINDOW_DAYS],
            [abort_button(c, lang)]]
    await say_key(update, context, "appraisal.new.ask_days", rows, low=MIN_DAYS, high=MAX_DAYS)


async def ask_confirm(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c, me = context.core, person(update)
    if not MIN_DAYS <= int(data["days"]) <= MAX_DAYS:
        await say_key(update, context, "appraisal.refused.bad_days", low=MIN_DAYS, high=MAX_DAYS)
        return
    lang = await lang_of(update, context)
    picked = {tuple(p) for p in data.get("picked", [])}
    names = [c.t(lang, "appraisal.new.candidate", name=x.name, org=x.org_name)
             for x in await svc(context).candidates(me) if (x.org_id, x.person_id) in picked]
    await save(context, me, "confirm", data)
    rows = [[Button(c.t(lang, "appraisal.button.confirm"), SA_FLOW(SaFlowAction.CONFIRM))], [abort_button(c, lang)]]
    await say_key(update, context, "appraisal.new.confirm", rows, year=data["year"], days=data["days"],
                  names="\n".join(f"· {n}" for n in names))


async def flow_step(update: Update, context: BotContext, data: dict[str, Any], action: SaFlowAction,
                    value: int) -> None:
    """A button of the opening flow, at its step."""
    me = person(update)
    step = data["step"]
    candidates = await svc(context).candidates(me) if step == "pick" else []
    picked = [list(p) for p in data.get("picked", [])]
    if action == SaFlowAction.YEAR and step == "year":
        await ask_pick(update, context, dict(data, year=value))
    elif action == SaFlowAction.PICK and step == "pick" and 0 <= value < len(candidates):
        pair = [candidates[value].org_id, candidates[value].person_id]
        picked = [p for p in picked if p != pair] if pair in picked else [*picked, pair]
        await ask_pick(update, context, dict(data, picked=picked), edit=True)
    elif action == SaFlowAction.ALL and step == "pick":
        await ask_pick(update, context, dict(data, picked=[[x.org_id, x.person_id] for x in candidates]), edit=True)
    elif action == SaFlowAction.PICKED and step == "pick":
        if not picked:
            await answer_callback(update, context, "appraisal.refused.none_picked", alert=True)
            return
        await ask_days(update, context, data)
    elif action == SaFlowAction.DAYS and step == "days":
        await ask_confirm(update, context, dict(data, days=value))
    elif action == SaFlowAction.CONFIRM and step == "confirm":
        appraisal = await svc(context).open(me, int(data["year"]), [(int(o), int(p)) for o, p in picked],
                                            int(data["days"]))
        await context.core.flows.clear(me)
        lang = await lang_of(update, context)
        c = context.core
        await say_key(update, context, "appraisal.new.opened", n=len(picked), edit=True,
                      when=c.formatter.moment(lang, appraisal.closes_at, c.clock.now()))
    else:
        raise ValueError(f"{action} at {step}")


@guarded
async def flow_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    parsed = SA_FLOW.parse(query.data)
    if parsed is None:
        raise ValueError(query.data)
    me = person(update)
    if parsed.action == SaFlowAction.NEW:
        await start_open(update, context)
        return
    data = await flow_data(context, me)
    if data is None or data.get("mode") != "open":
        raise ValueError("no opening flow")
    if parsed.action == SaFlowAction.ABORT:
        await context.core.flows.clear(me)
        await say_key(update, context, "appraisal.new.aborted", edit=True)
        return
    await flow_step(update, context, data, parsed.action, parsed.value)


COMMANDS = [
    # Everyone: organisers open and follow, secretaries report, members and residents rate.
    Command("appraisal", appraisal_command, audience=None),
]

BUTTONS = [
    (SA_FLOW, flow_button),
    (SA_VIEW, view_button),
    (SA_RATE, rate_button),
    (SA_ACT, act_button),
]


def register(app: Application) -> None:  # type: ignore[type-arg]
    for kind, callback in BUTTONS:
        app.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern))
    for flow in FLOWS.values():
        system.FLOW_HANDLERS[flow] = flow_message
    system.FLOW_LABELS.update({FLOW: "appraisal.flow.open", REPORT_FLOW: "appraisal.flow.report",
                               COMMENT_FLOW: "appraisal.flow.comment"})
    # 交述职报告 pressed: the flow is the place for the report, so the notice's question is not offered too.
    system.FLOW_COVERS[REPORT_FLOW] = lambda state: (REPORT_QUESTION, int(state.data["target"]))
    system.ANSWERS[REPORT_QUESTION] = answer_report_question
