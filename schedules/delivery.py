"""Drains the outbox through the Bot API under Telegram's limits.

A dedicated task rather than a JobQueue interval job: pacing 30 messages a second needs a loop
that sleeps to the next send slot, which an interval job cannot do without wasting slots.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiosqlite
import asyncpg
from telegram import Bot, InlineKeyboardMarkup, InputFile, Message
from telegram._utils.types import JSONDict
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from bot.bots import ROW_BOT_SQL, bot_id_of
from bot.clock import Clock, from_db, to_db
from bot.context import BotApplication
from bot.database import Database
from bot.metrics import Metrics
from bot.outbox import Outbox, Priority
from bot.outbox_claims import FREE_SQL, HOLD_SQL, SETTLE_SQL, OutboxClaims
from bot.sendslots import Place, SendSlots
from bot.services.people import PeopleService

log = logging.getLogger(__name__)

BATCH = 60  # about two seconds of sending: keeps a newly due reminder from waiting long
# Several instances: each claims about its share of two seconds, so that rows are spread over them.
BATCH_SHARED = 20
# Each priority is looked up in the outbox_pick index in turn, already in (priority, not_before, id)
# order: no sort of a large backlog on every pass.
_PRIORITIES = ", ".join(str(int(p)) for p in sorted(Priority))
_URGENT_PRIORITIES = ", ".join(str(int(p)) for p in sorted(Priority) if p < Priority.BULK)
MAX_BACKOFF = 600.0
MESSAGE_GONE = ("message to edit not found", "message can't be edited")
# A closed database at shutdown, a disk hiccup, or (PostgreSQL) a lost connection: the pass is retried.
_DB_ERRORS = (aiosqlite.Error, sqlite3.Error, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
SWEEP_EVERY = 60.0  # seconds between sweeps of the shared limiter's old rows (several instances)


@dataclass(frozen=True)
class Limits:
    """Telegram's limits, and how far inside them we stay."""

    per_second: float = 30.0
    chat_interval: float = 1.0
    group_per_minute: int = 20
    # Pace at the limit itself: pacing only spreads the sends evenly; the sliding window is what
    # keeps every second at the limit or under, and it already holds each send back a little more.
    margin: float = 1.0
    chat_margin: float = 1.1
    # The window's rule (a send starts over a second after the answer `per_second` places back) is
    # already strict; this is a hair of margin at the edge, for a server clock that runs a little fast.
    window_slack: float = 0.001
    # How late a send may start (a busy event loop) and have the next sends make it up; later than
    # that, the sender was idle and the pace starts afresh instead of bursting.
    catch_up: float = 0.25


