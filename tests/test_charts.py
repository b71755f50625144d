"""Charts draw Chinese with a real CJK font: distinct characters come out as distinct glyphs, not
the same box (tofu) repeated."""

from __future__ import annotations

import io
import os

import pytest

from bot import charts


def _need_font() -> None:
    try:
        charts.cjk_family()
    except charts.FontMissing as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no Chinese font on this machine ({exc})")


def _render(text: str) -> bytes:
    """Raw RGB pixels of `text` drawn alone on a small figure."""
    figure = charts.new_figure(1.2, 0.6, dpi=100)
    figure.text(0.5, 0.5, text, ha="center", va="center", fontsize=28)
    canvas = figure.canvas
    canvas.draw()
    return bytes(canvas.buffer_rgba())  # type: ignore[attr-defined]


def test_chinese_characters_are_glyphs_not_boxes() -> None:
    _need_font()
    assert charts.missing_glyphs("督查通报党支部满意率") == set()
    drawn = {ch: _render(ch) for ch in "党支部通报"}
    blank = _render(" ")
    assert all(pixels != blank for pixels in drawn.values()), "a character drew nothing"
    # A missing glyph is drawn as the same box whatever the character: all five must differ.
    assert len(set(drawn.values())) == len(drawn)


def test_png_bytes_is_a_png_with_chinese_title() -> None:
    _need_font()
    figure = charts.new_figure(4, 3)
    axes = figure.add_subplot()
    axes.bar(["一支部", "二支部"], [3, 5])
    axes.set_title("会议召开情况 −1")
    png = charts.png_bytes(figure)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (600, 450)
