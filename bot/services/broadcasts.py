"""Broadcasts (/broadcast): an organiser sends one message to an org subtree, a secretary to their
org, chosen by roles; with an optional 收到 button, quiet hours unless urgent, live progress
counted from the outbox rows, cancel midway, a record of every broadcast and a daily limit.

The broadcast row exists from the draft on; every step checks the sender's rights again from the
database. The messages are outbox rows at Priority.BULK (key bcast:<id>:<person>, purpose
'broadcast/message'): whatever someone waits for goes first, and a restart loses nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.actors import Actor, is_system
from bot.callbacks import BC_ACK, BC_ACKS, BC_STOP
from bot.clock import from_db, to_db
from bot.config import SUPPORTED_LOCALES
from bot.database import Tx
from bot.i18n import language_for
from bot.infra import Infra
from bot.limits import MAX_CAPTION, MAX_TEXT, telegram_length
from bot.outbox import Button, Priority, inline_keyboard
from bot.services.meeting_time import after_quiet, in_quiet_hours
from bot.services.orgs import NotAllowed, NotFound, Org, Refused

ROLES = ("member", "secretary", "resident", "organizer")  # in the order the toggles show them
# Their names and the states' names, as catalog keys.
ROLE_KEYS = {"member": "broadcast.role.member", "secretary": "broadcast.role.secretary",
             "resident": "broadcast.role.resident", "organizer": "broadcast.role.organizer"}
STATUS_KEYS = {"queued": "broadcast.status.queued", "done": "broadcast.status.done",
               "cancelled": "broadcast.status.cancelled", "draft": "broadcast.status.draft",
               "dropped": "broadcast.status.dropped"}
KINDS = ("text", "photo", "document", "voice")
METHODS = {"text": "sendMessage", "photo": "sendPhoto", "document": "sendDocument", "voice": "sendVoice"}
PURPOSE = "broadcast/message"
REMINDER = "broadcast/reminder"
PROGRESS = "broadcast/progress"
BIG = 1000          # a broadcast to more people than this is "big"
BIG_PER_DAY = 3     # big broadcasts per sender per day
PROGRESS_EVERY = timedelta(seconds=3)
TELEGRAM_RATE = 30.0  # messages a second: the estimate before anything has been sent
MAX_AHEAD = timedelta(days=30)


def key_prefix(broadcast_id: int) -> str:
    return f"bcast:{broadcast_id}:"


@dataclass(frozen=True)
class Broadcast:
    id: int
    sender_id: int
    org_id: int
    org_name: str
    below: bool
    roles: tuple[str, ...]
    kind: str | None
    body: str
    file_id: str | None
    ack: bool
    urgent: bool
    send_at: datetime | None
    status: str
    created_at: datetime
    confirmed_at: datetime | None
    starts_at: datetime | None
    total: int
    progress_message: int | None
    cancelled_at: datetime | None
    finished_at: datetime | None
    reminded_at: datetime | None


@dataclass(frozen=True)
class Figures:
    """A broadcast's messages by state, from its outbox rows."""

    total: int
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    withdrawn: int = 0
    pending: int = 0


@dataclass(frozen=True)
class Audience:
    by_role: dict[str, int]  # people per role (a person with two roles counts in both)
    total: int               # distinct people


@dataclass(frozen=True)
class Acks:
    total: int
    acked: int
    missing: list[str]  # the names of those who have not tapped 收到
    reminded: bool


def _dt(value: str | None) -> datetime | None:
    return from_db(value) if value else None


def _broadcast(row: Any) -> Broadcast:
    return Broadcast(
        id=row["id"], sender_id=row["sender_id"], org_id=row["org_id"], org_name=row["org_name"],
        below=bool(row["below"]), roles=tuple(r for r in ROLES if r in row["roles"].split(",")),
        kind=row["kind"], body=row["body"], file_id=row["file_id"], ack=bool(row["ack"]),
        urgent=bool(row["urgent"]), send_at=_dt(row["send_at"]), status=row["status"],
        created_at=from_db(row["created_at"]), confirmed_at=_dt(row["confirmed_at"]),
        starts_at=_dt(row["starts_at"]), total=row["total"], progress_message=row["progress_message"],
        cancelled_at=_dt(row["cancelled_at"]), finished_at=_dt(row["finished_at"]),
        reminded_at=_dt(row["reminded_at"]))


