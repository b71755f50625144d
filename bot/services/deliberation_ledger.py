"""Deliberation rounds in the ledger (台账) as an Excel workbook: one row per round (topic, who was
invited, deadlines, opinions, the vote's counts, turnout, proxy ballots, the most supported
opinions, how it ended), then the rounds' record (extensions, early closes, cancellations, hidden
opinions, proxy ballots with their reasons; never the choice of a secret ballot).

A renderer only, handed `LedgerRound`s read (and the right checked) by the service, so that it can
run in a worker thread. Cells are written as text (never formulas) by the meeting ledger's table
writer."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openpyxl import Workbook

from bot.formatting import Formatter
from bot.i18n import Translator
from bot.services.ledger import _sheet_title, _write_table

COLUMNS = [
    ("delib.ledger.col_opened", 12), ("delib.ledger.col_org", 16), ("delib.ledger.col_title", 28),
    ("delib.ledger.col_audience", 12), ("delib.ledger.col_opinions_until", 16), ("delib.ledger.col_votes_until", 16),
    ("delib.ledger.col_status", 10), ("delib.ledger.col_opinions", 8), ("delib.ledger.col_ballot", 14),
    ("delib.ledger.col_counts", 30), ("delib.ledger.col_turnout", 16), ("delib.ledger.col_proxies", 8),
    ("delib.ledger.col_top", 40), ("delib.ledger.col_note", 24),
]
EVENT_COLUMNS = [
    ("delib.ledger.ev_at", 17), ("delib.ledger.ev_title", 28), ("delib.ledger.ev_actor", 12),
    ("delib.ledger.ev_action", 12), ("delib.ledger.ev_person", 12), ("delib.ledger.ev_note", 40),
]
EVENT_KEYS = {"extend": "delib.ledger.action_extend", "close": "delib.ledger.action_close",
              "cancel": "delib.ledger.action_cancel", "hide": "delib.ledger.action_hide",
              "option": "delib.ledger.action_option", "proxy": "delib.ledger.action_proxy"}
STATUS_KEYS = {"open": "delib.ledger.status_open", "closed": "delib.ledger.status_closed",
               "cancelled": "delib.ledger.status_cancelled"}
AUDIENCE_KEYS = {"members": "delib.audience.members", "residents": "delib.audience.residents",
                 "both": "delib.audience.both"}


@dataclass(frozen=True)
class LedgerEvent:
    at: datetime
    actor: str
    action: str
    person: str
    note: str


@dataclass(frozen=True)
class LedgerRound:
    opened_at: datetime
    org_name: str
    title: str
    audience: str
    opinions_until: datetime
    votes_until: datetime | None
    status: str
    secret: bool
    opinions: int
    result: dict[str, Any] | None   # the fixed result (None while open or when cancelled)
    note: str
    events: list[LedgerEvent]


def render(rounds: list[LedgerRound], t: Translator, fmt: Formatter, lang: str,
           extra: Sequence[Callable[[Workbook], None]] = ()) -> bytes:
    """A workbook of its own (/deliberations → 导出); `extra` adds further sheets (opinion maps)."""
    book = Workbook()
    add_sheets(book, rounds, t, fmt, lang)
    for add in extra:
        add(book)
    book.remove(book.worksheets[0])  # the empty default sheet
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def add_sheets(book: Workbook, rounds: list[LedgerRound], t: Translator, fmt: Formatter, lang: str) -> None:
    """The rounds and their record as two sheets of `book` (also the org's ledger, /ledger)."""
    sheet = book.create_sheet(_sheet_title(t(lang, "delib.ledger.sheet")))
    _write_table(sheet, [t(lang, k) for k, _ in COLUMNS], [w for _, w in COLUMNS],
                 [_round_row(r, t, fmt, lang) for r in rounds])
    events = book.create_sheet(_sheet_title(t(lang, "delib.ledger.events_sheet")))
    _write_table(events, [t(lang, k) for k, _ in EVENT_COLUMNS], [w for _, w in EVENT_COLUMNS],
                 [[_moment(fmt, lang, e.at), r.title, e.actor, t(lang, EVENT_KEYS.get(e.action, e.action)),
                   e.person, e.note] for r in rounds for e in r.events])


def _round_row(r: LedgerRound, t: Translator, fmt: Formatter, lang: str) -> list[Any]:
    result = r.result or {}
    voted = bool(result.get("voted"))
    counts = "\n".join(t(lang, "delib.result.option", label=label, count=fmt.count(lang, "delib.result.votes", n))
                       for label, n in result.get("options", [])) if voted else ""
    eligible = int(result.get("eligible", 0))
    ballots = int(result.get("ballots", 0))
    turnout = t(lang, "delib.ledger.turnout", ballots=ballots, eligible=eligible,
                percent=round(100 * ballots / eligible) if eligible else 0) if voted else ""
    top = "\n".join(t(lang, "delib.result.top", text=text, n=n) for text, n in result.get("top", []))
    ballot = ""
    if r.votes_until is not None:
        ballot = t(lang, "delib.card.secret" if r.secret else "delib.card.open_ballot")
    return [
        fmt.day(lang, r.opened_at, weekday=False, year=True), r.org_name, r.title, t(lang, AUDIENCE_KEYS[r.audience]),
        _moment(fmt, lang, r.opinions_until), _moment(fmt, lang, r.votes_until) if r.votes_until else "",
        t(lang, STATUS_KEYS[r.status]), r.opinions, ballot, counts, turnout,
        int(result.get("proxies", 0)) if voted else "", top, r.note,
    ]


def _moment(fmt: Formatter, lang: str, when: datetime) -> str:
    """2026年12月5日 下午3:00: dates as the reader writes them, never ISO."""
    return f"{fmt.day(lang, when, weekday=False, year=True)} {fmt.time(lang, when)}"
