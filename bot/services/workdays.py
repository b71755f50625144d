"""China's official working-day calendar (holidays and make-up working days, 调休).

The `holidays` package (released monthly) knows a year once the State Council has published
its arrangement; we take a year as published when the package lists make-up working days in
it. For a year it does not know, an admin can load the official list (`python -m bot calendar
load FILE`); until then we fall back to Monday–Friday and log that once per year.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import yaml

from bot.database import Database

log = logging.getLogger(__name__)


class CalendarFileError(Exception):
    """The file of official days has problems; nothing was loaded."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class WorkCalendar:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._package = holidays.China(years=range(2018, 2031))
        self._package_years = {d.year for d in self._package.weekend_workdays if d.year >= 2018}
        self._loaded: dict[int, dict[date, str]] = {}
        self._warned: set[int] = set()

    async def refresh(self) -> None:
        """Read the admin-loaded years from the database (at start-up and after a load)."""
        rows = await self.db.fetchall("SELECT day, year, kind FROM calendar_days")
        loaded: dict[int, dict[date, str]] = {}
        for row in rows:
            loaded.setdefault(row["year"], {})[date.fromisoformat(row["day"])] = row["kind"]
        self._loaded = loaded

    def source(self, year: int) -> str:
        """Where a year's days come from: 'loaded', 'package' or 'weekdays' (the fallback)."""
        if year in self._loaded:
            return "loaded"
        if year in self._package_years:
            return "package"
        return "weekdays"

    def is_working_day(self, day: date) -> bool:
        source = self.source(day.year)
        if source == "loaded":
            kind = self._loaded[day.year].get(day)
            if kind is not None:
                return kind == "workday"
            return day.weekday() < 5
        if source == "package":
            return bool(self._package.is_working_day(day))
        if day.year not in self._warned:
            self._warned.add(day.year)
            log.warning("no official holiday list for %s: counting Monday to Friday as working days "
                        "(an admin can load it with `python -m bot calendar load`)", day.year)
        return day.weekday() < 5

    def next_working_day(self, day: date, include_today: bool = True) -> date:
        """`day` itself if it is a working day (with include_today), else the next one."""
        current = day if include_today else day + timedelta(days=1)
        for _ in range(60):  # the longest Chinese holiday is far shorter
            if self.is_working_day(current):
                return current
            current += timedelta(days=1)
        return current

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (`day` itself does not count)."""
        current = day
        for _ in range(count):
            current = self.next_working_day(current, include_today=False)
        return current

    def deadline(self, start: datetime, working_days: int, tz: ZoneInfo) -> datetime:
        """End (24:00 local) of the `working_days`-th working day after `start`'s local date,
        the usual reading of "within N working days" (N个工作日内)."""
        local_day = start.astimezone(tz).date()
        last = self.add_working_days(local_day, working_days)
        return datetime.combine(last + timedelta(days=1), time(0, 0), tzinfo=tz)

    async def load_file(self, text: str) -> tuple[int, int, int]:
        """Load `{year: Y, holidays: [...], workdays: [...]}`; returns (year, holidays, workdays)."""
        try:
            doc = yaml.safe_load(text)
        except (yaml.YAMLError, ValueError) as exc:  # PyYAML raises ValueError for a date like 2027-13-01
            raise CalendarFileError([f"not valid YAML: {exc}"]) from None
        problems: list[str] = []
        if not isinstance(doc, dict) or not isinstance(doc.get("year"), int):
            raise CalendarFileError(["expected a mapping with year, holidays and workdays"])
        year = doc["year"]
        days: dict[date, str] = {}
        for kind, key in (("holiday", "holidays"), ("workday", "workdays")):
            values = doc.get(key) or []
            if not isinstance(values, list):
                problems.append(f"{key}: expected a list of dates")
                continue
            for i, value in enumerate(values):
                try:
                    day = value if isinstance(value, date) else date.fromisoformat(str(value))
                except ValueError:
                    problems.append(f"{key}[{i}]: {value!r} is not a date (YYYY-MM-DD)")
                    continue
                if day.year != year:
                    problems.append(f"{key}[{i}]: {day} is not in {year}")
                elif day in days:
                    problems.append(f"{key}[{i}]: {day} listed twice")
                else:
                    days[day] = kind
        if problems:
            raise CalendarFileError(problems)
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM calendar_days WHERE year = ?", (year,))
            await tx.executemany("INSERT INTO calendar_days (day, year, kind) VALUES (?, ?, ?)",
                                 [(d.isoformat(), year, k) for d, k in sorted(days.items())])
        await self.refresh()
        kinds = list(days.values())
        return year, kinds.count("holiday"), kinds.count("workday")
