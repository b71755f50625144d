"""End to end: the secretary's annual report and appraisal (书记双述双评) as people see it in their
chats, through the fake Bot API, with the settable clock (START is Friday 2026-11-27, 09:00 in
Shanghai).

The chat tree: 三义村党支部 with secretary 1001 王建国 (also a party member there), the township's
organiser 1002 李明 above it, and two party members and a resident added here (the raters)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from orgtree import ERLANG_SECRETARY, SECRETARY, TOWN_ORG
from test_appraisal_service import assert_no_link
from test_e2e_deliberation import add, alert_text, edited, with_button

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.callbacks import SA_RATE, SaChoice
from bot.clock import SettableClock
from conftest import BotRunner

SHANGHAI = ZoneInfo("Asia/Shanghai")
ZHANG, LI, WANG = 2201, 2202, 2203
WALL_CHAT = -100888
TITLE = "三义村党支部书记王建国"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


async def open_by_chat(fake: FakeBotApi, organiser: FakeUser) -> None:
    """/appraisal → open: the year, the secretary picked, a week, confirmed."""
    organiser.send("/appraisal")
    listing = await fake.wait_message(TOWN_ORG, contains="书记述职评议：")
    organiser.press(listing, "➕ 发起书记述职评议")
    step = await fake.wait_message(TOWN_ORG, contains="要评议哪一年的工作")
    organiser.press(step, "2026年度")
    pick = await fake.wait_message(TOWN_ORG, contains="请选要述职评议的书记（已选0位）")
    assert "☐ 赵强（二郎村党支部）" in pick.button_texts  # the sibling village's secretary is offered too
    organiser.press(pick, "☐ 王建国（三义村党支部）")
    pick = await with_button(fake, pick, "☑ 王建国（三义村党支部）")
    organiser.press(pick, "✅ 选好了")
    step = await fake.wait_message(TOWN_ORG, contains="评议开放几天")
    organiser.press(step, "7天")
    confirm = await fake.wait_message(TOWN_ORG, contains="请核对")
    assert "年度：2026年度" in confirm.text and "· 王建国（三义村党支部）" in confirm.text
    assert "赵强" not in confirm.text
    organiser.press(confirm, "✅ 确定发起")
    await fake.wait_text(TOWN_ORG, "已发起，已通知1位书记交述职报告。12月4日（周五）晚上8:00截止")


async def rate(fake: FakeBotApi, user: FakeUser, notice: SentMessage, choice: str) -> SentMessage:
    user.press(notice, "📝 看述职，去评议")
    card = await fake.wait_message(user.id, contains="请您评议")
    user.press(card, choice)
    return await edited(fake, card, f"您的评议已提交：{choice}")


async def test_an_appraisal_from_opening_to_published_results_across_a_restart(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    organiser = fake.user(TOWN_ORG, first_name="李明")
    secretary = fake.user(SECRETARY, first_name="王建国")
    zhang = await add(bot, fake, ZHANG, "张三", "member")
    li = await add(bot, fake, LI, "李四", "member")
    wang = await add(bot, fake, WANG, "王五", "resident")
    sibling = fake.user(ERLANG_SECRETARY, first_name="赵强")
    fake.group(WALL_CHAT, "三义村回音壁")
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    await bot.core.tickets.bind_wall(SECRETARY, sanyi.id, WALL_CHAT, "三义村回音壁")

    await open_by_chat(fake, organiser)
    told = await fake.wait_message(SECRETARY, contains="2026年度书记述职评议开始了")
    assert fake.texts(ZHANG) == []  # nothing to rate before the report

    # The report: typed, then replaced by a voice note before anyone rated.
    secretary.press(told, "📝 交述职报告")
    await fake.wait_message(SECRETARY, contains="请发来您的述职报告")
    secretary.send("今年修了村西的路，办了三件实事。")
    await fake.wait_message(SECRETARY, contains="述职报告已提交")
    notices = {uid: await fake.wait_message(uid, contains=f"{TITLE}的述职报告来了") for uid in (ZHANG, LI, WANG)}
    assert "今年修了村西的路" in notices[ZHANG].text
    secretary.send("/appraisal")
    listing = await fake.wait_message(SECRETARY, contains="书记述职评议：")
    secretary.press(listing, "📝 我的2026年度述职（进行中）")
    own = await fake.wait_message(SECRETARY, contains="王建国的2026年度述职报告")
    secretary.press(own, "🔁 替换述职报告")
    await fake.wait_message(SECRETARY, contains="请发来您的述职报告")
    secretary.send_voice()
    await fake.wait_message(SECRETARY, contains="述职报告已替换")

    # Ratings: ZHANG listens, is satisfied and comments (a phone number is masked); LI is not, and
    # adds nothing. Both are secret; neither can rate again.
    zhang.press(notices[ZHANG], "📝 看述职，去评议")
    card = await fake.wait_message(ZHANG, contains="述职报告是一段语音")
    zhang.press(card, "▶️ 听述职语音")
    await fake.wait_for(lambda: any(m.method == "copyMessage" for m in fake.history(ZHANG)),
                        message="the voice report was not copied")
    zhang.press(card, "满意")
    await edited(fake, card, "您的评议已提交：满意")
    zhang.send("路修得好ZQXA，有事打我电话13812345678")
    await fake.wait_message(ZHANG, contains="您的意见已经记下了")
    rated = await rate(fake, li, notices[LI], "不满意")
    li.press(rated, "不写了")
    await edited(fake, rated, "谢谢您参加评议")
    li.press(notices[LI], "📝 看述职，去评议")
    again = await fake.wait_message(LI, contains="您已经评议过了")
    assert "满意" not in again.button_texts

    # Forged presses change nothing: someone of another village, the secretary on himself, and a
    # second ballot from the same card.
    target = await bot.core.db.fetchval("SELECT MAX(id) FROM appraisal_targets")
    sibling.send("/start")
    welcome = await fake.wait_message(ERLANG_SECRETARY)
    forged = sibling.press_data(welcome.message_id, SA_RATE(target, SaChoice.SATISFIED))
    assert "您不能参加这项评议" in await alert_text(fake, forged)
    forged = secretary.press_data(own.message_id, SA_RATE(target, SaChoice.SATISFIED))
    assert "书记不能评议自己" in await alert_text(fake, forged)
    second = zhang.press_data(card.message_id, SA_RATE(target, SaChoice.UNSATISFIED))
    assert "您已经评议过了" in await alert_text(fake, second)
    # The report is fixed once someone has rated.
    assert "不能再替换" in await alert_text(fake, secretary.press(own, "🔁 替换述职报告"))

    # A day before the close: a reminder to WANG only.
    clock.set(local(2026, 12, 3, 20, 1))
    await bot.ticks()
    await fake.wait_message(WANG, contains="⏰ 提醒：对三义村党支部书记王建国的述职评议明天就截止了")
    assert not any("⏰ 提醒" in m.text for uid in (ZHANG, LI, SECRETARY) for m in fake.history(uid))

    # The organiser follows the progress: how many, never who chose what.
    organiser.send("/appraisal")
    listing = await fake.wait_message(TOWN_ORG, contains="书记述职评议：")
    organiser.press(listing, "📊 2026年度书记述职评议（进行中）")
    progress = await fake.wait_message(TOWN_ORG, contains="已评议2人，共3人可以评议")
    assert "满意率" not in progress.text

    # WANG opens the card, but the bot is down at the deadline; a new runner closes it, once, and
    # WANG's late press is refused.
    wang.press(notices[WANG], "📝 看述职，去评议")
    late_card = await fake.wait_message(WANG, contains="请您评议")
    await bot.stop()
    clock.set(local(2026, 12, 4, 21, 0))
    again_bot = BotRunner(fake, bot.settings.database, clock)
    await again_bot.start()
    try:
        assert "这次评议已经结束了" in await alert_text(fake, wang.press(late_card, "满意"))
        await again_bot.ticks()
        await again_bot.ticks()
        result = await fake.wait_message(TOWN_ORG, contains="📊 2026年度述职评议结果：三义村党支部书记王建国")
        assert "· 满意：1人\n· 基本满意：0人\n· 不满意：1人" in result.text
        assert "满意率：50%" in result.text and "参评：2人，可以评议的共3人，参评率67%" in result.text
        assert "路修得好ZQXA" in result.text and "13812345678" not in result.text
        summary = await fake.wait_message(TOWN_ORG, contains="2026年度书记述职评议已经结束")
        mine = await fake.wait_message(SECRETARY, contains="您的述职评议结果出来了")
        assert "满意率：50%" in mine.text and "路修得好ZQXA" in mine.text
        assert "张三" not in mine.text and "李四" not in mine.text
        await again_bot.idle()
        assert sum("述职评议结果：" in m.text for m in fake.history(TOWN_ORG)) == 1
        assert sum("评议结果出来了" in m.text for m in fake.history(SECRETARY)) == 1

        # Publishing: the wall and the raters get the counts, not the comments; once.
        assert "结果已公布" in await alert_text(fake, organiser.press(summary, "📢 公布结果"))
        wall = await fake.wait_message(WALL_CHAT, contains="📢 书记述职评议结果公布")
        assert "满意率：50%" in wall.text and "ZQXA" not in wall.text
        for uid in (ZHANG, LI, WANG):
            await fake.wait_message(uid, contains="📢 书记述职评议结果公布")
        assert "已经公布过了" in await alert_text(fake, organiser.press(summary, "📢 公布结果"))

        # The secretary reads their own result in /appraisal, never who rated what.
        secretary.send("/appraisal")
        listing = await fake.wait_message(SECRETARY, contains="书记述职评议：")
        secretary.press(listing, "📝 我的2026年度述职（已结束）")
        own = await fake.wait_message(SECRETARY, contains="王建国的2026年度述职报告")
        assert "满意率：50%" in own.text and "路修得好ZQXA" in own.text and "张三" not in own.text
        await again_bot.idle()
        await assert_no_link(again_bot.core, [ZHANG, LI], ["ZQXA"], [1, 0, 1])
    finally:
        await again_bot.stop()


# --------------------------------------------------------------------------- every prompt takes typing

WAIT = 15.0  # replies to one chat are paced at about one a second
COMMENT_LABEL = "对书记述职的意见（不显示名字）"


async def open_by_typing(fake: FakeBotApi, organiser: FakeUser) -> None:
    """The year and the days typed (a bad year and bad days refused, the step staying open), both
    village secretaries picked."""
    organiser.send("/appraisal")
    organiser.press(await fake.wait_message(TOWN_ORG, contains="书记述职评议："), "➕ 发起书记述职评议")
    await fake.wait_message(TOWN_ORG, contains="要评议哪一年的工作")
    for bad in ("去年", "1999"):
        organiser.send(bad)
        await fake.wait_message(TOWN_ORG, contains="年份不对，请打四位数的年份", timeout=WAIT)
    organiser.send("2026年")
    pick = await fake.wait_message(TOWN_ORG, contains="2026年度：请选要述职评议的书记（已选0位）", timeout=WAIT)
    organiser.send("两个都选")  # picking is by buttons only; the list stays usable
    await fake.wait_message(TOWN_ORG, contains="这一步请点上面的按钮", timeout=WAIT)
    organiser.press(pick, "☐ 王建国（三义村党支部）")
    pick = await with_button(fake, pick, "☑ 王建国（三义村党支部）")
    organiser.press(pick, "☐ 赵强（二郎村党支部）")
    pick = await with_button(fake, pick, "☑ 赵强（二郎村党支部）")
    organiser.press(pick, "✅ 选好了")
    await fake.wait_message(TOWN_ORG, contains="评议开放几天", timeout=WAIT)
    organiser.send("四十天")
    await fake.wait_message(TOWN_ORG, contains="天数要在1到30天之间", timeout=WAIT)
    organiser.send("40")
    await fake.wait_message(TOWN_ORG, contains="天数要在1到30天之间", timeout=WAIT)
    organiser.send("10天")
    confirm = await fake.wait_message(TOWN_ORG, contains="请核对", timeout=WAIT)
    assert "年度：2026年度" in confirm.text and "评议开放：10天" in confirm.text
    assert "· 王建国（三义村党支部）" in confirm.text and "· 赵强（二郎村党支部）" in confirm.text
    organiser.press(confirm, "✅ 确定发起")
    await fake.wait_text(TOWN_ORG, "已发起，已通知2位书记交述职报告。12月7日（周一）晚上8:00截止")


async def report_of(bot: BotRunner, secretary: int) -> tuple[str | None, str | None]:
    row = await bot.core.db.fetchone(
        "SELECT report_kind, report_text FROM appraisal_targets WHERE secretary_id = ?", (secretary,))
    assert row is not None
    return row["report_kind"], row["report_text"]


async def test_every_appraisal_prompt_takes_a_typed_answer(bot: BotRunner, fake: FakeBotApi) -> None:
    """Long because it walks every appraisal prompt that invites typing, in one appraisal: the
    opening (year, days), the report (after 交述职报告, and typed straight after the notice), the
    comment (a sticker, blank words, then words; and, with the notice's question also open, the
    chooser naming the comment step in plain words)."""
    organiser = fake.user(TOWN_ORG, first_name="李明")
    secretary = fake.user(SECRETARY, first_name="王建国")
    zhang = await add(bot, fake, ZHANG, "张三", "member")
    zhao = await add(bot, fake, ERLANG_SECRETARY, "赵强", "member")  # 二郎村's secretary rates 三义村's
    await open_by_typing(fake, organiser)

    # 王建国 taps 交述职报告: a sticker is not a report, and the prompt stays open for the typed one.
    told = await fake.wait_message(SECRETARY, contains="2026年度书记述职评议开始了")
    assert "可以打字" in told.text
    secretary.press(told, "📝 交述职报告")
    await fake.wait_message(SECRETARY, contains="请发来您的述职报告：可以直接打字")
    secretary.send_sticker()
    await fake.wait_message(SECRETARY, contains="请打字，或者发语音、文件。", timeout=WAIT)
    secretary.send("今年修了村西的路，办了三件实事。")
    await fake.wait_message(SECRETARY, contains="述职报告已提交", timeout=WAIT)
    assert await report_of(bot, SECRETARY) == ("text", "今年修了村西的路，办了三件实事。")
    await fake.wait_message(ERLANG_SECRETARY, contains="2026年度书记述职评议开始了")
    notices = {uid: await fake.wait_message(uid, contains=f"{TITLE}的述职报告来了")
               for uid in (ZHANG, ERLANG_SECRETARY)}
    assert all("今年修了村西的路，办了三件实事。" in n.text for n in notices.values())

    # 张三 rates; the comment step refuses a sticker and blank words, and stays open for the words.
    rated = await rate(fake, zhang, notices[ZHANG], "基本满意")
    assert "可以直接打字发给我" in rated.text
    zhang.send_sticker()
    await fake.wait_message(ZHANG, contains="请打字写下您的意见", timeout=WAIT)
    zhang.send("   ")
    await fake.wait_message(ZHANG, contains="意见是空的，请打字写下来。", timeout=WAIT)
    zhang.send("希望多开村民会")
    await fake.wait_message(ZHANG, contains="您的意见已经记下了", timeout=WAIT)

    # 赵强 rates too, while his own report is still asked for: his typed words could answer either,
    # so he is asked which, and the comment step is named in plain words.
    await rate(fake, zhao, notices[ERLANG_SECRETARY], "满意")
    zhao.send("路修得好，有事打我电话13812345678")
    chooser = await fake.wait_message(ERLANG_SECRETARY, contains="是回答哪一个", timeout=WAIT)
    assert COMMENT_LABEL in chooser.button_texts and "交2026年度述职报告" in chooser.button_texts
    zhao.press(chooser, COMMENT_LABEL)
    await fake.wait_message(ERLANG_SECRETARY, contains="您的意见已经记下了", timeout=WAIT)
    comments = [r[0] for r in await bot.core.db.fetchall("SELECT text FROM appraisal_comments")]
    assert "希望多开村民会" in comments
    assert any(c.startswith("路修得好") and "13812345678" not in c for c in comments), comments
    assert (await report_of(bot, ERLANG_SECRETARY))[0] is None

    # The notice said 可以打字: 赵强's next words, typed with nothing else open, are his report.
    zhao.send("二郎村今年通了自来水。")
    await fake.wait_message(ERLANG_SECRETARY, contains="述职报告已提交", timeout=WAIT)
    assert await report_of(bot, ERLANG_SECRETARY) == ("text", "二郎村今年通了自来水。")
    await bot.idle()
    assert not any("问题类别" in m.text for uid in (ERLANG_SECRETARY, ZHANG) for m in fake.history(uid))
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM flows WHERE person_id = ?", (ERLANG_SECRETARY,)) == 0


async def test_a_notice_held_back_by_quiet_hours_takes_the_typed_report_only_once_it_is_out(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    """Opened late at night, the notice waits for the morning; what the secretary types before it
    arrives is not taken as the report. Once it is out, the typed report is (here chosen from a
    chooser, since the night's words left a problem draft open)."""
    secretary = fake.user(SECRETARY, first_name="王建国")
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    clock.set(local(2026, 11, 27, 23, 0))
    await bot.core.appraisal.open(TOWN_ORG, 2026, [(sanyi.id, SECRETARY)], 7)
    await bot.ticks()
    secretary.send("村东头的路灯坏了")
    await bot.idle()
    assert not any("述职" in m.text for m in fake.history(SECRETARY))
    assert (await report_of(bot, SECRETARY))[0] is None

    clock.set(local(2026, 11, 28, 7, 1))
    await bot.ticks()
    await fake.wait_message(SECRETARY, contains="2026年度书记述职评议开始了")
    secretary.send("今年修了村西的路。")
    chooser = await fake.wait_message(SECRETARY, contains="是回答哪一个", timeout=WAIT)
    secretary.press(chooser, "交2026年度述职报告")
    await fake.wait_message(SECRETARY, contains="述职报告已提交", timeout=WAIT)
    assert await report_of(bot, SECRETARY) == ("text", "今年修了村西的路。")
