"""Every kind of callback data, declared once: its prefix, its typed fields, how it is encoded and
parsed. Services build buttons with `KIND.encode(...)`; handlers register with `KIND.pattern` and
read `KIND.parse(query.data)`. Data carries an action and ids, never a right: whatever it says is
checked again by the service.

A kind's fields are a NamedTuple: `int`, `str` and `StrEnum` fields are supported, and trailing
fields with a default may be left out of the data (e.g. `tw:12` and `tw:12:y`)."""

from __future__ import annotations

import re
import typing
from enum import StrEnum
from typing import Any, Generic, NamedTuple, TypeVar

MAX_BYTES = 64  # Telegram's limit on callback data
SEP = ":"

T = TypeVar("T", bound=tuple[Any, ...])


class Kind(Generic[T]):
    """One kind of button: `prefix:field1:field2…`."""

    def __init__(self, prefix: str, fields: type[T]) -> None:
        if SEP in prefix or not prefix:
            raise ValueError(f"bad prefix {prefix!r}")
        self.prefix = prefix
        self.fields = fields
        hints = typing.get_type_hints(fields)
        self.names: tuple[str, ...] = fields._fields  # type: ignore[attr-defined]
        self.types = [hints[name] for name in self.names]
        defaults: dict[str, Any] = fields._field_defaults  # type: ignore[attr-defined]
        self.required = sum(1 for name in self.names if name not in defaults)
        self.pattern = f"^{re.escape(prefix)}(?:{SEP}|$)"
        KINDS.append(self)

    def encode(self, value: T) -> str:
        """The data for a button; raises ValueError past 64 bytes or for a field that cannot be sent."""
        parts = [self.prefix]
        defaults: dict[str, Any] = self.fields._field_defaults  # type: ignore[attr-defined]
        values = list(value)
        # Trailing fields still at their default are left out.
        while len(values) > self.required and self.names[len(values) - 1] in defaults \
                and values[-1] == defaults[self.names[len(values) - 1]]:
            values.pop()
        for name, field_type, field in zip(self.names, self.types, values, strict=False):
            parts.append(_encode_field(name, field_type, field))
        data = SEP.join(parts)
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        """`KIND(12, "a")` is `KIND.encode(Fields(12, "a"))`."""
        return self.encode(self.fields(*args, **kwargs))

    def parse(self, data: str | None) -> T | None:
        """The fields, or None for data of another kind, a wrong count or a wrong type (forged or stale)."""
        if not data:
            return None
        head, *raw = data.split(SEP)
        if head != self.prefix or not self.required <= len(raw) <= len(self.names):
            return None
        values: list[Any] = []
        for field_type, text in zip(self.types, raw, strict=False):
            try:
                values.append(_parse_field(field_type, text))
            except ValueError:
                return None
        return self.fields(*values)

    def __repr__(self) -> str:
        return f"Kind({self.prefix!r}, {self.fields.__name__})"


KINDS: list[Kind[Any]] = []


def _encode_field(name: str, field_type: Any, value: Any) -> str:
    if field_type is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an int, not {value!r}")
        return str(value)
    if isinstance(field_type, type) and issubclass(field_type, StrEnum):
        return str(field_type(value).value)
    text = str(value)
    if SEP in text or not text:
        raise ValueError(f"{name} cannot be sent as callback data: {text!r}")
    return text


def _parse_field(field_type: Any, text: str) -> Any:
    if field_type is int:
        if not re.fullmatch(r"-?[0-9]{1,19}", text):
            raise ValueError(text)
        return int(text)
    if isinstance(field_type, type) and issubclass(field_type, StrEnum):
        return field_type(text)
    if not text:
        raise ValueError(text)
    return text


# --- core: language, join requests, appointments, invitations ---------------------------------------

class Lang(NamedTuple):
    code: str


LANG = Kind("lang", Lang)


class Decision(StrEnum):
    APPROVE = "a"
    REJECT = "r"


class JoinDecision(NamedTuple):
    decision: Decision
    request_id: int


JOIN_DECISION = Kind("jr", JoinDecision)


class AppointOrg(NamedTuple):
    org_id: int


class AppointPerson(NamedTuple):
    org_id: int
    person_id: int


class AppointAction(StrEnum):
    GRANT = "g"
    REMOVE = "r"


class AppointChange(NamedTuple):
    action: AppointAction
    org_id: int
    person_id: int
    role: str  # a role code from handlers.appoint.ROLE_CODES


APPOINT_ORG = Kind("apo", AppointOrg)
APPOINT_PERSON = Kind("app", AppointPerson)
APPOINT_CHANGE = Kind("apc", AppointChange)


class InviteOrg(NamedTuple):
    org_id: int


