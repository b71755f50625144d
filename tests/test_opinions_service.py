"""The opinion map (bot/services/opinions.py) against a real SQLite file, with the shared tree:
SECRETARY opens a round for sanyi (members and residents); a village of residents votes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from PIL import Image
from service_fixtures import (  # noqa: F401  (fixtures)
    MEMBER,
    RESIDENT,
    SECRETARY,
    START,
    TOWN_ORG,
    clock_fixture,
    core_fixture,
    org_id,
    outbox_rows,
    rows,
    tree_fixture,
)

from bench.opinion_data import plant
from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock
from bot.core import Core
from bot.services.deliberation import Audience, RoundSpec
from bot.services.opinions import MAX_SEEDS, Choice, Purpose
from bot.services.orgs import NotAllowed, NotFound, Refused

VILLAGERS = list(range(5001, 5061))   # 60 residents of sanyi
WALL = -100999


async def village(core: Core) -> int:
    sanyi = await org_id(core, "sanyi")
    async with core.db.transaction() as tx:
        for pid in VILLAGERS:
            await core.people.ensure(tx, pid, f"村民{pid}")
            await core.orgs.grant(tx, person_id=pid, org_id=sanyi, role="resident", actor_id=None, source="test")
        await tx.execute("INSERT INTO wall_chats (org_id, chat_id, bound_by, bound_at) VALUES (?, ?, ?, ?)",
                         (sanyi, WALL, SECRETARY, "2026-11-01T00:00:00+00:00"))
    return sanyi


async def open_round(core: Core, sanyi: int) -> int:
    rnd = await core.deliberation.open(SECRETARY, RoundSpec(
        org_id=sanyi, title="村里的垃圾怎么处理", audience=Audience.BOTH,
        opinions_until=START + timedelta(days=3)))
    return rnd.id


async def seeded(core: Core, round_id: int, n: int = 12) -> list[int]:
    om = core.opinions
    assert await om.enable(SECRETARY, round_id)
    await om.seed(SECRETARY, round_id, [f"看法{i}：垃圾要分类处理第{i}条" for i in range(n)])
    await om.open_map(SECRETARY, round_id)
    return [r["id"] for r in await rows(core, "SELECT id FROM om_statements WHERE round_id = ? ORDER BY id",
                                        (round_id,))]


@pytest.fixture
async def world(tree: Core) -> tuple[Core, int]:
    sanyi = await village(tree)
    return tree, await open_round(tree, sanyi)


async def test_only_the_opener_turns_it_on_seeds_and_opens(world: tuple[Core, int]) -> None:
    core, rid = world
    om = core.opinions
    for actor in (MEMBER, RESIDENT, TOWN_ORG):
        with pytest.raises(NotAllowed):
            await om.enable(actor, rid)
    assert await om.enable(SECRETARY, rid)
    assert not await om.enable(SECRETARY, rid)
    with pytest.raises(NotAllowed):
        await om.seed(RESIDENT, rid, ["我也想种一条"])
    with pytest.raises(Refused) as long:
        await om.seed(SECRETARY, rid, ["长" * 141])
    assert long.value.key == "om.refused.too_long"
    assert await om.seed(SECRETARY, rid, [f"第{i}条" for i in range(MAX_SEEDS)]) == MAX_SEEDS
    with pytest.raises(Refused):
        await om.seed(SECRETARY, rid, ["再多一条"])
    # Not open yet: nobody votes.
    with pytest.raises(Refused) as closed:
        await om.screen(RESIDENT, rid)
    assert closed.value.key == "om.refused.not_open"
    told = await om.open_map(SECRETARY, rid)
    notices = [r for r in await outbox_rows(core) if r["purpose"] == Purpose.OPEN]
    assert told == len(notices) and len(notices) >= len(VILLAGERS)
    with pytest.raises(Refused):
        await om.seed(SECRETARY, rid, ["开放后再加"])


async def test_the_next_statement_unseen_then_fewest_votes_and_a_second_press_changes_nothing(
        world: tuple[Core, int]) -> None:
    core, rid = world
    om = core.opinions
    ids = await seeded(core, rid, 3)
    first = await om.screen(VILLAGERS[0], rid)
    assert first.statement is not None and first.statement.id == ids[0] and first.total == 3
    after = await om.vote(VILLAGERS[0], ids[0], Choice.AGREE)
    assert after.recorded and after.statement is not None and after.statement.id == ids[1]
    again = await om.vote(VILLAGERS[0], ids[0], Choice.DISAGREE)  # a stale button: nothing changes
    assert not again.recorded
    assert (await rows(core, "SELECT vote FROM om_votes WHERE person_id = ?", (VILLAGERS[0],)))[0]["vote"] == 1
    # Another person sees first the statements nobody has voted on yet.
    other = await om.screen(VILLAGERS[1], rid)
    assert other.statement is not None and other.statement.id == ids[1]
    for sid in ids:
        await om.vote(VILLAGERS[1], sid, Choice.PASS)
    done = await om.screen(VILLAGERS[1], rid)
    assert done.statement is None and done.voted == 3
    # Forged: a statement that does not exist; a person outside the audience; a bad choice.
    with pytest.raises(NotFound):
        await om.vote(VILLAGERS[2], 999_999, Choice.AGREE)
    with pytest.raises(NotAllowed):
        await om.vote(4242, ids[0], Choice.AGREE)
    with pytest.raises(ValueError):
        await om.vote(VILLAGERS[2], ids[0], 5)


async def test_a_participant_statement_counts_as_their_agreement_and_has_limits(world: tuple[Core, int]) -> None:
    core, rid = world
    om = core.opinions
    await seeded(core, rid, 2)
    sid = await om.add_statement(VILLAGERS[3], rid, "  垃圾车每周来两次  ")
    row = (await rows(core, "SELECT text, votes FROM om_statements WHERE id = ?", (sid,)))[0]
    assert row == {"text": "垃圾车每周来两次", "votes": 1}
    with pytest.raises(Refused):
        await om.add_statement(VILLAGERS[4], rid, "垃圾车每周来两次")
    with pytest.raises(Refused):
        await om.add_statement(VILLAGERS[4], rid, "字" * 141)
    with pytest.raises(NotAllowed):
        await om.add_statement(SECRETARY, rid, "书记不是本轮的参与者")
    for i in range(9):
        await om.add_statement(VILLAGERS[3], rid, f"我的第{i}条")
    with pytest.raises(Refused) as quota:
        await om.check_can_write(VILLAGERS[3], rid)
    assert quota.value.key == "om.refused.too_many_mine"
    # The opener hides an abusive one: nobody is shown it again; recorded in the round's record.
    assert await om.hide(SECRETARY, sid, "骂人")
    assert not await om.hide(SECRETARY, sid, "骂人")
    with pytest.raises(NotAllowed):
        await om.hide(VILLAGERS[0], sid, "我不喜欢")
    assert [e["action"] for e in await core.deliberation.events(SECRETARY, rid)] == ["hide"]
    told = [r for r in await outbox_rows(core, VILLAGERS[3]) if r["purpose"] == Purpose.HIDDEN]
    assert len(told) == 1 and "骂人" in told[0]["payload"]["text"]
    # Voting on the map is taking part: the opinion reminder to that person is cancelled.
    reminders = await rows(core, "SELECT status FROM outbox WHERE dedup_key LIKE ?", (f"dl:{rid}:ro:{VILLAGERS[5]}:%",))
    assert reminders and all(r["status"] == "pending" for r in reminders)
    screen = await om.screen(VILLAGERS[5], rid)
    assert screen.statement is not None
    await om.vote(VILLAGERS[5], screen.statement.id, Choice.PASS)
    reminders = await rows(core, "SELECT status FROM outbox WHERE dedup_key LIKE ?", (f"dl:{rid}:ro:{VILLAGERS[5]}:%",))
    assert all(r["status"] == "cancelled" for r in reminders)


async def vote_planted(core: Core, rid: int, ids: list[int]) -> None:
    planted = plant(participants=len(VILLAGERS), statements=len(ids), groups=2, missing=0.1, shared=2, seed=4)
    async with core.db.transaction() as tx:
        for p, pid in enumerate(VILLAGERS):
            for s, sid in enumerate(ids):
                if planted.seen[p, s]:
                    await tx.execute("INSERT INTO om_votes (statement_id, person_id, round_id, vote)"
                                     " VALUES (?, ?, ?, ?)", (sid, pid, rid, int(planted.votes[p, s])))
        await tx.execute("UPDATE om_statements SET votes = (SELECT COUNT(*) FROM om_votes v"
                         " WHERE v.statement_id = om_statements.id) WHERE round_id = ?", (rid,))
        await tx.execute("UPDATE om_maps SET votes_seen = votes_seen + 1 WHERE round_id = ?", (rid,))


async def test_the_map_is_redrawn_at_most_once_a_minute_then_fixed_and_published_at_the_close(
        world: tuple[Core, int], clock: SettableClock) -> None:
    core, rid = world
    om = core.opinions
    ids = await seeded(core, rid, 12)
    await vote_planted(core, rid, ids)
    assert await om.tick(SYSTEM_ACTOR) == 1
    assert await om.tick(SYSTEM_ACTOR) == 0          # nothing changed
    await om.vote(VILLAGERS[0], ids[0], Choice.AGREE)  # changed, but within the minute
    assert await om.tick(SYSTEM_ACTOR) == 0
    clock.advance(timedelta(seconds=61))
    assert await om.tick(SYSTEM_ACTOR) == 1
    # A participant with 7 votes or more sees where they stand; the live map is the opener's.
    screen = await om.screen(VILLAGERS[5], rid)
    assert screen.position is not None and screen.position[0] in (1, 2) and screen.position[1] > 0
    # Every statement has many votes now: the next one for a newcomer is the one the analysis found
    # most useful (separating or bridging the groups).
    best = (await rows(core, "SELECT id FROM om_statements WHERE round_id = ? ORDER BY priority DESC, id LIMIT 1",
                       (rid,)))[0]["id"]
    priorities = {r["priority"] for r in await rows(core, "SELECT priority FROM om_statements WHERE round_id = ?",
                                                    (rid,))}
    newcomer = await om.screen(RESIDENT, rid)
    assert len(priorities) > 1 and newcomer.statement is not None and newcomer.statement.id == best
    png, snap = await om.live_map(SECRETARY, rid)
    assert png is not None and Image.open(io.BytesIO(png)).format == "PNG" and snap is not None
    with pytest.raises(NotAllowed):
        await om.live_map(VILLAGERS[0], rid)
    # The close: the deliberation job closes the round, the opinion job fixes and publishes once.
    clock.advance(timedelta(days=4))
    assert await core.deliberation.tick(SYSTEM_ACTOR) == 1
    assert await om.tick(SYSTEM_ACTOR) == 1
    assert await om.tick(SYSTEM_ACTOR) == 0
    published = [r for r in await outbox_rows(core) if r["purpose"] in (Purpose.RESULT, Purpose.WALL)]
    wall = [r for r in published if r["chat_id"] == WALL]
    assert sorted(r["method"] for r in wall) == ["sendMessage", "sendPhoto"]
    text = next(r for r in wall if r["method"] == "sendMessage")["payload"]["text"]
    assert "各组都认同的看法" in text and "第1组" in text and "分歧最大的看法" in text
    result = await om.result(VILLAGERS[0], rid)
    assert result is not None and result["k"] == 2 and result["participants"] == len(VILLAGERS)
    assert set(result["bridging"][:2]) == set(ids[:2])
    with pytest.raises(Refused):
        await om.vote(VILLAGERS[0], ids[1], Choice.AGREE)


def leaves(value: Any) -> Iterator[Any]:
    """Every key and scalar in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)
    else:
        yield value


