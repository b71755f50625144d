"""One chat's updates are handled in order, different chats at the same time."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from bot.app import PerChatUpdateProcessor


async def test_one_chat_in_order_others_concurrently() -> None:
    processor = PerChatUpdateProcessor(16)
    log: list[str] = []

    async def handle(name: str, delay: float) -> None:
        log.append(f"start {name}")
        await asyncio.sleep(delay)
        log.append(f"end {name}")

    def update(chat_id: int) -> SimpleNamespace:
        return SimpleNamespace(effective_chat=SimpleNamespace(id=chat_id))

    await asyncio.gather(
        processor.do_process_update(update(1), handle("a1", 0.05)),
        processor.do_process_update(update(1), handle("a2", 0.0)),
        processor.do_process_update(update(1), handle("a3", 0.0)),
        processor.do_process_update(update(2), handle("b1", 0.0)),
    )
    assert log.index("end a1") < log.index("start a2") < log.index("end a2") < log.index("start a3")
    assert log.index("end b1") < log.index("end a1")  # chat 2 did not wait for chat 1
    assert processor._locks == {}  # nothing left behind