SELECT = "SELECT b.*, o.name AS org_name FROM broadcasts b JOIN orgs o ON o.id = b.org_id"
# The org, and with :below every org under it.
SCOPE = ("WITH RECURSIVE scope(id) AS (SELECT CAST(:org AS BIGINT) UNION SELECT o.id FROM orgs o JOIN scope"
         " ON o.parent_id = scope.id WHERE :below = 1)")


class BroadcastService:
    def __init__(self, core: Infra) -> None:
        self.core = core
        self.db = core.db
        self.clock = core.clock
        self.outbox = core.outbox
        self.orgs = core.orgs
        self.t = core.t
        self.fmt = core.formatter
        self.tz = core.settings.tz
        self.default_locale = core.settings.locale

    # --- rights -----------------------------------------------------------------------------
    async def reach(self, actor: Actor, org_id: int, tx: Tx | None = None) -> bool | None:
        """Whether the actor may broadcast to the org: True with every org below it (organisers at
        or above it, admins), False for the org alone (its secretaries), None not at all."""
        if is_system(actor) or not isinstance(actor, int):
            return None
        if await self.orgs.can_manage(actor, org_id, tx):
            return True
        row = await (tx or self.db).fetchone(
            "SELECT 1 FROM roles WHERE person_id = ? AND org_id = ? AND role = 'secretary'", (actor, org_id))
        return False if row is not None else None

    async def orgs_for(self, actor: Actor) -> list[Org]:
        """Where the actor may broadcast: the orgs of their organiser and secretary roles (an org
        inside another one listed is left out), every root for an admin."""
        if not isinstance(actor, int):
            return []
        if self.orgs.is_admin(actor):
            return await self.orgs.roots()
        return await self.orgs.scope_roots(actor)

    async def draft(self, actor: Actor, broadcast_id: int, tx: Tx | None = None) -> Broadcast:
        """The actor's own draft (still a draft), with their right to the org checked again."""
        b = await self.get(broadcast_id, tx)
        if b.sender_id != actor or await self.reach(actor, b.org_id, tx) is None:
            raise NotAllowed("broadcast")
        if b.status != "draft":
            raise Refused("broadcast.error.already_sent")
        return b

    async def _own(self, actor: Actor, broadcast_id: int, still_leads: bool = True) -> Broadcast:
        """A broadcast its sender (or an admin) may look at or stop. Names of recipients are for a
        sender who still leads there (`still_leads`); stopping one's own broadcast is always allowed."""
        b = await self.get(broadcast_id)
        if not isinstance(actor, int) or (b.sender_id != actor and not self.orgs.is_admin(actor)):
            raise NotAllowed("broadcast")
        if still_leads and await self.reach(actor, b.org_id) is None:
            raise NotAllowed("broadcast")
        return b

    # --- reading ----------------------------------------------------------------------------
    async def get(self, broadcast_id: int, tx: Tx | None = None) -> Broadcast:
        row = await (tx or self.db).fetchone(f"{SELECT} WHERE b.id = ?", (broadcast_id,))
        if row is None:
            raise NotFound("broadcast")
        return _broadcast(row)

    async def audience(self, b: Broadcast, tx: Tx | None = None) -> Audience:
        """How many people each role reaches in the broadcast's orgs, and how many the chosen
        roles reach together (the sender is never among them)."""
        src = tx or self.db
        params = {"org": b.org_id, "below": int(b.below), "sender": b.sender_id}
        # Counted, not listed (migration 027): a person who holds one role in one org is a count kept
        # per org and role; only the roles of people with several (role_repeats) are read, each
        # person counted once in place of their rows. A city's count no longer reads its 66,000 residents.
        marks = ",".join(f"'{r}'" for r in b.roles) or "NULL"  # from ROLES only
        in_scope = "org_id IN (SELECT id FROM scope)"
        rows = await src.fetchall(
            f"{SCOPE} SELECT 'rows', role, SUM(n) FROM role_counts WHERE {in_scope} GROUP BY role"
            f" UNION ALL SELECT 'repeats', role, COUNT(*) - COUNT(DISTINCT person_id) FROM role_repeats"
            f"  WHERE {in_scope} GROUP BY role"
            f" UNION ALL SELECT 'sender', role, 1 FROM roles WHERE person_id = :sender AND {in_scope}"
            f" UNION ALL SELECT 'repeats', '*', COUNT(*) - COUNT(DISTINCT person_id) FROM role_repeats"
            f"  WHERE {in_scope} AND role IN ({marks})", params)
        held = {(kind, role): int(n or 0) for kind, role, n in rows if kind != "sender"}
        sender = {role for kind, role, _ in rows if kind == "sender"}  # the sender is never counted
        by_role = {role: held.get(("rows", role), 0) - held.get(("repeats", role), 0) - (role in sender)
                   for role in ROLES}
        total = (sum(held.get(("rows", role), 0) for role in b.roles) - held.get(("repeats", "*"), 0)
                 - bool(sender & set(b.roles)))
        return Audience(by_role, total)

    async def figures(self, b: Broadcast, tx: Tx | None = None) -> Figures:
        rows = await (tx or self.db).fetchall(
            "SELECT status, COUNT(*) FROM outbox WHERE purpose = ? AND subject_id = ? GROUP BY status",
            (PURPOSE, b.id))
        n = {r[0]: r[1] for r in rows}
        # A recipient who chose the daily digest (bot/services/digests.py) has it held for that
        # digest ('digest', then 'digested'): delivered their way, so it counts as sent.
        sent = n.get("sent", 0) + n.get("digest", 0) + n.get("digested", 0)
        return Figures(total=b.total, sent=sent, blocked=n.get("blocked", 0),
                       failed=n.get("failed", 0), withdrawn=n.get("cancelled", 0), pending=n.get("pending", 0))

    async def eta(self, b: Broadcast, figures: Figures) -> timedelta:
        """Time left at the rate seen so far (Telegram's 30 a second before there is one)."""
        row = await self.db.fetchone(
            "SELECT MIN(sent_at), MAX(sent_at) FROM outbox WHERE purpose = ? AND subject_id = ? AND status = 'sent'",
            (PURPOSE, b.id))
        rate = TELEGRAM_RATE
        if row is not None and row[0] and row[1]:
            span = (from_db(row[1]) - from_db(row[0])).total_seconds()
            if span >= 2.0 and figures.sent > 1:
                rate = min(TELEGRAM_RATE, (figures.sent - 1) / span)
        return timedelta(seconds=figures.pending / rate)

    def planned_start(self, b: Broadcast) -> tuple[datetime, bool]:
        """When its messages fall due, and whether quiet hours moved them."""
        moment = max(b.send_at or self.clock.now(), self.clock.now())
        if b.urgent or not in_quiet_hours(moment, self.tz):
            return moment, False
        return after_quiet(moment, self.tz), True

    # --- the draft --------------------------------------------------------------------------
    async def start(self, actor: Actor, org_id: int) -> Broadcast:
        """A new draft for the org, to the members by default."""
        if await self.orgs.get(org_id) is None:
            raise NotFound("org")
        below = await self.reach(actor, org_id)
        if below is None:
            raise NotAllowed("broadcast")
        assert isinstance(actor, int)
        async with self.db.transaction() as tx:
            # Older drafts of this sender are dropped: their buttons become stale.
            await tx.execute("UPDATE broadcasts SET status = 'dropped' WHERE sender_id = ? AND status = 'draft'",
                             (actor,))
            new_id = await tx.insert(
                "INSERT INTO broadcasts (sender_id, org_id, below, roles, created_at) VALUES (?, ?, ?, 'member', ?)",
                (actor, org_id, int(below), to_db(self.clock.now())))
        return await self.get(new_id)

    async def _update(self, actor: Actor, broadcast_id: int, sql: str, params: tuple[Any, ...]) -> Broadcast:
        async with self.db.transaction() as tx:
            await self.draft(actor, broadcast_id, tx)
            await tx.execute(f"UPDATE broadcasts SET {sql} WHERE id = ?", (*params, broadcast_id))
        return await self.get(broadcast_id)

    async def drop(self, actor: Actor, broadcast_id: int) -> None:
        """The sender gives up the draft (nothing was sent)."""
        await self._update(actor, broadcast_id, "status = 'dropped'", ())

    async def toggle_role(self, actor: Actor, broadcast_id: int, role: str) -> Broadcast:
        if role not in ROLES:
            raise ValueError(role)
        b = await self.draft(actor, broadcast_id)
        roles = set(b.roles) ^ {role}
        return await self._update(actor, broadcast_id, "roles = ?", (",".join(r for r in ROLES if r in roles),))

    async def toggle_ack(self, actor: Actor, broadcast_id: int) -> Broadcast:
        return await self._update(actor, broadcast_id, "ack = 1 - ack", ())

    async def toggle_urgent(self, actor: Actor, broadcast_id: int) -> Broadcast:
        return await self._update(actor, broadcast_id, "urgent = 1 - urgent", ())

    async def set_time(self, actor: Actor, broadcast_id: int, when: datetime | None) -> Broadcast:
        """Send now (None) or at `when`, which must be ahead and within 30 days."""
        if when is not None:
            now = self.clock.now()
            if when <= now:
                raise Refused("broadcast.error.time_past")
            if when > now + MAX_AHEAD:
                raise Refused("broadcast.error.time_far")
        return await self._update(actor, broadcast_id, "send_at = ?", (to_db(when) if when else None,))

    async def set_content(self, actor: Actor, broadcast_id: int, kind: str, body: str,
                          file_id: str | None = None) -> Broadcast:
        """Text, or a photo, document or voice note (by Telegram file id) with an optional caption."""
        if kind not in KINDS or (kind != "text") != bool(file_id):
            raise ValueError(kind)
        body = body.strip()
        if kind == "text" and not body:
            raise Refused("broadcast.error.empty")
        b = await self.draft(actor, broadcast_id)
        room = (MAX_TEXT if kind == "text" else MAX_CAPTION) - telegram_length(self.header(b))
        if telegram_length(body) > room:
            raise Refused("broadcast.error.too_long", limit=room, length=telegram_length(body))
        return await self._update(actor, broadcast_id, "kind = ?, body = ?, file_id = ?", (kind, body, file_id))

    def header(self, b: Broadcast) -> str:
        """The first line every recipient sees: who sends it (the same in every language)."""
        return f"📢 {b.org_name}\n\n"

    def message(self, b: Broadcast, lang: str, broadcast_id: int | None = None) -> tuple[str, dict[str, Any]]:
        """(method, payload without chat_id): exactly what a recipient in `lang` gets; the preview
        is the same message."""
        assert b.kind is not None
        text = self.header(b) + b.body
        payload: dict[str, Any] = {"text": text} if b.kind == "text" else {b.kind: b.file_id, "caption": text}
        if b.ack:
            button = Button(self.t(lang, "broadcast.ack.button"), BC_ACK(broadcast_id or b.id))
            payload["reply_markup"] = inline_keyboard([[button]])
        return METHODS[b.kind], payload

    async def preview(self, actor: Actor, broadcast_id: int, lang: str) -> tuple[str, dict[str, Any]]:
        b = await self.draft(actor, broadcast_id)
        if b.kind is None:
            raise Refused("broadcast.error.no_content")
        return self.message(b, lang)

    # --- sending ----------------------------------------------------------------------------
    async def big_today(self, sender_id: int, tx: Tx | None = None) -> int:
        """Big broadcasts the sender confirmed today (local day)."""
        local = self.clock.now().astimezone(self.tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return await (tx or self.db).fetchval(
            "SELECT COUNT(*) FROM broadcasts WHERE sender_id = ? AND total > ? AND confirmed_at >= ?"
            " AND status IN ('queued', 'cancelled', 'done')", (sender_id, BIG, to_db(midnight))) or 0

    async def confirm(self, actor: Actor, broadcast_id: int) -> Broadcast:
        """Queue one message per recipient, in one transaction with the record."""
        async with self.db.transaction() as tx:
            b = await self.draft(actor, broadcast_id, tx)
            if b.kind is None:
                raise Refused("broadcast.error.no_content")
            audience = await self.audience(b, tx)
            if audience.total == 0:
                raise Refused("broadcast.error.nobody")
            if audience.total > BIG and await self.big_today(b.sender_id, tx) >= BIG_PER_DAY:
                raise Refused("broadcast.error.daily_limit", limit=BIG_PER_DAY, big=BIG)
            starts, _ = self.planned_start(b)
            marks = ",".join(f"'{r}'" for r in b.roles)
            rows = await tx.fetchall(
                f"{SCOPE} SELECT DISTINCT p.telegram_id, p.language, p.tg_language_code FROM roles r"
                " JOIN people p ON p.telegram_id = r.person_id WHERE r.org_id IN (SELECT id FROM scope)"
                f" AND r.role IN ({marks}) AND r.person_id != :sender ORDER BY p.telegram_id",
                {"org": b.org_id, "below": int(b.below), "sender": b.sender_id})
            await tx.executemany("INSERT INTO broadcast_recipients (broadcast_id, person_id) VALUES (?, ?)",
                                 [(b.id, r[0]) for r in rows])
            payloads = {lang: self.message(b, lang) for lang in self._langs()}
            for person, chosen, code in rows:
                method, payload = payloads[language_for(chosen, code, self.default_locale)]
                await self.outbox.enqueue(
                    tx, key=f"{key_prefix(b.id)}{person}", chat_id=person, method=method,
                    payload={"chat_id": person, **payload}, not_before=starts, purpose=PURPOSE,
                    subject_id=b.id, priority=Priority.BULK)
            now = to_db(self.clock.now())
            await tx.execute(
                "UPDATE broadcasts SET status = 'queued', confirmed_at = ?, starts_at = ?, total = ?,"
                " progress_at = ? WHERE id = ?", (now, to_db(starts), len(rows), now, b.id))
        return await self.get(broadcast_id)

    def _langs(self) -> list[str]:
        return list(SUPPORTED_LOCALES)

    async def set_progress_message(self, actor: Actor, broadcast_id: int, message_id: int) -> None:
        """The sender's message that shows the progress (edited in place from now on)."""
        await self._own(actor, broadcast_id)
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE broadcasts SET progress_message = ? WHERE id = ?", (message_id, broadcast_id))

    async def cancel(self, actor: Actor, broadcast_id: int) -> int:
        """Withdraw every message not sent yet (its sender or an admin); returns how many."""
        b = await self._own(actor, broadcast_id, still_leads=False)
        if b.status != "queued":
            raise Refused("broadcast.error.not_running")
        async with self.db.transaction() as tx:
            withdrawn = await self.outbox.cancel(tx, key_prefix=key_prefix(b.id))
            await tx.execute("UPDATE broadcasts SET status = 'cancelled', cancelled_at = ? WHERE id = ?",
                             (to_db(self.clock.now()), b.id))
        return withdrawn

    # --- progress ---------------------------------------------------------------------------
    async def tick(self, actor: Actor) -> int:
        """Edit each running broadcast's progress message (at most every 3 s), and give the final
        figures once nothing is left to send. Returns how many messages it queued."""
        if not is_system(actor):
            raise NotAllowed("broadcast tick")
        now = self.clock.now()
        rows = await self.db.fetchall(
            f"{SELECT} WHERE b.status IN ('queued', 'cancelled') AND b.finished_at IS NULL"
            " AND (b.progress_at IS NULL OR b.progress_at <= ?)", (to_db(now - PROGRESS_EVERY),))
        queued = 0
        for row in rows:
            queued += await self._progress(_broadcast(row), now)
        return queued

    async def _progress(self, b: Broadcast, now: datetime) -> int:
        figures = await self.figures(b)
        done = figures.pending == 0 and (b.cancelled_at is None or now - b.cancelled_at >= PROGRESS_EVERY)
        if not done and b.starts_at is not None and b.starts_at > now:
            return 0  # waiting for its time: the message says when
        lang = await self.core.people.language(b.sender_id)
        text, buttons = await self.progress_text(b, figures, lang, final=done)
        async with self.db.transaction() as tx:
            if done:
                await tx.execute(
                    "UPDATE broadcasts SET finished_at = ?, status = CASE status WHEN 'queued' THEN 'done'"
                    " ELSE status END, sent = ?, blocked = ?, failed = ?, withdrawn = ? WHERE id = ?",
                    (to_db(now), figures.sent, figures.blocked, figures.failed, figures.withdrawn, b.id))
            await tx.execute("UPDATE broadcasts SET progress_at = ?, progress_edits = progress_edits + 1"
                             " WHERE id = ?", (to_db(now), b.id))
            edits = await tx.fetchval("SELECT progress_edits FROM broadcasts WHERE id = ?", (b.id,))
            if b.progress_message is None:
                return 0
            payload: dict[str, Any] = {"chat_id": b.sender_id, "message_id": b.progress_message, "text": text}
            if buttons:
                payload["reply_markup"] = inline_keyboard(buttons)
            # NORMAL, not EDIT: the sender watches it, and it must not wait behind the bulk rows.
            await self.outbox.enqueue(tx, key=f"bcp:{b.id}:{edits}", chat_id=b.sender_id,
                                      method="editMessageText", payload=payload, purpose=PROGRESS,
                                      subject_id=b.id, priority=Priority.NORMAL)
        return 1

    async def progress_text(self, b: Broadcast, figures: Figures, lang: str,
                            final: bool = False) -> tuple[str, list[list[Button]]]:
        """The sender's progress message: figures, time left, and 停止 while it runs."""
        t = self.t
        values = dict(org=b.org_name, sent=figures.sent, total=figures.total, blocked=figures.blocked,
                      failed=figures.failed, withdrawn=figures.withdrawn)
        buttons: list[list[Button]] = []
        if final:
            key = "broadcast.progress.cancelled" if b.cancelled_at else "broadcast.progress.done"
            text = t(lang, key, **values)
            if b.ack:
                buttons.append([Button(t(lang, "broadcast.acks.button"), BC_ACKS(b.id))])
            return text, buttons
        if b.cancelled_at is not None:
            return t(lang, "broadcast.progress.stopping", **values), buttons
        now = self.clock.now()
        if b.starts_at is not None and b.starts_at > now:
            text = t(lang, "broadcast.progress.waiting", when=self.fmt.moment(lang, b.starts_at, now), **values)
        else:
            eta = await self.eta(b, figures)
            text = t(lang, "broadcast.progress.running", eta=self.duration(lang, eta), **values)
        buttons.append([Button(t(lang, "broadcast.progress.stop"), BC_STOP(b.id))])
        return text, buttons

    def duration(self, lang: str, left: timedelta) -> str:
        seconds = int(left.total_seconds() + 0.999)
        if seconds < 60:
            return self.fmt.count(lang, "broadcast.seconds", max(seconds, 1))
        return self.fmt.count(lang, "broadcast.minutes", (seconds + 59) // 60)

    # --- 收到 ---------------------------------------------------------------------------------
    async def ack(self, actor: Actor, broadcast_id: int) -> bool:
        """A recipient taps 收到; False when they had already."""
        b = await self.get(broadcast_id)
        if b.status == "draft":
            raise Refused("broadcast.ack.preview")
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT acked_at FROM broadcast_recipients WHERE broadcast_id = ? AND person_id = ?",
                (b.id, actor if isinstance(actor, int) else None))
            if row is None:
                raise NotAllowed("not a recipient")
            if row[0] is not None:
                return False
            await tx.execute("UPDATE broadcast_recipients SET acked_at = ? WHERE broadcast_id = ? AND person_id = ?",
                             (to_db(self.clock.now()), b.id, actor))
        return True

    async def acks(self, actor: Actor, broadcast_id: int) -> Acks:
        b = await self._own(actor, broadcast_id)
        if not b.ack:
            raise Refused("broadcast.error.no_ack")
        rows = await self.db.fetchall(
            "SELECT r.acked_at, p.name, p.username, r.person_id FROM broadcast_recipients r"
            " LEFT JOIN people p ON p.telegram_id = r.person_id WHERE r.broadcast_id = ? ORDER BY p.name, r.person_id",
            (b.id,))
        missing = [r[1] or r[2] or str(r[3]) for r in rows if r[0] is None]
        return Acks(total=len(rows), acked=len(rows) - len(missing), missing=missing,
                    reminded=b.reminded_at is not None)

    async def remind(self, actor: Actor, broadcast_id: int) -> int:
        """Once: remind those who have not tapped 收到 (the sender only). Returns how many."""
        b = await self.get(broadcast_id)
        if b.sender_id != actor or await self.reach(actor, b.org_id) is None:
            raise NotAllowed("broadcast")
        if not b.ack or b.status == "draft":
            raise Refused("broadcast.error.no_ack")
        async with self.db.transaction() as tx:
            claimed = await tx.execute("UPDATE broadcasts SET reminded_at = ? WHERE id = ? AND reminded_at IS NULL",
                                       (to_db(self.clock.now()), b.id))
            if claimed.rowcount == 0:
                raise Refused("broadcast.error.reminded")
            rows = await tx.fetchall(
                "SELECT r.person_id, p.language, p.tg_language_code FROM broadcast_recipients r"
                " JOIN people p ON p.telegram_id = r.person_id WHERE r.broadcast_id = ? AND r.acked_at IS NULL"
                " AND EXISTS (SELECT 1 FROM outbox WHERE dedup_key = ? || r.person_id AND status = 'sent')",
                (b.id, key_prefix(b.id)))
            for person, chosen, code in rows:
                lang = language_for(chosen, code, self.default_locale)
                text = self.t(lang, "broadcast.ack.reminder", org=b.org_name, excerpt=excerpt(b.body))
                await self.outbox.enqueue(
                    tx, key=f"bcrem:{b.id}:{person}", chat_id=person, method="sendMessage",
                    payload={"chat_id": person, "text": text, "reply_markup": inline_keyboard(
                        [[Button(self.t(lang, "broadcast.ack.button"), BC_ACK(b.id))]])},
                    purpose=REMINDER, subject_id=b.id, priority=Priority.BULK)
        return len(rows)

    # --- history ----------------------------------------------------------------------------
    async def history(self, actor: Actor, limit: int = 10) -> list[tuple[Broadcast, Figures]]:
        """The actor's own broadcasts, newest first, with their figures."""
        if not isinstance(actor, int):
            return []
        rows = await self.db.fetchall(
            f"{SELECT} WHERE b.sender_id = ? AND b.status IN ('queued', 'cancelled', 'done')"
            " ORDER BY b.confirmed_at DESC, b.id DESC LIMIT ?", (actor, limit))
        out = []
        for row in rows:
            b = _broadcast(row)
            out.append((b, await self.figures(b)))
        return out

    def audience_label(self, b: Broadcast, lang: str) -> str:
        roles = self.fmt.join(lang, [self.t(lang, ROLE_KEYS[r]) for r in b.roles])
        key = "broadcast.audience.below" if b.below else "broadcast.audience.only"
        return self.t(lang, key, org=b.org_name, roles=roles)


def excerpt(body: str, room: int = 40) -> str:
    line = body.strip().splitlines()[0] if body.strip() else ""
    return line if len(line) <= room else line[:room] + "…"


