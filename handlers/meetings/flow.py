"""The state of a meeting flow (scheduling, editing, cancelling, adding people, a typed leave
reason, recording minutes, the ledger's typed dates), kept in the database by FlowStore between
messages: one typed object instead of a dict of loose keys, and the steps as an enum."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.callbacks import EditWhat
from bot.services.meeting_model import DEFAULT_DURATION, Draft, MeetingKind
from bot.services.meeting_time import Rule, rule_from_date

FLOW = "meeting"


class Mode(StrEnum):
    NEW = "new"
    EDIT = "edit"
    CANCEL = "cancel"
    ADD = "add"
    LEAVE = "leave"
    MINUTES = "minutes"
    LEDGER = "ledger"


class Step(StrEnum):
    KIND = "kind"
    ORG = "org"
    SCOPE = "scope"
    DATE = "date"
    TIME = "time"
    LENGTH = "length"
    PLACE = "place"
    TOPIC = "topic"
    LECTURER = "lecturer"
    CONFIRM = "confirm"
    PEOPLE = "people"
    REPEAT = "repeat"
    EDIT_DATE = "edit_date"
    EDIT_TIME = "edit_time"
    EDIT_PLACE = "edit_place"
    EDIT_TOPIC = "edit_topic"
    EDIT_REASON = "edit_reason"
    CANCEL_REASON = "cancel_reason"
    ADD_PEOPLE = "add_people"
    LEAVE_REASON = "leave_reason"
    MINUTES = "minutes"
    LEDGER_DATES = "ledger_dates"  # the ledger's first and last day, typed (state.org: whose ledger)


@dataclass
class Repeat:
    rule: str = "monthday"  # or "weekday"
    shift: bool = True      # a meeting on a holiday moves to the next working day
    lead: int = 7           # days ahead the meeting is created and announced


@dataclass
class MeetingFlowState:
    mode: Mode
    step: Step = Step.KIND
    kind: MeetingKind | None = None
    org: int | None = None
    below: bool = False
    day: str | None = None    # ISO date, local
    start: str | None = None  # HH:MM, local
    end: str | None = None
    place: str = ""
    topic: str = ""
    lecturer: str | None = None
    lecturer_id: int | None = None
    extra: list[int] = field(default_factory=list)
    places: list[str] = field(default_factory=list)  # the place buttons offered
    repeat: Repeat | None = None
    mid: int | None = None    # the meeting being edited, cancelled, answered or minuted
    what: EditWhat | None = None

    @property
    def editing(self) -> bool:
        return self.mode == Mode.EDIT

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        del data["step"]
        return data

    @classmethod
    def from_data(cls, step: str, data: dict[str, Any]) -> MeetingFlowState:
        """The stored state; ValueError or TypeError for data of another shape (an old version)."""
        values = dict(data)
        values["mode"] = Mode(values["mode"])
        if values.get("kind"):
            values["kind"] = MeetingKind(values["kind"])
        if values.get("repeat"):
            values["repeat"] = Repeat(**values["repeat"])
        if values.get("what"):
            values["what"] = EditWhat(values["what"])
        return cls(step=Step(step), **values)

    def day_date(self) -> date:
        assert self.day is not None
        return date.fromisoformat(self.day)

    def moments(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """(start, end) in the bot's time zone; two hours when no end was given."""
        assert self.start is not None
        day = self.day_date()
        starts = datetime.combine(day, time.fromisoformat(self.start), tzinfo=tz)
        ends = datetime.combine(day, time.fromisoformat(self.end), tzinfo=tz) if self.end else starts + DEFAULT_DURATION
        return starts, ends

    def draft(self, tz: ZoneInfo) -> Draft:
        assert self.kind is not None and self.org is not None
        starts, ends = self.moments(tz)
        return Draft(kind=self.kind, org_id=self.org, include_below=self.below, starts_at=starts, ends_at=ends,
                     place=self.place, topic=self.topic, lecturer=self.lecturer, lecturer_id=self.lecturer_id,
                     extra_people=list(self.extra))

    def repeat_rule(self) -> Rule:
        assert self.repeat is not None
        return rule_from_date(self.repeat.rule, self.day_date())
