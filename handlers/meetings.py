"""Meetings in chat: /newmeeting (a tap-friendly flow whose state lives in the database),
/meetings, /checkin, /ledger, /meetingsettings, /committee, and the buttons on notices, reminders
and meeting cards. Callback data is `mt:<action>:<ids>`; the service checks every right."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from telegram import InputFile, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler

from bot.context import BotContext
from bot.core import Core
from bot.outbox import Button
from bot.services.flows import FlowState
from bot.services.meeting_text import QUOTA_SETTING_KEYS, WEEKDAY_KEYS, local_today
from bot.services.meeting_time import Rule, Unreadable, parse_period, parse_when, rule_from_date
from bot.services.meetings import (
    DEFAULT_DURATION,
    KINDS,
    OFFSET_CHOICES,
    QUOTA_KINDS,
    Attendee,
    Draft,
    Meeting,
    MeetingService,
    Refused,
    Roster,
    SeriesSpec,
)
from bot.services.orgs import NotAllowed, NotFound
from handlers import system
from handlers.common import LEADERS, Command, answer_callback, as_int, keyboard, lang_of, reply

FLOW = "meeting"
MEMBERS = frozenset({"member", "secretary", "organizer", "admin"})
MAX_BUTTONS = 40
PICKER_DAYS = 14
PICKER_HOURS = range(7, 22)
MARK_PAGE = 10
LEAD_CHOICES = (3, 7, 14)
LEAVE_REASONS = ("meeting.leave.reason_sick", "meeting.leave.reason_away", "meeting.leave.reason_family",
                 "meeting.leave.reason_work")
CANCEL_REASONS = ("meeting.cancel.reason_conflict", "meeting.cancel.reason_weather",
                  "meeting.cancel.reason_superior")
ANSWER_MARK = "👉 "  # the line under a notice that shows the person's answer; replaced on each change


def service(context: BotContext) -> MeetingService:
    return context.core.meetings


# --- small helpers ------------------------------------------------------------------------------

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
        try:
            await query.edit_message_text(text, reply_markup=markup)
            return
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return
            raise
    assert update.effective_message is not None
    await update.effective_message.reply_text(text, reply_markup=markup)


async def alert(update: Update, context: BotContext, text: str) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer(text[:200], show_alert=True)


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
        await alert(update, context, text)
    else:
        assert update.effective_message is not None
        await update.effective_message.reply_text(text)


def _ints(fields: list[str]) -> list[int] | None:
    values = [as_int(f) for f in fields]
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


# --- the meeting card ----------------------------------------------------------------------------

async def card_view(c: Core, svc: MeetingService, lang: str, person_id: int,
                    meeting_id: int) -> tuple[str, list[list[Button]]]:
    """The meeting as this person may see it: details, their answer, and the buttons they may use."""
    meeting, attendee, manages = await svc.viewable(person_id, meeting_id)
    now = c.clock.now()
    lines = [c.t(lang, "meeting.card.title"), *svc.card(lang, meeting, now)]
    if meeting.status == "cancelled":
        lines.append(c.t(lang, "meeting.card.cancelled", reason=meeting.cancel_reason or ""))
    elif meeting.status == "held":
        lines.append(c.t(lang, "meeting.card.held"))
    rows: list[list[Button]] = []
    if attendee is not None:
        lines.append(svc.text.answer_line(lang, attendee.answer, attendee.leave_reason))
        if attendee.checked_in_at is not None:
            lines.append(c.t(lang, "meeting.card.checked_in", time=svc.text.clock(lang, attendee.checked_in_at)))
        if meeting.status == "scheduled":
            checkin_open = meeting.starts_at - timedelta(minutes=30) <= now <= meeting.ends_at
            if now < meeting.starts_at:
                rows += svc.text.reply_buttons(lang, meeting.id, checkin=checkin_open)
            elif checkin_open:
                rows.append([Button(c.t(lang, "meeting.button.checkin"), f"mt:ci:{meeting.id}")])
    if manages:
        attendees = await svc.attendees(meeting.id)
        lines.append(c.t(lang, "meeting.card.summary", invited=len(attendees),
                         attend=sum(1 for a in attendees if a.answer == "attend"),
                         leave=sum(1 for a in attendees if a.answer == "leave"),
                         none=sum(1 for a in attendees if a.answer is None),
                         checked=sum(1 for a in attendees if a.attended)))
        rows += manage_buttons(c, lang, meeting, now, await series_active(svc, meeting))
    return "\n".join(lines), rows


async def series_active(svc: MeetingService, meeting: Meeting) -> bool:
    if meeting.series_id is None:
        return False
    row = await svc.series(meeting.series_id)
    return bool(row and row["active"])


def manage_buttons(c: Core, lang: str, meeting: Meeting, now: datetime, series: bool) -> list[list[Button]]:
    mid = meeting.id
    rows = [[Button(c.t(lang, "meeting.button.roster"), f"mt:r:{mid}")]]
    if meeting.status == "scheduled" and now < meeting.starts_at:
        rows[0].append(Button(c.t(lang, "meeting.button.edit"), f"mt:e:{mid}"))
        rows.append([Button(c.t(lang, "meeting.button.add_people"), f"mt:ap:{mid}"),
                     Button(c.t(lang, "meeting.button.cancel"), f"mt:x:{mid}")])
    elif meeting.status == "scheduled":
        rows[0].append(Button(c.t(lang, "meeting.button.minutes"), f"mt:m:{mid}"))
        if now < meeting.ends_at:
            rows.append([Button(c.t(lang, "meeting.button.cancel"), f"mt:x:{mid}")])
    if series and meeting.series_id is not None:
        rows.append([Button(c.t(lang, "meeting.button.stop_series"), f"mt:ss:{meeting.series_id}")])
    return rows


# --- /newmeeting: the scheduling flow -----------------------------------------------------------

async def newmeeting_command(update: Update, context: BotContext) -> None:
    """Step 1 of scheduling a meeting: pick its kind."""
    c = context.core
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    if not await service(context).schedulable_orgs(user.id):
        await say(update, context, c.t(lang, "meeting.error.no_orgs"))
        return
    await c.flows.set(user.id, FLOW, "kind", {"mode": "new"})
    await say(update, context, *kind_step(c, service(context), lang))


def kind_step(c: Core, svc: MeetingService, lang: str) -> tuple[str, list[list[Button]]]:
    """Step 1: one button per kind of meeting."""
    buttons = [Button(svc.text.kind(lang, kind), f"mt:k:{i}") for i, kind in enumerate(KINDS)]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([Button(c.t(lang, "meeting.new.abort"), "mt:q")])
    return c.t(lang, "meeting.new.pick_kind"), rows


async def org_step(c: Core, svc: MeetingService, lang: str, person_id: int,
                   data: dict[str, Any]) -> tuple[str, list[list[Button]]]:
    """The orgs the person may schedule for (party groups only, for a party-group meeting)."""
    orgs = await svc.schedulable_orgs(person_id)
    if data["kind"] == "group_meeting" and any(o.kind == "party_group" for _, o in orgs):
        orgs = [(d, o) for d, o in orgs if o.kind == "party_group"]
    rows = [[Button(f"{'· ' * depth}{org.name}", f"mt:o:{org.id}")] for depth, org in orgs[:MAX_BUTTONS]]
    rows.append([Button(c.t(lang, "meeting.new.abort"), "mt:q")])
    text = c.t(lang, "meeting.new.pick_org", kind=svc.text.kind(lang, data["kind"]))
    if len(orgs) > MAX_BUTTONS:
        text += "\n" + c.t(lang, "meeting.new.type_org", shown=MAX_BUTTONS, total=len(orgs))
    return text, rows


def date_step(c: Core, svc: MeetingService, lang: str, title: str) -> tuple[str, list[list[Button]]]:
    """The next two weeks as buttons (typing a date works too)."""
    today = local_today(c.clock.now(), svc.tz)
    buttons = []
    for i in range(PICKER_DAYS):
        day = today + timedelta(days=i)
        label = svc.text.short_day(lang, day) + " " + c.t(lang, WEEKDAY_KEYS[day.weekday()])
        if i == 0:
            label = c.t(lang, "meeting.day.today") + " " + label
        buttons.append(Button(label, f"mt:d:{day:%Y%m%d}"))
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([Button(c.t(lang, "meeting.new.abort"), "mt:q")])
    return title + "\n" + c.t(lang, "meeting.new.type_date"), rows


def time_step(c: Core, svc: MeetingService, lang: str, day: date) -> tuple[str, list[list[Button]]]:
    """Whole hours 07:00–21:00 (only those still ahead, today) as buttons."""
    now_local = c.clock.now().astimezone(svc.tz)
    hours = [h for h in PICKER_HOURS if day > now_local.date() or h > now_local.hour]
    buttons = [Button(f"{h:02d}:00", f"mt:h:{h:02d}00") for h in hours]
    rows = [buttons[i:i + 4] for i in range(0, len(buttons), 4)]
    rows.append([Button(c.t(lang, "meeting.new.other_day"), "mt:dd"), Button(c.t(lang, "meeting.new.abort"), "mt:q")])
    return c.t(lang, "meeting.new.pick_time", date=svc.text.day(lang, day)), rows


async def place_step(c: Core, svc: MeetingService, lang: str, org_id: int,
                     data: dict[str, Any]) -> tuple[str, list[list[Button]]]:
    """Ask for the place, offering the org's last few places as buttons."""
    data["places"] = await svc.recent_places(org_id)
    rows = [[Button(place[:40], f"mt:p:{i}")] for i, place in enumerate(data["places"])]
    rows.append([Button(c.t(lang, "meeting.new.abort"), "mt:q")])
    return c.t(lang, "meeting.new.ask_place"), rows


