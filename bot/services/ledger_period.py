"""The stretch of time a ledger covers: the choices /ledger offers with one tap, dates as people
type them, how a stretch is named (the file name, the caption, the sheet's title), and which quota
periods the summary counts. Pure functions: no database, no Telegram."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from bot.formatting import Formatter
from bot.services.meeting_time import normalize, parse_period, period_end, period_start

# A date as typed, the year optional: 2026-01-01, 2026/1/1, 2026.1.1, 2026年1月1日, 1月1日, 6-30.
_DAY = re.compile(r"(?:(\d{4})\s*[-/.年]\s*)?(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?")
# What may stand around and between the two dates: spaces, 从…到/至…止, dashes, tildes, commas.
_FILLER = re.compile(r"为止|从|自|到|至|止|起|to|from|until|[\s,，、;；:：~\-—–]+")


class Span(StrEnum):
    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"
    DAYS = "days"


@dataclass(frozen=True)
class Choice:
    """One button of the period picker: its text's key and values, and the dates it gives."""

    key: str
    first: date
    last: date
    values: tuple[tuple[str, object], ...] = ()


def year_range(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)


def quarter_range(year: int, quarter: int) -> tuple[date, date]:
    first = date(year, 3 * (quarter - 1) + 1, 1)
    return first, period_end("quarter", first) - timedelta(days=1)


def quarter_of(day: date) -> int:
    return (day.month - 1) // 3 + 1


def choices(today: date) -> list[list[Choice]]:
    """The picker's rows: this year and last; this quarter and the one before; each quarter of this
    year that has begun (a quarter still to come would give an empty ledger)."""
    this_q = quarter_of(today)
    prev_first = period_start("quarter", period_start("quarter", today) - timedelta(days=1))
    rows = [
        [Choice("meeting.ledger.pick_this_year", *year_range(today.year), (("year", today.year),)),
         Choice("meeting.ledger.pick_last_year", *year_range(today.year - 1), (("year", today.year - 1),))],
        [Choice("meeting.ledger.pick_this_quarter", *quarter_range(today.year, this_q),
                (("year", today.year), ("quarter", this_q))),
         Choice("meeting.ledger.pick_last_quarter", *quarter_range(prev_first.year, quarter_of(prev_first)),
                (("year", prev_first.year), ("quarter", quarter_of(prev_first))))],
        [Choice("meeting.ledger.pick_quarter", *quarter_range(today.year, q), (("quarter", q),))
         for q in range(1, this_q + 1)],
    ]
    return rows


def parse_range(text: str, today: date) -> tuple[date, date] | None:
    """Two dates as typed ("2026-01-01 2026-06-30", "2026年1月1日到6月30日", "从1月1日至6月30日"),
    or a period (2026, 2026年第3季度, 2026-11, 本季度, 去年). A missing year is this year's for
    the first date and the first date's for the second (the next year's when that would go
    backwards: "2025年11月1日到2月28日"). None when it is not exactly that, or a date does not exist."""
    period = parse_period(text, today)
    if period is not None:
        return period
    s = normalize(text)
    found = list(_DAY.finditer(s))
    if len(found) != 2 or _FILLER.sub("", _DAY.sub(" ", s)).strip():
        return None
    try:
        (y1, m1, d1), (y2, m2, d2) = (m.groups() for m in found)
        first = date(int(y1) if y1 else today.year, int(m1), int(d1))
        last = date(int(y2) if y2 else first.year, int(m2), int(d2))
        if not y2 and last < first:
            last = date(first.year + 1, int(m2), int(d2))
    except ValueError:
        return None
    return first, last


def span_of(first: date, last: date) -> Span:
    """A whole year, quarter or month is named as such; anything else by its two dates."""
    after = last + timedelta(days=1)
    for span in (Span.YEAR, Span.QUARTER, Span.MONTH):
        if period_start(span, first) == first and period_end(span, first) == after:
            return span
    return Span.DAYS


def describe(fmt: Formatter, lang: str, first: date, last: date, *, for_file: bool = False) -> str:
    """2026年 / 2026年第3季度 / 2026年11月 / 2026年1月1日至6月30日 (for a file: 2026 and
    2026年1月1日-6月30日): dates in the reader's language, through the Formatter and the catalog."""
    t = fmt.t
    span = span_of(first, last)
    if span == Span.YEAR:
        return t(lang, "meeting.ledger.file_year" if for_file else "meeting.period.year", year=first.year)
    if span == Span.QUARTER:
        return t(lang, "meeting.period.quarter", year=first.year, quarter=quarter_of(first))
    if span == Span.MONTH:
        return fmt.month(lang, first)
    return day_range(fmt, lang, first, last, for_file=for_file)


def day_range(fmt: Formatter, lang: str, first: date, last: date, *, for_file: bool = False) -> str:
    """2026年1月1日至6月30日 / Jan 1 to Jun 30, 2026: each language's pattern says which end
    carries the year when both are in the same one."""
    if first.year == last.year:
        key = "meeting.ledger.file_days_same_year" if for_file else "meeting.ledger.days_same_year"
    else:
        key = "meeting.ledger.file_days" if for_file else "meeting.ledger.days"
    return fmt.t(lang, key, first=fmt.day(lang, first, weekday=False),
                 first_full=fmt.day(lang, first, weekday=False, year=True),
                 last=fmt.day(lang, last, weekday=False),
                 last_full=fmt.day(lang, last, weekday=False, year=True))


# --- which quota periods count -----------------------------------------------------------------

def counted(start: date, end: date, since: date | None) -> bool:
    """Does the quota period [start, end) count against the org? Only when the bot was in use for
    the org for at least half of it: a branch that came to the bot in the last weeks of a quarter
    could not have recorded that quarter's meeting here, and marking it 未完成 would accuse it of
    what the ledger cannot know. A period it had half of to hold the meeting in counts."""
    if since is None:
        return False
    return since <= start + (end - start) / 2


def first_counted(period: str, since: date) -> date:
    """The start of the first period of this kind that counts."""
    start = period_start(period, since)
    while not counted(start, period_end(period, start), since):
        start = period_end(period, start)
    return start
