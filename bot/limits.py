"""Telegram's limits on what one message may carry, checked when a message is queued (so a bug
fails a test instead of a delivery), and cutting long content at a clean boundary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_TEXT = 4096  # characters of a message's text
MAX_CAPTION = 1024  # characters of a photo's, document's or voice note's caption
MAX_CALLBACK_DATA = 64  # bytes
MAX_BUTTONS = 100  # inline buttons in one message
MAX_ANSWER = 200  # characters of a button's answer (a toast or an alert)
# Telegram counts UTF-16 code units; characters outside the BMP (emoji) count twice.


def telegram_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class OverLimit(ValueError):
    """A message that Telegram would refuse with 400."""


def clip(text: str, limit: int, marker: str = "…") -> str:
    """`text` if it fits in `limit`, else cut at the last line break, sentence end or space in
    the last fifth of the room, with `marker` appended (the full text stays a tap away)."""
    if telegram_length(text) <= limit:
        return text
    room = limit - telegram_length(marker)
    if room <= 0:
        raise ValueError("marker longer than the limit")
    # Cut by UTF-16 length, never inside a surrogate pair.
    cut = text[:room]
    while telegram_length(cut) > room:
        cut = cut[:-1]
    floor = len(cut) * 4 // 5
    for stops in ("\n", "。！？.!?；;", "，,、 "):
        best = max(cut.rfind(ch) for ch in stops)
        if best >= floor:
            cut = cut[: best + 1]
            break
    return cut.rstrip() + marker


def split(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Several messages that together carry all of `text`, each cut at a clean boundary."""
    parts: list[str] = []
    rest = text
    while telegram_length(rest) > limit:
        piece = clip(rest, limit, marker="")
        if piece:  # a run of spaces at the start clips to nothing: no empty message
            parts.append(piece)
        rest = rest[len(piece):].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


def check_payload(method: str, payload: Mapping[str, Any]) -> None:
    """Raise OverLimit for a Bot API call that Telegram would refuse for its size."""
    text = payload.get("text")
    if isinstance(text, str) and telegram_length(text) > MAX_TEXT:
        raise OverLimit(f"{method}: text of {telegram_length(text)} characters (limit {MAX_TEXT})")
    if method in ("sendMessage", "editMessageText") and isinstance(text, str) and not text.strip():
        raise OverLimit(f"{method}: empty text")
    caption = payload.get("caption")
    if isinstance(caption, str) and telegram_length(caption) > MAX_CAPTION:
        raise OverLimit(f"{method}: caption of {telegram_length(caption)} characters (limit {MAX_CAPTION})")
    markup = payload.get("reply_markup")
    if isinstance(markup, Mapping) and "inline_keyboard" in markup:
        buttons = [button for row in markup["inline_keyboard"] for button in row]
        if len(buttons) > MAX_BUTTONS:
            raise OverLimit(f"{method}: {len(buttons)} buttons (limit {MAX_BUTTONS})")
        for button in buttons:
            data = button.get("callback_data")
            if data is not None and len(str(data).encode()) > MAX_CALLBACK_DATA:
                raise OverLimit(f"{method}: callback data {data!r} over {MAX_CALLBACK_DATA} bytes")
