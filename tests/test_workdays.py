"""China's working-day calendar: the package's years, the Monday–Friday fallback, loaded years."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.database import Database
from bot.services.workdays import CalendarFileError, WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def calendar(tmp_path: Path) -> AsyncIterator[WorkCalendar]:
    db = Database(tmp_path / "cal.sqlite3")
    await db.connect()
    cal = WorkCalendar(db)
    await cal.refresh()
    yield cal
    await db.close()


async def test_national_day_and_make_up_days_2026(calendar: WorkCalendar) -> None:
    assert calendar.source(2026) == "package"
    assert not calendar.is_working_day(date(2026, 10, 1))
    assert not calendar.is_working_day(date(2026, 10, 7))
    assert calendar.is_working_day(date(2026, 10, 10))  # a Saturday, worked in exchange (调休)
    assert calendar.is_working_day(date(2026, 9, 20))  # a Sunday, likewise
    assert calendar.next_working_day(date(2026, 10, 1)) == date(2026, 10, 8)


async def test_deadline_counts_working_days_to_the_end_of_the_day(calendar: WorkCalendar) -> None:
    submitted = datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI)
    assert calendar.deadline(submitted, 1, SHANGHAI) == datetime(2026, 10, 9, 0, 0, tzinfo=SHANGHAI)
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=SHANGHAI)
    assert calendar.deadline(friday, 1, SHANGHAI) == datetime(2026, 12, 1, 0, 0, tzinfo=SHANGHAI)
    assert calendar.deadline(friday, 5, SHANGHAI) == datetime(2026, 12, 5, 0, 0, tzinfo=SHANGHAI)


async def test_an_unknown_year_falls_back_to_weekdays_and_says_so_once(
        calendar: WorkCalendar, caplog: pytest.LogCaptureFixture) -> None:
    assert calendar.source(2027) == "weekdays"
    with caplog.at_level(logging.WARNING):
        assert not calendar.is_working_day(date(2027, 10, 2))  # a Saturday
        assert calendar.is_working_day(date(2027, 10, 1))  # a Friday: not known as a holiday yet
        assert calendar.is_working_day(date(2027, 10, 4))
    assert sum("2027" in r.getMessage() for r in caplog.records) == 1


async def test_an_admin_loads_the_official_list(calendar: WorkCalendar) -> None:
    year, holidays, workdays = await calendar.load_file(
        "year: 2027\nholidays: [2027-10-01, 2027-10-04, 2027-10-05, 2027-10-06, 2027-10-07]\n"
        "workdays: [2027-09-26, 2027-10-09]\n")
    assert (year, holidays, workdays) == (2027, 5, 2)
    assert calendar.source(2027) == "loaded"
    assert not calendar.is_working_day(date(2027, 10, 1))
    assert calendar.is_working_day(date(2027, 10, 9))  # Saturday make-up day
    assert calendar.is_working_day(date(2027, 10, 8))
    # Survives a restart (read back from the database).
    fresh = WorkCalendar(calendar.db)
    await fresh.refresh()
    assert not fresh.is_working_day(date(2027, 10, 1))


@pytest.mark.parametrize(("text", "problem"), [
    ("year: 2027\nholidays: [2028-01-01]\n", "holidays[0]: 2028-01-01 is not in 2027"),
    ("year: 2027\nholidays: [2027-13-01]\n", "month must be in 1..12"),
    ("year: 2027\nholidays: [10-01]\n", "holidays[0]: '10-01' is not a date"),
    ("year: 2027\nholidays: [2027-10-01]\nworkdays: [2027-10-01]\n", "workdays[0]: 2027-10-01 listed twice"),
    ("holidays: []\n", "expected a mapping with year"),
])
async def test_a_bad_list_loads_nothing(calendar: WorkCalendar, text: str, problem: str) -> None:
    with pytest.raises(CalendarFileError) as info:
        await calendar.load_file(text)
    assert any(problem in p for p in info.value.problems)
    assert calendar.source(2027) == "weekdays"
