"""The monthly echo-wall poster: an A4 PDF of a month's answered public problems, set in a CJK font
from the system, with a QR code that opens the bot's join link for the org's residents.

fpdf2 draws the PDF (pure Python; it embeds and subsets OpenType CJK fonts such as Noto Sans CJK,
which are CFF-based and which reportlab's TTF support refuses). Lines are broken here, not by
fpdf2, to follow Chinese rules: no line starts with a closing mark (，。）…) or ends with an opening
one (（《“), and numbers and Latin words are never split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from babel.dates import format_skeleton

from bot.actors import SYSTEM_ACTOR
from bot.core import Core
from bot.fonts import Font, FontMissing, find_cjk_font
from bot.formatting import file_name as safe_file_name
from bot.i18n import Translator
from bot.services.echo_wall import WallEntry
from bot.services.orgs import Org

MAX_CHARS = 300  # a longer problem or answer is cut on the poster (the web page has it whole)

RED = (170, 20, 28)
INK = (20, 20, 20)
GREY = (90, 90, 90)
NO_LINE_START = set("，。、；：？！）】》」』’”…—·%,.;:?!)]}%")
NO_LINE_END = set("（【《「『‘“([{")


# --- Chinese line breaking --------------------------------------------------------------------

_UNIT = re.compile(r"[A-Za-z0-9*+#@._/:%-]+|\s|.", re.S)


def _units(text: str) -> list[str]:
    """Pieces that may not be split: one CJK character, or a run of Latin letters and digits
    (a masked phone number stays whole), with closing marks glued to what precedes them and
    opening marks to what follows."""
    units: list[str] = []
    pending_open = ""
    for piece in _UNIT.findall(text):
        if piece in NO_LINE_END:
            pending_open += piece
        elif piece in NO_LINE_START and units and not pending_open:
            units[-1] += piece
        else:
            units.append(pending_open + piece)
            pending_open = ""
    if pending_open:
        units.append(pending_open)
    return units


def wrap(text: str, width: float, measure: Any) -> list[str]:
    """Lines of at most `width` (as `measure(str)` measures), each paragraph of `text` on new lines."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for unit in _units(paragraph):
            if line and measure(line + unit) > width:
                lines.append(line.rstrip())
                line = unit.lstrip()
            else:
                line += unit
            while measure(line) > width and len(line) > 1:  # a single unit wider than the line
                cut = len(line) - 1
                while cut > 1 and measure(line[:cut]) > width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line.rstrip())
    return lines


def _cut(text: str, more: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS].rstrip() + "…" + more


# --- the page -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PosterText:
    """Every word on the poster, already in the poster's language."""

    title: str
    subtitle: str
    intro: str
    qr_caption: str
    empty: str
    footer: str
    entries: list[tuple[str, str, str]]  # (heading, problem, answer)
    problem_label: str
    answer_label: str


def poster_text(t: Translator, lang: str, org: Org, month: date, entries: list[WallEntry], tz: Any) -> PosterText:
    month_name = format_skeleton("yMMMM", month, locale=lang)
    lines = []
    for entry in entries:
        key = f"ticket.category.{entry.category}"
        category = t(lang, key) if key in t.catalogs.get(lang, {}) else entry.category
        day = format_skeleton("MMMd", entry.answered_at.astimezone(tz).date(), locale=lang)
        more = t(lang, "poster.more")
        lines.append((t(lang, "poster.entry_heading", id=entry.id, category=category, day=day),
                      _cut(entry.problem or t(lang, "web.no_text"), more), _cut(entry.answer, more)))
    return PosterText(
        title=t(lang, "poster.title", org=org.name), subtitle=t(lang, "poster.subtitle", month=month_name,
                                                                 count=len(entries)),
        intro=t(lang, "poster.intro"), qr_caption=t(lang, "poster.qr_caption"), empty=t(lang, "poster.empty"),
        footer=t(lang, "poster.footer"), entries=lines, problem_label=t(lang, "poster.problem"),
        answer_label=t(lang, "poster.answer"))


def render_pdf(text: PosterText, join_link: str, font: Font | None = None) -> bytes:
    """The A4 poster as PDF bytes. Slow (seconds: the CJK font is parsed and subset): run it in a thread."""
    from fpdf import FPDF

    font = font or find_cjk_font()

    class Poster(FPDF):
        def header(self) -> None:
            if self.page_no() > 1:  # a continued page says whose and which month it is
                self.set_font("cjk", "B", 12)
                self.set_text_color(*RED)
                self.cell(0, 8, f"{text.title} · {text.subtitle}", new_x="LMARGIN", new_y="NEXT")
                self.ln(2)

        def footer(self) -> None:
            self.set_y(-14)
            self.set_font("cjk", "", 10)
            self.set_text_color(*GREY)
            self.cell(0, 6, f"{text.footer}    {self.page_no()}/{{nb}}", align="C")

    pdf = Poster(format="A4", unit="mm")
    pdf.set_title(text.title)
    pdf.set_creator("branchbot")
    pdf.add_font("cjk", "", font.regular, collection_font_number=font.regular_index)
    pdf.add_font("cjk", "B", font.bold, collection_font_number=font.bold_index)
    pdf.set_margins(16, 14, 16)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    _header(pdf, text, join_link)
    if not text.entries:
        pdf.set_font("cjk", "", 18)
        pdf.set_text_color(*INK)
        for line in wrap(text.empty, pdf.epw, pdf.get_string_width):
            pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    for heading, problem, answer in text.entries:
        _entry(pdf, heading, [(text.problem_label, problem), (text.answer_label, answer)])
    return bytes(pdf.output())


