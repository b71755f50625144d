"""Digests: each person chooses to get the low-priority notices (bot/digest_kinds.py: echo-wall
posts, minutes, broadcasts not marked urgent, supervision summaries) at once, or as one message a
day at 08:00 (the bot's time zone).

A held notice is an outbox row with status 'digest', written by Outbox.enqueue in the transaction
that caused it, so a restart (or kill -9) loses nothing. Every tick, the rows due by the latest
08:00 of each person become one message (split only at Telegram's 4096 characters or 100
buttons) queued in the same transaction that marks them 'digested'. Each item has a button that
sends the original notice (a broadcast's photo or file included). A withdrawn subject (a
cancelled broadcast, a meeting whose minutes came in) is left out. Whoever switches back to "at
once" gets what was held at once: the rows become 'pending' again."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from bot.actors import Actor, is_system
from bot.callbacks import DG_OPEN, DG_SET, DigestMode, DigestScreen
from bot.clock import from_db, to_db
from bot.database import Tx
from bot.digest_kinds import DIGESTIBLE, WITHDRAWN_SUBJECT
from bot.infra import Infra
from bot.limits import MAX_BUTTONS, MAX_TEXT, clip, telegram_length
from bot.outbox import Button, Priority
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
        """Build the digest of everyone with notices held from before the latest 08:00. Idempotent, and it
        catches up after downtime: what is left is only what was not built. Returns digests built."""
        if not is_system(actor):
            raise NotAllowed("digest run")
        cutoff = self.cutoff(self.clock.now())
        people = await self.db.fetchall(
            "SELECT DISTINCT recipient FROM outbox WHERE status = 'digest' AND not_before < ?", (to_db(cutoff),))
        built = 0
        for (person,) in people:
            built += await self._build(person, cutoff)
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
            if not items:
                return 0
            lang = await self.core.people.language(person, tx)
            parts = self.render(lang, items, cutoff)
            digest_id = await tx.insert(
                "INSERT INTO digests (person_id, cutoff, created_at, items, parts) VALUES (?, ?, ?, ?, ?)",
                (person, to_db(cutoff), to_db(self.clock.now()), len(items), len(parts)))
            for n, part in enumerate(parts):
                await self.outbox.send_text(tx, key=f"dg:{digest_id}:{n}", chat_id=person, text=part.text,
                                            buttons=part.buttons, purpose=MESSAGE, subject_id=digest_id)
            await tx.executemany("UPDATE outbox SET status = 'digested' WHERE id = ?", [(i.id,) for i in items])
        return 1

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

    def render(self, lang: str, items: list[Item], cutoff: datetime) -> list[Part]:
        """The digest as few messages as fit: a new one only past 4096 characters or 100 buttons."""
        day = self.fmt.day(lang, cutoff, weekday=True)
        head = self.fmt.count(lang, "digest.title", len(items), day=day)
        more = self.t(lang, "digest.title_more", day=day)
        foot = self.t(lang, "digest.footer")
        room = MAX_TEXT - max(telegram_length(head), telegram_length(more)) - telegram_length(foot) - 4
        chunks: list[list[tuple[int, Item, str]]] = [[]]
        used = 0
        for n, item in enumerate(items, start=1):
            text = self.line(lang, n, item)
            size = telegram_length(text) + 1
            if chunks[-1] and (used + size > room or len(chunks[-1]) >= MAX_BUTTONS):
                chunks.append([])
                used = 0
            chunks[-1].append((n, item, text))
            used += size
        parts = []
        for k, chunk in enumerate(chunks):
            body = "\n".join(text for _, _, text in chunk)
            buttons = [Button(self.t(lang, "digest.open", n=n), DG_OPEN(item.id)) for n, item, _ in chunk]
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

