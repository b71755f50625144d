"""Deliberation rounds (民主议事周): a secretary or an organiser opens a topic; the audience (party
members, residents or both, of an org or its subtree) gives opinions, supports others' opinions
and, when there is a vote phase, votes; the round closes by itself at its deadline, exactly once,
and the result is fixed, sent to the participants and posted on the org's echo wall.

Every method takes the acting person (or SYSTEM_ACTOR for the periodic job) and checks the right
from the database at that moment: a forged, stale or late button changes nothing. Every message to
someone else is an outbox row in the same transaction as the change.

Anonymity is the problem wall's: an anonymous opinion shows no name; nothing a reader can see (the
list, the counts, a refusal) depends on who wrote it; every text others read is masked. Secret
ballots: see bot/services/ballot_box.py. Results stay hidden until the close unless the opener
chose live results (never for a secret ballot: watching the counts move would tell who chose what).

Hooks for later work: the ballot box is shared with the appraisal (书记双述双评); a 四议两公开
matter can point at a round's id and read `result()`; the opinion map (issue 13) can read
`delib_opinions`."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from openpyxl import Workbook

from bot.actors import Actor, SystemActor, is_system
from bot.callbacks import DELIB_VIEW, DelibView
from bot.clock import from_db, to_db
from bot.database import Database, Tx
from bot.formatting import file_name
from bot.infra import Infra
from bot.limits import clip
from bot.outbox import Button, Priority
from bot.services import deliberation_ledger
from bot.services.ballot_box import AlreadyVoted, BallotBox, Tally
from bot.services.ledger_period import describe
from bot.services.masking import mask_public
from bot.services.meeting_time import after_quiet, before_quiet
from bot.services.orgs import NotAllowed, NotFound, Org, Refused, Role

log = logging.getLogger(__name__)

MAX_TITLE = 100
MAX_BACKGROUND = 2000
MAX_MEDIA = 5
MAX_OPINION = 1000
MAX_OPTIONS = 20        # the ballot's choices fit in a 64-bit mask and a screen of buttons
MAX_OPTION = 60
MAX_REASON = 300
MIN_PHASE = timedelta(hours=1)
MAX_PHASE = timedelta(days=60)
OPINION_PAGE = 5
TOP_OPINIONS = 3
RECENT_DAYS = 30
REMIND_BEFORE = timedelta(days=1)
EXTEND_DAYS = (1, 3, 7)
# Room for texts in a notice or result (the rest is a tap away in the round's card).
BACKGROUND_ROOM = 1500
OPINION_ROOM = 300


class Audience(StrEnum):
    MEMBERS = "members"
    RESIDENTS = "residents"
    BOTH = "both"

    @property
    def roles(self) -> tuple[str, ...]:
        return {"members": ("member",), "residents": ("resident",), "both": ("member", "resident")}[self.value]


class Phase(StrEnum):
    OPINIONS = "opinions"
    VOTING = "voting"
    ENDED = "ended"          # past its deadline, not closed by the job yet (no more opinions or votes)
    CLOSED = "closed"
    CANCELLED = "cancelled"


PHASE_KEYS = {Phase.OPINIONS: "delib.phase.opinions", Phase.VOTING: "delib.phase.voting",
              Phase.ENDED: "delib.phase.ended", Phase.CLOSED: "delib.phase.closed",
              Phase.CANCELLED: "delib.phase.cancelled"}


class Purpose(StrEnum):
    NOTICE = "deliberation/notice"
    MEDIA = "deliberation/media"
    REMINDER = "deliberation/reminder"
    VOTE_START = "deliberation/vote_start"
    CHANGE = "deliberation/change"
    RESULT = "deliberation/result"
    WALL = "deliberation/wall"
    HIDDEN = "deliberation/hidden"
    PROXY = "deliberation/proxy"


@dataclass(frozen=True)
class RoundSpec:
    """What the opener chose in the chat flow."""

    org_id: int
    title: str
    audience: Audience
    opinions_until: datetime
    background: str = ""
    media: tuple[tuple[str, int, int], ...] = ()   # (kind, chat_id, message_id): photos and documents
    include_below: bool = False
    votes_until: datetime | None = None
    options: tuple[str, ...] = ()
    multiple: bool = False
    max_choices: int = 1
    secret: bool = False
    live_results: bool = False


@dataclass(frozen=True)
class Round:
    id: int
    org_id: int
    org_name: str
    include_below: bool
    audience: Audience
    title: str
    background: str
    media: list[dict[str, Any]]
    opened_by: int
    opened_at: datetime
    opinions_until: datetime
    votes_until: datetime | None
    multiple: bool
    max_choices: int
    secret: bool
    live_results: bool
    status: str
    vote_started_at: datetime | None
    extended_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    ended_early: bool
    result: dict[str, Any] | None

    @property
    def box(self) -> BallotBox:
        return BallotBox(f"delib:{self.id}", self.secret)

    @property
    def deadline(self) -> datetime:
        return self.votes_until or self.opinions_until

    def phase(self, now: datetime) -> Phase:
        if self.status == "closed":
            return Phase.CLOSED
        if self.status == "cancelled":
            return Phase.CANCELLED
        if now < self.opinions_until:
            return Phase.OPINIONS
        if self.votes_until is not None and now < self.votes_until:
            return Phase.VOTING
        return Phase.ENDED

    @classmethod
    def from_row(cls, r: Any) -> Round:
        def when(name: str) -> datetime | None:
            return from_db(r[name]) if r[name] else None

        return cls(
            id=r["id"], org_id=r["org_id"], org_name=r["org_name"], include_below=bool(r["include_below"]),
            audience=Audience(r["audience"]), title=r["title"], background=r["background"],
            media=json.loads(r["media"]), opened_by=r["opened_by"], opened_at=from_db(r["opened_at"]),
            opinions_until=from_db(r["opinions_until"]), votes_until=when("votes_until"),
            multiple=bool(r["multiple"]), max_choices=r["max_choices"], secret=bool(r["secret"]),
            live_results=bool(r["live_results"]), status=r["status"], vote_started_at=when("vote_started_at"),
            extended_at=when("extended_at"), ended_at=when("ended_at"), end_reason=r["end_reason"],
            ended_early=bool(r["ended_early"]), result=json.loads(r["result"]) if r["result"] else None)


ROUND_SQL = "SELECT r.*, o.name AS org_name FROM delib_rounds r JOIN orgs o ON o.id = r.org_id"


@dataclass(frozen=True)
class Opinion:
    """An opinion as any reader sees it: masked, with a name only when signed."""

    id: int
    author: str | None      # None: anonymous
    kind: str               # text | voice
    text: str               # masked
    chat_id: int | None
    message_id: int | None
    supports: int
    hidden_reason: str | None  # set: hidden by the opener (the text is not shown)


@dataclass(frozen=True)
class Ballot:
    """What a ballot screen shows: the options, the rule, and the person's own current choice
    (never for a secret ballot)."""

    round: Round
    options: list[str]
    mine: list[int] | None
    voted: bool


@dataclass(frozen=True)
class Result:
    options: list[tuple[str, int]]
    ballots: int
    proxies: int
    eligible: int
    opinions: int
    top: list[tuple[str, int]]   # the most supported opinions (masked text, supports)
    voted: bool                  # there was a vote
    final: bool                  # fixed at the close (else live counts)


@dataclass(frozen=True)
class ProxyTarget:
    person_id: int
    name: str


def _person(actor: Actor) -> int:
    """The id stored for who did something: 0 for the system."""
    return 0 if isinstance(actor, SystemActor) else actor


def _check_text(text: str, limit: int, key: str) -> str:
    text = text.strip()
    if not text:
        raise Refused(key)
    if len(text) > limit:
        raise Refused("delib.refused.too_long", limit=limit)
    return text


class DeliberationService:
    def __init__(self, core: Infra) -> None:
        self.core = core
        self.db: Database = core.db
        self.clock = core.clock
        self.t = core.t
        self.fmt = core.formatter
        self.outbox = core.outbox
        self.orgs = core.orgs
        self.people = core.people
        self.tz = core.settings.tz

    # --- reading ----------------------------------------------------------------------------
    async def _round(self, round_id: int, tx: Tx | None = None) -> Round:
        row = await (tx or self.db).fetchone(f"{ROUND_SQL} WHERE r.id = ?", (round_id,))
        if row is None:
            raise NotFound("round")
        return Round.from_row(row)

    async def _options(self, src: Tx | Database, round_id: int) -> list[str]:
        rows = await src.fetchall("SELECT label FROM delib_options WHERE round_id = ? ORDER BY position", (round_id,))
        return [r[0] for r in rows]

    async def get(self, actor: Actor, round_id: int) -> Round:
        """The round, for those who may read it: its audience, those who lead at or above its org."""
        rnd = await self._round(round_id)
        if not await self._may_read(self.db, actor, rnd):
            raise NotAllowed("round")
        return rnd

    async def mine(self, actor: Actor) -> list[tuple[Round, bool]]:
        """Open rounds and those ended in the last 30 days that the person may read, newest first,
        each with whether the person may manage it."""
        if not isinstance(actor, int):
            return []
        since = to_db(self.clock.now() - timedelta(days=RECENT_DAYS))
        rows = await self.db.fetchall(
            f"{ROUND_SQL} WHERE r.status = 'open' OR r.ended_at >= ? ORDER BY r.id DESC LIMIT 200", (since,))
        out = []
        for row in rows:
            rnd = Round.from_row(row)
            if await self._may_read(self.db, actor, rnd):
                out.append((rnd, await self._may_manage(self.db, actor, rnd)))
        return out[:20]

    async def options(self, actor: Actor, round_id: int) -> list[str]:
        rnd = await self.get(actor, round_id)
        return await self._options(self.db, rnd.id)

    async def opinions(self, actor: Actor, round_id: int, page: int) -> tuple[list[Opinion], int]:
        """One page of opinions (oldest first) and how many there are; masked, names only when signed."""
        rnd = await self.get(actor, round_id)
        total = await self.db.fetchval("SELECT COUNT(*) FROM delib_opinions WHERE round_id = ?", (rnd.id,))
        rows = await self.db.fetchall(
            "SELECT o.*, (SELECT COUNT(*) FROM delib_supports s WHERE s.opinion_id = o.id) AS supports"
            " FROM delib_opinions o WHERE o.round_id = ? ORDER BY o.id LIMIT ? OFFSET ?",
            (rnd.id, OPINION_PAGE, max(page, 0) * OPINION_PAGE))
        return [await self._opinion(r) for r in rows], int(total)

    async def _opinion(self, r: Any) -> Opinion:
        author = None if r["anonymous"] else await self.people.display_name(r["author_id"])
        hidden = r["hidden_at"] is not None
        return Opinion(id=r["id"], author=author, kind=r["kind"], text="" if hidden else mask_public(r["text"]),
                       chat_id=None if hidden else r["chat_id"], message_id=None if hidden else r["message_id"],
                       supports=int(r["supports"]),
                       hidden_reason=mask_public(r["hidden_reason"]) if hidden else None)

    async def round_of_opinion(self, actor: Actor, opinion_id: int) -> Round:
        """The round an opinion belongs to, for those who may read it."""
        round_id = await self.db.fetchval("SELECT round_id FROM delib_opinions WHERE id = ?", (opinion_id,))
        if round_id is None:
            raise NotFound("opinion")
        return await self.get(actor, round_id)

    # --- rights -----------------------------------------------------------------------------
    async def _is_secretary(self, src: Tx | Database, person: int, org_id: int) -> bool:
        row = await src.fetchone("SELECT 1 FROM roles WHERE person_id = ? AND org_id = ? AND role = 'secretary'",
                                 (person, org_id))
        return row is not None

    async def _may_open(self, src: Tx | Database, actor: Actor, org_id: int, include_below: bool) -> bool:
        """A secretary for their own org; an organiser for their org or any org below, with or
        without the orgs below it."""
        if not isinstance(actor, int):
            return False
        if not include_below and await self._is_secretary(src, actor, org_id):
            return True
        return await self.orgs.has_role_at_or_above(actor, org_id, [Role.organizer], src)  # type: ignore[arg-type]

    async def _may_manage(self, src: Tx | Database, actor: Actor, rnd: Round) -> bool:
        """The opener, while they still hold the right to open such a round."""
        return actor == rnd.opened_by and await self._may_open(src, actor, rnd.org_id, rnd.include_below)

    async def _audience_sql(self, rnd: Round) -> tuple[str, tuple[Any, ...]]:
        roles = rnd.audience.roles
        marks = ",".join("?" * len(roles))
        sql = ("WITH RECURSIVE down(id) AS (SELECT CAST(? AS BIGINT) UNION ALL SELECT o.id FROM orgs o JOIN down"
               " ON o.parent_id = down.id WHERE ?)"
               f" SELECT DISTINCT person_id FROM roles WHERE org_id IN (SELECT id FROM down) AND role IN ({marks})")
        return sql, (rnd.org_id, int(rnd.include_below), *roles)

    async def _audience(self, src: Tx | Database, rnd: Round) -> list[int]:
        sql, params = await self._audience_sql(rnd)
        return sorted(r[0] for r in await src.fetchall(sql, params))

    async def _in_audience(self, src: Tx | Database, person: Actor, rnd: Round) -> bool:
        if not isinstance(person, int):
            return False
        sql, params = await self._audience_sql(rnd)
        return await src.fetchone(f"{sql} AND person_id = ? LIMIT 1", (*params, person)) is not None

    async def _may_read(self, src: Tx | Database, actor: Actor, rnd: Round) -> bool:
        if is_system(actor):
            return True
        if not isinstance(actor, int):
            return False
        return (actor == rnd.opened_by or await self._in_audience(src, actor, rnd)
                or await self.orgs.has_role_at_or_above(actor, rnd.org_id, [Role.secretary, Role.organizer], src))  # type: ignore[arg-type]

    async def openable_orgs(self, actor: Actor) -> list[tuple[int, str, bool]]:
        """(org id, name, may include the orgs below) where the person may open a round: their
        secretary orgs, and every org in their organiser subtrees, in tree order."""
        if not isinstance(actor, int):
            return []
        rows = await self.db.fetchall(
            "SELECT o.id, r.role FROM roles r JOIN orgs o ON o.id = r.org_id"
            " WHERE r.person_id = ? AND r.role IN ('secretary', 'organizer') ORDER BY o.id", (actor,))
        out: dict[int, tuple[int, str, bool]] = {}
        for row in rows:
            if row["role"] == Role.organizer:
                for _, org in await self.orgs.subtree(row["id"]):
                    out[org.id] = (org.id, org.name, True)
            elif row["id"] not in out:
                org = await self.orgs.get(row["id"])
                if org is not None:
                    out[org.id] = (org.id, org.name, False)
        return list(out.values())

    async def rights(self, actor: Actor, round_id: int) -> tuple[bool, bool, bool]:
        """(in the audience, may manage, may vote on others' behalf), for which buttons to show;
        each action checks again."""
        rnd = await self._round(round_id)
        return (await self._in_audience(self.db, actor, rnd), await self._may_manage(self.db, actor, rnd),
                await self._may_proxy(self.db, actor, rnd))

    async def access(self, src: Tx | Database, actor: Actor, round_id: int) -> tuple[Round, bool, bool]:
        """(the round, the actor is in its audience, the actor may manage it), read through `src`
        (a transaction when the caller writes next): for the opinion map (bot/services/opinions.py),
        which checks every right here, every time."""
        rnd = await self._round(round_id, src if isinstance(src, Tx) else None)
        return rnd, await self._in_audience(src, actor, rnd), await self._may_manage(src, actor, rnd)

    async def took_part(self, tx: Tx, rnd: Round, person: int) -> None:
        """A vote or statement on the round's opinion map is taking part: no opinion reminder."""
        await self._took_part_now(tx, rnd, "o", person)

    async def audience_of(self, src: Tx | Database, rnd: Round) -> list[int]:
        """Everyone the round invites (for the opinion map's notices and totals)."""
        return await self._audience(src, rnd)

    async def audience_size(self, actor: Actor, org_id: int, include_below: bool, audience: Audience) -> int:
        """How many people a round would invite (for the confirm screen), for those who may open it."""
        await self.check_open(actor, org_id, include_below)
        probe = Round(id=0, org_id=org_id, org_name="", include_below=include_below, audience=audience, title="",
                      background="", media=[], opened_by=0, opened_at=self.clock.now(),
                      opinions_until=self.clock.now(), votes_until=None, multiple=False, max_choices=1,
                      secret=False, live_results=False, status="open", vote_started_at=None, extended_at=None,
                      ended_at=None, end_reason=None, ended_early=False, result=None)
        return len([p for p in await self._audience(self.db, probe) if p != actor])

    async def check_open(self, actor: Actor, org_id: int, include_below: bool) -> None:
        if not await self._may_open(self.db, actor, org_id, include_below):
            raise NotAllowed("open")

    # --- opening ----------------------------------------------------------------------------
    def _check_spec(self, spec: RoundSpec, now: datetime) -> RoundSpec:
        title = _check_text(spec.title, MAX_TITLE, "delib.refused.empty_title")
        if len(spec.background) > MAX_BACKGROUND:
            raise Refused("delib.refused.too_long", limit=MAX_BACKGROUND)
        if len(spec.media) > MAX_MEDIA:
            raise Refused("delib.refused.too_many_media", limit=MAX_MEDIA)
        if not MIN_PHASE <= spec.opinions_until - now <= MAX_PHASE:
            raise Refused("delib.refused.bad_deadline")
        options = tuple(dict.fromkeys(_check_text(o, MAX_OPTION, "delib.refused.empty_option") for o in spec.options))
        if len(options) > MAX_OPTIONS:
            raise Refused("delib.refused.too_many_options", limit=MAX_OPTIONS)
        if spec.votes_until is None:
            if options:
                raise Refused("delib.refused.options_without_vote")
            return RoundSpec(**{**spec.__dict__, "title": title, "multiple": False, "max_choices": 1,
                                "secret": False, "live_results": False})
        if not MIN_PHASE <= spec.votes_until - spec.opinions_until <= MAX_PHASE:
            raise Refused("delib.refused.bad_vote_deadline")
        limit = max(len(options), MAX_OPTIONS if spec.multiple else 1)
        max_choices = spec.max_choices if spec.multiple else 1
        if not 1 <= max_choices <= limit:
            raise Refused("delib.refused.bad_max", limit=limit)
        return RoundSpec(**{**spec.__dict__, "title": title, "options": options, "max_choices": max_choices,
                            "live_results": spec.live_results and not spec.secret})

    async def open(self, actor: Actor, spec: RoundSpec) -> Round:
        """Open a round: the audience is told at once (after quiet hours) and reminders are queued."""
        now = self.clock.now()
        spec = self._check_spec(spec, now)
        async with self.db.transaction() as tx:
            if not await self._may_open(tx, actor, spec.org_id, spec.include_below):
                raise NotAllowed("open")
            media = [{"kind": k, "chat_id": c, "message_id": m} for k, c, m in spec.media]
            round_id = await tx.insert(
                "INSERT INTO delib_rounds (org_id, include_below, audience, title, background, media, opened_by,"
                " opened_at, opinions_until, votes_until, multiple, max_choices, secret, live_results)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (spec.org_id, int(spec.include_below), spec.audience.value, spec.title, spec.background.strip(),
                 json.dumps(media), _person(actor), to_db(now), to_db(spec.opinions_until),
                 to_db(spec.votes_until) if spec.votes_until else None, int(spec.multiple), spec.max_choices,
                 int(spec.secret), int(spec.live_results)))
            await tx.executemany(
                "INSERT INTO delib_options (round_id, position, label) VALUES (?, ?, ?)",
                [(round_id, i, label) for i, label in enumerate(spec.options)])
            rnd = await self._round(round_id, tx)
            audience = [p for p in await self._audience(tx, rnd) if p != actor]
            await self._notify(tx, rnd, audience, now)
            await self._plan_reminders(tx, rnd, "o", rnd.opinions_until, audience, now)
        return rnd

    async def _langs(self, tx: Tx, people: Sequence[int]) -> dict[int, str]:
        return {p: await self.people.language(p, tx) for p in people}

    def card_text(self, lang: str, rnd: Round, now: datetime, *, full: bool = False) -> str:
        """The round as the audience reads it: title, org, background, what to do by when."""
        background = rnd.background if full else clip(rnd.background, BACKGROUND_ROOM, self.t(lang, "delib.clipped"))
        lines = [self.t(lang, "delib.card.title", title=rnd.title, org=rnd.org_name)]
        if background:
            lines.append(self.t(lang, "delib.card.background", text=background))
        lines.append(self.t(lang, "delib.card.opinions_until", when=self.fmt.moment(lang, rnd.opinions_until, now)))
        if rnd.votes_until is not None:
            rule = (self.t(lang, "delib.card.rule_multiple", n=rnd.max_choices) if rnd.multiple
                    else self.t(lang, "delib.card.rule_single"))
            secrecy = self.t(lang, "delib.card.secret" if rnd.secret else "delib.card.open_ballot")
            lines.append(self.t(lang, "delib.card.votes_until", when=self.fmt.moment(lang, rnd.votes_until, now),
                                rule=rule, secrecy=secrecy))
        phase = rnd.phase(now)
        lines.append(self.t(lang, PHASE_KEYS[phase]))
        if rnd.end_reason:
            lines.append(self.t(lang, "delib.card.end_reason", reason=rnd.end_reason))
        return "\n".join(lines)

    def open_button(self, lang: str, round_id: int) -> list[list[Button]]:
        return [[Button(self.t(lang, "delib.button.open"), DELIB_VIEW(DelibView.CARD, round_id))]]

    async def _notify(self, tx: Tx, rnd: Round, people: Sequence[int], now: datetime) -> None:
        """The notice to everyone in the audience, then the background's photos and documents
        (copied, so nobody sees where they came from)."""
        at = after_quiet(now, self.tz)
        langs = await self._langs(tx, people)
        for pid in people:
            lang = langs[pid]
            text = self.t(lang, "delib.notice", card=self.card_text(lang, rnd, now))
            await self.outbox.send_text(tx, key=f"dl:{rnd.id}:n:{pid}:", chat_id=pid, text=text,
                                        buttons=self.open_button(lang, rnd.id), not_before=at,
                                        purpose=Purpose.NOTICE, subject_id=rnd.id, priority=Priority.BULK)
            for n, item in enumerate(rnd.media):
                await self.outbox.enqueue(
                    tx, key=f"dl:{rnd.id}:m:{pid}:{n}", chat_id=pid, method="copyMessage", not_before=at,
                    payload={"chat_id": pid, "from_chat_id": item["chat_id"], "message_id": item["message_id"]},
                    purpose=Purpose.MEDIA, subject_id=rnd.id, priority=Priority.BULK)

    async def _took_part(self, src: Tx | Database, rnd: Round, phase: str) -> set[int]:
        if phase == "v":
            return {r[0] for r in await src.fetchall(
                "SELECT person_id FROM ballot_voters WHERE box = ?", (rnd.box.box,))}
        rows = await src.fetchall(
            "SELECT author_id FROM delib_opinions WHERE round_id = ? UNION SELECT s.person_id FROM delib_supports s"
            " JOIN delib_opinions o ON o.id = s.opinion_id WHERE o.round_id = ?", (rnd.id, rnd.id))
        return {r[0] for r in rows}

    async def _plan_reminders(self, tx: Tx, rnd: Round, phase: str, deadline: datetime, people: Sequence[int],
                              now: datetime) -> int:
        """One reminder a person, a day before the phase closes (earlier when that falls in quiet
        hours), for those who have not taken part; taking part cancels it (`_took_part_now`)."""
        at = before_quiet(deadline - REMIND_BEFORE, self.tz)
        if at <= now:
            return 0
        done = await self._took_part(tx, rnd, phase)
        langs = await self._langs(tx, people)
        count = 0
        for pid in people:
            if pid in done:
                continue
            lang = langs[pid]
            key = "delib.remind.votes" if phase == "v" else "delib.remind.opinions"
            text = self.t(lang, key, title=rnd.title, when=self.fmt.moment(lang, deadline, now))
            view = DelibView.BALLOT if phase == "v" else DelibView.CARD
            buttons = [[Button(self.t(lang, "delib.button.open"), DELIB_VIEW(view, rnd.id))]]
            count += await self.outbox.send_text(
                tx, key=f"dl:{rnd.id}:r{phase}:{pid}:", chat_id=pid, text=text, buttons=buttons, not_before=at,
                replace=True, purpose=Purpose.REMINDER, subject_id=rnd.id)
        return count

    async def _took_part_now(self, tx: Tx, rnd: Round, phase: str, person: int) -> None:
        await self.outbox.cancel(tx, key_prefix=f"dl:{rnd.id}:r{phase}:{person}:")

    # --- opinions ---------------------------------------------------------------------------
    async def _participant_round(self, tx: Tx, actor: Actor, round_id: int) -> Round:
        rnd = await self._round(round_id, tx)
        if not await self._in_audience(tx, actor, rnd):
            raise NotAllowed("not in the audience")
        return rnd

    async def check_can_give_opinion(self, actor: Actor, round_id: int) -> Round:
        """Before the chat asks for the opinion's text: the same checks as `give_opinion`."""
        rnd = await self._round(round_id)
        if not await self._in_audience(self.db, actor, rnd):
            raise NotAllowed("not in the audience")
        if rnd.phase(self.clock.now()) != Phase.OPINIONS:
            raise Refused("delib.refused.opinions_closed")
        return rnd

    async def give_opinion(self, actor: Actor, round_id: int, text: str, *, anonymous: bool,
                           voice: tuple[int, int] | None = None) -> int:
        """An opinion in words, or a voice note (chat id, message id) with optional words."""
        text = text.strip()
        if voice is None:
            text = _check_text(text, MAX_OPINION, "delib.refused.empty_opinion")
        elif len(text) > MAX_OPINION:
            raise Refused("delib.refused.too_long", limit=MAX_OPINION)
        async with self.db.transaction() as tx:
            rnd = await self._participant_round(tx, actor, round_id)
            if rnd.phase(self.clock.now()) != Phase.OPINIONS:
                raise Refused("delib.refused.opinions_closed")
            assert isinstance(actor, int)
            opinion_id = await tx.insert(
                "INSERT INTO delib_opinions (round_id, author_id, anonymous, kind, text, chat_id, message_id,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (rnd.id, actor, int(anonymous), "voice" if voice else "text", text,
                 voice[0] if voice else None, voice[1] if voice else None, to_db(self.clock.now())))
            await self._took_part_now(tx, rnd, "o", actor)
        return opinion_id

    async def support(self, actor: Actor, opinion_id: int) -> bool:
        """+1 an opinion, once each; False when this person had supported it already. Until the
        round ends; nobody supports a hidden opinion or their own."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT round_id, author_id, hidden_at FROM delib_opinions WHERE id = ?",
                                    (opinion_id,))
            if row is None:
                raise NotFound("opinion")
            rnd = await self._participant_round(tx, actor, row["round_id"])
            if rnd.phase(self.clock.now()) not in (Phase.OPINIONS, Phase.VOTING):
                raise Refused("delib.refused.round_over")
            if row["hidden_at"] is not None:
                raise Refused("delib.refused.hidden")
            if row["author_id"] == actor:
                raise Refused("delib.refused.own_opinion")
            cur = await tx.execute(
                "INSERT INTO delib_supports (opinion_id, person_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (opinion_id, actor))
            if cur.rowcount:
                await self._took_part_now(tx, rnd, "o", _person(actor))
            return bool(cur.rowcount)

    async def hide(self, actor: Actor, opinion_id: int, reason: str) -> bool:
        """The opener hides an abusive opinion with a reason (recorded; the author is told, by the
        same message whether the opinion was signed or anonymous). False when hidden already."""
        reason = _check_text(reason, MAX_REASON, "delib.refused.empty_reason")
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT * FROM delib_opinions WHERE id = ?", (opinion_id,))
            if row is None:
                raise NotFound("opinion")
            rnd = await self._round(row["round_id"], tx)
            if not await self._may_manage(tx, actor, rnd):
                raise NotAllowed("hide")
            if row["hidden_at"] is not None:
                return False
            now = self.clock.now()
            await tx.execute("UPDATE delib_opinions SET hidden_at = ?, hidden_by = ?, hidden_reason = ? WHERE id = ?",
                             (to_db(now), _person(actor), reason, opinion_id))
            await self._event(tx, rnd.id, actor, "hide", None, reason, subject=opinion_id)
            author = row["author_id"]
            lang = await self.people.language(author, tx)
            await self.outbox.send_text(
                tx, key=f"dl:{rnd.id}:h:{opinion_id}", chat_id=author, purpose=Purpose.HIDDEN, subject_id=rnd.id,
                text=self.t(lang, "delib.hidden_notice", title=rnd.title, reason=reason,
                            opinion=clip(mask_public(row["text"]), OPINION_ROOM, self.t(lang, "delib.clipped"))))
            return True

    async def _event(self, tx: Tx, round_id: int, actor: Actor, action: str, person: int | None,
                     note: str | None, subject: int | None = None) -> None:
        if subject is not None:
            note = f"#{subject} {note or ''}".strip()
        await tx.execute("INSERT INTO delib_events (round_id, at, actor_id, action, person_id, note)"
                         " VALUES (?, ?, ?, ?, ?, ?)",
                         (round_id, to_db(self.clock.now()), _person(actor), action, person, note))

    async def events(self, actor: Actor, round_id: int) -> list[dict[str, Any]]:
        """The round's record (extend, close, cancel, hide, options, proxy ballots): for the opener
        and those who lead at or above its org."""
        rnd = await self._round(round_id)
        if not (is_system(actor) or await self._may_manage(self.db, actor, rnd) or (
                isinstance(actor, int) and await self.orgs.has_role_at_or_above(
                    actor, rnd.org_id, [Role.secretary, Role.organizer]))):  # type: ignore[list-item]
            raise NotAllowed("events")
        rows = await self.db.fetchall("SELECT * FROM delib_events WHERE round_id = ? ORDER BY id", (rnd.id,))
        return [dict(r) for r in rows]

    async def add_option(self, actor: Actor, round_id: int, label: str = "", opinion_id: int | None = None) -> int:
        """The opener adds a choice before voting starts, typed or taken from an opinion (its masked
        text). Returns the option's place."""
        async with self.db.transaction() as tx:
            rnd = await self._round(round_id, tx)
            if not await self._may_manage(tx, actor, rnd):
                raise NotAllowed("add option")
            if rnd.votes_until is None:
                raise Refused("delib.refused.no_vote")
            if rnd.phase(self.clock.now()) != Phase.OPINIONS:
                raise Refused("delib.refused.voting_started")
            if opinion_id is not None:
                text = await tx.fetchval("SELECT text FROM delib_opinions WHERE id = ? AND round_id = ?"
                                         " AND hidden_at IS NULL", (opinion_id, rnd.id))
                if not text:
                    raise Refused("delib.refused.no_such_opinion")
                label = clip(mask_public(text), MAX_OPTION)
            label = _check_text(label, MAX_OPTION, "delib.refused.empty_option")
            options = await self._options(tx, rnd.id)
            if label in options:
                raise Refused("delib.refused.option_exists")
            if len(options) >= MAX_OPTIONS:
                raise Refused("delib.refused.too_many_options", limit=MAX_OPTIONS)
            await tx.execute("INSERT INTO delib_options (round_id, position, label, opinion_id) VALUES (?, ?, ?, ?)",
                             (rnd.id, len(options), label, opinion_id))
            await self._event(tx, rnd.id, actor, "option", None, label)
            return len(options)

    # --- votes ------------------------------------------------------------------------------
    async def ballot(self, actor: Actor, round_id: int, for_person: int | None = None) -> Ballot:
        """The ballot screen's content for the person (or, for a proxy ballot, for the person the
        secretary votes for), refused when they may not vote now."""
        rnd = await self._round(round_id)
        voter = await self._check_voter(self.db, actor, rnd, for_person)
        options = await self._options(self.db, rnd.id)
        box = rnd.box
        return Ballot(rnd, options, await box.choices_of(self.db, voter), await box.has_voted(self.db, voter))

    async def _check_voter(self, src: Tx | Database, actor: Actor, rnd: Round, for_person: int | None) -> int:
        """Who the ballot is for, after every check: in the audience, voting open, and for a proxy
        ballot the actor a secretary who may vote for them."""
        voter = actor if for_person is None else for_person
        if for_person is not None and not await self._may_proxy(src, actor, rnd):
            raise NotAllowed("proxy")
        if not isinstance(voter, int) or not await self._in_audience(src, voter, rnd):
            raise NotAllowed("not eligible")
        phase = rnd.phase(self.clock.now())
        if phase == Phase.OPINIONS:
            raise Refused("delib.refused.voting_not_started")
        if phase != Phase.VOTING:
            raise Refused("delib.refused.voting_over")
        if len(await self._options(src, rnd.id)) < 2:
            raise Refused("delib.refused.no_options")
        return voter

    async def _may_proxy(self, src: Tx | Database, actor: Actor, rnd: Round) -> bool:
        """A secretary of the round's org, or of an org in its audience's reach."""
        if not isinstance(actor, int):
            return False
        if await self._is_secretary(src, actor, rnd.org_id):
            return True
        if not rnd.include_below:
            return False
        return await src.fetchone(
            "WITH RECURSIVE down(id) AS (SELECT CAST(? AS BIGINT)"
            " UNION ALL SELECT o.id FROM orgs o JOIN down ON o.parent_id = down.id)"
            " SELECT 1 FROM roles WHERE person_id = ? AND role = 'secretary' AND org_id IN (SELECT id FROM down)",
            (rnd.org_id, actor)) is not None

    async def cast(self, actor: Actor, round_id: int, choices: Sequence[int], *, for_person: int | None = None,
                   reason: str | None = None) -> bool:
        """Cast (or, in an open ballot, change) a ballot. True for a first ballot. A proxy ballot
        (代投) needs a reason; it is recorded in the round's record (without the choice of a secret
        ballot) and the person is told if they have a chat with the bot."""
        if for_person is not None:
            reason = _check_text(reason or "", MAX_REASON, "delib.refused.empty_reason")
        async with self.db.transaction() as tx:
            rnd = await self._round(round_id, tx)
            voter = await self._check_voter(tx, actor, rnd, for_person)
            options = await self._options(tx, rnd.id)
            picked = sorted(set(choices))
            if not picked or any(not 0 <= c < len(options) for c in picked):
                raise Refused("delib.refused.bad_choice")
            if len(picked) > (rnd.max_choices if rnd.multiple else 1):
                raise Refused("delib.refused.too_many_choices", n=rnd.max_choices if rnd.multiple else 1)
            if for_person is not None and await rnd.box.has_voted(tx, voter):
                raise Refused("delib.refused.voted_already")  # their own ballot stands
            proxy_by = _person(actor) if for_person is not None else None
            try:
                first = await rnd.box.cast(tx, voter, picked, proxy_by)
            except AlreadyVoted:
                raise Refused("delib.refused.secret_voted") from None
            await self._took_part_now(tx, rnd, "v", voter)
            if for_person is not None:
                note = reason if rnd.secret else f"{reason} → {','.join(options[c] for c in picked)}"
                await self._event(tx, rnd.id, actor, "proxy", voter, note)
                await self._tell_proxied(tx, rnd, voter, [options[c] for c in picked], actor)
            return first

    async def _tell_proxied(self, tx: Tx, rnd: Round, person: int, chosen: list[str], actor: Actor) -> None:
        """The person a secretary voted for is told, if they have ever talked to the bot. A secret
        ballot's message does not name the choice (the outbox row would link them)."""
        row = await tx.fetchone("SELECT 1 FROM people WHERE telegram_id = ? AND (tg_language_code IS NOT NULL"
                                " OR username IS NOT NULL OR language IS NOT NULL)", (person,))
        if row is None:
            return
        lang = await self.people.language(person, tx)
        by = await self.people.display_name(_person(actor), tx)
        if rnd.secret:
            text = self.t(lang, "delib.proxy_notice_secret", title=rnd.title, by=by)
        else:
            text = self.t(lang, "delib.proxy_notice", title=rnd.title, by=by, choice=self.fmt.join(lang, chosen))
        stamp = await tx.fetchval("SELECT COUNT(*) FROM delib_events WHERE round_id = ?", (rnd.id,))
        await self.outbox.send_text(tx, key=f"dl:{rnd.id}:p:{person}:{stamp}", chat_id=person, text=text,
                                    purpose=Purpose.PROXY, subject_id=rnd.id)

    async def proxy_targets(self, actor: Actor, round_id: int, query: str = "") -> list[ProxyTarget]:
        """Eligible people who have not voted yet, whose secretary the actor is (by name, when a
        part of a name is given); for the 代投 list."""
        rnd = await self._round(round_id)
        if not await self._may_proxy(self.db, actor, rnd):
            raise NotAllowed("proxy")
        voted = await self._took_part(self.db, rnd, "v")
        out = []
        for pid in await self._audience(self.db, rnd):
            if pid in voted or pid == actor:
                continue
            name = await self.people.display_name(pid)
            if query.strip() in name:
                out.append(ProxyTarget(pid, name))
        return sorted(out, key=lambda p: (p.name, p.person_id))

    # --- results ----------------------------------------------------------------------------
    async def _count(self, src: Tx | Database, rnd: Round, final: bool) -> Result:
        options = await self._options(src, rnd.id)
        tally: Tally = await rnd.box.tally(src)
        rows = await src.fetchall(
            "SELECT o.text, (SELECT COUNT(*) FROM delib_supports s WHERE s.opinion_id = o.id) AS n"
            " FROM delib_opinions o WHERE o.round_id = ? AND o.hidden_at IS NULL AND o.text != ''"
            " ORDER BY n DESC, o.id LIMIT ?", (rnd.id, TOP_OPINIONS))
        opinions = await src.fetchval("SELECT COUNT(*) FROM delib_opinions WHERE round_id = ? AND hidden_at IS NULL",
                                      (rnd.id,))
        eligible = len(await self._audience(src, rnd))
        voted = rnd.votes_until is not None and len(options) >= 2
        return Result(options=[(label, tally.counts.get(i, 0)) for i, label in enumerate(options)],
                      ballots=tally.ballots, proxies=tally.proxies, eligible=eligible, opinions=int(opinions),
                      top=[(clip(mask_public(r[0]), OPINION_ROOM), int(r[1])) for r in rows], voted=voted,
                      final=final)

    async def result(self, actor: Actor, round_id: int) -> Result | None:
        """The fixed result of a closed round; live counts while voting when the opener chose
        them; None while the counts are hidden (or the round was cancelled)."""
        rnd = await self.get(actor, round_id)
        if rnd.result is not None:
            return _result_from(rnd.result)
        if rnd.status == "open" and rnd.live_results and not rnd.secret and rnd.votes_until is not None:
            return await self._count(self.db, rnd, final=False)
        return None

    def result_text(self, lang: str, rnd: Round, result: Result) -> str:
        """The result as a message: counts per option, turnout, proxy ballots, top opinions."""
        lines = [self.t(lang, "delib.result.head" if result.final else "delib.result.live_head", title=rnd.title,
                        org=rnd.org_name)]
        if result.voted:
            for label, n in result.options:
                lines.append(self.t(lang, "delib.result.option", label=label,
                                    count=self.fmt.count(lang, "delib.result.votes", n)))
            percent = round(100 * result.ballots / result.eligible) if result.eligible else 0
            lines.append(self.t(lang, "delib.result.turnout", ballots=result.ballots, eligible=result.eligible,
                                percent=percent))
            if result.proxies:
                lines.append(self.t(lang, "delib.result.proxies", n=result.proxies))
        elif rnd.votes_until is not None and result.final:
            lines.append(self.t(lang, "delib.result.no_vote"))
        lines.append(self.fmt.count(lang, "delib.result.opinions", result.opinions))
        if result.top:
            lines.append(self.t(lang, "delib.result.top_head"))
            for text, n in result.top:
                lines.append(self.t(lang, "delib.result.top", text=text, n=n))
        if rnd.ended_early and rnd.end_reason:
            lines.append(self.t(lang, "delib.result.early", reason=rnd.end_reason))
        return "\n".join(lines)

    # --- the opener manages -----------------------------------------------------------------
    async def _managed(self, tx: Tx, actor: Actor, round_id: int) -> Round:
        rnd = await self._round(round_id, tx)
        if not await self._may_manage(tx, actor, rnd):
            raise NotAllowed("manage")
        if rnd.status != "open":
            raise Refused("delib.refused.round_over")
        return rnd

    async def check_manage(self, actor: Actor, round_id: int) -> Round:
        """Before the chat asks for a reason: the opener of a round still open."""
        rnd = await self._round(round_id)
        if not await self._may_manage(self.db, actor, rnd):
            raise NotAllowed("manage")
        if rnd.status != "open":
            raise Refused("delib.refused.round_over")
        return rnd

    async def extend(self, actor: Actor, round_id: int, days: int, reason: str) -> Round:
        """Once per round, with a reason: the current phase's deadline moves `days` later (in the
        opinion phase the vote phase moves with it); the audience is told and reminders move."""
        if days not in EXTEND_DAYS:
            raise Refused("delib.refused.bad_extension")
        reason = _check_text(reason, MAX_REASON, "delib.refused.empty_reason")
        now = self.clock.now()
        async with self.db.transaction() as tx:
            rnd = await self._managed(tx, actor, round_id)
            if rnd.extended_at is not None:
                raise Refused("delib.refused.extended_once")
            phase = rnd.phase(now)
            if phase not in (Phase.OPINIONS, Phase.VOTING):
                raise Refused("delib.refused.round_over")
            delta = timedelta(days=days)
            opinions_until = rnd.opinions_until + delta if phase == Phase.OPINIONS else rnd.opinions_until
            votes_until = rnd.votes_until + delta if rnd.votes_until is not None else None
            await tx.execute(
                "UPDATE delib_rounds SET opinions_until = ?, votes_until = ?, extended_at = ?, extend_reason = ?"
                " WHERE id = ?", (to_db(opinions_until), to_db(votes_until) if votes_until else None, to_db(now),
                                  reason, rnd.id))
            await self._event(tx, rnd.id, actor, "extend", None, f"{days}d {reason}")
            rnd = await self._round(rnd.id, tx)
            audience = [p for p in await self._audience(tx, rnd) if p != actor]
            await self._tell_all(tx, rnd, audience, "x", now, "delib.extended", reason=reason)
            if phase == Phase.OPINIONS:
                await self._plan_reminders(tx, rnd, "o", rnd.opinions_until, audience, now)
            elif rnd.votes_until is not None:
                await self._plan_reminders(tx, rnd, "v", rnd.votes_until, audience, now)
        return rnd

    async def _tell_all(self, tx: Tx, rnd: Round, people: Sequence[int], tag: str, now: datetime, key: str,
                        **values: Any) -> None:
        at = after_quiet(now, self.tz)
        langs = await self._langs(tx, people)
        for pid in people:
            lang = langs[pid]
            text = self.t(lang, key, title=rnd.title, card=self.card_text(lang, rnd, now), **values)
            await self.outbox.send_text(tx, key=f"dl:{rnd.id}:{tag}:{pid}:", chat_id=pid, text=text,
                                        buttons=self.open_button(lang, rnd.id), not_before=at,
                                        purpose=Purpose.CHANGE, subject_id=rnd.id, priority=Priority.BULK)

    async def close_early(self, actor: Actor, round_id: int, reason: str) -> Round:
        """The opener closes before the deadline, with a reason: the result is fixed now."""
        reason = _check_text(reason, MAX_REASON, "delib.refused.empty_reason")
        async with self.db.transaction() as tx:
            rnd = await self._managed(tx, actor, round_id)
            await self._event(tx, rnd.id, actor, "close", None, reason)
            await self._close(tx, rnd, self.clock.now(), reason)
            return await self._round(rnd.id, tx)

    async def cancel(self, actor: Actor, round_id: int, reason: str) -> Round:
        """The opener cancels the round: no result; the audience is told; nothing more is sent."""
        reason = _check_text(reason, MAX_REASON, "delib.refused.empty_reason")
        now = self.clock.now()
        async with self.db.transaction() as tx:
            rnd = await self._managed(tx, actor, round_id)
            await tx.execute("UPDATE delib_rounds SET status = 'cancelled', ended_at = ?, end_reason = ?,"
                             " ended_early = 1 WHERE id = ? AND status = 'open'", (to_db(now), reason, rnd.id))
            await self._event(tx, rnd.id, actor, "cancel", None, reason)
            await self._cancel_pending(tx, rnd.id)
            rnd = await self._round(rnd.id, tx)
            audience = [p for p in await self._audience(tx, rnd) if p != actor]
            await self._tell_all(tx, rnd, audience, "c", now, "delib.cancelled_notice", reason=reason)
            return rnd

    async def _cancel_pending(self, tx: Tx, round_id: int) -> None:
        """Notices, background copies, changes and reminders not sent yet (a hidden-opinion or proxy
        message still goes: it is about something that happened)."""
        for tag in ("n", "m", "x", "ro", "rv", "vs"):
            await self.outbox.cancel(tx, key_prefix=f"dl:{round_id}:{tag}:")

    # --- the ledger (台账) ------------------------------------------------------------------
    async def ledger(self, actor: Actor, org_id: int, first: date, last: date, lang: str,
                     extra: Sequence[Callable[[Workbook], None]] = ()) -> tuple[str, bytes]:
        """The rounds of the org and the orgs below it opened in [first, last] (local days), as an
        Excel workbook: for the system, admins, and those who lead at or above the org. `extra`
        adds sheets (the rounds' opinion maps)."""
        org, rounds = await self.ledger_rounds(actor, org_id, first, last)
        content = await asyncio.to_thread(deliberation_ledger.render, rounds, self.t, self.fmt, lang, extra)
        period = describe(self.fmt, lang, first, last, for_file=True)
        return file_name(self.t(lang, "delib.ledger.file_name", org=org.name[:60], period=period)), content

    async def ledger_rounds(self, actor: Actor, org_id: int, first: date, last: date,
                            ) -> tuple[Org, list[deliberation_ledger.LedgerRound]]:
        """The org and its rounds for the ledger (its own workbook, or sheets of the org's /ledger)."""
        org = await self.orgs.get(org_id)
        if org is None:
            raise NotFound("org")
        if not (is_system(actor) or (isinstance(actor, int) and (self.orgs.is_admin(actor) or
                await self.orgs.has_role_at_or_above(actor, org_id, [Role.secretary, Role.organizer])))):  # type: ignore[list-item]
            raise NotAllowed("ledger")
        if not 0 <= (last - first).days <= 366 * 5:
            raise Refused("delib.refused.bad_period")
        start = datetime.combine(first, datetime.min.time(), self.tz)
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), self.tz)
        rows = await self.db.fetchall(
            "WITH RECURSIVE down(id) AS (SELECT CAST(? AS BIGINT)"
            " UNION ALL SELECT o.id FROM orgs o JOIN down ON o.parent_id = down.id)"
            f" {ROUND_SQL} WHERE r.org_id IN (SELECT id FROM down) AND r.opened_at >= ? AND r.opened_at < ?"
            " ORDER BY r.opened_at, r.id", (org_id, to_db(start), to_db(end)))
        return org, [await self._ledger_round(Round.from_row(r)) for r in rows]

    async def _ledger_round(self, rnd: Round) -> deliberation_ledger.LedgerRound:
        opinions = await self.db.fetchval("SELECT COUNT(*) FROM delib_opinions WHERE round_id = ?", (rnd.id,))
        events = []
        for e in await self.db.fetchall("SELECT * FROM delib_events WHERE round_id = ? ORDER BY id", (rnd.id,)):
            events.append(deliberation_ledger.LedgerEvent(
                at=from_db(e["at"]), actor=await self.people.display_name(e["actor_id"]), action=e["action"],
                person=await self.people.display_name(e["person_id"]) if e["person_id"] else "",
                note=e["note"] or ""))
        return deliberation_ledger.LedgerRound(
            opened_at=rnd.opened_at, org_name=rnd.org_name, title=rnd.title, audience=rnd.audience.value,
            opinions_until=rnd.opinions_until, votes_until=rnd.votes_until, status=rnd.status, secret=rnd.secret,
            opinions=int(opinions), result=rnd.result, note=rnd.end_reason or "", events=events)

    # --- the periodic job -------------------------------------------------------------------
    async def tick(self, actor: Actor) -> int:
        """Start the vote phases and close the rounds that have come due: each exactly once (the
        status and vote_started_at columns are the claims), catching up after downtime."""
        if not isinstance(actor, SystemActor):
            raise NotAllowed("tick")
        now = self.clock.now()
        done = 0
        rows = await self.db.fetchall(
            "SELECT id FROM delib_rounds WHERE status = 'open' AND votes_until IS NOT NULL"
            " AND vote_started_at IS NULL AND opinions_until <= ? ORDER BY id", (to_db(now),))
        for row in rows:
            async with self.db.transaction() as tx:
                done += await self._start_voting(tx, await self._round(row[0], tx), now)
        rows = await self.db.fetchall(
            "SELECT id FROM delib_rounds WHERE status = 'open' AND COALESCE(votes_until, opinions_until) <= ?"
            " ORDER BY id", (to_db(now),))
        for row in rows:
            async with self.db.transaction() as tx:
                done += await self._close(tx, await self._round(row[0], tx), now, None)
        return done

    async def _start_voting(self, tx: Tx, rnd: Round, now: datetime) -> int:
        cur = await tx.execute("UPDATE delib_rounds SET vote_started_at = ? WHERE id = ? AND status = 'open'"
                               " AND vote_started_at IS NULL", (to_db(now), rnd.id))
        if not cur.rowcount or rnd.votes_until is None or rnd.votes_until <= now:
            return int(cur.rowcount)  # the close comes next; nobody is invited to a vote that is over
        if len(await self._options(tx, rnd.id)) < 2:
            return 1 + await self._close(tx, rnd, now, None)  # nothing to vote on: closed on its opinions
        await self.outbox.cancel(tx, key_prefix=f"dl:{rnd.id}:ro:")  # the opinion phase is over
        audience = await self._audience(tx, rnd)
        at = after_quiet(now, self.tz)
        langs = await self._langs(tx, audience)
        for pid in audience:
            lang = langs[pid]
            text = self.t(lang, "delib.vote_start", title=rnd.title,
                          when=self.fmt.moment(lang, rnd.votes_until, now))
            buttons = [[Button(self.t(lang, "delib.button.vote"), DELIB_VIEW(DelibView.BALLOT, rnd.id))]]
            await self.outbox.send_text(tx, key=f"dl:{rnd.id}:vs:{pid}:", chat_id=pid, text=text, buttons=buttons,
                                        not_before=at, purpose=Purpose.VOTE_START, subject_id=rnd.id,
                                        priority=Priority.BULK)
        await self._plan_reminders(tx, rnd, "v", rnd.votes_until, audience, now)
        return 1

    async def _close(self, tx: Tx, rnd: Round, now: datetime, reason: str | None) -> int:
        """Fix the result (once: the status is the claim), cancel what was still to be sent, and
        send the result to the participants and the org's wall chat."""
        cur = await tx.execute(
            "UPDATE delib_rounds SET status = 'closed', ended_at = ?, end_reason = ?, ended_early = ?"
            " WHERE id = ? AND status = 'open'", (to_db(now), reason, int(reason is not None), rnd.id))
        if not cur.rowcount:
            return 0
        rnd = await self._round(rnd.id, tx)
        result = await self._count(tx, rnd, final=True)
        await tx.execute("UPDATE delib_rounds SET result = ? WHERE id = ?",
                         (json.dumps(_result_to(result), ensure_ascii=False), rnd.id))
        await self._cancel_pending(tx, rnd.id)
        people = sorted(await self._took_part(tx, rnd, "o") | await self._took_part(tx, rnd, "v") | {rnd.opened_by})
        langs = await self._langs(tx, people)
        at = after_quiet(now, self.tz)
        for pid in people:
            lang = langs[pid]
            await self.outbox.send_text(tx, key=f"dl:{rnd.id}:res:{pid}:", chat_id=pid, not_before=at,
                                        text=self.result_text(lang, rnd, result), purpose=Purpose.RESULT,
                                        subject_id=rnd.id, priority=Priority.BULK)
        chat = await tx.fetchone("SELECT chat_id FROM wall_chats WHERE org_id = ?", (rnd.org_id,))
        if chat is not None:
            text = self.result_text(self.core.settings.locale, rnd, result)
            await self.outbox.send_text(tx, key=f"dl:{rnd.id}:wall", chat_id=chat[0], text=text,
                                        purpose=Purpose.WALL, subject_id=rnd.id)
        log.info("deliberation %s closed: %s ballots of %s eligible", rnd.id, result.ballots, result.eligible)
        return 1


def _result_to(result: Result) -> dict[str, Any]:
    return {"options": [list(o) for o in result.options], "ballots": result.ballots, "proxies": result.proxies,
            "eligible": result.eligible, "opinions": result.opinions, "top": [list(t) for t in result.top],
            "voted": result.voted}


def _result_from(data: dict[str, Any]) -> Result:
    return Result(options=[(str(a), int(b)) for a, b in data["options"]], ballots=int(data["ballots"]),
                  proxies=int(data["proxies"]), eligible=int(data["eligible"]), opinions=int(data["opinions"]),
                  top=[(str(a), int(b)) for a, b in data["top"]], voted=bool(data["voted"]), final=True)