def _header(pdf: Any, text: PosterText, join_link: str) -> None:
    """Title and month on the left, the QR code (on white, with its quiet zone) and its caption on the right."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    qr_size = 46.0
    top = pdf.get_y()
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=4)
    code.add_data(join_link)
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white").get_image()
    pdf.image(image, x=pdf.w - pdf.r_margin - qr_size, y=top, w=qr_size, h=qr_size)
    text_width = pdf.epw - qr_size - 6
    pdf.set_text_color(*RED)
    pdf.set_font("cjk", "B", 30)
    for line in wrap(text.title, text_width, pdf.get_string_width):
        pdf.cell(text_width, 14, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)
    pdf.set_font("cjk", "", 17)
    for line in wrap(text.subtitle, text_width, pdf.get_string_width):
        pdf.cell(text_width, 10, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("cjk", "", 14)
    pdf.set_text_color(*GREY)
    for line in wrap(text.intro, text_width, pdf.get_string_width):
        pdf.cell(text_width, 7.5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)
    pdf.set_font("cjk", "B", 13)
    caption_y = max(pdf.get_y(), top + qr_size) + 1
    pdf.set_xy(pdf.w - pdf.r_margin - qr_size - 10, top + qr_size)
    for line in text.qr_caption.split("\n"):
        pdf.set_x(pdf.w - pdf.r_margin - qr_size - 10)
        pdf.cell(qr_size + 10, 6.5, line, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), caption_y) + 3)
    pdf.set_draw_color(*RED)
    pdf.set_line_width(0.8)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(4)


def _entry(pdf: Any, heading: str, parts: list[tuple[str, str]]) -> None:
    """One problem: its heading, then 问/答 with the label (in red) hanging in the margin of the text."""
    body, leading = 16, 8.2
    pdf.set_font("cjk", "B", body)
    label_w = max(pdf.get_string_width(label) for label, _ in parts) + 1.5
    pdf.set_font("cjk", "", body)
    blocks = [(label, wrap(content, pdf.epw - label_w, pdf.get_string_width)) for label, content in parts]
    height = 9 + sum(len(lines) for _, lines in blocks) * leading + 5
    if pdf.get_y() + min(height, 60) > pdf.page_break_trigger:
        pdf.add_page()
    pdf.set_font("cjk", "B", 13)
    pdf.set_text_color(*GREY)
    pdf.cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
    for label, lines in blocks:
        for i, line in enumerate(lines):
            pdf.set_text_color(*RED)
            pdf.set_font("cjk", "B", body)
            pdf.cell(label_w, leading, label if i == 0 else "")
            pdf.set_text_color(*INK)
            pdf.set_font("cjk", "", body)
            pdf.cell(pdf.epw - label_w, leading, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_draw_color(200, 200, 200)
    pdf.set_line_width(0.3)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(3)


async def make_poster(core: Core, org: Org, month: date, lang: str, join_link: str) -> bytes:
    """The month's poster of an org (the PDF is drawn in a worker thread)."""
    import asyncio


    entries = await core.echo_wall.month(org, month, core.settings.tz, lang)
    text = poster_text(core.t, lang, org, month, entries, core.settings.tz)
    return await asyncio.to_thread(render_pdf, text, join_link)


def file_name(t: Translator, lang: str, org: Org, month: date) -> str:
    return safe_file_name(t(lang, "poster.filename", org=org.name,
                            month=format_skeleton("yMMMM", month, locale=lang)))


def parse_month(text: str) -> date:
    """`2026-11` → date(2026, 11, 1); ValueError otherwise."""
    match = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"--month expects YYYY-MM, e.g. 2026-11, not {text!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def previous_month(today: date) -> date:
    return date(today.year - 1, 12, 1) if today.month == 1 else date(today.year, today.month - 1, 1)


async def cli(settings: Any, args: Any) -> int:
    """`python -m bot poster ORG [--month YYYY-MM] [--out FILE.pdf] [--lang en]`."""
    import sys

    from bot.__main__ import _fetch_username, open_core

    try:
        find_cjk_font()
        month = parse_month(args.month) if args.month else None
    except (FontMissing, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    lang = args.lang or settings.locale
    async with open_core(settings) as core:
        org = await core.orgs.by_code(args.org_code)
        if org is None:
            print(f"error: no org with code {args.org_code!r}", file=sys.stderr)
            return 1
        month = month or previous_month(core.clock.now().astimezone(settings.tz).date())
        username = await core.bot_username(org.id) or await _fetch_username(settings)
        link = await core.echo_wall.join_link(org, username, SYSTEM_ACTOR)
        pdf = await make_poster(core, org, month, lang, link)
        out = args.out or Path(file_name(core.t, lang, org, month))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pdf)
    print(f"poster of {org.name}, {month:%Y-%m}, written to {out}")
    print(f"its QR code opens {link}")
    return 0
