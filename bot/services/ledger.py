"""The meeting ledger (台账) as an Excel workbook (openpyxl): a summary sheet of meetings held
against those required per period (in the order the periods end; 不适用 for periods before the org
used the bot, and a line saying which period is the first counted), then one sheet per kind of
meeting with one row per meeting (date and time as the reader writes them, org, kind, topic,
lecturer where there are lectures, place, invited / attended / on leave / absent as counts and
names, leave reasons, minutes, status with the reason of a cancellation).

A renderer only: it is handed `LedgerData` (read, and the right checked, by the meetings service)
and touches neither the database nor the service, so it can run in a worker thread. Every text
cell is written as text: a name such as `=HYPERLINK(...)` must never become a formula."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import TYPE_STRING
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.formatting import Formatter
from bot.i18n import Translator
from bot.services.ledger_period import counted, day_range, first_counted
from bot.services.meeting_model import (
    KINDS,
    QUOTA_KINDS,
    Answer,
    HeldMeeting,
    LedgerData,
    LedgerMeeting,
    MeetingKind,
    MeetingStatus,
    MinutesKind,
    Period,
    QuotaKind,
)
from bot.services.meeting_text import STATUS_KEYS, MeetingText
from bot.services.meeting_time import periods_between

CELL_MAX = 32000  # Excel holds 32,767 characters in a cell
SUMMARY_CHARS = 300
_BAD_SHEET_CHARS = str.maketrans({c: "_" for c in "[]:*?/\\"})
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
THIN = Side(style="thin", color="999999")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)

# (catalog key, column width); the lecturer's column only where there are lectures.
COLUMNS = [
    ("meeting.ledger.col_date", 18), ("meeting.ledger.col_time", 14), ("meeting.ledger.col_org", 18),
    ("meeting.ledger.col_kind", 14), ("meeting.ledger.col_topic", 30), ("meeting.ledger.col_lecturer", 10),
    ("meeting.ledger.col_place", 16), ("meeting.ledger.col_invited", 8), ("meeting.ledger.col_attended_count", 8),
    ("meeting.ledger.col_leave_count", 8), ("meeting.ledger.col_absent_count", 8),
    ("meeting.ledger.col_attended", 30), ("meeting.ledger.col_leave", 30), ("meeting.ledger.col_absent", 24),
    ("meeting.ledger.col_minutes", 40), ("meeting.ledger.col_status", 12),
]
LECTURER = "meeting.ledger.col_lecturer"
SUMMARY_COLUMNS = [
    ("meeting.ledger.sum_period", 16), ("meeting.ledger.sum_kind", 16), ("meeting.ledger.sum_required", 10),
    ("meeting.ledger.sum_held", 10), ("meeting.ledger.sum_result", 12),
]
SUMMARY_HEADER_ROW = 4  # title, where counting starts, what 不适用 means, then the table
EVERY_KEYS = {Period.MONTH: "meeting.ledger.every_month", Period.QUARTER: "meeting.ledger.every_quarter",
              Period.YEAR: "meeting.ledger.every_year"}
PERIOD_ORDER = (Period.MONTH, Period.QUARTER, Period.YEAR)


class Result(StrEnum):
    DONE = "done"
    MISSING = "missing"
    IN_PROGRESS = "in_progress"
    NOT_APPLICABLE = "not_applicable"


RESULT_KEYS = {Result.DONE: "meeting.ledger.done", Result.MISSING: "meeting.ledger.missing",
               Result.IN_PROGRESS: "meeting.ledger.in_progress", Result.NOT_APPLICABLE: "meeting.ledger.not_applicable"}


@dataclass(frozen=True)
class SummaryRow:
    """One quota period of one kind: how many were required and held, and the verdict."""

    kind: str
    period: str
    start: date
    end: date  # exclusive
    required: int | None  # None: the period does not count (不适用)
    held: int
    result: Result


def _names(people: list[str], lang: str, fmt: Formatter, t: Translator) -> str:
    text = fmt.join(lang, people) if people else ""
    if len(text) <= CELL_MAX:
        return text
    kept: list[str] = []
    size = 0
    for name in people:
        if size + len(name) + 20 > CELL_MAX:
            break
        kept.append(name)
        size += len(name) + 2
    return fmt.join(lang, kept) + t(lang, "meeting.ledger.more", count=len(people) - len(kept))


def render(data: LedgerData, t: Translator, text: MeetingText, fmt: Formatter, lang: str,
           extra: Sequence[Callable[[Workbook], None]] = ()) -> bytes:
    """The workbook's bytes (CPU-bound: the service runs it in a worker thread). `extra` adds the
    org's other records after the meetings (deliberation rounds, 四议两公开 matters)."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in data.meetings:
        by_kind.setdefault(item.meeting.kind, []).append(_meeting_row(item, t, text, fmt, lang, data.now))
    book = Workbook()
    summary_sheet = book.active
    assert summary_sheet is not None
    summary_sheet.title = _sheet_title(t(lang, "meeting.ledger.summary"))
    _write_summary(summary_sheet, data, t, text, fmt, lang)
    kinds = [k for k in KINDS if k in by_kind or data.quotas.get(k, Period.NONE) != Period.NONE]
    for kind in kinds:
        rows = by_kind.get(kind, [])
        columns = [(key, width) for key, width in COLUMNS
                   if key != LECTURER or kind == MeetingKind.LECTURE or any(r[LECTURER] for r in rows)]
        sheet = book.create_sheet(_sheet_title(text.kind(lang, kind)))
        _write_table(sheet, [t(lang, key) for key, _ in columns], [w for _, w in columns],
                     [[row[key] for key, _ in columns] for row in rows])
    for add in extra:
        add(book)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _meeting_row(item: LedgerMeeting, t: Translator, text: MeetingText, fmt: Formatter, lang: str,
                 now: datetime) -> dict[str, Any]:
    """One meeting, by column key. Who attended, was absent or on leave is known once the meeting
    has started; a cancelled meeting lists only who had asked for leave."""
    meeting, attendees = item.meeting, item.attendees
    status = meeting.status
    if status == MeetingStatus.SCHEDULED and now >= meeting.ends_at:
        status = MeetingStatus.UNCLOSED
    took_place = status in (MeetingStatus.HELD, MeetingStatus.UNCLOSED) or (
        status == MeetingStatus.SCHEDULED and now >= meeting.starts_at)
    attended = [a.name for a in attendees if a.attended] if took_place else []
    on_leave = [a for a in attendees if not a.attended and a.answer == Answer.LEAVE]
    leave = [t(lang, "meeting.ledger.leave_item", name=a.name, reason=a.leave_reason or "") if a.leave_reason
             else a.name for a in on_leave]
    absent = [a.name for a in attendees if took_place and not a.attended and a.answer != Answer.LEAVE]
    state = t(lang, STATUS_KEYS[status])
    if status == MeetingStatus.CANCELLED and meeting.cancel_reason:
        state = t(lang, "meeting.ledger.cancelled_because", status=state, reason=meeting.cancel_reason)
    return {
        "meeting.ledger.col_date": fmt.day(lang, meeting.starts_at, year=True),
        "meeting.ledger.col_time": _times(fmt, lang, meeting.starts_at, meeting.ends_at),
        "meeting.ledger.col_org": meeting.org_name,
        "meeting.ledger.col_kind": text.kind(lang, meeting.kind),
        "meeting.ledger.col_topic": meeting.topic,
        LECTURER: meeting.lecturer or "",
        "meeting.ledger.col_place": meeting.place,
        "meeting.ledger.col_invited": len(attendees),
        "meeting.ledger.col_attended_count": len(attended) if took_place else "",
        "meeting.ledger.col_leave_count": len(on_leave),
        "meeting.ledger.col_absent_count": len(absent) if took_place else "",
        "meeting.ledger.col_attended": _names(attended, lang, fmt, t),
        "meeting.ledger.col_leave": _names(leave, lang, fmt, t),
        "meeting.ledger.col_absent": _names(absent, lang, fmt, t),
        "meeting.ledger.col_minutes": _minutes(item, t, lang),
        "meeting.ledger.col_status": state,
    }


