"""Settings of an org's meetings (/meetingsettings: reminder times, and for organizers above it
the required frequencies), its committee (/committee) and its ledger (/ledger)."""

from __future__ import annotations

from datetime import date, datetime

from telegram import InputFile, Update

from bot.callbacks import (
    MEETING_LEDGER,
    MEETING_LEDGER_MENU,
    MEETING_QUOTA,
    MEETING_SETTINGS,
    LedgerAction,
    SettingsAction,
)
from bot.context import BotContext
from bot.core import Core
from bot.outbox import Button
from bot.services.ledger_period import choices, describe, parse_range
from bot.services.meeting_model import OFFSET_CHOICES, QUOTA_KINDS, CommitteeTitle, Period
from bot.services.meeting_text import QUOTA_SETTING_KEYS, local_today
from bot.services.meetings import MeetingService
from bot.services.orgs import NotAllowed, NotFound, Org
from handlers.common import answer_callback, lang_of, reply
from handlers.meetings.common import MAX_BUTTONS, flow_state, guarded, person, save, say, service, stale
from handlers.meetings.flow import MeetingFlowState, Mode, Step

COMMITTEE_KEYS = {CommitteeTitle.SECRETARY: "meeting.committee.secretary",
                  CommitteeTitle.DEPUTY: "meeting.committee.deputy", CommitteeTitle.MEMBER: "meeting.committee.member"}


async def settings_view(c: Core, svc: MeetingService, lang: str, person_id: int,
                        org_id: int) -> tuple[str, list[list[Button]]]:
    """An org's reminder times (toggles) and, for organizers above it, its required frequencies."""
    view = await svc.settings_of(person_id, org_id)
    org = await c.orgs.get(org_id)
    if org is None:
        raise NotFound("org")
    offset_text = svc.fmt.join(lang, [svc.text.offset(lang, m) for m in view.offsets]) if view.offsets \
        else c.t(lang, "meeting.settings.no_reminders")
    quota_lines = [c.t(lang, "meeting.settings.quota_line", kind=svc.text.kind(lang, kind),
                       period=c.t(lang, QUOTA_SETTING_KEYS[view.quotas[kind]]))
                   for kind in QUOTA_KINDS if view.quotas.get(kind, Period.NONE) != Period.NONE]
    text = c.t(lang, "meeting.settings.title", org=org.name, offsets=offset_text,
               quotas="\n".join(quota_lines) or c.t(lang, "meeting.settings.no_quotas"))
    toggles = [Button(("✅ " if m in view.offsets else "⬜ ") + svc.text.offset(lang, m),
                      MEETING_SETTINGS(SettingsAction.OFFSET, org_id, m)) for m in OFFSET_CHOICES]
    rows = [toggles[i:i + 3] for i in range(0, len(toggles), 3)]
    if view.may_set_quotas:
        text += "\n" + c.t(lang, "meeting.settings.quota_hint")
        for kind in QUOTA_KINDS:
            rows.append([Button(c.t(lang, "meeting.settings.quota_button", kind=svc.text.kind(lang, kind),
                                    period=c.t(lang, QUOTA_SETTING_KEYS[view.quotas.get(kind, Period.NONE)])),
                                MEETING_QUOTA(org_id, kind))])
    rows.append([Button(c.t(lang, "meeting.settings.defaults"), MEETING_SETTINGS(SettingsAction.DEFAULTS, org_id))])
    return text, rows


async def pick_org(update: Update, context: BotContext, action: SettingsAction, title_key: str) -> int | None:
    """The orgs the person leads as buttons; returns the org at once when there is one."""
    c = context.core
    lang = await lang_of(update, context)
    orgs = await service(context).schedulable_orgs(person(update))
    if not orgs:
        await reply(update, context, "error.not_allowed")
        return None
    if len(orgs) == 1:
        return orgs[0][1].id
    rows = [[Button(f"{'· ' * depth}{org.name}", MEETING_SETTINGS(action, org.id))]
            for depth, org in orgs[:MAX_BUTTONS]]
    await say(update, context, c.t(lang, title_key), rows)
    return None


@guarded
async def settings_command(update: Update, context: BotContext) -> None:
    """Reminder times and required meeting frequencies of an org."""
    org_id = await pick_org(update, context, SettingsAction.SHOW, "meeting.settings.pick_org")
    if org_id is not None:
        await show_settings(update, context, org_id, edit=False)


