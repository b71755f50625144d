"""Masking for the public wall (bot/services/masking.py).

Property tests generate identifiers of every kind in every written form (groupings, separators,
full-width, zero-width and combining characters, Chinese numerals, +86/0086, keywords) inside random
Chinese and English text with generated ordinary numbers around them, and check on a normalisation
of the output made here, independently of the module, that no identifier survives while the
ordinary numbers stay readable.

The runs are deterministic (derandomize) and bounded: MASKING_EXAMPLES examples per property
(default 150). The number of generated cases that ran is printed at the end of the module.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.services.masking import mask_public

EXAMPLES = int(os.environ.get("MASKING_EXAMPLES", "150"))
CASES = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RAN: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_generated_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    line = f"test_masking: {sum(RAN.values())} generated cases ran (" + ", ".join(
        f"{kind} {n}" for kind, n in sorted(RAN.items())) + ")"
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():  # shown on the terminal even though output is captured
        print("\n" + line)


# --- an independent reading of the output ------------------------------------------------------------

CHINESE = {**dict.fromkeys("〇零○", "0"), **dict.fromkeys("一幺壹", "1"), **dict.fromkeys("二贰", "2"),
           **dict.fromkeys("三叁", "3"), **dict.fromkeys("四肆", "4"), **dict.fromkeys("五伍", "5"),
           **dict.fromkeys("六陆", "6"), **dict.fromkeys("七柒", "7"), **dict.fromkeys("八捌", "8"),
           **dict.fromkeys("九玖", "9")}
SEPARATOR_CHARS = set(" \t\n.·•‧∙・。-‐‑‒–—―−_+()[]{}【】〔〕〖〗")


def visible(text: str) -> str:
    """NFKC, without format characters and combining marks."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text)
                   if unicodedata.category(ch) not in ("Cf", "Mn", "Me"))


def digit_view(text: str) -> str:
    """Digits as a reader could dictate them: numerals as digits, separators gone, X upper-case."""
    out = []
    for ch in visible(text):
        if ch in CHINESE:
            out.append(CHINESE[ch])
        elif ch.isdecimal():
            out.append(str(unicodedata.decimal(ch)))
        elif ch not in SEPARATOR_CHARS and not ch.isspace():
            out.append(ch.upper())
    return "".join(out)


# --- identifiers --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Secret:
    text: str               # as written in the generated message
    digits: tuple[str, ...]  # digit strings that must not be readable afterwards
    words: tuple[str, ...] = ()  # other strings that must not appear (ids, e-mail local parts)


PROVINCES = ["11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
             "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65"]
FORMAT_ONLY = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202a", "\u202c", "\u2062"]
ZERO_WIDTH = [*FORMAT_ONLY, "\u0336", "\u0301", "\ufe0f"]  # and combining marks
SEPARATORS = [" ", "  ", "-", " - ", ".", "·", "–", "—", "_", "(", ")", ") ", " (", "\u3000", "\n", "\t",
              "。", "・", "\u00a0"]
LOWER = "〇一二三四五六七八九"
UPPER = "零壹贰叁肆伍陆柒捌玖"


def digits(n: int, first: str = "0123456789") -> st.SearchStrategy[str]:
    return st.builds(lambda a, b: a + b, st.sampled_from(first), st.text("0123456789", min_size=n - 1,
                                                                         max_size=n - 1))


def luhn_complete(body: str) -> str:
    total = 0
    for k, ch in enumerate(reversed(body)):
        value = int(ch) * (1 if k % 2 else 2)
        total += value - 9 if value > 9 else value
    return body + str(-total % 10)


