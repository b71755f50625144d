"""四议两公开 in chat.

  /matters   the org's board: each matter and where it stands; for the secretary the next stage's
             button only (or 决议公开 / 实施结果公开 when due), a new matter, the reminder limit and
             the Excel record; members and residents see the published matters.

Flows (state in the flow store, typed steps through handlers/system.py FLOW_HANDLERS):
  open      title → description (or skip) → estimate (or skip) → opened
  stage     day (today, or typed) → meeting (the org's fitting ones, or none) → vote (none, a closed
            deliberation round, or paper counts typed) → outcome → note (the reason when rejected)
            → confirm
  decision  the decision's text → confirm → published to the wall chat and the residents
  result    the result's text → photos (or none) → confirm → published
  limit     the days a matter may wait on a step, typed
Every right is checked again by bot/services/matters.py: a forged or stale press changes nothing."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from telegram import InputFile, Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import (
    MATTER,
    MATTER_FLOW,
    MATTER_ORG,
    MatterAct,
    MatterOrgAct,
    MatterStep,
)
from bot.context import BotContext
from bot.limits import MAX_TEXT, clip
from bot.outbox import Button
from bot.services.flows import FlowState
from bot.services.matters import (
    MAX_DESCRIPTION,
    MAX_ESTIMATE,
    MAX_NOTE,
    MAX_PHOTOS,
    MAX_TITLE,
    OUTCOME_KEYS,
    STAGE_KEYS,
    Matter,
    MatterService,
    Outcome,
    StageEntry,
    Status,
    Vote,
    VoteKind,
)
from bot.services.meeting_time import Unreadable, parse_when
from bot.services.orgs import NotAllowed
from handlers import system
from handlers.common import Command, guarded_by, lang_of, person, say, say_key

FLOW = "matters"
TEXT_KEYS = {"decision": "matter.flow.decision_text", "result": "matter.flow.result_text"}
CONFIRM_KEYS = {"decision": "matter.flow.decision_confirm", "result": "matter.flow.result_confirm"}
PUBLISHED_KEYS = {"decision": "matter.flow.decision_published", "result": "matter.flow.result_published"}
LIMIT_CHOICES = (15, 30, 60)
MAX_BOARD_BUTTONS = 20
BOARD_TITLE = 30  # a board line's title and estimate (thirty lines fit in one message)
NUMBERS = re.compile(r"-?\d+")  # a minus is kept, so that the service refuses it
# "反对3 赞成41 弃权2" in any order; "不同意" before "同意", which it contains.
LABELLED = re.compile(r"(不同意|反对|against|no|赞成|同意|for|yes|弃权|abstain\w*)\s*[:：]?\s*(-?\d+)", re.IGNORECASE)
LABELS = {"不同意": 1, "反对": 1, "against": 1, "no": 1, "赞成": 0, "同意": 0, "for": 0, "yes": 0, "弃权": 2}


def read_counts(text: str) -> list[int] | None:
    """(for, against, abstaining) from labelled counts in any order, else three numbers in that order."""
    labelled: dict[int, int] = {}
    for label, number in LABELLED.findall(text):
        labelled[LABELS.get(label.lower(), 2)] = int(number)
    if len(labelled) == 3:
        return [labelled[0], labelled[1], labelled[2]]
    numbers = [int(n) for n in NUMBERS.findall(text)]
    return numbers if len(numbers) == 3 else None


DAYS = re.compile(r"(\d+)\s*(?:天|days?)?", re.IGNORECASE)  # "45", or "45天" as the buttons say it
PAST_WORDS = {"昨天": 1, "昨日": 1, "yesterday": 1, "前天": 2, "大前天": 3}
AHEAD_WORDS = re.compile(r"今|明|后天|tomorrow|today|下")  # said of a day ahead on purpose: not turned back
HAS_YEAR = re.compile(r"\d{4}|[零〇○一二两三四五六七八九]{4}|年")
HAS_MONTH = re.compile(r"月|\d\s*[-/.]\s*\d")
WEEKDAY = re.compile(r"周|星期|礼拜")


def stage_day(text: str, today: date) -> date | None:
    """A stage's day as typed, or None. The meeting parser looks ahead (a meeting lies in the
    future); a stage lies behind: 昨天/前天 are read too, and a date without a year that the parser
    put ahead (10月15日 typed in January, 5号 typed on the 27th, 周一) is the last one before today."""
    word = text.strip().lower()
    if word in PAST_WORDS:
        return today - timedelta(days=PAST_WORDS[word])
    try:
        day = parse_when(text, today).day
    except Unreadable:
        return None
    if day is None or day <= today or HAS_YEAR.search(text) or AHEAD_WORDS.search(word):
        return day
    try:
        if WEEKDAY.search(text):
            return day - timedelta(days=7)
        if HAS_MONTH.search(text):
            return day.replace(year=day.year - 1)
        year, month = (day.year - 1, 12) if day.month == 1 else (day.year, day.month - 1)
        return day.replace(year=year, month=month)
    except ValueError:  # 29 February, or the 31st of a shorter month: left ahead, refused below
        return day


Handler = Callable[..., Awaitable[None]]


def svc(context: BotContext) -> MatterService:
    return context.core.matters


guarded = guarded_by("matter.error.not_allowed", "matter.error.gone")


async def flow_state(context: BotContext, me: int) -> tuple[str, dict[str, Any]] | None:
    state = await context.core.flows.get(me)
    if state is None or state.flow != FLOW:
        return None
    return state.step, state.data


async def save(context: BotContext, me: int, step: str, data: dict[str, Any]) -> None:
    await context.core.flows.set(me, FLOW, step, data)


def flow_button(c: Any, lang: str, key: str, action: MatterStep, value: int = 0) -> Button:
    return Button(c.t(lang, key), MATTER_FLOW(action, value))


def abort_row(c: Any, lang: str) -> list[Button]:
    return [flow_button(c, lang, "matter.button.abort", MatterStep.ABORT)]


# --- the board ------------------------------------------------------------------------------------

async def matters_command(update: Update, context: BotContext) -> None:
    c = context.core
    lang = await lang_of(update, context)
    boards = await svc(context).boards(person(update))
    if not boards:
        await say_key(update, context, "matter.board.none")
    elif len(boards) == 1:
        await show_board(update, context, boards[0][0])
    else:
        rows = [[Button(name, MATTER_ORG(MatterOrgAct.BOARD, org_id))] for org_id, name in boards[:MAX_BOARD_BUTTONS]]
        await say(update, context, c.t(lang, "matter.board.pick"), rows)


def matter_buttons(c: Any, lang: str, matter: Matter, manage: bool, n: int | None = None) -> list[Button]:
    """The one next step the secretary may take on this matter (plus its record on the board)."""
    prefix = f"{n}. " if n is not None else ""
    row: list[Button] = []
    if manage and matter.next_stage is not None:
        stage = c.t(lang, STAGE_KEYS[matter.next_stage])
        row.append(Button(prefix + c.t(lang, "matter.button.stage", stage=stage),
                          MATTER(MatterAct.STAGE, matter.id, matter.next_stage)))
    elif manage and matter.status == Status.DECIDED:
        row.append(Button(prefix + c.t(lang, "matter.button.decision"), MATTER(MatterAct.DECISION, matter.id)))
    elif manage and matter.status == Status.PUBLISHED:
        row.append(Button(prefix + c.t(lang, "matter.button.result"), MATTER(MatterAct.RESULT, matter.id)))
    if n is not None:
        row.append(Button(c.t(lang, "matter.button.view", n=n), MATTER(MatterAct.VIEW, matter.id)))
    return row


async def show_board(update: Update, context: BotContext, org_id: int, edit: bool = False) -> None:
    c, service, me = context.core, svc(context), person(update)
    lang = await lang_of(update, context)
    matters = await service.board(me, org_id)
    manage = await service.may_manage(me, org_id)
    org = await c.orgs.get(org_id)
    lines = [c.t(lang, "matter.board.head", org=org.name if org else "")]
    rows: list[list[Button]] = []
    for n, matter in enumerate(matters, start=1):
        title = clip(matter.title, BOARD_TITLE) + (c.t(lang, "matter.board.estimate", estimate=clip(
            matter.estimate, BOARD_TITLE)) if matter.estimate else "")
        lines.append(c.t(lang, "matter.board.line", n=n, title=title, status=service.status_text(lang, matter)))
        if n <= MAX_BOARD_BUTTONS:
            rows.append(matter_buttons(c, lang, matter, manage, n))
    if not matters:
        lines.append(c.t(lang, "matter.board.empty"))
    if manage:
        rows.append([Button(c.t(lang, "matter.button.new"), MATTER_ORG(MatterOrgAct.NEW, org_id))])
    try:
        days = await service.stall_days(me, org_id)
    except NotAllowed:
        days = None  # members and residents: no limit, no export
    if days is not None:
        rows.append([Button(c.t(lang, "matter.button.limit", days=days), MATTER_ORG(MatterOrgAct.LIMIT, org_id)),
                     Button(c.t(lang, "matter.button.export"), MATTER_ORG(MatterOrgAct.EXPORT, org_id))])
    await say(update, context, clip("\n".join(lines), MAX_TEXT), rows, edit=edit)


async def show_matter(update: Update, context: BotContext, matter_id: int) -> None:
    c, service, me = context.core, svc(context), person(update)
    lang = await lang_of(update, context)
    matter = await service.get(me, matter_id)
    manage = await service.may_manage(me, matter.org_id)
    rows = [row for row in [matter_buttons(c, lang, matter, manage)] if row]
    rows.append([Button(c.t(lang, "matter.button.board"), MATTER_ORG(MatterOrgAct.BOARD, matter.org_id))])
    await say(update, context, clip(await service.card(lang, matter), MAX_TEXT), rows)


@guarded
async def org_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = MATTER_ORG.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    me = person(update)
    if data.action == MatterOrgAct.BOARD:
        await show_board(update, context, data.org_id)
    elif data.action == MatterOrgAct.NEW:
        await svc(context).check_open(me, data.org_id)
        lang = await lang_of(update, context)
        await save(context, me, "title", {"mode": "open", "org": data.org_id})
        await say_key(update, context, "matter.flow.title", [abort_row(context.core, lang)], limit=MAX_TITLE)
    elif data.action == MatterOrgAct.EXPORT:
        await export(update, context, data.org_id)
    elif data.value:
        days = await svc(context).set_stall_days(me, data.org_id, data.value)
        await context.core.flows.clear(me)
        await say_key(update, context, "matter.limit.set", days=days)
    else:
        await ask_limit(update, context, data.org_id)


async def ask_limit(update: Update, context: BotContext, org_id: int) -> None:
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    days = await svc(context).stall_days(me, org_id)
    rows = [[Button(c.t(lang, "matter.limit.days", days=n), MATTER_ORG(MatterOrgAct.LIMIT, org_id, n))
             for n in LIMIT_CHOICES], abort_row(c, lang)]
    await save(context, me, "days", {"mode": "limit", "org": org_id})
    await say_key(update, context, "matter.limit.ask", rows, days=days)


async def export(update: Update, context: BotContext, org_id: int) -> None:
    c = context.core
    lang = await lang_of(update, context)
    filename, content = await svc(context).export(person(update), org_id, lang)
    org = await c.orgs.get(org_id)
    await say(update, context, c.t(lang, "matter.export.making"))
    assert update.effective_chat is not None
    await context.bot.send_document(update.effective_chat.id, InputFile(content, filename=filename),
                                    caption=c.t(lang, "matter.export.caption", org=org.name if org else ""))


@guarded
async def matter_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = MATTER.parse(query.data)
    if data is None:
        raise ValueError(query.data)
    c, me, service = context.core, person(update), svc(context)
    lang = await lang_of(update, context)
    if data.action == MatterAct.VIEW:
        await show_matter(update, context, data.matter_id)
    elif data.action == MatterAct.STAGE:
        matter = await service.check_stage(me, data.matter_id, data.stage)
        await save(context, me, "day", {"mode": "stage", "matter": matter.id, "stage": data.stage})
        await say_key(update, context, "matter.flow.day",
                      [[flow_button(c, lang, "matter.button.today", MatterStep.TODAY)], abort_row(c, lang)],
                      title=matter.title, stage=c.t(lang, STAGE_KEYS[data.stage]))
    else:
        what = "decision" if data.action == MatterAct.DECISION else "result"
        matter = await service.check_publish(me, data.matter_id, what)
        await save(context, me, "text", {"mode": what, "matter": matter.id})
        await say_key(update, context, TEXT_KEYS[what], [abort_row(c, lang)], title=matter.title)


# --- recording a stage ----------------------------------------------------------------------------

async def ask_meeting(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    meetings = await svc(context).fitting_meetings(me, data["matter"], data["stage"], lang)
    rows = [[Button(m.label, MATTER_FLOW(MatterStep.MEETING, m.id))] for m in meetings]
    rows.append([flow_button(c, lang, "matter.button.no_meeting", MatterStep.MEETING, 0)])
    rows.append(abort_row(c, lang))
    await save(context, me, "meeting", data)
    await say_key(update, context, "matter.flow.meeting" if meetings else "matter.flow.no_meetings", rows)


async def ask_vote(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c = context.core
    lang = await lang_of(update, context)
    rows = [[flow_button(c, lang, "matter.button.vote_none", MatterStep.VOTE, 0)],
            [flow_button(c, lang, "matter.button.vote_round", MatterStep.VOTE, 1)],
            [flow_button(c, lang, "matter.button.vote_paper", MatterStep.VOTE, 2)], abort_row(c, lang)]
    await save(context, person(update), "vote", data)
    await say_key(update, context, "matter.flow.vote", rows)


async def ask_round(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    rounds = await svc(context).closed_rounds(me, data["matter"])
    if not rounds:
        await say_key(update, context, "matter.flow.no_rounds")
        await ask_vote(update, context, data)
        return
    rows = [[Button(r.title, MATTER_FLOW(MatterStep.ROUND, r.id))] for r in rounds]
    rows.append(abort_row(c, lang))
    await save(context, me, "round", data)
    await say_key(update, context, "matter.flow.round", rows)


async def vote_chosen(update: Update, context: BotContext, data: dict[str, Any], vote: Vote) -> None:
    """Checked at once (a round of another org, counts beyond those present), then the outcome."""
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    vote = await svc(context).check_vote(me, data["matter"], data["stage"], data.get("meeting") or None, vote)
    data["vote"] = [vote.kind.value, vote.round_id, vote.yes, vote.no, vote.abstain]
    rows = [[flow_button(c, lang, "matter.button.passed", MatterStep.OUTCOME, 1),
             flow_button(c, lang, "matter.button.rejected", MatterStep.OUTCOME, 0)], abort_row(c, lang)]
    await save(context, me, "outcome", data)
    await say_key(update, context, "matter.flow.outcome", rows)


async def ask_note(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c = context.core
    lang = await lang_of(update, context)
    await save(context, person(update), "note", data)
    if data["outcome"] == Outcome.PASSED:
        await say_key(update, context, "matter.flow.note",
                      [[flow_button(c, lang, "matter.button.skip_note", MatterStep.SKIP)], abort_row(c, lang)],
                      limit=MAX_NOTE)
    else:
        await say_key(update, context, "matter.flow.reason", [abort_row(c, lang)], limit=MAX_NOTE)


def entry_of(data: dict[str, Any]) -> StageEntry:
    kind, round_id, yes, no, abstain = data.get("vote") or ["none", None, None, None, None]
    return StageEntry(held_on=date.fromisoformat(data["day"]), outcome=Outcome(data["outcome"]),
                      meeting_id=data.get("meeting") or None, note=data.get("note", ""),
                      vote=Vote(VoteKind(kind), round_id, yes, no, abstain))


async def ask_confirm(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c, me, service = context.core, person(update), svc(context)
    lang = await lang_of(update, context)
    entry = entry_of(data)
    matter = await service.get(me, data["matter"])
    vote = await service.vote_text(lang, entry.vote, None) or c.t(lang, "matter.vote.none")
    text = c.t(lang, "matter.flow.confirm", title=matter.title, stage=c.t(lang, STAGE_KEYS[data["stage"]]),
               day=c.formatter.day(lang, entry.held_on, weekday=False,  # another year's day says its year
                                   year=entry.held_on.year != c.clock.now().astimezone(c.settings.tz).year),
               outcome=c.t(lang, OUTCOME_KEYS[entry.outcome.value]), vote=vote,
               note=entry.note or c.t(lang, "matter.flow.no_note"))
    rows = [[flow_button(c, lang, "matter.button.confirm", MatterStep.CONFIRM)], abort_row(c, lang)]
    await save(context, me, "confirm", data)
    await say(update, context, text, rows)


async def record(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c, me, service = context.core, person(update), svc(context)
    lang = await lang_of(update, context)
    matter = await service.record_stage(me, data["matter"], data["stage"], entry_of(data))
    await c.flows.clear(me)
    key = "matter.flow.rejected_done" if matter.status == Status.REJECTED else "matter.flow.recorded"
    rows = [row for row in [matter_buttons(c, lang, matter, True)] if row]
    rows.append([Button(c.t(lang, "matter.button.board"), MATTER_ORG(MatterOrgAct.BOARD, matter.org_id))])
    await say(update, context, clip(c.t(lang, key, stage=c.t(lang, STAGE_KEYS[data["stage"]])) + "\n\n"
                                    + await service.card(lang, matter), MAX_TEXT), rows)


async def stage_typed(update: Update, context: BotContext, step: str, data: dict[str, Any], text: str) -> None:
    """A typed answer while recording a stage: the day, the paper counts, the note or reason."""
    c = context.core
    if step == "day":
        today = c.clock.now().astimezone(c.settings.tz).date()
        day = stage_day(text, today)
        if day is None:
            await say_key(update, context, "matter.flow.bad_day")
            return
        if day > today:  # said now, while the day can still be typed again, not after the confirm screen
            await say_key(update, context, "matter.refused.future_date")
            return
        data["day"] = day.isoformat()
        await ask_meeting(update, context, data)
    elif step == "counts":
        numbers = read_counts(text)
        if numbers is None:
            await say_key(update, context, "matter.flow.bad_counts")
            return
        await vote_chosen(update, context, data, Vote(VoteKind.PAPER, None, *numbers))
    elif step == "note":
        if len(text) > MAX_NOTE:
            await say_key(update, context, "matter.refused.too_long", limit=MAX_NOTE)
            return
        data["note"] = text
        await ask_confirm(update, context, data)
    else:
        await say_key(update, context, "matter.flow.use_buttons")


async def stage_pressed(update: Update, context: BotContext, step: str, data: dict[str, Any],
                        action: MatterStep, value: int) -> None:
    c = context.core
    if step == "day" and action == MatterStep.TODAY:
        data["day"] = c.clock.now().astimezone(c.settings.tz).date().isoformat()
        await ask_meeting(update, context, data)
    elif step == "meeting" and action == MatterStep.MEETING:
        data["meeting"] = value  # 0: none; the service checks the meeting again
        await ask_vote(update, context, data)
    elif step == "vote" and action == MatterStep.VOTE and value in (0, 1, 2):
        if value == 0:
            await vote_chosen(update, context, data, Vote())
        elif value == 1:
            await ask_round(update, context, data)
        else:
            await save(context, person(update), "counts", data)
            await say_key(update, context, "matter.flow.counts", [abort_row(c, await lang_of(update, context))])
    elif step == "round" and action == MatterStep.ROUND:
        await vote_chosen(update, context, data, Vote(VoteKind.ROUND, value))
    elif step == "outcome" and action == MatterStep.OUTCOME and value in (0, 1):
        data["outcome"] = (Outcome.PASSED if value else Outcome.REJECTED).value
        await ask_note(update, context, data)
    elif step == "note" and action == MatterStep.SKIP and data.get("outcome") == Outcome.PASSED:
        data["note"] = ""
        await ask_confirm(update, context, data)
    elif step == "confirm" and action == MatterStep.CONFIRM:
        await record(update, context, data)
    else:
        raise ValueError("not at this step")


# --- opening, publishing, the limit ---------------------------------------------------------------

async def open_typed(update: Update, context: BotContext, step: str, data: dict[str, Any], text: str) -> None:
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    limits = {"title": MAX_TITLE, "description": MAX_DESCRIPTION, "estimate": MAX_ESTIMATE}
    if step not in limits:
        await say_key(update, context, "matter.flow.use_buttons")
        return
    if len(text) > limits[step]:
        await say_key(update, context, "matter.refused.too_long", limit=limits[step])
        return
    data[step] = text
    await open_next(update, context, step, data, c, me, lang)


async def open_next(update: Update, context: BotContext, step: str, data: dict[str, Any], c: Any, me: int,
                    lang: str) -> None:
    skip = [[flow_button(c, lang, "matter.button.skip", MatterStep.SKIP)], abort_row(c, lang)]
    if step == "title":
        await save(context, me, "description", data)
        await say_key(update, context, "matter.flow.description", skip)
    elif step == "description":
        await save(context, me, "estimate", data)
        await say_key(update, context, "matter.flow.estimate", skip)
    else:
        matter = await svc(context).open(me, data["org"], data["title"], data.get("description", ""),
                                         data.get("estimate", ""))
        await c.flows.clear(me)
        rows = [matter_buttons(c, lang, matter, True)]
        await say(update, context, clip(c.t(lang, "matter.flow.opened") + "\n\n"
                                        + await svc(context).card(lang, matter), MAX_TEXT), rows)


async def publish_typed(update: Update, context: BotContext, step: str, data: dict[str, Any], text: str) -> None:
    """The decision's or result's text; a result's photos (a caption adds to the text)."""
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    message = update.effective_message
    assert message is not None
    photo = message.photo[-1] if message.photo else None
    if data["mode"] == "result" and step in ("text", "photos") and photo is not None:
        if len(data.get("photos", [])) >= MAX_PHOTOS:
            await say_key(update, context, "matter.refused.too_many_photos", limit=MAX_PHOTOS)
            return
        data.setdefault("photos", []).append([message.chat_id, message.message_id])
        text = (message.caption or "").strip()
    if text:
        data["text"] = (data.get("text", "") + "\n" + text).strip()
    if step == "text" and data["mode"] == "result" and data.get("text"):
        await save(context, me, "photos", data)
        await say_key(update, context, "matter.flow.photos",
                      [[flow_button(c, lang, "matter.button.photos_done", MatterStep.SKIP)], abort_row(c, lang)],
                      n=len(data.get("photos", [])), limit=MAX_PHOTOS)
    elif step == "photos" and photo is not None:
        await save(context, me, "photos", data)
        await say_key(update, context, "matter.flow.photos_more",
                      [[flow_button(c, lang, "matter.button.photos_done", MatterStep.SKIP)], abort_row(c, lang)],
                      n=len(data["photos"]), limit=MAX_PHOTOS)
    elif step == "text" and data.get("text"):
        await publish_confirm(update, context, data)
    else:
        await save(context, me, step, data)  # a photo sent before the text is kept
        await say_key(update, context, "matter.flow.text_please")