def topic_step(c: Core, lang: str, kind: str) -> tuple[str, list[list[Button]]]:
    key = "meeting.new.ask_topic_lecture" if kind == "party_lecture" else "meeting.new.ask_topic"
    return c.t(lang, key), [[Button(c.t(lang, "meeting.new.abort"), "mt:q")]]


def lecturer_step(c: Core, lang: str) -> tuple[str, list[list[Button]]]:
    return c.t(lang, "meeting.new.ask_lecturer"), [[Button(c.t(lang, "meeting.new.lecturer_me"), "mt:lm")],
                                                     [Button(c.t(lang, "meeting.new.abort"), "mt:q")]]


def draft_of(svc: MeetingService, data: dict[str, Any]) -> Draft:
    """The flow's data as a Draft (local date and times in the bot's time zone)."""
    day = date.fromisoformat(data["day"])
    starts = datetime.combine(day, time.fromisoformat(data["start"]), tzinfo=svc.tz)
    ends = datetime.combine(day, time.fromisoformat(data["end"]), tzinfo=svc.tz) if data.get("end") \
        else starts + DEFAULT_DURATION
    return Draft(kind=data["kind"], org_id=data["org"], include_below=bool(data.get("below")), starts_at=starts,
                 ends_at=ends, place=data.get("place", ""), topic=data.get("topic", ""),
                 lecturer=data.get("lecturer"), lecturer_id=data.get("lecturer_id"),
                 extra_people=list(data.get("extra", [])))


def repeat_rule(svc: MeetingService, data: dict[str, Any]) -> Rule:
    return rule_from_date(data["repeat"]["rule"], date.fromisoformat(data["day"]))


def repeat_text(c: Core, svc: MeetingService, lang: str, data: dict[str, Any]) -> str:
    rule = repeat_rule(svc, data)
    text = svc.text.rule(lang, rule.kind, rule.day, rule.nth, rule.weekday, data["start"])
    shift = "meeting.new.holiday_shift" if data["repeat"]["shift"] else "meeting.new.holiday_keep"
    return c.t(lang, "meeting.new.repeat_line", rule=text, holiday=c.t(lang, shift),
               days=data["repeat"]["lead"])


async def confirm_step(c: Core, svc: MeetingService, lang: str, person_id: int,
                       data: dict[str, Any]) -> tuple[str, list[list[Button]]]:
    """The summary to check, how many are invited, and the last buttons (send, add people, repeat)."""
    draft = draft_of(svc, data)
    org = await c.orgs.get(draft.org_id)
    count = await svc.preview_count(person_id, draft)
    lines = [c.t(lang, "meeting.new.confirm_title"),
             *svc.text.card_lines(lang, org=org.name if org else "?", kind=draft.kind, starts_at=draft.starts_at,
                                  ends_at=draft.ends_at, place=draft.place, topic=draft.topic,
                                  lecturer=draft.lecturer, now=c.clock.now())]
    if draft.include_below:
        lines.append(c.t(lang, "meeting.new.below_line"))
    if data.get("repeat"):
        lines.append(repeat_text(c, svc, lang, data))
    lines.append(c.t(lang, "meeting.new.count_line", count=count))
    rows = [[Button(c.t(lang, "meeting.new.send"), "mt:ok")],
            [Button(c.t(lang, "meeting.new.add_people"), "mt:pp"),
             Button(c.t(lang, "meeting.new.repeat"), "mt:rp")],
            [Button(c.t(lang, "meeting.new.abort"), "mt:q")]]
    return "\n".join(lines), rows


def repeat_step(c: Core, svc: MeetingService, lang: str, data: dict[str, Any]) -> tuple[str, list[list[Button]]]:
    """Monthly by day or by weekday, what a holiday does, and how many days ahead to announce."""
    day = date.fromisoformat(data["day"])
    chosen = data["repeat"]
    rows = []
    for code, kind in (("d", "monthday"), ("w", "weekday")):
        rule = rule_from_date(kind, day)
        label = svc.text.rule(lang, rule.kind, rule.day, rule.nth, rule.weekday, data["start"])
        rows.append([Button(("✅ " if chosen["rule"] == kind else "") + label, f"mt:rr:{code}")])
    shift = "meeting.new.holiday_shift" if chosen["shift"] else "meeting.new.holiday_keep"
    rows.append([Button(c.t(lang, shift), "mt:rh")])
    rows.append([Button(("✅ " if chosen["lead"] == d else "") + c.t(lang, "meeting.new.lead", days=d), f"mt:rl:{d}")
                 for d in LEAD_CHOICES])
    rows.append([Button(c.t(lang, "meeting.new.repeat_done"), "mt:rd"),
                 Button(c.t(lang, "meeting.new.no_repeat"), "mt:rn")])
    return c.t(lang, "meeting.new.repeat_pick") + "\n" + repeat_text(c, svc, lang, data), rows


