"""/newmeeting: the scheduling flow, and the flow's edit and cancel endings. Each step is a
function; the tables at the end say which button works at which step, and which step reads a
typed answer. The flow's state is a `MeetingFlowState` kept in the database between messages."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta

from telegram import Update

from bot.callbacks import MEETING_FLOW, EditWhat, FlowAction, MeetingFlow
from bot.context import BotContext
from bot.core import Core
from bot.limits import clip
from bot.outbox import Button
from bot.services.meeting_model import KINDS, MeetingKind, Refused, SeriesSpec
from bot.services.meeting_text import WEEKDAY_KEYS, local_today
from bot.services.meeting_time import Unreadable, normalize, parse_when, rule_from_date
from bot.services.meetings import MeetingService
from bot.services.orgs import NotAllowed, OrgKind
from handlers.common import lang_of, reply
from handlers.meetings.common import (
    MAX_BUTTONS,
    card_view,
    flow_state,
    guarded,
    person,
    save,
    say,
    service,
    stale,
)
from handlers.meetings.flow import MeetingFlowState, Mode, Repeat, Step

PICKER_DAYS = 14
PICKER_HOURS = range(7, 22)
LEAD_CHOICES = (3, 7, 14)
# How long a meeting lasts, one tap each (minutes); 半天 is a morning or an afternoon.
LENGTH_CHOICES = {60: "readable.meeting.length_60", 90: "readable.meeting.length_90",
                  120: "readable.meeting.length_120", 240: "readable.meeting.length_240"}
_HOURS = re.compile(r"(\d+(?:\.\d+)?)\s*(个半|个)?\s*(?:小时|钟头|h|hours?|hrs?)")
_MINUTES = re.compile(r"(\d+)\s*(?:分钟|min|minutes?|mins?)")
_HALF_DAY = re.compile(r"半天|half\s*(?:a\s*)?day")
PEOPLE_ROOM = 1000  # the names found, and those not found, shown after people are typed in
CANCEL_REASONS = ("meeting.cancel.reason_conflict", "meeting.cancel.reason_weather",
                  "meeting.cancel.reason_superior")
Screen = tuple[str, list[list[Button]]]


def abort_button(c: Core, lang: str) -> list[Button]:
    return [Button(c.t(lang, "meeting.new.abort"), MEETING_FLOW(FlowAction.ABORT))]


# --- the screens of each step ----------------------------------------------------------------------

async def newmeeting_command(update: Update, context: BotContext) -> None:
    """Step 1 of scheduling a meeting: pick its kind."""
    c = context.core
    lang = await lang_of(update, context)
    if not await service(context).schedulable_orgs(person(update)):
        await say(update, context, c.t(lang, "meeting.error.no_orgs"))
        return
    await save(context, person(update), MeetingFlowState(mode=Mode.NEW, step=Step.KIND))
    await say(update, context, *kind_step(c, service(context), lang))


def kind_step(c: Core, svc: MeetingService, lang: str) -> Screen:
    """Step 1: one button per kind of meeting."""
    buttons = [Button(svc.text.kind(lang, kind), MEETING_FLOW(FlowAction.KIND, i)) for i, kind in enumerate(KINDS)]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append(abort_button(c, lang))
    return c.t(lang, "meeting.new.pick_kind"), rows


async def org_step(c: Core, svc: MeetingService, lang: str, person_id: int, state: MeetingFlowState) -> Screen:
    orgs = await svc.schedulable_orgs(person_id)
    if state.kind == MeetingKind.GROUP and any(o.kind == OrgKind.party_group for _, o in orgs):
        orgs = [(d, o) for d, o in orgs if o.kind == OrgKind.party_group]
    rows = [[Button(f"{'· ' * depth}{org.name}", MEETING_FLOW(FlowAction.ORG, org.id))]
            for depth, org in orgs[:MAX_BUTTONS]]
    rows.append(abort_button(c, lang))
    text = c.t(lang, "meeting.new.pick_org", kind=svc.text.kind(lang, state.kind or MeetingKind.OTHER))
    if len(orgs) > MAX_BUTTONS:
        text += "\n" + c.t(lang, "meeting.new.type_org", shown=MAX_BUTTONS, total=len(orgs))
    return text, rows


def date_step(c: Core, svc: MeetingService, lang: str, title: str) -> Screen:
    """The next two weeks as buttons (typing a date works too)."""
    today = local_today(c.clock.now(), svc.tz)
    buttons = []
    for i in range(PICKER_DAYS):
        day = today + timedelta(days=i)
        label = svc.text.short_day(lang, day) + " " + c.t(lang, WEEKDAY_KEYS[day.weekday()])
        if i == 0:
            label = c.t(lang, "meeting.day.today") + " " + label
        buttons.append(Button(label, MEETING_FLOW(FlowAction.DAY, int(f"{day:%Y%m%d}"))))
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append(abort_button(c, lang))
    return title + "\n" + c.t(lang, "meeting.new.type_date"), rows


def time_step(c: Core, svc: MeetingService, lang: str, day: date) -> Screen:
    """Whole hours 7:00–21:00 (only those still ahead, today) as buttons, written as every other
    time is (上午9:00 / 9:00 AM)."""
    now_local = c.clock.now().astimezone(svc.tz)
    hours = [h for h in PICKER_HOURS if day > now_local.date() or h > now_local.hour]
    buttons = [Button(svc.text.clock(lang, datetime.combine(day, time(h), tzinfo=svc.tz)),
                      MEETING_FLOW(FlowAction.HOUR, h * 100)) for h in hours]
    rows = [buttons[i:i + 3] for i in range(0, len(buttons), 3)]
    rows.append([Button(c.t(lang, "meeting.new.other_day"), MEETING_FLOW(FlowAction.OTHER_DAY)),
                 *abort_button(c, lang)])
    return c.t(lang, "meeting.new.pick_time", date=svc.text.day(lang, day)), rows


def length_step(c: Core, svc: MeetingService, lang: str, state: MeetingFlowState) -> Screen:
    """How long: 1小时, 1.5小时, 2小时, 半天 (those that end the same day), or typed."""
    starts, _ = state.moments(svc.tz)
    midnight = datetime.combine(starts.date() + timedelta(days=1), datetime.min.time(), tzinfo=starts.tzinfo)
    buttons = [Button(c.t(lang, key), MEETING_FLOW(FlowAction.LENGTH, minutes))
               for minutes, key in LENGTH_CHOICES.items() if starts + timedelta(minutes=minutes) <= midnight]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append(abort_button(c, lang))
    return c.t(lang, "readable.meeting.ask_length", when=svc.text.when(lang, starts, c.clock.now())), rows


def read_length(text: str, start: datetime, today: date) -> datetime:
    """A typed length (3小时, 1个半小时, 90分钟, 半天, 2 hours) or end time (到下午5点, 17:00): the end.
    Raises Unreadable."""
    s = normalize(text)
    if _HALF_DAY.search(s):
        return start + timedelta(hours=4)
    if (m := _HOURS.search(s)) is not None:
        return start + timedelta(hours=float(m.group(1)) + (0.5 if m.group(2) == "个半" else 0))
    if (m := _MINUTES.search(s)) is not None:
        return start + timedelta(minutes=int(m.group(1)))
    when = parse_when(re.sub(r"^\s*(?:到|至|until|till|to)\s*", "", s), today)
    end = when.end or when.start
    if end is None or when.day not in (None, start.date()):
        raise Unreadable(text)
    return datetime.combine(start.date(), end, tzinfo=start.tzinfo)


async def place_step(c: Core, svc: MeetingService, lang: str, person_id: int, state: MeetingFlowState) -> Screen:
    """Ask for the place, offering the org's last few places as buttons."""
    assert state.org is not None
    state.places = await svc.recent_places(person_id, state.org)
    rows = [[Button(place[:40], MEETING_FLOW(FlowAction.PLACE, i))] for i, place in enumerate(state.places)]
    rows.append(abort_button(c, lang))
    return c.t(lang, "meeting.new.ask_place"), rows


