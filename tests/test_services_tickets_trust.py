"""The trust rules of the problem wall (issue 7) on the services, against a real SQLite file: no
oracle on an anonymous author, answers in the reader's language, the resident's own history,
the public wall without coordinates and with a preview, rights checked in the service with an
explicit system actor, forged transfer targets, assignees who lost their role, the /bindwall
answer budget, the callback codec and Telegram's limits on everything queued."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from service_fixtures import (
    ADMIN,
    ERLANG_SECRETARY,
    MEMBER,
    SECRETARY,
    TOWN_ORG,
    clock_fixture,  # noqa: F401  (the `clock` fixture)
    core_fixture,  # noqa: F401  (the `core` fixture)
    org_id,
    outbox_rows,
)
from test_services_tickets import (
    NAME_A,
    RES_A,
    RES_B,
    SECOND_SECRETARY,
    TOWN_SECRETARY,
    events,
    grant,
    snapshot,
    submit,
    svc,
    text,
    world_fixture,  # noqa: F401  (the `world` fixture)
)

from bot import callbacks as cb
from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock
from bot.core import Core
from bot.limits import MAX_BUTTONS, MAX_CALLBACK_DATA, MAX_TEXT, check_payload, telegram_length
from bot.services.orgs import NotAllowed, NotFound
from bot.services.tickets import Action, Done, Item, Say, Status, render

COORDS = "📍 33.70000,110.30000"


async def set_language(core: Core, person: int, lang: str) -> None:
    await core.people.set_language(person, lang)


# --- no oracle on an anonymous author -------------------------------------------------------------

async def test_blocking_answers_the_same_whether_or_not_the_author_was_blocked_already(world: Core) -> None:
    """Tickets 1 and 2 are RES_A's, ticket 3 is RES_B's, all anonymous. After ticket 1's author is
    blocked, blocking from ticket 2 (same author) and from ticket 3 (another) must look alike."""
    s = svc(world)
    for person, what in ((RES_A, "第一个"), (RES_A, "第二个"), (RES_B, "第三个")):
        await submit(world, person, what, anonymous=True)
    first = await s.block_submitter(SECRETARY, 1)
    same_author = await s.block_submitter(SECRETARY, 2)
    other_author = await s.block_submitter(SECRETARY, 3)
    assert first == Done("ticket.done.blocked", {"id": 1})
    assert same_author == Done("ticket.done.blocked", {"id": 2})
    assert other_author == Done("ticket.done.blocked", {"id": 3})
    # The history lines and the /blocked list have the same shape for both.
    assert (await events(world, 2))[-1] == (await events(world, 3))[-1] == (SECRETARY, Action.BLOCKED, None)
    blocks = await s.blocks(SECRETARY)
    assert [b.ticket_id for b in blocks] == [1, 2, 3]
    assert len({(b.org, b.since) for b in blocks}) == 1
    assert NAME_A not in repr(blocks) and str(RES_A) not in repr(blocks)
    # Pressing it again is answered by the ticket, the same for both.
    again2, again3 = await s.block_submitter(TOWN_ORG, 2), await s.block_submitter(TOWN_ORG, 3)
    assert (again2.key, again2.changed) == (again3.key, again3.changed) == ("ticket.done.already_blocked", False)


async def test_lifting_one_tickets_block_says_nothing_about_the_authors_other_blocks(world: Core) -> None:
    s = svc(world)
    for person, what in ((RES_A, "第一个"), (RES_A, "第二个"), (RES_B, "第三个")):
        await submit(world, person, what, anonymous=True)
    for ticket_id in (1, 2, 3):
        await s.block_submitter(SECRETARY, ticket_id)
    by_ticket = {b.ticket_id: b.id for b in await s.blocks(SECRETARY)}
    lifted_a = await s.unblock(SECRETARY, by_ticket[2])
    lifted_b = await s.unblock(SECRETARY, by_ticket[3])
    assert lifted_a == Done("ticket.done.unblocked", {"id": 2})
    assert lifted_b == Done("ticket.done.unblocked", {"id": 3})
    # Only that block is lifted: the other ticket's block still stands, and still stops its author.
    assert [b.ticket_id for b in await s.blocks(SECRETARY)] == [1]
    with pytest.raises(Exception) as refused:
        await s.check_can_submit(RES_A)
    assert getattr(refused.value, "key", "") == "ticket.refused.blocked"
    await s.check_can_submit(RES_B)


async def test_already_handled_is_rendered_in_the_readers_language(world: Core) -> None:
    """The resident reads English; the secretary reads Chinese: 'anonymous' comes out in Chinese."""
    s = svc(world)
    await set_language(world, RES_A, "en")
    await submit(world, anonymous=True)
    await s.withdraw(RES_A, 1)
    late = await s.accept(SECRETARY, 1)
    assert late.values["by"] == Say("ticket.anonymous")
    shown = render(world.t, "zh_CN", late)
    assert shown == "问题 #1 已由 匿名群众 处理过，当前状态：已撤回。"
    english = render(world.t, "en", late)
    assert "anonymous resident" in english and "匿名" not in english
    again = await s.handled_by(SECRETARY, 1)
    assert render(world.t, "zh_CN", again) == shown
    with pytest.raises(NotAllowed):
        await s.handled_by(RES_B, 1)


# --- the resident's own history -------------------------------------------------------------------

async def test_the_residents_history_shows_only_what_was_meant_for_them(world: Core) -> None:
    s = svc(world)
    await grant(world, SECOND_SECRETARY, "刘副书记", "sanyi", "secretary")
    await submit(world, what="路灯坏了")
    await s.ask_info(SECRETARY, 1, "在哪个路口？")
    await s.add_info(RES_A, 1, text("东边路口"))
    await s.transfer(SECRETARY, 1, "内部原因：王书记太忙", to_person=SECOND_SECRETARY)
    await s.block_submitter(SECRETARY, 1)
    await s.decline(SECOND_SECRETARY, 1, "路灯归供电所管")

    mine = "\n".join((await s.view(RES_A, 1, "zh_CN")).texts)
    assert "在哪个路口？" in mine and "路灯归供电所管" in mine  # what they were told anyway
    assert "王书记太忙" not in mine and "内部原因" not in mine  # an internal transfer reason
    assert "暂停" not in mine and "blocked" not in mine  # not that, nor who, blocked them
    assert "转交" in mine  # that it moved is no secret: they were told where

    theirs = "\n".join((await s.view(SECRETARY, 1, "zh_CN")).texts)
    assert "内部原因：王书记太忙" in theirs and "王建国 暂停了提交人的提交" in theirs


async def test_view_is_for_the_resident_and_the_handlers_only(world: Core) -> None:
    s = svc(world)
    await submit(world)
    for stranger in (RES_B, MEMBER, ERLANG_SECRETARY, 4242):
        for read in (s.view(stranger, 1, "zh_CN"), s.get(stranger, 1), s.items(stranger, 1),
                     s.events(stranger, 1), s.handled_by(stranger, 1), s.check_can_act(stranger, 1)):
            with pytest.raises(NotAllowed):
                await read
    with pytest.raises(NotAllowed):
        await s.events(RES_A, 1)  # the full history is the handlers'; the resident reads `view`
    assert (await s.get(RES_A, 1)).id == 1 and (await s.items(RES_A, 1))
    with pytest.raises(NotFound):
        await s.view(SECRETARY, 99, "zh_CN")


# --- the public wall ---------------------------------------------------------------------------------

async def test_a_shared_place_is_the_village_name_on_the_wall_and_the_point_for_the_secretary(
        world: Core) -> None:
    s = svc(world)
    sanyi = await org_id(world, "sanyi")
    await s.bind_wall(SECRETARY, sanyi, -100500, "三义村回音壁")
    items = [Item("text", "这里的桥塌了"), Item("location", COORDS, chat_id=RES_A, message_id=7),
             Item("text", "坐标 33.701234, 110.305678 附近")]
    await submit(world, items=items)
    card = next(r for r in await outbox_rows(world, SECRETARY) if r["dedup_key"].startswith("tk:1:"))
    assert COORDS in card["payload"]["text"]  # the secretary sees the point
    assert any(r["method"] == "copyMessage" and r["payload"]["message_id"] == 7
               for r in await outbox_rows(world, SECRETARY))

    preview = await s.preview_answer(SECRETARY, 1, text("已经派人去看了，电话13812345678"))
    assert preview is not None
    await s.answer(SECRETARY, 1, text("已经派人去看了，电话13812345678"))
    posted = next(iter(await outbox_rows(world, -100500)))["payload"]["text"]
    assert posted == preview  # exactly what the secretary was shown
    page = (await s.wall(sanyi, 0))[0]
    for shown in (posted, s.wall_text("zh_CN", page[0]), s.wall_text("en", page[0], short=True)):
        assert "33.70000" not in shown and "110.30000" not in shown
        assert "33.701234" not in shown and "110.305678" not in shown
        assert "📍三义村党支部" in shown
        assert "13812345678" not in shown and "138****5678" in shown


async def test_the_preview_is_for_the_handlers_and_only_for_public_answers(world: Core) -> None:
    s = svc(world)
    await submit(world, what="公开的问题")
    await submit(world, RES_B, "不公开的问题", public=False)
    before = await snapshot(world)
    with pytest.raises(NotAllowed):
        await s.preview_answer(ERLANG_SECRETARY, 1, text("答复"))
    assert await s.preview_answer(SECRETARY, 2, text("答复")) is None
    assert await s.preview_answer(SECRETARY, 1, [Item("photo", None, chat_id=SECRETARY, message_id=1)]) is None
    shown = await s.preview_answer(SECRETARY, 1, text("打 0914-2345678"))
    assert shown is not None and "0914-***5678" in shown and "2345678" not in shown
    assert await snapshot(world) == before  # a preview changes nothing


# --- rights, checked where the rule lives -----------------------------------------------------------

async def test_the_command_line_and_the_job_act_as_the_system_and_nobody_else_can(world: Core) -> None:
    s = svc(world)
    await submit(world)
    for person in (SECRETARY, TOWN_ORG, RES_A):
        with pytest.raises(NotAllowed):
            await s.tick(person)
        with pytest.raises(NotAllowed):
            await s.configure(person, "sanyi", accept_days=3)
        with pytest.raises(NotAllowed):
            await s.assign_category(person, "sanyi", "welfare", SECRETARY)
    assert await s.tick(SYSTEM_ACTOR) == 0
    await s.configure(ADMIN, "sanyi", accept_days=3)  # an admin may, as on the command line
    await s.configure(SYSTEM_ACTOR, "sanyi", answer_days=4)


async def test_a_category_assignee_must_lead_at_or_above_the_org(world: Core) -> None:
    s = svc(world)
    for not_a_lead in (RES_A, MEMBER, ERLANG_SECRETARY, 4242):
        with pytest.raises(ValueError):
            await s.assign_category(SYSTEM_ACTOR, "sanyi", "welfare", not_a_lead)
    await s.assign_category(SYSTEM_ACTOR, "sanyi", "welfare", TOWN_ORG)  # an organizer above


async def test_an_assignee_keeps_rights_only_while_holding_a_lead_role(world: Core) -> None:
    s = svc(world)
    await grant(world, SECOND_SECRETARY, "刘副书记", "sanyi", "secretary")
    await submit(world)
    await s.transfer(SECRETARY, 1, "他管这个", to_person=SECOND_SECRETARY)
    ticket = await s.get(SYSTEM_ACTOR, 1)
    assert await s.can_act(SECOND_SECRETARY, ticket)
    async with world.db.transaction() as tx:
        await world.orgs.revoke(tx, person_id=SECOND_SECRETARY, org_id=await org_id(world, "sanyi"),
                                role="secretary", actor_id=None, source="test")
    before = await snapshot(world)
    assert not await s.can_act(SECOND_SECRETARY, ticket)
    for act in (s.accept(SECOND_SECRETARY, 1), s.answer(SECOND_SECRETARY, 1, text("我来答")),
                s.view(SECOND_SECRETARY, 1, "zh_CN"), s.block_submitter(SECOND_SECRETARY, 1)):
        with pytest.raises(NotAllowed):
            await act
    assert await snapshot(world) == before
    assert 1 not in [line.ticket.id for line in (await s.inbox(SECOND_SECRETARY)).lines]
    # Whoever answers for the org hears of it again.
    assert await s.handlers_of(ticket) == [SECRETARY]


async def test_a_category_assignee_who_lost_the_role_is_passed_over(world: Core) -> None:
    s = svc(world)
    await grant(world, SECOND_SECRETARY, "刘副书记", "sanyi", "secretary")
    await s.assign_category(SYSTEM_ACTOR, "sanyi", "welfare", SECOND_SECRETARY)
    async with world.db.transaction() as tx:
        await world.orgs.revoke(tx, person_id=SECOND_SECRETARY, org_id=await org_id(world, "sanyi"),
                                role="secretary", actor_id=None, source="test")
    ticket = await submit(world, category="welfare")
    assert ticket.assignee_id is None
    assert {r["chat_id"] for r in await outbox_rows(world) if r["dedup_key"].startswith("tk:1:")} == {SECRETARY}


async def test_a_forged_transfer_target_is_refused_and_changes_nothing(world: Core) -> None:
    s = svc(world)
    await submit(world)
    orgs, _ = await s.transfer_targets(SECRETARY, 1)
    offered = {o.id for o in orgs}
    all_orgs = {r["id"] for r in await world.db.fetchall("SELECT id FROM orgs")}
    before = await snapshot(world)
    for forged in [*sorted(all_orgs - offered), 99999]:
        with pytest.raises(NotAllowed):
            await s.transfer(SECRETARY, 1, "转走", to_org=forged)
    for forged in (RES_A, RES_B, MEMBER, ERLANG_SECRETARY, TOWN_ORG, SECRETARY, 4242):
        with pytest.raises(NotAllowed):
            await s.transfer(SECRETARY, 1, "转走", to_person=forged)
    with pytest.raises(NotAllowed):  # someone who may not act cannot even ask for the targets
        await s.transfer_targets(ERLANG_SECRETARY, 1)
    assert await snapshot(world) == before
    for target in offered:  # every offered one is accepted (each on a fresh ticket)
        ticket = await submit(world, RES_B, f"问题{target}")
        assert (await s.transfer(SECRETARY, ticket.id, "转走", to_org=target)).key == "ticket.done.transferred"


# --- abuse ------------------------------------------------------------------------------------------

async def test_a_refused_bindwall_is_answered_once_an_hour_per_group(world: Core, clock: SettableClock) -> None:
    s = svc(world)
    assert s.may_answer_bindwall(-1001) is True
    assert s.may_answer_bindwall(-1001) is False
    assert s.may_answer_bindwall(-1002) is True  # another group has its own hour
    clock.advance(timedelta(minutes=59))
    assert s.may_answer_bindwall(-1001) is False
    clock.advance(timedelta(minutes=2))
    assert s.may_answer_bindwall(-1001) is True


# --- shape ------------------------------------------------------------------------------------------

BIG = 9_223_372_036_854_775_807  # the largest id SQLite stores


def test_every_ticket_button_round_trips_within_64_bytes_and_old_buttons_still_parse() -> None:
    samples: list[tuple[cb.Kind[Any], tuple[Any, ...]]] = [
        (cb.SUBMIT_DRAFT, cb.SubmitDraft("ffffff", action, -BIG if action == cb.DraftAction.CATEGORY else -1))
        for action in cb.DraftAction
    ] + [
        (cb.TICKET_VIEW, cb.TicketRef(BIG)), (cb.TICKET_REPLY_SEND, cb.TicketRef(BIG)),
        (cb.TICKET_REPLY_PUBLISH, cb.TicketRef(BIG)), (cb.TICKET_FLOW_CANCEL, cb.NoFields()),
        (cb.TICKET_UNBLOCK, cb.BlockRef(BIG)), (cb.WALL_PAGE, cb.WallPage(-BIG, BIG)),
        (cb.WALL_BIND, cb.BindWall(BIG, -BIG)),
    ] + [(cb.TICKET_WITHDRAW, cb.Withdraw(BIG, c)) for c in cb.Confirm] \
      + [(cb.TICKET_RATE, cb.Rate(r, BIG)) for r in cb.RatingChoice] \
      + [(cb.TICKET_PRESET_REASON, cb.PresetReason(BIG, 2))] \
      + [(cb.TICKET_ADD_INFO, cb.AddInfo(BIG, step)) for step in cb.InfoStep] \
      + [(cb.TICKET_ACTION, cb.HandlerAction(a, BIG)) for a in cb.TicketAction] \
      + [(cb.TICKET_TRANSFER, cb.TransferTarget(BIG, k, BIG)) for k in cb.TargetKind]
    for kind, value in samples:
        data = kind.encode(value)
        assert len(data.encode()) <= MAX_CALLBACK_DATA, data
        assert kind.parse(data) == value, data
        assert all(other.parse(data) is None for other, _ in samples if other is not kind)
    # The buttons already in people's chats keep working.
    old = {"tk:a:12": (cb.TICKET_ACTION, cb.HandlerAction(cb.TicketAction.ACCEPT, 12)),
           "tr:g:12": (cb.TICKET_RATE, cb.Rate(cb.RatingChoice.GOOD, 12)),
           "tv:12": (cb.TICKET_VIEW, cb.TicketRef(12)),
           "tw:12:y": (cb.TICKET_WITHDRAW, cb.Withdraw(12, cb.Confirm.YES)),
           "tn:12:send": (cb.TICKET_ADD_INFO, cb.AddInfo(12, cb.InfoStep.SEND)),
           "tx": (cb.TICKET_FLOW_CANCEL, cb.NoFields()),
           "sb:a1b2c3:c:2": (cb.SUBMIT_DRAFT, cb.SubmitDraft("a1b2c3", cb.DraftAction.CATEGORY, 2)),
           "tt:12:o:5": (cb.TICKET_TRANSFER, cb.TransferTarget(12, cb.TargetKind.ORG, 5)),
           "wl:3:1": (cb.WALL_PAGE, cb.WallPage(3, 1)), "ub:4": (cb.TICKET_UNBLOCK, cb.BlockRef(4))}
    for data, (kind, value) in old.items():
        assert kind.parse(data) == value
    for forged in ("tk:q:12", "tk:a:x", "tk:a", "tr:good:1", "tv:", "tv:1:2", "tt:1:x:2", "tx:1"):
        assert all(kind.parse(forged) is None for kind, _ in samples), forged


def test_statuses_are_an_enum() -> None:
    assert {s.value for s in Status} == {"new", "accepted", "need_info", "answered", "reopened", "closed",
                                         "withdrawn", "declined"}


async def test_a_ticket_with_maximal_content_queues_only_what_telegram_accepts(
        world: Core, clock: SettableClock) -> None:
    """Twenty 4096-character texts in, a twenty-part answer, a long question, reason and rating:
    every row queued is within the limits (the outbox refuses others), and the full text is a tap
    away (the view, in several messages)."""
    s = svc(world)
    await grant(world, TOWN_SECRETARY, "龙驹寨书记", "longjuzhai", "secretary")
    await s.bind_wall(SECRETARY, await org_id(world, "sanyi"), -100500, "墙")
    long_text = ("村里的路坏了，" * 700)[:4096]
    items = [Item("text", f"{n}{long_text}"[:4096]) for n in range(20)]
    ticket = await submit(world, items=items, anonymous=False)
    clock.set(ticket.accept_due + timedelta(minutes=1))
    await s.tick(SYSTEM_ACTOR)
    await s.ask_info(SECRETARY, 1, "问" * 500)
    await s.add_info(RES_A, 1, [Item("text", long_text)] * 20)
    await s.transfer(SECRETARY, 1, "转" * 500, to_org=await org_id(world, "erlang"))
    await s.answer(ERLANG_SECRETARY, 1, [Item("text", long_text)] * 20)
    await s.rate(RES_A, 1, "bad", "差" * 500)
    await s.answer(ERLANG_SECRETARY, 1, [Item("text", long_text)] * 20, final=True)
    rows = await outbox_rows(world)
    assert {r["purpose"] for r in rows} >= {"ticket/card", "ticket/escalation", "ticket/notice", "ticket/resident",
                                           "ticket/wall", "ticket/overdue", "ticket/reminder"}
    for row in rows:
        check_payload(row["method"], row["payload"])
        text_ = row["payload"].get("text", "")
        assert telegram_length(text_) <= MAX_TEXT
    cards = [r["payload"]["text"] for r in rows if r["dedup_key"].startswith("tk:1:")]
    assert cards and all("点「📜 详情和记录」看全文" in card for card in cards)
    to_resident = [r["payload"]["text"] for r in rows if r["chat_id"] == RES_A and "有答复了" in r["payload"]["text"]]
    assert to_resident and all("发送 /my" in t for t in to_resident)
    for reader in (ERLANG_SECRETARY, RES_A):
        view = await s.view(reader, 1, "zh_CN")
        assert len(view.texts) > 1 and all(telegram_length(t) <= MAX_TEXT for t in view.texts)
        assert sum(len(b) for b in view.buttons) <= MAX_BUTTONS
        joined = "".join(view.texts)
        assert joined.count("村里的路坏了") >= 20 * 580  # nothing was lost: all of it is there
    assert json.dumps(rows, ensure_ascii=False).count(NAME_A) >= 1  # not anonymous: the name is shown
