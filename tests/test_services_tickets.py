"""TicketService (问题墙 + 回音壁) on a real SQLite file: routing, working-day deadlines, the state
machine and its history, rights, escalation, abuse, masking, the echo wall and anonymity."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from orgtree import Person, org_file
from service_fixtures import (
    ADMIN,
    COUNTY_ORG,
    ERLANG_SECRETARY,
    MEMBER,
    OTHER_TOWN_ORG,
    RESIDENT,
    SECRETARY,
    START,
    TOWN_ORG,
    VILLAGE_ORG,
    clock_fixture,  # noqa: F401  (the `clock` fixture)
    core_fixture,  # noqa: F401  (the `core` fixture)
    load,
    org_id,
    outbox_rows,
    rows,
)

from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock, to_db
from bot.core import Core
from bot.services.orgs import NotAllowed, NotFound
from bot.services.tickets import (
    DEFAULT_CATEGORIES,
    WALL_PAGE,
    Done,
    Item,
    Refused,
    Say,
    Ticket,
    TicketService,
    mask_private,
)

SH = ZoneInfo("Asia/Shanghai")

# The shared tree with a party group below sanyi (no secretary of its own) and residents with ids and
# names distinctive enough to search for in every message.
RES_A, RES_B, RES_GROUP, RES_XIJIE, RES_LONELY, RES_ERLANG = 700001, 700002, 700003, 700004, 700005, 700006
WORLD = org_file(
    extra_orgs={"sanyi": [{"code": "sanyi-g1", "name": "三义村一组党小组", "kind": "party_group"}]},
    extra_people=[Person(RES_A, "钱多多", ("resident@sanyi",)), Person(RES_B, "孙小妹", ("resident@sanyi",)),
                  Person(RES_GROUP, "周一组", ("resident@sanyi-g1",)), Person(RES_XIJIE, "吴西街", ("resident@xijie",)),
                  Person(RES_LONELY, "郑独立", ("resident@lonely",)),
                  Person(RES_ERLANG, "冯二郎", ("resident@erlang",))])
NAME_A = "钱多多"
TOWN_SECRETARY = 1015  # secretary@longjuzhai, granted in the tests that need one
SECOND_SECRETARY = 1016  # a second secretary@sanyi, granted in the tests that need one

TICKET_TABLES = ("tickets", "ticket_items", "ticket_events", "submit_blocks", "wall_chats", "ticket_settings",
                 "category_assignees", "outbox", "flows", "roles")


@pytest.fixture(name="world")
async def world_fixture(core: Core) -> Core:
    await load(core, WORLD)
    return core


def svc(core: Core) -> TicketService:
    return core.tickets


def text(value: str) -> list[Item]:
    return [Item("text", value)]


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


async def submit(core: Core, person: int = RES_A, what: str = "村口路灯坏了一个月了", category: str = "infrastructure",
                 public: bool = True, anonymous: bool = False, items: list[Item] | None = None) -> Ticket:
    return await svc(core).submit(person, items if items is not None else text(what), category, public, anonymous)


async def events(core: Core, ticket_id: int) -> list[tuple[int | None, str, str | None]]:
    return [(e.actor_id, e.action, e.note) for e in await svc(core).events(SYSTEM_ACTOR, ticket_id)]


async def grant(core: Core, person: int, name: str, code: str, role: str) -> None:
    async with core.db.transaction() as tx:
        await core.people.ensure(tx, person, name)
        await core.orgs.grant(tx, person_id=person, org_id=await org_id(core, code), role=role, actor_id=None,
                              source="test")


async def snapshot(core: Core) -> dict[str, list[tuple[Any, ...]]]:
    return {table: [tuple(r) for r in await core.db.fetchall(f"SELECT * FROM {table} ORDER BY 1, 2")]
            for table in TICKET_TABLES}


async def messages(core: Core, key_prefix: str = "", chat_id: int | None = None) -> list[dict[str, Any]]:
    """Outbox rows (payload decoded) whose dedup key starts with `key_prefix`."""
    return [r for r in await outbox_rows(core, chat_id) if r["dedup_key"].startswith(key_prefix)]


def texts_to(found: list[dict[str, Any]], chat_id: int) -> list[str]:
    return [r["payload"].get("text", "") for r in found if r["chat_id"] == chat_id]


def callback_data(row: dict[str, Any]) -> list[str]:
    markup = row["payload"].get("reply_markup") or {}
    return [b.get("callback_data") for line in markup.get("inline_keyboard", []) for b in line]


async def ticket_row(core: Core, ticket_id: int) -> dict[str, Any]:
    return (await rows(core, "SELECT * FROM tickets WHERE id = ?", (ticket_id,)))[0]


async def answered(core: Core, person: int = RES_A, what: str = "村口路灯坏了", answer: str = "已修好",
                   public: bool = True, anonymous: bool = False) -> Ticket:
    ticket = await submit(core, person, what, public=public, anonymous=anonymous)
    await svc(core).accept(SECRETARY, ticket.id)
    await svc(core).answer(SECRETARY, ticket.id, text(answer))
    return await svc(core).get(SYSTEM_ACTOR, ticket.id)


# --- routing --------------------------------------------------------------------------------------

async def test_a_problem_goes_to_the_secretary_of_the_residents_org(world: Core) -> None:
    ticket = await submit(world)

    assert ticket.id == 1 and ticket.status == "new" and ticket.escalation == 0
    assert ticket.org_id == ticket.handler_org_id == await org_id(world, "sanyi")
    assert ticket.assignee_id is None and ticket.resident_id == RES_A
    assert await svc(world).handlers_of(ticket, world.db) == [SECRETARY]  # type: ignore[arg-type]
    new = await messages(world, "tk:1:")
    assert [r["chat_id"] for r in new] == [SECRETARY]
    card = new[0]["payload"]["text"]
    assert card.startswith("📥 新问题") and "村口路灯坏了一个月了" in card
    assert f"提交人：{NAME_A}\n" in card and "状态：待受理" in card
    assert {"tk:a:1", "tk:r:1", "tk:i:1", "tk:t:1", "tk:d:1", "tk:z:1", "tk:h:1"} <= set(callback_data(new[0]))
    assert await svc(world).categories(await org_id(world, "sanyi")) == list(DEFAULT_CATEGORIES)


async def test_an_org_without_a_secretary_passes_it_to_the_parent(world: Core) -> None:
    ticket = await submit(world, RES_GROUP)

    assert ticket.org_id == await org_id(world, "sanyi-g1")
    assert ticket.handler_org_id == await org_id(world, "sanyi")
    assert [r["chat_id"] for r in await messages(world, "tk:1:")] == [SECRETARY]
    assert await svc(world).can_act(SECRETARY, ticket)


async def test_a_category_assignee_gets_that_category(world: Core) -> None:
    await svc(world).assign_category(SYSTEM_ACTOR, "sanyi", "welfare", VILLAGE_ORG)

    welfare = await submit(world, what="低保申请没人管", category="welfare")
    roads = await submit(world, what="路面塌了", category="infrastructure")

    assert (welfare.assignee_id, welfare.handler_org_id) == (VILLAGE_ORG, await org_id(world, "sanyi"))
    assert [r["chat_id"] for r in await messages(world, f"tk:{welfare.id}:")] == [VILLAGE_ORG]
    assert roads.assignee_id is None
    assert [r["chat_id"] for r in await messages(world, f"tk:{roads.id}:")] == [SECRETARY]

    await svc(world).assign_category(SYSTEM_ACTOR, "sanyi", "welfare", None)
    again = await submit(world, what="养老金没到账", category="welfare")
    assert again.assignee_id is None
    assert [r["chat_id"] for r in await messages(world, f"tk:{again.id}:")] == [SECRETARY]
    with pytest.raises(NotFound):
        await svc(world).assign_category(SYSTEM_ACTOR, "nowhere", "welfare", VILLAGE_ORG)


async def test_with_nobody_to_answer_the_nearest_organizers_then_the_admins_hear_of_it(world: Core) -> None:
    xijie = await submit(world, RES_XIJIE, "社区路灯不亮")
    lonely = await submit(world, RES_LONELY, "没人管的问题")

    # xijie and its township have no secretary: the township's organizer is told.
    assert xijie.handler_org_id == await org_id(world, "xijie")
    assert [r["chat_id"] for r in await messages(world, f"tk:{xijie.id}:")] == [OTHER_TOWN_ORG]
    # A root with nobody at all: the admins.
    assert [r["chat_id"] for r in await messages(world, f"tk:{lonely.id}:")] == [ADMIN]
    assert await svc(world).can_act(ADMIN, lonely)


# --- deadlines ------------------------------------------------------------------------------------

async def test_deadlines_count_working_days_to_the_end_of_the_day(world: Core) -> None:
    # START is Friday 27 Nov 2026, 16:00 in Shanghai.
    ticket = await submit(world)

    assert ticket.accept_due == local(2026, 12, 1)  # the end of Monday
    assert ticket.answer_due == local(2026, 12, 5)  # the end of the next Friday
    assert ticket.next_escalation_at == ticket.accept_due
    card = (await messages(world, "tk:1:"))[0]["payload"]["text"]
    assert "受理期限：11月30日（周一）；答复期限：12月4日（周五）" in card


async def test_deadlines_skip_the_national_day_holiday_and_count_make_up_days(world: Core,
                                                                            clock: SettableClock) -> None:
    clock.set(local(2026, 9, 30, 10))  # Wednesday before the 1–7 October holiday
    before_holiday = await submit(world)
    assert before_holiday.accept_due == local(2026, 10, 9)  # Thursday 8 Oct, the first working day
    # 8, 9, 10 (a Saturday worked in exchange), 12, 13 October.
    assert before_holiday.answer_due == local(2026, 10, 14)

    clock.set(local(2026, 9, 19, 10))  # a Saturday; Sunday 20 September is a make-up working day
    weekend = await submit(world, RES_B)
    assert weekend.accept_due == local(2026, 9, 21)
    assert weekend.answer_due == local(2026, 9, 25)


async def test_configure_sets_an_orgs_own_deadlines_and_categories(world: Core) -> None:
    await svc(world).configure(SYSTEM_ACTOR, "sanyi", accept_days=2, answer_days=10)

    ticket = await submit(world)
    assert ticket.accept_due == local(2026, 12, 2)  # Monday and Tuesday
    assert ticket.answer_due == local(2026, 12, 12)  # ten working days: 30 Nov … 11 Dec
    other = await submit(world, RES_ERLANG, "二郎庙村的路")
    assert (other.accept_due, other.answer_due) == (local(2026, 12, 1), local(2026, 12, 5))

    for bad in ({"accept_days": 0}, {"answer_days": 61}, {"categories": []}, {"categories": ["x" * 21]}):
        with pytest.raises(ValueError):
            await svc(world).configure(SYSTEM_ACTOR, "sanyi", **bad)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        await svc(world).configure(SYSTEM_ACTOR, "nowhere", accept_days=1)

    await svc(world).configure(SYSTEM_ACTOR, "sanyi", categories=[" 道路 ", "饮水"])
    assert await svc(world).categories(await org_id(world, "sanyi")) == ["道路", "饮水"]
    assert svc(world).category_name("zh_CN", "饮水") == "饮水"
    before = await snapshot(world)
    with pytest.raises(Refused) as refused:
        await submit(world, RES_B, "学校门口积水", category="infrastructure")
    assert refused.value.key == "ticket.refused.category"
    assert await snapshot(world) == before
    assert (await submit(world, RES_B, "学校门口积水", category="饮水")).category == "饮水"
    # The accept deadline set earlier still holds (only the categories changed).
    assert (await svc(world).get(SYSTEM_ACTOR, 3)).accept_due == local(2026, 12, 2)


# --- the state machine and its history ------------------------------------------------------------

async def test_accept_ask_info_add_info_answer_and_rate_good(world: Core, clock: SettableClock) -> None:
    s = svc(world)
    t0 = clock.now()
    ticket = await submit(world)

    clock.advance(timedelta(hours=1))
    t1 = clock.now()
    assert await s.accept(SECRETARY, ticket.id) == Done("ticket.done.accepted", {"id": 1})
    accepted = await s.get(SYSTEM_ACTOR, 1)
    assert (accepted.status, accepted.accepted_at, accepted.next_escalation_at) == (
        "accepted", t1, accepted.answer_due)
    assert texts_to(await messages(world, "tk-res:1:"), RES_A) == ["您反映的问题 #1 已由「三义村党支部」受理。"]

    clock.advance(timedelta(hours=1))
    t2 = clock.now()
    assert (await s.ask_info(SECRETARY, 1, "  请说明具体位置  ")).key == "ticket.done.asked_info"
    assert (await s.get(SYSTEM_ACTOR, 1)).status == "need_info"
    ask = (await messages(world, "tk-res:1:"))[-1]
    assert ask["payload"]["text"] == "关于问题 #1，书记需要您补充：\n请说明具体位置"
    assert callback_data(ask) == ["tn:1"]

    clock.advance(timedelta(hours=1))
    t3 = clock.now()
    assert (await s.add_info(RES_A, 1, text("在村口东边第三根电线杆"))).key == "ticket.done.info_added"
    assert (await s.get(SYSTEM_ACTOR, 1)).status == "accepted"
    assert any(t.startswith("✍️ 群众补充了信息") and "钱多多" in t
               for t in texts_to(await messages(world, "tk:1:"), SECRETARY))

    clock.advance(timedelta(hours=1))
    t4 = clock.now()
    assert (await s.answer(SECRETARY, 1, text("已联系电工，今天修好。"))).key == "ticket.done.answered"
    done = await s.get(SYSTEM_ACTOR, 1)
    assert (done.status, done.answered_at, done.answer_text, done.next_escalation_at) == (
        "answered", t4, "已联系电工，今天修好。", None)
    answer = (await messages(world, "tk-res:1:"))[-1]
    assert answer["payload"]["text"].startswith("您反映的问题 #1 有答复了：\n已联系电工，今天修好。")
    assert callback_data(answer) == ["tr:g:1", "tr:o:1", "tr:b:1"]

    clock.advance(timedelta(hours=1))
    t5 = clock.now()
    assert await s.rate(RES_A, 1, "good") == Done("ticket.done.rated", {"id": 1})
    closed = await s.get(SYSTEM_ACTOR, 1)
    assert (closed.status, closed.rating, closed.closed_at) == ("closed", "good", t5)
    assert "😊 群众对问题 #1 的答复表示满意" in "".join(texts_to(await messages(world, "tk:1:"), SECRETARY))

    history = await s.events(SYSTEM_ACTOR, 1)
    assert [(e.at, e.actor_id, e.action, e.note) for e in history] == [
        (t0, RES_A, "submitted", None),
        (t1, SECRETARY, "accepted", None),
        (t2, SECRETARY, "asked_info", "请说明具体位置"),
        (t3, RES_A, "info_added", None),
        (t4, SECRETARY, "answered", "已联系电工，今天修好。"),
        (t5, RES_A, "rated_good", None),
    ]
    assert [(side, item.text) for side, item in await s.items(SYSTEM_ACTOR, 1)] == [
        ("resident", "村口路灯坏了一个月了"), ("resident", "在村口东边第三根电线杆"),
        ("handler", "已联系电工，今天修好。")]
    # A rated ticket takes no second rating.
    again = await s.rate(RES_A, 1, "bad", "再评一次")
    assert again.changed is False and again.key == "ticket.done.already"


async def test_rate_ok_closes_and_resolve_is_recorded_as_such(world: Core) -> None:
    s = svc(world)
    ticket = await submit(world)
    await s.answer(SECRETARY, ticket.id, text("已办结"), final=True)  # straight from new: accepted on the way
    resolved = await s.get(SYSTEM_ACTOR, ticket.id)
    assert resolved.status == "answered" and resolved.accepted_at is not None
    assert (await messages(world, "tk-res:1:"))[-1]["payload"]["text"].startswith("您反映的问题 #1 有最终答复了")

    assert (await s.rate(RES_A, ticket.id, "ok")).key == "ticket.done.rated"
    assert ((await s.get(SYSTEM_ACTOR, 1)).status, (await s.get(SYSTEM_ACTOR, 1)).rating) == ("closed", "ok")
    assert [a for _, a, _ in await events(world, 1)] == ["submitted", "resolved", "rated_ok"]


async def test_rate_bad_reopens_to_the_same_handler_and_the_answer_deadline_keeps_counting(
        world: Core, clock: SettableClock) -> None:
    s = svc(world)
    ticket = await answered(world)
    before = await snapshot(world)
    for reason in (None, "   "):
        with pytest.raises(Refused) as refused:
            await s.rate(RES_A, ticket.id, "bad", reason)
        assert refused.value.key == "ticket.refused.reason_needed"
    with pytest.raises(Refused) as refused:
        await s.rate(RES_A, ticket.id, "bad", "长" * 501)
    assert refused.value.key == "ticket.refused.too_long"
    assert await snapshot(world) == before

    clock.advance(timedelta(days=1))
    assert await s.rate(RES_A, ticket.id, "bad", "路灯还是不亮") == Done("ticket.done.reopened", {"id": 1})
    reopened = await s.get(SYSTEM_ACTOR, ticket.id)
    assert reopened.status == "reopened"
    assert (reopened.handler_org_id, reopened.assignee_id) == (ticket.handler_org_id, ticket.assignee_id)
    assert reopened.answer_due == ticket.answer_due == local(2026, 12, 5)
    assert reopened.next_escalation_at == ticket.answer_due  # not restarted
    row = await ticket_row(world, ticket.id)
    assert (row["rating"], row["rating_reason"], row["reopen_count"]) == ("bad", "路灯还是不亮", 1)
    assert texts_to(await messages(world, "tk:1:"), SECRETARY)[-1].startswith(
        "🙁 群众对答复不满意，问题 #1 重新办理（原因：路灯还是不亮）")
    assert (await events(world, 1))[-1] == (RES_A, "rated_bad", "路灯还是不亮")
    assert await s.can_act(SECRETARY, reopened)

    # The original answer deadline passes: escalated as an overdue answer.
    clock.set(local(2026, 12, 5, 0, 1))
    assert await s.tick(SYSTEM_ACTOR) == 1
    assert (await s.get(SYSTEM_ACTOR, 1)).escalation == 1
    assert (await events(world, 1))[-1] == (None, "escalated", "answer:1")
    assert texts_to(await messages(world, "tk-esc:1:1:answer:"), TOWN_ORG)[0].startswith(
        "⚠️ 下级超期未答复的问题（上报第 1 级）")

    # Answered again, then rated fine.
    await s.answer(SECRETARY, 1, text("换了新灯泡"))
    assert (await s.get(SYSTEM_ACTOR, 1)).status == "answered"
    await s.rate(RES_A, 1, "good")
    assert (await s.get(SYSTEM_ACTOR, 1)).status == "closed"


async def test_reopened_after_the_answer_deadline_escalates_at_the_next_tick(world: Core,
                                                                           clock: SettableClock) -> None:
    s = svc(world)
    ticket = await submit(world)
    await s.accept(SECRETARY, 1)
    clock.set(local(2026, 12, 4, 20))  # answered on the last evening
    await s.answer(SECRETARY, 1, text("已处理"))
    clock.set(local(2026, 12, 6, 10))  # rated bad after the answer deadline
    await s.rate(RES_A, 1, "bad", "没处理")
    assert (await s.get(SYSTEM_ACTOR, 1)).next_escalation_at == clock.now()
    assert await s.tick(SYSTEM_ACTOR) == 1
    assert (await s.get(SYSTEM_ACTOR, ticket.id)).escalation == 1


async def test_an_answer_left_unrated_for_three_days_closes_as_unrated(world: Core, clock: SettableClock) -> None:
    s = svc(world)
    ticket = await answered(world)
    answered_at = clock.now()

    clock.set(answered_at + timedelta(days=3) - timedelta(minutes=1))
    assert await s.tick(SYSTEM_ACTOR) == 0
    assert (await s.get(SYSTEM_ACTOR, ticket.id)).status == "answered"

    clock.set(answered_at + timedelta(days=3))
    assert await s.tick(SYSTEM_ACTOR) == 1
    closed = await s.get(SYSTEM_ACTOR, ticket.id)
    assert (closed.status, closed.rating, closed.closed_at) == ("closed", "unrated", clock.now())
    assert (await events(world, ticket.id))[-1] == (None, "closed_unrated", None)
    before = await snapshot(world)
    assert await s.tick(SYSTEM_ACTOR) == 0
    assert await snapshot(world) == before
    late = await s.rate(RES_A, ticket.id, "good")
    assert late.changed is False


async def test_withdraw(world: Core, clock: SettableClock) -> None:
    s = svc(world)
    ticket = await submit(world)
    reminders = await messages(world, "tk-remind:1:accept:")
    assert [r["status"] for r in reminders] == ["pending"]
    assert reminders[0]["not_before"] == to_db(local(2026, 11, 30, 9))  # 09:00 on the last day

    clock.advance(timedelta(minutes=5))
    assert await s.withdraw(RES_A, ticket.id) == Done("ticket.done.withdrawn", {"id": 1})
    gone = await s.get(SYSTEM_ACTOR, 1)
    assert (gone.status, gone.closed_at, gone.next_escalation_at) == ("withdrawn", clock.now(), None)
    assert [r["status"] for r in await messages(world, "tk-remind:1:")] == ["cancelled"]
    assert "群众撤回了问题 #1" in texts_to(await messages(world, "tk:1:"), SECRETARY)[-1]
    assert (await events(world, 1))[-1] == (RES_A, "withdrawn", None)

    assert (await s.withdraw(RES_A, 1)).changed is False
    late = await s.accept(SECRETARY, 1)
    assert (late.key, late.changed) == ("ticket.done.already", False)
    assert late.values["status"] == Say("ticket.status.withdrawn")
    clock.set(local(2026, 12, 20))
    assert await s.tick(SYSTEM_ACTOR) == 0


async def test_decline_with_a_reason(world: Core) -> None:
    s = svc(world)
    await submit(world)
    before = await snapshot(world)
    with pytest.raises(Refused) as refused:
        await s.decline(SECRETARY, 1, "  ")
    assert refused.value.key == "ticket.refused.reason_needed"
    assert await snapshot(world) == before

    assert await s.decline(SECRETARY, 1, "这是县交通局的职责") == Done("ticket.done.declined", {"id": 1})
    declined = await s.get(SYSTEM_ACTOR, 1)
    assert (declined.status, declined.next_escalation_at) == ("declined", None)
    assert texts_to(await messages(world, "tk-res:1:"), RES_A) == [
        "您反映的问题 #1 不属于本支部职责范围，说明：这是县交通局的职责"]
    assert (await events(world, 1))[-1] == (SECRETARY, "declined", "这是县交通局的职责")
    assert (await s.decline(SECRETARY, 1, "再说一次")).changed is False


async def test_transfer_to_another_org_with_a_reason(world: Core) -> None:
    s = svc(world)
    ticket = await submit(world)
    erlang = await org_id(world, "erlang")
    before = await snapshot(world)
    with pytest.raises(Refused) as refused:
        await s.transfer(SECRETARY, 1, "", to_org=erlang)
    assert refused.value.key == "ticket.refused.reason_needed"
    with pytest.raises(ValueError):
        await s.transfer(SECRETARY, 1, "原因", to_org=erlang, to_person=ERLANG_SECRETARY)
    with pytest.raises(NotAllowed):
        await s.transfer(SECRETARY, 1, "原因", to_org=ticket.handler_org_id)  # where it already is
    with pytest.raises(NotAllowed):
        await s.transfer(SECRETARY, 1, "原因", to_org=await org_id(world, "xijie"))  # not offered
    assert await snapshot(world) == before

    orgs, people = await s.transfer_targets(SECRETARY, 1)
    assert {o.code for o in orgs} == {"longjuzhai", "erlang", "sanyi-g1"}
    assert people == []

    done = await s.transfer(SECRETARY, 1, "路在二郎庙村地界", to_org=erlang)
    assert done == Done("ticket.done.transferred", {"id": 1, "target": "二郎村党支部"})
    moved = await s.get(SYSTEM_ACTOR, 1)
    assert (moved.handler_org_id, moved.assignee_id, moved.status) == (erlang, None, "new")
    assert texts_to(await messages(world, "tk:1:"), ERLANG_SECRETARY)[-1].startswith(
        "↪️ 转交来的问题（原因：路在二郎庙村地界）")
    assert texts_to(await messages(world, "tk-res:1:"), RES_A) == ["您反映的问题 #1 已转交给「二郎村党支部」办理。"]
    assert (await events(world, 1))[-1] == (SECRETARY, "transferred", "二郎村党支部: 路在二郎庙村地界")

    # The new org's secretary may act; the old one no longer.
    assert await s.can_act(ERLANG_SECRETARY, moved)
    assert not await s.can_act(SECRETARY, moved)
    with pytest.raises(NotAllowed):
        await s.accept(SECRETARY, 1)
    assert (await s.accept(ERLANG_SECRETARY, 1)).key == "ticket.done.accepted"


async def test_transfer_to_a_person_with_a_reason(world: Core) -> None:
    s = svc(world)
    await grant(world, SECOND_SECRETARY, "刘副书记", "sanyi", "secretary")
    await submit(world)
    before = await snapshot(world)
    # Only the people the transfer menu offers (the handling org's other secretaries).
    assert (await s.transfer_targets(SECRETARY, 1))[1] == [(SECOND_SECRETARY, "刘副书记")]
    for forged in (RES_B, ERLANG_SECRETARY, TOWN_ORG, SECRETARY):
        with pytest.raises(NotAllowed):
            await s.transfer(SECRETARY, 1, "他懂", to_person=forged)
    assert await snapshot(world) == before

    done = await s.transfer(SECRETARY, 1, "他管水利", to_person=SECOND_SECRETARY)
    assert done.values == {"id": 1, "target": "刘副书记"}
    moved = await s.get(SYSTEM_ACTOR, 1)
    assert moved.assignee_id == SECOND_SECRETARY and moved.handler_org_id == await org_id(world, "sanyi")
    assert await s.handlers_of(moved, world.db) == [SECOND_SECRETARY]  # type: ignore[arg-type]
    assert texts_to(await messages(world, "tk:1:"), SECOND_SECRETARY)[-1].startswith("↪️ 转交来的问题（原因：他管水利）")
    assert (await events(world, 1))[-1] == (SECRETARY, "transferred", "刘副书记: 他管水利")
    assert await s.can_act(SECOND_SECRETARY, moved)
    assert (await s.answer(SECOND_SECRETARY, 1, text("水管已修"))).key == "ticket.done.answered"


# --- rights ---------------------------------------------------------------------------------------

async def test_a_resident_cannot_see_or_act_on_anothers_ticket(world: Core) -> None:
    s = svc(world)
    ticket = await answered(world)
    assert await s.can_view(RES_A, ticket)
    assert not await s.can_view(RES_B, ticket)
    assert await s.mine(RES_B) == []
    before = await snapshot(world)
    attempts = [
        s.withdraw(RES_B, 1), s.rate(RES_B, 1, "good"), s.rate(RES_B, 1, "bad", "不好"),
        s.add_info(RES_B, 1, text("补充")), s.accept(RES_B, 1), s.answer(RES_B, 1, text("答复")),
        s.ask_info(RES_B, 1, "问"), s.decline(RES_B, 1, "不管"), s.block_submitter(RES_B, 1),
        s.transfer(RES_B, 1, "转", to_org=await org_id(world, "erlang")), s.transfer_targets(RES_B, 1),
    ]
    for attempt in attempts:
        with pytest.raises(NotAllowed):
            await attempt
    # Not even the author may act as a secretary on their own ticket.
    with pytest.raises(NotAllowed):
        await s.answer(RES_A, 1, text("我自己答"))
    assert await snapshot(world) == before


async def test_only_the_right_people_may_act_on_a_sanyi_ticket(world: Core) -> None:
    s = svc(world)
    ticket = await submit(world)
    erlang = await org_id(world, "erlang")
    before = await snapshot(world)
    for outsider in (ERLANG_SECRETARY, OTHER_TOWN_ORG, MEMBER, RESIDENT):
        assert not await s.can_act(outsider, ticket)
        for attempt in (s.accept(outsider, 1), s.answer(outsider, 1, text("答")), s.ask_info(outsider, 1, "问"),
                        s.decline(outsider, 1, "不管"), s.transfer(outsider, 1, "转", to_org=erlang),
                        s.transfer(outsider, 1, "转", to_person=outsider), s.block_submitter(outsider, 1)):
            with pytest.raises(NotAllowed):
                await attempt
    assert await snapshot(world) == before

    for insider in (SECRETARY, VILLAGE_ORG, TOWN_ORG, COUNTY_ORG, ADMIN):
        assert await s.can_act(insider, ticket), insider
    # The organizer above acts.
    assert (await s.accept(TOWN_ORG, 1)).key == "ticket.done.accepted"
    assert (await events(world, 1))[-1] == (TOWN_ORG, "accepted", None)
    assert texts_to(await messages(world, "tk-co:1:"), SECRETARY) == ["问题 #1 已由 李明 受理。"]


# --- escalation ------------------------------------------------------------------------------------

async def test_escalation_tells_the_parent_orgs_secretary_and_organizers_and_goes_up_the_tree(
        world: Core, clock: SettableClock) -> None:
    s = svc(world)
    await grant(world, TOWN_SECRETARY, "龙驹寨书记", "longjuzhai", "secretary")
    ticket = await submit(world)
    assert not await s.can_act(TOWN_SECRETARY, ticket)

    clock.set(ticket.accept_due - timedelta(minutes=1))
    assert await s.tick(SYSTEM_ACTOR) == 0
    clock.set(ticket.accept_due + timedelta(minutes=1))
    assert await s.tick(SYSTEM_ACTOR) == 1
    level1 = await s.get(SYSTEM_ACTOR, 1)
    assert level1.escalation == 1 and level1.status == "new"
    assert (await events(world, 1))[-1] == (None, "escalated", "accept:1")
    told = await messages(world, "tk-esc:1:1:accept:")
    assert sorted(r["chat_id"] for r in told) == [TOWN_ORG, TOWN_SECRETARY]
    for row in told:
        assert row["payload"]["text"].startswith("⚠️ 下级超期未受理的问题（上报第 1 级）：")
        assert "tk:a:1" in callback_data(row)
    assert texts_to(await messages(world, "tk-late:1:1:accept:"), SECRETARY) == [
        "⚠️ 问题 #1 已超过受理期限，已上报上级（第 1 级）。"]
    # Escalated to them: the township's secretary may act now.
    assert await s.can_act(TOWN_SECRETARY, level1)

    # Idempotent: another tick at the same time changes nothing.
    before = await snapshot(world)
    assert await s.tick(SYSTEM_ACTOR) == 0
    assert await snapshot(world) == before

    # The next deadline: the county.
    assert level1.next_escalation_at is not None and level1.next_escalation_at > clock.now()
    clock.set(level1.next_escalation_at + timedelta(minutes=1))
    assert await s.tick(SYSTEM_ACTOR) == 1
    level2 = await s.get(SYSTEM_ACTOR, 1)
    assert level2.escalation == 2
    assert [r["chat_id"] for r in await messages(world, "tk-esc:1:2:accept:")] == [COUNTY_ORG]
    # Past the top of the tree: the admins.
    assert level2.next_escalation_at is not None
    clock.set(level2.next_escalation_at + timedelta(minutes=1))
    assert await s.tick(SYSTEM_ACTOR) == 1
    assert (await s.get(SYSTEM_ACTOR, 1)).escalation == 3
    assert [r["chat_id"] for r in await messages(world, "tk-esc:1:3:accept:")] == [ADMIN]


async def test_the_escalation_card_shows_the_new_level(world: Core, clock: SettableClock) -> None:
    s = svc(world)
    ticket = await submit(world)
    clock.set(ticket.accept_due + timedelta(minutes=1))
    await s.tick(SYSTEM_ACTOR)
    level1 = await s.get(SYSTEM_ACTOR, 1)
    assert level1.next_escalation_at is not None
    clock.set(level1.next_escalation_at + timedelta(minutes=1))
    await s.tick(SYSTEM_ACTOR)
    card = texts_to(await messages(world, "tk-esc:1:2:accept:"), COUNTY_ORG)[0]
    assert card.startswith("⚠️ 下级超期未受理的问题（上报第 2 级）")
    assert "⚠️ 已超期上报 2 级" in card


async def test_the_next_escalation_comes_one_working_day_after_the_deadline(world: Core,
                                                                           clock: SettableClock) -> None:
    s = svc(world)
    ticket = await submit(world)  # accept by the end of Monday 30 Nov
    clock.set(ticket.accept_due + timedelta(minutes=1))
    await s.tick(SYSTEM_ACTOR)
    # One more working day to accept (Tuesday 1 Dec): level 2 when Tuesday ends.
    assert (await s.get(SYSTEM_ACTOR, 1)).next_escalation_at == local(2026, 12, 2)


async def test_an_overdue_answer_escalates_too(world: Core, clock: SettableClock) -> None:
    s = svc(world)
    ticket = await submit(world)
    await s.accept(SECRETARY, 1)
    clock.set(ticket.answer_due + timedelta(minutes=1))
    assert await s.tick(SYSTEM_ACTOR) == 1
    assert (await events(world, 1))[-1] == (None, "escalated", "answer:1")
    assert texts_to(await messages(world, "tk-late:1:1:answer:"), SECRETARY) == [
        "⚠️ 问题 #1 已超过答复期限，已上报上级（第 1 级）。"]
    inbox = await s.inbox(SECRETARY)
    assert (inbox.overdue, inbox.new, [line.overdue for line in inbox.lines]) == (1, 0, [True])


async def test_escalation_catches_up_after_downtime_with_each_level_once(world: Core, clock: SettableClock) -> None:
    s = svc(world)
    await submit(world)
    clock.advance(timedelta(weeks=3))

    assert await s.tick(SYSTEM_ACTOR) >= 3
    ticket = await s.get(SYSTEM_ACTOR, 1)
    assert ticket.escalation == 3
    told = await messages(world, "tk-esc:1:")
    assert [(r["dedup_key"].split(":")[2], r["chat_id"]) for r in told] == [
        ("1", TOWN_ORG), ("2", COUNTY_ORG), ("3", ADMIN)]
    assert [r["chat_id"] for r in await messages(world, "tk-late:1:")] == [SECRETARY] * 3
    levels = [note for _, action, note in await events(world, 1) if action == "escalated"]
    assert levels[:3] == ["accept:1", "accept:2", "accept:3"]
    assert ticket.next_escalation_at is None or ticket.next_escalation_at > clock.now()

    before = await snapshot(world)
    assert await s.tick(SYSTEM_ACTOR) == 0
    assert await snapshot(world) == before


async def test_past_the_top_of_the_tree_escalation_stops(world: Core, clock: SettableClock) -> None:
    s = svc(world)
    await submit(world)
    clock.advance(timedelta(weeks=3))
    await s.tick(SYSTEM_ACTOR)
    levels = [note for _, action, note in await events(world, 1) if action == "escalated"]
    assert levels == ["accept:1", "accept:2", "accept:3"]


async def test_a_second_secretary_is_told_who_handled_it(world: Core) -> None:
    s = svc(world)
    await grant(world, SECOND_SECRETARY, "刘副书记", "sanyi", "secretary")
    await submit(world)
    assert sorted(r["chat_id"] for r in await messages(world, "tk:1:")) == [SECRETARY, SECOND_SECRETARY]

    assert (await s.accept(SECRETARY, 1)).changed is True
    assert texts_to(await messages(world, "tk-co:1:"), SECOND_SECRETARY) == ["问题 #1 已由 王建国 受理。"]
    before = await snapshot(world)
    assert await s.accept(SECOND_SECRETARY, 1) == Done(
        "ticket.done.already", {"id": 1, "by": "王建国", "status": Say("ticket.status.accepted")}, changed=False)
    assert await snapshot(world) == before

    await s.answer(SECRETARY, 1, text("已修"))
    late = await s.answer(SECOND_SECRETARY, 1, text("我也来答"))
    assert (late.key, late.values["by"], late.changed) == ("ticket.done.already", "王建国", False)
    assert [a for _, a, _ in await events(world, 1)] == ["submitted", "accepted", "answered"]


# --- abuse ----------------------------------------------------------------------------------------

async def test_an_empty_submission_is_refused_and_nothing_is_stored(world: Core) -> None:
    before = await snapshot(world)
    for items in ([], [Item("text", "x")] * 21):
        with pytest.raises(Refused) as refused:
            await submit(world, items=items)
        assert refused.value.key in ("ticket.refused.empty", "ticket.refused.too_many_items")
    assert await snapshot(world) == before


async def test_more_than_five_submissions_an_hour_are_refused(world: Core, clock: SettableClock) -> None:
    for n in range(5):
        await submit(world, what=f"第{n}个问题")
        clock.advance(timedelta(minutes=1))
    before = await snapshot(world)
    with pytest.raises(Refused) as refused:
        await submit(world, what="第六个问题")
    assert (refused.value.key, refused.value.values) == ("ticket.refused.too_many", {"limit": 5})
    with pytest.raises(Refused):
        await svc(world).check_can_submit(RES_A)
    assert await snapshot(world) == before
    # Someone else is not held back, and an hour after the first one it is fine again.
    await submit(world, RES_B, "第六个问题")
    clock.set(START + timedelta(hours=1, seconds=1))
    assert (await submit(world, what="第六个问题")).id == 7


async def test_the_same_text_twice_in_a_day_is_refused(world: Core, clock: SettableClock) -> None:
    first = await submit(world, what="村口路灯坏了")
    clock.advance(timedelta(hours=5))
    before = await snapshot(world)
    with pytest.raises(Refused) as refused:
        await submit(world, what=" 村口 路灯坏了\n", category="other")
    assert (refused.value.key, refused.value.values) == ("ticket.refused.duplicate", {"id": first.id})
    assert await snapshot(world) == before
    assert (await submit(world, RES_B, "村口路灯坏了")).resident_id == RES_B
    clock.set(START + timedelta(days=1, minutes=1))
    assert (await submit(world, what="村口路灯坏了")).id == 3


async def test_a_blocked_person_cannot_submit_and_the_block_keeps_them_anonymous(
        world: Core, clock: SettableClock) -> None:
    s = svc(world)
    ticket = await submit(world, anonymous=True)
    with pytest.raises(NotAllowed):
        await s.block_submitter(ERLANG_SECRETARY, ticket.id)

    done = await s.block_submitter(SECRETARY, ticket.id)
    assert done == Done("ticket.done.blocked", {"id": 1})
    assert (await events(world, 1))[-1] == (SECRETARY, "blocked_submitter", None)
    blocks = await s.blocks(SECRETARY)
    assert [(block.ticket_id, block.org) for block in blocks] == [(1, "三义村党支部")]
    assert str(RES_A) not in repr(blocks) and NAME_A not in repr(blocks)
    assert await s.blocks(ERLANG_SECRETARY) == []
    again = await s.block_submitter(TOWN_ORG, ticket.id)
    assert (again.key, again.changed) == ("ticket.done.already_blocked", False)

    before = await snapshot(world)
    for attempt in (s.check_can_submit(RES_A), submit(world, what="另一个问题")):
        with pytest.raises(Refused) as refused:
            await attempt
        assert refused.value.key == "ticket.refused.blocked"
    assert await snapshot(world) == before

    block_id = blocks[0].id
    with pytest.raises(NotAllowed):
        await s.unblock(ERLANG_SECRETARY, block_id)
    clock.advance(timedelta(minutes=3))
    assert (await s.unblock(TOWN_ORG, block_id)).key == "ticket.done.unblocked"
    assert (await events(world, 1))[-1] == (TOWN_ORG, "unblocked_submitter", None)
    block = (await rows(world, "SELECT lifted_by, lifted_at FROM submit_blocks WHERE id = ?", (block_id,)))[0]
    assert block == {"lifted_by": TOWN_ORG, "lifted_at": to_db(clock.now())}
    assert (await s.unblock(SECRETARY, block_id)).changed is False
    with pytest.raises(NotFound):
        await s.unblock(SECRETARY, 999)
    # Nothing the secretaries were sent names the anonymous resident.
    for row in await outbox_rows(world):
        if row["chat_id"] != RES_A:
            assert NAME_A not in json.dumps(row["payload"], ensure_ascii=False)
    assert (await submit(world, what="另一个问题")).id == 2


# --- masking --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "masked"), [
    ("电话13812345678", "电话138****5678"),
    ("联系人:老张 15909876543，白天打", "联系人:老张 159****6543，白天打"),
    ("座机0914-2345678", "座机0914-***5678"),
    ("029-88886666", "029-****6666"),
    ("身份证610222198001011234。", "身份证610222********1234。"),
    ("身份证号61022219800101123X", "身份证号610222********123X"),
    ("id 61022219800101123x", "id 610222********123x"),
    ("两个号码 13812345678 和 13987654321", "两个号码 138****5678 和 139****4321"),
])
def test_mask_private_hides_phones_landlines_and_id_cards(raw: str, masked: str) -> None:
    assert mask_private(raw) == masked


@pytest.mark.parametrize("plain", [
    "问题 #12 和 #1234",
    "2026-11-27 反映的，11月27日",
    "20261127",
    "第3组15户，每户120元，共1800元",
    "订单号 202611270001",
    "12345678901",  # eleven digits, but no mobile number starts with 12
    "面积 0.5 亩",
])
def test_mask_private_leaves_ordinary_numbers_alone(plain: str) -> None:
    assert mask_private(plain) == plain


@pytest.mark.parametrize("raw", ["+8613812345678", "电话 138 1234 5678", "电话 138-1234-5678"])
def test_mask_private_hides_mobile_numbers_as_people_write_them(raw: str) -> None:
    assert "5678" in mask_private(raw) and "1234" not in mask_private(raw)


# --- the echo wall --------------------------------------------------------------------------------

async def test_the_wall_shows_public_answered_tickets_newest_first_masked_and_paged(
        world: Core, clock: SettableClock) -> None:
    s = svc(world)
    public_ids = []
    for n in range(7):
        resident = RES_A if n % 2 else RES_B
        ticket = await submit(world, resident, f"第{n}个问题，电话1381234567{n}")
        clock.advance(timedelta(minutes=1))
        await s.answer(SECRETARY, ticket.id, text(f"第{n}个答复，有事打0914-234567{n}"))
        clock.advance(timedelta(minutes=20))
        public_ids.append(ticket.id)
    private = await submit(world, RES_A, "不公开的问题", public=False)
    await s.answer(SECRETARY, private.id, text("私下答复"))
    await submit(world, RES_B, "还没答复的问题")
    declined = await submit(world, RES_B, "不归我们管的问题")
    await s.decline(SECRETARY, declined.id, "不归本村管")
    other = await submit(world, RES_ERLANG, "二郎庙村的问题")
    await s.answer(ERLANG_SECRETARY, other.id, text("二郎庙村的答复"))
    # The first one is rated and closed: still on the wall.
    await s.rate(RES_B, public_ids[0], "good")

    sanyi = await org_id(world, "sanyi")
    page0, more0 = await s.wall(sanyi, 0)
    page1, more1 = await s.wall(sanyi, 1)
    assert [p.ticket.id for p in page0] == public_ids[::-1][:WALL_PAGE] and more0 is True
    assert [p.ticket.id for p in page1] == public_ids[::-1][WALL_PAGE:] and more1 is False
    assert await s.wall(sanyi, 2) == ([], False)

    shown = s.wall_text("zh_CN", page0[0])
    assert shown.startswith(
        "【回音壁】#7 基础设施\n问题：第6个问题，电话138****5676\n答复：第6个答复，有事打0914-***5676")
    assert "13812345676" not in shown and "2345676" not in shown
    assert NAME_A not in shown and "孙小妹" not in shown
    assert [p.ticket.id for p in (await s.wall(await org_id(world, "erlang"), 0))[0]] == [other.id]


async def test_the_bound_wall_chat_gets_a_post_and_edits_on_reopen(world: Core) -> None:
    s = svc(world)
    sanyi = await org_id(world, "sanyi")
    with pytest.raises(NotAllowed):
        await s.bind_wall(ERLANG_SECRETARY, sanyi, -100500, "三义村回音壁")
    assert (await s.bind_wall(SECRETARY, sanyi, -100500, "三义村回音壁")).key == "ticket.done.wall_bound"
    assert [o.code for o in await s.wall_orgs(SECRETARY)] == ["sanyi"]

    await answered(world, answer="已修好，电话13812345678")
    private = await submit(world, RES_B, "别公开", public=False)
    await s.answer(SECRETARY, private.id, text("好的"))
    posts = await messages(world, "wall", chat_id=-100500)
    assert [r["dedup_key"] for r in posts] == ["wall:1"]
    assert "138****5678" in posts[0]["payload"]["text"]

    await s.rate(RES_A, 1, "bad", "没修好")
    await s.answer(SECRETARY, 1, text("又修了一次"))
    posts = await messages(world, "wall", chat_id=-100500)
    assert [(r["dedup_key"], r["method"]) for r in posts] == [
        ("wall:1", "sendMessage"), ("wall-edit:1:1", "editMessageText"), ("wall-edit:1:2", "editMessageText")]
    assert posts[1]["payload"]["message_id_from"] == "wall:1"
    assert posts[1]["payload"]["text"].endswith("（群众不满意，正在重新办理）")
    assert "又修了一次" in posts[2]["payload"]["text"] and "重新办理" not in posts[2]["payload"]["text"]


# --- anonymity ------------------------------------------------------------------------------------

async def test_the_handlers_never_learn_who_an_anonymous_resident_is(world: Core, clock: SettableClock) -> None:
    s = svc(world)
    await grant(world, TOWN_SECRETARY, "龙驹寨书记", "longjuzhai", "secretary")
    items = [Item("text", "有人在河边倒垃圾"), Item("photo", None, chat_id=RES_A, message_id=41),
             Item("location", "📍 33.70000,110.30000", chat_id=RES_A, message_id=42)]
    ticket = await submit(world, items=items, anonymous=True)
    clock.set(ticket.accept_due + timedelta(minutes=1))
    await s.tick(SYSTEM_ACTOR)  # escalation cards
    await s.accept(SECRETARY, 1)
    await s.ask_info(SECRETARY, 1, "大概几点？")
    await s.add_info(RES_A, 1, [Item("text", "早上六点"), Item("photo", None, chat_id=RES_A, message_id=43)])
    await s.transfer(SECRETARY, 1, "河道归二郎庙村", to_org=await org_id(world, "erlang"))
    await s.answer(ERLANG_SECRETARY, 1, text("已安排清理"))
    await s.rate(RES_A, 1, "bad", "还有垃圾")
    await s.withdraw(RES_A, 1)

    to_handlers = [r for r in await outbox_rows(world) if r["chat_id"] != RES_A]
    assert {r["chat_id"] for r in to_handlers} >= {SECRETARY, ERLANG_SECRETARY, TOWN_ORG, TOWN_SECRETARY}
    cards = [r["payload"]["text"] for r in to_handlers if "提交人：" in r["payload"].get("text", "")]
    assert len(cards) >= 5 and all("提交人：匿名群众" in card for card in cards)
    for row in to_handlers:
        shown = row["payload"].get("text", "")
        assert NAME_A not in shown and str(RES_A) not in shown, row["dedup_key"]
    # The photos reach the secretary only as copies, which carry no sender.
    copies = [r for r in to_handlers if r["method"] == "copyMessage"]
    assert {(r["chat_id"], r["payload"]["message_id"]) for r in copies} >= {
        (SECRETARY, 41), (SECRETARY, 42), (SECRETARY, 43), (ERLANG_SECRETARY, 41)}
    assert all(set(r["payload"]) == {"chat_id", "from_chat_id", "message_id"} for r in copies)


async def test_already_handled_does_not_name_an_anonymous_resident(world: Core) -> None:
    s = svc(world)
    await submit(world, anonymous=True)
    await s.withdraw(RES_A, 1)
    late = await s.accept(SECRETARY, 1)
    assert late.changed is False
    assert NAME_A not in str(late.values) and str(RES_A) not in str(late.values)