def topic_step(c: Core, lang: str, kind: MeetingKind | None) -> Screen:
    key = "meeting.new.ask_topic_lecture" if kind == MeetingKind.LECTURE else "meeting.new.ask_topic"
    return c.t(lang, key), [abort_button(c, lang)]


def lecturer_step(c: Core, lang: str) -> Screen:
    return c.t(lang, "meeting.new.ask_lecturer"), [[Button(c.t(lang, "meeting.new.lecturer_me"),
                                                            MEETING_FLOW(FlowAction.LECTURER_ME))],
                                                    abort_button(c, lang)]


def start_clock(svc: MeetingService, lang: str, state: MeetingFlowState) -> str:
    """The start as every time is written (下午3:00), for the monthly rule."""
    return svc.text.clock(lang, state.moments(svc.tz)[0])


def repeat_text(c: Core, svc: MeetingService, lang: str, state: MeetingFlowState) -> str:
    assert state.repeat is not None and state.start is not None
    rule = state.repeat_rule()
    text = svc.text.rule(lang, rule.kind, rule.day, rule.nth, rule.weekday, start_clock(svc, lang, state))
    shift = "meeting.new.holiday_shift" if state.repeat.shift else "meeting.new.holiday_keep"
    return c.t(lang, "meeting.new.repeat_line", rule=text, holiday=c.t(lang, shift), days=state.repeat.lead)


