"""End to end: the problem wall and echo wall through the fake Bot API, as each person sees it.

Two residents of sanyi (老张 2001, 小李 2002), the sanyi secretary 王建国 (1001), the erlang secretary
赵强 (1003) and the township organizer 李明 (1002). The texts are those of locales/zh_CN/tickets.yaml.
Replies to one private chat are paced at about one a second (Telegram's per-chat limit), so waits
for messages that queue up behind others use a longer timeout. Some tickets are created through
the service (as a chat submission would) when the test is about what happens next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from orgtree import ERLANG_SECRETARY, SECRETARY
from orgtree import TOWN_ORG as ORGANIZER

import schedules
from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.actors import SYSTEM_ACTOR
from bot.services.tickets import Item, Ticket, TicketService
from conftest import BotRunner

ZHANG, LI = 2001, 2002
WAIT = 15.0  # for messages that may queue behind others to the same chat

NOT_ALLOWED = "您没有权限进行这项操作。"
SUBMIT_STALE = "这个操作已过期。请重新开始。"
EMPTY = "还没有内容。请先用文字、语音、照片或位置说明问题。"
UNSUPPORTED = "这类消息不能作为问题内容（如表情、名片）。请发文字、语音、照片、位置或文件。"
BLOCKED = "您已被暂停提交问题。如有疑问，请联系村（社区）书记。"
DESCRIBE = "请说说遇到了什么问题"


# --------------------------------------------------------------------------- helpers

def svc(bot: BotRunner) -> TicketService:
    return bot.core.tickets


async def resident(bot: BotRunner, fake: FakeBotApi, user_id: int, name: str) -> FakeUser:
    """A resident of sanyi who joined by link (through the service, so their chat starts empty)."""
    user = fake.user(user_id, first_name=name)
    await bot.core.people.touch(user_id, name, None, "zh-hans")
    invite = await bot.core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    await bot.core.invites.join(user_id, invite.payload)
    return user


def leaders(fake: FakeBotApi) -> tuple[FakeUser, FakeUser, FakeUser]:
    return (fake.user(SECRETARY, first_name="王建国"), fake.user(ORGANIZER, first_name="李明"),
            fake.user(ERLANG_SECRETARY, first_name="赵强"))


async def seed(bot: BotRunner, person: int, what: str, category: str = "infrastructure", public: bool = True,
               anonymous: bool = False) -> Ticket:
    """A ticket submitted as the chat flow would."""
    return await svc(bot).submit(person, [Item("text", what)], category, public, anonymous)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 5.0) -> None:
    """Poll an async condition (the database) until it holds; no fixed sleep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)


async def status_is(bot: BotRunner, ticket_id: int, status: str) -> None:
    async def check() -> bool:
        return await bot.core.db.fetchval("SELECT status FROM tickets WHERE id = ?", (ticket_id,)) == status

    await eventually(check, f"ticket #{ticket_id} {status}")


async def no_flow(bot: BotRunner, person: int) -> None:
    async def check() -> bool:
        return await bot.core.flows.get(person) is None

    await eventually(check, f"no open flow for {person}")


async def count(bot: BotRunner, table: str = "tickets") -> int:
    return int(await bot.core.db.fetchval(f"SELECT COUNT(*) FROM {table}"))


async def ticket_state(bot: BotRunner) -> list[tuple[Any, ...]]:
    db = bot.core.db
    return ([tuple(r) for r in await db.fetchall("SELECT * FROM tickets ORDER BY id")]
            + [tuple(r) for r in await db.fetchall("SELECT * FROM ticket_events ORDER BY id")])


async def alert(fake: FakeBotApi, press: dict[str, Any]) -> str:
    """The text of the pop-up alert the bot answered a button press with."""
    answer = await fake.wait_callback_answer(press)
    assert answer.get("show_alert") in (True, "true"), answer
    return str(answer.get("text"))


async def with_button(fake: FakeBotApi, message: SentMessage, label: str) -> SentMessage:
    """Wait until `message` (edited in place) shows a button labelled `label`; returns it then."""
    found: list[SentMessage] = []

    def ready() -> bool:
        current = fake.message(message.chat_id, message.message_id)
        if current is not None and label in current.button_texts:
            found.append(current)
            return True
        return False

    await fake.wait_for(ready, message=f"button {label!r} on message {message.message_id}")
    return found[-1]


async def edited(fake: FakeBotApi, message: SentMessage, contains: str, timeout: float = WAIT) -> SentMessage:
    """Wait until `message` has been edited to contain `contains`."""
    found: list[SentMessage] = []

    def ready() -> bool:
        current = fake.message(message.chat_id, message.message_id)
        if current is not None and current.edits > message.edits and contains in current.text:
            found.append(current)
            return True
        return False

    await fake.wait_for(ready, timeout, message=f"message {message.message_id} edited to {contains!r}")
    return found[-1]


