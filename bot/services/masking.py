"""Hide personal identifiers in text that is shown publicly (the echo wall).

`mask_public(text)` finds identifiers on a *normalised view* of the text and replaces each with a
mask. The view: every character NFKC-normalised (full-width digits and letters, circled, superscript
and mathematical digits, ideographic and no-break spaces), with format characters (Unicode category
Cf: zero-width spaces and joiners, bidi controls, soft hyphens …), combining marks (Mn, Me: keycaps,
strike-through overlays, variation selectors) and invisible fillers (Hangul fillers, braille blank)
removed.

Digits are read in chains: digits (any script's decimal digits, and the Chinese numerals 〇零○
一幺壹 二贰 三叁 四肆 五伍 六陆 七柒 八捌 九玖) with at most five separator characters between two of
them; separators are whitespace, dots (. · 。 ・), dashes, underscores and brackets. A chain is split
into groups wherever a separator stood, where Arabic and Chinese numerals meet (张三13812345678), at
an X closing an ID card, and between any two Chinese numerals. An identifier starts and ends on a
group boundary, so "电话13812345678号" and "2026-12-05 138 1234 5678" are both read right. Where a
chain can be read in several ways, the reading that accounts for the most digits wins: as
identifiers, dates (2026-12-05, 12-05), decimals (3.5) or quantities (a group bound to ¥ # 第 before
it, or to 年 元 号 组 % … or a clock after it); then the one with most digits in strong identifiers
(known by their shape), then the one that keeps most digits in dates and quantities, then the one
with most digits in weak identifiers (a 15-digit ID card, or a number known only by the word before
it). A mobile, landline or card number never holds a whole date (2000-01-01), and a piece cut out of
a run of Chinese numerals is Chinese numerals only. See `_chain_spans`.

What is masked, and how. Masks are the same in every language, so they never tell the reader's
language; they keep the first and last digits as Chinese banks, railways and couriers print them —
enough for the owner to recognise their number, too few to call or use it — except for QQ and WeChat
ids, whose whole value is the identity.

=============================  =========================================  ============================
kind                           recognised as                              mask
=============================  =========================================  ============================
mobile number (strong)         11 digits 1[3-9]…, with +86, 0086 or 86    138****5678, +86 138****5678
landline with area code        0 + 10/2x + 8 digits, or 0[3-9]xx + 7-8    029-****4321, 0914-***5678
(strong)                       digits; +86 or 0086 and the code without 0
ID card (strong: 18 digits;    18 digits, the last may be X, or 15        610222********123X,
weak: 15)                      digits; province code and a real birth     610222******123
                               date; any grouping
bank card (strong)             16-19 digits, Luhn-valid, in one block     6222********1234
                               or in equal groups of 4-6
number after a phone word      7-12 digits after 电话 座机 固话 手机 联系     ****4321
(weak)                         号码 打 拨 致电 ☎ 📞 📱 tel phone mobile call
QQ / WeChat number (weak)      5-20 digits after QQ 扣扣 企鹅 Q号 微信 威信   ****
                               薇信 徽信 V信 加微 微号 vx wx v weixin wechat
WeChat id                      6-20 letters, digits, _ or - starting      ****
                               with a letter after a WeChat word (a
                               longer run loses its first 20); wxid_…
e-mail address                 local@domain.tld, also " @ " and 。 dots    z***@qq.com
Telegram username              @ + 5-32 letters, digits or _              @***
=============================  =========================================  ============================

Output: the original text with format characters dropped (a zero-width joiner right after an emoji
stays, so 👨‍👩‍👧 survives) and each identifier replaced by its mask, built from the normalised digits:
the spacing, width or numerals of a masked part are not kept. Everything else keeps its own
characters, because NFKC on the whole text would turn Chinese punctuation (，：……) into ASCII on the
wall. Detection ran on the normalised view, so nothing left unmasked forms an identifier there.

Left readable on purpose: dates (2026-12-05, 2026年12月5日), times (15:30), amounts (1500元, ¥1500,
3.5万), house numbers (5组12号), ticket ids (#12), counts, years, public service numbers (12345, 110,
95588, 400-800-8888) and numbers of any other length or shape.

Known limitations:
- An identifier glued to other digits with no separator ("2026120513812345678") is not found; only
  the +86, 0086 and 86 prefixes are recognised inside one block.
- Separators other than the ones above (commas, 、, slashes, letters) end a chain, so
  "138,1234,5678" is not joined. Letters used as digits ("O138l2345678"), spelled-out numbers
  ("one three eight") and Chinese numerals with 十百千 are not read.
- Landlines without an area code are found only after a phone word; QQ and WeChat numbers only after
  their words. A WeChat id of letters only, after an English word and a space ("vx zhangsan"), is
  left alone to spare English ("wechat group"); with a colon, a Chinese word or a digit it is masked.
  "weixin"/"wechat" glued to a letters-only id ("wechatzhangsan") is not read either.
- A bare number written right after a number known only by its word, with just a space between,
  becomes part of it ("QQ 12345 6" masks "12345 6").
- A number split so that a piece of it reads as a date ("1990-12-05-678"), or whose Chinese numerals
  run on from a name and then go on in Arabic digits ("五一三八 1234 5678"), is not read as a whole.
- Bank cards in unequal groups ("62220 213 1234 5678 2") or with a wrong check digit, and ID cards
  with an impossible birth date or an unknown province, are not recognised (an 18-digit block may
  still be masked as a bank card if its check digit happens to fit).
- False positives: short numbers separated only by spaces can add up to an identifier ("价格 15 80
  120 3000" reads as a mobile number); any 7-12 digit number right after a phone word is masked,
  a date included ("电话 2026-12-05").
- Names, addresses, car plates and pictures are not examined; shared locations are the wall's own
  business (it never shows coordinates).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

__all__ = ["mask_public"]

_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_DROPPED_CATEGORIES = frozenset({"Cf", "Mn", "Me"})
_CN_DIGITS = {
    **dict.fromkeys("〇零○", "0"), **dict.fromkeys("一幺壹", "1"), **dict.fromkeys("二贰貳", "2"),
    **dict.fromkeys("三叁參叄", "3"), **dict.fromkeys("四肆", "4"), **dict.fromkeys("五伍", "5"),
    **dict.fromkeys("六陆陸", "6"), **dict.fromkeys("七柒", "7"), **dict.fromkeys("八捌", "8"),
    **dict.fromkeys("九玖", "9"),
}
_OPENERS = "([{【〔〖"
# A number written right after one of these (¥1500, #12, 15:30) or right before one (2026年, 1500元,
# 5组, 15:30, 50%) is a quantity, not part of an identifier that a space might glue it to.
_BOUND_BEFORE = frozenset("¥$#№第")
_BOUND_AFTER = frozenset("年月日时点分秒元万千百块角人户次组号栋单室亩米斤个岁周天%")
# A slash or colon binds only inside a time or date (15:30, 12/5); after a QQ number "：" is punctuation.
_CLOCK_BEFORE = re.compile(r"(?<!\d)\d{1,2}[:/]$")
_CLOCK_AFTER = re.compile(r":\d{2}(?![\d年月日号])")
_DAY_AFTER = re.compile(r"/\d{1,2}(?![\d年月日号])")
_SEPARATORS = frozenset(".·•‧∙・。-‐‑‒–—―−_" + _OPENERS + ")]}】〕〗")
_MAX_SEP = 5      # separator characters allowed between two digits of one chain
_MAX_DIGITS = 20  # the longest identifier (a WeChat number; a bank card has 19, 0086 + landline 16)
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 "
    "71 81 82 83".split())

_MOBILE = re.compile(r"(0086|86)?(1[3-9]\d)\d{4}(\d{4})")
# Real local numbers start with 2-9, but people (and examples) write 1234567 too.
_LANDLINE = re.compile(r"(0(?:10|2\d))([1-9]\d{7})|(0[3-9]\d\d)([1-9]\d{6,7})")
_LANDLINE_86 = re.compile(r"(?:0086|86)(?:(10|2\d)([1-9]\d{7})|([3-9]\d\d)([1-9]\d{6,7}))")

# Words after which a number is a phone or an instant-messenger id. ASCII words must stand alone;
# between the word and the number at most six characters, none of them a digit or a sentence break.
_GAP = r"[^\d*,，.。!！?？;；\n]{0,6}$"  # no * either: "QQ****：" is a mask, not a keyword
_PHONE_WORD = re.compile(
    r"(?:电话|座机|固话|手机|联系|号码|致电|拨|打|☎|📞|📱|(?<![a-z])(?:tel|phone|mobile|call|cell)(?![a-z]))"
    r"\.?" + _GAP, re.IGNORECASE)
# vx, wx, weixin and wechat may be glued to the id (vxabc123): no English word starts with them.
_WECHAT_WORDS = r"微信|威信|薇信|徽信|v信|加微|微号|(?<![a-z])(?:vx|wx|weixin|wechat|v(?![a-z]))"
_IM_WORD = re.compile(r"(?:扣扣|企鹅|q号|(?<![a-z])qq(?![a-z])|" + _WECHAT_WORDS + ")" + _GAP, re.IGNORECASE)
_WECHAT_ID = re.compile(
    r"(" + _WECHAT_WORDS + r")(?:[ \t]*(?:号码|号|id|账号|帐号))*[ \t]*([:=是为])?[ \t]*"
    r"([a-z][a-z0-9_-]{5,19})",  # at most 20 characters: an id run into English ("abc123please") still goes
    re.IGNORECASE)
_WXID = re.compile(r"(?<![a-z0-9])wxid_[a-z0-9_-]{4,}", re.IGNORECASE)
_EMAIL = re.compile(
    r"([a-z0-9._%+-]+)[ \t]?@[ \t]?([a-z0-9-]+(?:[.。][a-z0-9-]+)*[.。][a-z]{2,})(?![a-z0-9-])", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![a-z0-9._%+*-])@[a-z][a-z0-9_]{4,31}(?![a-z0-9_])", re.IGNORECASE)


def mask_public(text: str) -> str:
    """The text with every recognised personal identifier replaced by a mask (see the module doc)."""
    norm, origin = _normalise(text)
    taken = [False] * len(norm)
    spans = _pattern_spans(norm, taken)
    for chain in _chains(norm, taken):
        spans.extend(_chain_spans(norm, chain))
    # A span ends where the next visible character begins, so marks and format characters that
    # trail its last digit (the keycap in 8️⃣) go with it.
    ends = [*origin[1:], len(text)]
    return _render(text, [(origin[a], max(origin[b - 1] + 1, ends[b - 1]), mask) for a, b, mask in spans])


# --- the normalised view ---------------------------------------------------------------------------

def _dropped(ch: str) -> bool:
    return ch in _INVISIBLE or unicodedata.category(ch) in _DROPPED_CATEGORIES


def _normalise(text: str) -> tuple[str, list[int]]:
    """The normalised view and, for each of its characters, the index it came from in `text`."""
    chars: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        for out in (ch if ch.isascii() else unicodedata.normalize("NFKC", ch)):
            if not _dropped(out):
                chars.append(out)
                origin.append(index)
    return "".join(chars), origin


def _render(text: str, spans: list[tuple[int, int, str]]) -> str:
    """`text` with the spans replaced by their masks and format characters dropped elsewhere."""
    out: list[str] = []
    done = 0
    for start, end, mask in sorted(spans):
        if start > done:
            out.append(_clean(text[done:start]))
        out.append(mask)
        done = max(done, end)
    out.append(_clean(text[done:]))
    return "".join(out)


def _clean(part: str) -> str:
    kept: list[str] = []
    for ch in part:
        if ch == "\u200d" and kept and unicodedata.category(kept[-1][-1]) == "So":
            kept.append(ch)  # a joiner inside an emoji sequence (👨‍👩‍👧) is part of the picture
        elif ch not in _INVISIBLE and unicodedata.category(ch) != "Cf":
            kept.append(ch)
    return "".join(kept)


# --- identifiers that are not plain digit runs --------------------------------------------------------

def _pattern_spans(norm: str, taken: list[bool]) -> list[tuple[int, int, str]]:
    """E-mail addresses, WeChat ids and @usernames; marks their characters as taken."""
    spans: list[tuple[int, int, str]] = []

    def take(start: int, end: int, mask: str) -> None:
        if not any(taken[start:end]):
            taken[start:end] = [True] * (end - start)
            spans.append((start, end, mask))

    for m in _EMAIL.finditer(norm):
        take(m.start(), m.end(), m.group(1)[0] + "***@" + m.group(2).replace("。", "."))
    for m in _WXID.finditer(norm):
        take(m.start(), m.end(), "****")
    for m in _WECHAT_ID.finditer(norm):
        word, delimiter, wechat_id = m.groups()
        if delimiter or not word.isascii() or re.search(r"[\d_-]", wechat_id):
            take(m.start(3), m.end(3), "****")
    for m in _HANDLE.finditer(norm):
        take(m.start(), m.end(), "@***")
    return spans


# --- digit chains ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Unit:
    pos: int      # index in the normalised view
    char: str     # "0"-"9", or X/x closing an ID card number
    han: bool     # written as a Chinese numeral
    before: str   # separators between the previous unit of the chain and this one


def _digit(ch: str) -> str | None:
    if "0" <= ch <= "9":
        return ch
    if ch in _CN_DIGITS:
        return _CN_DIGITS[ch]
    if ch.isdigit():  # other scripts' digits, and ➊-style digits NFKC leaves alone
        value = unicodedata.digit(ch, None)
        return None if value is None else str(value)
    return None


def _is_separator(ch: str) -> bool:
    return ch in _SEPARATORS or ch.isspace()


def _chains(norm: str, taken: list[bool]) -> list[list[_Unit]]:
    """Every run of digits joined by short runs of separators, outside the taken characters."""
    chains: list[list[_Unit]] = []
    current: list[_Unit] = []
    seps = ""
    for i, ch in enumerate(norm):
        digit = None if taken[i] else _digit(ch)
        if digit is not None:
            if not current:
                seps = ""
            current.append(_Unit(i, digit, ch in _CN_DIGITS, seps))
            seps = ""
        elif current and not taken[i] and ch in "Xx" and _x_closes_id(norm, i, current[-1], seps):
            current.append(_Unit(i, ch, False, seps))
            chains.append(current)
            current, seps = [], ""
        elif current and not taken[i] and _is_separator(ch) and len(seps) < _MAX_SEP:
            seps += ch
        else:
            if current:
                chains.append(current)
            current, seps = [], ""
    if current:
        chains.append(current)
    return chains


def _x_closes_id(norm: str, i: int, last: _Unit, seps: str) -> bool:
    """An X after Arabic digits and not followed by a letter or digit (as in 3x4, 123Xyz) ends an ID."""
    following = norm[i + 1:i + 2]
    return not last.han and not (following.isascii() and following.isalnum())


def _chain_spans(norm: str, units: list[_Unit]) -> list[tuple[int, int, str]]:
    """Read one chain and return the spans to mask, with their masks.

    A dynamic programme over group boundaries: best[k] is the best reading of units[:starts[k]].
    Readings are compared, in this order, by
    1. digits explained: in an identifier, a date, a decimal or a quantity (2026年, ¥1500);
    2. digits in strong identifiers: mobile, landline with area code, 18-digit ID card, bank card;
    3. digits in dates, decimals and quantities left whole;
    4. digits in weak identifiers: 15-digit ID card, numbers known only by the word before them;
    5. fewer pieces.
    So "2026-11-05 13801011234" is a date and a mobile, not "2026" and a 15-digit ID card
    "11 05 1380101…"; "QQ 12345 2026-12-05" keeps its date; "电话 138 1234 5678号" is one mobile
    number, not a phone number "138 1234" and a house number.
    """
    starts = [k for k, u in enumerate(units)
              if k == 0 or u.before or u.han or units[k - 1].han or u.char in "Xx"] + [len(units)]
    context = _context(norm, units, starts)
    best: list[tuple[tuple[int, int, int, int, int], int, _Reading | None]] = [((0, 0, 0, 0, 0), -1, None)]
    for j in range(1, len(starts)):
        best.append((best[j - 1][0], j - 1, None))
        for i in range(j - 1, -1, -1):
            size = starts[j] - starts[i]
            if size > _MAX_DIGITS:
                break
            explained, strong, whole, weak, pieces = best[i][0]
            piece, bounds = units[starts[i]:starts[j]], starts[i:j + 1]
            if (_inside_numerals(units, starts[i]) or _inside_numerals(units, starts[j])) and not all(
                    u.han for u in piece):
                continue  # cut out of a run of Chinese numerals, a piece is Chinese numerals only
            edges = {"first": i == 0, "last": j == len(starts) - 1}
            reading = _identify(piece, bounds, context, **edges)
            if reading is not None and reading.strong:
                option = (explained + size, strong + size, whole, weak, pieces - 1)
            elif reading is not None:
                option = (explained + size, strong, whole, weak + size, pieces - 1)
            elif _readable(piece, bounds, context, **edges):
                option = (explained + size, strong, whole + size, weak, pieces - 1)
            else:
                continue
            if option > best[j][0]:
                best[j] = (option, i, reading)
    spans = []
    j = len(starts) - 1
    while j > 0:
        _, i, reading = best[j]
        if reading is not None:
            spans.append(_span(norm, units, starts[i], starts[j] - 1, i == 0, reading.mask))
        j = i
    return spans


def _inside_numerals(units: list[_Unit], k: int) -> bool:
    """Whether position k falls between two Chinese numerals written without a separator."""
    return 0 < k < len(units) and units[k].han and units[k - 1].han and not units[k].before


def _span(norm: str, units: list[_Unit], first: int, last: int, at_start: bool,
          mask: str) -> tuple[int, int, str]:
    """The characters a mask replaces: a leading + and an opening bracket closed inside go too."""
    start, end = units[first].pos, units[last].pos + 1
    if at_start:
        for opener in ("+", _OPENERS):
            if start > 0 and norm[start - 1] in opener and (opener == "+" or ")" in norm[start:end]):
                start -= 1
    return start, end, mask


@dataclass(frozen=True)
class _Context:
    phone: bool   # a phone word stands just before the chain
    im: bool      # a QQ or WeChat word stands just before the chain
    plus: bool    # the chain starts right after a +
    bound_before: bool  # the chain starts right after ¥, #, 第, : … (see _BOUND_BEFORE)
    bound_after: bool   # the chain ends right before 年, 元, 号, :30 … (see _BOUND_AFTER, _CLOCK_AFTER)
    unit_after: bool    # … and that is a counter word (年, 元, 号 …), not a clock


def _context(norm: str, units: list[_Unit], starts: list[int]) -> _Context:
    head = norm[max(0, units[0].pos - 30):units[0].pos]
    after = units[-1].pos + 1
    # Only an hour or minute (1-2 digits), a month or a year can be part of a clock or a date:
    # "0000：10:10" is no time.
    first_size, last_size = starts[1] - starts[0], starts[-1] - starts[-2]
    clock_before = first_size <= 2 and bool(_CLOCK_BEFORE.search(head))
    clock_after = (last_size <= 2 and bool(_CLOCK_AFTER.match(norm, after))) or (
        last_size in (1, 2, 4) and bool(_DAY_AFTER.match(norm, after)))
    return _Context(phone=bool(_PHONE_WORD.search(head)), im=bool(_IM_WORD.search(head)),
                    plus="+" in head[-2:], bound_before=head[-1:] in _BOUND_BEFORE or clock_before,
                    bound_after=norm[after:after + 1] in _BOUND_AFTER or clock_after,
                    unit_after=norm[after:after + 1] in _BOUND_AFTER)


@dataclass(frozen=True)
class _Reading:
    mask: str
    strong: bool  # known by its shape alone; weak ones yield to dates and quantities


def _group_sizes(bounds: list[int]) -> list[int]:
    return [b - a for a, b in pairwise(bounds)]


def _identify(piece: list[_Unit], bounds: list[int], context: _Context, *, first: bool,
              last: bool) -> _Reading | None:
    """How to mask this piece of a chain if it is an identifier, else None.

    `first` and `last`: the piece starts, or ends, the chain."""
    digits = "".join(u.char for u in piece)
    tail = piece[bounds[-2] - bounds[0]]
    # The last group is a quantity (2026年, 5678号, 10.1万) written apart from the rest of the piece.
    quantity = last and context.bound_after and len(bounds) > 2 and bool(tail.before) and not tail.han
    if not digits[:-1].isdigit() or (quantity and context.unit_after and "." in tail.before):
        return None  # no identifier ends in the fraction of an amount (…10.1万)
    if len(digits) == 18 and _is_id_card(digits):
        # The region stays, the birth date goes, the tail stays (as 12306 prints it).
        return _Reading(digits[:6] + "*" * 8 + digits[-4:], strong=True)
    if not digits.isdigit():
        return None
    # A whole date inside is kept whole: "QQ 100-000-130 2000-01-01" holds no mobile "130 2000 01 01".
    dated = len(bounds) >= 4 and _holds_date(piece, bounds)
    if (m := _MOBILE.fullmatch(digits)) and not dated:
        return _Reading(("+86 " if m.group(1) else "") + m.group(2) + "****" + m.group(3), strong=True)
    if 16 <= len(digits) <= 19 and _card_grouping(_group_sizes(bounds)) and _luhn(digits) and not dated:
        return _Reading(digits[:4] + "*" * (len(digits) - 8) + digits[-4:], strong=True)
    if (m := _LANDLINE.fullmatch(digits)) and not dated:
        return _landline("", m)
    if ((context.plus and first) or digits.startswith("0086")) and (m := _LANDLINE_86.fullmatch(digits)) \
            and not dated:
        return _landline("+86 ", m)
    if len(digits) == 15 and _is_id_card(digits):
        return _Reading(digits[:6] + "*" * 6 + digits[-3:], strong=False)
    # Numbers known only by the word before them never swallow a quantity ("QQ 12345 2026年").
    if not first or quantity:
        return None
    if context.phone and 7 <= len(digits) <= 12:
        return _Reading("*" * (len(digits) - 4) + digits[-4:], strong=False)
    if context.im and 5 <= len(digits) <= 20:
        return _Reading("****", strong=False)
    return None


def _landline(prefix: str, m: re.Match[str]) -> _Reading:
    area, local = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return _Reading(f"{prefix}{area}-" + "*" * (len(local) - 4) + local[-4:], strong=True)


def _is_id_card(digits: str) -> bool:
    """18 digits (the last may be X) or 15 digits, with a province code and a real birth date."""
    if digits[:2] not in _PROVINCES and digits[0] != "9":  # 9…: foreigners' permanent residence cards
        return False
    birth = digits[6:14] if len(digits) == 18 else "19" + digits[6:12]
    if not birth.isdigit() or not 1900 <= int(birth[:4]) <= 2099:
        return False
    try:
        date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
    except ValueError:
        return False
    return True


def _card_grouping(sizes: list[int]) -> bool:
    """Bank cards are written in one block or in equal groups (4-4-4-4-3, 6-6-6-1 …)."""
    return len(sizes) == 1 or (sizes[0] in (4, 5, 6) and all(s == sizes[0] for s in sizes[:-1])
                               and sizes[-1] <= sizes[0])


def _luhn(digits: str) -> bool:
    total = 0
    for k, ch in enumerate(reversed(digits)):
        value = int(ch) * (2 if k % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _readable(piece: list[_Unit], bounds: list[int], context: _Context, *, first: bool, last: bool) -> bool:
    """A date (2026-12-05, 2026.12, 12-05), a decimal (3.5) or a quantity of up to 6 digits (2026年,
    ¥1500): worth keeping whole. Not right after a phone, QQ or WeChat word: what follows such a word
    is what it announces ("QQ 123.45", "电话 2026-12-05")."""
    sizes = _group_sizes(bounds)
    if (first and (context.phone or context.im)) or any(u.han or not u.char.isdigit() for u in piece):
        return False
    if len(sizes) == 1:
        return sizes[0] <= 6 and ((last and context.bound_after) or (first and context.bound_before))
    seps = [piece[b - bounds[0]].before for b in bounds[1:-1]]
    if len(sizes) > 3 or any(sep not in ("-", ".") for sep in seps):
        return False
    if len(sizes) == 2 and seps == ["."]:  # 3.5, 1500.00, 0.25; not 0990101.000
        return (sizes[0] <= 6 and sizes[1] <= 2 and (sizes[0] == 1 or piece[0].char != "0"))
    if len(sizes) == 3:
        return _full_date(piece, bounds)
    values = [int("".join(u.char for u in piece[a - bounds[0]:b - bounds[0]])) for a, b in pairwise(bounds)]
    if sizes[0] == 4:
        return sizes[1] <= 2 and 1 <= values[1] <= 12
    return sizes[0] <= 2 and sizes[1] <= 2 and _valid_date(2000, *values)


def _full_date(piece: list[_Unit], bounds: list[int]) -> bool:
    """Three groups year, month, day joined by - or ., as in 2026-12-05 or 2026.12.5."""
    sizes = _group_sizes(bounds)
    seps = {piece[b - bounds[0]].before for b in bounds[1:-1]}
    if sizes[0] != 4 or sizes[1] > 2 or sizes[2] > 2 or len(seps) != 1 or not seps <= {"-", "."}:
        return False
    if any(u.han for u in piece):
        return False
    values = [int("".join(u.char for u in piece[a - bounds[0]:b - bounds[0]])) for a, b in pairwise(bounds)]
    return _valid_date(*values)


def _holds_date(piece: list[_Unit], bounds: list[int]) -> bool:
    return any(_full_date(piece[bounds[k] - bounds[0]:bounds[k + 3] - bounds[0]], bounds[k:k + 4])
               for k in range(len(bounds) - 3))


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return 1900 <= year <= 2099
