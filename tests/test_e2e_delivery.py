"""End to end: the outbox under Telegram's limits, failures, blocked users and restarts."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pg import env_database

from bench.fakebotapi import TOKEN, FakeBotApi
from bot.clock import SettableClock
from bot.config import Settings
from bot.core import Core
from conftest import BotRunner
from schedules.delivery import Limits as DeliveryLimits

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.telegram_limits  # Telegram's real limits at the fake (tests/conftest.py)


@pytest.fixture
async def bot(fake: FakeBotApi, tmp_path: Path, clock: SettableClock) -> AsyncIterator[BotRunner]:
    runner = BotRunner(fake, tmp_path / "bot.sqlite3", clock, limits=DeliveryLimits())
    await runner.start()
    await runner.load_orgs()
    yield runner
    await runner.stop()


async def queue(core: Core, chats: list[int], prefix: str = "n", **kwargs: object) -> None:
    async with core.db.transaction() as tx:
        for i, chat in enumerate(chats):
            await core.outbox.send_text(tx, key=f"{prefix}:{i}", chat_id=chat, text=f"{prefix} {i}", **kwargs)


def delivered_counts(fake: FakeBotApi, chats: list[int]) -> Counter[int]:
    ok = Counter(c.params["chat_id"] for c in fake.calls_to("sendMessage") if c.status == 200)
    return Counter({chat: ok[chat] for chat in chats})


async def statuses(core: Core) -> Counter[str]:
    return Counter({k: v for k, v in (await core.outbox.counts()).items()})


async def wait_status(core: Core, key: str, timeout: float = 5.0) -> dict[str, object]:
    """Wait until the row has left 'pending' (the fake sees a send just before we record it)."""
    for _ in range(int(timeout / 0.02)):
        row = await core.db.fetchone("SELECT status, last_error, attempts FROM outbox WHERE dedup_key = ?", (key,))
        if row is not None and row["status"] != "pending":
            return dict(row)
        await asyncio.sleep(0.02)
    raise AssertionError(f"outbox row {key} still pending after {timeout}s")


async def wait_all_sent(core: Core, n: int, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if (await statuses(core))["sent"] >= n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not all {n} rows recorded as sent: {await statuses(core)}")


async def test_429_storm_pauses_then_delivers_everything_once(bot: BotRunner, fake: FakeBotApi) -> None:
    chats = [fake.user(30000 + i).id for i in range(60)]
    fake.storm(1.0, status=429, retry_after=1)
    await queue(bot.core, chats)
    await fake.wait_for(lambda: all(delivered_counts(fake, chats).values()), timeout=15)
    counts = delivered_counts(fake, chats)
    assert set(counts.values()) == {1}
    # The first 429 pauses everything for retry_after; we do not keep hammering.
    assert fake.stats.rate_limited <= 3
    await wait_all_sent(bot.core, 60)


async def test_5xx_storm_retries_with_backoff(bot: BotRunner, fake: FakeBotApi) -> None:
    chats = [fake.user(31000 + i).id for i in range(20)]
    fake.storm(1.5, status=502)
    await queue(bot.core, chats)
    await fake.wait_for(lambda: all(delivered_counts(fake, chats).values()), timeout=20)
    assert set(delivered_counts(fake, chats).values()) == {1}
    failed_calls = [c for c in fake.calls_to("sendMessage") if c.status == 502]
    assert 1 <= len(failed_calls) <= 10  # backed off, not retried in a tight loop
    retried = await bot.core.db.fetchval("SELECT COUNT(*) FROM outbox WHERE attempts > 1")
    assert retried >= 1


async def test_limits_are_respected_without_429(bot: BotRunner, fake: FakeBotApi) -> None:
    one = fake.user(32000).id
    others = [fake.user(32001 + i).id for i in range(45)]
    await queue(bot.core, [one] * 4 + others)
    await fake.wait_for(lambda: fake.stats.sends_ok >= 49, timeout=15)
    assert fake.stats.rate_limited == 0
    to_one = [c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == one]
    assert [c.params["text"] for c in to_one] == ["n 0", "n 1", "n 2", "n 3"]  # in order
    gaps = [b.at - a.at for a, b in itertools.pairwise(to_one)]
    assert min(gaps) >= 1.0
    sends = sorted(c.at for c in fake.calls_to("sendMessage"))
    assert all(sends[i + 30] - sends[i] >= 1.0 for i in range(len(sends) - 30))


async def test_403_marks_the_person_blocked_and_stops_sending(bot: BotRunner, fake: FakeBotApi) -> None:
    user = fake.user(33000)
    fake.block(user.id)  # blocked without telling us: we learn it from the 403
    await queue(bot.core, [user.id], prefix="first")
    assert (await wait_status(bot.core, "first:0"))["status"] == "blocked"
    person = await bot.core.people.get(user.id)
    assert person is not None and person.blocked_bot
    await queue(bot.core, [user.id], prefix="second")
    status = await bot.core.db.fetchval("SELECT status FROM outbox WHERE dedup_key = 'second:0'")
    assert status == "blocked"
    await bot.delivery_idle()
    assert len(fake.calls_to("sendMessage")) == 1


async def test_400_is_recorded_and_not_retried(bot: BotRunner, fake: FakeBotApi) -> None:
    await queue(bot.core, [777_000_111])  # a chat Telegram does not know
    row = await wait_status(bot.core, "n:0")
    assert row["status"] == "failed" and "chat not found" in str(row["last_error"]).lower()
    await bot.delivery_idle()
    assert len(fake.calls_to("sendMessage")) == 1


async def test_a_400_is_logged_at_error_with_the_key_and_what_it_was_for(
        bot: BotRunner, fake: FakeBotApi, caplog: pytest.LogCaptureFixture) -> None:
    user = fake.user(33500)
    fake.fail_next(400, method="sendMessage", chat_id=user.id, description="Bad Request: message is too long")
    async with bot.core.db.transaction() as tx:
        await bot.core.outbox.send_text(tx, key="tk:42:answer:33500", chat_id=user.id, text="答复",
                                        purpose="ticket.answer", subject_id=42)
    with caplog.at_level(logging.WARNING, logger="schedules.delivery"):
        await bot.delivery_idle()
    [record] = [r for r in caplog.records if r.name == "schedules.delivery" and r.levelno >= logging.WARNING]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    for part in ("tk:42:answer:33500", "purpose ticket.answer", "subject 42", "Message is too long"):
        assert part in message, message
    assert (await wait_status(bot.core, "tk:42:answer:33500"))["status"] == "failed"
    assert fake.texts(user.id) == []


async def test_an_edit_of_a_message_that_failed_fails_too(bot: BotRunner, fake: FakeBotApi,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The edit can never be sent; it must not wait for its original for ever, nor fail silently."""
    async with bot.core.db.transaction() as tx:
        await bot.core.outbox.send_text(tx, key="wall:7", chat_id=777_000_222, text="回音壁")  # unknown chat: 400
        await bot.core.outbox.enqueue(tx, key="wall-edit:7:1", chat_id=777_000_222, method="editMessageText",
                                      payload={"chat_id": 777_000_222, "text": "回音壁（已更新）",
                                               "message_id_from": "wall:7"})
    with caplog.at_level(logging.ERROR, logger="schedules.delivery"):
        await bot.delivery_idle()
    assert (await wait_status(bot.core, "wall:7"))["status"] == "failed"
    edit = await wait_status(bot.core, "wall-edit:7:1")
    assert edit["status"] == "failed" and "wall:7" in str(edit["last_error"])
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert "wall:7" in logged and "wall-edit:7:1" in logged
    assert fake.calls_to("editMessageText") == []


