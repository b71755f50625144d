"""Supervision bulletins against a hand-built October 2026 of 龙驹寨街道党工委 (sanyi, erlang, and a
branch xincun set up on 20 October), each measure's exact value checked against the records:
problems through the tickets service (a deadline across the 国庆 holiday, one reopened after its
deadline), meetings, rounds, matters and deliveries written as rows, one meeting moved across the
month's end. Then the outputs: the text, the workbook (opened with openpyxl) and the chart (PIL)."""

from __future__ import annotations

import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from orgtree import Person, in_use_from, org_file
from PIL import Image
from service_fixtures import ERLANG_SECRETARY, MEMBER, RESIDENT, SECRETARY, TOWN_ORG, core_fixture, load, org_id

from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock, to_db
from bot.core import Core
from bot.services.orgs import NotAllowed
from bot.services.supervision_render import CHART_DPI, CHART_INCHES
from bot.services.tickets import Item

__all__ = ["core_fixture"]
TZ = ZoneInfo("Asia/Shanghai")
XINCUN_SECRETARY = 2001
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=TZ)
FIRST, LAST = date(2026, 10, 1), date(2026, 10, 31)


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=TZ)


async def submit(core: Core, clock: SettableClock, when: datetime, text: str) -> int:
    clock.set(when)
    ticket = await core.tickets.submit(RESIDENT, [Item("text", text)], "other", True, False)
    return ticket.id


async def tickets(core: Core, clock: SettableClock) -> None:
    """T1 on 1 October (a holiday: accept by the end of 8 October) accepted on the 8th, answered,
    rated 基本满意; T2 answered in time, rated 不满意 on the 21st (after its deadline): reopened;
    T3 accepted late, answered in time, 满意; T4 left unrated (closed unrated by the job); T5 never
    accepted (escalated); T6 withdrawn; T7 on 1 November, never accepted (overdue now)."""
    t1 = await submit(core, clock, at(10, 1), "路灯坏了")
    t2 = await submit(core, clock, at(10, 12), "垃圾没人清")
    t3 = await submit(core, clock, at(10, 12, 11), "水管漏水")
    due = (await core.tickets.get(SYSTEM_ACTOR, t1)).accept_due
    assert due == datetime(2026, 10, 9, 0, 0, tzinfo=TZ)  # 1 working day after 1 October: the 8th
    clock.set(at(10, 8))
    await core.tickets.accept(SECRETARY, t1)
    clock.set(at(10, 9))
    await core.tickets.answer(SECRETARY, t1, [Item("text", "修好了")])
    await core.tickets.rate(RESIDENT, t1, "ok")
    clock.set(at(10, 12, 15))
    await core.tickets.accept(SECRETARY, t2)
    clock.set(at(10, 13))
    await core.tickets.answer(SECRETARY, t2, [Item("text", "清了")])
    clock.set(at(10, 15))
    await core.tickets.accept(SECRETARY, t3)
    clock.set(at(10, 16))
    await core.tickets.answer(SECRETARY, t3, [Item("text", "修了")])
    await core.tickets.rate(RESIDENT, t3, "good")
    t4 = await submit(core, clock, at(10, 20), "路不平")
    clock.set(at(10, 21))
    await core.tickets.accept(SECRETARY, t4)
    await core.tickets.answer(SECRETARY, t4, [Item("text", "平了")])
    clock.set(at(10, 21, 12))  # T2's answer was due by the end of 19 October
    await core.tickets.rate(RESIDENT, t2, "bad", "还是脏")
    await submit(core, clock, at(10, 22), "狗太多")
    clock.set(at(10, 24, 12))
    await core.tickets.tick(SYSTEM_ACTOR)  # T4 closed unrated; T2 and T5 escalated
    t6 = await submit(core, clock, at(10, 28), "想问个事")
    await core.tickets.withdraw(RESIDENT, t6)
    await submit(core, clock, at(11, 1), "桥坏了")
    clock.set(NOW)
    await core.tickets.tick(SYSTEM_ACTOR)  # T7 escalated (received in November)