async def test_nothing_published_or_stored_carries_a_participant(world: tuple[Core, int],
                                                                 clock: SettableClock) -> None:
    core, rid = world
    om = core.opinions
    ids = await seeded(core, rid, 10)
    await vote_planted(core, rid, ids)
    await om.add_statement(VILLAGERS[0], rid, "希望垃圾桶放在村口")
    clock.advance(timedelta(days=4))
    await core.deliberation.tick(SYSTEM_ACTOR)
    await om.tick(SYSTEM_ACTOR)
    snapshot = json.loads((await rows(core, "SELECT snapshot FROM om_maps WHERE round_id = ?", (rid,)))[0]["snapshot"])
    stored = " ".join(str(v) for v in leaves(snapshot) if not isinstance(v, float))  # floats are statistics
    sanyi = await org_id(core, "sanyi")
    _, workbook = await core.ledger(SECRETARY, sanyi, date(2026, 1, 1), date(2026, 12, 31), "zh_CN")
    book = load_workbook(io.BytesIO(workbook))
    sheet = book["看法地图"]
    cells = " ".join(str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None)
    assert "希望垃圾桶放在村口" in cells
    # What people read: the texts and captions (the chat id is only the address).
    published = " ".join(r["payload"].get("text", "") + r["payload"].get("caption", "")
                         for r in await outbox_rows(core) if r["purpose"] in (Purpose.RESULT, Purpose.WALL))
    assert "各组都认同的看法" in published
    for pid in VILLAGERS:
        for where in (stored, cells, published):
            assert f"村民{pid}" not in where and str(pid) not in where
