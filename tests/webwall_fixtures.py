"""Seeding for the echo-wall web page and poster tests (and bench/webwall.py): tickets, deliberation
rounds and 四议两公开 matters made through the real services, and many more tickets written straight
into the tables for the paging measurements."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from service_fixtures import MEMBER, RESIDENT, SECRETARY

from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock
from bot.core import Core
from bot.services.deliberation import Audience, RoundSpec
from bot.services.matters import Outcome, StageEntry, Vote, VoteKind
from bot.services.meetings import Draft
from bot.services.tickets import Item

# Private data a resident might type; none of it may ever reach the page or the poster.
PHONE = "13812345678"
PHONE_SPACED = "139 8765 4321"
LANDLINE = "0914-3321234"
ID_CARD = "61102519650312423X"
ID_CARD_2 = "110105194912310021"
COORDINATES = "📍 33.68123,110.33456"
TYPED_PLACE = "33.701,110.4567"
# Each number whole, and the part the mask hides (the masked form keeps the first and last digits).
SECRETS = (PHONE, "12345678", PHONE_SPACED, "8765", "3321234", "-332", ID_CARD, "19650312", ID_CARD_2, "19491231",
           "33.68123", "110.33456", "33.701", "110.4567", "赵四", "不想公开", "私下答复", "未答复内容")
LAOWANG = 3002  # an elderly party member without a phone: the secretary votes for him (代投)
# Names and ids of people, and what the wall never shows of rounds and matters: none may appear.
NEVER = ("王建国", "党员张三", "老王", "年纪大不会用手机", "村西到小学的路边赵家", "取消了的议事", "还在进行的议事",
         "还在商议的事项", "没通过的事项", "资金不够", "不办了", "file_id", "/bot",
         *(str(person) for person in (SECRETARY, MEMBER, RESIDENT, LAOWANG)))
IN_CI = os.environ.get("CI") == "true"


def cjk_font_or_skip() -> None:
    """Like `need`, for the poster's Chinese font."""
    from bot.poster import FontMissing, find_cjk_font

    try:
        find_cjk_font()
    except FontMissing as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def need(tool: str) -> str:
    """The path of a system tool; outside CI a missing one skips the test, in CI it fails it."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not installed (run .ci/system-deps.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


async def seed_real(core: Core, clock: SettableClock) -> list[int]:
    """Five answered public problems with private numbers in them, one private and one unanswered."""
    t = core.tickets
    made = []
    texts = [
        [Item("text", f"村东头路灯坏了三个月，晚上老人摔倒了。我电话{PHONE}，身份证{ID_CARD}")],
        [Item("text", "垃圾站满了没人清"), Item("location", COORDINATES, chat_id=RESIDENT, message_id=7)],
        [Item("voice", None, chat_id=RESIDENT, message_id=8)],
        [Item("text", f"低保的事，座机{LANDLINE}，手机 {PHONE_SPACED}，家在 {TYPED_PLACE} 附近")],
        [Item("text", "<script>alert('x')</script> 路口的 & 标志牌 \"歪了\"")],
    ]
    for i, items in enumerate(texts):
        ticket = await t.submit(RESIDENT, items, "infrastructure" if i % 2 == 0 else "sanitation",
                                public_ok=True, anonymous=False)
        clock.advance(timedelta(hours=2))
        answer = f"已处理，有事打 {PHONE} 或查身份证{ID_CARD_2}。第{i + 1}件"
        await t.answer(SECRETARY, ticket.id, [Item("text", answer)])
        clock.advance(timedelta(hours=2))
        made.append(ticket.id)
    hidden = await t.submit(RESIDENT, [Item("text", "不想公开的事 私密内容")], "other", public_ok=False,
                            anonymous=True)
    clock.advance(timedelta(hours=1))
    await t.answer(SECRETARY, hidden.id, [Item("text", "私下答复的内容")])
    clock.advance(timedelta(hours=1))
    await t.submit(RESIDENT, [Item("text", "还没答复的问题 未答复内容")], "other", public_ok=True, anonymous=False)
    return made


@dataclass(frozen=True)
class Seeded:
    voted: int       # a closed round with an open ballot, a proxy ballot and opinions
    secret: int      # a closed secret ballot
    cancelled: int
    live: int        # still open, its counts shown live in the chat: not on the wall
    road: int        # a matter with both publications
    lamps: int       # a matter with its decision published, published after the road's decision


async def seed_rounds_and_matters(core: Core, clock: SettableClock) -> Seeded:
    """Long because it walks rounds and matters through their real lives: two rounds closed with a
    vote (one secret), one cancelled, one still open with live counts; then a matter through four
    stages (a meeting, the round's vote, a paper vote) to its decision and result, a second matter's
    decision, one still under way and one rejected."""
    d, m = core.deliberation, core.matters
    org = await core.orgs.by_code("sanyi")
    assert org is not None
    async with core.db.transaction() as tx:
        await core.people.ensure(tx, LAOWANG, "老王")
        await core.orgs.grant(tx, person_id=LAOWANG, org_id=org.id, role="member", actor_id=None, source="test")
    now = clock.now()

    def spec(title: str, options: tuple[str, ...], **extra: object) -> RoundSpec:
        values: dict[str, object] = dict(org_id=org.id, title=title, audience=Audience.BOTH,
                                         opinions_until=now + timedelta(hours=2), votes_until=now + timedelta(days=2),
                                         options=options, background="村西到小学的路边赵家门口的路坏了")
        values.update(extra)
        return RoundSpec(**values)  # type: ignore[arg-type]

    voted = await d.open(SECRETARY, spec("修不修村西的路", ("修水泥路", f"先不修，有事打{PHONE}")))
    secret = await d.open(SECRETARY, spec("村民代表选哪个方案", ("甲方案", "乙方案"), secret=True))
    cancelled = await d.open(SECRETARY, spec("取消了的议事", ("要", "不要")))
    live = await d.open(SECRETARY, spec("还在进行的议事", ("要", "不要"), live_results=True,
                                        votes_until=now + timedelta(days=10)))
    anonymous = await d.give_opinion(RESIDENT, voted.id, f"水泥路结实，有事打我电话{PHONE}", anonymous=True)
    await d.give_opinion(MEMBER, voted.id, "建议先修到小学门口", anonymous=False)
    await d.support(MEMBER, anonymous)
    await d.cancel(SECRETARY, cancelled.id, "不办了")
    clock.set(now + timedelta(hours=3))
    await d.tick(SYSTEM_ACTOR)
    await d.cast(MEMBER, voted.id, [0])
    await d.cast(RESIDENT, voted.id, [1])
    await d.cast(SECRETARY, voted.id, [0], for_person=LAOWANG, reason="年纪大不会用手机")
    await d.cast(MEMBER, secret.id, [0])
    await d.cast(RESIDENT, secret.id, [1])
    await d.cast(SECRETARY, secret.id, [1], for_person=LAOWANG, reason="年纪大不会用手机")
    await d.cast(MEMBER, live.id, [0])
    clock.set(now + timedelta(days=2, minutes=1))
    await d.tick(SYSTEM_ACTOR)

    meeting_at = clock.now()
    meeting = await core.meetings.create(SECRETARY, Draft(
        kind="committee_meeting", org_id=org.id, starts_at=meeting_at + timedelta(hours=1),
        ends_at=meeting_at + timedelta(hours=2), place="村委会", topic=f"商量修路，联系{PHONE}"))
    clock.set(meeting_at + timedelta(hours=3))
    today = clock.now().astimezone(core.settings.tz).date()
    road = (await m.open(SECRETARY, org.id, "修建村道", "村西到小学的路边赵家门口", "12万元")).id
    await m.record_stage(SECRETARY, road, 1, StageEntry(today, Outcome.PASSED, meeting.meeting.id, "支委会一致同意"))
    await m.record_stage(SECRETARY, road, 2, StageEntry(today, Outcome.PASSED))
    await m.record_stage(SECRETARY, road, 3, StageEntry(today, Outcome.PASSED, vote=Vote(VoteKind.ROUND, voted.id)))
    await m.record_stage(SECRETARY, road, 4, StageEntry(today, Outcome.PASSED,
                                                        vote=Vote(VoteKind.PAPER, yes=41, no=3, abstain=2)))
    await m.publish_decision(SECRETARY, road, f"修建村西到小学的水泥路，明年春天开工。监督电话{LANDLINE}")
    clock.advance(timedelta(hours=1))
    lamps = (await m.open(SECRETARY, org.id, "安装路灯")).id
    for stage in (1, 2, 3, 4):
        await m.record_stage(SECRETARY, lamps, stage, StageEntry(today, Outcome.PASSED))
    await m.publish_decision(SECRETARY, lamps, "在村东安装十盏太阳能路灯。")
    await m.record_stage(SECRETARY, (await m.open(SECRETARY, org.id, "还在商议的事项")).id, 1,
                         StageEntry(today, Outcome.PASSED))
    await m.record_stage(SECRETARY, (await m.open(SECRETARY, org.id, "没通过的事项")).id, 1,
                         StageEntry(today, Outcome.REJECTED, note="资金不够"))
    clock.advance(timedelta(hours=1))
    await m.publish_result(SECRETARY, road, "路修好了，花了11.5万元。", [(SECRETARY, 501), (SECRETARY, 502)])
    clock.advance(timedelta(hours=1))
    return Seeded(voted=voted.id, secret=secret.id, cancelled=cancelled.id, live=live.id, road=road, lamps=lamps)


def pdf_pages(pdf: Path, prefix: Path) -> list[Path]:
    """The PDF's pages as PNG files at 150 dpi (A4: 1240 x 1754), through poppler's pdftoppm."""
    subprocess.run([need("pdftoppm"), "-r", "150", "-png", str(pdf), str(prefix)], check=True, timeout=120)
    return sorted(prefix.parent.glob(prefix.name + "*.png"))


def pdf_text(pdf: Path) -> str:
    return subprocess.run([need("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
