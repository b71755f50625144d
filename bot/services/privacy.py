"""The rights of the person (PIPL): an export of everything stored about them, and forgetting them.

Export: the person's profile, roles and their history, join requests, the tickets they submitted
(anonymous ones too: they are the person's own) with what was said on them, meetings they were
invited to with their answers, deliberation opinions and supports, ballots (of a secret ballot only
that they voted: the ballot box keeps no link to a choice, and this never adds one), broadcasts
they sent or received, and their settings. Other people appear in it by no name and no id.

Forget: their name and username are removed, their tickets are stripped as retention strips a
closed ticket (an open one is withdrawn first), their opinions become anonymous and masked, messages
not yet sent to them are cancelled and every message to them or naming them is emptied, kept
messages, flows, open questions and screens of theirs are deleted, and their name is replaced in
every free text. Rows are updated, never deleted where a report counts them: tickets, attendance,
ballots and tallies keep their numbers. The Telegram id stays only in integer columns that make
those counts and keep a vote's integrity (roles, attendance, who has voted).

Who may: the person themselves (/mydata, and forgetting themselves), an admin, the command line.
Each export and forget is recorded in privacy_log with a keyed hash of the person, never the id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bot.actors import Actor, is_system
from bot.clock import to_db
from bot.database import Tx
from bot.infra import Infra
from bot.services import privacy_export
from bot.services.masking import mask_public
from bot.services.orgs import NotAllowed
from bot.services.retention import NOBODY, strip_tickets
from bot.services.tickets import FINAL, Action, Status

PLACEHOLDER = "***"  # what a forgotten name becomes in free text (JSON-safe, like the masks)
EXPORT_FORMAT = 1
# Tables whose text is not about people (or is another person's own name): never rewritten by the
# name scrub. people.name is cleared for the forgotten person alone.
NOT_SCRUBBED = frozenset({"people", "orgs", "meta", "schema_migrations", "calendar_days", "invites",
                          "retention_runs", "privacy_log", "ballot_tallies", "ballot_voters"})
# Per-person working state that goes when it mentions the person (it is nobody's record).
# (table, whose it is, the text that may mention someone, the row's key)
STATE_TABLES = (("flows", "person_id", "data", "person_id"), ("open_questions", "person_id", "data", "id"),
                ("kept_messages", "person_id", "message", "token"), ("screens", "recipient", "data", "id"))


@dataclass(frozen=True)
class ForgetReport:
    tickets_withdrawn: int
    tickets_stripped: int
    outbox_cancelled: int
    outbox_emptied: int
    state_deleted: int
    opinions: int
    texts_scrubbed: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class PrivacyService:
    def __init__(self, core: Infra) -> None:
        self.core = core
        self.db = core.db
        self.clock = core.clock
        self.orgs = core.orgs

    def _by(self, actor: Actor, person_id: int) -> str:
        """Who acts on the person's data: themselves, an admin, or the command line."""
        if is_system(actor):
            return "system"
        if actor == person_id:
            return "self"
        if isinstance(actor, int) and self.orgs.is_admin(actor):
            return "admin"
        raise NotAllowed("personal data")

    async def _log(self, tx: Tx, action: str, person_id: int, by: str, actor: Actor, via: str) -> None:
        key = await tx.fetchval("SELECT value FROM meta WHERE key = 'privacy_key'")  # drawn by migration 020
        subject = hmac.new(bytes.fromhex(key), str(person_id).encode(), hashlib.sha256).hexdigest()
        await tx.execute(
            "INSERT INTO privacy_log (at, action, subject, by_kind, by_admin, via) VALUES (?, ?, ?, ?, ?, ?)",
            (to_db(self.clock.now()), action, subject, by, actor if by == "admin" else None, via))

    async def subject_hash(self, person_id: int) -> str:
        """The hash privacy_log keeps for this person."""
        key = await self.db.fetchval("SELECT value FROM meta WHERE key = 'privacy_key'")
        return hmac.new(bytes.fromhex(key), str(person_id).encode(), hashlib.sha256).hexdigest()

    # --- export -------------------------------------------------------------------------------------
    async def export(self, actor: Actor, person_id: int, via: str = "cli") -> dict[str, Any]:
        """Everything stored about the person, as JSON-ready data; recorded in privacy_log."""
        by = self._by(actor, person_id)
        async with self.db.transaction() as tx:
            data = await privacy_export.collect(tx, person_id)
            await self._log(tx, "export", person_id, by, actor, via)
        return {"format": EXPORT_FORMAT, "exported_at": to_db(self.clock.now()), **data}

    @staticmethod
    def to_json(data: dict[str, Any]) -> bytes:
        return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")

    # --- forget -------------------------------------------------------------------------------------
    async def forget(self, actor: Actor, person_id: int, via: str = "cli") -> ForgetReport:
        """Anonymise the person everywhere, in one transaction (see the module doc)."""
        by = self._by(actor, person_id)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            person = await tx.fetchone("SELECT name, username FROM people WHERE telegram_id = ?", (person_id,))
            names = _names(person)
            withdrawn, stripped = await self._strip_their_tickets(tx, person_id, now)
            cancelled, emptied = await self._outbox(tx, person_id, names)
            state = await self._state(tx, person_id)
            opinions = await self._opinions(tx, person_id)
            await self._attendance(tx, person_id)
            scrubbed = await self._scrub_names(tx, names)
            await tx.execute(
                "UPDATE people SET name = '', username = NULL, language = NULL, tg_language_code = NULL,"
                " updated_at = ? WHERE telegram_id = ?", (to_db(now), person_id))
            await self._log(tx, "forget", person_id, by, actor, via)
        self.core.people.forget(person_id)  # this process's cached name and language
        return ForgetReport(withdrawn, stripped, cancelled, emptied, state, opinions, scrubbed)

    async def _strip_their_tickets(self, tx: Tx, person_id: int, now: datetime) -> tuple[int, int]:
        """An open ticket is withdrawn (nobody is left to answer), then every ticket is stripped."""
        marks = ",".join("?" * len(FINAL))
        open_ids = [r[0] for r in await tx.fetchall(
            f"SELECT id FROM tickets WHERE resident_id = ? AND status NOT IN ({marks})", (person_id, *FINAL))]
        for ticket_id in open_ids:
            await tx.execute("UPDATE tickets SET status = ?, closed_at = ?, next_escalation_at = NULL WHERE id = ?",
                             (Status.WITHDRAWN.value, to_db(now), ticket_id))
            await tx.execute("INSERT INTO ticket_events (ticket_id, at, actor_id, action) VALUES (?, ?, ?, ?)",
                             (ticket_id, to_db(now), person_id, Action.WITHDRAWN.value))
        ids = [r[0] for r in await tx.fetchall("SELECT id FROM tickets WHERE resident_id = ?", (person_id,))]
        done = await strip_tickets(tx, ids, now)
        return len(open_ids), done.tickets

    async def _outbox(self, tx: Tx, person_id: int, names: list[str]) -> tuple[int, int]:
        """Messages to the person: cancelled if not sent, emptied either way. Messages to others that
        name them: a pending one keeps going with the name replaced (unless it carries the id, in a
        button say: then it is cancelled); one already sent is emptied."""
        cur = await tx.execute(
            "UPDATE outbox SET status = 'cancelled' WHERE status IN ('pending', 'digest')"
            " AND (chat_id = ? OR recipient = ?)",
            (person_id, person_id))
        cancelled = cur.rowcount
        cur = await tx.execute(
            "UPDATE outbox SET payload = '{}', chat_id = ?, recipient = NULL, dedup_key = 'forgotten:' || id,"
            " last_error = NULL WHERE chat_id = ? OR recipient = ?", (NOBODY, person_id, person_id))
        emptied = cur.rowcount
        id_word = _id_pattern(person_id)
        for row in await _mentioning(tx, "outbox", "payload", [*names, str(person_id)]):
            payload = row["payload"]
            if not (any(n in payload for n in names) or id_word.search(payload)):
                continue
            replaced = _replace_names(payload, names)
            if row["status"] == "pending" and not id_word.search(replaced):
                await tx.execute("UPDATE outbox SET payload = ? WHERE id = ?", (replaced, row["id"]))
                continue
            cancelled += int(row["status"] == "pending")
            emptied += 1
            await tx.execute(
                "UPDATE outbox SET payload = '{}', dedup_key = 'forgotten:' || id,"
                " status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END WHERE id = ?", (row["id"],))
        return cancelled, emptied

    async def _state(self, tx: Tx, person_id: int) -> int:
        """The person's flows, open questions, kept messages and screens, and anyone's that mention
        them (their id in a flow's data, say) go; and they leave meeting series' extra invitees."""
        deleted = 0
        id_word = _id_pattern(person_id)
        for table, who, data, key in STATE_TABLES:
            cur = await tx.execute(f"DELETE FROM {table} WHERE {who} = ?", (person_id,))
            deleted += cur.rowcount
            for row in await _mentioning(tx, table, data, [str(person_id)]):
                if id_word.search(row[data]):
                    await tx.execute(f"DELETE FROM {table} WHERE {key} = ?", (row[key],))
                    deleted += 1
        await tx.execute("DELETE FROM screens WHERE chat_id = ?", (person_id,))
        # Several instances: their chat's handled updates as Telegram posted them (kept a day).
        await tx.execute("DELETE FROM updates WHERE chat_id = ? AND done_at IS NOT NULL", (person_id,))
        for row in await _mentioning(tx, "meeting_series", "extra_people", [str(person_id)]):
            people = [p for p in json.loads(row["extra_people"]) if p != person_id]
            await tx.execute("UPDATE meeting_series SET extra_people = ? WHERE id = ?",
                             (json.dumps(people), row["id"]))
        return deleted

    async def _opinions(self, tx: Tx, person_id: int) -> int:
        """Their opinions stay (a round's record and counts) but anonymous, masked, without the voice."""
        rows = await tx.fetchall("SELECT id, text FROM delib_opinions WHERE author_id = ?", (person_id,))
        for row in rows:
            await tx.execute("UPDATE delib_opinions SET anonymous = 1, text = ?, chat_id = NULL, message_id = NULL"
                             " WHERE id = ?", (mask_public(row["text"]), row["id"]))
        return len(rows)

    async def _attendance(self, tx: Tx, person_id: int) -> None:
        """Answers and presence stay (the ledger counts them); a leave reason is their own words."""
        for row in await tx.fetchall("SELECT meeting_id, leave_reason FROM meeting_attendees"
                                     " WHERE person_id = ? AND leave_reason IS NOT NULL", (person_id,)):
            await tx.execute("UPDATE meeting_attendees SET leave_reason = ? WHERE meeting_id = ? AND person_id = ?",
                             (mask_public(row["leave_reason"]), row["meeting_id"], person_id))

    async def _scrub_names(self, tx: Tx, names: list[str]) -> int:
        """Replace the person's name and @username in every free text of the database (one pass over
        the text columns: forgetting is rare and done once)."""
        if not names:
            return 0
        changed = 0
        for table, column in await text_columns(tx):
            if table in NOT_SCRUBBED:
                continue
            for name in names:
                cur = await tx.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) WHERE instr("{column}", ?) > 0',
                    (name, PLACEHOLDER, name))
                changed += cur.rowcount
        return changed


