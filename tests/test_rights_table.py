"""Issue 7, "Rights, checked where the rule lives": one table of every action × every kind of actor,
with the expected answer, run against the services on a real SQLite file.

Every cell is its own test (`accept-sib` …) and runs on a fresh copy of one prepared database, so
an allowed action never changes the next cell's outcome. A refused cell must leave every row of
every table as it was; an allowed cell that writes must really change something (so a stale
fixture answering "already handled" cannot pass for a right).

The prepared world (service_fixtures.TREE plus a few people):
  danfeng (county)                  organizer 1
    longjuzhai (township)           organizer 2            ← "org^"  (organiser above)
      sanyi (village branch)        secretary 3 (and 13), member 4, residents 5 and 21 (the author),
                                    organizer 7 ("org@"), 11 a former secretary (now member)
      erlang (village branch)       secretary 8 ("sib", secretary of a sibling), resident 23
    chengguan (township)            organizer 6            ← "org~"  (organiser beside)
  admin 9 (settings.admins), stranger 4242 (never seen)
Tickets at sanyi: T_NEW (new; transferred to person 11, who then lost the secretary role),
T_INFO (more information asked), T_ANSWERED (answered), T_BLOCKED (another resident's; its author
blocked: block B); at erlang T_SIBLING. Meetings of sanyi: UPCOMING (in four days), CURRENT (started
30 minutes ago, minutes recorded), a monthly SERIES; of erlang, one in four days. A join link for
member@sanyi (issued by the secretary) and a pending join request R through it.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from orgtree import Person, org_file
from service_fixtures import (
    ADMIN,
    ERLANG_SECRETARY,
    MEMBER,
    OTHER_TOWN_ORG,
    RESIDENT,
    SECRETARY,
    START,
    STRANGER,
    TOWN_ORG,
    VILLAGE_ORG,
    load,
    make_core,
)

from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock
from bot.core import Core
from bot.services.broadcasts import Refused as BroadcastRefused
from bot.services.meeting_model import Refused as MeetingRefused
from bot.services.meeting_time import Rule
from bot.services.meetings import Draft, SeriesSpec
from bot.services.orgs import NotAllowed, NotFound
from bot.services.tickets import Done, Item
from bot.services.tickets import Refused as TicketRefused

AUTHOR = 21     # resident@sanyi, the author of the tickets T_NEW, T_INFO and T_ANSWERED
NEIGHBOUR = 22  # resident@sanyi, the author of T_BLOCKED
FORMER = 11     # was secretary@sanyi and T_NEW's assignee; now only member@sanyi
APPLICANT = 12  # asked to join sanyi as a member (join request R)
ERLANG_RESIDENT = 23  # resident@erlang, the author of T_SIBLING
DEPUTY = 13     # a second secretary@sanyi: a transfer target the menu offers

# Added to the shared tree's people.
EXTRA = (
    Person(AUTHOR, "钱多多", ("resident@sanyi",)),
    Person(NEIGHBOUR, "孙小妹", ("resident@sanyi",)),
    Person(FORMER, "前任书记", ("secretary@sanyi", "member@sanyi")),
    Person(ERLANG_RESIDENT, "冯二郎", ("resident@erlang",)),
    Person(DEPUTY, "刘副书记", ("secretary@sanyi",)),
)

# --- the table ------------------------------------------------------------------------------------
# Columns: the kinds of actor, in this order.
ACTORS: dict[str, int] = {
    "author": AUTHOR,             # the resident who wrote the ticket (for the resident's own actions)
    "res": RESIDENT,              # another resident of the same village
    "mem": MEMBER,                # party member of sanyi
    "sec": SECRETARY,             # secretary of sanyi (the org)
    "sib": ERLANG_SECRETARY,      # secretary of erlang, a sibling org
    "org@": VILLAGE_ORG,          # organiser at sanyi
    "org^": TOWN_ORG,             # organiser above (the township)
    "org~": OTHER_TOWN_ORG,       # organiser beside (the sibling township)
    "admin": ADMIN,               # settings.admins
    "exA": FORMER,                # T_NEW's former assignee, no longer secretary (still a member)
    "str": STRANGER,              # never joined
}

# Answers:
#   ok   allowed (and, for an action that writes, something changed)
#   no   NotAllowed
#   hid  a listing or lookup that leaves the thing out (nothing is refused, nothing is shown)
#   ni   the meeting's refusal "you are not invited" (meeting.error.not_invited)
#   org  the ticket's refusal "you belong to no org" (ticket.refused.no_org): only residents and
#        members write problems
#   bad  ValueError: even an admin cannot route a category to someone without a lead role
#
# Rows: action → one answer per actor, in the order of ACTORS. "w" marks an action that writes.
TABLE = """
#                                   author  res  mem  sec  sib  org@  org^  org~  admin  exA  str
# --- tickets (T_NEW unless said) ----------------------------------------------------------------
  ticket.get                        ok      no   no   ok   no   ok    ok    no    ok     no   no
  ticket.view                       ok      no   no   ok   no   ok    ok    no    ok     no   no
  ticket.items                      ok      no   no   ok   no   ok    ok    no    ok     no   no
  ticket.handled_by                 ok      no   no   ok   no   ok    ok    no    ok     no   no
  ticket.events                     no      no   no   ok   no   ok    ok    no    ok     no   no
  ticket.check_can_act              no      no   no   ok   no   ok    ok    no    ok     no   no
  ticket.transfer_targets           no      no   no   ok   no   ok    ok    no    ok     no   no
  ticket.preview_answer             no      no   no   ok   no   ok    ok    no    ok     no   no
  ticket.inbox                      hid     hid  hid  ok   hid  ok    ok    hid   ok     hid  hid
  ticket.mine                       ok      hid  hid  hid  hid  hid   hid   hid   hid    hid  hid
  ticket.check_own                  ok      no   no   no   no   no    no    no    no     no   no
