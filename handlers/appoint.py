"""/appoint: organizers and admins appoint or remove secretaries and organizers in three taps;
/invite: secretaries, organizers and admins get a join link for an org they lead."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.context import BotContext
from bot.outbox import Button
from bot.services.orgs import APPOINTABLE, ROLES, NotAllowed, NotFound
from handlers.common import LEADERS, MANAGERS, Command, answer_callback, as_int, keyboard, lang_of, split_data

MAX_BUTTONS = 40
ROLE_CODES = {"s": "secretary", "o": "organizer", "m": "member", "r": "resident"}
CODE_OF_ROLE = {v: k for k, v in ROLE_CODES.items()}


async def appoint_command(update: Update, context: BotContext) -> None:
    """Step 1: pick an org the person manages."""
    await _pick_org(update, context, "ap", "appoint.pick_org")


async def invite_command(update: Update, context: BotContext) -> None:
    """Step 1 of a chat invite: pick an org the person leads."""
    await _pick_org(update, context, "iv", "invite.pick_org")


async def _pick_org(update: Update, context: BotContext, prefix: str, title: str) -> None:
    c = context.core
    user = update.effective_user
    assert user is not None and update.effective_message is not None
    lang = await lang_of(update, context)
    if prefix == "ap":
        orgs = await c.orgs.manageable_orgs(user.id)
    else:
        orgs = [(d, o) for root in await c.orgs.scope_roots(user.id) for d, o in await c.orgs.subtree(root.id)]
    if not orgs:
        await update.effective_message.reply_text(c.t(lang, "error.not_allowed"))
        return
    rows = [[Button(f"{'· ' * depth}{org.name}", f"{prefix}:o:{org.id}")] for depth, org in orgs[:MAX_BUTTONS]]
    text = c.t(lang, title)
    if len(orgs) > MAX_BUTTONS:
        text += "\n" + c.t(lang, "appoint.too_many", shown=MAX_BUTTONS, total=len(orgs))
    await update.effective_message.reply_text(text, reply_markup=keyboard(rows))


async def appoint_button(update: Update, context: BotContext) -> None:
    """Steps 2 and 3 and the action itself; every step re-checks the right in the service."""
    c = context.core
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    lang = await lang_of(update, context)
    data = query.data or ""
    fields = data.split(":")[1:]
    numbers = [as_int(x) for x in fields[1:3]]
    try:
        if len(fields) == 2 and fields[0] == "o" and numbers[0] is not None:
            org_id = numbers[0]
            org = await c.orgs.get(org_id)
            if org is None or not await c.orgs.can_manage(user.id, org_id):
                raise NotAllowed("appoint")
            people = await c.orgs.people_in(org_id)
            rows = [[Button(f"{name} ({'、'.join(c.t(lang, f'role.{r}') for r in roles)})",
                            f"ap:p:{org_id}:{pid}")] for pid, name, roles in people[:MAX_BUTTONS]]
            text = c.t(lang, "appoint.pick_person", org=org.name) if people else c.t(
                lang, "appoint.nobody", org=org.name)
            await query.answer()
            await query.edit_message_text(text, reply_markup=keyboard(rows) if rows else None)
            return
        if len(fields) == 3 and fields[0] == "p" and None not in numbers:
            org_id, person_id = numbers[0], numbers[1]
            assert org_id is not None and person_id is not None
            org = await c.orgs.get(org_id)
            if org is None or not await c.orgs.can_manage(user.id, org_id):
                raise NotAllowed("appoint")
            held = {role for pid, _, roles in await c.orgs.people_in(org_id) if pid == person_id for role in roles}
            name = await c.people.display_name(person_id)
            rows = []
            for role in APPOINTABLE:
                action = "r" if role in held else "g"
                label = c.t(lang, f"appoint.{'remove' if action == 'r' else 'make'}", role=c.t(lang, f"role.{role}"))
                rows.append([Button(label, f"ap:{action}:{org_id}:{person_id}:{CODE_OF_ROLE[role]}")])
            await query.answer()
            await query.edit_message_text(c.t(lang, "appoint.pick_action", name=name, org=org.name),
                                          reply_markup=keyboard(rows))
            return
        if len(fields) == 4 and fields[0] in ("g", "r") and None not in numbers and fields[3] in ROLE_CODES:
            org_id, person_id = numbers[0], numbers[1]
            assert org_id is not None and person_id is not None
            role = ROLE_CODES[fields[3]]
            if role not in APPOINTABLE:
                raise ValueError(role)
            remove = fields[0] == "r"
            changed = await c.orgs.appoint(user.id, person_id, org_id, role, remove=remove)
            org = await c.orgs.get(org_id)
            name = await c.people.display_name(person_id)
            key = ("appoint.removed" if remove else "appoint.granted") if changed else "appoint.unchanged"
            await query.answer()
            await query.edit_message_text(c.t(lang, key, name=name, org=org.name if org else "",
                                              role=c.t(lang, f"role.{role}")))
            return
    except NotAllowed:
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    except (NotFound, ValueError):
        pass
    await answer_callback(update, context, "error.stale_button", alert=True)


async def invite_button(update: Update, context: BotContext) -> None:
    """Pick the role, then show the link (the service checks the right to invite)."""
    c = context.core
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    lang = await lang_of(update, context)
    org_fields = split_data(query.data, "iv", 2)
    role_fields = split_data(query.data, "iv", 3)
    try:
        if org_fields and org_fields[0] == "o" and (org_id := as_int(org_fields[1])) is not None:
            org = await c.orgs.get(org_id)
            if org is None or not await c.orgs.can_approve(user.id, org_id):
                raise NotAllowed("invite")
            roles = [r for r in ROLES if await c.orgs.can_approve(user.id, org_id, r)]
            rows = [[Button(c.t(lang, f"role.{role}"), f"iv:r:{org_id}:{CODE_OF_ROLE[role]}")] for role in roles]
            await query.answer()
            await query.edit_message_text(c.t(lang, "invite.pick_role", org=org.name), reply_markup=keyboard(rows))
            return
        if role_fields and role_fields[0] == "r" and (org_id := as_int(role_fields[1])) is not None \
                and role_fields[2] in ROLE_CODES:
            org = await c.orgs.get(org_id)
            if org is None:
                raise NotFound("org")
            role = ROLE_CODES[role_fields[2]]
            invite = await c.invites.create(org.code, role, created_by=user.id)
            username = await c.bot_username() or context.bot.username
            await query.answer()
            await query.edit_message_text(c.t(
                lang, "invite.link", org=org.name, role=c.t(lang, f"role.{role}"),
                link=f"https://t.me/{username}?start={invite.payload}",
                approval=c.t(lang, "invite.public" if role == "resident" else "invite.needs_approval")))
            return
    except NotAllowed:
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    except NotFound:
        pass
    await answer_callback(update, context, "error.stale_button", alert=True)


COMMANDS = [
    Command("appoint", appoint_command, audience=MANAGERS, menu_key="menu.appoint"),
    Command("invite", invite_command, audience=LEADERS),
]


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CallbackQueryHandler(appoint_button, pattern=r"^ap:"))
    app.add_handler(CallbackQueryHandler(invite_button, pattern=r"^iv:"))
