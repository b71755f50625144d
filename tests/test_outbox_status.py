"""Nothing is silently lost: `python -m bot outbox status` counts every message by kind and state,
and lists the failed ones with their keys; the delivery worker reports when it is idle."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from pg import env_database
from service_fixtures import (
    START,
    clock_fixture,  # noqa: F401  (the `clock` fixture, used by `core`)
    core_fixture,  # noqa: F401  (the `core` fixture)
)

from bench.fakebotapi import TOKEN, FakeBotApi
from bot.clock import SettableClock
from bot.config import Settings
from bot.core import Core
from bot.outbox import KindStatus
from conftest import BotRunner

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("due", "in flight", "later", "sent", "failed", "blocked", "cancelled")


def outbox_status(database: Path | str, cwd: Path) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """Run the command line as a real process; the table as {kind: counts}, and the lines after it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATABASE=env_database(database), PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "bot", "outbox", "status"], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split()[0] == "kind" and " ".join(header.split()[1:]) == " ".join(COLUMNS)
    table: dict[str, tuple[int, ...]] = {}
    while lines and lines[0].strip():
        kind, *counts = lines.pop(0).split()
        table[kind] = tuple(int(n) for n in counts)
    return table, [line for line in lines if line.strip()]


def counts(**by_column: int) -> tuple[int, ...]:
    return tuple(by_column.get(c.replace(" ", "_"), 0) for c in COLUMNS)


async def attempts(core: Core, key: str) -> int:
    return int(await core.db.fetchval("SELECT attempts FROM outbox WHERE dedup_key = ?", (key,)))


async def test_status_counts_every_state_by_kind_through_the_command_line(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock, tmp_path: Path) -> None:
    people = [fake.user(41000 + i).id for i in range(3)]
    blocked = fake.user(41100).id
    fake.block(blocked)
    core = bot.core
    async with core.db.transaction() as tx:
        for person in people:
            await core.outbox.send_text(tx, key=f"mt:5:n:{person}", chat_id=person, text="开会通知",
                                        purpose="meeting.notice", subject_id=5)
        await core.outbox.send_text(tx, key="tk:9:answer:41100", chat_id=blocked, text="答复",
                                    purpose="ticket.answer", subject_id=9)
        # No purpose: counted under the key's first part. 777000333 is a chat Telegram does not know.
        await core.outbox.send_text(tx, key="join-request:3:777000333", chat_id=777_000_333, text="申请")
        await core.outbox.send_text(tx, key="mt:6:r1:41000:24h", chat_id=people[0], text="明天开会",
                                    not_before=clock.now() + timedelta(days=3650))
        await core.outbox.send_text(tx, key="mt:7:r1:41000:24h", chat_id=people[0], text="取消的会",
                                    not_before=clock.now() + timedelta(days=3650))
        await core.outbox.cancel(tx, key_prefix="mt:7:")
    await bot.delivery_idle()
    # A notice Telegram keeps answering 502: tried, and waiting for its next try.
    fake.fail_next(502, count=1000, chat_id=people[1])
    async with core.db.transaction() as tx:
        await core.outbox.send_text(tx, key="tk:9:remind:41001", chat_id=people[1], text="请尽快答复",
                                    purpose="ticket.remind", subject_id=9)
    for _ in range(500):
        if await attempts(core, "tk:9:remind:41001") >= 1:
            break
        await asyncio.sleep(0.02)
    database = bot.settings.database
    await bot.stop()
    # Queued while the bot is down: due, not tried yet.
    offline = Core.build(Settings(token=TOKEN, database=database, _env_file=None))  # type: ignore[call-arg]
    await offline.open()
    async with offline.db.transaction() as tx:
        for i in range(2):
            await offline.outbox.send_text(tx, key=f"bulk:{i}", chat_id=people[2], text=f"通知 {i}")
    await offline.close()

    table, after = outbox_status(database, tmp_path)

    assert table == {
        "bulk:*": counts(due=2),
        "join-request:*": counts(failed=1),
        "meeting.notice": counts(sent=3),
        "mt:*": counts(later=1, cancelled=1),
        "ticket.answer": counts(blocked=1),
        "ticket.remind": counts(in_flight=1),
        "total": counts(due=2, in_flight=1, later=1, sent=3, failed=1, blocked=1, cancelled=1),
    }
    assert after[0] == "latest failed (1):"
    key, chat, method, about, tries, error = after[1].split("\t")
    assert (key, chat, method, about, tries) == ("join-request:3:777000333", "chat 777000333", "sendMessage",
                                                  "- -", "after 1 tries")
    assert "chat not found" in error.lower()


async def test_status_of_an_empty_outbox(tmp_path: Path) -> None:
    table, after = outbox_status(tmp_path / "bot.sqlite3", tmp_path)
    assert table == {"total": counts()}
    assert after == []


async def test_kinds_come_from_the_purpose_or_the_keys_first_part(core: Core) -> None:
    async with core.db.transaction() as tx:
        for key, purpose in (("mt:1:n:5", "meeting.notice"), ("mt:1:n:6", None), ("mt:2:x:5", None),
                             ("solo", None), ("wall-edit:3:1", None), ("tk:1:a:5", "ticket.answer")):
            await core.outbox.send_text(tx, key=key, chat_id=5, text="x", purpose=purpose)
        await core.outbox.send_text(tx, key="later", chat_id=5, text="x", not_before=START + timedelta(minutes=1))
        await tx.execute("UPDATE outbox SET attempts = 2 WHERE dedup_key = 'tk:1:a:5'")
    status = {s.kind: s for s in await core.outbox.status()}
    assert set(status) == {"meeting.notice", "mt:*", "solo:*", "wall-edit:*", "ticket.answer", "later:*"}
    assert status["mt:*"] == KindStatus("mt:*", due=2, in_flight=0, later=0, sent=0, failed=0, blocked=0,
                                        cancelled=0)
    assert (status["ticket.answer"].due, status["ticket.answer"].in_flight) == (0, 1)
    assert (status["later:*"].due, status["later:*"].later) == (0, 1)


async def test_delivery_idle_waits_for_rows_due_but_held_back(bot: BotRunner, fake: FakeBotApi) -> None:
    """Idle means every due row has its outcome: a row backing off after 5xx answers is not idle."""
    user = fake.user(42000)
    fake.fail_next(502, count=2, chat_id=user.id)
    async with bot.core.db.transaction() as tx:
        await bot.core.outbox.send_text(tx, key="retry:1", chat_id=user.id, text="重试的通知")
    await bot.delivery_idle()
    row = await bot.core.db.fetchone("SELECT status, attempts FROM outbox WHERE dedup_key = 'retry:1'")
    assert (row["status"], row["attempts"]) == ("sent", 3)
    assert fake.texts(user.id) == ["重试的通知"]
