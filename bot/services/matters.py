"""四议两公开: a village decision's path. A secretary opens a matter (修建村道, with an estimate) for
their org; it passes four stages, strictly in order, each recorded once with its date, its meeting
(one of the org's meetings of a fitting kind, or none), the outcome and, where a vote was taken, the
vote (a closed deliberation round of the org, read from DeliberationService, or counts typed from a
paper vote). A rejected stage ends the matter with its reason. After the fourth stage the decision
is published (决议公开) on the org's wall chat and to its residents; later the result of carrying it
out, with photos (实施结果公开).

A matter waiting on a step (the next stage, or the decision's publication) longer than the org's
limit reminds the org's secretaries; as long again later, the organisers of the nearest org above.
Each reminder is claimed once in `matter_reminders`, so the job may run twice or after downtime.

Every method takes the acting person (or SYSTEM_ACTOR) and checks the right from the database:
the org's secretary manages its matters; those who lead at or above the org (and admins) read
every matter; the org's members and residents read the published ones. Every message to someone
else is an outbox row in the same transaction as the change.

Outbox keys: vm:{matter}:d:{person} / vm:{matter}:dw (the decision, to a resident / the wall chat),
vm:{matter}:r:{person}[:{n}] / vm:{matter}:rw[:{n}] (the result and its photos), vm:{matter}:s{step}:
{level}:{person} (a stalled-step reminder)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.actors import SYSTEM_ACTOR, Actor, SystemActor, is_system
from bot.callbacks import MATTER, MatterAct
from bot.clock import from_db, to_db
from bot.database import Database, Tx
from bot.formatting import file_name
from bot.infra import Infra
from bot.limits import clip
from bot.outbox import Button, Priority
from bot.services import matters_ledger
from bot.services.deliberation import DeliberationService
from bot.services.masking import mask_public
from bot.services.meeting_model import MeetingKind
from bot.services.meeting_time import after_quiet
from bot.services.orgs import NotAllowed, NotFound, Org, Refused, Role

log = logging.getLogger(__name__)

STAGES = (1, 2, 3, 4)
PUBLISH_STEP = 5          # the step after the four stages: the decision's publication
MAX_TITLE = 60
MAX_DESCRIPTION = 1500
MAX_ESTIMATE = 60
MAX_NOTE = 500
MAX_DECISION = 1500
MAX_RESULT = 1500
MAX_PHOTOS = 5
MAX_COUNT = 100_000       # a paper vote's count beyond this is a typing mistake
DEFAULT_STALL_DAYS = 30
STALL_DAYS = (1, 365)
RECENT_MEETINGS = timedelta(days=180)
PICK_LIMIT = 6            # meetings or rounds offered to pick from
BOARD_LIMIT = 30
ROOM = 1000               # a typed text's room in a message that carries more (a card, a notice)
# Room in one stage's line (four of them, with the decision, fit in one message of 4096).
MEETING_ROOM = 60
VOTE_ROOM = 300
NOTE_ROOM = 150

# The meetings that fit each stage (the meetings feature has no kind for a 两委 or villagers'
# meeting: those are "other", or the monthly 月例会 where a village holds them together).
FITTING_KINDS: dict[int, tuple[MeetingKind, ...]] = {
    1: (MeetingKind.COMMITTEE, MeetingKind.OTHER),
    2: (MeetingKind.COMMITTEE, MeetingKind.MONTHLY, MeetingKind.OTHER),
    3: (MeetingKind.GENERAL,),
    4: (MeetingKind.OTHER, MeetingKind.MONTHLY),
}
STAGE_KEYS = {1: "matter.stage.1", 2: "matter.stage.2", 3: "matter.stage.3", 4: "matter.stage.4"}
OUTCOME_KEYS = {"passed": "matter.outcome.passed", "rejected": "matter.outcome.rejected"}
STATUS_KEYS = {"open": "matter.status.open", "rejected": "matter.status.rejected", "decided": "matter.status.decided",
               "published": "matter.status.published", "done": "matter.status.done"}
STALLED_KEYS = {"secretary": "matter.stalled.secretary", "organizer": "matter.stalled.organizer"}


class Status(StrEnum):
    OPEN = "open"            # waiting on its next stage
    REJECTED = "rejected"    # a stage said no: ended
    DECIDED = "decided"      # all four stages passed: the decision waits to be published
    PUBLISHED = "published"  # 决议公开 done: the result waits to be published
    DONE = "done"            # 实施结果公开 done


class Outcome(StrEnum):
    PASSED = "passed"
    REJECTED = "rejected"


class VoteKind(StrEnum):
    NONE = "none"
    ROUND = "round"          # a closed deliberation round of the org
    PAPER = "paper"          # counts typed from a paper vote


class Purpose(StrEnum):
    DECISION = "matters/decision"
    RESULT = "matters/result"
    WALL = "matters/wall"
    STALLED = "matters/stalled"


@dataclass(frozen=True)
class Vote:
    kind: VoteKind = VoteKind.NONE
    round_id: int | None = None
    yes: int | None = None
    no: int | None = None
    abstain: int | None = None


@dataclass(frozen=True)
class StageEntry:
    """What the secretary records for a stage."""

    held_on: date
    outcome: Outcome
    meeting_id: int | None = None
    note: str = ""
    vote: Vote = Vote()


@dataclass(frozen=True)
class StageRecord:
    stage: int
    held_on: date
    meeting_id: int | None
    meeting: str             # the meeting's topic and day, "" without one
    outcome: Outcome
    note: str
    vote: Vote
    present: int | None
    recorded_by: int
    recorded_at: datetime


@dataclass(frozen=True)
class Matter:
    id: int
    org_id: int
    org_name: str
    title: str
    description: str
    estimate: str
    opened_by: int
    opened_at: datetime
    stage: int
    status: Status
    waiting_since: datetime
    end_reason: str | None
    decision_text: str | None
    decision_at: datetime | None
    result_text: str | None
    result_media: list[dict[str, int]]
    result_at: datetime | None
    stages: list[StageRecord] = field(default_factory=list)

    @property
    def next_stage(self) -> int | None:
        return self.stage + 1 if self.status == Status.OPEN and self.stage < 4 else None

    @property
    def public(self) -> bool:
        return self.status in (Status.PUBLISHED, Status.DONE)


@dataclass(frozen=True)
class PickMeeting:
    id: int
    label: str               # topic, day


@dataclass(frozen=True)
class PickRound:
    id: int
    title: str


MATTER_SQL = "SELECT m.*, o.name AS org_name FROM matters m JOIN orgs o ON o.id = m.org_id"


def _person(actor: Actor) -> int:
    return 0 if isinstance(actor, SystemActor) else actor


def _text(value: str, limit: int, empty_key: str | None) -> str:
    value = value.strip()
    if not value and empty_key is not None:
        raise Refused(empty_key)
    if len(value) > limit:
        raise Refused("matter.refused.too_long", limit=limit)
    return value


def _when(value: str | None) -> datetime | None:
    return from_db(value) if value else None


class MatterService:
    def __init__(self, core: Infra, deliberation: DeliberationService) -> None:
        self.core = core
        # Read only: a round's closed result, for a stage's vote.
        self.deliberation = deliberation
        self.db: Database = core.db
        self.clock = core.clock
        self.t = core.t
        self.fmt = core.formatter
        self.outbox = core.outbox
        self.orgs = core.orgs
        self.people = core.people
        self.tz = core.settings.tz

    # --- rights -----------------------------------------------------------------------------
    async def _is_secretary(self, src: Tx | Database, actor: Actor, org_id: int) -> bool:
        if not isinstance(actor, int) or isinstance(actor, bool):
            return False
        return await src.fetchone("SELECT 1 FROM roles WHERE person_id = ? AND org_id = ? AND role = 'secretary'",
                                  (actor, org_id)) is not None

    async def _leads(self, src: Tx | Database, actor: Actor, org_id: int) -> bool:
        """Reads every matter: the system, admins, secretaries and organisers at or above the org."""
        if is_system(actor):
            return True
        if not isinstance(actor, int):
            return False
        return self.orgs.is_admin(actor) or await self.orgs.has_role_at_or_above(
            actor, org_id, [Role.secretary, Role.organizer], src)  # type: ignore[arg-type]

    async def _belongs(self, src: Tx | Database, actor: Actor, org_id: int) -> bool:
        """A member or resident of the org: reads the published matters."""
        if not isinstance(actor, int):
            return False
        return await src.fetchone("SELECT 1 FROM roles WHERE person_id = ? AND org_id = ?"
                                  " AND role IN ('member', 'resident')", (actor, org_id)) is not None

    async def _may_read(self, src: Tx | Database, actor: Actor, matter: Matter) -> bool:
        return await self._leads(src, actor, matter.org_id) or (
            matter.public and await self._belongs(src, actor, matter.org_id))

    async def may_manage(self, actor: Actor, org_id: int) -> bool:
        """The org's secretary opens its matters and records their stages (for which buttons to show;
        every action checks again)."""
        return await self._is_secretary(self.db, actor, org_id)

    async def _may_set_limit(self, src: Tx | Database, actor: Actor, org_id: int) -> bool:
        if await self._is_secretary(src, actor, org_id):
            return True
        return isinstance(actor, int) and await self.orgs.has_role_at_or_above(
            actor, org_id, [Role.organizer], src)  # type: ignore[arg-type]

    # --- reading ----------------------------------------------------------------------------
    async def _matter(self, matter_id: int, src: Tx | Database | None = None) -> Matter:
        src = src or self.db
        row = await src.fetchone(f"{MATTER_SQL} WHERE m.id = ?", (matter_id,))
        if row is None:
            raise NotFound("matter")
        stages = [await self._stage_record(src, r) for r in await src.fetchall(
            "SELECT * FROM matter_stages WHERE matter_id = ? ORDER BY stage", (matter_id,))]
        return Matter(
            id=row["id"], org_id=row["org_id"], org_name=row["org_name"], title=row["title"],
            description=row["description"], estimate=row["estimate"], opened_by=row["opened_by"],
            opened_at=from_db(row["opened_at"]), stage=row["stage"], status=Status(row["status"]),
            waiting_since=from_db(row["waiting_since"]), end_reason=row["end_reason"],
            decision_text=row["decision_text"], decision_at=_when(row["decision_at"]),
            result_text=row["result_text"], result_media=json.loads(row["result_media"]),
            result_at=_when(row["result_at"]), stages=stages)

    async def _stage_record(self, src: Tx | Database, r: Any) -> StageRecord:
        meeting = ""
        if r["meeting_id"] is not None:
            m = await src.fetchone("SELECT topic, starts_at FROM meetings WHERE id = ?", (r["meeting_id"],))
            if m is not None:
                meeting = f"{clip(m['topic'], MEETING_ROOM)}（{from_db(m['starts_at']).astimezone(self.tz):%Y-%m-%d}）"
        vote = Vote(VoteKind(r["vote"]), r["round_id"], r["yes"], r["no"], r["abstain"])
        return StageRecord(stage=r["stage"], held_on=date.fromisoformat(r["held_on"]), meeting_id=r["meeting_id"],
                           meeting=meeting, outcome=Outcome(r["outcome"]), note=r["note"], vote=vote,
                           present=r["present"], recorded_by=r["recorded_by"], recorded_at=from_db(r["recorded_at"]))

    async def get(self, actor: Actor, matter_id: int) -> Matter:
        matter = await self._matter(matter_id)
        if not await self._may_read(self.db, actor, matter):
            raise NotAllowed("matter")
        return matter

    async def board(self, actor: Actor, org_id: int) -> list[Matter]:
        """The org's matters, those still under way first, then the newest: every matter for those
        who lead, the published ones for the org's members and residents."""
        leads = await self._leads(self.db, actor, org_id)
        if not leads and not await self._belongs(self.db, actor, org_id):
            raise NotAllowed("board")
        public = "" if leads else " AND m.status IN ('published', 'done')"
        rows = await self.db.fetchall(
            f"SELECT id FROM matters m WHERE m.org_id = ?{public}"
            " ORDER BY CASE WHEN m.status IN ('open', 'decided') THEN 0 ELSE 1 END, m.id DESC LIMIT ?",
            (org_id, BOARD_LIMIT))
        return [await self._matter(r[0]) for r in rows]

    async def boards(self, actor: Actor) -> list[tuple[int, str]]:
        """(org id, name) of every board the person may see: where they are secretary, member or
        resident, and the orgs with matters in their organiser subtrees (they supervise, and open none)."""
        if not isinstance(actor, int):
            return []
        out: dict[int, str] = {}
        for grant in await self.orgs.grants(actor):
            if grant.role != Role.organizer:
                out.setdefault(grant.org.id, grant.org.name)
                continue
            for _, org in await self.orgs.subtree(grant.org.id):
                if await self.db.fetchone(
                        "SELECT 1 FROM matters WHERE org_id = ? LIMIT 1", (org.id,)):
                    out.setdefault(org.id, org.name)
        return list(out.items())

    # --- opening ----------------------------------------------------------------------------
    async def open(self, actor: Actor, org_id: int, title: str, description: str = "", estimate: str = "") -> Matter:
        title = _text(title, MAX_TITLE, "matter.refused.empty_title")
        description = _text(description, MAX_DESCRIPTION, None)
        estimate = _text(estimate, MAX_ESTIMATE, None)
        now = to_db(self.clock.now())
        async with self.db.transaction() as tx:
            if not await self._is_secretary(tx, actor, org_id):
                raise NotAllowed("open")
            matter_id = await tx.insert(
                "INSERT INTO matters (org_id, title, description, estimate, opened_by, opened_at, waiting_since)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", (org_id, title, description, estimate, _person(actor), now, now))
            return await self._matter(matter_id, tx)

    async def check_open(self, actor: Actor, org_id: int) -> None:
        if not await self._is_secretary(self.db, actor, org_id):
            raise NotAllowed("open")

    # --- the stages -------------------------------------------------------------------------
    async def _managed(self, src: Tx | Database, actor: Actor, matter_id: int) -> Matter:
        matter = await self._matter(matter_id, src)
        if not await self._is_secretary(src, actor, matter.org_id):
            raise NotAllowed("manage")
        return matter

    def _check_next(self, matter: Matter, stage: int) -> None:
        """Only the stage after the last one passed, on a matter still under way."""
        if matter.status == Status.REJECTED:
            raise Refused("matter.refused.rejected_already", reason=matter.end_reason or "")
        if matter.status != Status.OPEN:
            raise Refused("matter.refused.stages_done")
        if stage != matter.stage + 1:
            raise Refused("matter.refused.out_of_order", stage=self.t(self.core.settings.locale,
                                                                      STAGE_KEYS[matter.stage + 1]))

    async def check_stage(self, actor: Actor, matter_id: int, stage: int) -> Matter:
        """Before the chat asks for a stage's record: the secretary, and the stage is the next one."""
        if stage not in STAGES:
            raise Refused("matter.refused.no_such_stage")
        matter = await self._managed(self.db, actor, matter_id)
        self._check_next(matter, stage)
        return matter

    async def fitting_meetings(self, actor: Actor, matter_id: int, stage: int, lang: str) -> list[PickMeeting]:
        """The org's recent meetings (not cancelled, started by now) of a kind that fits the stage."""
        matter = await self.check_stage(actor, matter_id, stage)
        now = self.clock.now()
        kinds = [k.value for k in FITTING_KINDS[stage]]
        rows = await self.db.fetchall(
            "SELECT id, topic, starts_at FROM meetings WHERE org_id = ? AND status != 'cancelled'"
            " AND kind IN (SELECT value FROM json_each(?)) AND starts_at <= ? AND starts_at >= ?"
            " ORDER BY starts_at DESC, id DESC LIMIT ?",
            (matter.org_id, json.dumps(kinds), to_db(now), to_db(now - RECENT_MEETINGS), PICK_LIMIT))
        return [PickMeeting(r["id"], f"{clip(r['topic'], 20)} "
                                     f"{self.fmt.day(lang, from_db(r['starts_at']), weekday=False)}") for r in rows]

    async def closed_rounds(self, actor: Actor, matter_id: int) -> list[PickRound]:
        """The org's closed deliberation rounds that had a vote, newest first."""
        matter = await self._managed(self.db, actor, matter_id)
        rows = await self.db.fetchall(
            "SELECT id FROM delib_rounds WHERE org_id = ? AND status = 'closed' ORDER BY id DESC LIMIT 50",
            (matter.org_id,))
        out = []
        for row in rows:
            result = await self.deliberation.result(SYSTEM_ACTOR, row[0])
            if result is not None and result.voted:
                out.append(PickRound(row[0], (await self.deliberation.get(SYSTEM_ACTOR, row[0])).title))
            if len(out) >= PICK_LIMIT:
                break
        return out

    async def check_vote(self, actor: Actor, matter_id: int, stage: int, meeting_id: int | None, vote: Vote) -> Vote:
        """The chat checks a vote as soon as it is typed (record_stage checks it again)."""
        matter = await self.check_stage(actor, matter_id, stage)
        present = await self._check_meeting(self.db, matter, stage, meeting_id) if meeting_id else None
        return await self._check_vote(matter, vote, present)

    async def _check_meeting(self, tx: Tx | Database, matter: Matter, stage: int, meeting_id: int) -> int | None:
        """The meeting's org and kind fit; returns how many were present when the meeting's marks say."""
        row = await tx.fetchone("SELECT org_id, kind, status, starts_at FROM meetings WHERE id = ?", (meeting_id,))
        if (row is None or row["org_id"] != matter.org_id or row["status"] == "cancelled"
                or row["kind"] not in FITTING_KINDS[stage] or from_db(row["starts_at"]) > self.clock.now()):
            raise Refused("matter.refused.bad_meeting")
        present = await tx.fetchval(
            "SELECT COUNT(*) FROM meeting_attendees WHERE meeting_id = ?"
            " AND (presence = 'present' OR (presence IS NULL AND checked_in_at IS NOT NULL))", (meeting_id,))
        return int(present) or None

    async def _check_vote(self, matter: Matter, vote: Vote, present: int | None) -> Vote:
        if vote.kind == VoteKind.NONE:
            return Vote()
        if vote.kind == VoteKind.ROUND:
            if vote.round_id is None:
                raise Refused("matter.refused.bad_round")
            try:
                rnd = await self.deliberation.get(SYSTEM_ACTOR, vote.round_id)
            except NotFound:
                raise Refused("matter.refused.bad_round") from None
            result = await self.deliberation.result(SYSTEM_ACTOR, rnd.id)
            if rnd.org_id != matter.org_id or rnd.status != "closed" or result is None or not result.voted:
                raise Refused("matter.refused.bad_round")
            return Vote(VoteKind.ROUND, rnd.id)
        counts = (vote.yes, vote.no, vote.abstain)
        if any(n is None or n < 0 or n > MAX_COUNT for n in counts) or sum(counts) == 0:  # type: ignore[arg-type, misc]
            raise Refused("matter.refused.bad_counts")
        total = sum(counts)  # type: ignore[arg-type]
        if present is not None and total > present:
            raise Refused("matter.refused.more_than_present", total=total, present=present)
        return Vote(VoteKind.PAPER, None, vote.yes, vote.no, vote.abstain)

    async def record_stage(self, actor: Actor, matter_id: int, stage: int, entry: StageEntry) -> Matter:
        """Record the next stage. A rejected stage ends the matter with its reason (the note); the
        fourth stage passed makes it decided."""
        if stage not in STAGES:
            raise Refused("matter.refused.no_such_stage")
        note = _text(entry.note, MAX_NOTE, "matter.refused.empty_reason" if entry.outcome == Outcome.REJECTED else None)
        now = self.clock.now()
        if entry.held_on > now.astimezone(self.tz).date():
            raise Refused("matter.refused.future_date")
        async with self.db.transaction() as tx:
            matter = await self._managed(tx, actor, matter_id)
            self._check_next(matter, stage)
            if matter.stages and entry.held_on < matter.stages[-1].held_on:
                raise Refused("matter.refused.before_previous")
            present = None
            if entry.meeting_id is not None:
                present = await self._check_meeting(tx, matter, stage, entry.meeting_id)
            vote = await self._check_vote(matter, entry.vote, present)
            await tx.execute(
                "INSERT INTO matter_stages (matter_id, stage, held_on, meeting_id, outcome, note, vote, round_id,"
                " yes, no, abstain, present, recorded_by, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (matter.id, stage, entry.held_on.isoformat(), entry.meeting_id, entry.outcome.value, note,
                 vote.kind.value, vote.round_id, vote.yes, vote.no, vote.abstain, present, _person(actor), to_db(now)))
            await self._advance(tx, matter, stage, entry.outcome, note, now)
            return await self._matter(matter.id, tx)

    async def _advance(self, tx: Tx, matter: Matter, stage: int, outcome: Outcome, note: str, now: datetime) -> None:
        if outcome == Outcome.REJECTED:
            status, ended, reason = Status.REJECTED, to_db(now), note
        else:
            status, ended, reason = (Status.DECIDED if stage == 4 else Status.OPEN), None, None
        cur = await tx.execute(
            "UPDATE matters SET stage = ?, status = ?, waiting_since = ?, ended_at = ?, end_reason = ?"
            " WHERE id = ? AND stage = ? AND status = 'open'",
            (stage if outcome == Outcome.PASSED else matter.stage, status.value, to_db(now), ended, reason,
             matter.id, stage - 1))
        if not cur.rowcount:  # another press got there first
            raise Refused("matter.refused.stages_done")

    # --- publication ------------------------------------------------------------------------
    async def check_publish(self, actor: Actor, matter_id: int, what: str) -> Matter:
        """Before the chat asks for the text: the secretary, and the matter is ready for it."""
        matter = await self._managed(self.db, actor, matter_id)
        self._check_publishable(matter, what)
        return matter

    def _check_publishable(self, matter: Matter, what: str) -> None:
        if what == "decision":
            if matter.status == Status.REJECTED:
                raise Refused("matter.refused.rejected_already", reason=matter.end_reason or "")
            if matter.status == Status.OPEN or len(matter.stages) < 4:
                raise Refused("matter.refused.not_decided", done=matter.stage)
            if matter.status != Status.DECIDED:
                raise Refused("matter.refused.published_already")
        else:
            if matter.status in (Status.OPEN, Status.DECIDED, Status.REJECTED):
                raise Refused("matter.refused.decision_first")
            if matter.status == Status.DONE:
                raise Refused("matter.refused.published_already")

    async def _residents(self, src: Tx | Database, org_id: int) -> list[int]:
        rows = await src.fetchall("SELECT DISTINCT person_id FROM roles WHERE org_id = ? AND role = 'resident'"
                                  " ORDER BY person_id", (org_id,))
        return [r[0] for r in rows]

    async def publish_decision(self, actor: Actor, matter_id: int, text: str) -> Matter:
        """决议公开: all four stages passed; the decision goes to the wall chat and every resident."""
        # Public (wall chat, every resident, the web page): masked like every public text.
        text = mask_public(_text(text, MAX_DECISION, "matter.refused.empty_text"))
        now = self.clock.now()
        async with self.db.transaction() as tx:
            matter = await self._managed(tx, actor, matter_id)
            self._check_publishable(matter, "decision")
            cur = await tx.execute(
                "UPDATE matters SET status = 'published', decision_text = ?, decision_at = ?, decision_by = ?,"
                " waiting_since = ? WHERE id = ? AND status = 'decided'",
                (text, to_db(now), _person(actor), to_db(now), matter.id))
            if not cur.rowcount:
                raise Refused("matter.refused.published_already")
            matter = await self._matter(matter.id, tx)
            await self._publish(tx, matter, "d", Purpose.DECISION, now, actor, [])
            return matter

    async def publish_result(self, actor: Actor, matter_id: int, text: str,
                             photos: Sequence[tuple[int, int]] = ()) -> Matter:
        """实施结果公开, with up to five photos (chat id, message id), after the decision."""
        text = mask_public(_text(text, MAX_RESULT, "matter.refused.empty_text"))
        if len(photos) > MAX_PHOTOS:
            raise Refused("matter.refused.too_many_photos", limit=MAX_PHOTOS)
        now = self.clock.now()
        media = [{"chat_id": c, "message_id": m} for c, m in photos]
        async with self.db.transaction() as tx:
            matter = await self._managed(tx, actor, matter_id)
            self._check_publishable(matter, "result")
            cur = await tx.execute(
                "UPDATE matters SET status = 'done', result_text = ?, result_media = ?, result_at = ?, result_by = ?"
                " WHERE id = ? AND status = 'published'",
                (text, json.dumps(media), to_db(now), _person(actor), matter.id))
            if not cur.rowcount:
                raise Refused("matter.refused.published_already")
            matter = await self._matter(matter.id, tx)
            await self._publish(tx, matter, "r", Purpose.RESULT, now, actor, media)
            return matter

    async def _publish(self, tx: Tx, matter: Matter, tag: str, purpose: Purpose, now: datetime, actor: Actor,
                       media: list[dict[str, int]]) -> None:
        """To every resident of the org (after quiet hours, behind urgent messages) and to the org's
        wall chat; photos are copied after the text."""
        at = after_quiet(now, self.tz)
        targets: list[tuple[int, str, str]] = [
            (pid, await self.people.language(pid, tx), f"vm:{matter.id}:{tag}:{pid}")
            for pid in await self._residents(tx, matter.org_id) if pid != actor]
        chat = await tx.fetchone("SELECT chat_id FROM wall_chats WHERE org_id = ?", (matter.org_id,))
        if chat is not None:
            targets.append((chat["chat_id"], self.core.settings.locale, f"vm:{matter.id}:{tag}w"))
        for chat_id, lang, key in targets:
            text = await (self.decision_text(lang, matter) if tag == "d" else self.result_notice(lang, matter))
            wall = chat_id < 0
            await self.outbox.send_text(tx, key=key, chat_id=chat_id, text=text, not_before=at,
                                        purpose=Purpose.WALL if wall else purpose, subject_id=matter.id,
                                        priority=Priority.NORMAL if wall else Priority.BULK)
            for n, item in enumerate(media):
                await self.outbox.enqueue(
                    tx, key=f"{key}:{n}", chat_id=chat_id, method="copyMessage", not_before=at,
                    payload={"chat_id": chat_id, "from_chat_id": item["chat_id"], "message_id": item["message_id"]},
                    purpose=Purpose.WALL if wall else purpose, subject_id=matter.id,
                    priority=Priority.NORMAL if wall else Priority.BULK)

    # --- texts ------------------------------------------------------------------------------
    async def vote_text(self, lang: str, vote: Vote, present: int | None) -> str:
        if vote.kind == VoteKind.PAPER:
            text = self.t(lang, "matter.vote.paper", yes=vote.yes, no=vote.no, abstain=vote.abstain)
            return text + (self.t(lang, "matter.vote.present", n=present) if present else "")
        if vote.kind == VoteKind.ROUND and vote.round_id is not None:
            rnd = await self.deliberation.get(SYSTEM_ACTOR, vote.round_id)
            result = await self.deliberation.result(SYSTEM_ACTOR, vote.round_id)
            counts = self.t(lang, "matter.vote.list_sep").join(
                self.t(lang, "matter.vote.option", label=label, n=n) for label, n in (result.options if result else []))
            return self.t(lang, "matter.vote.round", title=rnd.title, counts=counts,
                          ballots=result.ballots if result else 0, eligible=result.eligible if result else 0)
        return ""

    async def stage_line(self, lang: str, record: StageRecord) -> str:
        outcome = self.t(lang, OUTCOME_KEYS[record.outcome.value])
        parts = [self.t(lang, "matter.card.stage_done", stage=self.t(lang, STAGE_KEYS[record.stage]),
                        day=self.fmt.day(lang, record.held_on, weekday=False), outcome=outcome)]
        if record.meeting:
            parts.append(self.t(lang, "matter.card.meeting", meeting=record.meeting))
        vote = await self.vote_text(lang, record.vote, record.present)
        if vote:
            parts.append(clip(vote, VOTE_ROOM))
        if record.note:
            parts.append(self.t(lang, "matter.card.note", note=clip(record.note, NOTE_ROOM)))
        return "\n    ".join(parts)

    def status_text(self, lang: str, matter: Matter) -> str:
        """Where the matter stands, in plain words."""
        if matter.status == Status.OPEN:
            return self.t(lang, "matter.status.waiting", stage=self.t(lang, STAGE_KEYS[matter.stage + 1]))
        return self.t(lang, STATUS_KEYS[matter.status.value])

    async def card(self, lang: str, matter: Matter) -> str:
        """The matter's whole record as the chat shows it."""
        lines = [self.t(lang, "matter.card.title", title=matter.title, org=matter.org_name)]
        if matter.estimate:
            lines.append(self.t(lang, "matter.card.estimate", estimate=matter.estimate))
        if matter.description:
            lines.append(self.t(lang, "matter.card.description", text=clip(matter.description, ROOM)))
        lines.append(self.t(lang, "matter.card.opened", day=self.fmt.day(lang, matter.opened_at, weekday=False)))
        done = {r.stage: r for r in matter.stages}
        for stage in STAGES:
            if stage in done:
                lines.append(await self.stage_line(lang, done[stage]))
            else:
                lines.append(self.t(lang, "matter.card.stage_todo", stage=self.t(lang, STAGE_KEYS[stage])))
        if matter.decision_at is not None:
            lines.append(self.t(lang, "matter.card.decision",
                                day=self.fmt.day(lang, matter.decision_at, weekday=False)))
        if matter.result_at is not None:
            lines.append(self.t(lang, "matter.card.result", day=self.fmt.day(lang, matter.result_at, weekday=False)))
        lines.append(self.status_text(lang, matter))
        if matter.status == Status.REJECTED:
            lines.append(self.t(lang, "matter.card.reason", reason=matter.end_reason or ""))
        return "\n".join(lines)

    async def decision_text(self, lang: str, matter: Matter) -> str:
        """决议公开 as residents and the wall read it: the matter, the decision, the path it took."""
        path = "\n".join([await self.stage_line(lang, r) for r in matter.stages])
        return self.t(lang, "matter.publish.decision", title=matter.title, org=matter.org_name,
                      estimate=matter.estimate or self.t(lang, "matter.publish.no_estimate"),
                      text=clip(matter.decision_text or "", ROOM), path=path)

    async def result_notice(self, lang: str, matter: Matter) -> str:
        return self.t(lang, "matter.publish.result", title=matter.title, org=matter.org_name,
                      text=clip(matter.result_text or "", MAX_RESULT), photos=len(matter.result_media))

    # --- the limit --------------------------------------------------------------------------
    async def stall_days(self, actor: Actor, org_id: int) -> int:
        if not await self._leads(self.db, actor, org_id):
            raise NotAllowed("settings")
        return await self._stall_days(self.db, org_id)

    async def _stall_days(self, src: Tx | Database, org_id: int) -> int:
        days = await src.fetchval("SELECT stall_days FROM matter_settings WHERE org_id = ?", (org_id,))
        return int(days) if days is not None else DEFAULT_STALL_DAYS

    async def set_stall_days(self, actor: Actor, org_id: int, days: int) -> int:
        """The org's limit: the secretary, or an organiser at or above the org."""
        if not STALL_DAYS[0] <= days <= STALL_DAYS[1]:
            raise Refused("matter.refused.bad_days", low=STALL_DAYS[0], high=STALL_DAYS[1])
        async with self.db.transaction() as tx:
            if not await self._may_set_limit(tx, actor, org_id):
                raise NotAllowed("settings")
            await tx.execute(
                "INSERT INTO matter_settings (org_id, stall_days, updated_by, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(org_id) DO UPDATE SET stall_days = excluded.stall_days,"
                " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                (org_id, days, _person(actor), to_db(self.clock.now())))
        return days

    # --- the export (台账) ------------------------------------------------------------------
    async def export(self, actor: Actor, org_id: int, lang: str) -> tuple[str, bytes]:
        """Every matter of the org with its whole record, as an Excel workbook."""
        org, items = await self.ledger_matters(actor, org_id, lang)
        content = await asyncio.to_thread(matters_ledger.render, items, self.t, self.fmt, lang)
        day = self.fmt.day(lang, self.clock.now(), weekday=False, year=True)
        return file_name(self.t(lang, "matter.ledger.file_name", org=org.name[:60], day=day)), content

    async def ledger_matters(self, actor: Actor, org_id: int, lang: str, first: date | None = None,
                             last: date | None = None) -> tuple[Org, list[matters_ledger.LedgerMatter]]:
        """The org and its matters for the ledger: all of them, or those under way at some time in
        [first, last] (opened by its end, not finished or rejected before its start)."""
        org = await self.orgs.get(org_id)
        if org is None:
            raise NotFound("org")
        if not await self._leads(self.db, actor, org_id):
            raise NotAllowed("export")
        rows = await self.db.fetchall("SELECT id FROM matters WHERE org_id = ? ORDER BY id", (org_id,))
        matters = [await self._matter(row[0]) for row in rows]
        if first is not None and last is not None:
            def ended(m: Matter) -> datetime | None:
                return m.result_at if m.status == Status.DONE else (
                    m.waiting_since if m.status == Status.REJECTED else None)
            matters = [m for m in matters if self.fmt.local(m.opened_at).date() <= last
                       and ((end := ended(m)) is None or self.fmt.local(end).date() >= first)]
        return org, [await self._ledger_matter(lang, m) for m in matters]

    async def _ledger_matter(self, lang: str, matter: Matter) -> matters_ledger.LedgerMatter:
        stages = [matters_ledger.LedgerStage(
            stage=self.t(lang, STAGE_KEYS[r.stage]), held_on=r.held_on, meeting=r.meeting,
            outcome=self.t(lang, OUTCOME_KEYS[r.outcome.value]),
            vote=await self.vote_text(lang, r.vote, r.present), note=r.note) for r in matter.stages]
        return matters_ledger.LedgerMatter(
            opened_at=matter.opened_at, title=matter.title, estimate=matter.estimate, description=matter.description,
            status=self.status_text(lang, matter), reason=matter.end_reason or "", decision_at=matter.decision_at,
            decision=matter.decision_text or "", result_at=matter.result_at, result=matter.result_text or "",
            photos=len(matter.result_media), stages=stages)

    # --- the periodic job -------------------------------------------------------------------
    async def tick(self, actor: Actor) -> int:
        """Remind of matters stalled on a step: the secretaries after the org's limit, the
        organisers above after twice the limit; each once per matter and step (claimed in
        matter_reminders, in the same transaction as the messages)."""
        if not isinstance(actor, SystemActor):
            raise NotAllowed("tick")
        now = self.clock.now()
        done = 0
        rows = await self.db.fetchall(
            "SELECT id, org_id, stage, waiting_since FROM matters WHERE status IN ('open', 'decided')"
            " AND waiting_since <= ? ORDER BY id", (to_db(now - timedelta(days=STALL_DAYS[0])),))
        for row in rows:
            limit = timedelta(days=await self._stall_days(self.db, row["org_id"]))
            waited = now - from_db(row["waiting_since"])
            step = row["stage"] + 1
            for level, due in (("secretary", limit), ("organizer", 2 * limit)):
                if waited >= due:
                    async with self.db.transaction() as tx:
                        done += await self._remind(tx, row["id"], step, level, now)
        return done

    async def _remind(self, tx: Tx, matter_id: int, step: int, level: str, now: datetime) -> int:
        cur = await tx.execute("INSERT OR IGNORE INTO matter_reminders (matter_id, step, level, done_at)"
                               " VALUES (?, ?, ?, ?)", (matter_id, step, level, to_db(now)))
        if not cur.rowcount:
            return 0
        matter = await self._matter(matter_id, tx)
        people = await self._reminded(tx, matter.org_id, level)
        at = after_quiet(now, self.tz)
        days = (now - matter.waiting_since).days
        for pid in people:
            lang = await self.people.language(pid, tx)
            what = (self.t(lang, STAGE_KEYS[step]) if step in STAGES else self.t(lang, "matter.step.decision"))
            text = self.t(lang, STALLED_KEYS[level], title=matter.title, org=matter.org_name, step=what,
                          days=days)
            buttons = [[Button(self.t(lang, "matter.button.open"), MATTER(MatterAct.VIEW, matter.id))]]
            await self.outbox.send_text(tx, key=f"vm:{matter.id}:s{step}:{level}:{pid}", chat_id=pid, text=text,
                                        buttons=buttons, not_before=at, purpose=Purpose.STALLED, subject_id=matter.id)
        log.info("matter %s stalled on step %s: %s reminded (%s)", matter.id, step, level, len(people))
        return 1

    async def _reminded(self, tx: Tx, org_id: int, level: str) -> list[int]:
        """The org's secretaries; or the organisers of the nearest org above that has any."""
        if level == "secretary":
            rows = await tx.fetchall("SELECT person_id FROM roles WHERE org_id = ? AND role = 'secretary'"
                                     " ORDER BY person_id", (org_id,))
            return [r[0] for r in rows]
        for org in (await self.orgs.ancestors(org_id, tx))[1:]:
            rows = await tx.fetchall("SELECT person_id FROM roles WHERE org_id = ? AND role = 'organizer'"
                                     " ORDER BY person_id", (org.id,))
            if rows:
                return [r[0] for r in rows]
        return []
