"""/appoint: organizers and admins appoint or remove secretaries and organizers in three taps;
/invite: secretaries, organizers and admins get a join link for an org they lead."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import (
    APPOINT_CHANGE,
    APPOINT_ORG,
    APPOINT_PERSON,
    INVITE_ORG,
    INVITE_ROLE,
    AppointAction,
    AppointOrg,
    AppointPerson,
    InviteOrg,
    Kind,
    RoleCode,
)
from bot.context import BotContext
from bot.outbox import Button
from bot.services.orgs import APPOINTABLE, ROLES, NotAllowed, NotFound, Org
from handlers.common import LEADERS, MANAGERS, Command, answer_callback, edit_text, keyboard, lang_of

MAX_BUTTONS = 40
_OrgData = TypeVar("_OrgData", AppointOrg, AppointPerson, InviteOrg)  # button data that names an org


async def appoint_command(update: Update, context: BotContext) -> None:
    """Step 1: pick an org the person manages."""
    c = context.core
    user = update.effective_user
    assert user is not None
    await _pick_org(update, context, await c.orgs.manageable_orgs(user.id), APPOINT_ORG, "appoint.pick_org")


async def invite_command(update: Update, context: BotContext) -> None:
    """Step 1 of a chat invite: pick an org the person leads."""
    c = context.core
    user = update.effective_user
    assert user is not None
    orgs = [(d, o) for root in await c.orgs.scope_roots(user.id) for d, o in await c.orgs.subtree(root.id)]
    await _pick_org(update, context, orgs, INVITE_ORG, "invite.pick_org")


async def _pick_org(update: Update, context: BotContext, orgs: list, kind: object, title: str) -> None:
    c = context.core
    assert update.effective_message is not None
    lang = await lang_of(update, context)
    if not orgs:
        await update.effective_message.reply_text(c.t(lang, "error.not_allowed"))
        return
    rows = [[Button(f"{'· ' * depth}{org.name}", kind(org.id))] for depth, org in orgs[:MAX_BUTTONS]]  # type: ignore[operator]
    text = c.t(lang, title)
    if len(orgs) > MAX_BUTTONS:
        text += "\n" + c.t(lang, "appoint.too_many", shown=MAX_BUTTONS, total=len(orgs))
    await update.effective_message.reply_text(text, reply_markup=keyboard(rows))


async def _refuse(update: Update, context: BotContext, key: str) -> None:
    await answer_callback(update, context, key, alert=True)


async def _org_of_button(update: Update, context: BotContext, kind: Kind[_OrgData],
                         may: Callable[[int, int], Awaitable[bool]]) -> tuple[_OrgData, Org] | None:
    """The pressed button's data and its org, when the data is current and the person still has the
    right (`may(person, org id)`, read from the database now, never from the button); otherwise the
    refusal is shown and None returned."""
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    data = kind.parse(query.data)
    if data is None:
        await _refuse(update, context, "error.stale_button")
        return None
    org = await context.core.orgs.get(data.org_id)
    if org is None or not await may(user.id, data.org_id):
        await _refuse(update, context, "error.not_allowed")
        return None
    return data, org


async def appoint_org_chosen(update: Update, context: BotContext) -> None:
    """Step 2: the people of the org (the right is checked again)."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    found = await _org_of_button(update, context, APPOINT_ORG, c.orgs.can_manage)
    if found is None:
        return
    data, org = found
    lang = await lang_of(update, context)
    people = await c.orgs.people_in(user.id, data.org_id)
    rows = [[Button(f"{name} ({c.formatter.join(lang, [c.t(lang, f'role.{r}') for r in roles])})",
                    APPOINT_PERSON(data.org_id, pid))] for pid, name, roles in people[:MAX_BUTTONS]]
    text = c.t(lang, "appoint.pick_person" if people else "appoint.nobody", org=org.name)
    await query.answer()
    await edit_text(query, text, reply_markup=keyboard(rows) if rows else None)


