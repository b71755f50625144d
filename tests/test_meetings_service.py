"""MeetingService on a real SQLite file: who is invited, who may do what, bad input, answers,
reminders as outbox rows (never duplicated), edits, cancelling, check-in, minutes, series,
quota checks, settings, the committee and the ledger."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from orgtree import Person, in_use_from, org_file
from pg import ON_PG, env_database
from service_fixtures import (
    ADMIN,
    COUNTY_ORG,
    ERLANG_SECRETARY,
    MEMBER,
    OTHER_TOWN_ORG,
    RESIDENT,
    SECRETARY,
    START,
    STRANGER,
    TOWN_ORG,
    VILLAGE_ORG,
    clock_fixture,  # noqa: F401  (the `clock` fixture)
    core_fixture,  # noqa: F401  (the `core` fixture)
    load,
    make_core,
    org_id,
    outbox_rows,
    rows,
    tree_fixture,  # noqa: F401  (the `tree` fixture)
)

from bot.actors import SYSTEM_ACTOR
from bot.callbacks import MEETING_MEMBER, MemberAction
from bot.clock import SettableClock, to_db
from bot.core import Core
from bot.services.meeting_time import Rule
from bot.services.meetings import Draft, MeetingService, Refused, SeriesSpec
from bot.services.orgs import NotAllowed, NotFound

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parent.parent
GROUP_MEMBER = 1010

# A party group under 三义 with one member of its own (loaded on top of the tree).
GROUP = org_file((), extra_orgs={"sanyi": [{"code": "sanyi1", "name": "三义村第一党小组", "kind": "party_group"}]},
                 extra_people=[Person(GROUP_MEMBER, "小组党员", ("member@sanyi1",))])


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def svc_of(core: Core) -> MeetingService:
    return core.meetings


DEFAULT_START = local(2026, 12, 5, 15, 0)


async def draft(core: Core, start: datetime = DEFAULT_START, *, kind: str = "general_meeting",
                org: str = "sanyi", below: bool = False, **extra: Any) -> Draft:
    values: dict[str, Any] = {"place": "村委会", "topic": "学习党章"} | extra
    return Draft(kind=kind, org_id=await org_id(core, org), include_below=below, starts_at=start,
                 ends_at=start + timedelta(hours=2), **values)


async def invited(core: Core, meeting_id: int) -> set[int]:
    return {a.person_id for a in await svc_of(core).attendees(ADMIN, meeting_id)}


async def pending(core: Core, prefix: str) -> dict[str, str]:
    """Pending outbox rows whose key starts with `prefix`: key → not_before."""
    return {r["dedup_key"]: r["not_before"] for r in await rows(
        core, "SELECT dedup_key, not_before FROM outbox WHERE status = 'pending' AND dedup_key LIKE ?",
        (prefix + "%",))}


async def deliver(core: Core, prefix: str = "") -> None:
    """What the delivery worker does with due rows (the service tests have no worker)."""
    async with core.db.transaction() as tx:
        await tx.execute("UPDATE outbox SET status = 'sent', sent_at = ? WHERE status = 'pending'"
                         " AND not_before <= ? AND dedup_key LIKE ?",
                         (to_db(core.clock.now()), to_db(core.clock.now()), prefix + "%"))


async def state(core: Core) -> list[list[tuple[Any, ...]]]:
    out = []
    for table in ("meetings", "meeting_attendees", "meeting_minutes", "meeting_series", "meeting_settings",
                  "meeting_committee", "outbox"):
        out.append([tuple(r) for r in await core.db.fetchall(f"SELECT * FROM {table} ORDER BY 1, 2")])
    return out


# --- who is invited --------------------------------------------------------------------------------

async def test_attendees_follow_the_kind(tree: Core) -> None:
    svc = svc_of(tree)
    general = await svc.create(SECRETARY, await draft(tree))
    assert await invited(tree, general.meeting.id) == {SECRETARY, MEMBER, VILLAGE_ORG}  # no residents
    assert (general.invited, general.notified) == (3, 2)  # the secretary who scheduled it gets no notice
    committee = await svc.create(SECRETARY, await draft(tree, kind="committee_meeting"))
    assert await invited(tree, committee.meeting.id) == {SECRETARY}
    assert await svc.cycle_committee(SECRETARY, await org_id(tree, "sanyi"), MEMBER) == "member"
    committee = await svc.create(SECRETARY, await draft(tree, kind="committee_meeting"))
    assert await invited(tree, committee.meeting.id) == {SECRETARY, MEMBER}
    # An organizer sends one meeting to the township and every org below it.
    monthly = await svc.create(TOWN_ORG, await draft(tree, kind="monthly", org="longjuzhai", below=True))
    assert await invited(tree, monthly.meeting.id) == {TOWN_ORG, SECRETARY, MEMBER, VILLAGE_ORG, ERLANG_SECRETARY}
    # The organizer adds someone by hand: only people with a role in the organizer's own subtree.
    extra = await svc.create(TOWN_ORG, await draft(tree, org="erlang", extra_people=[MEMBER]))
    assert await invited(tree, extra.meeting.id) == {ERLANG_SECRETARY, MEMBER}


@pytest.mark.parametrize("outsider", [STRANGER, OTHER_TOWN_ORG, COUNTY_ORG])
async def test_extra_invitees_come_only_from_the_actors_subtree(tree: Core, outsider: int) -> None:
    """A stranger the bot never saw, an organizer of a sibling township, an organizer above: none
    can be invited by a township organizer, by id, on creation or later; nor found by name."""
    svc = svc_of(tree)
    with pytest.raises(NotAllowed):
        await svc.create(TOWN_ORG, await draft(tree, org="erlang", extra_people=[MEMBER, outsider]))
    assert await tree.db.fetchval("SELECT COUNT(*) FROM meetings") == 0
    mid = (await svc.create(TOWN_ORG, await draft(tree, org="erlang"))).meeting.id
    with pytest.raises(NotAllowed):
        await svc.add_people(TOWN_ORG, mid, [outsider])
    assert outsider not in await invited(tree, mid)
    found, unknown = await svc.resolve_people(TOWN_ORG, [str(outsider), "党员张三"])
    assert found == {MEMBER: "党员张三"} and unknown == [str(outsider)]
    # An admin may invite anyone who holds a role somewhere, but still not a stranger.
    if outsider != STRANGER:
        assert await svc.add_people(ADMIN, mid, [outsider]) == [outsider]


async def test_party_groups(tree: Core) -> None:
    await load(tree, GROUP)
    svc = svc_of(tree)
    group = await svc.create(SECRETARY, await draft(tree, kind="group_meeting", org="sanyi1"))
    assert await invited(tree, group.meeting.id) == {GROUP_MEMBER}
    general = await svc.create(SECRETARY, await draft(tree))
    assert await invited(tree, general.meeting.id) == {SECRETARY, MEMBER, VILLAGE_ORG, GROUP_MEMBER}
    committee = await svc.create(SECRETARY, await draft(tree, kind="committee_meeting"))
    assert await invited(tree, committee.meeting.id) == {SECRETARY}


@pytest.mark.parametrize(("person", "code", "below", "allowed"), [
    (SECRETARY, "sanyi", False, True),
    (SECRETARY, "sanyi", True, False),          # only organizers send down the tree
    (SECRETARY, "erlang", False, False),        # another branch
    (ERLANG_SECRETARY, "sanyi", False, False),
    (MEMBER, "sanyi", False, False),
    (RESIDENT, "sanyi", False, False),
    (STRANGER, "sanyi", False, False),
    (VILLAGE_ORG, "sanyi", False, True),        # the branch's own organizer
    (TOWN_ORG, "sanyi", False, True),
    (TOWN_ORG, "longjuzhai", True, True),
    (COUNTY_ORG, "xijie", True, True),
    (OTHER_TOWN_ORG, "sanyi", False, False),
    (ADMIN, "lonely", True, True),
])
async def test_who_may_schedule(tree: Core, person: int, code: str, below: bool, allowed: bool) -> None:
    svc = svc_of(tree)
    before = await state(tree)
    if allowed:
        await svc.create(person, await draft(tree, org=code, below=below))
        return
    with pytest.raises(NotAllowed):
        await svc.create(person, await draft(tree, org=code, below=below))
    assert await state(tree) == before


@pytest.mark.parametrize(("start", "changes", "key"), [
    (local(2026, 11, 27, 15, 0), {}, "meeting.error.past"),
    (local(2029, 11, 28, 9, 0), {}, "meeting.error.too_far"),
    (local(2026, 12, 5, 15, 0), {"place": "地" * 101}, "meeting.error.place_long"),
    (local(2026, 12, 5, 15, 0), {"topic": "题" * 501}, "meeting.error.topic_long"),
    (local(2026, 12, 5, 15, 0), {"topic": "   "}, "meeting.error.empty"),
    (local(2026, 12, 5, 15, 0), {"lecturer": "名" * 51}, "meeting.error.lecturer_long"),
])
async def test_bad_drafts_change_nothing(tree: Core, start: datetime, changes: dict[str, Any], key: str) -> None:
    before = await state(tree)
    with pytest.raises(Refused) as info:
        await svc_of(tree).create(SECRETARY, await draft(tree, start, **changes))
    assert info.value.key == key
    assert await state(tree) == before


async def test_three_years_is_the_limit(tree: Core) -> None:
    await svc_of(tree).create(SECRETARY, await draft(tree, local(2029, 11, 27, 15, 0)))
    bad = await draft(tree, local(2026, 12, 5, 15, 0))
    bad.ends_at = bad.starts_at - timedelta(minutes=1)
    with pytest.raises(Refused, match="end_before_start"):
        await svc_of(tree).create(SECRETARY, bad)


# --- notices and reminders ---------------------------------------------------------------------------

async def test_notice_and_reminders_are_outbox_rows(tree: Core) -> None:
    created = await svc_of(tree).create(SECRETARY, await draft(tree))
    mid = created.meeting.id
    notices = {r["chat_id"]: r for r in await outbox_rows(tree) if r["dedup_key"].startswith(f"mt:{mid}:n:")}
    assert set(notices) == {MEMBER, VILLAGE_ORG}
    payload = notices[MEMBER]["payload"]
    assert payload["text"].startswith(
        "📢 会议通知\n组织：三义村党支部\n会议：支部党员大会\n时间：12月5日（周六）下午3:00")
    assert [b["callback_data"] for row in payload["reply_markup"]["inline_keyboard"] for b in row] == [
        MEETING_MEMBER(MemberAction.ATTEND, mid), MEETING_MEMBER(MemberAction.LEAVE, mid),
        MEETING_MEMBER(MemberAction.CALENDAR, mid)]
    assert await pending(tree, f"mt:{mid}:r") == {
        f"mt:{mid}:r1:{p}:{o}": to_db(at) for p in (SECRETARY, MEMBER, VILLAGE_ORG)
        for o, at in ((1440, local(2026, 12, 4, 15, 0)), (120, local(2026, 12, 5, 13, 0)))}


async def test_answers_until_the_start(tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    mid = (await svc.create(SECRETARY, await draft(tree))).meeting.id
    attendee = await svc.answer(MEMBER, mid, "attend")
    assert attendee.answer == "attend"
    # Leave cancels the person's reminders; coming back plans them again (the same rows).
    attendee = await svc.answer(MEMBER, mid, "leave", "  外出务工 ")
    assert (attendee.answer, attendee.leave_reason) == ("leave", "外出务工")
    assert await pending(tree, f"mt:{mid}:r1:{MEMBER}:") == {}
    await svc.answer(MEMBER, mid, "attend")
    assert len(await pending(tree, f"mt:{mid}:r1:{MEMBER}:")) == 2
    assert await tree.db.fetchval("SELECT COUNT(*) FROM outbox WHERE dedup_key LIKE ?",
                                  (f"mt:{mid}:r1:{MEMBER}:%",)) == 2  # the same rows, revived
    # A reason is needed, and not too long.
    with pytest.raises(Refused, match="empty"):
        await svc.answer(MEMBER, mid, "leave", " ")
    with pytest.raises(Refused, match="reason_long"):
        await svc.answer(MEMBER, mid, "leave", "因" * 201)
    # Not invited: residents, other branches, strangers.
    for person in (RESIDENT, ERLANG_SECRETARY, STRANGER):
        with pytest.raises(Refused, match="not_invited"):
            await svc.answer(person, mid, "attend")
    with pytest.raises(NotFound):
        await svc.answer(MEMBER, 999, "attend")
    clock.set(local(2026, 12, 5, 15, 0))
    with pytest.raises(Refused, match="started"):
        await svc.answer(MEMBER, mid, "leave", "生病")
    assert (await svc.view(MEMBER, mid)).attendee.answer == "attend"  # type: ignore[union-attr]


async def test_moving_a_meeting_replaces_pending_reminders_and_never_duplicates(
        tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    mid = (await svc.create(SECRETARY, await draft(tree))).meeting.id
    await deliver(tree, f"mt:{mid}:n:")
    # The 1-day reminder goes out; then the meeting moves half an hour later the same day.
    clock.set(local(2026, 12, 4, 15, 0))
    await deliver(tree, f"mt:{mid}:r1:")
    edited = await svc.edit(SECRETARY, mid, starts_at=local(2026, 12, 5, 15, 30), reason="村里有事")
    meeting = edited.meeting
    assert edited.told == 2 and not edited.quiet and meeting.remind_gen == 2
    assert meeting.ends_at == local(2026, 12, 5, 17, 30)  # the length is kept
    # No second "tomorrow" reminder (one went out an hour ago); the 2-hour one moved.
    assert await pending(tree, f"mt:{mid}:r") == {
        f"mt:{mid}:r2:{p}:120": to_db(local(2026, 12, 5, 13, 30)) for p in (SECRETARY, MEMBER, VILLAGE_ORG)}
    assert await tree.db.fetchval("SELECT COUNT(*) FROM outbox WHERE dedup_key LIKE ? AND status = 'cancelled'",
                                  (f"mt:{mid}:r1:%",)) == 3
    change = next(r for r in await outbox_rows(tree, MEMBER) if r["dedup_key"] == f"mt:{mid}:e1:{MEMBER}")
    assert "时间：12月5日（周六）下午3:00—5:00 → 12月5日（周六）下午3:30—5:30" in change["payload"]["text"]
    assert "原因：村里有事" in change["payload"]["text"]
    # Moved a week later: a new "tomorrow" reminder is due again.
    await svc.edit(SECRETARY, mid, starts_at=local(2026, 12, 12, 15, 30))
    assert set(await pending(tree, f"mt:{mid}:r")) == {
        f"mt:{mid}:r3:{p}:{o}" for p in (SECRETARY, MEMBER, VILLAGE_ORG) for o in (1440, 120)}
    with pytest.raises(Refused, match="no_change"):
        await svc.edit(SECRETARY, mid, place="村委会")
    with pytest.raises(NotAllowed):
        await svc.edit(MEMBER, mid, place="别处")


async def test_an_edit_before_the_notice_went_out_corrects_the_notice(tree: Core) -> None:
    svc = svc_of(tree)
    mid = (await svc.create(SECRETARY, await draft(tree))).meeting.id
    assert (await svc.edit(SECRETARY, mid, place="党员活动室")).told == 2
    keys = [r["dedup_key"] for r in await outbox_rows(tree, MEMBER)]
    assert f"mt:{mid}:e1:{MEMBER}" not in keys  # no "changed" for a notice not yet seen
    notice = next(r for r in await outbox_rows(tree, MEMBER) if r["dedup_key"] == f"mt:{mid}:n:{MEMBER}")
    assert "地点：党员活动室" in notice["payload"]["text"] and notice["status"] == "pending"


async def test_cancel_tells_whoever_heard_of_it_and_stops_everything(tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    mid = (await svc.create(SECRETARY, await draft(tree))).meeting.id
    await deliver(tree, f"mt:{mid}:n:{MEMBER}")  # 张三 had the notice; 7's is still queued
    with pytest.raises(Refused, match="empty"):
        await svc.cancel(SECRETARY, mid, "")
    with pytest.raises(NotAllowed):
        await svc.cancel(ERLANG_SECRETARY, mid, "不开了")
    meeting, told = await svc.cancel(TOWN_ORG, mid, "上级另有安排")
    assert (meeting.status, meeting.cancel_reason, told) == ("cancelled", "上级另有安排", 2)
    to = {r["chat_id"] for r in await outbox_rows(tree) if r["dedup_key"].startswith(f"mt:{mid}:x:")}
    assert to == {MEMBER, SECRETARY}  # the secretary who scheduled it, and who had the notice
    assert await pending(tree, f"mt:{mid}:r") == {} and await pending(tree, f"mt:{mid}:n:") == {}
    for call in (svc.answer(MEMBER, mid, "attend"), svc.check_in(MEMBER, mid), svc.cancel(SECRETARY, mid, "再取消"),
                 svc.edit(SECRETARY, mid, place="别处"), svc.nudge(SECRETARY, mid)):
        with pytest.raises(Refused, match="cancelled"):
            await call


async def test_check_in_window_and_the_secretarys_marks(tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    mid = (await svc.create(SECRETARY, await draft(tree))).meeting.id
    clock.set(local(2026, 12, 5, 14, 29))
    with pytest.raises(Refused) as info:
        await svc.check_in(MEMBER, mid)
    assert info.value.key == "meeting.error.checkin_early"
    assert info.value.values == {"opens": local(2026, 12, 5, 14, 30), "closes": local(2026, 12, 5, 17, 0)}
    with pytest.raises(Refused, match="mark_early"):
        await svc.mark(SECRETARY, mid, MEMBER)
    assert await svc.checkin_candidates(MEMBER) == []
    clock.set(local(2026, 12, 5, 14, 30))
    assert [m.id for m in await svc.checkin_candidates(MEMBER)] == [mid]
    _, at, already = await svc.check_in(MEMBER, mid)
    assert (at, already) == (local(2026, 12, 5, 14, 30), False)
    _, at, already = await svc.check_in(MEMBER, mid)
    assert already
    with pytest.raises(Refused, match="not_invited"):
        await svc.check_in(RESIDENT, mid)
    # The secretary marks 7 present, then corrects the member to absent.
    assert await svc.mark(SECRETARY, mid, VILLAGE_ORG) == "present"
    assert await svc.mark(SECRETARY, mid, MEMBER) == "present"
    assert await svc.mark(SECRETARY, mid, MEMBER) == "absent"
    with pytest.raises(NotAllowed):
        await svc.mark(MEMBER, mid, MEMBER)
    attended = {a.person_id for a in await svc.attendees(SECRETARY, mid) if a.attended}
    assert attended == {VILLAGE_ORG}
    clock.set(local(2026, 12, 5, 17, 1))
    with pytest.raises(Refused, match="checkin_closed"):
        await svc.check_in(SECRETARY, mid)


async def test_nudge_once_a_day_and_never_at_night(tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    mid = (await svc.create(SECRETARY, await draft(tree))).meeting.id
    await svc.answer(MEMBER, mid, "attend")
    clock.set(local(2026, 11, 27, 23, 0))
    assert await svc.nudge(SECRETARY, mid) == 1  # only 7; not the secretary, not who answered
    nudge = await pending(tree, f"mt:{mid}:u")
    assert nudge == {f"mt:{mid}:u20261127:{VILLAGE_ORG}": to_db(local(2026, 11, 28, 7, 0))}
    with pytest.raises(Refused, match="nudged_today"):
        await svc.nudge(SECRETARY, mid)
    clock.set(local(2026, 11, 28, 9, 0))
    assert await svc.nudge(SECRETARY, mid) == 1
    with pytest.raises(NotAllowed):
        await svc.nudge(MEMBER, mid)


async def test_minutes_close_and_the_missing_minutes_reminder(tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    mid = (await svc.create(SECRETARY, await draft(tree))).meeting.id
    other = (await svc.create(SECRETARY, await draft(tree, topic="没有记录的会"))).meeting.id
    with pytest.raises(Refused, match="minutes_early"):
        await svc.add_minutes(SECRETARY, mid, "text", "记录")
    clock.set(local(2026, 12, 5, 17, 0))
    with pytest.raises(Refused, match="no_minutes"):
        await svc.close(SECRETARY, mid)
    with pytest.raises(NotAllowed):
        await svc.add_minutes(MEMBER, mid, "text", "记录")
    with pytest.raises(Refused, match="minutes_long"):
        await svc.add_minutes(SECRETARY, mid, "text", "字" * 4001)
    await svc.add_minutes(SECRETARY, mid, "text", "学习了党章。")
    counts = await svc.add_minutes(SECRETARY, mid, "photo", file_id="PHOTO1", text="会场")
    assert counts == {"text": 1, "photo": 1, "document": 0}
    await svc.check_in(MEMBER, mid)
    meeting, stats = await svc.close(SECRETARY, mid)
    assert meeting.status == "held" and stats == {"attended": 1, "leave": 0, "absent": 2}
    with pytest.raises(Refused, match="held"):
        await svc.close(SECRETARY, mid)
    # Two days after the end, the one without minutes reminds the secretary — once.
    clock.set(local(2026, 12, 7, 16, 59))
    assert (await svc.tick(SYSTEM_ACTOR)).minutes_reminders == 0
    clock.set(local(2026, 12, 7, 17, 0))
    assert (await svc.tick(SYSTEM_ACTOR)).minutes_reminders == 1
    assert (await svc.tick(SYSTEM_ACTOR)).minutes_reminders == 0
    rows_ = [r for r in await outbox_rows(tree, SECRETARY) if r["dedup_key"] == f"mt:{other}:mm:{SECRETARY}"]
    assert len(rows_) == 1 and "没有记录的会" in rows_[0]["payload"]["text"]


async def test_reminders_of_a_meeting_that_started_are_never_sent(tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    mid = (await svc.create(SECRETARY, await draft(tree))).meeting.id
    clock.set(local(2026, 12, 5, 15, 1))  # the bot was down across both reminders
    await svc.tick(SYSTEM_ACTOR)
    assert await pending(tree, f"mt:{mid}:r") == {}
    assert await tree.db.fetchval("SELECT COUNT(*) FROM outbox WHERE dedup_key LIKE ? AND status = 'cancelled'",
                                  (f"mt:{mid}:r%",)) == 6


async def test_ics_for_invitees_and_managers_only(tree: Core) -> None:
    svc = svc_of(tree)
    mid = (await svc.create(SECRETARY, await draft(tree))).meeting.id
    name, content = await svc.ics(MEMBER, mid, "zh_CN")
    assert name == "支部党员大会-12月5日.ics" and b"DTSTART:20261205T070000Z" in content
    await svc.ics(TOWN_ORG, mid, "en")
    with pytest.raises(Refused, match="not_invited"):
        await svc.ics(ERLANG_SECRETARY, mid, "zh_CN")


# --- series ----------------------------------------------------------------------------------------

async def test_series_across_holidays_make_up_days_and_the_fallback_year(tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    clock.set(local(2026, 9, 1, 10, 0))
    first = await draft(tree, local(2026, 9, 20, 9, 0), kind="theme_day")
    series_id, created = await svc.create_series(SECRETARY, first, SeriesSpec(rule=Rule("monthday", day=20)))
    assert created == []  # 20 September is 19 days away; it is created 7 days ahead
    kept = await draft(tree, local(2026, 10, 1, 9, 0), kind="monthly", org="longjuzhai")
    await svc.create_series(TOWN_ORG, kept, SeriesSpec(rule=Rule("monthday", day=1), holiday_shift=False))
    shifted = await draft(tree, local(2026, 10, 1, 9, 0), kind="monthly", org="erlang")
    await svc.create_series(ERLANG_SECRETARY, shifted, SeriesSpec(rule=Rule("monthday", day=1), lead_days=3))
    # The job runs every day until March.
    day = local(2026, 9, 1, 9, 0)
    while day < local(2027, 3, 2, 9, 0):
        clock.set(day)
        await svc.tick(SYSTEM_ACTOR)
        await svc.tick(SYSTEM_ACTOR)  # twice: idempotent
        day += timedelta(days=1)
    found = [(r["org_id"], r["occurrence"], r["starts_at"][:10], r["created_at"][:10]) for r in await rows(
        tree, "SELECT org_id, occurrence, starts_at, created_at FROM meetings ORDER BY org_id, starts_at")]
    by_org = {o: [(f[1], f[2]) for f in found if f[0] == o] for o in {f[0] for f in found}}
    assert by_org[await org_id(tree, "sanyi")] == [
        ("2026-09-20", "2026-09-20"),  # a Sunday worked in exchange (调休): a working day, kept
        ("2026-10-20", "2026-10-20"),
        ("2026-11-20", "2026-11-20"),
        ("2026-12-20", "2026-12-21"),  # a Sunday: Monday
        ("2027-01-20", "2027-01-20"),
        ("2027-02-20", "2027-02-22"),  # 2027 falls back to Monday–Friday: a Saturday moves to Monday
    ]
    assert by_org[await org_id(tree, "longjuzhai")][:2] == [("2026-10-01", "2026-10-01"), ("2026-11-01", "2026-11-01")]
    assert by_org[await org_id(tree, "erlang")][:3] == [
        ("2026-10-01", "2026-10-08"),  # National Day: the next working day
        ("2026-11-01", "2026-11-02"), ("2026-12-01", "2026-12-01")]
    created_on = {f[1]: f[3] for f in found if f[0] == await org_id(tree, "erlang")}
    assert created_on["2026-10-01"] == "2026-10-05"  # 3 days ahead of 8 October (the UTC day of 09:00 local)
    # Stopping the series: no more meetings.
    await svc.stop_series(SECRETARY, series_id)
    with pytest.raises(Refused, match="series_stopped"):
        await svc.stop_series(SECRETARY, series_id)
    clock.set(local(2027, 3, 20, 9, 0))
    await svc.tick(SYSTEM_ACTOR)
    assert not [f for f in await rows(tree, "SELECT occurrence FROM meetings WHERE series_id = ?", (series_id,))
                if f["occurrence"] == "2027-03-20"]


async def test_series_of_the_nth_weekday_and_its_rights(tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    first = await draft(tree, local(2026, 12, 5, 9, 0), kind="theme_day")  # the first Saturday
    with pytest.raises(NotAllowed):
        await svc.create_series(MEMBER, first, SeriesSpec(rule=Rule("weekday", nth=1, weekday=5)))
    series_id, created = await svc.create_series(
        SECRETARY, first, SeriesSpec(rule=Rule("weekday", nth=1, weekday=5), holiday_shift=False))
    assert created == []  # 8 days ahead; created 7 days ahead
    assert await svc.next_occurrence(SECRETARY, series_id) == date(2026, 12, 5)
    with pytest.raises(NotAllowed):
        await svc.next_occurrence(MEMBER, series_id)
    clock.set(local(2026, 11, 28, 0, 0))
    assert (await svc.tick(SYSTEM_ACTOR)).created == 1
    clock.set(local(2026, 12, 27, 9, 0))
    await svc.tick(SYSTEM_ACTOR)
    starts = [r["starts_at"] for r in await rows(tree, "SELECT starts_at FROM meetings ORDER BY id")]
    assert starts == [to_db(local(2026, 12, 5, 9, 0)), to_db(local(2027, 1, 2, 9, 0))]
    with pytest.raises(NotAllowed):
        await svc.stop_series(ERLANG_SECRETARY, series_id)


# --- quotas ----------------------------------------------------------------------------------------

async def quota_texts(core: Core, chat_id: int, boundary: str = "") -> list[str]:
    """The quota messages to `chat_id` (those of one boundary, e.g. '2027-01-01', when given)."""
    return [r["payload"]["text"] for r in await outbox_rows(core, chat_id)
            if r["dedup_key"].startswith(f"mq:{boundary}")]


async def test_quota_reminders_before_and_at_the_end_of_a_quarter(tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    # In use since January, so the quarter and the year count; November was checked on time.
    await in_use_from(tree, local(2026, 1, 5, 9, 0))
    clock.set(local(2026, 12, 1, 9, 0))
    assert (await svc.tick(SYSTEM_ACTOR)).quota_messages > 0
    # 三义 holds its general meeting; a lecture by its secretary; 二郎 holds nothing.
    mid = (await svc.create(SECRETARY, await draft(tree, local(2026, 12, 10, 9, 0)))).meeting.id
    lecture = await draft(tree, local(2026, 12, 11, 9, 0), kind="party_lecture", lecturer="王建国",
                          lecturer_id=SECRETARY)
    lecture_id = (await svc.create(SECRETARY, lecture)).meeting.id
    # A theme day the township sends down to every branch counts for each of them.
    theme = (await svc.create(TOWN_ORG, await draft(tree, local(2026, 12, 12, 9, 0), kind="theme_day",
                                                    org="longjuzhai", below=True))).meeting.id
    clock.set(local(2026, 12, 12, 12, 0))
    for meeting_id, person in ((mid, SECRETARY), (lecture_id, SECRETARY), (theme, TOWN_ORG)):
        await svc.add_minutes(person, meeting_id, "text", "记录")
        await svc.close(person, meeting_id)
    # 二郎 has its committee meeting planned for the 28th: mentioned, and not yet counted as held.
    await svc.create(ERLANG_SECRETARY, await draft(tree, local(2026, 12, 28, 9, 0), kind="committee_meeting",
                                                   org="erlang"))
    clock.set(local(2026, 12, 25, 8, 59))
    assert (await svc.tick(SYSTEM_ACTOR)).quota_messages == 0
    clock.set(local(2026, 12, 25, 9, 0))
    assert (await svc.tick(SYSTEM_ACTOR)).quota_messages == 2
    assert (await svc.tick(SYSTEM_ACTOR)).quota_messages == 0
    [sanyi] = await quota_texts(tree, SECRETARY, "2027-01-01")
    assert sanyi.split("\n") == [
        "📋 会议任务提醒（三义村党支部）：",
        "• 本月还没有召开支部委员会会议",
        "• 本年度还没有召开组织生活会",
        "请在12月31日（周四）前召开，会后记得发会议记录并归档。"]
    [erlang] = await quota_texts(tree, ERLANG_SECRETARY, "2027-01-01")
    assert "• 本季度还没有召开支部党员大会" in erlang and "• 本年度书记还没有讲过党课" in erlang
    assert "主题党日" not in erlang
    assert "• 本月还没有召开支部委员会会议（已安排在 12月28日）" in erlang
    # A branch set up after the warning is not blamed for this quarter.
    clock.set(local(2026, 12, 26, 9, 0))
    await load(tree, "orgs:\n  - {code: xinjian, name: 新建村党支部, kind: village_branch}\n"
                     "people:\n  - {telegram_id: 1011, name: 新书记, roles: [secretary@xinjian]}\n")
    clock.set(local(2027, 1, 1, 9, 0))
    assert (await svc.tick(SYSTEM_ACTOR)).quota_messages == 1
    [digest] = await quota_texts(tree, TOWN_ORG, "2027-01-01")
    assert digest.startswith("📋 截至2026年12月31日（周四），下面这些组织有规定的会议没有召开：")
    assert "• 三义村党支部：支部委员会会议（2026年12月）和组织生活会（2026年）" in digest
    assert "• 二郎村党支部：" in digest and "支部党员大会（2026年第4季度）" in digest
    assert "新建村党支部" not in digest
    assert await quota_texts(tree, COUNTY_ORG, "2027-01-01") == []  # the nearest organizers above are told
    clock.set(local(2027, 1, 3, 9, 0))
    assert (await svc.tick(SYSTEM_ACTOR)).quota_messages == 0


async def test_a_period_the_ledger_calls_not_applicable_is_not_a_missed_quota(tree: Core, clock: SettableClock) -> None:
    """The quota warnings and the ledger agree: a branch that came to the bot on 20 November had
    less than half of the fourth quarter and of the year here (不适用 in the ledger), so only its
    December meetings are missed; one that came on 10 November had more than half of the quarter."""
    svc = svc_of(tree)
    await in_use_from(tree, local(2026, 11, 20, 9, 0))
    sanyi = await org_id(tree, "sanyi")
    assert await svc.in_use_since(sanyi) == date(2026, 11, 20)
    clock.set(local(2027, 1, 1, 9, 0))
    assert (await svc.tick(SYSTEM_ACTOR)).quota_messages == 1
    [digest] = await quota_texts(tree, TOWN_ORG)
    assert "• 三义村党支部：支部委员会会议（2026年12月）" in digest
    assert "第4季度" not in digest and "（2026年）" not in digest
    ledger = await svc.ledger_data(SECRETARY, sanyi, date(2026, 10, 1), date(2026, 12, 31))
    assert ledger.since == date(2026, 11, 20)


async def test_quota_settings_are_inherited_and_only_organizers_change_them(tree: Core) -> None:
    svc = svc_of(tree)
    sanyi, township = await org_id(tree, "sanyi"), await org_id(tree, "longjuzhai")
    with pytest.raises(NotAllowed):
        await svc.cycle_quota(SECRETARY, sanyi, "theme_day")
    with pytest.raises(NotAllowed):  # the township's own organizer cannot change what the county requires
        await svc.cycle_quota(TOWN_ORG, township, "theme_day")
    assert await svc.cycle_quota(COUNTY_ORG, township, "theme_day") == "month"  # not required at a township
    assert await svc.cycle_quota(COUNTY_ORG, township, "theme_day") == "quarter"
    quotas = await svc.effective_quotas()
    assert quotas[sanyi]["theme_day"] == "quarter"  # inherited by the branches below
    assert quotas[township]["theme_day"] == "quarter"
    assert await svc.cycle_quota(COUNTY_ORG, sanyi, "theme_day") == "year"  # the branch's own wins
    assert (await svc.effective_quotas())[sanyi]["theme_day"] == "year"
    await svc.reset_settings(TOWN_ORG, sanyi)
    assert (await svc.effective_quotas())[sanyi]["theme_day"] == "quarter"


async def test_reminder_settings(tree: Core) -> None:
    svc = svc_of(tree)
    sanyi, township = await org_id(tree, "sanyi"), await org_id(tree, "longjuzhai")
    assert await svc.reminder_offsets(sanyi) == [1440, 120]
    assert await svc.toggle_offset(TOWN_ORG, township, 120) == [1440]
    assert await svc.reminder_offsets(sanyi) == [1440]  # inherited
    assert await svc.toggle_offset(SECRETARY, sanyi, 30) == [1440, 30]  # the branch's own
    with pytest.raises(NotAllowed):
        await svc.toggle_offset(MEMBER, sanyi, 60)
    for minutes in (4320, 240):
        await svc.toggle_offset(SECRETARY, sanyi, minutes)
    with pytest.raises(Refused, match="too_many_offsets"):
        await svc.toggle_offset(SECRETARY, sanyi, 60)
    mid = (await svc.create(SECRETARY, await draft(tree))).meeting.id
    assert {k.rsplit(":", 1)[1] for k in await pending(tree, f"mt:{mid}:r1:{MEMBER}:")} == {
        "4320", "1440", "240", "30"}
    await svc.reset_settings(SECRETARY, sanyi)
    assert await svc.reminder_offsets(sanyi) == [1440]


async def test_the_committee_is_kept_by_the_secretary(tree: Core) -> None:
    svc = svc_of(tree)
    sanyi = await org_id(tree, "sanyi")
    assert await svc.cycle_committee(SECRETARY, sanyi, VILLAGE_ORG) == "member"
    assert await svc.cycle_committee(SECRETARY, sanyi, VILLAGE_ORG) == "deputy"
    assert [(p, t) for p, _, t in await svc.committee(SECRETARY, sanyi)] == [
        (SECRETARY, "secretary"), (VILLAGE_ORG, "deputy"), (MEMBER, None)]
    assert await svc.cycle_committee(SECRETARY, sanyi, VILLAGE_ORG) is None
    with pytest.raises(Refused, match="secretary_always"):
        await svc.cycle_committee(SECRETARY, sanyi, SECRETARY)
    with pytest.raises(Refused, match="not_member"):
        await svc.cycle_committee(SECRETARY, sanyi, RESIDENT)
    with pytest.raises(NotAllowed):
        await svc.cycle_committee(MEMBER, sanyi, MEMBER)


# --- the ledger ------------------------------------------------------------------------------------

async def test_the_ledger_workbook(tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    sanyi = await org_id(tree, "sanyi")
    held = (await svc.create(SECRETARY, await draft(tree, topic="学习全会精神"))).meeting.id
    await svc.answer(VILLAGE_ORG, held, "leave", "外出务工")
    called_off = (await svc.create(SECRETARY, await draft(tree, local(2026, 12, 6, 9, 0), topic="取消的会"))).meeting.id
    await svc.cancel(SECRETARY, called_off, "天气原因")
    (await svc.create(TOWN_ORG, await draft(tree, local(2026, 12, 5, 9, 0), kind="monthly",
                                              org="longjuzhai", below=True, topic="月例会")))
    clock.set(local(2026, 12, 5, 15, 10))
    await svc.check_in(MEMBER, held)
    await svc.add_minutes(SECRETARY, held, "text", "一、学习全会精神。\n二、讨论冬季防火。")
    await svc.add_minutes(SECRETARY, held, "document", file_id="DOC", file_name="签到表.pdf")
    await svc.close(SECRETARY, held)
    with pytest.raises(NotAllowed):
        await svc.ledger(MEMBER, sanyi, date(2026, 10, 1), date(2026, 12, 31), "zh_CN")
    name, content = await svc.ledger(TOWN_ORG, sanyi, date(2026, 10, 1), date(2026, 12, 31), "zh_CN")
    assert name == "台账-三义村党支部-2026年第4季度.xlsx"
    book = load_workbook(io.BytesIO(content))
    assert book.sheetnames[:3] == ["汇总", "支部党员大会", "支部委员会会议"] and "月例会" in book.sheetnames
    sheet = book["支部党员大会"]
    header = [c.value for c in sheet[1]]
    assert header == ["日期", "时间", "组织", "会议类型", "议题", "地点", "应到人数", "实到人数", "请假人数",
                      "缺席人数", "到会人员", "请假人员（原因）", "缺席人员", "会议记录摘要", "状态"]
    body = [dict(zip(header, [c.value for c in row], strict=True)) for row in sheet.iter_rows(min_row=2)]
    assert [(r["议题"], r["状态"]) for r in body] == [("学习全会精神", "已召开"), ("取消的会", "已取消（天气原因）")]
    first = body[0]
    assert first["日期"] == "2026年12月5日（周六）" and first["时间"] == "下午3:00—5:00"
    assert (first["应到人数"], first["实到人数"], first["请假人数"], first["缺席人数"]) == (3, 1, 1, 1)
    assert first["到会人员"] == "党员张三" and first["请假人员（原因）"] == "三义组织委员（外出务工）"
    assert first["缺席人员"] == "王建国"
    assert first["会议记录摘要"] == "一、学习全会精神。 二、讨论冬季防火。 （照片0张，文件1个）"
    assert body[1]["缺席人员"] in (None, "") and body[1]["实到人数"] in (None, "")  # called off: nobody was absent
    monthly = [[c.value for c in row] for row in book["月例会"].iter_rows(min_row=2)]
    assert monthly[0][2] == "龙驹寨街道党工委" and monthly[0][6] == 3  # only 三义's own people
    summary = [[c.value for c in row] for row in book["汇总"].iter_rows(min_row=5)]
    # The tree came to the bot on 2026-11-27: October, November and the fourth quarter are not
    # counted (held is held all the same); December is.
    assert ["2026年第4季度", "支部党员大会", "—", 1, "已完成"] in summary
    assert ["2026年10月", "支部委员会会议", "—", 0, "不适用"] in summary
    assert ["2026年12月", "支部委员会会议", 1, 0, "进行中"] in summary
    assert book["汇总"]["A1"].value == "三义村党支部 会议台账（2026年10月1日至12月31日）"
    with pytest.raises(Refused, match="bad_range"):
        await svc.ledger(SECRETARY, sanyi, date(2026, 12, 31), date(2026, 10, 1), "zh_CN")


def test_the_ledger_command_line(tmp_path: Path) -> None:
    import asyncio

    async def prepare() -> None:
        core = make_core(tmp_path / "bot.sqlite3", SettableClock(datetime.now(UTC)))
        await core.open()
        await load(core, org_file((SECRETARY,), only={"sanyi"}))
        await core.close()

    asyncio.run(prepare())
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATABASE=env_database(tmp_path / "bot.sqlite3"), PYTHONPATH=str(ROOT))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", "ledger", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)

    result = run("sanyi", "--from", "2026-01-01", "--to", "2026-12-31", "--out", "out/台账.xlsx")
    assert result.returncode == 0, result.stderr
    assert "ledger of sanyi" in result.stdout
    book = load_workbook(tmp_path / "out" / "台账.xlsx")
    assert book.sheetnames[0] == "汇总"
    assert run("nowhere", "--from", "2026-01-01", "--to", "2026-12-31", "--out", "x.xlsx").returncode == 1
    bad = run("sanyi", "--from", "2026-13-01", "--to", "2026-12-31", "--out", "x.xlsx")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    assert START  # (the service tests' clock start, for reference)


async def test_a_failure_half_way_through_a_big_meeting_leaves_nothing(tree: Core) -> None:
    """The outbox rows of a county-wide meeting are written in batches; when one write fails (here
    the disk "fills up" at the 300th row), every batch has finished before the rollback, and nothing
    of the meeting remains."""
    await load(tree, org_file((), extra_people=[Person(5000 + i, f"党员{i}", ("member@xijie",)) for i in range(400)]))
    async with tree.db.transaction() as tx:
        if ON_PG:  # the same trigger in PostgreSQL's words
            await tx.execute("CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                             " IF (SELECT COUNT(*) FROM outbox) >= 300 THEN"
                             " RAISE EXCEPTION 'database or disk is full'; END IF; RETURN NEW; END $$")
            await tx.execute("CREATE TRIGGER disk_full BEFORE INSERT ON outbox FOR EACH ROW"
                             " EXECUTE FUNCTION disk_full()")
        else:
            await tx.execute("CREATE TRIGGER disk_full BEFORE INSERT ON outbox"
                             " WHEN (SELECT COUNT(*) FROM outbox) >= 300"
                             " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    before = await state(tree)
    with pytest.raises(Exception, match="disk is full"):
        await svc_of(tree).create(ADMIN, await draft(tree, org="xijie"))
    assert await state(tree) == before
    async with tree.db.transaction() as tx:
        await tx.execute("DROP TRIGGER disk_full ON outbox" if ON_PG else "DROP TRIGGER disk_full")
    created = await svc_of(tree).create(ADMIN, await draft(tree, org="xijie"))
    assert created.notified == 400
    assert await tree.db.fetchval("SELECT COUNT(*) FROM outbox WHERE dedup_key LIKE 'mt:%'") == 1200


# --- trust (issue 7) ----------------------------------------------------------------------------------

async def test_only_organizers_strictly_above_change_an_orgs_quotas(tree: Core) -> None:
    """三义's own organizer may not switch off what the county required; resetting the village's
    settings from inside keeps the quotas set from above (only the reminder times go back)."""
    svc = svc_of(tree)
    sanyi = await org_id(tree, "sanyi")
    assert await svc.cycle_quota(COUNTY_ORG, sanyi, "theme_day") == "quarter"
    for insider in (VILLAGE_ORG, SECRETARY, MEMBER, ERLANG_SECRETARY, OTHER_TOWN_ORG):
        with pytest.raises(NotAllowed):
            await svc.cycle_quota(insider, sanyi, "theme_day")
    assert not (await svc.settings_of(VILLAGE_ORG, sanyi)).may_set_quotas
    assert (await svc.settings_of(TOWN_ORG, sanyi)).may_set_quotas
    await svc.toggle_offset(VILLAGE_ORG, sanyi, 30)
    await svc.reset_settings(VILLAGE_ORG, sanyi)
    assert (await svc.effective_quotas())[sanyi]["theme_day"] == "quarter"  # still what the county set
    assert await svc.reminder_offsets(sanyi) == [1440, 120]
    assert await svc.cycle_quota(ADMIN, sanyi, "theme_day") == "year"
    await svc.reset_settings(TOWN_ORG, sanyi)
    assert (await svc.effective_quotas())[sanyi]["theme_day"] == "month"


async def change_rows(core: Core, meeting_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in await core.db.fetchall(
        "SELECT recipient, dedup_key FROM outbox WHERE purpose = 'meeting/change' AND subject_id = ?"
        " ORDER BY id", (meeting_id,))]


async def test_edits_tell_members_only_for_time_place_and_at_most_three_rounds_a_day(
        tree: Core, clock: SettableClock) -> None:
    svc = svc_of(tree)
    mid = (await svc.create(SECRETARY, await draft(tree))).meeting.id
    await deliver(tree, f"mt:{mid}:n:")
    # A new agenda applies, but nobody is told (nor is a round used).
    edited = await svc.edit(SECRETARY, mid, topic="学习新党章")
    assert (edited.told, edited.quiet, edited.meeting.topic) == (0, False, "学习新党章")
    assert await change_rows(tree, mid) == []
    # Three moves the same day are told; the fourth and fifth apply quietly.
    for i, place in enumerate(["党员活动室", "村委会", "文化广场", "村小学", "祠堂"]):
        edited = await svc.edit(SECRETARY, mid, place=place)
        assert edited.meeting.place == place and edited.quiet == (i >= 3)
        assert edited.told == (0 if i >= 3 else 2)
    assert len(await change_rows(tree, mid)) == 3 * 2
    assert {r["recipient"] for r in await change_rows(tree, mid)} == {MEMBER, VILLAGE_ORG}
    # Reminders still follow the latest place; a new day allows new rounds.
    reminder = await tree.db.fetchval("SELECT payload FROM outbox WHERE purpose = 'meeting/reminder' AND"
                                      " subject_id = ? AND status = 'pending' LIMIT 1", (mid,))
    assert "祠堂" in reminder
    clock.set(START + timedelta(days=1))
    edited = await svc.edit(SECRETARY, mid, starts_at=local(2026, 12, 5, 16, 0))
    assert edited.told == 2 and not edited.quiet


async def test_the_ledger_takes_at_most_five_years_and_writes_text_as_text(tree: Core) -> None:
    svc = svc_of(tree)
    sanyi = await org_id(tree, "sanyi")
    with pytest.raises(Refused, match="range_too_long"):
        await svc.ledger(SECRETARY, sanyi, date(2021, 1, 1), date(2026, 1, 1), "zh_CN")
    await svc.ledger(SECRETARY, sanyi, date(2021, 1, 1), date(2025, 12, 31), "zh_CN")  # five years is fine
    hostile = ['=HYPERLINK("http://evil.example","点我")', "+1+1", "-2+3", "@SUM(A1)"]
    async with tree.db.transaction() as tx:
        await tx.execute("UPDATE people SET name = ? WHERE telegram_id = ?", (hostile[0], MEMBER))
    mid = (await svc.create(SECRETARY, await draft(tree, place=hostile[1], topic=hostile[2],
                                                   lecturer=hostile[3]))).meeting.id
    await svc.answer(MEMBER, mid, "leave", "=1+1")
    _, content = await svc.ledger(SECRETARY, sanyi, date(2026, 12, 1), date(2026, 12, 31), "zh_CN")
    book = load_workbook(io.BytesIO(content))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = {c.value for c in cells}
    assert {hostile[1], hostile[2], hostile[3]} <= texts
    assert any(isinstance(v, str) and v.startswith("=HYPERLINK") for v in texts)