w ticket.accept                     no      no   no   ok   no   ok    ok    no    ok     no   no
w ticket.answer                     no      no   no   ok   no   ok    ok    no    ok     no   no
w ticket.resolve                    no      no   no   ok   no   ok    ok    no    ok     no   no
w ticket.ask_info                   no      no   no   ok   no   ok    ok    no    ok     no   no
  ticket.view_sibling               no      no   no   no   ok   no    ok    no    ok     no   no
w ticket.accept_sibling             no      no   no   no   ok   no    ok    no    ok     no   no
w ticket.transfer_offered           no      no   no   ok   no   ok    ok    no    ok     no   no
w ticket.transfer_offered_person    no      no   no   ok   no   ok    ok    no    ok     no   no
w ticket.transfer_forged_org        no      no   no   no   no   no    no    no    no     no   no
w ticket.transfer_forged_person     no      no   no   no   no   no    no    no    no     no   no
w ticket.decline                    no      no   no   ok   no   ok    ok    no    ok     no   no
w ticket.block                      no      no   no   ok   no   ok    ok    no    ok     no   no
  ticket.blocks                     hid     hid  hid  ok   hid  ok    ok    hid   ok     hid  hid
w ticket.unblock                    no      no   no   ok   no   ok    ok    no    ok     no   no
w ticket.bind_wall                  no      no   no   ok   no   ok    ok    no    ok     no   no
w ticket.configure                  no      no   no   no   no   no    no    no    ok     no   no
w ticket.assign_category            no      no   no   no   no   no    no    no    ok     no   no
w ticket.assign_category_member     no      no   no   no   no   no    no    no    bad    no   no
w ticket.submit                     ok      ok   ok   org  org  org   org   org   org    ok   org
w ticket.withdraw                   ok      no   no   no   no   no    no    no    no     no   no
w ticket.add_info                   ok      no   no   no   no   no    no    no    no     no   no
w ticket.rate                       ok      no   no   no   no   no    no    no    no     no   no
w ticket.ask_rate_reason            ok      no   no   no   no   no    no    no    no     no   no
w ticket.tick                       no      no   no   no   no   no    no    no    no     no   no
# --- meetings of sanyi ----------------------------------------------------------------------------
w meeting.create                    no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.create_below              no      no   no   no   no   ok    ok    no    ok     no   no
w meeting.create_outsider           no      no   no   no   no   no    no    no    ok     no   no
w meeting.create_series             no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.preview_count             no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.recent_places             no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.resolve_people            hid     hid  hid  ok   hid  ok    ok    hid   ok     hid  hid
w meeting.edit                      no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.edit_sibling              no      no   no   no   ok   no    ok    no    ok     no   no
w meeting.cancel                    no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.cancellable               no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.add_people                no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.add_outsider              no      no   no   no   no   no    no    no    ok     no   no
  meeting.answerable                ni      ni   ok   ok   ni   ok    ni    ni    ni     ok   ni
  meeting.manageable                no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.view                      ni      ni   ok   ok   ni   ok    ok    ni    ok     ok   ni
  meeting.ics                       ni      ni   ok   ok   ni   ok    ok    ni    ok     ok   ni
w meeting.answer_attend             ni      ni   ok   ok   ni   ok    ni    ni    ni     ok   ni
w meeting.answer_leave              ni      ni   ok   ok   ni   ok    ni    ni    ni     ok   ni
w meeting.ask_leave_reason          ni      ni   ok   ok   ni   ok    ni    ni    ni     ok   ni
w meeting.check_in                  ni      ni   ok   ok   ni   ok    ni    ni    ni     ok   ni
  meeting.checkin_candidates        hid     hid  ok   ok   hid  ok    hid   hid   hid    ok   hid
  meeting.upcoming                  hid     hid  ok   ok   hid  ok    hid   hid   hid    ok   hid
  meeting.managed                   hid     hid  hid  ok   hid  ok    ok    hid   ok     hid  hid
  meeting.schedulable_orgs          hid     hid  hid  ok   hid  ok    ok    hid   ok     hid  hid
  meeting.attendees                 no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.roster                    no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.mark_sheet                no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.begin_minutes             no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.mark                      no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.add_minutes               no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.close                     no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.settings_of               no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.toggle_offset             no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.cycle_quota               no      no   no   no   no   no    ok    no    ok     no   no
