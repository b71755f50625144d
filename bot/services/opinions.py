"""The opinion map of a deliberation round (issue 13, after Pol.is): instead of free opinions,
participants write short statements and react to others' one at a time (agree / disagree / pass);
the analysis (bot/services/opinion_analysis.py) finds the opinion groups, the statements every
group accepts, each group's representative statements and the most divisive ones.

- The round's opener turns the map on (status 'draft'), seeds up to 30 statements, and opens it
  (status 'open'): the audience is told through the outbox. Participants vote and write statements
  until the round's deadline. After the close the tick fixes the result ('final') and publishes
  it, with the chart, to the participants and the org's wall chat.
- Every right is the round's (DeliberationService.access), checked from the database in the same
  transaction as the change. A forged or stale button changes nothing.
- Anonymity: statements never show who wrote them; the analysis, the stored snapshot, the chart,
  the result and the ledger hold counts and masked texts, never a person's id or name. Votes are
  kept per person (a person sees only what they have not voted on yet, and where they stand).
- The analysis runs in a worker thread, at most once a minute while the map is open and only when
  something changed, and once at the close; the last one is stored (snapshot and PNG)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np

from bot.actors import SYSTEM_ACTOR, Actor, SystemActor, is_system
from bot.callbacks import OM_ROUND, OmAct
from bot.clock import from_db, to_db
from bot.database import Database, Tx
from bot.infra import Infra
from bot.limits import MAX_CAPTION, MAX_TEXT, clip
from bot.outbox import Button, Priority
from bot.services import opinion_analysis, opinion_chart
from bot.services.deliberation import DeliberationService, Phase, Round
from bot.services.masking import mask_public
from bot.services.meeting_time import after_quiet
from bot.services.opinion_text import result_lines
from bot.services.orgs import NotAllowed, NotFound, Refused, Role

log = logging.getLogger(__name__)

MAX_STATEMENT = 140
MAX_SEEDS = 30
MAX_PER_PERSON = 10         # statements one person may write in a round (the rest is for voting)
FEW_VOTES = 5               # a statement with fewer votes than this is shown before the "useful" ones
RECOMPUTE = timedelta(minutes=1)
MIN_VOTES = opinion_analysis.MIN_VOTES
HIDE_REASONS = ("om.hide.reason.abuse", "om.hide.reason.off_topic", "om.hide.reason.personal")
LIST_PAGE = 8


class Choice(IntEnum):
    AGREE = 1
    DISAGREE = -1
    PASS = 0


class Purpose(StrEnum):
    OPEN = "opinions/open"
    RESULT = "opinions/result"
    WALL = "opinions/wall"
    HIDDEN = "opinions/hidden"


@dataclass(frozen=True)
class Statement:
    id: int
    text: str            # masked
    votes: int
    seed: bool
    hidden: bool


@dataclass(frozen=True)
class MapState:
    status: str          # draft | open | final
    statements: int
    seeds: int
    computed: bool       # a map has been drawn


@dataclass(frozen=True)
class VoteScreen:
    round: Round
    statement: Statement | None   # None: nothing left to vote on
    voted: int
    total: int
    position: tuple[int, int] | None  # (group number from 1, its size) once the person has MIN_VOTES votes
    recorded: bool = True         # False: this press had been counted before (a second tap)


def _check_statement(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise Refused("om.refused.empty")
    if len(text) > MAX_STATEMENT:
        raise Refused("om.refused.too_long", limit=MAX_STATEMENT, n=len(text))
    return text


def _active(rnd: Round, now: datetime) -> bool:
    return rnd.phase(now) in (Phase.OPINIONS, Phase.VOTING)


class OpinionMapService:
    def __init__(self, core: Infra, deliberation: DeliberationService) -> None:
        self.core = core
        self.db: Database = core.db
        self.clock = core.clock
        self.t = core.t
        self.fmt = core.formatter
        self.outbox = core.outbox
        self.people = core.people
        self.orgs = core.orgs
        self.delib = deliberation
        self._snapshots: dict[int, tuple[str, dict[str, Any]]] = {}  # round → (computed_at, parsed)

    # --- reading ----------------------------------------------------------------------------
    async def _map(self, src: Tx | Database, round_id: int) -> Any:
        return await src.fetchone("SELECT round_id, status, computed_at, snapshot, chart FROM om_maps"
                                  " WHERE round_id = ?", (round_id,))

    async def state(self, actor: Actor, round_id: int) -> MapState | None:
        """Whether the round has a map and how far it is; for those who may read the round."""
        await self.delib.get(actor, round_id)
        row = await self._map(self.db, round_id)
        if row is None:
            return None
        counts = await self.db.fetchone(
            "SELECT COUNT(*) AS n, COALESCE(SUM(seed), 0) AS seeds FROM om_statements"
            " WHERE round_id = ? AND hidden_at IS NULL", (round_id,))
        return MapState(status=row["status"], statements=int(counts["n"]), seeds=int(counts["seeds"]),
                        computed=row["chart"] is not None)

    async def _snapshot(self, round_id: int) -> dict[str, Any] | None:
        """The last analysis, parsed once per recomputation (every vote asks for it)."""
        computed = await self.db.fetchval("SELECT computed_at FROM om_maps WHERE round_id = ?", (round_id,))
        if computed is None:
            return None
        cached = self._snapshots.get(round_id)
        if cached is None or cached[0] != computed:
            text = await self.db.fetchval("SELECT snapshot FROM om_maps WHERE round_id = ?", (round_id,))
            cached = (computed, json.loads(text))
            self._snapshots[round_id] = cached
        return cached[1]

    # --- the opener -------------------------------------------------------------------------
    async def _opener_round(self, tx: Tx, actor: Actor, round_id: int) -> Round:
        rnd, _, manage = await self.delib.access(tx, actor, round_id)
        if not manage:
            raise NotAllowed("opinion map")
        if rnd.status != "open" or not _active(rnd, self.clock.now()):
            raise Refused("om.refused.round_over")
        return rnd

    async def enable(self, actor: Actor, round_id: int) -> bool:
        """The opener turns the map on (to seed statements before opening it). False if it was on."""
        async with self.db.transaction() as tx:
            await self._opener_round(tx, actor, round_id)
            cur = await tx.execute("INSERT INTO om_maps (round_id, enabled_at) VALUES (?, ?)"
                                   " ON CONFLICT DO NOTHING", (round_id, to_db(self.clock.now())))
            return bool(cur.rowcount)

    async def check_seed(self, actor: Actor, round_id: int) -> int:
        """Before the chat asks for seed statements: the opener, the map still being prepared.
        Returns how many seeds there are."""
        async with self.db.transaction() as tx:
            await self._opener_round(tx, actor, round_id)
            status = await tx.fetchval("SELECT status FROM om_maps WHERE round_id = ?", (round_id,))
            if status is None:
                raise Refused("om.refused.no_map")
            if status != "draft":
                raise Refused("om.refused.already_open")
            return int(await tx.fetchval("SELECT COUNT(*) FROM om_statements WHERE round_id = ? AND seed = 1",
                                         (round_id,)))

    async def seed(self, actor: Actor, round_id: int, texts: list[str]) -> int:
        """The opener's statements, before the map opens (up to MAX_SEEDS in all). Returns how many
        seeds there are now."""
        cleaned = list(dict.fromkeys(_check_statement(t) for t in texts if t.strip()))
        if not cleaned:
            raise Refused("om.refused.empty")
        now = to_db(self.clock.now())
        async with self.db.transaction() as tx:
            await self._opener_round(tx, actor, round_id)
            row = await self._map(tx, round_id)
            if row is None:
                raise Refused("om.refused.no_map")
            if row["status"] != "draft":
                raise Refused("om.refused.already_open")
            have = int(await tx.fetchval("SELECT COUNT(*) FROM om_statements WHERE round_id = ? AND seed = 1",
                                         (round_id,)))
            if have + len(cleaned) > MAX_SEEDS:
                raise Refused("om.refused.too_many_seeds", limit=MAX_SEEDS, n=have)
            assert isinstance(actor, int)
            await tx.executemany(
                "INSERT INTO om_statements (round_id, author_id, seed, text, created_at) VALUES (?, ?, 1, ?, ?)",
                [(round_id, actor, text, now) for text in cleaned])
            return have + len(cleaned)

    async def open_map(self, actor: Actor, round_id: int) -> int:
        """The opener opens the map for voting: the audience is told (after quiet hours). Returns
        how many were told."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            rnd = await self._opener_round(tx, actor, round_id)
            cur = await tx.execute("UPDATE om_maps SET status = 'open', opened_at = ? WHERE round_id = ?"
                                   " AND status = 'draft'", (to_db(now), round_id))
            if not cur.rowcount:
                raise Refused("om.refused.no_map" if await self._map(tx, round_id) is None
                              else "om.refused.already_open")
            people = [p for p in await self.delib.audience_of(tx, rnd) if p != actor]
            at = after_quiet(now, self.core.settings.tz)
            for pid in people:
                lang = await self.people.language(pid, tx)
                await self.outbox.send_text(
                    tx, key=f"om:{rnd.id}:open:{pid}", chat_id=pid, not_before=at,
                    text=self.t(lang, "om.open_notice", title=rnd.title),
                    buttons=[[Button(self.t(lang, "om.button.vote"), OM_ROUND(OmAct.START, rnd.id))]],
                    purpose=Purpose.OPEN, subject_id=rnd.id, priority=Priority.BULK)
            return len(people)

    async def statements(self, actor: Actor, round_id: int, page: int) -> tuple[list[Statement], int]:
        """The opener's list (newest first, masked) to hide an abusive statement."""
        rnd, _, manage = await self.delib.access(self.db, actor, round_id)
        if not manage:
            raise NotAllowed("opinion map")
        total = await self.db.fetchval("SELECT COUNT(*) FROM om_statements WHERE round_id = ?", (rnd.id,))
        rows = await self.db.fetchall("SELECT * FROM om_statements WHERE round_id = ? ORDER BY id DESC"
                                      " LIMIT ? OFFSET ?", (rnd.id, LIST_PAGE, max(page, 0) * LIST_PAGE))
        return [_statement(r) for r in rows], int(total)

    async def hide(self, actor: Actor, statement_id: int, reason: str) -> bool:
        """The opener hides an abusive statement (as with opinions): nobody is shown it any more and
        the analysis leaves it out. Recorded in the round's record. False when hidden already."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT round_id, hidden_at, author_id, text FROM om_statements WHERE id = ?",
                                    (statement_id,))
            if row is None:
                raise NotFound("statement")
            rnd = await self._opener_round(tx, actor, row["round_id"])
            if row["hidden_at"] is not None:
                return False
            if row["author_id"] != actor:  # the author is told, as for a hidden opinion
                lang = await self.people.language(row["author_id"], tx)
                await self.outbox.send_text(
                    tx, key=f"om:{rnd.id}:h:{statement_id}", chat_id=row["author_id"], purpose=Purpose.HIDDEN,
                    subject_id=rnd.id, text=self.t(lang, "om.hide.notice", title=rnd.title, reason=reason,
                                                   text=mask_public(row["text"])))
            await tx.execute("UPDATE om_statements SET hidden_at = ?, hidden_by = ?, hidden_reason = ? WHERE id = ?",
                             (to_db(self.clock.now()), actor, reason, statement_id))
            await tx.execute("UPDATE om_maps SET votes_seen = votes_seen + 1 WHERE round_id = ?", (row["round_id"],))
            await tx.execute("INSERT INTO delib_events (round_id, at, actor_id, action, person_id, note)"
                             " VALUES (?, ?, ?, 'hide', NULL, ?)",
                             (row["round_id"], to_db(self.clock.now()), actor, f"#{statement_id} {reason}"))
            return True

    # --- participants -----------------------------------------------------------------------
    async def _participant_round(self, src: Tx | Database, actor: Actor, round_id: int) -> Round:
        rnd, audience, _ = await self.delib.access(src, actor, round_id)
        if not audience:
            raise NotAllowed("not in the audience")
        status = await src.fetchval("SELECT status FROM om_maps WHERE round_id = ?", (round_id,))
        if status is None or status == "draft":
            raise Refused("om.refused.not_open")
        if status != "open" or rnd.status != "open" or not _active(rnd, self.clock.now()):
            raise Refused("om.refused.round_over")
        return rnd

    async def screen(self, actor: Actor, round_id: int) -> VoteScreen:
        """What to show next to this person (表态)."""
        rnd = await self._participant_round(self.db, actor, round_id)
        return await self._screen(self.db, rnd, actor)

    async def vote(self, actor: Actor, statement_id: int, choice: int) -> VoteScreen:
        """One vote (agree / disagree / pass), then the next statement to show. A second press on
        the same statement changes nothing (recorded=False) and shows the next one too."""
        if choice not in (Choice.AGREE, Choice.DISAGREE, Choice.PASS):
            raise ValueError(choice)
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT round_id, hidden_at FROM om_statements WHERE id = ?", (statement_id,))
            if row is None:
                raise NotFound("statement")
            rnd = await self._participant_round(tx, actor, row["round_id"])
            recorded = False
            if row["hidden_at"] is None:
                cur = await tx.execute("INSERT INTO om_votes (statement_id, person_id, round_id, vote)"
                                       " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                       (statement_id, actor, rnd.id, int(choice)))
                recorded = bool(cur.rowcount)
                if recorded:
                    await tx.execute("UPDATE om_statements SET votes = votes + 1 WHERE id = ?", (statement_id,))
                    await tx.execute("UPDATE om_maps SET votes_seen = votes_seen + 1 WHERE round_id = ?", (rnd.id,))
            screen = await self._screen(tx, rnd, actor)
            if recorded and screen.voted == 1:  # the first vote is taking part: no opinion reminder
                assert isinstance(actor, int)
                await self.delib.took_part(tx, rnd, actor)
        return VoteScreen(screen.round, screen.statement, screen.voted, screen.total, screen.position, recorded)

    async def _screen(self, src: Tx | Database, rnd: Round, person: Actor) -> VoteScreen:
        # Unseen first (everything not voted on by this person), then those few have voted on,
        # then the ones the last analysis found most useful (separating or bridging groups).
        row = await src.fetchone(
            "SELECT * FROM om_statements s WHERE s.round_id = ? AND s.hidden_at IS NULL AND NOT EXISTS"
            " (SELECT 1 FROM om_votes v WHERE v.person_id = ? AND v.statement_id = s.id)"
            " ORDER BY MIN(s.votes, ?), s.priority DESC, s.votes, s.id LIMIT 1", (rnd.id, person, FEW_VOTES))
        counts = await src.fetchone(
            "SELECT (SELECT COUNT(*) FROM om_statements WHERE round_id = ? AND hidden_at IS NULL) AS total,"
            " (SELECT COUNT(*) FROM om_votes v JOIN om_statements s ON s.id = v.statement_id"
            "  WHERE v.round_id = ? AND v.person_id = ? AND s.hidden_at IS NULL) AS voted",
            (rnd.id, rnd.id, person))
        voted = int(counts["voted"])
        position = await self._position(src, rnd.id, person) if voted >= MIN_VOTES else None
        return VoteScreen(rnd, _statement(row) if row is not None else None, voted, int(counts["total"]), position)

    async def _position(self, src: Tx | Database, round_id: int, person: Actor) -> tuple[int, int] | None:
        """The group whose members vote most like this person, on the last map, and its size."""
        snap = await self._snapshot(round_id)
        if snap is None or int(snap["k"]) < 2:
            return None
        column = {int(sid): i for i, sid in enumerate(snap["order"])}
        row = np.zeros(len(column))
        count = 0
        for r in await src.fetchall("SELECT statement_id, vote FROM om_votes WHERE round_id = ? AND person_id = ?",
                                    (round_id, person)):
            if r[0] in column:
                row[column[r[0]]] = r[1]
                count += 1
        group = opinion_analysis.place(snap["model"], row, count)
        if group is None or count == 0:
            return None
        return group + 1, int(snap["sizes"][group])

    async def check_can_write(self, actor: Actor, round_id: int) -> Round:
        """Before the chat asks for a statement: the same checks as `add_statement`."""
        rnd = await self._participant_round(self.db, actor, round_id)
        await self._check_quota(self.db, actor, rnd.id)
        return rnd

    async def _check_quota(self, src: Tx | Database, actor: Actor, round_id: int) -> None:
        mine = await src.fetchval("SELECT COUNT(*) FROM om_statements WHERE round_id = ? AND author_id = ?",
                                  (round_id, actor))
        if int(mine) >= MAX_PER_PERSON:
            raise Refused("om.refused.too_many_mine", limit=MAX_PER_PERSON)

    async def add_statement(self, actor: Actor, round_id: int, text: str) -> int:
        """A participant's statement (never shown with their name); they are counted as agreeing."""
        text = _check_statement(text)
        async with self.db.transaction() as tx:
            rnd = await self._participant_round(tx, actor, round_id)
            await self._check_quota(tx, actor, rnd.id)
            if await tx.fetchone("SELECT 1 FROM om_statements WHERE round_id = ? AND text = ? AND hidden_at IS NULL",
                                 (rnd.id, text)) is not None:
                raise Refused("om.refused.duplicate")
            statement_id = await tx.insert(
                "INSERT INTO om_statements (round_id, author_id, text, created_at, votes) VALUES (?, ?, ?, ?, 1)",
                (rnd.id, actor, text, to_db(self.clock.now())))
            await tx.execute("INSERT INTO om_votes (statement_id, person_id, round_id, vote) VALUES (?, ?, ?, 1)",
                             (statement_id, actor, rnd.id))
            await tx.execute("UPDATE om_maps SET votes_seen = votes_seen + 1 WHERE round_id = ?", (rnd.id,))
            assert isinstance(actor, int)
            await self.delib.took_part(tx, rnd, actor)
            return statement_id

    # --- the map ----------------------------------------------------------------------------
    async def live_map(self, actor: Actor, round_id: int) -> tuple[bytes | None, dict[str, Any] | None]:
        """The last map (PNG) and its figures: for the opener while the round runs; for everyone
        who may read the round once the result is fixed."""
        rnd, _, manage = await self.delib.access(self.db, actor, round_id)
        row = await self._map(self.db, round_id)
        if row is None:
            raise Refused("om.refused.no_map")
        if row["status"] != "final" and not manage:
            raise NotAllowed("live map")
        if row["status"] == "final":
            await self.delib.get(actor, rnd.id)
        return (bytes(row["chart"]) if row["chart"] is not None else None), await self._snapshot(round_id)

    async def _matrix(self, round_id: int) -> tuple[list[int], np.ndarray, np.ndarray, dict[int, str]]:
        rows = await self.db.fetchall("SELECT id, text FROM om_statements WHERE round_id = ? AND hidden_at IS NULL"
                                      " ORDER BY id", (round_id,))
        order = [r["id"] for r in rows]
        texts = {r["id"]: mask_public(r["text"]) for r in rows}
        column = {sid: i for i, sid in enumerate(order)}
        votes = await self.db.fetchall("SELECT person_id, statement_id, vote FROM om_votes WHERE round_id = ?"
                                       " ORDER BY person_id", (round_id,))
        people: dict[int, int] = {}
        for v in votes:
            people.setdefault(v[0], len(people))
        matrix = np.zeros((len(people), len(order)), dtype=np.int8)
        seen = np.zeros((len(people), len(order)), dtype=bool)
        for person, sid, vote in votes:
            if sid in column:
                matrix[people[person], column[sid]] = vote
                seen[people[person], column[sid]] = True
        return order, matrix, seen, texts

    async def recompute(self, round_id: int, title: str, lang: str) -> dict[str, Any]:
        """Analyse and draw the map in a worker thread; store both (no person's id in either)."""
        version = await self.db.fetchval("SELECT votes_seen FROM om_maps WHERE round_id = ?", (round_id,))
        order, matrix, seen, texts = await self._matrix(round_id)
        labels = opinion_chart.Labels(
            title=self.t(lang, "om.chart.title", title=title),
            group=lambda n, size: self.t(lang, "om.chart.group", n=n, size=size),
            note=self.t(lang, "om.chart.note"), empty=self.t(lang, "om.chart.empty"))
        snapshot, png = await asyncio.to_thread(_analyse_and_draw, order, matrix, seen, texts, labels)
        now = to_db(self.clock.now())
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE om_maps SET snapshot = ?, chart = ?, computed_at = ?, computed_votes = ?"
                             " WHERE round_id = ?",
                             (json.dumps(snapshot, ensure_ascii=False), png, now, version, round_id))
            await tx.executemany("UPDATE om_statements SET priority = ? WHERE id = ?",
                                 [(snapshot["statements"][str(sid)]["u"], sid) for sid in order])
        return snapshot

    # --- the periodic job -------------------------------------------------------------------
    async def tick(self, actor: Actor) -> int:
        """Redraw each open map whose votes changed, at most once a minute; fix and publish the
        result of each map whose round has closed (once: the status is the claim)."""
        if not isinstance(actor, SystemActor):
            raise NotAllowed("tick")
        now = self.clock.now()
        done = 0
        lang = self.core.settings.locale
        rows = await self.db.fetchall(
            "SELECT m.round_id, r.title, r.status, m.computed_at, m.votes_seen, m.computed_votes FROM om_maps m"
            " JOIN delib_rounds r ON r.id = m.round_id WHERE m.status = 'open' ORDER BY m.round_id")
        for row in rows:
            if row["status"] != "open":
                done += await self._finish(row["round_id"], row["status"] == "closed")
                continue
            due = row["computed_at"] is None or from_db(row["computed_at"]) <= now - RECOMPUTE
            if due and row["votes_seen"] != row["computed_votes"]:
                await self.recompute(row["round_id"], row["title"], lang)
                done += 1
        return done

    async def _finish(self, round_id: int, closed: bool) -> int:
        """The round ended: the final analysis, then (only for a closed round, not a cancelled one)
        the three-part result with the chart to the participants, the opener and the wall chat."""
        rnd, _, _ = await self.delib.access(self.db, SYSTEM_ACTOR, round_id)
        snapshot = await self.recompute(round_id, rnd.title, self.core.settings.locale) if closed else None
        async with self.db.transaction() as tx:
            cur = await tx.execute("UPDATE om_maps SET status = 'final', final_at = ? WHERE round_id = ?"
                                   " AND status = 'open'", (to_db(self.clock.now()), round_id))
            if not cur.rowcount or snapshot is None:
                return int(cur.rowcount)
            chart = await tx.fetchval("SELECT chart FROM om_maps WHERE round_id = ?", (round_id,))
            await self._publish(tx, rnd, snapshot, bytes(chart))
        log.info("opinion map of round %s fixed: %s groups", round_id, snapshot["k"])
        return 1

    async def _publish(self, tx: Tx, rnd: Round, snapshot: dict[str, Any], chart: bytes) -> None:
        voters = {r[0] for r in await tx.fetchall("SELECT DISTINCT person_id FROM om_votes WHERE round_id = ?",
                                                  (rnd.id,))}
        at = after_quiet(self.clock.now(), self.core.settings.tz)
        for pid in sorted(voters | {rnd.opened_by}):
            lang = await self.people.language(pid, tx)
            await self.outbox.send_text(tx, key=f"om:{rnd.id}:res:{pid}", chat_id=pid, not_before=at,
                                        text=self.result_text(lang, rnd, snapshot), purpose=Purpose.RESULT,
                                        subject_id=rnd.id, priority=Priority.BULK)
        wall = await tx.fetchone("SELECT chat_id FROM wall_chats WHERE org_id = ?", (rnd.org_id,))
        targets = [(rnd.opened_by, "op")] + ([(wall[0], "wall")] if wall is not None else [])
        for chat_id, tag in targets:
            lang = await self.people.language(chat_id, tx) if chat_id > 0 else self.core.settings.locale
            await self.outbox.enqueue(
                tx, key=f"om:{rnd.id}:chart:{tag}", chat_id=chat_id, method="sendPhoto",
                payload={"chat_id": chat_id, "photo": {"filename": self.t(lang, "om.chart.file"), "b64": _b64(chart)},
                         "caption": clip(self.t(lang, "om.chart.caption", title=rnd.title), MAX_CAPTION)},
                purpose=Purpose.WALL if tag == "wall" else Purpose.RESULT, subject_id=rnd.id)
            if tag == "wall":
                await self.outbox.send_text(tx, key=f"om:{rnd.id}:wall", chat_id=chat_id,
                                            text=self.result_text(lang, rnd, snapshot), purpose=Purpose.WALL,
                                            subject_id=rnd.id)

    async def result(self, actor: Actor, round_id: int) -> dict[str, Any] | None:
        """The fixed result (the final snapshot), for whoever may read the round."""
        await self.delib.get(actor, round_id)
        row = await self._map(self.db, round_id)
        if row is None or row["status"] != "final" or row["snapshot"] is None:
            return None
        return dict(json.loads(row["snapshot"]))

    def result_text(self, lang: str, rnd: Round, snapshot: dict[str, Any]) -> str:
        """The three parts: bridging statements, each group's representative ones, the divisive ones."""
        return clip("\n".join(result_lines(self.t, self.fmt, lang, rnd.title, snapshot)), MAX_TEXT)

    # --- the ledger -------------------------------------------------------------------------
    async def ledger_maps(self, actor: Actor, org_id: int, first: date, last: date) -> list[tuple[str, dict[str, Any]]]:
        """(round title, final snapshot) of the org's and its subtree's rounds opened in the period,
        for the ledger: for the system, admins, and those who lead at or above the org."""
        if not (is_system(actor) or (isinstance(actor, int) and (self.orgs.is_admin(actor) or
                await self.orgs.has_role_at_or_above(actor, org_id, [Role.secretary, Role.organizer])))):  # type: ignore[list-item]
            raise NotAllowed("ledger")
        tz = self.core.settings.tz
        start = datetime.combine(first, datetime.min.time(), tz)
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
        rows = await self.db.fetchall(
            "WITH RECURSIVE down(id) AS (SELECT id FROM orgs WHERE id = ?"
            " UNION ALL SELECT o.id FROM orgs o JOIN down ON o.parent_id = down.id)"
            " SELECT r.title, m.snapshot FROM om_maps m JOIN delib_rounds r ON r.id = m.round_id"
            " WHERE r.org_id IN (SELECT id FROM down) AND r.opened_at >= ? AND r.opened_at < ?"
            " AND m.status = 'final' AND m.snapshot IS NOT NULL ORDER BY r.opened_at, r.id",
            (org_id, to_db(start), to_db(end)))
        return [(r["title"], json.loads(r["snapshot"])) for r in rows]


