"""Meetings in chat (三会一课), by seam:

  scheduling.py  /newmeeting: the flow's steps (a table of buttons and of typed answers), and the
                 edit and cancel flows' endings
  attendance.py  members' buttons (attend, leave, calendar, check-in, card), /meetings, /checkin
  management.py  roster, marks, edit menu, cancel, add people, minutes, close, stop a series
  settings.py    /meetingsettings (reminders, quotas), /committee, /ledger
  flow.py        the flow's typed state; common.py what they all share

Every button's data is a kind from bot/callbacks.py, registered here with its pattern; the service
checks every right again."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import (
    MEETING_EDIT,
    MEETING_FLOW,
    MEETING_LEAVE_REASON,
    MEETING_LEDGER,
    MEETING_LEDGER_MENU,
    MEETING_LEGACY,
    MEETING_MANAGE,
    MEETING_MARK,
    MEETING_MEMBER,
    MEETING_NEW,
    MEETING_QUOTA,
    MEETING_SERIES_STOP,
    MEETING_SETTINGS,
)
from bot.context import BotContext
from bot.services.meeting_attendance import LEAVE_QUESTION
from handlers import system
from handlers.common import LEADERS, Command, reply
from handlers.meetings import attendance, management, scheduling, settings
from handlers.meetings.common import flow_state, guarded, person, stale
from handlers.meetings.flow import FLOW, MeetingFlowState, Step

MEMBERS = frozenset({"member", "secretary", "organizer", "admin"})

TYPED = {**scheduling.TYPED, Step.LEAVE_REASON: attendance.typed_leave_reason,
         Step.LEDGER_DATES: settings.typed_ledger_dates}


@guarded
async def flow_message(update: Update, context: BotContext) -> None:
    """The person's next message in a meeting flow: a typed date, place, topic, reason, names, or minutes."""
    message = update.effective_message
    assert message is not None
    state: MeetingFlowState | None = await flow_state(context, person(update))
    if state is None:
        await context.core.flows.clear(person(update))  # a state of an older shape: start again
        await reply(update, context, "error.stale_button")
        return
    if state.step == Step.MINUTES:
        await management.minutes_message(update, context, state)
        return
    if not message.text:
        await reply(update, context, "meeting.error.text_only")
        return
    step = TYPED.get(state.step)
    if step is None:
        await reply(update, context, "meeting.new.use_buttons")
        return
    await step(update, context, state, message.text.strip())


async def new_button(update: Update, context: BotContext) -> None:
    assert update.callback_query is not None
    await update.callback_query.answer()
    await scheduling.newmeeting_command(update, context)


@guarded
async def legacy_button(update: Update, context: BotContext) -> None:
    """A button sent before the callback codec: members' answers, "record minutes" and "schedule
    a meeting" keep working; anything else is stale."""
    assert update.callback_query is not None
    old = MEETING_LEGACY.parse(update.callback_query.data)
    if old is not None and old.action == "new":
        await new_button(update, context)
    elif old is not None and old.action == "m":
        await management.on_minutes(update, context, old.meeting_id)
    elif attendance.legacy_member(update.callback_query.data) is not None:
        await attendance.member_button(update, context)
    else:
        await stale(update, context)


COMMANDS = [
    Command("meetings", attendance.meetings_command, audience=MEMBERS, menu_key="menu.meetings"),
    Command("newmeeting", scheduling.newmeeting_command, audience=LEADERS, menu_key="menu.newmeeting"),
    Command("checkin", attendance.checkin_command, audience=MEMBERS),
    Command("ledger", settings.ledger_command, audience=LEADERS),
    Command("meetingsettings", settings.settings_command, audience=LEADERS),
    Command("committee", settings.committee_command, audience=LEADERS),
]

BUTTONS = [
    (MEETING_NEW, new_button),
    (MEETING_FLOW, scheduling.flow_button),
    (MEETING_MEMBER, attendance.member_button),
    (MEETING_LEAVE_REASON, attendance.leave_reason_button),
    (MEETING_MANAGE, management.manager_button),
    (MEETING_MARK, management.mark_button),
    (MEETING_EDIT, management.edit_button),
    (MEETING_SERIES_STOP, management.stop_series_button),
    (MEETING_SETTINGS, settings.settings_button),
    (MEETING_QUOTA, settings.quota_button),
    (MEETING_LEDGER, settings.ledger_button),
    (MEETING_LEDGER_MENU, settings.ledger_menu_button),
    (MEETING_LEGACY, legacy_button),
]


def register(app: Application) -> None:  # type: ignore[type-arg]
    for kind, callback in BUTTONS:
        app.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern))
    system.FLOW_HANDLERS[FLOW] = flow_message
    system.ANSWERS[LEAVE_QUESTION] = attendance.answer_leave_question
    system.FLOW_LABELS[FLOW] = "prompt.flow.meeting"
    # What was typed into a meeting being set up (place, topic): 取消 asks before dropping it.
    system.FLOW_HOLDS[FLOW] = lambda state: bool(state.data.get("place") or state.data.get("topic"))