w meeting.reset_settings            no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.committee                 no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.cycle_committee           no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.ledger_data               no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.ledger_org                no      no   no   ok   no   ok    ok    no    ok     no   no
  meeting.next_occurrence           no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.stop_series               no      no   no   ok   no   ok    ok    no    ok     no   no
w meeting.tick                      no      no   no   no   no   no    no    no    no     no   no
w meeting.expire_reminders          no      no   no   no   no   no    no    no    no     no   no
# --- orgs and invites (sanyi) ---------------------------------------------------------------------
w org.appoint                       no      no   no   no   no   ok    ok    no    ok     no   no
w org.remove                        no      no   no   no   no   ok    ok    no    ok     no   no
  org.people_in                     no      no   no   ok   no   ok    ok    no    ok     no   no
  org.audit_trail                   hid     hid  hid  hid  hid  ok    ok    hid   ok     hid  hid
  org.manageable_orgs               hid     hid  hid  hid  hid  ok    ok    hid   ok     hid  hid
  org.tree_view                     no      no   no   ok   hid  ok    ok    hid   ok     no   no
w invite.create_member              no      no   no   ok   no   ok    ok    no    ok     no   no
w invite.create_organizer           no      no   no   no   no   ok    ok    no    ok     no   no
w invite.revoke                     no      no   no   ok   no   ok    ok    no    ok     no   no
  invite.list                       hid     hid  hid  ok   hid  ok    ok    hid   ok     hid  hid
w invite.approve                    no      no   no   ok   no   ok    ok    no    ok     no   no
w invite.reject                     no      no   no   ok   no   ok    ok    no    ok     no   no
# --- broadcasts (sanyi; the secretary's draft and sent broadcast) ---------------------------------
  broadcast.reach                   hid     hid  hid  ok   hid  ok    ok    hid   ok     hid  hid
w broadcast.start                   no      no   no   ok   no   ok    ok    no    ok     no   no
w broadcast.toggle_role             no      no   no   ok   no   no    no    no    no     no   no
w broadcast.set_content             no      no   no   ok   no   no    no    no    no     no   no
w broadcast.set_time                no      no   no   ok   no   no    no    no    no     no   no
  broadcast.preview                 no      no   no   ok   no   no    no    no    no     no   no
w broadcast.confirm                 no      no   no   ok   no   no    no    no    no     no   no
w broadcast.drop                    no      no   no   ok   no   no    no    no    no     no   no
w broadcast.cancel                  no      no   no   ok   no   no    no    no    ok     no   no
  broadcast.acks                    no      no   no   ok   no   no    no    no    ok     no   no
w broadcast.remind                  no      no   no   ok   no   no    no    no    no     no   no
w broadcast.ack                     no      no   ok   no   no   no    no    no    no     ok   no
  broadcast.history                 hid     hid  hid  ok   hid  hid   hid   hid   hid    hid  hid