async def publish_confirm(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    matter = await svc(context).get(me, data["matter"])
    rows = [[flow_button(c, lang, "matter.button.publish", MatterStep.CONFIRM)], abort_row(c, lang)]
    await save(context, me, "confirm", data)
    await say_key(update, context, CONFIRM_KEYS[data["mode"]], rows, title=matter.title,
                  text=data.get("text", ""), n=len(data.get("photos", [])))


async def publish(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    c, me, service = context.core, person(update), svc(context)
    lang = await lang_of(update, context)
    if data["mode"] == "decision":
        matter = await service.publish_decision(me, data["matter"], data.get("text", ""))
    else:
        matter = await service.publish_result(me, data["matter"], data.get("text", ""),
                                              [(int(a), int(b)) for a, b in data.get("photos", [])])
    await c.flows.clear(me)
    rows = [row for row in [matter_buttons(c, lang, matter, True)] if row]
    rows.append([Button(c.t(lang, "matter.button.board"), MATTER_ORG(MatterOrgAct.BOARD, matter.org_id))])
    await say_key(update, context, PUBLISHED_KEYS[data["mode"]], rows, title=matter.title)


@guarded
async def step_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    press = MATTER_FLOW.parse(query.data)
    if press is None:
        raise ValueError(query.data)
    me = person(update)
    if press.action == MatterStep.ABORT:
        await context.core.flows.clear(me)
        await say_key(update, context, "matter.flow.aborted")
        return
    state = await flow_state(context, me)
    if state is None:
        raise ValueError("no flow")
    step, data = state
    mode = data.get("mode")
    if mode == "stage":
        await stage_pressed(update, context, step, data, press.action, press.value)
    elif mode == "open" and step in ("description", "estimate") and press.action == MatterStep.SKIP:
        await open_next(update, context, step, data, context.core, me, await lang_of(update, context))
    elif mode == "result" and step == "photos" and press.action == MatterStep.SKIP:
        await publish_confirm(update, context, data)
    elif mode in ("decision", "result") and step == "confirm" and press.action == MatterStep.CONFIRM:
        await publish(update, context, data)
    else:
        raise ValueError("not at this step")


@guarded
async def flow_message(update: Update, context: BotContext) -> None:
    """The person's next message in a matters flow."""
    me = person(update)
    message = update.effective_message
    assert message is not None
    state = await flow_state(context, me)
    if state is None:
        return
    step, data = state
    text = (message.text or "").strip()
    mode = data.get("mode")
    if mode in ("decision", "result"):
        await publish_typed(update, context, step, data, text)
    elif not text:
        await say_key(update, context, "matter.flow.text_please")
    elif mode == "open":
        await open_typed(update, context, step, data, text)
    elif mode == "stage":
        await stage_typed(update, context, step, data, text)
    elif mode == "limit" and (typed := DAYS.fullmatch(text)):
        days = await svc(context).set_stall_days(me, data["org"], int(typed.group(1)))
        await context.core.flows.clear(me)
        await say_key(update, context, "matter.limit.set", days=days)
    else:
        await say_key(update, context, "matter.flow.use_buttons")


COMMANDS = [Command("matters", matters_command)]  # everyone: members and residents read what is published

BUTTONS = [(MATTER_ORG, org_button), (MATTER, matter_button), (MATTER_FLOW, step_button)]

TYPED_KEYS = ("title", "description", "estimate", "note", "text", "photos")  # what the person typed or sent


def holds_typing(state: FlowState) -> bool:
    """Whether 取消 would drop something the person typed or sent (so it asks first)."""
    return any(state.data.get(key) for key in TYPED_KEYS)


def register(app: Application) -> None:  # type: ignore[type-arg]
    for kind, callback in BUTTONS:
        app.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern))
    system.FLOW_HANDLERS[FLOW] = flow_message
    system.FLOW_LABELS[FLOW] = "matter.flow.chooser"  # the chooser: a message could answer something else too
    system.FLOW_HOLDS[FLOW] = holds_typing

