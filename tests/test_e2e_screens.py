"""End to end: earlier messages with buttons are kept true when their ticket or meeting changes
(bot/services/screens.py), through the fake Bot API."""

from __future__ import annotations

from datetime import timedelta

from orgtree import SECRETARY

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.actors import SYSTEM_ACTOR
from conftest import BotRunner

WAIT = 10.0


async def resident(bot: BotRunner, fake: FakeBotApi, user_id: int, name: str = "老张") -> FakeUser:
    invite = await bot.core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    user = fake.user(user_id, first_name=name)
    user.send(f"/start {invite.payload}")
    await fake.wait_message(user_id, contains="欢迎")
    return user


async def submitted(bot: BotRunner, fake: FakeBotApi, villager: FakeUser, text: str) -> SentMessage:
    """The villager submits a problem; returns the secretary's card."""
    villager.send(text)
    categories = await fake.wait_message(villager.id, contains="请选择问题类别")
    villager.press(categories, "基础设施")
    confirm = await fake.wait_text(villager.id, "请确认")
    villager.press(confirm, "✅ 提交")
    await fake.wait_text(villager.id, "已提交！")
    return await fake.wait_message(SECRETARY, contains="📥 新问题", timeout=WAIT)


async def until(fake: FakeBotApi, chat_id: int, message_id: int, test: object, what: str) -> SentMessage:
    """Wait until the message reads as `test` (a predicate on it) says."""
    found: list[SentMessage] = []

    def ready() -> bool:
        message = fake.message(chat_id, message_id)
        if message is not None and test(message):  # type: ignore[operator]
            found.append(message)
            return True
        return False

    await fake.wait_for(ready, WAIT, message=what)
    return found[-1]


async def test_the_secretary_card_follows_the_ticket(bot: BotRunner, fake: FakeBotApi) -> None:
    villager = await resident(bot, fake, 2001)
    secretary = fake.user(SECRETARY, first_name="王建国")
    card = await submitted(bot, fake, villager, "村口路灯坏了一个月了")
    assert "状态：待受理" in card.text and "✅ 受理" in card.button_texts

    secretary.press(card, "✅ 受理")
    await fake.wait_message(SECRETARY, contains="已受理问题 #1")
    card = await until(fake, SECRETARY, card.message_id, lambda m: "状态：已受理" in m.text, "card not edited")
    assert "待受理" not in card.text
    assert "✅ 受理" not in card.button_texts and "💬 答复" in card.button_texts
    assert card.text.startswith("📥 新问题")

    # The details view, sent directly, is kept true as well.
    secretary.press(card, "📜 详情和记录")
    details = await fake.wait_message(SECRETARY, contains="办理记录")
    assert "❓ 要求补充" in details.button_texts

    secretary.press(card, "❓ 要求补充")
    await fake.wait_message(SECRETARY, contains="请输入需要群众补充的内容")
    secretary.send("是哪个路口？")
    asked = await fake.wait_message(villager.id, contains="书记需要您补充", timeout=WAIT)
    assert "✍️ 补充信息" in asked.button_texts
    card = await until(fake, SECRETARY, card.message_id, lambda m: "状态：待补充" in m.text, "card not edited")
    assert "❓ 要求补充" not in card.button_texts and "💬 答复" in card.button_texts
    details = await until(fake, SECRETARY, details.message_id, lambda m: "待补充" in m.text, "details not edited")
    assert "❓ 要求补充" not in details.button_texts

    # The answer comes before the information: the request loses its button and says where it stands.
    secretary.press(card, "💬 答复")
    await fake.wait_message(SECRETARY, contains="请输入对问题 #1 的答复")
    secretary.send("已联系电工，明天修好。")
    collected = await fake.wait_message(SECRETARY, contains="已记录 1 条")
    secretary.press(collected, "📨 发送")
    secretary.press(await fake.wait_message(SECRETARY, contains="回音壁上会这样显示"), "✅ 确定发送")
    answer = await fake.wait_message(villager.id, contains="有答复了", timeout=WAIT)
    asked = await until(fake, villager.id, asked.message_id, lambda m: not m.buttons, "request not edited")
    assert "（现在：已答复）" in asked.text and asked.text.startswith("关于问题 #1，书记需要您补充")
    card = await until(fake, SECRETARY, card.message_id, lambda m: "状态：已答复" in m.text, "card not edited")
    assert card.button_texts == ["💬 答复", "🏁 办结", "📜 详情和记录"]

    villager.press(answer, "😊 满意")
    await fake.wait_message(villager.id, contains="谢谢您的评价")
    card = await until(fake, SECRETARY, card.message_id, lambda m: "状态：已办结" in m.text, "card not edited")
    assert card.buttons == []
    answer = await until(fake, villager.id, answer.message_id, lambda m: not m.buttons, "answer not edited")
    assert "（现在：已办结）" in answer.text
    details = await until(fake, SECRETARY, details.message_id, lambda m: "已办结" in m.text, "details not edited")
    assert details.buttons == []
    # Final: nothing of it is kept any more, and nothing more is sent.
    assert await bot.core.screens.live("ticket", 1) == []
    await bot.idle()
    assert not [c for c in fake.calls if c.method == "editMessageText" and not c.ok]
