"""The supervision bulletin drawn three ways: the 通报 text (split to fit a message), a chart (PNG
through bot/charts.py) and a workbook (one sheet per measure, one row per child org, a totals row).
Renderers only: handed a Bulletin, they touch neither the database nor a service, so the chart and
the workbook can be drawn in a worker thread."""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from babel.numbers import format_percent
from openpyxl import Workbook
from openpyxl.styles import Font

from bot.charts import new_figure, png_bytes
from bot.formatting import Formatter, babel_locale
from bot.formatting import file_name as safe_name
from bot.i18n import Translator
from bot.limits import MAX_TEXT
from bot.services.ledger import _cell, _sheet_title, _write_table
from bot.services.ledger_period import describe
from bot.services.meeting_base import chunks
from bot.services.meeting_text import MeetingText

if TYPE_CHECKING:
    from bot.services.supervision import Bulletin, Lag

CHART_INCHES = (10.0, 5.5)
CHART_DPI = 120  # 1200 × 660 pixels
LABEL_CHARS = 14  # an org's name under its bars (longer names are cut: the workbook has them whole)
TITLE_CHARS = 40
PERCENT_FORMAT = "0.0%"
MATTER_STATES = {"s1": "supervision.matter.s1", "s2": "supervision.matter.s2", "s3": "supervision.matter.s3",
                 "s4": "supervision.matter.s4", "decided": "supervision.matter.decided",
                 "published": "supervision.matter.published", "done": "supervision.matter.done",
                 "rejected": "supervision.matter.rejected"}


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percent(fmt: Formatter, lang: str, value: float | None) -> str:
    if value is None:
        return fmt.t(lang, "supervision.none")
    return format_percent(value, format="#,##0.#%", locale=babel_locale(lang))


def period_words(b: Bulletin, fmt: Formatter, lang: str, for_file: bool = False) -> str:
    return describe(fmt, lang, b.first, b.last, for_file=for_file)


def file_name(b: Bulletin, t: Translator, fmt: Formatter, lang: str, ext: str) -> str:
    """督查通报-龙驹寨街道党工委-2026年11月.xlsx (the chart: .png)."""
    return safe_name(t(lang, "supervision.file_name", org=b.org.name[:60],
                       period=period_words(b, fmt, lang, for_file=True), ext=ext))


def b64_file(name: str, content: bytes) -> dict[str, str]:
    """A file inside an outbox row (the delivery worker uploads it)."""
    return {"filename": name, "b64": base64.b64encode(content).decode()}


# --- the text ---------------------------------------------------------------------------------------
def texts(b: Bulletin, t: Translator, fmt: Formatter, lang: str) -> list[str]:
    """The 通报: the figures of the whole subtree, then the orgs that lag and the rule; split at
    Telegram's 4096 characters, the title on every part."""
    s = b.total
    p = lambda part, whole: percent(fmt, lang, ratio(s[part], s[whole]))  # noqa: E731
    head = t(lang, "supervision.text.title", org=b.org.name, period=period_words(b, fmt, lang))
    lines = [
        t(lang, "supervision.text.scope", orgs=b.orgs, moment=fmt.moment(lang, b.now)),
        t(lang, "supervision.text.meetings", required=s["required"], met=s["met"], rate=p("met", "required"),
          held=s["held"], attendance=p("attended", "invited"), minutes=p("minutes_on_time", "minutes_due")),
        t(lang, "supervision.text.tickets", received=s["received"], accepted=p("accepted_in_time", "accept_due"),
          answered=p("answered_in_time", "answer_due"), overdue=s["overdue"], escalated=s["escalated"],
          satisfaction=p("satisfied", "rated"),
          unrated=percent(fmt, lang, ratio(s["unrated"], s["rated"] + s["unrated"]))),
        t(lang, "supervision.text.deliberation", rounds=s["rounds"], turnout=p("ballots", "eligible"),
          matters=s["matters"], overdue=s["matters_overdue"]),
        t(lang, "supervision.text.delivery", blocked=s["blocked"], failed=s["failed"]),
        "",
        t(lang, "supervision.text.lag_rule", bar=percent(fmt, lang, 0.8), rated=3),
    ]
    kinds = MeetingText(fmt)
    if not b.lagging:
        lines.append(t(lang, "supervision.text.no_lag"))
    for lag in b.lagging:
        lines.append(t(lang, "supervision.text.lag_line", org=lag.org.name,
                       items=fmt.join(lang, _lag_items(lag, t, fmt, kinds, lang))))
    return chunks(head, lines, MAX_TEXT)


