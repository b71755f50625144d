"""End to end: the problem wall's whole cycle through the fake Bot API."""

from __future__ import annotations

from orgtree import SECRETARY

from bench.fakebotapi import FakeBotApi, FakeUser
from bot.actors import SYSTEM_ACTOR
from conftest import BotRunner


async def resident(bot: BotRunner, fake: FakeBotApi, user_id: int, name: str = "老张") -> FakeUser:
    invite = await bot.core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    user = fake.user(user_id, first_name=name)
    user.send(f"/start {invite.payload}")
    await fake.wait_message(user_id, contains="欢迎")
    return user


async def test_submit_accept_answer_rate(bot: BotRunner, fake: FakeBotApi) -> None:
    villager = await resident(bot, fake, 2001)
    secretary = fake.user(SECRETARY, first_name="王建国")
    villager.send("/submit")
    await fake.wait_message(villager.id, contains="请说说遇到了什么问题")
    villager.send("村口路灯坏了一个月了，电话13812345678")
    categories = await fake.wait_message(villager.id, contains="请选择问题类别")
    villager.press(categories, "基础设施")
    confirm = await fake.wait_text(villager.id, "请确认")
    villager.press(confirm, "✅ 提交")
    done = await fake.wait_text(villager.id, "已提交！问题编号 #1")
    assert done is not None

    card = await fake.wait_message(SECRETARY, contains="📥 新问题")
    assert "村口路灯坏了" in card.text and "老张" in card.text
    secretary.press(card, "✅ 受理")
    await fake.wait_message(SECRETARY, contains="已受理问题 #1")
    await fake.wait_message(villager.id, contains="已由「三义村党支部」受理")

    secretary.press(card, "💬 答复")
    await fake.wait_message(SECRETARY, contains="请输入对问题 #1 的答复")
    secretary.send("已联系电工，明天修好。")
    collected = await fake.wait_message(SECRETARY, contains="已记录 1 条")
    secretary.press(collected, "📨 发送")
    # The answer will be public: the secretary first reads exactly what the wall will show.
    preview = await fake.wait_message(SECRETARY, contains="回音壁上会这样显示")
    assert "电话138****5678" in preview.text and "13812345678" not in preview.text
    assert "答复：已联系电工，明天修好。" in preview.text
    assert await bot.core.db.fetchval("SELECT status FROM tickets WHERE id = 1") == "accepted"
    secretary.press(preview, "✅ 确定发送")
    await fake.wait_message(SECRETARY, contains="答复已发给群众")
    answer = await fake.wait_message(villager.id, contains="有答复了")
    assert "明天修好" in answer.text
    villager.press(answer, "😊 满意")
    await fake.wait_message(villager.id, contains="谢谢您的评价")
    ticket = await bot.core.db.fetchone("SELECT status, rating FROM tickets WHERE id = 1")
    assert (ticket["status"], ticket["rating"]) == ("closed", "good")