def _statement(row: Any) -> Statement:
    return Statement(id=row["id"], text=mask_public(row["text"]), votes=int(row["votes"]), seed=bool(row["seed"]),
                     hidden=row["hidden_at"] is not None)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _analyse_and_draw(order: list[int], matrix: np.ndarray, seen: np.ndarray, texts: dict[int, str],
                      labels: opinion_chart.Labels) -> tuple[dict[str, Any], bytes]:
    """In a worker thread: the analysis, its snapshot (ids of statements, never of people) and the chart."""
    analysis = opinion_analysis.analyse(matrix, seen) if order else None
    snapshot = snapshot_of(order, analysis, texts)
    png = opinion_chart.draw(analysis, labels)
    return snapshot, png


def snapshot_of(order: list[int], analysis: opinion_analysis.Analysis | None, texts: dict[int, str]) -> dict[str, Any]:
    """What is stored and published: counts, shares, scores and masked texts by statement id."""
    if analysis is None:
        return {"participants": 0, "grouped": 0, "k": 0, "sizes": [], "order": [], "statements": {},
                "bridging": [], "representative": [], "divisive": [], "model": {}}
    priority = analysis.priority()
    statements = {str(sid): {"text": texts[sid], "a": s.agree, "d": s.disagree, "p": s.passed,
                             "g": [list(g) for g in s.groups], "c": round(s.consensus, 4),
                             "v": round(s.divisive, 4), "u": float(priority[i])}
                  for i, (sid, s) in enumerate(zip(order, analysis.stats, strict=True))}
    return {"participants": analysis.participants, "grouped": analysis.grouped, "k": analysis.k,
            "sizes": analysis.sizes, "order": order, "statements": statements,
            "bridging": [order[i] for i in analysis.bridging],
            "representative": [[[order[i], d] for i, d in group] for group in analysis.representative],
            "divisive": [order[i] for i in analysis.divisive], "model": analysis.model}