def _lag_items(lag: Lag, t: Translator, fmt: Formatter, kinds: MeetingText, lang: str) -> list[str]:
    items = [t(lang, "supervision.text.lag_quota", kind=_kind(kinds, t, lang, kind), met=met, required=required)
             for kind, met, required in lag.quota]
    if lag.overdue:
        items.append(t(lang, "supervision.text.lag_overdue", n=lag.overdue))
    if lag.satisfaction is not None:
        items.append(t(lang, "supervision.text.lag_satisfaction", rate=percent(fmt, lang, lag.satisfaction)))
    return items


def _kind(kinds: MeetingText, t: Translator, lang: str, kind: str) -> str:
    if kind == "secretary_lecture":
        return t(lang, "supervision.secretary_lecture")
    return kinds.kind(lang, kind)


def _label(row_org_name: str, own: bool, t: Translator, lang: str, has_children: bool) -> str:
    return t(lang, "supervision.own_row", org=row_org_name) if own and has_children else row_org_name


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- the chart --------------------------------------------------------------------------------------
def chart(b: Bulletin, t: Translator, fmt: Formatter, lang: str) -> bytes:
    """Three rates per line of the workbook (quota completion, answered in time, satisfaction)."""
    figure = new_figure(*CHART_INCHES, dpi=CHART_DPI)
    ax = figure.add_subplot()
    rows = b.rows
    names = [_short(_label(r.org.name, r.own, t, lang, len(rows) > 1), LABEL_CHARS) for r in rows]
    series = [("supervision.chart.quota", "met", "required"), ("supervision.chart.answered", "answered_in_time",
                                                                 "answer_due"),
              ("supervision.chart.satisfaction", "satisfied", "rated")]
    width = 0.8 / len(series)
    for i, (key, part, whole) in enumerate(series):
        values = [100 * (ratio(r.figures[part], r.figures[whole]) or 0) for r in rows]
        ax.bar([x + (i - 1) * width for x in range(len(rows))], values, width, label=t(lang, key))
    ax.set_xticks(range(len(rows)), names, rotation=30 if len(rows) > 4 else 0, ha="right" if len(rows) > 4 else
                  "center", fontsize=8 if len(rows) > 12 else 10)
    ax.set_ylim(0, 105)
    ax.set_ylabel(t(lang, "supervision.chart.percent"))
    ax.set_title(t(lang, "supervision.chart.title", org=_short(b.org.name, TITLE_CHARS),
                   period=period_words(b, fmt, lang)))
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(figure)


# --- the workbook -----------------------------------------------------------------------------------
Column = tuple[str, int, Callable[[Counter[str]], Any], bool]

# Each measure's columns after the org: (header key, a count's name, or (part, whole) for a rate).
Spec = tuple[str, str | tuple[str, str]]
MEETING_COLUMNS: tuple[Spec, ...] = (
    ("supervision.col.required", "required"), ("supervision.col.met", "met"),
    ("supervision.col.met_rate", ("met", "required")), ("supervision.col.held", "held"),
    ("supervision.col.invited", "invited"), ("supervision.col.attended", "attended"),
    ("supervision.col.on_leave", "on_leave"), ("supervision.col.attendance", ("attended", "invited")),
    ("supervision.col.minutes_due", "minutes_due"), ("supervision.col.minutes_on_time", "minutes_on_time"),
    ("supervision.col.minutes_rate", ("minutes_on_time", "minutes_due")))
TICKET_COLUMNS: tuple[Spec, ...] = (
    ("supervision.col.received", "received"), ("supervision.col.accept_due", "accept_due"),
    ("supervision.col.accepted_in_time", "accepted_in_time"),
    ("supervision.col.accept_rate", ("accepted_in_time", "accept_due")),
    ("supervision.col.answer_due", "answer_due"), ("supervision.col.answered_in_time", "answered_in_time"),
    ("supervision.col.answer_rate", ("answered_in_time", "answer_due")), ("supervision.col.overdue", "overdue"),
    ("supervision.col.escalated", "escalated"), ("supervision.col.rated", "rated"),
    ("supervision.col.satisfied", "satisfied"), ("supervision.col.satisfaction", ("satisfied", "rated")),
    ("supervision.col.unrated", "unrated"), ("supervision.col.unrated_share", ("unrated", "closed_rated")))
