"""Settings of an org's meetings (/meetingsettings: reminder times, and for organizers above it
the required frequencies), its committee (/committee) and its ledger (/ledger)."""

from __future__ import annotations

from datetime import date, datetime

from telegram import InputFile, Update

from bot.callbacks import MEETING_LEDGER, MEETING_QUOTA, MEETING_SETTINGS, SettingsAction
from bot.context import BotContext
from bot.core import Core
from bot.outbox import Button
from bot.services.meeting_model import OFFSET_CHOICES, QUOTA_KINDS, CommitteeTitle, Period
from bot.services.meeting_text import QUOTA_SETTING_KEYS, local_today
from bot.services.meeting_time import parse_period
from bot.services.meetings import MeetingService
from bot.services.orgs import NotFound
from handlers.common import answer_callback, lang_of, reply
from handlers.meetings.common import MAX_BUTTONS, guarded, person, say, service, stale

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
    """The org's meeting ledger as an Excel file: /ledger [ORG_CODE] [period]."""
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
    bounds = ledger_bounds(period_words, local_today(c.clock.now(), svc.tz))
    if bounds is None:
        await reply(update, context, "meeting.ledger.bad_period")
        return
    first, last = bounds
    if org_id is None:
        orgs = await svc.schedulable_orgs(person(update))
        if not orgs:
            await reply(update, context, "error.not_allowed")
            return
        if len(orgs) > 1:
            rows = [[Button(f"{'· ' * depth}{org.name}",
                            MEETING_LEDGER(org.id, int(f"{first:%Y%m%d}"), int(f"{last:%Y%m%d}")))]
                    for depth, org in orgs[:MAX_BUTTONS]]
            await say(update, context, c.t(lang, "meeting.ledger.pick_org", first=first.isoformat(),
                                           last=last.isoformat()), rows)
            return
        org_id = orgs[0][1].id
    await send_ledger(update, context, org_id, first, last)


def ledger_bounds(words: list[str], today: date) -> tuple[date, date] | None:
    """This year by default; else a period as typed, or two ISO dates."""
    if not words:
        return date(today.year, 1, 1), date(today.year, 12, 31)
    bounds = parse_period(" ".join(words), today)
    if bounds is None and len(words) == 2:
        try:
            bounds = (date.fromisoformat(words[0]), date.fromisoformat(words[1]))
        except ValueError:
            bounds = None
    return bounds


@guarded
async def ledger_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = MEETING_LEDGER.parse(query.data)
    if data is None:
        await stale(update, context)
        return
    first = datetime.strptime(str(data.first), "%Y%m%d").date()
    last = datetime.strptime(str(data.last), "%Y%m%d").date()
    await query.answer()
    await send_ledger(update, context, data.org_id, first, last)


async def send_ledger(update: Update, context: BotContext, org_id: int, first: date, last: date) -> None:
    """Build the workbook (the service checks the right) and send it to the person who asked."""
    c = context.core
    assert update.effective_message is not None
    lang = await lang_of(update, context)
    filename, content = await service(context).ledger(person(update), org_id, first, last, lang)
    org = await c.orgs.get(org_id)
    await update.effective_message.reply_document(
        InputFile(content, filename=filename),
        caption=c.t(lang, "meeting.ledger.caption", org=org.name if org else "", first=first.isoformat(),
                    last=last.isoformat()))
