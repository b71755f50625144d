"""End to end: pledges, points and the star rating (设岗承诺 · 积分 · 评星定级) as people see them in
their chats, through the fake Bot API, with the settable clock (START is Friday 2026-11-27, 09:00
in Shanghai).

The chat tree: 三义村党支部 with secretary 1001 王建国 (also a party member there), the township's
organiser 1002 李明 above it, 二郎村's secretary 1003 赵强 beside it; party members 张三 and 李四
are added here."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from orgtree import ERLANG_SECRETARY, SECRETARY, TOWN_ORG
from test_e2e_deliberation import add, alert_text, edited, vote, with_button

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.callbacks import PG, PN, PN_RULE, PgAct, PgAction, PnAct, PnAction, PnRule, RuleKey
from bot.clock import SettableClock
from conftest import BotRunner

SHANGHAI = ZoneInfo("Asia/Shanghai")
ZHANG, LI = 2301, 2302
WAIT = 15.0


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


async def said(fake: FakeBotApi, chat_id: int, contains: str) -> SentMessage:
    return await fake.wait_message(chat_id, contains=contains, timeout=WAIT)


async def sanyi_id(bot: BotRunner) -> int:
    org = await bot.core.orgs.by_code("sanyi")
    assert org is not None
    return org.id


async def add_post_by_chat(fake: FakeBotApi, secretary: FakeUser, title: str) -> None:
    secretary.send("/pledges")
    board = await said(fake, SECRETARY, "三义村党支部的设岗承诺")
    secretary.press(board, "➕ 添加岗位")
    await said(fake, SECRETARY, "请输入岗位名称")
    secretary.send(title)
    await said(fake, SECRETARY, f"已添加岗位：{title}")


async def pledge_and_report(fake: FakeBotApi, zhang: FakeUser) -> None:
    """张三 takes the post, then reports progress: a photo with words, more words, 提交."""
    zhang.send("/pledges")
    board = await said(fake, ZHANG, "三义村党支部的设岗承诺")
    zhang.press(board, "🙋 认领岗位")
    posts = await edited(fake, board, "支部设的岗位")
    zhang.press(posts, "环境卫生监督岗（0人已认领）")
    await edited(fake, posts, "已认领岗位：环境卫生监督岗")
    zhang.send("/pledges")
    board = await said(fake, ZHANG, "· 张三：【岗位】环境卫生监督岗（践诺确认0次）")
    zhang.press(board, "📝 践诺：环境卫生监督岗")
    await said(fake, ZHANG, "请打字说说您做了什么，也可以发照片")
    zhang.send_photo(caption="打扫了村口")
    await said(fake, ZHANG, "已收到：文字1段，照片1张")
    zhang.send("垃圾也运走了")
    collected = await said(fake, ZHANG, "已收到：文字2段，照片1张")
    zhang.press(collected, "✅ 提交")
    await edited(fake, collected, "践诺已提交")


async def test_a_pledge_its_progress_with_a_photo_and_the_secretarys_confirmation(
        bot: BotRunner, fake: FakeBotApi) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    zhang = await add(bot, fake, ZHANG, "张三", "member")
    sibling = fake.user(ERLANG_SECRETARY, first_name="赵强")
    await add_post_by_chat(fake, secretary, "环境卫生监督岗")
    await pledge_and_report(fake, zhang)

    notice = await said(fake, SECRETARY, "张三报告了践诺情况")
    assert "打扫了村口\n垃圾也运走了" in notice.text and "照片：1张" in notice.text
    await fake.wait_for(lambda: any(m.method == "copyMessage" for m in fake.history(SECRETARY)),
                        message="the photo was not copied to the secretary")
    report = await bot.core.db.fetchval("SELECT MAX(id) FROM pledge_reports")
    # Forged presses change nothing: the member on their own report, another village's secretary.
    forged = zhang.press_data(notice.message_id, PG.encode(PgAct(PgAction.CONFIRM, report)))
    assert "您没有这个权限" in await alert_text(fake, forged)
    sibling.send("/start")
    welcome = await fake.wait_message(ERLANG_SECRETARY)
    forged = sibling.press_data(welcome.message_id, PG.encode(PgAct(PgAction.CONFIRM, report)))
    assert "您没有这个权限" in await alert_text(fake, forged)
    assert await bot.core.db.fetchval("SELECT status FROM pledge_reports WHERE id = ?", (report,)) == "pending"

    secretary.press(notice, "✅ 确认（督诺）")
    await edited(fake, notice, "已确认（督诺）：张三的践诺「环境卫生监督岗」")
    await said(fake, ZHANG, "书记王建国确认了您的践诺：环境卫生监督岗")
    again = secretary.press_data(notice.message_id, PG.encode(PgAct(PgAction.CONFIRM, report)))
    assert "已经确认过了" in await alert_text(fake, again)
    await bot.idle()
    assert len([t for t in fake.texts(ZHANG) if "确认了您的践诺" in t]) == 1
    zhang.send("/pledges")
    await said(fake, ZHANG, "· 张三：【岗位】环境卫生监督岗（践诺确认1次）")


async def adjust_by_chat(fake: FakeBotApi, secretary: FakeUser, button: str, reason: str) -> SentMessage:
    """/points → the branch's table → 张三 → the button → the typed reason."""
    secretary.send("/points")
    mine = await said(fake, SECRETARY, "我的积分（三义村党支部）")
    secretary.press(mine, "📋 三义村党支部积分表")
    table = await edited(fake, mine, "三义村党支部党员积分")
    secretary.press(table, "张三")
    person = await edited(fake, table, "张三的积分")
    secretary.press(person, button)
    await said(fake, SECRETARY, "的原因（会告诉本人）")
    secretary.send(reason)
    return await said(fake, SECRETARY, "已通知本人")