class Send:
    """One message on its way: when we let it go and when its answer came back."""

    __slots__ = ("done", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.done: float | None = None


class Throttle:
    """Global pacing, a sliding window and per-chat spacing; all times are time.monotonic().

    The window is what keeps us inside Telegram's limit. Telegram receives a request some time
    between our start and its answer, and answers may be late by any amount; so a new send starts
    only once the send `per_second` places back was answered over a second ago: then no second
    at Telegram can hold more than `per_second` of ours, however the requests were delayed. Every
    send takes a place in it, the outbox's and the direct replies alike (Telegram counts both).

    Pacing only spreads the sends evenly inside that. It is a schedule, one slot after another,
    not a gap after each send: a send that starts late does not push the later slots back, so the
    next sends make the lateness up (the window still caps them) instead of losing it for good.

    A direct reply goes before the outbox: it takes the window's next place while the outbox
    waits, so a person waits for at most one place, not for the queue."""

    RECHECK = 0.05  # answers and direct replies wake the waiters; this only bounds a missed wake-up

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.interval = 1.0 / (limits.per_second * limits.margin)
        self.next_slot = 0.0
        self.global_pause_until = 0.0
        self.window: deque[Send] = deque(maxlen=max(1, int(limits.per_second)))
        self.chat_ready: dict[int, float] = {}
        self.last_send: dict[int, float] = {}
        self.group_sends: dict[int, deque[float]] = {}
        self.direct_waiting = 0
        self._waiters: list[asyncio.Future[None]] = []
        # Several instances on one database: the deployment's places (bot/sendslots.py), which
        # every send also takes. None on SQLite (one process).
        self.shared: SendSlots | None = None

    def ready_at(self, chat_id: int) -> float:
        ready = self.chat_ready.get(chat_id, 0.0)
        sends = self.group_sends.get(chat_id)
        if sends and len(sends) >= self.limits.group_per_minute:
            ready = max(ready, sends[-self.limits.group_per_minute] + 60.0 + 0.5)
        return ready

    def busy_chats(self, now: float) -> list[int]:
        """Chats that may not be sent to right now (to leave them out of the next query)."""
        for chat_id in [c for c, t in self.chat_ready.items() if t <= now]:
            del self.chat_ready[chat_id]
        for chat_id in [c for c, t in self.last_send.items() if t < now - 60.0]:
            del self.last_send[chat_id]
        busy = set(self.chat_ready)
        for chat_id, sends in list(self.group_sends.items()):
            while sends and sends[0] < now - 61.0:
                sends.popleft()
            if not sends:
                del self.group_sends[chat_id]
            elif self.ready_at(chat_id) > now:
                busy.add(chat_id)
        return sorted(busy)

    def window_opens(self) -> float | None:
        """When the window lets the next send start; None while the send `per_second` places back
        is unanswered (we cannot know when Telegram got it)."""
        if len(self.window) < (self.window.maxlen or 1):
            return 0.0
        oldest = self.window[0]
        return None if oldest.done is None else oldest.done + 1.0 + self.limits.window_slack

    def window_wait(self, now: float) -> float:
        """Seconds until the window lets the next send start (0 if now)."""
        opens = self.window_opens()
        return self.RECHECK if opens is None else max(0.0, opens - now)

    def wait_time(self, now: float, direct: bool = False) -> float:
        """Seconds until the next send may start (0 if now): a direct reply waits for the window
        and a bot-wide pause only; the outbox also for its pace, and while a reply is waiting."""
        start = self.global_pause_until
        if not direct:
            start = max(start, self.next_slot)
            if self.direct_waiting:
                start = max(start, now + self.RECHECK)
        return max(0.0, start - now, self.window_wait(now))

    def claim(self, chat_id: int, now: float, direct: bool = False) -> Send:
        """Record a send starting now; `answered` is called when its answer arrives."""
        send = Send(now)
        self.window.append(send)
        if not direct or self.next_slot < now + 1.0:  # replies push the outbox back by at most a second's worth
            # The next slot follows this one's, however late this send is, up to `catch_up`.
            self.next_slot = (self.next_slot if now - self.next_slot <= self.limits.catch_up else now) + self.interval
        self.last_send[chat_id] = now
        if chat_id < 0:
            self.group_sends.setdefault(chat_id, deque()).append(now)
        else:
            self.chat_ready[chat_id] = now + self.limits.chat_interval * self.limits.chat_margin
        return send

    def answered(self, send: Send, now: float) -> None:
        """The answer to `send` came back (or it failed): its place in the window can count down."""
        if send.done is None:
            send.done = now
        self.wake()

    def wake(self) -> None:
        """Wake whoever waits in `changed` (an answer, or a direct reply took its place)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def changed(self, timeout: float) -> None:
        """Sleep for `timeout` seconds, or less if an answer or a direct reply changes the picture."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def pause_chat(self, chat_id: int, seconds: float, now: float) -> None:
        self.chat_ready[chat_id] = max(self.chat_ready.get(chat_id, 0.0), now + seconds)

    def pause_all(self, seconds: float, now: float) -> None:
        self.global_pause_until = max(self.global_pause_until, now + seconds)
        # Time paused on purpose is not lateness to make up: the pace resumes one send at a time.
        self.next_slot = max(self.next_slot, self.global_pause_until)


async def _give_back(shared: SendSlots | None, place: Place) -> None:
    """Free a shared place after its answer; a database hiccup leaves it to its lease."""
    if shared is None:
        return
    try:
        await shared.answered(place)
    except Exception:  # the send itself is done: its outcome matters more than the slot
        log.exception("outbox: could not free a shared send slot (it frees itself after its lease)")


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class NotYetSent(Exception):
    """An edit whose original message has not been sent yet; tried again shortly."""


class NeverSent(Exception):
    """An edit whose original message will never be sent (failed, cancelled, blocked or unknown)."""

    def __init__(self, source: str, status: str | None) -> None:
        super().__init__(f"the message it edits ({source}) was never sent: {status or 'no such row'}")
        self.status = status


OUTBOX_SEND = "outbox"  # rate_limit_args of the worker's own calls, which it has paced already
# Direct calls that take a place in the window, as every outbox row does. A direct edit answers the
# tap of the person acting on the message they tapped: it is not a message sent, and taking window
# places would make 500 people voting at once wait seconds behind each other (the opinion map's vote
# loop: p99 15 s instead of under 300 ms). Edits the outbox makes (progress, screens kept true) still
# count.
COUNTED = ("send", "copy", "forward")


class DirectSendRecorder(BaseRateLimiter[str]):
    """Direct replies to the person acting: waits (briefly) for the chat's interval and for the
    window's next place, ahead of the outbox, and records the send in the throttle, so that neither
    a reply nor the outbox's next message meets a 429."""

    MAX_WAIT = 2.0
    MAX_RETRY_WAIT = 5.0

    def __init__(self, throttle: Throttle) -> None:
        self.throttle = throttle

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
                              args: Any, kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: str | None) -> bool | JSONDict | list[JSONDict]:
        chat_id = data.get("chat_id")
        if rate_limit_args == OUTBOX_SEND or not endpoint.startswith(COUNTED) or not isinstance(chat_id, int):
            return await callback(*args, **kwargs)
        send = await self._take_place(chat_id)
        place = await self._shared_place(chat_id) if self.throttle.shared is not None else None
        try:
            return await callback(*args, **kwargs)
        except RetryAfter as exc:
            # One short wait and a second try, as a person would; a long flood wait is an error.
            seconds = _seconds(exc.retry_after)
            if seconds > self.MAX_RETRY_WAIT:
                raise
            self.throttle.pause_chat(chat_id, seconds, time.monotonic())
            self.throttle.answered(send, time.monotonic())
            if place is not None and self.throttle.shared is not None:
                await _give_back(self.throttle.shared, place)
                place = None
                await self.throttle.shared.pause_chat(chat_id, seconds)  # for the other instances too
            await asyncio.sleep(seconds)
            send = await self._take_place(chat_id)
            place = await self._shared_place(chat_id) if self.throttle.shared is not None else None
            return await callback(*args, **kwargs)
        finally:
            self.throttle.answered(send, time.monotonic())
            if place is not None:
                await _give_back(self.throttle.shared, place)

    async def _shared_place(self, chat_id: int) -> Place:
        """The deployment's place (several instances): ahead of the outbox rows of every instance
        (they take none while a reply waits), the chat's turn and a pause waited for at most
        MAX_WAIT, as in `_take_place`; then a free slot only."""
        shared = self.throttle.shared
        assert shared is not None
        deadline = time.monotonic() + self.MAX_WAIT
        waiting = False
        try:
            while True:
                taken = await shared.take(chat_id, direct=True, strict=time.monotonic() < deadline)
                if isinstance(taken, Place):
                    return taken
                held = taken.chat_busy or taken.paused
                if not held:  # the slots are all taken: the outbox of every instance lets us go first
                    waiting = True
                    await shared.direct_waiting()
                # The chat's turn or a pause: until it comes or the deadline; a slot: the next look (≤ POLL).
                await asyncio.sleep(max(0.001, min(taken.wait, deadline - time.monotonic())) if held else taken.wait)
        finally:
            if waiting:
                await shared.direct_done()

    async def _take_place(self, chat_id: int) -> Send:
        """Wait for the chat's interval, then for the window's next place (the outbox
        holds back meanwhile). A chat's interval or a bot-wide pause (after a 429) is waited for
        at most MAX_WAIT, so a person is not kept waiting long; the window always, as it opens
        within a second of the answers (and every request is answered or times out)."""
        wait = self.throttle.ready_at(chat_id) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(min(wait, self.MAX_WAIT))
        deadline = time.monotonic() + self.MAX_WAIT
        self.throttle.direct_waiting += 1
        try:
            while True:
                now = time.monotonic()
                wait = self.throttle.wait_time(now, direct=True) if now < deadline else self.throttle.window_wait(now)
                if wait <= 0:
                    break
                await self.throttle.changed(wait)
            # No await between the last look and the claim: nothing else can take the place.
            return self.throttle.claim(chat_id, time.monotonic(), direct=True)
        finally:
            self.throttle.direct_waiting -= 1
            self.throttle.wake()  # the outbox may go again


