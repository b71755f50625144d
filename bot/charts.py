"""Charts as PNG bytes (matplotlib, Agg), with Chinese labels drawn in a system CJK font.

Every chart in the bot goes through here so the font is found and registered once. Figures are
made with `matplotlib.figure.Figure`, never pyplot: no global state, so a chart can be drawn in a
worker thread (`asyncio.to_thread`) while the event loop goes on. Drawing takes tens to hundreds of
milliseconds: never call these on the event loop.
"""

from __future__ import annotations

import io
import threading
from functools import lru_cache

import matplotlib
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

from bot.fonts import FontMissing, find_cjk_font

__all__ = ["FontMissing", "cjk_family", "missing_glyphs", "new_figure", "png_bytes"]

# Latin letters and digits look better in DejaVu; CJK glyphs come from the CJK font (matplotlib
# falls back per glyph along this list).
LATIN_FALLBACK = "DejaVu Sans"
_register_lock = threading.Lock()


@lru_cache(maxsize=1)
def cjk_family() -> str:
    """The family name of the system's Simplified Chinese font, registered with matplotlib and made
    the default for every text (this process draws only our charts, so the default is global:
    set once, before any figure, which also keeps it thread-safe)."""
    font = find_cjk_font()
    with _register_lock:
        for path in {font.regular, font.bold}:
            font_manager.fontManager.addfont(path)  # adds every face of a .ttc collection
        family = FT2Font(font.regular, face_index=font.regular_index).family_name
        matplotlib.rcParams["font.family"] = [family, LATIN_FALLBACK]
        matplotlib.rcParams["axes.unicode_minus"] = False  # the CJK font has no U+2212 minus
    return family


def new_figure(width_in: float, height_in: float, dpi: int = 150) -> Figure:
    """A white figure whose every text (titles, ticks, legends, annotations) uses the CJK font."""
    cjk_family()
    figure = Figure(figsize=(width_in, height_in), dpi=dpi, layout="constrained")
    figure.set_facecolor("white")
    FigureCanvasAgg(figure)  # attaches itself to the figure: draw() and buffer_rgba() work
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure rendered as PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def missing_glyphs(text: str) -> set[str]:
    """Characters of `text` the CJK font cannot draw (they would come out as boxes)."""
    font = find_cjk_font()
    face = FT2Font(font.regular, face_index=font.regular_index)
    return {ch for ch in set(text) if not ch.isspace() and face.get_char_index(ord(ch)) == 0}