def id_check(body: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


@st.composite
def spread(draw: st.DrawFn, number: str, groupings: tuple[tuple[int, ...], ...] = (),
           chinese: bool = False, arbitrary: bool = True) -> str:
    """`number` written in a block, a usual grouping or split anywhere, in some script."""
    styles = ["block", *(["fixed"] if groupings else []), *(["anywhere"] if arbitrary else [])]
    style = draw(st.sampled_from(styles))
    if style == "fixed":
        sizes = draw(st.sampled_from(groupings))
        cuts = [sum(sizes[:k]) for k in range(1, len(sizes))]
    elif style == "anywhere":
        cuts = sorted(draw(st.sets(st.integers(1, len(number) - 1), max_size=len(number) - 1)))
    else:
        cuts = []
    sep = draw(st.sampled_from(SEPARATORS))
    mixed = draw(st.booleans())
    pieces, last = [], 0
    for cut in [*cuts, len(number)]:
        if last:
            pieces.append(draw(st.sampled_from(SEPARATORS)) if mixed else sep)
        pieces.append(number[last:cut])
        last = cut
    written = "".join(pieces)
    script = draw(st.sampled_from(["ascii", "full", "mixed", *(["lower", "upper"] if chinese else [])]))
    if script == "full":
        return full_width(written)
    if script == "mixed":
        return "".join(full_width(c) if c.isdigit() and draw(st.booleans()) else c for c in written)
    if script == "lower":
        return "".join(_lower(c, draw) for c in written)
    if script == "upper":
        return "".join(UPPER[int(c)] if c.isdigit() else c for c in written)
    return written


def _lower(c: str, draw: st.DrawFn) -> str:
    if not c.isdigit():
        return c
    if c == "0":
        return draw(st.sampled_from(["〇", "零"]))
    if c == "1":
        return draw(st.sampled_from(["一", "幺"]))
    return LOWER[int(c)]


@st.composite
def with_invisibles(draw: st.DrawFn, text: str, choice: list[str] = ZERO_WIDTH) -> str:
    """Zero-width, format and combining characters slipped in anywhere."""
    chars = list(text)
    for _ in range(draw(st.integers(0, 4))):
        chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from(choice)))
    return "".join(chars)


@st.composite
def keyword(draw: st.DrawFn, words: list[str], optional: bool) -> str:
    if optional and draw(st.booleans()):
        return ""
    word = draw(st.sampled_from(words))
    word = full_width(word) if draw(st.booleans()) and word.isascii() else word
    return word + draw(st.sampled_from(["", " ", ":", "：", ": ", "是", "号码是 ", "（", " ("]))


@st.composite
def mobiles(draw: st.DrawFn) -> Secret:
    number = draw(st.sampled_from(["13", "14", "15", "16", "17", "18", "19"])) + draw(digits(9))
    prefix = draw(st.sampled_from(["", "", "+86", "+86 ", "+86-", "0086", "0086 ", "(+86)", "(+86) ", "86", "86-"]))
    body = draw(spread(number, ((3, 4, 4), (3, 3, 5), (4, 4, 3), (3, 8), (2, 3, 3, 3)), chinese=True))
    word = draw(keyword(["电话", "手机", "手机号", "联系电话", "tel", "Tel.", "phone", "致电", "打"], optional=True))
    return Secret(word + prefix + body, (number,))


@st.composite
def landlines(draw: st.DrawFn) -> Secret:
    area = draw(st.sampled_from(["010", "020", "021", "022", "029", "0914", "0351", "0571", "0755", "0931"]))
    local = draw(digits(8 if len(area) == 3 or draw(st.booleans()) else 7, first="123456789"))
    shape = draw(st.sampled_from(["plain", "brackets", "dash", "local"]))
    if shape == "local":  # no area code: recognised only after a phone word
        word = draw(keyword(["电话", "座机", "固话", "tel", "Tel", "TEL:", "phone", "联系电话", "办公电话"],
                            optional=False))
        return Secret(word + draw(spread(local, ((4, 4), (3, 4), (4, 3)))), (local,))
    body = draw(spread(local, ((4, 4), (3, 4), (4, 3)), chinese=True))
    area_text = {"plain": area + draw(st.sampled_from(["", " "])), "brackets": f"({area})",
                 "dash": area + "-"}[shape]
    area_text = full_width(area_text) if draw(st.booleans()) else area_text
    word = draw(keyword(["电话", "座机", "固话", "tel"], optional=True))
    return Secret(word + area_text + body, (area + local, local))


