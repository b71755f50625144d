"""Deliberation rounds (bot/services/deliberation.py) against a real SQLite file, with the shared
tree: SECRETARY opens rounds for sanyi, whose party member is MEMBER and resident RESIDENT.
START is 16:00 in Shanghai."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    ERLANG_SECRETARY,
    MEMBER,
    RESIDENT,
    SECRETARY,
    START,
    TOWN_ORG,
    VILLAGE_ORG,
    clock_fixture,
    core_fixture,
    org_id,
    outbox_rows,
    rows,
    tree_fixture,
)

from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock
from bot.core import Core
from bot.services.deliberation import Audience, Purpose, Refused, RoundSpec
from bot.services.orgs import NotAllowed

NEIGHBOUR = 3001  # another resident of sanyi
LAOWANG = 3002    # an elderly party member of sanyi without a phone


async def with_more_people(core: Core) -> None:
    sanyi = await org_id(core, "sanyi")
    async with core.db.transaction() as tx:
        for pid, name, role in ((NEIGHBOUR, "邻居孙", "resident"), (LAOWANG, "老王", "member")):
            await core.people.ensure(tx, pid, name)
            await core.orgs.grant(tx, person_id=pid, org_id=sanyi, role=role, actor_id=None, source="test")


def spec(sanyi: int, **extra: Any) -> RoundSpec:
    values: dict[str, Any] = dict(org_id=sanyi, title="要不要修村西的路", audience=Audience.BOTH,
                                  opinions_until=START + timedelta(days=3), background="路坏了很多年")
    values.update(extra)
    return RoundSpec(**values)


def voting(sanyi: int, **extra: Any) -> RoundSpec:
    return spec(sanyi, votes_until=START + timedelta(days=5), options=("修水泥路", "修柏油路", "先不修"), **extra)


@pytest.fixture
async def world(tree: Core) -> Core:
    await with_more_people(tree)
    return tree


async def test_who_may_open(world: Core) -> None:
    sanyi = await org_id(world, "sanyi")
    d = world.deliberation
    assert (await d.open(SECRETARY, spec(sanyi))).id
    assert (await d.open(TOWN_ORG, spec(sanyi, include_below=True))).include_below
    assert (await d.open(VILLAGE_ORG, spec(sanyi))).id
    for actor, below in ((SECRETARY, True), (MEMBER, False), (RESIDENT, False), (ERLANG_SECRETARY, False)):
        with pytest.raises(NotAllowed):
            await d.open(actor, spec(sanyi, include_below=below))
    with pytest.raises(Refused) as refused:
        await d.open(SECRETARY, spec(sanyi, opinions_until=START + timedelta(minutes=10)))
    assert refused.value.key == "delib.refused.bad_deadline"


async def test_the_audience_is_told_and_reminded_unless_they_took_part(world: Core) -> None:
    sanyi = await org_id(world, "sanyi")
    d = world.deliberation
    rnd = await d.open(SECRETARY, spec(sanyi, audience=Audience.RESIDENTS))
    notices = [r for r in await outbox_rows(world) if r["purpose"] == Purpose.NOTICE]
    assert sorted(r["chat_id"] for r in notices) == [RESIDENT, NEIGHBOUR]
    assert "要不要修村西的路" in notices[0]["payload"]["text"]
    reminders = {r["chat_id"]: r for r in await outbox_rows(world) if r["purpose"] == Purpose.REMINDER}
    assert set(reminders) == {RESIDENT, NEIGHBOUR}
    # A day before the phase closes (16:00 local, outside quiet hours).
    assert reminders[RESIDENT]["not_before"].startswith("2026-11-29T08:00")
    await d.give_opinion(RESIDENT, rnd.id, "先修到小学门口", anonymous=False)
    status = {r["chat_id"]: r["status"] for r in await outbox_rows(world) if r["purpose"] == Purpose.REMINDER}
    assert status == {RESIDENT: "cancelled", NEIGHBOUR: "pending"}
    # A party member is not in a residents' round.
    with pytest.raises(NotAllowed):
        await d.give_opinion(MEMBER, rnd.id, "我也说两句", anonymous=False)


async def test_a_notice_at_night_waits_for_the_morning(world: Core, clock: SettableClock) -> None:
    sanyi = await org_id(world, "sanyi")
    clock.set(START + timedelta(hours=7))  # 23:00 in Shanghai
    await world.deliberation.open(SECRETARY, spec(sanyi, opinions_until=START + timedelta(days=3)))
    notices = [r for r in await outbox_rows(world) if r["purpose"] == Purpose.NOTICE]
    assert notices and all(r["not_before"].startswith("2026-11-27T23:00") for r in notices)  # 07:00 local


async def test_opinions_are_masked_anonymous_and_supported_once(world: Core) -> None:
    sanyi = await org_id(world, "sanyi")
    d = world.deliberation
    rnd = await d.open(SECRETARY, spec(sanyi))
    signed = await d.give_opinion(MEMBER, rnd.id, "建议修水泥路", anonymous=False)
    anonymous = await d.give_opinion(RESIDENT, rnd.id, "有事打我电话13812345678", anonymous=True)
    page, total = await d.opinions(NEIGHBOUR, rnd.id, 0)
    assert total == 2
    assert [o.author for o in page] == ["党员张三", None]
    assert "13812345678" not in page[1].text and "电话" in page[1].text
    assert await d.support(NEIGHBOUR, anonymous) is True
    assert await d.support(NEIGHBOUR, anonymous) is False
    assert await d.support(MEMBER, anonymous) is True
    with pytest.raises(Refused):
        await d.support(MEMBER, signed)  # their own
    page, _ = await d.opinions(MEMBER, rnd.id, 0)
    assert [o.supports for o in page] == [0, 2]
    # The opener hides an abusive opinion with a reason: recorded, the author told, the text gone.
    assert await d.hide(SECRETARY, anonymous, "留了电话") is True
    with pytest.raises(NotAllowed):
        await d.hide(MEMBER, signed, "不喜欢")
    page, _ = await d.opinions(MEMBER, rnd.id, 0)
    assert page[1].text == "" and page[1].hidden_reason == "留了电话"
    events = await d.events(SECRETARY, rnd.id)
    assert [e["action"] for e in events] == ["hide"]
    told = [r for r in await outbox_rows(world, RESIDENT) if r["purpose"] == Purpose.HIDDEN]
    assert len(told) == 1 and "13812345678" not in told[0]["payload"]["text"]


async def test_a_full_vote_closes_exactly_once_with_an_exact_result(world: Core, clock: SettableClock) -> None:
    sanyi = await org_id(world, "sanyi")
    d = world.deliberation
    rnd = await d.open(SECRETARY, voting(sanyi))
    op = await d.give_opinion(RESIDENT, rnd.id, "水泥路结实", anonymous=True)
    await d.support(MEMBER, op)
    with pytest.raises(Refused) as early:
        await d.cast(MEMBER, rnd.id, [0])
    assert early.value.key == "delib.refused.voting_not_started"
    clock.set(START + timedelta(days=3, minutes=1))
    assert await d.tick(SYSTEM_ACTOR) == 1  # voting starts
    assert [r["chat_id"] for r in await outbox_rows(world) if r["purpose"] == Purpose.VOTE_START]
    assert await d.result(MEMBER, rnd.id) is None  # hidden until the close
    assert await d.cast(MEMBER, rnd.id, [0]) is True
    assert await d.cast(MEMBER, rnd.id, [1]) is False  # changed
    assert await d.cast(RESIDENT, rnd.id, [0]) is True
    for forged in ([7], [0, 1], []):
        with pytest.raises(Refused):
            await d.cast(NEIGHBOUR, rnd.id, forged)
    with pytest.raises(NotAllowed):
        await d.cast(ERLANG_SECRETARY, rnd.id, [0])
    clock.set(START + timedelta(days=5))
    with pytest.raises(Refused) as late:
        await d.cast(NEIGHBOUR, rnd.id, [2])  # at the deadline, before the job ran
    assert late.value.key == "delib.refused.voting_over"
    assert await d.tick(SYSTEM_ACTOR) == 1
    assert await d.tick(SYSTEM_ACTOR) == 0
    result = await d.result(MEMBER, rnd.id)
    assert result is not None and result.final
    assert result.options == [("修水泥路", 1), ("修柏油路", 1), ("先不修", 0)]
    assert (result.ballots, result.eligible, result.proxies) == (2, 4, 0)
    assert result.top == [("水泥路结实", 1)]
    results = [r for r in await outbox_rows(world) if r["purpose"] == Purpose.RESULT]
    assert sorted(r["chat_id"] for r in results) == sorted({SECRETARY, MEMBER, RESIDENT})
    assert "参与率50%" in results[0]["payload"]["text"]
    # Immutable: the audience changing later does not change the result.
    await with_more_people(world)
    async with world.db.transaction() as tx:
        await world.orgs.grant(tx, person_id=4001, org_id=sanyi, role="member", actor_id=None, source="test")
    assert (await d.result(MEMBER, rnd.id)) == result


async def test_a_secret_ballot_leaves_no_link_between_a_person_and_a_choice(world: Core, clock: SettableClock) -> None:
    sanyi = await org_id(world, "sanyi")
    d = world.deliberation
    labels = ("甲方案ZQX", "乙方案WQY")
    rnd = await d.open(SECRETARY, spec(sanyi, votes_until=START + timedelta(days=5), options=labels, secret=True,
                                       live_results=True))
    assert not rnd.live_results  # never live for a secret ballot
    await world.people.touch(LAOWANG, "老王", None, "zh-hans")  # he has a chat: he is told
    clock.set(START + timedelta(days=3, hours=1))
    await d.tick(SYSTEM_ACTOR)
    choices = {MEMBER: 0, RESIDENT: 1, NEIGHBOUR: 1}
    for pid, choice in choices.items():
        await d.cast(pid, rnd.id, [choice])
    await d.cast(SECRETARY, rnd.id, [0], for_person=LAOWANG, reason="年纪大，不会用手机")
    with pytest.raises(Refused) as again:
        await d.cast(MEMBER, rnd.id, [1])
    assert again.value.key == "delib.refused.secret_voted"
    assert (await d.ballot(MEMBER, rnd.id)).mine is None  # nobody can read a secret ballot back
    clock.set(START + timedelta(days=5, minutes=1))
    await d.tick(SYSTEM_ACTOR)
    result = await d.result(SYSTEM_ACTOR, rnd.id)
    assert result is not None and result.options == [(labels[0], 2), (labels[1], 2)]
    assert (result.ballots, result.proxies) == (4, 1)
    await assert_no_link(world, [MEMBER, RESIDENT, NEIGHBOUR, LAOWANG], labels, [2, 2])


async def assert_no_link(core: Core, voters: list[int], labels: tuple[str, ...], counts: list[int]) -> None:
    """No row of any table holds both a voter and some of the choices; the choices are kept only
    as counts, in tables without rowid or time."""
    tables = [r[0] for r in await core.db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    for table in tables:
        columns = [r[1] for r in await core.db.fetchall(f"PRAGMA table_info({table})")]
        for row in await core.db.fetchall(f"SELECT * FROM {table}"):
            cells = [str(v) for v in tuple(row)]
            who = [v for v in voters if str(v) in cells or any(f":{v}:" in c for c in cells)]
            what = [label for label in labels if any(label in c for c in cells)]
            # A row naming every choice (the result sent to each participant) tells nothing of theirs.
            link = who and what and len(what) < len(labels)
            assert not link, f"{table} links {who} to {what}: {dict(zip(columns, cells, strict=True))}"
    assert await rows(core, "SELECT * FROM ballots_open") == []
    for table, expected in (("ballot_voters", ["box", "person_id", "proxy_by"]),
                            ("ballot_tallies", ["box", "choice", "n"])):
        assert [r[1] for r in await core.db.fetchall(f"PRAGMA table_info({table})")] == expected
        with pytest.raises(Exception, match="rowid"):
            await core.db.fetchall(f"SELECT rowid FROM {table}")
    # The choices' numbers are nowhere next to a voter either: the tallies hold the only copy.
    tallies = await rows(core, "SELECT choice, n FROM ballot_tallies ORDER BY choice")
    assert tallies == [{"choice": i, "n": n} for i, n in enumerate(counts)]
    events = await rows(core, "SELECT * FROM delib_events WHERE action = 'proxy'")
    assert len(events) == 1 and events[0]["note"] == "年纪大，不会用手机"


async def test_proxy_ballots_are_recorded_counted_and_told(world: Core, clock: SettableClock) -> None:
    sanyi = await org_id(world, "sanyi")
    d = world.deliberation
    rnd = await d.open(SECRETARY, voting(sanyi))
    await world.people.touch(LAOWANG, "老王", None, "zh-hans")
    clock.set(START + timedelta(days=3, hours=1))
    await d.tick(SYSTEM_ACTOR)
    names = [t.name for t in await d.proxy_targets(SECRETARY, rnd.id)]
    assert names == sorted(["党员张三", "村民赵四", "邻居孙", "老王"])
    for actor in (MEMBER, ERLANG_SECRETARY, TOWN_ORG):
        with pytest.raises(NotAllowed):
            await d.cast(actor, rnd.id, [0], for_person=LAOWANG, reason="没有手机")
    with pytest.raises(Refused):
        await d.cast(SECRETARY, rnd.id, [0], for_person=LAOWANG, reason=" ")
    with pytest.raises(NotAllowed):
        await d.cast(SECRETARY, rnd.id, [0], for_person=ERLANG_SECRETARY, reason="没有手机")  # not eligible
    assert await d.cast(SECRETARY, rnd.id, [2], for_person=LAOWANG, reason="没有手机") is True
    told = [r for r in await outbox_rows(world, LAOWANG) if r["purpose"] == Purpose.PROXY]
    assert len(told) == 1 and "先不修" in told[0]["payload"]["text"]
    assert LAOWANG not in [t.person_id for t in await d.proxy_targets(SECRETARY, rnd.id)]
    clock.set(START + timedelta(days=6))
    await d.tick(SYSTEM_ACTOR)
    result = await d.result(SECRETARY, rnd.id)
    assert result is not None and (result.ballots, result.proxies) == (1, 1)
    text = d.result_text("zh_CN", await d.get(SECRETARY, rnd.id), result)
    assert "其中代投 1 票" in text


async def test_extend_once_close_early_and_cancel(world: Core, clock: SettableClock) -> None:
    sanyi = await org_id(world, "sanyi")
    d = world.deliberation
    rnd = await d.open(SECRETARY, voting(sanyi))
    with pytest.raises(NotAllowed):
        await d.extend(MEMBER, rnd.id, 3, "太忙")
    extended = await d.extend(SECRETARY, rnd.id, 3, "农忙，大家没空")
    assert extended.opinions_until == rnd.opinions_until + timedelta(days=3)
    assert extended.votes_until == rnd.votes_until + timedelta(days=3)  # type: ignore[operator]
    with pytest.raises(Refused) as twice:
        await d.extend(SECRETARY, rnd.id, 1, "再延长")
    assert twice.value.key == "delib.refused.extended_once"
    changes = [r for r in await outbox_rows(world) if r["purpose"] == Purpose.CHANGE]
    assert len(changes) == 4 and "农忙" in changes[0]["payload"]["text"]
    closed = await d.close_early(SECRETARY, rnd.id, "意见已经很一致")
    assert closed.status == "closed" and closed.ended_early and closed.result is not None
    assert await d.tick(SYSTEM_ACTOR) == 0
    other = await d.open(SECRETARY, spec(sanyi, title="换届选举安排"))
    with pytest.raises(NotAllowed):
        await d.cancel(RESIDENT, other.id, "不要了")
    cancelled = await d.cancel(SECRETARY, other.id, "上级另有安排")
    assert cancelled.status == "cancelled" and cancelled.result is None
    pending = [r for r in await outbox_rows(world) if r["subject_id"] == other.id and r["status"] == "pending"]
    assert {r["purpose"] for r in pending} == {Purpose.CHANGE}  # only the cancellation notices
    with pytest.raises(Refused):
        await d.give_opinion(MEMBER, other.id, "晚了", anonymous=False)


async def test_options_from_opinions_before_voting_and_no_vote_without_two(world: Core, clock: SettableClock) -> None:
    sanyi = await org_id(world, "sanyi")
    d = world.deliberation
    rnd = await d.open(SECRETARY, spec(sanyi, votes_until=START + timedelta(days=5)))
    op = await d.give_opinion(MEMBER, rnd.id, "修到小学，电话13812345678", anonymous=False)
    assert await d.add_option(SECRETARY, rnd.id, opinion_id=op) == 0
    assert "13812345678" not in (await d.options(MEMBER, rnd.id))[0]
    with pytest.raises(NotAllowed):
        await d.add_option(MEMBER, rnd.id, "我也加一个")
    clock.set(START + timedelta(days=3, minutes=1))
    await d.tick(SYSTEM_ACTOR)  # one choice only: no vote; closed on its opinions
    closed = await d.get(MEMBER, rnd.id)
    assert closed.status == "closed"
    result = await d.result(MEMBER, rnd.id)
    assert result is not None and not result.voted and result.opinions == 1


async def test_only_the_system_ticks(world: Core) -> None:
    with pytest.raises(NotAllowed):
        await world.deliberation.tick(SECRETARY)


async def test_a_proxy_ballot_never_replaces_a_persons_own(world: Core, clock: SettableClock) -> None:
    sanyi = await org_id(world, "sanyi")
    d = world.deliberation
    rnd = await d.open(SECRETARY, voting(sanyi))
    clock.set(START + timedelta(days=3, hours=1))
    await d.cast(MEMBER, rnd.id, [0])
    with pytest.raises(Refused) as refused:
        await d.cast(SECRETARY, rnd.id, [2], for_person=MEMBER, reason="没有手机")
    assert refused.value.key == "delib.refused.voted_already"
    assert (await d.ballot(MEMBER, rnd.id)).mine == [0]


async def test_the_longest_texts_fit_in_telegrams_limits(world: Core, clock: SettableClock) -> None:
    """Longest title, background, options, opinions and reasons: every message is queued (the outbox
    refuses one over Telegram's limits) and an opinions page fits in one message."""
    from bot.limits import MAX_TEXT, telegram_length
    from bot.services.deliberation import MAX_BACKGROUND, MAX_OPINION, MAX_OPTION, MAX_OPTIONS, MAX_REASON, MAX_TITLE
    from handlers.deliberation import opinions_page

    sanyi = await org_id(world, "sanyi")
    d = world.deliberation
    options = tuple(f"{i:02d}" + "选" * (MAX_OPTION - 2) for i in range(MAX_OPTIONS))
    rnd = await d.open(SECRETARY, spec(sanyi, title="题" * MAX_TITLE, background="景" * MAX_BACKGROUND,
                                       votes_until=START + timedelta(days=5), options=options))
    for pid in (MEMBER, RESIDENT, NEIGHBOUR, LAOWANG):
        op = await d.give_opinion(pid, rnd.id, "意" * MAX_OPINION, anonymous=pid % 2 == 0)
    await d.support(MEMBER, op)
    await d.give_opinion(MEMBER, rnd.id, "见" * MAX_OPINION, anonymous=False)
    text, rows = await opinions_page(world, d, "zh_CN", MEMBER, rnd.id, 0)
    assert telegram_length(text) <= MAX_TEXT and len(rows) == 5
    await d.extend(SECRETARY, rnd.id, 7, "因" * MAX_REASON)
    await d.hide(SECRETARY, op, "由" * MAX_REASON)
    await d.close_early(SECRETARY, rnd.id, "故" * MAX_REASON)
    sent = await outbox_rows(world)
    assert {r["purpose"] for r in sent} >= {Purpose.NOTICE, Purpose.CHANGE, Purpose.HIDDEN, Purpose.RESULT}
