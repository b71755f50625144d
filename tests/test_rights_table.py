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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from orgtree import Person, org_file
from pg import copy_database
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
from bot.pgbackup import run_async
from bot.services.appraisal import Refused as AppraisalRefused
from bot.services.broadcasts import Refused as BroadcastRefused
from bot.services.deliberation import Audience, RoundSpec
from bot.services.deliberation import Refused as DelibRefused
from bot.services.matters import Outcome, StageEntry, Vote
from bot.services.matters import Refused as MatterRefused
from bot.services.meeting_model import Refused as MeetingRefused
from bot.services.meeting_time import Rule
from bot.services.meetings import Draft, SeriesSpec
from bot.services.orgs import NotAllowed, NotFound
from bot.services.points import Refused as PointsRefused
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
# --- deliberation rounds of sanyi (D_OPINIONS: opinions open; D_VOTING: voting open) -------------
w delib.open                       no      no   no   ok   no   ok    ok    no    no     no   no
w delib.open_below                 no      no   no   no   no   ok    ok    no    no     no   no
  delib.openable_orgs              hid     hid  hid  ok   hid  ok    ok    hid   hid    hid  hid
  delib.mine                       ok      ok   ok   ok   hid  ok    ok    hid   hid    ok   hid
  delib.get                        ok      ok   ok   ok   no   ok    ok    no    no     ok   no
  delib.opinions                   ok      ok   ok   ok   no   ok    ok    no    no     ok   no
  delib.result                     ok      ok   ok   ok   no   ok    ok    no    no     ok   no
  delib.events                     no      no   no   ok   no   ok    ok    no    no     no   no
w delib.give_opinion               ok      ok   ok   no   no   no    no    no    no     ok   no
w delib.support                    own     ok   ok   no   no   no    no    no    no     ok   no
w delib.hide                       no      no   no   ok   no   no    no    no    no     no   no
w delib.add_option                 no      no   no   ok   no   no    no    no    no     no   no
w delib.extend                     no      no   no   ok   no   no    no    no    no     no   no
w delib.close_early                no      no   no   ok   no   no    no    no    no     no   no
w delib.cancel                     no      no   no   ok   no   no    no    no    no     no   no
  delib.ballot                     ok      ok   ok   no   no   no    no    no    no     ok   no
w delib.cast                       ok      ok   ok   no   no   no    no    no    no     ok   no
  delib.proxy_targets              no      no   no   ok   no   no    no    no    no     no   no
w delib.cast_proxy                 no      no   no   ok   no   no    no    no    no     no   no
w delib.tick                       no      no   no   no   no   no    no    no    no     no   no
  delib.ledger                     no      no   no   ok   no   ok    ok    no    ok     no   no
# --- the opinion map (D_OPINIONS has one, open, with the opener's seeds and the author's statement;
#     OM_DRAFT a round whose map is being seeded; D_VOTING has none) -----------------------------------
  om.state                         ok      ok   ok   ok   no   ok    ok    no    no     ok   no
  om.result                        ok      ok   ok   ok   no   ok    ok    no    no     ok   no
w om.enable                        no      no   no   ok   no   no    no    no    no     no   no
w om.seed                          no      no   no   ok   no   no    no    no    no     no   no
  om.check_seed                    no      no   no   ok   no   no    no    no    no     no   no
w om.open_map                      no      no   no   ok   no   no    no    no    no     no   no
  om.statements                    no      no   no   ok   no   no    no    no    no     no   no
w om.hide                          no      no   no   ok   no   no    no    no    no     no   no
  om.live_map                      no      no   no   ok   no   no    no    no    no     no   no
  om.screen                        ok      ok   ok   no   no   no    no    no    no     ok   no
w om.vote                          ok      ok   ok   no   no   no    no    no    no     ok   no
  om.check_can_write               ok      ok   ok   no   no   no    no    no    no     ok   no
w om.add_statement                 ok      ok   ok   no   no   no    no    no    no     ok   no
w om.tick                          no      no   no   no   no   no    no    no    no     no   no
  om.ledger_maps                   no      no   no   ok   no   ok    ok    no    ok     no   no
  delib.options                    ok      ok   ok   ok   no   ok    ok    no    no     ok   no
  delib.round_of_opinion           ok      ok   ok   ok   no   ok    ok    no    no     ok   no
  delib.rights                     ok      ok   ok   ok   ok   ok    ok    ok    ok     ok   ok
  delib.check_open                 no      no   no   ok   no   ok    ok    no    no     no   no
  delib.audience_size              no      no   no   ok   no   ok    ok    no    no     no   no
  delib.check_manage               no      no   no   ok   no   no    no    no    no     no   no
  delib.check_can_give_opinion     ok      ok   ok   no   no   no    no    no    no     ok   no