async def meeting(core: Core, org: int, kind: str, start: datetime, status: str = "held",
                  people: tuple[tuple[int, str | None, str | None, bool], ...] = (),
                  minutes_at: datetime | None = None) -> int:
    """A meeting row; people: (person, presence mark, answer, checked in)."""
    end = start.replace(hour=start.hour + 2)
    async with core.db.transaction() as tx:
        mid = await tx.insert(
            "INSERT INTO meetings (org_id, kind, starts_at, ends_at, place, topic, status, created_by, created_at,"
            " updated_at, edits) VALUES (?, ?, ?, ?, '村委会', '学习', ?, 1, ?, ?, 1)",
            (org, kind, to_db(start), to_db(end), status, to_db(at(9, 1)), to_db(at(9, 1))))
        for pid, presence, answer, checked in people:
            await tx.execute("INSERT INTO meeting_attendees (meeting_id, person_id, answer, presence, checked_in_at)"
                             " VALUES (?, ?, ?, ?, ?)", (mid, pid, answer, presence, to_db(start) if checked else None))
        if minutes_at is not None:
            await tx.execute("INSERT INTO meeting_minutes (meeting_id, kind, text, added_by, added_at)"
                             " VALUES (?, 'text', '记录', 1, ?)", (mid, to_db(minutes_at)))
    return mid


async def records(core: Core, sanyi: int, erlang: int) -> None:
    # sanyi: the committee meeting (two attended: one marked, one checked in; one on leave), minutes
    # the next day; the theme day, moved from 30 September to 9 October, minutes late.
    await meeting(core, sanyi, "committee_meeting", at(10, 15, 15),
                  people=((SECRETARY, "present", None, False), (MEMBER, None, "attend", True),
                          (RESIDENT, None, "leave", False)), minutes_at=at(10, 16))
    await meeting(core, sanyi, "theme_day", at(10, 9, 9), people=((SECRETARY, None, None, True),
                                                                   (MEMBER, "absent", None, True)),
                  minutes_at=at(10, 20))
    await meeting(core, sanyi, "committee_meeting", at(10, 28), status="cancelled")
    # erlang: the theme day (no minutes); its committee meeting moved from 31 October to 2 November.
    await meeting(core, erlang, "theme_day", at(10, 20, 9), people=((ERLANG_SECRETARY, "present", None, False),
                                                                     (MEMBER, None, None, True)))
    await meeting(core, erlang, "committee_meeting", at(11, 2, 9))
    rounds = [(sanyi, "closed", at(10, 20), '{"voted": true, "ballots": 6, "eligible": 10, "opinions": 4}'),
              (sanyi, "closed", at(9, 30), '{"voted": true, "ballots": 9, "eligible": 10, "opinions": 1}'),
              (sanyi, "cancelled", at(10, 21), None),
              (erlang, "closed", at(10, 25), '{"voted": false, "ballots": 0, "eligible": 12, "opinions": 3}')]
    matters = [(sanyi, 2, "open", at(9, 1), at(9, 20), None), (sanyi, 4, "done", at(10, 5), at(10, 6), at(10, 30)),
               (sanyi, 1, "rejected", at(9, 1), at(9, 15), None), (erlang, 0, "open", at(10, 10), at(10, 10), None)]
    async with core.db.transaction() as tx:
        for org, status, ended, result in rounds:
            await tx.execute("INSERT INTO delib_rounds (org_id, audience, title, opened_by, opened_at, opinions_until,"
                             " status, ended_at, result) VALUES (?, 'both', '议事', 1, ?, ?, ?, ?, ?)",
                             (org, to_db(at(9, 1)), to_db(ended), status, to_db(ended), result))
        for org, stage, status, opened, waiting, result_at in matters:
            await tx.execute("INSERT INTO matters (org_id, title, opened_by, opened_at, stage, status, waiting_since,"
                             " result_at) VALUES (?, '修路', 1, ?, ?, ?, ?, ?)",
                             (org, to_db(opened), stage, status, to_db(waiting),
                              to_db(result_at) if result_at else None))
        await tx.execute("UPDATE people SET blocked_bot = 1 WHERE telegram_id = ?", (MEMBER,))
        for key, chat, status, when in (("f1", SECRETARY, "failed", at(10, 5)), ("f2", SECRETARY, "failed", at(9, 5)),
                                        ("f3", SECRETARY, "sent", at(10, 5)),
                                        ("f4", ERLANG_SECRETARY, "failed", at(10, 7))):
            await tx.execute("INSERT INTO outbox (dedup_key, chat_id, method, payload, not_before, status, created_at,"
                             " recipient) VALUES (?, ?, 'sendMessage', '{}', ?, ?, ?, ?)",
                             (key, chat, to_db(when), status, to_db(when), chat))