async def copies(fake: FakeBotApi, chat_id: int, n: int) -> list[SentMessage]:
    """Wait for `n` copied messages (copyMessage) in a chat."""
    def ready() -> bool:
        return sum(m.method == "copyMessage" for m in fake.history(chat_id)) >= n

    await fake.wait_for(ready, WAIT, message=f"{n} copies in chat {chat_id}")
    return [m for m in fake.history(chat_id) if m.method == "copyMessage"]


def traces(value: Any, name: str, person_id: int) -> list[str]:
    """Where a person's name or Telegram id occurs in a message object (recursively)."""
    found: list[str] = []

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, dict):
            for key, item in obj.items():
                if key != "date":
                    walk(item, f"{path}.{key}")
        elif isinstance(obj, list):
            for i, item in enumerate(obj):
                walk(item, f"{path}[{i}]")
        elif isinstance(obj, bool):
            return
        elif isinstance(obj, int) and obj == person_id:
            found.append(path)
        elif isinstance(obj, str) and (name in obj or str(person_id) in obj):
            found.append(path)

    walk(value, "")
    return found


async def start_submit(fake: FakeBotApi, user: FakeUser) -> SentMessage:
    user.send("/submit")
    return await fake.wait_message(user.id, contains=DESCRIBE)


async def submit_in_chat(fake: FakeBotApi, user: FakeUser, what: str, category: str = "基础设施") -> SentMessage:
    """/submit, one text, a category, confirm: returns the pop-up or the confirmation."""
    await start_submit(fake, user)
    user.send(what)
    categories = await fake.wait_message(user.id, contains="已收到 1 条内容")
    user.press(categories, category)
    confirm = await fake.wait_text(user.id, "请确认")
    user.press(confirm, "✅ 提交")
    return confirm


# --------------------------------------------------------------------------- submitting

