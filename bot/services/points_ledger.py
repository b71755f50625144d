"""Points and star ratings in the ledger (台账) as Excel sheets: one row per member with the
period's points by source (counts and points), the secretary's additions and deductions with
their reasons, and the star ratings of the period's years with how each was decided.

A renderer only, handed LedgerPoints read (and the right checked) by the service; cells are
written as text or numbers (never formulas) by the meeting ledger's table writer."""

from __future__ import annotations

from typing import Any

from openpyxl import Workbook

from bot.formatting import Formatter
from bot.i18n import Translator
from bot.services.ledger import _sheet_title, _write_table
from bot.services.points import RULE_KEYS, LedgerPoints, Source

STATUS_KEYS = {"voting": "points.ledger.status_voting", "confirmed": "points.ledger.status_confirmed",
               "rejected": "points.ledger.status_rejected", "cancelled": "points.ledger.status_cancelled"}

COLUMN_KEYS = {Source.MEETING: "points.ledger.col_meeting", Source.THEME_DAY: "points.ledger.col_theme_day",
               Source.DELIBERATION: "points.ledger.col_deliberation", Source.PLEDGE: "points.ledger.col_pledge",
               Source.TICKET: "points.ledger.col_ticket", Source.ADJUST: "points.ledger.col_adjust"}


def add_sheets(book: Workbook, data: LedgerPoints, t: Translator, fmt: Formatter, lang: str) -> None:
    sources = [*RULE_KEYS, Source.ADJUST]
    sheet = book.create_sheet(_sheet_title(t(lang, "points.ledger.sheet")))
    headers = [t(lang, "points.ledger.col_name")] + [t(lang, COLUMN_KEYS[s]) for s in sources]
    headers.append(t(lang, "points.ledger.col_total"))
    rows: list[list[Any]] = []
    for name, tally in data.table:
        cells: list[Any] = [name]
        for source in sources:
            n = tally.counts.get(source, 0)
            cells.append(t(lang, "points.ledger.cell", n=n, points=tally.points.get(source, 0)) if n else "")
        cells.append(tally.total)
        rows.append(cells)
    _write_table(sheet, headers, [12] + [14] * len(sources) + [8], rows)
    adjust = book.create_sheet(_sheet_title(t(lang, "points.ledger.adjust_sheet")))
    _write_table(adjust, [t(lang, k) for k in ("points.ledger.col_at", "points.ledger.col_name",
                                               "points.ledger.col_delta", "points.ledger.col_reason",
                                               "points.ledger.col_by")], [18, 12, 8, 40, 12],
                 [[f"{fmt.day(lang, a.at, weekday=False, year=True)} {fmt.time(lang, a.at)}", a.person, a.delta,
                   a.reason, a.by] for a in data.adjustments])
    stars = book.create_sheet(_sheet_title(t(lang, "points.ledger.stars_sheet")))
    _write_table(stars, [t(lang, k) for k in ("points.ledger.col_year", "points.ledger.col_name",
                                              "points.ledger.col_points", "points.ledger.col_stars",
                                              "points.ledger.col_status", "points.ledger.col_vote")],
                 [8, 12, 8, 10, 10, 24],
                 [[p.year, name, points, "★" * n, t(lang, STATUS_KEYS[p.status]),
                   t(lang, "points.ledger.vote", yes=p.yes, no=p.no) if p.yes is not None else ""]
                  for p in data.proposals for _, name, points, n in p.ratings])
