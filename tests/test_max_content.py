"""Issue 7, "nothing is silently lost": every kind of notice the bot queues (other than the tickets',
see test_*_tickets_trust.py) filled with maximal content — every free-text input at the largest
size the bot accepts, written in emoji so that Telegram's UTF-16 count is double the characters,
names as long as the org file takes, hundreds of members and dozens of orgs — is queued (the outbox
refuses what Telegram would refuse, OverLimit, inside the service's transaction), delivered by the
fake Bot API without a 400, and carries the full content or a way to the rest.

The service tests use 300 members and 40 branches; the end-to-end test sends the same notices
through the real Application to a few people (the fake server paces messages as Telegram does)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from service_fixtures import (
    clock_fixture,  # noqa: F401  (the `clock` fixture)
    core_fixture,  # noqa: F401  (the `core` fixture)
    load,
    org_id,
    outbox_rows,
)

from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock, to_db
from bot.core import Core
from bot.i18n import load_catalog
from bot.limits import MAX_CAPTION, MAX_TEXT, check_payload, clip, telegram_length
from bot.services import orgfile
from bot.services.meeting_model import (
    LECTURER_MAX,
    MINUTES_TEXT_MAX,
    PLACE_MAX,
    REASON_MAX,
    TOPIC_MAX,
    Purpose,
    Refused,
)
from bot.services.meetings import Draft
from bot.services.orgfile import MAX_NAME, MAX_PERSON_NAME
from conftest import BotRunner

if TYPE_CHECKING:
    from bench.fakebotapi import FakeBotApi

SHANGHAI = ZoneInfo("Asia/Shanghai")
BRANCHES = 40
MEMBERS = 300
COUNTY_ORGANIZER, TOWN_ORGANIZER = 1, 2
SECRETARY = 100  # secretary of b00, the branch with the many members
FIRST_MEMBER = 10_000
JOINER = 77_777


def maxed(limit: int, seed: str = "") -> str:
    """`limit` characters, most of them emoji (two UTF-16 units each), with commas and spaces where
    a clean cut can fall; `seed` first, so that different fields are told apart."""
    unit = "🚩🌾🏠👍🎉🌟🔥💪🌻🎈🚩🌾🏠👍🎉🌟🔥💪🌻 "
    return (seed + unit * (limit // len(unit) + 1))[:limit]


def message(seed: str) -> str:
    """The longest message a person can send: 4096 UTF-16 units."""
    return clip(maxed(MAX_TEXT, seed), MAX_TEXT, marker="")


def org_name(n: int) -> str:
    return maxed(MAX_NAME, f"{n:02d}号村")


def person_name(n: int) -> str:
    return maxed(MAX_PERSON_NAME, f"人{n}")


def big_tree(members: int = MEMBERS, branches: int = BRANCHES, member_ids: list[int] | None = None) -> str:
    """A county, a township and `branches` village branches with the longest names the org file
    takes; branch b00 has `members` members, every branch a secretary."""
    ids = member_ids or [FIRST_MEMBER + n for n in range(members)]
    lines = ["orgs:", "  - code: county", f"    name: '{maxed(MAX_NAME, '县')}'", "    kind: county",
             "    children:", "      - code: town", f"        name: '{maxed(MAX_NAME, '镇')}'",
             "        kind: township", "        children:"]
    lines += [f"          - {{code: b{n:02d}, name: '{org_name(n)}', kind: village_branch}}" for n in range(branches)]
    lines += ["people:",
              f"  - {{telegram_id: {COUNTY_ORGANIZER}, name: '{person_name(1)}', roles: [organizer@county]}}",
              f"  - {{telegram_id: {TOWN_ORGANIZER}, name: '{person_name(2)}', roles: [organizer@town]}}",
              f"  - {{telegram_id: {SECRETARY}, name: '{person_name(3)}', roles: [secretary@b00, member@b00]}}"]
    lines += [f"  - {{telegram_id: {SECRETARY + n}, name: '{person_name(SECRETARY + n)}', roles: [secretary@b{n:02d}]}}"
              for n in range(1, branches)]
    lines += [f"  - {{telegram_id: {pid}, name: '{person_name(pid)}', roles: [member@b00]}}" for pid in ids]
    return "\n".join(lines) + "\n"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


TOPIC, PLACE, LECTURER = maxed(TOPIC_MAX, "议题"), maxed(PLACE_MAX, "地点"), maxed(LECTURER_MAX, "讲课人")
NEW_TOPIC, NEW_PLACE = maxed(TOPIC_MAX, "新议题"), maxed(PLACE_MAX, "新地点")
REASON, CANCEL_REASON = maxed(REASON_MAX, "改期原因"), maxed(REASON_MAX, "取消原因")
MINUTES = maxed(MINUTES_TEXT_MAX, "会议记录")


async def lecture(core: Core, start: datetime, topic: str = TOPIC) -> int:
    draft = Draft(kind="party_lecture", org_id=await org_id(core, "b00"), starts_at=start,
                  ends_at=start + timedelta(hours=2), place=PLACE, topic=topic, lecturer=LECTURER)
    return (await core.meetings.create(SECRETARY, draft)).meeting.id


async def mark_sent(core: Core) -> None:
    """What the delivery worker does with due rows (the service tests have no worker)."""
    now = to_db(core.clock.now())
    async with core.db.transaction() as tx:
        await tx.execute("UPDATE outbox SET status = 'sent', sent_at = ? WHERE status = 'pending'"
                         " AND not_before <= ?", (now, now))


Checkpoint = Callable[[], Awaitable[None]]


async def every_notice(core: Core, clock: SettableClock, checkpoint: Checkpoint, joiner: int = JOINER
                       ) -> dict[str, int]:
    """Drive every notice other than the tickets' with maximal content; returns meeting ids by name.
    Each call below would raise OverLimit if a queued message were over Telegram's limits.
    `checkpoint` runs after each step of the clock: what is due by then is delivered."""
    meetings = core.meetings
    clock.set(local(2026, 12, 1, 10, 0))
    moved = await lecture(core, local(2026, 12, 10, 15, 0))  # notice and reminders
    called_off = await lecture(core, local(2026, 12, 11, 15, 0), topic=maxed(TOPIC_MAX, "取消的会"))
    unminuted = await lecture(core, local(2026, 12, 3, 15, 0), topic=maxed(TOPIC_MAX, "没记录的会"))
    await checkpoint()
    await meetings.answer(FIRST_MEMBER, moved, "leave", maxed(REASON_MAX, "请假"))
    await meetings.nudge(SECRETARY, moved)
    await meetings.edit(SECRETARY, moved, starts_at=local(2026, 12, 10, 16, 0), place=NEW_PLACE, topic=NEW_TOPIC,
                        reason=REASON)
    await meetings.cancel(SECRETARY, called_off, CANCEL_REASON)
    await checkpoint()
    # The meeting without minutes: two days after it ended, its secretary is reminded.
    clock.set(local(2026, 12, 6, 9, 0))
    await meetings.tick(SYSTEM_ACTOR)
    await checkpoint()
    await meetings.add_minutes(SECRETARY, unminuted, "text", MINUTES)
    # Both reminders of the moved meeting (1 day and 2 hours before its new start) are due.
    clock.set(local(2026, 12, 10, 14, 5))
    await checkpoint()
    # The quota checks: a week before the quarter's end (to every secretary) and after it (a digest
    # of all the branches to the township's organizer).
    clock.set(local(2026, 12, 25, 9, 0))
    await meetings.tick(SYSTEM_ACTOR)
    await checkpoint()
    clock.set(local(2027, 1, 1, 9, 0))
    await meetings.tick(SYSTEM_ACTOR)
    # A join request from a person with Telegram's longest name, its decision, and an appointment.
    await core.people.touch(joiner, maxed(64, "名") + " " + maxed(64, "姓"), "a" * 32, "zh-hans")
    invite = await core.invites.create("b00", "member", created_by=SECRETARY)
    await core.invites.join(joiner, invite.payload)
    request = await core.db.fetchval("SELECT id FROM join_requests WHERE person_id = ?", (joiner,))
    await core.invites.decide(SECRETARY, request, True)
    await core.orgs.appoint(TOWN_ORGANIZER, joiner, await org_id(core, "b00"), "secretary")
    await checkpoint()
    return {"moved": moved, "called_off": called_off, "unminuted": unminuted}


ALL_PURPOSES = {Purpose.NOTICE, Purpose.REMINDER, Purpose.CHANGE, Purpose.CANCEL, Purpose.NUDGE, Purpose.MINUTES,
                Purpose.QUOTA_DUE, Purpose.QUOTA_MISSED, "join/request", "join/decision", "role/change"}


async def test_every_notice_with_maximal_content_is_queued_within_telegrams_limits(
        core: Core, clock: SettableClock) -> None:
    await load(core, big_tree())
    ids = await every_notice(core, clock, lambda: mark_sent(core))
    rows = await outbox_rows(core)
    assert {r["purpose"] for r in rows} >= ALL_PURPOSES
    for row in rows:
        check_payload(row["method"], row["payload"])  # what enqueue checked, checked again
    by_purpose: dict[str, list[str]] = {}
    for row in rows:
        by_purpose.setdefault(row["purpose"], []).append(row["payload"]["text"])
    # Hundreds of members each got their own notice and reminders.
    assert len(by_purpose[Purpose.NOTICE]) >= MEMBERS * 3
    assert len(by_purpose[Purpose.REMINDER]) >= MEMBERS
    # The full content is in the notices, or (when it could not fit) the rest is on the meeting's card.
    for text in by_purpose[Purpose.NOTICE] + by_purpose[Purpose.REMINDER] + by_purpose[Purpose.NUDGE]:
        assert any(topic in text for topic in (TOPIC, NEW_TOPIC)) or "没记录的会" in text or "取消的会" in text
    for text in by_purpose[Purpose.CHANGE]:
        assert NEW_PLACE in text and PLACE in text and REASON in text
    for text in by_purpose[Purpose.CANCEL]:
        assert CANCEL_REASON in text and maxed(TOPIC_MAX, "取消的会") in text
    assert any(maxed(TOPIC_MAX, "没记录的会") in text for text in by_purpose[Purpose.MINUTES])
    assert len(by_purpose[Purpose.QUOTA_DUE]) >= BRANCHES
    # The digest is split into several messages that together name every late branch.
    digest = "\n".join(by_purpose[Purpose.QUOTA_MISSED])
    assert len(by_purpose[Purpose.QUOTA_MISSED]) > 1
    assert all(org_name(n) in digest for n in range(BRANCHES))
    view = await core.meetings.view(SECRETARY, ids["moved"])
    assert view.meeting.topic == NEW_TOPIC and view.meeting.place == NEW_PLACE


async def test_the_org_file_refuses_names_over_its_limits() -> None:
    """Names are bounded where they come in, so every text that shows them stays bounded."""
    ok = ("orgs:\n  - {code: a, name: '%s', kind: county}\n"
          "people:\n  - {telegram_id: 5, name: '%s', roles: [organizer@a]}\n")
    orgfile.parse(ok % (maxed(MAX_NAME), maxed(MAX_PERSON_NAME)))
    with pytest.raises(orgfile.OrgFileError, match=f"name: longer than {MAX_NAME} characters"):
        orgfile.parse(ok % (maxed(MAX_NAME + 1), "张三"))
    with pytest.raises(orgfile.OrgFileError, match=f"at most {MAX_PERSON_NAME} characters"):
        orgfile.parse(ok % ("县委", maxed(MAX_PERSON_NAME + 1)))


async def test_meeting_inputs_over_their_limits_are_refused(core: Core) -> None:
    await load(core, big_tree(members=2, branches=1))
    start = local(2026, 12, 10, 15, 0)
    for field, limit in (("topic", TOPIC_MAX), ("place", PLACE_MAX), ("lecturer", LECTURER_MAX)):
        values: dict[str, Any] = {"place": PLACE, "topic": TOPIC, "lecturer": LECTURER} | {field: "字" * (limit + 1)}
        draft = Draft(kind="party_lecture", org_id=await org_id(core, "b00"), starts_at=start,
                      ends_at=start + timedelta(hours=2), **values)
        with pytest.raises(Refused, match=f"{field}_long"):
            await core.meetings.create(SECRETARY, draft)


def test_document_captions_with_the_longest_org_name_fit() -> None:
    """The poster's and the ledger's captions carry the org's name: at its longest they still fit."""
    for lang in ("zh_CN", "en"):
        catalog = load_catalog(lang)
        poster = catalog["poster.caption"].format(org=maxed(MAX_NAME), month="2026年12月")
        ledger = catalog["meeting.ledger.caption"].format(org=maxed(MAX_NAME),
                                                          period="Sep 30, 2026 to Dec 31, 2030")
        calendar = catalog["meeting.calendar.caption"]
        assert max(map(telegram_length, (poster, ledger, calendar))) <= MAX_CAPTION


