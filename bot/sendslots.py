"""Telegram's limits for a deployment of several instances on one PostgreSQL database (db.shared).

Each instance's Throttle (schedules/delivery.py) paces its own sends; Telegram counts the bot's
sends from every instance together, so each send also takes a place here, in the database, under
the same rule as the Throttle's window, distributed: `per_second` slot rows per bot; a send takes a
slot whose free_at has passed (FOR UPDATE SKIP LOCKED: instances never wait on each other), holds
it for a lease while in flight, and its answer frees it one second after the answer. Any second at
Telegram then holds at most one send per slot (the next send on a slot starts over a second after
the previous was answered, and Telegram received that one before its answer). A chat is held while
its send is in flight and for `chat_interval` after the answer (the same reasoning: 1 a second at
Telegram however late the requests arrive; longer after a 429); a group has 20 sends a minute.

Every time is the database server's clock (clock_timestamp(), seconds since the epoch), which all
instances share; a single statement takes the slot, the chat and the group's count, a second one
frees the slot. Direct replies go ahead of the outbox: while one waits for a place, outbox sends
take none (send_bots.direct_until). Not used on SQLite (one process; the Throttle is enough)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOW = "extract(epoch FROM clock_timestamp())::float8"

# Long statement, one round trip: the slot, then the chat (only if a slot was taken; the upsert's
# WHERE re-checks a row another instance changed meanwhile), then the group's log.
_TAKE = f"""
WITH t AS (SELECT {NOW} AS now),
b AS (SELECT paused_until, direct_until FROM send_bots WHERE bot_id = :bot),
c AS (SELECT COALESCE((SELECT ready_at FROM send_chats WHERE bot_id = :bot AND chat_id = :chat), 0) AS ready,
             (SELECT count(*) FROM send_groups WHERE bot_id = :bot AND chat_id = :chat
                AND sent_at > (SELECT now FROM t) - 60.5) AS recent,
             (SELECT min(sent_at) FROM send_groups WHERE bot_id = :bot AND chat_id = :chat
                AND sent_at > (SELECT now FROM t) - 60.5) AS oldest),