@pytest.fixture(name="world")
async def world_fixture(core: Core, clock: SettableClock) -> tuple[Core, dict[str, int]]:
    clock.set(at(8, 1))
    await load(core, org_file(extra_orgs={"longjuzhai": [{"code": "xincun", "name": "新村党支部",
                                                            "kind": "village_branch"}]},
                              extra_people=[Person(XINCUN_SECRETARY, "新书记", ("secretary@xincun",))]))
    await in_use_from(core, at(8, 1))
    ids = {code: await org_id(core, code) for code in ("longjuzhai", "sanyi", "erlang", "xincun")}
    async with core.db.transaction() as tx:  # xincun was set up, and its secretary joined, on 20 October
        await tx.execute("UPDATE orgs SET created_at = ? WHERE id = ?", (to_db(at(10, 20)), ids["xincun"]))
        await tx.execute("UPDATE roles SET granted_at = ? WHERE org_id = ?", (to_db(at(10, 20)), ids["xincun"]))
        await tx.execute("UPDATE role_audit SET at = ? WHERE org_id = ?", (to_db(at(10, 20)), ids["xincun"]))
    await tickets(core, clock)
    await records(core, ids["sanyi"], ids["erlang"])
    clock.set(NOW)
    return core, ids


SANYI = {"req:committee_meeting": 1, "met:committee_meeting": 1, "req:theme_day": 1, "met:theme_day": 1,
         "required": 2, "met": 2, "held": 2, "invited": 5, "attended": 3, "on_leave": 1, "minutes_due": 2,
         "minutes_on_time": 1, "received": 6, "accept_due": 5, "accepted_in_time": 3, "answer_due": 5,
         "answered_in_time": 3, "overdue": 3, "escalated": 2, "rated": 3, "satisfied": 2, "unrated": 1,
         "rounds": 1, "voting_rounds": 1, "ballots": 6, "eligible": 10, "opinions": 4, "matters": 2,
         "matter:s3": 1, "matter:done": 1, "matters_overdue": 1, "blocked": 1, "failed": 1}
ERLANG = {"req:committee_meeting": 1, "met:committee_meeting": 0, "req:theme_day": 1, "met:theme_day": 1,
          "required": 2, "met": 1, "held": 1, "invited": 2, "attended": 2, "on_leave": 0, "minutes_due": 1,
          "minutes_on_time": 0, "received": 0, "overdue": 0, "rounds": 1, "voting_rounds": 0, "ballots": 0,
          "eligible": 0, "opinions": 3, "matters": 1, "matter:s1": 1, "matters_overdue": 0, "blocked": 0, "failed": 1}


