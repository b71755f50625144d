"""Screens that stay true: a message with buttons about a ticket or a meeting is edited when its
subject changes, so its status line is current and its buttons are the ones that still work.

A feature registers a renderer for each of its views ("ticket"/"card", "meeting"/"roster", ...).
A message is tracked when it is queued (an outbox row: `track`, in the same transaction) or sent
directly to the person acting (`remember`, after the send). On every change of a subject the
feature's service calls `refresh` in the change's transaction: each live screen is rendered again
for its reader, and an edit is queued in the outbox (Priority.EDIT, after new messages) only if
the text or the buttons differ. A screen whose subject reached a final state is shown once more
without buttons and forgotten; one whose message is gone (never sent, or an edit failed) is
forgotten. A throttled view (the organiser's roster) gets at most one edit per interval: a
pending edit not yet due takes the latest content instead of a second edit (restart-safe: all of
it is in the database)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock, from_db, to_db
from bot.database import Database, Tx
from bot.outbox import Button, Outbox, inline_keyboard


@dataclass(frozen=True)
class Screen:
    id: int
    chat_id: int
    message_id: int | None
    source_key: str | None
    kind: str
    subject_id: int
    view: str
    recipient: int
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Rendered:
    """A screen as it should read now. `final`: the subject will not change again (shown once
    more, without buttons, then forgotten)."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    final: bool = False
    data: dict[str, Any] | None = None  # what the screen now lists (a list screen's `ids`), if it changed


# Renderers read with `src` (the change's transaction, or the database for a handler's in-place
# edit); `cache` lives for one refresh, so that a subject is loaded once for all its screens.
Renderer = Callable[[Database | Tx, Screen, dict[str, Any]], Awaitable[Rendered | None]]


@dataclass(frozen=True)
class _View:
    render: Renderer
    every: timedelta | None


def digest(text: str, buttons: Sequence[Sequence[Button]] | None) -> str:
    """What a message shows, in short: equal digests mean an edit would change nothing."""
    rows = [[b.to_dict() for b in row] for row in buttons or []]
    return hashlib.sha256(json.dumps([text, rows], ensure_ascii=False).encode()).hexdigest()[:32]


_SELECT = ("SELECT s.*, o.status AS src_status, o.not_before AS src_due, l.status AS last_status"
           " FROM screens s LEFT JOIN outbox o ON o.dedup_key = s.source_key"
           " LEFT JOIN outbox l ON l.dedup_key = s.last_key")