async def show_settings(update: Update, context: BotContext, org_id: int, edit: bool) -> None:
    lang = await lang_of(update, context)
    text, rows = await settings_view(context.core, service(context), lang, person(update), org_id)
    await say(update, context, text, rows, edit=edit)


@guarded
async def committee_command(update: Update, context: BotContext) -> None:
    """Who is on a branch committee (invited to 支部委员会会议)."""
    org_id = await pick_org(update, context, SettingsAction.COMMITTEE, "meeting.committee.pick_org")
    if org_id is not None:
        await show_committee(update, context, org_id, edit=False)


async def show_committee(update: Update, context: BotContext, org_id: int, edit: bool) -> None:
    """The committee list with one button per person (tap to change their place on it)."""
    c = context.core
    lang = await lang_of(update, context)
    org = await c.orgs.get(org_id)
    if org is None:
        raise NotFound("org")
    people = await service(context).committee(person(update), org_id)
    rows = [[Button(c.t(lang, "meeting.committee.line", name=name,
                        title=c.t(lang, COMMITTEE_KEYS[title]) if title else "—")[:60],
                    MEETING_SETTINGS(SettingsAction.COMMITTEE_PERSON, org_id, pid))]
            for pid, name, title in people[:MAX_BUTTONS]]
    await say(update, context, c.t(lang, "meeting.committee.title", org=org.name), rows, edit=edit)


@guarded
async def settings_button(update: Update, context: BotContext) -> None:
    """Settings and committee buttons (every change is checked by the service)."""
    svc, me = service(context), person(update)
    query = update.callback_query
    assert query is not None
    data = MEETING_SETTINGS.parse(query.data)
    if data is None:
        await stale(update, context)
        return
    if data.action == SettingsAction.OFFSET:
        await svc.toggle_offset(me, data.org_id, data.value)
    elif data.action == SettingsAction.DEFAULTS:
        await svc.reset_settings(me, data.org_id)
    elif data.action == SettingsAction.COMMITTEE_PERSON:
        await svc.cycle_committee(me, data.org_id, data.value)
    if data.action == SettingsAction.DEFAULTS:
        await answer_callback(update, context, "meeting.settings.reset_done")
    else:
        await query.answer()
    if data.action in (SettingsAction.COMMITTEE, SettingsAction.COMMITTEE_PERSON):
        await show_committee(update, context, data.org_id, edit=True)
    else:
        await show_settings(update, context, data.org_id, edit=True)


@guarded
async def quota_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = MEETING_QUOTA.parse(query.data)
    if data is None:
        await stale(update, context)
        return
    await service(context).cycle_quota(person(update), data.org_id, data.kind)
    await query.answer()
    await show_settings(update, context, data.org_id, edit=True)


@guarded
async def ledger_command(update: Update, context: BotContext) -> None:
    """The org's meeting ledger as an Excel file. `/ledger` alone: the org (when there are several)
    and then the period, one tap each; `/ledger [ORG_CODE] [period or two dates]` at once."""
    c, svc = context.core, service(context)
    lang = await lang_of(update, context)
    org_id: int | None = None
    period_words = []
    for arg in context.args or []:
        org = await c.orgs.by_code(arg)
        if org is not None:
            org_id = org.id
        else:
            period_words.append(arg)
    bounds = parse_range(" ".join(period_words), local_today(c.clock.now(), svc.tz)) if period_words else None
    if period_words and bounds is None:
        await reply(update, context, "meeting.ledger.bad_period")
        return
    if org_id is None:
        orgs = await svc.schedulable_orgs(person(update))
        if not orgs:
            await reply(update, context, "error.not_allowed")
            return
        if len(orgs) > 1:
            await say(update, context, *pick_org_view(c, svc, lang, orgs[:MAX_BUTTONS], bounds))
            return
        org_id = orgs[0][1].id
    if bounds is None:
        await show_periods(update, context, org_id, edit=False)
        return
    await send_ledger(update, context, org_id, *bounds)


def pick_org_view(c: Core, svc: MeetingService, lang: str, orgs: list[tuple[int, Org]],
                  bounds: tuple[date, date] | None) -> tuple[str, list[list[Button]]]:
    """One button per org (indented by depth): straight to the file when the period was typed,
    else to the period picker."""
    if bounds is None:
        return c.t(lang, "meeting.ledger.pick_org_plain"), [
            [Button(f"{'· ' * depth}{org.name}", MEETING_LEDGER_MENU(LedgerAction.PERIODS, org.id))]
            for depth, org in orgs]
    first, last = bounds
    return c.t(lang, "meeting.ledger.pick_org", period=describe(svc.fmt, lang, first, last)), [
        [Button(f"{'· ' * depth}{org.name}", MEETING_LEDGER(org.id, _day_number(first), _day_number(last)))]
        for depth, org in orgs]


