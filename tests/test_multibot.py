"""Several bots in one deployment (BOT_TOKENS): the token → org mapping and its checks, and end to
end two bots, each serving one county, in one process on one database, against the fake Bot API
serving both tokens (each with its own limits and records)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from orgtree import COUNTY_ORG, SECRETARY, Person, load, make_core, make_settings, org_file
from pg import env_database

from bench.fakebotapi import TOKEN, FakeBotApi
from bot.app import all_applications, build_application, start_application, stop_application
from bot.bots import bot_id_of
from bot.clock import SettableClock
from bot.config import Settings, SettingsError, load_settings
from bot.context import BotApplication
from bot.core import Core
from conftest import ADMIN_ID, BOT_LIMITS, FAKE_LIMITS

ROOT = Path(__file__).resolve().parent.parent
TOKEN_B = "777001:SECOND-COUNTY"  # the bot of the second county ("lonely", a second root of the tree)
BOT_A, BOT_B = bot_id_of(TOKEN), bot_id_of(TOKEN_B)
LONELY_MEMBER = 2001  # member@lonely: talks to bot B
LONELY_SILENT = 2002  # member@lonely: never wrote to any bot
TWO_BOTS = {TOKEN: ["danfeng"], TOKEN_B: ["lonely"]}
TREE = org_file((SECRETARY, COUNTY_ORG), extra_people=[Person(LONELY_MEMBER, "独立党员", ("member@lonely",)),
                                                        Person(LONELY_SILENT, "独立党员二", ("member@lonely",))])


@pytest.fixture(autouse=True)
def no_bot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("BOT_"):
            monkeypatch.delenv(name)


# ---------------------------------------------------------------- settings


def test_bot_tokens_map_each_token_to_its_top_orgs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKENS", '{"123:abc": ["shangzhou"], "456:def": ["danfeng", "lonely"]}')
    bots = load_settings().bots()
    assert [(b.bot_id, b.org_codes) for b in bots] == [(123, ("shangzhou",)), (456, ("danfeng", "lonely"))]


def test_a_single_token_is_one_bot_serving_every_org(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "123:abc")
    bots = load_settings().bots()
    assert [(b.token, b.org_codes) for b in bots] == [("123:abc", ())]


@pytest.mark.parametrize(("raw", "expected"), [
    ('{"abc": ["danfeng"]}', "BOT_TOKENS: bot 1: not a bot token"),
    ('{"123:abc": []}', "BOT_TOKENS: bot 123: give the codes of the top orgs it serves"),
    ('{"123:abc": ["a"], "456:def": ["a"]}', "BOT_TOKENS: org 'a' is served by two bots (123 and 456)"),
    ('{"123:abc": ["a"], "123:xyz": ["b"]}', "BOT_TOKENS: bot 123 is given twice"),
    ("{}", "BOT_TOKENS: no bot"),
])
def test_a_malformed_mapping_is_one_line(monkeypatch: pytest.MonkeyPatch, raw: str, expected: str) -> None:
    monkeypatch.setenv("BOT_TOKENS", raw)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


def test_bot_token_outside_bot_tokens_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKENS", '{"123:abc": ["danfeng"]}')
    monkeypatch.setenv("BOT_TOKEN", "999:zzz")
    with pytest.raises(SettingsError, match="BOT_TOKEN: not one of BOT_TOKENS"):
        load_settings().bots()


# ---------------------------------------------------------------- the registry


async def test_each_org_is_served_by_the_bot_of_its_top_org(tmp_path: Path, clock: SettableClock) -> None:
    core = Core.build(make_settings(tmp_path / "bot.sqlite3", tokens=TWO_BOTS), clock)
    await core.open()
    try:
        await load(core, TREE)
        await core.bots.configure()
        await core.bots.remember_username(BOT_A, "danfeng_bot")
        await core.bots.remember_username(BOT_B, "lonely_bot")
        sanyi = await core.orgs.by_code("sanyi")
        lonely = await core.orgs.by_code("lonely")
        assert sanyi is not None and lonely is not None
        # Join links carry the username of the bot serving the org.
        assert await core.bot_username(sanyi.id) == "danfeng_bot"
        assert await core.bot_username(lonely.id) == "lonely_bot"
        # A chat no bot heard from: the bot of the person's org; nobody known: the first bot.
        assert await core.bots.bot_of_chat(SECRETARY) == BOT_A
        assert await core.bots.bot_of_chat(LONELY_MEMBER) == BOT_B
        assert await core.bots.bot_of_chat(555_555) == BOT_A
        # The bot that received the chat's last update wins over the org's.
        await core.bots.record_chat(SECRETARY, BOT_B)
        assert await core.bots.bot_of_chat(SECRETARY) == BOT_B
    finally:
        await core.close()


async def test_an_unknown_org_code_stops_the_start(tmp_path: Path, clock: SettableClock) -> None:
    core = Core.build(make_settings(tmp_path / "bot.sqlite3", tokens={TOKEN: ["danfeng"], TOKEN_B: ["nowhere"]}),
                      clock)
    await core.open()
    try:
        await load(core, TREE)
        with pytest.raises(SettingsError, match=r"^BOT_TOKENS: no org with code 'nowhere'"):
            await core.bots.configure()
    finally:
        await core.close()


async def _imported(database: Path, clock: SettableClock) -> None:
    core = make_core(database, clock)
    await core.open()
    await load(core, TREE)
    await core.close()


def test_run_with_a_token_for_an_unknown_org_exits_2_with_one_line(tmp_path: Path, clock: SettableClock) -> None:
    asyncio.run(_imported(tmp_path / "bot.sqlite3", clock))  # the tree is imported; one code is a typo
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BOT_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["BOT_TOKENS"] = '{"123:abc": ["danfeng", "nowhere"], "456:def": ["elsewhere"]}'
    env["BOT_DATABASE"] = env_database(tmp_path / "bot.sqlite3")
    proc = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: BOT_TOKENS: no org with code 'nowhere', 'elsewhere'"
        " (import the org tree first: python -m bot orgs import FILE)"]


# ---------------------------------------------------------------- end to end, two bots


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeBotApi, FakeBotApi]]:
    server = FakeBotApi(limits=FAKE_LIMITS, bot_id=BOT_A, username="danfeng_bot")
    second = server.add_bot(TOKEN_B, limits=FAKE_LIMITS, bot_id=BOT_B, username="lonely_bot")
    await server.start()
    yield server, second
    await server.stop()


@pytest.fixture
async def two_bots(fakes: tuple[FakeBotApi, FakeBotApi], tmp_path: Path,
                   clock: SettableClock) -> AsyncIterator[BotApplication]:
    fake, _ = fakes
    settings = Settings(_env_file=None, api_url=fake.base_url, file_url=fake.base_file_url,  # type: ignore[call-arg]
                        database=env_database(tmp_path / "bot.sqlite3"), admins=frozenset({ADMIN_ID}), tokens=TWO_BOTS)
    # The org tree is there before the bots start: each bot's counties are checked at start-up.
    await _imported(tmp_path / "bot.sqlite3", clock)
    app = build_application(settings, clock, delivery_limits=BOT_LIMITS)
    await start_application(app, poll_timeout=1)
    yield app
    await stop_application(app)


async def delivery_idle(app: BotApplication) -> None:
    for each in all_applications(app):
        await each.bot_data["delivery"].wait_idle(30.0)


def sent_to(fake: FakeBotApi, chat_id: int) -> list[str]:
    return [c.params["text"] for c in fake.calls_to("sendMessage")
            if c.status == 200 and c.params["chat_id"] == chat_id]


async def test_each_person_talks_to_the_bot_of_their_county_and_gets_notices_through_it(
        two_bots: BotApplication, fakes: tuple[FakeBotApi, FakeBotApi]) -> None:
    fake_a, fake_b = fakes
    assert len(all_applications(two_bots)) == 2
    secretary, lonely = fake_a.user(SECRETARY, "王建国"), fake_b.user(LONELY_MEMBER, "独立党员")
    fake_b.user(LONELY_SILENT, "独立党员二")
    secretary.send("/start")
    lonely.send("/start")
    await secretary.wait_message()
    await lonely.wait_message()  # each answered by the bot that received the update
    core = two_bots.core
    assert await core.bots.bot_of_chat(SECRETARY) == BOT_A
    assert await core.bots.bot_of_chat(LONELY_MEMBER) == BOT_B
    async with core.db.transaction() as tx:  # a notice to people of both counties
        for chat in (SECRETARY, LONELY_MEMBER, LONELY_SILENT):
            await core.outbox.send_text(tx, key=f"notice:{chat}", chat_id=chat, text="明天上午开会",
                                        purpose="test/notice")
    await fake_a.wait_for(lambda: "明天上午开会" in sent_to(fake_a, SECRETARY), timeout=10)
    await fake_b.wait_for(lambda: all("明天上午开会" in sent_to(fake_b, c) for c in (LONELY_MEMBER, LONELY_SILENT)),
                          timeout=10)
    await delivery_idle(two_bots)
    # Each notice went out once, through the recipient's bot only.
    assert sent_to(fake_a, LONELY_MEMBER) == sent_to(fake_a, LONELY_SILENT) == []
    assert "明天上午开会" not in sent_to(fake_b, SECRETARY)
    assert sent_to(fake_a, SECRETARY).count("明天上午开会") == 1
    assert sent_to(fake_b, LONELY_MEMBER).count("明天上午开会") == 1


async def test_join_links_name_the_bot_serving_the_org(two_bots: BotApplication) -> None:
    core = two_bots.core
    lonely, sanyi = await core.orgs.by_code("lonely"), await core.orgs.by_code("sanyi")
    assert lonely is not None and sanyi is not None
    assert await core.bot_username(lonely.id) == "lonely_bot"
    assert await core.bot_username(sanyi.id) == "danfeng_bot"


async def test_one_bots_429_storm_does_not_slow_the_other(
        two_bots: BotApplication, fakes: tuple[FakeBotApi, FakeBotApi]) -> None:
    fake_a, fake_b = fakes
    core = two_bots.core
    chats_a, chats_b = list(range(3_000_001, 3_000_011)), list(range(4_000_001, 4_000_021))
    for chat in chats_a:
        fake_a.user(chat)
        await core.bots.record_chat(chat, BOT_A)
    for chat in chats_b:
        fake_b.user(chat)
        await core.bots.record_chat(chat, BOT_B)
    fake_a.storm(600.0, status=429, retry_after=30)  # bot A is flood-limited for half a minute at a time
    async with core.db.transaction() as tx:
        for chat in chats_a + chats_b:
            await core.outbox.send_text(tx, key=f"n:{chat}", chat_id=chat, text="通知", purpose="test/notice")
    # Bot B sends all of its rows while bot A still waits out its first 429.
    await fake_b.wait_for(lambda: all(sent_to(fake_b, c) == ["通知"] for c in chats_b), timeout=20)
    assert [c for c in fake_b.calls_to("sendMessage") if c.status == 429] == []
    assert [c for c in fake_a.calls_to("sendMessage") if c.status == 200] == []
    assert [c for c in fake_a.calls_to("sendMessage") if c.status == 429] != []