w broadcast.tick                    no      no   no   no   no   no    no    no    no     no   no
"""
# Cells worth a word:
# - ticket.*: T_NEW's handling org is sanyi. Its sanyi secretary, organisers at or above sanyi and
#   admins act on it; the former assignee lost every right with the secretary role, although the
#   ticket still names them (an assignee keeps rights only while they lead at or above the org).
#   The author reads their ticket (get, view, items, "handled by") but not the internal history.
# - ticket.*_sibling, meeting.edit_sibling: the mirror image, a ticket and a meeting of erlang: its
#   own secretary and the township's organiser; sanyi's secretary and organiser have no say there.
# - ticket.transfer_forged_*: a target the transfer menu never offers (a township's village
#   elsewhere; a plain member) is refused to everyone, admins included.
# - ticket.blocks/unblock/bind_wall: the org's secretaries and organisers at or above it.
# - ticket.configure/assign_category: an admin's command-line setting (and the system's).
# - ticket.submit: writing a problem needs a home org (resident or member somewhere); the org's
#   secretary and organisers hold only lead roles here, so they have none.
# - meeting.create_below: only organisers send a meeting down the tree, not the secretary.
# - meeting.*_outsider: extra invitees come only from the actor's own subtree; organiser 6 of the
#   other township is in nobody's reach here but the admin's.
# - meeting.view/ics: invitees (members, secretary and organiser of sanyi, so also the former
#   secretary, now a member) and those who may manage it; others are told they are not invited.
#   answer/check-in are the invitees' own acts: the township organiser manages the meeting but
#   was not invited to it, so they have nothing to answer.
# - meeting.cycle_quota: only organisers strictly above the org (or admins): sanyi's own
#   organiser may not switch off what the township requires.
# - org.audit_trail: who appointed whom is for those who appoint there (organisers at or above),
#   not for the secretary whose branch it is.
# - org.tree_view: shows the orgs where one leads; "hid" where that is elsewhere, "no" where the
#   person leads nowhere.
# - invite.create_organizer: a secretary may not raise anyone above themselves.
# - broadcast.*: organisers at or above an org broadcast to it and below, its secretary to it
#   alone. A draft is its sender's own (not even an admin edits it); a broadcast under way may
#   be stopped by its sender or an admin; the one reminder is the sender's. 收到 is for its
#   recipients (sanyi's members, so also the former secretary).
# - invite.revoke/list: a link is a key into the org: only those who could have issued it (and
#   the system, for the command line) see or revoke it.


@dataclass(frozen=True)
class Row:
    action: str
    writes: bool
    expected: dict[str, str]


def parse_table(text: str) -> list[Row]:
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = line.split()
        writes = words[0] == "w"
        if writes:
            words = words[1:]
        action, answers = words[0], words[1:]
        assert len(answers) == len(ACTORS), f"{action}: {len(answers)} answers for {len(ACTORS)} actors"
        assert set(answers) <= {"ok", "no", "hid", "ni", "org", "bad"}, action
        rows.append(Row(action, writes, dict(zip(ACTORS, answers, strict=True))))
    return rows


ROWS = parse_table(TABLE)


# --- the prepared world ---------------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    """Ids in the prepared database."""

    sanyi: int
    erlang: int
    xijie: int
    t_new: int
    t_info: int
    t_answered: int
    t_blocked: int
    t_sibling: int
    block: int
    request: int
    invite: str
    upcoming: int
    sibling_meeting: int
    current: int
    series: int
    bc_queued: int = 0  # a broadcast of sanyi's secretary to sanyi's members, sent, with 收到
    bc_draft: int = 0   # a draft of the same secretary, with its content


NOW = START + timedelta(days=1, minutes=30)  # CURRENT started 30 minutes ago


def text(value: str) -> list[Item]:
    return [Item("text", value)]


def draft(world: World, days: int = 3, **extra: Any) -> Draft:
    start = NOW + timedelta(days=days)
    values: dict[str, Any] = {"place": "村委会", "topic": "学习党章"} | extra
    return Draft(kind="general_meeting", org_id=world.sanyi, starts_at=start,
                 ends_at=start + timedelta(hours=2), **values)


async def prepare(path: Path) -> World:
    clock = SettableClock(START)
    core = make_core(path, clock)
    await core.open()
    try:
        await load(core, org_file(extra_people=EXTRA))
        ids = {o.code: o.id for _, o in await core.orgs.subtree((await core.orgs.roots())[0].id)}
        sanyi = ids["sanyi"]
        t = core.tickets
        t_new = (await t.submit(AUTHOR, text("村口路灯坏了一个月了"), "infrastructure", True, False)).id
        t_info = (await t.submit(AUTHOR, text("垃圾没人收"), "sanitation", True, False)).id
        t_answered = (await t.submit(AUTHOR, text("低保怎么申请"), "welfare", True, False)).id
        t_blocked = (await t.submit(NEIGHBOUR, text("骂人的话"), "other", False, True)).id
        t_sibling = (await t.submit(ERLANG_RESIDENT, text("二郎庙的井干了"), "welfare", True, False)).id
        await t.transfer(SECRETARY, t_new, "他管这片", to_person=FORMER)
        await t.ask_info(SECRETARY, t_info, "在哪个组？")
        await t.answer(SECRETARY, t_answered, text("到村委会填表即可"))
        await t.block_submitter(SECRETARY, t_blocked)
        block = (await t.blocks(SECRETARY))[0].id
        async with core.db.transaction() as tx:
            await core.orgs.revoke(tx, person_id=FORMER, org_id=sanyi, role="secretary", actor_id=ADMIN,
                                   source="test")
        invite = await core.invites.create("sanyi", "member", created_by=SECRETARY)
        await core.invites.join(APPLICANT, invite.payload)
        request = await core.db.fetchval("SELECT id FROM join_requests WHERE person_id = ?", (APPLICANT,))
        m = core.meetings
        current = (await m.create(SECRETARY, Draft(kind="general_meeting", org_id=sanyi, starts_at=NOW - timedelta(
            minutes=30), ends_at=NOW + timedelta(hours=2), place="村委会", topic="学习党章"))).meeting.id
        upcoming = (await m.create(SECRETARY, Draft(kind="general_meeting", org_id=sanyi, starts_at=NOW + timedelta(
            days=4), ends_at=NOW + timedelta(days=4, hours=2), place="村委会", topic="主题党日"))).meeting.id
        sibling_meeting = (await m.create(ERLANG_SECRETARY, Draft(
            kind="general_meeting", org_id=ids["erlang"], starts_at=NOW + timedelta(days=4),
            ends_at=NOW + timedelta(days=4, hours=2), place="二郎庙村委会", topic="主题党日"))).meeting.id
        series_start = NOW + timedelta(days=20)
        series, _ = await m.create_series(
            SECRETARY, Draft(kind="theme_day", org_id=sanyi, starts_at=series_start,
                             ends_at=series_start + timedelta(hours=2), place="村委会", topic="主题党日"),
            SeriesSpec(Rule("monthday", day=series_start.day), lead_days=7))
        await m.toggle_offset(SECRETARY, sanyi, 30)  # sanyi's own settings (for reset_settings)
        clock.set(NOW)
        await m.add_minutes(SECRETARY, current, "text", "学习了党章第一章")
        bc_queued, bc_draft = await _broadcasts(core, sanyi)
        world = World(sanyi=sanyi, erlang=ids["erlang"], xijie=ids["xijie"], t_new=t_new, t_info=t_info,
                      t_answered=t_answered, t_blocked=t_blocked, t_sibling=t_sibling, block=block,
                      request=request, invite=invite.payload, upcoming=upcoming,
                      sibling_meeting=sibling_meeting, current=current, series=series,
                      bc_queued=bc_queued, bc_draft=bc_draft)
    finally:
        await core.close()
    return world


async def _broadcasts(core: Core, sanyi: int) -> tuple[int, int]:
    """A broadcast sent to sanyi's members (its rows marked sent), and a later draft."""
    b = core.broadcasts
    queued = (await b.start(SECRETARY, sanyi)).id
    await b.set_content(SECRETARY, queued, "text", "明天打扫村道")
    await b.toggle_ack(SECRETARY, queued)
    await b.confirm(SECRETARY, queued)
    async with core.db.transaction() as tx:
        await tx.execute("UPDATE outbox SET status = 'sent' WHERE subject_id = ? AND purpose = 'broadcast/message'",
                         (queued,))
    draft = (await b.start(SECRETARY, sanyi)).id
    await b.set_content(SECRETARY, draft, "text", "下周开会")
    return queued, draft


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    """The prepared database, built once per module in its own thread and event loop (the tests'
    loops are per test)."""
    path = tmp_path_factory.mktemp("rights") / "world.sqlite"
    out: list[World] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            out.append(asyncio.run(prepare(path)))
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    worker = threading.Thread(target=build)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return path, out[0]


