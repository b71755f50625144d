"""Digests: each person chooses to get the low-priority notices (bot/digest_kinds.py: echo-wall
posts, minutes, broadcasts not marked urgent, supervision summaries) at once, or as one message a
day at 08:00 (the bot's time zone).

A held notice is an outbox row with status 'digest', written by Outbox.enqueue in the transaction
that caused it, so a restart (or kill -9) loses nothing. Every tick, the rows due by the latest
08:00 of each person become one message (split only at Telegram's 4096 characters or 100
buttons) queued in the same transaction that marks them 'digested'. Each item has a button that
sends the original notice (a broadcast's photo or file included). A withdrawn subject (a
cancelled broadcast, a meeting whose minutes came in) is left out. Echo-wall posts, which go to the
org's wall chat and to nobody in person, are listed per org (problems answered on the wall since
the person's last digest) with a button that shows that wall. Whoever switches back to "at
once" gets what was held at once: the rows become 'pending' again."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from bot.actors import Actor, is_system
from bot.callbacks import DG_OPEN, DG_SET, DG_WALL, DigestMode, DigestScreen
from bot.clock import from_db, to_db
from bot.database import Tx
from bot.digest_kinds import DIGESTIBLE, WITHDRAWN_SUBJECT
from bot.infra import Infra
from bot.limits import MAX_BUTTONS, MAX_TEXT, clip, telegram_length
from bot.outbox import Button, Priority
from bot.services.meeting_time import after_quiet
from bot.services.orgs import NotAllowed, NotFound, Refused

__all__ = ["DigestService", "Refused"]

DIGEST_AT = time(8, 0)
MESSAGE = "digest/message"
OPEN = "digest/open"
LINE_ROOM = 120      # characters of one item's line: a glance, the button gives the whole
BUTTONS_PER_ROW = 4
MEDIA_KEYS = {"sendPhoto": "digest.media.photo", "sendDocument": "digest.media.document",
              "sendVoice": "digest.media.voice", "sendVideo": "digest.media.video"}


@dataclass(frozen=True)
class Item:
    """One held notice: the outbox row as it would have been sent."""

    id: int
    purpose: str
    subject_id: int | None
    method: str
    payload: dict[str, Any]
    due: datetime


@dataclass(frozen=True)
class WallNews:
    """Problems of one of the person's orgs answered on its echo wall since their last digest."""

    org_id: int
    org_name: str
    answered: int


@dataclass(frozen=True)
class Part:
    text: str
    buttons: list[list[Button]]