async def confirm_step(c: Core, svc: MeetingService, lang: str, person_id: int, state: MeetingFlowState) -> Screen:
    """The summary to check, how many are invited, and the last buttons (send, add people, repeat)."""
    draft = state.draft(svc.tz)
    org = await c.orgs.get(draft.org_id)
    count = await svc.preview_count(person_id, draft)
    lines = [c.t(lang, "meeting.new.confirm_title"),
             *svc.text.card_lines(lang, org=org.name if org else "?", kind=draft.kind, starts_at=draft.starts_at,
                                  ends_at=draft.ends_at, place=draft.place, topic=draft.topic,
                                  lecturer=draft.lecturer, now=c.clock.now())]
    if draft.include_below:
        lines.append(c.t(lang, "meeting.new.below_line"))
    if state.repeat:
        lines.append(repeat_text(c, svc, lang, state))
    lines.append(c.t(lang, "meeting.new.count_line", count=count))
    rows = [[Button(c.t(lang, "meeting.new.send"), MEETING_FLOW(FlowAction.SEND))],
            [Button(c.t(lang, "meeting.new.add_people"), MEETING_FLOW(FlowAction.PEOPLE)),
             Button(c.t(lang, "meeting.new.repeat"), MEETING_FLOW(FlowAction.REPEAT))],
            abort_button(c, lang)]
    return "\n".join(lines), rows


def repeat_step(c: Core, svc: MeetingService, lang: str, state: MeetingFlowState) -> Screen:
    """Monthly by day or by weekday, what a holiday does, and how many days ahead to announce."""
    assert state.repeat is not None and state.start is not None
    chosen = state.repeat
    rows = []
    for value, kind in ((0, "monthday"), (1, "weekday")):
        rule = rule_from_date(kind, state.day_date())
        label = svc.text.rule(lang, rule.kind, rule.day, rule.nth, rule.weekday, start_clock(svc, lang, state))
        mark = "✅ " if chosen.rule == kind else "⬜ "
        rows.append([Button(mark + label, MEETING_FLOW(FlowAction.REPEAT_RULE, value))])
    shift = "meeting.new.holiday_shift" if chosen.shift else "meeting.new.holiday_keep"
    rows.append([Button(c.t(lang, shift), MEETING_FLOW(FlowAction.REPEAT_HOLIDAY))])
    rows.append([Button(("✅ " if chosen.lead == d else "") + c.t(lang, "meeting.new.lead", days=d),
                        MEETING_FLOW(FlowAction.REPEAT_LEAD, d)) for d in LEAD_CHOICES])
    rows.append([Button(c.t(lang, "meeting.new.repeat_done"), MEETING_FLOW(FlowAction.REPEAT_DONE)),
                 Button(c.t(lang, "meeting.new.no_repeat"), MEETING_FLOW(FlowAction.NO_REPEAT))])
    return c.t(lang, "meeting.new.repeat_pick") + "\n" + repeat_text(c, svc, lang, state), rows


