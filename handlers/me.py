"""/me (my orgs and roles) and /org (the tree below a secretary, organizer or admin)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application

from bot.callbacks import DigestScreen
from bot.context import BotContext
from bot.core import Core
from bot.limits import telegram_length
from bot.outbox import Button
from bot.services.orgs import ROLES, NotAllowed
from handlers.common import LEADERS, Command, keyboard, lang_of, reply

MAX_TEXT = 4000


async def me_command(update: Update, context: BotContext) -> None:
    """Show the person's orgs and roles, and how they take the low-priority notices."""
    user = update.effective_user
    assert user is not None and update.effective_message is not None
    lang = await lang_of(update, context)
    text, rows = await me_screen(context.core, user.id, user.full_name, lang)
    await update.effective_message.reply_text(text, reply_markup=keyboard(rows))


async def me_screen(c: Core, user_id: int, full_name: str, lang: str) -> tuple[str, list[list[Button]]]:
    """/me's text and buttons (the digest choice; handlers/digests.py edits this screen in place)."""
    person = await c.people.get(user_id)
    name = person.name if person else full_name
    # The Telegram number is for administrators (the org file and the command line use it).
    admin = c.orgs.is_admin(user_id)
    lines = [c.t(lang, "me.title", name=name, id=user_id) if admin else name]
    rank = {"organizer": 0, "secretary": 1, "member": 2, "resident": 3}
    grants = sorted(await c.orgs.grants(user_id), key=lambda g: (g.org.id, rank.get(g.role, 9)))
    by_org: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    for grant in grants:
        by_org.setdefault(grant.org.id, []).append(c.t(lang, f"role.{grant.role}"))
        names[grant.org.id] = grant.org.name
    for org_id, roles in by_org.items():
        lines.append(c.t(lang, "me.line", org=names[org_id], roles=c.formatter.join(lang, roles)))
    if admin:
        lines.append(c.t(lang, "me.admin"))
    if not grants and not admin:
        lines.append(c.t(lang, "start.no_roles"))
    lines.append(c.t(lang, "me.language", language=c.t(lang, "lang.name")))
    # The two buttons say the choice themselves; /settings explains it at length.
    _, rows = c.digests.choice(lang, await c.digests.daily(user_id), DigestScreen.ME)
    return "\n".join(lines), rows


async def org_command(update: Update, context: BotContext) -> None:
    """Show the org tree below the person with people counts per role."""
    c = context.core
    user = update.effective_user
    assert user is not None and update.effective_message is not None
    lang = await lang_of(update, context)
    try:
        lines = await c.orgs.tree_view(user.id)
    except NotAllowed:
        await reply(update, context, "error.not_allowed")
        return
    # Codes are for administrators (the org file, the command line, the web wall's address).
    admin = c.orgs.is_admin(user.id)
    out = [c.t(lang, "org.title" if admin else "readable.org.title")]
    for line in lines:
        counts = " ".join(
            f"{c.t(lang, f'role.{role}')}{line.counts[role]}" for role in ROLES if line.counts.get(role)
        ) or c.t(lang, "org.nobody")
        code = f" ({line.org.code})" if admin else ""
        out.append(f"{'　' * line.depth}• {line.org.name}{code} — {counts}")
    # Telegram's 4096-character limit: send a long tree in several messages.
    chunk: list[str] = []
    for text in out:
        # Measured as Telegram counts (UTF-16): an emoji in an org's name counts twice.
        if chunk and telegram_length("\n".join([*chunk, text])) > MAX_TEXT:
            await update.effective_message.reply_text("\n".join(chunk))
            chunk = []
        chunk.append(text)
    await update.effective_message.reply_text("\n".join(chunk))


COMMANDS = [
    Command("me", me_command, menu_key="menu.me"),
    Command("org", org_command, audience=LEADERS, menu_key="menu.org"),
]


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Nothing beyond the commands."""