async def after_time_chosen(update: Update, context: BotContext, state: FlowState,
                            data: dict[str, Any], edit: bool) -> None:
    """Date and time are known: on to the place (new) or the reason (edit)."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    if data["mode"] == "edit":
        await c.flows.set(user.id, FLOW, "edit_reason", data)
        await say(update, context, c.t(lang, "meeting.edit.ask_reason"),
                  [[Button(c.t(lang, "meeting.edit.no_reason"), "mt:es")],
                   [Button(c.t(lang, "meeting.new.abort"), "mt:q")]], edit=edit)
        return
    text, rows = await place_step(c, svc, lang, data["org"], data)
    await c.flows.set(user.id, FLOW, "place", data)
    await say(update, context, text, rows, edit=edit)


def check_moment(svc: MeetingService, data: dict[str, Any]) -> None:
    """Refused when the chosen date and time are past, too far ahead, or end before they start."""
    draft = draft_of(svc, {**data, "kind": data.get("kind", "other"), "org": data.get("org", 0)})
    svc.check_start(draft.starts_at, draft.ends_at)


async def flow_button(update: Update, context: BotContext, action: str, fields: list[str]) -> None:
    """A button of the scheduling (or edit/cancel) flow; stale unless it belongs to the current step."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    query = update.callback_query
    assert user is not None and query is not None
    lang = await lang_of(update, context)
    state = await c.flows.get(user.id)
    if state is None or state.flow != FLOW:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    data = dict(state.data)
    step = state.step
    allowed = {
        "q": None, "k": {"kind"}, "o": {"org"}, "b": {"scope"}, "d": {"date", "edit_date"},
        "h": {"time", "edit_time"}, "dd": {"time", "edit_time"}, "p": {"place"}, "lm": {"lecturer"},
        "ok": {"confirm"}, "pp": {"confirm"}, "rp": {"confirm"}, "rr": {"repeat"}, "rh": {"repeat"},
        "rl": {"repeat"}, "rd": {"repeat"}, "rn": {"repeat"}, "bk": {"people"}, "es": {"edit_reason"},
        "xr": {"cancel_reason"}, "xk": {"cancel_reason"},
    }[action]
    if allowed is not None and step not in allowed:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    try:
        if action == "q":
            await c.flows.clear(user.id)
            await query.answer()
            key = "meeting.cancel.kept" if data.get("mode") == "cancel" else "meeting.new.aborted"
            await say(update, context, c.t(lang, key), edit=True)
            return
        if action == "k":
            index = as_int(fields[0]) if fields else None
            if index is None or not 0 <= index < len(KINDS):
                raise ValueError(fields)
            data["kind"] = KINDS[index]
            orgs = await svc.schedulable_orgs(user.id)
            if data["kind"] == "group_meeting":
                groups = [o for _, o in orgs if o.kind == "party_group"]
                orgs = [(0, o) for o in groups] or orgs
            await query.answer()
            if len(orgs) == 1:
                await choose_org(update, context, data, orgs[0][1].id, edit=True)
                return
            await c.flows.set(user.id, FLOW, "org", data)
            await say(update, context, *await org_step(c, svc, lang, user.id, data), edit=True)
            return
        if action == "o":
            org_id = as_int(fields[0]) if fields else None
            if org_id is None:
                raise ValueError(fields)
            await query.answer()
            await choose_org(update, context, data, org_id, edit=True)
            return
        if action == "b":
            data["below"] = fields == ["1"]
            if data["below"] and not await c.orgs.can_manage(user.id, data["org"]):
                raise NotAllowed("below")
            await c.flows.set(user.id, FLOW, "date", data)
            await query.answer()
            await say(update, context, *date_step(c, svc, lang, c.t(lang, "meeting.new.pick_date")), edit=True)
            return
        if action == "d":
            day = datetime.strptime(fields[0], "%Y%m%d").date() if fields else None
            if day is None:
                raise ValueError(fields)
            data["day"] = day.isoformat()
            await c.flows.set(user.id, FLOW, "edit_time" if data["mode"] == "edit" else "time", data)
            await query.answer()
            await say(update, context, *time_step(c, svc, lang, day), edit=True)
            return
        if action == "dd":
            await c.flows.set(user.id, FLOW, "edit_date" if data["mode"] == "edit" else "date", data)
            await query.answer()
            await say(update, context, *date_step(c, svc, lang, c.t(lang, "meeting.new.pick_date")), edit=True)
            return
        if action == "h":
            hhmm = fields[0] if fields and re.fullmatch(r"\d{4}", fields[0]) else None
            if hhmm is None:
                raise ValueError(fields)
            data["start"] = f"{hhmm[:2]}:{hhmm[2:]}"
            data["end"] = None
            check_moment(svc, data)
            await query.answer()
            await after_time_chosen(update, context, state, data, edit=True)
            return
        if action == "p":
            index = as_int(fields[0]) if fields else None
            places = data.get("places", [])
            if index is None or not 0 <= index < len(places):
                raise ValueError(fields)
            await query.answer()
            await take_place(update, context, data, places[index], edit=True)
            return
        if action == "lm":
            data["lecturer"] = await c.people.display_name(user.id)
            data["lecturer_id"] = user.id
            await c.flows.set(user.id, FLOW, "confirm", data)
            await query.answer()
            await say(update, context, *await confirm_step(c, svc, lang, user.id, data), edit=True)
            return
        if action == "ok":
            await query.answer()
            await create_from_flow(update, context, data)
            return
        if action == "pp":
            await c.flows.set(user.id, FLOW, "people", data)
            await query.answer()
            await say(update, context, c.t(lang, "meeting.new.ask_people"),
                      [[Button(c.t(lang, "meeting.button.back"), "mt:bk")]], edit=True)
            return
        if action in ("rp", "rr", "rh", "rl"):
            repeat = dict(data.get("repeat") or {"rule": "monthday", "shift": True, "lead": 7})
            if action == "rr":
                repeat["rule"] = "weekday" if fields == ["w"] else "monthday"
            elif action == "rh":
                repeat["shift"] = not repeat["shift"]
            elif action == "rl":
                lead = as_int(fields[0]) if fields else None
                if lead not in LEAD_CHOICES:
                    raise ValueError(fields)
                repeat["lead"] = lead
            data["repeat"] = repeat
            await c.flows.set(user.id, FLOW, "repeat", data)
            await query.answer()
            await say(update, context, *repeat_step(c, svc, lang, data), edit=True)
            return
        if action in ("rd", "rn", "bk"):
            if action == "rn":
                data["repeat"] = None
            await c.flows.set(user.id, FLOW, "confirm", data)
            await query.answer()
            await say(update, context, *await confirm_step(c, svc, lang, user.id, data), edit=True)
            return
        if action == "es":
            await query.answer()
            await apply_edit(update, context, data, None)
            return
        if action == "xr":
            index = as_int(fields[0]) if fields else None
            if index is None or not 0 <= index < len(CANCEL_REASONS):
                raise ValueError(fields)
            await query.answer()
            await apply_cancel(update, context, data, c.t(lang, CANCEL_REASONS[index]))
            return
        if action == "xk":
            await c.flows.clear(user.id)
            await query.answer()
            await say(update, context, c.t(lang, "meeting.cancel.kept"), edit=True)
            return
    except (Refused, NotAllowed, NotFound) as exc:
        await refuse(update, context, exc)
        return
    except ValueError:
        pass
    await answer_callback(update, context, "error.stale_button", alert=True)