# --- moving from step to step ----------------------------------------------------------------------

async def show(update: Update, context: BotContext, state: MeetingFlowState, step: Step, screen: Screen,
               edit: bool) -> None:
    state.step = step
    await save(context, person(update), state)
    await say(update, context, *screen, edit=edit)


async def choose_org(update: Update, context: BotContext, state: MeetingFlowState, org_id: int, edit: bool) -> None:
    """The org is chosen: ask an organizer whether it goes to every org below, else on to the date."""
    c, svc, me = context.core, service(context), person(update)
    lang = await lang_of(update, context)
    org = await c.orgs.get(org_id)
    if org is None or not await svc.can_schedule(me, org_id):
        raise NotAllowed("org")
    state.org, state.below = org_id, False
    below = len(await c.orgs.subtree(org_id)) - 1
    if below and state.kind != MeetingKind.GROUP and await c.orgs.can_manage(me, org_id):
        rows = [[Button(c.t(lang, "meeting.new.scope_this", org=org.name), MEETING_FLOW(FlowAction.SCOPE, 0))],
                [Button(c.t(lang, "meeting.new.scope_below", org=org.name), MEETING_FLOW(FlowAction.SCOPE, 1))],
                abort_button(c, lang)]
        await show(update, context, state, Step.SCOPE,
                   (c.t(lang, "meeting.new.pick_scope", org=org.name, count=below), rows), edit)
        return
    await show(update, context, state, Step.DATE, date_step(c, svc, lang, c.t(lang, "meeting.new.pick_date")), edit)


def check_moment(svc: MeetingService, state: MeetingFlowState) -> None:
    """Refused when the chosen date and time are past, too far ahead, or end before they start."""
    svc.check_start(*state.moments(svc.tz))


async def after_time_chosen(update: Update, context: BotContext, state: MeetingFlowState, edit: bool) -> None:
    """Date and time (or, editing, the new place or agenda) are known: on to the place or the reason."""
    c, svc = context.core, service(context)
    lang = await lang_of(update, context)
    if state.editing:
        rows = [[Button(c.t(lang, "meeting.edit.no_reason"), MEETING_FLOW(FlowAction.NO_REASON))],
                abort_button(c, lang)]
        await show(update, context, state, Step.EDIT_REASON, (c.t(lang, "meeting.edit.ask_reason"), rows), edit)
        return
    if state.end is None:  # a new meeting's length is asked, never assumed
        await show(update, context, state, Step.LENGTH, length_step(c, svc, lang, state), edit)
        return
    screen = await place_step(c, svc, lang, person(update), state)
    await show(update, context, state, Step.PLACE, screen, edit)


async def take_place(update: Update, context: BotContext, state: MeetingFlowState, place: str, edit: bool) -> None:
    """A typed or tapped place: on to the topic (new) or the reason (edit)."""
    c = context.core
    state.place = service(context).check_place(place)
    if state.editing:
        await after_time_chosen(update, context, state, edit)
        return
    state.places = []
    lang = await lang_of(update, context)
    await show(update, context, state, Step.TOPIC, topic_step(c, lang, state.kind), edit)


async def to_confirm(update: Update, context: BotContext, state: MeetingFlowState, edit: bool,
                     head: str = "") -> None:
    c = context.core
    lang = await lang_of(update, context)
    text, rows = await confirm_step(c, service(context), lang, person(update), state)
    await show(update, context, state, Step.CONFIRM, ((head + "\n\n" if head else "") + text, rows), edit)