async def appoint_person_chosen(update: Update, context: BotContext) -> None:
    """Step 3: make or remove secretary or organizer."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    found = await _org_of_button(update, context, APPOINT_PERSON, c.orgs.can_manage)
    if found is None:
        return
    data, org = found
    lang = await lang_of(update, context)
    people = await c.orgs.people_in(user.id, data.org_id)
    held = {role for pid, _, roles in people if pid == data.person_id for role in roles}
    name = await c.people.display_name(data.person_id)
    rows = []
    for role in APPOINTABLE:
        action = AppointAction.REMOVE if role in held else AppointAction.GRANT
        label = c.t(lang, "appoint.remove" if action is AppointAction.REMOVE else "appoint.make",
                    role=c.t(lang, f"role.{role}"))
        rows.append([Button(label, APPOINT_CHANGE(action, data.org_id, data.person_id, RoleCode.of(role)))])
    await query.answer()
    await edit_text(query, c.t(lang, "appoint.pick_action", name=name, org=org.name),
                                  reply_markup=keyboard(rows))


async def appoint_change(update: Update, context: BotContext) -> None:
    """The appointment itself; the service checks the right."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    data = APPOINT_CHANGE.parse(query.data)
    if data is None or data.role.role not in APPOINTABLE:
        return await _refuse(update, context, "error.stale_button")
    role, remove = data.role.role, data.action is AppointAction.REMOVE
    try:
        changed = await c.orgs.appoint(user.id, data.person_id, data.org_id, role, remove=remove)
    except NotAllowed:
        return await _refuse(update, context, "error.not_allowed")
    except (NotFound, ValueError):
        return await _refuse(update, context, "error.stale_button")
    lang = await lang_of(update, context)
    org = await c.orgs.get(data.org_id)
    name = await c.people.display_name(data.person_id)
    key = ("appoint.removed" if remove else "appoint.granted") if changed else "appoint.unchanged"
    await query.answer()
    await edit_text(query, c.t(lang, key, name=name, org=org.name if org else "",
                                      role=c.t(lang, f"role.{role}")))


async def invite_org_chosen(update: Update, context: BotContext) -> None:
    """Pick the role the link is for (only roles this person may approve)."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    found = await _org_of_button(update, context, INVITE_ORG, c.orgs.can_approve)
    if found is None:
        return
    data, org = found
    lang = await lang_of(update, context)
    roles = [r for r in ROLES if await c.orgs.can_approve(user.id, data.org_id, r)]
    rows = [[Button(c.t(lang, f"role.{role}"), INVITE_ROLE(data.org_id, RoleCode.of(role)))] for role in roles]
    await query.answer()
    await edit_text(query, c.t(lang, "invite.pick_role", org=org.name), reply_markup=keyboard(rows))


async def invite_role_chosen(update: Update, context: BotContext) -> None:
    """Show the link (the service checks the right to invite)."""
    c = context.core
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    data = INVITE_ROLE.parse(query.data)
    org = await c.orgs.get(data.org_id) if data is not None else None
    if data is None or org is None:
        return await _refuse(update, context, "error.stale_button")
    role = data.role.role
    try:
        invite = await c.invites.create(org.code, role, created_by=user.id)
    except NotAllowed:
        return await _refuse(update, context, "error.not_allowed")
    except NotFound:
        return await _refuse(update, context, "error.stale_button")
    lang = await lang_of(update, context)
    username = await c.bot_username(org.id) or context.bot.username
    await query.answer()
    await edit_text(query, c.t(
        lang, "invite.link", org=org.name, role=c.t(lang, f"role.{role}"),
        link=f"https://t.me/{username}?start={invite.payload}",
        approval=c.t(lang, "invite.public" if role == "resident" else "invite.needs_approval")))


COMMANDS = [
    Command("appoint", appoint_command, audience=MANAGERS, menu_key="menu.appoint"),
    Command("invite", invite_command, audience=LEADERS),
]


def register(app: Application) -> None:  # type: ignore[type-arg]
    for kind, callback in ((APPOINT_ORG, appoint_org_chosen), (APPOINT_PERSON, appoint_person_chosen),
                           (APPOINT_CHANGE, appoint_change), (INVITE_ORG, invite_org_chosen),
                           (INVITE_ROLE, invite_role_chosen)):
        app.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern))
