"""The opinion maps of deliberation rounds in the ledger (台账): one sheet, one row per statement
of each round's fixed result (its part of the result, the masked text, agree / disagree / pass
overall and the agree share in each group, the group-aware consensus). Counts and texts only:
no participant appears. A renderer (deliberation_ledger.py's pattern), run in a worker thread."""

from __future__ import annotations

from typing import Any

from openpyxl import Workbook

from bot.formatting import Formatter
from bot.i18n import Translator
from bot.services.ledger import _sheet_title, _write_table
from bot.services.opinion_text import group_shares, share

COLUMNS = [("om.ledger.col_title", 24), ("om.ledger.col_part", 16), ("om.ledger.col_text", 48),
           ("om.ledger.col_agree", 10), ("om.ledger.col_disagree", 10), ("om.ledger.col_pass", 10),
           ("om.ledger.col_groups", 30), ("om.ledger.col_consensus", 12)]


def add_sheets(book: Workbook, maps: list[tuple[str, dict[str, Any]]], t: Translator, fmt: Formatter,
               lang: str) -> None:
    """The sheet, when the period has a round with an opinion map."""
    if not maps:
        return
    sheet = book.create_sheet(_sheet_title(t(lang, "om.ledger.sheet")))
    rows: list[list[Any]] = []
    for title, snapshot in maps:
        rows += _rows(title, snapshot, t, fmt, lang)
    _write_table(sheet, [t(lang, k) for k, _ in COLUMNS], [w for _, w in COLUMNS], rows)


def _rows(title: str, snapshot: dict[str, Any], t: Translator, fmt: Formatter, lang: str) -> list[list[Any]]:
    parts: dict[int, str] = {}
    for sid in snapshot["divisive"]:
        parts[sid] = t(lang, "om.ledger.part_divisive")
    for g, group in enumerate(snapshot["representative"]):
        for sid, _ in group:
            parts.setdefault(sid, t(lang, "om.ledger.part_group", n=g + 1))
    for sid in snapshot["bridging"]:
        parts[sid] = t(lang, "om.ledger.part_bridging")
    out = []
    for sid in snapshot["order"]:
        s = snapshot["statements"][str(sid)]
        seen = s["a"] + s["d"] + s["p"]
        groups = fmt.join(lang, [t(lang, "om.result.group_share", n=g + 1, percent=pc)
                                 for g, pc in enumerate(group_shares(snapshot, sid))]) if snapshot["k"] > 1 else ""
        out.append([title, parts.get(sid, ""), s["text"], f"{share(s['a'], seen)}%", f"{share(s['d'], seen)}%",
                    f"{share(s['p'], seen)}%", groups, f"{s['c']:.2f}"])
    return out