async def test_submit_text_photo_and_location_in_four_taps_and_anonymity_both_ways(
        bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    secretary, _, _ = leaders(fake)
    taps = 0

    await start_submit(fake, zhang)
    zhang.send("河边有人倒垃圾，电话13812345678")
    await fake.wait_message(zhang.id, contains="已收到 1 条内容")
    zhang.send_photo()
    await fake.wait_message(zhang.id, contains="已收到 2 条内容")
    zhang.send_location(33.7, 110.3)
    categories = await fake.wait_message(zhang.id, contains="已收到 3 条内容。还可以继续补充；说完了请选择问题类别：")
    assert categories.button_texts == [
        "基础设施", "环境卫生", "民生保障", "产业发展", "矛盾纠纷", "意见建议", "其他", "取消"]

    zhang.press(categories, "环境卫生")
    taps += 1
    confirm = await fake.wait_text(zhang.id, "请确认：\n内容：文字 1 条、照片 1 张、位置 1 个\n")
    assert "类别：环境卫生" in confirm.text and "河边有人倒垃圾" in confirm.text
    assert "📍 33.70000,110.30000" in confirm.text
    assert confirm.button_texts == ["☑ 答复可以公开到回音壁", "☐ 不让书记看到我的名字", "✅ 提交", "取消"]
    zhang.press(confirm, "☑ 答复可以公开到回音壁")
    taps += 1
    confirm = await with_button(fake, confirm, "☐ 答复可以公开到回音壁")
    zhang.press(confirm, "☐ 不让书记看到我的名字")
    taps += 1
    confirm = await with_button(fake, confirm, "☑ 不让书记看到我的名字")
    zhang.press(confirm, "✅ 提交")
    taps += 1
    done = await fake.wait_text(zhang.id, "已提交！问题编号 #1")
    assert done.text == "已提交！问题编号 #1。书记会在11月30日（周一）前受理，有进展会通知您。发送 /my 查看。"
    assert taps == 4
    ticket = await svc(bot).get(SYSTEM_ACTOR, 1)
    assert (ticket.category, ticket.public_ok, ticket.anonymous, ticket.status) == ("sanitation", False, True, "new")
    assert [item.kind for _, item in await svc(bot).items(SYSTEM_ACTOR, 1)] == ["text", "photo", "location"]
    assert await bot.core.flows.get(ZHANG) is None

    # The secretary: the card says 匿名群众, the photo and the place arrive as copies.
    card = await fake.wait_message(SECRETARY, contains="📥 新问题", timeout=WAIT)
    assert "提交人：匿名群众" in card.text and "河边有人倒垃圾" in card.text
    relayed = await copies(fake, SECRETARY, 2)
    assert "photo" in relayed[0].message and "location" in relayed[1].message
    secretary.press(card, "📜 详情和记录")
    view = await fake.wait_message(SECRETARY, contains="办理记录：", timeout=WAIT)
    assert view.text.startswith("问题 #1（环境卫生）· 待受理\n匿名群众\n")
    assert "匿名群众 提交" in view.text

    # …and answers: the resident gets the text and the photo, as copies.
    secretary.press(card, "💬 答复")
    await fake.wait_message(SECRETARY, contains="请输入对问题 #1 的答复", timeout=WAIT)
    secretary.send("已安排保洁员清理，并在河边立了警示牌。")
    first = await fake.wait_message(SECRETARY, contains="已记录 1 条", timeout=WAIT)
    secretary.send_photo(caption="清理后")
    collected = await fake.wait_message(SECRETARY, contains="已记录 2 条", timeout=WAIT)
    await bot.idle()
    # 发送 / 取消 live under the newest count only.
    current = fake.message(SECRETARY, first.message_id)
    assert current is not None and current.button_texts == []
    assert collected.button_texts == ["📨 发送", "取消"]
    secretary.press(collected, "📨 发送")
    await fake.wait_message(SECRETARY, contains="答复已发给群众（问题 #1）", timeout=WAIT)
    answer = await fake.wait_message(ZHANG, contains="有答复了", timeout=WAIT)
    assert answer.text.startswith("您反映的问题 #1 有答复了：\n已安排保洁员清理，并在河边立了警示牌。")
    assert answer.button_texts == ["😊 满意", "🙂 基本满意", "🙁 不满意"]
    photo = (await copies(fake, ZHANG, 1))[-1]
    assert "photo" in photo.message and photo.text == "清理后" and "forward_origin" not in photo.message

    # Nothing in the secretary's chat points at the resident.
    for message in fake.history(SECRETARY):
        assert traces(message.message, "老张", ZHANG) == [], message


async def test_a_problem_typed_straight_into_the_chat_starts_a_submission(bot: BotRunner, fake: FakeBotApi) -> None:
    li = await resident(bot, fake, LI, "小李")
    leaders(fake)
    li.send("村委会门口的垃圾桶满了三天没人清")
    categories = await fake.wait_message(LI, contains="已收到 1 条内容")
    li.press(categories, "环境卫生")
    confirm = await fake.wait_text(LI, "请确认：\n内容：文字 1 条\n")
    li.press(confirm, "✅ 提交")
    await fake.wait_text(LI, "已提交！问题编号 #1")

    card = await fake.wait_message(SECRETARY, contains="📥 新问题", timeout=WAIT)
    assert "提交人：小李\n" in card.text and "村委会门口的垃圾桶满了三天没人清" in card.text
    assert card.button_texts == [
        "✅ 受理", "💬 答复", "❓ 要求补充", "↪️ 转交", "🚫 不属于职责", "🏁 办结", "📜 详情和记录"]


async def test_a_restart_half_way_loses_nothing(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    leaders(fake)
    await start_submit(fake, zhang)
    zhang.send("学校门口的路灯坏了")
    zhang.send_photo()
    categories = await fake.wait_message(ZHANG, contains="已收到 2 条内容", timeout=WAIT)

    await bot.restart()

    zhang.press(categories, "基础设施")
    confirm = await fake.wait_text(ZHANG, "请确认：\n内容：文字 1 条、照片 1 张\n")
    zhang.press(confirm, "✅ 提交")
    await fake.wait_text(ZHANG, "已提交！问题编号 #1")
    assert (await svc(bot).get(SYSTEM_ACTOR, 1)).summary == "学校门口的路灯坏了"
    assert [item.kind for _, item in await svc(bot).items(SYSTEM_ACTOR, 1)] == ["text", "photo"]
    await fake.wait_message(SECRETARY, contains="学校门口的路灯坏了", timeout=WAIT)


# --------------------------------------------------------------------------- handling

async def test_ask_for_more_information_and_the_resident_adds_it(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    secretary, _, _ = leaders(fake)
    await seed(bot, ZHANG, "桥头的护栏断了")
    card = await fake.wait_message(SECRETARY, contains="📥 新问题", timeout=WAIT)

    secretary.press(card, "❓ 要求补充")
    await fake.wait_message(SECRETARY, contains="请输入需要群众补充的内容（问题 #1）")
    secretary.send("是哪座桥？能拍张照片吗？")
    await fake.wait_message(SECRETARY, contains="已请群众补充信息（问题 #1）")
    await status_is(bot, 1, "need_info")

    asked = await fake.wait_message(ZHANG, contains="书记需要您补充", timeout=WAIT)
    assert asked.text == "关于问题 #1，书记需要您补充：\n是哪座桥？能拍张照片吗？"
    zhang.press(asked, "✍️ 补充信息")
    await fake.wait_message(ZHANG, contains="请补充信息")
    zhang.send("村东头的石桥")
    await fake.wait_message(ZHANG, contains="已记录 1 条")
    zhang.send_photo()
    collected = await fake.wait_message(ZHANG, contains="已记录 2 条", timeout=WAIT)
    zhang.press(collected, "📨 发送")
    await fake.wait_message(ZHANG, contains="已把补充信息转给书记（问题 #1）", timeout=WAIT)

    added = await fake.wait_message(SECRETARY, contains="✍️ 群众补充了信息", timeout=WAIT)
    assert "桥头的护栏断了" in added.text
    await copies(fake, SECRETARY, 1)
    await status_is(bot, 1, "accepted")  # asking for more counts as taking it on
    assert [item.text for side, item in await svc(bot).items(SYSTEM_ACTOR, 1) if side == "resident"] == [
        "桥头的护栏断了", "村东头的石桥", None]


async def test_transfer_to_erlang_with_a_reason(bot: BotRunner, fake: FakeBotApi) -> None:
    await resident(bot, fake, ZHANG, "老张")
    secretary, _, erlang = leaders(fake)
    await seed(bot, ZHANG, "二郎村那边的水渠堵了，淹了我家地")
    card = await fake.wait_message(SECRETARY, contains="📥 新问题", timeout=WAIT)

    secretary.press(card, "↪️ 转交")
    targets = await fake.wait_message(SECRETARY, contains="把问题 #1 转交给：", timeout=WAIT)
    assert targets.button_texts == ["龙驹寨街道党工委", "二郎村党支部"]
    secretary.press(targets, "二郎村党支部")
    await fake.wait_message(SECRETARY, contains="请写明转交问题 #1 的原因", timeout=WAIT)
    secretary.send("水渠在二郎村地界")
    await fake.wait_message(SECRETARY, contains="问题 #1 已转交给「二郎村党支部」。", timeout=WAIT)

    moved = await fake.wait_message(ERLANG_SECRETARY, contains="↪️ 转交来的问题（原因：水渠在二郎村地界）", timeout=WAIT)
    assert "二郎村那边的水渠堵了" in moved.text and "提交人：老张\n" in moved.text
    told = await fake.wait_message(ZHANG, contains="已转交", timeout=WAIT)
    assert told.text == "您反映的问题 #1 已转交给「二郎村党支部」办理。"

    # The sanyi secretary's old card no longer works; the erlang secretary's does.
    before = await ticket_state(bot)
    assert await alert(fake, secretary.press(card, "✅ 受理")) == NOT_ALLOWED
    assert await ticket_state(bot) == before
    erlang.press(moved, "✅ 受理")
    await fake.wait_message(ERLANG_SECRETARY, contains="已受理问题 #1，已通知群众。", timeout=WAIT)
    accepted = await fake.wait_message(ZHANG, contains="受理", timeout=WAIT)
    assert accepted.text == "您反映的问题 #1 已由「二郎村党支部」受理。"
    history = [(e.actor_id, e.action) for e in await svc(bot).events(SYSTEM_ACTOR, 1)]
    assert history == [(ZHANG, "submitted"), (SECRETARY, "transferred"), (ERLANG_SECRETARY, "accepted")]


async def test_escalation_with_the_settable_clock(bot: BotRunner, fake: FakeBotApi, clock: Any) -> None:
    await resident(bot, fake, ZHANG, "老张")
    secretary, organizer, _ = leaders(fake)
    ticket = await seed(bot, ZHANG, "村口路灯坏了一个月了")
    card = await fake.wait_message(SECRETARY, contains="📥 新问题", timeout=WAIT)

    secretary.send("/inbox")
    inbox = await fake.wait_message(SECRETARY, contains="待办问题", timeout=WAIT)
    assert inbox.text == "待办问题 1 个：新 1 · 超期 0 · 指派给我 0"
    assert inbox.button_texts == ["#1 基础设施 · 待受理"]

    clock.set(ticket.accept_due + timedelta(minutes=5))  # the jump runs the periodic jobs at once
    escalated = await fake.wait_message(ORGANIZER, contains="⚠️ 下级超期未受理的问题（上报第 1 级）", timeout=WAIT)
    assert "村口路灯坏了一个月了" in escalated.text and "提交人：老张\n" in escalated.text
    await fake.wait_message(SECRETARY, contains="⚠️ 问题 #1 已超过受理期限，已上报上级（第 1 级）。", timeout=WAIT)
    assert (await svc(bot).get(SYSTEM_ACTOR, 1)).escalation == 1

    secretary.send("/inbox")
    inbox = await fake.wait_message(SECRETARY, contains="待办问题", timeout=WAIT)
    assert inbox.text == "待办问题 1 个：新 1 · 超期 1 · 指派给我 0"
    assert inbox.button_texts == ["#1 ⚠️基础设施 · 待受理"]
    secretary.press(inbox, "#1 ⚠️基础设施 · 待受理")
    view = await fake.wait_message(SECRETARY, contains="办理记录：", timeout=WAIT)
    assert "⚠️ 已超期上报 1 级" in view.text and "超期，已上报上级" in view.text

    # The organizer above acts from the escalation message; the secretary is told who did.
    organizer.press(escalated, "✅ 受理")
    await fake.wait_message(ORGANIZER, contains="已受理问题 #1", timeout=WAIT)
    secretary.press(card, "✅ 受理")
    already = await fake.wait_message(SECRETARY, contains="已由 李明 处理过", timeout=WAIT)
    assert already.text == "问题 #1 已由 李明 处理过，当前状态：已受理。"
    # Running the jobs again changes nothing.
    before = await ticket_state(bot)
    await schedules.run_all(bot.app)
    assert await ticket_state(bot) == before


async def test_a_reopened_ticket_with_a_preset_and_with_a_typed_reason(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    li = await resident(bot, fake, LI, "小李")
    leaders(fake)
    for person, what in ((ZHANG, "村口路灯坏了"), (LI, "水管漏水")):
        ticket = await seed(bot, person, what)
        await svc(bot).accept(SECRETARY, ticket.id)
        await svc(bot).answer(SECRETARY, ticket.id, [Item("text", "已经修好了")])

    answer = await fake.wait_message(ZHANG, contains="有答复了", timeout=WAIT)
    zhang.press(answer, "🙁 不满意")
    reasons = await fake.wait_message(ZHANG, contains="请说说哪里不满意", timeout=WAIT)
    assert reasons.button_texts == ["问题没有解决", "答复说得不清楚", "办得太慢"]
    zhang.press(reasons, "问题没有解决")
    await fake.wait_message(ZHANG, contains="已告诉书记您不满意，问题 #1 会重新办理。", timeout=WAIT)
    reopened = await fake.wait_message(SECRETARY, contains="🙁 群众对答复不满意，问题 #1 重新办理", timeout=WAIT)
    assert reopened.text.startswith("🙁 群众对答复不满意，问题 #1 重新办理（原因：问题没有解决）")
    assert "✅ 受理" not in reopened.button_texts and "💬 答复" in reopened.button_texts  # accepted before

    answer = await fake.wait_message(LI, contains="有答复了", timeout=WAIT)
    li.press(answer, "🙁 不满意")
    await fake.wait_message(LI, contains="请说说哪里不满意", timeout=WAIT)
    li.send("还在漏，根本没人来看过")
    await fake.wait_message(LI, contains="已告诉书记您不满意，问题 #2 会重新办理。", timeout=WAIT)
    await fake.wait_message(SECRETARY, contains="问题 #2 重新办理（原因：还在漏，根本没人来看过）", timeout=WAIT)

    for ticket_id in (1, 2):
        assert (await svc(bot).get(SYSTEM_ACTOR, ticket_id)).status == "reopened"
    reasons_given = [r[0] for r in await bot.core.db.fetchall("SELECT rating_reason FROM tickets ORDER BY id")]
    assert reasons_given == ["问题没有解决", "还在漏，根本没人来看过"]


async def test_my_lists_tickets_with_status_and_age_and_opens_the_history(
        bot: BotRunner, fake: FakeBotApi, clock: Any) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    li = await resident(bot, fake, LI, "小李")
    leaders(fake)
    await seed(bot, ZHANG, "村口路灯坏了")
    clock.advance(timedelta(hours=1))
    await svc(bot).accept(SECRETARY, 1)
    clock.advance(timedelta(days=2))
    await seed(bot, ZHANG, "垃圾没人收", category="sanitation")

    zhang.send("/my")
    mine = await fake.wait_message(ZHANG, contains="您反映的问题（点开查看详情）：", timeout=WAIT)
    assert mine.button_texts == ["#2 环境卫生 · 待受理 · 今天", "#1 基础设施 · 已受理 · 2天前"]
    zhang.press(mine, "#1 基础设施 · 已受理 · 2天前")
    view = await fake.wait_message(ZHANG, contains="办理记录：", timeout=WAIT)
    assert view.text == ("问题 #1（基础设施）· 已受理\n群众：村口路灯坏了\n办理记录：\n"
                         "· 11月27日（周五）上午9:00 老张 提交\n· 11月27日（周五）上午10:00 王建国 受理")
    assert view.button_texts == ["撤回这个问题"]

    # Withdraw it from there (asked once more).
    zhang.press(view, "撤回这个问题")
    sure = await fake.wait_message(ZHANG, contains="确定要撤回问题 #1 吗？", timeout=WAIT)
    zhang.press(sure, "确定撤回")
    await fake.wait_message(ZHANG, contains="问题 #1 已撤回。", timeout=WAIT)
    await status_is(bot, 1, "withdrawn")

    # Another resident sees none of it.
    li.send("/my")
    assert (await fake.wait_message(LI, timeout=WAIT)).text == "您还没有反映过问题。发送 /submit 开始。"
    assert await alert(fake, li.press_data(1, "tv:2")) == NOT_ALLOWED


# --------------------------------------------------------------------------- the echo wall

async def test_wall_shows_answered_public_problems_newest_first_masked_and_paged(
        bot: BotRunner, fake: FakeBotApi, clock: Any) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    await resident(bot, fake, LI, "小李")
    leaders(fake)
    for n in range(6):
        ticket = await seed(bot, ZHANG if n % 2 else LI, f"第{n + 1}个问题，联系电话1391234567{n + 1}")
        await svc(bot).answer(SECRETARY, ticket.id, [Item("text", f"第{n + 1}个答复")])
        clock.advance(timedelta(minutes=10))
    hidden = await seed(bot, ZHANG, "不要公开的问题", public=False)
    await svc(bot).answer(SECRETARY, hidden.id, [Item("text", "私下的答复")])
    await seed(bot, LI, "还没有答复的问题")

    zhang.send("/wall")
    page = await fake.wait_message(ZHANG, contains="回音壁 · 第 1 页", timeout=WAIT)
    assert page.text.startswith(
        "「三义村党支部」回音壁 · 第 1 页\n\n【回音壁】#6 基础设施\n问题：第6个问题，联系电话139****5676\n")
    shown = [f"#{n}" for n in range(1, 10) if f"【回音壁】#{n} " in page.text]
    assert shown == ["#2", "#3", "#4", "#5", "#6"]
    assert [page.text.index(f"【回音壁】{n} ") for n in ("#6", "#5", "#4", "#3", "#2")] == sorted(
        page.text.index(f"【回音壁】{n} ") for n in ("#6", "#5", "#4", "#3", "#2"))
    assert "13912345676" not in page.text and "老张" not in page.text and "小李" not in page.text
    assert "不要公开" not in page.text and "还没有答复" not in page.text
    assert page.button_texts == ["较早 ➡️"]

    zhang.press(page, "较早 ➡️")
    older = await edited(fake, page, "第 2 页")
    assert "【回音壁】#1 基础设施\n问题：第1个问题，联系电话139****5671\n答复：第1个答复" in older.text
    assert "#2 " not in older.text
    assert older.button_texts == ["⬅️ 较新"]


async def test_bindwall_posts_answered_tickets_and_edits_them_after_a_reopen(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    secretary, _, _ = leaders(fake)
    group = fake.group(-1001001, "三义村回音壁", "supergroup")
    group.add_member(secretary, "administrator")
    group.add_member(zhang)
    group.add_bot(secretary)

    # A plain member cannot bind it.
    zhang.send("/bindwall", chat=group)
    assert (await group.wait_message(timeout=WAIT)).text == "只有那个群或频道的管理员才能绑定。"
    secretary.send("/bindwall", chat=group)
    pick = await group.wait_message(contains="把「三义村回音壁」绑定为哪个组织的回音壁？", timeout=WAIT)
    assert pick.button_texts == ["三义村党支部"]
    asked = {(c.params["user_id"], c.result["status"]) for c in fake.calls_to("getChatMember") if c.ok}
    assert {(fake.bot_id, "administrator"), (SECRETARY, "administrator"), (ZHANG, "member")} <= asked
    secretary.press(pick, "三义村党支部")
    await edited(fake, pick, "好了：「三义村党支部」答复的问题（群众同意公开的）会发到「三义村回音壁」。")
    bound = await bot.core.db.fetchone("SELECT chat_id, title, bound_by FROM wall_chats")
    assert tuple(bound) == (group.id, "三义村回音壁", SECRETARY)

    # An answered public ticket is posted there, masked and without names.
    ticket = await seed(bot, ZHANG, "村口路灯坏了，有事打13812345678")
    await svc(bot).answer(SECRETARY, ticket.id, [Item("text", "已修好")])
    post = await group.wait_message(contains="【回音壁】#1", timeout=WAIT)
    assert post.text.startswith(
        "【回音壁】#1 基础设施\n问题：村口路灯坏了，有事打138****5678\n答复：已修好\n反映于 11月27日")
    assert "老张" not in post.text
    private = await seed(bot, ZHANG, "这个别公开", public=False)
    await svc(bot).answer(SECRETARY, private.id, [Item("text", "好的")])

    # 不满意: the same post is edited.
    answer = await fake.wait_message(ZHANG, contains="问题 #1 有答复了", timeout=WAIT)
    zhang.press(answer, "🙁 不满意")
    reasons = await fake.wait_message(ZHANG, contains="请说说哪里不满意", timeout=WAIT)
    zhang.press(reasons, "办得太慢")
    reopened = await edited(fake, post, "（群众不满意，正在重新办理）")
    assert reopened.text.endswith("（群众不满意，正在重新办理）")
    edits = [c for c in fake.calls_to("editMessageText") if c.ok and "【回音壁】" in c.params.get("text", "")]
    assert [(c.chat_id, c.params["message_id"]) for c in edits] == [(group.id, post.message_id)]

    await svc(bot).answer(SECRETARY, 1, [Item("text", "换了新灯，已经亮了")])
    again = await edited(fake, reopened, "换了新灯，已经亮了")
    assert "重新办理" not in again.text
    assert [m.message_id for m in group.messages() if "【回音壁】" in m.text] == [post.message_id]


async def test_bindwall_needs_the_bot_to_be_an_admin(bot: BotRunner, fake: FakeBotApi) -> None:
    secretary, _, _ = leaders(fake)
    group = fake.group(-1001002, "三义村闲聊群", "group")
    group.add_member(secretary, "creator")
    group.add_bot(secretary, status="member")
    secretary.send("/bindwall", chat=group)
    assert (await group.wait_message(timeout=WAIT)).text == "请先把机器人设为那个群或频道的管理员。"
    assert await count(bot, "wall_chats") == 0


# --------------------------------------------------------------------------- bad input and abuse

async def test_text_over_4096_characters_is_refused_and_nothing_is_stored(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    await start_submit(fake, zhang)
    zhang.send("长" * 5000)
    refused = await fake.wait_message(ZHANG, timeout=WAIT)
    assert refused.text == "内容太长了（5000 字），最多 4096 字。请分几条发送。"
    state = await bot.core.flows.get(ZHANG)
    assert state is not None and state.data["items"] == []

    zhang.send("/cancel")
    await fake.wait_message(ZHANG, contains="已取消", timeout=WAIT)
    zhang.send("长" * 4097)  # straight in: no draft starts either
    assert (await fake.wait_message(ZHANG, timeout=WAIT)).text == "内容太长了（4097 字），最多 4096 字。请分几条发送。"
    assert await bot.core.flows.get(ZHANG) is None
    assert await count(bot) == 0


async def test_stickers_and_contacts_are_not_problem_content(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    await start_submit(fake, zhang)
    zhang.send_sticker()
    assert (await fake.wait_message(ZHANG, timeout=WAIT)).text == UNSUPPORTED
    zhang.send_contact("+8613800000000", "老王")
    assert (await fake.wait_message(ZHANG, timeout=WAIT)).text == UNSUPPORTED
    state = await bot.core.flows.get(ZHANG)
    assert state is not None and state.data["items"] == []
    zhang.send("这才是问题")
    await fake.wait_message(ZHANG, contains="已收到 1 条内容", timeout=WAIT)
    assert await count(bot) == 0


async def test_an_empty_submission_cannot_be_confirmed(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    describe = await start_submit(fake, zhang)
    state = await bot.core.flows.get(ZHANG)
    assert state is not None
    draft = state.data["draft"]
    assert await alert(fake, zhang.press_data(describe.message_id, f"sb:{draft}:ok")) == EMPTY
    assert await alert(fake, zhang.press_data(describe.message_id, f"sb:{draft}:c:0")) == EMPTY
    assert await alert(fake, zhang.press_data(describe.message_id, "sb:000000:ok")) == SUBMIT_STALE
    assert await count(bot) == 0 and await count(bot, "outbox") == 0


async def test_more_than_five_submissions_an_hour(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    leaders(fake)
    for n in range(4):
        await seed(bot, ZHANG, f"第{n + 1}个问题")
    # A draft is ready when the fifth one arrives from elsewhere: confirming it is refused.
    await start_submit(fake, zhang)
    zhang.send("第六个问题")
    categories = await fake.wait_message(ZHANG, contains="已收到 1 条内容", timeout=WAIT)
    zhang.press(categories, "其他")
    confirm = await fake.wait_text(ZHANG, "请确认")
    await seed(bot, ZHANG, "第5个问题")
    assert await alert(fake, zhang.press(confirm, "✅ 提交")) == "您一小时内已经提交了 5 个问题，请稍后再提交。"
    assert await count(bot) == 5
    await no_flow(bot, ZHANG)

    zhang.send("/submit")
    assert (await fake.wait_message(ZHANG, timeout=WAIT)).text == "您一小时内已经提交了 5 个问题，请稍后再提交。"
    assert await count(bot) == 5 and await bot.core.flows.get(ZHANG) is None


async def test_the_same_text_twice_in_a_day(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    leaders(fake)
    await submit_in_chat(fake, zhang, "村口路灯坏了")
    await fake.wait_text(ZHANG, "已提交！问题编号 #1")

    zhang.send("村口 路灯坏了")
    categories = await fake.wait_message(ZHANG, contains="已收到 1 条内容", timeout=WAIT)
    zhang.press(categories, "其他")
    confirm = await fake.wait_text(ZHANG, "类别：其他")
    assert await alert(fake, zhang.press(confirm, "✅ 提交")) == "您今天已经提交过相同的问题（编号 #1），不用重复提交。"
    assert await count(bot) == 1
    await no_flow(bot, ZHANG)  # nothing to fix in that draft


async def test_a_blocked_person_cannot_submit_until_unblocked(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    secretary, _, _ = leaders(fake)
    await seed(bot, ZHANG, "骂人的话", anonymous=True)
    card = await fake.wait_message(SECRETARY, contains="📥 新问题", timeout=WAIT)
    secretary.press(card, "📜 详情和记录")
    view = await fake.wait_message(SECRETARY, contains="办理记录：", timeout=WAIT)
    secretary.press(view, "⛔ 暂停此人提交")
    await fake.wait_message(SECRETARY, contains="已暂停问题 #1 提交人的提交（可在 /blocked 恢复）。", timeout=WAIT)

    zhang.send("/submit")
    assert (await fake.wait_message(ZHANG, timeout=WAIT)).text == BLOCKED
    assert await bot.core.flows.get(ZHANG) is None

    secretary.send("/blocked")
    blocked = await fake.wait_message(SECRETARY, contains="被暂停提交的人", timeout=WAIT)
    assert blocked.button_texts == ["问题 #1 的提交人 · 三义村党支部 · 11月27日起"]  # no name: anonymous
    secretary.press(blocked, blocked.button_texts[0])
    await fake.wait_message(SECRETARY, contains="已取消问题 #1 对提交人的暂停。", timeout=WAIT)
    zhang.send("/submit")
    await fake.wait_message(ZHANG, contains=DESCRIBE, timeout=WAIT)
    actions = [e.action for e in await svc(bot).events(SYSTEM_ACTOR, 1)]
    assert actions == ["submitted", "blocked_submitter", "unblocked_submitter"]


async def test_a_blocked_person_typing_a_problem_is_told_they_are_blocked(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    leaders(fake)
    await seed(bot, ZHANG, "第一个问题")
    await svc(bot).block_submitter(SECRETARY, 1)
    zhang.send("又一个问题")
    assert (await fake.wait_message(ZHANG, timeout=WAIT)).text == BLOCKED


async def test_a_forged_accept_by_a_resident_changes_nothing(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    li = await resident(bot, fake, LI, "小李")
    leaders(fake)
    await seed(bot, ZHANG, "村口路灯坏了")
    before = await ticket_state(bot)
    assert await alert(fake, zhang.press_data(1, "tk:a:1")) == NOT_ALLOWED
    assert await alert(fake, zhang.press_data(1, "tk:z:1")) == NOT_ALLOWED
    assert await alert(fake, li.press_data(1, "tw:1:y")) == NOT_ALLOWED
    assert await alert(fake, li.press_data(1, "tn:1")) == NOT_ALLOWED
    assert await alert(fake, li.press_data(1, "tk:a:1")) == NOT_ALLOWED
    assert await ticket_state(bot) == before


async def test_a_stale_draft_button_after_cancel(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    await start_submit(fake, zhang)
    zhang.send("村口路灯坏了")
    categories = await fake.wait_message(ZHANG, contains="已收到 1 条内容", timeout=WAIT)
    zhang.send("/cancel")  # the draft holds what he typed: 取消 asks first (tests/test_e2e_prompts.py)
    ask = await fake.wait_message(ZHANG, contains="要放弃吗", timeout=WAIT)
    zhang.press(ask, "🗑 放弃这段内容")
    await edited(fake, ask, "已放弃")
    assert await alert(fake, zhang.press(categories, "基础设施")) == SUBMIT_STALE
    # A new draft does not revive the old buttons.
    await start_submit(fake, zhang)
    assert await alert(fake, zhang.press(categories, "取消")) == SUBMIT_STALE
    assert await count(bot) == 0
    state = await bot.core.flows.get(ZHANG)
    assert state is not None and state.data["items"] == [] and state.data["category"] is None
