"""Personal data (PIPL) on a real SQLite file: a person's export, forgetting them, and the retention
of closed tickets with the settable clock."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    ADMIN,
    MEMBER,
    RESIDENT,
    SECRETARY,
    clock_fixture,
    core_fixture,
    org_id,
    tree_fixture,
)

from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock
from bot.core import Core
from bot.services.deliberation import Audience, RoundSpec
from bot.services.meetings import Draft
from bot.services.orgs import NotAllowed
from bot.services.privacy import text_columns
from bot.services.retention import NOBODY
from bot.services.tickets import Item

MEMBER_NAME = "党员张三"  # tests/orgtree.py
PHONE = "13812345678"


async def person_world(core: Core, clock: SettableClock) -> dict[str, int]:
    """MEMBER: an anonymous problem with a photo (answered, rated, closed), an open one, a leave with
    its reason, an opinion (supported by RESIDENT) and a secret ballot; RESIDENT votes too; a kept
    message of MEMBER's. Returns the ids."""
    sanyi = await org_id(core, "sanyi")
    t = core.tickets
    anon = await t.submit(MEMBER, [Item("text", f"路灯坏了，电话{PHONE}"), Item("photo", None, MEMBER, 77)],
                          "infrastructure", True, True)
    await t.answer(SECRETARY, anon.id, [Item("text", "已派电工")])
    await t.rate(MEMBER, anon.id, "good")
    open_ticket = await t.submit(MEMBER, [Item("text", "水管漏水")], "infrastructure", True, False)
    start = clock.now() + timedelta(days=2)
    meeting = (await core.meetings.create(SECRETARY, Draft(
        kind="general_meeting", org_id=sanyi, starts_at=start, ends_at=start + timedelta(hours=2), place="村委会",
        topic="学习党章"))).meeting.id
    await core.meetings.answer(MEMBER, meeting, "leave", "外出务工")
    rnd = await core.deliberation.open(SECRETARY, RoundSpec(
        org_id=sanyi, title="修不修村西的路", audience=Audience.BOTH, opinions_until=clock.now() + timedelta(hours=1),
        votes_until=clock.now() + timedelta(days=2), options=("修", "不修"), secret=True))
    opinion = await core.deliberation.give_opinion(MEMBER, rnd.id, f"我是{MEMBER_NAME}，先修到小学门口",
                                                   anonymous=False)
    await core.deliberation.support(RESIDENT, opinion)
    clock.advance(timedelta(hours=2))
    await core.deliberation.tick(SYSTEM_ACTOR)
    await core.deliberation.cast(MEMBER, rnd.id, [1])
    await core.deliberation.cast(RESIDENT, rnd.id, [0])
    await core.prompts.keep(MEMBER, {"text": "这条还没选问题", "from": {"id": MEMBER, "first_name": MEMBER_NAME}})
    return {"anon": anon.id, "open": open_ticket.id, "meeting": meeting, "round": rnd.id, "opinion": opinion}


async def counts(core: Core) -> dict[str, Any]:
    """What the reports count: tickets (by org and category), attendance answers, ballots and tallies."""
    one = core.db.fetchval
    return {
        "tickets": await one("SELECT COUNT(*) FROM tickets"),
        "tickets_by_category": [tuple(r) for r in await core.db.fetchall(
            "SELECT org_id, category, COUNT(*) FROM tickets GROUP BY 1, 2")],
        "attendance": [tuple(r) for r in await core.db.fetchall(
            "SELECT meeting_id, answer, COUNT(*) FROM meeting_attendees GROUP BY 1, 2")],
        "voters": await one("SELECT COUNT(*) FROM ballot_voters"),
        "tallies": [tuple(r) for r in await core.db.fetchall(
            "SELECT box, choice, n FROM ballot_tallies ORDER BY 1, 2")],
        "opinions": await one("SELECT COUNT(*) FROM delib_opinions"),
        "supports": await one("SELECT COUNT(*) FROM delib_supports"),
        "roles": await one("SELECT COUNT(*) FROM roles"),
    }


