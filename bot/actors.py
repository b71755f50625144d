"""Who acts: a person's Telegram id, or the system (the command line and periodic jobs).

Every service method that reads private data or changes state takes the acting person and checks
the right itself; the command line and jobs pass `SYSTEM_ACTOR` explicitly, so no call can skip a
check by leaving the actor out. Telegram ids are never 0, so the value cannot be forged by a person."""

from __future__ import annotations

from typing import Final

SYSTEM_ACTOR: Final = 0
