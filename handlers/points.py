"""Points (积分) and the star rating (评星定级) in chat.

  /points      a member: their own points (this month, this year, where they came from);
               a secretary also: the branch's table → one member → add or deduct (the reason is
               typed), 评星定级 (the proposed stars → the members' vote), and the pledges
               (handlers/pledges.py).
  /pointrules  organisers: the points per event and the star thresholds of an org they lead.

The typed reason goes through the flow store (ADJUST_FLOW, registered in handlers/system.py
FLOW_HANDLERS). Every button's data is a kind from bot/callbacks.py; the services check every
right again, so a forged, stale or foreign press changes nothing and is answered in words."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import PG, PN, PN_RULE, SR, PgAct, PgAction, PnAct, PnAction, PnRule, RuleKey, SrAct, SrAction
from bot.context import BotContext
from bot.limits import MAX_TEXT, clip
from bot.outbox import Button
from bot.services.orgs import NotAllowed, NotFound
from bot.services.points import RULE_KEYS, Line, PointsService, Source, Tally
from bot.services.points_ledger import STATUS_KEYS
from handlers import system
from handlers.common import MANAGERS, Command, guarded_by, lang_of, person, say, say_key

ADJUST_FLOW = "points/adjust"
DELTAS = ((1, 2, 5), (-1, -2, -5))
MAX_PEOPLE_BUTTONS = 80
MAX_ORG_BUTTONS = 90
STAR_STEP = 5
POINT_HOLDERS = frozenset({"member", "secretary", "organizer"})

RULE_LABELS = {Source.MEETING: "points.rules.key.meeting", Source.THEME_DAY: "points.rules.key.theme_day",
               Source.DELIBERATION: "points.rules.key.deliberation", Source.PLEDGE: "points.rules.key.pledge",
               Source.TICKET: "points.rules.key.ticket"}

Handler = Callable[..., Awaitable[None]]


def svc(context: BotContext) -> PointsService:
    return context.core.points


guarded = guarded_by("points.error.not_allowed")


def sources(context: BotContext, lang: str, tally: Tally) -> str:
    return svc(context).sources_text(lang, tally)


# --- /points ---------------------------------------------------------------------------------------

async def points_command(update: Update, context: BotContext) -> None:
    """The person's own points, and for a secretary the way to the branch's table."""
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    parts: list[str] = []
    rows: list[list[Button]] = []
    orgs = await svc(context).member_orgs(me)
    if orgs:
        org_name, month, year = await svc(context).mine(me)
        parts.append(c.t(lang, "points.mine", org=org_name, month=month.total, year=year.total,
                         month_sources=sources(context, lang, month), year_sources=sources(context, lang, year)))
        rows.append([Button(c.t(lang, "pledge.button.board"), PG.encode(PgAct(PgAction.BOARD, orgs[0][0])))])
    tables = await svc(context).secretary_orgs(me)
    # An organiser reads the tables of the branches below (supervision), after their own.
    tables += [o for o in await svc(context).supervised_orgs(me, MAX_ORG_BUTTONS) if o not in tables]
    for org_id, name in tables[:MAX_ORG_BUTTONS]:
        rows.append([Button(c.t(lang, "points.button.table", org=name), PN.encode(PnAct(PnAction.TABLE, org_id)))])
    if not parts:
        parts.append(c.t(lang, "points.none" if not rows else "points.secretary_only"))
    await say(update, context, "\n\n".join(parts), rows)


def table_text(context: BotContext, lang: str, org_name: str, lines: list[Line]) -> str:
    c = context.core
    body = "\n".join(c.t(lang, "points.table.line", n=i, name=line.name, month=line.month.total, year=line.year.total)
                     for i, line in enumerate(lines, start=1))
    return clip(c.t(lang, "points.table.head", org=org_name, lines=body or c.t(lang, "points.table.empty")),
                MAX_TEXT)


async def show_table(update: Update, context: BotContext, org_id: int, edit: bool = False) -> None:
    """The branch's table: each member with this month's and this year's points; a member's name
    opens their points (to add or deduct); the pledges; 督诺 waiting; 评星定级."""
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    lines = await svc(context).table(me, org_id)
    org = await c.orgs.get(org_id)
    assert org is not None
    rows = [[Button(line.name, PN.encode(PnAct(PnAction.PERSON, org_id, line.person_id)))]
            for line in lines[:MAX_PEOPLE_BUTTONS]]
    rows.append([Button(c.t(lang, "pledge.button.board"), PG.encode(PgAct(PgAction.BOARD, org_id)))])
    if await svc(context).is_secretary(me, org_id):
        waiting = len(await c.pledges.pending(me, org_id))
        rows.append([Button(c.t(lang, "pledge.button.pending", n=waiting), PG.encode(PgAct(PgAction.PENDING, org_id)))])
        year = svc(context).today().year
        rows.append([Button(c.t(lang, "points.button.stars", year=y), SR.encode(SrAct(SrAction.PREVIEW, org_id, y)))
                     for y in (year - 1, year)])
    await say(update, context, table_text(context, lang, org.name, lines), rows, edit=edit)


async def show_person(update: Update, context: BotContext, org_id: int, person_id: int) -> None:
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    line = await svc(context).person(me, org_id, person_id)
    text = c.t(lang, "points.person", name=line.name, month=line.month.total, year=line.year.total,
               month_sources=sources(context, lang, line.month), year_sources=sources(context, lang, line.year))
    rows: list[list[Button]] = []
    if await svc(context).is_secretary(me, org_id) and person_id != me:
        rows = [[Button(c.t(lang, "points.button.delta", delta=f"{d:+d}"), PN.encode(PnAct(PnAction.ADJUST, org_id,
                                                                                   person_id, d))) for d in row]
                for row in DELTAS]
    rows.append([Button(c.t(lang, "points.button.back"), PN.encode(PnAct(PnAction.TABLE, org_id)))])
    await say(update, context, text, rows, edit=True)


async def ask_reason(update: Update, context: BotContext, org_id: int, person_id: int, delta: int) -> None:
    """Add or deduct tapped: the reason is typed next (checked again when it comes)."""
    me = person(update)
    if not await svc(context).is_secretary(me, org_id):
        raise NotAllowed("adjust")
    line = await svc(context).person(me, org_id, person_id)
    await context.core.flows.set(me, ADJUST_FLOW, "reason", {"org": org_id, "person": person_id, "delta": delta,
                                                             "name": line.name})
    key = "points.adjust.ask_add" if delta > 0 else "points.adjust.ask_deduct"
    await say_key(update, context, key, name=line.name, n=abs(delta))


@guarded
async def points_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    parsed = PN.parse(query.data)
    if parsed is None:
        raise ValueError(query.data)
    if parsed.action == PnAction.TABLE:
        await show_table(update, context, parsed.org, edit=True)
    elif parsed.action == PnAction.PERSON:
        await show_person(update, context, parsed.org, parsed.person)
    elif parsed.action == PnAction.ADJUST:
        await ask_reason(update, context, parsed.org, parsed.person, parsed.value)
    elif parsed.action == PnAction.RULES:
        await show_rules(update, context, parsed.org, edit=True)
    else:
        await points_command(update, context)


@guarded
async def adjust_message(update: Update, context: BotContext) -> None:
    """The typed reason of an addition or deduction."""
    c, me = context.core, person(update)
    message = update.effective_message
    assert message is not None
    state = await c.flows.get(me)
    if state is None or state.flow != ADJUST_FLOW:
        return
    if not message.text:
        await say_key(update, context, "points.adjust.text_please")
        return
    data = state.data
    await svc(context).adjust(me, int(data["org"]), int(data["person"]), int(data["delta"]), message.text)
    await c.flows.clear(me)
    key = "points.adjust.added" if int(data["delta"]) > 0 else "points.adjust.deducted"
    await say_key(update, context, key, name=data["name"], n=abs(int(data["delta"])), reason=message.text.strip())


# --- 评星定级 -----------------------------------------------------------------------------------------

@guarded
async def stars_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    parsed = SR.parse(query.data)
    if parsed is None:
        raise ValueError(query.data)
    c, me = context.core, person(update)
    lang = await lang_of(update, context)
    if parsed.action == SrAction.OPEN:
        await svc(context).propose_stars(me, parsed.org, parsed.year)
        await say_key(update, context, "points.stars.opened", edit=True, year=parsed.year)
        return
    preview = await svc(context).star_preview(me, parsed.org, parsed.year)
    lines = "\n".join(c.t(lang, "points.stars.line", name=name, points=pts, stars="★" * stars)
                      for _, name, pts, stars in preview)
    done = await svc(context).proposals(me, parsed.org, [parsed.year])
    states = "\n".join(c.t(lang, STATUS_KEYS[p.status]) for p in done)
    text = c.t(lang, "points.stars.preview", year=parsed.year, lines=lines or c.t(lang, "points.table.empty"),
               states=states or c.t(lang, "points.stars.none_yet"))
    rows = [[Button(c.t(lang, "points.button.open_vote"), SR.encode(SrAct(SrAction.OPEN, parsed.org, parsed.year)))],
            [Button(c.t(lang, "points.button.back"), PN.encode(PnAct(PnAction.TABLE, parsed.org)))]]
    await say(update, context, clip(text, MAX_TEXT), rows, edit=True)


# --- /pointrules -------------------------------------------------------------------------------------

async def rules_command(update: Update, context: BotContext) -> None:
    """Organisers: pick an org of theirs, then its rules."""
    c, me = context.core, person(update)
    orgs = [org for _, org in await c.orgs.manageable_orgs(me)]
    if not orgs:
        await say_key(update, context, "points.error.not_allowed")
        return
    rows = [[Button(org.name, PN.encode(PnAct(PnAction.RULES, org.id)))] for org in orgs[:MAX_ORG_BUTTONS]]
    await say_key(update, context, "points.rules.pick", rows)


async def show_rules(update: Update, context: BotContext, org_id: int, edit: bool = False) -> None:
    c, me = context.core, person(update)
    if not await svc(context).may_set_rules(me, org_id):
        raise NotAllowed("rules")
    lang = await lang_of(update, context)
    org = await c.orgs.get(org_id)
    if org is None:
        raise NotFound("org")
    rules = await svc(context).rules(org_id)
    rows: list[list[Button]] = []
    for key in RULE_KEYS:
        value = rules.points[key]
        label = c.t(lang, "points.rules.rule", what=c.t(lang, RULE_LABELS[key]), n=value)
        # The middle button only shows the value (a tap shows the screen again).
        rows.append([Button("➖", PN_RULE.encode(PnRule(org_id, RuleKey(key), max(0, value - 1)))),
                     Button(label, PN.encode(PnAct(PnAction.RULES, org_id))),
                     Button("➕", PN_RULE.encode(PnRule(org_id, RuleKey(key), value + 1)))])
    for i, threshold in enumerate(rules.stars):
        key = RuleKey(f"stars{i + 2}")
        label = c.t(lang, "points.rules.threshold", stars="★" * (i + 2), n=threshold)
        rows.append([Button("➖", PN_RULE.encode(PnRule(org_id, key, threshold - STAR_STEP))),
                     Button(label, PN.encode(PnAct(PnAction.RULES, org_id))),
                     Button("➕", PN_RULE.encode(PnRule(org_id, key, threshold + STAR_STEP)))])
    await say_key(update, context, "points.rules.head", rows, edit=edit, org=org.name)


@guarded
async def rule_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    parsed = PN_RULE.parse(query.data)
    if parsed is None:
        raise ValueError(query.data)
    await svc(context).set_rule(person(update), parsed.org, parsed.key.value, parsed.value)
    await show_rules(update, context, parsed.org, edit=True)


COMMANDS = [
    Command("points", points_command, audience=POINT_HOLDERS),
    Command("pointrules", rules_command, audience=MANAGERS),
]

BUTTONS = [(PN, points_button), (PN_RULE, rule_button), (SR, stars_button)]


def register(app: Application) -> None:  # type: ignore[type-arg]
    for kind, callback in BUTTONS:
        app.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern))
    system.FLOW_HANDLERS[ADJUST_FLOW] = adjust_message
    system.FLOW_LABELS[ADJUST_FLOW] = "points.flow.adjust"
