"""How meetings read in chat: dates and times in plain words, the meeting card, and the buttons
under it. Texts come from locales/*/meetings.yaml; keys are written out in full (never built
with f-strings) so that the catalog test can see every one of them."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.callbacks import MEETING_MEMBER, MemberAction
from bot.formatting import Formatter
from bot.outbox import Button
from bot.services.meeting_model import Answer, MeetingStatus

KIND_KEYS = {
    "general_meeting": "meeting.kind.general_meeting",
    "committee_meeting": "meeting.kind.committee_meeting",
    "group_meeting": "meeting.kind.group_meeting",
    "party_lecture": "meeting.kind.party_lecture",
    "theme_day": "meeting.kind.theme_day",
    "life_meeting": "meeting.kind.life_meeting",
    "monthly": "meeting.kind.monthly",
    "other": "meeting.kind.other",
    "secretary_lecture": "meeting.kind.secretary_lecture",
}
WEEKDAY_KEYS = ("meeting.weekday.mon", "meeting.weekday.tue", "meeting.weekday.wed", "meeting.weekday.thu",
                "meeting.weekday.fri", "meeting.weekday.sat", "meeting.weekday.sun")
PERIOD_LABEL_KEYS = {"quarter": "meeting.period.quarter", "year": "meeting.period.year"}  # months: Formatter
THIS_PERIOD_KEYS = {"month": "meeting.period.this_month", "quarter": "meeting.period.this_quarter",
                    "year": "meeting.period.this_year"}
QUOTA_SETTING_KEYS = {"month": "meeting.settings.period_month", "quarter": "meeting.settings.period_quarter",
                      "year": "meeting.settings.period_year", "none": "meeting.settings.period_none"}
STATUS_KEYS = {MeetingStatus.SCHEDULED: "meeting.status.scheduled",
               MeetingStatus.CANCELLED: "meeting.status.cancelled", MeetingStatus.HELD: "meeting.status.held",
               MeetingStatus.UNCLOSED: "meeting.status.unclosed"}


class MeetingText:
    """Renders meeting texts in a person's language and the bot's time zone."""

    def __init__(self, fmt: Formatter) -> None:
        self.fmt = fmt
        self.t = fmt.t
        self.tz = fmt.tz

    # --- dates and times ----------------------------------------------------------------------
    def kind(self, lang: str, kind: str) -> str:
        return self.t(lang, KIND_KEYS.get(kind, "meeting.kind.other"))

    def weekday(self, lang: str, day: date) -> str:
        return self.t(lang, WEEKDAY_KEYS[day.weekday()])

    def day(self, lang: str, day: date, with_year: bool = False) -> str:
        """12月5日（周六） / Sat, Dec 5."""
        return self.fmt.day(lang, day, year=with_year)

    def short_day(self, lang: str, day: date) -> str:
        """12月5日 / Dec 5."""
        return self.fmt.day(lang, day, weekday=False)

    def clock(self, lang: str, moment: datetime) -> str:
        """下午3:00 / 3:00 PM."""
        return self.fmt.time(lang, moment)

    def when(self, lang: str, moment: datetime, now: datetime | None = None) -> str:
        """12月5日（周六）下午3:00; the year only when it is not this year's."""
        return self.fmt.moment(lang, moment, now)

    def span(self, lang: str, start: datetime, end: datetime, now: datetime | None = None) -> str:
        """12月5日（周六）下午3:00—5:00 the same day, else two full moments."""
        return self.fmt.span(lang, start, end, now)

    def day_word(self, lang: str, day: date, today: date) -> str:
        """今天 / 明天 / 后天 / 12月5日（周六）."""
        return self.fmt.relative_day(lang, day, today)

    def offset(self, lang: str, minutes: int) -> str:
        """1天 / 2 hours / 30 minutes."""
        if minutes % 1440 == 0:
            return self.fmt.count(lang, "meeting.offset.days", minutes // 1440)
        if minutes % 60 == 0:
            return self.fmt.count(lang, "meeting.offset.hours", minutes // 60)
        return self.fmt.count(lang, "meeting.offset.minutes", minutes)

    def period_label(self, lang: str, period: str, start: date) -> str:
        if period == "month":
            return self.fmt.month(lang, start)
        return self.t(lang, PERIOD_LABEL_KEYS[period], year=start.year, month=start.month,
                      quarter=(start.month - 1) // 3 + 1)

    def rule(self, lang: str, rule_kind: str, day: int | None, nth: int | None, weekday: int | None,
             at: str) -> str:
        if rule_kind == "monthday":
            return self.t(lang, "meeting.new.rule_monthday", day=day, time=at)
        name = self.t(lang, WEEKDAY_KEYS[weekday or 0])
        if (nth or 1) >= 5:
            return self.t(lang, "meeting.new.rule_last_weekday", weekday=name, time=at)
        return self.t(lang, "meeting.new.rule_weekday", nth=self.fmt.ordinal(lang, nth or 1), weekday=name, time=at)

    # --- the card -------------------------------------------------------------------------------
    def card_lines(self, lang: str, *, org: str, kind: str, starts_at: datetime, ends_at: datetime,
                   place: str, topic: str, lecturer: str | None, now: datetime | None = None) -> list[str]:
        lines = [
            self.t(lang, "meeting.card.org", org=org),
            self.t(lang, "meeting.card.kind", kind=self.kind(lang, kind)),
            self.t(lang, "meeting.card.when", when=self.span(lang, starts_at, ends_at, now)),
            self.t(lang, "meeting.card.place", place=place),
            self.t(lang, "meeting.card.topic", topic=topic),
        ]
        if lecturer:
            lines.append(self.t(lang, "meeting.card.lecturer", lecturer=lecturer))
        return lines

    def answer_line(self, lang: str, answer: str | None, reason: str | None) -> str:
        if answer == Answer.ATTEND:
            return self.t(lang, "meeting.card.answer_attend")
        if answer == Answer.LEAVE:
            return self.t(lang, "meeting.card.answer_leave", reason=reason or "")
        return self.t(lang, "meeting.card.answer_none")

    # --- buttons --------------------------------------------------------------------------------
    def reply_buttons(self, lang: str, meeting_id: int, checkin: bool = False) -> list[list[Button]]:
        rows = [[Button(self.t(lang, "meeting.button.attend"), MEETING_MEMBER(MemberAction.ATTEND, meeting_id)),
                 Button(self.t(lang, "meeting.button.leave"), MEETING_MEMBER(MemberAction.LEAVE, meeting_id))]]
        if checkin:
            rows.insert(0, [Button(self.t(lang, "meeting.button.checkin"),
                                   MEETING_MEMBER(MemberAction.CHECKIN, meeting_id))])
        rows.append([Button(self.t(lang, "meeting.button.calendar"),
                            MEETING_MEMBER(MemberAction.CALENDAR, meeting_id))])
        return rows


def local_today(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()