async def texts_mentioning(core: Core, needle: re.Pattern[str]) -> list[str]:
    """Every (table.column) whose text matches `needle`, across every table of the database."""
    found = []
    for table, column in await text_columns(core.db):
        for row in await core.db.fetchall(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL'):
            if needle.search(str(row[0])):
                found.append(f"{table}.{column}: {str(row[0])[:80]}")
    return found


def mentions(person_id: int, name: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(name)}|(?<!\d){person_id}(?!\d)")


async def test_export_holds_the_persons_data_and_nobody_elses(tree: Core, clock: SettableClock) -> None:
    ids = await person_world(tree, clock)
    data = await tree.privacy.export(MEMBER, MEMBER, via="chat")
    assert data["person"]["name"] == MEMBER_NAME
    assert {(r["org_code"], r["role"]) for r in data["roles"]["current"]} == {("sanyi", "member")}
    tickets = {t["id"]: t for t in data["tickets"]["submitted"]}
    # The anonymous problem is the author's own: listed to them, with its photo and the answer.
    assert set(tickets) == {ids["anon"], ids["open"]} and tickets[ids["anon"]]["anonymous"] == 1
    assert [i["kind"] for i in tickets[ids["anon"]]["items"]] == ["text", "photo", "text"]
    meetings = [(m["id"], m["answer"], m["leave_reason"]) for m in data["meetings"]]
    assert meetings == [(ids["meeting"], "leave", "外出务工")]
    assert data["deliberation"]["opinions"][0]["text"].endswith("先修到小学门口")
    # A secret ballot: only that they voted.
    assert data["ballots"] == [{"vote": "deliberation: 修不修村西的路", "voted": True, "cast_by_secretary": False}]
    assert data["in_progress"]["kept_messages"]
    text = json.dumps(data, ensure_ascii=False)
    for other, name in ((SECRETARY, "王建国"), (RESIDENT, "村民赵四")):
        assert not mentions(other, name).search(text), other


async def test_export_and_forget_are_for_the_person_admins_and_the_command_line(tree: Core) -> None:
    for actor in (RESIDENT, SECRETARY):
        with pytest.raises(NotAllowed):
            await tree.privacy.export(actor, MEMBER)
        with pytest.raises(NotAllowed):
            await tree.privacy.forget(actor, MEMBER)
    assert await tree.db.fetchval("SELECT COUNT(*) FROM privacy_log") == 0
    await tree.privacy.export(ADMIN, MEMBER)
    await tree.privacy.export(SYSTEM_ACTOR, MEMBER)
    await tree.privacy.export(MEMBER, MEMBER, via="chat")
    log = [tuple(r) for r in await tree.db.fetchall("SELECT action, by_kind, by_admin, via, subject FROM privacy_log")]
    subject = await tree.privacy.subject_hash(MEMBER)
    assert log == [("export", "admin", ADMIN, "cli", subject), ("export", "system", None, "cli", subject),
                   ("export", "self", None, "chat", subject)]
    assert str(MEMBER) not in subject


async def test_forget_removes_the_person_everywhere_and_keeps_the_counts(tree: Core, clock: SettableClock) -> None:
    ids = await person_world(tree, clock)
    async with tree.db.transaction() as tx:  # a message for them that is still waiting
        await tree.outbox.send_text(tx, key="test:later", chat_id=MEMBER, text="明天开会", purpose="test/later",
                                    not_before=clock.now() + timedelta(days=1))
    before = await counts(tree)
    assert await texts_mentioning(tree, mentions(MEMBER, MEMBER_NAME))
    report = await tree.privacy.forget(SYSTEM_ACTOR, MEMBER)
    assert report.tickets_withdrawn == 1 and report.tickets_stripped == 2 and report.outbox_cancelled >= 1
    assert await texts_mentioning(tree, mentions(MEMBER, MEMBER_NAME)) == []
    assert await counts(tree) == before
    person = await tree.db.fetchone("SELECT name, username FROM people WHERE telegram_id = ?", (MEMBER,))
    assert tuple(person) == ("", None)
    anon = await tree.db.fetchone("SELECT resident_id, summary, stripped_at FROM tickets WHERE id = ?", (ids["anon"],))
    assert anon["resident_id"] == NOBODY and PHONE not in anon["summary"] and "138****5678" in anon["summary"]
    assert await tree.db.fetchval("SELECT COUNT(*) FROM ticket_items WHERE chat_id IS NOT NULL AND ticket_id = ?",
                                  (ids["anon"],)) == 0
    assert await tree.db.fetchval("SELECT status FROM outbox WHERE id = (SELECT MAX(id) FROM outbox"
                                  " WHERE purpose = 'test/later')") == "cancelled"
    assert await tree.db.fetchval("SELECT COUNT(*) FROM kept_messages") == 0
    opinion = await tree.db.fetchone("SELECT anonymous, text FROM delib_opinions WHERE id = ?", (ids["opinion"],))
    assert opinion["anonymous"] == 1 and MEMBER_NAME not in opinion["text"]
    # Their export now holds no problem of theirs: the link is gone.
    assert (await tree.privacy.export(SYSTEM_ACTOR, MEMBER))["tickets"]["submitted"] == []
    assert [r[0] for r in await tree.db.fetchall("SELECT action FROM privacy_log")] == ["forget", "export"]


async def closed_ticket(core: Core, text: str) -> int:
    ticket = await core.tickets.submit(RESIDENT, [Item("text", text), Item("photo", None, RESIDENT, 5)],
                                       "infrastructure", True, True)
    await core.tickets.answer(SECRETARY, ticket.id, [Item("text", "已修好")])
    await core.tickets.rate(RESIDENT, ticket.id, "good")
    return ticket.id


async def test_retention_strips_what_was_closed_three_years_ago_once(tree: Core, clock: SettableClock) -> None:
    start = clock.now()
    old = await closed_ticket(tree, f"路灯坏了，电话{PHONE}")
    clock.set(start + timedelta(days=2))
    recent = await closed_ticket(tree, f"井盖丢了，电话{PHONE}")
    closed = {r[0]: r[1] for r in await tree.db.fetchall("SELECT id, closed_at FROM tickets")}
    assert closed[old] < closed[recent]
    # Three calendar years and a day after the first close; the second closed three years less a day ago.
    clock.set(start.replace(year=start.year + 3) + timedelta(days=1))
    with pytest.raises(NotAllowed):
        await tree.retention.run(RESIDENT)
    run = await tree.retention.run(SYSTEM_ACTOR)
    assert run.removed.tickets == 1 and run.removed.media == 1
    rows = {r["id"]: dict(r) for r in await tree.db.fetchall("SELECT * FROM tickets")}
    assert rows[old]["resident_id"] == NOBODY and rows[old]["stripped_at"] is not None
    assert PHONE not in rows[old]["summary"] and "路灯坏了" in rows[old]["summary"]
    assert rows[recent]["resident_id"] == RESIDENT and PHONE in rows[recent]["summary"]
    items = await tree.db.fetchall("SELECT author_id, chat_id, text FROM ticket_items WHERE ticket_id = ?", (old,))
    assert all(i["chat_id"] is None and i["author_id"] != RESIDENT for i in items)
    assert await tree.db.fetchval("SELECT COUNT(*) FROM screens WHERE subject_kind = 'ticket' AND subject_id = ?",
                                  (old,)) == 0
    to_resident = await tree.db.fetchall("SELECT payload FROM outbox WHERE purpose LIKE 'ticket/%' AND subject_id = ?"
                                         " AND (chat_id = ? OR recipient = ?)", (old, RESIDENT, RESIDENT))
    assert to_resident == []
    again = await tree.retention.run(SYSTEM_ACTOR)
    assert again.removed.total() == 0
    runs = await tree.retention.runs()
    assert [(r["tickets"], r["media"], r["finished_at"] is not None) for r in runs] == [(0, 0, True), (1, 1, True)]
    # A day later the second one's time has come.
    clock.advance(timedelta(days=2))
    assert (await tree.retention.run(SYSTEM_ACTOR)).removed.tickets == 1