class ScreenService:
    def __init__(self, db: Database, clock: Clock, outbox: Outbox) -> None:
        self.db = db
        self.clock = clock
        self.outbox = outbox
        self._views: dict[tuple[str, str], _View] = {}

    def register(self, kind: str, view: str, render: Renderer, *, every: timedelta | None = None) -> None:
        """`every`: at most one edit per this interval (for a screen that changes often)."""
        self._views[(kind, view)] = _View(render, every)

    async def track(self, tx: Tx, *, source_key: str, chat_id: int, kind: str, subject_id: int, view: str,
                    recipient: int, text: str, buttons: Sequence[Sequence[Button]] | None,
                    data: dict[str, Any] | None = None) -> None:
        """Keep an outbox message true (call it where it is queued, in the same transaction)."""
        await tx.execute(
            "INSERT INTO screens (chat_id, source_key, subject_kind, subject_id, view, recipient, data, shown,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(source_key) WHERE source_key IS NOT NULL"
            " DO UPDATE SET view = excluded.view, data = excluded.data, shown = excluded.shown",
            (chat_id, source_key, kind, subject_id, view, recipient, json.dumps(data or {}, ensure_ascii=False),
             digest(text, buttons), to_db(self.clock.now())))

    async def remember(self, *, chat_id: int, message_id: int, kind: str, subject_id: int, view: str,
                       recipient: int, text: str, buttons: Sequence[Sequence[Button]] | None,
                       data: dict[str, Any] | None = None) -> None:
        """Keep a message sent (or edited in place) directly to the person acting true; a message
        that showed another screen before now shows this one."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO screens (chat_id, message_id, subject_kind, subject_id, view, recipient, data, shown,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(chat_id, message_id) WHERE message_id IS NOT NULL DO UPDATE SET"
                " subject_kind = excluded.subject_kind, subject_id = excluded.subject_id, view = excluded.view,"
                " recipient = excluded.recipient, data = excluded.data, shown = excluded.shown",
                (chat_id, message_id, kind, subject_id, view, recipient,
                 json.dumps(data or {}, ensure_ascii=False), digest(text, buttons), to_db(self.clock.now())))

    async def forget_message(self, chat_id: int, message_id: int) -> None:
        """The message now shows something that is not kept true (a menu, a form): leave it alone,
        and drop an edit still waiting for it (a roster's, not yet due)."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE outbox SET status = 'cancelled' WHERE status = 'pending' AND not_before > ? AND dedup_key ="
                " (SELECT last_key FROM screens WHERE chat_id = ? AND message_id = ?)",
                (to_db(self.clock.now()), chat_id, message_id))
            await tx.execute("DELETE FROM screens WHERE chat_id = ? AND message_id = ?", (chat_id, message_id))

    async def at(self, chat_id: int, message_id: int) -> Screen | None:
        """The screen a message shows, whether it was sent directly or through the outbox."""
        row = await self.db.fetchone(
            "SELECT s.* FROM screens s WHERE s.chat_id = ? AND s.message_id = ? UNION ALL"
            " SELECT s.* FROM screens s JOIN outbox o ON o.dedup_key = s.source_key"
            " WHERE o.chat_id = ? AND o.message_id = ? LIMIT 1", (chat_id, message_id, chat_id, message_id))
        return _screen(row) if row is not None else None

    async def render_message(self, chat_id: int, message_id: int) -> Rendered | None:
        """How the message whose button was pressed should read now (for a handler's in-place edit;
        the edit `refresh` queued for it then changes nothing)."""
        screen = await self.at(chat_id, message_id)
        view = self._views.get((screen.kind, screen.view)) if screen is not None else None
        if screen is None or view is None:
            return None
        return await view.render(self.db, screen, {})

    async def refresh(self, tx: Tx, kind: str, subject_id: int, *, recipient: int | None = None,
                      views: Sequence[str] | None = None) -> int:
        """Render every live screen of the subject again (only `recipient`'s, only `views`, if
        given) and queue the edits that change something. Returns how many were queued."""
        sql = f"{_SELECT} WHERE s.subject_kind = ? AND s.subject_id = ?"
        params: list[Any] = [kind, subject_id]
        if recipient is not None:
            sql += " AND s.recipient = ?"
            params.append(recipient)
        if views is not None:
            sql += " AND s.view IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(views)))
        cache: dict[str, Any] = {}
        queued = 0
        for row in await tx.fetchall(sql + " ORDER BY s.id", tuple(params)):
            queued += await self._refresh_one(tx, row, cache)
        if recipient is None and views is None:
            # Lists (/inbox, /my) that show this subject among others: each is its reader's own.
            for row in await tx.fetchall(
                    f"{_SELECT} WHERE s.subject_kind = ? AND EXISTS (SELECT 1 FROM json_each(s.data, '$.ids')"
                    " WHERE value = ?) ORDER BY s.id", (list_kind(kind), subject_id)):
                queued += await self._refresh_one(tx, row, {})
        return queued

    async def _refresh_one(self, tx: Tx, row: Any, cache: dict[str, Any]) -> int:
        screen = _screen(row)
        view = self._views.get((screen.kind, screen.view))
        gone = screen.source_key is not None and row["src_status"] in (None, "failed", "cancelled", "blocked")
        if view is None or gone or row["last_status"] == "failed":
            await self._forget(tx, screen.id)
            return 0
        rendered = await view.render(tx, screen, cache)
        if rendered is None:  # the reader may no longer see it: left as it is
            await self._forget(tx, screen.id)
            return 0
        buttons = [] if rendered.final else rendered.buttons
        shown = digest(rendered.text, buttons)
        if rendered.data is not None:
            await tx.execute("UPDATE screens SET data = ? WHERE id = ?",
                             (json.dumps(rendered.data, ensure_ascii=False), screen.id))
        queued = 0
        if shown != row["shown"]:
            now = self.clock.now()
            if row["src_status"] == "pending" and from_db(row["src_due"]) > now:
                await self._rewrite_original(tx, screen, rendered.text, buttons)
            else:
                await self._queue_edit(tx, row, screen, view, rendered, buttons, now)
                queued = 1
            await tx.execute("UPDATE screens SET shown = ? WHERE id = ?", (shown, screen.id))
        if rendered.final:
            await self._forget(tx, screen.id)
        return queued

    async def _queue_edit(self, tx: Tx, row: Any, screen: Screen, view: _View, rendered: Rendered,
                          buttons: list[list[Button]], now: datetime) -> None:
        payload: dict[str, Any] = {"chat_id": screen.chat_id, "text": rendered.text}
        if buttons:
            payload["reply_markup"] = inline_keyboard(buttons)
        # An outbox message is found by its row once sent; a direct one by its id. No reply_markup
        # removes the buttons.
        if screen.source_key is not None:
            payload["message_id_from"] = screen.source_key
        else:
            payload["message_id"] = screen.message_id
        key, not_before, edits = f"scr:{screen.id}:{row['edits'] + 1}", now, row["edits"] + 1
        if view.every is not None:
            waiting = row["last_key"] and await tx.fetchval(
                "SELECT not_before FROM outbox WHERE dedup_key = ? AND status = 'pending'", (row["last_key"],))
            if waiting and from_db(waiting) > now:
                # Not due yet, so not in flight: it takes the latest content instead of a second edit.
                # The last edit goes now: nothing will be kept true there after it.
                key, not_before, edits = row["last_key"], now if rendered.final else from_db(waiting), row["edits"]
            elif row["next_edit_at"] and not rendered.final:
                not_before = max(now, from_db(row["next_edit_at"]))
        await self.outbox.enqueue(tx, key=key, chat_id=screen.chat_id, method="editMessageText", payload=payload,
                                  not_before=not_before, replace=True, purpose=f"{screen.kind}/screen",
                                  subject_id=screen.subject_id)
        next_edit = to_db(not_before + view.every) if view.every is not None else None
        await tx.execute("UPDATE screens SET edits = ?, last_key = ?, next_edit_at = ? WHERE id = ?",
                         (edits, key, next_edit, screen.id))

    async def _rewrite_original(self, tx: Tx, screen: Screen, text: str, buttons: list[list[Button]]) -> None:
        """The message is not due yet (a reminder for tomorrow): it goes out as it reads now."""
        raw = await tx.fetchval("SELECT payload FROM outbox WHERE dedup_key = ?", (screen.source_key,))
        payload = json.loads(raw)
        payload["text"] = text
        if buttons:
            payload["reply_markup"] = inline_keyboard(buttons)
        else:
            payload.pop("reply_markup", None)
        await tx.execute("UPDATE outbox SET payload = ? WHERE dedup_key = ? AND status = 'pending'",
                         (json.dumps(payload, ensure_ascii=False), screen.source_key))

    @staticmethod
    async def _forget(tx: Tx, screen_id: int) -> None:
        await tx.execute("DELETE FROM screens WHERE id = ?", (screen_id,))

    async def prune(self, kind: str, older_than: datetime) -> int:
        """Forget screens of `kind` made before `older_than` (lists kept true for a while only)."""
        return await self.db.write("DELETE FROM screens WHERE subject_kind = ? AND created_at < ?",
                                   (kind, to_db(older_than)))

    async def live(self, kind: str, subject_id: int) -> list[Screen]:
        """The screens still kept true for a subject (for tests and the periodic clean-up)."""
        rows = await self.db.fetchall(
            "SELECT * FROM screens WHERE subject_kind = ? AND subject_id = ? ORDER BY id", (kind, subject_id))
        return [_screen(r) for r in rows]

    async def subjects(self, kind: str) -> list[int]:
        rows = await self.db.fetchall(
            "SELECT DISTINCT subject_id FROM screens WHERE subject_kind = ? ORDER BY subject_id", (kind,))
        return [r[0] for r in rows]


def list_kind(kind: str) -> str:
    """The subject kind of a list of `kind` (its subject is its reader; data `ids`: what it lists)."""
    return f"{kind}-list"


def _screen(row: Any) -> Screen:
    return Screen(id=row["id"], chat_id=row["chat_id"], message_id=row["message_id"], source_key=row["source_key"],
                  kind=row["subject_kind"], subject_id=row["subject_id"], view=row["view"],
                  recipient=row["recipient"], data=json.loads(row["data"]), created_at=from_db(row["created_at"]))
