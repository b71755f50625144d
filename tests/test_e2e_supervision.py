"""Supervision bulletins end to end through the fake Bot API: the automatic monthly bulletin on the
right day across the 国庆 holiday (1 October 2026 is a holiday: it goes out on 8 October at 09:00,
not before, and once even across a restart), its chart and workbook opened and checked; and
/report quarter on demand, with its progress message."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from orgtree import SECRETARY, TOWN_ORG, in_use_from
from PIL import Image

from bench.fakebotapi import FakeBotApi, SentMessage
from bot.clock import SettableClock, to_db
from bot.services.supervision_render import CHART_DPI, CHART_INCHES
from conftest import BotRunner

TZ = ZoneInfo("Asia/Shanghai")
TITLE = "督查通报：龙驹寨街道党工委"


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2026, 9, 28, 1, 0, tzinfo=UTC))


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


def bulletins(fake: FakeBotApi) -> list[SentMessage]:
    return [m for m in fake.sent(TOWN_ORG) if TITLE in m.text or (m.document and "督查通报" in m.document[0])
            or m.photo is not None]


async def at(bot: BotRunner, when: datetime) -> None:
    bot.clock.set(when)
    await bot.ticks()


def table(book_bytes: bytes, sheet: str) -> dict[str, dict[str, object]]:
    book = load_workbook(io.BytesIO(book_bytes))
    rows = list(book[sheet].iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    return {str(r[0]): dict(zip(header, r, strict=True)) for r in rows[1:] if r[0] and r[1] is not None}


async def test_monthly_bulletin_after_the_holiday_and_report_on_demand(bot: BotRunner, fake: FakeBotApi) -> None:
    core = bot.core
    user = fake.user(TOWN_ORG, first_name="李明")
    await in_use_from(core, local(8, 1, 9))
    sanyi = await core.orgs.by_code("sanyi")
    assert sanyi is not None
    async with core.db.transaction() as tx:  # sanyi's committee met in September; nothing else was held
        await tx.execute(
            "INSERT INTO meetings (org_id, kind, starts_at, ends_at, place, topic, status, created_by, created_at,"
            " updated_at) VALUES (?, 'committee_meeting', ?, ?, '村委会', '学习', 'held', ?, ?, ?)",
            (sanyi.id, to_db(local(9, 15, 15)), to_db(local(9, 15, 17)), SECRETARY, to_db(local(9, 1, 9)),
             to_db(local(9, 1, 9))))
    for when in (local(10, 1, 9, 30), local(10, 7, 10), local(10, 8, 8, 59)):
        await at(bot, when)  # 1 to 7 October are 国庆 holidays; the 8th is the first working day
        assert not bulletins(fake), when
    await at(bot, local(10, 8, 9))
    await fake.wait_for(lambda: any(m.document for m in bulletins(fake)), message="no workbook")
    got = bulletins(fake)
    text = next(m for m in got if TITLE in m.text and m.photo is None and not m.document)
    assert "2026年9月" in text.text and "二郎村党支部：" in text.text
    photo = next(m for m in got if m.photo is not None)
    image = Image.open(io.BytesIO(photo.photo or b""))
    assert image.format == "PNG" and image.size == (CHART_INCHES[0] * CHART_DPI, CHART_INCHES[1] * CHART_DPI)
    document = next(m for m in got if m.document)
    assert document.document is not None
    assert document.document[0] == "督查通报-龙驹寨街道党工委-2026年9月.xlsx"
    meetings = table(document.document[1], "三会一课")
    # Due by 30 September: each branch's committee meeting and theme day (monthly), general meeting and
    # party lecture (the third quarter).
    assert (meetings["三义村党支部"]["应开合计"], meetings["三义村党支部"]["已开合计"]) == (4, 1)
    assert meetings["三义村党支部"]["支部委员会会议已开"] == 1
    assert (meetings["二郎村党支部"]["应开合计"], meetings["二郎村党支部"]["已开合计"]) == (4, 0)
    assert (meetings["合计"]["应开合计"], meetings["合计"]["已开合计"], meetings["合计"]["开会次数"]) == (8, 1, 1)
    count = len(got)
    await bot.restart()  # once per org and month, even across a restart
    await at(bot, local(10, 9, 10))
    assert len(bulletins(fake)) == count

    before = max(m.message_id for m in fake.sent(TOWN_ORG))
    user.send("/report quarter")
    await fake.wait_for(lambda: len([m for m in fake.sent(TOWN_ORG) if m.document]) == 2, message="no report")
    await fake.wait_text(TOWN_ORG, "督查通报已生成")
    progress = next(m for m in fake.sent(TOWN_ORG) if m.message_id > before)  # the first answer, edited
    assert "督查通报已生成" in progress.text and progress.edits >= 3
    report = [m for m in fake.sent(TOWN_ORG) if m.document][-1]
    assert report.document is not None and report.document[0] == "督查通报-龙驹寨街道党工委-2026年第4季度.xlsx"
    tickets = table(report.document[1], "群众问题")
    assert set(tickets) == {"龙驹寨街道党工委（本级）", "三义村党支部", "二郎村党支部", "合计"}
    await bot.idle()


async def test_a_new_deployment_sends_no_bulletin_for_the_month_before_it(bot: BotRunner, fake: FakeBotApi) -> None:
    """The tree is set up on 28 September: September's bulletin is due in October, but there is no
    August bulletin on its first day (nothing existed then), even though 09:00 of the month has passed."""
    fake.user(TOWN_ORG, first_name="李明")
    await at(bot, local(9, 28, 10))
    await bot.idle()
    assert not bulletins(fake)
    assert await bot.core.db.fetchval("SELECT COUNT(*) FROM supervision_runs") == 0