# --- the actions ----------------------------------------------------------------------------------
class Hidden(Exception):
    """A listing or lookup left the thing out."""


def shown(found: bool) -> None:
    if not found:
        raise Hidden


Action = Callable[[Core, World, int], Awaitable[Any]]


async def _transfer_targets(c: Core, w: World, a: int) -> None:
    await c.tickets.transfer_targets(a, w.t_new)


async def _handled_by(c: Core, w: World, a: int) -> None:
    """A read whose answer is always "already handled" (so not a sign of a stale fixture)."""
    await c.tickets.handled_by(a, w.t_new)


async def _inbox(c: Core, w: World, a: int) -> None:
    shown(any(line.ticket.id == w.t_new for line in (await c.tickets.inbox(a)).lines))


async def _mine(c: Core, w: World, a: int) -> None:
    shown(any(ticket.id == w.t_new for ticket in await c.tickets.mine(a)))


async def _blocks(c: Core, w: World, a: int) -> None:
    shown(any(b.id == w.block for b in await c.tickets.blocks(a)))


async def _check_own(c: Core, w: World, a: int) -> None:
    from bot.services.tickets import Status

    await c.tickets.check_own(a, w.t_new, Status.NEW)


async def _resolve_people(c: Core, w: World, a: int) -> None:
    found, _ = await c.meetings.resolve_people(a, ["党员张三"])
    shown(MEMBER in found)


async def _tree_view(c: Core, w: World, a: int) -> None:
    shown(any(line.org.id == w.sanyi for line in await c.orgs.tree_view(a)))


async def _audit_trail(c: Core, w: World, a: int) -> None:
    """The fixture's revocation of the former secretary's role at sanyi."""
    shown(any(r["person_id"] == FORMER and r["action"] == "revoke" for r in await c.orgs.audit_trail(a, w.sanyi)))


async def _people_in(c: Core, w: World, a: int) -> None:
    assert any(pid == MEMBER for pid, _, _ in await c.orgs.people_in(a, w.sanyi))


async def _bc_reach(c: Core, w: World, a: int) -> None:
    shown(await c.broadcasts.reach(a, w.sanyi) is not None)


async def _bc_history(c: Core, a: int, broadcast_id: int) -> None:
    shown(any(b.id == broadcast_id for b, _ in await c.broadcasts.history(a)))


