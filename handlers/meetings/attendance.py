"""Members: the buttons under notices and reminders (attend, leave with a reason, the calendar file,
check-in, the card), /meetings and /checkin."""

from __future__ import annotations

from telegram import InputFile, Update
from telegram.error import BadRequest

from bot.callbacks import MEETING_LEAVE_REASON, MEETING_LEGACY, MEETING_MEMBER, MeetingMember, MemberAction
from bot.context import BotContext
from bot.limits import MAX_TEXT, clip
from bot.outbox import Button
from bot.services.meeting_model import Answer
from bot.services.meeting_screens import ANSWER_MARK
from bot.services.meeting_text import local_today
from bot.services.prompts import Question
from handlers.common import answer_callback, keyboard, lang_of, reply
from handlers.meetings.common import MAX_BUTTONS, card_view, guarded, person, say, service, stale
from handlers.meetings.flow import MeetingFlowState

LEAVE_REASONS = ("meeting.leave.reason_sick", "meeting.leave.reason_away", "meeting.leave.reason_family",
                 "meeting.leave.reason_work")


async def show_answer_under(update: Update, context: BotContext, line: str) -> None:
    """Show the person's answer on the notice they pressed at once: as the notice now reads when
    it is a screen kept true (a nudge then loses its 🔔 line; the edit queued for it changes
    nothing more), else with the answer line put under it (replacing an earlier one)."""
    query = update.callback_query
    if query is None or query.message is None or not getattr(query.message, "text", None):
        return
    screen = await context.core.screens.render_message(query.message.chat.id, query.message.message_id)
    if screen is not None:
        try:
            await query.edit_message_text(screen.text, reply_markup=keyboard(screen.buttons) if screen.buttons
                                          else None)
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                raise
        return
    body = [x for x in query.message.text.split("\n") if not x.startswith(ANSWER_MARK)]  # type: ignore[union-attr]
    try:
        await query.edit_message_text(clip("\n".join([*body, ANSWER_MARK + line]), MAX_TEXT),
                                      reply_markup=query.message.reply_markup)  # type: ignore[union-attr]
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


@guarded
async def member_button(update: Update, context: BotContext) -> None:
    """Attend, leave (asks for a reason), the calendar file, check-in, the card."""
    c, svc, me = context.core, service(context), person(update)
    query = update.callback_query
    assert query is not None
    data = MEETING_MEMBER.parse(query.data) or legacy_member(query.data)
    if data is None:
        await stale(update, context)
        return
    lang = await lang_of(update, context)
    meeting_id = data.meeting_id
    if data.action == MemberAction.ATTEND:
        attendee = await svc.answer(me, meeting_id, Answer.ATTEND)
        await answer_callback(update, context, "meeting.answer.attend_ok")
        await show_answer_under(update, context, svc.text.answer_line(lang, attendee.answer, None))
    elif data.action == MemberAction.LEAVE:
        # The screen says "or type it": the next text is the reason (an open question).
        await svc.ask_leave_reason(me, meeting_id)
        rows = [[Button(c.t(lang, LEAVE_REASONS[i]), MEETING_LEAVE_REASON(meeting_id, i)) for i in (0, 1)],
                [Button(c.t(lang, LEAVE_REASONS[i]), MEETING_LEAVE_REASON(meeting_id, i)) for i in (2, 3)],
                [Button(c.t(lang, "meeting.leave.other"), MEETING_MEMBER(MemberAction.LEAVE_TYPED, meeting_id))]]
        await query.answer()
        await say(update, context, c.t(lang, "meeting.leave.ask"), rows)
    elif data.action == MemberAction.LEAVE_TYPED:
        await svc.ask_leave_reason(me, meeting_id)
        await query.answer()
        await say(update, context, c.t(lang, "meeting.leave.type"), edit=True)
    elif data.action == MemberAction.CALENDAR:
        filename, content = await svc.ics(me, meeting_id, lang)
        await query.answer()
        assert update.effective_message is not None
        await update.effective_message.reply_document(InputFile(content, filename=filename),
                                                      caption=c.t(lang, "meeting.calendar.caption"))
    elif data.action == MemberAction.CHECKIN:
        meeting, at, already = await svc.check_in(me, meeting_id)
        key = "meeting.checkin.already" if already else "meeting.checkin.done"
        await answer_callback(update, context, key, alert=True, topic=meeting.topic, time=svc.text.clock(lang, at))
        if not already:
            await show_answer_under(update, context, c.t(lang, "meeting.card.checked_in",
                                                         time=svc.text.clock(lang, at)))
    else:  # MemberAction.VIEW
        text, rows = await card_view(c, svc, lang, me, meeting_id)
        await query.answer()
        await say(update, context, text, rows)


def legacy_member(data: str | None) -> MeetingMember | None:
    """A member's button sent before the codec (mt:a:12), read as the member kind it was."""
    old = MEETING_LEGACY.parse(data)
    if old is None or old.action.value not in {action.value for action in MemberAction}:
        return None
    return MeetingMember(MemberAction(old.action.value), old.meeting_id)