# --- 四议两公开 matters of sanyi (M_OPEN: no stage yet; M_DECIDED: four stages; M_PUBLISHED) ------
w matter.open                      no      no   no   ok   no   no    no    no    no     no   no
  matter.check_open                no      no   no   ok   no   no    no    no    no     no   no
  matter.may_manage                hid     hid  hid  ok   hid  hid   hid   hid   hid    hid  hid
  matter.get                       no      no   no   ok   no   ok    ok    no    ok     no   no
  matter.get_published             ok      ok   ok   ok   no   ok    ok    no    ok     ok   no
  matter.board                     hid     hid  hid  ok   no   ok    ok    no    ok     hid  no
  matter.boards                    ok      ok   ok   ok   hid  ok    ok    hid   hid    ok   hid
  matter.check_stage               no      no   no   ok   no   no    no    no    no     no   no
  matter.fitting_meetings          no      no   no   ok   no   no    no    no    no     no   no
  matter.closed_rounds             no      no   no   ok   no   no    no    no    no     no   no
  matter.check_vote                no      no   no   ok   no   no    no    no    no     no   no
w matter.record_stage              no      no   no   ok   no   no    no    no    no     no   no
  matter.check_publish             no      no   no   ok   no   no    no    no    no     no   no
w matter.publish_decision          no      no   no   ok   no   no    no    no    no     no   no
w matter.publish_result            no      no   no   ok   no   no    no    no    no     no   no
  matter.stall_days                no      no   no   ok   no   ok    ok    no    ok     no   no
w matter.set_stall_days            no      no   no   ok   no   ok    ok    no    no     no   no
  matter.export                    no      no   no   ok   no   ok    ok    no    ok     no   no
w matter.tick                      no      no   no   no   no   no    no    no    no     no   no
# --- the secretary's appraisal (A_OPEN: of sanyi's secretary, opened by org^; A_CLOSED: closed) -
w appraisal.open                   no      no   no   no   no   no    ok    no    no     no   no
  appraisal.candidates             hid     hid  hid  hid  hid  hid   ok    hid   hid    hid  hid
  appraisal.overview               ok      ok   ok   ok   hid  hid   ok    hid   hid    ok   hid
  appraisal.appraisal              no      no   no   no   no   no    ok    no    no     no   no
  appraisal.progress               no      no   no   no   no   no    ok    no    no     no   no
  appraisal.target                 ok      ok   ok   ok   no   no    ok    no    no     ok   no
  appraisal.check_report           no      no   no   ok   no   no    no    no    no     no   no
w appraisal.post_report            no      no   no   ok   no   no    no    no    no     no   no
w appraisal.rate                   ok      ok   ok   no   no   no    no    no    no     ok   no
w appraisal.rate_then_comment      ok      ok   ok   no   no   no    no    no    no     ok   no
w appraisal.comment_unrated        no      no   no   no   no   no    no    no    no     no   no
  appraisal.results                no      no   no   no   no   no    ok    no    no     no   no
  appraisal.own_result             no      no   no   ok   no   no    no    no    no     no   no
w appraisal.publish                no      no   no   no   no   no    ok    no    no     no   no
w appraisal.tick                   no      no   no   no   no   no    no    no    no     no   no
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
# --- digests (DG_ITEM: an item of the member's digest) -------------------------------------------
w digest.choose                     ok      ok   ok   ok   ok   ok    ok    ok    ok     ok   ok
w digest.open                       no      no   ok   no   no   no    no    no    no     no   no
w digest.run                        no      no   no   no   no   no    no    no    no     no   no
# --- personal data (PIPL): the author's export and forgetting them; the retention job -------------
w privacy.export                    ok      no   no   no   no   no    no    no    ok     no   no
w privacy.forget                    ok      no   no   no   no   no    no    no    ok     no   no
w privacy.retention                 no      no   no   no   no   no    no    no    no     no   no
# --- pledges and points of sanyi (PG_POST: a post; PG_PLEDGE: mem's pledge with PG_REPORT waiting) -
  pledge.posts                      no      no   ok   ok   no   ok    ok    no    no     ok   no
w pledge.add_post                   no      no   no   ok   no   no    no    no    no     no   no
w pledge.remove_post                no      no   no   ok   no   no    no    no    no     no   no
w pledge.take_post                  no      no   ok   ok   no   no    no    no    no     ok   no
w pledge.write_pledge               no      no   ok   ok   no   no    no    no    no     ok   no
  pledge.board                      no      no   ok   ok   no   ok    ok    no    no     ok   no
  pledge.get                        no      no   ok   ok   no   ok    ok    no    no     ok   no
  pledge.reports                    no      no   ok   ok   no   ok    ok    no    no     ok   no
  pledge.check_report               no      no   ok   no   no   no    no    no    no     no   no
w pledge.report                     no      no   ok   no   no   no    no    no    no     no   no
  pledge.pending                    no      no   no   ok   no   no    no    no    no     no   no
