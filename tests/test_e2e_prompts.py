"""End to end (issue 12, "A typed answer goes where the screen said it would"): every prompt that
invites typing is answered by typing, and the answer lands where the screen said; several open
questions bring a one-tap chooser (kept across a restart); 取消 never drops typed content without
asking; people who have not joined are told how to join.

The sample tree (tests/orgtree.py CHAT_TREE): 三义村党支部 with secretary 王建国 (1001), 二郎村党支部
with secretary 赵强 (1003), the township organizer 李明 (1002). Each test adds the residents and
members it needs. `PROMPT_TESTS` maps every catalog text that invites typing to the test that types
an answer to it; `test_every_prompt_that_invites_typing_has_a_typed_answer_test` fails for a new one.
"""

from __future__ import annotations

import re
from pathlib import Path

from orgtree import ERLANG_SECRETARY, SECRETARY
from orgtree import TOWN_ORG as ORGANIZER
from test_e2e_meetings import add_member, local, schedule
from test_e2e_tickets_flow import alert, count, edited, leaders, no_flow, resident, seed, status_is, svc

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.actors import SYSTEM_ACTOR
from bot.callbacks import MEETING_FLOW, PROMPT_CANCEL, PROMPT_PICK, CancelChoice, FlowAction
from bot.i18n import load_catalog
from bot.services.tickets import Item
from conftest import BotRunner

ZHANG, LI = 2001, 2002
WAIT = 15.0  # replies to one chat are paced at about one a second
EMPTY = "还没有内容。请先用文字、语音、照片或位置说明问题。"
JOIN = "您还没有加入。请向本村（社区）的书记要加入二维码或加入链接，扫码或点开链接后点「开始」，就加入了。"
PICK_STALE = "这个选择已经用过或过期了，没有做任何改动。"
PICK_GONE = "这一项已经不用回答了，没有做任何改动。请选别的一项。"
CANCEL_STALE = "这个按钮已经过期了，没有做任何改动。"
NEW_PROBLEM = "作为新问题提交"
HERE = Path(__file__).resolve().parent
LOCALES = HERE.parent / "locales"


async def said(fake: FakeBotApi, chat_id: int, contains: str) -> SentMessage:
    return await fake.wait_message(chat_id, contains=contains, timeout=WAIT)


async def resident_items(bot: BotRunner, ticket_id: int) -> list[tuple[str, str | None]]:
    return [(item.kind, item.text) for side, item in await svc(bot).items(SYSTEM_ACTOR, ticket_id)
            if side == "resident"]


async def state_of(bot: BotRunner) -> list[list[tuple[object, ...]]]:
    """Everything a chooser's tap could change."""
    db = bot.core.db
    return [[tuple(r) for r in await db.fetchall(f"SELECT * FROM {table} ORDER BY 1")]
            for table in ("tickets", "ticket_items", "ticket_events", "meeting_attendees", "flows", "kept_messages")]


# --------------------------------------------------------------------------- leave

async def test_a_typed_leave_reason_is_recorded_as_leave(bot: BotRunner, fake: FakeBotApi) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    li = await add_member(bot, fake, 2102, "李四")
    zhang = await add_member(bot, fake, 2101, "张三")
    meeting_id = await schedule(bot, local(2026, 12, 5, 15, 0))

    # 📝 请假, then simply type the reason.
    notice = await said(fake, 2102, "📢 会议通知")
    li.press(notice, "📝 请假")
    await said(fake, 2102, "请选一个请假原因，或者直接打字说明：")
    li.send("孙子满月酒")
    await said(fake, 2102, "已请假：孙子满月酒。")

    # ✏️ 其他原因（自己输入）, then type it.
    notice = await said(fake, 2101, "📢 会议通知")
    zhang.press(notice, "📝 请假")
    reasons = await said(fake, 2101, "请选一个请假原因")
    zhang.press(reasons, "✏️ 其他原因（自己输入）")
    await edited(fake, reasons, "请直接输入请假原因：")
    zhang.send("在县城看病")
    await said(fake, 2101, "已请假：在县城看病。")

    # Neither became a problem-wall draft; the roster shows both on leave, not 未回复.
    assert await count(bot) == 0
    await no_flow(bot, 2101)
    await no_flow(bot, 2102)
    roster = await bot.core.meetings.roster(SECRETARY, meeting_id)
    assert {(a.person_id, a.leave_reason) for a in roster.with_answer("leave")} == {
        (2101, "在县城看病"), (2102, "孙子满月酒")}
    secretary.send("/meetings")
    listing = await said(fake, SECRETARY, "我的会议")
    secretary.press(listing, listing.buttons[0][0])
    card = await said(fake, SECRETARY, "📅 会议详情")
    secretary.press(card, "👥 参会名单")
    shown = await fake.wait_text(SECRETARY, "📝 请假（2）", timeout=WAIT)
    assert "孙子满月酒" in shown.text and "在县城看病" in shown.text
    assert not [line for line in shown.text.split("\n") if line.startswith("❔") and "李四" in line]
    # The typed reason is the answer: a later text is a problem again, not a second reason.
    li.send("村口的路灯坏了")
    await said(fake, 2102, "已收到 1 条内容")