async def test_not_before_waits_for_the_clock(bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    user = fake.user(34000)
    await queue(bot.core, [user.id], not_before=clock.now() + timedelta(hours=1))
    await bot.delivery_idle()
    assert fake.texts(user.id) == []
    clock.advance(timedelta(minutes=59))
    await bot.delivery_idle()
    assert fake.texts(user.id) == []
    clock.advance(timedelta(minutes=1))
    await fake.wait_message(user.id, contains="n 0")


async def test_same_key_is_never_queued_twice(bot: BotRunner, fake: FakeBotApi) -> None:
    user = fake.user(35000)
    await queue(bot.core, [user.id])
    await queue(bot.core, [user.id])
    await fake.wait_message(user.id, contains="n 0")
    await bot.delivery_idle()
    assert fake.texts(user.id) == ["n 0"]


async def test_graceful_restart_mid_burst_loses_nothing(bot: BotRunner, fake: FakeBotApi) -> None:
    chats = [fake.user(36000 + i).id for i in range(90)]
    await queue(bot.core, chats)
    await fake.wait_for(lambda: fake.stats.sends_ok >= 20, timeout=10)
    await bot.restart()
    await fake.wait_for(lambda: all(delivered_counts(fake, chats).values()), timeout=15)
    assert set(delivered_counts(fake, chats).values()) == {1}


def _bot_process(fake: FakeBotApi | None, database: Path, api_url: str | None = None,
                 stderr: Any = subprocess.PIPE) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    api_url = api_url or (fake.base_url if fake else "")
    env.update(BOT_TOKEN=TOKEN, BOT_API_URL=api_url, BOT_FILE_URL=api_url.replace("/bot", "/file/bot"),
               BOT_DATABASE=env_database(database), PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=database.parent, env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr)


async def _stop(proc: subprocess.Popen[bytes], sig: int) -> int:
    proc.send_signal(sig)
    for _ in range(200):
        if proc.poll() is not None:
            return proc.returncode
        await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("the bot did not stop within 10 s")


async def _queue_in_file(database: Path, chats: list[int]) -> None:
    core = Core.build(Settings(token=TOKEN, database=env_database(database), _env_file=None))  # type: ignore[call-arg]
    await core.open()
    await queue(core, chats)
    await core.close()


async def test_kill_9_mid_burst_loses_nothing(fake: FakeBotApi, tmp_path: Path) -> None:
    """A real process killed with SIGKILL: only a message in flight at the kill may come twice."""
    database = tmp_path / "bot.sqlite3"
    chats = [fake.user(37000 + i).id for i in range(150)]
    await _queue_in_file(database, chats)
    proc = _bot_process(fake, database)
    try:
        await fake.wait_for(lambda: fake.stats.sends_ok >= 40, timeout=20)
    finally:
        await _stop(proc, signal.SIGKILL)
    at_kill = fake.stats.sends_ok
    proc = _bot_process(fake, database)
    try:
        await fake.wait_for(lambda: all(delivered_counts(fake, chats).values()), timeout=30)
    finally:
        assert await _stop(proc, signal.SIGTERM) == 0
    counts = delivered_counts(fake, chats)
    assert min(counts.values()) == 1
    duplicates = sum(counts.values()) - len(chats)
    assert duplicates <= 2, f"{duplicates} duplicates (sent {at_kill} before the kill)"


async def test_sigterm_mid_burst_sends_nothing_twice(fake: FakeBotApi, tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    chats = [fake.user(38000 + i).id for i in range(90)]
    await _queue_in_file(database, chats)
    proc = _bot_process(fake, database)
    try:
        await fake.wait_for(lambda: fake.stats.sends_ok >= 20, timeout=20)
    finally:
        code = await _stop(proc, signal.SIGTERM)
    assert code == 0, proc.stderr.read().decode() if proc.stderr else ""
    proc = _bot_process(fake, database)
    try:
        await fake.wait_for(lambda: all(delivered_counts(fake, chats).values()), timeout=30)
    finally:
        await _stop(proc, signal.SIGTERM)
    assert set(delivered_counts(fake, chats).values()) == {1}


async def test_network_down_at_start_up_is_retried(tmp_path: Path) -> None:
    """The bot starts while the Bot API is unreachable, keeps retrying, and works once it is back."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    late = FakeBotApi()
    database = tmp_path / "bot.sqlite3"
    log = tmp_path / "stderr.log"
    with log.open("wb") as err:
        proc = _bot_process(None, database, api_url=f"http://127.0.0.1:{port}/bot", stderr=err)
    try:
        # Wait until the bot has failed to connect at least twice (it logs each retry), not a fixed time.
        for _ in range(1500):
            if log.read_text(errors="replace").count("Retrying") >= 2 or proc.poll() is not None:
                break
            await asyncio.sleep(0.02)
        assert proc.poll() is None, "the bot gave up while the network was down"
        assert log.read_text(errors="replace").count("Retrying") >= 2, "the bot did not retry within 30 s"
        await late.start(port=port)
        user = late.user(39000, first_name="老李")
        user.send("/start")
        reply = await late.wait_message(user.id, timeout=20)
        assert "老李，您好" in reply.text
    finally:
        code = await _stop(proc, signal.SIGTERM)
        await late.stop()
    stderr = log.read_text(errors="replace")
    assert code == 0
    assert "Network Retry Loop" in stderr and "Retrying" in stderr  # the operator sees it waiting
    assert "Traceback" not in stderr


async def test_network_lost_while_running_is_retried(bot: BotRunner, fake: FakeBotApi) -> None:
    """The Bot API goes away for a while (polling and a queued notice both fail), then comes back."""
    user = fake.user(39500, first_name="老周")
    user.send("/start")
    await fake.wait_message(user.id, contains="老周，您好")
    port = fake.port
    await fake.stop()
    await queue(bot.core, [user.id], prefix="during-outage")
    # Delivery meets a refused connection (and so does polling) before the server comes back.
    for _ in range(500):
        if await bot.core.db.fetchval("SELECT attempts FROM outbox WHERE dedup_key = 'during-outage:0'") >= 1:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the notice was not tried while the server was away")
    await fake.start(port=port)
    await fake.wait_message(user.id, contains="during-outage 0", timeout=30)
    user.send("/me")
    assert "老周" in (await fake.wait_message(user.id, timeout=30)).text
    assert await bot.core.db.fetchval("SELECT attempts FROM outbox WHERE dedup_key = 'during-outage:0'") >= 2