w pledge.confirm                    no      no   no   ok   no   no    no    no    no     no   no
  points.mine                       hid     hid  ok   ok   ok   hid   hid   hid   hid    ok   hid
  points.table                      no      no   no   ok   no   ok    ok    no    ok     no   no
  points.person                     no      no   no   ok   no   ok    ok    no    ok     no   no
w points.adjust                     no      no   no   ok   no   no    no    no    no     no   no
  points.may_set_rules              hid     hid  hid  hid  hid  ok    ok    hid   ok     hid  hid
w points.set_rule                   no      no   no   no   no   ok    ok    no    ok     no   no
  points.star_preview               no      no   no   ok   no   no    no    no    no     no   no
w points.propose_stars              no      no   no   ok   no   no    no    no    no     no   no
  points.proposals                  no      no   no   ok   no   ok    ok    no    ok     no   no
  points.ledger_points              no      no   no   ok   no   ok    ok    no    ok     no   no
w points.send_statements            no      no   no   no   no   no    no    no    no     no   no
w points.settle_stars               no      no   no   no   no   no    no    no    no     no   no
# --- supervision bulletins (sanyi's October) ------------------------------------------------------
  supervision.may_report            hid     hid  hid  ok   hid  ok    ok    hid   ok     hid  hid
  supervision.check_report          no      no   no   ok   no   ok    ok    no    ok     no   no
  supervision.bulletin              no      no   no   ok   no   ok    ok    no    ok     no   no
  supervision.build                 no      no   no   ok   no   ok    ok    no    ok     no   no
  supervision.report_orgs           hid     hid  hid  ok   hid  ok    ok    hid   hid    hid  hid
w supervision.tick                  no      no   no   no   no   no    no    no    no     no   no
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
# - delib.*: the rounds' audience is sanyi's members and residents (author, res, mem, exA); those
#   who lead at or above sanyi read them (supervision); only the opener (sec) manages them, and
#   only a secretary of the round's org votes on someone's behalf (代投). Admins build the tree
#   and take no part. "own": nobody supports their own opinion (the author wrote D_OPINIONS' one).
#   delib.rights only says what the actor themselves may do there (which buttons to show).
# - om.*: the opinion map is the round's: its audience votes and writes statements, only the opener
#   turns it on, seeds, opens it, hides a statement and sees the live map (the organisers above read
#   the round and, once fixed, its result).
# - matter.*: only the org's own secretary opens matters, records stages and publishes (the
#   organisers supervise: they read every matter, export, get the stalled reminders and may change
#   the org's reminder limit); admins read and export. Members and residents of sanyi read the
#   published matters only ("hid" on the board, "no" for one not published); the former secretary
#   is a member now.
# - appraisal.*: the raters of sanyi's secretary are sanyi's members and residents (author, res, mem,
#   exA; the secretary is no member there in this tree); only organisers at or above the township the
#   appraisal was opened from lead it (progress, results, publish: org^); the secretary reports and
#   sees their own result. A comment needs the rater's own rating just before it.
# - digest.*: everyone chooses for themselves how low-priority notices come; an item of a digest is
#   sent again only to the person whose digest listed it; the daily run is the system's.
# - privacy.*: a person's data is exported or forgotten by the person, an admin or the command line
#   (each is recorded, so an export writes); not by their secretary or organisers. Retention is the
#   daily job's alone.
# - pledge.*: the branch's members (and its secretary, who is one of them in spirit: secretaries
#   take posts too) and organisers at or above read the board; only members take posts, write
#   pledges and report on their own; only the branch's secretary keeps the posts and confirms
#   (督诺). points.*: the table is for the secretary, organisers at or above and admins; only the
#   secretary adds or deducts, and proposes the stars; the rules are set by organisers at or above
#   the org and admins, never by the branch's own secretary; "mine" lists one's own branch (sib
#   is erlang's secretary, with points of their own there).
# - supervision.*: organisers at or above an org (and admins) read its bulletin, its secretary too
#   (their own org only); report_orgs lists where the person reads bulletins (sanyi itself or an org
#   above it: the township's organiser reads sanyi inside longjuzhai's); admins hold no role, so it
#   lists nothing for them (they name the org). The monthly job is the system's.


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
        assert set(answers) <= {"ok", "no", "hid", "ni", "org", "bad", "own"}, action
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
    d_opinions: int
    d_voting: int
    d_opinion: int
    m_open: int
    m_decided: int
    m_published: int
    a_open: int
    a_target: int
    a_closed: int
    a_closed_target: int
    bc_queued: int = 0  # a broadcast of sanyi's secretary to sanyi's members, sent, with 收到
    bc_draft: int = 0   # a draft of the same secretary, with its content
    dg_item: int = 0    # an item (a held supervision summary) of the member's digest, built
    pg_post: int = 0    # a post of sanyi
    pg_pledge: int = 0  # mem's pledge, with
    pg_report: int = 0  # … a 践诺 waiting for 督诺
    om_draft: int = 0   # a round of sanyi whose opinion map the secretary is seeding
    om_seed: int = 0    # a seed statement of D_OPINIONS' open opinion map


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
        d_opinions, d_voting, d_opinion = await prepare_deliberation(core, sanyi)
        m_open, m_decided, m_published = await prepare_matters(core, sanyi)
        appraisals = await prepare_appraisal(core, clock, sanyi)
        clock.set(NOW)
        await m.add_minutes(SECRETARY, current, "text", "学习了党章第一章")
        bc_queued, bc_draft = await _broadcasts(core, sanyi)
        dg_item = await _digest(core)
        pg_post, pg_pledge, pg_report = await _pledges(core, sanyi)
        om_draft, om_seed = await prepare_opinion_map(core, sanyi, d_opinions)
        world = World(sanyi=sanyi, erlang=ids["erlang"], xijie=ids["xijie"], t_new=t_new, t_info=t_info,
                      t_answered=t_answered, t_blocked=t_blocked, t_sibling=t_sibling, block=block,
                      request=request, invite=invite.payload, upcoming=upcoming,
                      sibling_meeting=sibling_meeting, current=current, series=series,
                      d_opinions=d_opinions, d_voting=d_voting, d_opinion=d_opinion,
                      m_open=m_open, m_decided=m_decided, m_published=m_published, a_open=appraisals[0],
                      a_target=appraisals[1], a_closed=appraisals[2], a_closed_target=appraisals[3],
                      bc_queued=bc_queued, bc_draft=bc_draft, dg_item=dg_item, pg_post=pg_post,
                      pg_pledge=pg_pledge, pg_report=pg_report, om_draft=om_draft, om_seed=om_seed)
    finally:
        await core.close()
    return world