@st.composite
def id_cards(draw: st.DrawFn) -> Secret:
    province = draw(st.sampled_from(PROVINCES)) + draw(digits(4))
    if draw(st.integers(0, 3)) == 0:
        born = draw(st.dates(date(1920, 1, 1), date(1999, 12, 31)))
        number = province + born.strftime("%y%m%d") + draw(digits(3))
    else:
        born = draw(st.dates(date(1920, 1, 1), date(2025, 12, 31)))
        body = province + born.strftime("%Y%m%d") + draw(digits(3))
        last = draw(st.sampled_from([id_check(body), "X", "x"]))
        number = body + last
    written = draw(spread(number, ((6, 8, 4), (6, 4, 4, 4), (3, 3, 4, 4, 4), (4, 4, 4, 4, 2), (6, 12)),
                          arbitrary=True))
    word = draw(keyword(["身份证", "身份证号", "ID", "证件号"], optional=True))
    return Secret(word + written, (number.upper(),))


@st.composite
def bank_cards(draw: st.DrawFn) -> Secret:
    prefix = draw(st.sampled_from(["62", "622202", "6228", "4", "5", "9558", "3", "60"]))
    length = draw(st.integers(16, 19))
    number = luhn_complete(prefix + draw(digits(length - 1 - len(prefix))))
    written = draw(spread(number, ((4, 4, 4, 4, 4)[: (length + 3) // 4],), arbitrary=False))
    word = draw(keyword(["卡号", "银行卡", "账号", "card no."], optional=True))
    return Secret(word + written, (number,))


@st.composite
def im_numbers(draw: st.DrawFn) -> Secret:
    number = draw(digits(draw(st.integers(5, 11)), first="123456789"))
    word = draw(keyword(["QQ", "qq", "QQ号", "Q号", "企鹅", "企鹅号", "扣扣", "微信", "威信", "vx", "VX", "wx",
                         "weixin", "wechat", "WeChat", "V信"], optional=False))
    return Secret(word + draw(spread(number, ((3, 3, 3), (4, 4)), chinese=True)), (number,))


@st.composite
def wechat_ids(draw: st.DrawFn) -> Secret:
    head = draw(st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=1))
    tail = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=5, max_size=19))
    word = draw(st.sampled_from(["微信", "微信号", "威信", "薇信", "V信", "加微", "vx", "wx", "weixin", "wechat",
                                 "WeChat"]))
    delimiter = draw(st.sampled_from(["", " ", ":", "：", ": ", "是", " id: "]))
    if word.isascii() and delimiter in ("", " ") and not any(c.isdigit() or c in "_-" for c in tail):
        tail += draw(st.sampled_from("0123456789_"))  # a bare English word after "wechat " is left alone
    wechat_id = head + tail[:19]
    text = (full_width(word) if draw(st.booleans()) and word.isascii() else word) + delimiter + wechat_id
    return Secret(text, (), (wechat_id.lower(),))


@st.composite
def emails(draw: st.DrawFn) -> Secret:
    local = draw(st.from_regex(r"[a-z][a-z0-9]{1,8}([._][a-z0-9]{1,6})?[0-9]{1,4}", fullmatch=True))
    domain = draw(st.sampled_from(["qq.com", "163.com", "126.com", "gmail.com", "sina.cn", "foxmail.com",
                                   "example.org.cn"]))
    at = draw(st.sampled_from(["@", " @ ", "＠"]))
    domain = domain.replace(".", "。") if draw(st.integers(0, 4)) == 0 else domain
    text = local + at + domain
    return Secret(full_width(text) if draw(st.integers(0, 4)) == 0 else text, (), (local + "@",))


KINDS: dict[str, Callable[[], st.SearchStrategy[Secret]]] = {
    "mobile": mobiles, "landline": landlines, "id card": id_cards, "bank card": bank_cards,
    "qq/wechat number": im_numbers, "wechat id": wechat_ids, "e-mail": emails}


# --- surroundings ------------------------------------------------------------------------------------

CN_WORDS = ["村口", "路灯", "坏了", "请", "尽快", "处理", "老张", "家门口", "垃圾", "没人", "清理", "反映", "多次",
            "谢谢", "水管", "漏水", "低保", "的事", "麻烦", "书记", "你好", "道路", "积水", "一直", "三组", "王五",
            "张三"]
EN_WORDS = ["the", "street", "light", "is", "broken", "please", "fix", "it", "soon", "water", "pipe", "leaks",
            "near", "my", "house", "thanks", "village", "road", "again", "since"]


@st.composite
def ordinary_numbers(draw: st.DrawFn) -> str:
    """Numbers that must stay readable."""
    day = draw(st.dates(date(1990, 1, 1), date(2030, 12, 31)))
    y, m, d = day.year, day.month, day.day
    n = draw(st.integers(1, 99999))
    small = draw(st.integers(1, 99))
    token = draw(st.sampled_from([
        f"{y}年{m}月{d}日", f"{y}-{m:02}-{d:02}", f"{y}.{m:02}.{d:02}", f"{y}/{m}/{d}", f"{m}月{d}日", f"{y}年",
        f"{small % 24}:{small % 60:02}", f"{small % 24}点半", f"{n}元", f"{small}.{n % 10}万", f"¥{n}",
        f"{n}块钱", f"{small}组{n % 200}号", f"{small}栋{small % 6 + 1}单元{n % 2000}室", f"#{n}",
        f"{small}人", f"第{small}次", f"{n % 300}户", f"{small}.{n % 100}亩", f"{n % 1000}"]))
    return full_width(token) if draw(st.integers(0, 5)) == 0 else token


def ends_with_digit(text: str) -> bool:
    return bool(text) and visible(text[-1:])[-1:].isdigit()


def ascii_alnum(ch: str) -> bool:
    ch = visible(ch)[:1]
    return ch.isascii() and ch.isalnum()


@st.composite
def surroundings(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Random Chinese and English text with ordinary numbers, never glued digit to digit."""
    pieces: list[str] = []
    numbers: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 2)) == 0:
            piece = draw(ordinary_numbers())
            numbers.append(piece)
        else:
            piece = draw(st.sampled_from(CN_WORDS + EN_WORDS))
        if pieces:
            before = pieces[-1]
            if ends_with_digit(before) or visible(piece)[:1].isdigit():
                pieces.append(draw(st.sampled_from(["，", "、", "；", " and ", "，又", "！"])))
            elif ascii_alnum(before[-1]) and ascii_alnum(piece[0]):
                pieces.append(draw(st.sampled_from([" ", ", "])))
            else:
                pieces.append(draw(st.sampled_from(["", " ", "，", "。"])))
        pieces.append(piece)
    return "".join(pieces), numbers


def joiner(draw: st.DrawFn, left: str, right: str) -> str:
    """What stands between a piece of surroundings and the identifier."""
    left, right = visible(left), visible(right)
    if not left or not right:
        return ""
    if re.search(r"(^|[^0-9./:¥#-])[0-9]+$", left) or re.match(r"[0-9]+($|[^0-9./:-])", right):
        # A bare number next to a QQ number with only a space between is read as part of it.
        return draw(st.sampled_from(["，", "：", "、"]))
    if left[-1].isdigit():
        # A date or amount next to the identifier with only a space between: the chain is read whole.
        return draw(st.sampled_from([" ", "，", "：", "\n"]))
    if right[0].isdigit():
        # Not "：" before a clock: "QQ 1000 0：10:10" reads as a QQ number 1000 and the time 0:10.
        return draw(st.sampled_from([" ", "，", "\n"]))
    if ascii_alnum(left[-1]) and ascii_alnum(right[0]):
        return draw(st.sampled_from([" ", "，", "："]))
    return draw(st.sampled_from(["", " ", "，", "：", "（"]))


# --- properties ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(KINDS))
@CASES
@given(data=st.data())
def test_no_generated_identifier_survives_and_ordinary_numbers_stay(kind: str, data: st.DataObject) -> None:
    secret = data.draw(KINDS[kind](), label="identifier")
    written = data.draw(with_invisibles(secret.text), label="written")
    (left, left_numbers), (right, right_numbers) = data.draw(surroundings()), data.draw(surroundings())
    text = left + joiner(data.draw, left, written) + written + joiner(data.draw, written, right) + right

    out = mask_public(text)
    RAN[kind] += 1
    rest = visible(out)
    for number in left_numbers + right_numbers:
        assert visible(number) in rest, (number, text, out)
        rest = rest.replace(visible(number), "|", 1)  # so that 2000-01-01 does not count as QQ 20000
    readable = digit_view(rest)
    for number in secret.digits:
        assert number not in readable, (text, out)
        # Nor most of it: masks keep at most six digits in a row (the region of an ID card).
        assert not any(number[k:k + 7] in readable for k in range(len(number) - 6)), (text, out)
    for word in secret.words:
        assert word not in rest.lower(), (text, out)


@CASES
@given(surroundings(), st.data())
def test_generated_text_without_identifiers_is_left_as_it_is(text_numbers: tuple[str, list[str]],
                                                              data: st.DataObject) -> None:
    text, _ = text_numbers
    RAN["ordinary text"] += 1
    assert mask_public(text) == text
    # Format characters slipped in are dropped and nothing else changes.
    assert mask_public(data.draw(with_invisibles(text, FORMAT_ONLY))) == text


# --- examples: tricky cases written by hand -------------------------------------------------------------

@pytest.mark.parametrize(("raw", "masked"), [
    # Glued to words and to other numbers by separators only.
    ("电话13812345678号", "电话138****5678号"),
    ("2026-12-05 138 1234 5678 来过", "2026-12-05 138****5678 来过"),
    ("身份证 61022219800101123X 2026-12-05", "身份证 610222********123X 2026-12-05"),
    ("2026-12-05 610222198001011234", "2026-12-05 610222********1234"),
    ("2026-11-05 13801011234", "2026-11-05 138****1234"),  # not "11 05 1380101…" as a 15-digit ID card
    ("王五13812345678，张三一三八一二三四五六七八", "王五138****5678，张三138****5678"),
    # Written to slip through.
    ("幺三八 幺二三四 五六七八", "138****5678"),
    ("壹叁捌-壹贰叁肆-伍陆柒捌", "138****5678"),
    ("１３８\u200b１２３４\u2060５６７８", "138****5678"),
    ("1\u03363\u03368\u0336 1234 5678", "138****5678"),
    ("1️⃣3️⃣8️⃣1️⃣2️⃣3️⃣4️⃣5️⃣6️⃣7️⃣8️⃣", "138****5678"),
    ("(+86) 138.1234.5678", "+86 138****5678"),
    ("0086-138-1234-5678", "+86 138****5678"),
    ("Ｑ\u200bＱ：１２３４５６７８９", "ＱＱ：****"),
    # Landlines.
    ("（029）8765-4321", "029-****4321"),
    ("有事打 0914-1234567 转 8", "有事打 0914-***4567 转 8"),
    ("办公室电话：8765 4321", "办公室电话：****4321"),
    ("+86 29 8765 4321", "+86 29-****4321"),
    # Cards, mail and messengers.
    ("卡号 6222 0213 1234 5670 002", "卡号 6222***********0002"),
    ("邮箱：Zhang.San88@QQ.com", "邮箱：Z***@QQ.com"),
    ("13812345678@163.com", "1***@163.com"),
    ("加微信zhangsan1988，QQ号是 1234 5678 9", "加微信****，QQ号是 ****"),
    ("wechat: zhangsan", "wechat: ****"),
    ("wxid_abcd1234 找我", "**** 找我"),
    ("找 @zhang_san99 问问", "找 @*** 问问"),
])
def test_tricky_identifiers_are_masked(raw: str, masked: str) -> None:
    assert mask_public(raw) == masked


@pytest.mark.parametrize("plain", [
    "2026年12月5日下午3点，5组12号门口，损失1500元，涉及3.5万",
    "2026-12-05 15:30 反映 #12，第3次，共18户",
    "工单 #1234 和 #12，2026.12.05 处理",
    "12345 热线、110、95588、400-800-8888 都打过",
    "订单号 202611270001，快递 7730123456",
    "面积 0.5 亩，每亩 1200 元，2025 年",
    "add me on wechat group please",
    "3x4米的墙，13 个人",
    "👨\u200d👩\u200d👧 一家三口，全家福",
    "……，：；！？“引号”",
])
def test_ordinary_text_is_untouched(plain: str) -> None:
    assert mask_public(plain) == plain


def test_format_characters_are_dropped_and_everything_else_is_kept() -> None:
    assert mask_public("路灯\u200b坏了\u202e，Ｈｅｌｌｏ（全角）") == "路灯坏了，Ｈｅｌｌｏ（全角）"
