"""Every kind of callback data, declared once: its prefix, its typed fields, how it is encoded and
parsed. Services build buttons with `KIND.encode(...)`; handlers register with `KIND.pattern` and
read `KIND.parse(query.data)`. Data carries an action and ids, never a right: whatever it says is
checked again by the service.

A prefix may have several parts (`ap:o`); each kind's pattern matches its whole shape, so kinds
that share a first part never catch each other's data. A kind's fields are a NamedTuple of `int`
and `StrEnum` fields (`str` works, but a test asks for ids and enums, whose size is known);
trailing fields with a default may be left out of the data (e.g. `tw:12` and `tw:12:y`)."""

from __future__ import annotations

import re
import secrets
import typing
from enum import StrEnum
from typing import Any, Generic, NamedTuple, TypeVar

from bot.config import SUPPORTED_LOCALES
from bot.services.meeting_model import QuotaKind

MAX_BYTES = 64  # Telegram's limit on callback data
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what SQLite stores
SEP = ":"

T = TypeVar("T", bound=tuple[Any, ...])


class Kind(Generic[T]):
    """One kind of button: `prefix:field1:field2…`."""

    def __init__(self, prefix: str, fields: type[T]) -> None:
        if not prefix or any(not part for part in prefix.split(SEP)):
            raise ValueError(f"bad prefix {prefix!r}")
        self.prefix = prefix
        self.fields = fields
        hints = typing.get_type_hints(fields)
        self.names: tuple[str, ...] = fields._fields  # type: ignore[attr-defined]
        self.types = [hints[name] for name in self.names]
        defaults: dict[str, Any] = fields._field_defaults  # type: ignore[attr-defined]
        self.required = sum(1 for name in self.names if name not in defaults)
        # The whole shape, so that kinds sharing a prefix ("ap:o:1" and "ap:g:1:2:s") never overlap.
        shape = re.escape(prefix)
        for i, field_type in enumerate(self.types):
            part = f"{re.escape(SEP)}{_field_regex(field_type)}"
            shape += part if i < self.required else f"(?:{part}"
        shape += ")?" * (len(self.types) - self.required)
        self.pattern = f"^{shape}$"
        self._regex = re.compile(self.pattern)
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
        if not data or not self._regex.match(data):
            return None
        raw = data[len(self.prefix) + 1:].split(SEP) if len(data) > len(self.prefix) else []
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


class Token(str):
    """A short random token (e.g. a draft's, so that a button of an older draft is stale): 6 hex digits."""

    REGEX = "[0-9a-f]{6}"

    @classmethod
    def new(cls) -> Token:
        return cls(secrets.token_hex(3))


def _field_regex(field_type: Any) -> str:
    if field_type is Token:
        return Token.REGEX
    if field_type is int:
        return r"-?[0-9]{1,19}"
    if isinstance(field_type, type) and issubclass(field_type, StrEnum):
        return "(?:" + "|".join(re.escape(member.value) for member in field_type) + ")"
    return f"[^{SEP}]+"


def _encode_field(name: str, field_type: Any, value: Any) -> str:
    if field_type is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an int, not {value!r}")
        return str(value)
    if isinstance(field_type, type) and issubclass(field_type, StrEnum):
        return str(field_type(value).value)
    if field_type is Token and not re.fullmatch(Token.REGEX, str(value)):
        raise ValueError(f"{name} is not a token: {value!r}")
    text = str(value)
    if SEP in text or not text:
        raise ValueError(f"{name} cannot be sent as callback data: {text!r}")
    return text


def _parse_field(field_type: Any, text: str) -> Any:
    if field_type is int:
        if not re.fullmatch(r"-?[0-9]{1,19}", text):
            raise ValueError(text)
        number = int(text)
        if not INT_MIN <= number <= INT_MAX:  # a forged id past SQLite's 64 bits would crash the query
            raise ValueError(text)
        return number
    if isinstance(field_type, type) and issubclass(field_type, StrEnum):
        return field_type(text)
    if field_type is Token:
        return Token(text)
    if not text:
        raise ValueError(text)
    return text