async def prepare_deliberation(core: Core, sanyi: int) -> tuple[int, int, int]:
    """Two rounds of sanyi opened by its secretary: one taking opinions at NOW (with the author's
    opinion), one voting at NOW."""
    d = core.deliberation
    opinions = await d.open(SECRETARY, RoundSpec(
        org_id=sanyi, title="要不要修村西的路", audience=Audience.BOTH, opinions_until=NOW + timedelta(days=3),
        votes_until=NOW + timedelta(days=5), options=("修", "不修")))
    voting = await d.open(SECRETARY, RoundSpec(
        org_id=sanyi, title="村委会选址", audience=Audience.BOTH, opinions_until=START + timedelta(hours=12),
        votes_until=NOW + timedelta(days=3), options=("旧小学", "村口")))
    opinion = await d.give_opinion(AUTHOR, opinions.id, "先修到小学门口", anonymous=True)
    return opinions.id, voting.id, opinion


async def prepare_opinion_map(core: Core, sanyi: int, d_opinions: int) -> tuple[int, int]:
    """D_OPINIONS gets an open opinion map with two seeds; a third round's map is being seeded."""
    om = core.opinions
    await om.enable(SECRETARY, d_opinions)
    await om.seed(SECRETARY, d_opinions, ["路要修宽一点", "先修到小学门口"])
    await om.open_map(SECRETARY, d_opinions)
    draft_round = await core.deliberation.open(SECRETARY, RoundSpec(
        org_id=sanyi, title="村里的垃圾怎么处理", audience=Audience.BOTH, opinions_until=NOW + timedelta(days=3)))
    await om.enable(SECRETARY, draft_round.id)
    await om.seed(SECRETARY, draft_round.id, ["垃圾要分类"])
    seed = await core.db.fetchval("SELECT MIN(id) FROM om_statements WHERE round_id = ?", (d_opinions,))
    return draft_round.id, int(seed)


async def prepare_matters(core: Core, sanyi: int) -> tuple[int, int, int]:
    """Three matters of sanyi opened by its secretary: one with no stage yet, one with all four
    passed (the decision not published), one with its decision published."""
    m = core.matters
    ids = [(await m.open(SECRETARY, sanyi, title, estimate="12万元")).id for title in ("修建村道", "修桥", "修水渠")]
    for matter_id in ids[1:]:
        for stage in (1, 2, 3, 4):
            await m.record_stage(SECRETARY, matter_id, stage, StageEntry(START.date(), Outcome.PASSED))
    await m.publish_decision(SECRETARY, ids[2], "修水渠，明年开工")
    return ids[0], ids[1], ids[2]


async def prepare_appraisal(core: Core, clock: SettableClock, sanyi: int) -> tuple[int, int, int, int]:
    """Two appraisals of sanyi's secretary opened by the township organiser: A_CLOSED (2025, opened
    three days before START for a day, rated and commented by NEIGHBOUR, closed) and A_OPEN (2026,
    open for a week from START, the report posted, nobody rated yet)."""
    a = core.appraisal
    clock.set(START - timedelta(days=3))
    closed = await a.open(TOWN_ORG, 2025, [(sanyi, SECRETARY)], 1)
    closed_target = await core.db.fetchval("SELECT id FROM appraisal_targets WHERE appraisal_id = ?", (closed.id,))
    await a.post_report(SECRETARY, closed_target, "text", "2025年述职")
    await a.rate(NEIGHBOUR, closed_target, 0)
    await a.comment(NEIGHBOUR, closed_target, "路修得好")
    clock.set(START)
    await a.tick(SYSTEM_ACTOR)
    opened = await a.open(TOWN_ORG, 2026, [(sanyi, SECRETARY)], 7)
    target = await core.db.fetchval("SELECT id FROM appraisal_targets WHERE appraisal_id = ?", (opened.id,))
    await a.post_report(SECRETARY, target, "text", "2026年述职")
    return opened.id, target, closed.id, closed_target


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


