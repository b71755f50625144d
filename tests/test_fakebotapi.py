"""Quick self-tests of the fake Bot API server, driven by a real ``telegram.Bot``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.warnings import PTBDeprecationWarning

from bench.fakebotapi import TOKEN, FakeBotApi, Limits, decode_param, render_text, utf16_len

# PTB 22 warns about RetryAfter.retry_after becoming a timedelta whenever it builds the exception
pytestmark = pytest.mark.filterwarnings(f"ignore::{PTBDeprecationWarning.__module__}.PTBDeprecationWarning")


@pytest.fixture
async def server() -> AsyncIterator[FakeBotApi]:
    api = FakeBotApi()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def tg(server: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url) as bot:
        yield bot


def test_decode_param_keeps_text_strings() -> None:
    assert decode_param("text", "123") == "123"
    assert decode_param("text", '{"a": 1}') == '{"a": 1}'
    assert decode_param("chat_id", "-100") == -100
    assert decode_param("chat_id", "@chan") == "@chan"
    assert decode_param("reply_markup", '{"inline_keyboard": []}') == {"inline_keyboard": []}
    assert decode_param("disable_notification", "true") is True
    assert decode_param("timeout", "10") == 10
    assert utf16_len("/start@bot 😀") == 13


def test_render_text_validates_html_and_markdown() -> None:
    assert render_text("<b>a &lt; b</b>", "HTML") == "a < b"
    with pytest.raises(Exception, match="Unsupported start tag"):
        render_text("a <foo> b", "HTML")
    with pytest.raises(Exception, match="Can't find end tag"):
        render_text("<b>open", "HTML")
    assert render_text(r"*bold* 1\.5", "MarkdownV2") == "bold 1.5"
    with pytest.raises(Exception, match="reserved"):
        render_text("version 1.5", "MarkdownV2")


async def test_get_me(server: FakeBotApi, tg: Bot) -> None:
    me = await tg.get_me()
    assert me.id == server.bot_id
    assert me.username == "branch_test_bot"
    assert me.is_bot
    assert server.calls_to("getMe")[0].status == 200


async def test_send_message_with_inline_keyboard_round_trip(server: FakeBotApi, tg: Bot) -> None:
    alice = server.user(1001, "Alice")
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Yes", callback_data="vote:yes"),
                InlineKeyboardButton("No", callback_data="vote:no"),
            ],
            [InlineKeyboardButton("Docs", url="https://example.org/x")],
        ]
    )
    msg = await tg.send_message(alice.id, "<b>Vote</b> 123", parse_mode="HTML", reply_markup=markup)
    assert msg.text == "Vote 123"
    assert msg.from_user is not None and msg.from_user.is_bot
    assert msg.reply_markup == markup
    sent = server.sent(alice.id)
    assert len(sent) == 1
    assert sent[0].buttons == [("Yes", "vote:yes"), ("No", "vote:no"), ("Docs", "https://example.org/x")]
    assert sent[0].raw_text == "<b>Vote</b> 123"
    assert server.texts(alice.id) == ["Vote 123"]
    got = await alice.wait_message(contains="Vote")
    assert got.message_id == msg.message_id

    server.limits = None
    # text "123" must stay a string
    m2 = await tg.send_message(alice.id, "123")
    assert m2.text == "123" and server.calls_to("sendMessage")[-1].params["text"] == "123"
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await tg.send_message(424242, "hi")
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await tg.send_message(alice.id, "   ")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await tg.send_message(alice.id, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)can.t parse entities"):
        await tg.send_message(alice.id, "a < b", parse_mode="HTML")


async def test_edit_message_text(server: FakeBotApi, tg: Bot) -> None:
    server.limits = None
    alice = server.user(1001, "Alice")
    kb = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
    msg = await tg.send_message(alice.id, "first", reply_markup=kb)
    edited = await tg.edit_message_text(
        "second", chat_id=alice.id, message_id=msg.message_id, reply_markup=kb
    )
    assert isinstance(edited, type(msg)) and edited.text == "second"
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await tg.edit_message_text("second", chat_id=alice.id, message_id=msg.message_id, reply_markup=kb)
    # editing without reply_markup removes the keyboard, like Telegram
    await tg.edit_message_text("second", chat_id=alice.id, message_id=msg.message_id)
    last = server.last(alice.id)
    assert last.text == "second" and last.buttons == [] and last.edits == 2
    await tg.delete_message(alice.id, msg.message_id)
    assert server.sent(alice.id) == []
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await tg.edit_message_text("third", chat_id=alice.id, message_id=msg.message_id)


async def test_send_document_bytes(server: FakeBotApi, tg: Bot) -> None:
    alice = server.user(1001, "Alice")
    payload = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    msg = await tg.send_document(alice.id, InputFile(payload, filename="meeting.ics"), caption="日程 123")
    assert msg.document is not None and msg.document.file_name == "meeting.ics"
    assert msg.caption == "日程 123"
    sent = server.last(alice.id)
    assert sent.document == ("meeting.ics", payload)
    assert sent.text == "日程 123"
    call = server.calls_to("sendDocument")[0]
    assert call.files["document"] == ("meeting.ics", payload)
    assert call.params["caption"] == "日程 123"
    # the bot can download it again through getFile + base_file_url
    f = await tg.get_file(msg.document.file_id)
    assert bytes(await f.download_as_bytearray()) == payload
    # re-sending by file_id works without upload
    server.limits = None
    again = await tg.send_document(alice.id, msg.document.file_id)
    assert again.document is not None and again.document.file_id == msg.document.file_id
    assert server.last(alice.id).document == ("meeting.ics", payload)


async def test_per_chat_limit_raises_retry_after(server: FakeBotApi, tg: Bot) -> None:
    alice = server.user(1001, "Alice")
    await tg.send_message(alice.id, "one")
    with pytest.raises(RetryAfter) as exc_info:
        await tg.send_message(alice.id, "two")
    retry_after = exc_info.value.retry_after  # a timedelta: bot/__init__ opts in to PTB_TIMEDELTA
    assert getattr(retry_after, "total_seconds", lambda: retry_after)() == 1
    assert server.calls[-1].description == "Too Many Requests: retry after 1"
    assert server.stats.rate_limited == 1
    assert server.calls[-1].status == 429
    assert server.delivered(alice.id) == 1
    # another chat is not affected by alice's per-chat window
    bob = server.user(1002, "Bob")
    await tg.send_message(bob.id, "hello")


async def test_group_limit_per_minute(server: FakeBotApi, tg: Bot) -> None:
    server.limits = Limits(global_per_second=1000, per_chat_per_second=1, group_per_minute=3)
    grp = server.group(-500, "Branch")
    for i in range(3):
        await tg.send_message(grp.id, f"m{i}")
    with pytest.raises(RetryAfter):
        await tg.send_message(grp.id, "m3")
    assert server.texts(grp.id) == ["m0", "m1", "m2"]


async def test_block_gives_forbidden_and_update(server: FakeBotApi, tg: Bot) -> None:
    server.limits = None
    alice = server.user(1001, "Alice")
    await tg.send_message(alice.id, "before")
    update = alice.block()
    assert update["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    with pytest.raises(Forbidden, match="blocked by the user"):
        await tg.send_message(alice.id, "after")
    assert server.calls[-1].status == 403
    alice.unblock()
    await tg.send_message(alice.id, "again")
    assert server.texts(alice.id) == ["before", "again"]
    updates = await tg.get_updates(timeout=0)
    assert [u.my_chat_member.new_chat_member.status for u in updates if u.my_chat_member] == [
        "kicked",
        "member",
    ]


async def test_fail_next_502_is_network_error(server: FakeBotApi, tg: Bot) -> None:
    alice = server.user(1001, "Alice")
    server.fail_next(502, method="sendMessage")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await tg.send_message(alice.id, "x")
    assert server.stats.errors[502] == 1
    assert server.sent(alice.id) == []
    await tg.send_message(alice.id, "x")
    assert server.texts(alice.id) == ["x"]


async def test_storm_and_slow(server: FakeBotApi, tg: Bot) -> None:
    server.limits = None
    alice = server.user(1001, "Alice")
    storm_end = time.monotonic() + 0.3
    server.storm(0.3, status=429, retry_after=2)
    with pytest.raises(RetryAfter):
        await tg.send_message(alice.id, "x")
    server.storm(0.3, status=503, methods=None)
    with pytest.raises(NetworkError, match="Service Unavailable"):
        await tg.get_me()
    assert server.stats.injected == 2 and server.sent(alice.id) == []
    await server.wait_for(lambda: time.monotonic() > storm_end + 0.05, timeout=2)
    await tg.send_message(alice.id, "after storm")
    server.slow(0.2, method="sendMessage")
    t0 = time.monotonic()
    await tg.send_message(alice.id, "slow")
    assert time.monotonic() - t0 >= 0.2


async def test_get_updates_long_poll(server: FakeBotApi, tg: Bot) -> None:
    alice = server.user(1001, "Alice", username="alice")
    msg = await tg.send_message(
        alice.id,
        "pick",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="pick:a")]]),
    )

    async def later() -> None:
        await asyncio.sleep(0.1)
        alice.send("/start@branch_test_bot hello")

    task = asyncio.create_task(later())
    # A poll that was not woken by the update would hold for its whole timeout; the outer limit is
    # far below that and far above any busy machine's delay.
    updates = await asyncio.wait_for(tg.get_updates(timeout=50, read_timeout=60), timeout=20)
    await task
    assert len(updates) == 1
    message = updates[0].message
    assert message is not None and message.text == "/start@branch_test_bot hello"
    assert message.entities[0].type == "bot_command" and message.entities[0].length == len(
        "/start@branch_test_bot"
    )
    assert message.from_user is not None and message.from_user.username == "alice"

    sent = server.last(alice.id)
    cb_update = alice.press(sent, "A")
    updates = await tg.get_updates(offset=updates[0].update_id + 1, timeout=5)
    assert [u.update_id for u in updates] == [cb_update["update_id"]]
    cq = updates[0].callback_query
    assert cq is not None and cq.data == "pick:a" and cq.message is not None
    assert cq.message.message_id == msg.message_id
    await cq.answer("已选择")
    answer = await server.wait_callback_answer(cb_update)
    assert answer["text"] == "已选择" and server.answers(cb_update) == answer
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await cq.answer("twice")
    # confirming drops the update; an empty poll with timeout=0 returns immediately
    assert await tg.get_updates(offset=updates[0].update_id + 1, timeout=0) == ()
    assert server.pending_updates == []
    with pytest.raises(AssertionError, match="no inline button"):
        alice.press(sent, "missing")


async def test_user_media_updates_parse(server: FakeBotApi, tg: Bot) -> None:
    alice = server.user(1001, "Alice")
    grp = server.group(-100123, "Branch", type="supergroup")
    alice.send_photo(caption="pic")
    alice.send_voice()
    alice.send_document("a.xlsx", content=b"PK\x03\x04")
    alice.send_location(34.1, 110.3)
    alice.send_sticker()
    alice.send_contact("+8613800000000", "Alice", user_id=alice.id)
    grp.send(alice, "hi group")
    updates = await tg.get_updates(timeout=1)
    assert len(updates) == 7
    assert all(isinstance(u, Update) for u in updates)
    doc = updates[2].message.document
    assert doc is not None and doc.file_name == "a.xlsx"
    f = await tg.get_file(doc.file_id)
    assert bytes(await f.download_as_bytearray()) == b"PK\x03\x04"
    assert updates[6].message.chat.type == "supergroup"
    member = await tg.get_chat_member(grp.id, server.bot_id)
    assert member.status == "administrator"
    chat = await tg.get_chat(alice.id)
    assert chat.first_name == "Alice"


async def test_commands_store(server: FakeBotApi, tg: Bot) -> None:
    from telegram import BotCommand, BotCommandScopeAllGroupChats

    await tg.set_my_commands([BotCommand("start", "开始")], language_code="zh")
    await tg.set_my_commands([BotCommand("help", "help")], scope=BotCommandScopeAllGroupChats())
    assert [c.command for c in await tg.get_my_commands(language_code="zh")] == ["start"]
    assert server.get_commands({"type": "all_group_chats"}) == [{"command": "help", "description": "help"}]
    assert await tg.get_my_commands() == ()
    assert await tg.delete_my_commands(language_code="zh")
    assert await tg.get_my_commands(language_code="zh") == ()


async def test_no_limits_allows_burst() -> None:
    async with FakeBotApi(limits=None) as api:
        alice = api.user(1001, "Alice")
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            await asyncio.gather(*(bot.send_message(alice.id, f"m{i}") for i in range(200)))
        assert api.delivered(alice.id) == 200
        assert api.stats.rate_limited == 0
        assert sorted(api.texts(alice.id)) == sorted(f"m{i}" for i in range(200))
