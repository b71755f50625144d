"""Several instances on one PostgreSQL database and one bot token (issue 11): every outbox row is
sent once, one chat's messages in order, and Telegram's limits hold for the deployment as a whole.
Each instance is the real Application built by the production factory (without polling: the
updates are another part's), with its own connection pool. The judge is the fake server: its
limiter (any 429 fails) and the moments at which it took each send."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pg import ON_PG, database_for
from test_delivery_pacing import most_in_one_second

from bench.fakebotapi import SEND_METHODS, TOKEN, Call, FakeBotApi
from bot.app import build_application, stop_application
from bot.clock import SettableClock
from bot.config import Settings
from bot.context import BotApplication
from bot.outbox import Priority
from bot.sendslots import NOW
from schedules.delivery import Limits as DeliveryLimits

pytestmark = [pytest.mark.skipif(not ON_PG, reason="several instances need PostgreSQL (BOT_TEST_BACKEND=postgresql)"),
              pytest.mark.telegram_limits]


class Deployment:
    """Instances of the bot on one database, started and stopped by the test."""

    def __init__(self, fake: FakeBotApi, database: Path, clock: SettableClock) -> None:
        self.settings = Settings(token=TOKEN, api_url=fake.base_url, file_url=fake.base_file_url,
                                 database=database_for(database))
        self.clock = clock
        self.instances: list[BotApplication] = []

    async def start(self) -> BotApplication:
        """One more instance: the production Application, its jobs and delivery running."""
        app = build_application(self.settings, self.clock, delivery_limits=DeliveryLimits())
        await app.initialize()
        assert app.post_init is not None
        await app.post_init(app)
        await app.start()
        self.instances.append(app)
        return app

    async def stop(self) -> None:
        for app in reversed(self.instances):
            await stop_application(app)
        self.instances.clear()


@pytest.fixture
async def deployment(fake: FakeBotApi, tmp_path: Path, clock: SettableClock) -> AsyncIterator[Deployment]:
    each = Deployment(fake, tmp_path / "bot.sqlite3", clock)
    yield each
    await each.stop()


def taken_by_chat(fake: FakeBotApi) -> tuple[list[float], dict[int, list[tuple[float, str]]]]:
    """Start recording when the server took each send (what its limiter counts), and to whom."""
    taken: list[float] = []
    by_chat: dict[int, list[tuple[float, str]]] = defaultdict(list)

    def record(call: Call) -> None:
        if call.ok and call.method in SEND_METHODS:
            now = time.time()
            taken.append(now)
            by_chat[call.params["chat_id"]].append((now, call.params.get("text", "")))

    fake.observers.append(record)
    return taken, by_chat


async def test_three_instances_send_every_row_once_in_order_within_the_deployments_limits(
        deployment: Deployment, fake: FakeBotApi) -> None:
    taken, by_chat = taken_by_chat(fake)
    fake.slow(0.02, count=100_000, method=SEND_METHODS)  # answered late: the window must hold anyway
    singles = [fake.user(47000 + i).id for i in range(240)]
    threes = [fake.user(47500 + i).id for i in range(20)]  # three messages each: their order, 1 a second
    askers = [fake.user(47900 + i).id for i in range(3)]
    first = await deployment.start()
    async with first.core.db.transaction() as tx:
        for i, chat in enumerate(singles):
            await first.core.outbox.send_text(tx, key=f"bulk:{i}", chat_id=chat, text=f"通知 {i}",
                                              priority=Priority.BULK)
        for i, chat in enumerate(threes):
            for n in range(3):
                await first.core.outbox.send_text(tx, key=f"three:{i}:{n}", chat_id=chat, text=f"第{n}条")
    others = [await deployment.start(), await deployment.start()]

    async def reply_meanwhile(app: BotApplication, chat: int) -> int:
        """Direct replies from another instance while the outbox drains: they share the places."""
        answers = 0
        while not all(fake.delivered(c) for c in singles) and answers < 50:
            await app.bot.send_message(chat, f"回复 {answers}")
            answers += 1
        return answers

    replies = asyncio.gather(*(reply_meanwhile(others[i % 2], chat) for i, chat in enumerate(askers)))
    await fake.wait_for(lambda: all(fake.delivered(c) for c in singles) and all(
        fake.delivered(c) == 3 for c in threes), timeout=90)
    answers = await replies
    for app in deployment.instances:
        await app.bot_data["delivery"].wait_idle()
    refused = [(c.params.get("chat_id"), c.params.get("text")) for c in fake.calls if c.status == 429]
    assert not refused, refused  # not one 429 at the server, for the three instances together
    assert most_in_one_second(taken) <= 30
    assert all(len(by_chat[chat]) == 1 for chat in singles)  # every row once
    assert all([text for _, text in by_chat[chat]] == ["第0条", "第1条", "第2条"] for chat in threes)
    for sends in by_chat.values():  # no chat twice within a second
        assert all(b[0] - a[0] >= 1.0 for a, b in itertools.pairwise(sends))
    assert all(n >= 1 for n in answers)
    sent_by = [app.bot_data["delivery"].sent_count for app in deployment.instances]
    assert sum(sent_by) == len(singles) + 3 * len(threes) and all(n > 0 for n in sent_by)
    assert await first.core.db.fetchval("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL") == 0


async def test_rows_an_instance_held_when_it_died_are_sent_once_by_the_others_after_its_lease(
        deployment: Deployment, fake: FakeBotApi) -> None:
    taken, by_chat = taken_by_chat(fake)
    chats = [fake.user(48000 + i).id for i in range(40)]
    first = await deployment.start()
    await first.bot_data["delivery"].stop()  # this one only queues (and stands for the dead instance)
    db = first.core.db
    async with db.transaction() as tx:
        for i, chat in enumerate(chats):
            await first.core.outbox.send_text(tx, key=f"n:{i}", chat_id=chat, text=f"通知 {i}")
        # The dead instance had claimed ten rows and taken five of the deployment's places when it
        # was killed (mid-send); its leases run out in a moment.
        await tx.execute(f"UPDATE outbox SET claimed_by = 'dead', lease_until = {NOW} + 1.5"
                         " WHERE dedup_key IN (SELECT value FROM json_each(?))",
                         ([f"n:{i}" for i in range(10)],))
        await tx.execute(f"UPDATE send_slots SET free_at = {NOW} + 1.5 WHERE slot < 5")
    lease_end = await db.fetchval("SELECT MAX(lease_until) FROM outbox")
    await deployment.start()
    await deployment.start()
    await fake.wait_for(lambda: all(fake.delivered(c) for c in chats), timeout=60)
    for app in deployment.instances[1:]:
        await app.bot_data["delivery"].wait_idle()
    assert fake.stats.rate_limited == 0
    assert most_in_one_second(taken) <= 30
    assert all(len(by_chat[chat]) == 1 for chat in chats)
    dead_rows = [by_chat[chat][0][0] for chat in chats[:10]]
    assert min(dead_rows) >= lease_end - 0.05  # not before the dead instance's lease was over
    statuses = await db.fetchall("SELECT status, claimed_by, lease_until FROM outbox")
    assert {tuple(row) for row in statuses} == {("sent", None, None)}


async def test_every_outcome_is_recorded_once_when_another_instance_shares_the_rows(
        deployment: Deployment, fake: FakeBotApi) -> None:
    """Long because it is one deployment meeting each outcome: a retried 5xx held for its backoff
    at every instance, a 429, a person who blocked the bot, a refusal, an edit waiting for its
    original, and the rows around them."""
    taken, by_chat = taken_by_chat(fake)
    retried, flooded, blocker, refused, edited = (fake.user(49000 + i).id for i in range(5))
    others = [fake.user(49100 + i).id for i in range(30)]
    first = await deployment.start()
    await deployment.start()
    fake.fail_next(502, chat_id=retried)
    fake.fail_next(429, chat_id=flooded, retry_after=1)
    fake.block(blocker)
    fake.fail_next(400, chat_id=refused, description="Bad Request: chat not found")
    outbox = first.core.outbox
    async with first.core.db.transaction() as tx:
        for chat in (retried, flooded, refused):
            await outbox.send_text(tx, key=f"o:{chat}", chat_id=chat, text="一")
        await outbox.send_text(tx, key="b:1", chat_id=blocker, text="一")
        await outbox.send_text(tx, key="b:2", chat_id=blocker, text="二")
        # The edit is queued first and more urgent: it still waits for the message it edits.
        await outbox.enqueue(tx, key="e:edit", chat_id=edited, method="editMessageText",
                             payload={"chat_id": edited, "text": "改过", "message_id_from": "e:original"},
                             priority=Priority.URGENT)
        await outbox.send_text(tx, key="e:original", chat_id=edited, text="原文")
        for i, chat in enumerate(others):
            await outbox.send_text(tx, key=f"n:{i}", chat_id=chat, text=f"通知 {i}")
    await fake.wait_for(lambda: all(fake.delivered(c) for c in (retried, flooded, edited, *others))
                        and fake.calls_to("editMessageText"), timeout=60)
    for app in deployment.instances:
        await app.bot_data["delivery"].wait_idle()
    rows = {row["dedup_key"]: row for row in await first.core.db.fetchall(
        "SELECT dedup_key, status, attempts, claimed_by, lease_until FROM outbox")}
    assert rows[f"o:{retried}"]["status"] == "sent" and rows[f"o:{retried}"]["attempts"] == 2
    assert rows[f"o:{flooded}"]["status"] == "sent" and rows[f"o:{flooded}"]["attempts"] == 2
    assert rows[f"o:{refused}"]["status"] == "failed" and rows[f"o:{refused}"]["attempts"] == 1
    assert rows["b:1"]["status"] == rows["b:2"]["status"] == "blocked"
    assert rows["e:edit"]["status"] == rows["e:original"]["status"] == "sent"
    assert all(row["claimed_by"] is None for row in rows.values())
    attempts = {chat: [c.at for c in fake.calls if c.params.get("chat_id") == chat] for chat in (retried, flooded)}
    # The 5xx's backoff (a second) and the 429's were kept by both instances: no early second try.
    assert all(len(at) == 2 and at[1] - at[0] >= 0.95 for at in attempts.values())
    assert len([c for c in fake.calls if c.params.get("chat_id") == blocker]) == 1  # b:2 never tried
    assert len([c for c in fake.calls if c.params.get("chat_id") == refused]) == 1  # never retried
    edit = fake.calls_to("editMessageText")
    assert len(edit) == 1 and edit[0].ok
    assert all(len(by_chat[chat]) == 1 for chat in others)
    assert most_in_one_second(taken) <= 30
