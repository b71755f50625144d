"""Dates, times, lists and counts as people read them, from Babel (CLDR data) and the patterns in
the catalogs (`fmt.*`): 12月5日（周六）下午3:00 / Sat, Dec 5, 3:00 PM; 甲、乙和丙 / a, b, and c;
1 day / 2 days. No code picks punctuation or a format by comparing language codes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date as babel_date
from babel.dates import format_datetime as babel_datetime
from babel.lists import format_list

from bot.i18n import Translator

# Characters a file name may not hold on a phone or a Windows PC; what people read stays.
_NOT_IN_FILE_NAMES = str.maketrans({c: "-" for c in '/\\:*?"<>|'} | {c: " " for c in "\n\r\t"})


def file_name(text: str) -> str:
    """A file name as people read it (台账-三义村党支部-2026.xlsx), with only what breaks a file name
    replaced."""
    return text.translate(_NOT_IN_FILE_NAMES).strip()


@lru_cache(maxsize=8)
def babel_locale(lang: str) -> Locale:
    return Locale.parse(lang)


class Formatter:
    """Formats in a person's language and the bot's time zone."""

    def __init__(self, t: Translator, tz: ZoneInfo) -> None:
        self.t = t
        self.tz = tz

    def local(self, when: datetime) -> datetime:
        return when.astimezone(self.tz)

    def day(self, lang: str, day: date | datetime, *, weekday: bool = True, year: bool = False) -> str:
        """12月5日（周六） / Sat, Dec 5; with `year`, 2026年12月5日（周六） / Sat, Dec 5, 2026."""
        if isinstance(day, datetime):
            day = self.local(day).date()
        key = ("fmt.date_year" if year else "fmt.date") if weekday else ("fmt.day_year" if year else "fmt.day")
        return babel_date(day, self.t(lang, key), locale=babel_locale(lang))

    def month(self, lang: str, day: date) -> str:
        """2026年11月 / November 2026."""
        return babel_date(day, self.t(lang, "fmt.month"), locale=babel_locale(lang))

    def time(self, lang: str, when: datetime) -> str:
        """下午3:00 / 3:00 PM."""
        return babel_datetime(self.local(when), self.t(lang, "fmt.time"), tzinfo=self.tz, locale=babel_locale(lang))

    def moment(self, lang: str, when: datetime, now: datetime | None = None) -> str:
        """Day and time; the year only when it is not this year's."""
        year = now is not None and self.local(when).year != self.local(now).year
        return self.t(lang, "fmt.moment", date=self.day(lang, when, year=year), time=self.time(lang, when))

    def moment_near(self, lang: str, when: datetime, now: datetime) -> str:
        """今天下午3:00 / 明天上午9:00 / yesterday, 3:00 PM near now, else the day and time: for what
        is read at once (lists, a problem's history), not for messages that stay (notices, the wall)."""
        delta = (self.local(when).date() - self.local(now).date()).days
        if not -1 <= delta <= 2:
            return self.moment(lang, when, now)
        day = self.relative_day(lang, when, self.local(now).date())
        return self.t(lang, "fmt.moment", date=day, time=self.time(lang, when))

    def span(self, lang: str, start: datetime, end: datetime, now: datetime | None = None) -> str:
        """下午3:00—5:00 on one day (the part of day is not repeated); two moments across days."""
        if self.local(start).date() != self.local(end).date():
            return self.t(lang, "fmt.span_days", start=self.moment(lang, start, now), end=self.moment(lang, end, now))
        first, last = self.time(lang, start), self.time(lang, end)
        same_part = self._day_part(lang, start) == self._day_part(lang, end)
        if same_part:
            last = babel_datetime(self.local(end), self.t(lang, "fmt.time_bare"), tzinfo=self.tz,
                                  locale=babel_locale(lang))
        year = now is not None and self.local(start).year != self.local(now).year
        key = "fmt.span_same_part" if same_part else "fmt.span"
        return self.t(lang, key, date=self.day(lang, start, year=year), start=first, end=last)

    def _day_part(self, lang: str, when: datetime) -> str:
        return babel_datetime(self.local(when), self.t(lang, "fmt.day_part"), tzinfo=self.tz,
                              locale=babel_locale(lang))

    def join(self, lang: str, items: Iterable[str]) -> str:
        """甲、乙和丙 / a, b, and c."""
        return format_list(list(items), locale=babel_locale(lang))

    def count(self, lang: str, key: str, n: int, **values: object) -> str:
        """`key.one` / `key.other` by the language's plural rules, with `{n}`."""
        return self._form(lang, key, babel_locale(lang).plural_form(n), n, **values)

    def _form(self, lang: str, key: str, form: str, n: int, **values: object) -> str:
        """`key.<form>`, else `key.other` (a language without that form)."""
        text = self.t(lang, f"{key}.{form}", n=n, **values)
        if text == f"{key}.{form}":
            text = self.t(lang, f"{key}.other", n=n, **values)
        return text

    def ordinal(self, lang: str, n: int) -> str:
        """2nd / 3rd / 11th (第2个 needs no suffix): `fmt.ordinal.*` by the language's ordinal rules."""
        return self._form(lang, "fmt.ordinal", babel_locale(lang).ordinal_form(n), n)

    def tally(self, lang: str, counts: Iterable[tuple[str, int]]) -> str:
        """文字 1 条、照片 1 张 / 1 text, 1 photo: counts of different things side by side, each by its
        count key, joined by the catalog's separator (a tally has no "and" before its last part)."""
        parts = [self.count(lang, key, n) for key, n in counts if n]
        return self.t(lang, "fmt.tally_separator").join(parts)

    def relative_day(self, lang: str, day: date | datetime, today: date) -> str:
        """今天 / 昨天 / 3天前 / 明天 / 后天, else the date."""
        if isinstance(day, datetime):
            day = self.local(day).date()
        delta = (day - today).days
        if delta == 0:
            return self.t(lang, "fmt.today")
        if delta == -1:
            return self.t(lang, "fmt.yesterday")
        if delta == 1:
            return self.t(lang, "fmt.tomorrow")
        if delta == 2:
            return self.t(lang, "fmt.day_after_tomorrow")
        if -30 <= delta < -1:
            return self.count(lang, "fmt.days_ago", -delta)
        return self.day(lang, day, year=day.year != today.year)
