"""A group or channel that removed the bot is remembered as blocked, as a person who blocked it
is: each later notice to it is stored 'blocked' instead of earning one more 403."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from service_fixtures import (
    clock_fixture,  # noqa: F401  (the `clock` fixture, used by `core`)
    core_fixture,  # noqa: F401  (the `core` fixture)
)

from bench.fakebotapi import FakeBotApi
from bot.core import Core
from conftest import BotRunner

GROUP = -100700


async def notice(core: Core, key: str, chat_id: int = GROUP) -> None:
    async with core.db.transaction() as tx:
        await core.outbox.send_text(tx, key=key, chat_id=chat_id, text=f"回音壁 {key}")


async def status(core: Core, key: str) -> str:
    return str(await core.db.fetchval("SELECT status FROM outbox WHERE dedup_key = ?", (key,)))


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(250):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(what)


async def _is(core: Core, key: str, expected: str) -> bool:
    return await status(core, key) == expected


async def _unblocked(core: Core, chat_id: int) -> bool:
    return not await core.outbox.chat_blocked(chat_id)


def sends_to(fake: FakeBotApi, chat_id: int) -> int:
    return sum(1 for c in fake.calls_to("sendMessage") if c.params.get("chat_id") == chat_id)


async def test_a_group_that_removes_the_bot_gets_no_more_sends(bot: BotRunner, fake: FakeBotApi) -> None:
    admin = fake.user(45000, first_name="群主")
    group = fake.group(GROUP, "三义村村民群")
    await notice(bot.core, "wall:1")
    await fake.wait_message(GROUP, contains="wall:1")

    group.remove_bot(admin)
    await until(lambda: bot.core.outbox.chat_blocked(GROUP), "the removal was not remembered")
    await notice(bot.core, "wall:2")
    await notice(bot.core, "wall:3")
    await bot.delivery_idle()
    assert [await status(bot.core, k) for k in ("wall:1", "wall:2", "wall:3")] == ["sent", "blocked", "blocked"]
    assert sends_to(fake, GROUP) == 1  # the bot did not even try

    group.add_bot(admin)
    await until(lambda: _unblocked(bot.core, GROUP), "the bot's return was not noticed")
    await notice(bot.core, "wall:4")
    await fake.wait_message(GROUP, contains="wall:4")
    assert await status(bot.core, "wall:2") == "blocked"  # what was kept back is not sent late


async def test_a_403_from_a_group_is_remembered(bot: BotRunner, fake: FakeBotApi) -> None:
    """The removal was missed (the bot was down): the first 403 tells us, and only that one."""
    admin = fake.user(45100)
    group = fake.group(GROUP - 1, "二郎村村民群", type="supergroup")
    fake.block(group.id)
    await notice(bot.core, "wall:a", group.id)
    await until(lambda: _is(bot.core, "wall:a", "blocked"), "the 403 did not mark the row blocked")
    assert await bot.core.outbox.chat_blocked(group.id)
    await notice(bot.core, "wall:b", group.id)
    await bot.delivery_idle()
    assert await status(bot.core, "wall:b") == "blocked"
    assert sends_to(fake, group.id) == 1
    # A person is not confused with the group: people get no row for a chat id.
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM people WHERE telegram_id = ?", (group.id,)) == 0

    fake.unblock(group.id)
    group.add_bot(admin)
    await until(lambda: _unblocked(bot.core, group.id), "the bot's return was not noticed")
    await notice(bot.core, "wall:c", group.id)
    await fake.wait_message(group.id, contains="wall:c")


async def test_blocking_a_chat_marks_its_pending_rows_only(core: Core) -> None:
    await notice(core, "g1")
    await notice(core, "other", chat_id=GROUP - 5)
    await notice(core, "person", chat_id=1001)
    await core.outbox.set_chat_blocked(GROUP, True)
    assert [await status(core, k) for k in ("g1", "other", "person")] == ["blocked", "pending", "pending"]
    await core.outbox.set_chat_blocked(GROUP, True)  # twice is fine
    await core.outbox.set_chat_blocked(GROUP, False)
    await notice(core, "g2")
    assert await status(core, "g2") == "pending"
    with pytest.raises(ValueError, match="person"):
        await core.outbox.set_chat_blocked(1001, True)
