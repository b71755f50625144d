"""The meetings' kinds of callback data: every kind round-trips, stays within Telegram's 64 bytes
with the largest ids, and refuses data of another shape."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest

from bot.callbacks import (
    MAX_BYTES,
    MEETING_EDIT,
    MEETING_FLOW,
    MEETING_LEAVE_REASON,
    MEETING_LEDGER,
    MEETING_LEDGER_MENU,
    MEETING_LEGACY,
    MEETING_MANAGE,
    MEETING_MARK,
    MEETING_MEMBER,
    MEETING_NEW,
    MEETING_QUOTA,
    MEETING_SERIES_STOP,
    MEETING_SETTINGS,
    Kind,
)
from bot.services.meeting_model import QuotaKind

MEETING_KINDS = [MEETING_NEW, MEETING_FLOW, MEETING_MEMBER, MEETING_LEAVE_REASON, MEETING_MANAGE, MEETING_MARK,
                 MEETING_EDIT, MEETING_SERIES_STOP, MEETING_SETTINGS, MEETING_QUOTA, MEETING_LEDGER,
                 MEETING_LEDGER_MENU, MEETING_LEGACY]
BIG = 2**63 - 1  # SQLite's largest rowid, larger than any Telegram user id (< 2**53)
# The largest value each int field can take: ids are rowids or Telegram user ids (positive).
LARGEST = {"page": 9999, "first": 99991231, "last": 99991231, "reason": 99}


def extremes(kind: Kind[Any]) -> list[tuple[Any, ...]]:
    """Field values at their longest: every enum member with the largest and the most negative ids."""
    values: list[list[Any]] = []
    for name, field_type in zip(kind.names, kind.types, strict=True):
        if field_type is int:
            values.append([LARGEST.get(name, BIG), 0])
        elif isinstance(field_type, type) and issubclass(field_type, StrEnum):
            values.append(list(field_type))
        else:  # a str field: the meetings' only one carries a QuotaKind value
            values.append([k.value for k in QuotaKind])
    combos: list[tuple[Any, ...]] = [()]
    for options in values:
        combos = [(*c, o) for c in combos for o in options]
    return combos


def test_the_prefixes_are_distinct_and_do_not_match_each_other() -> None:
    prefixes = [k.prefix for k in MEETING_KINDS]
    assert len(set(prefixes)) == len(prefixes)
    for kind in MEETING_KINDS:
        for other in MEETING_KINDS:
            if other is not kind:
                assert other.parse(kind.encode(kind.fields(*extremes(kind)[0]))) is None


@pytest.mark.parametrize("kind", MEETING_KINDS, ids=lambda k: k.prefix)
def test_every_meeting_kind_round_trips_within_64_bytes(kind: Kind[Any]) -> None:
    import re

    for values in extremes(kind):
        fields = kind.fields(*values)
        data = kind.encode(fields)
        assert len(data.encode()) <= MAX_BYTES, data
        assert re.match(kind.pattern, data)
        assert kind.parse(data) == fields


@pytest.mark.parametrize("data", ["mtm", "mtm:a", "mtm:zz:1", "mtm:a:abc", "mtm:a:1:2", "mtf:nope", "mtk:1",
                                  "mtk:1:x", "mte:1:z", "mst:so", "mtx:1:2", "mt:a:x", "", "mtm:a:1" + "9" * 30])
def test_forged_or_stale_data_parses_to_nothing(data: str) -> None:
    assert all(kind.parse(data) is None for kind in MEETING_KINDS)


def test_buttons_sent_before_the_codec_are_still_read() -> None:
    assert MEETING_LEGACY.parse("mt:a:12") == MEETING_LEGACY.fields("a", 12)
    assert MEETING_LEGACY.parse("mt:new") == MEETING_LEGACY.fields("new", 0)


def test_trailing_defaults_are_left_out() -> None:
    assert MEETING_FLOW.encode(MEETING_FLOW.fields(MEETING_FLOW.types[0]("q"))) == "mtf:q"
    assert MEETING_MARK(12, 0) == "mtk:12:0"
    assert MEETING_MARK.parse("mtk:12:0:34") == MEETING_MARK.fields(12, 0, 34)
    assert MEETING_NEW() == "mtn" and MEETING_NEW.parse("mtn") == MEETING_NEW.fields()
