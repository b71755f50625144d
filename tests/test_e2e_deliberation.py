"""End to end: deliberation rounds (民主议事) as people see them in their chats, through the fake
Bot API, with the settable clock (START is Friday 2026-11-27, 09:00 in Shanghai).

The chat tree: 三义村党支部 with secretary 1001 王建国 (also a party member there); each test adds
the members and residents it needs."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from orgtree import SECRETARY
from test_deliberation_service import assert_no_link

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.actors import SYSTEM_ACTOR
from bot.callbacks import DELIB_BALLOT, BallotAction
from bot.clock import SettableClock
from bot.services.deliberation import Audience, RoundSpec
from bot.services.tickets import Item
from conftest import START, BotRunner

SHANGHAI = ZoneInfo("Asia/Shanghai")
ZHANG, LI, WANG, LAOWANG = 2101, 2102, 2103, 2104
WALL_CHAT = -100777


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


async def add(bot: BotRunner, fake: FakeBotApi, user_id: int, name: str, role: str) -> FakeUser:
    user = fake.user(user_id, first_name=name)
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    async with bot.core.db.transaction() as tx:
        await bot.core.people.ensure(tx, user_id, name)
        await bot.core.orgs.grant(tx, person_id=user_id, org_id=sanyi.id, role=role, actor_id=None, source="test")
    return user


async def village(bot: BotRunner, fake: FakeBotApi) -> dict[int, FakeUser]:
    return {ZHANG: await add(bot, fake, ZHANG, "张三", "member"), LI: await add(bot, fake, LI, "李四", "member"),
            WANG: await add(bot, fake, WANG, "王五", "resident")}


async def alert_text(fake: FakeBotApi, press: dict[str, Any]) -> str:
    return str((await fake.wait_callback_answer(press)).get("text") or "")


async def edited(fake: FakeBotApi, message: SentMessage, contains: str) -> SentMessage:
    def ready() -> bool:
        current = fake.message(message.chat_id, message.message_id)
        return current is not None and current.has(contains)

    await fake.wait_for(ready, message=f"message {message.message_id} never showed {contains!r}")
    current = fake.message(message.chat_id, message.message_id)
    assert current is not None
    return current


async def with_button(fake: FakeBotApi, message: SentMessage, label: str) -> SentMessage:
    """Wait until this message (edited in place) has a button `label`."""
    def ready() -> bool:
        current = fake.message(message.chat_id, message.message_id)
        return current is not None and label in current.button_texts

    await fake.wait_for(ready, message=f"message {message.message_id} never had a button {label!r}")
    current = fake.message(message.chat_id, message.message_id)
    assert current is not None
    return current


async def open_by_chat(fake: FakeBotApi, secretary: FakeUser) -> None:
    """/newdeliberation through every step: topic, background with a photo, audience, opinion
    deadline, a vote with typed choices, single choice, open ballot, results at the close."""
    secretary.send("/newdeliberation")
    await fake.wait_message(SECRETARY, contains="请输入议题")
    secretary.send("要不要修村西的路")
    await fake.wait_message(SECRETARY, contains="请介绍一下情况")
    secretary.send("村西的路坏了很多年，下雨天走不了。")
    await fake.wait_message(SECRETARY, contains="收到了")
    secretary.send_photo(caption="路的照片")
    more = await fake.wait_message(SECRETARY, contains="收到了")
    secretary.press(more, "✅ 介绍完了")
    step = await fake.wait_message(SECRETARY, contains="请哪些人参加")
    secretary.press(step, "党员和村民")
    step = await fake.wait_message(SECRETARY, contains="说意见到什么时候截止")
    secretary.send("明天")  # typed: a day without an hour ends at 20:00
    step = await fake.wait_message(SECRETARY, contains="要不要大家投票")
    secretary.press(step, "要投票")
    await fake.wait_message(SECRETARY, contains="投票到什么时候截止")
    secretary.send("2天")  # typed, as the button would say
    await fake.wait_message(SECRETARY, contains="请输入投票的选项")
    secretary.send("修水泥路\n修柏油路")
    await fake.wait_message(SECRETARY, contains="2. 修柏油路")
    secretary.send("先不修")
    more = await fake.wait_message(SECRETARY, contains="3. 先不修")
    secretary.press(more, "✅ 选项写完了")
    step = await fake.wait_message(SECRETARY, contains="每人能选几项")
    secretary.press(step, "只能选一项")
    step = await fake.wait_message(SECRETARY, contains="记名还是无记名")
    secretary.press(step, "记名投票（投了可以改）")
    step = await fake.wait_message(SECRETARY, contains="随时看到结果")
    secretary.press(step, "不能，结束后再公布")
    confirm = await fake.wait_message(SECRETARY, contains="没问题就点「确定发起」")
    assert "议题：要不要修村西的路" in confirm.text and "党员和村民" in confirm.text
    assert "发起后会马上通知4人" in confirm.text
    assert "说意见截止：11月28日（周六）晚上8:00" in confirm.text
    assert "投票截止：11月30日（周一）晚上8:00（只能选一项，记名投票）" in confirm.text
    assert fake.texts(ZHANG) == []  # nobody is told before the confirmation
    secretary.press(confirm, "✅ 确定发起")
    await fake.wait_text(SECRETARY, "已发起")


async def write_opinion(fake: FakeBotApi, user: FakeUser, notice: SentMessage, words: str | None,
                        anonymous: bool) -> None:
    user.press(notice, "📋 看看这次议事")
    card = await fake.wait_message(user.id, contains="📋 议题：要不要修村西的路")
    user.press(card, "✍️ 我要说意见")
    await fake.wait_message(user.id, contains="请直接打字说说您的意见")
    if words is None:
        user.send_voice()
    else:
        user.send(words)
    ask = await fake.wait_message(user.id, contains="要带上您的名字吗")
    user.press(ask, "匿名发表（不显示名字）" if anonymous else "署名发表")
    await fake.wait_text(user.id, "您的意见已经记下了")


async def vote(fake: FakeBotApi, user: FakeUser, message: SentMessage, choice: str) -> SentMessage:
    user.press(message, "🗳 去投票")
    ballot = await fake.wait_message(user.id, contains="点选项打勾")
    user.press(ballot, f"☐ {choice}")
    ballot = await with_button(fake, ballot, f"☑ {choice}")
    user.press(ballot, "✅ 投出这一票")
    return await edited(fake, ballot, choice)


# --------------------------------------------------------------------------- the whole round

async def test_a_round_from_opening_to_a_published_result_across_a_restart(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    people = await village(bot, fake)
    zhang, li, wang = people[ZHANG], people[LI], people[WANG]
    await add(bot, fake, LAOWANG, "老王", "member")  # takes no part
    fake.group(WALL_CHAT, "三义村回音壁")
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    await bot.core.tickets.bind_wall(SECRETARY, sanyi.id, WALL_CHAT, "三义村回音壁")

    await open_by_chat(fake, secretary)
    notices = {uid: await fake.wait_message(uid, contains="📢 民主议事，请您参加") for uid in people}
    assert "村西的路坏了很多年" in notices[ZHANG].text
    await fake.wait_for(lambda: any(m.photo is not None or m.method == "copyMessage" for m in fake.history(ZHANG)),
                        message="the background photo was not copied")

    # Opinions: anonymous with a phone number (masked for readers), and a signed voice note.
    await write_opinion(fake, zhang, notices[ZHANG], "修水泥路结实，有事打我电话13812345678", anonymous=True)
    await write_opinion(fake, wang, notices[WANG], None, anonymous=False)
    li.press(notices[LI], "📋 看看这次议事")
    card = await fake.wait_message(LI, contains="📋 议题")
    li.press(card, "👀 看大家的意见")
    page = await fake.wait_message(LI, contains="大家的意见（共2条）")
    assert "① 匿名：修水泥路结实" in page.text and "13812345678" not in page.text and "张三" not in page.text
    assert "② 王五：（语音" in page.text
    assert await alert_text(fake, li.press(page, "👍 支持①")) == "👍 已支持"
    page = await edited(fake, page, "👍 1")
    assert await alert_text(fake, li.press(page, "👍 支持①")) == "您已经支持过这条意见了"

    # A day before the opinions close: a reminder to whoever has not taken part, none to those who
    # did (an opinion, or a +1), nor to the secretary who opened it.
    clock.set(local(2026, 11, 27, 20, 0))
    await bot.ticks()
    await fake.wait_message(LAOWANG, contains="⏰ 提醒：议事「要不要修村西的路」明天就不收意见了")
    assert not any("⏰ 提醒" in m.text for uid in (*people, SECRETARY) for m in fake.history(uid))

    # Voting starts when the opinions close (the job), with a notice to everyone in the audience.
    clock.set(local(2026, 11, 28, 20, 1))
    await bot.ticks()
    starts = {uid: await fake.wait_message(uid, contains="开始投票了") for uid in people}
    await vote(fake, zhang, starts[ZHANG], "修水泥路")
    changed = await vote(fake, zhang, starts[ZHANG], "修柏油路")  # changed before the close
    assert "已改票：修柏油路" in changed.text
    await vote(fake, wang, starts[WANG], "修水泥路")
    # A forged ballot (a choice that does not exist) and a forged proxy ballot change nothing.
    round_id = await bot.core.db.fetchval("SELECT MAX(id) FROM delib_rounds")
    forged = li.press_data(starts[LI].message_id, DELIB_BALLOT(BallotAction.CAST, round_id, 1 << 7))
    assert "这个选项不对" in await alert_text(fake, forged)
    forged = li.press_data(starts[LI].message_id, DELIB_BALLOT(BallotAction.CAST, round_id, 1, WANG))
    assert "没有这个权限" in await alert_text(fake, forged)

    # The bot is down at the deadline; a new runner on the same database closes the round, once.
    li.press(starts[LI], "🗳 去投票")
    late_ballot = await fake.wait_message(LI, contains="点选项打勾")
    await bot.stop()
    clock.set(local(2026, 11, 30, 21, 0))
    again = BotRunner(fake, bot.settings.database, clock)
    await again.start()
    try:
        late = li.press(late_ballot, "☐ 先不修")
        assert "投票已经结束了" in await alert_text(fake, late)
        await again.ticks()
        await again.ticks()
        for uid in (SECRETARY, ZHANG, WANG):
            result = await fake.wait_message(uid, contains="📊 民主议事结果：要不要修村西的路")
            assert "· 修水泥路：1票\n· 修柏油路：1票\n· 先不修：0票" in result.text
            assert "投票人数：2人，可以投票的共5人，参与率40%" in result.text
            assert "修水泥路结实" in result.text and "13812345678" not in result.text
        wall = await fake.wait_message(WALL_CHAT, contains="📊 民主议事结果")
        assert "张三" not in wall.text and "13812345678" not in wall.text
        await again.idle()
        assert sum("民主议事结果" in m.text for m in fake.history(ZHANG)) == 1
        assert sum("民主议事结果" in m.text for m in fake.history(WALL_CHAT)) == 1
        # LI supported an opinion: a participant, told too.
        await fake.wait_message(LI, contains="📊 民主议事结果")
    finally:
        await again.stop()


# --------------------------------------------------------------------------- a secret round, 代投

async def open_round(bot: BotRunner, **extra: Any) -> int:
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    values: dict[str, Any] = dict(org_id=sanyi.id, title="村委会选址", audience=Audience.BOTH,
                                  opinions_until=START + timedelta(days=1))
    values.update(extra)
    return (await bot.core.deliberation.open(SECRETARY, RoundSpec(**values))).id


async def test_a_secret_round_with_a_proxy_ballot_leaves_no_link(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    people = await village(bot, fake)
    laowang = await add(bot, fake, LAOWANG, "老王", "member")
    laowang.send("/start")  # he has a chat with the bot (his grandson set it up)
    await fake.wait_message(LAOWANG)
    labels = ("旧小学ZQX", "村口空地WQY")
    await open_round(bot, votes_until=START + timedelta(days=2), options=labels, secret=True)
    clock.set(START + timedelta(days=1, minutes=1))
    await bot.ticks()
    starts = {uid: await fake.wait_message(uid, contains="开始投票了") for uid in people}
    await vote(fake, people[ZHANG], starts[ZHANG], labels[0])
    await vote(fake, people[LI], starts[LI], labels[1])
    # A secret ballot cannot be changed.
    people[ZHANG].press(starts[ZHANG], "🗳 去投票")
    await fake.wait_message(ZHANG, contains="无记名投票，投了就不能改")

    # 代投: the secretary votes for 老王, with a reason; 老王 is told, without the choice.
    secretary.send("/deliberations")
    listing = await fake.wait_message(SECRETARY, contains="民主议事（正在进行的")
    secretary.press(listing, listing.buttons[0][0])
    card = await fake.wait_message(SECRETARY, contains="📋 议题：村委会选址")
    secretary.press(card, "🧓 代投（替不会用手机的人投票）")
    names = await fake.wait_message(SECRETARY, contains="可以代投的人")
    assert "张三" not in names.button_texts and "老王" in names.button_texts
    secretary.press(names, "老王")
    reason = await fake.wait_message(SECRETARY, contains="替老王投票（代投）")
    secretary.press(reason, "年纪大，不会用手机")
    ballot = await fake.wait_message(SECRETARY, contains="这是替老王代投")
    secretary.press(ballot, f"☐ {labels[0]}")
    ballot = await with_button(fake, ballot, f"☑ {labels[0]}")
    secretary.press(ballot, "✅ 投出这一票")
    await edited(fake, ballot, "已替老王投票")
    told = await fake.wait_message(LAOWANG, contains="替您在议事「村委会选址」里投了票")
    assert labels[0] not in told.text

    clock.set(START + timedelta(days=2, minutes=1))
    await bot.ticks()
    result = await fake.wait_message(ZHANG, contains="📊 民主议事结果：村委会选址")
    assert f"· {labels[0]}：2票\n· {labels[1]}：1票" in result.text
    assert "其中代投 1 票" in result.text
    await assert_no_link(bot.core, [ZHANG, LI, LAOWANG], labels, [2, 1])

    # The ledger (台账): the round with its counts, and the proxy ballot's record without its choice.
    secretary.send("/deliberations")
    listing = await fake.wait_message(SECRETARY, contains="民主议事（正在进行的")
    secretary.press(listing, "📥 导出三义村党支部2026年议事台账")
    sheet = await fake.wait_message(SECRETARY, contains="三义村党支部 2026年民主议事台账")
    assert sheet.document is not None and sheet.document[0].endswith(".xlsx")
    book = load_workbook(io.BytesIO(sheet.document[1]))
    rounds = [[c.value for c in row] for row in book["民主议事"].iter_rows(min_row=2)]
    assert rounds[0][2] == "村委会选址" and rounds[0][8] == "无记名投票" and rounds[0][11] == 1
    assert f"{labels[0]}：2票" in rounds[0][9] and rounds[0][10] == "3/5人（60%）"
    record = [[c.value for c in row] for row in book["议事记录"].iter_rows(min_row=2)]
    assert [(r[2], r[3], r[4], r[5]) for r in record] == [("王建国", "代投", "老王", "年纪大，不会用手机")]
    assert not any(label in str(cell) for row in record for cell in row for label in labels)


# --------------------------------------------------------------------------- the opener manages

async def test_hide_extend_close_early_and_cancel(bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    people = await village(bot, fake)
    round_id = await open_round(bot, opinions_until=START + timedelta(days=5))
    await bot.core.deliberation.give_opinion(WANG, round_id, "都是骗人的，骂人的话", anonymous=True)
    await bot.core.deliberation.give_opinion(ZHANG, round_id, "选在旧小学", anonymous=False)

    secretary.send("/deliberations")
    listing = await fake.wait_message(SECRETARY, contains="民主议事（正在进行的")
    secretary.press(listing, listing.buttons[0][0])
    card = await fake.wait_message(SECRETARY, contains="📋 议题：村委会选址")
    secretary.press(card, "👀 看大家的意见")
    page = await fake.wait_message(SECRETARY, contains="大家的意见（共2条）")
    secretary.press(page, "🚫 隐藏①")
    await fake.wait_message(SECRETARY, contains="请写一句隐藏这条意见的原因")
    secretary.send("有骂人的话")
    await fake.wait_message(SECRETARY, contains="已隐藏这条意见")
    await fake.wait_message(WANG, contains="被发起人隐藏了。原因：有骂人的话")
    # Six opinions: five on a page, the next page in place of the first.
    for n, pid in enumerate((LI, SECRETARY, ZHANG, LI)):
        await bot.core.deliberation.give_opinion(pid, round_id, f"第{n + 3}条意见", anonymous=True)
    secretary.press(card, "👀 看大家的意见")
    page = await fake.wait_message(SECRETARY, contains="大家的意见（共6条）")
    assert "这条意见已被发起人隐藏。原因：有骂人的话" in page.text and "第6条意见" not in page.text
    secretary.press(page, "下一页 ➡️")
    page = await edited(fake, page, "第6条意见")
    assert "⬅️ 上一页" in page.button_texts
    # Someone else cannot hide: the button is not offered, and forged data is refused.
    people[ZHANG].send("/deliberations")
    listing = await fake.wait_message(ZHANG, contains="民主议事（正在进行的")
    people[ZHANG].press(listing, listing.buttons[0][0])
    card = await fake.wait_message(ZHANG, contains="📋 议题")
    assert "⚙️ 管理这次议事" not in card.button_texts

    # Extend once, with a reason; everyone is told; no second extension is offered.
    secretary.press(card_of(fake), "⚙️ 管理这次议事")
    manage = await fake.wait_message(SECRETARY, contains="管理议事「村委会选址」")
    secretary.press(manage, "延长3天")
    await fake.wait_message(SECRETARY, contains="请写一句延长的原因")
    secretary.send("农忙，大家没空")
    await fake.wait_message(SECRETARY, contains="已延长，新的截止时间：12月5日")
    for uid in people:
        await fake.wait_message(uid, contains="延长了时间。原因：农忙，大家没空")
    secretary.press(card_of(fake), "⚙️ 管理这次议事")
    manage = await fake.wait_message(SECRETARY, contains="管理议事「村委会选址」")
    assert not any(label.startswith("延长") for label in manage.button_texts)

    # Close early with a reason: the result goes to those who took part.
    secretary.press(manage, "⏹ 提前结束")
    await fake.wait_message(SECRETARY, contains="请写一句提前结束的原因")
    secretary.send("意见已经很一致了")
    await fake.wait_message(SECRETARY, contains="已提前结束")
    result = await fake.wait_message(ZHANG, contains="📊 民主议事结果")
    assert "发起人提前结束了议事。原因：意见已经很一致了" in result.text and "骂人" not in result.text

    # Cancel another round: everyone is told, and its reminders are not sent.
    other = await open_round(bot, title="修建文化广场", opinions_until=START + timedelta(days=5))
    secretary.send("/deliberations")
    listing = await fake.wait_message(SECRETARY, contains="民主议事（正在进行的")
    secretary.press(listing, "修建文化广场（征求意见中）")
    card = await fake.wait_message(SECRETARY, contains="📋 议题：修建文化广场")
    secretary.press(card, "⚙️ 管理这次议事")
    manage = await fake.wait_message(SECRETARY, contains="管理议事「修建文化广场」")
    secretary.press(manage, "❌ 取消这次议事")
    await fake.wait_message(SECRETARY, contains="请写一句取消的原因")
    secretary.send("上级另有安排")
    await fake.wait_message(SECRETARY, contains="已取消")
    for uid in people:
        await fake.wait_message(uid, contains="议事「修建文化广场」已取消。原因：上级另有安排")
    clock.set(START + timedelta(days=4, hours=12))
    await bot.ticks()
    assert not any("修建文化广场" in m.text and "提醒" in m.text for m in fake.history(ZHANG))
    assert await bot.core.db.fetchval("SELECT status FROM delib_rounds WHERE id = ?", (other,)) == "cancelled"


def card_of(fake: FakeBotApi) -> SentMessage:
    """The secretary's latest round card."""
    return next(m for m in reversed(fake.history(SECRETARY)) if m.has("📋 议题："))