ACTIONS: dict[str, Action] = {
    # tickets
    "ticket.get": lambda c, w, a: c.tickets.get(a, w.t_new),
    "ticket.view": lambda c, w, a: c.tickets.view(a, w.t_new, "zh_CN"),
    "ticket.items": lambda c, w, a: c.tickets.items(a, w.t_new),
    "ticket.handled_by": _handled_by,
    "ticket.events": lambda c, w, a: c.tickets.events(a, w.t_new),
    "ticket.check_can_act": lambda c, w, a: c.tickets.check_can_act(a, w.t_new),
    "ticket.transfer_targets": _transfer_targets,
    "ticket.preview_answer": lambda c, w, a: c.tickets.preview_answer(a, w.t_new, text("已修好")),
    "ticket.inbox": _inbox,
    "ticket.mine": _mine,
    "ticket.check_own": _check_own,
    "ticket.accept": lambda c, w, a: c.tickets.accept(a, w.t_new),
    "ticket.answer": lambda c, w, a: c.tickets.answer(a, w.t_new, text("下周修")),
    "ticket.resolve": lambda c, w, a: c.tickets.answer(a, w.t_new, text("已修好"), final=True),
    "ticket.ask_info": lambda c, w, a: c.tickets.ask_info(a, w.t_new, "哪个路口？"),
    "ticket.view_sibling": lambda c, w, a: c.tickets.view(a, w.t_sibling, "zh_CN"),
    "ticket.accept_sibling": lambda c, w, a: c.tickets.accept(a, w.t_sibling),
    "ticket.transfer_offered": lambda c, w, a: c.tickets.transfer(a, w.t_new, "归二郎庙管", to_org=w.erlang),
    "ticket.transfer_offered_person": lambda c, w, a: c.tickets.transfer(a, w.t_new, "你熟悉", to_person=DEPUTY),
    "ticket.transfer_forged_org": lambda c, w, a: c.tickets.transfer(a, w.t_new, "伪造", to_org=w.xijie),
    "ticket.transfer_forged_person": lambda c, w, a: c.tickets.transfer(a, w.t_new, "伪造", to_person=MEMBER),
    "ticket.decline": lambda c, w, a: c.tickets.decline(a, w.t_new, "不归我们管"),
    "ticket.block": lambda c, w, a: c.tickets.block_submitter(a, w.t_new),
    "ticket.blocks": _blocks,
    "ticket.unblock": lambda c, w, a: c.tickets.unblock(a, w.block),
    "ticket.bind_wall": lambda c, w, a: c.tickets.bind_wall(a, w.sanyi, -100123, "三义回音壁"),
    "ticket.configure": lambda c, w, a: c.tickets.configure(a, "sanyi", accept_days=3),
    "ticket.assign_category": lambda c, w, a: c.tickets.assign_category(a, "sanyi", "sanitation", SECRETARY),
    "ticket.assign_category_member": lambda c, w, a: c.tickets.assign_category(a, "sanyi", "sanitation", MEMBER),
    "ticket.submit": lambda c, w, a: c.tickets.submit(a, text("桥栏杆松了"), "infrastructure", True, False),
    "ticket.withdraw": lambda c, w, a: c.tickets.withdraw(a, w.t_new),
    "ticket.add_info": lambda c, w, a: c.tickets.add_info(a, w.t_info, text("三组")),
    "ticket.rate": lambda c, w, a: c.tickets.rate(a, w.t_answered, "good"),
    "ticket.ask_rate_reason": lambda c, w, a: c.tickets.ask_rate_reason(a, w.t_answered),
    "ticket.tick": lambda c, w, a: c.tickets.tick(a),
    # meetings
    "meeting.create": lambda c, w, a: c.meetings.create(a, draft(w)),
    "meeting.create_below": lambda c, w, a: c.meetings.create(a, draft(w, include_below=True)),
    "meeting.create_outsider": lambda c, w, a: c.meetings.create(a, draft(w, extra_people=[OTHER_TOWN_ORG])),
    "meeting.create_series": lambda c, w, a: c.meetings.create_series(
        a, draft(w, days=2), SeriesSpec(Rule("monthday", day=(NOW + timedelta(days=2)).day), lead_days=7)),
    "meeting.preview_count": lambda c, w, a: c.meetings.preview_count(a, draft(w)),
    "meeting.recent_places": lambda c, w, a: c.meetings.recent_places(a, w.sanyi),
    "meeting.resolve_people": _resolve_people,
    "meeting.edit": lambda c, w, a: c.meetings.edit(a, w.upcoming, place="党员活动室"),
    "meeting.edit_sibling": lambda c, w, a: c.meetings.edit(a, w.sibling_meeting, place="党员活动室"),
    "meeting.cancel": lambda c, w, a: c.meetings.cancel(a, w.upcoming, "下大雨"),
    "meeting.cancellable": lambda c, w, a: c.meetings.cancellable(a, w.upcoming),
    "meeting.add_people": lambda c, w, a: c.meetings.add_people(a, w.upcoming, [RESIDENT]),
    "meeting.add_outsider": lambda c, w, a: c.meetings.add_people(a, w.upcoming, [OTHER_TOWN_ORG]),
    "meeting.answerable": lambda c, w, a: c.meetings.answerable(a, w.upcoming),
    "meeting.manageable": lambda c, w, a: c.meetings.manageable(a, w.upcoming, before_start=True),
    "meeting.view": lambda c, w, a: c.meetings.view(a, w.upcoming),
    "meeting.ics": lambda c, w, a: c.meetings.ics(a, w.upcoming, "zh_CN"),
    "meeting.answer_attend": lambda c, w, a: c.meetings.answer(a, w.upcoming, "attend"),
    "meeting.answer_leave": lambda c, w, a: c.meetings.answer(a, w.upcoming, "leave", "外出务工"),
    "meeting.ask_leave_reason": lambda c, w, a: c.meetings.ask_leave_reason(a, w.upcoming),
    "meeting.check_in": lambda c, w, a: c.meetings.check_in(a, w.current),
    "meeting.checkin_candidates": lambda c, w, a: _listed(c.meetings.checkin_candidates(a), w.current),
    "meeting.upcoming": lambda c, w, a: _listed_pairs(c.meetings.upcoming(a), w.upcoming),
    "meeting.managed": lambda c, w, a: _listed(c.meetings.managed(a), w.upcoming),
    "meeting.schedulable_orgs": lambda c, w, a: _org_listed(c.meetings.schedulable_orgs(a), w.sanyi),
    "meeting.attendees": lambda c, w, a: c.meetings.attendees(a, w.current),
    "meeting.roster": lambda c, w, a: c.meetings.roster(a, w.current),
    "meeting.mark_sheet": lambda c, w, a: c.meetings.mark_sheet(a, w.current),
    "meeting.begin_minutes": lambda c, w, a: c.meetings.begin_minutes(a, w.current),
    "meeting.mark": lambda c, w, a: c.meetings.mark(a, w.current, MEMBER),
    "meeting.add_minutes": lambda c, w, a: c.meetings.add_minutes(a, w.current, "text", "讨论了修路"),
    "meeting.close": lambda c, w, a: c.meetings.close(a, w.current),
    "meeting.settings_of": lambda c, w, a: c.meetings.settings_of(a, w.sanyi),
    "meeting.toggle_offset": lambda c, w, a: c.meetings.toggle_offset(a, w.sanyi, 30),
    "meeting.cycle_quota": lambda c, w, a: c.meetings.cycle_quota(a, w.sanyi, "theme_day"),
    "meeting.reset_settings": lambda c, w, a: c.meetings.reset_settings(a, w.sanyi),
    "meeting.committee": lambda c, w, a: c.meetings.committee(a, w.sanyi),
    "meeting.cycle_committee": lambda c, w, a: c.meetings.cycle_committee(a, w.sanyi, MEMBER),
    "meeting.ledger_data": lambda c, w, a: c.meetings.ledger_data(a, w.sanyi, date(2026, 1, 1), date(2026, 12, 31)),
    "meeting.ledger_org": lambda c, w, a: c.meetings.ledger_org(a, w.sanyi),
    "meeting.next_occurrence": lambda c, w, a: c.meetings.next_occurrence(a, w.series),
    "meeting.stop_series": lambda c, w, a: c.meetings.stop_series(a, w.series),
    "meeting.tick": lambda c, w, a: c.meetings.tick(a),
    "meeting.expire_reminders": lambda c, w, a: c.meetings.expire_reminders(a),
    # orgs and invites
    "org.appoint": lambda c, w, a: c.orgs.appoint(a, MEMBER, w.sanyi, "secretary"),
    "org.remove": lambda c, w, a: c.orgs.appoint(a, SECRETARY, w.sanyi, "secretary", remove=True),
    "org.people_in": _people_in,
    "org.audit_trail": _audit_trail,
    "org.manageable_orgs": lambda c, w, a: _org_listed(c.orgs.manageable_orgs(a), w.sanyi),
    "org.tree_view": _tree_view,
    "invite.create_member": lambda c, w, a: c.invites.create("sanyi", "member", created_by=a),
    "invite.create_organizer": lambda c, w, a: c.invites.create("sanyi", "organizer", created_by=a),
    "invite.revoke": lambda c, w, a: c.invites.revoke(w.invite, actor=a),
    "invite.list": lambda c, w, a: _invite_listed(c.invites.list("sanyi", actor=a), w.invite),
    "invite.approve": lambda c, w, a: c.invites.decide(a, w.request, True),
    "invite.reject": lambda c, w, a: c.invites.decide(a, w.request, False),
    # broadcasts
    "broadcast.reach": _bc_reach,
    "broadcast.start": lambda c, w, a: c.broadcasts.start(a, w.sanyi),
    "broadcast.toggle_role": lambda c, w, a: c.broadcasts.toggle_role(a, w.bc_draft, "secretary"),
    "broadcast.set_content": lambda c, w, a: c.broadcasts.set_content(a, w.bc_draft, "text", "改一下"),
    "broadcast.set_time": lambda c, w, a: c.broadcasts.set_time(a, w.bc_draft, NOW + timedelta(days=1)),
    "broadcast.preview": lambda c, w, a: c.broadcasts.preview(a, w.bc_draft, "zh_CN"),
    "broadcast.confirm": lambda c, w, a: c.broadcasts.confirm(a, w.bc_draft),
    "broadcast.drop": lambda c, w, a: c.broadcasts.drop(a, w.bc_draft),
    "broadcast.cancel": lambda c, w, a: c.broadcasts.cancel(a, w.bc_queued),
    "broadcast.acks": lambda c, w, a: c.broadcasts.acks(a, w.bc_queued),
    "broadcast.remind": lambda c, w, a: c.broadcasts.remind(a, w.bc_queued),
    "broadcast.ack": lambda c, w, a: c.broadcasts.ack(a, w.bc_queued),
    "broadcast.history": lambda c, w, a: _bc_history(c, a, w.bc_queued),
    "broadcast.tick": lambda c, w, a: c.broadcasts.tick(a),
}