async def create_from_flow(update: Update, context: BotContext, state: MeetingFlowState) -> None:
    """Confirmed: schedule the meeting (or the monthly series) and show its card."""
    c, svc, me = context.core, service(context), person(update)
    lang = await lang_of(update, context)
    draft = state.draft(svc.tz)
    if state.repeat is None:
        created = await svc.create(me, draft)
        await c.flows.clear(me)
        text, rows = await card_view(c, svc, lang, me, created.meeting.id)
        head = c.t(lang, "meeting.new.created", count=created.notified)
        await say(update, context, head + "\n\n" + text, rows, edit=True)
        return
    spec = SeriesSpec(rule=state.repeat_rule(), holiday_shift=state.repeat.shift, lead_days=state.repeat.lead)
    series_id, meetings = await svc.create_series(me, draft, spec)
    await c.flows.clear(me)
    lines = [c.t(lang, "meeting.new.series_created", rule=repeat_text(c, svc, lang, state))]
    if meetings:
        lines += [c.t(lang, "meeting.new.series_first", when=svc.text.when(lang, m.starts_at)) for m in meetings]
        text, rows = await card_view(c, svc, lang, me, meetings[0].id)
        await say(update, context, "\n".join(lines) + "\n\n" + text, rows, edit=True)
        return
    upcoming = await svc.next_occurrence(me, series_id)
    if upcoming is not None:
        lines.append(c.t(lang, "meeting.new.series_later", date=svc.text.day(lang, upcoming),
                         notice=svc.text.day(lang, upcoming - timedelta(days=spec.lead_days))))
    await say(update, context, "\n".join(lines), edit=True)


async def apply_edit(update: Update, context: BotContext, state: MeetingFlowState, reason: str | None) -> None:
    """Apply the edit collected by the flow; whom to tell is the service's decision."""
    c, svc, me = context.core, service(context), person(update)
    lang = await lang_of(update, context)
    assert state.mid is not None
    if state.what == EditWhat.TIME:
        starts, ends = state.moments(svc.tz)
        edited = await svc.edit(me, state.mid, reason=reason, starts_at=starts, ends_at=ends if state.end else None)
    elif state.what == EditWhat.PLACE:
        edited = await svc.edit(me, state.mid, reason=reason, place=state.place)
    else:
        edited = await svc.edit(me, state.mid, reason=reason, topic=state.topic)
    await c.flows.clear(me)
    text, rows = await card_view(c, svc, lang, me, edited.meeting.id)
    head = c.t(lang, "meeting.edit.done_quiet" if edited.quiet else "meeting.edit.done", count=edited.told)
    await say(update, context, head + "\n\n" + text, rows, edit=update.callback_query is not None)


async def apply_cancel(update: Update, context: BotContext, state: MeetingFlowState, reason: str) -> None:
    """Cancel the meeting with the reason picked or typed."""
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    assert state.mid is not None
    meeting, told = await service(context).cancel(me, state.mid, reason)
    await c.flows.clear(me)
    await say(update, context, c.t(lang, "meeting.cancel.done", count=told, topic=meeting.topic),
              edit=update.callback_query is not None)


# --- buttons, one function per action ------------------------------------------------------------------

ButtonStep = Callable[[Update, BotContext, MeetingFlowState, MeetingFlow], Awaitable[None]]


