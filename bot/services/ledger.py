"""The meeting ledger (台账) as an Excel workbook (openpyxl): a summary sheet of meetings held
against those required per period, then one sheet per kind of meeting with one row per meeting
(date, kind, topic, lecturer, place, invited, attended, on leave with reasons, absent, minutes).

Rows are the org's own meetings and the meetings an org above sent down to it (include_below);
for the latter only the org's own people are listed."""

from __future__ import annotations

import argparse
import io
import sys
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.clock import to_db
from bot.services.meeting_text import STATUS_KEYS
from bot.services.meeting_time import periods_between
from bot.services.meetings import KINDS, QUOTA_KINDS, meeting_from_row

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.services.meetings import Attendee, MeetingService
    from bot.services.orgs import Org

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


def _names(people: list[str], lang: str, more_key: str, t: Any) -> str:
    sep = "、" if lang == "zh_CN" else ", "
    text = sep.join(people)
    if len(text) <= CELL_MAX:
        return text
    kept: list[str] = []
    size = 0
    for name in people:
        if size + len(name) + 20 > CELL_MAX:
            break
        kept.append(name)
        size += len(name) + len(sep)
    return sep.join(kept) + t(lang, more_key, count=len(people) - len(kept))


async def _ledger_rows(svc: MeetingService, org: Org, first: date, last: date) -> list[dict[str, Any]]:
    tz = svc.tz
    lo = datetime.combine(first, time(0, 0), tzinfo=tz)
    hi = datetime.combine(last + timedelta(days=1), time(0, 0), tzinfo=tz)
    above = [o.id for o in (await svc.orgs.ancestors(org.id))[1:]]
    marks = ",".join("?" * len(above)) or "NULL"
    rows = await svc.db.fetchall(
        "SELECT m.*, o.name AS org_name FROM meetings m JOIN orgs o ON o.id = m.org_id"
        f" WHERE (m.org_id = ? OR (m.include_below = 1 AND m.org_id IN ({marks})))"
        " AND m.starts_at >= ? AND m.starts_at < ? ORDER BY m.starts_at, m.id",
        (org.id, *above, to_db(lo), to_db(hi)))
    return [dict(r) for r in rows]


async def _own_people(svc: MeetingService, org: Org) -> set[int]:
    rows = await svc.db.fetchall(
        "WITH RECURSIVE down(id) AS (SELECT ? UNION SELECT o.id FROM orgs o JOIN down ON o.parent_id = down.id)"
        " SELECT DISTINCT person_id FROM roles WHERE org_id IN (SELECT id FROM down)", (org.id,))
    return {r[0] for r in rows}


async def build_ledger(svc: MeetingService, org: Org, first: date, last: date, lang: str) -> bytes:
    """The workbook's bytes."""
    t = svc.t
    text = svc.text
    now = svc.clock.now()
    meetings = await _ledger_rows(svc, org, first, last)
    own_people: set[int] | None = None
    secretaries = set(await svc.secretaries_of(svc.db, org.id))
    by_kind: dict[str, list[list[Any]]] = {}
    held: list[dict[str, Any]] = []
    for row in meetings:
        meeting = meeting_from_row(row)
        attendees: list[Attendee] = await svc.attendees(meeting.id)
        if meeting.org_id != org.id:  # sent down from an org above: only this org's people
            if own_people is None:
                own_people = await _own_people(svc, org)
            attendees = [a for a in attendees if a.person_id in own_people]
        started = now >= meeting.starts_at
        attended = [a.name for a in attendees if a.attended]
        leave = [f"{a.name}（{a.leave_reason}）" if lang == "zh_CN" else f"{a.name} ({a.leave_reason})"
                 for a in attendees if not a.attended and a.answer == "leave"]
        absent = [a.name for a in attendees if started and not a.attended and a.answer != "leave"]
        minutes = await svc.minutes(meeting.id)
        summary = " ".join((m["text"] or "").replace("\n", " ") for m in minutes if m["kind"] == "text").strip()
        if len(summary) > SUMMARY_CHARS:
            summary = summary[:SUMMARY_CHARS] + "…"
        photos = sum(1 for m in minutes if m["kind"] == "photo")
        documents = sum(1 for m in minutes if m["kind"] == "document")
        if photos or documents:
            summary = (summary + " " + t(lang, "meeting.ledger.minutes_files", photos=photos,
                                          documents=documents)).strip()
        status = meeting.status
        if status == "scheduled" and now >= meeting.ends_at:
            status = "unclosed"
        local = meeting.starts_at.astimezone(svc.tz)
        by_kind.setdefault(meeting.kind, []).append([
            local.date(),
            f"{local:%H:%M}–{meeting.ends_at.astimezone(svc.tz):%H:%M}",
            meeting.org_name,
            text.kind(lang, meeting.kind),
            meeting.topic,
            meeting.lecturer or "",
            meeting.place,
            len(attendees),
            len(attended),
            _names(attended, lang, "meeting.ledger.more", t),
            _names(leave, lang, "meeting.ledger.more", t),
            _names(absent, lang, "meeting.ledger.more", t),
            summary,
            t(lang, STATUS_KEYS[status]),
        ])
        if meeting.status == "held":
            held.append({"kind": meeting.kind, "day": local.date(), "lecturer_id": meeting.lecturer_id})

    quotas = (await svc.effective_quotas()).get(org.id, {})
    book = Workbook()
    summary_sheet = book.active
    assert summary_sheet is not None
    summary_sheet.title = _sheet_title(t(lang, "meeting.ledger.summary"))
    _write_summary(summary_sheet, svc, org, first, last, lang, quotas, held, secretaries, now)
    kinds = [k for k in KINDS if k in by_kind or quotas.get(k, "none") != "none"]
    for kind in kinds:
        sheet = book.create_sheet(_sheet_title(text.kind(lang, kind)))
        _write_table(sheet, [t(lang, key) for key, _ in COLUMNS], [w for _, w in COLUMNS], by_kind.get(kind, []))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet_title(name: str) -> str:
    return name.translate(_BAD_SHEET_CHARS)[:31] or "-"