async def test_each_measure_matches_the_records(world: tuple[Core, dict[str, int]]) -> None:
    core, ids = world
    b = await core.supervision.bulletin(TOWN_ORG, ids["longjuzhai"], FIRST, LAST)
    rows = {r.org.code: r for r in b.rows}
    assert list(rows) == ["longjuzhai", "sanyi", "erlang", "xincun"] and rows["longjuzhai"].own
    for code, expected in (("sanyi", SANYI), ("erlang", ERLANG)):
        got = rows[code].figures
        assert {k: got[k] for k in expected} == expected, code
    # xincun came to the bot on 20 October: October's quotas do not count against it.
    assert rows["xincun"].figures["required"] == 0
    assert sum(rows["longjuzhai"].figures.values()) == 0
    total = b.total
    assert (total["required"], total["met"], total["held"], total["invited"], total["attended"]) == (4, 3, 3, 7, 5)
    assert (total["received"], total["overdue"], total["rounds"], total["matters"]) == (6, 3, 2, 3)
    assert (total["blocked"], total["failed"]) == (1, 2)  # the member blocked the bot; two failed in October
    lag = {lag.org.code: lag for lag in b.lagging}
    assert set(lag) == {"sanyi", "erlang"}
    assert lag["erlang"].quota == [("committee_meeting", 0, 1)]
    assert lag["sanyi"].overdue == 3 and lag["sanyi"].satisfaction == pytest.approx(2 / 3)


async def test_november_counts_the_moved_meeting(world: tuple[Core, dict[str, int]], clock: SettableClock) -> None:
    core, ids = world
    clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=TZ))
    b = await core.supervision.bulletin(SYSTEM_ACTOR, ids["erlang"], date(2026, 11, 1), date(2026, 11, 30))
    assert (b.total["met:committee_meeting"], b.total["req:committee_meeting"]) == (1, 1)
    b = await core.supervision.bulletin(SYSTEM_ACTOR, ids["xincun"], date(2026, 11, 1), date(2026, 11, 30))
    assert b.total["required"] == 2 and b.total["met"] == 0  # a whole month in the bot: it counts now


async def test_outputs(world: tuple[Core, dict[str, int]]) -> None:
    core, ids = world
    built = await core.supervision.build(TOWN_ORG, ids["longjuzhai"], FIRST, LAST, "zh_CN")
    text = "\n".join(built.texts)
    assert "督查通报：龙驹寨街道党工委（2026年10月）" in text and "二郎村党支部：支部委员会会议应开1次只开了0次" in text
    assert "超期问题3件" in text and "满意率66.7%" in text and "新村党支部" not in text.split("需要督促")[1]
    assert all(len(t) <= 4096 for t in built.texts)
    assert built.workbook_name == "督查通报-龙驹寨街道党工委-2026年10月.xlsx"
    book = load_workbook(io.BytesIO(built.workbook))
    assert book.sheetnames == ["通报和统计口径", "三会一课", "群众问题", "民主议事", "四议两公开", "消息送达"]
    sheet = book["群众问题"]
    header = [c.value for c in sheet[1]]
    table = {row[0]: dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2, values_only=True)
             if row[0]}
    assert table["三义村党支部"]["收到问题"] == 6 and table["三义村党支部"]["按时受理"] == 3
    assert table["合计"]["现超期"] == 3 and table["合计"]["满意率"] == pytest.approx(2 / 3)
    meetings = book["三会一课"]
    header = [c.value for c in meetings[1]]
    total = next(r for r in meetings.iter_rows(min_row=2, values_only=True) if r[0] == "合计")
    assert dict(zip(header, total, strict=True))["已开合计"] == 3
    image = Image.open(io.BytesIO(built.chart))
    assert image.format == "PNG" and image.size == (CHART_INCHES[0] * CHART_DPI, CHART_INCHES[1] * CHART_DPI)


async def test_rights(world: tuple[Core, dict[str, int]]) -> None:
    core, ids = world
    await core.supervision.check_report(SECRETARY, ids["sanyi"])
    with pytest.raises(NotAllowed):
        await core.supervision.check_report(SECRETARY, ids["longjuzhai"])
    with pytest.raises(NotAllowed):
        await core.supervision.bulletin(ERLANG_SECRETARY, ids["sanyi"], FIRST, LAST)
    assert [o.code for o in await core.supervision.report_orgs(TOWN_ORG)] == ["longjuzhai"]