# --------------------------------------------------------------------------- tickets

async def test_a_reply_to_a_request_for_information_is_added_to_the_ticket(
        bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    secretary, _, _ = leaders(fake)
    await seed(bot, ZHANG, "桥头的护栏断了")
    card = await said(fake, SECRETARY, "📥 新问题")
    secretary.press(card, "❓ 要求补充")
    await said(fake, SECRETARY, "请输入需要群众补充的内容（问题 #1）：")
    secretary.send("是哪座桥？")
    await said(fake, SECRETARY, "已请群众补充信息（问题 #1）。")

    asked = await said(fake, ZHANG, "关于问题 #1，书记需要您补充：")
    assert asked.button_texts == ["✍️ 补充信息"]
    zhang.send_sticker()  # answers nothing
    await said(fake, ZHANG, "暂不支持这类消息")
    zhang.send("村东头的石桥")  # just replies, without the button
    await said(fake, ZHANG, "已把补充信息转给书记（问题 #1）。")
    await said(fake, SECRETARY, "✍️ 群众补充了信息")
    await status_is(bot, 1, "accepted")
    assert await resident_items(bot, 1) == [("text", "桥头的护栏断了"), ("text", "村东头的石桥")]
    assert await count(bot) == 1
    await no_flow(bot, ZHANG)

    # Asked again: a photo is an answer too.
    await svc(bot).ask_info(SECRETARY, 1, "能拍张照片吗？")
    await said(fake, ZHANG, "能拍张照片吗？")
    zhang.send_photo()
    await said(fake, ZHANG, "已把补充信息转给书记（问题 #1）。")
    await said(fake, SECRETARY, "✍️ 群众补充了信息")
    assert [kind for kind, _ in await resident_items(bot, 1)] == ["text", "text", "photo"]
    assert await count(bot) == 1


async def test_a_typed_unsatisfied_reason_reopens_the_ticket(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    leaders(fake)
    ticket = await seed(bot, ZHANG, "村口路灯坏了")
    await svc(bot).answer(SECRETARY, ticket.id, [Item("text", "已经修好了")])
    answer = await said(fake, ZHANG, "有答复了")
    zhang.press(answer, "🙁 不满意")
    await said(fake, ZHANG, "请说说哪里不满意（可以直接点下面的原因，也可以打字说明）：")
    zhang.send("灯还是不亮")
    await said(fake, ZHANG, "已告诉书记您不满意，问题 #1 会重新办理。")
    await said(fake, SECRETARY, "问题 #1 重新办理（原因：灯还是不亮）")
    await status_is(bot, 1, "reopened")
    assert await bot.core.db.fetchval("SELECT rating_reason FROM tickets WHERE id = 1") == "灯还是不亮"
    assert await count(bot) == 1


async def test_a_secretary_composes_an_answer_by_typing(bot: BotRunner, fake: FakeBotApi) -> None:
    await resident(bot, fake, ZHANG, "老张")
    secretary, _, _ = leaders(fake)
    await seed(bot, ZHANG, "村口路灯坏了")
    card = await said(fake, SECRETARY, "📥 新问题")
    secretary.press(card, "💬 答复")
    prompt = await said(fake, SECRETARY, "请输入对问题 #1 的答复：")
    assert await alert(fake, secretary.press(prompt, "📨 发送")) == EMPTY
    secretary.send("已经换了新灯泡")
    await said(fake, SECRETARY, "已记录 1 条。可以继续补充，或点「发送」。")
    secretary.send_voice()
    collected = await said(fake, SECRETARY, "已记录 2 条。")
    secretary.press(collected, "📨 发送")
    preview = await said(fake, SECRETARY, "回音壁上会这样显示")
    secretary.press(preview, "✅ 确定发送")
    await said(fake, SECRETARY, "答复已发给群众（问题 #1）")
    answer = await said(fake, ZHANG, "有答复了")
    assert "已经换了新灯泡" in answer.text
    await status_is(bot, 1, "answered")


async def test_typed_decline_and_transfer_reasons(bot: BotRunner, fake: FakeBotApi) -> None:
    await resident(bot, fake, ZHANG, "老张")
    secretary, _, _ = leaders(fake)
    await seed(bot, ZHANG, "二郎村那边的水渠堵了")
    first = await said(fake, SECRETARY, "二郎村那边的水渠堵了")
    await seed(bot, ZHANG, "邻居家的狗半夜叫")
    second = await said(fake, SECRETARY, "邻居家的狗半夜叫")

    secretary.press(first, "↪️ 转交")
    targets = await said(fake, SECRETARY, "把问题 #1 转交给：")
    secretary.press(targets, "二郎村党支部")
    await said(fake, SECRETARY, "请写明转交问题 #1 的原因：")
    secretary.send_photo()
    await said(fake, SECRETARY, "请用文字输入。")
    secretary.send("水渠在二郎村地界")
    await said(fake, SECRETARY, "问题 #1 已转交给「二郎村党支部」。")
    await said(fake, ERLANG_SECRETARY, "↪️ 转交来的问题（原因：水渠在二郎村地界）")

    secretary.press(second, "🚫 不属于职责")
    await said(fake, SECRETARY, "请写明问题 #2 不属于本支部职责的原因")
    secretary.send("邻里纠纷请找调解委员会")
    told = await said(fake, ZHANG, "不属于本支部职责范围")
    assert told.text.endswith("说明：邻里纠纷请找调解委员会")
    await status_is(bot, 2, "declined")
    assert await count(bot) == 2


# --------------------------------------------------------------------------- meetings being set up

async def test_meeting_steps_that_invite_typing_take_typed_answers(bot: BotRunner, fake: FakeBotApi) -> None:
    """Long because it walks every typed step of scheduling, editing and cancelling a meeting."""
    organizer = fake.user(ORGANIZER, first_name="李明")
    organizer.send("/newmeeting")
    step = await said(fake, ORGANIZER, "请选择会议类型")
    organizer.press(step, "党课")
    await edited(fake, step, "请选择组织")
    organizer.send("😀" * 4000)  # no such org, and longer than a reply may be: the answer quotes its start
    unknown = await said(fake, ORGANIZER, "没有找到组织")
    assert len(unknown.text) < 100
    organizer.send("erlang")  # the org typed by its code
    await said(fake, ORGANIZER, "请选择开会日期")
    organizer.send("12月6日")  # a day typed: the hour is asked next
    await said(fake, ORGANIZER, "几点开会？也可以直接打字")
    organizer.send("下午3点半")
    await said(fake, ORGANIZER, "开多长时间？")
    organizer.send("一会儿")
    await said(fake, ORGANIZER, "没看懂开多长时间")
    organizer.send("1个半小时")  # the length typed
    await said(fake, ORGANIZER, "请输入开会地点")
    organizer.send("   ")
    await said(fake, ORGANIZER, "内容不能是空的，请重新输入。")
    organizer.send("村委会")
    await said(fake, ORGANIZER, "请输入党课题目：")
    organizer.send("学习新党章")
    await said(fake, ORGANIZER, "请输入党课主讲人的名字")
    organizer.send("赵老师")
    confirm = await said(fake, ORGANIZER, "主讲：赵老师")
    assert "12月6日（周日）下午3:30—5:00" in confirm.text and "地点：村委会" in confirm.text
    organizer.press(confirm, "✅ 确认，发通知")
    await edited(fake, confirm, "会议已安排")
    meeting_id = await bot.core.db.fetchval("SELECT MAX(id) FROM meetings")

    # Edit the place and the topic by typing, with a typed reason; then the hour.
    organizer.send("/meetings")
    listing = await said(fake, ORGANIZER, "我的会议")
    organizer.press(listing, listing.buttons[0][0])
    card = await said(fake, ORGANIZER, "📅 会议详情")
    organizer.press(card, "✏️ 修改")
    menu = await edited(fake, card, "要修改什么")
    organizer.press(menu, "🏠 地点")
    await said(fake, ORGANIZER, "请输入新的地点：")
    organizer.send("党员活动室")
    await said(fake, ORGANIZER, "请输入修改原因")
    organizer.send("村委会在装修")
    card = await said(fake, ORGANIZER, "✅ 已修改")
    organizer.press(card, "✏️ 修改")
    menu = await edited(fake, card, "要修改什么")
    organizer.press(menu, "📝 议题")
    await said(fake, ORGANIZER, "请输入新的议题：")
    organizer.send("学习党章第三章")
    ask = await said(fake, ORGANIZER, "请输入修改原因")
    organizer.press(ask, "不写原因")
    card = await edited(fake, ask, "学习党章第三章")
    organizer.press(card, "✏️ 修改")
    menu = await edited(fake, card, "要修改什么")
    organizer.press(menu, "🕒 时间")
    step = await said(fake, ORGANIZER, "请选择新的日期")
    organizer.press(step, MEETING_FLOW(FlowAction.DAY, 20261207))
    await edited(fake, step, "几点开会")
    organizer.send("上午9点")
    ask = await said(fake, ORGANIZER, "请输入修改原因")
    organizer.press(ask, "不写原因")
    card = await edited(fake, ask, "12月7日")
    meeting = await bot.core.meetings.view(ORGANIZER, meeting_id)
    assert (meeting.meeting.place, meeting.meeting.topic) == ("党员活动室", "学习党章第三章")

    # Cancel with a typed reason.
    organizer.press(card, "🚫 取消会议")
    await said(fake, ORGANIZER, "请选择或输入取消原因")
    organizer.send("主讲人临时有事")
    await said(fake, ORGANIZER, "已取消「学习党章第三章」")
    assert await bot.core.db.fetchval("SELECT cancel_reason FROM meetings WHERE id = ?", (meeting_id,)) == \
        "主讲人临时有事"


# --------------------------------------------------------------------------- several open questions

async def test_several_open_questions_ask_which_one_and_each_choice_lands_right(
        bot: BotRunner, fake: FakeBotApi) -> None:
    """Long because it takes one person through every kind of choice, a restart in the middle."""
    chen = await add_member(bot, fake, 2301, "陈红")
    leaders(fake)
    lamp = (await seed(bot, 2301, "村口路灯坏了")).id
    ditch = (await seed(bot, 2301, "水渠堵了")).id
    for ticket_id in (lamp, ditch):
        await svc(bot).ask_info(SECRETARY, ticket_id, "具体在哪里？")
    await schedule(bot, local(2026, 12, 5, 15, 0))
    notice = await said(fake, 2301, "📢 会议通知")
    chen.press(notice, "📝 请假")
    await said(fake, 2301, "请选一个请假原因")

    chen.send("村东头第三根")
    chooser = await said(fake, 2301, "您刚发的「村东头第三根」是回答哪一个？请点一下：")
    assert chooser.button_texts == ["补充问题：村口路灯坏了", "补充问题：水渠堵了", "请假原因：12月5日 学习党章",
                                    NEW_PROBLEM]
    await bot.restart()  # what was typed is kept in the database
    chen.press(chooser, "补充问题：村口路灯坏了")
    await edited(fake, chooser, "好的，已选：补充问题：村口路灯坏了")
    await said(fake, 2301, "已把补充信息转给书记（问题 #1）。")
    assert await resident_items(bot, lamp) == [("text", "村口路灯坏了"), ("text", "村东头第三根")]

    chen.send("家里有事走不开")
    chooser = await said(fake, 2301, "是回答哪一个？")
    assert chooser.button_texts == ["补充问题：水渠堵了", "请假原因：12月5日 学习党章", NEW_PROBLEM]
    chen.press(chooser, "请假原因：12月5日 学习党章")
    await said(fake, 2301, "已请假：家里有事走不开。")
    assert await bot.core.db.fetchval(
        "SELECT leave_reason FROM meeting_attendees WHERE person_id = 2301") == "家里有事走不开"

    # One question left, and nothing else open: a photo goes straight to it.
    chen.send_photo()
    await said(fake, 2301, "已把补充信息转给书记（问题 #2）。")
    assert [kind for kind, _ in await resident_items(bot, ditch)] == ["text", "photo"]

    # 作为新问题提交 starts a draft with the text; more text while the draft is open is offered too.
    for ticket_id in (lamp, ditch):
        await svc(bot).ask_info(SECRETARY, ticket_id, "还有别的情况吗？")
    chen.send("村里的广播不响了")
    chooser = await said(fake, 2301, "「村里的广播不响了」是回答哪一个？")
    assert chooser.button_texts[-1] == NEW_PROBLEM
    chen.press(chooser, NEW_PROBLEM)
    await said(fake, 2301, "已收到 1 条内容")
    chen.send("喇叭也坏了")
    chooser = await said(fake, 2301, "「喇叭也坏了」是回答哪一个？")
    assert chooser.button_texts == ["补充问题：村口路灯坏了", "补充问题：水渠堵了", NEW_PROBLEM]
    chen.press(chooser, NEW_PROBLEM)
    await said(fake, 2301, "已收到 2 条内容")
    await bot.idle()  # the draft is saved after its prompt is sent
    state = await bot.core.flows.get(2301)
    assert state is not None and [i["text"] for i in state.data["items"]] == ["村里的广播不响了", "喇叭也坏了"]
    assert await count(bot) == 2


async def test_a_forged_or_stale_chooser_button_changes_nothing(bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张")
    li = await resident(bot, fake, LI, "小李")
    leaders(fake)
    lamp = (await seed(bot, ZHANG, "村口路灯坏了")).id
    ditch = (await seed(bot, ZHANG, "水渠堵了")).id
    other = (await seed(bot, LI, "水管漏水")).id
    for ticket_id in (lamp, ditch, other):
        await svc(bot).ask_info(SECRETARY, ticket_id, "具体在哪里？")
    li_question = await bot.core.db.fetchval("SELECT id FROM open_questions WHERE person_id = ?", (LI,))
    zhang.send("在桥头")
    chooser = await said(fake, ZHANG, "是回答哪一个？")
    token = str(PROMPT_PICK.parse(chooser.buttons[0][1]).kept)  # type: ignore[union-attr]
    before = await state_of(bot)

    for data in (PROMPT_PICK(token, li_question), PROMPT_PICK(token, 999999), PROMPT_PICK(token, -5)):
        assert await alert(fake, zhang.press_data(chooser.message_id, data)) == PICK_GONE
    assert await alert(fake, li.press_data(chooser.message_id, chooser.buttons[0][1] or "")) == PICK_STALE
    assert await alert(fake, zhang.press_data(chooser.message_id, PROMPT_CANCEL("abcdef", CancelChoice.DISCARD))) \
        == CANCEL_STALE
    # The lamp's ticket was answered meanwhile: its choice no longer stands.
    await svc(bot).answer(SECRETARY, lamp, [Item("text", "修好了")])
    before = await state_of(bot)
    assert await alert(fake, zhang.press(chooser, "补充问题：村口路灯坏了")) == PICK_GONE
    assert await state_of(bot) == before
    # The other choice still works, once.
    zhang.press(chooser, "补充问题：水渠堵了")
    await said(fake, ZHANG, "已把补充信息转给书记（问题 #2）。")
    assert await resident_items(bot, ditch) == [("text", "水渠堵了"), ("text", "在桥头")]
    before = await state_of(bot)
    # The chooser now shows where the text went, without buttons; its old data is stale.
    assert await alert(fake, zhang.press_data(chooser.message_id, chooser.button(NEW_PROBLEM)[1] or "")) == PICK_STALE
    assert await state_of(bot) == before
    assert await resident_items(bot, other) == [("text", "水管漏水")]


# --------------------------------------------------------------------------- 取消

async def cancel_asks(fake: FakeBotApi, user: FakeUser) -> SentMessage:
    ask = await said(fake, user.id, "您已经输入了一些内容。要放弃吗？")
    assert ask.button_texts == ["🗑 放弃这段内容", "↩️ 回到上一步"]
    return ask


async def test_cancel_with_typed_content_offers_both_choices(bot: BotRunner, fake: FakeBotApi) -> None:
    """Long because it tries each way to cancel: /cancel, the draft's 取消 and a reply's 取消."""
    zhang = await resident(bot, fake, ZHANG, "老张")
    secretary, _, _ = leaders(fake)
    zhang.send("/cancel")
    await said(fake, ZHANG, "当前没有进行中的操作。")

    zhang.send("村口路灯坏了")
    categories = await said(fake, ZHANG, "已收到 1 条内容")
    zhang.send("/cancel")
    ask = await cancel_asks(fake, zhang)
    zhang.press(ask, "↩️ 回到上一步")
    await edited(fake, ask, "刚才输入的内容都还在")
    again = await said(fake, ZHANG, "已收到 1 条内容")  # the step it was at, with its buttons
    assert again.button_texts == categories.button_texts
    await bot.idle()
    state = await bot.core.flows.get(ZHANG)
    assert state is not None and [i["text"] for i in state.data["items"]] == ["村口路灯坏了"]
    zhang.press(again, "基础设施")
    confirm = await fake.wait_text(ZHANG, "请确认", timeout=WAIT)

    # The draft's own 取消 asks too; a choice made stale by more typing changes nothing.
    zhang.press(confirm, "取消")
    ask = await cancel_asks(fake, zhang)
    zhang.send_photo()
    await said(fake, ZHANG, "内容：文字 1 条、照片 1 张")
    assert await alert(fake, zhang.press(ask, "🗑 放弃这段内容")) == CANCEL_STALE
    await bot.idle()
    state = await bot.core.flows.get(ZHANG)
    assert state is not None and len(state.data["items"]) == 2
    zhang.send("/cancel")
    ask = await cancel_asks(fake, zhang)
    zhang.press(ask, "🗑 放弃这段内容")
    await edited(fake, ask, "已放弃刚才输入的内容。")
    await no_flow(bot, ZHANG)
    assert await count(bot) == 0

    # A secretary's reply: 取消 with nothing typed cancels at once; with typed content it asks.
    await seed(bot, ZHANG, "水渠堵了")
    card = await said(fake, SECRETARY, "📥 新问题")
    secretary.press(card, "💬 答复")
    prompt = await said(fake, SECRETARY, "请输入对问题 #1 的答复")
    secretary.press(prompt, "取消")
    await said(fake, SECRETARY, "已取消。")
    secretary.press(card, "💬 答复")
    await said(fake, SECRETARY, "请输入对问题 #1 的答复")
    secretary.send("已经通知水利站")
    collected = await said(fake, SECRETARY, "已记录 1 条")
    secretary.press(collected, "取消")
    ask = await cancel_asks(fake, secretary)
    secretary.press(ask, "↩️ 回到上一步")
    collected = await said(fake, SECRETARY, "已记录 1 条")
    assert collected.button_texts == ["📨 发送", "取消"]
    secretary.press(collected, "取消")
    ask = await cancel_asks(fake, secretary)
    secretary.press(ask, "🗑 放弃这段内容")
    await edited(fake, ask, "已放弃")
    await no_flow(bot, SECRETARY)
    await status_is(bot, 1, "new")


# --------------------------------------------------------------------------- not joined

async def test_a_person_who_has_not_joined_is_told_how_to_join(bot: BotRunner, fake: FakeBotApi) -> None:
    stranger = fake.user(4001, first_name="路人")
    stranger.send("你好，我们村的路灯坏了")
    assert (await said(fake, 4001, "您还没有加入")).text.startswith(JOIN)
    stranger.send_photo()
    assert (await said(fake, 4001, "您还没有加入")).text.startswith(JOIN)
    stranger.send_voice()
    assert (await said(fake, 4001, "您还没有加入")).text.startswith(JOIN)
    english = fake.user(4002, language_code="en")
    english.send("hello")
    assert (await said(fake, 4002, "join")).text.startswith("You have not joined yet. Ask your village")
    # Someone whose join request waits for approval is told so.
    invite = await bot.core.invites.create("sanyi", "member", created_by=SYSTEM_ACTOR)
    await bot.core.invites.join(4003, invite.payload)
    waiting = fake.user(4003, first_name="等批准")
    waiting.send("你好")
    assert (await said(fake, 4003, "申请")).text == "您加入「三义村党支部」的申请正在等书记批准，批准后会通知您。"
    assert await count(bot) == 0


# --------------------------------------------------------------------------- every prompt is covered

APPRAISAL_TYPED = "test_e2e_appraisal.py::test_every_appraisal_prompt_takes_a_typed_answer"
# Every catalog text that invites typing (it says 输入, 打字, 说明 or 补充, or "type" in English), and the
# test that answers it by typing and checks where the answer landed ("file::test" for another file).
DELIB_TYPED = "test_e2e_deliberation.py::test_every_deliberation_prompt_takes_a_typed_answer"
DELIB_ROUND = "test_e2e_deliberation.py::test_a_round_from_opening_to_a_published_result_across_a_restart"
MATTER_TYPED = "test_e2e_matters.py::test_every_matters_prompt_takes_a_typed_answer"
OM_TYPED = "test_e2e_opinions.py::test_every_opinion_map_prompt_takes_a_typed_answer"
MATTER_ALL = "test_e2e_matters.py::test_a_matter_through_all_stages_to_both_publications"
POINTS_TYPED = "test_e2e_points.py::test_every_points_prompt_takes_a_typed_answer"
POINTS_ADJUST = "test_e2e_points.py::test_points_for_a_member_and_the_branch_table_with_a_typed_adjustment"
PROMPT_TESTS = {
    "readable.meeting.ask_length": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "readable.meeting.unreadable_length": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.ledger.pick_period": "test_ledger.py::test_typed_dates_in_both_ways_and_a_bad_answer_keeps_the_prompt",
    "meeting.ledger.pick_type": "test_ledger.py::test_typed_dates_in_both_ways_and_a_bad_answer_keeps_the_prompt",
    "meeting.ledger.type_prompt": "test_ledger.py::test_typed_dates_in_both_ways_and_a_bad_answer_keeps_the_prompt",
    "meeting.leave.ask": "test_a_typed_leave_reason_is_recorded_as_leave",
    "meeting.leave.other": "test_a_typed_leave_reason_is_recorded_as_leave",
    "meeting.leave.type": "test_a_typed_leave_reason_is_recorded_as_leave",
    "ticket.to_resident.need_info": "test_a_reply_to_a_request_for_information_is_added_to_the_ticket",
    "ticket.button.add_info": "test_e2e_tickets_flow.py::test_ask_for_more_information_and_the_resident_adds_it",
    "ticket.info_prompt": "test_e2e_tickets_flow.py::test_ask_for_more_information_and_the_resident_adds_it",
    "ticket.button.ask": "test_a_reply_to_a_request_for_information_is_added_to_the_ticket",
    "ticket.ask_prompt": "test_a_reply_to_a_request_for_information_is_added_to_the_ticket",
    "ticket.rate_reason": "test_a_typed_unsatisfied_reason_reopens_the_ticket",
    "ticket.reply_prompt": "test_a_secretary_composes_an_answer_by_typing",
    "ticket.collected": "test_a_secretary_composes_an_answer_by_typing",
    "ticket.refused.empty": "test_a_secretary_composes_an_answer_by_typing",
    "ticket.decline_prompt": "test_typed_decline_and_transfer_reasons",
    "ticket.transfer_reason": "test_typed_decline_and_transfer_reasons",
    "ticket.type_text": "test_typed_decline_and_transfer_reasons",
    "ticket.submit.pick_category": "test_several_open_questions_ask_which_one_and_each_choice_lands_right",
    "prompt.label.ticket_info": "test_several_open_questions_ask_which_one_and_each_choice_lands_right",
    "prompt.cancel.ask": "test_cancel_with_typed_content_offers_both_choices",
    "meeting.new.type_org": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.new.type_date": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.new.pick_time": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.new.ask_place": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.error.empty": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.new.ask_topic_lecture": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.new.ask_lecturer": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.edit.ask_place": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.edit.ask_topic": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.edit.ask_reason": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.cancel.ask_reason": "test_meeting_steps_that_invite_typing_take_typed_answers",
    "meeting.new.ask_topic": "test_e2e_meetings.py::test_schedule_notice_answers_reminders_checkin_minutes_and_ledger",
    "meeting.new.ask_people": "test_e2e_meetings.py::test_settings_committee_and_adding_people",
    "delib.new.title": DELIB_TYPED,
    "delib.new.text_please": DELIB_TYPED,
    "delib.new.background": DELIB_ROUND,
    "delib.new.opinions": DELIB_ROUND,
    "delib.new.votes": DELIB_ROUND,
    "delib.new.options": DELIB_ROUND,
    "delib.new.multiple": DELIB_TYPED,
    "delib.ask.opinion": DELIB_TYPED,
    "delib.ask.opinion_text_or_voice": DELIB_TYPED,
    "delib.ask.option": DELIB_TYPED,
    "delib.proxy.pick": DELIB_TYPED,
    "delib.proxy.nobody": DELIB_TYPED,
    "delib.ask.proxy_reason": DELIB_TYPED,
    "om.ask.statement": OM_TYPED,
    "om.ask.seed": OM_TYPED,
    "om.ask.text_please": OM_TYPED,
    "matter.flow.title": MATTER_TYPED,
    "matter.flow.text_please": MATTER_TYPED,
    "matter.flow.day": MATTER_TYPED,
    "matter.flow.counts": MATTER_TYPED,
    "matter.button.vote_paper": MATTER_TYPED,
    "matter.flow.bad_counts": MATTER_TYPED,
    "matter.flow.note": MATTER_TYPED,
    "matter.button.skip_note": MATTER_ALL,
    "matter.flow.confirm": MATTER_TYPED,
    "matter.flow.decision_text": MATTER_ALL,
    "matter.flow.result_text": MATTER_ALL,
    "matter.limit.ask": MATTER_TYPED,
    "broadcast.ask_content": "test_e2e_broadcasts.py::test_audience_sizes_preview_send_and_final_figures",
    "broadcast.when.type_button": "test_e2e_broadcasts.py::test_a_photo_at_a_typed_time",
    "broadcast.ask_time": "test_e2e_broadcasts.py::test_a_photo_at_a_typed_time",
    "broadcast.error.time_unreadable": "test_e2e_broadcasts.py::test_a_photo_at_a_typed_time",
    # The appraisal: each typed in one walk (a bad year, a sticker for the report, blank comment words refused).
    "appraisal.new.ask_year": APPRAISAL_TYPED,
    "appraisal.refused.bad_year": APPRAISAL_TYPED,
    "appraisal.new.ask_days": APPRAISAL_TYPED,
    "appraisal.opened_notice": APPRAISAL_TYPED,
    "appraisal.ask.report": APPRAISAL_TYPED,
    "appraisal.ask.report_kind": APPRAISAL_TYPED,
    "appraisal.rated": APPRAISAL_TYPED,
    "appraisal.ask.comment_text": APPRAISAL_TYPED,
    "appraisal.refused.empty_comment": APPRAISAL_TYPED,
    # Pledges and points: each typed in one walk (a sticker first where it is refused).
    "pledge.ask.post": POINTS_TYPED,
    "pledge.ask.text_please": POINTS_TYPED,
    "pledge.ask.pledge": POINTS_TYPED,
    "pledge.ask.report": POINTS_TYPED,
    "pledge.ask.report_kind": POINTS_TYPED,
    "points.adjust.ask_deduct": POINTS_TYPED,
    "points.adjust.text_please": POINTS_TYPED,
    "points.adjust.ask_add": POINTS_ADJUST,
}
# Texts with those words that ask nothing (statuses, history lines, outcomes, chooser labels).
NOT_PROMPTS = {
    "meeting.ledger.legend",  # the sheet's legend (说明), not a question
    "ticket.action.declined", "ticket.event.declined", "ticket.event.asked_info", "ticket.event.info_added",
    "ticket.status.need_info", "ticket.done.asked_info", "ticket.done.info_added", "ticket.to_handler.info_added",
    "ticket.to_resident.declined", "prompt.cancel.discarded", "prompt.cancel.kept", "prompt.flow.ticket_ask",
    "prompt.flow.ticket_info",
    "delib.card.end_reason", "matter.card.note",  # a card's 说明：… line shows a reason already given
    "delib.ledger.col_note", "delib.ledger.ev_note", "matter.ledger.st_note",  # spreadsheet column headers
    "delib.proxy_notice", "delib.proxy_notice_secret",  # a notice: "if it is wrong, see the secretary (说明)"
    # The service's refusals of an empty title or text: the chat never sends one (a blank message or a
    # sticker gets matter.flow.text_please and the prompt stays open, which is tested).
    "matter.refused.empty_title", "matter.refused.empty_text",
}
INVITES_TYPING = {"zh_CN": re.compile("输入|打字|说明|补充"), "en": re.compile(r"\btyp(e|ed|ing)\b", re.IGNORECASE)}


def test_every_prompt_that_invites_typing_has_a_typed_answer_test() -> None:
    found = {key for locale, words in INVITES_TYPING.items()
             for key, text in load_catalog(locale).items() if words.search(text)}
    unmapped = sorted(found - set(PROMPT_TESTS) - NOT_PROMPTS)
    assert unmapped == [], f"add a test that answers these by typing, and list it in PROMPT_TESTS: {unmapped}"
    assert not set(PROMPT_TESTS) & NOT_PROMPTS
    for key, where in PROMPT_TESTS.items():
        file, _, name = where.rpartition("::")
        source = (HERE / (file or Path(__file__).name)).read_text(encoding="utf-8")
        assert re.search(rf"^async def {name}\(", source, re.MULTILINE), f"{key}: no test {where}"
        assert key in load_catalog("zh_CN"), f"{key} is no longer a text"