async def test_the_calendar_file_of_a_maximal_meeting_keeps_every_word(core: Core, clock: SettableClock) -> None:
    """The .ics (a document: its caption is a fixed line) folds the longest topic, place and
    lecturer into lines of at most 75 octets, and reads back whole."""
    from bot.services.meeting_ics import unfold

    await load(core, big_tree(members=2, branches=1))
    clock.set(local(2026, 12, 1, 10, 0))
    mid = await lecture(core, local(2026, 12, 10, 15, 0))
    name, content = await core.meetings.ics(FIRST_MEMBER, mid, "zh_CN")
    assert name == "党课-12月10日.ics"
    assert all(len(line) <= 75 for line in content.split(b"\r\n"))
    lines = unfold(content)
    summary = next(line for line in lines if line.startswith("SUMMARY:"))
    location = next(line for line in lines if line.startswith("LOCATION:"))
    description = next(line for line in lines if line.startswith("DESCRIPTION:"))
    plain = {"\\,": ",", "\\;": ";", "\\n": "\n"}
    for line, value in ((summary, TOPIC), (location, PLACE), (description, LECTURER), (description, org_name(0))):
        for escaped, raw in plain.items():
            line = line.replace(escaped, raw)
        assert value in line


# --- end to end ------------------------------------------------------------------------------------

