"""End to end: 四议两公开 matters as the secretary, the residents, the wall group and the organiser
above see them, through the fake Bot API with the settable clock (START is Friday 2026-11-27,
09:00 in Shanghai).

The chat tree: 三义村党支部 with secretary 1001 王建国 (also a party member there), the township's
organiser 1002 李明 above it; each test adds the residents and members it needs."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

from openpyxl import load_workbook
from orgtree import SECRETARY, TOWN_ORG
from test_e2e_meetings import local, schedule

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.callbacks import MATTER, MATTER_FLOW, MatterAct, MatterStep
from bot.clock import SettableClock
from bot.services.deliberation import Audience, RoundSpec
from bot.services.meetings import Draft
from conftest import START, BotRunner
from handlers.matters import stage_day

WANG, ZHANG = 2201, 2202  # a resident and a party member of sanyi
WALL_CHAT = -100888


async def add(bot: BotRunner, fake: FakeBotApi, user_id: int, name: str, role: str) -> FakeUser:
    user = fake.user(user_id, first_name=name)
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    async with bot.core.db.transaction() as tx:
        await bot.core.people.ensure(tx, user_id, name)
        await bot.core.orgs.grant(tx, person_id=user_id, org_id=sanyi.id, role=role, actor_id=None, source="test")
    return user


async def alert(fake: FakeBotApi, press: dict[str, Any]) -> str:
    return str((await fake.wait_callback_answer(press)).get("text") or "")


async def open_by_chat(fake: FakeBotApi, secretary: FakeUser, title: str) -> SentMessage:
    """/matters → new matter → title, description, estimate; returns the message with the first stage's button."""
    secretary.send("/matters")
    board = await fake.wait_message(SECRETARY, contains="📋 四议两公开 · 三义村党支部")
    secretary.press(board, "➕ 新的事项")
    await fake.wait_message(SECRETARY, contains="请输入事项的名称")
    secretary.send(title)
    await fake.wait_message(SECRETARY, contains="请简单说说情况")
    secretary.send("村西到小学的路下雨天走不了")
    await fake.wait_message(SECRETARY, contains="预算大概多少")
    secretary.send("12万元")
    return await fake.wait_message(SECRETARY, contains="✅ 事项已记下")


async def record_stage(fake: FakeBotApi, secretary: FakeUser, message: SentMessage, stage: str, *,
                       day: str | None = None, meeting: str = "不关联会议", vote: str = "没有表决",
                       round_title: str | None = None, counts: str | None = None, passed: bool = True,
                       note: str | None = None) -> SentMessage:
    """Record one stage through the chat, from the message carrying its button."""
    secretary.press(message, f"记录：{stage}")
    step = await fake.wait_message(SECRETARY, contains="这一步是哪天进行的")
    if day is None:
        secretary.press(step, "今天")
    else:
        secretary.send(day)
    step = await fake.wait_message(SECRETARY, contains="会议")
    secretary.press(step, meeting)
    step = await fake.wait_message(SECRETARY, contains="这一步有没有表决")
    secretary.press(step, vote)
    if round_title is not None:
        step = await fake.wait_message(SECRETARY, contains="用哪一次民主议事的投票结果")
        secretary.press(step, round_title)
    if counts is not None:
        await fake.wait_message(SECRETARY, contains="请按顺序输入赞成、反对、弃权的票数")
        secretary.send(counts)
    step = await fake.wait_message(SECRETARY, contains="这一步的结果是")
    secretary.press(step, "✅ 通过" if passed else "❌ 没通过")
    step = await fake.wait_message(SECRETARY, contains="需要补充说明吗" if passed else "请写一下没通过的原因")
    if note is None:
        secretary.press(step, "不用写说明")
    else:
        secretary.send(note)
    confirm = await fake.wait_message(SECRETARY, contains="请核对")
    secretary.press(confirm, "✅ 确定记录")
    return await fake.wait_message(SECRETARY, contains=f"「{stage}」")


async def a_held_members_meeting(bot: BotRunner, clock: SettableClock) -> None:
    """党员大会 held at 10:00 today (scheduled an hour before it), and the clock after it."""
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    await bot.core.meetings.create(SECRETARY, Draft(
        kind="general_meeting", org_id=sanyi.id, starts_at=START + timedelta(hours=1),
        ends_at=START + timedelta(hours=2), place="村委会", topic="审议修路"))


