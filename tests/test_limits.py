"""Telegram's size limits (bot/limits.py): clipping at a clean boundary, splitting without losing
text, and the check every queued message passes."""

from __future__ import annotations

import random
import re

import pytest

from bot.limits import (
    MAX_BUTTONS,
    MAX_CALLBACK_DATA,
    MAX_CAPTION,
    MAX_TEXT,
    OverLimit,
    check_payload,
    clip,
    split,
    telegram_length,
)

EMOJI = "😀"  # outside the BMP: two UTF-16 code units


def test_telegram_counts_utf16_code_units() -> None:
    assert telegram_length("") == 0
    assert telegram_length("abc") == 3
    assert telegram_length("三义村") == 3  # Chinese characters are in the BMP: one each
    assert telegram_length(EMOJI) == 2
    assert telegram_length("👨‍👩‍👧") == 8  # three emoji joined by two zero-width joiners


# --------------------------------------------------------------------------- clip

def test_clip_leaves_text_that_fits_alone() -> None:
    assert clip("路灯坏了", 4) == "路灯坏了"
    assert clip(EMOJI * 5, 10) == EMOJI * 5


def test_clip_cuts_after_a_chinese_sentence_end() -> None:
    text = "村口的路灯坏了三天了。晚上老人出门很不方便，希望尽快修好，谢谢大家的关心和帮助"
    clipped = clip(text, 30)
    assert clipped == "村口的路灯坏了三天了。晚上老人出门很不方便，希望尽快修好，…"
    assert telegram_length(clipped) <= 30


@pytest.mark.parametrize("stop", ["。", "！", "？", "；", "!", "?", "."])
def test_clip_prefers_a_sentence_end_to_a_later_comma(stop: str) -> None:
    # Room for 29 characters: a clean place is looked for in the last fifth (from the 23rd on).
    text = "一" * 24 + stop + "三四，" + "八" * 10
    assert clip(text, 30) == "一" * 24 + stop + "…"


def test_clip_looks_for_a_clean_place_only_near_the_end() -> None:
    # A sentence end early on would throw most of the room away: the later comma wins.
    text = "一" * 10 + "。" + "二" * 17 + "，" + "三" * 10
    assert clip(text, 30) == "一" * 10 + "。" + "二" * 17 + "，…"


def test_clip_prefers_a_line_break_to_a_later_sentence_end() -> None:
    assert clip("一" * 24 + "\n" + "二三。" + "四" * 10, 30) == "一" * 24 + "…"
    assert clip("一" * 25 + "\n" + "二" * 20, 30) == "一" * 25 + "…"


def test_clip_cuts_at_a_chinese_comma_or_enumeration_mark() -> None:
    assert clip("一二三四五六七八九十一二三四五六七八九十、三四五六七八九十一二三", 25) == \
        "一二三四五六七八九十一二三四五六七八九十、…"
    assert clip("一二三四五六七八九十一二三四五六七八九十，三四五六七八九十一二三", 25) == \
        "一二三四五六七八九十一二三四五六七八九十，…"


def test_clip_cuts_english_at_a_space() -> None:
    # Room for 19: "the street light at" fits, but a word at the edge may go on, so the cut is at a space.
    assert clip("the street light at the village gate is broken", 20) == "the street light…"
    assert clip("the street light at the village gate is broken", 22) == "the street light at…"


def test_clip_without_a_clean_place_cuts_hard() -> None:
    # No stop in the last fifth of the room: cut at the limit rather than lose most of the text.
    text = "一" * 50
    assert clip(text, 20) == "一" * 19 + "…"
    assert clip("短句。" + "二" * 50, 20) == "短句。" + "二" * 16 + "…"