# --- core: language, join requests, appointments, invitations ---------------------------------------

LangCode = StrEnum("LangCode", {code.upper(): code for code in SUPPORTED_LOCALES})  # type: ignore[misc]


class Lang(NamedTuple):
    code: LangCode  # type: ignore[valid-type]


LANG = Kind("lang", Lang)


class Verdict(StrEnum):
    APPROVE = "a"
    REJECT = "r"


class JoinDecision(NamedTuple):
    verdict: Verdict
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


class RoleCode(StrEnum):
    """A role in one letter (callback data is short)."""

    SECRETARY = "s"
    ORGANIZER = "o"
    MEMBER = "m"
    RESIDENT = "r"

    @property
    def role(self) -> str:
        return self.name.lower()

    @classmethod
    def of(cls, role: str) -> RoleCode:
        return cls[role.upper()]


class AppointChange(NamedTuple):
    action: AppointAction
    org_id: int
    person_id: int
    role: RoleCode


APPOINT_ORG = Kind("ap:o", AppointOrg)
APPOINT_PERSON = Kind("ap:p", AppointPerson)
APPOINT_CHANGE = Kind("ap", AppointChange)


class InviteOrg(NamedTuple):
    org_id: int


class InviteRole(NamedTuple):
    org_id: int
    role: RoleCode


INVITE_ORG = Kind("iv:o", InviteOrg)
INVITE_ROLE = Kind("iv:r", InviteRole)

# --- tickets (problem wall) -------------------------------------------------------------------------

class DraftAction(StrEnum):
    CATEGORY = "c"
    PUBLIC = "p"
    ANONYMOUS = "a"
    CONFIRM = "ok"
    CANCEL = "x"


class SubmitDraft(NamedTuple):
    draft: Token  # a button of an older draft is stale
    action: DraftAction
    index: int = -1  # the category's place in the list, for CATEGORY


class TicketRef(NamedTuple):
    ticket_id: int


class Confirm(StrEnum):
    ASK = "q"
    YES = "y"


class Withdraw(NamedTuple):
    ticket_id: int
    confirm: Confirm = Confirm.ASK


class RatingChoice(StrEnum):
    GOOD = "g"
    OK = "o"
    BAD = "b"


class Rate(NamedTuple):
    rating: RatingChoice
    ticket_id: int


class PresetReason(NamedTuple):
    ticket_id: int
    reason: int


class InfoStep(StrEnum):
    START = "start"
    SEND = "send"


class AddInfo(NamedTuple):
    ticket_id: int
    step: InfoStep = InfoStep.START


class TicketAction(StrEnum):
    ACCEPT = "a"
    REPLY = "r"
    ASK = "i"
    TRANSFER = "t"
    DECLINE = "d"
    RESOLVE = "z"
    HISTORY = "h"
    BLOCK = "b"


class HandlerAction(NamedTuple):
    action: TicketAction
    ticket_id: int


class TargetKind(StrEnum):
    ORG = "o"
    PERSON = "p"


class TransferTarget(NamedTuple):
    ticket_id: int
    kind: TargetKind
    target_id: int


class NoFields(NamedTuple):
    pass


class BlockRef(NamedTuple):
    block_id: int


class WallPage(NamedTuple):
    org_id: int
    page: int


class BindWall(NamedTuple):
    org_id: int
    chat_id: int


