"""Updates shared by several instances (issue 11): the webhook stores each update in the database
before answering 200 (bot/ops.py), and a pump in every instance claims stored updates and hands
them to the Application. Used only when the database is shared (PostgreSQL, `db.shared`); one
process on SQLite keeps PTB's in-memory queue.

The rules:
- **Once.** An update is stored once per (bot, update id): a retry by Telegram, or the same update
  posted to two instances, is dropped by the primary key. A pump claims rows with
  `UPDATE … WHERE update_id IN (SELECT … FOR UPDATE SKIP LOCKED)`, setting `claimed_by` and
  `lease_until` (LEASE); the lease is renewed every RENEW while the update is handled, and the row
  is marked done when it has been. An instance that dies mid-handling stops renewing; once its
  lease has run out another instance takes the update over and handles it again (the dead one's
  unfinished transaction never committed). An update handed out MAX_ATTEMPTS times without being
  done (it kills whoever handles it) is given up on and logged.
- **A chat's order.** An update is handed out only when no earlier update (smaller id) of its chat
  is unfinished and no other update of its chat is being handled, and only when no earlier update
  can still be on its way: Telegram numbers a bot's updates one by one, so the pumps keep, per bot,
  the smallest id that has not arrived yet (`update_marks.next_id`, the contiguous low-water mark)
  and hand out only ids below it. Ids can have gaps (an update Telegram gave up on, an update type
  we did not ask for, a random jump after a week of silence), so a missing id is waited for at most
  GRACE after a later one arrived; then the mark moves past it. An earlier update that arrives
  later still is handled after its chat's later ones: the one case where the order is not kept.
- **Concurrency.** Different chats are handled concurrently, CONCURRENT at most per instance; one
  chat's updates one after the other. A pump wakes at once when its own webhook stored an update or
  one of its handlers finished, and otherwise looks at the table every POLL for what other
  instances stored.
- **Leases run on each instance's own clock** (UTC wall time): instances are expected to keep their
  clocks in step (NTP) to well under a second.
- Done rows are kept KEEP_DONE for diagnosis, then deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from datetime import timedelta
from typing import Any, NamedTuple

from telegram import Update

from bot.bots import bot_id_of
from bot.clock import Clock, to_db
from bot.context import BotApplication
from bot.logs import INSTANCE

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=20)  # an instance's claim on an update it is handling
RENEW = 5.0  # seconds between renewals of the lease while handling
GRACE = timedelta(seconds=1.5)  # how long a missing (earlier) update id is waited for
POLL = 0.15  # seconds between looks at the table for what other instances stored
CONCURRENT = 16  # updates of different chats handled at once by one instance
MAX_ATTEMPTS = 5  # handed out this often without being done: given up on
KEEP_DONE = timedelta(days=1)
PURGE_EVERY = 600.0  # seconds between deletions of old done rows (each instance)
STOP_WAIT = 10.0  # seconds a stopping instance lets the updates it handles finish
MARK_SCAN = 500  # stored ids read at once when the mark moves

_instances = itertools.count(1)


def new_instance_id() -> str:
    """hostname:pid; a further Application in the same process (tests) gets #2, #3…"""
    n = next(_instances)
    return INSTANCE if n == 1 else f"{INSTANCE}#{n}"


def instance_of(app: BotApplication) -> str:
    """This Application's instance id (in claims, logs and metrics)."""
    instance: str = app.bot_data.setdefault("instance", new_instance_id())
    return instance


class Claimed(NamedTuple):
    update_id: int
    chat_id: int | None
    payload: str
    attempts: int


