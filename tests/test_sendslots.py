"""The deployment's shared places (bot/sendslots.py) against a real PostgreSQL database: the rule
each instance follows when several share one bot token. Times are the server's clock; where a test
needs time to have passed, it moves the stored times back instead of sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pg import ON_PG, database_for

from bot.database import open_database
from bot.sendslots import NOW, Place, Refused, SendSlots

pytestmark = pytest.mark.skipif(not ON_PG, reason="the shared places need PostgreSQL (BOT_TEST_BACKEND=postgresql)")

BOT = 4242


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Any]:
    database = open_database(database_for(tmp_path / "slots.sqlite3"))
    await database.connect()
    yield database
    await database.close()


async def slots(db: Any, per_second: int = 3) -> SendSlots:
    shared = SendSlots(db, BOT, per_second, chat_interval=1.1, group_per_minute=20)
    await shared.setup()
    await shared.setup()  # every instance does it at start: idempotent
    return shared


async def test_at_most_per_second_places_and_an_answer_frees_its_place_a_second_later(db: Any) -> None:
    shared = await slots(db)
    places = [await shared.take(1000 + i) for i in range(3)]
    assert all(isinstance(p, Place) for p in places) and len({p.slot for p in places}) == 3  # type: ignore[union-attr]
    refused = await shared.take(2000)
    assert isinstance(refused, Refused) and not refused.chat_busy and not refused.paused
    assert 0 < refused.wait <= shared.POLL
    first = places[0]
    assert isinstance(first, Place)
    before = await db.fetchval(f"SELECT {NOW}")
    await shared.answered(first)
    after = await db.fetchval(f"SELECT {NOW}")
    assert isinstance(await shared.take(2000), Refused)  # answered, but not a second ago yet
    free_at = await db.fetchval("SELECT free_at FROM send_slots WHERE bot_id = ? AND slot = ?", (BOT, first.slot))
    assert before + 1.001 <= free_at <= after + 1.001  # a second (and a hair) after the answer
    await db.fetchval("UPDATE send_slots SET free_at = free_at - 1.1 WHERE bot_id = ? AND slot = ?", (BOT, first.slot))
    assert await shared.take(2000) == Place(first.slot, 2000)


async def test_a_slot_whose_sender_died_frees_itself_after_its_lease(db: Any) -> None:
    shared = await slots(db, per_second=1)
    assert isinstance(await shared.take(1), Place)
    lease = await db.fetchval(f"SELECT free_at - {NOW} FROM send_slots WHERE bot_id = ?", (BOT,))
    assert shared.LEASE - 1 < lease <= shared.LEASE
    assert isinstance(await shared.take(2), Refused)
    await db.fetchval("UPDATE send_slots SET free_at = free_at - ? WHERE bot_id = ?", (shared.LEASE, BOT))
    assert isinstance(await shared.take(2), Place)


async def test_one_message_a_second_per_chat_and_twenty_a_minute_per_group(db: Any) -> None:
    shared = await slots(db, per_second=30)
    first = await shared.take(7)
    assert isinstance(first, Place)
    in_flight = await shared.take(7)
    assert isinstance(in_flight, Refused) and in_flight.chat_busy and 1.1 < in_flight.wait <= shared.LEASE
    assert isinstance(await shared.take(8), Place)  # another chat goes meanwhile
    await shared.answered(first)
    again = await shared.take(7)  # a second (and a margin) after the answer
    assert isinstance(again, Refused) and again.chat_busy and 0 < again.wait <= 1.1
    assert isinstance(await shared.take(7, direct=True, strict=False), Place)  # a reply that waited its longest
    group = -100500
    for _ in range(20):
        assert isinstance(await shared.take(group), Place)
        await db.fetchval("UPDATE send_chats SET ready_at = 0 WHERE chat_id = ?", (group,))
    full = await shared.take(group)
    assert isinstance(full, Refused) and full.chat_busy and 30 < full.wait <= 60.5


async def test_a_pause_holds_every_instance_and_a_429_holds_the_chat(db: Any) -> None:
    shared = await slots(db)
    other = SendSlots(db, BOT, 3, chat_interval=1.1, group_per_minute=20)  # another instance, same bot
    await shared.pause_all(5)
    paused = await other.take(1)
    assert isinstance(paused, Refused) and paused.paused and 0 < paused.wait <= 5
    await db.fetchval("UPDATE send_bots SET paused_until = 0 WHERE bot_id = ?", (BOT,))
    await shared.pause_chat(9, 30)
    held = await other.take(9)
    assert isinstance(held, Refused) and held.chat_busy and 0 < held.wait <= 30
    assert isinstance(await other.take(10), Place)


async def test_a_waiting_direct_reply_goes_before_the_outbox_of_every_instance(db: Any) -> None:
    shared = await slots(db, per_second=2)
    await shared.direct_waiting()
    outbox = await shared.take(1)
    assert isinstance(outbox, Refused) and not outbox.chat_busy
    assert isinstance(await shared.take(2, direct=True), Place)
    await shared.direct_done()
    assert isinstance(await shared.take(1), Place)


async def test_old_chats_and_group_sends_are_swept(db: Any) -> None:
    shared = await slots(db)
    assert isinstance(await shared.take(-5), Place)
    await db.fetchval("UPDATE send_chats SET ready_at = ready_at - 200")
    await db.fetchval("UPDATE send_groups SET sent_at = sent_at - 100")
    await shared.sweep()
    assert await db.fetchval("SELECT COUNT(*) FROM send_chats") == 0
    assert await db.fetchval("SELECT COUNT(*) FROM send_groups") == 0