s AS (UPDATE send_slots SET free_at = (SELECT now FROM t) + :lease
      WHERE bot_id = :bot AND slot = (
        SELECT slot FROM send_slots WHERE bot_id = :bot AND free_at <= (SELECT now FROM t)
          AND (NOT :strict OR ((SELECT ready FROM c) <= (SELECT now FROM t)
                               AND (SELECT recent FROM c) < :group_max
                               AND (SELECT paused_until FROM b) <= (SELECT now FROM t)))
          AND (:direct OR (SELECT direct_until FROM b) <= (SELECT now FROM t))
        ORDER BY free_at LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING slot),
ch AS (INSERT INTO send_chats (bot_id, chat_id, ready_at)
       SELECT :bot, :chat, t.now + :lease FROM s, t
       ON CONFLICT (bot_id, chat_id) DO UPDATE SET ready_at = excluded.ready_at
       WHERE NOT :strict OR send_chats.ready_at <= excluded.ready_at - :lease + 0.000001
       RETURNING 1),
g AS (INSERT INTO send_groups (bot_id, chat_id, sent_at) SELECT :bot, :chat, t.now FROM s, t WHERE :chat < 0
      RETURNING 1)
SELECT (SELECT slot FROM s) AS slot, EXISTS (SELECT 1 FROM ch) AS chat_taken, (SELECT now FROM t) AS now,
       GREATEST((SELECT ready FROM c),
                CASE WHEN (SELECT recent FROM c) >= :group_max THEN (SELECT oldest FROM c) + 60.5 ELSE 0 END)
         AS chat_ready,
       (SELECT paused_until FROM b) AS paused_until,
       (SELECT min(free_at) FROM send_slots WHERE bot_id = :bot) AS slot_free
"""


@dataclass(frozen=True)
class Place:
    """A slot (and the chat's turn) taken for one send: give it back with `answered`."""

    slot: int
    chat_id: int


@dataclass(frozen=True)
class Refused:
    """No place now: `chat_busy` when the chat's turn has not come (its next message may wait
    for it; others need not), else the slots are taken or the bot is paused (`paused`: a 429 or
    Telegram in trouble, seen by any instance). `wait`: seconds until it is worth asking again."""

    chat_busy: bool
    wait: float
    paused: bool = False


class SendSlots:
    """The deployment's shared places for one bot (see the module's docstring)."""

    LEASE = 60.0  # longer than any request's timeout: a slot whose sender died frees itself after it
    DIRECT_HOLD = 0.3  # a waiting direct reply re-arms this on every look; the outbox holds meanwhile
    POLL = 0.05  # at most this long between looks while the slots are all taken

    def __init__(self, db: Any, bot_id: int, per_second: float, chat_interval: float, group_per_minute: int,
                 window_slack: float = 0.001) -> None:
        self.db = db
        self.bot_id = bot_id
        self.per_second = max(1, int(per_second))
        self.chat_interval = chat_interval
        self.group_per_minute = group_per_minute
        self.window = 1.0 + window_slack

    async def setup(self) -> None:
        """The bot's slot rows (idempotent: every instance does it at start)."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO send_slots (bot_id, slot, free_at) SELECT ?, n, 0 FROM generate_series(0, ?) AS n"
                " ON CONFLICT (bot_id, slot) DO NOTHING", (self.bot_id, self.per_second - 1))
            # More slots than the limit (a lower limit set since): the extra ones are never free.
            await tx.execute("UPDATE send_slots SET free_at = 'Infinity' WHERE bot_id = ? AND slot >= ?",
                             (self.bot_id, self.per_second))
            await tx.execute("UPDATE send_slots SET free_at = 0 WHERE bot_id = ? AND slot < ?"
                             " AND free_at = 'Infinity'", (self.bot_id, self.per_second))
            await tx.execute("INSERT INTO send_bots (bot_id, paused_until, direct_until) VALUES (?, 0, 0)"
                             " ON CONFLICT (bot_id) DO NOTHING", (self.bot_id,))

    async def take(self, chat_id: int, *, direct: bool = False, strict: bool = True) -> Place | Refused:
        """A place for a send to `chat_id` now, or why not and for how long. `strict=False` (a direct
        reply that waited its longest) needs a free slot only, not the chat's turn nor a pause's end."""
        row = await self.db.fetchone(_TAKE, {
            "bot": self.bot_id, "chat": chat_id, "lease": self.LEASE, "group_max": self.group_per_minute,
            "strict": strict, "direct": direct})
        assert row is not None
        now = row["now"]
        if row["slot"] is not None:
            if row["chat_taken"]:
                return Place(row["slot"], chat_id)
            # Another instance took the chat between our look and our upsert: the slot goes back.
            await self.db.fetchval(f"UPDATE send_slots SET free_at = {NOW} WHERE bot_id = ? AND slot = ?",
                                   (self.bot_id, row["slot"]))
            return Refused(True, self.POLL)
        if strict and row["paused_until"] > now:
            return Refused(False, row["paused_until"] - now, paused=True)
        if strict and row["chat_ready"] > now:
            return Refused(True, row["chat_ready"] - now)
        return Refused(False, min(self.POLL, max(0.001, (row["slot_free"] or now) - now)))

    async def answered(self, place: Place) -> None:
        """The send's answer came (or it failed): its slot may be taken again a second from now,
        its chat `chat_interval` from now (one statement)."""
        await self.db.fetchval(
            f"WITH s AS (UPDATE send_slots SET free_at = {NOW} + :window WHERE bot_id = :bot AND slot = :slot"
            f" RETURNING 1) UPDATE send_chats SET ready_at = {NOW} + :interval WHERE bot_id = :bot AND chat_id = :chat",
            {"window": self.window, "bot": self.bot_id, "slot": place.slot, "interval": self.chat_interval,
             "chat": place.chat_id})

    async def direct_waiting(self) -> None:
        """A direct reply waits for a place: the outbox takes none for a moment."""
        await self.db.fetchval(f"UPDATE send_bots SET direct_until = {NOW} + ? WHERE bot_id = ?",
                               (self.DIRECT_HOLD, self.bot_id))

    async def direct_done(self) -> None:
        await self.db.fetchval("UPDATE send_bots SET direct_until = 0 WHERE bot_id = ?", (self.bot_id,))

    async def pause_chat(self, chat_id: int, seconds: float) -> None:
        """A 429 for this chat: no instance sends to it for `seconds`."""
        await self.db.fetchval(
            f"INSERT INTO send_chats (bot_id, chat_id, ready_at) VALUES (?, ?, {NOW} + ?)"
            " ON CONFLICT (bot_id, chat_id) DO UPDATE SET ready_at = GREATEST(send_chats.ready_at, excluded.ready_at)",
            (self.bot_id, chat_id, seconds))

    async def pause_all(self, seconds: float) -> None:
        """A bot-wide 429 (or Telegram in trouble): no instance sends for `seconds`."""
        await self.db.fetchval(
            f"UPDATE send_bots SET paused_until = GREATEST(paused_until, {NOW} + ?) WHERE bot_id = ?",
            (seconds, self.bot_id))

    async def sweep(self) -> None:
        """Forget chats whose turn is long past and group sends over a minute old."""
        async with self.db.transaction() as tx:
            await tx.execute(f"DELETE FROM send_chats WHERE bot_id = ? AND ready_at < {NOW} - 60", (self.bot_id,))
            await tx.execute(f"DELETE FROM send_groups WHERE bot_id = ? AND sent_at < {NOW} - 61", (self.bot_id,))
