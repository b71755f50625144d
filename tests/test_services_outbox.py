"""The outbox: dedup keys, replacing, cancelling, blocked people, and atomicity with the change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from service_fixtures import (
    START,
    clock_fixture,  # noqa: F401  (the `clock` fixture, used by `core`)
    core_fixture,  # noqa: F401  (the `core` fixture)
    outbox_rows,
    rows,
)

from bot.clock import to_db
from bot.core import Core
from bot.limits import OverLimit
from bot.outbox import Button

CHAT = 1001


async def send(core: Core, key: str, text: str = "hello", chat_id: int = CHAT, **kw: object) -> bool:
    async with core.db.transaction() as tx:
        return await core.outbox.send_text(tx, key=key, chat_id=chat_id, text=text, **kw)  # type: ignore[arg-type]


async def statuses(core: Core) -> dict[str, str]:
    return {r["dedup_key"]: r["status"] for r in await rows(core, "SELECT dedup_key, status FROM outbox")}


async def test_a_row_holds_the_message(core: Core) -> None:
    later = START + timedelta(hours=2)
    assert await send(core, "k1", "你好", buttons=[[Button("✅", "jr:a:1"), Button("Docs", url="https://x.org")]],
                      not_before=later) is True
    [row] = await outbox_rows(core)
    assert (row["dedup_key"], row["chat_id"], row["method"], row["status"]) == ("k1", CHAT, "sendMessage", "pending")
    assert row["not_before"] == to_db(later) and row["created_at"] == to_db(START)
    assert row["payload"] == {"chat_id": CHAT, "text": "你好", "reply_markup": {"inline_keyboard": [[
        {"text": "✅", "callback_data": "jr:a:1"}, {"text": "Docs", "url": "https://x.org"}]]}}
    # Without not_before, the row is due now.
    await send(core, "k2")
    assert (await outbox_rows(core))[1]["not_before"] == to_db(START)


async def test_same_key_twice_is_queued_once(core: Core) -> None:
    assert await send(core, "meeting:1:1001:24h", "first") is True
    assert await send(core, "meeting:1:1001:24h", "second") is False
    found = await outbox_rows(core)
    assert len(found) == 1
    assert found[0]["payload"]["text"] == "first"


async def test_replace_rewrites_a_pending_row(core: Core) -> None:
    await send(core, "meeting:1:1001:24h", "old time", not_before=START + timedelta(days=1))
    moved = START + timedelta(days=2)
    assert await send(core, "meeting:1:1001:24h", "new time", not_before=moved, replace=True) is True
    [row] = await outbox_rows(core)
    assert row["payload"]["text"] == "new time"
    assert row["not_before"] == to_db(moved)
    assert row["status"] == "pending"


async def test_replace_leaves_a_sent_row_alone(core: Core) -> None:
    await send(core, "meeting:1:1001:24h", "old time")
    async with core.db.transaction() as tx:
        await tx.execute("UPDATE outbox SET status = 'sent', sent_at = ?, message_id = 77", (to_db(START),))
    before = await outbox_rows(core)

    assert await send(core, "meeting:1:1001:24h", "new time", not_before=START + timedelta(days=2),
                      replace=True) is False

    assert await outbox_rows(core) == before
    assert before[0]["payload"]["text"] == "old time" and before[0]["status"] == "sent"


async def test_cancel_cancels_only_pending_rows_with_the_prefix(core: Core) -> None:
    for key in ("meeting:1:a", "meeting:1:b", "meeting:10:a", "meeting:2:a", "x-meeting:1:a"):
        await send(core, key)
    await send(core, "meeting:1:sent")
    async with core.db.transaction() as tx:
        await tx.execute("UPDATE outbox SET status = 'sent' WHERE dedup_key = 'meeting:1:sent'")

    async with core.db.transaction() as tx:
        assert await core.outbox.cancel(tx, key_prefix="meeting:1:") == 2

    assert await statuses(core) == {
        "meeting:1:a": "cancelled", "meeting:1:b": "cancelled", "meeting:1:sent": "sent",
        "meeting:10:a": "pending", "meeting:2:a": "pending", "x-meeting:1:a": "pending"}


@pytest.mark.parametrize(("prefix", "cancelled"), [
    ("m_1:", {"m_1:a"}),        # '_' is not "any character"
    ("m%:", {"m%:a"}),          # '%' is not "anything"
    ("m\\1:", {"m\\1:a"}),      # nor is a backslash an escape
])
async def test_cancel_treats_like_wildcards_literally(core: Core, prefix: str, cancelled: set[str]) -> None:
    keys = ["m_1:a", "mx1:a", "m%:a", "mabc:a", "m\\1:a", "m1:a"]
    for key in keys:
        await send(core, key)
    async with core.db.transaction() as tx:
        assert await core.outbox.cancel(tx, key_prefix=prefix) == len(cancelled)
    assert {k for k, s in (await statuses(core)).items() if s == "cancelled"} == cancelled


async def test_cancel_is_case_sensitive(core: Core) -> None:
    await send(core, "poll:AB:1")
    await send(core, "poll:ab:1")
    async with core.db.transaction() as tx:
        assert await core.outbox.cancel(tx, key_prefix="poll:AB:") == 1
    assert await statuses(core) == {"poll:AB:1": "cancelled", "poll:ab:1": "pending"}


async def test_a_message_to_someone_who_blocked_the_bot_is_stored_blocked(core: Core) -> None:
    await core.people.set_blocked(CHAT, True)
    assert await send(core, "k1") is True
    assert await send(core, "k2", chat_id=2002) is True
    assert await statuses(core) == {"k1": "blocked", "k2": "pending"}


async def test_blocking_marks_pending_rows_to_that_chat(core: Core) -> None:
    await send(core, "later", not_before=START + timedelta(days=1))
    await send(core, "now")
    await send(core, "other", chat_id=2002)
    await send(core, "done")
    async with core.db.transaction() as tx:
        await tx.execute("UPDATE outbox SET status = 'sent' WHERE dedup_key = 'done'")

    await core.people.set_blocked(CHAT, True)

    assert await statuses(core) == {"later": "blocked", "now": "blocked", "other": "pending", "done": "sent"}
    person = await core.people.get(CHAT)
    assert person is not None and person.blocked_bot is True
    # Unblocking keeps the data and lets new messages through again.
    await core.people.set_blocked(CHAT, False)
    await send(core, "after")
    assert (await statuses(core))["after"] == "pending"


async def test_a_failed_transaction_leaves_no_row(core: Core) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with core.db.transaction() as tx:
            await core.people.ensure(tx, CHAT, "王建国")
            assert await core.outbox.send_text(tx, key="k1", chat_id=CHAT, text="hello") is True
            raise Boom
    assert await rows(core, "SELECT * FROM outbox") == []
    assert await rows(core, "SELECT * FROM people") == []
    # The key is free again: the change can be retried.
    assert await send(core, "k1") is True


async def test_wake_is_called_after_commit_only(core: Core) -> None:
    event = core.outbox.wake_event()
    with pytest.raises(RuntimeError):
        async with core.db.transaction() as tx:
            await core.outbox.send_text(tx, key="k0", chat_id=CHAT, text="x")
            raise RuntimeError
    assert not event.is_set()
    async with core.db.transaction() as tx:
        await core.outbox.send_text(tx, key="k1", chat_id=CHAT, text="x")
        assert not event.is_set()
    assert event.is_set()
    assert await core.outbox.counts() == {"pending": 1}


@pytest.mark.parametrize(("text", "buttons"), [
    ("长" * 4097, None),                                    # a card with two long texts
    ("😀" * 2049, None),                                    # 4098 UTF-16 code units
    ("", None),
    ("选一个", [[Button(str(i), f"x:{i}") for i in range(10)] for _ in range(11)]),  # 110 buttons
    ("选一个", [[Button("同意", "jr:a:" + "9" * 60)]]),      # 65 bytes of callback data
])
async def test_an_over_limit_message_fails_the_change_that_queued_it(
        core: Core, text: str, buttons: list[list[Button]] | None) -> None:
    event = core.outbox.wake_event()
    with pytest.raises(OverLimit):
        async with core.db.transaction() as tx:
            await core.people.ensure(tx, CHAT, "王建国")  # the service's own change, in the same transaction
            await core.outbox.send_text(tx, key="ok", chat_id=2002, text="先排上的通知")
            await core.outbox.send_text(tx, key="too-long", chat_id=CHAT, text=text, buttons=buttons)
    # Nothing of the transaction was committed: neither the change nor the messages before it.
    assert await rows(core, "SELECT * FROM outbox") == []
    assert await rows(core, "SELECT * FROM people") == []
    assert not event.is_set()


async def test_an_over_limit_document_caption_is_refused(core: Core) -> None:
    with pytest.raises(OverLimit, match="caption"):
        async with core.db.transaction() as tx:
            await core.outbox.send_document(tx, key="ledger", chat_id=CHAT, filename="台账.xlsx", content=b"x",
                                            caption="说明" * 600)
    assert await rows(core, "SELECT * FROM outbox") == []


async def test_a_message_at_the_limit_is_queued(core: Core) -> None:
    buttons = [[Button(str(i), "x" * 64) for i in range(10)] for _ in range(10)]
    assert await send(core, "full", "长" * 4096, buttons=buttons) is True  # type: ignore[arg-type]
    [row] = await outbox_rows(core)
    assert row["status"] == "pending" and len(row["payload"]["text"]) == 4096