ROUND_COLUMNS: tuple[Spec, ...] = (
    ("supervision.col.rounds", "rounds"), ("supervision.col.voting_rounds", "voting_rounds"),
    ("supervision.col.ballots", "ballots"), ("supervision.col.eligible", "eligible"),
    ("supervision.col.turnout", ("ballots", "eligible")), ("supervision.col.opinions", "opinions"))
MATTER_COLUMNS: tuple[Spec, ...] = (
    ("supervision.col.matters", "matters"), *((key, f"matter:{state}") for state, key in MATTER_STATES.items()),
    ("supervision.col.matters_overdue", "matters_overdue"))
DELIVERY_COLUMNS: tuple[Spec, ...] = (("supervision.col.blocked", "blocked"), ("supervision.col.failed", "failed"))
SHEETS = (("supervision.sheet.meetings", MEETING_COLUMNS), ("supervision.sheet.tickets", TICKET_COLUMNS),
          ("supervision.sheet.deliberation", ROUND_COLUMNS), ("supervision.sheet.matters", MATTER_COLUMNS),
          ("supervision.sheet.delivery", DELIVERY_COLUMNS))


def _value(spec: str | tuple[str, str]) -> Callable[[Counter[str]], Any]:
    if isinstance(spec, str):
        return lambda f: f[spec]
    part, whole = spec
    if whole == "closed_rated":  # the unrated share: out of those rated or closed unrated
        return lambda f: ratio(f[part], f["rated"] + f["unrated"]) if f["rated"] + f["unrated"] else ""
    return lambda f: ratio(f[part], f[whole]) if f[whole] else ""


def sheets(b: Bulletin, t: Translator, fmt: Formatter, lang: str) -> list[tuple[str, list[Column]]]:
    """Each measure's sheet: (title key, columns of (header, width, value, is a rate)); the meetings'
    sheet starts with each required kind's required and held."""
    kinds = MeetingText(fmt)
    quota: list[Column] = []
    for kind in b.kinds:
        name = _kind(kinds, t, lang, kind)
        quota += [(t(lang, "supervision.col.kind_required", kind=name), 12, _value(f"req:{kind}"), False),
                  (t(lang, "supervision.col.kind_met", kind=name), 12, _value(f"met:{kind}"), False)]
    out = []
    for title, specs in SHEETS:
        columns = [(t(lang, key), 12, _value(spec), not isinstance(spec, str)) for key, spec in specs]
        out.append((title, (quota if title == "supervision.sheet.meetings" else []) + columns))
    return out


def workbook(b: Bulletin, t: Translator, fmt: Formatter, lang: str) -> bytes:
    """A notes sheet (the 通报 and how each figure is counted), then one sheet per measure: one row
    for the org's own records, one per child org (its whole subtree), and the totals."""
    book = Workbook()
    notes = book.active
    assert notes is not None
    notes.title = _sheet_title(t(lang, "supervision.sheet.notes"))
    _cell(notes, 1, 1, t(lang, "supervision.text.title", org=b.org.name, period=period_words(b, fmt, lang))).font = \
        Font(bold=True, size=14)
    lines = [*"\n".join(texts(b, t, fmt, lang)).splitlines()[1:], "", *t(lang, "supervision.rules").splitlines()]
    for i, line in enumerate(lines, start=2):
        _cell(notes, i, 1, line)
    notes.column_dimensions["A"].width = 120
    org_header = t(lang, "supervision.col.org")
    has_children = len(b.rows) > 1
    for title_key, columns in sheets(b, t, fmt, lang):
        sheet = book.create_sheet(_sheet_title(t(lang, title_key)))
        rows = [[_label(r.org.name, r.own, t, lang, has_children), *[value(r.figures) for _, _, value, _ in columns]]
                for r in b.rows]
        rows.append([t(lang, "supervision.total"), *[value(b.total) for _, _, value, _ in columns]])
        _write_table(sheet, [org_header, *[h for h, _, _, _ in columns]], [24, *[w for _, w, _, _ in columns]], rows)
        for col, (_, _, _, rate) in enumerate(columns, start=2):
            for r in range(2, len(rows) + 2) if rate else ():
                sheet.cell(row=r, column=col).number_format = PERCENT_FORMAT
        _cell(sheet, len(rows) + 3, 1, t(lang, "supervision.total_note"))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