class UpdateStore:
    """One bot's stored updates, seen from one instance. Times come from `clock` (real time unless
    a test gives a settable one): not the Core's clock, which tests move by days."""

    def __init__(self, db: Any, bot_id: int, instance: str, clock: Clock | None = None, *,
                 lease: timedelta = LEASE, grace: timedelta = GRACE) -> None:
        self.db = db
        self.bot_id = bot_id
        self.instance = instance
        self.clock = clock or Clock()
        self.lease = lease
        self.grace = grace

    async def put(self, update_id: int, chat_id: int | None, payload: str) -> bool:
        """Store a received update (committed on return); False if it was stored already."""
        changed = await self.db.write(
            "INSERT INTO updates (bot_id, update_id, chat_id, payload, received_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (bot_id, update_id) DO NOTHING",
            (self.bot_id, update_id, chat_id, payload, to_db(self.clock.now())))
        return bool(changed)

    async def advance_mark(self) -> int | None:
        """Move the low-water mark over every id that has arrived, and past a missing id that a
        later update has waited GRACE for; returns it (None: nothing has arrived yet)."""
        now = self.clock.now()
        mark = await self.db.fetchval("SELECT next_id FROM update_marks WHERE bot_id = ?", (self.bot_id,))
        floor = -(1 << 62) if mark is None else int(mark)
        waited = await self.db.fetchval(
            "SELECT MAX(update_id) FROM updates WHERE bot_id = ? AND done_at IS NULL AND update_id >= ?"
            " AND received_at <= ?", (self.bot_id, floor, to_db(now - self.grace)))
        current = None if mark is None else int(mark)
        if waited is not None:
            current = int(waited) + 1 if current is None else max(current, int(waited) + 1)
        if current is None:
            return None
        ids = await self.db.fetchall(
            "SELECT update_id FROM updates WHERE bot_id = ? AND done_at IS NULL AND update_id >= ?"
            " ORDER BY update_id LIMIT ?", (self.bot_id, current, MARK_SCAN))
        for row in ids:
            if int(row["update_id"]) != current:
                break
            current += 1
        if current != mark:
            await self.db.write(
                "INSERT INTO update_marks (bot_id, next_id) VALUES (?, ?) ON CONFLICT (bot_id)"
                " DO UPDATE SET next_id = MAX(update_marks.next_id, excluded.next_id)", (self.bot_id, current))
        return current

    async def claim(self, limit: int) -> list[Claimed]:
        """Claim up to `limit` updates that may be handled now (the rules in the module's doc)."""
        mark = await self.advance_mark()
        if mark is None or limit <= 0:
            return []
        now = self.clock.now()
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                "UPDATE updates SET claimed_by = ?, lease_until = ?, attempts = attempts + 1"
                " WHERE bot_id = ? AND update_id IN (SELECT u.update_id FROM updates u"
                "  WHERE u.bot_id = ? AND u.done_at IS NULL AND u.update_id < ?"
                "  AND (u.lease_until IS NULL OR u.lease_until < ?)"
                "  AND NOT EXISTS (SELECT 1 FROM updates e WHERE e.bot_id = u.bot_id AND e.chat_id = u.chat_id"
                "   AND e.done_at IS NULL AND e.update_id <> u.update_id"
                "   AND (e.update_id < u.update_id OR e.lease_until >= ?))"
                f"  ORDER BY u.update_id LIMIT ?{self.db.skip_locked})"
                " RETURNING update_id, chat_id, payload, attempts",
                (self.instance, to_db(now + self.lease), self.bot_id, self.bot_id, mark, to_db(now), to_db(now),
                 limit))
        claimed = [Claimed(int(r["update_id"]), None if r["chat_id"] is None else int(r["chat_id"]),
                           r["payload"], int(r["attempts"])) for r in rows]
        return sorted(claimed)

    async def renew(self, update_id: int) -> bool:
        """Extend this instance's lease; False if the update is no longer ours."""
        changed = await self.db.write(
            "UPDATE updates SET lease_until = ? WHERE bot_id = ? AND update_id = ? AND claimed_by = ?"
            " AND done_at IS NULL", (to_db(self.clock.now() + self.lease), self.bot_id, update_id, self.instance))
        return bool(changed)

    async def finish(self, update_id: int) -> None:
        await self.db.write(
            "UPDATE updates SET done_at = ?, lease_until = NULL WHERE bot_id = ? AND update_id = ?"
            " AND claimed_by = ?", (to_db(self.clock.now()), self.bot_id, update_id, self.instance))

    async def release(self, update_id: int) -> None:
        """Give an update back unhandled (this instance stops): another takes it at once."""
        await self.db.write(
            "UPDATE updates SET claimed_by = NULL, lease_until = NULL WHERE bot_id = ? AND update_id = ?"
            " AND claimed_by = ? AND done_at IS NULL", (self.bot_id, update_id, self.instance))

    async def purge(self) -> int:
        """Delete rows done more than KEEP_DONE ago."""
        return int(await self.db.write("DELETE FROM updates WHERE done_at IS NOT NULL AND done_at < ?",
                                       (to_db(self.clock.now() - KEEP_DONE),)))

    async def unfinished(self) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM updates WHERE bot_id = ? AND done_at IS NULL",
                                          (self.bot_id,)))


