"""One chat's updates are handled in order, different chats at the same time."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from bot.app import PerChatUpdateProcessor


async def test_one_chat_in_order_others_concurrently() -> None:
    processor = PerChatUpdateProcessor(16)
    log: list[str] = []

    b1_done = asyncio.Event()

    async def handle(name: str, wait_for_b1: bool = False) -> None:
        log.append(f"start {name}")
        if wait_for_b1:
            # a1 finishes only after chat 2's update did: if chat 2 waited for chat 1, this times out.
            await asyncio.wait_for(b1_done.wait(), timeout=10)
        await asyncio.sleep(0)  # give the others a chance to (wrongly) start meanwhile
        log.append(f"end {name}")
        if name == "b1":
            b1_done.set()

    def update(chat_id: int) -> SimpleNamespace:
        return SimpleNamespace(effective_chat=SimpleNamespace(id=chat_id))

    await asyncio.gather(
        processor.do_process_update(update(1), handle("a1", wait_for_b1=True)),
        processor.do_process_update(update(1), handle("a2")),
        processor.do_process_update(update(1), handle("a3")),
        processor.do_process_update(update(2), handle("b1")),
    )
    assert log.index("end a1") < log.index("start a2") < log.index("end a2") < log.index("start a3")
    assert log.index("end b1") < log.index("end a1")  # chat 2 did not wait for chat 1
    assert processor._locks == {}  # nothing left behind