async def _digest(core: Core) -> int:
    """The member takes the daily digest; a supervision summary held last night is in this morning's."""
    await core.digests.choose(MEMBER, True)
    async with core.db.transaction() as tx:
        await core.outbox.send_text(tx, key="dg-rights", chat_id=MEMBER, text="督查通报",
                                    purpose="supervision/bulletin", not_before=NOW - timedelta(hours=12))
    assert await core.digests.run(SYSTEM_ACTOR) == 1
    return int(await core.db.fetchval("SELECT id FROM outbox WHERE dedup_key = 'dg-rights'"))
async def _pledges(core: Core, sanyi: int) -> tuple[int, int, int]:
    """A post of sanyi, and the member's pledge with a progress report waiting for 督诺."""
    post = await core.pledges.add_post(SECRETARY, sanyi, "环境卫生监督岗")
    pledge = await core.pledges.write_pledge(MEMBER, sanyi, "每月帮困难户干一次活")
    report = await core.pledges.report(MEMBER, pledge.id, "帮王大娘收了玉米", [])
    return post.id, pledge.id, report


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    """The prepared database, built once per module in its own thread and event loop (the tests'
    loops are per test)."""
    path = tmp_path_factory.mktemp("rights") / "world.sqlite"
    return path, run_async(prepare(path))


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


async def _dg_toggle(c: Core, a: int) -> None:
    await c.digests.choose(a, not await c.digests.daily(a))


async def _bc_history(c: Core, a: int, broadcast_id: int) -> None:
    shown(any(b.id == broadcast_id for b, _ in await c.broadcasts.history(a)))