async def on_abort(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    c = context.core
    await c.flows.clear(person(update))
    lang = await lang_of(update, context)
    key = "meeting.cancel.kept" if state.mode == Mode.CANCEL else "meeting.new.aborted"
    await say(update, context, c.t(lang, key), edit=True)


async def on_kind(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    if not 0 <= data.value < len(KINDS):
        raise ValueError(data.value)
    state.kind = KINDS[data.value]
    orgs = await service(context).schedulable_orgs(person(update))
    if state.kind == MeetingKind.GROUP:
        orgs = [(0, o) for _, o in orgs if o.kind == OrgKind.party_group] or orgs
    if len(orgs) == 1:
        await choose_org(update, context, state, orgs[0][1].id, edit=True)
        return
    lang = await lang_of(update, context)
    screen = await org_step(context.core, service(context), lang, person(update), state)
    await show(update, context, state, Step.ORG, screen, edit=True)


async def on_org(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    await choose_org(update, context, state, data.value, edit=True)


async def on_scope(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    c = context.core
    state.below = data.value == 1
    assert state.org is not None
    if state.below and not await c.orgs.can_manage(person(update), state.org):
        raise NotAllowed("below")
    lang = await lang_of(update, context)
    await show(update, context, state, Step.DATE,
               date_step(c, service(context), lang, c.t(lang, "meeting.new.pick_date")), edit=True)


async def on_day(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    day = datetime.strptime(str(data.value), "%Y%m%d").date()
    state.day = day.isoformat()
    lang = await lang_of(update, context)
    await show(update, context, state, Step.EDIT_TIME if state.editing else Step.TIME,
               time_step(context.core, service(context), lang, day), edit=True)


async def on_other_day(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    c = context.core
    lang = await lang_of(update, context)
    await show(update, context, state, Step.EDIT_DATE if state.editing else Step.DATE,
               date_step(c, service(context), lang, c.t(lang, "meeting.new.pick_date")), edit=True)


async def on_hour(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    if not (0 <= data.value // 100 < 24 and 0 <= data.value % 100 < 60):
        raise ValueError(data.value)
    state.start, state.end = f"{data.value // 100:02d}:{data.value % 100:02d}", None
    check_moment(service(context), state)
    await after_time_chosen(update, context, state, edit=True)


async def on_length(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    if data.value not in LENGTH_CHOICES:
        raise ValueError(data.value)
    await take_length(update, context, state, state.moments(service(context).tz)[0]
                      + timedelta(minutes=data.value), edit=True)


async def take_length(update: Update, context: BotContext, state: MeetingFlowState, end: datetime,
                      edit: bool) -> None:
    """The end is known: checked with the start, then on to the place."""
    starts, _ = state.moments(service(context).tz)
    if end.date() != starts.date():
        raise Refused("readable.meeting.same_day")
    state.end = end.strftime("%H:%M")
    check_moment(service(context), state)
    await after_time_chosen(update, context, state, edit)


async def on_place(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    if not 0 <= data.value < len(state.places):
        raise ValueError(data.value)
    await take_place(update, context, state, state.places[data.value], edit=True)


async def on_lecturer_me(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    state.lecturer = await context.core.people.display_name(person(update))
    state.lecturer_id = person(update)
    await to_confirm(update, context, state, edit=True)


async def on_send(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    await create_from_flow(update, context, state)


async def on_people(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    c = context.core
    lang = await lang_of(update, context)
    rows = [[Button(c.t(lang, "meeting.button.back"), MEETING_FLOW(FlowAction.BACK))]]
    await show(update, context, state, Step.PEOPLE, (c.t(lang, "meeting.new.ask_people"), rows), edit=True)


async def on_repeat(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    """Any repeat button: open the repeat screen, or change one of its choices."""
    repeat = state.repeat or Repeat()
    if data.action == FlowAction.REPEAT_RULE:
        repeat.rule = "weekday" if data.value == 1 else "monthday"
    elif data.action == FlowAction.REPEAT_HOLIDAY:
        repeat.shift = not repeat.shift
    elif data.action == FlowAction.REPEAT_LEAD:
        if data.value not in LEAD_CHOICES:
            raise ValueError(data.value)
        repeat.lead = data.value
    state.repeat = repeat
    lang = await lang_of(update, context)
    await show(update, context, state, Step.REPEAT, repeat_step(context.core, service(context), lang, state),
               edit=True)


async def on_back_to_confirm(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    if data.action == FlowAction.NO_REPEAT:
        state.repeat = None
    await to_confirm(update, context, state, edit=True)


async def on_no_reason(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    await apply_edit(update, context, state, None)


async def on_cancel_reason(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    if not 0 <= data.value < len(CANCEL_REASONS):
        raise ValueError(data.value)
    lang = await lang_of(update, context)
    await apply_cancel(update, context, state, context.core.t(lang, CANCEL_REASONS[data.value]))


async def on_keep(update: Update, context: BotContext, state: MeetingFlowState, data: MeetingFlow) -> None:
    c = context.core
    await c.flows.clear(person(update))
    lang = await lang_of(update, context)
    await say(update, context, c.t(lang, "meeting.cancel.kept"), edit=True)


# action -> (the steps where it is valid; None: any step of the flow, the handler)
BUTTONS: dict[FlowAction, tuple[frozenset[Step] | None, ButtonStep]] = {
    FlowAction.ABORT: (None, on_abort),
    FlowAction.KIND: (frozenset({Step.KIND}), on_kind),
    FlowAction.ORG: (frozenset({Step.ORG}), on_org),
    FlowAction.SCOPE: (frozenset({Step.SCOPE}), on_scope),
    FlowAction.DAY: (frozenset({Step.DATE, Step.EDIT_DATE}), on_day),
    FlowAction.HOUR: (frozenset({Step.TIME, Step.EDIT_TIME}), on_hour),
    FlowAction.OTHER_DAY: (frozenset({Step.TIME, Step.EDIT_TIME}), on_other_day),
    FlowAction.LENGTH: (frozenset({Step.LENGTH}), on_length),
    FlowAction.PLACE: (frozenset({Step.PLACE}), on_place),
    FlowAction.LECTURER_ME: (frozenset({Step.LECTURER}), on_lecturer_me),
    FlowAction.SEND: (frozenset({Step.CONFIRM}), on_send),
    FlowAction.PEOPLE: (frozenset({Step.CONFIRM}), on_people),
    FlowAction.REPEAT: (frozenset({Step.CONFIRM}), on_repeat),
    FlowAction.REPEAT_RULE: (frozenset({Step.REPEAT}), on_repeat),
    FlowAction.REPEAT_HOLIDAY: (frozenset({Step.REPEAT}), on_repeat),
    FlowAction.REPEAT_LEAD: (frozenset({Step.REPEAT}), on_repeat),
    FlowAction.REPEAT_DONE: (frozenset({Step.REPEAT}), on_back_to_confirm),
    FlowAction.NO_REPEAT: (frozenset({Step.REPEAT}), on_back_to_confirm),
    FlowAction.BACK: (frozenset({Step.PEOPLE}), on_back_to_confirm),
    FlowAction.NO_REASON: (frozenset({Step.EDIT_REASON}), on_no_reason),
    FlowAction.CANCEL_REASON: (frozenset({Step.CANCEL_REASON}), on_cancel_reason),
    FlowAction.KEEP: (frozenset({Step.CANCEL_REASON}), on_keep),
}


@guarded
async def flow_button(update: Update, context: BotContext) -> None:
    """A button of the scheduling (or edit/cancel) flow; stale unless it belongs to the current step."""
    query = update.callback_query
    assert query is not None
    data = MEETING_FLOW.parse(query.data)
    state = await flow_state(context, person(update))
    if data is None or state is None:
        await stale(update, context)
        return
    steps, handler = BUTTONS[data.action]
    if steps is not None and state.step not in steps:
        await stale(update, context)
        return
    await query.answer()
    await handler(update, context, state, data)


# --- typed answers, one function per step ----------------------------------------------------------

# How much of a typed org name the "not found" answer quotes (the name may be as long as a message).
ECHO_ROOM = 40
TypedStep = Callable[[Update, BotContext, MeetingFlowState, str], Awaitable[None]]


async def typed_org(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    c = context.core
    found = await c.orgs.by_code(text)
    orgs = [o for _, o in await service(context).schedulable_orgs(person(update))]
    match = found or next((o for o in orgs if o.name == text), None)
    if match is None:
        await reply(update, context, "meeting.error.unknown_org", text=clip(text, ECHO_ROOM))
        return
    await choose_org(update, context, state, match.id, edit=False)


async def typed_when(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    """A typed date, time, or both (12月6日 上午9点, 明天下午三点, 2026-12-06 09:00–11:00)."""
    c, svc = context.core, service(context)
    today = local_today(c.clock.now(), svc.tz)
    try:
        when = parse_when(text, today)
    except Unreadable:
        await reply(update, context, "meeting.error.unreadable")
        return
    if when.day is not None:
        state.day = when.day.isoformat()
    elif state.day is None or state.step in (Step.DATE, Step.EDIT_DATE):
        state.day = today.isoformat()
    if when.start is None:
        lang = await lang_of(update, context)
        await show(update, context, state, Step.EDIT_TIME if state.editing else Step.TIME,
                   time_step(c, svc, lang, state.day_date()), edit=False)
        return
    state.start = when.start.strftime("%H:%M")
    state.end = when.end.strftime("%H:%M") if when.end else None
    check_moment(svc, state)
    await after_time_chosen(update, context, state, edit=False)


async def typed_length(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    svc = service(context)
    starts, _ = state.moments(svc.tz)
    try:
        end = read_length(text, starts, local_today(context.core.clock.now(), svc.tz))
    except Unreadable:
        # Said with the length buttons again: whoever could not type it can still tap it.
        lang = await lang_of(update, context)
        _, rows = length_step(context.core, svc, lang, state)
        await show(update, context, state, Step.LENGTH,
                   (context.core.t(lang, "readable.meeting.unreadable_length"), rows), edit=False)
        return
    await take_length(update, context, state, end, edit=False)


async def typed_place(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    await take_place(update, context, state, text, edit=False)


async def typed_topic(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    state.topic = service(context).check_topic(text)
    if state.editing:
        await after_time_chosen(update, context, state, edit=False)
    elif state.kind == MeetingKind.LECTURE:
        lang = await lang_of(update, context)
        await show(update, context, state, Step.LECTURER, lecturer_step(context.core, lang), edit=False)
    else:
        await to_confirm(update, context, state, edit=False)


async def typed_lecturer(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    svc = service(context)
    state.lecturer = svc.check_lecturer(text)
    # A lecturer the bot knows by that name is recorded (it counts for "the secretary lectured").
    found, _ = await svc.resolve_people(person(update), [state.lecturer])
    state.lecturer_id = next(iter(found)) if len(found) == 1 else None
    await to_confirm(update, context, state, edit=False)


async def typed_people(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    """Names, @usernames or Telegram ids to invite, typed in the flow (or to add to a meeting)."""
    c, svc, me = context.core, service(context), person(update)
    lang = await lang_of(update, context)
    found, unknown = await svc.resolve_people(me, re.split(r"[\s,，、;；]+", text))
    lines = []
    # One message of ids can name hundreds of people: each list is clipped so that the screen fits
    # one message; the count below it and the roster show everyone.
    if found:
        lines.append(clip(c.t(lang, "meeting.new.people_added", names=svc.fmt.join(lang, found.values())),
                          PEOPLE_ROOM))
    if unknown:
        lines.append(clip(c.t(lang, "meeting.new.people_unknown", names=svc.fmt.join(lang, unknown)),
                          PEOPLE_ROOM))
    if state.mode == Mode.ADD:
        assert state.mid is not None
        added = await svc.add_people(me, state.mid, list(found)) if found else []
        await c.flows.clear(me)
        lines.append(c.t(lang, "meeting.new.people_invited", count=len(added)))
        await say(update, context, "\n".join(lines))
        return
    state.extra = list(dict.fromkeys([*state.extra, *found]))
    await to_confirm(update, context, state, edit=False, head="\n".join(lines))


async def typed_edit_reason(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    await apply_edit(update, context, state, service(context).check_reason(text))


async def typed_cancel_reason(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    await apply_cancel(update, context, state, text)


async def use_buttons(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    await reply(update, context, "meeting.new.use_buttons")


TYPED: dict[Step, TypedStep] = {
    Step.KIND: use_buttons,
    Step.ORG: typed_org,
    Step.DATE: typed_when,
    Step.TIME: typed_when,
    Step.EDIT_DATE: typed_when,
    Step.EDIT_TIME: typed_when,
    Step.LENGTH: typed_length,
    Step.PLACE: typed_place,
    Step.EDIT_PLACE: typed_place,
    Step.TOPIC: typed_topic,
    Step.EDIT_TOPIC: typed_topic,
    Step.LECTURER: typed_lecturer,
    Step.PEOPLE: typed_people,
    Step.ADD_PEOPLE: typed_people,
    Step.EDIT_REASON: typed_edit_reason,
    Step.CANCEL_REASON: typed_cancel_reason,
    Step.CONFIRM: use_buttons,
    Step.REPEAT: use_buttons,
    Step.SCOPE: use_buttons,
}
