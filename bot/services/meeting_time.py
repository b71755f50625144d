"""Time for meetings, without Telegram or the database: reading what people type as a date and
time, quiet hours, monthly recurrence rules and the month/quarter/year periods of the quotas."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# --- what people type -------------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_CN_RUN = re.compile(r"[零〇○一二两三四五六七八九十]+")
_FULL_WIDTH = str.maketrans("０１２３４５６７８９：／－．～　", "0123456789:/-.~ ")


def _cn_number(run: str) -> str:
    """一 → 1, 十二 → 12, 二十五 → 25, 二〇二六 → 2026 (what people write in dates and times)."""
    if "十" in run:
        head, _, tail = run.partition("十")
        if "十" in tail or len(head) > 1 or len(tail) > 1:
            return run
        tens = _CN_DIGITS.get(head, 1) if head else 1
        ones = _CN_DIGITS.get(tail, 0) if tail else 0
        return str(tens * 10 + ones)
    return "".join(str(_CN_DIGITS[ch]) for ch in run)


def normalize(text: str) -> str:
    text = text.strip().translate(_FULL_WIDTH).lower()
    # 一刻/三刻 (a quarter) must survive as words; 周一..周六 become 周1..周6 and are read as weekdays.
    text = text.replace("一刻", "@15").replace("三刻", "@45")
    return _CN_RUN.sub(lambda m: _cn_number(m.group(0)), text)


@dataclass(frozen=True)
class When:
    """A typed date and/or time; missing parts are None (the flow asks for them)."""

    day: date | None
    start: time | None
    end: time | None = None


class Unreadable(ValueError):
    """The text is not a date or time we can read."""


_DATE_FULL = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?")
_DATE_MD = re.compile(r"(?<![\d:])(\d{1,2})\s*[-/月]\s*(\d{1,2})\s*[日号]?(?![\d:])")
_DATE_D = re.compile(r"(?<![\d:])(\d{1,2})\s*[日号]")
_DATE_WORD = re.compile(r"大后天|后天|明天|明日|今天|今日|今晚|tomorrow|today")
_DATE_WEEKDAY = re.compile(r"(下下|下个?|这个?|本)?\s*(?:周|星期|礼拜)\s*([1-7日天])")
_AMPM = re.compile(r"凌晨|早上|早晨|清晨|上午|中午|下午|傍晚|晚上|夜里|今晚|am|pm|a\.m\.|p\.m\.")
_TIME_COLON = re.compile(r"(\d{1,2})\s*:\s*(\d{2})")
_TIME_DIAN = re.compile(r"(\d{1,2})\s*[点时](?:\s*(半|@15|@45|(\d{1,2})\s*分?))?")
_TIME_BARE = re.compile(r"(?<![\d:])(\d{1,2})(?![\d:])")  # "下午3", "3pm": only with a part of the day
_RANGE_SEP = re.compile(r"\s*(?:-|~|到|至|—|–)\s*")
_FILLER = re.compile(r"[\s,，。.、;；的在开会召开举行]*")
_PM_WORDS = {"下午", "傍晚", "晚上", "夜里", "今晚", "pm", "p.m."}
_NOON_WORDS = {"中午"}


def _apply_ampm(hour: int, word: str | None) -> int:
    if word in _PM_WORDS and hour < 12:
        return hour + 12
    if word in _NOON_WORDS and hour < 6:  # 中午1点 is 13:00; 中午12点 stays
        return hour + 12
    if word in ("am", "a.m.") and hour == 12:
        return 0
    return hour


def _read_time(part: str, ampm: str | None) -> tuple[time | None, str]:
    """The first time in `part` (and `part` without it)."""
    for pattern in (_TIME_COLON, _TIME_DIAN, _TIME_BARE):
        if pattern is _TIME_BARE and ampm is None:
            break
        match = pattern.search(part)
        if match is None:
            continue
        hour = int(match.group(1))
        minute = 0
        if pattern is _TIME_COLON:
            minute = int(match.group(2))
        elif pattern is _TIME_DIAN:
            extra = match.group(2)
            if extra == "半":
                minute = 30
            elif extra in ("@15", "@45"):
                minute = int(extra[1:])
            elif match.group(3):
                minute = int(match.group(3))
        hour = _apply_ampm(hour, ampm)
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise Unreadable(part)
        return time(hour, minute), part[:match.start()] + " " + part[match.end():]
    return None, part


def _read_day(s: str, today: date) -> tuple[date | None, re.Match[str] | None]:
    """The date in normalized text, and where it was (ValueError for a date that does not exist)."""
    day: date | None = None
    m: re.Match[str] | None = None
    if m := _DATE_FULL.search(s):
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    elif m := _DATE_MD.search(s):
        month, dom = int(m.group(1)), int(m.group(2))
        day = date(today.year, month, dom)
        if day < today - timedelta(days=60):  # "1月5日" typed in December means next January
            day = date(today.year + 1, month, dom)
    elif m := _DATE_WORD.search(s):
        offset = {"今天": 0, "今日": 0, "今晚": 0, "today": 0, "明天": 1, "明日": 1, "tomorrow": 1,
                  "后天": 2, "大后天": 3}[m.group(0)]
        day = today + timedelta(days=offset)
    elif m := _DATE_WEEKDAY.search(s):
        target = 6 if m.group(2) in ("日", "天", "7") else int(m.group(2)) - 1
        prefix = m.group(1) or ""
        this_monday = today - timedelta(days=today.weekday())
        if prefix.startswith("下下"):
            day = this_monday + timedelta(days=14 + target)
        elif prefix.startswith("下"):
            day = this_monday + timedelta(days=7 + target)
        else:
            day = today + timedelta(days=(target - today.weekday()) % 7)
    elif m := _DATE_D.search(s):
        dom = int(m.group(1))
        day = date(today.year, today.month, dom)
        if day < today:  # "5号" after the 5th: next month's
            year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
            day = date(year, month, dom)
    return day, m


def parse_when(text: str, today: date) -> When:
    """Read a date and time as people type them: `2026-12-05 15:00`, `12月5日 下午3点`, `明天上午9点半`,
    `周六 14:30`, `12/5 15:00-17:00`, `十二月五日下午三点`. Raises Unreadable."""
    s = normalize(text)
    if not s:
        raise Unreadable(text)
    try:
        day, m = _read_day(s, today)
    except ValueError:
        raise Unreadable(text) from None
    rest = s if m is None else s[:m.start()] + " " + s[m.end():]
    if m is not None and m.group(0) == "今晚":
        rest = "今晚 " + rest  # it is also the part of the day
    ampm_match = _AMPM.search(rest)
    ampm = ampm_match.group(0) if ampm_match else None
    if ampm_match:
        rest = rest[:ampm_match.start()] + " " + rest[ampm_match.end():]
    # "15:00-17:00", "下午3点到5点": a start and an end.
    start: time | None = None
    end: time | None = None
    pieces = _RANGE_SEP.split(rest, maxsplit=1) if _RANGE_SEP.search(rest) else [rest]
    start, rest_start = _read_time(pieces[0], ampm)
    rest = rest_start
    if len(pieces) == 2 and start is not None:
        second_ampm = _AMPM.search(pieces[1])
        word = second_ampm.group(0) if second_ampm else ampm
        piece = pieces[1] if not second_ampm else pieces[1][:second_ampm.start()] + pieces[1][second_ampm.end():]
        bare = re.fullmatch(r"\s*(\d{1,2})\s*", piece)
        if bare:  # "3点到5" / "15:00-17"
            piece = bare.group(1) + "点"
        end, rest_end = _read_time(piece, word)
        if end is None:
            raise Unreadable(text)
        if end <= start and word is None and ampm in _PM_WORDS | _NOON_WORDS and end.hour < 12:
            end = time(end.hour + 12, end.minute)
        rest = rest + " " + rest_end
    elif len(pieces) == 2:
        rest = rest + " " + pieces[1]
    if day is None and start is None:
        raise Unreadable(text)
    if ampm and start is None:
        raise Unreadable(text)  # "下午" alone says no hour
    if _FILLER.fullmatch(rest) is None:
        raise Unreadable(text)  # words we do not understand: better to ask than to guess
    return When(day=day, start=start, end=end)


def add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)


# --- quiet hours --------------------------------------------------------------------------------

QUIET_FROM = time(22, 0)
QUIET_UNTIL = time(7, 0)


def in_quiet_hours(moment: datetime, tz: ZoneInfo) -> bool:
    local = moment.astimezone(tz).time()
    return local >= QUIET_FROM or local < QUIET_UNTIL


def before_quiet(moment: datetime, tz: ZoneInfo, lead: timedelta = timedelta(minutes=1)) -> datetime:
    """A reminder due in quiet hours goes at the end of the allowed window before them (`lead`
    before 22:00 local, so that a long queue is through by 22:00)."""
    if not in_quiet_hours(moment, tz):
        return moment
    local = moment.astimezone(tz)
    evening = local.date() if local.time() >= QUIET_FROM else local.date() - timedelta(days=1)
    return datetime.combine(evening, QUIET_FROM, tzinfo=tz) - lead


def after_quiet(moment: datetime, tz: ZoneInfo) -> datetime:
    """`moment`, or 07:00 local after it when it falls in quiet hours (for messages that must not
    be early, such as a notice a job creates at night)."""
    if not in_quiet_hours(moment, tz):
        return moment
    local = moment.astimezone(tz)
    morning = local.date() + timedelta(days=1) if local.time() >= QUIET_FROM else local.date()
    return datetime.combine(morning, QUIET_UNTIL, tzinfo=tz)


def plan_reminders(start: datetime, offsets: list[int], now: datetime, tz: ZoneInfo,
                   lead: timedelta = timedelta(minutes=1)) -> list[tuple[int, datetime]]:
    """(offset in minutes, when to send) for each reminder still worth sending. A reminder whose
    time has passed is left out (the notice or change notice just told them); one that falls in
    quiet hours moves to the evening before; two that land on the same moment become one."""
    planned: dict[datetime, int] = {}
    for offset in sorted(set(offsets), reverse=True):
        nominal = start - timedelta(minutes=offset)
        if nominal <= now:
            continue
        at = before_quiet(nominal, tz, lead)
        if at <= now:
            at = after_quiet(now, tz)
            if at >= start:
                continue
        planned.setdefault(at, offset)
    return sorted(((offset, at) for at, offset in planned.items()), key=lambda p: p[1])


# --- recurrence -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """'monthday' (every month on `day`; 31 means the month's last day when it is shorter) or
    'weekday' (the `nth` `weekday` of each month; nth 5 means the last one)."""

    kind: str
    day: int | None = None
    nth: int | None = None
    weekday: int | None = None

    def nominal(self, year: int, month: int) -> date:
        last = calendar.monthrange(year, month)[1]
        if self.kind == "monthday":
            assert self.day is not None
            return date(year, month, min(self.day, last))
        assert self.nth is not None and self.weekday is not None
        if self.nth >= 5:
            day = date(year, month, last)
            return day - timedelta(days=(day.weekday() - self.weekday) % 7)
        first = date(year, month, 1)
        return first + timedelta(days=(self.weekday - first.weekday()) % 7 + 7 * (self.nth - 1))


def rule_from_date(kind: str, day: date) -> Rule:
    """The rule that a first meeting's date suggests: its day of month, or its weekday's place."""
    if kind == "monthday":
        return Rule("monthday", day=day.day)
    # The 29th–31st can only be a 5th weekday, which not every month has: read it as "the last".
    return Rule("weekday", nth=(day.day - 1) // 7 + 1, weekday=day.weekday())


def months_from(year: int, month: int, count: int) -> list[tuple[int, int]]:
    out = []
    for _ in range(count):
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


# --- quota periods ----------------------------------------------------------------------------

PERIODS = ("month", "quarter", "year")


def period_start(period: str, day: date) -> date:
    if period == "month":
        return date(day.year, day.month, 1)
    if period == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def period_end(period: str, day: date) -> date:
    """The first day after the period that contains `day`."""
    start = period_start(period, day)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    year, month = start.year, start.month + months
    while month > 12:
        year, month = year + 1, month - 12
    return date(year, month, 1)


def ends_at_boundary(period: str, boundary: date) -> bool:
    """Does a period of this kind end just before `boundary` (a first of month)?"""
    if boundary.day != 1:
        return False
    if period == "month":
        return True
    if period == "quarter":
        return boundary.month in (1, 4, 7, 10)
    return boundary.month == 1


def previous_boundary(day: date) -> date:
    """The first of the month on or before `day`."""
    return date(day.year, day.month, 1)


def next_boundary(day: date) -> date:
    return period_end("month", day)


def period_label(period: str, start: date) -> str:
    """2026-11, 2026-Q4, 2026 (how the ledger and the CLI name a period)."""
    if period == "month":
        return f"{start.year}-{start.month:02d}"
    if period == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


def periods_between(period: str, first: date, last: date) -> list[tuple[date, date]]:
    """(start, end-exclusive) of each period that overlaps [first, last]."""
    out = []
    start = period_start(period, first)
    while start <= last:
        end = period_end(period, start)
        out.append((start, end))
        start = end
    return out


def parse_period(text: str, today: date) -> tuple[date, date] | None:
    """A ledger period as typed: 2026, 2026Q4 / 2026-Q4 / 2026年第4季度, 2026-11 / 2026年11月,
    本月 / 本季度 / 本年 / 今年 / 上月 / 上季度 / 去年. Returns (first day, last day) or None."""
    s = normalize(text).replace(" ", "")
    if m := re.fullmatch(r"(\d{4})年?", s):
        year = int(m.group(1))
        return date(year, 1, 1), date(year, 12, 31)
    if m := re.fullmatch(r"(\d{4})(?:-|年)?(?:q|第)([1-4])(?:季度)?", s):
        year, q = int(m.group(1)), int(m.group(2))
        first = date(year, 3 * (q - 1) + 1, 1)
        return first, period_end("quarter", first) - timedelta(days=1)
    if m := re.fullmatch(r"(\d{4})(?:-|年|/)(\d{1,2})月?", s):
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            return None
        first = date(year, month, 1)
        return first, period_end("month", first) - timedelta(days=1)
    words = {"本月": ("month", 0), "这个月": ("month", 0), "上月": ("month", -1), "上个月": ("month", -1),
             "本季度": ("quarter", 0), "上季度": ("quarter", -1), "本年": ("year", 0), "今年": ("year", 0),
             "本年度": ("year", 0), "去年": ("year", -1), "month": ("month", 0), "quarter": ("quarter", 0),
             "year": ("year", 0)}
    if s in words:
        period, back = words[s]
        start = period_start(period, today)
        if back:
            start = period_start(period, start - timedelta(days=1))
        return start, period_end(period, start) - timedelta(days=1)
    return None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=tz)