def test_clip_never_splits_an_emoji() -> None:
    for limit in range(2, 30):
        clipped = clip(EMOJI * 40, limit)
        assert telegram_length(clipped) <= limit
        assert clipped == EMOJI * ((limit - 1) // 2) + "…"
        clipped.encode("utf-8")  # a lone surrogate would not encode


def test_clip_counts_the_marker_and_refuses_one_that_does_not_fit() -> None:
    clipped = clip("一二三四五六七八九十" * 3, 12, marker="…（详见详情）")
    assert clipped.endswith("…（详见详情）") and telegram_length(clipped) <= 12
    with pytest.raises(ValueError, match="marker"):
        clip("一二三四五六七八九十", 3, marker="（详见详情）")


def test_clip_of_a_maximal_card_fits_telegram() -> None:
    text = ("问题描述：" + "村里的水管坏了，" * 400 + "\n\n答复：" + "已经联系了水务站。" * 300)
    clipped = clip(text, MAX_TEXT)
    assert telegram_length(text) > MAX_TEXT >= telegram_length(clipped)
    assert clipped.endswith("…") and text.startswith(clipped[:-1])
    check_payload("sendMessage", {"chat_id": 1, "text": clipped})


# --------------------------------------------------------------------------- split

def _without_space(text: str) -> str:
    return re.sub(r"\s", "", text)


def _random_text(rng: random.Random, length: int) -> str:
    pieces = ["村", "路灯", "水管", "。", "，", "、", "！", "？", "\n", " ", "word", EMOJI, "👍", "1", "."]
    return "".join(rng.choice(pieces) for _ in range(length))


@pytest.mark.parametrize("seed", range(40))
def test_split_carries_all_the_text_in_order_and_within_the_limit(seed: int) -> None:
    rng = random.Random(seed)
    limit = rng.choice([10, 37, 100, 500])
    text = _random_text(rng, rng.randint(1, 400))
    parts = split(text, limit)
    assert all(telegram_length(part) <= limit for part in parts)
    if len(parts) > 1:  # no empty message, and no message that is only the whitespace at a cut
        assert all(part.strip() for part in parts)
    # Only the whitespace at a cut may go; every other character arrives, in order.
    assert _without_space("".join(parts)) == _without_space(text)


def test_split_of_short_text_is_one_message() -> None:
    assert split("你好") == ["你好"]
    assert split("") == [""]


def test_split_sends_no_empty_message() -> None:
    assert split(" " * 50 + "abc", 10) == ["abc"]
    assert split("abc" + " " * 50, 10) == ["abc"]
    assert split("ab" + "\n" * 30 + "cd", 5) == ["ab", "cd"]


def test_split_cuts_long_chinese_text_at_sentence_ends() -> None:
    sentence = "今天下午三点在村委会开党员大会，请大家准时参加。"
    parts = split(sentence * 400)
    assert len(parts) == 3
    assert all(telegram_length(p) <= MAX_TEXT and p.endswith("。") for p in parts)
    assert "".join(parts) == sentence * 400


def test_split_of_emoji_keeps_every_emoji_whole() -> None:
    parts = split(EMOJI * 3000)
    assert [telegram_length(p) for p in parts] == [4096, 1904]
    assert "".join(parts) == EMOJI * 3000


# --------------------------------------------------------------------------- check_payload

def _keyboard(count: int, data: str = "t:v:1") -> dict[str, object]:
    rows = [[{"text": str(i), "callback_data": data} for i in range(j, min(j + 8, count))]
            for j in range(0, count, 8)]
    return {"inline_keyboard": rows}


def test_a_message_at_the_limits_passes() -> None:
    check_payload("sendMessage", {"chat_id": 1, "text": "字" * MAX_TEXT})
    check_payload("sendMessage", {"chat_id": 1, "text": EMOJI * (MAX_TEXT // 2)})
    check_payload("sendDocument", {"chat_id": 1, "caption": EMOJI * (MAX_CAPTION // 2)})
    check_payload("sendMessage", {"chat_id": 1, "text": "选一个",
                                  "reply_markup": _keyboard(MAX_BUTTONS, "x" * MAX_CALLBACK_DATA)})
    link = {"inline_keyboard": [[{"text": "看", "url": "https://x.org/" + "a" * 200}]]}  # URLs are not data
    check_payload("sendMessage", {"chat_id": 1, "text": "链接", "reply_markup": link})
    check_payload("editMessageReplyMarkup", {"chat_id": 1, "message_id": 5, "reply_markup": {"inline_keyboard": []}})


@pytest.mark.parametrize(("method", "payload", "reason"), [
    ("sendMessage", {"text": "字" * (MAX_TEXT + 1)}, "text of 4097"),
    ("sendMessage", {"text": EMOJI * (MAX_TEXT // 2) + "a"}, "text of 4097"),  # UTF-16, not characters
    ("editMessageText", {"message_id": 3, "text": "x" * 5000}, "text of 5000"),
    ("sendMessage", {"text": ""}, "empty text"),
    ("sendMessage", {"text": " \n\t "}, "empty text"),
    ("editMessageText", {"message_id": 3, "text": "\n"}, "empty text"),
    ("sendDocument", {"caption": "说" * (MAX_CAPTION + 1)}, "caption of 1025"),
    ("sendPhoto", {"caption": EMOJI * 513}, "caption of 1026"),
    ("sendMessage", {"text": "选", "reply_markup": _keyboard(MAX_BUTTONS + 1)}, "101 buttons"),
    ("sendMessage", {"text": "选", "reply_markup": _keyboard(2, "x" * (MAX_CALLBACK_DATA + 1))}, "callback data"),
    ("sendMessage", {"text": "选", "reply_markup": _keyboard(1, "票" * 22)}, "callback data"),  # 66 bytes
    ("editMessageReplyMarkup", {"message_id": 3, "reply_markup": _keyboard(1, "y" * 65)}, "callback data"),
])
def test_over_limit_payloads_are_refused(method: str, payload: dict[str, object], reason: str) -> None:
    with pytest.raises(OverLimit, match=reason):
        check_payload(method, {"chat_id": 1, **payload})


def test_over_limit_is_a_value_error() -> None:
    assert issubclass(OverLimit, ValueError)
