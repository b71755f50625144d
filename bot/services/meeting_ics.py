"""An iCalendar file (RFC 5545) for one meeting, written by hand: one VEVENT with its alarms is
all a phone's calendar needs, and it saves a dependency. Times are UTC (`...Z`), text is escaped
(§3.3.11), lines end in CRLF and are folded at 75 octets without splitting a UTF-8 character
(§3.1)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

PRODID = "-//branchbot//meetings 1.0//ZH"


def escape_text(value: str) -> str:
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def fold(line: str) -> bytes:
    """One content line, folded: at most 75 octets per physical line, continuation lines start
    with a space."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return data + b"\r\n"
    out = bytearray()
    limit = 75
    current = bytearray()
    for ch in line:
        encoded = ch.encode("utf-8")
        if len(current) + len(encoded) > limit:
            out += current + b"\r\n"
            current = bytearray(b" ")
            limit = 75
        current += encoded
    out += current + b"\r\n"
    return bytes(out)


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def build_ics(*, uid: str, sequence: int, stamp: datetime, start: datetime, end: datetime, summary: str,
              location: str, description: str, alarms: Iterable[int] = (), cancelled: bool = False) -> bytes:
    """The calendar file; `alarms` are minutes before the start."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{utc_text(stamp)}",
        f"DTSTART:{utc_text(start)}",
        f"DTEND:{utc_text(end)}",
        f"SUMMARY:{escape_text(summary)}",
        f"LOCATION:{escape_text(location)}",
        f"DESCRIPTION:{escape_text(description)}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
    ]
    for minutes in alarms:
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", f"DESCRIPTION:{escape_text(summary)}",
                  f"TRIGGER:-PT{minutes}M", "END:VALARM"]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return b"".join(fold(line) for line in lines)


def unfold(content: bytes) -> list[str]:
    """The content lines of a file (the reverse of folding; for tests and for reading one back)."""
    text = content.decode("utf-8")
    return text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")[:-1]
