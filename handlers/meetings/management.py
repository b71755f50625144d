"""Secretaries and organizers: the roster, nudging, attendance marks, the edit menu, cancelling,
adding people, minutes, closing a meeting, and stopping a series. The service decides what is
allowed when; this module only shows it."""

from __future__ import annotations

from telegram import Update

from bot.callbacks import (
    MEETING_EDIT,
    MEETING_FLOW,
    MEETING_MANAGE,
    MEETING_MARK,
    MEETING_SERIES_STOP,
    EditWhat,
    FlowAction,
    ManageAction,
)
from bot.context import BotContext
from bot.core import Core
from bot.limits import MAX_TEXT, clip, telegram_length
from bot.outbox import Button
from bot.services.meeting_model import Answer, Attendee, MinutesKind, Presence, Roster
from bot.services.meetings import MeetingService
from handlers.common import answer_callback, lang_of, reply
from handlers.meetings.common import card_view, flow_state, guarded, person, save, say, service, stale
from handlers.meetings.flow import MeetingFlowState, Mode, Step
from handlers.meetings.scheduling import CANCEL_REASONS, date_step

MARK_PAGE = 10
ROSTER_NAMES = 60  # names listed per line; the rest are counted


def roster_text(c: Core, svc: MeetingService, lang: str, roster: Roster) -> str:
    """Who answered what, who is on leave and why, who came."""
    meeting = roster.meeting

    # Each list gets its share of the message, so that long names never push the later lists
    # (and their counts) out of it; the names left out are counted, and the mark sheet pages them all.
    title = c.t(lang, "meeting.roster.title", kind=svc.text.kind(lang, meeting.kind), topic=meeting.topic,
                when=svc.text.when(lang, meeting.starts_at, c.clock.now()), count=len(roster.attendees))
    budget = max(200, (MAX_TEXT - 96 - telegram_length(title)) // 6 - 40)

    def names(people: list[Attendee], with_reason: bool = False) -> str:
        if not people:
            return c.t(lang, "meeting.roster.none")
        shown: list[str] = []
        used = 0
        for a in people[:ROSTER_NAMES]:
            item = clip(c.t(lang, "meeting.roster.leave_item", name=a.name, reason=a.leave_reason or "")
                        if with_reason else a.name, budget // 2)
            used += telegram_length(item) + 2
            if shown and used > budget:
                break
            shown.append(item)
        more = c.t(lang, "meeting.roster.more", count=len(people) - len(shown)) if len(people) > len(shown) else ""
        return svc.fmt.join(lang, shown) + more

    everyone = roster.attendees
    attend = roster.with_answer(Answer.ATTEND)
    leave = roster.with_answer(Answer.LEAVE)
    silent = roster.with_answer(None)
    present = [a for a in everyone if a.attended]
    absent = [a for a in everyone if a.presence == Presence.ABSENT]
    lines = [title,
             c.t(lang, "meeting.roster.attending", count=len(attend), names=names(attend)),
             c.t(lang, "meeting.roster.leave", count=len(leave), names=names(leave, with_reason=True)),
             c.t(lang, "meeting.roster.no_answer", count=len(silent), names=names(silent)),
             c.t(lang, "meeting.roster.checked_in", count=len(present), names=names(present))]
    if absent:
        lines.append(c.t(lang, "meeting.roster.absent", count=len(absent), names=names(absent)))
    return clip("\n".join(lines), MAX_TEXT - 96, marker="\n…")


async def show_roster(update: Update, context: BotContext, meeting_id: int) -> None:
    c, svc, me = context.core, service(context), person(update)
    lang = await lang_of(update, context)
    roster = await svc.roster(me, meeting_id)
    meeting, now = roster.meeting, c.clock.now()
    rows: list[list[Button]] = []
    silent = sum(1 for a in roster.attendees if a.answer is None and a.person_id != me)
    if meeting.open_for_answers(now) and silent:
        rows.append([Button(c.t(lang, "meeting.button.nudge", count=silent),
                            MEETING_MANAGE(ManageAction.NUDGE, meeting_id))])
    if meeting.markable(now):
        rows.append([Button(c.t(lang, "meeting.button.mark"), MEETING_MARK(meeting_id, 0))])
    rows.append([Button(c.t(lang, "meeting.button.refresh"), MEETING_MANAGE(ManageAction.ROSTER, meeting_id)),
                 Button(c.t(lang, "meeting.button.back"), MEETING_MANAGE(ManageAction.CARD, meeting_id))])
    await say(update, context, roster_text(c, svc, lang, roster), rows, edit=True)


@guarded
async def mark_button(update: Update, context: BotContext) -> None:
    """A page of the attendance sheet; with a person, their mark is cycled first."""
    c, svc, me = context.core, service(context), person(update)
    query = update.callback_query
    assert query is not None
    data = MEETING_MARK.parse(query.data)
    if data is None:
        await stale(update, context)
        return
    lang = await lang_of(update, context)
    if data.person_id:
        await svc.mark(me, data.meeting_id, data.person_id)
    people = (await svc.mark_sheet(me, data.meeting_id)).attendees
    pages = max(1, (len(people) + MARK_PAGE - 1) // MARK_PAGE)
    page = min(max(data.page, 0), pages - 1)
    rows = []
    for a in people[page * MARK_PAGE:(page + 1) * MARK_PAGE]:
        icon = {Presence.PRESENT: "✅", Presence.ABSENT: "❌"}.get(a.presence, "📍" if a.checked_in_at else "⬜")  # type: ignore[arg-type]
        rows.append([Button(f"{icon} {a.name}"[:60], MEETING_MARK(data.meeting_id, page, a.person_id))])
    nav = []
    if page > 0:
        nav.append(Button("⬅️", MEETING_MARK(data.meeting_id, page - 1)))
    if page < pages - 1:
        nav.append(Button("➡️", MEETING_MARK(data.meeting_id, page + 1)))
    if nav:
        rows.append(nav)
    rows.append([Button(c.t(lang, "meeting.button.back"), MEETING_MANAGE(ManageAction.ROSTER, data.meeting_id))])
    await query.answer()
    await say(update, context, c.t(lang, "meeting.mark.title", page=page + 1, pages=pages), rows, edit=True)


@guarded
async def manager_button(update: Update, context: BotContext) -> None:
    """Roster, back to the card, nudge, the edit menu, cancel, add people, minutes, close."""
    query = update.callback_query
    assert query is not None
    data = MEETING_MANAGE.parse(query.data)
    if data is None:
        await stale(update, context)
        return
    await ACTIONS[data.action](update, context, data.meeting_id)


async def on_roster(update: Update, context: BotContext, meeting_id: int) -> None:
    await service(context).roster(person(update), meeting_id)  # refused before the button is answered
    assert update.callback_query is not None
    await update.callback_query.answer()
    await show_roster(update, context, meeting_id)


async def on_card(update: Update, context: BotContext, meeting_id: int) -> None:
    lang = await lang_of(update, context)
    text, rows = await card_view(context.core, service(context), lang, person(update), meeting_id)
    assert update.callback_query is not None
    await update.callback_query.answer()
    await say(update, context, text, rows, edit=True)


async def on_nudge(update: Update, context: BotContext, meeting_id: int) -> None:
    count = await service(context).nudge(person(update), meeting_id)
    await answer_callback(update, context, "meeting.nudge.done", alert=True, count=count)


async def on_edit(update: Update, context: BotContext, meeting_id: int) -> None:
    c = context.core
    await service(context).manageable(person(update), meeting_id, before_start=True)
    lang = await lang_of(update, context)
    rows = [[Button(c.t(lang, "meeting.edit.time"), MEETING_EDIT(meeting_id, EditWhat.TIME))],
            [Button(c.t(lang, "meeting.edit.place"), MEETING_EDIT(meeting_id, EditWhat.PLACE))],
            [Button(c.t(lang, "meeting.edit.topic"), MEETING_EDIT(meeting_id, EditWhat.TOPIC))],
            [Button(c.t(lang, "meeting.button.back"), MEETING_MANAGE(ManageAction.CARD, meeting_id))]]
    assert update.callback_query is not None
    await update.callback_query.answer()
    await say(update, context, c.t(lang, "meeting.edit.pick"), rows, edit=True)


async def on_cancel(update: Update, context: BotContext, meeting_id: int) -> None:
    c, me = context.core, person(update)
    meeting = await service(context).cancellable(me, meeting_id)
    await save(context, me, MeetingFlowState(mode=Mode.CANCEL, step=Step.CANCEL_REASON, mid=meeting_id))
    lang = await lang_of(update, context)
    rows = [[Button(c.t(lang, key), MEETING_FLOW(FlowAction.CANCEL_REASON, i))] for i, key in enumerate(CANCEL_REASONS)]
    rows.append([Button(c.t(lang, "meeting.cancel.keep"), MEETING_FLOW(FlowAction.KEEP))])
    assert update.callback_query is not None
    await update.callback_query.answer()
    await say(update, context, c.t(lang, "meeting.cancel.ask_reason", topic=meeting.topic), rows)


async def on_add_people(update: Update, context: BotContext, meeting_id: int) -> None:
    c, me = context.core, person(update)
    await service(context).manageable(me, meeting_id, before_start=True)
    await save(context, me, MeetingFlowState(mode=Mode.ADD, step=Step.ADD_PEOPLE, mid=meeting_id))
    lang = await lang_of(update, context)
    assert update.callback_query is not None
    await update.callback_query.answer()
    await say(update, context, c.t(lang, "meeting.new.ask_people"))


async def on_minutes(update: Update, context: BotContext, meeting_id: int) -> None:
    c, me = context.core, person(update)
    counts = await service(context).begin_minutes(me, meeting_id)
    await save(context, me, MeetingFlowState(mode=Mode.MINUTES, step=Step.MINUTES, mid=meeting_id))
    lang = await lang_of(update, context)
    rows = [[Button(c.t(lang, "meeting.button.close"), MEETING_MANAGE(ManageAction.CLOSE, meeting_id))]] \
        if sum(counts.values()) else []
    assert update.callback_query is not None
    await update.callback_query.answer()
    await say(update, context, c.t(lang, "meeting.minutes.ask", texts=counts["text"], photos=counts["photo"],
                                   documents=counts["document"]), rows)


async def on_close(update: Update, context: BotContext, meeting_id: int) -> None:
    c, me = context.core, person(update)
    meeting, stats = await service(context).close(me, meeting_id)
    state = await flow_state(context, me)
    if state is not None and state.mid == meeting_id:
        await c.flows.clear(me)
    lang = await lang_of(update, context)
    assert update.callback_query is not None
    await update.callback_query.answer()
    await say(update, context, c.t(lang, "meeting.minutes.closed", topic=meeting.topic, **stats), edit=True)


ACTIONS = {
    ManageAction.ROSTER: on_roster,
    ManageAction.CARD: on_card,
    ManageAction.NUDGE: on_nudge,
    ManageAction.EDIT: on_edit,
    ManageAction.CANCEL: on_cancel,
    ManageAction.ADD_PEOPLE: on_add_people,
    ManageAction.MINUTES: on_minutes,
    ManageAction.CLOSE: on_close,
}


@guarded
async def edit_button(update: Update, context: BotContext) -> None:
    """What to change: the time (date and time steps), the place, or the agenda (typed)."""
    c, svc, me = context.core, service(context), person(update)
    query = update.callback_query
    assert query is not None
    data = MEETING_EDIT.parse(query.data)
    if data is None:
        await stale(update, context)
        return
    meeting = await svc.manageable(me, data.meeting_id, before_start=True)
    lang = await lang_of(update, context)
    state = MeetingFlowState(mode=Mode.EDIT, mid=data.meeting_id, what=data.what)
    await query.answer()
    if data.what == EditWhat.TIME:
        state.step = Step.EDIT_DATE
        await save(context, me, state)
        await say(update, context, *date_step(c, svc, lang, c.t(lang, "meeting.edit.ask_date",
                                                                  when=svc.text.when(lang, meeting.starts_at))))
    elif data.what == EditWhat.PLACE:
        state.step = Step.EDIT_PLACE
        await save(context, me, state)
        await say(update, context, c.t(lang, "meeting.edit.ask_place", old=meeting.place))
    else:
        state.step = Step.EDIT_TOPIC
        await save(context, me, state)
        await say(update, context, c.t(lang, "meeting.edit.ask_topic", old=meeting.topic))


@guarded
async def stop_series_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = MEETING_SERIES_STOP.parse(query.data)
    if data is None:
        await stale(update, context)
        return
    await service(context).stop_series(person(update), data.series_id)
    await answer_callback(update, context, "meeting.series.stopped", alert=True)


async def minutes_message(update: Update, context: BotContext, state: MeetingFlowState) -> None:
    """Text, a photo or a document becomes part of the meeting's minutes."""
    c, svc, me = context.core, service(context), person(update)
    message = update.effective_message
    assert message is not None and state.mid is not None
    lang = await lang_of(update, context)
    if message.photo:
        counts = await svc.add_minutes(me, state.mid, MinutesKind.PHOTO, text=message.caption,
                                       file_id=message.photo[-1].file_id)
    elif message.document:
        counts = await svc.add_minutes(me, state.mid, MinutesKind.DOCUMENT, text=message.caption,
                                       file_id=message.document.file_id, file_name=message.document.file_name)
    elif message.text:
        counts = await svc.add_minutes(me, state.mid, MinutesKind.TEXT, text=message.text)
    else:
        await reply(update, context, "meeting.minutes.unsupported")
        return
    await say(update, context, c.t(lang, "meeting.minutes.saved", texts=counts["text"], photos=counts["photo"],
                                   documents=counts["document"]),
              [[Button(c.t(lang, "meeting.button.close"), MEETING_MANAGE(ManageAction.CLOSE, state.mid))]])
