"""Several instances end to end (issue 11): two Applications built by the production factory, in
webhook mode on one PostgreSQL database, receive the chats' updates alternately and out of order
through their webhooks, as a load balancer would post them; every update is handled once and
each chat is answered in the order it wrote."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botprocess import BotProcess
from pg import ON_PG, database_for

from bench.fakebotapi import TOKEN, FakeBotApi
from bot import ops
from bot.app import build_application, start_webhook_application
from bot.clock import SettableClock
from bot.database import open_database
from bot.updates import store_of
from conftest import BotRunner

pytestmark = pytest.mark.skipif(not ON_PG, reason="several instances share only a PostgreSQL database")

ROOT = Path(__file__).resolve().parent.parent
HOOK = "https://bot.example.org/telegram"
SECRET = "one-secret-for-every-instance"


class Instance(BotRunner):
    """One instance: the production Application with its webhook on a free port (`run --webhook
    URL --listen 127.0.0.1:0`), on the database every instance shares."""

    def __init__(self, fake: FakeBotApi, database: Path, clock: SettableClock) -> None:
        super().__init__(fake, database, clock)
        self.hook = ops.Webhook(HOOK)  # no BOT_WEBHOOK_SECRET: the instances share one kept in the database
        self.site: ops.OpsSite | None = None

    async def start(self) -> None:
        self.app = build_application(self.settings, self.clock, delivery_limits=self.limits)
        [self.site] = ops.attach(self.app, listen="127.0.0.1:0", webhook=self.hook)
        await start_webhook_application(self.app, self.hook)

    async def post(self, http: aiohttp.ClientSession, update: dict[str, Any]) -> None:
        assert self.site is not None
        url = f"http://127.0.0.1:{self.site.port}{self.hook.path}"
        async with http.post(url, json=update, headers={ops.SECRET_HEADER: self.hook.secret}) as response:
            assert response.status == 200

    async def unfinished(self) -> int:
        assert self.app is not None
        return await store_of(self.app).unfinished()


@pytest.fixture
async def instances(fake: FakeBotApi, tmp_path: Path, clock: SettableClock) -> AsyncIterator[list[Instance]]:
    started = [Instance(fake, tmp_path / "shared.sqlite3", clock) for _ in range(2)]
    for instance in started:
        await instance.start()
    await started[0].load_orgs()
    yield started
    for instance in started:
        await instance.stop()


async def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_two_instances_answer_each_chat_in_order(instances: list[Instance], fake: FakeBotApi) -> None:
    assert instances[0].hook.secret == instances[1].hook.secret == fake.webhook["secret_token"]  # type: ignore[index]
    people = [fake.user(3101 + n, first_name=f"居民{n}") for n in range(4)]
    commands = ["/start", "/help", "/lang", "/me"]
    for command in commands:
        for person in people:
            person.send(command)
    updates = fake.take_updates()
    async with aiohttp.ClientSession() as http:
        # Newest first, every other one to the other instance, all at once.
        await asyncio.gather(*(instances[n % 2].post(http, update) for n, update in enumerate(reversed(updates))))
        await instances[1].post(http, updates[0])  # Telegram's retry of one, to the other instance

    async def all_done() -> bool:
        return all([await i.unfinished() == 0 for i in instances])

    await until(all_done, "every stored update handled")
    for instance in instances:
        await instance.delivery_idle()
    t = instances[0].core.t
    for person in people:
        name = person.first_name
        expected = [t("zh_CN", "start.welcome", name=name), t("zh_CN", "readable.help.menu", buttons="").split("：")[0],
                    t("zh_CN", "lang.choose"), f"{name}\n"]
        texts = [m.text or "" for m in fake.history(person.id)]
        assert len(texts) == len(commands), texts  # each update answered once, the retried one too
        assert all(text.startswith(start) for text, start in zip(texts, expected, strict=True)), texts
    rows = await instances[0].core.db.fetchall("SELECT update_id, attempts, done_at FROM updates")
    assert sorted(r["update_id"] for r in rows) == [u["update_id"] for u in updates]  # stored once each
    assert all(r["attempts"] == 1 and r["done_at"] is not None for r in rows)  # handed out once each


async def test_run_webhook_on_postgresql_starts_the_pump(fake: FakeBotApi, tmp_path: Path) -> None:
    """`python -m bot run --webhook URL --listen ADDR` with BOT_DATABASE=postgresql://…: the update is
    stored, handled by the process's pump and marked done; the instance id is in the logs and metrics."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = database_for(tmp_path / "process.sqlite3")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_TOKEN=TOKEN, BOT_API_URL=fake.base_url, BOT_FILE_URL=fake.base_file_url, BOT_DATABASE=str(url),
               BOT_LOG_FORMAT="json", BOT_WEBHOOK_SECRET=SECRET, PYTHONPATH=str(ROOT))
    address = f"127.0.0.1:{port}"
    bot = await BotProcess.start(["run", "--webhook", HOOK, "--listen", address, "--health", address], env, tmp_path)
    proc = bot.proc
    try:
        await bot.step("start-up until setWebhook", fake.wait_calls("setWebhook", timeout=60))
        fake.user(2005).send("/help")
        [update] = fake.take_updates()
        async with aiohttp.ClientSession() as http:
            response = await bot.step("webhook POST", http.post(f"http://{address}/telegram", json=update,
                                                                headers={ops.SECRET_HEADER: SECRET}))
            response.release()
            assert response.status == 200
            await bot.step("reply", fake.wait_message(2005, timeout=30))
            async with http.get(f"http://{address}/metrics") as response:
                assert f'bot_instance{{instance="{socket.gethostname()}:{proc.pid}"}} 1.0' in await response.text()
    finally:
        await bot.stop(60)
    bot.assert_stopped()
    lines = [json.loads(line) for line in bot.stderr.decode().splitlines()]
    assert any("update pump started" in line["message"] for line in lines)
    assert {line["instance"] for line in lines} == {f"{socket.gethostname()}:{proc.pid}"}
    db = open_database(url)
    await db.connect()
    try:
        [row] = await db.fetchall("SELECT update_id, claimed_by, done_at FROM updates")
    finally:
        await db.close()
    assert row["update_id"] == update["update_id"] and row["done_at"] is not None
    assert row["claimed_by"] == f"{socket.gethostname()}:{proc.pid}"
