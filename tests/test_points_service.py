"""Pledges and points (设岗承诺 · 积分 · 评星定级) against a real SQLite file, with the shared tree
(tests/orgtree.py): 三义村党支部 with secretary 1001, party member 1005 and resident 1006; the
township's organiser 1002 above it; 城关's organiser 1007 beside it.

The month of records is December 2026 (Shanghai time): meetings attended (one by check-in, one
by the secretary's mark, one missed), a 主题党日, a deliberation round voted in by secret ballot,
a confirmed 践诺, a manual addition; and for the secretary, problems answered in time and rated
满意, against one answered late and one rated 不满意."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    MEMBER,
    OTHER_TOWN_ORG,
    RESIDENT,
    SECRETARY,
    TOWN_ORG,
    clock_fixture,
    core_fixture,
    org_id,
    outbox_rows,
    tree_fixture,
)

from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock
from bot.core import Core
from bot.database import IntegrityError
from bot.services.deliberation import Audience, RoundSpec
from bot.services.meetings import Draft
from bot.services.orgs import NotAllowed, NotFound, Refused
from bot.services.points import DEFAULTS, Source
from bot.services.tickets import Item

SH = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


async def meeting(core: Core, start: datetime, kind: str = "general_meeting") -> int:
    sanyi = await org_id(core, "sanyi")
    created = await core.meetings.create(SECRETARY, Draft(kind=kind, org_id=sanyi, starts_at=start,
                                                          ends_at=start + timedelta(hours=2), place="村委会",
                                                          topic="学习党章"))
    return created.meeting.id


async def month_of_records(core: Core, clock: SettableClock) -> None:
    """Long because it is one month of a village's life, in the order it happens.

    MEMBER: attends the meeting of 3 Dec (check-in) and the 主题党日 of 10 Dec (the secretary's
    mark), misses the one of 17 Dec; votes in a secret round closed on 8 Dec; has a 践诺 confirmed
    on 12 Dec; gets 3 points added on 20 Dec. SECRETARY: answers two problems in time (one rated 满意,
    one 基本满意), one in time rated 不满意, and one late rated 满意."""
    sanyi = await org_id(core, "sanyi")
    first, theme, missed = (await meeting(core, local(2026, 12, 3, 15, 0)),
                            await meeting(core, local(2026, 12, 10, 15, 0), "theme_day"),
                            await meeting(core, local(2026, 12, 17, 15, 0)))
    assert missed
    tickets = [(await core.tickets.submit(RESIDENT, [Item("text", what)], "infrastructure", True, False)).id
               for what in ("村口路灯坏了", "桥头护栏断了", "水渠堵了")]
    clock.set(local(2026, 11, 30, 10, 0))
    for ticket_id in tickets:
        await core.tickets.answer(SECRETARY, ticket_id, [Item("text", "已经修好了")])
    for ticket_id, rating in zip(tickets, ("good", "ok", "bad"), strict=True):
        await core.tickets.rate(RESIDENT, ticket_id, rating, "水还是不通" if rating == "bad" else None)
    late = (await core.tickets.submit(RESIDENT, [Item("text", "村西的井没水了")], "infrastructure", True, False)).id
    rnd = await core.deliberation.open(SECRETARY, RoundSpec(
        org_id=sanyi, title="要不要修村西的路", audience=Audience.MEMBERS, opinions_until=local(2026, 12, 5, 12, 0),
        votes_until=local(2026, 12, 8, 12, 0), options=("修", "不修"), secret=True))
    clock.set(local(2026, 12, 3, 14, 50))
    await core.meetings.check_in(MEMBER, first)
    await core.deliberation.tick(SYSTEM_ACTOR)
    clock.set(local(2026, 12, 6, 9, 0))
    await core.deliberation.tick(SYSTEM_ACTOR)
    await core.deliberation.cast(MEMBER, rnd.id, [0])
    clock.set(local(2026, 12, 8, 12, 30))
    await core.deliberation.tick(SYSTEM_ACTOR)
    clock.set(local(2026, 12, 10, 15, 30))
    assert await core.meetings.mark(SECRETARY, theme, MEMBER) == "present"
    pledge = await core.pledges.write_pledge(MEMBER, sanyi, "每月帮困难户干一次活")
    report = await core.pledges.report(MEMBER, pledge.id, "帮王大娘收了玉米", [])
    clock.set(local(2026, 12, 12, 9, 0))
    await core.pledges.confirm(SECRETARY, report)
    clock.set(local(2026, 12, 20, 9, 0))
    await core.points.adjust(SECRETARY, sanyi, MEMBER, 3, "帮助群众修路")
    await core.tickets.answer(SECRETARY, late, [Item("text", "井修好了")])
    await core.tickets.rate(RESIDENT, late, "good")


async def test_a_members_points_come_from_a_month_of_records(tree: Core, clock: SettableClock) -> None:
    core = tree
    await month_of_records(core, clock)
    clock.set(local(2026, 12, 31, 20, 0))
    sanyi = await org_id(core, "sanyi")
    member = await core.points.person(SECRETARY, sanyi, MEMBER)
    assert member.month.counts == {Source.MEETING: 1, Source.THEME_DAY: 1, Source.DELIBERATION: 1,
                                   Source.PLEDGE: 1, Source.ADJUST: 1}
    assert member.month.points == {Source.MEETING: 2, Source.THEME_DAY: 3, Source.DELIBERATION: 1,
                                   Source.PLEDGE: 5, Source.ADJUST: 3}
    assert member.month.total == 14 == member.year.total
    # The secretary: answered in time and rated 满意 / 基本满意 (two; 11-30 is November), not the
    # one rated 不满意, nor the late one.
    secretary = await core.points.person(SECRETARY, sanyi, SECRETARY)
    assert secretary.month.total == 0
    assert secretary.year.counts == {Source.TICKET: 2} and secretary.year.total == 4
    tally = (await core.points.tally(core.db, [SECRETARY], local(2026, 11, 1), local(2026, 12, 1), DEFAULTS))[SECRETARY]
    assert tally.points == {Source.TICKET: 4}
    # In the member's own view, and in January nothing for the month yet (the year has started again).
    org_name, month, year = await core.points.mine(MEMBER)
    assert (org_name, month.total, year.total) == ("三义村党支部", 14, 14)
    clock.set(local(2027, 1, 5, 9, 0))
    _, month, year = await core.points.mine(MEMBER)
    assert (month.total, year.total) == (0, 0)


async def test_the_secret_ballot_stays_secret_only_taking_part_counts(tree: Core, clock: SettableClock) -> None:
    """Whatever a member chose, the points are the same: only ballot_voters is read."""
    core = tree
    await month_of_records(core, clock)
    box = await core.db.fetchall("SELECT * FROM ballot_voters")
    assert [tuple(r)[1] for r in box] == [MEMBER]
    assert await core.db.fetchval("SELECT COUNT(*) FROM ballots_open") == 0  # a secret box keeps no choice per person


async def test_an_adjustment_is_recorded_and_the_member_is_told(tree: Core) -> None:
    core = tree
    sanyi = await org_id(core, "sanyi")
    adj = await core.points.adjust(SECRETARY, sanyi, MEMBER, -2, "  无故缺席党员大会 ")
    row = await core.db.fetchone("SELECT * FROM point_adjustments WHERE id = ?", (adj,))
    assert (row["delta"], row["reason"], row["by_id"], row["person_id"]) == (-2, "无故缺席党员大会", SECRETARY, MEMBER)
    [notice] = [r for r in await outbox_rows(core, MEMBER) if r["purpose"] == "points/adjust"]
    assert notice["payload"]["text"] == "⭐ 书记给您减了2分（三义村党支部）。原因：无故缺席党员大会"
    with pytest.raises(Refused, match=r"points.refused.empty_reason"):
        await core.points.adjust(SECRETARY, sanyi, MEMBER, 2, "   ")
    with pytest.raises(Refused, match=r"points.refused.bad_delta"):
        await core.points.adjust(SECRETARY, sanyi, MEMBER, 0, "没有")


async def test_only_the_branch_secretary_adjusts_and_only_organisers_above_set_rules(tree: Core) -> None:
    core = tree
    sanyi, town = await org_id(core, "sanyi"), await org_id(core, "longjuzhai")
    before = await core.db.fetchval("SELECT COUNT(*) FROM point_adjustments")
    for actor in (MEMBER, TOWN_ORG, RESIDENT, OTHER_TOWN_ORG):
        with pytest.raises(NotAllowed):
            await core.points.adjust(actor, sanyi, MEMBER, 2, "表现好")
    with pytest.raises(NotFound):  # someone not of the branch
        await core.points.adjust(SECRETARY, sanyi, RESIDENT, 2, "表现好")
    assert await core.db.fetchval("SELECT COUNT(*) FROM point_adjustments") == before
    # Rules: the township organiser sets them for the township; the village inherits them.
    for actor in (SECRETARY, MEMBER, OTHER_TOWN_ORG):
        with pytest.raises(NotAllowed):
            await core.points.set_rule(actor, sanyi, "meeting", 4)
    assert (await core.points.rules(sanyi)).points["meeting"] == 2
    await core.points.set_rule(TOWN_ORG, town, "meeting", 4)
    assert (await core.points.rules(sanyi)).points["meeting"] == 4
    await core.points.set_rule(TOWN_ORG, sanyi, "stars3", 45)
    rules = await core.points.rules(sanyi)
    assert rules.stars == (20, 45, 60, 80) and rules.points["meeting"] == 4  # its own row starts from the inherited
    assert [rules.stars_for(n) for n in (0, 19, 20, 45, 79, 80)] == [1, 1, 2, 3, 4, 5]
    with pytest.raises(Refused, match=r"points.refused.bad_thresholds"):
        await core.points.set_rule(TOWN_ORG, sanyi, "stars2", 50)


async def test_pledges_posts_reports_and_confirmation(tree: Core) -> None:
    core = tree
    p = core.pledges
    sanyi = await org_id(core, "sanyi")
    with pytest.raises(NotAllowed):
        await p.add_post(MEMBER, sanyi, "环境卫生监督岗")
    post = await p.add_post(SECRETARY, sanyi, "环境卫生监督岗")
    taken = await p.take_post(MEMBER, post.id)
    with pytest.raises(Refused, match=r"pledge.refused.taken_already"):
        await p.take_post(MEMBER, post.id)
    with pytest.raises(NotAllowed):
        await p.take_post(RESIDENT, post.id)
    board = await p.board(MEMBER, sanyi)
    assert [(x.name, x.text, x.post_id) for x in board] == [("党员张三", "环境卫生监督岗", post.id)]
    with pytest.raises(NotAllowed):
        await p.board(RESIDENT, sanyi)
    with pytest.raises(NotAllowed):  # only the pledge's own member reports on it
        await p.report(SECRETARY, taken.id, "替他报", [])
    photo = {"kind": "photo", "file_id": "F1", "chat_id": MEMBER, "message_id": 77}
    report = await p.report(MEMBER, taken.id, "打扫了村口", [photo])
    card = [r for r in await outbox_rows(core, SECRETARY) if r["purpose"] == "pledge/report"]
    assert len(card) == 1 and "打扫了村口" in card[0]["payload"]["text"]
    [copied] = [r for r in await outbox_rows(core, SECRETARY) if r["purpose"] == "pledge/media"]
    assert copied["payload"]["message_id"] == 77
    with pytest.raises(NotAllowed):
        await p.confirm(MEMBER, report)
    with pytest.raises(NotAllowed):
        await p.confirm(TOWN_ORG, report)
    with pytest.raises(NotFound):
        await p.confirm(SECRETARY, 999)
    done = await p.confirm(SECRETARY, report)
    assert done.status == "confirmed"
    with pytest.raises(Refused, match=r"pledge.refused.confirmed_already"):
        await p.confirm(SECRETARY, report)
    told = [r for r in await outbox_rows(core, MEMBER) if r["purpose"] == "pledge/confirmed"]
    assert len(told) == 1 and "环境卫生监督岗" in told[0]["payload"]["text"]


async def test_the_monthly_statement_goes_out_once_on_the_first(tree: Core, clock: SettableClock) -> None:
    core = tree
    await month_of_records(core, clock)
    clock.set(local(2027, 1, 1, 8, 30))  # before 09:00
    assert await core.points.send_statements(SYSTEM_ACTOR) == 0
    clock.set(local(2027, 1, 1, 9, 0))
    sent = await core.points.send_statements(SYSTEM_ACTOR)
    assert sent == 3  # the member, and the secretaries of sanyi and erlang (they earn points too)
    [statement] = [r for r in await outbox_rows(core, MEMBER) if r["purpose"] == "points/statement"]
    text = statement["payload"]["text"]
    assert "2026年12月积分清单（三义村党支部）" in text and "共得 14 分" in text
    assert "参加主题党日 1次，3分" in text and "书记加减分 1次，共3分" in text
    assert await core.points.send_statements(SYSTEM_ACTOR) == 0
    # Even if the run's mark were lost (a crash after the rows), nobody gets a second one.
    async with core.db.transaction() as tx:
        await tx.execute("DELETE FROM point_statement_runs")
    assert await core.points.send_statements(SYSTEM_ACTOR) == 0
    clock.set(local(2027, 1, 4, 9, 0))  # past the catch-up days: nothing for December any more
    async with core.db.transaction() as tx:
        await tx.execute("DELETE FROM point_statement_runs")
    assert await core.points.send_statements(SYSTEM_ACTOR) == 0
    with pytest.raises(NotAllowed):
        await core.points.send_statements(SECRETARY)


async def test_star_rating_is_proposed_voted_and_confirmed(tree: Core, clock: SettableClock) -> None:
    core = tree
    await month_of_records(core, clock)
    sanyi = await org_id(core, "sanyi")
    with pytest.raises(NotAllowed):
        await core.points.propose_stars(MEMBER, sanyi, 2026)
    preview = await core.points.star_preview(SECRETARY, sanyi, 2026)
    assert [(name, pts, stars) for _, name, pts, stars in preview] == [("党员张三", 14, 1), ("王建国", 4, 1)]
    await core.points.set_rule(TOWN_ORG, sanyi, "stars2", 10)
    proposal = await core.points.propose_stars(SECRETARY, sanyi, 2026)
    assert proposal.status == "voting" and proposal.round_id is not None
    with pytest.raises(Refused, match=r"points.refused.stars_exist"):
        await core.points.propose_stars(SECRETARY, sanyi, 2026)
    # Two proposed at the same moment: the database keeps one (the loser's round is withdrawn).
    with pytest.raises(IntegrityError):
        async with core.db.transaction() as tx:
            await tx.insert("INSERT INTO star_proposals (org_id, year, proposed_by, proposed_at) VALUES (?, ?, ?, ?)",
                            (sanyi, 2026, SECRETARY, "2026-12-31T00:00:00.000000Z"))
    rnd = await core.deliberation.get(SYSTEM_ACTOR, proposal.round_id)
    assert rnd.secret and rnd.audience == Audience.MEMBERS and "党员张三　14分　★★" in rnd.background
    clock.set(rnd.opinions_until + timedelta(minutes=1))
    await core.deliberation.tick(SYSTEM_ACTOR)
    await core.deliberation.cast(MEMBER, rnd.id, [0])
    assert await core.points.settle_stars(SYSTEM_ACTOR) == 0  # still voting
    clock.set(rnd.deadline + timedelta(minutes=1))
    await core.deliberation.tick(SYSTEM_ACTOR)
    assert await core.points.settle_stars(SYSTEM_ACTOR) == 1
    assert await core.points.settle_stars(SYSTEM_ACTOR) == 0
    [done] = await core.points.proposals(SECRETARY, sanyi)
    assert (done.status, done.yes, done.no) == ("confirmed", 1, 0)
    yours = [r for r in await outbox_rows(core, MEMBER) if r["purpose"] == "points/stars"]
    assert len(yours) == 1 and "★★" in yours[0]["payload"]["text"]
    data = await core.points.ledger_points(SECRETARY, sanyi, local(2026, 1, 1).date(), local(2026, 12, 31).date())
    assert [(p.year, p.status, [(n, s) for _, n, _, s in p.ratings]) for p in data.proposals] == [
        (2026, "confirmed", [("党员张三", 2), ("王建国", 1)])]
    assert json.loads(await core.db.fetchval("SELECT result FROM delib_rounds WHERE id = ?", (rnd.id,)))["ballots"] == 1
