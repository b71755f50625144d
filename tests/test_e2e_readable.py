"""End to end: screens an elderly person can read (issue 12). The problem draft counts what was sent
by kind, in both languages; its category buttons stay only under the newest piece; /help starts
from what a person does; files the bot sends have Chinese names; a meeting's length is chosen and
shown before it is sent.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from orgtree import SECRETARY

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.actors import SYSTEM_ACTOR
from bot.callbacks import MEETING_FLOW, FlowAction
from bot.i18n import load_catalog
from bot.services.meeting_time import Unreadable
from conftest import BotRunner
from handlers.meetings.scheduling import read_length

ZHANG, TOM = 2001, 2101
WAIT = 15.0  # replies to one chat are paced at about one a second


async def resident(bot: BotRunner, fake: FakeBotApi, user_id: int, name: str, language: str) -> FakeUser:
    user = fake.user(user_id, first_name=name, language_code=language)
    await bot.core.people.touch(user_id, name, None, language)
    invite = await bot.core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    await bot.core.invites.join(user_id, invite.payload)
    return user


def buttons_now(fake: FakeBotApi, message: SentMessage) -> list[str]:
    current = fake.message(message.chat_id, message.message_id)
    assert current is not None
    return current.button_texts


async def test_the_draft_counts_each_kind_and_keeps_its_buttons_under_the_newest_piece(
        bot: BotRunner, fake: FakeBotApi) -> None:
    zhang = await resident(bot, fake, ZHANG, "老张", "zh-hans")
    fake.user(SECRETARY, first_name="王建国")
    prompts = []
    zhang.send("村口的桥栏杆松了")
    prompts.append(await fake.wait_message(ZHANG, contains="已收到 1 条内容。还可以继续补充", timeout=WAIT))
    zhang.send_photo()
    prompts.append(await fake.wait_message(ZHANG, contains="已收到 2 条内容。", timeout=WAIT))
    zhang.send_voice()
    prompts.append(await fake.wait_message(ZHANG, contains="已收到 3 条内容。", timeout=WAIT))
    zhang.send_location(33.7, 110.3)
    prompts.append(await fake.wait_message(ZHANG, contains="已收到 4 条内容。", timeout=WAIT))
    await bot.idle()

    # Only the newest prompt has the category buttons; the older ones lost theirs.
    assert [buttons_now(fake, p) for p in prompts[:-1]] == [[], [], []]
    assert buttons_now(fake, prompts[-1])[:2] == ["基础设施", "环境卫生"]
    stripped = [call.params.get("message_id") for call in fake.calls_to("editMessageReplyMarkup") if call.ok]
    assert sorted(stripped) == sorted(p.message_id for p in prompts[:-1])

    zhang.press(prompts[-1], "基础设施")
    confirm = await fake.wait_text(ZHANG, "请确认：")
    assert confirm.message_id == prompts[-1].message_id
    assert confirm.text.startswith(
        "请确认：\n内容：文字 1 条、照片 1 张、语音 1 条、位置 1 个\n类别：基础设施\n村口的桥栏杆松了")

    # One more piece after the category: a new confirmation under it, the old one loses its buttons.
    zhang.send("栏杆在桥的东头")
    again = await fake.wait_message(ZHANG, contains="请确认：\n内容：文字 2 条、照片 1 张、语音 1 条、位置 1 个",
                                    timeout=WAIT)
    await bot.idle()
    assert buttons_now(fake, confirm) == []
    assert "✅ 提交" in again.button_texts
    zhang.press(again, "✅ 提交")
    await fake.wait_text(ZHANG, "已提交！")
    kinds = [item.kind for _, item in await bot.core.tickets.items(SYSTEM_ACTOR, 1)]
    assert kinds == ["text", "photo", "voice", "location", "text"]


async def test_the_draft_counts_read_naturally_in_english(bot: BotRunner, fake: FakeBotApi) -> None:
    tom = await resident(bot, fake, TOM, "Tom", "en")
    fake.user(SECRETARY, first_name="王建国")
    tom.send("The bridge railing is loose")
    first = await fake.wait_message(TOM, contains="Got 1 item. Add more if you like", timeout=WAIT)
    tom.send("It is at the east end")
    await fake.wait_message(TOM, contains="Got 2 items.", timeout=WAIT)
    tom.send_voice()
    last = await fake.wait_message(TOM, contains="Got 3 items.", timeout=WAIT)
    await bot.idle()
    assert buttons_now(fake, first) == []
    tom.press(last, "Infrastructure")
    confirm = await fake.wait_text(TOM, "Please check:")
    assert confirm.text.startswith("Please check:\nContent: 2 texts, 1 voice note\nCategory: Infrastructure\n")
    assert "piece" not in confirm.text and "(s)" not in confirm.text


async def test_voice_first_a_voice_note_is_a_problem_and_an_answer(bot: BotRunner, fake: FakeBotApi) -> None:
    """A resident who cannot type reports by voice alone; the secretary answers by voice alone."""
    zhang = await resident(bot, fake, ZHANG, "老张", "zh-hans")
    secretary = fake.user(SECRETARY, first_name="王建国")
    zhang.send_voice()
    prompt = await fake.wait_message(ZHANG, contains="已收到 1 条内容。", timeout=WAIT)
    zhang.press(prompt, "其他")
    confirm = await fake.wait_text(ZHANG, "内容：语音 1 条\n")
    assert "（没有文字，见附件）" in confirm.text
    zhang.press(confirm, "✅ 提交")
    await fake.wait_text(ZHANG, "已提交！")

    card = await fake.wait_message(SECRETARY, contains="📥 新问题", timeout=WAIT)
    await fake.wait_for(lambda: any(m.method == "copyMessage" and "voice" in m.message
                                    for m in fake.history(SECRETARY)), WAIT, message="the voice note relayed")
    secretary.press(card, "💬 答复")
    await fake.wait_message(SECRETARY, contains="请输入对问题 #1 的答复", timeout=WAIT)
    secretary.send_voice()
    collected = await fake.wait_message(SECRETARY, contains="已记录 1 条", timeout=WAIT)
    secretary.press(collected, "📨 发送")
    await fake.wait_message(ZHANG, contains="有答复了", timeout=WAIT)
    await fake.wait_for(lambda: any(m.method == "copyMessage" and "voice" in m.message
                                    for m in fake.history(ZHANG)), WAIT, message="the voice answer relayed")
    assert await bot.core.db.fetchval("SELECT status FROM tickets WHERE id = 1") == "answered"


async def help_text(fake: FakeBotApi, user_id: int) -> str:
    fake.user(user_id).send("/help")
    return (await fake.wait_message(user_id, contains="/help", timeout=WAIT)).text


async def test_help_for_a_resident_starts_with_the_menu_and_just_sending(bot: BotRunner, fake: FakeBotApi) -> None:
    await resident(bot, fake, ZHANG, "老张", "zh-hans")
    text = await help_text(fake, ZHANG)
    lines = text.splitlines()
    assert lines[0] == ("点下方菜单里的按钮就能用："
                        "「📝 反映问题」、「📋 我的问题」、「📢 回音壁」、「🗳 民主议事」、「👤 我的」和「🌐 语言」。")
    assert lines[1].startswith("有问题要反映，直接给我发一张照片、一段语音或者一句话就行")
    # Commands come second, by task; a resident sees only the problem wall and the rest.
    assert text.index("/submit") > text.index("也可以发送下面的命令")
    assert "📝 问题墙：" in text and "⚙️ 其他：" in text
    assert "📅 会议：" not in text and "👥 人员与组织：" not in text and "/inbox" not in text


async def test_help_for_a_secretary_groups_the_commands_by_task(bot: BotRunner, fake: FakeBotApi) -> None:
    text = await help_text(fake, SECRETARY)
    blocks = text.split("\n\n")
    groups = {block.splitlines()[0]: [line.split(" ")[0] for line in block.splitlines()[1:]]
              for block in blocks[2:]}
    assert [title.split("：")[0] for title in groups] == ["📝 问题墙", "📅 会议", "🗳 民主议事", "📢 通知",
                                                       "📊 督查", "⭐ 积分", "👥 人员与组织", "🔒 个人信息", "⚙️ 其他"]
    commands = [c for names in groups.values() for c in names]
    assert len(commands) == len(set(commands)) and all(c.startswith("/") for c in commands)
    assert {"/inbox", "/blocked", "/bindwall", "/poster"} <= set(groups[next(iter(groups))])
    assert "/newmeeting" in next(names for title, names in groups.items() if title.startswith("📅"))
    assert "/invite" in next(names for title, names in groups.items() if title.startswith("👥"))
    assert {"/deliberations", "/newdeliberation", "/matters"} <= set(
        next(names for title, names in groups.items() if title.startswith("🗳")))
    assert {"/points", "/pledges"} <= set(next(names for title, names in groups.items() if title.startswith("⭐")))
    assert "/appoint" not in commands  # organisers' and administrators' only
    assert max(len(names) for names in groups.values()) < 10


async def test_help_in_english_reads_the_same_way(bot: BotRunner, fake: FakeBotApi) -> None:
    await resident(bot, fake, TOM, "Tom", "en")
    text = await help_text(fake, TOM)
    assert text.startswith("Tap the buttons of the menu below: “📝 Report a problem”, “📋 My problems”,")
    assert "just send me a photo, a voice note or a text" in text
    assert "📝 Problem wall:" in text


async def test_a_meeting_s_length_is_asked_and_shown_before_it_is_sent(bot: BotRunner, fake: FakeBotApi) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    secretary.send("/newmeeting")
    step = await fake.wait_message(SECRETARY, contains="请选择会议类型")
    secretary.press(step, "支部党员大会")
    step = await fake.wait_text(SECRETARY, "请选择开会日期")
    secretary.press(step, MEETING_FLOW(FlowAction.DAY, 20261205))
    step = await fake.wait_text(SECRETARY, "几点开会")
    assert step.button_texts[:3] == ["早上7:00", "上午8:00", "上午9:00"] and "下午3:00" in step.button_texts
    secretary.press(step, "下午3:00")
    step = await fake.wait_text(SECRETARY, "开多长时间")
    assert step.text.startswith("12月5日（周六）下午3:00开始。开多长时间？")
    secretary.press(step, "1.5小时")
    await fake.wait_text(SECRETARY, "请输入开会地点")
    secretary.send("村委会会议室")
    await fake.wait_message(SECRETARY, contains="请输入会议议题")
    secretary.send("学习党章")
    confirm = await fake.wait_message(SECRETARY, contains="请核对会议信息")
    assert "时间：12月5日（周六）下午3:00—4:30" in confirm.text

    # A typed end works as well; a typed range skips the question.
    secretary.press(confirm, "✖️ 不安排了")
    await fake.wait_text(SECRETARY, "没有安排会议")
    secretary.send("/newmeeting")
    step = await fake.wait_message(SECRETARY, contains="请选择会议类型")
    secretary.press(step, "支部党员大会")
    await fake.wait_text(SECRETARY, "请选择开会日期")
    secretary.send("12月6日 上午9点")
    await fake.wait_message(SECRETARY, contains="上午9:00开始。开多长时间？")
    secretary.send("到中午12点")
    await fake.wait_message(SECRETARY, contains="请输入开会地点")
    secretary.send("村委会会议室")
    await fake.wait_message(SECRETARY, contains="请输入会议议题")
    secretary.send("学习党章")
    confirm = await fake.wait_message(SECRETARY, contains="请核对会议信息")
    assert "时间：12月6日（周日）上午9:00—中午12:00" in confirm.text


@pytest.mark.parametrize(("typed", "end"), [
    ("3小时", "18:00"), ("两个小时", "17:00"), ("一个半小时", "16:30"), ("1.5h", "16:30"), ("90分钟", "16:30"),
    ("半天", "19:00"), ("2 hours", "17:00"), ("half a day", "19:00"), ("到下午5点", "17:00"), ("17:30", "17:30"),
    ("until 6 pm", "18:00"),
])
def test_a_typed_length_or_end(typed: str, end: str) -> None:
    start = datetime(2026, 12, 5, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert read_length(typed, start, start.date()).strftime("%H:%M") == end


@pytest.mark.parametrize("typed", ["一会儿", "12月7日 下午5点", "long"])
def test_an_unreadable_length(typed: str) -> None:
    start = datetime(2026, 12, 5, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    with pytest.raises(Unreadable):
        read_length(typed, start, start.date())


@pytest.mark.parametrize(("first", "last", "lang", "name"), [
    (date(2026, 1, 1), date(2026, 12, 31), "zh_CN", "台账-三义村党支部-2026.xlsx"),
    (date(2026, 10, 1), date(2026, 12, 31), "zh_CN", "台账-三义村党支部-2026年第4季度.xlsx"),
    (date(2026, 11, 1), date(2026, 11, 30), "zh_CN", "台账-三义村党支部-2026年11月.xlsx"),
    (date(2026, 1, 1), date(2026, 6, 30), "zh_CN", "台账-三义村党支部-2026年1月1日-6月30日.xlsx"),
    (date(2026, 1, 1), date(2026, 12, 31), "en", "Meeting ledger - 三义村党支部 - 2026.xlsx"),
    (date(2026, 11, 1), date(2026, 11, 30), "en", "Meeting ledger - 三义村党支部 - November 2026.xlsx"),
])
async def test_the_ledger_s_file_name_says_whose_and_when_in_words(
        bot: BotRunner, first: date, last: date, lang: str, name: str) -> None:
    org = await bot.core.orgs.by_code("sanyi")
    assert org is not None
    filename, _ = await bot.core.meetings.ledger(SECRETARY, org.id, first, last, lang)
    assert filename == name


async def test_chinese_file_names_arrive_as_they_are(bot: BotRunner, fake: FakeBotApi) -> None:
    """The calendar file of a meeting, as a member taps for it: its name is Chinese at the server."""
    secretary = fake.user(SECRETARY, first_name="王建国")
    secretary.send("/newmeeting")
    step = await fake.wait_message(SECRETARY, contains="请选择会议类型")
    secretary.press(step, "党小组会")
    step = await fake.wait_text(SECRETARY, "请选择开会日期")
    secretary.send("12月5日 下午3点到5点")
    await fake.wait_message(SECRETARY, contains="请输入开会地点")
    secretary.send("村委会会议室")
    await fake.wait_message(SECRETARY, contains="请输入会议议题")
    secretary.send("学习党章")
    confirm = await fake.wait_message(SECRETARY, contains="请核对会议信息")
    secretary.press(confirm, "✅ 确认，发通知")
    card = await fake.wait_text(SECRETARY, "会议已安排")
    secretary.press(card, "📆 加入手机日历")
    ics = await fake.wait_message(SECRETARY, contains="手机日历", timeout=WAIT)
    assert ics.document is not None and ics.document[0] == "党小组会-12月5日.ics"
    assert ics.document[1].startswith(b"BEGIN:VCALENDAR")


# Where a number or a code may appear in the Chinese interface, and why. Everything else names
# people and organisations in words.
IDS_ALLOWED = {
    "me.title": "an administrator's own /me (only administrators see their Telegram number)",
    "org.title": "an administrator's /org lists the codes the org file and the command line use",
    "web.not_found": "the echo wall's web address is /wall/<code>: the page says how it is built",
}
# A problem's number (#12) stays: residents and secretaries use it to talk about one problem
# (/my lists it, the secretary's card and every notice about it carry it).
TICKET_NUMBER = re.compile(r"(编号\s*)?#\{(id|ticket)\}")
ID_MARKERS = re.compile(r"\{(id|code|org_code|person_id|telegram_id|user_id|chat_id|meeting_id)\}|ID|代码|编号")


def test_the_chinese_interface_shows_no_ids_or_codes_outside_the_allow_list() -> None:
    catalog = load_catalog("zh_CN")
    found = {key: text for key, text in catalog.items()
             if ID_MARKERS.search(TICKET_NUMBER.sub("", text)) and key not in IDS_ALLOWED}
    assert found == {}
    assert all(key in catalog for key in IDS_ALLOWED)


def test_a_moment_near_now_says_today_or_tomorrow_else_the_day() -> None:
    from bot.formatting import Formatter
    from bot.i18n import Translator

    tz = ZoneInfo("Asia/Shanghai")
    fmt = Formatter(Translator(), tz)
    now = datetime(2026, 11, 27, 9, 0, tzinfo=tz)
    at = datetime(2026, 11, 27, 15, 0, tzinfo=tz)
    assert fmt.moment_near("zh_CN", at, now) == "今天下午3:00"
    assert fmt.moment_near("zh_CN", at.replace(day=28, hour=9), now) == "明天上午9:00"
    assert fmt.moment_near("zh_CN", at.replace(day=26), now) == "昨天下午3:00"
    assert fmt.moment_near("zh_CN", at.replace(day=5, month=12), now) == "12月5日（周六）下午3:00"
    assert fmt.moment_near("en", at, now) == "today, 3:00 PM"
    assert fmt.tally("zh_CN", [("readable.item.text", 2), ("readable.item.photo", 0), ("readable.item.voice", 1)]) \
        == "文字 2 条、语音 1 条"
    assert fmt.tally("en", [("readable.item.text", 1), ("readable.item.voice", 2)]) == "1 text, 2 voice notes"


async def test_english_joins_as_a_resident(bot: BotRunner, fake: FakeBotApi) -> None:
    invite = await bot.core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    tom = fake.user(TOM, first_name="Tom", language_code="en")
    tom.send(f"/start {invite.payload}")
    joined = await fake.wait_message(TOM, timeout=WAIT)
    assert joined.text == "Welcome! You joined “三义村党支部” as a resident."


def test_a_monthly_rule_reads_as_an_ordinal_in_english() -> None:
    from bot.formatting import Formatter
    from bot.i18n import Translator
    from bot.services.meeting_text import MeetingText

    text = MeetingText(Formatter(Translator(), ZoneInfo("Asia/Shanghai")))
    assert text.rule("en", "weekday", None, 2, 0, "3:00 PM") == "every month on the 2nd Mon at 3:00 PM"
    assert text.rule("en", "weekday", None, 3, 0, "3:00 PM") == "every month on the 3rd Mon at 3:00 PM"
    assert text.rule("zh_CN", "weekday", None, 2, 0, "下午3:00") == "每月第2个星期一 下午3:00"