async def test_points_for_a_member_and_the_branch_table_with_a_typed_adjustment(
        bot: BotRunner, fake: FakeBotApi) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    zhang = await add(bot, fake, ZHANG, "张三", "member")
    await add(bot, fake, LI, "李四", "member")
    done = await adjust_by_chat(fake, secretary, "+2分", "带头打扫村道")
    assert done.text == "✅ 已给张三加2分。原因：带头打扫村道\n已通知本人。"
    told = await said(fake, ZHANG, "书记给您加了2分")
    assert told.text == "⭐ 书记给您加了2分（三义村党支部）。原因：带头打扫村道"
    assert await bot.core.db.fetchval("SELECT reason FROM point_adjustments") == "带头打扫村道"

    # The member sees their own points and where they came from; no table.
    zhang.send("/points")
    mine = await said(fake, ZHANG, "我的积分（三义村党支部）")
    assert "本月：2分\n· 书记加减分 1次，共2分" in mine.text and "今年：2分" in mine.text
    assert "📋 三义村党支部积分表" not in mine.button_texts
    # The secretary's table lists every member, highest this year first.
    secretary.send("/points")
    mine = await said(fake, SECRETARY, "我的积分")
    secretary.press(mine, "📋 三义村党支部积分表")
    table = await edited(fake, mine, "三义村党支部党员积分")
    assert "1. 张三　本月2分 · 今年2分" in table.text and "李四　本月0分 · 今年0分" in table.text
    assert {"📝 待督诺（0）", "⭐ 2026年度评星定级"} <= set(table.button_texts)

    # The township's organiser reads the table (supervision) but adds or deducts nothing.
    organiser = fake.user(TOWN_ORG, first_name="李明")
    organiser.send("/points")
    listing = await said(fake, TOWN_ORG, "下面是您管理的组织的党员积分表")
    organiser.press(listing, "📋 三义村党支部积分表")
    table = await edited(fake, listing, "1. 张三　本月2分 · 今年2分")
    assert "⭐ 2026年度评星定级" not in table.button_texts
    organiser.press(table, "张三")
    person = await edited(fake, table, "张三的积分")
    assert person.button_texts == ["↩️ 返回积分表"]

    # Forged: the member presses add for himself; nothing is recorded.
    sanyi = await sanyi_id(bot)
    forged = zhang.press_data(mine.message_id, PN.encode(PnAct(PnAction.ADJUST, sanyi, ZHANG, 5)))
    assert "您没有这个权限" in await alert_text(fake, forged)
    forged = zhang.press_data(mine.message_id, PN.encode(PnAct(PnAction.TABLE, sanyi)))
    assert "您没有这个权限" in await alert_text(fake, forged)
    await bot.idle()
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM point_adjustments") == 1


