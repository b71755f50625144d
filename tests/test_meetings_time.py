"""Meeting time helpers: typed dates and times, quiet hours, reminder plans, monthly rules, periods,
and the .ics file."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.services.meeting_ics import build_ics, unfold
from bot.services.meeting_time import (
    Rule,
    Unreadable,
    When,
    after_quiet,
    before_quiet,
    ends_at_boundary,
    parse_period,
    parse_when,
    period_end,
    period_start,
    periods_between,
    plan_reminders,
    rule_from_date,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 27)  # a Friday


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-05 15:00", When(date(2026, 12, 5), time(15, 0))),
    ("2026/12/5 8:30", When(date(2026, 12, 5), time(8, 30))),
    ("2026年12月5日 上午9点30分", When(date(2026, 12, 5), time(9, 30))),
    ("12月5日 下午3点", When(date(2026, 12, 5), time(15, 0))),
    ("12月5日下午3点半", When(date(2026, 12, 5), time(15, 30))),
    ("十二月五日下午三点", When(date(2026, 12, 5), time(15, 0))),
    ("１２月５日　１５：００", When(date(2026, 12, 5), time(15, 0))),  # full-width, as phones type them
    ("12月5号 晚上7点", When(date(2026, 12, 5), time(19, 0))),
    ("12月5日 中午12点", When(date(2026, 12, 5), time(12, 0))),
    ("12月5日 中午1点", When(date(2026, 12, 5), time(13, 0))),
    ("12-05 15:00", When(date(2026, 12, 5), time(15, 0))),
    ("12/5 15:00-17:00", When(date(2026, 12, 5), time(15, 0), time(17, 0))),
    ("12月5日 下午3点到5点", When(date(2026, 12, 5), time(15, 0), time(17, 0))),
    ("明天上午9点半", When(date(2026, 11, 28), time(9, 30))),
    ("后天 14:00", When(date(2026, 11, 29), time(14, 0))),
    ("今晚8点", When(date(2026, 11, 27), time(20, 0))),
    ("周六 14:30", When(date(2026, 11, 28), time(14, 30))),
    ("下周一 9:00", When(date(2026, 11, 30), time(9, 0))),
    ("星期日 10点一刻", When(date(2026, 11, 29), time(10, 15))),
    ("5号 下午3点", When(date(2026, 12, 5), time(15, 0))),  # the 5th has passed: next month's
    ("1月5日 9:00", When(date(2027, 1, 5), time(9, 0))),  # early next year, typed in November
    ("11月20日 9:00", When(date(2026, 11, 20), time(9, 0))),  # a week ago: past, not next year
    ("12月5日", When(date(2026, 12, 5), None)),  # the flow then asks for the hour
    ("15:30", When(None, time(15, 30))),
    ("下午3点", When(None, time(15, 0))),
    ("3pm", When(None, time(15, 0))),
])
def test_typed_dates_and_times(text: str, expected: When) -> None:
    assert parse_when(text, TODAY) == expected


@pytest.mark.parametrize("text", ["", "下周吧", "abc 15:00", "下午", "25:00", "12月32日 9:00", "2026-02-30 9:00",
                                  "12月5日 3", "15:00-晚上", "12:61"])
def test_unreadable_input(text: str) -> None:
    with pytest.raises(Unreadable):
        parse_when(text, TODAY)


def test_quiet_hours_move_back_to_the_evening_before() -> None:
    assert before_quiet(local(2026, 12, 5, 5, 30), SHANGHAI) == local(2026, 12, 4, 21, 59)
    assert before_quiet(local(2026, 12, 4, 23, 30), SHANGHAI) == local(2026, 12, 4, 21, 59)
    assert before_quiet(local(2026, 12, 5, 6, 59), SHANGHAI) == local(2026, 12, 4, 21, 59)
    assert before_quiet(local(2026, 12, 5, 7, 0), SHANGHAI) == local(2026, 12, 5, 7, 0)
    assert before_quiet(local(2026, 12, 4, 21, 59, 59), SHANGHAI) == local(2026, 12, 4, 21, 59, 59)
    assert before_quiet(local(2026, 12, 4, 22, 0), SHANGHAI, timedelta(minutes=5)) == local(2026, 12, 4, 21, 55)
    assert after_quiet(local(2026, 12, 4, 23, 0), SHANGHAI) == local(2026, 12, 5, 7, 0)
    assert after_quiet(local(2026, 12, 5, 3, 0), SHANGHAI) == local(2026, 12, 5, 7, 0)
    assert after_quiet(local(2026, 12, 5, 9, 0), SHANGHAI) == local(2026, 12, 5, 9, 0)


def test_reminder_plans() -> None:
    now = local(2026, 11, 27, 9, 0)
    # The defaults for an afternoon meeting.
    assert plan_reminders(local(2026, 12, 5, 15, 0), [1440, 120], now, SHANGHAI) == [
        (1440, local(2026, 12, 4, 15, 0)), (120, local(2026, 12, 5, 13, 0))]
    # An early meeting: the 2-hour reminder would fall at 05:30, so it goes at 21:59 the evening before.
    assert plan_reminders(local(2026, 12, 5, 7, 30), [1440, 120], now, SHANGHAI) == [
        (1440, local(2026, 12, 4, 7, 30)), (120, local(2026, 12, 4, 21, 59))]
    # Two that land on the same moment become one (the earlier offset's).
    assert plan_reminders(local(2026, 12, 5, 7, 30), [120, 60], now, SHANGHAI) == [(120, local(2026, 12, 4, 21, 59))]
    # Scheduled at short notice: a reminder whose time has passed is left out (the notice just went).
    assert plan_reminders(local(2026, 11, 27, 12, 0), [1440, 120], now, SHANGHAI) == [
        (120, local(2026, 11, 27, 10, 0))]
    # Scheduled at 23:00 for 08:00: 2 hours before is 06:00 (quiet), 21:59 has passed: at 07:00.
    late = local(2026, 11, 27, 23, 0)
    assert plan_reminders(local(2026, 11, 28, 8, 0), [120], late, SHANGHAI) == [(120, local(2026, 11, 28, 7, 0))]
    # ...and for 07:10 there is no allowed moment left before it.
    assert plan_reminders(local(2026, 11, 28, 7, 0), [30], late, SHANGHAI) == []


@pytest.mark.parametrize(("rule", "year", "month", "expected"), [
    (Rule("monthday", day=15), 2026, 10, date(2026, 10, 15)),
    (Rule("monthday", day=31), 2026, 11, date(2026, 11, 30)),  # a shorter month: its last day
    (Rule("monthday", day=31), 2027, 2, date(2027, 2, 28)),
    (Rule("weekday", nth=1, weekday=5), 2026, 12, date(2026, 12, 5)),   # first Saturday
    (Rule("weekday", nth=2, weekday=1), 2026, 10, date(2026, 10, 13)),  # second Tuesday
    (Rule("weekday", nth=5, weekday=4), 2026, 11, date(2026, 11, 27)),  # last Friday
    (Rule("weekday", nth=5, weekday=0), 2026, 8, date(2026, 8, 31)),    # last Monday
])
def test_monthly_rules(rule: Rule, year: int, month: int, expected: date) -> None:
    assert rule.nominal(year, month) == expected


def test_rules_suggested_by_a_first_date() -> None:
    assert rule_from_date("monthday", date(2026, 12, 5)) == Rule("monthday", day=5)
    assert rule_from_date("weekday", date(2026, 12, 5)) == Rule("weekday", nth=1, weekday=5)
    assert rule_from_date("weekday", date(2026, 12, 29)) == Rule("weekday", nth=5, weekday=1)  # the last Tuesday


def test_periods() -> None:
    day = date(2026, 11, 27)
    assert (period_start("month", day), period_end("month", day)) == (date(2026, 11, 1), date(2026, 12, 1))
    assert (period_start("quarter", day), period_end("quarter", day)) == (date(2026, 10, 1), date(2027, 1, 1))
    assert (period_start("year", day), period_end("year", day)) == (date(2026, 1, 1), date(2027, 1, 1))
    assert ends_at_boundary("quarter", date(2027, 1, 1)) and not ends_at_boundary("quarter", date(2026, 12, 1))
    assert ends_at_boundary("year", date(2027, 1, 1)) and ends_at_boundary("month", date(2026, 12, 1))
    assert periods_between("quarter", date(2026, 9, 15), date(2026, 12, 31)) == [
        (date(2026, 7, 1), date(2026, 10, 1)), (date(2026, 10, 1), date(2027, 1, 1))]


@pytest.mark.parametrize(("text", "expected"), [
    ("2026", (date(2026, 1, 1), date(2026, 12, 31))),
    ("2026Q4", (date(2026, 10, 1), date(2026, 12, 31))),
    ("2026-q1", (date(2026, 1, 1), date(2026, 3, 31))),
    ("2026年第2季度", (date(2026, 4, 1), date(2026, 6, 30))),
    ("2026-11", (date(2026, 11, 1), date(2026, 11, 30))),
    ("2026年2月", (date(2026, 2, 1), date(2026, 2, 28))),
    ("本季度", (date(2026, 10, 1), date(2026, 12, 31))),
    ("上季度", (date(2026, 7, 1), date(2026, 9, 30))),
    ("上月", (date(2026, 10, 1), date(2026, 10, 31))),
    ("去年", (date(2025, 1, 1), date(2025, 12, 31))),
    ("2026-13", None),
    ("随便", None),
])
def test_ledger_periods(text: str, expected: tuple[date, date] | None) -> None:
    assert parse_period(text, TODAY) == expected


def test_the_ics_file_follows_rfc_5545() -> None:
    content = build_ics(
        uid="meeting-7@branchbot", sequence=2, stamp=datetime(2026, 11, 27, 1, 0, tzinfo=UTC),
        start=local(2026, 12, 5, 15, 0), end=local(2026, 12, 5, 17, 0),
        summary="支部党员大会：学习党章, 讨论; 发展党员" + "很长的议题" * 10, location="村委会会议室",
        description="第一行\n第二行", alarms=[1440, 120])
    raw_lines = content.split(b"\r\n")
    assert raw_lines[-1] == b""  # every line ends in CRLF
    assert all(len(line) <= 75 for line in raw_lines)  # folded at 75 octets
    for line in raw_lines:
        line.decode("utf-8")  # never split inside a character
    lines = unfold(content)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert "VERSION:2.0" in lines and "UID:meeting-7@branchbot" in lines and "SEQUENCE:2" in lines
    assert "DTSTART:20261205T070000Z" in lines and "DTEND:20261205T090000Z" in lines
    assert "DTSTAMP:20261127T010000Z" in lines
    assert any(line.startswith("SUMMARY:支部党员大会：学习党章\\, 讨论\\; 发展党员") for line in lines)
    assert "DESCRIPTION:第一行\\n第二行" in lines
    assert lines.count("BEGIN:VALARM") == 2 and "TRIGGER:-PT1440M" in lines and "TRIGGER:-PT120M" in lines
