"""PromptService (open questions, bot/services/prompts.py) on a real SQLite file: the registry,
asking, superseding, closing, expiry, the messages kept while a person chooses (across a restart),
and how the ticket and meeting services open and close their questions."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from service_fixtures import (
    MEMBER,
    RESIDENT,
    SECRETARY,
    TREE,
    clock_fixture,  # noqa: F401  (the `clock` fixture)
    core_fixture,  # noqa: F401  (the `core` fixture)
    load,
    make_core,
    org_id,
    outbox_rows,
    tree_fixture,  # noqa: F401  (the `tree` fixture)
)

from bot.clock import SettableClock
from bot.core import Core
from bot.services.meeting_attendance import LEAVE_QUESTION
from bot.services.meetings import Draft
from bot.services.prompts import Question, QuestionKind
from bot.services.tickets import INFO_QUESTION, RATE_QUESTION, Item, Rating

SH = ZoneInfo("Asia/Shanghai")
OTHER = 880001


def register_test_kind(core: Core, standing: set[int], media: bool = False, name: str = "test/q") -> None:
    """A kind whose questions stand while their subject is in `standing`."""

    async def describe(lang: str, question: Question) -> str | None:
        return f"问题 {question.subject_id}" if question.subject_id in standing else None

    core.prompts.register(QuestionKind(name, describe, media=media))


async def open_rows(core: Core, person: int) -> list[tuple[str, int, str | None]]:
    rows = await core.db.fetchall(
        "SELECT kind, subject_id, closed_why FROM open_questions WHERE person_id = ? ORDER BY id", (person,))
    return [(r["kind"], r["subject_id"], r["closed_why"]) for r in rows]


async def ask(core: Core, person: int, kind: str, subject: int, lasts: timedelta | None = None) -> int:
    async with core.db.transaction() as tx:
        return await core.prompts.ask(tx, person, kind, subject, {"x": 1}, lasts=lasts)


# --------------------------------------------------------------------------- the registry itself

async def test_asked_questions_are_pending_with_their_words_oldest_first(core: Core) -> None:
    register_test_kind(core, {1, 2})
    first = await ask(core, RESIDENT, "test/q", 2)
    second = await ask(core, RESIDENT, "test/q", 1)
    await ask(core, OTHER, "test/q", 1)
    found = await core.prompts.pending(RESIDENT, "zh_CN")
    assert [(q.id, q.subject_id, q.data, label) for q, label in found] == [
        (first, 2, {"x": 1}, "问题 2"), (second, 1, {"x": 1}, "问题 1")]
    assert [q.person_id for q, _ in await core.prompts.pending(OTHER, "zh_CN")] == [OTHER]


async def test_an_unregistered_kind_cannot_be_asked(core: Core) -> None:
    async with core.db.transaction() as tx:
        with pytest.raises(ValueError, match="unregistered"):
            await core.prompts.ask(tx, RESIDENT, "nobody/registered", 1)


async def test_a_newer_question_about_the_same_subject_supersedes(core: Core) -> None:
    register_test_kind(core, {1, 2})
    await ask(core, RESIDENT, "test/q", 1)
    await ask(core, RESIDENT, "test/q", 2)
    newest = await ask(core, RESIDENT, "test/q", 1)
    assert [q.id for q, _ in await core.prompts.pending(RESIDENT, "zh_CN")][-1] == newest
    assert await open_rows(core, RESIDENT) == [("test/q", 1, "superseded"), ("test/q", 2, None), ("test/q", 1, None)]


async def test_closing_answered_moved_on_and_by_subject(core: Core) -> None:
    register_test_kind(core, {1, 2, 3})
    answered = await ask(core, RESIDENT, "test/q", 1)
    await ask(core, RESIDENT, "test/q", 2)
    await ask(core, OTHER, "test/q", 2)
    await ask(core, RESIDENT, "test/q", 3)
    await core.prompts.close(answered)
    await core.prompts.close(answered, "moved_on")  # closing twice keeps the first reason
    async with core.db.transaction() as tx:
        await core.prompts.close_about(tx, ["test/q"], 2)  # everyone's, about subject 2
        await core.prompts.close_about(tx, ["other/kind"], 3)  # another kind: untouched
    assert await open_rows(core, RESIDENT) == [("test/q", 1, "answered"), ("test/q", 2, "moved_on"),
                                               ("test/q", 3, None)]
    assert await open_rows(core, OTHER) == [("test/q", 2, "moved_on")]


async def test_questions_that_no_longer_stand_or_expired_are_not_offered(core: Core, clock: SettableClock) -> None:
    standing = {1, 2}
    register_test_kind(core, standing)
    await ask(core, RESIDENT, "test/q", 1)
    await ask(core, RESIDENT, "test/q", 2, lasts=timedelta(hours=3))
    standing.discard(1)  # its ticket was closed, say
    assert [q.subject_id for q, _ in await core.prompts.pending(RESIDENT, "zh_CN")] == [2]
    assert (await open_rows(core, RESIDENT))[0] == ("test/q", 1, "moved_on")
    clock.advance(timedelta(hours=3))
    assert await core.prompts.pending(RESIDENT, "zh_CN") == []


async def test_photos_answer_only_questions_that_accept_them(core: Core) -> None:
    register_test_kind(core, {1}, media=False, name="test/text")
    register_test_kind(core, {1}, media=True, name="test/media")
    text_only = await ask(core, RESIDENT, "test/text", 1)
    media = await ask(core, RESIDENT, "test/media", 1)
    assert [q.id for q, _ in await core.prompts.pending(RESIDENT, "zh_CN", media=True)] == [media]
    assert [q.id for q, _ in await core.prompts.pending(RESIDENT, "zh_CN")] == [text_only, media]
    assert await core.prompts.live(RESIDENT, text_only, "zh_CN", media=True) is None
    assert await core.prompts.live(RESIDENT, text_only, "zh_CN") is not None
    assert await core.prompts.live(OTHER, text_only, "zh_CN") is None  # not theirs


async def test_cancel_closes_only_what_the_persons_own_tap_asked(core: Core) -> None:
    register_test_kind(core, {1, 2})
    await ask(core, RESIDENT, "test/q", 1)  # asked by someone else: stays
    await ask(core, RESIDENT, "test/q", 2, lasts=timedelta(hours=3))  # asked by their own tap
    assert await core.prompts.close_tapped(RESIDENT) == 1
    assert await open_rows(core, RESIDENT) == [("test/q", 1, None), ("test/q", 2, "cancelled")]


async def test_a_kept_message_survives_a_restart_and_is_placed_once(tmp_path: Path, clock: SettableClock) -> None:
    message: dict[str, Any] = {"message_id": 5, "text": "路灯还是不亮", "chat": {"id": RESIDENT, "type": "private"}}
    core = make_core(tmp_path / "k.sqlite", clock)
    await core.open()
    token = await core.prompts.keep(RESIDENT, message)
    await core.close()
    core = make_core(tmp_path / "k.sqlite", clock)
    await core.open()
    try:
        assert await core.prompts.kept(OTHER, token) is None  # another person's token
        assert await core.prompts.kept(RESIDENT, token) == message
        assert not await core.prompts.drop(OTHER, token)
        assert await core.prompts.drop(RESIDENT, token)
        assert not await core.prompts.drop(RESIDENT, token)  # a second tap
        assert await core.prompts.kept(RESIDENT, token) is None
    finally:
        await core.close()


# --------------------------------------------------------------------------- tickets

async def submitted(core: Core, what: str = "村口路灯坏了一个多月了，晚上看不见路") -> int:
    return (await core.tickets.submit(RESIDENT, [Item("text", what)], "infrastructure", True, False)).id


async def test_asking_for_information_opens_the_residents_question_with_its_message(tree: Core) -> None:
    ticket = await submitted(tree)
    await tree.tickets.ask_info(SECRETARY, ticket, "具体是哪一根？")
    [(question, label)] = await tree.prompts.pending(RESIDENT, "zh_CN", media=True)
    assert (question.kind, question.subject_id, question.expires_at) == (INFO_QUESTION, ticket, None)
    assert label == "补充问题：村口路灯坏了一个多月了，晚上看不…"
    asked = [r for r in await outbox_rows(tree, RESIDENT) if "书记需要您补充" in r["payload"]["text"]]
    assert len(asked) == 1
    # Answering it closes it and puts the ticket back in the secretary's hands.
    await tree.tickets.add_info(RESIDENT, ticket, [Item("text", "村口第三根")])
    assert await tree.prompts.pending(RESIDENT, "zh_CN") == []
    assert await open_rows(tree, RESIDENT) == [(INFO_QUESTION, ticket, "answered")]


async def test_a_ticket_that_moves_on_closes_the_residents_questions(tree: Core) -> None:
    ticket = await submitted(tree)
    await tree.tickets.ask_info(SECRETARY, ticket, "具体是哪一根？")
    await tree.tickets.answer(SECRETARY, ticket, [Item("text", "已修好")])
    assert await open_rows(tree, RESIDENT) == [(INFO_QUESTION, ticket, "moved_on")]
    # 不满意 asks why (for a day); rating closes it.
    await tree.tickets.ask_rate_reason(RESIDENT, ticket)
    [(question, label)] = await tree.prompts.pending(RESIDENT, "zh_CN")
    assert question.kind == RATE_QUESTION and label.startswith("不满意的原因：村口路灯")
    assert question.expires_at is not None
    await tree.tickets.rate(RESIDENT, ticket, Rating.BAD, "还是不亮")
    assert await tree.prompts.pending(RESIDENT, "zh_CN") == []
    # A withdrawn ticket's question is closed in the same transaction.
    other = await submitted(tree, "水渠堵了")
    await tree.tickets.ask_info(SECRETARY, other, "在哪里？")
    await tree.tickets.withdraw(RESIDENT, other)
    assert [q for q, _ in await tree.prompts.pending(RESIDENT, "zh_CN")] == []
    assert (await open_rows(tree, RESIDENT))[-1] == (INFO_QUESTION, other, "moved_on")


async def test_only_the_author_may_be_asked_why_not_satisfied(tree: Core) -> None:
    from bot.services.orgs import NotAllowed
    from bot.services.tickets import Refused

    ticket = await submitted(tree)
    with pytest.raises(Refused):
        await tree.tickets.ask_rate_reason(RESIDENT, ticket)  # not answered yet
    await tree.tickets.answer(SECRETARY, ticket, [Item("text", "已修好")])
    with pytest.raises(NotAllowed):
        await tree.tickets.ask_rate_reason(MEMBER, ticket)
    assert await open_rows(tree, MEMBER) == [] and await open_rows(tree, RESIDENT) == []


# --------------------------------------------------------------------------- meetings

async def test_the_leave_reason_question_stands_until_answered_or_the_meeting_begins(
        core: Core, clock: SettableClock) -> None:
    await load(core, TREE)
    start = datetime(2026, 12, 5, 15, 0, tzinfo=SH)
    draft = Draft(kind="general_meeting", org_id=await org_id(core, "sanyi"), include_below=False, starts_at=start,
                  ends_at=start + timedelta(hours=2), place="村委会", topic="学习党章")
    mid = (await core.meetings.create(SECRETARY, draft)).meeting.id
    await core.meetings.ask_leave_reason(MEMBER, mid)
    [(question, label)] = await core.prompts.pending(MEMBER, "zh_CN")
    assert (question.kind, question.subject_id, label) == (LEAVE_QUESTION, mid, "请假原因：12月5日 学习党章")
    await core.meetings.answer(MEMBER, mid, "leave", "外出务工")
    assert await open_rows(core, MEMBER) == [(LEAVE_QUESTION, mid, "answered")]
    # Asked again, then the meeting begins: it is no longer offered.
    await core.meetings.ask_leave_reason(MEMBER, mid)
    clock.set(start)
    assert await core.prompts.pending(MEMBER, "zh_CN") == []