async def shared_secret(db: Any, candidate: str) -> str:
    """The webhook secret every instance of a deployment uses when none is configured: the first
    instance's random one, kept in the database."""
    await db.write("INSERT INTO meta (key, value) VALUES ('webhook_secret', ?) ON CONFLICT (key) DO NOTHING",
                   (candidate,))
    secret: str = await db.fetchval("SELECT value FROM meta WHERE key = 'webhook_secret'")
    return secret


def store_of(app: BotApplication) -> UpdateStore:
    """The Application's update store (made on first use: the webhook may store before the pump runs)."""
    store = app.bot_data.get("update_store")
    if store is None:
        store = UpdateStore(app.core.db, bot_id_of(app.bot.token), instance_of(app))
        app.bot_data["update_store"] = store
    assert isinstance(store, UpdateStore)
    return store


class UpdatePump:
    """Claims stored updates and has the Application handle them (see the module's doc)."""

    def __init__(self, app: BotApplication, store: UpdateStore, *, concurrent: int = CONCURRENT,
                 poll: float = POLL) -> None:
        self.app = app
        self.store = store
        self.concurrent = concurrent
        self.poll = poll
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._last_purge = 0.0
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._loop = asyncio.get_running_loop().create_task(self._run(), name="update-pump")
        log.info("update pump started (instance %s)", self.store.instance)

    async def stop(self) -> None:
        """Stop claiming, let the updates being handled finish (STOP_WAIT), give back the rest."""
        self._stopping = True  # ends the loop even if the cancel below were lost (see _run)
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=STOP_WAIT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            free = self.concurrent - len(self._tasks)
            got: list[Claimed] = []
            try:
                got = await self.store.claim(free)
                if loop.time() - self._last_purge > PURGE_EVERY:
                    self._last_purge = loop.time()
                    await self.store.purge()
            except Exception:  # the database may be away for a while: keep trying
                log.exception("update pump: could not claim updates")
            for claimed in got:
                task = loop.create_task(self._handle(claimed))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if got and len(got) == free:
                continue  # there may be more at once
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns normally when stop()'s
            # cancel comes just as a wake-up (a handler finishing) completes the wait; the cancel is
            # lost, the loop goes on, and stop() waited for it for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll):
                    await self._wake.wait()

    async def _handle(self, claimed: Claimed) -> None:
        renewer = asyncio.get_running_loop().create_task(self._renew(claimed.update_id))
        try:
            if claimed.attempts > MAX_ATTEMPTS:
                log.error("update %s was handed out %s times and never finished: given up on",
                          claimed.update_id, claimed.attempts - 1)
            else:
                update = Update.de_json(json.loads(claimed.payload), self.app.bot)
                await self.app.process_update(update)
        except asyncio.CancelledError:
            renewer.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release(claimed.update_id))
            raise
        except Exception:  # PTB hands handler errors to the error handler; this is anything else
            log.exception("update %s could not be handled", claimed.update_id)
        finally:
            renewer.cancel()
        await self._finish(claimed.update_id)

    async def _finish(self, update_id: int) -> None:
        for delay in (0.1, 0.5, 2.0, None):  # a short database outage must not leave it to the lease
            try:
                await self.store.finish(update_id)
                break
            except Exception:
                if delay is None:
                    log.exception("update %s: could not mark it done (its lease will run out)", update_id)
                    break
                await asyncio.sleep(delay)
        self.wake()  # the chat's next update may be eligible now

    async def _renew(self, update_id: int) -> None:
        while True:
            await asyncio.sleep(RENEW)
            try:
                if not await self.store.renew(update_id):
                    log.warning("update %s: the lease was lost (another instance may handle it too)", update_id)
                    return
            except Exception as exc:
                log.warning("update %s: could not renew the lease (%s)", update_id, exc)


def start_pump(app: BotApplication) -> UpdatePump:
    """Start this instance's pump (webhook mode on a shared database)."""
    pump = UpdatePump(app, store_of(app))
    app.bot_data["update_pump"] = pump
    app.core.metrics.instance.labels(pump.store.instance).set(1)
    pump.start()
    return pump


async def stop_pump(app: BotApplication) -> None:
    pump = app.bot_data.pop("update_pump", None)
    if pump is not None:
        await pump.stop()


def wake_pump(app: BotApplication) -> None:
    pump = app.bot_data.get("update_pump")
    if pump is not None:
        pump.wake()


def chat_of(update: Update) -> int | None:
    chat = update.effective_chat
    return chat.id if chat is not None else None
