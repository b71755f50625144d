"""What a meeting is, without the service: its kinds and statuses (enums), the records the service
returns, the limits on what people type, and the refusal. The ledger, the texts and the handlers
import from here, never from the service, so nothing imports in a circle."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from bot.clock import from_db
from bot.services.meeting_time import Rule
from bot.services.orgs import OrgKind
from bot.services.orgs import Refused as Refused  # the meeting parts and handlers import it from here


class MeetingKind(StrEnum):
    GENERAL = "general_meeting"      # 支部党员大会
    COMMITTEE = "committee_meeting"  # 支部委员会会议
    GROUP = "group_meeting"          # 党小组会
    LECTURE = "party_lecture"        # 党课
    THEME_DAY = "theme_day"          # 主题党日
    LIFE = "life_meeting"            # 组织生活会
    MONTHLY = "monthly"              # 月例会
    OTHER = "other"


class QuotaKind(StrEnum):
    """What the quotas count: the kinds, and "the secretary lectured" (a held 党课 given by a secretary)."""

    GENERAL = "general_meeting"
    COMMITTEE = "committee_meeting"
    GROUP = "group_meeting"
    LECTURE = "party_lecture"
    THEME_DAY = "theme_day"
    LIFE = "life_meeting"
    MONTHLY = "monthly"
    SECRETARY_LECTURE = "secretary_lecture"


class Period(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    NONE = "none"


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    HELD = "held"
    UNCLOSED = "unclosed"  # only in the ledger: scheduled, ended, never closed


class Answer(StrEnum):
    ATTEND = "attend"
    LEAVE = "leave"


class Presence(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"


class InviteSource(StrEnum):
    KIND = "kind"    # invited because of the meeting's kind and org
    ADDED = "added"  # added by name


class MinutesKind(StrEnum):
    TEXT = "text"
    PHOTO = "photo"
    DOCUMENT = "document"


class CommitteeTitle(StrEnum):
    SECRETARY = "secretary"
    DEPUTY = "deputy"
    MEMBER = "member"


class Purpose(StrEnum):
    """What an outbox row about a meeting is for (its `purpose` column; `subject_id` is the meeting)."""

    NOTICE = "meeting/notice"
    REMINDER = "meeting/reminder"
    CHANGE = "meeting/change"
    CANCEL = "meeting/cancel"
    NUDGE = "meeting/nudge"
    MINUTES = "meeting/minutes"
    QUOTA_DUE = "meeting/quota_due"
    QUOTA_MISSED = "meeting/quota_missed"


KINDS = tuple(MeetingKind)
QUOTA_KINDS = tuple(QuotaKind)
QUOTA_PERIODS = (Period.MONTH, Period.QUARTER, Period.YEAR, Period.NONE)
BRANCH_ORG_KINDS = frozenset({OrgKind.village_branch, OrgKind.grid_branch, OrgKind.community, OrgKind.other})
# DOMAIN.md's usual minimum frequencies, by the kind of org they apply to.
DEFAULT_QUOTAS: dict[str, dict[str, str]] = {
    "branch": {QuotaKind.GENERAL: Period.QUARTER, QuotaKind.COMMITTEE: Period.MONTH,
               QuotaKind.LECTURE: Period.QUARTER, QuotaKind.THEME_DAY: Period.MONTH,
               QuotaKind.LIFE: Period.YEAR, QuotaKind.SECRETARY_LECTURE: Period.YEAR},
    OrgKind.party_group: {QuotaKind.GROUP: Period.MONTH},
    OrgKind.county: {QuotaKind.MONTHLY: Period.MONTH},
}
MEMBER_ROLES = ("member", "secretary", "organizer")

DEFAULT_OFFSETS = (1440, 120)          # 1 day and 2 hours before
OFFSET_CHOICES = (4320, 1440, 240, 120, 60, 30)
MAX_OFFSETS = 4
DEFAULT_DURATION = timedelta(hours=2)
MAX_DURATION = timedelta(hours=12)
MAX_YEARS_AHEAD = 3
CHECKIN_OPENS = timedelta(minutes=30)
MINUTES_GRACE = timedelta(days=2)
QUOTA_WARN_DAYS = 7
QUOTA_HOUR = time(9, 0)
PLACE_MAX = 100
TOPIC_MAX = 500
LECTURER_MAX = 50
REASON_MAX = 200
MINUTES_TEXT_MAX = 4000
MAX_MESSAGE = 3800  # below Telegram's 4096, for the long digests
# An edit that moves a meeting or its place tells everyone; more than this many such rounds a day
# (per meeting) would let one secretary flood a county: later edits still apply, silently.
NOTICE_ROUNDS_PER_DAY = 3
LEDGER_MAX_YEARS = 5
# Quiet-hours reminders are moved before 22:00 by this much per recipient, so a big meeting's
# reminders are all delivered by 22:00 at about 25 a second (the outbox sends 29.5 a second).
QUEUE_RATE = 25.0


@dataclass(frozen=True)
class Meeting:
    id: int
    org_id: int
    org_name: str
    kind: MeetingKind
    include_below: bool
    series_id: int | None
    starts_at: datetime
    ends_at: datetime
    place: str
    topic: str
    lecturer: str | None
    lecturer_id: int | None
    status: MeetingStatus
    cancel_reason: str | None
    remind_gen: int
    edits: int
    created_by: int
    held_at: datetime | None

    def checkin_open(self, now: datetime) -> bool:
        """签到 runs from 30 minutes before the start until the end."""
        return self.status == MeetingStatus.SCHEDULED and self.starts_at - CHECKIN_OPENS <= now <= self.ends_at

    def open_for_answers(self, now: datetime) -> bool:
        return self.status == MeetingStatus.SCHEDULED and now < self.starts_at

    def cancellable(self, now: datetime) -> bool:
        return self.status == MeetingStatus.SCHEDULED and now < self.ends_at

    def markable(self, now: datetime) -> bool:
        """The secretary marks attendance from check-in time on."""
        return self.status != MeetingStatus.CANCELLED and now >= self.starts_at - CHECKIN_OPENS


@dataclass(frozen=True)
class Attendee:
    person_id: int
    name: str
    source: InviteSource
    answer: Answer | None
    leave_reason: str | None
    checked_in_at: datetime | None
    presence: Presence | None

    @property
    def attended(self) -> bool:
        """The secretary's mark wins over the check-in (they correct mistakes)."""
        if self.presence is not None:
            return self.presence == Presence.PRESENT
        return self.checked_in_at is not None


