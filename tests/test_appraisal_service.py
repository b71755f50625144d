"""The secretary's annual report and appraisal (bot/services/appraisal.py) against a real SQLite
file, with the shared tree: the township organiser TOWN_ORG appraises the secretaries of sanyi
(SECRETARY, here also a party member there) and erlang (ERLANG_SECRETARY); sanyi's raters are its
members and residents. START is Friday 16:00 in Shanghai."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    COUNTY_ORG,
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
from bot.services.appraisal import Purpose, Rating, Refused
from bot.services.orgs import NotAllowed

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEIGHBOUR = 3001  # another resident of sanyi
LAOWANG = 3002    # another party member of sanyi
WALL = -100555
RATERS = [MEMBER, RESIDENT, NEIGHBOUR, LAOWANG]


@pytest.fixture
async def world(tree: Core) -> Core:
    sanyi = await org_id(tree, "sanyi")
    async with tree.db.transaction() as tx:
        for pid, name, role in ((NEIGHBOUR, "邻居孙", "resident"), (LAOWANG, "老王", "member"),
                                (SECRETARY, "王建国", "member")):
            await tree.people.ensure(tx, pid, name)
            await tree.orgs.grant(tx, person_id=pid, org_id=sanyi, role=role, actor_id=None, source="test")
    return tree


async def pairs(core: Core) -> list[tuple[int, int]]:
    return [(await org_id(core, "sanyi"), SECRETARY), (await org_id(core, "erlang"), ERLANG_SECRETARY)]


async def target_of(core: Core, appraisal_id: int, secretary: int) -> int:
    return int(await core.db.fetchval("SELECT id FROM appraisal_targets WHERE appraisal_id = ? AND secretary_id = ?",
                                      (appraisal_id, secretary)))


async def test_who_may_open_and_the_secretaries_are_told(world: Core) -> None:
    a = world.appraisal
    assert [(c.name, c.org_name) for c in await a.candidates(TOWN_ORG)] == [
        ("王建国", "三义村党支部"), ("赵强", "二郎村党支部")]
    for actor in (VILLAGE_ORG, SECRETARY, MEMBER, ERLANG_SECRETARY):  # nothing below them, or no organiser
        assert await a.candidates(actor) == []
        with pytest.raises(NotAllowed):
            await a.open(actor, 2026, await pairs(world), 7)
    with pytest.raises(NotAllowed):  # a member is no secretary to appraise, whatever the data says
        await a.open(TOWN_ORG, 2026, [(await org_id(world, "sanyi"), MEMBER)], 7)
    with pytest.raises(Refused) as refused:
        await a.open(TOWN_ORG, 2026, await pairs(world), 0)
    assert refused.value.key == "appraisal.refused.bad_days"

    appraisal = await a.open(TOWN_ORG, 2026, await pairs(world), 7)
    assert appraisal.closes_at == datetime(2026, 12, 4, 20, 0, tzinfo=SHANGHAI)
    told = [r for r in await outbox_rows(world) if r["purpose"] == Purpose.OPENED]
    assert sorted(r["chat_id"] for r in told) == sorted([SECRETARY, ERLANG_SECRETARY])
    assert "2026年度书记述职评议开始了" in told[0]["payload"]["text"]
    reminders = [r for r in await outbox_rows(world) if r["purpose"] == Purpose.REPORT_REMINDER]
    assert len(reminders) == 2 and reminders[0]["not_before"].startswith("2026-12-03T12:00")
    # Once a year per secretary; the county organiser above may open for erlang another year.
    with pytest.raises(Refused) as refused:
        await a.open(COUNTY_ORG, 2026, [(await org_id(world, "sanyi"), SECRETARY)], 7)
    assert refused.value.key == "appraisal.refused.duplicate"
    assert (await a.open(COUNTY_ORG, 2025, [(await org_id(world, "erlang"), ERLANG_SECRETARY)], 3)).id


async def test_the_report_the_ratings_and_their_rules(world: Core, clock: SettableClock) -> None:
    a = world.appraisal
    appraisal = await a.open(TOWN_ORG, 2026, await pairs(world), 7)
    sanyi_t, erlang_t = [await target_of(world, appraisal.id, s) for s in (SECRETARY, ERLANG_SECRETARY)]
    with pytest.raises(NotAllowed):
        await a.post_report(ERLANG_SECRETARY, sanyi_t, "text", "我替他写")
    with pytest.raises(Refused) as refused:
        await a.rate(MEMBER, sanyi_t, Rating.SATISFIED)
    assert refused.value.key == "appraisal.refused.no_report"

    assert await a.post_report(SECRETARY, sanyi_t, "text", "今年修了村西的路。")
    notices = [r for r in await outbox_rows(world) if r["purpose"] == Purpose.REPORT]
    assert sorted(r["chat_id"] for r in notices) == sorted(RATERS)  # not the secretary, though a member
    assert "今年修了村西的路" in notices[0]["payload"]["text"]
    assert not [r for r in await outbox_rows(world, SECRETARY) if r["purpose"] == Purpose.REPORT_REMINDER
                and r["status"] == "pending" and f":{sanyi_t}" in r["dedup_key"]]
    assert not await a.post_report(SECRETARY, sanyi_t, "text", "今年修了村西的路，还装了路灯。")  # replaced
    assert (await a.target(MEMBER, sanyi_t)).report_text == "今年修了村西的路，还装了路灯。"
    with pytest.raises(NotAllowed):
        await a.target(ERLANG_SECRETARY, sanyi_t)

    with pytest.raises(Refused) as refused:
        await a.rate(SECRETARY, sanyi_t, Rating.SATISFIED)
    assert refused.value.key == "appraisal.refused.own"
    for outsider in (ERLANG_SECRETARY, TOWN_ORG, VILLAGE_ORG, 4242):
        with pytest.raises(NotAllowed):
            await a.rate(outsider, sanyi_t, Rating.SATISFIED)
    with pytest.raises(Refused):
        await a.rate(MEMBER, sanyi_t, 7)
    await a.rate(MEMBER, sanyi_t, Rating.BASICALLY)
    with pytest.raises(Refused) as refused:
        await a.rate(MEMBER, sanyi_t, Rating.SATISFIED)
    assert refused.value.key == "appraisal.refused.rated"
    reminder = await rows(world, "SELECT status FROM outbox WHERE purpose = ? AND chat_id = ? AND dedup_key LIKE ?",
                          (Purpose.REMINDER, MEMBER, f"sa:{appraisal.id}:rr:{sanyi_t}:%"))
    assert [r["status"] for r in reminder] == ["cancelled"]
    with pytest.raises(Refused) as refused:
        await a.post_report(SECRETARY, sanyi_t, "text", "改一改")
    assert refused.value.key == "appraisal.refused.report_fixed"
    progress = {p.target.id: (p.rated, p.eligible) for p in await a.progress(TOWN_ORG, appraisal.id)}
    assert progress == {sanyi_t: (1, 4), erlang_t: (0, 0)}
    with pytest.raises(NotAllowed):
        await a.progress(SECRETARY, appraisal.id)

    clock.set(appraisal.closes_at)  # late: refused before the job has even closed it
    with pytest.raises(Refused) as refused:
        await a.rate(RESIDENT, sanyi_t, Rating.SATISFIED)
    assert refused.value.key == "appraisal.refused.closed"


async def test_one_comment_right_after_rating_masked_and_nameless(world: Core, clock: SettableClock) -> None:
    a = world.appraisal
    appraisal = await a.open(TOWN_ORG, 2026, await pairs(world), 7)
    sanyi_t = await target_of(world, appraisal.id, SECRETARY)
    await a.post_report(SECRETARY, sanyi_t, "text", "述职")
    with pytest.raises(NotAllowed):  # no rating, no comment
        await a.comment(RESIDENT, sanyi_t, "路灯还不亮")
    await a.rate(RESIDENT, sanyi_t, Rating.UNSATISFIED)
    await a.comment(RESIDENT, sanyi_t, "路灯还不亮，打我电话13812345678")
    with pytest.raises(NotAllowed):  # one each
        await a.comment(RESIDENT, sanyi_t, "再说一句")
    await a.rate(MEMBER, sanyi_t, Rating.SATISFIED)
    await a.skip_comment(MEMBER)
    with pytest.raises(NotAllowed):
        await a.comment(MEMBER, sanyi_t, "后来又想写")
    # The slot lasts half an hour: a message typed later is not taken as a comment.
    await a.rate(NEIGHBOUR, sanyi_t, Rating.BASICALLY)
    clock.set(START + timedelta(minutes=31))
    with pytest.raises(NotAllowed):
        await a.comment(NEIGHBOUR, sanyi_t, "隔了很久")
    assert await a.comment_slot(NEIGHBOUR) is None
    stored = await rows(world, "SELECT * FROM appraisal_comments")
    assert len(stored) == 1 and "13812345678" not in stored[0]["text"] and "路灯还不亮" in stored[0]["text"]
    assert await rows(world, "SELECT * FROM flows") == []


async def test_close_results_publish_and_no_link_between_a_person_and_a_rating(
        world: Core, clock: SettableClock) -> None:
    a = world.appraisal
    sanyi = await org_id(world, "sanyi")
    async with world.db.transaction() as tx:
        await tx.execute("INSERT INTO wall_chats (org_id, chat_id, title, bound_by, bound_at) VALUES (?, ?, ?, ?, ?)",
                         (sanyi, WALL, "三义村回音壁", SECRETARY, "2026-11-27T08:00:00+00:00"))
    appraisal = await a.open(TOWN_ORG, 2026, await pairs(world), 7)
    sanyi_t = await target_of(world, appraisal.id, SECRETARY)
    await a.post_report(SECRETARY, sanyi_t, "text", "述职")
    markers = {MEMBER: "ZQXA", RESIDENT: "WQYB", NEIGHBOUR: "PLMC"}
    choices = {MEMBER: Rating.SATISFIED, RESIDENT: Rating.UNSATISFIED, NEIGHBOUR: Rating.SATISFIED,
               LAOWANG: Rating.BASICALLY}
    for rater, rating in choices.items():
        await a.rate(rater, sanyi_t, rating)
        if rater in markers:
            await a.comment(rater, sanyi_t, f"意见{markers[rater]}")
    with pytest.raises(Refused):
        await a.results(TOWN_ORG, appraisal.id)

    clock.set(appraisal.closes_at + timedelta(minutes=1))
    assert await a.tick(SYSTEM_ACTOR) == 1
    assert await a.tick(SYSTEM_ACTOR) == 0
    with pytest.raises(NotAllowed):
        await a.tick(TOWN_ORG)
    result = next(r for r in await a.results(TOWN_ORG, appraisal.id) if r.target.id == sanyi_t)
    assert (result.counts, result.rated, result.eligible) == ((2, 1, 1), 4, 4)
    assert (result.satisfaction, result.turnout) == (75, 100)
    assert sorted(result.comments) == sorted(f"意见{m}" for m in markers.values())
    text = a.result_text("zh_CN", result, comments=True)
    assert "满意率：75%" in text and "参评：4人，可以评议的共4人，参评率100%" in text
    to_organiser = [r for r in await outbox_rows(world, TOWN_ORG) if r["purpose"] == Purpose.RESULT]
    assert len(to_organiser) == 3 and any("意见ZQXA" in r["payload"]["text"] for r in to_organiser)
    own = [r for r in await outbox_rows(world, SECRETARY) if r["purpose"] == Purpose.OWN_RESULT]
    assert len(own) == 1 and "满意率：75%" in own[0]["payload"]["text"]
    assert (await a.own_result(SECRETARY, sanyi_t)).counts == (2, 1, 1)
    with pytest.raises(NotAllowed):
        await a.own_result(MEMBER, sanyi_t)
    with pytest.raises(NotAllowed):
        await a.publish(SECRETARY, appraisal.id)

    assert await a.publish(TOWN_ORG, appraisal.id)
    assert not await a.publish(TOWN_ORG, appraisal.id)
    published = [r for r in await outbox_rows(world) if r["purpose"] in (Purpose.PUBLISHED, Purpose.WALL)]
    assert sorted(r["chat_id"] for r in published) == sorted([*RATERS, WALL])
    assert all("满意率：75%" in r["payload"]["text"] and "ZQXA" not in r["payload"]["text"] for r in published)
    await assert_no_link(world, list(choices), list(markers.values()), [2, 1, 1])


async def assert_no_link(core: Core, raters: list[int], markers: list[str], counts: list[int]) -> None:
    """No row of any table holds both a rater and a comment (or a rater and a choice that is not
    every choice): the ratings are counts in ballot_tallies, the comments rows with no person,
    no time, no rowid."""
    labels = ["满意", "基本满意", "不满意"]
    tables = [r[0] for r in await core.db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    for table in tables:
        columns = [r[1] for r in await core.db.fetchall(f"PRAGMA table_info({table})")]
        for row in await core.db.fetchall(f"SELECT * FROM {table}"):
            cells = [str(v) for v in tuple(row)]
            who = [v for v in raters if str(v) in cells or any(f":{v}:" in c or c.endswith(f":{v}") for c in cells)]
            said = [m for m in markers if any(m in c for c in cells)]
            assert not (who and said), f"{table} links {who} to {said}: {dict(zip(columns, cells, strict=True))}"
            chose = {label for label in labels if any(f"{label}：" in c or f"：{label}" in c for c in cells)}
            assert not (who and chose and len(chose) < len(labels)), f"{table} links {who} to {chose}"
    assert [r[1] for r in await core.db.fetchall("PRAGMA table_info(appraisal_comments)")] == [
        "target_id", "sort_key", "text"]
    with pytest.raises(Exception, match="rowid"):
        await core.db.fetchall("SELECT rowid FROM appraisal_comments")
    tallies = await rows(core, "SELECT choice, n FROM ballot_tallies WHERE box LIKE 'appraisal:%' ORDER BY choice")
    assert tallies == [{"choice": i, "n": n} for i, n in enumerate(counts) if n]
    voters = await rows(core, "SELECT * FROM ballot_voters WHERE box LIKE 'appraisal:%'")
    assert sorted(v["person_id"] for v in voters) == sorted(raters) and all(v["proxy_by"] is None for v in voters)
    assert await rows(core, "SELECT * FROM ballots_open") == []
    assert await rows(core, "SELECT * FROM flows") == []  # the comment slots are gone


async def test_longest_report_and_many_long_comments_fit_in_their_messages(world: Core, clock: SettableClock) -> None:
    """The outbox refuses a message over Telegram's limits when it is queued: the longest report's
    notices and a result with many of the longest comments are queued (clipped), not refused."""
    from bot.limits import MAX_TEXT, telegram_length
    from bot.services.appraisal import MAX_COMMENT, MAX_REPORT

    a = world.appraisal
    appraisal = await a.open(TOWN_ORG, 2026, await pairs(world), 7)
    sanyi_t = await target_of(world, appraisal.id, SECRETARY)
    await a.post_report(SECRETARY, sanyi_t, "text", "述" * MAX_REPORT)
    extra = list(range(5000, 5030))
    sanyi = await org_id(world, "sanyi")
    async with world.db.transaction() as tx:
        for pid in extra:
            await world.people.ensure(tx, pid, f"村民{pid}")
            await world.orgs.grant(tx, person_id=pid, org_id=sanyi, role="resident", actor_id=None, source="test")
    for pid in extra:
        await a.rate(pid, sanyi_t, Rating.SATISFIED)
        await a.comment(pid, sanyi_t, "意" * MAX_COMMENT)
    clock.set(appraisal.closes_at)
    assert await a.tick(SYSTEM_ACTOR) == 1
    sent = [r for r in await outbox_rows(world) if r["purpose"] in (Purpose.REPORT, Purpose.RESULT, Purpose.OWN_RESULT)]
    assert sent and all(telegram_length(r["payload"]["text"]) <= MAX_TEXT for r in sent)
    assert any("内容太长" in r["payload"]["text"] for r in sent if r["purpose"] == Purpose.RESULT)
    card = a.report_excerpt("zh_CN", await a.target(SECRETARY, sanyi_t), room=3000)
    assert telegram_length(card) <= 3100