async def show_periods(update: Update, context: BotContext, org_id: int, edit: bool) -> None:
    """The period picker: this year, last year, this and last quarter, each quarter of this year
    begun so far, and typing dates (the service says first whether the person may see the ledger)."""
    c, svc = context.core, service(context)
    lang = await lang_of(update, context)
    org = await svc.ledger_org(person(update), org_id)
    today = local_today(c.clock.now(), svc.tz)
    rows = [[Button(c.t(lang, choice.key, **dict(choice.values)),
                    MEETING_LEDGER(org_id, _day_number(choice.first), _day_number(choice.last)))
             for choice in row] for row in choices(today)]
    rows.append([Button(c.t(lang, "meeting.ledger.pick_type"), MEETING_LEDGER_MENU(LedgerAction.TYPE, org_id))])
    await say(update, context, c.t(lang, "meeting.ledger.pick_period", org=org.name), rows, edit=edit)


def _day_number(day: date) -> int:
    return int(f"{day:%Y%m%d}")


@guarded
async def ledger_button(update: Update, context: BotContext) -> None:
    """A period (or an org, with the period typed earlier) was tapped: the file."""
    query = update.callback_query
    assert query is not None
    data = MEETING_LEDGER.parse(query.data)
    if data is None:
        await stale(update, context)
        return
    first = datetime.strptime(str(data.first), "%Y%m%d").date()
    last = datetime.strptime(str(data.last), "%Y%m%d").date()
    await service(context).ledger_org(person(update), data.org_id)  # refused in the tap's own answer
    await query.answer()
    await _leave_ledger_flow(context, person(update))  # a tap instead of the typed dates asked for
    await send_ledger(update, context, data.org_id, first, last)


@guarded
async def ledger_menu_button(update: Update, context: BotContext) -> None:
    """An org picked (show its periods), or "type dates" (the prompt; the next text answers it)."""
    c = context.core
    query = update.callback_query
    assert query is not None
    data = MEETING_LEDGER_MENU.parse(query.data)
    if data is None:
        await stale(update, context)
        return
    me = person(update)
    await service(context).ledger_org(me, data.org_id)  # refused in the tap's own answer
    if data.action == LedgerAction.PERIODS:
        await query.answer()
        await show_periods(update, context, data.org_id, edit=True)
        return
    await save(context, me, MeetingFlowState(mode=Mode.LEDGER, step=Step.LEDGER_DATES, org=data.org_id))
    await query.answer()
    lang = await lang_of(update, context)
    await say(update, context, c.t(lang, "meeting.ledger.type_prompt"), edit=True)


async def typed_ledger_dates(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    """The typed first and last day. Text that is not two dates (or a period) is answered with how
    to write them, and the prompt stays open; so does a range the service refuses (backwards, too
    long). Only losing the right to the ledger ends the flow."""
    c = context.core
    assert state.org is not None
    bounds = parse_range(text, local_today(c.clock.now(), service(context).tz))
    if bounds is None:
        await reply(update, context, "meeting.ledger.bad_dates")
        return
    try:
        await send_ledger(update, context, state.org, *bounds)
    except (NotAllowed, NotFound):
        await c.flows.clear(person(update))
        raise
    await c.flows.clear(person(update))


async def _leave_ledger_flow(context: BotContext, person_id: int) -> None:
    state = await flow_state(context, person_id)
    if state is not None and state.mode == Mode.LEDGER:
        await context.core.flows.clear(person_id)


async def send_ledger(update: Update, context: BotContext, org_id: int, first: date, last: date) -> None:
    """Build the workbook (the service checks the right) and send it to the person who asked."""
    c, svc = context.core, service(context)
    assert update.effective_message is not None
    lang = await lang_of(update, context)
    filename, content = await c.ledger(person(update), org_id, first, last, lang)  # + rounds and matters
    org = await c.orgs.get(org_id)
    await update.effective_message.reply_document(
        InputFile(content, filename=filename),
        caption=c.t(lang, "meeting.ledger.caption", org=org.name if org else "",
                    period=describe(svc.fmt, lang, first, last)))