def refusals(fake: FakeBotApi) -> dict[int, int]:
    """Errors the fake Bot API answered, but 429 (the pace under load: retried, nothing lost)."""
    return {code: n for code, n in fake.stats.errors.items() if code != 429}


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    import asyncio
    import time
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_every_notice_with_maximal_content_is_delivered_by_the_fake_bot_api(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    members = [FIRST_MEMBER + n for n in range(4)]
    people = [COUNTY_ORGANIZER, TOWN_ORGANIZER, *[SECRETARY + n for n in range(4)], *members, JOINER]
    for pid in (*people, 1001, 1002, 1003):  # and the people of conftest's sample tree
        fake.user(pid, first_name=maxed(64, "名"), last_name=maxed(64, "姓"))
    await bot.load_orgs(big_tree(branches=4, member_ids=members))

    async def settled() -> bool:
        return not await bot.core.db.fetchval(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND not_before <= ?", (to_db(clock.now()),))

    async def delivered() -> None:
        await eventually(settled, "every due message delivered", timeout=60)

    await every_notice(bot.core, clock, delivered)
    rows = await bot.core.db.fetchall("SELECT purpose, status, COUNT(*) FROM outbox GROUP BY purpose, status")
    assert {r[1] for r in rows} <= {"sent", "cancelled"}, rows
    assert {r[0] for r in rows if r[1] == "sent"} >= ALL_PURPOSES
    assert not refusals(fake), fake.stats
    assert all(telegram_length(m.raw_text) <= MAX_TEXT for pid in people for m in fake.history(pid))
    to_member = "\n".join(m.text for m in fake.history(members[1]))
    assert NEW_PLACE in to_member and REASON in to_member and CANCEL_REASON in to_member


async def test_the_roster_of_three_hundred_long_names_shows_every_list_and_its_count(
        core: Core, clock: SettableClock) -> None:
    """With 300 names of the longest kind and long leave reasons, the roster (a reply, clipped to one
    message) still shows every list with its count, and how many names it left out; the mark sheet
    pages through all of them."""
    from handlers.meetings.management import MARK_PAGE, roster_text

    await load(core, big_tree(branches=1))
    clock.set(local(2026, 12, 1, 10, 0))
    mid = await lecture(core, local(2026, 12, 10, 15, 0))
    for n in range(200):
        pid = FIRST_MEMBER + n
        if n % 2:
            await core.meetings.answer(pid, mid, "attend")
        else:
            await core.meetings.answer(pid, mid, "leave", maxed(REASON_MAX, f"请假{n}"))
    roster = await core.meetings.roster(SECRETARY, mid)
    for lang in ("zh_CN", "en"):
        text = roster_text(core, core.meetings, lang, roster)
        assert telegram_length(text) <= MAX_TEXT
        lines = text.split("\n")
        assert TOPIC in text
        for count in (100, 100, MEMBERS + 1 - 200, 0):
            assert any(f"({count})" in line or f"（{count}）" in line for line in lines[2:]), (lang, count)
        # Every list but the empty one names some people and counts the rest.
        assert len(re.findall("另有" if lang == "zh_CN" else r" and \d+ more", text)) == 3, text
    assert len(roster.attendees) == MEMBERS + 1 and MARK_PAGE * 31 >= len(roster.attendees)


async def test_a_wall_page_of_maximal_posts_shows_all_five_and_the_next_page_the_rest(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    """Six published problems with the longest texts and answers: /wall shows five on its first
    page, each clipped with the marker (the whole post is on the web wall and in the group), and
    "older" shows the sixth — none is cut off the end of the message."""
    from bot.services.tickets import Item

    user = fake.user(2001, first_name=maxed(64, "名"), last_name=maxed(64, "姓"))
    await bot.core.people.touch(2001, user.first_name, None, "zh-hans")
    invite = await bot.core.invites.create("sanyi", "resident", SYSTEM_ACTOR)
    await bot.core.invites.join(2001, invite.payload)
    fake.user(1001)
    tickets = bot.core.tickets
    for n in range(1, 7):
        await tickets.submit(2001, [Item("text", message(f"问题{n}号"))], "infrastructure", True, False)
        await tickets.answer(1001, n, [Item("text", message(f"答复{n}号"))])
        clock.advance(timedelta(hours=1))  # a resident may send only so many an hour
    user.send("/wall")
    first = await user.wait_message(contains="【回音壁】#6", timeout=15)
    assert telegram_length(first.raw_text) <= MAX_TEXT
    assert all(f"【回音壁】#{n} " in first.text for n in range(2, 7)), first.text
    assert "……" in first.text
    user.press(first, "较早 ➡️")

    async def turned() -> bool:  # the page is edited in place
        return any("【回音壁】#1 " in m.text for m in fake.history(2001))

    await eventually(turned, "the older page shown", timeout=15)
    [second] = [m for m in fake.history(2001) if "【回音壁】#1 " in m.text]
    assert "【回音壁】#2 " not in second.text and telegram_length(second.raw_text) <= MAX_TEXT
    assert not refusals(fake), fake.stats


async def test_the_org_tree_of_many_long_names_comes_in_several_messages_that_telegram_accepts(
        bot: BotRunner, fake: FakeBotApi) -> None:
    """/org for an organizer above forty branches with the longest names: several messages, each
    within Telegram's limit (counted in UTF-16), that together name every branch."""
    await bot.load_orgs(big_tree(members=2))
    organizer = fake.user(COUNTY_ORGANIZER, first_name=maxed(64, "名"))
    organizer.send("/org")

    async def whole() -> bool:  # one message a second to a chat, as Telegram allows
        return org_name(BRANCHES - 1) in "\n".join(m.text for m in fake.history(COUNTY_ORGANIZER))

    await eventually(whole, "the whole tree", timeout=30)
    replies = fake.history(COUNTY_ORGANIZER)
    assert len(replies) > 1 and not refusals(fake), ([telegram_length(m.raw_text) for m in replies], fake.stats)
    assert all(telegram_length(m.raw_text) <= MAX_TEXT for m in replies)
    tree = "\n".join(m.text for m in replies)
    assert all(org_name(n) in tree for n in range(BRANCHES))


async def test_scheduling_in_chat_with_the_longest_inputs_and_hundreds_of_people_typed_at_once(
        bot: BotRunner, fake: FakeBotApi) -> None:
    """A secretary types the longest place and topic, then one full message of ids and unknown
    names to add: every screen is within Telegram's limit (the names found and not found are
    clipped with a marker; the count and the roster carry the rest), and the meeting is created."""
    from test_e2e_meetings import edited

    from bot.callbacks import MEETING_FLOW, FlowAction

    fake.auto_chats = True  # the 300 members' notices go to chats the fake creates on the way
    await bot.load_orgs(big_tree(branches=1))
    secretary = fake.user(SECRETARY, first_name=maxed(64, "名"), last_name=maxed(64, "姓"))
    secretary.send("/newmeeting")
    step = await fake.wait_message(SECRETARY, contains="请选择会议类型")
    secretary.press(step, "其他会议")
    step = await edited(fake, step, "请选择开会日期")
    secretary.press(step, MEETING_FLOW(FlowAction.DAY, 20261204))
    step = await edited(fake, step, "几点开会")
    secretary.press(step, "上午10:00")
    step = await edited(fake, step, "开多长时间")
    secretary.press(step, "2小时")
    await edited(fake, step, "请输入开会地点")
    secretary.send(PLACE)
    await fake.wait_message(SECRETARY, contains="请输入会议议题")
    secretary.send(TOPIC)
    confirm = await fake.wait_message(SECRETARY, contains="应到")
    assert TOPIC in confirm.text and PLACE in confirm.text
    secretary.press(confirm, "➕ 添加参会人员")
    await edited(fake, confirm, "请输入要添加的人")
    typed = " ".join([*(str(FIRST_MEMBER + n) for n in range(MEMBERS)), *(f"无名氏{n}" for n in range(400))])
    secretary.send(clip(typed, MAX_TEXT, marker=""))
    confirm = await fake.wait_message(SECRETARY, contains="没找到", timeout=15)
    assert "已添加：" in confirm.text and "…" in confirm.text
    assert telegram_length(confirm.raw_text) <= MAX_TEXT
    secretary.press(confirm, "✅ 确认，发通知")
    await edited(fake, confirm, "正在通知")
    assert not refusals(fake), fake.stats
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM meeting_attendees") == MEMBERS + 1
