"""End to end: /mydata sends the person their own data as a JSON document, and nobody else's."""

from __future__ import annotations

import json
from datetime import timedelta

from orgtree import SECRETARY

from bench.fakebotapi import FakeBotApi, FakeUser
from bot.actors import SYSTEM_ACTOR
from bot.services.tickets import Item
from conftest import BotRunner

ZHANG, LI = 2001, 2002


async def resident(bot: BotRunner, fake: FakeBotApi, user_id: int, name: str) -> FakeUser:
    invite = await bot.core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    user = fake.user(user_id, first_name=name)
    user.send(f"/start {invite.payload}")
    await fake.wait_message(user_id, contains="欢迎")
    return user


async def test_mydata_sends_the_persons_own_export(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    await resident(bot, fake, LI, "老李")
    mine = await bot.core.tickets.submit(ZHANG, [Item("text", "村口路灯坏了")], "infrastructure", True, True)
    await bot.core.tickets.submit(LI, [Item("text", "老李家门口的水管漏了")], "infrastructure", True, False)
    await bot.idle()

    zhang.send("/mydata")
    sent = await fake.wait_message(ZHANG, contains="关于您的全部信息")
    assert sent.document is not None and sent.document[0].endswith(".json")
    data = json.loads(sent.document[1])
    assert data["person"]["telegram_id"] == ZHANG and data["person"]["name"] == "老张"
    assert [(t["id"], t["summary"], t["anonymous"]) for t in data["tickets"]["submitted"]] == [
        (mine.id, "村口路灯坏了", 1)]
    text = sent.document[1].decode("utf-8")
    for other in ("老李", "水管漏了", str(LI), "王建国", str(SECRETARY)):
        assert other not in text, other
    # Sent straight back to the person: no copy of the export waits in the outbox.
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM outbox WHERE method = 'sendDocument'") == 0
    assert await bot.core.db.fetchval("SELECT action || '/' || by_kind || '/' || via FROM privacy_log") == \
        "export/self/chat"
    help_text = await help_of(zhang, fake)
    assert "/mydata — 我的个人信息" in help_text


async def help_of(user: FakeUser, fake: FakeBotApi) -> str:
    user.send("/help")
    return (await fake.wait_message(user.id, contains="/mydata")).text


async def test_the_daily_job_strips_tickets_closed_three_years_ago(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    ticket = await bot.core.tickets.submit(ZHANG, [Item("text", "路灯坏了，电话13812345678")], "infrastructure",
                                           True, False)
    await bot.core.tickets.answer(SECRETARY, ticket.id, [Item("text", "已修好")])
    await bot.core.tickets.rate(ZHANG, ticket.id, "good")
    await bot.idle()
    closed = bot.clock.now()
    bot.clock.set(closed.replace(year=closed.year + 3) - timedelta(days=1))
    await bot.ticks()
    assert await bot.core.db.fetchval("SELECT resident_id FROM tickets WHERE id = ?", (ticket.id,)) == ZHANG
    bot.clock.set(closed.replace(year=closed.year + 3) + timedelta(days=1))
    await bot.ticks()
    await bot.ticks()  # again: nothing left to do
    row = await bot.core.db.fetchone("SELECT resident_id, summary FROM tickets WHERE id = ?", (ticket.id,))
    assert row["resident_id"] != ZHANG and row["summary"] == "路灯坏了，电话138****5678"
    runs = [r[0] for r in await bot.core.db.fetchall("SELECT tickets FROM retention_runs ORDER BY id")]
    assert sum(runs) == 1 and runs[-1] == 0
    zhang.send("/mydata")
    sent = await fake.wait_message(ZHANG, contains="关于您的全部信息")
    assert sent.document is not None and json.loads(sent.document[1])["tickets"]["submitted"] == []