SUBMIT_DRAFT = Kind("sb", SubmitDraft)
TICKET_VIEW = Kind("tv", TicketRef)
TICKET_WITHDRAW = Kind("tw", Withdraw)
TICKET_RATE = Kind("tr", Rate)
TICKET_PRESET_REASON = Kind("tq", PresetReason)
TICKET_ADD_INFO = Kind("tn", AddInfo)
TICKET_ACTION = Kind("tk", HandlerAction)
TICKET_TRANSFER = Kind("tt", TransferTarget)
TICKET_REPLY_SEND = Kind("ts", TicketRef)
TICKET_REPLY_PUBLISH = Kind("tp", TicketRef)  # the secretary saw the public text and sends the answer
TICKET_FLOW_CANCEL = Kind("tx", NoFields)
TICKET_UNBLOCK = Kind("ub", BlockRef)
WALL_PAGE = Kind("wl", WallPage)
WALL_BIND = Kind("bw", BindWall)


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
    LENGTH = "ln"         # value: minutes
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
    kind: QuotaKind


MEETING_QUOTA = Kind("mtq", QuotaCycle)


class LedgerPick(NamedTuple):
    org_id: int
    first: int  # yyyymmdd
    last: int   # yyyymmdd


MEETING_LEDGER = Kind("mtx", LedgerPick)


class LedgerAction(StrEnum):
    PERIODS = "p"  # show the period picker for the org
    TYPE = "t"     # ask for typed dates


class LedgerMenu(NamedTuple):
    action: LedgerAction
    org_id: int


MEETING_LEDGER_MENU = Kind("mtz", LedgerMenu)


class LegacyAction(StrEnum):
    """The old actions still read: a member's answers, "record minutes", "schedule a meeting"."""

    ATTEND = "a"
    LEAVE = "l"
    LEAVE_TYPED = "lt"
    CALENDAR = "i"
    CHECKIN = "ci"
    VIEW = "v"
    MINUTES = "m"
    NEW = "new"


class LegacyMeeting(NamedTuple):
    """Buttons sent before this codec (`mt:a:12`, `mt:m:12`, `mt:new`), still under notices in
    people's chats and under reminders queued in the outbox: read so that they keep working."""

    action: LegacyAction
    meeting_id: int = 0


MEETING_LEGACY = Kind("mt", LegacyMeeting)


# --- echo wall poster -------------------------------------------------------------------------------

class PosterPick(NamedTuple):
    org_id: int
    month: int  # YYYYMM


POSTER = Kind("pst", PosterPick)


# --- prompts: which open question a typed message answers; 取消 with typed content -----------------

class PromptPick(NamedTuple):
    kept: Token  # the kept message (a tap after it was placed is stale)
    target: int  # an open question's id; 0: the flow in progress; -1, -2 …: a fresh start (a new problem)


PROMPT_PICK = Kind("pk", PromptPick)


class CancelChoice(StrEnum):
    DISCARD = "d"  # 放弃这段内容
    BACK = "b"     # 回到上一步


class PromptCancel(NamedTuple):
    flow: Token  # the flow's fingerprint when 取消 was tapped: a flow that moved on since makes it stale
    choice: CancelChoice


PROMPT_CANCEL = Kind("pc", PromptCancel)
# --- deliberation (民主议事) -----------------------------------------------------------------------
# A round's buttons carry the round (or opinion) id; the service checks every right again, and a
# ballot's choices (a bit mask) are checked against the round's options when cast.


class DelibFlowAction(StrEnum):
    """A button of the opening flow (or of the opinion and reason steps); valid only at its step."""

    NEW = "n"            # start the opening flow
    ABORT = "q"
    ORG = "o"            # value: org id
    SCOPE = "b"          # value: 1 = the org and every org below
    DONE = "d"           # the background (or the options) is complete
    AUDIENCE = "a"       # value: index into Audience
    DAYS = "t"           # value: days from now (opinions) or after the opinion phase (votes)
    VOTE = "v"           # value: 1 = a vote phase
    MULTIPLE = "m"       # value: 0 single, else the maximum number of choices
    SECRET = "s"         # value: 1 = secret ballot
    LIVE = "l"           # value: 1 = live results
    CONFIRM = "ok"
    ANONYMOUS = "an"     # value: 1 = anonymous (after the opinion was given)
    REASON = "r"         # value: index into the preset reasons