# --------------------------------------------------------------------------- every prompt takes typing

async def listed_card(fake: FakeBotApi, user: FakeUser) -> SentMessage:
    """/deliberations, then the first round's card as it is now."""
    user.send("/deliberations")
    listing = await fake.wait_message(user.id, contains="民主议事（正在进行的")
    user.press(listing, listing.buttons[0][0])
    return await fake.wait_message(user.id, contains="📋 议题：")

async def test_every_deliberation_prompt_takes_a_typed_answer(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    """Long because it answers every deliberation prompt that invites typing, in the order a round
    meets them: opening (a sticker, then the typed topic; a typed number of choices), an opinion
    (a sticker, then text), a typed option, and a proxy ballot found by a typed name with a typed
    reason."""
    secretary = fake.user(SECRETARY, first_name="王建国")
    people = await village(bot, fake)
    await add(bot, fake, LAOWANG, "老王", "member")
    secretary.send("/newdeliberation")
    await fake.wait_message(SECRETARY, contains="请输入议题")
    secretary.send_sticker()
    await fake.wait_text(SECRETARY, "请打字回答。")
    secretary.send("村里的晒谷场怎么用")
    step = await fake.wait_message(SECRETARY, contains="请介绍一下情况")
    secretary.press(step, "✅ 介绍完了")
    step = await fake.wait_message(SECRETARY, contains="请哪些人参加")
    secretary.press(step, "党员和村民")
    await fake.wait_message(SECRETARY, contains="说意见到什么时候截止")
    secretary.send("明天")
    step = await fake.wait_message(SECRETARY, contains="要不要大家投票")
    secretary.press(step, "要投票")
    await fake.wait_message(SECRETARY, contains="投票到什么时候截止")
    secretary.send("2天")
    await fake.wait_message(SECRETARY, contains="请输入投票的选项")
    secretary.send("轮流用\n按户分时间\n集体统一晒")
    step = await fake.wait_message(SECRETARY, contains="3. 集体统一晒")
    secretary.press(step, "✅ 选项写完了")
    await fake.wait_message(SECRETARY, contains="每人能选几项？也可以直接打数字")
    secretary.send("2")  # typed instead of the 最多选2项 button
    step = await fake.wait_message(SECRETARY, contains="记名还是无记名")
    secretary.press(step, "记名投票（投了可以改）")
    step = await fake.wait_message(SECRETARY, contains="随时看到结果")
    secretary.press(step, "能，随时看")
    confirm = await fake.wait_message(SECRETARY, contains="没问题就点「确定发起」")
    assert "议题：村里的晒谷场怎么用" in confirm.text and "最多选2项" in confirm.text
    secretary.press(confirm, "✅ 确定发起")
    await fake.wait_text(SECRETARY, "已发起")
    round_id = await bot.core.db.fetchval("SELECT MAX(id) FROM delib_rounds")
    assert await bot.core.db.fetchval("SELECT max_choices FROM delib_rounds WHERE id = ?", (round_id,)) == 2

    # An opinion: a sticker is not an opinion (the prompt stays open), typed text is.
    notice = await fake.wait_message(WANG, contains="📢 民主议事，请您参加")
    people[WANG].press(notice, "📋 看看这次议事")
    card = await fake.wait_message(WANG, contains="📋 议题：村里的晒谷场怎么用")
    people[WANG].press(card, "✍️ 我要说意见")
    await fake.wait_message(WANG, contains="请直接打字说说您的意见，也可以发一段语音。")
    people[WANG].send_sticker()
    await fake.wait_text(WANG, "请打字或者发语音。")
    people[WANG].send("秋收时先让种粮多的人家用")
    ask = await fake.wait_message(WANG, contains="要带上您的名字吗")
    people[WANG].press(ask, "署名发表")
    await fake.wait_text(WANG, "您的意见已经记下了")
    assert [tuple(r) for r in await bot.core.db.fetchall("SELECT author_id, kind, text FROM delib_opinions")] \
        == [(WANG, "text", "秋收时先让种粮多的人家用")]

    # A typed option, before the voting starts.
    secretary.press(await listed_card(fake, secretary), "⚙️ 管理这次议事")
    manage = await fake.wait_message(SECRETARY, contains="管理议事「村里的晒谷场怎么用」")
    secretary.press(manage, "➕ 加一个投票选项")
    await fake.wait_message(SECRETARY, contains="请输入新的投票选项：")
    secretary.send("谁先来谁先用")
    await fake.wait_text(SECRETARY, "✅ 已加为第4个选项")
    options = await bot.core.deliberation.options(SECRETARY, round_id)
    assert options == ["轮流用", "按户分时间", "集体统一晒", "谁先来谁先用"]

    # 代投 once voting runs: a typed name finds the person (or nobody), a typed reason is recorded.
    clock.set(local(2026, 11, 28, 20, 1))
    await bot.ticks()
    await fake.wait_message(ZHANG, contains="开始投票了")
    secretary.press(await listed_card(fake, secretary), "🧓 代投（替不会用手机的人投票）")
    names = await fake.wait_message(SECRETARY, contains="可以代投的人（还没投票的，共4人）")
    assert "也可以直接打名字查找" in names.text
    secretary.send("赵钱孙")
    await fake.wait_message(SECRETARY, contains="没有找到还没投票的人（共0人）。可以再打名字试试。")
    secretary.send("老王")
    names = await fake.wait_message(SECRETARY, contains="可以代投的人（还没投票的，共1人）")
    assert names.button_texts == ["老王"]
    secretary.press(names, "老王")
    await fake.wait_message(SECRETARY, contains="替老王投票（代投）：请选择原因，或者直接打字写原因。")
    secretary.send("住院了，托我代投")
    ballot = await fake.wait_message(SECRETARY, contains="这是替老王代投")
    secretary.press(ballot, "☐ 轮流用")
    ballot = await with_button(fake, ballot, "☑ 轮流用")
    secretary.press(ballot, "✅ 投出这一票")
    await edited(fake, ballot, "已替老王投票：轮流用")
    proxies = await bot.core.db.fetchall("SELECT actor_id, person_id, note FROM delib_events WHERE action = 'proxy'")
    assert [tuple(r) for r in proxies] == [(SECRETARY, LAOWANG, "住院了，托我代投 → 轮流用")]


async def test_an_opinion_typed_while_a_question_is_open_asks_which_one(bot: BotRunner, fake: FakeBotApi) -> None:
    """A resident writing an opinion who was also asked to add to a problem: the typed text brings
    the chooser, whose button names the deliberation in plain words, and lands where they tap."""
    fake.user(SECRETARY, first_name="王建国")
    wang = (await village(bot, fake))[WANG]
    ticket = await bot.core.tickets.submit(WANG, [Item("text", "村口路灯坏了")], "infrastructure", True, False)
    await bot.core.tickets.ask_info(SECRETARY, ticket.id, "具体在哪里？")
    await fake.wait_message(WANG, contains="书记需要您补充")
    await open_round(bot)
    notice = await fake.wait_message(WANG, contains="📢 民主议事，请您参加")
    wang.press(notice, "📋 看看这次议事")
    card = await fake.wait_message(WANG, contains="📋 议题：村委会选址")
    wang.press(card, "✍️ 我要说意见")
    await fake.wait_message(WANG, contains="请直接打字说说您的意见")

    wang.send("选在村口空地，大家都方便")
    chooser = await fake.wait_message(WANG, contains="是回答哪一个？")
    assert chooser.button_texts == ["补充问题：村口路灯坏了", "民主议事：正在写的意见或回答", "作为新问题提交"]
    wang.press(chooser, "民主议事：正在写的意见或回答")
    ask = await fake.wait_message(WANG, contains="要带上您的名字吗")
    wang.press(ask, "匿名发表（不显示名字）")
    await fake.wait_text(WANG, "您的意见已经记下了")
    assert await bot.core.db.fetchval("SELECT text FROM delib_opinions WHERE author_id = ?", (WANG,)) \
        == "选在村口空地，大家都方便"
    items = await bot.core.tickets.items(SYSTEM_ACTOR, ticket.id)
    assert [item.text for side, item in items if side == "resident"] == ["村口路灯坏了"]


async def test_cancel_while_an_opinion_is_typed_asks_before_dropping_it(bot: BotRunner, fake: FakeBotApi) -> None:
    """取消 after typing an opinion asks first: 回到上一步 keeps it, 放弃这段内容 drops it."""
    wang = (await village(bot, fake))[WANG]
    await open_round(bot)
    notice = await fake.wait_message(WANG, contains="📢 民主议事，请您参加")
    wang.press(notice, "📋 看看这次议事")
    card = await fake.wait_message(WANG, contains="📋 议题：村委会选址")
    wang.press(card, "✍️ 我要说意见")
    await fake.wait_message(WANG, contains="请直接打字说说您的意见")
    wang.send("选在旧小学")
    ask = await fake.wait_message(WANG, contains="要带上您的名字吗")
    wang.send("/cancel")
    choice = await fake.wait_message(WANG, contains="您已经输入了一些内容。要放弃吗？")
    wang.press(choice, "↩️ 回到上一步")
    await edited(fake, choice, "刚才输入的内容都还在")
    wang.press(ask, "署名发表")
    await fake.wait_text(WANG, "您的意见已经记下了")
    assert await bot.core.db.fetchval("SELECT text FROM delib_opinions WHERE author_id = ?", (WANG,)) == "选在旧小学"

    wang.press(card, "✍️ 我要说意见")
    await fake.wait_message(WANG, contains="请直接打字说说您的意见")
    wang.send("再补一句")
    await fake.wait_message(WANG, contains="要带上您的名字吗")
    wang.send("/cancel")
    choice = await fake.wait_message(WANG, contains="要放弃吗？")
    wang.press(choice, "🗑 放弃这段内容")
    await edited(fake, choice, "已放弃刚才输入的内容。")
    assert await bot.core.flows.get(WANG) is None
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM delib_opinions") == 1