async def _listed(found: Awaitable[list[Any]], meeting_id: int) -> None:
    shown(any(m.id == meeting_id for m in await found))


async def _listed_pairs(found: Awaitable[list[tuple[Any, Any]]], meeting_id: int) -> None:
    shown(any(m.id == meeting_id for m, _ in await found))


async def _invite_listed(found: Awaitable[list[Any]], payload: str) -> None:
    shown(any(invite.payload == payload for invite in await found))


async def _org_listed(found: Awaitable[list[tuple[int, Any]]], org_id: int) -> None:
    shown(any(org.id == org_id for _, org in await found))


# --- running one cell -----------------------------------------------------------------------------
async def everything(core: Core) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (to prove that a refused action changed nothing)."""
    tables = [r[0] for r in await core.db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {t: [tuple(r) for r in await core.db.fetchall(f"SELECT * FROM {t} ORDER BY 1")] for t in tables}


async def outcome(core: Core, world: World, action: str, actor: int) -> str:
    try:
        result = await ACTIONS[action](core, world, actor)
    except NotAllowed:
        return "no"
    except Hidden:
        return "hid"
    except NotFound:
        return "nf"
    except ValueError:
        return "bad"
    except (MeetingRefused, TicketRefused, BroadcastRefused) as refused:
        return {"meeting.error.not_invited": "ni", "ticket.refused.no_org": "org"}.get(refused.key, refused.key)
    if isinstance(result, Done) and not result.changed:
        return f"unchanged:{result.key}"  # "already handled": the fixture's state did not allow the action
    return "ok"


CELLS = [pytest.param(row, kind, id=f"{row.action}-{kind}") for row in ROWS for kind in ACTORS]


@dataclass
class Cells:
    """One Core for the whole table (building one reads every text file; the services keep no state
    of their own between calls), on a fresh copy of the prepared database for every cell."""

    template: Path
    world: World
    core: Core
    clock: SettableClock

    async def run(self, action: str, actor: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(answer, every row before, every row after) of one action by one actor."""
        shutil.copyfile(self.template, self.core.db.path)
        self.clock.set(NOW)
        await self.core.open()
        try:
            before = await everything(self.core)
            got = await outcome(self.core, self.world, action, actor)
            after = await everything(self.core)
        finally:
            await self.core.close()
        return got, before, after


