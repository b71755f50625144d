"""An org's meeting settings: reminder times, required frequencies (quotas) and their checks at
the end of each period, and the committee list."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.callbacks import MEETING_NEW
from bot.clock import from_db, to_db
from bot.database import Tx
from bot.outbox import Button
from bot.services.ledger_period import counted
from bot.services.meeting_base import (
    MeetingBase,
    chunks,
)
from bot.services.meeting_model import (
    DEFAULT_QUOTAS,
    MAX_MESSAGE,
    MAX_OFFSETS,
    MEMBER_ROLES,
    OFFSET_CHOICES,
    QUOTA_HOUR,
    QUOTA_KINDS,
    QUOTA_PERIODS,
    QUOTA_WARN_DAYS,
    MeetingStatus,
    Purpose,
    Refused,
    SettingsView,
    org_group,
)
from bot.services.meeting_text import local_today
from bot.services.meeting_time import (
    after_quiet,
    ends_at_boundary,
    next_boundary,
    period_end,
    period_start,
    previous_boundary,
)
from bot.services.orgs import NotAllowed, NotFound

log = logging.getLogger(__name__)


class SettingsPart(MeetingBase):
    """Reminder times, quotas and their checks, the committee."""

    # --- settings -------------------------------------------------------------------------------
    async def settings_of(self, actor: int, org_id: int) -> SettingsView:
        """The org's reminder times and quotas, for someone who may schedule its meetings; whether
        they may also change its quotas (an organizer strictly above it, or an admin)."""
        if await self.orgs.get(org_id) is None:
            raise NotFound("org")
        if not await self.can_schedule(actor, org_id):
            raise NotAllowed("settings")
        offsets = await self.reminder_offsets(org_id)
        quotas = (await self.effective_quotas())[org_id]
        own = await self.db.fetchval("SELECT 1 FROM meeting_settings WHERE org_id = ?", (org_id,))
        return SettingsView(offsets=offsets, quotas=quotas, own=bool(own),
                            may_set_quotas=await self.can_set_quotas(actor, org_id))

    async def _own_settings(self, tx: Tx, org_id: int) -> tuple[list[int] | None, dict[str, str]]:
        row = await tx.fetchone("SELECT reminder_offsets, quotas FROM meeting_settings WHERE org_id = ?", (org_id,))
        if row is None:
            return None, {}
        return (json.loads(row[0]) if row[0] is not None else None), json.loads(row[1])

    async def _save_settings(self, tx: Tx, actor: int, org_id: int, offsets: list[int] | None,
                             quotas: dict[str, str]) -> None:
        await tx.execute(
            "INSERT INTO meeting_settings (org_id, reminder_offsets, quotas, updated_by, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(org_id) DO UPDATE SET reminder_offsets = excluded.reminder_offsets,"
            " quotas = excluded.quotas, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (org_id, json.dumps(sorted(offsets, reverse=True)) if offsets is not None else None,
             json.dumps(quotas, sort_keys=True), actor, to_db(self.clock.now())))

    async def toggle_offset(self, actor: int, org_id: int, minutes: int) -> list[int]:
        """Turn one reminder time on or off for the org (its secretary or an organizer above).
        Meetings already scheduled keep their reminders; new ones follow the setting."""
        if minutes not in OFFSET_CHOICES:
            raise ValueError(minutes)
        async with self.db.transaction() as tx:
            if not await self.can_schedule(actor, org_id, tx):
                raise NotAllowed("settings")
            current = await self.reminder_offsets(org_id, tx)
            _, quotas = await self._own_settings(tx, org_id)
            if minutes in current:
                current.remove(minutes)
            elif len(current) >= MAX_OFFSETS:
                raise Refused("meeting.error.too_many_offsets", limit=MAX_OFFSETS)
            else:
                current.append(minutes)
            await self._save_settings(tx, actor, org_id, current, quotas)
        return sorted(current, reverse=True)

    async def cycle_quota(self, actor: int, org_id: int, kind: str) -> str:
        """An organizer strictly above the org (or an admin) changes how often it must hold a kind of
        meeting: month → quarter → year → not required → month."""
        if kind not in QUOTA_KINDS:
            raise ValueError(kind)
        async with self.db.transaction() as tx:
            if not await self.can_set_quotas(actor, org_id, tx):
                raise NotAllowed("settings")
            offsets, quotas = await self._own_settings(tx, org_id)
            # The reader sees what is committed, and we hold the write lock: nobody changes it meanwhile.
            current = (await self.effective_quotas())[org_id].get(kind, "none")
            new = QUOTA_PERIODS[(QUOTA_PERIODS.index(current) + 1) % len(QUOTA_PERIODS)]
            quotas[kind] = new
            await self._save_settings(tx, actor, org_id, offsets, quotas)
        return new

    async def reset_settings(self, actor: int, org_id: int) -> None:
        """Back to the inherited settings: everything for an organizer strictly above (or an admin),
        only the reminder times for anyone else who may schedule (the quotas set from above stay)."""
        async with self.db.transaction() as tx:
            if await self.can_set_quotas(actor, org_id, tx):
                await tx.execute("DELETE FROM meeting_settings WHERE org_id = ?", (org_id,))
                return
            if not await self.can_schedule(actor, org_id, tx):
                raise NotAllowed("settings")
            _, quotas = await self._own_settings(tx, org_id)
            await self._save_settings(tx, actor, org_id, None, quotas)

    async def effective_quotas(self) -> dict[int, dict[str, str]]:
        """Every org's required frequencies: the defaults for its kind of org, then the settings of
        its ancestors from the top down, then its own. An ancestor's setting reaches only the kinds
        that apply to an org below (a township's "theme day: quarterly" does not make a party group
        hold theme days); the org's own settings may add any kind."""
        orgs = {r["id"]: dict(r) for r in await self.db.fetchall("SELECT id, parent_id, kind FROM orgs")}
        own = {r["org_id"]: json.loads(r["quotas"]) for r in await self.db.fetchall(
            "SELECT org_id, quotas FROM meeting_settings")}
        out: dict[int, dict[str, str]] = {}

        def resolve(org_id: int) -> dict[str, str]:
            if org_id in out:
                return out[org_id]
            org = orgs[org_id]
            chain = [org_id]
            parent = org["parent_id"]
            while parent is not None and parent in orgs and len(chain) < 64:
                chain.append(parent)
                parent = orgs[parent]["parent_id"]
            group = org_group(org["kind"])
            quotas = dict(DEFAULT_QUOTAS.get(group or "", {}))
            for ancestor in reversed(chain[1:]):
                for kind, period in own.get(ancestor, {}).items():
                    if kind in quotas:
                        quotas[kind] = period
            quotas.update(own.get(org_id, {}))
            out[org_id] = {k: v for k, v in quotas.items() if k in QUOTA_KINDS}
            return out[org_id]

        for org_id in orgs:
            resolve(org_id)
        return out

    # --- committee ------------------------------------------------------------------------------
    async def committee(self, actor: int, org_id: int) -> list[tuple[int, str, str | None]]:
        """(person, name, title) for everyone who may be on the org's committee: secretaries
        ('secretary'), then the org's members with their title ('deputy', 'member' or None)."""
        if not await self.can_schedule(actor, org_id):
            raise NotAllowed("committee")
        titles = {r[0]: r[1] for r in await self.db.fetchall(
            "SELECT person_id, title FROM meeting_committee WHERE org_id = ?", (org_id,))}
        out = []
        for pid, name, roles in await self.orgs.people_in(actor, org_id):
            if "secretary" in roles:
                out.append((pid, name, "secretary"))
            elif set(roles) & set(MEMBER_ROLES):
                out.append((pid, name, titles.get(pid)))
        out.sort(key=lambda p: ({"secretary": 0, "deputy": 1, "member": 2}.get(p[2] or "", 3), p[1]))
        return out

    async def cycle_committee(self, actor: int, org_id: int, person_id: int) -> str | None:
        """Not on the committee → 委员 → 副书记 → not on it (the secretary keeps the list)."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            if not await self.can_schedule(actor, org_id, tx):
                raise NotAllowed("committee")
            roles = {r[0] for r in await tx.fetchall("SELECT role FROM roles WHERE org_id = ? AND person_id = ?",
                                                     (org_id, person_id))}
            if "secretary" in roles:
                raise Refused("meeting.error.secretary_always")
            if not roles & set(MEMBER_ROLES):
                raise Refused("meeting.error.not_member")
            title = await tx.fetchval("SELECT title FROM meeting_committee WHERE org_id = ? AND person_id = ?",
                                      (org_id, person_id))
            new = {None: "member", "member": "deputy", "deputy": None}[title]
            if new is None:
                await tx.execute("DELETE FROM meeting_committee WHERE org_id = ? AND person_id = ?",
                                 (org_id, person_id))
            else:
                await tx.execute(
                    "INSERT INTO meeting_committee (org_id, person_id, title, added_by, added_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT(org_id, person_id) DO UPDATE SET title = excluded.title",
                    (org_id, person_id, new, actor, to_db(now)))
        return new

    # --- quotas -----------------------------------------------------------------------------------
    async def _check_quotas(self, now: datetime) -> int:
        """Seven days before a period ends (09:00), tell each secretary what their org has still not
        held; when it has ended (09:00 on the first day after), tell the organizers above what was
        missed. Each org and boundary is checked once; a check missed while the bot was down is made
        when it comes back (for the latest boundary)."""
        today = local_today(now, self.tz)
        sent = 0
        coming = next_boundary(today)
        if now >= datetime.combine(coming - timedelta(days=QUOTA_WARN_DAYS), QUOTA_HOUR, tzinfo=self.tz):
            sent += await self._quota_stage(now, coming, "due")
        passed = previous_boundary(today)
        if now >= datetime.combine(passed, QUOTA_HOUR, tzinfo=self.tz):
            sent += await self._quota_stage(now, passed, "missed")
        return sent

    async def _quota_stage(self, now: datetime, boundary: date, stage: str) -> int:
        """One stage of the quota check for every org not yet checked at this boundary. It reads
        everything once and then walks the orgs in one transaction, so that a county of thousands of
        orgs is checked in a few queries."""
        # Orgs that existed before the warning (a branch set up in the last week is not blamed).
        cutoff = to_db(datetime.combine(boundary - timedelta(days=QUOTA_WARN_DAYS), time(0, 0), tzinfo=self.tz))
        pending = [dict(r) for r in await self.db.fetchall(
            "SELECT o.id, o.name, o.kind, o.parent_id FROM orgs o WHERE o.created_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM meeting_quota_checks c WHERE c.org_id = o.id AND c.boundary = ?"
            " AND c.stage = ?) ORDER BY o.id", (cutoff, boundary.isoformat(), stage))]
        if not pending:
            return 0
        quotas = await self.effective_quotas()
        populated = {r[0] for r in await self.db.fetchall(
            "SELECT DISTINCT org_id FROM roles WHERE role IN ('member', 'secretary', 'organizer')")}
        in_use_since = await self.in_use_since_by_org()
        parents = {r[0]: r[1] for r in await self.db.fetchall("SELECT id, parent_id FROM orgs")}
        earliest = min(period_start(p, boundary - timedelta(days=1)) for p in ("month", "quarter", "year"))
        window_start = datetime.combine(earliest, time(0, 0), tzinfo=self.tz)
        window_end = datetime.combine(boundary, time(0, 0), tzinfo=self.tz)
        meetings = [dict(r) for r in await self.db.fetchall(
            "SELECT id, org_id, include_below, kind, status, starts_at, lecturer_id FROM meetings"
            " WHERE status IN ('held', 'scheduled') AND starts_at >= ? AND starts_at < ?",
            (to_db(window_start), to_db(window_end)))]
        secretaries: dict[int, set[int]] = {}
        for row in await self.db.fetchall("SELECT org_id, person_id FROM roles WHERE role = 'secretary'"):
            secretaries.setdefault(row[0], set()).add(row[1])

        def ancestors(org_id: int) -> list[int]:
            chain = [org_id]
            while parents.get(chain[-1]) is not None and len(chain) < 64:
                chain.append(parents[chain[-1]])  # type: ignore[arg-type]
            return chain

        missed_by_org: dict[int, list[tuple[str, str, date, list[datetime]]]] = {}
        async with self.db.transaction() as tx:
            for org in pending:
                chain = ancestors(org["id"])
                missing = (self._missing_quotas(now, boundary, org["id"], chain, quotas.get(org["id"], {}), meetings,
                                                secretaries, in_use_since.get(org["id"]))
                           if org["id"] in populated else [])
                await tx.execute(
                    "INSERT INTO meeting_quota_checks (org_id, boundary, stage, missing, done_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (org["id"], boundary.isoformat(), stage, json.dumps([m[:2] for m in missing]), to_db(now)))
                if missing:
                    missed_by_org[org["id"]] = missing
            if stage == "due":
                return await self._tell_secretaries(tx, now, boundary, pending, missed_by_org)
            return await self._tell_organizers(tx, now, boundary, pending, missed_by_org, parents)

    def _missing_quotas(self, now: datetime, boundary: date, org_id: int, chain: list[int], quotas: dict[str, str],
                        meetings: list[dict[str, Any]], secretaries: dict[int, set[int]], since: date | None,
                        ) -> list[tuple[str, str, date, list[datetime]]]:
        """One org's quotas whose period ends at this boundary with no such meeting held:
        (kind, period, period start, the planned meetings still to come). A period the ledger
        calls 不适用 (the bot was in use for less than half of it) is not a miss."""
        missing: list[tuple[str, str, date, list[datetime]]] = []
        for kind, period in sorted(quotas.items()):
            if period == "none" or not ends_at_boundary(period, boundary):
                continue
            start = period_start(period, boundary - timedelta(days=1))
            if not counted(start, period_end(period, start), since):
                continue
            lo = datetime.combine(start, time(0, 0), tzinfo=self.tz)
            # A meeting counts for its own org, and for the orgs below it when it includes them.
            relevant = [m for m in meetings
                        if (m["org_id"] == org_id or (bool(m["include_below"]) and m["org_id"] in chain))
                        and from_db(m["starts_at"]) >= lo and self._quota_match(m, kind, org_id, secretaries)]
            if any(m["status"] == MeetingStatus.HELD for m in relevant):
                continue
            planned = sorted(from_db(m["starts_at"]) for m in relevant
                             if m["status"] == MeetingStatus.SCHEDULED and from_db(m["starts_at"]) > now)
            missing.append((kind, period, start, planned))
        return missing

    @staticmethod
    def _quota_match(meeting: dict[str, Any], kind: str, org_id: int, secretaries: dict[int, set[int]]) -> bool:
        if kind == "secretary_lecture":
            return meeting["kind"] == "party_lecture" and meeting["lecturer_id"] in secretaries.get(org_id, set())
        return bool(meeting["kind"] == kind)

    def _missing_lines(self, lang: str, missing: list[tuple[str, str, date, list[datetime]]]) -> list[str]:
        lines = []
        this_period = {"month": "meeting.period.this_month", "quarter": "meeting.period.this_quarter",
                       "year": "meeting.period.this_year"}
        for kind, period, _, planned in missing:
            label = self.t(lang, this_period[period])
            if kind == "secretary_lecture":
                line = self.t(lang, "meeting.quota.line_secretary_lecture", period=label)
            else:
                line = self.t(lang, "meeting.quota.line", period=label, kind=self.text.kind(lang, kind))
            if planned:
                line += self.t(lang, "meeting.quota.planned",
                               dates=self.fmt.join(lang, [self.text.short_day(lang, local_today(p, self.tz))
                                                         for p in planned]))
            lines.append(line)
        return lines

    async def _tell_secretaries(self, tx: Tx, now: datetime, boundary: date, orgs: list[dict[str, Any]],
                                missed: dict[int, list[tuple[str, str, date, list[datetime]]]]) -> int:
        sent = 0
        names = {o["id"]: o["name"] for o in orgs}
        at = after_quiet(now, self.tz)
        for org_id, missing in missed.items():
            people = await self._secretaries_of(tx, org_id)
            langs = await self._langs(tx, people)
            last_day = boundary - timedelta(days=1)
            for pid in people:
                lang = langs[pid]
                text = "\n".join([self.t(lang, "meeting.quota.due_title", org=names[org_id]),
                                  *self._missing_lines(lang, missing),
                                  self.t(lang, "meeting.quota.due_footer", deadline=self.text.day(lang, last_day))])
                buttons = [[Button(self.t(lang, "meeting.button.new"), MEETING_NEW())]]
                if await self.outbox.send_text(tx, key=f"mq:{boundary.isoformat()}:s:{org_id}:{pid}", chat_id=pid,
                                               purpose=Purpose.QUOTA_DUE, subject_id=org_id,
                                               text=text, buttons=buttons, not_before=at):
                    sent += 1
        return sent

    async def _tell_organizers(self, tx: Tx, now: datetime, boundary: date, orgs: list[dict[str, Any]],
                               missed: dict[int, list[tuple[str, str, date, list[datetime]]]],
                               parents: dict[int, int | None]) -> int:
        """One digest per organizer: the nearest org above each late org that has organizers."""
        organizers: dict[int, list[int]] = {}
        for row in await tx.fetchall("SELECT org_id, person_id FROM roles WHERE role = 'organizer' ORDER BY person_id"):
            organizers.setdefault(row[0], []).append(row[1])
        names = {r[0]: r[1] for r in await tx.fetchall("SELECT id, name FROM orgs")}
        digest: dict[int, list[int]] = {}
        for org_id in missed:
            above = parents.get(org_id)
            while above is not None and above not in organizers:
                above = parents.get(above)
            if above is None:
                log.info("quota: nobody above org %s to tell what it missed", org_id)
                continue
            for pid in organizers[above]:
                digest.setdefault(pid, []).append(org_id)
        langs = await self._langs(tx, list(digest))
        at = after_quiet(now, self.tz)
        last_day = boundary - timedelta(days=1)
        sent = 0
        for pid, late in digest.items():
            lang = langs[pid]
            head = self.t(lang, "meeting.quota.missed_title", date=self.text.day(lang, last_day, with_year=True))
            lines = []
            for org_id in late:
                items = self.fmt.join(lang, [
                    self.t(lang, "meeting.quota.missed_item", kind=self.text.kind(lang, kind),
                           period=self.text.period_label(lang, period, start))
                    for kind, period, start, _ in missed[org_id]])
                lines.append(self.t(lang, "meeting.quota.missed_line", org=names.get(org_id, "?"), items=items))
            for part, chunk in enumerate(chunks(head, lines, MAX_MESSAGE)):
                if await self.outbox.send_text(tx, key=f"mq:{boundary.isoformat()}:o:{pid}:{part}", chat_id=pid,
                                               purpose=Purpose.QUOTA_MISSED,
                                               text=chunk, not_before=at):
                    sent += 1
        return sent