class DelibFlow(NamedTuple):
    action: DelibFlowAction
    value: int = 0


class DelibView(StrEnum):
    CARD = "c"
    OPINIONS = "o"       # page: the page of opinions (a new message)
    PAGE = "p"           # another page, in place of the one shown
    WRITE = "w"
    BALLOT = "b"
    RESULT = "r"
    MANAGE = "m"


class DelibShow(NamedTuple):
    action: DelibView
    round_id: int
    page: int = 0


class BallotAction(StrEnum):
    TOGGLE = "t"         # show the ballot with `mask` ticked (the button's option toggled)
    CAST = "c"           # cast `mask`


class DelibBallot(NamedTuple):
    action: BallotAction
    round_id: int
    mask: int            # the options ticked, bit i for option i
    for_person: int = 0  # a proxy ballot (代投): the person it is for


class DelibManage(StrEnum):
    EXTEND = "e"         # value: days (asks for the reason)
    CLOSE = "c"          # asks for the reason
    CANCEL = "x"         # asks for the reason
    PROXY = "p"          # the list of people to vote for
    OPTION = "o"         # type a new choice


class DelibManaged(NamedTuple):
    action: DelibManage
    round_id: int
    value: int = 0


class OpinionAct(StrEnum):
    SUPPORT = "s"
    HIDE = "h"           # asks for the reason
    TO_OPTION = "o"      # make it a choice of the vote
    VOICE = "v"          # play the voice note


class DelibOpinion(NamedTuple):
    action: OpinionAct
    opinion_id: int
    page: int = 0


class DelibProxy(NamedTuple):
    round_id: int
    person_id: int


DELIB_FLOW = Kind("df", DelibFlow)
DELIB_VIEW = Kind("dv", DelibShow)
DELIB_BALLOT = Kind("db", DelibBallot)
DELIB_MANAGE = Kind("dm", DelibManaged)
DELIB_OPINION = Kind("do", DelibOpinion)
DELIB_PROXY = Kind("dp", DelibProxy)


class DelibLedger(NamedTuple):
    org_id: int
    year: int


DELIB_LEDGER = Kind("dx", DelibLedger)


# --- the opinion map of a deliberation round (handlers/opinions.py) ---------------------------------
# Ids only; the service checks the round's rights again on every press.


class OmAct(StrEnum):
    START = "s"          # 表态: the next statement, in a new message
    WRITE = "w"          # write a statement (asks for the text)
    STOP = "x"           # stop for now (the message loses its buttons)
    MAP = "m"            # the opener: the live map; after the close: the result
    ENABLE = "e"         # the opener turns the map on
    SEED = "d"           # the opener: type seed statements
    OPEN = "o"           # the opener opens the map for voting
    LIST = "l"           # the opener: the statements, to hide one (page)


class OmRound(NamedTuple):
    action: OmAct
    round_id: int
    page: int = 0


class OmChoice(StrEnum):
    AGREE = "a"
    DISAGREE = "d"
    PASS = "p"


class OmVote(NamedTuple):
    statement_id: int
    choice: OmChoice


class OmHide(NamedTuple):
    statement_id: int
    reason: int          # index into services.opinions.HIDE_REASONS


OM_ROUND = Kind("omr", OmRound)
OM_VOTE = Kind("omv", OmVote)
OM_HIDE = Kind("omh", OmHide)


# --- 四议两公开 matters (handlers/matters.py) --------------------------------------------------------
class MatterOrgAct(StrEnum):
    BOARD = "b"          # the org's board
    NEW = "n"            # open a matter (asks for the title)
    EXPORT = "x"         # the Excel record of every matter
    LIMIT = "l"          # value 0: the limit's choices; else set it to `value` days


class MatterOrg(NamedTuple):
    action: MatterOrgAct
    org_id: int
    value: int = 0