def _times(fmt: Formatter, lang: str, start: datetime, end: datetime) -> str:
    """下午3:00—5:00: the Formatter's span of the day, without the day (the date has its column);
    a meeting past midnight keeps both days."""
    whole = fmt.span(lang, start, end)
    if fmt.local(start).date() != fmt.local(end).date():
        return whole
    day = fmt.day(lang, start)
    return whole[len(day):].lstrip(" ,") if whole.startswith(day) else whole


def _minutes(item: LedgerMeeting, t: Translator, lang: str) -> str:
    summary = " ".join((m.text or "").replace("\n", " ") for m in item.minutes if m.kind == MinutesKind.TEXT).strip()
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS] + "…"
    photos = sum(1 for m in item.minutes if m.kind == MinutesKind.PHOTO)
    documents = sum(1 for m in item.minutes if m.kind == MinutesKind.DOCUMENT)
    if photos or documents:
        summary = (summary + " " + t(lang, "meeting.ledger.minutes_files", photos=photos,
                                      documents=documents)).strip()
    return summary


def _sheet_title(name: str) -> str:
    return name.translate(_BAD_SHEET_CHARS)[:31] or "-"


def _cell(sheet: Worksheet, row: int, column: int, value: Any) -> Any:
    """A cell; text is stored as text (never read as a formula, even when it starts with =, +, - or @)."""
    cell = sheet.cell(row=row, column=column)
    if isinstance(value, str):
        cell._value = value  # openpyxl's setter would turn "=..." into a formula
        cell.data_type = TYPE_STRING
    else:
        cell.value = value
    return cell


