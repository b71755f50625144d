"""The outbox: every message to someone other than the person acting is a row written in the
same transaction as the change that caused it; schedules/delivery.py sends the rows."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

from bot.clock import Clock, from_db, to_db
from bot.database import Database, Tx
from bot.digest_kinds import hold_clause
from bot.limits import check_payload


class Priority(IntEnum):
    """Which due rows the delivery worker sends first: smaller first, then by due time."""

    URGENT = 10  # someone is waiting for it: an answer, a ticket notice, a reminder due now
    NORMAL = 50  # the default for a new message
    BULK = 80  # one notice to many people (a whole branch): it may wait behind the rest
    EDIT = 90  # an edit of an earlier message: the new messages go first (the default for edits)


# A row's kind, as `outbox status` and the metrics name it: its purpose, or for rows without one the
# key's first part (`mt:*`).
KIND_SQL = "COALESCE(purpose, substr(dedup_key, 1, instr(dedup_key || ':', ':') - 1) || ':*')"


def row_kind(purpose: str | None, dedup_key: str) -> str:
    """KIND_SQL in Python, for a row the delivery worker holds."""
    return purpose or dedup_key.split(":", 1)[0] + ":*"


def default_priority(method: str) -> Priority:
    return Priority.EDIT if method.startswith("edit") else Priority.NORMAL


@dataclass(frozen=True)
class Button:
    """An inline button: callback data (an action and an id, never a right) or a URL."""

    text: str
    data: str | None = None
    url: str | None = None

    def to_dict(self) -> dict[str, str]:
        if self.url:
            return {"text": self.text, "url": self.url}
        if self.data is None:
            raise ValueError(f"button {self.text!r} has neither callback data nor a URL")
        # Its length is checked with the rest of the message (bot/limits.py), as OverLimit.
        return {"text": self.text, "callback_data": self.data}


def inline_keyboard(rows: Sequence[Sequence[Button]]) -> dict[str, Any]:
    return {"inline_keyboard": [[b.to_dict() for b in row] for row in rows]}


@dataclass(frozen=True)
class KindStatus:
    """How many rows of one kind are in each state. `in_flight`: tried and not yet settled (a 429,
    a 5xx or a lost network: retried); `due`: due now, not tried yet; `later`: not due yet."""

    kind: str
    due: int
    in_flight: int
    later: int
    sent: int
    failed: int
    blocked: int
    cancelled: int


@dataclass(frozen=True)
class FailedRow:
    key: str
    chat_id: int
    method: str
    purpose: str | None
    subject_id: int | None
    attempts: int
    error: str | None


class Outbox:
    """Writes outbox rows; wakes the delivery worker once the transaction commits."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        # One event per delivery worker (one per bot with BOT_TOKENS): a commit wakes them all,
        # and one clearing its event cannot swallow another's wake-up.
        self._wakes: list[asyncio.Event] = []

    def wake_event(self) -> asyncio.Event:
        event = asyncio.Event()
        self._wakes.append(event)
        return event

    def forget_wake_event(self, event: asyncio.Event) -> None:
        if event in self._wakes:
            self._wakes.remove(event)

    def wake(self) -> None:
        for event in self._wakes:
            event.set()

    async def send_text(
        self,
        tx: Tx,
        *,
        key: str,
        chat_id: int,
        text: str,
        buttons: Sequence[Sequence[Button]] | None = None,
        not_before: datetime | None = None,
        replace: bool = False,
        purpose: str | None = None,
        subject_id: int | None = None,
        priority: int | None = None,
    ) -> bool:
        """Queue a text message. Returns False when `key` was queued before (never sent twice)."""
        payload: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if buttons:
            payload["reply_markup"] = inline_keyboard(buttons)
        return await self.enqueue(
            tx, key=key, chat_id=chat_id, method="sendMessage", payload=payload,
            not_before=not_before, replace=replace, purpose=purpose, subject_id=subject_id, priority=priority,
        )

    async def send_document(
        self,
        tx: Tx,
        *,
        key: str,
        chat_id: int,
        filename: str,
        content: bytes,
        caption: str | None = None,
        not_before: datetime | None = None,
        purpose: str | None = None,
        subject_id: int | None = None,
        priority: int | None = None,
    ) -> bool:
        payload: dict[str, Any] = {
            "chat_id": chat_id,
            "document": {"filename": filename, "b64": base64.b64encode(content).decode()},
        }
        if caption:
            payload["caption"] = caption
        return await self.enqueue(
            tx, key=key, chat_id=chat_id, method="sendDocument", payload=payload, not_before=not_before,
            purpose=purpose, subject_id=subject_id, priority=priority,
        )

    async def enqueue(
        self,
        tx: Tx,
        *,
        key: str,
        chat_id: int,
        method: str,
        payload: dict[str, Any],
        not_before: datetime | None = None,
        replace: bool = False,
        purpose: str | None = None,
        subject_id: int | None = None,
        priority: int | None = None,
    ) -> bool:
        """Insert a row. With `replace`, a row with this key that is still pending is rewritten
        (a moved reminder); a row already sent is left alone either way. A message Telegram would
        refuse for its size raises OverLimit here, inside the caller's transaction.

        `purpose` (e.g. 'meeting/notice') and `subject_id` (the meeting's id) say what the row is
        for; the recipient is the chat when it is a person's (positive id). `priority` (Priority;
        by default NORMAL, EDIT for edits) orders the rows that are due together."""
        check_payload(method, payload)
        now = self.clock.now()
        recipient = chat_id if chat_id > 0 else None
        # Only the named priorities: the delivery worker looks each of them up in turn.
        priority = int(default_priority(method) if priority is None else Priority(priority))
        # A person who blocked the bot, or a group that removed it: the row is kept, as 'blocked',
        # and never sent.
        blocked = ("SELECT 1 FROM people WHERE telegram_id = ? AND blocked_bot = 1" if chat_id > 0
                   else "SELECT 1 FROM blocked_chats WHERE chat_id = ?")
        # A low-priority notice to someone who chose the daily digest is held as 'digest' (the
        # delivery worker never picks it); the digest job collects it (bot/services/digests.py).
        hold, hold_params = hold_clause(chat_id, method, purpose, subject_id)
        params = (key, chat_id, method, json.dumps(payload, ensure_ascii=False),
                  to_db(not_before or now), chat_id, *hold_params, to_db(now), recipient, purpose, subject_id,
                  priority)
        sql = ("INSERT INTO outbox (dedup_key, chat_id, method, payload, not_before, status, created_at,"
               " recipient, purpose, subject_id, priority)"
               f" SELECT ?, ?, ?, ?, ?, CASE WHEN EXISTS ({blocked}) THEN 'blocked'{hold} ELSE 'pending' END,"
               " ?, ?, ?, ?, ? WHERE true"
               " ON CONFLICT(dedup_key) DO ")
        if replace:
            sql += ("UPDATE SET chat_id = excluded.chat_id, method = excluded.method, payload = excluded.payload,"
                    " recipient = excluded.recipient, purpose = excluded.purpose, subject_id = excluded.subject_id,"
                    " priority = excluded.priority, not_before = excluded.not_before, status = excluded.status,"
                    " attempts = 0, last_error = NULL"
                    " WHERE outbox.status IN ('pending', 'cancelled', 'blocked', 'digest')")
        else:
            sql += "NOTHING"
        cur = await tx.execute(sql, params)
        tx.after_commit(self.wake)
        return cur.rowcount > 0

    async def cancel(self, tx: Tx, *, key_prefix: str) -> int:
        """Cancel pending (or digest-held) rows whose key starts with `key_prefix` (a cancelled
        meeting's reminders)."""
        if not key_prefix:
            raise ValueError("an empty prefix would cancel everything")
        cur = await tx.execute(
            # A range on the key uses its unique index (and compares case-sensitively, unlike LIKE).
            # Rows held for a digest ('digest') are withdrawn alike: they must not appear in it.
            "UPDATE outbox SET status = 'cancelled' WHERE status IN ('pending', 'digest')"
            " AND dedup_key >= ? AND dedup_key < ?",
            (key_prefix, key_prefix[:-1] + chr(ord(key_prefix[-1]) + 1)),
        )
        return cur.rowcount

    async def set_chat_blocked(self, chat_id: int, blocked: bool, reason: str = "removed the bot") -> None:
        """A group or channel removed the bot (or added it back), as a my_chat_member update says."""
        async with self.db.transaction() as tx:
            await self.mark_chat_blocked(tx, chat_id, blocked, reason)

    async def mark_chat_blocked(self, tx: Tx, chat_id: int, blocked: bool, reason: str = "removed the bot") -> None:
        """Remember a group or channel that removed the bot: its pending rows and every later one
        are stored 'blocked', not sent for one more 403 each. Added back, new rows go out again."""
        if chat_id > 0:
            raise ValueError("a person's block is kept in people (PeopleService.set_blocked)")
        if not blocked:
            await tx.execute("DELETE FROM blocked_chats WHERE chat_id = ?", (chat_id,))
            return
        await tx.execute(
            "INSERT INTO blocked_chats (chat_id, since, reason) VALUES (?, ?, ?) ON CONFLICT(chat_id) DO NOTHING",
            (chat_id, to_db(self.clock.now()), reason))
        await tx.execute(
            "UPDATE outbox SET status = 'blocked', last_error = ? WHERE chat_id = ? AND status = 'pending'",
            (reason, chat_id))

    async def chat_blocked(self, chat_id: int) -> bool:
        return await self.db.fetchval("SELECT 1 FROM blocked_chats WHERE chat_id = ?", (chat_id,)) is not None

    async def status(self) -> list[KindStatus]:
        """Rows by kind (purpose; for rows without one, the key's first part, as `mt:*`) and state,
        for `python -m bot outbox status`."""
        rows = await self.db.fetchall(
            f"SELECT {KIND_SQL} AS kind,"
            " SUM(status = 'pending' AND attempts = 0 AND not_before <= ?),"
            " SUM(status = 'pending' AND attempts > 0),"
            " SUM(status = 'pending' AND attempts = 0 AND not_before > ?),"
            " SUM(status = 'sent'), SUM(status = 'failed'), SUM(status = 'blocked'), SUM(status = 'cancelled')"
            " FROM outbox GROUP BY kind ORDER BY kind",
            (to_db(self.clock.now()),) * 2,
        )
        return [KindStatus(row[0], *(int(n or 0) for n in row[1:])) for row in rows]

    async def depth(self, now: datetime) -> dict[str, tuple[int, datetime]]:
        """Rows due and not sent yet, by kind: how many, and the oldest due time (for /metrics and
        /healthz). Only pending rows are read (the outbox_due index), never the sent history."""
        rows = await self.db.fetchall(
            f"SELECT {KIND_SQL} AS kind, COUNT(*), MIN(not_before) FROM outbox"
            " WHERE status = 'pending' AND not_before <= ? GROUP BY kind", (to_db(now),))
        return {row[0]: (int(row[1]), from_db(row[2])) for row in rows}

    async def failures(self, limit: int = 20) -> list[FailedRow]:
        """The latest rows that ended as failed, for an operator to look into."""
        rows = await self.db.fetchall(
            "SELECT dedup_key, chat_id, method, purpose, subject_id, attempts, last_error FROM outbox"
            " WHERE status = 'failed' ORDER BY id DESC LIMIT ?", (limit,))
        return [FailedRow(*row) for row in rows]

    async def counts(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        return {row[0]: row[1] for row in rows}

