"""Retention of closed tickets (PIPL): some time after a ticket was closed (BOT_RETENTION_DAYS, three
years by default) its resident link, the resident's name and media are removed and its texts are
kept masked (mask_public), so the echo wall and the reports keep the problem and its answer, and
nobody can learn any more who raised it: the ticket then reads as anonymous (匿名) everywhere.

`strip_tickets` is the one place that knows every table holding a ticket's resident identity or
media; the person's right to be forgotten (bot/services/privacy.py) strips their tickets with it too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from bot.actors import Actor, SystemActor
from bot.clock import Clock, to_db
from bot.database import Database, Tx
from bot.services.masking import mask_public
from bot.services.orgs import NotAllowed
from bot.services.tickets import FINAL, INFO_QUESTION, RATE_QUESTION, SUBJECT

# The resident link of a stripped ticket: tickets.resident_id is NOT NULL and references people, so a
# stripped ticket points at this row, which is nobody (Telegram ids start at 1). Made when needed.
NOBODY = 0
BATCH = 500  # tickets per transaction: the bot's writes wait for one batch at most
TICKET_PURPOSES = "ticket/%"
TICKET_QUESTIONS = (INFO_QUESTION, RATE_QUESTION)
EMPTY_PAYLOAD = "{}"


@dataclass
class Stripped:
    """What stripping removed, in counts only."""

    tickets: int = 0
    texts_masked: int = 0
    media: int = 0
    questions: int = 0
    screens: int = 0
    outbox: int = 0
    kept_messages: int = 0

    def add(self, other: Stripped) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


async def ensure_nobody(tx: Tx, now: datetime) -> None:
    await tx.execute("INSERT INTO people (telegram_id, name, created_at, updated_at) VALUES (?, '', ?, ?)"
                     " ON CONFLICT(telegram_id) DO NOTHING", (NOBODY, to_db(now), to_db(now)))


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_public(text)


async def strip_tickets(tx: Tx, ticket_ids: Sequence[int], now: datetime) -> Stripped:
    """Long because it visits, for each ticket, every table that holds its resident's identity or
    media, in one transaction: the ticket, its items and events, open questions about it, screens
    that keep its messages true, and the outbox rows about it (addressed to the resident or not)."""
    done = Stripped()
    if not ticket_ids:
        return done
    await ensure_nobody(tx, now)
    for ticket_id in ticket_ids:
        ticket = await tx.fetchone("SELECT resident_id, summary, answer_text, rating_reason FROM tickets"
                                   " WHERE id = ? AND stripped_at IS NULL", (ticket_id,))
        if ticket is None:
            continue
        resident = ticket["resident_id"]
        await tx.execute(
            # anonymous = 1: its author is nobody now, and every view says so (匿名) instead of a number.
            "UPDATE tickets SET resident_id = ?, anonymous = 1, summary = ?, content_key = '', answer_text = ?,"
            " rating_reason = ?, stripped_at = ? WHERE id = ?",
            (NOBODY, mask_public(ticket["summary"]), _masked(ticket["answer_text"]),
             _masked(ticket["rating_reason"]), to_db(now), ticket_id))
        done.tickets += 1
        for item in await tx.fetchall("SELECT id, kind, text, chat_id FROM ticket_items WHERE ticket_id = ?",
                                      (ticket_id,)):
            media = item["chat_id"] is not None
            done.media += int(media)
            done.texts_masked += int(item["text"] is not None)
            await tx.execute(
                "UPDATE ticket_items SET text = ?, chat_id = NULL, message_id = NULL,"
                " author_id = CASE WHEN author_id = ? THEN ? ELSE author_id END WHERE id = ?",
                (_masked(item["text"]), resident, NOBODY, item["id"]))
        events = await tx.fetchall("SELECT id, note FROM ticket_events WHERE ticket_id = ?", (ticket_id,))
        for event in events:
            done.texts_masked += int(event["note"] is not None)
            await tx.execute(
                "UPDATE ticket_events SET note = ?, actor_id = CASE WHEN actor_id = ? THEN ? ELSE actor_id END"
                " WHERE id = ?", (_masked(event["note"]), resident, NOBODY, event["id"]))
        # A block made from this ticket must not keep naming its (maybe anonymous) author.
        await tx.execute("UPDATE submit_blocks SET ticket_id = NULL WHERE ticket_id = ?", (ticket_id,))
        marks = ",".join("?" * len(TICKET_QUESTIONS))
        cur = await tx.execute(f"DELETE FROM open_questions WHERE kind IN ({marks}) AND subject_id = ?",
                               (*TICKET_QUESTIONS, ticket_id))
        done.questions += cur.rowcount
        cur = await tx.execute("DELETE FROM screens WHERE subject_kind = ? AND subject_id = ?", (SUBJECT, ticket_id))
        done.screens += cur.rowcount
        done.outbox += await _empty_outbox(tx, ticket_id, resident)
    return done


async def _empty_outbox(tx: Tx, ticket_id: int, resident: int) -> int:
    """The ticket's outbox rows keep their state (the delivery figures stay true) and lose their
    content and their recipient; one not sent yet is cancelled."""
    cur = await tx.execute(
        "UPDATE outbox SET payload = ?, dedup_key = 'stripped:' || id, last_error = NULL,"
        " status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,"
        " chat_id = CASE WHEN chat_id = ? THEN ? ELSE chat_id END,"
        " recipient = CASE WHEN recipient = ? THEN NULL ELSE recipient END"
        " WHERE purpose LIKE ? AND subject_id = ? AND payload != ?",
        (EMPTY_PAYLOAD, resident, NOBODY, resident, TICKET_PURPOSES, ticket_id, EMPTY_PAYLOAD))
    return cur.rowcount


@dataclass(frozen=True)
class RetentionRun:
    id: int
    cutoff: datetime
    removed: Stripped


class RetentionService:
    """The daily job's rule (schedules/retention.py): strip what has been closed long enough."""

    def __init__(self, db: Database, clock: Clock, days: int) -> None:
        self.db = db
        self.clock = clock
        self.days = days

    def cutoff(self) -> datetime:
        return self.clock.now() - timedelta(days=self.days)

    async def run(self, actor: Actor) -> RetentionRun:
        """Strip every final ticket closed before the cutoff, in batches; the run's row is written
        first and its counts grow with each batch's transaction, so a run cut short is still true."""
        if not isinstance(actor, SystemActor):
            raise NotAllowed("retention")
        now, cutoff = self.clock.now(), self.cutoff()
        async with self.db.transaction() as tx:
            run_id = await tx.insert("INSERT INTO retention_runs (started_at, cutoff) VALUES (?, ?)",
                                     (to_db(now), to_db(cutoff)))
        removed = Stripped()
        marks = ",".join("?" * len(FINAL))
        while True:
            async with self.db.transaction() as tx:
                ids = [r[0] for r in await tx.fetchall(
                    f"SELECT id FROM tickets WHERE stripped_at IS NULL AND closed_at IS NOT NULL AND closed_at < ?"
                    f" AND status IN ({marks}) ORDER BY closed_at LIMIT ?", (to_db(cutoff), *FINAL, BATCH))]
                batch = await strip_tickets(tx, ids, now)
                if not ids:
                    cur = await tx.execute("DELETE FROM kept_messages WHERE kept_at < ?", (to_db(cutoff),))
                    batch.kept_messages = cur.rowcount
                await self._count(tx, run_id, batch, finished=not ids)
            removed.add(batch)
            if not ids:
                return RetentionRun(run_id, cutoff, removed)

    async def _count(self, tx: Tx, run_id: int, batch: Stripped, finished: bool) -> None:
        columns = [f.name for f in fields(batch)]
        sets = ", ".join(f"{c} = {c} + ?" for c in columns)
        await tx.execute(f"UPDATE retention_runs SET {sets}, finished_at = ? WHERE id = ?",
                         (*(getattr(batch, c) for c in columns), to_db(self.clock.now()) if finished else None,
                          run_id))

    async def runs(self, limit: int = 10) -> list[dict[str, object]]:
        rows = await self.db.fetchall("SELECT * FROM retention_runs ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]


def payload_mentions(payload: str, needles: Sequence[str]) -> bool:
    """Whether a JSON payload's strings mention any of `needles` (as stored, or decoded)."""
    if any(n and n in payload for n in needles):
        return True
    try:
        decoded = json.dumps(json.loads(payload), ensure_ascii=False)
    except ValueError:
        return False
    return any(n and n in decoded for n in needles)
