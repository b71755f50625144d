"""四议两公开 matters as an Excel workbook for the ledger (台账): one row per matter (what, estimate,
where it stands, both publications), then one row per recorded stage (date, meeting, outcome,
vote, note). A renderer only, handed plain values read (and the right checked) by
bot/services/matters.py, so it runs in a worker thread; cells are written as text by the meeting
ledger's table writer (never formulas)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime

from openpyxl import Workbook

from bot.formatting import Formatter
from bot.i18n import Translator
from bot.services.ledger import _sheet_title, _write_table

COLUMNS = [
    ("matter.ledger.col_opened", 12), ("matter.ledger.col_title", 24), ("matter.ledger.col_estimate", 14),
    ("matter.ledger.col_description", 36), ("matter.ledger.col_status", 18), ("matter.ledger.col_reason", 24),
    ("matter.ledger.col_decision_at", 12), ("matter.ledger.col_decision", 36), ("matter.ledger.col_result_at", 12),
    ("matter.ledger.col_result", 36), ("matter.ledger.col_photos", 8),
]
STAGE_COLUMNS = [
    ("matter.ledger.st_title", 24), ("matter.ledger.st_stage", 20), ("matter.ledger.st_day", 12),
    ("matter.ledger.st_meeting", 24), ("matter.ledger.st_outcome", 10), ("matter.ledger.st_vote", 40),
    ("matter.ledger.st_note", 36),
]


@dataclass(frozen=True)
class LedgerStage:
    stage: str        # its name
    held_on: date
    meeting: str
    outcome: str
    vote: str
    note: str


@dataclass(frozen=True)
class LedgerMatter:
    opened_at: datetime
    title: str
    estimate: str
    description: str
    status: str
    reason: str
    decision_at: datetime | None
    decision: str
    result_at: datetime | None
    result: str
    photos: int
    stages: list[LedgerStage]


def render(matters: list[LedgerMatter], t: Translator, fmt: Formatter, lang: str) -> bytes:
    """A workbook of its own (/matters → 导出)."""
    book = Workbook()
    add_sheets(book, matters, t, fmt, lang)
    book.remove(book.worksheets[0])  # the empty default sheet
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def add_sheets(book: Workbook, matters: list[LedgerMatter], t: Translator, fmt: Formatter, lang: str) -> None:
    """The matters and their stages as two sheets of `book` (also the org's ledger, /ledger)."""
    sheet = book.create_sheet(_sheet_title(t(lang, "matter.ledger.sheet")))

    def day(when: date | datetime | None) -> str:
        return fmt.day(lang, when, weekday=False, year=True) if when is not None else ""

    _write_table(sheet, [t(lang, k) for k, _ in COLUMNS], [w for _, w in COLUMNS],
                 [[day(m.opened_at), m.title, m.estimate, m.description, m.status, m.reason, day(m.decision_at),
                   m.decision, day(m.result_at), m.result, m.photos] for m in matters])
    stages = book.create_sheet(_sheet_title(t(lang, "matter.ledger.stages_sheet")))
    _write_table(stages, [t(lang, k) for k, _ in STAGE_COLUMNS], [w for _, w in STAGE_COLUMNS],
                 [[m.title, s.stage, day(s.held_on), s.meeting, s.outcome, s.vote, s.note]
                  for m in matters for s in m.stages])