async def _points_mine(c: Core, w: World, a: int) -> None:
    """One's own points: "hid" for whoever is no member or secretary of a branch."""
    try:
        await c.points.mine(a)
    except PointsRefused as refused:
        if refused.key != "points.refused.no_org":
            raise
        raise Hidden from None


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
    # deliberation
    "delib.open": lambda c, w, a: c.deliberation.open(a, RoundSpec(
        org_id=w.sanyi, title="修桥", audience=Audience.MEMBERS, opinions_until=NOW + timedelta(days=2))),
    "delib.open_below": lambda c, w, a: c.deliberation.open(a, RoundSpec(
        org_id=w.sanyi, title="修桥", audience=Audience.MEMBERS, opinions_until=NOW + timedelta(days=2),
        include_below=True)),
    "delib.openable_orgs": lambda c, w, a: _delib_org_listed(c.deliberation.openable_orgs(a), w.sanyi),
    "delib.mine": lambda c, w, a: _delib_listed(c.deliberation.mine(a), w.d_opinions),
    "delib.get": lambda c, w, a: c.deliberation.get(a, w.d_opinions),
    "delib.opinions": lambda c, w, a: c.deliberation.opinions(a, w.d_opinions, 0),
    "delib.result": lambda c, w, a: c.deliberation.result(a, w.d_voting),
    "delib.events": lambda c, w, a: c.deliberation.events(a, w.d_opinions),
    "delib.give_opinion": lambda c, w, a: c.deliberation.give_opinion(a, w.d_opinions, "同意修", anonymous=False),
    "delib.support": lambda c, w, a: c.deliberation.support(a, w.d_opinion),
    "delib.hide": lambda c, w, a: c.deliberation.hide(a, w.d_opinion, "不文明"),
    "delib.add_option": lambda c, w, a: c.deliberation.add_option(a, w.d_opinions, "修一半"),
    "delib.extend": lambda c, w, a: c.deliberation.extend(a, w.d_opinions, 3, "农忙"),
    "delib.close_early": lambda c, w, a: c.deliberation.close_early(a, w.d_opinions, "意见一致"),
    "delib.cancel": lambda c, w, a: c.deliberation.cancel(a, w.d_opinions, "上级另有安排"),
    "delib.ballot": lambda c, w, a: c.deliberation.ballot(a, w.d_voting),
    "delib.cast": lambda c, w, a: c.deliberation.cast(a, w.d_voting, [0]),
    "delib.proxy_targets": lambda c, w, a: c.deliberation.proxy_targets(a, w.d_voting),
    "delib.cast_proxy": lambda c, w, a: c.deliberation.cast(a, w.d_voting, [1], for_person=MEMBER, reason="没有手机"),
    "delib.tick": lambda c, w, a: c.deliberation.tick(a),
    "delib.options": lambda c, w, a: c.deliberation.options(a, w.d_opinions),
    "delib.round_of_opinion": lambda c, w, a: c.deliberation.round_of_opinion(a, w.d_opinion),
    "delib.rights": lambda c, w, a: c.deliberation.rights(a, w.d_opinions),
    "delib.audience_size": lambda c, w, a: c.deliberation.audience_size(a, w.sanyi, False, Audience.BOTH),
    "delib.check_open": lambda c, w, a: c.deliberation.check_open(a, w.sanyi, False),
    "delib.check_manage": lambda c, w, a: c.deliberation.check_manage(a, w.d_opinions),
    "delib.check_can_give_opinion": lambda c, w, a: c.deliberation.check_can_give_opinion(a, w.d_opinions),
    "om.state": lambda c, w, a: c.opinions.state(a, w.d_opinions),
    "om.result": lambda c, w, a: c.opinions.result(a, w.d_opinions),
    "om.enable": lambda c, w, a: c.opinions.enable(a, w.d_voting),
    "om.seed": lambda c, w, a: c.opinions.seed(a, w.om_draft, ["垃圾桶放村口"]),
    "om.check_seed": lambda c, w, a: c.opinions.check_seed(a, w.om_draft),
    "om.open_map": lambda c, w, a: c.opinions.open_map(a, w.om_draft),
    "om.statements": lambda c, w, a: c.opinions.statements(a, w.d_opinions, 0),
    "om.hide": lambda c, w, a: c.opinions.hide(a, w.om_seed, "与议题无关"),
    "om.live_map": lambda c, w, a: c.opinions.live_map(a, w.d_opinions),
    "om.screen": lambda c, w, a: c.opinions.screen(a, w.d_opinions),
    "om.vote": lambda c, w, a: c.opinions.vote(a, w.om_seed, 1),
    "om.check_can_write": lambda c, w, a: c.opinions.check_can_write(a, w.d_opinions),
    "om.add_statement": lambda c, w, a: c.opinions.add_statement(a, w.d_opinions, "路灯也一起修"),
    "om.tick": lambda c, w, a: c.opinions.tick(a),
    "om.ledger_maps": lambda c, w, a: c.opinions.ledger_maps(a, w.sanyi, date(2026, 1, 1), date(2026, 12, 31)),
    "delib.ledger": lambda c, w, a: c.deliberation.ledger(a, w.sanyi, date(2026, 1, 1), date(2026, 12, 31), "zh_CN"),
    # 四议两公开
    "matter.open": lambda c, w, a: c.matters.open(a, w.sanyi, "修路灯", estimate="3万元"),
    "matter.check_open": lambda c, w, a: c.matters.check_open(a, w.sanyi),
    "matter.may_manage": lambda c, w, a: _true(c.matters.may_manage(a, w.sanyi)),
    "matter.get": lambda c, w, a: c.matters.get(a, w.m_open),
    "matter.get_published": lambda c, w, a: c.matters.get(a, w.m_published),
    "matter.board": lambda c, w, a: _matter_listed(c.matters.board(a, w.sanyi), w.m_open),
    "matter.boards": lambda c, w, a: _org_pair_listed(c.matters.boards(a), w.sanyi),
    "matter.check_stage": lambda c, w, a: c.matters.check_stage(a, w.m_open, 1),
    "matter.fitting_meetings": lambda c, w, a: c.matters.fitting_meetings(a, w.m_open, 1, "zh_CN"),
    "matter.closed_rounds": lambda c, w, a: c.matters.closed_rounds(a, w.m_open),
    "matter.check_vote": lambda c, w, a: c.matters.check_vote(a, w.m_open, 1, None, Vote()),
    "matter.record_stage": lambda c, w, a: c.matters.record_stage(a, w.m_open, 1, StageEntry(
        NOW.date(), Outcome.PASSED, note="支委会同意")),
    "matter.check_publish": lambda c, w, a: c.matters.check_publish(a, w.m_decided, "decision"),
    "matter.publish_decision": lambda c, w, a: c.matters.publish_decision(a, w.m_decided, "修桥，年底完工"),
    "matter.publish_result": lambda c, w, a: c.matters.publish_result(a, w.m_published, "水渠修好了"),
    "matter.stall_days": lambda c, w, a: c.matters.stall_days(a, w.sanyi),
    "matter.set_stall_days": lambda c, w, a: c.matters.set_stall_days(a, w.sanyi, 20),
    "matter.export": lambda c, w, a: c.matters.export(a, w.sanyi, "zh_CN"),
    "matter.tick": lambda c, w, a: c.matters.tick(a),
    # the secretary's appraisal
    "appraisal.open": lambda c, w, a: c.appraisal.open(a, 2026, [(w.erlang, ERLANG_SECRETARY)], 7),
    "appraisal.candidates": lambda c, w, a: _appraisal_candidate(c.appraisal.candidates(a), w.erlang),
    "appraisal.overview": lambda c, w, a: _appraisal_listed(c, a, w),
    "appraisal.appraisal": lambda c, w, a: c.appraisal.appraisal(a, w.a_open),
    "appraisal.progress": lambda c, w, a: c.appraisal.progress(a, w.a_open),
    "appraisal.target": lambda c, w, a: c.appraisal.target(a, w.a_target),
    "appraisal.check_report": lambda c, w, a: c.appraisal.check_report(a, w.a_target),
    "appraisal.post_report": lambda c, w, a: c.appraisal.post_report(a, w.a_target, "text", "2026年述职（改）"),
    "appraisal.rate": lambda c, w, a: c.appraisal.rate(a, w.a_target, 1),
    "appraisal.rate_then_comment": lambda c, w, a: _rate_then_comment(c, a, w.a_target),
    "appraisal.comment_unrated": lambda c, w, a: c.appraisal.comment(a, w.a_target, "路灯不亮"),
    "appraisal.results": lambda c, w, a: c.appraisal.results(a, w.a_closed),
    "appraisal.own_result": lambda c, w, a: c.appraisal.own_result(a, w.a_closed_target),
    "appraisal.publish": lambda c, w, a: c.appraisal.publish(a, w.a_closed),
    "appraisal.tick": lambda c, w, a: c.appraisal.tick(a),
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
    # digests
    "digest.choose": lambda c, w, a: _dg_toggle(c, a),
    "digest.open": lambda c, w, a: c.digests.open(a, w.dg_item),
    "digest.run": lambda c, w, a: c.digests.run(a),
    # personal data
    "privacy.export": lambda c, w, a: c.privacy.export(a, AUTHOR),
    "privacy.forget": lambda c, w, a: c.privacy.forget(a, AUTHOR),
    "privacy.retention": lambda c, w, a: c.retention.run(a),
    # pledges and points
    "pledge.posts": lambda c, w, a: c.pledges.posts(a, w.sanyi),
    "pledge.add_post": lambda c, w, a: c.pledges.add_post(a, w.sanyi, "治安巡逻岗"),
    "pledge.remove_post": lambda c, w, a: c.pledges.remove_post(a, w.pg_post),
    "pledge.take_post": lambda c, w, a: c.pledges.take_post(a, w.pg_post),
    "pledge.write_pledge": lambda c, w, a: c.pledges.write_pledge(a, w.sanyi, "带头打扫村道"),
    "pledge.board": lambda c, w, a: c.pledges.board(a, w.sanyi),
    "pledge.get": lambda c, w, a: c.pledges.get(a, w.pg_pledge),
    "pledge.reports": lambda c, w, a: c.pledges.reports(a, w.pg_pledge),
    "pledge.check_report": lambda c, w, a: c.pledges.check_report(a, w.pg_pledge),
    "pledge.report": lambda c, w, a: c.pledges.report(a, w.pg_pledge, "又帮了一次", []),
    "pledge.pending": lambda c, w, a: c.pledges.pending(a, w.sanyi),
    "pledge.confirm": lambda c, w, a: c.pledges.confirm(a, w.pg_report),
    "points.mine": _points_mine,
    "points.table": lambda c, w, a: c.points.table(a, w.sanyi),
    "points.person": lambda c, w, a: c.points.person(a, w.sanyi, MEMBER),
    "points.adjust": lambda c, w, a: c.points.adjust(a, w.sanyi, MEMBER, 2, "带头修路"),
    "points.may_set_rules": lambda c, w, a: _true(c.points.may_set_rules(a, w.sanyi)),
    "points.set_rule": lambda c, w, a: c.points.set_rule(a, w.sanyi, "meeting", 4),
    "points.star_preview": lambda c, w, a: c.points.star_preview(a, w.sanyi, 2026),
    "points.propose_stars": lambda c, w, a: c.points.propose_stars(a, w.sanyi, 2026),
    "points.proposals": lambda c, w, a: c.points.proposals(a, w.sanyi),
    "points.ledger_points": lambda c, w, a: c.points.ledger_points(a, w.sanyi, NOW.date(), NOW.date()),
    "points.send_statements": lambda c, w, a: c.points.send_statements(a),
    "points.settle_stars": lambda c, w, a: c.points.settle_stars(a),
    # supervision bulletins
    "supervision.may_report": lambda c, w, a: _true(c.supervision.may_report(a, w.sanyi)),
    "supervision.check_report": lambda c, w, a: c.supervision.check_report(a, w.sanyi),
    "supervision.bulletin": lambda c, w, a: c.supervision.bulletin(a, w.sanyi, date(2026, 10, 1),
                                                                    date(2026, 10, 31)),
    "supervision.build": lambda c, w, a: c.supervision.build(a, w.sanyi, date(2026, 10, 1), date(2026, 10, 31),
                                                              "zh_CN"),
    "supervision.report_orgs": lambda c, w, a: _report_listed(c, w, a),
    "supervision.tick": lambda c, w, a: c.supervision.tick(a),
}