class DigestService:
    def __init__(self, core: Infra) -> None:
        self.core = core
        self.db = core.db
        self.clock = core.clock
        self.outbox = core.outbox
        self.t = core.t
        self.fmt = core.formatter
        self.tz = core.settings.tz
        # The latest 08:00 whose echo-wall news were looked for (in memory: after a restart they
        # are looked for once more, and the windows in the database keep that idempotent).
        self._wall_scanned: datetime | None = None

    # --- the choice -------------------------------------------------------------------------
    async def daily(self, person_id: int, tx: Tx | None = None) -> bool:
        """Whether the person chose the daily digest (the default is "at once")."""
        return bool(await (tx or self.db).fetchval(
            "SELECT digest FROM notice_settings WHERE person_id = ?", (person_id,)))

    async def held(self, actor: Actor) -> int:
        """How many notices wait for the actor's next digest."""
        if not isinstance(actor, int):
            return 0
        return await self.db.fetchval(
            "SELECT COUNT(*) FROM outbox WHERE status = 'digest' AND recipient = ?", (actor,)) or 0

    async def choose(self, actor: Actor, daily: bool) -> int:
        """The actor's own choice. Back to "at once", what was held goes out now: returns how many."""
        if is_system(actor) or not isinstance(actor, int):
            raise NotAllowed("digest choice")
        # Anyone who talks to the bot may choose for themselves (and only for themselves).
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO notice_settings (person_id, digest, changed_at) VALUES (?, ?, ?)"
                " ON CONFLICT(person_id) DO UPDATE SET digest = excluded.digest, changed_at = excluded.changed_at",
                (actor, int(daily), to_db(self.clock.now())))
            if daily:
                return 0
            cur = await tx.execute(
                "UPDATE outbox SET status = 'pending' WHERE status = 'digest' AND recipient = ?", (actor,))
            tx.after_commit(self.outbox.wake)
            return cur.rowcount

    def choice(self, lang: str, daily: bool, screen: DigestScreen, held: int = 0) -> tuple[str, list[list[Button]]]:
        """The line saying the current choice and the two buttons (☑ marks it), for /me and /settings."""
        mark = {False: "☐", True: "☑"}
        line = self.t(lang, "digest.choice.daily" if daily else "digest.choice.now")
        if daily and held:
            line += "\n" + self.fmt.count(lang, "digest.choice.held", held)
        rows = [[Button(self.t(lang, "digest.button.now", mark=mark[not daily]), DG_SET(DigestMode.NOW, screen))],
                [Button(self.t(lang, "digest.button.daily", mark=mark[daily]), DG_SET(DigestMode.DAILY, screen))]]
        return line, rows

    # --- the daily run ----------------------------------------------------------------------
    def cutoff(self, now: datetime) -> datetime:
        """The latest 08:00 (local) at or before `now`."""
        local = now.astimezone(self.tz)
        at = datetime.combine(local.date(), DIGEST_AT, tzinfo=self.tz)
        return at if at <= local else datetime.combine(local.date() - timedelta(days=1), DIGEST_AT, tzinfo=self.tz)

    async def run(self, actor: Actor) -> int:
        """Build the digest of everyone with notices held from before the latest 08:00, or with
        echo-wall news since their last digest. Idempotent, and it catches up after downtime: what
        is left is only what was not built. Returns digests built."""
        if not is_system(actor):
            raise NotAllowed("digest run")
        cutoff = self.cutoff(self.clock.now())
        rows = await self.db.fetchall(
            "SELECT DISTINCT recipient FROM outbox WHERE status = 'digest' AND not_before < ?", (to_db(cutoff),))
        people = {row[0] for row in rows}
        if self._wall_scanned != cutoff:
            people |= await self._wall_people(cutoff)
        built = 0
        for person in sorted(people):
            built += await self._build(person, cutoff)
        self._wall_scanned = cutoff
        return built

    async def _build(self, person: int, cutoff: datetime) -> int:
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT id, purpose, subject_id, method, payload, not_before FROM outbox WHERE status = 'digest'"
                " AND recipient = ? AND not_before < ? ORDER BY not_before, id", (person, to_db(cutoff)))
            items: list[Item] = []
            for row in rows:
                item = Item(row[0], row[1], row[2], row[3], json.loads(row[4]), from_db(row[5]))
                if await self._withdrawn(tx, item):
                    await tx.execute("UPDATE outbox SET status = 'cancelled' WHERE id = ?", (item.id,))
                else:
                    items.append(item)
            news = await self._wall_news(tx, person, cutoff)
            if not items and not news:
                return 0
            lang = await self.core.people.language(person, tx)
            parts = self.render(lang, items, cutoff, news)
            digest_id = await tx.insert(
                "INSERT INTO digests (person_id, cutoff, created_at, items, parts) VALUES (?, ?, ?, ?, ?)",
                (person, to_db(cutoff), to_db(self.clock.now()), len(items) + len(news), len(parts)))
            # BULK: at 08:00 everyone's digest is due together, behind what people wait for; a digest
            # caught up at night waits for the morning.
            when = after_quiet(self.clock.now(), self.tz)
            for n, part in enumerate(parts):
                await self.outbox.send_text(tx, key=f"dg:{digest_id}:{n}", chat_id=person, text=part.text,
                                            buttons=part.buttons, purpose=MESSAGE, subject_id=digest_id,
                                            not_before=when, priority=Priority.BULK)
            await tx.executemany("UPDATE outbox SET status = 'digested' WHERE id = ?", [(i.id,) for i in items])
        return 1

    # --- echo-wall posts of the person's orgs -----------------------------------------------
    # Nobody gets a message of their own for an echo-wall post (it goes to the org's wall chat): a
    # digest lists, per org where the person is a member or resident, the problems answered on its
    # wall since their last digest (or since they chose the digest). What the wall shows: answered
    # or closed, public, with an answer in words (bot/services/echo_wall.py).
    _WALL_SINCE = ("MAX(s.changed_at, COALESCE((SELECT MAX(d.cutoff) FROM digests d"
                   " WHERE d.person_id = s.person_id), ''))")
    _WALL_POSTS = ("roles r JOIN tickets t ON t.org_id = r.org_id WHERE r.person_id = s.person_id"
                   " AND r.role IN ('member', 'resident') AND t.public_ok = 1 AND t.answer_text IS NOT NULL"
                   " AND t.status IN ('answered', 'closed') AND t.answered_at < :cutoff"
                   f" AND t.answered_at >= {_WALL_SINCE}")

    async def _wall_people(self, cutoff: datetime) -> set[int]:
        rows = await self.db.fetchall(
            "SELECT s.person_id FROM notice_settings s WHERE s.digest = 1"
            f" AND EXISTS (SELECT 1 FROM {self._WALL_POSTS})",
            {"cutoff": to_db(cutoff)})
        return {row[0] for row in rows}

    async def _wall_news(self, tx: Tx, person: int, cutoff: datetime) -> list[WallNews]:
        rows = await tx.fetchall(
            f"SELECT t.org_id, o.name, COUNT(DISTINCT t.id) FROM notice_settings s, orgs o, {self._WALL_POSTS}"
            " AND o.id = t.org_id AND s.person_id = :person AND s.digest = 1 GROUP BY t.org_id, o.name"
            " ORDER BY o.name", {"cutoff": to_db(cutoff), "person": person})
        return [WallNews(row[0], row[1], row[2]) for row in rows]

    async def _withdrawn(self, tx: Tx, item: Item) -> bool:
        sql = WITHDRAWN_SUBJECT.get(item.purpose)
        return sql is not None and await tx.fetchval(sql, (item.subject_id,)) is not None

    # --- the message ------------------------------------------------------------------------
    def line(self, lang: str, n: int, item: Item) -> str:
        """`3. 【通知】📢 龙驹寨街道党工委 下周一…`: the kind and the start of the notice."""
        words = " ".join(str(item.payload.get("text") or item.payload.get("caption") or "").split())
        media = MEDIA_KEYS.get(item.method)
        if media is not None:
            words = f"{self.t(lang, media)} {words}".strip()
        kind = self.t(lang, DIGESTIBLE.get(item.purpose, "digest.kind.other"))
        return clip(self.t(lang, "digest.line", n=n, kind=kind, text=words), LINE_ROOM)

    def render(self, lang: str, items: list[Item], cutoff: datetime,
               news: list[WallNews] | None = None) -> list[Part]:
        """The digest as few messages as fit: a new one only past 4096 characters or 100 buttons."""
        entries = [(self.line(lang, n, item), DG_OPEN(item.id)) for n, item in enumerate(items, start=1)]
        for n, wall in enumerate(news or [], start=len(entries) + 1):
            text = self.fmt.count(lang, "digest.wall_line", wall.answered, number=n,
                                  kind=self.t(lang, "digest.kind.wall"), org=wall.org_name)
            entries.append((clip(text, LINE_ROOM), DG_WALL(wall.org_id)))
        day = self.fmt.day(lang, cutoff, weekday=True)
        head = self.fmt.count(lang, "digest.title", len(entries), day=day)
        more = self.t(lang, "digest.title_more", day=day)
        foot = self.t(lang, "digest.footer")
        room = MAX_TEXT - max(telegram_length(head), telegram_length(more)) - telegram_length(foot) - 4
        chunks: list[list[tuple[int, str, str]]] = [[]]
        used = 0
        for n, (text, data) in enumerate(entries, start=1):
            size = telegram_length(text) + 1
            if chunks[-1] and (used + size > room or len(chunks[-1]) >= MAX_BUTTONS):
                chunks.append([])
                used = 0
            chunks[-1].append((n, text, data))
            used += size
        parts = []
        for k, chunk in enumerate(chunks):
            body = "\n".join(text for _, text, _ in chunk)
            buttons = [Button(self.t(lang, "digest.open", n=n), data) for n, _, data in chunk]
            rows = [buttons[i:i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]
            parts.append(Part(f"{head if k == 0 else more}\n\n{body}\n\n{foot}", rows))
        return parts

    # --- opening an item --------------------------------------------------------------------
    async def open(self, actor: Actor, item_id: int) -> None:
        """Send the actor the original notice a digest of theirs listed (again if they ask again,
        but not while a copy is still on its way)."""
        if not isinstance(actor, int):
            raise NotAllowed("digest item")
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT id, purpose, subject_id, method, payload, not_before, recipient, status FROM outbox"
                " WHERE id = ?", (item_id,))
            if row is None or row["purpose"] not in DIGESTIBLE or row["status"] not in ("digested", "digest"):
                raise NotFound("digest item")
            if row["recipient"] != actor:
                raise NotAllowed("digest item")
            item = Item(row[0], row[1], row[2], row[3], json.loads(row[4]), from_db(row[5]))
            if await self._withdrawn(tx, item):
                raise Refused("digest.error.withdrawn")
            copies = await tx.fetchall(
                "SELECT status FROM outbox WHERE purpose = ? AND subject_id = ?", (OPEN, item.id))
            if any(c[0] == "pending" for c in copies):
                raise Refused("digest.error.on_its_way")
            payload = {**item.payload, "chat_id": actor}
            await self.outbox.enqueue(tx, key=f"dgo:{item.id}:{len(copies)}", chat_id=actor, method=item.method,
                                      payload=payload, purpose=OPEN, subject_id=item.id, priority=Priority.URGENT)