async def choose_org(update: Update, context: BotContext, data: dict[str, Any], org_id: int,
                     edit: bool) -> None:
    """The org is chosen: ask an organizer whether it goes to every org below, else on to the date."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    org = await c.orgs.get(org_id)
    if org is None or not await svc.can_schedule(user.id, org_id):
        raise NotAllowed("org")
    data["org"] = org_id
    data["below"] = False
    below = len(await c.orgs.subtree(org_id)) - 1
    if below and data["kind"] != "group_meeting" and await c.orgs.can_manage(user.id, org_id):
        await c.flows.set(user.id, FLOW, "scope", data)
        await say(update, context, c.t(lang, "meeting.new.pick_scope", org=org.name, count=below),
                  [[Button(c.t(lang, "meeting.new.scope_this", org=org.name), "mt:b:0")],
                   [Button(c.t(lang, "meeting.new.scope_below", org=org.name), "mt:b:1")],
                   [Button(c.t(lang, "meeting.new.abort"), "mt:q")]], edit=edit)
        return
    await c.flows.set(user.id, FLOW, "date", data)
    await say(update, context, *date_step(c, svc, lang, c.t(lang, "meeting.new.pick_date")), edit=edit)


async def take_place(update: Update, context: BotContext, data: dict[str, Any], place: str,
                     edit: bool) -> None:
    """A typed or tapped place: on to the topic (new) or the reason (edit)."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    if data["mode"] == "edit":
        data["place"] = svc.check_place(place)
        await after_time_chosen(update, context, FlowState(FLOW, "edit_reason", data), data, edit)
        return
    data["place"] = svc.check_place(place)
    data.pop("places", None)
    await c.flows.set(user.id, FLOW, "topic", data)
    await say(update, context, *topic_step(c, lang, data["kind"]), edit=edit)