@guarded
async def leave_reason_button(update: Update, context: BotContext) -> None:
    """One of the usual reasons for leave, tapped."""
    c, svc = context.core, service(context)
    query = update.callback_query
    assert query is not None
    data = MEETING_LEAVE_REASON.parse(query.data)
    if data is None or not 0 <= data.reason < len(LEAVE_REASONS):
        await stale(update, context)
        return
    lang = await lang_of(update, context)
    reason = c.t(lang, LEAVE_REASONS[data.reason])
    attendee = await svc.answer(person(update), data.meeting_id, Answer.LEAVE, reason)
    await answer_callback(update, context, "meeting.answer.leave_ok", reason=reason)
    await say(update, context, c.t(lang, "meeting.answer.leave_ok", reason=attendee.leave_reason or ""), edit=True)


@guarded
async def answer_leave_question(update: Update, context: BotContext, question: Question) -> None:
    """The text typed after 请假 (an open question) is the reason: leave is recorded with it, as a
    reason button would."""
    message = update.effective_message
    assert message is not None
    if not message.text or not message.text.strip():
        await reply(update, context, "meeting.error.text_only")
        return
    attendee = await service(context).answer(person(update), question.subject_id, Answer.LEAVE, message.text.strip())
    await reply(update, context, "meeting.answer.leave_ok", reason=attendee.leave_reason or "")


async def typed_leave_reason(update: Update, context: BotContext, state: MeetingFlowState, text: str) -> None:
    """A leave-reason flow of an older version (now an open question)."""
    assert state.mid is not None
    attendee = await service(context).answer(person(update), state.mid, Answer.LEAVE, text)
    await context.core.flows.clear(person(update))
    await reply(update, context, "meeting.answer.leave_ok", reason=attendee.leave_reason or "")


@guarded
async def meetings_command(update: Update, context: BotContext) -> None:
    """The person's upcoming meetings and answers (and, for leaders, the meetings they run)."""
    c, svc, me = context.core, service(context), person(update)
    lang = await lang_of(update, context)
    now = c.clock.now()
    mine = await svc.upcoming(me)
    managed = await svc.managed(me)
    lines = [c.t(lang, "meeting.list.title")]
    rows: list[list[Button]] = []
    if not mine:
        lines.append(c.t(lang, "meeting.list.none"))
    answers = {Answer.ATTEND: "meeting.list.answer_attend", Answer.LEAVE: "meeting.list.answer_leave"}

    def button(prefix: str, meeting_id: int, starts_at: object, kind: str) -> list[Button]:
        day = svc.text.short_day(lang, local_today(starts_at, svc.tz))  # type: ignore[arg-type]
        label = f"{prefix}{day} {svc.text.kind(lang, kind)}"[:60]
        return [Button(label, MEETING_MEMBER(MemberAction.VIEW, meeting_id))]

    for meeting, attendee in mine:
        lines.append(c.t(lang, "meeting.list.item", when=svc.fmt.moment_near(lang, meeting.starts_at, now),
                         kind=svc.text.kind(lang, meeting.kind), topic=meeting.topic, place=meeting.place,
                         answer=c.t(lang, answers.get(attendee.answer, "meeting.list.answer_none"))))  # type: ignore[arg-type]
        rows.append(button("", meeting.id, meeting.starts_at, meeting.kind))
    mine_ids = {m.id for m, _ in mine}
    extra = [m for m in managed if m.id not in mine_ids]
    if extra:
        lines += ["", c.t(lang, "meeting.list.managed")]
        for meeting in extra:
            lines.append(c.t(lang, "meeting.list.managed_item", when=svc.fmt.moment_near(lang, meeting.starts_at, now),
                             kind=svc.text.kind(lang, meeting.kind), topic=meeting.topic, org=meeting.org_name))
            rows.append(button("🗂 ", meeting.id, meeting.starts_at, meeting.kind))
    if rows:
        lines.append(c.t(lang, "meeting.list.open_hint"))
    await say(update, context, clip("\n".join(lines), MAX_TEXT - 96, marker="\n…"), rows[:MAX_BUTTONS])


@guarded
async def checkin_command(update: Update, context: BotContext) -> None:
    """签到 for the meeting happening now (a choice when there are several)."""
    c, svc, me = context.core, service(context), person(update)
    lang = await lang_of(update, context)
    candidates = await svc.checkin_candidates(me)
    if not candidates:
        await reply(update, context, "meeting.checkin.none")
        return
    if len(candidates) > 1:
        rows = [[Button(f"{svc.text.clock(lang, m.starts_at)} {m.topic}"[:60],
                        MEETING_MEMBER(MemberAction.CHECKIN, m.id))] for m in candidates]
        await say(update, context, c.t(lang, "meeting.checkin.pick"), rows)
        return
    meeting, at, already = await svc.check_in(me, candidates[0].id)
    key = "meeting.checkin.already" if already else "meeting.checkin.done"
    await reply(update, context, key, topic=meeting.topic, time=svc.text.clock(lang, at))