async def _report_listed(c: Core, w: World, a: Any) -> None:
    """sanyi is in reach: one of the listed orgs is sanyi or above it."""
    above = {o.id for o in await c.orgs.ancestors(w.sanyi)}
    shown(any(o.id in above for o in await c.supervision.report_orgs(a)))


async def _true(found: Awaitable[bool]) -> None:
    shown(await found)


async def _matter_listed(found: Awaitable[list[Any]], matter_id: int) -> None:
    shown(any(m.id == matter_id for m in await found))


async def _org_pair_listed(found: Awaitable[list[tuple[int, str]]], org_id: int) -> None:
    shown(any(oid == org_id for oid, _ in await found))


async def _appraisal_candidate(found: Awaitable[list[Any]], org_id: int) -> None:
    shown(any(c.org_id == org_id for c in await found))


async def _appraisal_listed(c: Core, actor: int, w: World) -> None:
    view = await c.appraisal.overview(actor)
    shown(any(a.id == w.a_open for a in view.led) or any(t.id == w.a_target for t in view.own)
          or any(t.id == w.a_target for t, _ in view.to_rate))


async def _rate_then_comment(c: Core, actor: int, target_id: int) -> None:
    await c.appraisal.rate(actor, target_id, 2)
    await c.appraisal.comment(actor, target_id, "路灯不亮")


