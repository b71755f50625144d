"""The meeting ledger (台账) as an inspector reads it: the summary's periods in date order, 不适用
before the org used the bot and the first period counted, Chinese dates and file names; and
/ledger's period picker and typed dates end to end through the fake Bot API.

The service tests run a real Core on a SQLite file whose clock starts on 2026-07-01, when the
county loads its tree without people; 三义's people join on 2026-08-20 (the day it starts using the
bot). Each workbook is read back with openpyxl."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from openpyxl.workbook import Workbook
from orgtree import ERLANG_SECRETARY, MEMBER, SECRETARY, TOWN_ORG, TREE, VILLAGE_ORG, load, make_core, org_file
from pg import env_database

from bench.fakebotapi import FakeBotApi, FakeUser, SentMessage
from bot.actors import SYSTEM_ACTOR
from bot.callbacks import MEETING_LEDGER, MEETING_LEDGER_MENU, LedgerAction
from bot.clock import SettableClock
from bot.core import Core
from bot.services.ledger_period import choices, counted, parse_range
from bot.services.meetings import Draft, MeetingService
from conftest import BotRunner

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parent.parent
LOADED = datetime(2026, 7, 1, 9, 0, tzinfo=SHANGHAI)   # the county loads the tree, nobody in it
JOINED = datetime(2026, 8, 20, 9, 0, tzinfo=SHANGHAI)  # 三义's people join: it starts using the bot
NOW = datetime(2026, 12, 20, 9, 0, tzinfo=SHANGHAI)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


# --- the service, on a real SQLite file ----------------------------------------------------------

@pytest.fixture(name="village")
async def village_fixture(tmp_path: Path) -> AsyncIterator[Core]:
    """三义 in the bot since 2026-08-20, with a general meeting held on 8-25 (in the third quarter,
    which it had too little of to be counted) and a committee meeting on 9-10; the clock at 12-20."""
    clock = SettableClock(LOADED)
    core = make_core(tmp_path / "ledger.sqlite3", clock)
    await core.open()
    try:
        await load(core, org_file(()))
        clock.set(JOINED)
        await load(core, TREE)
        await hold(core, clock, local(2026, 8, 25, 15, 0), "general_meeting", "学习党章")
        await hold(core, clock, local(2026, 9, 10, 15, 0), "committee_meeting", "研究发展党员")
        clock.set(NOW)
        yield core
    finally:
        await core.close()


async def sanyi(core: Core) -> int:
    org = await core.orgs.by_code("sanyi")
    assert org is not None
    return org.id


async def hold(core: Core, clock: SettableClock, start: datetime, kind: str, topic: str) -> int:
    """Schedule a meeting, let the secretary check in, record minutes and close it as held."""
    clock.set(start - timedelta(days=3))
    svc = core.meetings
    created = await svc.create(SECRETARY, Draft(kind=kind, org_id=await sanyi(core), starts_at=start,
                                                ends_at=start + timedelta(hours=2), place="村委会", topic=topic))
    mid = created.meeting.id
    clock.set(start + timedelta(minutes=10))
    await svc.check_in(SECRETARY, mid)
    await svc.add_minutes(SECRETARY, mid, "text", "会议记录")
    await svc.close(SECRETARY, mid)
    return mid


def summary_of(book: Workbook) -> list[list[Any]]:
    return [[c.value for c in row] for row in book.worksheets[0].iter_rows(min_row=5)]


async def workbook(core: Core, first: date, last: date, lang: str = "zh_CN") -> tuple[str, Workbook]:
    name, content = await core.meetings.ledger(SECRETARY, await sanyi(core), first, last, lang)
    return name, load_workbook(io.BytesIO(content))


async def test_the_summary_is_in_date_order_with_not_applicable_before_the_org_used_the_bot(village: Core) -> None:
    name, book = await workbook(village, date(2026, 1, 1), date(2026, 12, 31))
    assert name == "台账-三义村党支部-2026.xlsx"
    rows = summary_of(book)
    periods = list(dict.fromkeys(r[0] for r in rows))
    # Each period appears once it has ended: the months, then the quarter they close, the year last.
    assert periods == ["2026年1月", "2026年2月", "2026年3月", "2026年第1季度", "2026年4月", "2026年5月", "2026年6月",
                       "2026年第2季度", "2026年7月", "2026年8月", "2026年9月", "2026年第3季度", "2026年10月",
                       "2026年11月", "2026年12月", "2026年第4季度", "2026年"]
    result = {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}
    # Before 8-20 (and August, of which the bot had less than half): not counted, not 未完成.
    for month in range(1, 9):
        assert result[(f"2026年{month}月", "支部委员会会议")] == ("—", 0, "不适用")
    assert result[("2026年第2季度", "党课")] == ("—", 0, "不适用")
    assert result[("2026年第3季度", "支部党员大会")] == ("—", 1, "已完成")  # held is held, counted or not
    assert result[("2026年9月", "支部委员会会议")] == (1, 1, "已完成")
    assert result[("2026年9月", "主题党日")] == (1, 0, "未完成")
    assert result[("2026年11月", "支部委员会会议")] == (1, 0, "未完成")
    assert result[("2026年12月", "支部委员会会议")] == (1, 0, "进行中")
    assert result[("2026年第4季度", "支部党员大会")] == (1, 0, "进行中")
    assert result[("2026年", "组织生活会")] == ("—", 0, "不适用")  # the bot had under half of the year
    sheet = book.worksheets[0]
    assert sheet["A1"].value == "三义村党支部 会议台账（2026年1月1日至12月31日）"
    assert sheet["A2"].value == ("统计起始：2026年9月（按月统计）、2026年第4季度（按季度统计）和2027年（按年统计）。"
                                 "本组织从2026年8月20日开始使用本系统，在这之前的期间不统计，记为「不适用」。")
    assert [c.value for c in sheet[4]] == ["期间", "会议类型", "应开次数", "已开次数", "完成情况"]


async def test_a_ledger_from_the_middle_of_a_quarter_counts_the_whole_quarter(village: Core) -> None:
    name, book = await workbook(village, date(2026, 9, 1), date(2026, 11, 30))
    assert name == "台账-三义村党支部-2026年9月1日-11月30日.xlsx"
    result = {(r[0], r[1]): (r[2], r[3], r[4]) for r in summary_of(book)}
    assert result[("2026年第3季度", "支部党员大会")] == ("—", 1, "已完成")  # held on 8-25, before the ledger starts
    assert ("2026年8月", "支部委员会会议") not in result
    meetings = [[c.value for c in row] for row in book["支部党员大会"].iter_rows(min_row=2)]
    assert meetings == []  # the rows are the ledger's own dates only


async def test_each_meeting_row_is_complete_in_chinese(village: Core) -> None:
    svc: MeetingService = village.meetings
    clock = village.clock
    assert isinstance(clock, SettableClock)
    lecture = await svc.create(SECRETARY, Draft(
        kind="party_lecture", org_id=await sanyi(village), starts_at=local(2026, 12, 22, 9, 0),
        ends_at=local(2026, 12, 22, 11, 30), place="党员活动室", topic="党的二十大精神", lecturer="王建国",
        lecturer_id=SECRETARY))
    await svc.answer(MEMBER, lecture.meeting.id, "leave", "外出务工")
    clock.set(local(2026, 12, 22, 9, 5))
    await svc.add_minutes(SECRETARY, lecture.meeting.id, "text", "讲了党课")
    await svc.close(SECRETARY, lecture.meeting.id)
    _, book = await workbook(village, date(2026, 12, 1), date(2026, 12, 31))
    sheet = book["党课"]
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert row["日期"] == "2026年12月22日（周二）" and row["时间"] == "上午9:00—11:30"
    assert (row["会议类型"], row["议题"], row["地点"]) == ("党课", "党的二十大精神", "党员活动室")
    assert row["主讲人"] == "王建国"
    assert (row["应到人数"], row["实到人数"], row["请假人数"], row["缺席人数"]) == (3, 0, 1, 2)
    assert row["请假人员（原因）"] == "党员张三（外出务工）"
    assert set(row["缺席人员"].split("和")) == {"王建国", "三义组织委员"}
    assert row["状态"] == "已召开"
    assert "主讲人" not in [c.value for c in book["支部委员会会议"][1]]  # only where there are lectures
    result = {(r[0], r[1]): (r[2], r[3], r[4]) for r in summary_of(book)}
    assert result[("2026年第4季度", "党课")] == (1, 1, "已完成")


async def test_english_stays_english(village: Core) -> None:
    name, book = await workbook(village, date(2026, 9, 1), date(2026, 9, 30), lang="en")
    assert name == "Meeting ledger - 三义村党支部 - September 2026.xlsx"
    rows = summary_of(book)
    assert ["September 2026", "Branch committee meeting", 1, 1, "done"] in rows
    assert ["Q3 2026", "Party lecture", "—", 0, "n/a"] in rows
    row = [c.value for c in book["Branch committee meeting"][2]]
    assert row[:2] == ["Thu, Sep 10, 2026", "3:00 PM – 5:00 PM"]


async def test_an_org_nobody_of_which_uses_the_bot_is_not_applicable_throughout(village: Core) -> None:
    xijie = await village.orgs.by_code("xijie")  # in the tree, nobody in it
    assert xijie is not None
    data = await village.meetings.ledger_data(SYSTEM_ACTOR, xijie.id, date(2026, 1, 1), date(2026, 12, 31))
    assert data.since is None
    name, content = await village.meetings.render_ledger(data, "zh_CN")
    book = load_workbook(io.BytesIO(content))
    assert {r[4] for r in summary_of(book)} == {"不适用"}
    assert book.worksheets[0]["A2"].value == "本组织还没有党员使用本系统，各期间都不统计，记为「不适用」。"
    assert name == "台账-西街社区党支部-2026.xlsx"


async def test_in_use_since_is_when_the_first_member_joined_and_stays_when_they_leave(village: Core) -> None:
    """The tree was loaded on 7-1 with nobody in 三义; its people came on 8-20. Their leaving later
    does not move the day (the audit trail keeps it)."""
    org = await sanyi(village)
    assert await village.meetings.in_use_since(org) == date(2026, 8, 20)
    async with village.db.transaction() as tx:
        for person, role in ((SECRETARY, "secretary"), (MEMBER, "member"), (VILLAGE_ORG, "organizer")):
            await village.orgs.revoke(tx, person_id=person, org_id=org, role=role, actor_id=None, source="test")
    assert await village.meetings.in_use_since(org) == date(2026, 8, 20)


# --- the periods, without the bot -----------------------------------------------------------------

def test_the_picker_offers_this_and_last_year_quarters_begun_and_the_right_dates() -> None:
    rows = choices(date(2026, 5, 20))
    picked = [(c.key, c.first, c.last, dict(c.values)) for row in rows for c in row]
    assert picked == [
        ("meeting.ledger.pick_this_year", date(2026, 1, 1), date(2026, 12, 31), {"year": 2026}),
        ("meeting.ledger.pick_last_year", date(2025, 1, 1), date(2025, 12, 31), {"year": 2025}),
        ("meeting.ledger.pick_this_quarter", date(2026, 4, 1), date(2026, 6, 30), {"year": 2026, "quarter": 2}),
        ("meeting.ledger.pick_last_quarter", date(2026, 1, 1), date(2026, 3, 31), {"year": 2026, "quarter": 1}),
        ("meeting.ledger.pick_quarter", date(2026, 1, 1), date(2026, 3, 31), {"quarter": 1}),
        ("meeting.ledger.pick_quarter", date(2026, 4, 1), date(2026, 6, 30), {"quarter": 2}),
    ]
    # In the first quarter, "last quarter" is last year's fourth.
    last_quarter = choices(date(2026, 2, 1))[1][1]
    assert (last_quarter.first, last_quarter.last) == (date(2025, 10, 1), date(2025, 12, 31))


@pytest.mark.parametrize(("typed", "expected"), [
    ("2026-01-01 2026-06-30", (date(2026, 1, 1), date(2026, 6, 30))),
    ("2026年1月1日到6月30日", (date(2026, 1, 1), date(2026, 6, 30))),
    ("2026年1月1日至2026年6月30日", (date(2026, 1, 1), date(2026, 6, 30))),
    ("从1月1日到6月30日", (date(2026, 1, 1), date(2026, 6, 30))),
    ("2026/1/1-2026/6/30", (date(2026, 1, 1), date(2026, 6, 30))),
    ("２０２６－０１－０１　２０２６－０６－３０", (date(2026, 1, 1), date(2026, 6, 30))),
    ("二〇二六年一月一日到六月三十日", (date(2026, 1, 1), date(2026, 6, 30))),
    ("2025年11月1日到2月28日", (date(2025, 11, 1), date(2026, 2, 28))),
    ("2026年第3季度", (date(2026, 7, 1), date(2026, 9, 30))),
    ("去年", (date(2025, 1, 1), date(2025, 12, 31))),
    ("2026-01-01", None),
    ("2026-02-30 2026-03-01", None),
    ("2026-01-01 还有 2026-06-30", None),
    ("上半年吧", None),
])
def test_typed_dates(typed: str, expected: tuple[date, date] | None) -> None:
    assert parse_range(typed, date(2026, 11, 27)) == expected


def test_a_period_counts_when_the_bot_was_in_use_for_at_least_half_of_it() -> None:
    september = (date(2026, 9, 1), date(2026, 10, 1))
    assert counted(*september, date(2026, 9, 16)) and not counted(*september, date(2026, 9, 17))
    assert counted(*september, date(2025, 1, 1)) and not counted(*september, None)


# --- the command line -------------------------------------------------------------------------------

def test_the_command_line_writes_the_ledger_under_its_chinese_name(tmp_path: Path) -> None:
    import asyncio

    async def prepare() -> None:
        core = make_core(tmp_path / "bot.sqlite3", SettableClock(LOADED))
        await core.open()
        await load(core, org_file((SECRETARY,), only={"sanyi"}))
        await core.close()

    asyncio.run(prepare())
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATABASE=env_database(tmp_path / "bot.sqlite3"), PYTHONPATH=str(ROOT))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", "ledger", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)

    result = run("sanyi", "--from", "2026-07-01", "--to", "2026-09-30")
    assert result.returncode == 0, result.stderr
    assert "台账-三义村党支部-2026年第3季度.xlsx" in result.stdout
    book = load_workbook(tmp_path / "台账-三义村党支部-2026年第3季度.xlsx")
    assert book.worksheets[0]["A1"].value == "三义村党支部 会议台账（2026年7月1日至9月30日）"
    explicit = run("sanyi", "--from", "2026-01-01", "--to", "2026-12-31", "--out", "out/台账.xlsx")
    assert explicit.returncode == 0 and (tmp_path / "out" / "台账.xlsx").exists()


# --- end to end: /ledger through the fake Bot API ---------------------------------------------------

async def picker(user: FakeUser) -> SentMessage:
    user.send("/ledger")
    return await user.wait_message(contains="要哪段时间")


async def edited(fake: FakeBotApi, message: SentMessage, contains: str) -> SentMessage:
    """This message, once edited in place to show `contains`."""
    def ready() -> bool:
        current = fake.message(message.chat_id, message.message_id)
        return current is not None and current.has(contains)

    await fake.wait_for(ready, message=f"message {message.message_id} never showed {contains!r}")
    current = fake.message(message.chat_id, message.message_id)
    assert current is not None
    return current


async def document(user: FakeUser) -> tuple[str, Workbook]:
    sent = await user.wait_message(contains="会议台账")
    assert sent.document is not None
    return sent.document[0], load_workbook(io.BytesIO(sent.document[1]))


async def test_the_period_picker_gives_each_choice_its_dates(bot: BotRunner, fake: FakeBotApi) -> None:
    """The clock is 2026-11-27 (the fourth quarter): each button carries its dates and brings the
    file of exactly that period, named in Chinese."""
    secretary = fake.user(SECRETARY, first_name="王建国")
    expected = {
        "今年（2026年）": ((date(2026, 1, 1), date(2026, 12, 31)), "台账-三义村党支部-2026.xlsx"),
        "去年（2025年）": ((date(2025, 1, 1), date(2025, 12, 31)), "台账-三义村党支部-2025.xlsx"),
        "本季度（2026年第4季度）": ((date(2026, 10, 1), date(2026, 12, 31)), "台账-三义村党支部-2026年第4季度.xlsx"),
        "上季度（2026年第3季度）": ((date(2026, 7, 1), date(2026, 9, 30)), "台账-三义村党支部-2026年第3季度.xlsx"),
        "第1季度": ((date(2026, 1, 1), date(2026, 3, 31)), "台账-三义村党支部-2026年第1季度.xlsx"),
        "第2季度": ((date(2026, 4, 1), date(2026, 6, 30)), "台账-三义村党支部-2026年第2季度.xlsx"),
        "第3季度": ((date(2026, 7, 1), date(2026, 9, 30)), "台账-三义村党支部-2026年第3季度.xlsx"),
        "第4季度": ((date(2026, 10, 1), date(2026, 12, 31)), "台账-三义村党支部-2026年第4季度.xlsx"),
    }
    menu = await picker(secretary)
    assert menu.button_texts == [*expected, "✏️ 自己输入日期"]
    for label, ((first, last), filename) in expected.items():
        data = MEETING_LEDGER.parse(menu.button(label)[1])
        assert data is not None and (data.first, data.last) == (int(f"{first:%Y%m%d}"), int(f"{last:%Y%m%d}"))
        secretary.press(menu, label)
        name, book = await document(secretary)
        assert name == filename
        title = book.worksheets[0]["A1"].value
        assert f"{first.year}年{first.month}月{first.day}日至" in title
    # The tree came to the bot on 2026-11-27: the summary says which periods are the first counted.
    secretary.press(menu, "今年（2026年）")
    _, book = await document(secretary)
    assert book.worksheets[0]["A2"].value.startswith("统计起始：2026年12月（按月统计）、2027年第1季度（按季度统计）")


async def test_typed_dates_in_both_ways_and_a_bad_answer_keeps_the_prompt(bot: BotRunner, fake: FakeBotApi) -> None:
    secretary = fake.user(SECRETARY, first_name="王建国")
    for typed in ("2026年1月1日到6月30日", "2026-01-01 2026-06-30"):
        menu = await picker(secretary)
        secretary.press(menu, "✏️ 自己输入日期")
        prompt = await edited(fake, menu, "请输入开始和结束的日期")
        assert prompt.buttons == []  # the picker became the prompt: nothing left to tap
        secretary.send(typed)
        name, book = await document(secretary)
        assert name == "台账-三义村党支部-2026年1月1日-6月30日.xlsx"
        assert book.worksheets[0]["A1"].value == "三义村党支部 会议台账（2026年1月1日至6月30日）"
        await bot.idle()
        assert await bot.core.flows.get(SECRETARY) is None
    # Not dates: said how to write them, and the prompt stays open; so for dates the wrong way round.
    menu = await picker(secretary)
    secretary.press(menu, "✏️ 自己输入日期")
    await edited(fake, menu, "请输入开始和结束的日期")
    secretary.send("上半年的")
    assert "2026-01-01 2026-06-30" in (await secretary.wait_message(contains="没看懂这两个日期")).text
    secretary.send("2026-06-30 2026-01-01")
    await secretary.wait_message(contains="结束日期早于开始日期")
    assert await bot.core.flows.get(SECRETARY) is not None
    secretary.send("2026年7月1日到9月30日")
    name, _ = await document(secretary)
    assert name == "台账-三义村党支部-2026年第3季度.xlsx"
    await bot.idle()
    assert not [m for m in fake.history(SECRETARY) if "问题" in m.text]  # nothing went to the problem wall


async def test_an_organizer_picks_the_org_then_the_period(bot: BotRunner, fake: FakeBotApi) -> None:
    organizer = fake.user(TOWN_ORG, first_name="李明")
    organizer.send("/ledger")
    orgs = await organizer.wait_message(contains="导出哪个组织的会议台账")
    assert "· 三义村党支部" in orgs.button_texts
    organizer.press(orgs, "· 三义村党支部")
    menu = await edited(fake, orgs, "导出「三义村党支部」的会议台账")
    organizer.press(menu, "上季度（2026年第3季度）")
    name, _ = await document(organizer)
    assert name == "台账-三义村党支部-2026年第3季度.xlsx"
    # A period typed with the command still goes straight to the org buttons, then the file.
    organizer.send("/ledger 2026年1月1日到6月30日")
    orgs = await organizer.wait_message(contains="2026年1月1日至6月30日")
    organizer.press(orgs, "· 二郎村党支部")
    name, _ = await document(organizer)
    assert name == "台账-二郎村党支部-2026年1月1日-6月30日.xlsx"


async def test_a_foreign_org_s_buttons_change_nothing_and_say_so(bot: BotRunner, fake: FakeBotApi) -> None:
    """二郎's secretary forges 三义's buttons: no prompt is opened, no file is sent, and the answer
    says why."""
    erlang = fake.user(ERLANG_SECRETARY, first_name="赵强")
    sanyi_org = await bot.core.orgs.by_code("sanyi")
    assert sanyi_org is not None
    own = await picker(erlang)
    assert "二郎村党支部" in own.text
    for data in (MEETING_LEDGER_MENU(LedgerAction.TYPE, sanyi_org.id),
                 MEETING_LEDGER_MENU(LedgerAction.PERIODS, sanyi_org.id),
                 MEETING_LEDGER(sanyi_org.id, 20260101, 20261231)):
        press = erlang.press_data(own.message_id, data)
        assert (await fake.wait_callback_answer(press)).get("text") == bot.core.t("zh_CN", "error.not_allowed")
    await bot.idle()
    assert await bot.core.flows.get(ERLANG_SECRETARY) is None
    assert not [m for m in fake.history(ERLANG_SECRETARY) if m.document is not None]


async def test_the_orgs_ledger_also_holds_its_deliberation_rounds_and_matters(village: Core) -> None:
    """One file for the inspector: after the meetings, the rounds opened in the period and the
    四议两公开 matters under way in it, each with its record, dates written in Chinese."""
    from bot.services.deliberation import Audience, RoundSpec
    from bot.services.matters import Outcome, StageEntry

    org = await sanyi(village)
    now = village.clock.now()
    await village.deliberation.open(SECRETARY, RoundSpec(
        org_id=org, title="要不要修村西的路", audience=Audience.BOTH, opinions_until=now + timedelta(days=3)))
    matter = await village.matters.open(SECRETARY, org, "修建村道", estimate="12万元")
    await village.matters.record_stage(SECRETARY, matter.id, 1, StageEntry(now.date(), Outcome.PASSED))
    name, content = await village.ledger(SECRETARY, org, date(2026, 10, 1), date(2026, 12, 31), "zh_CN")
    assert name == "台账-三义村党支部-2026年第4季度.xlsx"
    book = load_workbook(io.BytesIO(content))
    assert book.sheetnames[0] == "汇总" and book.sheetnames[-7:-3] == ["民主议事", "议事记录", "四议两公开", "各步记录"]
    assert book.sheetnames[-3:] == ["党员积分", "加减分记录", "评星定级"]  # the members' points (test_e2e_points.py)
    rounds = [[c.value for c in row] for row in book["民主议事"].iter_rows(min_row=2)]
    assert rounds[0][0] == "2026年12月20日" and rounds[0][2] == "要不要修村西的路"
    matters = [[c.value for c in row] for row in book["四议两公开"].iter_rows(min_row=2)]
    assert matters[0][1] == "修建村道" and matters[0][2] == "12万元"
    stages = [[c.value for c in row] for row in book["各步记录"].iter_rows(min_row=2)]
    assert stages[0][0] == "修建村道" and stages[0][2] == "2026年12月20日"
    # A period before both: the sheets are there, and empty.
    _, content = await village.ledger(SECRETARY, org, date(2026, 7, 1), date(2026, 9, 30), "zh_CN")
    book = load_workbook(io.BytesIO(content))
    assert [row for row in book["民主议事"].iter_rows(min_row=2, values_only=True) if any(row)] == []
    assert [row for row in book["四议两公开"].iter_rows(min_row=2, values_only=True) if any(row)] == []