async def a_closed_round(bot: BotRunner, clock: SettableClock) -> None:
    """A deliberation round of sanyi with a vote (one ballot for 修), closed early by its opener."""
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    rnd = await bot.core.deliberation.open(SECRETARY, RoundSpec(
        org_id=sanyi.id, title="修不修村西的路", audience=Audience.MEMBERS,
        opinions_until=START + timedelta(hours=1), votes_until=START + timedelta(days=2), options=("修", "不修")))
    clock.set(START + timedelta(hours=2, minutes=30))
    await bot.ticks()
    await bot.core.deliberation.cast(ZHANG, rnd.id, [0])
    await bot.core.deliberation.close_early(SECRETARY, rnd.id, "意见一致")
    await bot.idle()


async def test_a_matter_through_all_stages_to_both_publications(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    wang = await add(bot, fake, WANG, "王五", "resident")
    await add(bot, fake, ZHANG, "张三", "member")
    fake.group(WALL_CHAT, "三义村回音壁")
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    await bot.core.tickets.bind_wall(SECRETARY, sanyi.id, WALL_CHAT, "三义村回音壁")
    await a_held_members_meeting(bot, clock)
    await a_closed_round(bot, clock)  # the clock is now 11:30, after the meeting

    opened = await open_by_chat(fake, secretary, "修建村道")
    assert "预算：12万元" in opened.text and "⬜ 党支部提议：还没进行" in opened.text
    matter_id = await bot.core.db.fetchval("SELECT MAX(id) FROM matters")
    # A forged press for stage 3 before stage 1: refused, nothing changes.
    forged = secretary.press_data(opened.message_id, MATTER(MatterAct.STAGE, matter_id, 3))
    assert "不能跳步" in await alert(fake, forged) and "党支部提议" in await alert(fake, forged)
    forged = secretary.press_data(opened.message_id, MATTER_FLOW(MatterStep.CONFIRM))
    assert "按钮已失效" in await alert(fake, forged)
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM matter_stages") == 0

    done = await record_stage(fake, secretary, opened, "党支部提议")
    done = await record_stage(fake, secretary, done, "村“两委”商议", day="11月27日", note="两委一致同意")
    done = await record_stage(fake, secretary, done, "党员大会审议", meeting="审议修路 11月27日",
                              vote="用民主议事的投票结果", round_title="修不修村西的路")
    assert "议事投票「修不修村西的路」：修1票，不修0票" in done.text
    done = await record_stage(fake, secretary, done, "村民（代表）会议决议", vote="纸质投票，我来填票数",
                              counts="反对3 赞成41 弃权2")
    assert "纸质投票：赞成41票，反对3票，弃权2票" in done.text and "等待决议公开" in done.text

    secretary.press(done, "📢 决议公开")
    await fake.wait_message(SECRETARY, contains="请输入要公开的决议内容")
    secretary.send("修建村西到小学的水泥路，预算12万元，明年三月开工。")
    confirm = await fake.wait_message(SECRETARY, contains="确定公开吗")
    assert fake.texts(WANG) == []
    secretary.press(confirm, "✅ 确定公开")
    published = await fake.wait_message(SECRETARY, contains="的决议已公开")
    for chat in (WANG, WALL_CHAT):
        notice = await fake.wait_message(chat, contains="📢 决议公开 · 三义村党支部")
        assert "明年三月开工" in notice.text and "✅ 党员大会审议：11月27日，通过" in notice.text

    secretary.press(published, "📷 实施结果公开")
    await fake.wait_message(SECRETARY, contains="请输入实施的结果")
    secretary.send("路修好了，实际花了11.5万元。")
    await fake.wait_message(SECRETARY, contains="可以再发照片")
    secretary.send_photo(caption="修好的路")
    more = await fake.wait_message(SECRETARY, contains="收到了第1张照片")
    secretary.press(more, "✅ 照片发完了（或没有照片）")
    confirm = await fake.wait_message(SECRETARY, contains="照片1张")
    secretary.press(confirm, "✅ 确定公开")
    await fake.wait_message(SECRETARY, contains="的实施结果已公开")
    for chat in (WANG, WALL_CHAT):
        result = await fake.wait_message(chat, contains="📷 实施结果公开 · 三义村党支部")
        assert "11.5万元" in result.text and "修好的路" in result.text
        await fake.wait_for(lambda chat=chat: any(m.method == "copyMessage" or m.photo is not None
                                                  for m in fake.history(chat)), message="the photo was not copied")
    await bot.idle()
    assert sum("📢 决议公开" in m.text for m in wang.messages()) == 1

    # The board, as the resident now sees it: the published matter and where it stands.
    wang.send("/matters")
    board = await fake.wait_message(WANG, contains="📋 四议两公开")
    assert "修建村道（预算12万元）" in board.text and "已完成" in board.text
    assert not any(label.startswith("1. 记录") for label in board.button_texts)


async def test_a_rejected_matter_and_what_cannot_happen_before_its_time(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    wang = await add(bot, fake, WANG, "王五", "resident")
    opened = await open_by_chat(fake, secretary, "修建文化广场")
    matter_id = await bot.core.db.fetchval("SELECT MAX(id) FROM matters")
    # Publishing before the four stages: refused, with a plain reason.
    forged = secretary.press_data(opened.message_id, MATTER(MatterAct.DECISION, matter_id))
    assert "四步要全部通过" in await alert(fake, forged)
    # Someone who is not the secretary: refused.
    forged = wang.press_data(opened.message_id, MATTER(MatterAct.STAGE, matter_id, 1))
    assert "没有权限" in await alert(fake, forged)

    done = await record_stage(fake, secretary, opened, "党支部提议")
    done = await record_stage(fake, secretary, done, "村“两委”商议", passed=False, note="今年资金不够，明年再议")
    assert "没有通过，事项结束" in done.text and "今年资金不够" in done.text
    assert not any(label.startswith("记录") for label in done.button_texts)
    forged = secretary.press_data(done.message_id, MATTER(MatterAct.STAGE, matter_id, 3))
    assert "已经没有通过" in await alert(fake, forged)
    await bot.idle()
    assert fake.texts(WANG) == []
    wang.send("/matters")  # nothing published: the resident's board is empty
    board = await fake.wait_message(WANG, contains="📋 四议两公开")
    assert "现在还没有事项" in board.text and "修建文化广场" not in board.text

    # The secretary changes the reminder limit (typed), and exports the record.
    secretary.send("/matters")
    board = await fake.wait_message(SECRETARY, contains="📋 四议两公开")
    assert "修建文化广场（预算12万元）" in board.text and "没有通过" in board.text
    secretary.press(board, "⏰ 提醒期限：30天")
    await fake.wait_message(SECRETARY, contains="提醒书记")
    secretary.send("45")
    await fake.wait_message(SECRETARY, contains="已设为45天")
    secretary.press(board, "📥 导出表格")
    sheet = await fake.wait_message(SECRETARY, contains="四议两公开事项记录")
    assert sheet.document is not None and sheet.document[0].endswith(".xlsx")
    book = load_workbook(io.BytesIO(sheet.document[1]))
    stages = [[c.value for c in row] for row in book["各步记录"].iter_rows(min_row=2)]
    assert [(r[1], r[4], r[6]) for r in stages] == [("党支部提议", "通过", None),
                                                     ("村“两委”商议", "未通过", "今年资金不够，明年再议")]


async def test_a_stalled_matter_reminds_the_secretary_then_the_organiser_once_across_restarts(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    organiser = fake.user(TOWN_ORG, first_name="李明")
    opened = await open_by_chat(fake, secretary, "修建村道")
    done = await record_stage(fake, secretary, opened, "党支部提议")
    assert "记录：村“两委”商议" in done.button_texts

    def told(chat: int, words: str) -> int:
        return sum(words in m.text for m in fake.history(chat))

    clock.set(START + timedelta(days=29))
    await bot.ticks()
    assert told(SECRETARY, "⏰ 提醒") == 0
    clock.set(START + timedelta(days=30, hours=1))
    await bot.ticks()
    reminder = await fake.wait_message(SECRETARY, contains="⏰ 提醒：三义村党支部的事项「修建村道」")
    assert "下一步是「村“两委”商议」" in reminder.text and "30天" in reminder.text
    await bot.restart()
    await bot.ticks()
    assert told(SECRETARY, "⏰ 提醒") == 1 and told(TOWN_ORG, "督办提醒") == 0

    await bot.stop()  # down when the organiser's reminder falls due
    clock.set(START + timedelta(days=61))
    await bot.start()
    await bot.ticks()
    follow_up = await fake.wait_message(TOWN_ORG, contains="⏰ 督办提醒：三义村党支部的事项「修建村道」")
    organiser.press(follow_up, "📋 查看这个事项")  # the organiser reads the record, without a stage button
    card = await fake.wait_message(TOWN_ORG, contains="📋 修建村道（三义村党支部）")
    assert "✅ 党支部提议" in card.text and not any(b.startswith("记录") for b in card.button_texts)
    await bot.restart()
    await bot.ticks()
    await bot.ticks()
    assert told(SECRETARY, "⏰ 提醒") == 1 and told(TOWN_ORG, "督办提醒") == 1


# --------------------------------------------------------------------------- every prompt takes typing

async def test_every_matters_prompt_takes_a_typed_answer(bot: BotRunner, fake: FakeBotApi) -> None:
    """The name (after a sticker), the description and the estimate; a stage's day (after one that
    cannot be read), its paper counts (after ones that cannot be read) and its note, all typed, land
    on the confirm screen and in the record."""
    secretary = fake.user(SECRETARY, first_name="王建国")
    secretary.send("/matters")
    board = await fake.wait_message(SECRETARY, contains="📋 四议两公开 · 三义村党支部")
    secretary.press(board, "➕ 新的事项")
    await fake.wait_message(SECRETARY, contains="请输入事项的名称")
    secretary.send_sticker()
    await fake.wait_text(SECRETARY, "请打字输入。")
    secretary.send("安装路灯")
    await fake.wait_message(SECRETARY, contains="请简单说说情况")
    secretary.send("村里主路晚上太黑")
    await fake.wait_message(SECRETARY, contains="预算大概多少")
    secretary.send("3万元")
    opened = await fake.wait_message(SECRETARY, contains="✅ 事项已记下")
    assert "📋 安装路灯（三义村党支部）" in opened.text and "情况：村里主路晚上太黑" in opened.text
    assert "预算：3万元" in opened.text

    secretary.press(opened, "记录：党支部提议")
    await fake.wait_message(SECRETARY, contains="这一步是哪天进行的？点「今天」，或者打字")
    secretary.send("上个礼拜左右")
    await fake.wait_message(SECRETARY, contains="没看懂这个日期")
    secretary.send("明天")  # refused at once, while the day can still be typed again
    await fake.wait_text(SECRETARY, "日期不能是以后的日子。")
    secretary.send("昨天")  # a stage lies behind: read backwards, unlike a meeting's day
    step = await fake.wait_message(SECRETARY, contains="最近没有找到合适的会议记录")
    secretary.press(step, "不关联会议")
    step = await fake.wait_message(SECRETARY, contains="这一步有没有表决")
    secretary.press(step, "纸质投票，我来填票数")
    await fake.wait_message(SECRETARY, contains="请按顺序输入赞成、反对、弃权的票数")
    secretary.send("大家都同意")
    await fake.wait_message(SECRETARY, contains="请输入三个数：赞成、反对、弃权的票数")
    secretary.send("7 0 1")
    step = await fake.wait_message(SECRETARY, contains="这一步的结果是")
    secretary.press(step, "✅ 通过")
    await fake.wait_message(SECRETARY, contains="需要补充说明吗？请直接打字")
    secretary.send("先装主路，小路明年再说")
    confirm = await fake.wait_message(SECRETARY, contains="请核对")
    assert "日期：11月26日" in confirm.text and "表决：纸质投票：赞成7票，反对0票，弃权1票" in confirm.text
    assert "说明：先装主路，小路明年再说" in confirm.text
    secretary.press(confirm, "✅ 确定记录")
    done = await fake.wait_message(SECRETARY, contains="「党支部提议」已记录")
    assert "说明：先装主路，小路明年再说" in done.text
    stage = await bot.core.db.fetchone("SELECT held_on, yes, no, abstain, note FROM matter_stages")
    assert tuple(stage) == ("2026-11-26", 7, 0, 1, "先装主路，小路明年再说")

    # The reminder limit, typed the way its buttons say it.
    secretary.send("/matters")
    board = await fake.wait_message(SECRETARY, contains="📋 四议两公开 · 三义村党支部")
    secretary.press(board, "⏰ 提醒期限：30天")
    await fake.wait_message(SECRETARY, contains="点一个，或者直接打字输入天数")
    secretary.send("20天")
    await fake.wait_text(SECRETARY, "✅ 已设为20天。")


async def test_a_matter_typed_while_a_question_is_open_asks_which_one(bot: BotRunner, fake: FakeBotApi) -> None:
    """The secretary, asked for a leave reason as a party member, types a matter's name: the chooser
    names the matters flow in plain words, and the text lands where he taps."""
    secretary = fake.user(SECRETARY, first_name="王建国")
    await schedule(bot, local(2026, 12, 5, 15, 0), by=TOWN_ORG)  # the organiser above: the secretary is told
    notice = await fake.wait_message(SECRETARY, contains="📢 会议通知")
    secretary.press(notice, "📝 请假")
    await fake.wait_message(SECRETARY, contains="请选一个请假原因")
    secretary.send("/matters")
    board = await fake.wait_message(SECRETARY, contains="📋 四议两公开 · 三义村党支部")
    secretary.press(board, "➕ 新的事项")
    await fake.wait_message(SECRETARY, contains="请输入事项的名称")

    secretary.send("修建村道")
    chooser = await fake.wait_message(SECRETARY, contains="是回答哪一个？")
    assert chooser.button_texts[:2] == ["请假原因：12月5日 学习党章", "四议两公开：正在记录的村里大事"]
    secretary.press(chooser, "四议两公开：正在记录的村里大事")
    await fake.wait_message(SECRETARY, contains="请简单说说情况")
    state = await bot.core.flows.get(SECRETARY)
    assert state is not None and state.data["title"] == "修建村道"
    assert await bot.core.db.fetchval("SELECT leave_reason FROM meeting_attendees WHERE person_id = ?",
                                      (SECRETARY,)) is None


def test_a_stage_day_is_read_as_a_day_behind() -> None:
    """The meeting parser reads a day ahead; a stage's typed day is the last such day before today."""
    today = date(2026, 11, 27)  # a Friday
    read = {text: stage_day(text, today) for text in ("昨天", "前天", "今天", "5号", "11/20", "周一", "10月15日",
                                                      "2026年12月1日", "明天", "上个礼拜左右")}
    assert read == {"昨天": date(2026, 11, 26), "前天": date(2026, 11, 25), "今天": today, "5号": date(2026, 11, 5),
                    "11/20": date(2026, 11, 20), "周一": date(2026, 11, 23), "10月15日": date(2026, 10, 15),
                    "2026年12月1日": date(2026, 12, 1), "明天": date(2026, 11, 28), "上个礼拜左右": None}
    assert stage_day("10月15日", date(2027, 1, 5)) == date(2026, 10, 15)  # the parser would say October 2027


async def test_cancel_after_typing_a_matter_asks_before_dropping_it(bot: BotRunner, fake: FakeBotApi) -> None:
    """取消 after typing a matter's name asks first; 放弃这段内容 leaves no matter behind."""
    secretary = fake.user(SECRETARY, first_name="王建国")
    secretary.send("/matters")
    board = await fake.wait_message(SECRETARY, contains="📋 四议两公开 · 三义村党支部")
    secretary.press(board, "➕ 新的事项")
    await fake.wait_message(SECRETARY, contains="请输入事项的名称")
    secretary.send("修建村道")
    await fake.wait_message(SECRETARY, contains="请简单说说情况")
    secretary.send("/cancel")
    choice = await fake.wait_message(SECRETARY, contains="您已经输入了一些内容。要放弃吗？")
    secretary.press(choice, "↩️ 回到上一步")
    await fake.wait_for(lambda: (fake.message(SECRETARY, choice.message_id) or choice).has("都还在"),
                        message="回到上一步 was not confirmed")
    secretary.send("村西的路坏了")  # the flow goes on where it was
    await fake.wait_message(SECRETARY, contains="预算大概多少")
    state = await bot.core.flows.get(SECRETARY)
    assert state is not None and state.data["title"] == "修建村道" and state.data["description"] == "村西的路坏了"
    secretary.send("/cancel")
    choice = await fake.wait_message(SECRETARY, contains="要放弃吗？")
    secretary.press(choice, "🗑 放弃这段内容")
    await fake.wait_for(lambda: (fake.message(SECRETARY, choice.message_id) or choice).has("已放弃"),
                        message="放弃这段内容 was not confirmed")
    assert await bot.core.flows.get(SECRETARY) is None
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM matters") == 0
