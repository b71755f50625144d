"""Approve or reject join requests (the buttons sent to secretaries and organizers)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import JOIN_DECISION, Verdict
from bot.context import BotContext
from bot.services.invites import DecisionOutcome
from bot.services.orgs import NotAllowed
from handlers.common import answer_callback, edit_text, lang_of


async def decide(update: Update, context: BotContext) -> None:
    """Approve/reject a join request; the right is checked by the service, not by the button."""
    c = context.core
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    data = JOIN_DECISION.parse(query.data)
    if data is None:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    try:
        result = await c.invites.decide(update.effective_user.id, data.request_id,
                                        approve=data.verdict is Verdict.APPROVE)
    except NotAllowed:
        await answer_callback(update, context, "error.not_allowed", alert=True)
        return
    lang = await lang_of(update, context)
    if result.outcome is DecisionOutcome.not_found:
        await answer_callback(update, context, "error.stale_button", alert=True)
        return
    values = {"name": result.person_name, "org": result.org.name if result.org else "",
              "role": c.t(lang, f"readable.role_as.{result.role}")}
    if result.outcome is DecisionOutcome.already:
        await answer_callback(update, context, f"join.already_{result.status}", alert=True,
                              by=result.by or "?", **values)
        text = c.t(lang, f"join.already_{result.status}", by=result.by or "?", **values)
    else:
        await query.answer()
        text = c.t(lang, f"join.you_{result.outcome.value}", **values)
    await edit_text(query, text)


COMMANDS: list = []


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CallbackQueryHandler(decide, pattern=JOIN_DECISION.pattern))
