"""Who acts when no person does: the command line and the periodic jobs. Services take the acting
person or this explicit system actor, never an optional actor that skips the check."""

from __future__ import annotations

from typing import Final


class SystemActor:
    """The bot itself, on an operator's command line or in a periodic job. It is not a Telegram
    user id, so no update can pose as it."""

    _instance: SystemActor | None = None

    def __new__(cls) -> SystemActor:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SYSTEM_ACTOR"


SYSTEM_ACTOR: Final = SystemActor()

# A person's Telegram id, or the system.
Actor = int | SystemActor


def is_system(actor: Actor) -> bool:
    return isinstance(actor, SystemActor)