class DeliveryWorker:
    """Sends due outbox rows, records each outcome, and never sends a row twice unless the
    process died while that row was in flight."""

    def __init__(self, bot: Bot, db: Database, outbox: Outbox, clock: Clock, throttle: Throttle,
                 people: PeopleService, concurrency: int = 8, metrics: Metrics | None = None,
                 route: tuple[int, int] | None = None) -> None:
        self.bot = bot
        # Several bots (BOT_TOKENS): (this bot's id, the first bot's id); this worker sends only
        # the rows whose chat talks to this bot (bot/bots.py). None: every row (a single bot).
        self._route_sql, self._route_params = (
            (f" AND {ROW_BOT_SQL} = ?", (route[1], route[0])) if route is not None else ("", ()))
        self.people = people
        self.metrics = metrics or Metrics()
        self.db = db
        self.outbox = outbox
        self.clock = clock
        self.throttle = throttle
        self._in_flight: set[int] = set()
        self._chat_in_flight: dict[int, int] = {}  # one message at a time per chat keeps their order
        # Backoff lives in memory (monotonic time): the rows stay due in the database, so a
        # restart simply tries them again, and a test's frozen clock cannot strand a retry.
        self._held: dict[int, float] = {}
        self._failures_in_a_row = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] = lambda: None
        # Set after a pass that found nothing due and nothing in flight, with no commit since.
        self._idle = asyncio.Event()
        self.sent_count = 0
        # Several instances on one database (db.shared): rows are claimed before sending, and each
        # send also takes a place of the deployment's (set by `start`). On SQLite none of it.
        self.claims = OutboxClaims(db) if db.shared else None
        self.shared: SendSlots | None = None
        self._settle_sql = SETTLE_SQL if db.shared else ""
        self._free_sql = FREE_SQL if db.shared else ""
        self._swept = time.monotonic()

    def start(self) -> None:
        self._unsubscribe = self.clock.on_change(self.outbox.wake)
        self._runner = asyncio.create_task(self._run(), name="outbox-delivery")

    async def stop(self) -> None:
        """Stop taking rows, let the in-flight ones finish so their outcome is recorded."""
        self._stopping = True
        self._unsubscribe()
        self.outbox.wake()
        self.throttle.wake()  # out of a wait for its next slot
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=15)

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Return once nothing is due now and nothing is in flight: every row due when this was
        called has its outcome recorded (sent, failed, blocked). For "nothing was sent" checks."""
        self._idle.clear()
        self.outbox.wake()  # a fresh pass, which sees every commit made before this call
        await asyncio.wait_for(self._idle.wait(), timeout=timeout)

    async def _run(self) -> None:
        wake = self.outbox.wake_event()
        try:
            await self._loop(wake)
        finally:
            self.outbox.forget_wake_event(wake)

    async def _loop(self, wake: asyncio.Event) -> None:
        while not self._stopping:
            # Cleared before the read, so a commit during the pass is not slept through.
            wake.clear()
            self._idle.clear()
            try:
                dispatched, wait, due = await self._dispatch_due()
                if self.shared is not None and time.monotonic() - self._swept > SWEEP_EVERY:
                    self._swept = time.monotonic()
                    await self.shared.sweep()
            except _DB_ERRORS:
                log.exception("outbox: could not read due rows")
                dispatched, wait, due = 0, 1.0, True
            if dispatched == 0 and not self._stopping:
                if not due and not self._in_flight and not wake.is_set():
                    self._idle.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=wait)

    def _excluded_chats(self, now: float) -> list[int]:
        return sorted(set(self.throttle.busy_chats(now)) | set(self._chat_in_flight))

    def _held_rows(self, now: float) -> list[int]:
        for row_id in [r for r, until in self._held.items() if until <= now]:
            del self._held[row_id]
        return sorted(set(self._held) | self._in_flight)

    async def _due_rows(self) -> list[Any]:
        """The next due rows in sending order; claimed for this instance when several share the
        database (bot/outbox_claims.py)."""
        now_mono = time.monotonic()
        columns = "id, chat_id, method, payload, attempts, dedup_key, purpose, subject_id, priority"
        where = (f"status = 'pending' AND priority IN ({_PRIORITIES}) AND not_before <= ?"
                 " AND chat_id NOT IN (SELECT value FROM json_each(?))"
                 " AND id NOT IN (SELECT value FROM json_each(?))"
                 " AND chat_id NOT IN (SELECT telegram_id FROM people WHERE blocked_bot = 1)"
                 f"{self._route_sql}")
        params = (to_db(self.clock.now()), json.dumps(self._excluded_chats(now_mono)),
                  json.dumps(self._held_rows(now_mono)), *self._route_params)
        if self.claims is not None:
            return await self.claims.claim(f"{columns}, not_before", where, "priority, not_before, id", params,
                                           BATCH_SHARED)
        return await self.db.fetchall(
            f"SELECT {columns} FROM outbox WHERE {where} ORDER BY priority, not_before, id LIMIT ?",
            (*params, BATCH))

    async def _dispatch_due(self) -> tuple[int, float, bool]:
        """Start sending what is due now. Returns (rows started, seconds to wait if none, whether
        a row is due now but was held back)."""
        rows = await self._due_rows()
        if self.claims is None:
            started = await self._start_rows(rows)
        else:
            unstarted = {row["id"] for row in rows}
            try:
                started = await self._start_rows(rows, unstarted)
            finally:  # claimed and not started (a busy chat, an urgent row, a stop): to the others
                await self.claims.release(sorted(unstarted))
        if started:
            return started, 0.0, True
        return (0, *await self._seconds_to_next_due())

    async def _start_rows(self, rows: list[Any], unstarted: set[int] | None = None) -> int:
        """Long because it is the pass's one loop: each row waits for its pace and place, then its
        send starts as a task; a row whose chat is busy is left for a later pass."""
        started = 0
        for row in rows:
            if self._stopping:
                break
            chat_id = row["chat_id"]
            now_mono = time.monotonic()
            if self.throttle.ready_at(chat_id) > now_mono or chat_id in self._chat_in_flight:
                continue
            if row["priority"] >= Priority.BULK:
                # This pass can last seconds: a bulk row cancelled meanwhile is not sent, and one
                # that came due for someone who waits goes before the next bulk row (one slot).
                # Looked up before waiting for the slot, so that the lookups cost no sending time.
                if await self._urgent_due():
                    break
                if await self.db.fetchval("SELECT status FROM outbox WHERE id = ?", (row["id"],)) != "pending":
                    continue
            while (wait := self.throttle.wait_time(time.monotonic())) > 0 and not self._stopping:
                await self.throttle.changed(wait)
            if self._stopping or self.throttle.ready_at(chat_id) > time.monotonic():  # a 429 meanwhile
                continue
            place = None
            if self.shared is not None and (place := await self._shared_place(chat_id)) is None:
                continue  # its chat is busy at another instance (or we are stopping)
            previous = self.throttle.last_send.get(chat_id)
            send = self.throttle.claim(chat_id, time.monotonic())
            await self._slots.acquire()
            self._in_flight.add(row["id"])
            if unstarted is not None:
                unstarted.discard(row["id"])
            self._chat_in_flight[chat_id] = self._chat_in_flight.get(chat_id, 0) + 1
            task = asyncio.create_task(self._deliver(dict(row), previous, send, place))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _shared_place(self, chat_id: int) -> Place | None:
        """The deployment's place for this send (several instances), waiting while the slots are
        all taken; None when the chat is held back elsewhere (left for a later pass)."""
        assert self.shared is not None
        while not self._stopping:
            taken = await self.shared.take(chat_id)
            if isinstance(taken, Place):
                return taken
            if taken.chat_busy:
                self.throttle.pause_chat(chat_id, taken.wait, time.monotonic())
                return None
            if taken.paused:  # another instance met a 429: this one holds back alike
                self.throttle.pause_all(taken.wait, time.monotonic())
            await self.throttle.changed(taken.wait)
        return None

    async def _urgent_due(self) -> bool:
        """Whether a row more urgent than bulk is due now and could be sent (as the pass's query
        would pick it: not held back, its chat not busy)."""
        now_mono = time.monotonic()
        return await self.db.fetchval(
            f"SELECT 1 FROM outbox WHERE status = 'pending' AND priority IN ({_URGENT_PRIORITIES})"
            " AND not_before <= ? AND chat_id NOT IN (SELECT value FROM json_each(?))"
            " AND id NOT IN (SELECT value FROM json_each(?))"
            f" AND chat_id NOT IN (SELECT telegram_id FROM people WHERE blocked_bot = 1){self._route_sql}"
            f"{self._free_sql} LIMIT 1",
            (to_db(self.clock.now()), json.dumps(self._excluded_chats(now_mono)),
             json.dumps(self._held_rows(now_mono)), *self._route_params)) is not None

    async def _seconds_to_next_due(self) -> tuple[float, bool]:
        """Seconds to wait before the next pass, and whether a row is due now (held back)."""
        nxt = await self.db.fetchval(
            "SELECT MIN(not_before) FROM outbox WHERE status = 'pending'"
            f" AND chat_id NOT IN (SELECT telegram_id FROM people WHERE blocked_bot = 1){self._route_sql}",
            self._route_params,
        )
        if nxt is None:
            return 5.0, False
        seconds = (from_db(nxt) - self.clock.now()).total_seconds()
        # A row due now but held back by a throttled chat or a backoff: look again shortly.
        return min(max(seconds, 0.05), 5.0), seconds <= 0

    async def _deliver(self, row: dict[str, Any], previous_send: float | None, send: Send,
                       place: Place | None = None) -> None:
        """Long because each outcome of a send is its own branch (sent, 429, 403, 400, 5xx, …)."""
        chat_id = row["chat_id"]
        try:
            try:
                message = await self._call(row["method"], json.loads(row["payload"]))
            finally:
                self.throttle.answered(send, time.monotonic())
                if place is not None:
                    await _give_back(self.shared, place)
            message_id = message.message_id if isinstance(message, Message) else None
            await self._mark(row["id"], status="sent", message_id=message_id)
            self._failures_in_a_row = 0
            self.sent_count += 1
            self.metrics.sent(row)
        except RetryAfter as exc:
            self.metrics.too_many_requests(row)
            seconds = _seconds(exc.retry_after)
            now = time.monotonic()
            self.throttle.pause_chat(chat_id, seconds, now)
            spaced = previous_send is None or now - previous_send >= self.throttle.limits.chat_interval
            if spaced:
                # By our books this chat was within its limit, so the flood limit is bot-wide.
                self.throttle.pause_all(seconds, now)
            log.warning("outbox: 429 for chat %s, pausing %s for %.1fs", chat_id,
                        "everything" if spaced else "that chat", seconds)
            if self.shared is not None:  # every instance holds back alike
                await self.shared.pause_chat(chat_id, seconds)
                if spaced:
                    await self.shared.pause_all(seconds)
            await self._note_failure(row["id"], f"429 retry after {seconds:g}s")
        except NotYetSent as exc:
            self._held[row["id"]] = time.monotonic() + 1.0
            await self._note_failure(row["id"], f"waiting for {exc} to be sent", hold=1.0)
        except NeverSent as exc:
            if exc.status in ("blocked", "cancelled"):  # not a fault: the edit goes the original's way
                await self._mark(row["id"], status=exc.status, error=str(exc))
            else:
                await self._fail(row, str(exc))
        except Forbidden as exc:
            self.metrics.chat_blocked(row)
            log.info("outbox: chat %s blocked the bot (%s)", chat_id, exc.message)
            await self._mark_blocked(row["id"], chat_id, exc.message)
        except ChatMigrated as exc:
            await self._migrate(row, exc.new_chat_id)
        except BadRequest as exc:
            await self._refused(row, exc.message)
        except (TelegramError, OSError) as exc:  # 5xx, timeouts, network loss: back off, then retry
            self.metrics.failed(row, final=False)
            self._failures_in_a_row += 1
            now = time.monotonic()
            backoff = min(MAX_BACKOFF, 2.0 ** min(row["attempts"], 12))
            self._held[row["id"]] = now + backoff
            # Telegram (or the way to it) is in trouble: slow everything down, not just this row.
            self.throttle.pause_all(min(60.0, 0.25 * 2 ** min(self._failures_in_a_row, 8)), now)
            log.warning("outbox: row %s (%s) failed (%s), will retry", row["id"], row["dedup_key"], exc)
            await self._note_failure(row["id"], str(exc) or type(exc).__name__, hold=backoff)
        except Exception as exc:
            log.exception("outbox: row %s (%s) could not be sent", row["id"], row["dedup_key"])
            self.metrics.failed(row, final=False)
            self._held[row["id"]] = time.monotonic() + MAX_BACKOFF
            await self._note_failure(row["id"], repr(exc), hold=MAX_BACKOFF)
        finally:
            self._in_flight.discard(row["id"])
            self._chat_in_flight[chat_id] -= 1
            if self._chat_in_flight[chat_id] <= 0:
                del self._chat_in_flight[chat_id]
            self._slots.release()
            self.outbox.wake()

    async def _call(self, method: str, payload: dict[str, Any]) -> Any:
        kwargs = dict(payload)
        source = kwargs.pop("message_id_from", None)
        if source is not None:
            # An edit of a message we sent through the outbox: its id is known once it was sent.
            original = await self.db.fetchone("SELECT status, message_id FROM outbox WHERE dedup_key = ?", (source,))
            if original is None or original["status"] in ("failed", "cancelled", "blocked"):
                raise NeverSent(source, original["status"] if original is not None else None)
            if original["status"] != "sent":
                raise NotYetSent(source)
            if original["message_id"] is None:
                raise NeverSent(source, "sent, but its message id is unknown")
            kwargs["message_id"] = original["message_id"]
        if "reply_markup" in kwargs:
            kwargs["reply_markup"] = InlineKeyboardMarkup.de_json(kwargs["reply_markup"], self.bot)
        for field in ("document", "photo"):
            value = kwargs.get(field)
            if isinstance(value, dict):
                kwargs[field] = InputFile(base64.b64decode(value["b64"]), filename=value["filename"])
        sender = getattr(self.bot, _snake(method), None)
        if sender is None:
            raise BadRequest(f"unknown method {method}")
        return await sender(**kwargs, rate_limit_args=OUTBOX_SEND)

    async def _mark(self, row_id: int, *, status: str, message_id: int | None = None,
                    error: str | None = None) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE outbox SET status = ?, sent_at = ?, message_id = COALESCE(?, message_id),"
                f" last_error = ?, attempts = attempts + 1{self._settle_sql} WHERE id = ?",
                (status, to_db(self.clock.now()) if status == "sent" else None, message_id, error, row_id),
            )

    async def _refused(self, row: dict[str, Any], error: str) -> None:
        """A 400: never retried."""
        if "message is not modified" in error.lower():  # an edit to what it already reads: done
            await self._mark(row["id"], status="sent")
        elif row["method"].startswith("edit") and any(gone in error.lower() for gone in MESSAGE_GONE):
            # The person deleted the message (or it can no longer be edited): nothing to keep true
            # there. Recorded as failed, once; the screen is forgotten (bot/services/screens.py).
            log.info("outbox: row %s (%s): %s", row["id"], row["dedup_key"], error)
            self.metrics.failed(row, final=True)
            await self._mark(row["id"], status="failed", error=error)
        else:
            await self._fail(row, error)

    async def _fail(self, row: dict[str, Any], error: str) -> None:
        """A permanent refusal (400 and the like): recorded as failed, and never silent."""
        self.metrics.failed(row, final=True)
        log.error("outbox: row %s failed for good: key %s, purpose %s, subject %s, chat %s, %s: %s",
                  row["id"], row["dedup_key"], row["purpose"] or "-", row["subject_id"] or "-", row["chat_id"],
                  row["method"], error)
        await self._mark(row["id"], status="failed", error=error)

    async def _note_failure(self, row_id: int, error: str, hold: float = 0.0) -> None:
        """A try that will be retried; with several instances the row is let go, and held for
        `hold` seconds (its backoff) so that no other instance tries it sooner."""
        async with self.db.transaction() as tx:
            if self.claims is None:
                await tx.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                                 (error, row_id))
            else:
                await tx.execute(f"UPDATE outbox SET attempts = attempts + 1, last_error = ?{HOLD_SQL} WHERE id = ?",
                                 (error, hold, row_id))

    async def _mark_blocked(self, row_id: int, chat_id: int, error: str) -> None:
        self.people.forget(chat_id)
        async with self.db.transaction() as tx:
            await tx.execute(f"UPDATE outbox SET status = 'blocked', last_error = ?{self._settle_sql} WHERE id = ?",
                             (error, row_id))
            await tx.execute(
                "UPDATE outbox SET status = 'blocked', last_error = ? WHERE chat_id = ? AND status = 'pending'",
                (error, chat_id),
            )
            if chat_id > 0:  # a person
                now = to_db(self.clock.now())
                await tx.execute(
                    "INSERT INTO people (telegram_id, blocked_bot, created_at, updated_at) VALUES (?, 1, ?, ?)"
                    " ON CONFLICT(telegram_id) DO UPDATE SET blocked_bot = 1, updated_at = excluded.updated_at",
                    (chat_id, now, now),
                )
            else:  # a group or channel that removed the bot: remembered until it adds the bot back
                await self.outbox.mark_chat_blocked(tx, chat_id, True, error)

    async def _migrate(self, row: dict[str, Any], new_chat_id: int) -> None:
        payload = json.loads(row["payload"])
        payload["chat_id"] = new_chat_id
        async with self.db.transaction() as tx:
            await tx.execute(
                f"UPDATE outbox SET chat_id = ?, payload = ?{self._settle_sql} WHERE id = ?",
                (new_chat_id, json.dumps(payload, ensure_ascii=False), row["id"]),
            )


def _seconds(retry_after: int | float | timedelta) -> float:
    if isinstance(retry_after, timedelta):
        return max(retry_after.total_seconds(), 0.5)
    return max(float(retry_after), 0.5)


def _snake(method: str) -> str:
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in method)


async def start(app: BotApplication) -> None:
    """Start draining the outbox with the throttle the Application's direct replies also report to."""
    core = app.core
    route = (bot_id_of(app.bot.token), core.bots.first_bot_id) if core.bots.several else None
    worker = DeliveryWorker(app.bot, core.db, core.outbox, core.clock, app.throttle, core.people,
                            metrics=core.metrics, route=route)
    if core.db.shared:  # several instances: the deployment's limits, shared in the database
        await share_limits(worker, bot_id_of(app.bot.token))
    worker.start()
    app.bot_data["delivery"] = worker


async def share_limits(worker: DeliveryWorker, bot_id: int) -> SendSlots:
    """Make the worker (and the direct replies through its throttle) take the deployment's places
    for this bot, in the shared database (bot/sendslots.py)."""
    limits = worker.throttle.limits
    shared = SendSlots(worker.db, bot_id, limits.per_second, limits.chat_interval * limits.chat_margin,
                       limits.group_per_minute, limits.window_slack)
    await shared.setup()
    worker.shared = worker.throttle.shared = shared
    return shared


async def stop(app: BotApplication) -> None:
    worker = app.bot_data.pop("delivery", None)
    if worker is not None:
        await worker.stop()