async def _delib_listed(found: Awaitable[list[tuple[Any, bool]]], round_id: int) -> None:
    shown(any(r.id == round_id for r, _ in await found))


async def _delib_org_listed(found: Awaitable[list[tuple[int, str, bool]]], org_id: int) -> None:
    shown(any(found_id == org_id for found_id, _, _ in await found))


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
    except (MeetingRefused, TicketRefused, DelibRefused, MatterRefused, AppraisalRefused, BroadcastRefused,
            PointsRefused) as refused:
        return {"meeting.error.not_invited": "ni", "ticket.refused.no_org": "org",
                "delib.refused.own_opinion": "own"}.get(refused.key, refused.key)
    if isinstance(result, Done) and not result.changed:
        return f"unchanged:{result.key}"  # "already handled": the fixture's state did not allow the action
    return "ok"


CELLS = [pytest.param(row, kind, id=f"{row.action}-{kind}") for row in ROWS for kind in ACTORS]


@dataclass
class Cells:
    """One Core for the whole table (building one reads every text file; the services keep no state
    of their own between calls), on a copy of the prepared database that no earlier cell changed:
    a fresh copy after a cell that changed a row (most cells are refusals and change nothing; a copy
    is most of a cell's time on PostgreSQL)."""

    template: Path
    path: Path  # the cell's database (a file, or on PostgreSQL the key of its database: tests/pg.py)
    world: World
    core: Core
    clock: SettableClock
    pristine: dict[str, Any] | None = None  # every row of the prepared database, once read

    async def run(self, action: str, actor: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(answer, every row before, every row after) of one action by one actor."""
        if self.pristine is None:
            copy_database(self.template, self.path)
        self.clock.set(NOW)
        await self.core.open()
        try:
            before = await everything(self.core)
            got = await outcome(self.core, self.world, action, actor)
            after = await everything(self.core)
        finally:
            await self.core.close()
        if self.pristine is None:
            self.pristine = before
        assert before == self.pristine, "a cell did not start from the prepared database"
        if after != before:
            self.pristine = None  # the next cell gets a fresh copy
        return got, before, after


@pytest.fixture(scope="module")
def cells(prepared: tuple[Path, World], tmp_path_factory: pytest.TempPathFactory) -> Cells:
    template, world = prepared
    clock = SettableClock(NOW)
    path = tmp_path_factory.mktemp("cell") / "cell.sqlite"
    core = make_core(path, clock)
    return Cells(template, path, world, core, clock)


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
                                    "org.audit_trail", "invite.create_organizer", "invite.revoke", "invite.list",
                                    "delib.tick", "delib.events", "delib.get", "delib.ledger",
                                    "matter.tick", "matter.get", "matter.export", "matter.stall_days",
                                    "appraisal.tick", "appraisal.results", "appraisal.progress",
                                    "broadcast.tick", "digest.run", "privacy.export", "privacy.forget",
                                    "privacy.retention", "points.send_statements", "points.settle_stars",
                                    "points.table", "points.ledger_points", "supervision.check_report",
                                    "supervision.bulletin", "supervision.build", "supervision.tick", "om.tick",
                                    "om.state", "om.result", "om.ledger_maps"])
async def test_the_system_actor_may_do_what_the_command_line_and_jobs_do(cells: Cells, action: str) -> None:
    got, _, _ = await cells.run(action, SYSTEM_ACTOR)
    assert got == "ok"
