"""The meeting ledger (台账) as an Excel workbook (openpyxl): a summary sheet of meetings held
against those required per period, then one sheet per kind of meeting with one row per meeting
(date, kind, topic, lecturer, place, invited, attended, on leave with reasons, absent, minutes).

A renderer only: it is handed `LedgerData` (read, and the right checked, by the meetings service)
and touches neither the database nor the service, so it can run in a worker thread. Every text
cell is written as text: a name such as `=HYPERLINK(...)` must never become a formula."""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import TYPE_STRING
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.formatting import Formatter
from bot.i18n import Translator
from bot.services.meeting_model import (
    KINDS,
    QUOTA_KINDS,
    Answer,
    LedgerData,
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

# (catalog key, column width)
COLUMNS = [
    ("meeting.ledger.col_date", 12), ("meeting.ledger.col_time", 13), ("meeting.ledger.col_org", 18),
    ("meeting.ledger.col_kind", 14), ("meeting.ledger.col_topic", 30), ("meeting.ledger.col_lecturer", 10),
    ("meeting.ledger.col_place", 16), ("meeting.ledger.col_invited", 8), ("meeting.ledger.col_attended_count", 8),
    ("meeting.ledger.col_attended", 30), ("meeting.ledger.col_leave", 30), ("meeting.ledger.col_absent", 24),
    ("meeting.ledger.col_minutes", 40), ("meeting.ledger.col_status", 10),
]
SUMMARY_COLUMNS = [
    ("meeting.ledger.sum_period", 16), ("meeting.ledger.sum_kind", 16), ("meeting.ledger.sum_required", 10),
    ("meeting.ledger.sum_held", 10), ("meeting.ledger.sum_result", 12),
]


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


def render(data: LedgerData, t: Translator, text: MeetingText, fmt: Formatter, lang: str) -> bytes:
    """The workbook's bytes (CPU-bound: the service runs it in a worker thread)."""
    now = data.now
    by_kind: dict[str, list[list[Any]]] = {}
    held: list[dict[str, Any]] = []
    for item in data.meetings:
        meeting = item.meeting
        by_kind.setdefault(meeting.kind, []).append(_meeting_row(item, t, text, fmt, lang, now))
        if meeting.status == MeetingStatus.HELD:
            held.append({"kind": meeting.kind, "day": fmt.local(meeting.starts_at).date(),
                         "lecturer_id": meeting.lecturer_id})
    book = Workbook()
    summary_sheet = book.active
    assert summary_sheet is not None
    summary_sheet.title = _sheet_title(t(lang, "meeting.ledger.summary"))
    _write_summary(summary_sheet, data, t, text, lang, held)
    kinds = [k for k in KINDS if k in by_kind or data.quotas.get(k, Period.NONE) != Period.NONE]
    for kind in kinds:
        sheet = book.create_sheet(_sheet_title(text.kind(lang, kind)))
        _write_table(sheet, [t(lang, key) for key, _ in COLUMNS], [w for _, w in COLUMNS], by_kind.get(kind, []))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _meeting_row(item: Any, t: Translator, text: MeetingText, fmt: Formatter, lang: str,
                 now: datetime) -> list[Any]:
    meeting, attendees = item.meeting, item.attendees
    started = now >= meeting.starts_at
    attended = [a.name for a in attendees if a.attended]
    leave = [t(lang, "meeting.ledger.leave_item", name=a.name, reason=a.leave_reason or "")
             for a in attendees if not a.attended and a.answer == Answer.LEAVE]
    absent = [a.name for a in attendees if started and not a.attended and a.answer != Answer.LEAVE]
    summary = " ".join((m.text or "").replace("\n", " ") for m in item.minutes if m.kind == MinutesKind.TEXT).strip()
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS] + "…"
    photos = sum(1 for m in item.minutes if m.kind == MinutesKind.PHOTO)
    documents = sum(1 for m in item.minutes if m.kind == MinutesKind.DOCUMENT)
    if photos or documents:
        summary = (summary + " " + t(lang, "meeting.ledger.minutes_files", photos=photos,
                                      documents=documents)).strip()
    status = meeting.status
    if status == MeetingStatus.SCHEDULED and now >= meeting.ends_at:
        status = MeetingStatus.UNCLOSED
    return [
        fmt.local(meeting.starts_at).date(),
        f"{fmt.local(meeting.starts_at):%H:%M}–{fmt.local(meeting.ends_at):%H:%M}",
        meeting.org_name,
        text.kind(lang, meeting.kind),
        meeting.topic,
        meeting.lecturer or "",
        meeting.place,
        len(attendees),
        len(attended),
        _names(attended, lang, fmt, t),
        _names(leave, lang, fmt, t),
        _names(absent, lang, fmt, t),
        summary,
        t(lang, STATUS_KEYS[status]),
    ]


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
            if isinstance(value, date):
                cell.number_format = "yyyy-mm-dd"
    sheet.freeze_panes = sheet.cell(row=start_row + 1, column=1)
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = f"{start_row}:{start_row}"


def _write_summary(sheet: Worksheet, data: LedgerData, t: Translator, text: MeetingText, lang: str,
                   held: list[dict[str, Any]]) -> None:
    title = t(lang, "meeting.ledger.title", org=data.org_name, first=data.first.isoformat(),
              last=data.last.isoformat())
    _cell(sheet, 1, 1, title).font = Font(bold=True, size=14)
    today = data.now.astimezone(text.tz).date()
    rows: list[list[Any]] = []
    for kind in QUOTA_KINDS:
        period = data.quotas.get(kind, Period.NONE)
        if period == Period.NONE:
            continue
        for start, end in periods_between(period, data.first, data.last):
            count = sum(1 for h in held if start <= h["day"] < end and _counts_for(kind, h, data.secretaries))
            if count >= 1:
                result = t(lang, "meeting.ledger.done")
            elif end > today:
                result = t(lang, "meeting.ledger.in_progress")
            else:
                result = t(lang, "meeting.ledger.missing")
            rows.append([text.period_label(lang, period, start), text.kind(lang, kind), 1, count, result])
    rows.sort(key=lambda r: (r[0], r[1]))
    _write_table(sheet, [t(lang, key) for key, _ in SUMMARY_COLUMNS], [w for _, w in SUMMARY_COLUMNS], rows,
                 start_row=3)


def _counts_for(kind: str, held: dict[str, Any], secretaries: frozenset[int]) -> bool:
    if kind == QuotaKind.SECRETARY_LECTURE:
        return bool(held["kind"] == QuotaKind.LECTURE and held["lecturer_id"] in secretaries)
    return bool(held["kind"] == kind)
