"""四议两公开 matters (bot/services/matters.py) against a real SQLite file, with the shared tree:
SECRETARY opens matters for sanyi, whose party member is MEMBER and resident RESIDENT; TOWN_ORG is
the organiser above. START is 16:00 in Shanghai."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
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
from bot.services.deliberation import Audience, RoundSpec
from bot.services.matters import Outcome, Purpose, Refused, StageEntry, Status, Vote, VoteKind
from bot.services.meetings import Draft
from bot.services.orgs import NotAllowed

WALL_CHAT = -100555
TODAY = date(2026, 11, 27)
PASS = StageEntry(held_on=TODAY, outcome=Outcome.PASSED)


async def open_matter(core: Core, **extra: Any) -> int:
    sanyi = await org_id(core, "sanyi")
    values: dict[str, Any] = dict(title="修建村道", description="村西到小学的路", estimate="12万元") | extra
    return (await core.matters.open(SECRETARY, sanyi, **values)).id


async def held_meeting(core: Core, clock: SettableClock, kind: str, org: str = "sanyi") -> int:
    """A meeting of `kind` held an hour ago (created beforehand, then the clock moved on)."""
    now = clock.now()
    clock.set(now - timedelta(days=1))
    secretary = SECRETARY if org == "sanyi" else ERLANG_SECRETARY
    created = await core.meetings.create(secretary, Draft(
        kind=kind, org_id=await org_id(core, org), starts_at=now - timedelta(hours=1),
        ends_at=now - timedelta(minutes=10), place="村委会", topic="商量修路"))
    clock.set(now)
    return created.meeting.id


async def closed_round(core: Core, clock: SettableClock, org: str = "sanyi") -> int:
    """A round of the org with a vote, one ballot for 修, closed early by its opener."""
    now = clock.now()
    opener = SECRETARY if org == "sanyi" else ERLANG_SECRETARY
    rnd = await core.deliberation.open(opener, RoundSpec(
        org_id=await org_id(core, org), title="修不修村西的路", audience=Audience.BOTH,
        opinions_until=now + timedelta(hours=2), votes_until=now + timedelta(days=2), options=("修", "不修")))
    clock.set(now + timedelta(hours=3))
    await core.deliberation.tick(SYSTEM_ACTOR)
    if org == "sanyi":
        await core.deliberation.cast(MEMBER, rnd.id, [0])
    await core.deliberation.close_early(opener, rnd.id, "大家意见一致")
    clock.set(now)
    return rnd.id


async def test_a_matter_through_all_four_stages_to_both_publications(tree: Core, clock: SettableClock) -> None:
    core = tree
    sanyi = await org_id(core, "sanyi")
    await core.tickets.bind_wall(SECRETARY, sanyi, WALL_CHAT, "三义村回音壁")
    committee = await held_meeting(core, clock, "committee_meeting")
    general = await held_meeting(core, clock, "general_meeting")
    round_id = await closed_round(core, clock)
    matter_id = await open_matter(core)
    m = core.matters

    await m.record_stage(SECRETARY, matter_id, 1, StageEntry(TODAY, Outcome.PASSED, committee, "支委会一致同意"))
    await m.record_stage(SECRETARY, matter_id, 2, PASS)
    await m.record_stage(SECRETARY, matter_id, 3, StageEntry(TODAY, Outcome.PASSED, general,
                                                             vote=Vote(VoteKind.ROUND, round_id)))
    matter = await m.record_stage(SECRETARY, matter_id, 4, StageEntry(
        TODAY, Outcome.PASSED, vote=Vote(VoteKind.PAPER, yes=41, no=3, abstain=2)))
    assert matter.status == Status.DECIDED and matter.stage == 4
    card = await m.card("zh_CN", matter)
    assert "✅ 党支部提议：11月27日，通过" in card and "商量修路" in card
    assert "议事投票「修不修村西的路」：修1票，不修0票" in card
    assert "纸质投票：赞成41票，反对3票，弃权2票" in card
    assert "等待决议公开" in card

    await m.publish_decision(SECRETARY, matter_id, "修建村西到小学的水泥路，预算12万元，明年春天开工。")
    decision = [r for r in await outbox_rows(core) if r["purpose"] in (Purpose.DECISION, Purpose.WALL)]
    assert {r["chat_id"] for r in decision} == {RESIDENT, WALL_CHAT}
    text = decision[0]["payload"]["text"]
    assert "📢 决议公开 · 三义村党支部" in text and "明年春天开工" in text and "村民（代表）会议决议" in text
    resident_row = next(r for r in decision if r["chat_id"] == RESIDENT)
    assert resident_row["priority"] == 80  # Priority.BULK

    photos = [(SECRETARY, 501), (SECRETARY, 502)]
    matter = await m.publish_result(SECRETARY, matter_id, "路修好了，花了11.5万元。", photos)
    assert matter.status == Status.DONE
    result = [r for r in await outbox_rows(core) if r["subject_id"] == matter_id and ":r" in r["dedup_key"]]
    copies = [r for r in result if r["method"] == "copyMessage"]
    assert {r["chat_id"] for r in copies} == {RESIDENT, WALL_CHAT} and len(copies) == 4
    assert any("花了11.5万元" in r["payload"].get("text", "") for r in result if r["chat_id"] == WALL_CHAT)


async def test_a_stage_only_follows_the_one_before(tree: Core) -> None:
    matter_id = await open_matter(tree)
    before = await rows(tree, "SELECT * FROM matters")
    with pytest.raises(Refused) as refused:
        await tree.matters.record_stage(SECRETARY, matter_id, 2, PASS)
    assert refused.value.key == "matter.refused.out_of_order"
    assert "党支部提议" in tree.t("zh_CN", refused.value.key, **refused.value.values)
    with pytest.raises(Refused):
        await tree.matters.record_stage(SECRETARY, matter_id, 7, PASS)
    await tree.matters.record_stage(SECRETARY, matter_id, 1, PASS)
    with pytest.raises(Refused):  # the same stage twice
        await tree.matters.record_stage(SECRETARY, matter_id, 1, PASS)
    assert await rows(tree, "SELECT stage FROM matter_stages") == [{"stage": 1}]
    assert before[0]["stage"] == 0


async def test_a_rejected_matter_ends_with_its_reason(tree: Core) -> None:
    matter_id = await open_matter(tree)
    m = tree.matters
    await m.record_stage(SECRETARY, matter_id, 1, PASS)
    with pytest.raises(Refused):  # a rejection needs its reason
        await m.record_stage(SECRETARY, matter_id, 2, StageEntry(TODAY, Outcome.REJECTED))
    matter = await m.record_stage(SECRETARY, matter_id, 2, StageEntry(TODAY, Outcome.REJECTED, note="资金不够"))
    assert matter.status == Status.REJECTED and matter.end_reason == "资金不够" and matter.stage == 1
    with pytest.raises(Refused) as refused:
        await m.record_stage(SECRETARY, matter_id, 3, PASS)
    assert refused.value.key == "matter.refused.rejected_already"
    with pytest.raises(Refused):
        await m.publish_decision(SECRETARY, matter_id, "修路")
    assert "资金不够" in await m.card("zh_CN", matter)


async def test_publishing_needs_all_four_stages(tree: Core) -> None:
    matter_id = await open_matter(tree)
    m = tree.matters
    for stage in (1, 2, 3):
        await m.record_stage(SECRETARY, matter_id, stage, PASS)
    with pytest.raises(Refused) as refused:
        await m.publish_decision(SECRETARY, matter_id, "修路")
    assert refused.value.key == "matter.refused.not_decided"
    with pytest.raises(Refused) as refused:
        await m.publish_result(SECRETARY, matter_id, "修好了")
    assert refused.value.key == "matter.refused.decision_first"
    assert await outbox_rows(tree) == []


async def test_votes_and_meetings_are_checked(tree: Core, clock: SettableClock) -> None:
    m = tree.matters
    matter_id = await open_matter(tree)
    general = await held_meeting(tree, clock, "general_meeting")
    sibling = await held_meeting(tree, clock, "committee_meeting", org="erlang")
    with pytest.raises(Refused) as refused:  # a members' meeting does not fit the branch's proposal
        await m.record_stage(SECRETARY, matter_id, 1, StageEntry(TODAY, Outcome.PASSED, general))
    assert refused.value.key == "matter.refused.bad_meeting"
    with pytest.raises(Refused):  # another village's meeting
        await m.record_stage(SECRETARY, matter_id, 1, StageEntry(TODAY, Outcome.PASSED, sibling))
    for counts in ((-1, 2, 0), (0, 0, 0), (None, 1, 1)):
        with pytest.raises(Refused) as refused:
            await m.record_stage(SECRETARY, matter_id, 1, StageEntry(
                TODAY, Outcome.PASSED, vote=Vote(VoteKind.PAPER, None, *counts)))
        assert refused.value.key == "matter.refused.bad_counts"
    with pytest.raises(Refused) as refused:
        await m.record_stage(SECRETARY, matter_id, 1, StageEntry(TODAY + timedelta(days=1), Outcome.PASSED))
    assert refused.value.key == "matter.refused.future_date"
    other_round = await closed_round(tree, clock, org="erlang")
    with pytest.raises(Refused) as refused:
        await m.record_stage(SECRETARY, matter_id, 1, StageEntry(TODAY, Outcome.PASSED,
                                                                 vote=Vote(VoteKind.ROUND, other_round)))
    assert refused.value.key == "matter.refused.bad_round"
    assert await rows(tree, "SELECT * FROM matter_stages") == []

    # Those present at the members' meeting (the secretary's marks) bound a paper vote.
    for stage in (1, 2):
        await m.record_stage(SECRETARY, matter_id, stage, PASS)
    clock.set(clock.now() - timedelta(minutes=30))  # marks are made while the meeting is on
    await tree.meetings.mark(SECRETARY, general, MEMBER)
    clock.set(clock.now() + timedelta(minutes=30))
    with pytest.raises(Refused) as refused:
        await m.record_stage(SECRETARY, matter_id, 3, StageEntry(
            TODAY, Outcome.PASSED, general, vote=Vote(VoteKind.PAPER, None, 1, 1, 0)))
    assert refused.value.values == {"total": 2, "present": 1}
    matter = await m.record_stage(SECRETARY, matter_id, 3, StageEntry(
        TODAY, Outcome.PASSED, general, vote=Vote(VoteKind.PAPER, None, 1, 0, 0)))
    assert matter.stages[-1].present == 1


async def test_rights_and_what_residents_see(tree: Core) -> None:
    m = tree.matters
    sanyi = await org_id(tree, "sanyi")
    matter_id = await open_matter(tree)
    for actor in (MEMBER, RESIDENT, TOWN_ORG, ERLANG_SECRETARY):
        with pytest.raises(NotAllowed):
            await m.record_stage(actor, matter_id, 1, PASS)
        with pytest.raises(NotAllowed):
            await m.open(actor, sanyi, "修桥")
    assert [x.id for x in await m.board(TOWN_ORG, sanyi)] == [matter_id]
    assert await m.board(RESIDENT, sanyi) == []  # not published yet
    with pytest.raises(NotAllowed):
        await m.get(RESIDENT, matter_id)
    with pytest.raises(NotAllowed):
        await m.board(ERLANG_SECRETARY, sanyi)
    for stage in (1, 2, 3, 4):
        await m.record_stage(SECRETARY, matter_id, stage, PASS)
    await m.publish_decision(SECRETARY, matter_id, "修路")
    assert [x.id for x in await m.board(RESIDENT, sanyi)] == [matter_id]
    assert (await m.get(MEMBER, matter_id)).status == Status.PUBLISHED


async def test_stalled_reminders_go_once_each_to_the_secretary_then_the_organiser(
        tree: Core, clock: SettableClock) -> None:
    m = tree.matters
    sanyi = await org_id(tree, "sanyi")
    with pytest.raises(Refused):
        await m.set_stall_days(SECRETARY, sanyi, 0)
    with pytest.raises(NotAllowed):
        await m.set_stall_days(MEMBER, sanyi, 10)
    assert await m.set_stall_days(SECRETARY, sanyi, 10) == 10
    matter_id = await open_matter(tree)
    with pytest.raises(NotAllowed):
        await m.tick(SECRETARY)  # type: ignore[arg-type]
    clock.set(START + timedelta(days=9))
    assert await m.tick(SYSTEM_ACTOR) == 0
    clock.set(START + timedelta(days=10, hours=1))
    assert await m.tick(SYSTEM_ACTOR) == 1
    assert await m.tick(SYSTEM_ACTOR) == 0
    stalled = [r for r in await outbox_rows(tree) if r["purpose"] == Purpose.STALLED]
    assert [r["chat_id"] for r in stalled] == [SECRETARY]
    assert "已经10天没有进展" in stalled[0]["payload"]["text"] and "党支部提议" in stalled[0]["payload"]["text"]
    clock.set(START + timedelta(days=20, hours=1))
    assert await m.tick(SYSTEM_ACTOR) == 1
    assert await m.tick(SYSTEM_ACTOR) == 0
    stalled = [r for r in await outbox_rows(tree) if r["purpose"] == Purpose.STALLED]
    assert [r["chat_id"] for r in stalled] == [SECRETARY, TOWN_ORG]
    assert "督办提醒" in stalled[1]["payload"]["text"]
    # The next stage starts a new wait: its own reminders, in their time.
    await m.record_stage(SECRETARY, matter_id, 1, StageEntry(date(2026, 12, 17), Outcome.PASSED))
    assert await m.tick(SYSTEM_ACTOR) == 0
    clock.set(START + timedelta(days=31))
    assert await m.tick(SYSTEM_ACTOR) == 1


async def test_the_export_holds_every_matter_and_stage(tree: Core, clock: SettableClock) -> None:
    m = tree.matters
    sanyi = await org_id(tree, "sanyi")
    first = await open_matter(tree)
    second = await open_matter(tree, title="修桥", estimate="")
    await m.record_stage(SECRETARY, first, 1, StageEntry(TODAY, Outcome.PASSED, note="一致同意",
                                                        vote=Vote(VoteKind.PAPER, None, 5, 0, 0)))
    await m.record_stage(SECRETARY, second, 1, StageEntry(TODAY, Outcome.REJECTED, note="不急"))
    with pytest.raises(NotAllowed):
        await m.export(RESIDENT, sanyi, "zh_CN")
    name, content = await m.export(TOWN_ORG, sanyi, "zh_CN")
    assert name.endswith(".xlsx")
    book = load_workbook(io.BytesIO(content))
    matters = [[c.value for c in row] for row in book["四议两公开"].iter_rows(min_row=2)]
    assert [r[1] for r in matters] == ["修建村道", "修桥"]
    assert matters[0][2] == "12万元" and "村“两委”商议" in matters[0][4] and matters[1][5] == "不急"
    stages = [[c.value for c in row] for row in book["各步记录"].iter_rows(min_row=2)]
    assert stages[0][:2] == ["修建村道", "党支部提议"] and "赞成5票" in stages[0][5] and stages[0][6] == "一致同意"
    assert stages[1][4] == "未通过"


async def test_the_longest_matter_fits_every_message(tree: Core, clock: SettableClock) -> None:
    """Longest title, description, estimate, notes, meeting topic, a round of twenty long choices and
    the longest decision and result: every message is queued (the outbox refuses one over
    Telegram's limits) and the card fits in one message."""
    from bot.limits import MAX_TEXT, telegram_length
    from bot.services.deliberation import MAX_OPTION, MAX_OPTIONS
    from bot.services.deliberation import MAX_TITLE as ROUND_TITLE
    from bot.services.matters import MAX_DECISION, MAX_DESCRIPTION, MAX_ESTIMATE, MAX_NOTE, MAX_RESULT, MAX_TITLE

    core, m = tree, tree.matters
    sanyi = await org_id(core, "sanyi")
    await core.tickets.bind_wall(SECRETARY, sanyi, WALL_CHAT, "三义村回音壁")
    now = clock.now()
    rnd = await core.deliberation.open(SECRETARY, RoundSpec(
        org_id=sanyi, title="议" * ROUND_TITLE, audience=Audience.BOTH, opinions_until=now + timedelta(hours=2),
        votes_until=now + timedelta(days=2), options=tuple(f"{i:02}" + "选" * (MAX_OPTION - 2)
                                                          for i in range(MAX_OPTIONS))))
    clock.set(now + timedelta(hours=3))
    await core.deliberation.tick(SYSTEM_ACTOR)
    await core.deliberation.close_early(SECRETARY, rnd.id, "结束")
    clock.set(now)
    matter_id = (await m.open(SECRETARY, sanyi, "路" * MAX_TITLE, "情" * MAX_DESCRIPTION, "钱" * MAX_ESTIMATE)).id
    for stage in (1, 2, 3, 4):
        vote = Vote(VoteKind.ROUND, rnd.id) if stage % 2 else Vote(VoteKind.PAPER, None, 99999, 99999, 99999)
        await m.record_stage(SECRETARY, matter_id, stage, StageEntry(TODAY, Outcome.PASSED, note="注" * MAX_NOTE,
                                                                     vote=vote))
    matter = await m.publish_decision(SECRETARY, matter_id, "决" * MAX_DECISION)
    await m.publish_result(SECRETARY, matter_id, "果" * MAX_RESULT, [(SECRETARY, n) for n in range(5)])
    for lang in ("zh_CN", "en"):
        assert telegram_length(await m.card(lang, matter)) <= MAX_TEXT
    ours = [r for r in await outbox_rows(core) if (r["purpose"] or "").startswith("matters/")]
    assert len(ours) == 2 * (2 + 5)  # the resident and the wall: decision, result, five photos


async def test_a_decision_published_at_night_reaches_residents_in_the_morning(tree: Core, clock: SettableClock) -> None:
    from datetime import UTC, datetime

    m = tree.matters
    matter_id = await open_matter(tree)
    for stage in (1, 2, 3, 4):
        await m.record_stage(SECRETARY, matter_id, stage, PASS)
    clock.set(datetime(2026, 11, 27, 15, 30, tzinfo=UTC))  # 23:30 in Shanghai
    await m.publish_decision(SECRETARY, matter_id, "修路")
    row = next(r for r in await outbox_rows(tree, RESIDENT) if r["purpose"] == Purpose.DECISION)
    assert row["not_before"].startswith("2026-11-27T23:00:00")  # 07:00 the next morning, local


async def test_publications_are_masked_like_every_public_text(tree: Core) -> None:
    """The decision and the result go to the wall chat and every resident: a phone number or an ID
    card typed into them is masked before it is stored or sent."""
    matter_id = await open_matter(tree)
    m = tree.matters
    for stage in (1, 2, 3, 4):
        await m.record_stage(SECRETARY, matter_id, stage, PASS)
    decided = await m.publish_decision(SECRETARY, matter_id, "修路，有事找王会计 13812345678")
    done = await m.publish_result(SECRETARY, matter_id, "路修好了，施工方电话 139 8765 4321")
    assert "13812345678" not in (decided.decision_text or "") and "8765" not in (done.result_text or "")
    for row in await outbox_rows(tree):
        text = row["payload"].get("text", "")
        assert "13812345678" not in text and "8765" not in text, text