async def test_the_monthly_statement_arrives_on_the_first_once_across_a_restart(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    zhang = await add(bot, fake, ZHANG, "张三", "member")
    await add_post_by_chat(fake, secretary, "环境卫生监督岗")
    await pledge_and_report(fake, zhang)
    notice = await said(fake, SECRETARY, "张三报告了践诺情况")
    secretary.press(notice, "✅ 确认（督诺）")
    await said(fake, ZHANG, "确认了您的践诺")
    await adjust_by_chat(fake, secretary, "-1分", "没有按时交党费")

    clock.set(local(2026, 11, 30, 20, 0))
    await bot.ticks()
    assert not [t for t in fake.texts(ZHANG) if "积分清单" in t]
    clock.set(local(2026, 12, 1, 9, 0))
    await bot.ticks()
    statement = await said(fake, ZHANG, "2026年11月积分清单（三义村党支部）")
    assert "上个月共得 4 分" in statement.text
    assert "· 践诺得到书记确认 1次，5分" in statement.text and "· 书记加减分 1次，共-1分" in statement.text
    await bot.restart()
    clock.set(local(2026, 12, 1, 10, 0))
    await bot.ticks()
    assert len([t for t in fake.texts(ZHANG) if "积分清单" in t]) == 1
    assert len([t for t in fake.texts(SECRETARY) if "2026年11月积分清单" in t]) == 1


async def test_the_star_rating_is_voted_confirmed_and_in_the_ledger(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    zhang = await add(bot, fake, ZHANG, "张三", "member")
    li = await add(bot, fake, LI, "李四", "member")
    sanyi = await sanyi_id(bot)
    await bot.core.points.set_rule(TOWN_ORG, sanyi, "stars2", 2)
    await adjust_by_chat(fake, secretary, "+5分", "抗洪抢险带头")
    secretary.send("/points")
    mine = await said(fake, SECRETARY, "我的积分")
    secretary.press(mine, "📋 三义村党支部积分表")
    table = await edited(fake, mine, "三义村党支部党员积分")
    secretary.press(table, "⭐ 2026年度评星定级")
    preview = await edited(fake, table, "2026年度评星定级（按积分提议）")
    assert "张三　5分　★★" in preview.text and "李四　0分　★" in preview.text
    secretary.press(preview, "🗳 发起党员表决")
    await edited(fake, preview, "已发起2026年度评星定级的党员表决")

    round_id = await bot.core.db.fetchval("SELECT round_id FROM star_proposals")
    rnd = await bot.core.deliberation.get(SECRETARY, round_id)
    clock.set(rnd.opinions_until + timedelta(minutes=1))
    await bot.ticks()
    starts = {uid: await said(fake, uid, "开始投票了") for uid in (ZHANG, LI)}
    await vote(fake, zhang, starts[ZHANG], "同意")
    await vote(fake, li, starts[LI], "同意")
    clock.set(rnd.deadline + timedelta(minutes=1))
    await bot.ticks()
    await said(fake, SECRETARY, "2026年度评星定级党员表决通过（同意2票，不同意0票）")
    yours = await said(fake, ZHANG, "2026年度评星定级结果")
    assert yours.text == "⭐ 2026年度评星定级结果：您全年积分5分，评为★★。"

    _, content = await bot.core.ledger(SECRETARY, sanyi, date(2026, 1, 1), date(2026, 12, 31), "zh_CN")
    book = load_workbook(io.BytesIO(content))
    stars = book["评星定级"]
    rows = [[c.value for c in row] for row in stars.iter_rows(min_row=2)]
    assert ["2026", "张三", 5, "★★", "已确定", "同意2票，不同意0票"] in [[str(r[0]), *r[1:]] for r in rows]
    points = [[c.value for c in row] for row in book["党员积分"].iter_rows(min_row=1)]
    assert points[0][0] == "姓名" and points[0][-1] == "合计"
    assert ["张三", 5] == [points[1][0], points[1][-1]] and points[1][6] == "1次 5分"
    adjustments = [[c.value for c in row] for row in book["加减分记录"].iter_rows(min_row=2)]
    assert [r[1:] for r in adjustments] == [["张三", 5, "抗洪抢险带头", "王建国"]]


async def test_every_points_prompt_takes_a_typed_answer(bot: BotRunner, fake: FakeBotApi) -> None:
    """Each step that asks for typing, answered by typing (a sticker first, where it is refused)."""
    secretary = fake.user(SECRETARY, first_name="王建国")
    zhang = await add(bot, fake, ZHANG, "张三", "member")
    # A post's name.
    secretary.send("/pledges")
    board = await said(fake, SECRETARY, "三义村党支部的设岗承诺")
    secretary.press(board, "➕ 添加岗位")
    await said(fake, SECRETARY, "请输入岗位名称")
    secretary.send_sticker()
    await said(fake, SECRETARY, "请用文字打字写。")
    secretary.send("治安巡逻岗")
    await said(fake, SECRETARY, "已添加岗位：治安巡逻岗")
    # A pledge, then its progress in words only.
    zhang.send("/pledges")
    board = await said(fake, ZHANG, "三义村党支部的设岗承诺")
    zhang.press(board, "✍️ 写承诺")
    await said(fake, ZHANG, "请输入您的承诺")
    zhang.send("每月帮困难户干一次活")
    written = await said(fake, ZHANG, "您的承诺已记下：每月帮困难户干一次活")
    zhang.press(written, "📝 践诺：每月帮困难户干一次活")
    await said(fake, ZHANG, "请打字说说您做了什么")
    zhang.send_sticker()
    await said(fake, ZHANG, "请发文字或照片")
    zhang.send("帮王大娘收了玉米")
    collected = await said(fake, ZHANG, "已收到：文字1段，照片0张")
    zhang.press(collected, "✅ 提交")
    await said(fake, SECRETARY, "张三报告了践诺情况")
    assert await bot.core.db.fetchval("SELECT text FROM pledge_reports") == "帮王大娘收了玉米"
    # A deduction's reason.
    secretary.send("/points")
    mine = await said(fake, SECRETARY, "我的积分")
    secretary.press(mine, "📋 三义村党支部积分表")
    table = await edited(fake, mine, "三义村党支部党员积分")
    secretary.press(table, "张三")
    person = await edited(fake, table, "张三的积分")
    secretary.press(person, "-2分")
    await said(fake, SECRETARY, "请输入给张三减2分的原因")
    secretary.send_sticker()
    await said(fake, SECRETARY, "请用文字打字写原因。")
    secretary.send("无故缺席党员大会")
    await said(fake, SECRETARY, "已给张三减2分。原因：无故缺席党员大会")
    await said(fake, ZHANG, "书记给您减了2分（三义村党支部）。原因：无故缺席党员大会")
    assert await bot.core.db.fetchval("SELECT delta FROM point_adjustments") == -2


async def test_organisers_above_set_the_rules_and_a_forged_press_changes_nothing(
        bot: BotRunner, fake: FakeBotApi) -> None:
    organiser = fake.user(TOWN_ORG, first_name="李明")
    secretary = fake.user(SECRETARY, first_name="王建国")
    sanyi = await sanyi_id(bot)
    organiser.send("/pointrules")
    pick = await said(fake, TOWN_ORG, "要设置哪个组织的积分规则")
    assert {"龙驹寨街道党工委", "三义村党支部", "二郎村党支部"} <= set(pick.button_texts)
    organiser.press(pick, "三义村党支部")
    rules = await edited(fake, pick, "三义村党支部的积分规则")
    assert "参加会议：2分" in rules.button_texts and "★★★★★：80分以上" in rules.button_texts
    organiser.press(rules, PN_RULE.encode(PnRule(sanyi, RuleKey.MEETING, 3)))  # ➕ beside 参加会议
    await with_button(fake, rules, "参加会议：3分")
    assert (await bot.core.points.rules(sanyi)).points["meeting"] == 3
    # The branch's own secretary presses the same kind of button: refused, nothing changes.
    secretary.send("/start")
    welcome = await fake.wait_message(SECRETARY)
    forged = secretary.press_data(welcome.message_id, PN_RULE.encode(PnRule(sanyi, RuleKey.MEETING, 9)))
    assert "您没有这个权限" in await alert_text(fake, forged)
    secretary.send("/pointrules")
    await said(fake, SECRETARY, "您没有这个权限，没有做任何改动。")
    await bot.idle()
    assert (await bot.core.points.rules(sanyi)).points["meeting"] == 3