@pytest.fixture(scope="module")
def cells(prepared: tuple[Path, World], tmp_path_factory: pytest.TempPathFactory) -> Cells:
    template, world = prepared
    clock = SettableClock(NOW)
    core = make_core(tmp_path_factory.mktemp("cell") / "cell.sqlite", clock)
    return Cells(template, world, core, clock)


@pytest.mark.parametrize(("row", "kind"), CELLS)
async def test_rights_table(cells: Cells, row: Row, kind: str) -> None:
    got, before, after = await cells.run(row.action, ACTORS[kind])
    assert got == row.expected[kind], f"{row.action} by {kind}: expected {row.expected[kind]}, got {got}"
    if got == "ok" and row.writes:
        assert after != before, f"{row.action} by {kind} was allowed but changed nothing"
    else:
        changed = [t for t in before if before[t] != after[t]]
        assert not changed, f"{row.action} by {kind} ({got}) changed {changed}"


def test_the_table_covers_every_action_once() -> None:
    names = [row.action for row in ROWS]
    assert len(names) == len(set(names))
    assert set(names) == set(ACTIONS)


# --- the system actor -----------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["ticket.tick", "meeting.tick", "meeting.expire_reminders", "ticket.configure",
                                    "ticket.assign_category", "ticket.events", "ticket.accept",
                                    "ticket.unblock", "meeting.ledger_data", "meeting.ledger_org", "org.people_in",
                                    "org.audit_trail",
                                    "invite.create_organizer", "invite.revoke", "invite.list", "broadcast.tick"])
async def test_the_system_actor_may_do_what_the_command_line_and_jobs_do(cells: Cells, action: str) -> None:
    got, _, _ = await cells.run(action, SYSTEM_ACTOR)
    assert got == "ok"