def _write_table(sheet: Worksheet, headers: list[str], widths: list[int], rows: list[list[Any]],
                 start_row: int = 1) -> None:
    for col, (header, width) in enumerate(zip(headers, widths, strict=True), start=1):
        cell = _cell(sheet, start_row, col, header)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.border = BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        sheet.column_dimensions[get_column_letter(col)].width = width
    for r, values in enumerate(rows, start=start_row + 1):
        for col, value in enumerate(values, start=1):
            cell = _cell(sheet, r, col, value)
            cell.border = BORDER
            cell.alignment = Alignment(vertical="top", wrap_text=True)
    sheet.freeze_panes = sheet.cell(row=start_row + 1, column=1)
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = f"{start_row}:{start_row}"


def summary_rows(data: LedgerData, today: date) -> list[SummaryRow]:
    """Each required kind's periods that overlap the ledger, in the order they end (a month
    before the quarter and the year that end with it): held against required. A period the org
    was not yet using the bot for (`ledger_period.counted`) is 不适用, unless a meeting was held."""
    rows: list[SummaryRow] = []
    for kind in QUOTA_KINDS:
        period = data.quotas.get(kind, Period.NONE)
        if period == Period.NONE:
            continue
        for start, end in periods_between(period, data.first, data.last):
            count = sum(1 for h in data.held if start <= h.day < end and _counts_for(kind, h, data.secretaries))
            applies = counted(start, end, data.since)
            if count >= 1:
                result = Result.DONE
            elif not applies:
                result = Result.NOT_APPLICABLE
            elif end > today:
                result = Result.IN_PROGRESS
            else:
                result = Result.MISSING
            rows.append(SummaryRow(kind, period, start, end, 1 if applies else None, count, result))
    order = {kind: i for i, kind in enumerate(QUOTA_KINDS)}
    rows.sort(key=lambda r: (r.end, -r.start.toordinal(), order[r.kind]))
    return rows


def _write_summary(sheet: Worksheet, data: LedgerData, t: Translator, text: MeetingText, fmt: Formatter,
                   lang: str) -> None:
    title = t(lang, "meeting.ledger.title", org=data.org_name, range=day_range(fmt, lang, data.first, data.last))
    _cell(sheet, 1, 1, title).font = Font(bold=True, size=14)
    _cell(sheet, 2, 1, _since_line(data, t, text, fmt, lang))
    _cell(sheet, 3, 1, t(lang, "meeting.ledger.legend"))
    today = data.now.astimezone(text.tz).date()
    dash = t(lang, "meeting.ledger.not_required")
    rows = [[text.period_label(lang, r.period, r.start), text.kind(lang, r.kind),
             dash if r.required is None else r.required, r.held, t(lang, RESULT_KEYS[r.result])]
            for r in summary_rows(data, today)]
    _write_table(sheet, [t(lang, key) for key, _ in SUMMARY_COLUMNS], [w for _, w in SUMMARY_COLUMNS], rows,
                 start_row=SUMMARY_HEADER_ROW)


def _since_line(data: LedgerData, t: Translator, text: MeetingText, fmt: Formatter, lang: str) -> str:
    """统计起始：2026年12月（按月统计）、2027年第1季度（按季度统计）… and the day the org came to the bot."""
    if data.since is None:
        return t(lang, "meeting.ledger.since_never")
    used = {p for p in data.quotas.values() if p != Period.NONE}
    items = [t(lang, "meeting.ledger.since_item", period=text.period_label(lang, p, first_counted(p, data.since)),
               every=t(lang, EVERY_KEYS[p])) for p in PERIOD_ORDER if p in used]
    return t(lang, "meeting.ledger.since", periods=fmt.join(lang, items),
             date=fmt.day(lang, data.since, weekday=False, year=True))


def _counts_for(kind: str, held: HeldMeeting, secretaries: frozenset[int]) -> bool:
    if kind == QuotaKind.SECRETARY_LECTURE:
        return held.kind == QuotaKind.LECTURE and held.lecturer_id in secretaries
    return held.kind == kind