@dataclass
class Draft:
    """A meeting as the scheduling flow collected it."""

    kind: str
    org_id: int
    starts_at: datetime
    ends_at: datetime
    place: str
    topic: str
    include_below: bool = False
    lecturer: str | None = None
    lecturer_id: int | None = None
    extra_people: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SeriesSpec:
    rule: Rule
    holiday_shift: bool = True
    lead_days: int = 7


@dataclass(frozen=True)
class Created:
    meeting: Meeting
    invited: int
    notified: int


@dataclass(frozen=True)
class Edited:
    meeting: Meeting
    told: int          # people told of the change (or sent the corrected notice)
    quiet: bool = False  # the change applied without a new round of notices (the day's limit)


@dataclass(frozen=True)
class Roster:
    meeting: Meeting
    attendees: list[Attendee]

    def with_answer(self, answer: str | None) -> list[Attendee]:
        return [a for a in self.attendees if a.answer == answer]


@dataclass(frozen=True)
class MeetingView:
    """A meeting as one person may see it, with what they may do now (the service decides)."""

    meeting: Meeting
    attendee: Attendee | None   # None: not invited (a manager looking)
    manages: bool
    attendees: list[Attendee]   # everyone invited, for a manager only
    series_active: bool
    can_answer: bool
    can_check_in: bool


@dataclass(frozen=True)
class SettingsView:
    offsets: list[int]
    quotas: dict[str, str]
    own: bool
    may_set_quotas: bool


@dataclass(frozen=True)
class TickReport:
    created: int = 0
    minutes_reminders: int = 0
    quota_messages: int = 0


@dataclass(frozen=True)
class MinutesEntry:
    kind: MinutesKind
    text: str | None


@dataclass(frozen=True)
class LedgerMeeting:
    """One meeting as the ledger lists it (only the org's own people for a meeting sent down)."""

    meeting: Meeting
    attendees: list[Attendee]
    minutes: list[MinutesEntry]


@dataclass(frozen=True)
class HeldMeeting:
    """A held meeting as the ledger's summary counts it against the quotas."""

    kind: str
    day: date  # local
    lecturer_id: int | None


@dataclass(frozen=True)
class LedgerData:
    """Everything the ledger workbook shows, read (and the right checked) by the service. `held`
    covers the whole quota periods the ledger touches (a quarter counts its meetings even when the
    ledger starts in its middle); `since` is the first day the bot was in use for the org (None:
    not yet), before which quota periods are 不适用."""

    org_name: str
    org_code: str
    first: date
    last: date
    now: datetime
    meetings: list[LedgerMeeting]
    quotas: dict[str, str]
    secretaries: frozenset[int]
    held: list[HeldMeeting] = field(default_factory=list)
    since: date | None = None


def meeting_from_row(row: Any) -> Meeting:
    return Meeting(
        id=row["id"], org_id=row["org_id"], org_name=row["org_name"], kind=MeetingKind(row["kind"]),
        include_below=bool(row["include_below"]), series_id=row["series_id"],
        starts_at=from_db(row["starts_at"]), ends_at=from_db(row["ends_at"]), place=row["place"],
        topic=row["topic"], lecturer=row["lecturer"], lecturer_id=row["lecturer_id"],
        status=MeetingStatus(row["status"]), cancel_reason=row["cancel_reason"], remind_gen=row["remind_gen"],
        edits=row["edits"], created_by=row["created_by"],
        held_at=from_db(row["held_at"]) if row["held_at"] else None,
    )


def attendee_from_row(row: Any) -> Attendee:
    return Attendee(
        person_id=row["person_id"], name=row["name"] or (f"@{row['username']}" if row["username"]
                                                         else str(row["person_id"])),
        source=InviteSource(row["source"]), answer=Answer(row["answer"]) if row["answer"] else None,
        leave_reason=row["leave_reason"],
        checked_in_at=from_db(row["checked_in_at"]) if row["checked_in_at"] else None,
        presence=Presence(row["presence"]) if row["presence"] else None,
    )


def org_group(kind: str) -> str | None:
    if kind in BRANCH_ORG_KINDS:
        return "branch"
    if kind in (OrgKind.party_group, OrgKind.county):
        return kind
    return None