def _names(person: Any) -> list[str]:
    """The strings that name the person in free text. A one-character name is left out: replacing
    every 王 in the database would destroy other people's texts."""
    if person is None:
        return []
    found = []
    name = (person["name"] or "").strip()
    if len(name) >= 2:
        found += [name, json.dumps(name)[1:-1]]  # as written, and as JSON with \\u escapes
    if person["username"]:
        found.append(f"@{person['username']}")
    return list(dict.fromkeys(n for n in found if n))


def _id_pattern(person_id: int) -> re.Pattern[str]:
    return re.compile(rf"(?<![\d.]){person_id}(?![\d])")


def _replace_names(payload: str, names: list[str]) -> str:
    for name in names:
        payload = payload.replace(name, PLACEHOLDER)
    return payload


async def _mentioning(tx: Tx, table: str, column: str, needles: list[str]) -> list[Any]:
    if not needles:
        return []
    where = " OR ".join(f"instr({column}, ?) > 0" for _ in needles)
    return await tx.fetchall(f"SELECT * FROM {table} WHERE {where}", needles)


async def text_columns(src: Any) -> list[tuple[str, str]]:
    """(table, column) of every text column of every table (declared TEXT, or JSON kept as text)."""
    tables = [r[0] for r in await src.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    found = []
    for table in tables:
        for col in await src.fetchall(f'PRAGMA table_info("{table}")'):
            if "TEXT" in (col["type"] or "").upper():
                found.append((table, col["name"]))
    return found
