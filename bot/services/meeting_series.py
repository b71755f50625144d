"""Monthly series: the rule, and creating each meeting when it enters its lead window."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.clock import to_db
from bot.database import Database, Tx
from bot.services.meeting_model import (
    Draft,
    Meeting,
    Refused,
    SeriesSpec,
)
from bot.services.meeting_notices import NoticesPart
from bot.services.meeting_text import local_today
from bot.services.meeting_time import (
    Rule,
    after_quiet,
    months_from,
)
from bot.services.orgs import NotAllowed, NotFound

log = logging.getLogger(__name__)


class SeriesPart(NoticesPart):
    """Monthly series."""

    # --- series -------------------------------------------------------------------------------
    async def create_series(self, actor: int, draft: Draft, spec: SeriesSpec) -> tuple[int, list[Meeting]]:
        """A monthly series from the first meeting's date; meetings are created `lead_days` ahead
        (now, if the first one is that close). Returns (series id, meetings created now)."""
        self._check_draft(draft)
        if not 1 <= spec.lead_days <= 60:
            raise ValueError(spec.lead_days)
        now = self.clock.now()
        local = draft.starts_at.astimezone(self.tz)
        async with self.db.transaction() as tx:
            await self._check_create_rights(tx, actor, draft)
            series_id = await tx.insert(
                "INSERT INTO meeting_series (org_id, kind, include_below, rule, day, nth, weekday, local_time,"
                " duration_min, place, topic, lecturer, lecturer_id, extra_people, holiday_shift, lead_days,"
                " first_date, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (draft.org_id, draft.kind, int(draft.include_below), spec.rule.kind, spec.rule.day, spec.rule.nth,
                 spec.rule.weekday, local.strftime("%H:%M"),
                 int((draft.ends_at - draft.starts_at).total_seconds() // 60), draft.place, draft.topic,
                 draft.lecturer, draft.lecturer_id, json.dumps(draft.extra_people), int(spec.holiday_shift),
                 spec.lead_days, local.date().isoformat(), actor, to_db(now)))
            created = await self._generate(tx, now, series_id=series_id, skip=actor)
            meetings = [await self._get(mid, tx) for mid in created]
        return series_id, meetings

    async def _series(self, series_id: int) -> dict[str, Any] | None:
        row = await self.db.fetchone("SELECT * FROM meeting_series WHERE id = ?", (series_id,))
        return dict(row) if row else None

    def series_rule(self, row: dict[str, Any]) -> Rule:
        return Rule(row["rule"], day=row["day"], nth=row["nth"], weekday=row["weekday"])

    def occurrence_date(self, row: dict[str, Any], year: int, month: int) -> tuple[date, date]:
        """(nominal, actual) date of a series' meeting in a month: a day that is not a working day
        moves to the next working day, unless the series keeps it."""
        nominal = self.series_rule(row).nominal(year, month)
        actual = self.calendar.next_working_day(nominal) if row["holiday_shift"] else nominal
        return nominal, actual

    async def next_occurrence(self, actor: int, series_id: int) -> date | None:
        """The next date the series will hold a meeting on (for the confirmation), for someone who
        may schedule its org's meetings."""
        row = await self._series(series_id)
        if row is None or not row["active"]:
            return None
        if not await self.can_schedule(actor, row["org_id"]):
            raise NotAllowed("series")
        now = self.clock.now()
        today = local_today(now, self.tz)
        first = date.fromisoformat(row["first_date"])
        start = max(first, today)
        for year, month in months_from(start.year, start.month, 3):
            nominal, actual = self.occurrence_date(row, year, month)
            if nominal >= first and actual >= today:
                return actual
        return None

    async def stop_series(self, actor: int, series_id: int) -> None:
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT org_id, active FROM meeting_series WHERE id = ?", (series_id,))
            if row is None:
                raise NotFound("series")
            if not await self.can_schedule(actor, row["org_id"], tx):
                raise NotAllowed("series")
            if not row["active"]:
                raise Refused("meeting.error.series_stopped")
            await tx.execute("UPDATE meeting_series SET active = 0, stopped_at = ? WHERE id = ?",
                             (to_db(self.clock.now()), series_id))

    async def _due_occurrences(self, src: Database | Tx, now: datetime,
                               series_id: int | None) -> list[tuple[dict[str, Any], date, date]]:
        """(series, nominal, actual) of every occurrence that should exist by now and does not."""
        sql = "SELECT * FROM meeting_series WHERE active = 1" + (" AND id = ?" if series_id else "")
        rows = await src.fetchall(sql, (series_id,) if series_id else ())
        today = local_today(now, self.tz)
        due = []
        for row in map(dict, rows):
            first = date.fromisoformat(row["first_date"])
            # From the month before (a shifted date can cross into this month) up to the lead window.
            start = max(first, today) - timedelta(days=31)
            hour, minute = map(int, row["local_time"].split(":"))
            for year, month in months_from(start.year, start.month, 3 + row["lead_days"] // 28):
                nominal, actual = self.occurrence_date(row, year, month)
                if nominal < first or actual - timedelta(days=row["lead_days"]) > today:
                    continue
                if datetime.combine(actual, time(hour, minute), tzinfo=self.tz) <= now:
                    continue  # never create a meeting in the past (after a long downtime)
                exists = await src.fetchval("SELECT 1 FROM meetings WHERE series_id = ? AND occurrence = ?",
                                            (row["id"], nominal.isoformat()))
                if not exists:
                    due.append((row, nominal, actual))
        return due

    async def _generate(self, tx: Tx, now: datetime, series_id: int | None = None,
                        skip: int | None = None) -> list[int]:
        created = []
        for row, nominal, actual in await self._due_occurrences(tx, now, series_id):
            hour, minute = map(int, row["local_time"].split(":"))
            starts = datetime.combine(actual, time(hour, minute), tzinfo=self.tz)
            draft = Draft(kind=row["kind"], org_id=row["org_id"], include_below=bool(row["include_below"]),
                          starts_at=starts, ends_at=starts + timedelta(minutes=row["duration_min"]),
                          place=row["place"], topic=row["topic"], lecturer=row["lecturer"],
                          lecturer_id=row["lecturer_id"], extra_people=json.loads(row["extra_people"]))
            meeting_id = await self._insert(tx, draft, created_by=row["created_by"], now=now, series_id=row["id"],
                                            occurrence=nominal.isoformat())
            # A job may run at night: its notices wait for the morning.
            await self._invite_and_announce(tx, meeting_id, draft, skip=skip, now=now,
                                            notice_at=after_quiet(now, self.tz))
            created.append(meeting_id)
            log.info("series %s: meeting %s created for %s (nominal %s)", row["id"], meeting_id, actual, nominal)
        return created

