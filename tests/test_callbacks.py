"""The callback codec: every kind round-trips, fits Telegram's 64 bytes with the largest ids, and
no kind's pattern catches another kind's data (handlers are registered by pattern)."""

from __future__ import annotations

import itertools
import typing
from enum import StrEnum
from typing import Any

import pytest

from bot.callbacks import KINDS, MAX_BYTES, Kind, Token

# Telegram ids reach 2**52; row ids stay far below. Group chats are negative (-100…, 14 characters).
LARGEST_INT = 2**53 - 1
NEGATIVE_INT = -1009999999999


def samples(kind: Kind[Any]) -> list[tuple[Any, ...]]:
    """Every enum value of every field, with the largest ids, full and with optional fields left out."""
    choices: list[list[Any]] = []
    for field_type in kind.types:
        if field_type is int:
            choices.append([LARGEST_INT, 0, NEGATIVE_INT])
        elif isinstance(field_type, type) and issubclass(field_type, StrEnum):
            choices.append(list(field_type))
        elif field_type is Token:
            choices.append([Token.new(), Token("ffffff")])
        else:
            pytest.fail(f"{kind}: free-text field of type {field_type}: use an int id, a StrEnum or a Token")
    combos = list(itertools.product(*choices))
    return [combo[:n] for combo in combos for n in range(kind.required, len(kind.types) + 1)]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.prefix)
def test_every_kind_round_trips_within_64_bytes(kind: Kind[Any]) -> None:
    defaults = kind.fields._field_defaults  # type: ignore[attr-defined]
    for values in samples(kind):
        full = list(values) + [defaults[name] for name in kind.names[len(values):]]
        encoded = kind.encode(kind.fields(*full))
        assert len(encoded.encode()) <= MAX_BYTES, encoded
        assert kind.parse(encoded) == kind.fields(*full), encoded


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.prefix)
def test_no_other_kind_parses_this_kinds_data(kind: Kind[Any]) -> None:
    for values in samples(kind)[:50]:
        defaults = kind.fields._field_defaults  # type: ignore[attr-defined]
        encoded = kind.encode(kind.fields(*values, *[defaults[n] for n in kind.names[len(values):]]))
        others = [other for other in KINDS if other is not kind and other.parse(encoded) is not None]
        assert others == [], f"{encoded!r} is also read as {others}"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.prefix)
def test_forged_data_is_refused(kind: Kind[Any]) -> None:
    for forged in ("", kind.prefix + ":", kind.prefix + ":x", kind.prefix + ":1:2:3:4:5:6:7:8",
                   kind.prefix + ":10000000000000000000", kind.prefix + ":-9999999999999999999",
                   kind.prefix + ":" + "9" * 30, "zz:" + kind.prefix):
        assert kind.parse(forged) is None, forged


def test_prefixes_are_declared_once() -> None:
    shapes = [(k.prefix, tuple(typing.get_type_hints(k.fields).values())) for k in KINDS]
    assert len(set(shapes)) == len(shapes)


def test_an_over_long_value_is_refused_when_encoding() -> None:
    from typing import NamedTuple

    class Wide(NamedTuple):
        a: int
        b: int
        c: int
        d: int

    kind = Kind("wide-test", Wide)
    KINDS.remove(kind)
    with pytest.raises(ValueError, match="64 bytes"):
        kind.encode(Wide(LARGEST_INT, LARGEST_INT, LARGEST_INT, LARGEST_INT))