class MatterAct(StrEnum):
    VIEW = "v"           # the matter's whole record
    STAGE = "s"          # record `stage` (the service refuses any but the next one)
    DECISION = "d"       # 决议公开 (asks for the text)
    RESULT = "r"         # 实施结果公开 (asks for the text and photos)


class MatterPress(NamedTuple):
    action: MatterAct
    matter_id: int
    stage: int = 0


class MatterStep(StrEnum):
    TODAY = "t"          # the stage was held today
    MEETING = "m"        # value: the meeting's id, 0 for none
    VOTE = "v"           # value: 0 none, 1 a deliberation round, 2 paper counts
    ROUND = "r"          # value: the round's id
    OUTCOME = "o"        # value: 1 passed, 0 rejected
    SKIP = "s"           # no note / no description / no estimate / no (more) photos
    CONFIRM = "c"
    ABORT = "a"


class MatterFlowPress(NamedTuple):
    action: MatterStep
    value: int = 0


MATTER_ORG = Kind("vmo", MatterOrg)
MATTER = Kind("vmm", MatterPress)
MATTER_FLOW = Kind("vmf", MatterFlowPress)
# --- appraisal (书记双述双评) ----------------------------------------------------------------------
# An appraisal's buttons carry the appraisal's or one secretary's (target's) id; the service checks
# every right again. A rating's choice is an enum, so a forged choice does not even parse.


class SaFlowAction(StrEnum):
    """A button of the opening flow; valid only at its step."""

    NEW = "n"
    ABORT = "q"
    YEAR = "y"           # value: the year
    PICK = "p"           # value: index into the organiser's candidates (toggle)
    ALL = "a"            # pick every candidate
    PICKED = "d"         # the secretaries are picked
    DAYS = "t"           # value: days of the window
    CONFIRM = "ok"


class SaFlow(NamedTuple):
    action: SaFlowAction
    value: int = 0


class SaView(StrEnum):
    APPRAISAL = "a"      # an appraisal for those who lead it: progress, or results after the close
    TARGET = "t"         # one secretary's report: read and rate it; their own (the secretary), results
    PLAY = "p"           # the report's voice note or document, copied to the reader


class SaShow(NamedTuple):
    view: SaView
    id: int


class SaChoice(StrEnum):
    SATISFIED = "s"
    BASICALLY = "b"
    UNSATISFIED = "u"


class SaRate(NamedTuple):
    target_id: int
    choice: SaChoice


class SaAction(StrEnum):
    REPORT = "r"         # the secretary posts (or replaces) the report: id is the target
    PUBLISH = "p"        # id is the appraisal
    NO_COMMENT = "x"     # the rater adds no comment: id is the target


class SaAct(NamedTuple):
    action: SaAction
    id: int


SA_FLOW = Kind("saf", SaFlow)
SA_VIEW = Kind("sav", SaShow)
SA_RATE = Kind("sar", SaRate)
SA_ACT = Kind("saa", SaAct)


# --- broadcasts (/broadcast) ------------------------------------------------------------------------
# Every button carries the broadcast (or org) id; the service checks the sender's rights again.

class BroadcastOrg(NamedTuple):
    org_id: int


class BroadcastAction(StrEnum):
    ROLE = "r"       # value: index into services.broadcasts.ROLES
    CONTENT = "c"    # ask for the content
    ACK = "a"        # 收到 button on / off
    URGENT = "u"     # urgent on / off (sent in quiet hours too)
    NOW = "n"
    AT = "t"         # value: local yyyymmddhhmm
    TYPE_TIME = "tt"
    PREVIEW = "p"
    SEND = "ok"
    ABORT = "x"


class BroadcastStep(NamedTuple):
    broadcast_id: int
    action: BroadcastAction
    value: int = 0


class BroadcastRef(NamedTuple):
    broadcast_id: int


