"""Open questions: what the bot has asked a person that their next typed message answers.

Rule: whenever the bot has asked someone a question that can be answered by typing (a leave reason,
information a secretary asked for, why an answer was unsatisfying…), the next text from that
person answers it; a photo or voice note too, where the question accepts them. Several open
questions: the person picks which one with one tap (see handlers/system.py). Nothing pending: the
message goes to the person's flow, or starts a problem draft, as before.

API (core.prompts, a PromptService):

- A feature declares each kind of question once, from its service's constructor:

      core.prompts.register(QuestionKind("ticket/info", describe=self._describe_info, media=True))

  `describe(lang, question)` returns the question in plain words for a chooser button
  ("补充问题：路灯坏了…"), or None when it no longer stands (the ticket was closed, the meeting
  began): such a question is closed and never offered. Its handler side says how a message
  answers it: `handlers.system.ANSWERS["ticket/info"] = async (update, context, question)`, which
  reads the message as if it had been typed right under the question (it may be a replay of a
  kept message) and calls the feature's service, which checks every right again.
- `await core.prompts.ask(tx, person_id, kind, subject_id, data, lasts=…)` opens a question, in the
  same transaction as the message that asks it (an outbox row, or just before the handler's own
  reply). A newer question of the same kind about the same subject supersedes the older one.
- `close(question_id)` when it is answered; `close_about(tx, kinds, subject_id)` in the
  transaction in which the subject moves on (answered, withdrawn, cancelled); `close_tapped`
  on 取消 (the questions the person's own tap asked).
- `pending(person_id, lang, media=…)`: the live questions with their descriptions, oldest first.
- `keep(person_id, message)` / `kept(person_id, token)` / `drop(token)`: a message (Telegram's
  JSON) kept while the person chooses, in the database, so a restart in between loses nothing.

Deliberation (issue 9) and any future prompt: register a kind, ask it with the outbox message that
asks, add its entry to ANSWERS, close it when the subject moves on. A multi-step flow (FlowStore)
that waits for typing takes part through handlers/system.py too: FLOW_LABELS (its words on a
chooser button), FLOW_COVERS (the open question it is itself answering, so it is not offered
twice), FLOW_HOLDS and FLOW_RESUME (取消 asks before dropping typed content; 回到上一步 shows the
step again), FRESH_STARTS (a "作为新议题提交" of its own).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock, from_db, to_db
from bot.database import Database, Tx

KEPT_FOR = timedelta(days=7)  # a kept message nobody chose a question for is dropped after this


@dataclass(frozen=True)
class Question:
    id: int
    person_id: int
    kind: str
    subject_id: int
    data: dict[str, Any]
    asked_at: datetime
    expires_at: datetime | None


Describe = Callable[[str, Question], Awaitable[str | None]]


@dataclass(frozen=True)
class QuestionKind:
    name: str            # 'feature/what', e.g. 'ticket/info'
    describe: Describe   # plain words for a chooser button; None when the question no longer stands
    media: bool = False  # whether a photo, voice note, location … answers it (else text only)


def _question(row: Any) -> Question:
    return Question(id=row["id"], person_id=row["person_id"], kind=row["kind"], subject_id=row["subject_id"],
                    data=json.loads(row["data"]), asked_at=from_db(row["asked_at"]),
                    expires_at=from_db(row["expires_at"]) if row["expires_at"] else None)


class PromptService:
    """Open questions addressed to people, and the messages kept while they choose."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.kinds: dict[str, QuestionKind] = {}

    def register(self, kind: QuestionKind) -> None:
        self.kinds[kind.name] = kind

    async def ask(self, tx: Tx, person_id: int, kind: str, subject_id: int, data: dict[str, Any] | None = None,
                  lasts: timedelta | None = None) -> int:
        """Open a question (superseding the person's open one of this kind about this subject)."""
        if kind not in self.kinds:
            raise ValueError(f"unregistered question kind {kind!r}")
        now = self.clock.now()
        await tx.execute(
            "UPDATE open_questions SET closed_at = ?, closed_why = 'superseded'"
            " WHERE person_id = ? AND kind = ? AND subject_id = ? AND closed_at IS NULL",
            (to_db(now), person_id, kind, subject_id))
        return await tx.insert(
            "INSERT INTO open_questions (person_id, kind, subject_id, data, asked_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (person_id, kind, subject_id, json.dumps(data or {}, ensure_ascii=False), to_db(now),
             to_db(now + lasts) if lasts else None))

    async def ask_now(self, person_id: int, kind: str, subject_id: int, data: dict[str, Any] | None = None,
                      lasts: timedelta | None = None) -> int:
        """`ask` in a transaction of its own (a question the person's own tap asked, answered directly)."""
        async with self.db.transaction() as tx:
            return await self.ask(tx, person_id, kind, subject_id, data, lasts)

    async def close(self, question_id: int, why: str = "answered", tx: Tx | None = None) -> None:
        sql = "UPDATE open_questions SET closed_at = ?, closed_why = ? WHERE id = ? AND closed_at IS NULL"
        params = (to_db(self.clock.now()), why, question_id)
        if tx is not None:
            await tx.execute(sql, params)
        else:
            await self.db.write(sql, params)

    async def close_about(self, tx: Tx, kinds: Iterable[str], subject_id: int, *, person_id: int | None = None,
                          why: str = "moved_on") -> None:
        """Close the open questions of these kinds about a subject (of one person, or everyone's)."""
        kinds = list(kinds)
        sql = (f"UPDATE open_questions SET closed_at = ?, closed_why = ? WHERE closed_at IS NULL AND subject_id = ?"
               f" AND kind IN ({','.join('?' * len(kinds))})")
        params: list[Any] = [to_db(self.clock.now()), why, subject_id, *kinds]
        if person_id is not None:
            sql += " AND person_id = ?"
            params.append(person_id)
        await tx.execute(sql, tuple(params))

    async def pending(self, person_id: int, lang: str, media: bool = False) -> list[tuple[Question, str]]:
        """The person's questions that still stand (and that this kind of message can answer), each
        with its plain-words description, oldest first. Those that no longer stand are closed."""
        rows = await self.db.fetchall(
            "SELECT * FROM open_questions WHERE person_id = ? AND closed_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > ?) ORDER BY id", (person_id, to_db(self.clock.now())))
        found: list[tuple[Question, str]] = []
        for row in rows:
            question = _question(row)
            kind = self.kinds.get(question.kind)
            if kind is None or (media and not kind.media):
                continue  # a feature not loaded here, or text only
            label = await kind.describe(lang, question)
            if label is None:
                await self.close(question.id, "moved_on")
                continue
            found.append((question, label))
        return found

    async def live(self, person_id: int, question_id: int, lang: str,
                   media: bool = False) -> tuple[Question, str] | None:
        """One of the person's questions, if it still stands and this kind of message answers it
        (a chooser's tap is checked again)."""
        for question, label in await self.pending(person_id, lang, media=media):
            if question.id == question_id:
                return question, label
        return None

    async def close_tapped(self, person_id: int) -> int:
        """取消: close the questions the person's own tap asked (those that expire, like a leave
        reason), so that a later message is not taken for their answer. Questions someone else
        asked them (information a secretary needs) stay open. Returns how many were closed."""
        cursor_sql = ("UPDATE open_questions SET closed_at = ?, closed_why = 'cancelled'"
                      " WHERE person_id = ? AND closed_at IS NULL AND expires_at IS NOT NULL AND expires_at > ?")
        now = to_db(self.clock.now())
        async with self.db.transaction() as tx:
            cursor = await tx.execute(cursor_sql, (now, person_id, now))
            return int(cursor.rowcount)

    async def keep(self, person_id: int, message: dict[str, Any]) -> str:
        """Keep a message until the person picks its question; the token names it in the buttons."""
        token = secrets.token_hex(3)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM kept_messages WHERE kept_at < ?", (to_db(now - KEPT_FOR),))
            await tx.execute("INSERT INTO kept_messages (token, person_id, message, kept_at) VALUES (?, ?, ?, ?)",
                             (token, person_id, json.dumps(message, ensure_ascii=False), to_db(now)))
        return token

    async def kept(self, person_id: int, token: str) -> dict[str, Any] | None:
        """The person's kept message (None: already placed, or another person's token)."""
        text = await self.db.fetchval("SELECT message FROM kept_messages WHERE token = ? AND person_id = ?",
                                      (token, person_id))
        return json.loads(text) if text else None

    async def drop(self, person_id: int, token: str) -> bool:
        """Forget a kept message; False when it was gone already (a second tap)."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute("DELETE FROM kept_messages WHERE token = ? AND person_id = ?",
                                      (token, person_id))
            return bool(cursor.rowcount)