async def create_from_flow(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    """Confirmed: schedule the meeting (or the monthly series) and show its card."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    draft = draft_of(svc, data)
    if data.get("repeat"):
        repeat = data["repeat"]
        spec = SeriesSpec(rule=repeat_rule(svc, data), holiday_shift=bool(repeat["shift"]), lead_days=repeat["lead"])
        series_id, created = await svc.create_series(user.id, draft, spec)
        await c.flows.clear(user.id)
        lines = [c.t(lang, "meeting.new.series_created", rule=repeat_text(c, svc, lang, data))]
        if created:
            for meeting in created:
                lines.append(c.t(lang, "meeting.new.series_first", when=svc.text.when(lang, meeting.starts_at)))
            text, rows = await card_view(c, svc, lang, user.id, created[0].id)
            await say(update, context, "\n".join(lines) + "\n\n" + text, rows, edit=True)
            return
        upcoming = await svc.next_occurrence(series_id)
        if upcoming is not None:
            lines.append(c.t(lang, "meeting.new.series_later", date=svc.text.day(lang, upcoming),
                             notice=svc.text.day(lang, upcoming - timedelta(days=spec.lead_days))))
        await say(update, context, "\n".join(lines), edit=True)
        return
    created_one = await svc.create(user.id, draft)
    await c.flows.clear(user.id)
    text, rows = await card_view(c, svc, lang, user.id, created_one.meeting.id)
    head = c.t(lang, "meeting.new.created", count=created_one.notified)
    await say(update, context, head + "\n\n" + text, rows, edit=True)


async def apply_edit(update: Update, context: BotContext, data: dict[str, Any],
                     reason: str | None) -> None:
    """Apply the edit collected by the flow; everyone invited is told by the service."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    changes: dict[str, Any] = {}
    if data["field"] == "t":
        draft = draft_of(svc, {**data, "kind": "other", "org": 0})
        changes = {"starts_at": draft.starts_at, "ends_at": draft.ends_at if data.get("end") else None}
    elif data["field"] == "p":
        changes = {"place": data["place"]}
    else:
        changes = {"topic": data["topic"]}
    meeting, told = await svc.edit(user.id, data["mid"], reason=reason, **changes)
    await c.flows.clear(user.id)
    text, rows = await card_view(c, svc, lang, user.id, meeting.id)
    await say(update, context, c.t(lang, "meeting.edit.done", count=told) + "\n\n" + text, rows,
              edit=update.callback_query is not None)


async def apply_cancel(update: Update, context: BotContext, data: dict[str, Any], reason: str) -> None:
    """Cancel the meeting with the reason picked or typed."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    meeting, told = await svc.cancel(user.id, data["mid"], reason)
    await c.flows.clear(user.id)
    await say(update, context, c.t(lang, "meeting.cancel.done", count=told, topic=meeting.topic),
              edit=update.callback_query is not None)


# --- typed answers to the flow ------------------------------------------------------------------

async def flow_message(update: Update, context: BotContext) -> None:
    """The person's next message in a meeting flow: a typed date, place, topic, reason, names, or minutes."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    message = update.effective_message
    assert user is not None and message is not None
    lang = await lang_of(update, context)
    state = await c.flows.get(user.id)
    if state is None:
        return
    data = dict(state.data)
    step = state.step
    text = (message.text or "").strip()
    try:
        if step == "minutes":
            await minutes_message(update, context, data)
            return
        if not message.text:
            await reply(update, context, "meeting.error.text_only")
            return
        if step == "kind":
            await reply(update, context, "meeting.new.use_buttons")
            return
        if step == "org":
            found = await c.orgs.by_code(text)
            orgs = [o for _, o in await svc.schedulable_orgs(user.id)]
            match = found or next((o for o in orgs if o.name == text), None)
            if match is None:
                await reply(update, context, "meeting.error.unknown_org", text=text)
                return
            await choose_org(update, context, data, match.id, edit=False)
            return
        if step in ("date", "time", "edit_date", "edit_time"):
            today = local_today(c.clock.now(), svc.tz)
            try:
                when = parse_when(text, today)
            except Unreadable:
                await reply(update, context, "meeting.error.unreadable")
                return
            if when.day is not None:
                data["day"] = when.day.isoformat()
            elif "day" not in data or step in ("date", "edit_date"):
                data["day"] = today.isoformat()
            if when.start is None:
                editing = data["mode"] == "edit"
                await c.flows.set(user.id, FLOW, "edit_time" if editing else "time", data)
                await say(update, context, *time_step(c, svc, lang, date.fromisoformat(data["day"])))
                return
            data["start"] = when.start.strftime("%H:%M")
            data["end"] = when.end.strftime("%H:%M") if when.end else None
            check_moment(svc, data)
            await after_time_chosen(update, context, state, data, edit=False)
            return
        if step in ("place", "edit_place"):
            await take_place(update, context, data, text, edit=False)
            return
        if step in ("topic", "edit_topic"):
            data["topic"] = svc.check_topic(text)
            if data["mode"] == "edit":
                await after_time_chosen(update, context, state, data, edit=False)
                return
            if data["kind"] == "party_lecture":
                await c.flows.set(user.id, FLOW, "lecturer", data)
                await say(update, context, *lecturer_step(c, lang))
                return
            await c.flows.set(user.id, FLOW, "confirm", data)
            await say(update, context, *await confirm_step(c, svc, lang, user.id, data))
            return
        if step == "lecturer":
            data["lecturer"] = svc.check_lecturer(text)
            # A lecturer the bot knows by that name is recorded (it counts for "the secretary lectured").
            found, _ = await svc.resolve_people(user.id, [data["lecturer"]])
            data["lecturer_id"] = next(iter(found)) if len(found) == 1 else None
            await c.flows.set(user.id, FLOW, "confirm", data)
            await say(update, context, *await confirm_step(c, svc, lang, user.id, data))
            return
        if step in ("people", "add_people"):
            await people_message(update, context, data, text)
            return
        if step == "edit_reason":
            await apply_edit(update, context, data, svc.check_reason(text))
            return
        if step == "cancel_reason":
            await apply_cancel(update, context, data, text)
            return
        if step == "leave_reason":
            attendee = await svc.answer(user.id, data["mid"], "leave", text)
            await c.flows.clear(user.id)
            await reply(update, context, "meeting.answer.leave_ok", reason=attendee.leave_reason or "")
            return
        if step in ("confirm", "repeat", "scope"):
            await reply(update, context, "meeting.new.use_buttons")
            return
    except (Refused, NotAllowed, NotFound) as exc:
        await refuse(update, context, exc)
        return
    await reply(update, context, "meeting.new.use_buttons")


async def people_message(update: Update, context: BotContext, data: dict[str, Any], text: str) -> None:
    """Names, @usernames or Telegram ids to invite, typed in the flow."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    found, unknown = await svc.resolve_people(user.id, re.split(r"[\s,，、;；]+", text))
    lines = []
    if found:
        lines.append(c.t(lang, "meeting.new.people_added", names="、".join(found.values())))
    if unknown:
        lines.append(c.t(lang, "meeting.new.people_unknown", names="、".join(unknown)))
    if data["mode"] == "add":
        added = await svc.add_people(user.id, data["mid"], list(found)) if found else []
        await c.flows.clear(user.id)
        lines.append(c.t(lang, "meeting.new.people_invited", count=len(added)))
        await say(update, context, "\n".join(lines))
        return
    data["extra"] = list(dict.fromkeys([*data.get("extra", []), *found]))
    await c.flows.set(user.id, FLOW, "confirm", data)
    head = "\n".join(lines)
    body, rows = await confirm_step(c, svc, lang, user.id, data)
    await say(update, context, head + "\n\n" + body, rows)


async def minutes_message(update: Update, context: BotContext, data: dict[str, Any]) -> None:
    """Text, a photo or a document becomes part of the meeting's minutes."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    message = update.effective_message
    assert user is not None and message is not None
    lang = await lang_of(update, context)
    if message.photo:
        counts = await svc.add_minutes(user.id, data["mid"], "photo", text=message.caption,
                                       file_id=message.photo[-1].file_id)
    elif message.document:
        counts = await svc.add_minutes(user.id, data["mid"], "document", text=message.caption,
                                       file_id=message.document.file_id, file_name=message.document.file_name)
    elif message.text:
        counts = await svc.add_minutes(user.id, data["mid"], "text", text=message.text)
    else:
        await reply(update, context, "meeting.minutes.unsupported")
        return
    await say(update, context, c.t(lang, "meeting.minutes.saved", texts=counts["text"], photos=counts["photo"],
                                   documents=counts["document"]),
              [[Button(c.t(lang, "meeting.button.close"), f"mt:mc:{data['mid']}")]])


# --- members: answers, leave, calendar, check-in ------------------------------------------------

async def show_answer_under(update: Update, context: BotContext, line: str) -> None:
    """Put the person's answer under the notice they pressed (replacing an earlier answer line)."""
    query = update.callback_query
    if query is None or query.message is None or not getattr(query.message, "text", None):
        return
    body = [x for x in query.message.text.split("\n") if not x.startswith(ANSWER_MARK)]  # type: ignore[union-attr]
    try:
        await query.edit_message_text("\n".join([*body, ANSWER_MARK + line]),
                                      reply_markup=query.message.reply_markup)  # type: ignore[union-attr]
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


async def member_button(update: Update, context: BotContext, action: str, fields: list[str]) -> None:
    """Attend, leave (with a reason picked or typed), the calendar file, check-in, the card."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    query = update.callback_query
    assert user is not None and query is not None
    lang = await lang_of(update, context)
    numbers = _ints(fields)
    if not numbers:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    meeting_id = numbers[0]
    if action == "a":
        attendee = await svc.answer(user.id, meeting_id, "attend")
        await answer_callback(update, context, "meeting.answer.attend_ok")
        await show_answer_under(update, context, svc.text.answer_line(lang, attendee.answer, None))
    elif action == "l":
        await svc.answerable(user.id, meeting_id)
        rows = [[Button(c.t(lang, LEAVE_REASONS[i]), f"mt:lr:{meeting_id}:{i}") for i in (0, 1)],
                [Button(c.t(lang, LEAVE_REASONS[i]), f"mt:lr:{meeting_id}:{i}") for i in (2, 3)],
                [Button(c.t(lang, "meeting.leave.other"), f"mt:lt:{meeting_id}")]]
        await query.answer()
        await say(update, context, c.t(lang, "meeting.leave.ask"), rows)
    elif action == "lr" and len(numbers) == 2 and 0 <= numbers[1] < len(LEAVE_REASONS):
        reason = c.t(lang, LEAVE_REASONS[numbers[1]])
        attendee = await svc.answer(user.id, meeting_id, "leave", reason)
        await answer_callback(update, context, "meeting.answer.leave_ok", reason=reason)
        await say(update, context, c.t(lang, "meeting.answer.leave_ok", reason=attendee.leave_reason or ""),
                  edit=True)
    elif action == "lt":
        await svc.answerable(user.id, meeting_id)
        await c.flows.set(user.id, FLOW, "leave_reason", {"mode": "leave", "mid": meeting_id})
        await query.answer()
        await say(update, context, c.t(lang, "meeting.leave.type"), edit=True)
    elif action == "i":
        filename, content = await svc.ics(user.id, meeting_id, lang)
        await query.answer()
        assert update.effective_message is not None
        await update.effective_message.reply_document(InputFile(content, filename=filename),
                                                      caption=c.t(lang, "meeting.calendar.caption"))
    elif action == "ci":
        meeting, at, already = await svc.check_in(user.id, meeting_id)
        key = "meeting.checkin.already" if already else "meeting.checkin.done"
        await answer_callback(update, context, key, alert=True, topic=meeting.topic, time=svc.text.clock(lang, at))
        if not already:
            await show_answer_under(update, context, c.t(lang, "meeting.card.checked_in",
                                                         time=svc.text.clock(lang, at)))
    elif action == "v":
        text, rows = await card_view(c, svc, lang, user.id, meeting_id)
        await query.answer()
        await say(update, context, text, rows)
    else:
        await answer_callback(update, context, "error.stale_button", alert=True)


# --- secretaries and organizers: roster, nudge, marks, edit, cancel, minutes ---------------------

def roster_text(c: Core, svc: MeetingService, lang: str, roster: Roster) -> str:
    """Who answered what, who is on leave and why, who came (names cut at 60 per line)."""
    meeting = roster.meeting
    sep = "、" if lang == "zh_CN" else ", "

    def names(people: list[Attendee], with_reason: bool = False) -> str:
        if not people:
            return c.t(lang, "meeting.roster.none")
        shown = [f"{a.name}（{a.leave_reason}）" if with_reason and lang == "zh_CN" else
                 f"{a.name} ({a.leave_reason})" if with_reason else a.name for a in people[:60]]
        more = c.t(lang, "meeting.roster.more", count=len(people) - 60) if len(people) > 60 else ""
        return sep.join(shown) + more

    everyone = roster.attendees
    attend = [a for a in everyone if a.answer == "attend"]
    leave = [a for a in everyone if a.answer == "leave"]
    silent = [a for a in everyone if a.answer is None]
    present = [a for a in everyone if a.attended]
    absent = [a for a in everyone if a.presence == "absent"]
    lines = [c.t(lang, "meeting.roster.title", kind=svc.text.kind(lang, meeting.kind), topic=meeting.topic,
                 when=svc.text.when(lang, meeting.starts_at, c.clock.now()), count=len(everyone)),
             c.t(lang, "meeting.roster.attending", count=len(attend), names=names(attend)),
             c.t(lang, "meeting.roster.leave", count=len(leave), names=names(leave, with_reason=True)),
             c.t(lang, "meeting.roster.no_answer", count=len(silent), names=names(silent)),
             c.t(lang, "meeting.roster.checked_in", count=len(present), names=names(present))]
    if absent:
        lines.append(c.t(lang, "meeting.roster.absent", count=len(absent), names=names(absent)))
    return "\n".join(lines)[:4000]


async def manager_button(update: Update, context: BotContext, action: str, fields: list[str]) -> None:
    """Roster, nudge, attendance marks, edit, cancel, add people, minutes, close, stop a series."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    query = update.callback_query
    assert user is not None and query is not None
    lang = await lang_of(update, context)
    numbers = _ints(fields[:1] if action == "ef" else fields)
    if not numbers:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    meeting_id = numbers[0]
    now = c.clock.now()
    if action == "r":
        roster = await svc.roster(user.id, meeting_id)
        meeting = roster.meeting
        rows: list[list[Button]] = []
        silent = sum(1 for a in roster.attendees if a.answer is None and a.person_id != user.id)
        if meeting.status == "scheduled" and now < meeting.starts_at and silent:
            rows.append([Button(c.t(lang, "meeting.button.nudge", count=silent), f"mt:u:{meeting_id}")])
        if meeting.status != "cancelled" and now >= meeting.starts_at - timedelta(minutes=30):
            rows.append([Button(c.t(lang, "meeting.button.mark"), f"mt:mk:{meeting_id}:0")])
        rows.append([Button(c.t(lang, "meeting.button.refresh"), f"mt:r:{meeting_id}"),
                     Button(c.t(lang, "meeting.button.back"), f"mt:vb:{meeting_id}")])
        await query.answer()
        await say(update, context, roster_text(c, svc, lang, roster), rows, edit=True)
    elif action == "vb":
        text, rows = await card_view(c, svc, lang, user.id, meeting_id)
        await query.answer()
        await say(update, context, text, rows, edit=True)
    elif action == "u":
        count = await svc.nudge(user.id, meeting_id)
        await answer_callback(update, context, "meeting.nudge.done", alert=True, count=count)
    elif action in ("mk", "mp"):
        if action == "mp" and len(numbers) == 3:
            await svc.mark(user.id, meeting_id, numbers[1])
            page = numbers[2]
        elif action == "mk" and len(numbers) == 2:
            page = numbers[1]
        else:
            raise ValueError(fields)
        roster = await svc.roster(user.id, meeting_id)
        if now < roster.meeting.starts_at - timedelta(minutes=30):
            raise Refused("meeting.error.mark_early")
        people = roster.attendees
        pages = max(1, (len(people) + MARK_PAGE - 1) // MARK_PAGE)
        page = min(max(page, 0), pages - 1)
        rows = []
        for a in people[page * MARK_PAGE:(page + 1) * MARK_PAGE]:
            icon = {"present": "✅", "absent": "❌"}.get(a.presence or "", "📍" if a.checked_in_at else "⬜")
            rows.append([Button(f"{icon} {a.name}"[:60], f"mt:mp:{meeting_id}:{a.person_id}:{page}")])
        nav = []
        if page > 0:
            nav.append(Button("⬅️", f"mt:mk:{meeting_id}:{page - 1}"))
        if page < pages - 1:
            nav.append(Button("➡️", f"mt:mk:{meeting_id}:{page + 1}"))
        if nav:
            rows.append(nav)
        rows.append([Button(c.t(lang, "meeting.button.back"), f"mt:r:{meeting_id}")])
        await query.answer()
        await say(update, context, c.t(lang, "meeting.mark.title", page=page + 1, pages=pages), rows, edit=True)
    elif action == "e":
        await svc.manageable(user.id, meeting_id, before_start=True)
        await query.answer()
        await say(update, context, c.t(lang, "meeting.edit.pick"),
                  [[Button(c.t(lang, "meeting.edit.time"), f"mt:ef:{meeting_id}:t")],
                   [Button(c.t(lang, "meeting.edit.place"), f"mt:ef:{meeting_id}:p")],
                   [Button(c.t(lang, "meeting.edit.topic"), f"mt:ef:{meeting_id}:a")],
                   [Button(c.t(lang, "meeting.button.back"), f"mt:vb:{meeting_id}")]], edit=True)
    elif action == "ef" and len(fields) == 2 and fields[1] in ("t", "p", "a"):
        meeting = await svc.manageable(user.id, meeting_id, before_start=True)
        data = {"mode": "edit", "mid": meeting_id, "field": fields[1],
                "end": None}
        await query.answer()
        if fields[1] == "t":
            await c.flows.set(user.id, FLOW, "edit_date", data)
            await say(update, context, *date_step(c, svc, lang, c.t(lang, "meeting.edit.ask_date",
                                                                      when=svc.text.when(lang, meeting.starts_at))))
        elif fields[1] == "p":
            await c.flows.set(user.id, FLOW, "edit_place", data)
            await say(update, context, c.t(lang, "meeting.edit.ask_place", old=meeting.place))
        else:
            await c.flows.set(user.id, FLOW, "edit_topic", data)
            await say(update, context, c.t(lang, "meeting.edit.ask_topic", old=meeting.topic))
    elif action == "x":
        meeting = await svc.manageable(user.id, meeting_id)
        if meeting.status == "cancelled":
            raise Refused("meeting.error.cancelled", reason=meeting.cancel_reason or "")
        if meeting.status == "held" or now >= meeting.ends_at:
            raise Refused("meeting.error.ended")
        await c.flows.set(user.id, FLOW, "cancel_reason", {"mode": "cancel", "mid": meeting_id})
        await query.answer()
        rows = [[Button(c.t(lang, key), f"mt:xr:{i}")] for i, key in enumerate(CANCEL_REASONS)]
        rows.append([Button(c.t(lang, "meeting.cancel.keep"), "mt:xk")])
        await say(update, context, c.t(lang, "meeting.cancel.ask_reason", topic=meeting.topic), rows)
    elif action == "ap":
        await svc.manageable(user.id, meeting_id, before_start=True)
        await c.flows.set(user.id, FLOW, "add_people", {"mode": "add", "mid": meeting_id})
        await query.answer()
        await say(update, context, c.t(lang, "meeting.new.ask_people"))
    elif action == "m":
        counts = await svc.begin_minutes(user.id, meeting_id)
        await c.flows.set(user.id, FLOW, "minutes", {"mode": "minutes", "mid": meeting_id})
        await query.answer()
        rows = [[Button(c.t(lang, "meeting.button.close"), f"mt:mc:{meeting_id}")]] if sum(counts.values()) else []
        await say(update, context, c.t(lang, "meeting.minutes.ask", texts=counts["text"], photos=counts["photo"],
                                       documents=counts["document"]), rows)
    elif action == "mc":
        meeting, stats = await svc.close(user.id, meeting_id)
        state = await c.flows.get(user.id)
        if state is not None and state.flow == FLOW and state.data.get("mid") == meeting_id:
            await c.flows.clear(user.id)
        await query.answer()
        await say(update, context, c.t(lang, "meeting.minutes.closed", topic=meeting.topic, **stats), edit=True)
    elif action == "ss":
        await svc.stop_series(user.id, meeting_id)
        await answer_callback(update, context, "meeting.series.stopped", alert=True)
    else:
        await answer_callback(update, context, "error.stale_button", alert=True)


# --- settings, committee, ledger ------------------------------------------------------------------

async def settings_view(c: Core, svc: MeetingService, lang: str, person_id: int,
                        org_id: int) -> tuple[str, list[list[Button]]]:
    """An org's reminder times (toggles) and, for organizers, its required frequencies (cycle on tap)."""
    org = await c.orgs.get(org_id)
    if org is None:
        raise NotFound("org")
    if not await svc.can_schedule(person_id, org_id):
        raise NotAllowed("settings")
    offsets, quotas, _ = await svc.settings_of(org_id)
    manager = await c.orgs.can_manage(person_id, org_id)
    sep = "、" if lang == "zh_CN" else ", "
    offset_text = sep.join(svc.text.offset(lang, m) for m in offsets) or c.t(lang, "meeting.settings.no_reminders")
    quota_lines = [c.t(lang, "meeting.settings.quota_line", kind=svc.text.kind(lang, kind),
                       period=c.t(lang, QUOTA_SETTING_KEYS[quotas[kind]]))
                   for kind in QUOTA_KINDS if quotas.get(kind, "none") != "none"]
    text = c.t(lang, "meeting.settings.title", org=org.name, offsets=offset_text,
               quotas="\n".join(quota_lines) or c.t(lang, "meeting.settings.no_quotas"))
    toggles = [Button(("✅ " if m in offsets else "") + svc.text.offset(lang, m), f"mt:so:{org_id}:{m}")
               for m in OFFSET_CHOICES]
    rows = [toggles[i:i + 3] for i in range(0, len(toggles), 3)]
    if manager:
        text += "\n" + c.t(lang, "meeting.settings.quota_hint")
        for i, kind in enumerate(QUOTA_KINDS):
            rows.append([Button(c.t(lang, "meeting.settings.quota_button", kind=svc.text.kind(lang, kind),
                                    period=c.t(lang, QUOTA_SETTING_KEYS[quotas.get(kind, "none")])),
                                f"mt:sq:{org_id}:{i}")])
    rows.append([Button(c.t(lang, "meeting.settings.defaults"), f"mt:sd:{org_id}")])
    return text, rows


async def pick_org(update: Update, context: BotContext, action: str, title_key: str) -> int | None:
    """The orgs the person leads as buttons `mt:<action>:<org>`; returns the org at once when there is one."""
    c = context.core
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    orgs = await service(context).schedulable_orgs(user.id)
    if not orgs:
        await reply(update, context, "error.not_allowed")
        return None
    if len(orgs) == 1:
        return orgs[0][1].id
    rows = [[Button(f"{'· ' * depth}{org.name}", f"mt:{action}:{org.id}")] for depth, org in orgs[:MAX_BUTTONS]]
    await say(update, context, c.t(lang, title_key), rows)
    return None


async def settings_command(update: Update, context: BotContext) -> None:
    """Reminder times and required meeting frequencies of an org."""
    org_id = await pick_org(update, context, "sg", "meeting.settings.pick_org")
    if org_id is not None:
        await show_settings(update, context, org_id, edit=False)


async def show_settings(update: Update, context: BotContext, org_id: int, edit: bool) -> None:
    """Render the settings screen (or say why not)."""
    c = context.core
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    try:
        text, rows = await settings_view(c, service(context), lang, user.id, org_id)
    except (NotAllowed, NotFound) as exc:
        await refuse(update, context, exc)
        return
    await say(update, context, text, rows, edit=edit)


async def committee_command(update: Update, context: BotContext) -> None:
    """Who is on a branch committee (invited to 支部委员会会议)."""
    org_id = await pick_org(update, context, "cg", "meeting.committee.pick_org")
    if org_id is not None:
        await show_committee(update, context, org_id, edit=False)


async def show_committee(update: Update, context: BotContext, org_id: int, edit: bool) -> None:
    """The committee list with one button per person (tap to change their place on it)."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    org = await c.orgs.get(org_id)
    try:
        if org is None:
            raise NotFound("org")
        people = await svc.committee(user.id, org_id)
    except (NotAllowed, NotFound) as exc:
        await refuse(update, context, exc)
        return
    titles = {"secretary": "meeting.committee.secretary", "deputy": "meeting.committee.deputy",
              "member": "meeting.committee.member"}
    rows = [[Button(f"{name}：{c.t(lang, titles[title]) if title else '—'}"[:60], f"mt:cm:{org_id}:{pid}")]
            for pid, name, title in people[:MAX_BUTTONS]]
    await say(update, context, c.t(lang, "meeting.committee.title", org=org.name), rows, edit=edit)


async def ledger_command(update: Update, context: BotContext) -> None:
    """The org's meeting ledger as an Excel file: /ledger [ORG_CODE] [period]."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    today = local_today(c.clock.now(), svc.tz)
    org_id: int | None = None
    period_words = []
    for arg in context.args or []:
        org = await c.orgs.by_code(arg)
        if org is not None:
            org_id = org.id
        else:
            period_words.append(arg)
    bounds: tuple[date, date] | None = (date(today.year, 1, 1), date(today.year, 12, 31))  # this year
    if period_words:
        bounds = parse_period(" ".join(period_words), today)
    if bounds is None and len(period_words) == 2:
        try:
            bounds = (date.fromisoformat(period_words[0]), date.fromisoformat(period_words[1]))
        except ValueError:
            bounds = None
    if bounds is None:
        await reply(update, context, "meeting.ledger.bad_period")
        return
    first, last = bounds
    if org_id is None:
        orgs = await svc.schedulable_orgs(user.id)
        if not orgs:
            await reply(update, context, "error.not_allowed")
            return
        if len(orgs) > 1:
            rows = [[Button(f"{'· ' * depth}{org.name}", f"mt:lg:{org.id}:{first:%Y%m%d}:{last:%Y%m%d}")]
                    for depth, org in orgs[:MAX_BUTTONS]]
            await say(update, context, c.t(lang, "meeting.ledger.pick_org", first=first.isoformat(),
                                           last=last.isoformat()), rows)
            return
        org_id = orgs[0][1].id
    await send_ledger(update, context, org_id, first, last)


async def send_ledger(update: Update, context: BotContext, org_id: int, first: date,
                      last: date) -> None:
    """Build the workbook (the service checks the right) and send it to the person who asked."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None and update.effective_message is not None
    lang = await lang_of(update, context)
    try:
        filename, content = await svc.ledger(user.id, org_id, first, last, lang)
    except (NotAllowed, NotFound, Refused) as exc:
        await refuse(update, context, exc)
        return
    org = await c.orgs.get(org_id)
    await update.effective_message.reply_document(
        InputFile(content, filename=filename),
        caption=c.t(lang, "meeting.ledger.caption", org=org.name if org else "", first=first.isoformat(),
                    last=last.isoformat()))


async def settings_button(update: Update, context: BotContext, action: str, fields: list[str]) -> None:
    """Settings, committee and ledger buttons (every change is checked by the service)."""
    svc = service(context)
    user = update.effective_user
    query = update.callback_query
    assert user is not None and query is not None
    if action == "lg" and len(fields) == 3:
        org_id = as_int(fields[0])
        try:
            first = datetime.strptime(fields[1], "%Y%m%d").date()
            last = datetime.strptime(fields[2], "%Y%m%d").date()
        except ValueError:
            org_id = None
        if org_id is None:
            await answer_callback(update, context, "error.stale_button", alert=True)
            return
        await query.answer()
        await send_ledger(update, context, org_id, first, last)
        return
    numbers = _ints(fields)
    if not numbers:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    org_id = numbers[0]
    if action == "sg":
        await query.answer()
        await show_settings(update, context, org_id, edit=True)
    elif action == "so" and len(numbers) == 2:
        await svc.toggle_offset(user.id, org_id, numbers[1])
        await query.answer()
        await show_settings(update, context, org_id, edit=True)
    elif action == "sq" and len(numbers) == 2 and 0 <= numbers[1] < len(QUOTA_KINDS):
        await svc.cycle_quota(user.id, org_id, QUOTA_KINDS[numbers[1]])
        await query.answer()
        await show_settings(update, context, org_id, edit=True)
    elif action == "sd":
        await svc.reset_settings(user.id, org_id)
        await answer_callback(update, context, "meeting.settings.reset_done")
        await show_settings(update, context, org_id, edit=True)
    elif action == "cg":
        await query.answer()
        await show_committee(update, context, org_id, edit=True)
    elif action == "cm" and len(numbers) == 2:
        await svc.cycle_committee(user.id, org_id, numbers[1])
        await query.answer()
        await show_committee(update, context, org_id, edit=True)
    else:
        await answer_callback(update, context, "error.stale_button", alert=True)


# --- /meetings and /checkin -------------------------------------------------------------------------

async def meetings_command(update: Update, context: BotContext) -> None:
    """The person's upcoming meetings and answers (and, for leaders, the meetings they run)."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    now = c.clock.now()
    mine = await svc.upcoming(user.id)
    managed = await svc.managed(user.id)
    lines = [c.t(lang, "meeting.list.title")]
    rows: list[list[Button]] = []
    if not mine:
        lines.append(c.t(lang, "meeting.list.none"))
    answers = {"attend": "meeting.list.answer_attend", "leave": "meeting.list.answer_leave"}
    for meeting, attendee in mine:
        lines.append(c.t(lang, "meeting.list.item", when=svc.text.when(lang, meeting.starts_at, now),
                         kind=svc.text.kind(lang, meeting.kind), topic=meeting.topic, place=meeting.place,
                         answer=c.t(lang, answers.get(attendee.answer or "", "meeting.list.answer_none"))))
        rows.append([Button(f"{svc.text.short_day(lang, local_today(meeting.starts_at, svc.tz))} "
                            f"{svc.text.kind(lang, meeting.kind)}"[:60], f"mt:v:{meeting.id}")])
    mine_ids = {m.id for m, _ in mine}
    extra = [m for m in managed if m.id not in mine_ids]
    if extra:
        lines.append("")
        lines.append(c.t(lang, "meeting.list.managed"))
        for meeting in extra:
            lines.append(c.t(lang, "meeting.list.managed_item", when=svc.text.when(lang, meeting.starts_at, now),
                             kind=svc.text.kind(lang, meeting.kind), topic=meeting.topic, org=meeting.org_name))
            rows.append([Button(f"🗂 {svc.text.short_day(lang, local_today(meeting.starts_at, svc.tz))} "
                                f"{svc.text.kind(lang, meeting.kind)}"[:60], f"mt:v:{meeting.id}")])
    if rows:
        lines.append(c.t(lang, "meeting.list.open_hint"))
    await say(update, context, "\n".join(lines)[:4000], rows[:MAX_BUTTONS])


async def checkin_command(update: Update, context: BotContext) -> None:
    """签到 for the meeting happening now (a choice when there are several)."""
    c = context.core
    svc = service(context)
    user = update.effective_user
    assert user is not None
    lang = await lang_of(update, context)
    candidates = await svc.checkin_candidates(user.id)
    if not candidates:
        await reply(update, context, "meeting.checkin.none")
        return
    if len(candidates) > 1:
        rows = [[Button(f"{svc.text.clock(lang, m.starts_at)} {m.topic}"[:60], f"mt:ci:{m.id}")] for m in candidates]
        await say(update, context, c.t(lang, "meeting.checkin.pick"), rows)
        return
    try:
        meeting, at, already = await svc.check_in(user.id, candidates[0].id)
    except (Refused, NotAllowed, NotFound) as exc:
        await refuse(update, context, exc)
        return
    key = "meeting.checkin.already" if already else "meeting.checkin.done"
    await reply(update, context, key, topic=meeting.topic, time=svc.text.clock(lang, at))


# --- dispatch ----------------------------------------------------------------------------------------

FLOW_ACTIONS = frozenset({"q", "k", "o", "b", "d", "h", "dd", "p", "lm", "ok", "pp", "rp", "rr", "rh", "rl",
                          "rd", "rn", "bk", "es", "xr", "xk"})
MEMBER_ACTIONS = frozenset({"a", "l", "lr", "lt", "i", "ci", "v"})
MANAGER_ACTIONS = frozenset({"r", "vb", "u", "mk", "mp", "e", "ef", "x", "ap", "m", "mc", "ss"})
SETTINGS_ACTIONS = frozenset({"sg", "so", "sq", "sd", "cg", "cm", "lg"})


async def on_button(update: Update, context: BotContext) -> None:
    """Every `mt:` button; a forged, stale or foreign one changes nothing and says why."""
    query = update.callback_query
    assert query is not None
    parts = (query.data or "").split(":")
    action, fields = (parts[1], parts[2:]) if len(parts) >= 2 else ("", [])
    try:
        if action == "new" and not fields:
            await query.answer()
            await newmeeting_command(update, context)
        elif action in FLOW_ACTIONS:
            await flow_button(update, context, action, fields)
        elif action in MEMBER_ACTIONS:
            await member_button(update, context, action, fields)
        elif action in MANAGER_ACTIONS:
            await manager_button(update, context, action, fields)
        elif action in SETTINGS_ACTIONS:
            await settings_button(update, context, action, fields)
        else:
            await answer_callback(update, context, "error.stale_button", alert=True)
    except (Refused, NotAllowed, NotFound) as exc:
        await refuse(update, context, exc)
    except ValueError:
        await answer_callback(update, context, "error.stale_button", alert=True)


COMMANDS = [
    Command("meetings", meetings_command, audience=MEMBERS, menu_key="menu.meetings"),
    Command("newmeeting", newmeeting_command, audience=LEADERS, menu_key="menu.newmeeting"),
    Command("checkin", checkin_command, audience=MEMBERS),
    Command("ledger", ledger_command, audience=LEADERS),
    Command("meetingsettings", settings_command, audience=LEADERS),
    Command("committee", committee_command, audience=LEADERS),
]


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CallbackQueryHandler(on_button, pattern=r"^mt:"))
    system.FLOW_HANDLERS[FLOW] = flow_message
