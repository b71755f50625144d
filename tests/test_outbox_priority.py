"""Outbox priority: an answer someone waits for and a reminder due now go before bulk notices
already queued; an edit of an earlier message goes after new messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from service_fixtures import (
    START,
    clock_fixture,  # noqa: F401  (the `clock` fixture, used by `core`)
    core_fixture,  # noqa: F401  (the `core` fixture)
)

from bench.fakebotapi import FakeBotApi
from bot.core import Core
from bot.outbox import Priority
from conftest import BotRunner


async def priorities(core: Core) -> dict[str, int]:
    return {r["dedup_key"]: r["priority"] for r in await core.db.fetchall("SELECT dedup_key, priority FROM outbox")}


async def test_defaults_normal_for_messages_and_edit_for_edits(core: Core) -> None:
    async with core.db.transaction() as tx:
        await core.outbox.send_text(tx, key="new", chat_id=5, text="新消息")
        await core.outbox.send_document(tx, key="doc", chat_id=5, filename="a.txt", content=b"a")
        await core.outbox.enqueue(tx, key="edit", chat_id=5, method="editMessageText",
                                  payload={"chat_id": 5, "text": "改过", "message_id_from": "new"})
        await core.outbox.enqueue(tx, key="markup", chat_id=5, method="editMessageReplyMarkup",
                                  payload={"chat_id": 5, "message_id": 3})
        await core.outbox.send_text(tx, key="answer", chat_id=5, text="答复", priority=Priority.URGENT)
        await core.outbox.send_text(tx, key="bulk", chat_id=5, text="通知", priority=Priority.BULK)
    assert await priorities(core) == {"new": Priority.NORMAL, "doc": Priority.NORMAL, "edit": Priority.EDIT,
                                      "markup": Priority.EDIT, "answer": Priority.URGENT, "bulk": Priority.BULK}
    assert Priority.URGENT < Priority.NORMAL < Priority.BULK < Priority.EDIT


async def test_replace_takes_the_new_priority(core: Core) -> None:
    async with core.db.transaction() as tx:
        await core.outbox.send_text(tx, key="r", chat_id=5, text="提醒", not_before=START + timedelta(days=1),
                                    priority=Priority.BULK)
    async with core.db.transaction() as tx:
        await core.outbox.send_text(tx, key="r", chat_id=5, text="提醒（改期）", not_before=START + timedelta(hours=1),
                                    priority=Priority.URGENT, replace=True)
    assert await priorities(core) == {"r": Priority.URGENT}


def sent_order(fake: FakeBotApi) -> list[str]:
    calls = sorted((c for c in fake.calls_to("sendMessage") if c.status == 200), key=lambda c: c.at)
    return [c.params["text"] for c in calls]


async def test_due_rows_go_by_priority_then_due_time(bot: BotRunner, fake: FakeBotApi) -> None:
    now = bot.clock.now()
    rows = [  # (text, priority, minutes overdue), queued in this order
        ("bulk-old", Priority.BULK, 60), ("bulk-new", Priority.BULK, 0), ("edit-like", Priority.EDIT, 120),
        ("normal", Priority.NORMAL, 0), ("urgent-new", Priority.URGENT, 0), ("urgent-old", Priority.URGENT, 5),
    ]
    async with bot.core.db.transaction() as tx:
        for i, (text, priority, overdue) in enumerate(rows):
            await bot.core.outbox.send_text(tx, key=f"p:{i}", chat_id=fake.user(43000 + i).id, text=text,
                                            priority=priority, not_before=now - timedelta(minutes=overdue))
    await bot.delivery_idle()
    assert sent_order(fake) == ["urgent-old", "urgent-new", "normal", "bulk-old", "bulk-new", "edit-like"]


async def test_an_answer_overtakes_a_bulk_notice_already_queued(bot: BotRunner, fake: FakeBotApi) -> None:
    branch = [fake.user(44000 + i).id for i in range(100)]
    async with bot.core.db.transaction() as tx:
        for i, chat in enumerate(branch):
            await bot.core.outbox.send_text(tx, key=f"mt:1:n:{chat}", chat_id=chat, text=f"开会通知 {i}",
                                            priority=Priority.BULK)
    await fake.wait_for(lambda: fake.stats.sends_ok >= 1, timeout=10)
    secretary = fake.user(44999).id
    async with bot.core.db.transaction() as tx:
        await bot.core.outbox.send_text(tx, key="tk:1:answer", chat_id=secretary, text="新的问题",
                                        priority=Priority.URGENT)
    await bot.delivery_idle()
    order = sent_order(fake)
    assert len(order) == 101
    # The worker takes due rows in batches of about two seconds of sending: the answer goes first
    # in the next batch, ahead of the 40 bulk notices still waiting, not after all of them.
    assert order.index("新的问题") <= 60


async def test_only_the_named_priorities_are_accepted(core: Core) -> None:
    with pytest.raises(ValueError, match="37"):
        async with core.db.transaction() as tx:
            await core.outbox.send_text(tx, key="odd", chat_id=5, text="x", priority=37)
    assert await priorities(core) == {}
