"""What every meetings handler shares: the service, answering or editing in place, turning a
refusal into words, the guard that does so for every handler, the meeting card, and reading or
saving the flow's typed state."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from telegram import Update

from bot.callbacks import (
    MEETING_MANAGE,
    MEETING_MEMBER,
    MEETING_SERIES_STOP,
    ManageAction,
    MemberAction,
)
from bot.context import BotContext
from bot.core import Core
from bot.outbox import Button
from bot.services.meeting_model import Answer, MeetingStatus, MeetingView, Refused
from bot.services.meetings import MeetingService
from bot.services.orgs import NotAllowed, NotFound
from handlers.common import answer_callback, answer_text, edit_text, keyboard, lang_of
from handlers.meetings.flow import FLOW, MeetingFlowState

MAX_BUTTONS = 40

Handler = Callable[..., Awaitable[None]]


def service(context: BotContext) -> MeetingService:
    return context.core.meetings


def person(update: Update) -> int:
    user = update.effective_user
    assert user is not None
    return user.id


def refused_text(c: Core, svc: MeetingService, lang: str, exc: Refused) -> str:
    """The refusal in the person's words; moments are shown in their language and time zone."""
    now = c.clock.now()
    values = {k: svc.text.when(lang, v, now) if isinstance(v, datetime) else v for k, v in exc.values.items()}
    return c.t(lang, exc.key, **values)


async def say(update: Update, context: BotContext, text: str, rows: list[list[Button]] | None = None,
              edit: bool = False) -> None:
    """Edit the message whose button was pressed (edit=True), else send a new message."""
    markup = keyboard(rows) if rows else None
    query = update.callback_query
    if edit and query is not None and query.message is not None:
        # The message shows something else now: it is no longer a screen kept true (a roster that
        # became the mark sheet). A handler that shows a kept screen remembers it again after this.
        await context.core.screens.forget_message(query.message.chat.id, query.message.message_id)
        await edit_text(query, text, markup)
        return
    assert update.effective_message is not None
    await update.effective_message.reply_text(text, reply_markup=markup)


async def refuse(update: Update, context: BotContext, exc: Exception) -> None:
    """A clear answer for anything the service refused; nothing was changed."""
    c = context.core
    lang = await lang_of(update, context)
    if isinstance(exc, Refused):
        text = refused_text(c, service(context), lang, exc)
    elif isinstance(exc, NotAllowed):
        text = c.t(lang, "error.not_allowed")
    elif isinstance(exc, NotFound):
        text = c.t(lang, "meeting.error.not_found")
    else:
        text = c.t(lang, "error.stale_button")
    if update.callback_query is not None:
        await answer_text(update, text, alert=True)
    else:
        assert update.effective_message is not None
        await update.effective_message.reply_text(text)


def guarded(handler: Handler) -> Handler:
    """Whatever the service refused is answered in words; data that does not parse (ValueError)
    is a stale button."""

    @functools.wraps(handler)
    async def run(update: Update, context: BotContext, *args: Any) -> None:
        try:
            await handler(update, context, *args)
        except (Refused, NotAllowed, NotFound) as exc:
            await refuse(update, context, exc)
        except ValueError:
            await stale(update, context)

    return run


async def stale(update: Update, context: BotContext) -> None:
    if update.callback_query is not None:
        await answer_callback(update, context, "error.stale_button", alert=True)
    else:
        await refuse(update, context, ValueError())


async def flow_state(context: BotContext, person_id: int) -> MeetingFlowState | None:
    """The person's meeting flow, if they are in one (a state of an older shape counts as none)."""
    state = await context.core.flows.get(person_id)
    if state is None or state.flow != FLOW:
        return None
    try:
        return MeetingFlowState.from_data(state.step, state.data)
    except (ValueError, TypeError, KeyError):
        return None


async def save(context: BotContext, person_id: int, state: MeetingFlowState) -> None:
    await context.core.flows.set(person_id, FLOW, state.step, state.to_data())


# --- the meeting card ----------------------------------------------------------------------------

async def card_view(c: Core, svc: MeetingService, lang: str, person_id: int,
                    meeting_id: int) -> tuple[str, list[list[Button]]]:
    """The meeting as this person may see it: details, their answer, and the buttons they may use."""
    view = await svc.view(person_id, meeting_id)
    meeting, attendee = view.meeting, view.attendee
    now = c.clock.now()
    lines = [c.t(lang, "meeting.card.title"), *svc.card(lang, meeting, now)]
    if meeting.status == MeetingStatus.CANCELLED:
        lines.append(c.t(lang, "meeting.card.cancelled", reason=meeting.cancel_reason or ""))
    elif meeting.status == MeetingStatus.HELD:
        lines.append(c.t(lang, "meeting.card.held"))
    rows: list[list[Button]] = []
    if attendee is not None:
        lines.append(svc.text.answer_line(lang, attendee.answer, attendee.leave_reason))
        if attendee.checked_in_at is not None:
            lines.append(c.t(lang, "meeting.card.checked_in", time=svc.text.clock(lang, attendee.checked_in_at)))
        if view.can_answer:
            rows += svc.text.reply_buttons(lang, meeting.id, checkin=view.can_check_in)
        elif view.can_check_in:
            rows.append([Button(c.t(lang, "meeting.button.checkin"), MEETING_MEMBER(MemberAction.CHECKIN, meeting.id))])
    if view.manages:
        lines.append(summary_line(c, lang, view))
        rows += manage_buttons(c, lang, view, now)
    return "\n".join(lines), rows


def summary_line(c: Core, lang: str, view: MeetingView) -> str:
    attendees = view.attendees
    return c.t(lang, "meeting.card.summary", invited=len(attendees),
               attend=sum(1 for a in attendees if a.answer == Answer.ATTEND),
               leave=sum(1 for a in attendees if a.answer == Answer.LEAVE),
               none=sum(1 for a in attendees if a.answer is None),
               checked=sum(1 for a in attendees if a.attended))


def manage_buttons(c: Core, lang: str, view: MeetingView, now: datetime) -> list[list[Button]]:
    meeting = view.meeting
    mid = meeting.id

    def button(key: str, action: ManageAction) -> Button:
        return Button(c.t(lang, key), MEETING_MANAGE(action, mid))

    rows = [[button("meeting.button.roster", ManageAction.ROSTER)]]
    if meeting.open_for_answers(now):
        rows[0].append(button("meeting.button.edit", ManageAction.EDIT))
        rows.append([button("meeting.button.add_people", ManageAction.ADD_PEOPLE),
                     button("meeting.button.cancel", ManageAction.CANCEL)])
    elif meeting.status == MeetingStatus.SCHEDULED:
        rows[0].append(button("meeting.button.minutes", ManageAction.MINUTES))
        if meeting.cancellable(now):
            rows.append([button("meeting.button.cancel", ManageAction.CANCEL)])
    if view.series_active and meeting.series_id is not None:
        rows.append([Button(c.t(lang, "meeting.button.stop_series"), MEETING_SERIES_STOP(meeting.series_id))])
    return rows
