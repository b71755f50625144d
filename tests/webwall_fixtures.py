"""Seeding for the echo-wall web page and poster tests (and bench/webwall.py): tickets made through the
real TicketService, and many more written straight into the tables for the paging measurements."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from service_fixtures import RESIDENT, SECRETARY

from bot.clock import SettableClock
from bot.core import Core
from bot.services.tickets import Item

# Private data a resident might type; none of it may ever reach the page or the poster.
PHONE = "13812345678"
PHONE_SPACED = "139 8765 4321"
LANDLINE = "0914-3321234"
ID_CARD = "61102519650312423X"
ID_CARD_2 = "110105194912310021"
COORDINATES = "📍 33.68123,110.33456"
TYPED_PLACE = "33.701,110.4567"
# Each number whole, and the part the mask hides (the masked form keeps the first and last digits).
SECRETS = (PHONE, "12345678", PHONE_SPACED, "8765", "3321234", "-332", ID_CARD, "19650312", ID_CARD_2, "19491231",
           "33.68123", "110.33456", "33.701", "110.4567", "赵四", "不想公开", "私下答复", "未答复内容")
IN_CI = os.environ.get("CI") == "true"


def cjk_font_or_skip() -> None:
    """Like `need`, for the poster's Chinese font."""
    from bot.poster import FontMissing, find_cjk_font

    try:
        find_cjk_font()
    except FontMissing as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def need(tool: str) -> str:
    """The path of a system tool; outside CI a missing one skips the test, in CI it fails it."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not installed (run .ci/system-deps.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


async def seed_real(core: Core, clock: SettableClock) -> list[int]:
    """Five answered public problems with private numbers in them, one private and one unanswered."""
    t = core.tickets
    made = []
    texts = [
        [Item("text", f"村东头路灯坏了三个月，晚上老人摔倒了。我电话{PHONE}，身份证{ID_CARD}")],
        [Item("text", "垃圾站满了没人清"), Item("location", COORDINATES, chat_id=RESIDENT, message_id=7)],
        [Item("voice", None, chat_id=RESIDENT, message_id=8)],
        [Item("text", f"低保的事，座机{LANDLINE}，手机 {PHONE_SPACED}，家在 {TYPED_PLACE} 附近")],
        [Item("text", "<script>alert('x')</script> 路口的 & 标志牌 \"歪了\"")],
    ]
    for i, items in enumerate(texts):
        ticket = await t.submit(RESIDENT, items, "infrastructure" if i % 2 == 0 else "sanitation",
                                public_ok=True, anonymous=False)
        clock.advance(timedelta(hours=2))
        answer = f"已处理，有事打 {PHONE} 或查身份证{ID_CARD_2}。第{i + 1}件"
        await t.answer(SECRETARY, ticket.id, [Item("text", answer)])
        clock.advance(timedelta(hours=2))
        made.append(ticket.id)
    hidden = await t.submit(RESIDENT, [Item("text", "不想公开的事 私密内容")], "other", public_ok=False,
                            anonymous=True)
    clock.advance(timedelta(hours=1))
    await t.answer(SECRETARY, hidden.id, [Item("text", "私下答复的内容")])
    clock.advance(timedelta(hours=1))
    await t.submit(RESIDENT, [Item("text", "还没答复的问题 未答复内容")], "other", public_ok=True, anonymous=False)
    return made


def pdf_pages(pdf: Path, prefix: Path) -> list[Path]:
    """The PDF's pages as PNG files at 150 dpi (A4: 1240 x 1754), through poppler's pdftoppm."""
    subprocess.run([need("pdftoppm"), "-r", "150", "-png", str(pdf), str(prefix)], check=True, timeout=120)
    return sorted(prefix.parent.glob(prefix.name + "*.png"))


def pdf_text(pdf: Path) -> str:
    return subprocess.run([need("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
