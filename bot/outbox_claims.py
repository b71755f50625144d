"""Claiming outbox rows when several instances share one PostgreSQL database (db.shared).

A row is taken by one instance at a time: `claimed_by` (the instance) and `lease_until` (the
database server's clock, seconds since the epoch) are set atomically with FOR UPDATE SKIP LOCKED
before it is sent, and cleared with its outcome. A row whose instance died mid-send becomes
claimable again once its lease is over (sent again: the one accepted duplicate). A row waiting out
a backoff keeps a lease without an owner, so that no other instance tries it early. One chat has at
most one row in flight across the instances (its order): a chat with a row claimed elsewhere is
left out. Claims are serialised by a transaction-scoped advisory lock (one per batch, not per
send), so two instances never take two rows of one chat at the same moment."""

from __future__ import annotations

import uuid
from typing import Any

from bot.logs import INSTANCE
from bot.sendslots import NOW

LEASE = 60.0  # longer than any request's timeout (the HTTP client gives up well before)
CLAIM_LOCK = 7245025  # pg_advisory_xact_lock key of the outbox claim
# A row not held by anyone: never claimed, settled, or its owner's lease is over.
FREE_SQL = f" AND (lease_until IS NULL OR lease_until < {NOW})"
# The chats with a row in flight at some instance (outbox_claimed index).
_BUSY_CHATS_SQL = (f" AND chat_id NOT IN (SELECT chat_id FROM outbox WHERE claimed_by IS NOT NULL"
                   f" AND status = 'pending' AND lease_until >= {NOW})")
SETTLE_SQL = ", claimed_by = NULL, lease_until = NULL"
HOLD_SQL = f", claimed_by = NULL, lease_until = {NOW} + ?"


class OutboxClaims:
    """One instance's claims on outbox rows."""

    def __init__(self, db: Any, lease: float = LEASE) -> None:
        self.db = db
        self.lease = lease
        # hostname:pid as in the logs, then a worker of its own (several bots or Applications in one
        # process each claim for themselves)
        self.instance = f"{INSTANCE}#{uuid.uuid4().hex[:8]}"

    async def claim(self, columns: str, where: str, order: str, params: tuple[Any, ...], limit: int) -> list[Any]:
        """Claim up to `limit` due rows (`where`, `order` as the single-process pick has them),
        returned in that order."""
        sql = (f"UPDATE outbox SET claimed_by = ?, lease_until = {NOW} + ? WHERE id IN ("
               f"SELECT id FROM outbox WHERE {where}{FREE_SQL}{_BUSY_CHATS_SQL}"
               f" ORDER BY {order} LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING {columns}")
        async with self.db.transaction() as tx:
            await tx.execute("SELECT pg_advisory_xact_lock(?)", (CLAIM_LOCK,))
            rows = await tx.fetchall(sql, (self.instance, self.lease, *params, limit))
        return sorted(rows, key=lambda r: (r["priority"], r["not_before"], r["id"]))

    async def release(self, row_ids: list[int]) -> None:
        """Rows claimed by this pass and not started: back to the others at once."""
        if row_ids:
            await self.db.fetchval(
                "UPDATE outbox SET claimed_by = NULL, lease_until = NULL"
                " WHERE id IN (SELECT value FROM json_each(?)) AND claimed_by = ?",
                (row_ids, self.instance))
