"""End to end: the opinion map of a deliberation round (issue 13) as people see it in their chats,
through the fake Bot API with the settable clock (START is Friday 2026-11-27, 09:00 in Shanghai).

The chat tree: 三义村党支部 with secretary 1001 王建国; each test adds the villagers it needs."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import aiohttp
from openpyxl import load_workbook
from orgtree import SECRETARY
from PIL import Image
from test_e2e_deliberation import WALL_CHAT, add, alert_text, edited

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.callbacks import OM_HIDE, OM_ROUND, OM_VOTE, OmAct, OmChoice
from bot.clock import SettableClock
from bot.services.deliberation import Audience, RoundSpec
from bot.web import WallSite
from conftest import START, BotRunner

WAIT = 15.0
# Two camps of four; both accept the first two statements; they split on the others.
CAMP_A = {2201: "赵一", 2202: "钱二", 2203: "孙三", 2204: "李四"}
CAMP_B = {2205: "周五", 2206: "吴六", 2207: "郑七", 2208: "王八"}
SHARED = ["垃圾要按时清运", "村里要多放几个垃圾桶"]
SPLIT = ["垃圾费按户收", "垃圾站建在村东", "请保洁员每天打扫", "垃圾分四类", "每户自己送到垃圾站",
         "垃圾站建在村西", "不收垃圾费", "垃圾只分两类"]
SEEDS = SHARED + SPLIT


def stance(uid: int, text: str) -> str:
    """How a villager answers a statement: the shared ones 同意; camp A agrees with the first half of
    the split ones, camp B with the second half."""
    if text in SHARED:
        return "👍 同意"
    first_half = SPLIT.index(text) < len(SPLIT) // 2 if text in SPLIT else True
    return "👍 同意" if first_half == (uid in CAMP_A) else "👎 不同意"


async def villagers(bot: BotRunner, fake: FakeBotApi) -> dict[int, FakeUser]:
    return {uid: await add(bot, fake, uid, name, "resident") for uid, name in {**CAMP_A, **CAMP_B}.items()}


async def open_round(bot: BotRunner, fake: FakeBotApi) -> int:
    sanyi = await bot.core.orgs.by_code("sanyi")
    assert sanyi is not None
    fake.group(WALL_CHAT, "三义村回音壁")
    await bot.core.tickets.bind_wall(SECRETARY, sanyi.id, WALL_CHAT, "三义村回音壁")
    rnd = await bot.core.deliberation.open(SECRETARY, RoundSpec(
        org_id=sanyi.id, title="村里的垃圾怎么处理", audience=Audience.RESIDENTS,
        opinions_until=START + timedelta(days=2)))
    return rnd.id


async def card_of(fake: FakeBotApi, user: FakeUser) -> SentMessage:
    user.send("/deliberations")
    listing = await fake.wait_message(user.id, contains="民主议事（正在进行的", timeout=WAIT)
    user.press(listing, listing.buttons[0][0])
    return await fake.wait_message(user.id, contains="📋 议题：村里的垃圾怎么处理", timeout=WAIT)


async def seed_and_open(fake: FakeBotApi, secretary: FakeUser) -> None:
    """The opener turns the map on, types the seeds (in two messages), and opens it."""
    card = await card_of(fake, secretary)
    secretary.press(card, "🗺 开启看法地图（大家表态）")
    await fake.wait_message(SECRETARY, contains="请直接打字写几条种子看法", timeout=WAIT)
    secretary.send("\n".join(SEEDS[:6]))
    await fake.wait_message(SECRETARY, contains="已有6条种子看法", timeout=WAIT)
    secretary.send("\n".join(SEEDS[6:]))
    more = await fake.wait_message(SECRETARY, contains="已有10条种子看法", timeout=WAIT)
    secretary.press(more, "▶️ 开放表态")
    await fake.wait_message(SECRETARY, contains="已开放表态，已通知8人", timeout=WAIT)


def statement_of(message: SentMessage) -> str:
    return message.text.split("「", 1)[1].split("」", 1)[0]


async def answer_all(fake: FakeBotApi, user: FakeUser, screen: SentMessage) -> SentMessage:
    """Vote on every statement shown, one tap each: the same message is edited to the next one."""
    while "您同意这个看法吗" in screen.text:
        shown = statement_of(screen)
        user.press(screen, stance(user.id, shown))

        def moved(message_id: int = screen.message_id, edits: int = screen.edits) -> bool:
            now = fake.message(user.id, message_id)
            return now is not None and now.edits > edits

        await fake.wait_for(moved, timeout=WAIT, message=f"{user.id}: no next statement after {shown!r}")
        current = fake.message(user.id, screen.message_id)
        assert current is not None
        screen = current
    return screen


async def test_a_round_with_an_opinion_map_from_seeds_to_the_published_result(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    people = await villagers(bot, fake)
    await open_round(bot, fake)
    await seed_and_open(fake, secretary)
    notices = {uid: await fake.wait_message(uid, contains="开始表态了", timeout=WAIT) for uid in people}

    # One villager writes a statement of their own before voting; then everyone votes on everything.
    zhao = people[2201]
    zhao.press(notices[2201], "🗳 表态")
    first = await edited(fake, notices[2201], "您同意这个看法吗")  # the notice becomes the voting screen
    assert "（第1条，共10条）" in first.text and "再表态7条" in first.text
    zhao.press(first, "✍️ 写一条我的看法")
    await fake.wait_message(2201, contains="请直接打字写一条您的看法", timeout=WAIT)
    zhao.send("垃圾站旁边种一排树")
    added = await fake.wait_message(2201, contains="您的看法已经加进去了", timeout=WAIT)
    SPLIT.append("垃圾站旁边种一排树")  # camp A's (the first half … and everyone else's "else")
    try:
        screens = {}
        for uid, user in people.items():
            start = added if uid == 2201 else notices[uid]
            user.press(start, "🗳 继续表态" if uid == 2201 else "🗳 表态")
            screens[uid] = await edited(fake, start, "您同意这个看法吗")
        done = await asyncio.gather(*(answer_all(fake, people[uid], screens[uid]) for uid in people))
    finally:
        SPLIT.pop()
    for screen in done:
        assert "您都表过态了" in screen.text
        assert screen.edits >= 10  # one edit a vote: never a new message per statement
    # A stale press (the first statement again, on the same message) changes nothing.
    votes = await bot.core.db.fetchval("SELECT COUNT(*) FROM om_votes")
    sid = await bot.core.db.fetchval("SELECT MIN(id) FROM om_statements")
    people[2205].press_data(done[4].message_id, OM_VOTE(sid, OmChoice.DISAGREE))
    await bot.idle()
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM om_votes") == votes

    # The map is drawn by the job (at most once a minute); a restart loses neither votes nor the map.
    clock.advance(timedelta(minutes=2))
    await bot.ticks()
    await bot.restart()
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM om_votes") == votes
    card = await card_of(fake, people[2202])
    people[2202].press(card, "🗳 表态")
    where = await edited(fake, card, "看法最接近")
    assert "📍 您和第" in where.text and "组的看法最接近（4人）" in where.text

    # The opener sees the live map.
    card = await card_of(fake, secretary)
    secretary.press(card, "🗺 看法地图")
    await fake.wait_for(lambda: any(m.photo for m in fake.history(SECRETARY)), timeout=WAIT, message="no live map")
    await fake.wait_message(SECRETARY, contains="🗺 看法地图结果", timeout=WAIT)

    # The automatic close: the three parts and the chart on the wall and to the participants.
    clock.advance(timedelta(days=2))
    await bot.ticks()
    result = await fake.wait_message(WALL_CHAT, contains="🗺 看法地图结果：村里的垃圾怎么处理", timeout=WAIT)
    bridging = result.text.split("🤝 各组都认同的看法：")[1].split("👥")[0]
    assert SHARED[0] in bridging and SHARED[1] in bridging
    assert "👥 第1组（4人）的代表看法" in result.text and "👥 第2组（4人）的代表看法" in result.text
    assert "⚖️ 分歧最大的看法" in result.text and "9人表了态" not in result.text
    assert "8人表了态，共11条看法，大家的看法分成2组" in result.text
    charts = [m for m in fake.history(WALL_CHAT) if m.photo]
    assert len(charts) == 1 and Image.open(io.BytesIO(charts[0].photo or b"")).format == "PNG"
    await fake.wait_message(2203, contains="🗺 看法地图结果", timeout=WAIT)
    await bot.ticks()
    assert sum("看法地图结果" in m.text for m in fake.history(WALL_CHAT)) == 1


async def test_no_output_carries_a_participant_id_or_name(
        bot: BotRunner, fake: FakeBotApi, clock: SettableClock, tmp_path: Path) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    people = await villagers(bot, fake)
    await open_round(bot, fake)
    await seed_and_open(fake, secretary)
    notices = {uid: await fake.wait_message(uid, contains="开始表态了", timeout=WAIT) for uid in people}
    screens = {}
    for uid, user in people.items():
        user.press(notices[uid], "🗳 表态")
        screens[uid] = await edited(fake, notices[uid], "您同意这个看法吗")
    await asyncio.gather(*(answer_all(fake, people[uid], screens[uid]) for uid in people))
    clock.advance(timedelta(days=3))
    await bot.ticks()
    await fake.wait_message(WALL_CHAT, contains="🗺 看法地图结果", timeout=WAIT)

    outputs: list[str] = [m.text for m in fake.history(WALL_CHAT)]
    outputs += [m.text for uid in people for m in fake.history(uid) if "看法地图结果" in m.text]
    # The ledger workbook, asked for in chat.
    secretary.send("/deliberations")
    listing = await fake.wait_message(SECRETARY, contains="民主议事（正在进行的", timeout=WAIT)
    secretary.press(listing, next(b for b in listing.button_texts if "导出" in b))
    await fake.wait_for(lambda: any(m.document for m in fake.history(SECRETARY)), timeout=WAIT, message="no ledger")
    document = next(m for m in fake.history(SECRETARY) if m.document)
    assert document.document is not None
    book = load_workbook(io.BytesIO(document.document[1]))
    assert "看法地图" in book.sheetnames
    outputs += [str(c.value) for sheet in book.worksheets if sheet.title == "看法地图"
                for row in sheet.iter_rows() for c in row if c.value is not None]
    # The web wall's rounds.
    site = WallSite(bot.core)
    await site.start("127.0.0.1", 0)
    try:
        assert site.runner is not None
        url = f"http://127.0.0.1:{site.runner.addresses[0][1]}/wall/sanyi?show=rounds"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            page = await response.text()
        assert "村里的垃圾怎么处理" in page and "各组都认同的看法" in page and SHARED[0] in page
        outputs.append(page)
    finally:
        await site.stop()
    text = "\n".join(outputs)
    assert SHARED[0] in text
    for uid, name in {**CAMP_A, **CAMP_B}.items():
        assert name not in text and str(uid) not in text
    # The chart: pixels only (no text chunk names anyone).
    charts = [m.photo for m in fake.history(WALL_CHAT) if m.photo]
    assert charts
    image = Image.open(io.BytesIO(charts[0] or b""))
    for uid, name in {**CAMP_A, **CAMP_B}.items():
        assert all(name not in str(v) and str(uid) not in str(v) for v in image.info.values())


async def test_every_opinion_map_prompt_takes_a_typed_answer(bot: BotRunner, fake: FakeBotApi) -> None:
    """The seeds prompt and the statement prompt, answered by typing: a line too long and a photo
    keep the prompt open; the typed answers land as statements."""
    secretary = fake.user(SECRETARY, first_name="王建国")
    people = await villagers(bot, fake)
    round_id = await open_round(bot, fake)
    card = await card_of(fake, secretary)
    secretary.press(card, "🗺 开启看法地图（大家表态）")
    await fake.wait_message(SECRETARY, contains="请直接打字写几条种子看法", timeout=WAIT)
    secretary.send("长" * 141)
    await fake.wait_message(SECRETARY, contains="一条看法最多140个字，这条有141个字", timeout=WAIT)
    secretary.send_photo()
    await fake.wait_message(SECRETARY, contains="请用文字写，一句话就行", timeout=WAIT)
    secretary.send("垃圾要按时清运")
    more = await fake.wait_message(SECRETARY, contains="已有1条种子看法", timeout=WAIT)
    secretary.press(more, "▶️ 开放表态")
    await fake.wait_message(SECRETARY, contains="已开放表态", timeout=WAIT)

    user = people[2201]
    notice = await fake.wait_message(2201, contains="开始表态了", timeout=WAIT)
    user.press(notice, "🗳 表态")
    screen = await edited(fake, notice, "您同意这个看法吗")
    user.press(screen, "✍️ 写一条我的看法")
    await fake.wait_message(2201, contains="请直接打字写一条您的看法", timeout=WAIT)
    user.send_photo()
    await fake.wait_message(2201, contains="请用文字写，一句话就行", timeout=WAIT)
    user.send("垃圾站旁边种一排树")
    await fake.wait_message(2201, contains="您的看法已经加进去了", timeout=WAIT)
    texts = [r[0] for r in await bot.core.db.fetchall(
        "SELECT text FROM om_statements WHERE round_id = ? ORDER BY id", (round_id,))]
    assert texts == ["垃圾要按时清运", "垃圾站旁边种一排树"]
    # Forged presses by a villager (the opener's buttons) change nothing and get a clear answer.
    sid = await bot.core.db.fetchval("SELECT MIN(id) FROM om_statements WHERE round_id = ?", (round_id,))
    for data in (OM_HIDE(sid, 0), OM_ROUND(OmAct.SEED, round_id), OM_ROUND(OmAct.MAP, round_id)):
        assert await alert_text(fake, people[2202].press_data(notice.message_id, data)) == "您不能做这个操作。"
    assert await alert_text(fake, people[2202].press_data(notice.message_id, OM_HIDE(sid, 7))) == \
        "这个按钮已失效，请重新操作。"
    await bot.idle()
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM om_statements WHERE hidden_at IS NOT NULL") == 0
    assert await bot.core.flows.get(2202) is None
    # The next text is a problem for the wall again, not a second statement.
    assert await bot.core.flows.get(2201) is None