class InviteRole(NamedTuple):
    org_id: int
    role: str  # a role code


INVITE_ORG = Kind("ivo", InviteOrg)
INVITE_ROLE = Kind("ivr", InviteRole)

# --- tickets (problem wall) -------------------------------------------------------------------------

# --- meetings (三会一课) ------------------------------------------------------------------------------
# A meeting's buttons carry the meeting (or org, or series) id; the service checks every right again.


class NewMeeting(NamedTuple):
    """「安排会议」 under a quota reminder: starts the scheduling flow."""


MEETING_NEW = Kind("mtn", NewMeeting)


class MemberAction(StrEnum):
    ATTEND = "a"
    LEAVE = "l"          # asks for the reason
    LEAVE_TYPED = "lt"   # the reason will be typed
    CALENDAR = "i"       # the .ics file
    CHECKIN = "ci"
    VIEW = "v"           # the meeting card


class MeetingMember(NamedTuple):
    action: MemberAction
    meeting_id: int


MEETING_MEMBER = Kind("mtm", MeetingMember)


class LeaveReason(NamedTuple):
    meeting_id: int
    reason: int  # index into handlers.meetings.attendance.LEAVE_REASONS


MEETING_LEAVE_REASON = Kind("mtl", LeaveReason)


class ManageAction(StrEnum):
    ROSTER = "r"
    CARD = "vb"          # back to the card (edited in place)
    NUDGE = "u"
    EDIT = "e"           # the "what to change" menu
    CANCEL = "x"
    ADD_PEOPLE = "ap"
    MINUTES = "m"
    CLOSE = "mc"


class MeetingManage(NamedTuple):
    action: ManageAction
    meeting_id: int


MEETING_MANAGE = Kind("mtg", MeetingManage)


class MarkPage(NamedTuple):
    meeting_id: int
    page: int
    person_id: int = 0  # 0: only show the page; else cycle this person's mark first


MEETING_MARK = Kind("mtk", MarkPage)


class EditWhat(StrEnum):
    TIME = "t"
    PLACE = "p"
    TOPIC = "a"


class MeetingEdit(NamedTuple):
    meeting_id: int
    what: EditWhat


MEETING_EDIT = Kind("mte", MeetingEdit)


class SeriesStop(NamedTuple):
    series_id: int


MEETING_SERIES_STOP = Kind("mts", SeriesStop)


class FlowAction(StrEnum):
    """A button of the scheduling (or edit / cancel) flow; valid only at its step."""

    ABORT = "q"
    KIND = "k"            # value: index into KINDS
    ORG = "o"             # value: org id
    SCOPE = "b"           # value: 1 = this org and every org below
    DAY = "d"             # value: yyyymmdd
    HOUR = "h"            # value: hhmm
    OTHER_DAY = "dd"
    PLACE = "p"           # value: index into the recent places
    LECTURER_ME = "lm"
    SEND = "ok"
    PEOPLE = "pp"
    REPEAT = "rp"
    REPEAT_RULE = "rr"    # value: 1 = by weekday, 0 = by day of the month
    REPEAT_HOLIDAY = "rh"
    REPEAT_LEAD = "rl"    # value: days
    REPEAT_DONE = "rd"
    NO_REPEAT = "rn"
    BACK = "bk"
    NO_REASON = "es"
    CANCEL_REASON = "xr"  # value: index into CANCEL_REASONS
    KEEP = "xk"


class MeetingFlow(NamedTuple):
    action: FlowAction
    value: int = 0


MEETING_FLOW = Kind("mtf", MeetingFlow)


class SettingsAction(StrEnum):
    SHOW = "sg"
    OFFSET = "so"            # value: minutes
    DEFAULTS = "sd"
    COMMITTEE = "cg"
    COMMITTEE_PERSON = "cm"  # value: person id


class MeetingSettings(NamedTuple):
    action: SettingsAction
    org_id: int
    value: int = 0


MEETING_SETTINGS = Kind("mst", MeetingSettings)


class QuotaCycle(NamedTuple):
    org_id: int
    kind: str  # a QuotaKind value; the service refuses any other


MEETING_QUOTA = Kind("mtq", QuotaCycle)


class LedgerPick(NamedTuple):
    org_id: int
    first: int  # yyyymmdd
    last: int   # yyyymmdd


MEETING_LEDGER = Kind("mtx", LedgerPick)


class LegacyMeeting(NamedTuple):
    """Buttons sent before this codec (`mt:a:12`, `mt:m:12`, `mt:new`), still under notices in
    people's chats and under reminders queued in the outbox: read so that they keep working."""

    action: str
    meeting_id: int = 0


MEETING_LEGACY = Kind("mt", LegacyMeeting)
