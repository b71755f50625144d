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
from bot.outbox import Button
from bot.services.meeting_model import MinutesKind, Presence, Roster
from bot.services.meetings import MeetingService
from handlers.common import answer_callback, lang_of, reply
from handlers.meetings.common import card_view, flow_state, guarded, person, save, say, service, stale
from handlers.meetings.flow import MeetingFlowState, Mode, Step
from handlers.meetings.scheduling import CANCEL_REASONS, date_step

MARK_PAGE = 10


def roster_text(c: Core, svc: MeetingService, lang: str, roster: Roster) -> str:
    """The roster as the service renders it (it also keeps the organiser's roster message true)."""
    return svc.roster_text(lang, roster)


async def show_roster(update: Update, context: BotContext, meeting_id: int) -> None:
    svc, me = service(context), person(update)
    lang = await lang_of(update, context)
    roster = await svc.roster(me, meeting_id)
    text, rows = svc.roster_text(lang, roster), svc.roster_buttons(lang, roster, me)
    await say(update, context, text, rows, edit=True)
    message = update.effective_message
    if message is not None and update.effective_chat is not None:
        # It updates itself from now on (at most once a minute): no 🔄 button is needed.
        await svc.remember_roster(me, meeting_id, update.effective_chat.id, message.message_id, text, rows)


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