def _write_table(sheet: Worksheet, headers: list[str], widths: list[int], rows: list[list[Any]],
                 start_row: int = 1) -> None:
    for col, (header, width) in enumerate(zip(headers, widths, strict=True), start=1):
        cell = sheet.cell(row=start_row, column=col, value=header)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.border = BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        sheet.column_dimensions[get_column_letter(col)].width = width
    for r, values in enumerate(rows, start=start_row + 1):
        for col, value in enumerate(values, start=1):
            cell = sheet.cell(row=r, column=col, value=value)
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


def _write_summary(sheet: Worksheet, svc: MeetingService, org: Org, first: date, last: date, lang: str,
                   quotas: dict[str, str], held: list[dict[str, Any]], secretaries: set[int], now: datetime) -> None:
    t = svc.t
    title = t(lang, "meeting.ledger.title", org=org.name, first=first.isoformat(), last=last.isoformat())
    sheet.cell(row=1, column=1, value=title).font = Font(bold=True, size=14)
    today = now.astimezone(svc.tz).date()
    rows: list[list[Any]] = []
    for kind in QUOTA_KINDS:
        period = quotas.get(kind, "none")
        if period == "none":
            continue
        for start, end in periods_between(period, first, last):
            count = sum(1 for h in held if start <= h["day"] < end and (
                h["kind"] == kind or (kind == "secretary_lecture" and h["kind"] == "party_lecture"
                                      and h["lecturer_id"] in secretaries)))
            if count >= 1:
                result = t(lang, "meeting.ledger.done")
            elif end > today:
                result = t(lang, "meeting.ledger.in_progress")
            else:
                result = t(lang, "meeting.ledger.missing")
            rows.append([svc.text.period_label(lang, period, start), svc.text.kind(lang, kind), 1, count, result])
    rows.sort(key=lambda r: (r[0], r[1]))
    _write_table(sheet, [t(lang, key) for key, _ in SUMMARY_COLUMNS], [w for _, w in SUMMARY_COLUMNS], rows,
                 start_row=3)


async def cli(settings: Settings, args: argparse.Namespace) -> int:
    """`python -m bot ledger ORG_CODE --from DATE --to DATE --out FILE.xlsx` (an operator: no rights check)."""
    from bot.core import Core

    try:
        first = date.fromisoformat(args.date_from)
        last = date.fromisoformat(args.date_to)
    except ValueError as exc:
        print(f"error: {exc} (expected YYYY-MM-DD)", file=sys.stderr)
        return 2
    if last < first:
        print("error: --to is before --from", file=sys.stderr)
        return 2
    core = Core.build(settings)
    await core.open()
    try:
        org = await core.orgs.by_code(args.org_code)
        if org is None:
            print(f"error: no org with code {args.org_code!r}", file=sys.stderr)
            return 1
        service = core.meetings
        _, content = await service.ledger(None, org.id, first, last, settings.locale)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(content)
        count = await core.db.fetchval(
            "SELECT COUNT(*) FROM meetings WHERE org_id = ? AND starts_at >= ? AND starts_at < ?",
            (org.id, to_db(datetime.combine(first, time(0, 0), tzinfo=settings.tz)),
             to_db(datetime.combine(last + timedelta(days=1), time(0, 0), tzinfo=settings.tz))))
        print(f"{args.out}: ledger of {org.code} ({org.name}) from {first} to {last}, {count} meeting(s)")
        return 0
    finally:
        await core.close()

