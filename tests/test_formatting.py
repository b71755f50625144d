"""Dates, times, lists and plurals come from Babel and the catalogs' patterns; no code picks a
format or punctuation by comparing a language code."""

from __future__ import annotations

import ast
import re
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.formatting import Formatter
from bot.i18n import Translator

ROOT = Path(__file__).resolve().parent.parent
# Our locale codes (fontconfig's "zh-cn" names a font's coverage, not a reader's language).
LANGUAGE_CODE = re.compile(r"^(zh_CN|zh|en)$")


@pytest.fixture(scope="module")
def fmt() -> Formatter:
    return Formatter(Translator("zh_CN"), ZoneInfo("Asia/Shanghai"))


def test_chinese_reads_as_people_write_it(fmt: Formatter) -> None:
    start = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)  # 15:00 in Shanghai
    assert fmt.moment("zh_CN", start) == "12月5日（周六）下午3:00"
    assert fmt.span("zh_CN", start, datetime(2026, 12, 5, 9, 0, tzinfo=UTC)) == "12月5日（周六）下午3:00—5:00"
    assert fmt.span("zh_CN", start, datetime(2026, 12, 5, 12, 0, tzinfo=UTC)) == "12月5日（周六）下午3:00—晚上8:00"
    assert fmt.join("zh_CN", ["张三", "李四", "王五"]) == "张三、李四和王五"
    assert fmt.relative_day("zh_CN", date(2026, 12, 4), date(2026, 12, 5)) == "昨天"
    assert fmt.relative_day("zh_CN", date(2026, 12, 2), date(2026, 12, 5)) == "3天前"
    assert fmt.moment("zh_CN", start, now=datetime(2027, 1, 2, tzinfo=UTC)) == "2026年12月5日（周六）下午3:00"


def test_english_reads_naturally(fmt: Formatter) -> None:
    start = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
    assert fmt.moment("en", start) == "Sat, Dec 5, 3:00 PM"
    assert fmt.join("en", ["a", "b", "c"]) == "a, b, and c"
    assert fmt.count("en", "fmt.days_ago", 1) == "1 day ago"
    assert fmt.count("en", "fmt.days_ago", 2) == "2 days ago"
    assert fmt.relative_day("en", date(2026, 12, 5), date(2026, 12, 5)) == "today"


def _language_comparisons(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                values = operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [operand]
                if any(isinstance(v, ast.Constant) and isinstance(v.value, str) and LANGUAGE_CODE.match(v.value)
                       for v in values):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_code_compares_a_language_code_to_pick_a_format() -> None:
    offenders = [hit for folder in ("bot", "handlers", "schedules")
                 for path in sorted((ROOT / folder).rglob("*.py")) for hit in _language_comparisons(path)]
    assert offenders == [], "format by Babel or a catalog pattern, not by language code: " + ", ".join(offenders)


def test_the_scan_finds_a_comparison(tmp_path: Path) -> None:
    sample = ROOT / "bot" / "_scan_sample_for_test.py"
    try:
        sample.write_text('sep = "、" if lang == "zh_CN" else ", "\n', encoding="utf-8")
        assert _language_comparisons(sample) == ["bot/_scan_sample_for_test.py:1"]
    finally:
        sample.unlink()