BC_ORG = Kind("bco", BroadcastOrg)
BC_DRAFT = Kind("bcd", BroadcastStep)
BC_STOP = Kind("bcx", BroadcastRef)      # stop sending (on the progress message)
BC_ACK = Kind("bck", BroadcastRef)       # a recipient's 收到
BC_ACKS = Kind("bcv", BroadcastRef)      # the sender: who has tapped 收到
BC_REMIND = Kind("bcm", BroadcastRef)    # the sender: remind those who have not, once


# --- digests (notices at once, or one daily digest at 08:00) -----------------------------------------
class DigestMode(StrEnum):
    NOW = "n"      # low-priority notices at once
    DAILY = "d"    # one digest a day at 08:00


class DigestScreen(StrEnum):
    ME = "m"        # the choice shown under /me
    SETTINGS = "s"  # /settings


class DigestSet(NamedTuple):
    mode: DigestMode
    screen: DigestScreen


class DigestOpen(NamedTuple):
    item_id: int  # the held outbox row the digest lists


DG_SET = Kind("dgs", DigestSet)
DG_OPEN = Kind("dgo", DigestOpen)  # send me this item of my digest


class DigestWall(NamedTuple):
    org_id: int  # the echo wall (public) of this org, sent as a new message


DG_WALL = Kind("dgw", DigestWall)  # a digest's echo-wall line: show that org's wall
# --- pledges and points (设岗承诺 · 积分 · 评星定级; handlers/points.py) -------------------------------
# Data carries an action and ids (an org, a person, a post, a pledge, a report); the services check
# every right again, so a forged or stale press changes nothing.

class PgAction(StrEnum):
    BOARD = "b"          # id: org — the branch's posts and pledges
    POSTS = "p"          # id: org — the posts a member may take
    TAKE = "t"           # id: post
    WRITE = "w"          # id: org — type a pledge
    REPORT = "r"         # id: pledge — 践诺 (type or send photos)
    SUBMIT = "s"         # id: pledge — send the collected 践诺
    ADD_POST = "a"       # id: org — the secretary types a post
    REMOVE_POST = "d"    # id: post
    PENDING = "q"        # id: org — reports waiting for 督诺
    CONFIRM = "c"        # id: report — 督诺


class PgAct(NamedTuple):
    action: PgAction
    id: int


class PnAction(StrEnum):
    MINE = "m"           # my own points
    TABLE = "t"          # org: the branch's table
    PERSON = "p"         # org, person: one member's points, with add / deduct buttons
    ADJUST = "a"         # org, person, value = the delta: then the reason is typed
    RULES = "r"          # org: the rules screen (organisers)


class PnAct(NamedTuple):
    action: PnAction
    org: int = 0
    person: int = 0
    value: int = 0


class RuleKey(StrEnum):
    MEETING = "meeting"
    THEME_DAY = "theme_day"
    DELIBERATION = "deliberation"
    PLEDGE = "pledge"
    TICKET = "ticket"
    STARS2 = "stars2"
    STARS3 = "stars3"
    STARS4 = "stars4"
    STARS5 = "stars5"


class PnRule(NamedTuple):
    org: int
    key: RuleKey
    value: int           # the new value (a stale press sets what its screen showed, once more)


class SrAction(StrEnum):
    PREVIEW = "v"        # the proposed stars of the year
    OPEN = "o"           # open the members' vote on them


class SrAct(NamedTuple):
    action: SrAction
    org: int
    year: int


PG = Kind("pg", PgAct)
PN = Kind("pn", PnAct)
PN_RULE = Kind("pnr", PnRule)
SR = Kind("sr", SrAct)
# --- supervision bulletins (/report) -----------------------------------------------------------------

class ReportPick(NamedTuple):
    org_id: int
    first: int  # YYYYMMDD
    last: int   # YYYYMMDD


REPORT_ORG = Kind("rp", ReportPick)  # which org's bulletin, for someone who leads several
