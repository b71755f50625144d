"""A fake Telegram Bot API server (aiohttp) for end-to-end tests and benchmarks.

Point a real PTB ``Bot``/``Application`` at it with ``base_url=fake.base_url`` and
``base_file_url=fake.base_file_url``; any token is accepted (``TOKEN`` is a handy default).

Typical use::

    async with FakeBotApi() as fake:
        app = fake.app_builder().build()        # or ApplicationBuilder().base_url(fake.base_url)...
        alice = fake.user(1001, "Alice")
        alice.send("/start")
        msg = await alice.wait_message(contains="欢迎")
        alice.press(msg, "Next")
        await fake.wait_for(lambda: len(fake.calls_to("answerCallbackQuery")) == 1)

Behaviour worth knowing:

* Requests are decoded like the real server: form, multipart (uploaded files are stored) or JSON.
* Send methods (``SEND_METHODS``) are rate limited with sliding windows (see ``Limits``);
  excess calls get HTTP 429 with ``parameters.retry_after`` (PTB raises ``RetryAfter``).
* ``parse_mode`` HTML / MarkdownV2 / Markdown is validated roughly like Telegram does, so
  unescaped user content makes the send fail with ``BadRequest: can't parse entities``.
  ``SentMessage.text`` is the rendered (plain) text, ``SentMessage.raw_text`` what was sent.
* Unknown chats are rejected with 400 "chat not found" unless ``auto_chats=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import mimetypes
import re
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.ext import ApplicationBuilder

JSONDict = dict[str, Any]

TOKEN = "123456:TEST-TOKEN"

SEND_METHODS: frozenset[str] = frozenset(
    {
        "sendMessage",
        "sendDocument",
        "sendPhoto",
        "sendVoice",
        "sendVideo",
        "sendAudio",
        "sendLocation",
        "sendMediaGroup",
        "copyMessage",
        "forwardMessage",
    }
)

MAX_TEXT = 4096
MAX_CAPTION = 1024
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

# --------------------------------------------------------------------------- parameter decoding

_INT_KEYS = frozenset(
    {
        "chat_id",
        "message_id",
        "from_chat_id",
        "offset",
        "limit",
        "user_id",
        "retry_after",
        "reply_to_message_id",
        "message_thread_id",
        "cache_time",
        "duration",
        "until_date",
        "width",
        "height",
        "live_period",
        "heading",
        "proximity_alert_radius",
        "max_connections",
    }
)
_FLOAT_KEYS = frozenset({"timeout", "latitude", "longitude", "horizontal_accuracy"})
_JSON_KEYS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "allowed_updates",
        "reply_parameters",
        "link_preview_options",
        "media",
        "menu_button",
        "message_ids",
        "results",
        "permissions",
        "reaction",
    }
)
_TEXT_KEYS = frozenset(
    {
        "text",
        "caption",
        "description",
        "short_description",
        "name",
        "title",
        "query",
        "callback_query_id",
        "parse_mode",
        "language_code",
        "file_id",
        "url",
        "phone_number",
        "first_name",
        "last_name",
        "vcard",
        "emoji",
        "action",
        "secret_token",
        "inline_message_id",
        "document",
        "photo",
        "voice",
        "video",
        "audio",
        "sticker",
        "thumbnail",
        "address",
        "business_connection_id",
        "message_effect_id",
        "custom_title",
    }
)
_INT_RE = re.compile(r"-?\d+\Z")


def decode_param(key: str, value: Any) -> Any:
    """Decode one request parameter the way the Bot API interprets it (strings stay strings)."""
    if not isinstance(value, str) or key in _TEXT_KEYS:
        return value
    if key in _JSON_KEYS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    if key in _INT_KEYS or key in _FLOAT_KEYS:
        if _INT_RE.match(value.strip()):
            return int(value)
        if key in _FLOAT_KEYS:
            with contextlib.suppress(ValueError):
                return float(value)
        return value
    if value in ("true", "false"):
        return value == "true"
    if value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (Telegram's entity unit)."""
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- public data classes


@dataclass
class Limits:
    """Flood limits enforced on successful send calls (sliding windows)."""

    global_per_second: int = 30
    per_chat_per_second: int = 1
    group_per_minute: int = 20


_DEFAULT_LIMITS = Limits()


@dataclass
class Call:
    """One recorded API call (including failed / rate-limited ones)."""

    method: str
    params: JSONDict
    files: dict[str, tuple[str, bytes]]
    at: float
    status: int = 200
    result: Any = None
    description: str | None = None

    @property
    def ok(self) -> bool:
        """True when the call was answered with ``{"ok": true}``."""
        return self.status == 200

    @property
    def chat_id(self) -> Any:
        """The decoded ``chat_id`` parameter, if any."""
        return self.params.get("chat_id")


@dataclass
class FileRecord:
    """A file known to the fake server (uploaded by the bot or sent by a fake user)."""

    file_id: str
    file_unique_id: str
    filename: str
    data: bytes
    mime_type: str | None
    file_path: str


@dataclass(frozen=True)
class SentMessage:
    """Snapshot of a bot message in a chat (edits applied at snapshot time).

    ``text`` is the rendered text/caption as the user sees it; ``raw_text`` is what the bot sent
    (with HTML/Markdown markup). ``buttons`` is a flat list of ``(text, callback_data or url)``.
    """

    message_id: int
    chat_id: int
    text: str
    reply_markup: JSONDict | None
    buttons: list[tuple[str, str | None]]
    document: tuple[str, bytes] | None
    method: str
    raw_text: str = ""
    parse_mode: str | None = None
    photo: bytes | None = None
    edits: int = 0
    deleted: bool = False
    message: JSONDict = field(default_factory=dict, repr=False)

    @property
    def button_texts(self) -> list[str]:
        """Labels of all buttons, in order."""
        return [text for text, _ in self.buttons]

    def button(self, label: str) -> tuple[str, str | None]:
        """Return the button whose text or callback_data equals ``label`` (AssertionError if none)."""
        for btn in self.buttons:
            if btn[0] == label:
                return btn
        for btn in self.buttons:
            if btn[1] == label:
                return btn
        raise AssertionError(f"no button {label!r} in message {self.message_id}; buttons: {self.buttons}")

    def has(self, text: str) -> bool:
        """True if ``text`` occurs in the rendered or raw text."""
        return text in self.text or text in self.raw_text


@dataclass
class Stats:
    """Counters over all API calls answered by the fake."""

    total: int = 0
    ok: int = 0
    sends_ok: int = 0
    rate_limited: int = 0  # every 429 answered (limit enforcement + injected)
    limit_hits: int = 0  # 429s caused by ``Limits`` enforcement only
    injected: int = 0  # failures produced by fail_next()/storm()
    errors: Counter[int] = field(default_factory=Counter)
    by_method: Counter[str] = field(default_factory=Counter)


class ApiError(Exception):
    """Raised inside method handlers to produce an ``{"ok": false}`` answer."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------- markup rendering

_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


def _parse_error(text: str, pos: int, message: str) -> ApiError:
    offset = len(text[:pos].encode())
    return _bad(f"can't parse entities: {message.format(offset=offset)}")


def _render_html(text: str) -> str:
    out: list[str] = []
    stack: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "<":
            j, quote = i + 1, ""
            while j < n and (text[j] != ">" or quote):
                if text[j] in "\"'":
                    quote = "" if quote == text[j] else (quote or text[j])
                j += 1
            if j >= n:
                raise _parse_error(text, i, "Unclosed start tag at byte offset {offset}")
            inner = text[i + 1 : j].strip()
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack or stack[-1][0] != name:
                    expected = f'"</{stack[-1][0]}>"' if stack else "nothing"
                    raise _parse_error(
                        text,
                        i,
                        f"Unmatched end tag at byte offset {{offset}}, expected {expected}, "
                        f'found "</{name}>"',
                    )
                stack.pop()
            else:
                name = inner.split(None, 1)[0].lower() if inner else ""
                if name not in _HTML_TAGS:
                    raise _parse_error(text, i, f'Unsupported start tag "{name}" at byte offset {{offset}}')
                stack.append((name, i))
            i = j + 1
        elif ch == "&":
            m = _ENTITY_RE.match(text, i)
            if m is None:
                out.append("&")
                i += 1
                continue
            ref = m.group(1)
            if ref.startswith("#x"):
                out.append(chr(int(ref[2:], 16)))
            elif ref.startswith("#"):
                out.append(chr(int(ref[1:])))
            elif ref in _HTML_ENTITIES:
                out.append(_HTML_ENTITIES[ref])
            else:
                out.append(m.group(0))
            i = m.end()
        else:
            out.append(ch)
            i += 1
    if stack:
        name, pos = stack[-1]
        raise _parse_error(text, pos, f'Can\'t find end tag corresponding to start tag "{name}"')
    return "".join(out)


_MDV2_MARKERS = {"*": "Bold", "__": "Underline", "_": "Italic", "~": "Strikethrough", "||": "Spoiler"}
_MDV2_RESERVED = set("[]()>#+-=|{}.!")


def _render_markdown_v2(text: str) -> str:
    out: list[str] = []
    open_markers: dict[str, int] = {}
    links: list[int] = []
    code: str | None = None
    code_start = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                raise _parse_error(
                    text, i, "Character '\\' is reserved and must be escaped with the preceding '\\'"
                )
            out.append(text[i + 1])
            i += 2
            continue
        if code is not None:
            if text.startswith(code, i):
                i += len(code)
                code = None
            else:
                out.append(ch)
                i += 1
            continue
        if text.startswith("```", i):
            code, code_start = "```", i
            i += 3
            eol = text.find("\n", i)
            if eol != -1 and re.fullmatch(r"[\w+#.-]*", text[i:eol]):
                i = eol + 1  # skip the language tag line
            continue
        if ch == "`":
            code, code_start = "`", i
            i += 1
            continue
        if ch == "!" and text.startswith("[", i + 1):
            links.append(i)
            i += 2
            continue
        if ch == "[":
            links.append(i)
            i += 1
            continue
        if ch == "]" and links:
            links.pop()
            if text.startswith("(", i + 1):
                k = i + 2
                while k < n and text[k] != ")":
                    k += 2 if text[k] == "\\" else 1
                if k >= n:
                    raise _parse_error(text, i, "Can't find end of a URL at byte offset {offset}")
                i = k + 1
            else:
                i += 1
            continue
        marker = next((m for m in ("||", "__", "*", "_", "~") if text.startswith(m, i)), None)
        if marker is not None:
            if marker in open_markers:
                del open_markers[marker]
            else:
                open_markers[marker] = i
            i += len(marker)
            continue
        if ch == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1
            continue
        if ch in _MDV2_RESERVED:
            raise _parse_error(
                text, i, f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        out.append(ch)
        i += 1
    if code is not None:
        kind = "Pre" if code == "```" else "Code"
        raise _parse_error(text, code_start, f"Can't find end of {kind} entity at byte offset {{offset}}")
    if open_markers:
        marker, pos = min(open_markers.items(), key=lambda kv: kv[1])
        raise _parse_error(
            text, pos, f"Can't find end of {_MDV2_MARKERS[marker]} entity at byte offset {{offset}}"
        )
    if links:
        raise _parse_error(text, links[-1], "Can't find end of TextUrl entity at byte offset {offset}")
    return "".join(out)


def _render_markdown(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            i += 2
            continue
        if ch in "*_`":
            end = text.find("```" if text.startswith("```", i) else ch, i + 1)
            if end == -1:
                raise _parse_error(text, i, "Can't find end of the entity starting at byte offset {offset}")
            width = 3 if text.startswith("```", i) else 1
            out.append(text[i + width : end])
            i = end + width
            continue
        if ch == "[":
            close = text.find("]", i + 1)
            if close == -1:
                raise _parse_error(text, i, "Can't find end of the entity starting at byte offset {offset}")
            out.append(text[i + 1 : close])
            i = close + 1
            if text.startswith("(", i):
                end = text.find(")", i)
                if end == -1:
                    raise _parse_error(text, i, "Can't find end of a URL at byte offset {offset}")
                i = end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def render_text(text: str, parse_mode: str | None) -> str:
    """Render ``text`` as Telegram would for ``parse_mode``; raise ApiError(400) on parse errors."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return _render_html(text)
    if mode == "markdownv2":
        return _render_markdown_v2(text)
    if mode == "markdown":
        return _render_markdown(text)
    if mode:
        raise _bad(f"unsupported parse_mode {parse_mode}")
    return text


# --------------------------------------------------------------------------- keyboards


def flat_buttons(markup: JSONDict | None) -> list[tuple[str, str | None]]:
    """Flatten an inline or reply keyboard to ``[(text, callback_data or url or None)]``."""
    if not isinstance(markup, dict):
        return []
    rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
    result: list[tuple[str, str | None]] = []
    for row in rows:
        for btn in row:
            if isinstance(btn, str):
                result.append((btn, None))
                continue
            value = btn.get("callback_data")
            if value is None:
                value = btn.get("url")
            if value is None and isinstance(btn.get("web_app"), dict):
                value = btn["web_app"].get("url")
            if value is None:
                value = btn.get("switch_inline_query", btn.get("switch_inline_query_current_chat"))
            result.append((str(btn.get("text", "")), value))
    return result


def _validate_markup(markup: Any) -> JSONDict | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _bad("can't parse inline keyboard markup JSON object")
        for row in rows:
            for btn in row:
                if not isinstance(btn, dict) or not btn.get("text"):
                    raise _bad("can't parse inline keyboard button: Text must be non-empty")
                data = btn.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise _bad("BUTTON_DATA_INVALID")
                if len(btn) == 1:
                    raise _bad(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                url = btn.get("url")
                if url is not None and not re.match(r"(https?|tg)://\S+\Z", str(url)):
                    raise _bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
    elif "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _bad("can't parse reply keyboard markup JSON object")
    return markup


# --------------------------------------------------------------------------- internal records


@dataclass
class _Stored:
    chat_id: int
    message_id: int
    data: JSONDict
    method: str
    from_bot: bool
    raw_text: str = ""
    parse_mode: str | None = None
    markup: JSONDict | None = None
    document: FileRecord | None = None
    photo: FileRecord | None = None
    edits: int = 0
    deleted: bool = False


@dataclass
class _FailRule:
    status: int
    remaining: int
    methods: frozenset[str] | None
    chat_id: int | None
    retry_after: int
    description: str | None


@dataclass
class _Storm:
    until: float
    status: int
    retry_after: int
    methods: frozenset[str] | None
    description: str | None


@dataclass
class _SlowRule:
    seconds: float
    remaining: int
    methods: frozenset[str] | None


@dataclass
class _Ctx:
    call: Call
    now: float
    mimes: dict[str, str | None] = field(default_factory=dict)
    request: web.Request | None = None

    def client_gone(self) -> bool:
        """True when the HTTP client already disconnected (e.g. a cancelled long poll)."""
        transport = self.request.transport if self.request is not None else None
        return self.request is not None and (transport is None or transport.is_closing())

    @property
    def params(self) -> JSONDict:
        return self.call.params

    @property
    def files(self) -> dict[str, tuple[str, bytes]]:
        return self.call.files


def _methods_set(method: str | Iterable[str] | None) -> frozenset[str] | None:
    if method is None:
        return None
    if isinstance(method, str):
        return frozenset({method})
    return frozenset(method)


def _default_description(status: int, retry_after: int, chat_id: Any = None) -> str:
    if status == 429:
        return f"Too Many Requests: retry after {retry_after}"
    if status == 403:
        if isinstance(chat_id, int) and chat_id < 0:
            return "Forbidden: bot was kicked from the group chat"
        return "Forbidden: bot was blocked by the user"
    if status == 400:
        return "Bad Request"
    if status == 409:
        return _CONFLICT
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Error {status}"


# --------------------------------------------------------------------------- simulated people


class FakeUser:
    """A simulated Telegram user; its methods queue updates for the bot and return the update."""

    def __init__(
        self,
        api: FakeBotApi,
        user_id: int,
        first_name: str,
        last_name: str | None,
        username: str | None,
        language_code: str | None,
    ) -> None:
        self.api = api
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code

    def __repr__(self) -> str:
        return f"FakeUser({self.id}, {self.first_name!r})"

    @property
    def chat_id(self) -> int:
        """The id of the private chat with the bot (== user id)."""
        return self.id

    @property
    def user_dict(self) -> JSONDict:
        """The Telegram ``User`` object of this user."""
        data: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data

    @property
    def chat_dict(self) -> JSONDict:
        """The Telegram ``Chat`` object of the private chat with the bot."""
        data: JSONDict = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        return data

    def _target(self, chat: FakeChat | None) -> int:
        return self.id if chat is None else chat.id

    def send(
        self,
        text: str,
        chat: FakeChat | None = None,
        reply_to: SentMessage | int | None = None,
        entities: list[JSONDict] | None = None,
    ) -> JSONDict:
        """Send a text message (``/commands`` get a bot_command entity)."""
        content: JSONDict = {"text": text}
        ents = list(entities) if entities is not None else []
        m = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]+)?", text)
        if m and entities is None:
            ents.append({"type": "bot_command", "offset": 0, "length": utf16_len(m.group(0))})
        if ents:
            content["entities"] = ents
        return self.api._queue_message(self._target(chat), self, content, reply_to)

    def send_photo(
        self, caption: str | None = None, chat: FakeChat | None = None, content: bytes | None = None
    ) -> JSONDict:
        """Send a photo (two PhotoSizes backed by ``content``)."""
        rec = self.api._new_file("photo.jpg", content or b"\xff\xd8\xff\xe0FAKEJPEG", "image/jpeg", "photos")
        small = self.api._alias_file(rec)
        payload: JSONDict = {
            "photo": [
                {
                    "file_id": small.file_id,
                    "file_unique_id": small.file_unique_id,
                    "width": 90,
                    "height": 90,
                    "file_size": len(rec.data),
                },
                {
                    "file_id": rec.file_id,
                    "file_unique_id": rec.file_unique_id,
                    "width": 800,
                    "height": 600,
                    "file_size": len(rec.data),
                },
            ]
        }
        if caption is not None:
            payload["caption"] = caption
        return self.api._queue_message(self._target(chat), self, payload)

    def send_voice(
        self, duration: int = 3, chat: FakeChat | None = None, content: bytes | None = None
    ) -> JSONDict:
        """Send a voice note."""
        rec = self.api._new_file("voice.ogg", content or b"OggSFAKEVOICE", "audio/ogg", "voice")
        voice = {
            "file_id": rec.file_id,
            "file_unique_id": rec.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(rec.data),
        }
        return self.api._queue_message(self._target(chat), self, {"voice": voice})

    def send_document(
        self,
        filename: str = "a.pdf",
        content: bytes | None = None,
        caption: str | None = None,
        mime_type: str | None = None,
        chat: FakeChat | None = None,
    ) -> JSONDict:
        """Send a document; the bot can download ``content`` via getFile."""
        mime = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        rec = self.api._new_file(
            filename, content if content is not None else b"%PDF-1.4 fake", mime, "documents"
        )
        doc = {
            "file_id": rec.file_id,
            "file_unique_id": rec.file_unique_id,
            "file_name": filename,
            "mime_type": mime,
            "file_size": len(rec.data),
        }
        payload: JSONDict = {"document": doc}
        if caption is not None:
            payload["caption"] = caption
        return self.api._queue_message(self._target(chat), self, payload)

    def send_location(self, lat: float, lon: float, chat: FakeChat | None = None) -> JSONDict:
        """Send a location."""
        return self.api._queue_message(
            self._target(chat), self, {"location": {"latitude": lat, "longitude": lon}}
        )

    def send_sticker(self, emoji: str = "👍", chat: FakeChat | None = None) -> JSONDict:
        """Send a sticker."""
        rec = self.api._new_file("sticker.webp", b"RIFFFAKEWEBP", "image/webp", "stickers")
        sticker = {
            "file_id": rec.file_id,
            "file_unique_id": rec.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return self.api._queue_message(self._target(chat), self, {"sticker": sticker})

    def send_contact(
        self,
        phone: str,
        first_name: str,
        last_name: str | None = None,
        user_id: int | None = None,
        chat: FakeChat | None = None,
    ) -> JSONDict:
        """Send a contact (``user_id`` defaults to the sender when sharing the own number)."""
        contact: JSONDict = {"phone_number": phone, "first_name": first_name}
        if last_name:
            contact["last_name"] = last_name
        if user_id is not None:
            contact["user_id"] = user_id
        return self.api._queue_message(self._target(chat), self, {"contact": contact})

    def press(self, message: SentMessage | int, button: str) -> JSONDict:
        """Press an inline button (matched by exact text, else exact callback_data) → callback_query."""
        if isinstance(message, SentMessage):
            chat_id, message_id = message.chat_id, message.message_id
        else:
            chat_id, message_id = self.id, message
        stored = self.api._messages.get(chat_id, {}).get(message_id)
        if stored is None:
            raise AssertionError(f"message {message_id} in chat {chat_id} does not exist (deleted?)")
        buttons = [
            b for row in (stored.markup or {}).get("inline_keyboard", []) for b in row if isinstance(b, dict)
        ]
        match = next((b for b in buttons if b.get("text") == button), None)
        if match is None:
            match = next((b for b in buttons if b.get("callback_data") == button), None)
        if match is None:
            raise AssertionError(
                f"no inline button {button!r} on message {message_id}; buttons: {flat_buttons(stored.markup)}"
            )
        if "callback_data" not in match:
            raise AssertionError(f"button {button!r} has no callback_data (it is {match}); cannot press it")
        return self.api._queue_callback(self, chat_id, dict(stored.data), match["callback_data"])

    def press_data(self, message_id: int, data: str, chat: FakeChat | None = None) -> JSONDict:
        """Queue a (possibly forged) callback query with arbitrary ``data`` for ``message_id``."""
        chat_id = self._target(chat)
        stored = self.api._messages.get(chat_id, {}).get(message_id)
        if stored is not None:
            msg = dict(stored.data)
        else:
            msg = {"message_id": message_id, "chat": self.api._chat_dict(chat_id), "date": 0}
        return self.api._queue_callback(self, chat_id, msg, data)

    def block(self) -> JSONDict:
        """Block the bot: sends fail with 403 and a my_chat_member (member → kicked) update is queued."""
        self.api.block(self.id)
        return self.api._queue_my_chat_member(self.id, self, "member", "kicked")

    def unblock(self) -> JSONDict:
        """Unblock (restart) the bot: queues my_chat_member (kicked → member)."""
        self.api.unblock(self.id)
        return self.api._queue_my_chat_member(self.id, self, "kicked", "member")

    # convenience wrappers around FakeBotApi helpers for the private chat
    def messages(self) -> list[SentMessage]:
        """Current bot messages in the private chat."""
        return self.api.sent(self.id)

    def texts(self) -> list[str]:
        """Texts of the current bot messages in the private chat."""
        return self.api.texts(self.id)

    def last(self) -> SentMessage:
        """The newest bot message in the private chat."""
        return self.api.last(self.id)

    async def wait_message(
        self, contains: str | None = None, count: int = 1, timeout: float = 5.0
    ) -> SentMessage:
        """See ``FakeBotApi.wait_message`` (for this private chat)."""
        return await self.api.wait_message(self.id, contains=contains, count=count, timeout=timeout)

    async def wait_text(self, contains: str, timeout: float = 5.0) -> SentMessage:
        """See ``FakeBotApi.wait_text`` (for this private chat)."""
        return await self.api.wait_text(self.id, contains, timeout=timeout)


class FakeChat:
    """A simulated group, supergroup or channel."""

    def __init__(self, api: FakeBotApi, chat_id: int, title: str, type: str, username: str | None) -> None:
        self.api = api
        self.id = chat_id
        self.title = title
        self.type = type
        self.username = username
        self.members: dict[int, str] = {}
        self.bot_status = "administrator"

    def __repr__(self) -> str:
        return f"FakeChat({self.id}, {self.title!r}, {self.type})"

    @property
    def chat_id(self) -> int:
        """The chat id (negative)."""
        return self.id

    @property
    def chat_dict(self) -> JSONDict:
        """The Telegram ``Chat`` object."""
        data: JSONDict = {"id": self.id, "type": self.type, "title": self.title}
        if self.username:
            data["username"] = self.username
        return data

    def add_member(self, user: FakeUser, status: str = "member") -> None:
        """Make ``user`` a member (``status``: creator/administrator/member/left/kicked); no update."""
        self.members[user.id] = status

    def send(self, from_user: FakeUser, text: str, reply_to: SentMessage | int | None = None) -> JSONDict:
        """``from_user`` sends ``text`` in this chat (channel → channel_post)."""
        return from_user.send(text, chat=self, reply_to=reply_to)

    def add_bot(self, by: FakeUser, status: str = "administrator") -> JSONDict:
        """``by`` adds the bot to the chat: queues my_chat_member left → ``status``."""
        old = self.bot_status if self.bot_status in ("left", "kicked") else "left"
        self.bot_status = status
        self.api.unblock(self.id)
        return self.api._queue_my_chat_member(self.id, by, old, status)

    def remove_bot(self, by: FakeUser, status: str = "kicked") -> JSONDict:
        """``by`` removes the bot: queues my_chat_member; later sends get 403."""
        old = self.bot_status
        self.bot_status = status
        return self.api._queue_my_chat_member(self.id, by, old, status)

    def messages(self) -> list[SentMessage]:
        """Current bot messages in this chat."""
        return self.api.sent(self.id)

    async def wait_message(
        self, contains: str | None = None, count: int = 1, timeout: float = 5.0
    ) -> SentMessage:
        """See ``FakeBotApi.wait_message`` (for this chat)."""
        return await self.api.wait_message(self.id, contains=contains, count=count, timeout=timeout)


# --------------------------------------------------------------------------- the server


class FakeBotApi:
    """Fake Bot API HTTP server on 127.0.0.1 (see module docstring).

    Args:
        limits: flood limits for SEND_METHODS; ``None`` disables enforcement. Rate windows use the
            time a call is processed (after any ``slow()`` delay).
        bot_id, username, first_name: identity returned by getMe and used as ``from`` of bot messages.
        auto_chats: accept any non-zero integer chat_id (private if > 0, group if < 0) instead of
            answering 400 "chat not found" for chats not created with ``user()``/``group()``.
    """

    TOKEN = TOKEN

    def __init__(
        self,
        limits: Limits | None = _DEFAULT_LIMITS,
        bot_id: int = 999000,
        username: str = "branch_test_bot",
        first_name: str = "Branch Test Bot",
        auto_chats: bool = False,
    ) -> None:
        self.limits: Limits | None = replace(limits) if limits is _DEFAULT_LIMITS else limits
        self.bot_id = bot_id
        self.username = username
        self.first_name = first_name
        self.auto_chats = auto_chats
        # For benchmarks: when the bot received each update, and callbacks told of every finished call.
        self.delivered_at: dict[int, float] = {}
        self.observers: list[Callable[[Call], None]] = []

        self.calls: list[Call] = []
        self.stats = Stats()
        self.callback_answers: dict[str, JSONDict] = {}
        self.uploads: list[FileRecord] = []
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.settings: dict[str, JSONDict] = {}
        self.internal_errors: list[BaseException] = []
        self.webhook: JSONDict | None = None  # {url, secret_token} once setWebhook was called

        self._users: dict[int, FakeUser] = {}
        self._groups: dict[int, FakeChat] = {}
        self._auto: dict[int, JSONDict] = {}
        self._blocked: dict[int, str] = {}
        self._messages: dict[int, dict[int, _Stored]] = {}
        self._history: dict[int, list[_Stored]] = {}
        self._next_mid: dict[int, int] = {}
        self._cursor: dict[int, int] = {}
        self._delivered: Counter[int] = Counter()
        self._ok_by_method: Counter[str] = Counter()
        self._last_activity = 0.0
        self._reply_kb: dict[int, JSONDict | None] = {}
        self._files: dict[str, FileRecord] = {}
        self._paths: dict[str, FileRecord] = {}
        self._file_seq = itertools.count(1)
        self._cb_seq = itertools.count(1)
        self._cb_pending: set[str] = set()

        self._updates: deque[JSONDict] = deque()
        self._update_seq = itertools.count(1)
        self._allowed: frozenset[str] | None = None
        self._poll_gen = 0
        self._updates_event = asyncio.Event()
        self._state_event = asyncio.Event()

        self._global_window: deque[float] = deque()
        self._chat_windows: dict[int, deque[float]] = {}
        self._fail_rules: list[_FailRule] = []
        self._storms: list[_Storm] = []
        self._slow_rules: list[_SlowRule] = []

        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = False
        # Further bots served on this server (``add_bot``), by token; any other token is this bot.
        self._bots: dict[str, FakeBotApi] = {}

        self._handlers: dict[str, tuple[str, Callable[[_Ctx], Awaitable[Any]]]] = {}
        for name, handler in self._method_table().items():
            self._handlers[name.lower()] = (name, handler)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> FakeBotApi:
        """Bind `port` (a free one by default) on 127.0.0.1 and start serving."""
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self._port = sock.getsockname()[1]
        for other in self._bots.values():
            other._port, other._closing = self._port, False
        site = web.SockSite(self._runner, sock)
        await site.start()
        self._closing = False
        return self

    def add_bot(self, token: str, limits: Limits | None = _DEFAULT_LIMITS, bot_id: int = 999001,
                username: str = "branch_test_bot_2", auto_chats: bool = False) -> FakeBotApi:
        """Another bot on this server, as Telegram serves every token: requests with `token` go to
        the returned fake, with its own identity, limits, users, updates and records (its ``calls``)."""
        other = FakeBotApi(limits=limits, bot_id=bot_id, username=username, auto_chats=auto_chats)
        other._port = self._port
        self._bots[token] = other
        return other

    def _for_token(self, request: web.Request) -> FakeBotApi | None:
        """The further bot a request is for, if it is for one (not for this bot)."""
        return self._bots.get(request.match_info["token"]) if self._bots else None

    async def stop(self) -> None:
        """Stop serving; pending long polls return immediately."""
        self._closing = True
        self._wake_pollers()
        for other in self._bots.values():
            other._closing = True
            other._wake_pollers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotApi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._port is None:
            raise RuntimeError("FakeBotApi not started")
        return self._port

    @property
    def base_url(self) -> str:
        """Value for PTB ``base_url`` (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for PTB ``base_file_url``."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    @property
    def token(self) -> str:
        """A token to use (any token is accepted)."""
        return TOKEN

    @property
    def bot_user(self) -> JSONDict:
        """The bot's ``User`` object."""
        return {"id": self.bot_id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def make_bot(self, token: str = TOKEN) -> Bot:
        """A ``telegram.Bot`` wired to this server (call ``initialize()`` or use ``async with``)."""
        from telegram import Bot

        return Bot(token, base_url=self.base_url, base_file_url=self.base_file_url)

    def app_builder(self, token: str = TOKEN) -> ApplicationBuilder:
        """A PTB ``ApplicationBuilder`` with token and URLs set for this server."""
        from telegram.ext import ApplicationBuilder

        return ApplicationBuilder().token(token).base_url(self.base_url).base_file_url(self.base_file_url)

    # ------------------------------------------------------------------ people & chats

    def user(
        self,
        user_id: int,
        first_name: str = "Test",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
    ) -> FakeUser:
        """Create (or return the existing) simulated user; its private chat id equals ``user_id``."""
        if user_id <= 0:
            raise ValueError("user ids must be positive")
        existing = self._users.get(user_id)
        if existing is not None:
            return existing
        u = FakeUser(self, user_id, first_name, last_name, username, language_code)
        self._users[user_id] = u
        return u

    def group(
        self, chat_id: int, title: str = "Test Group", type: str = "group", username: str | None = None
    ) -> FakeChat:
        """Create (or return the existing) group/supergroup/channel; the bot is an administrator."""
        if chat_id >= 0:
            raise ValueError("group/channel ids must be negative")
        if type not in ("group", "supergroup", "channel"):
            raise ValueError(f"bad chat type {type!r}")
        existing = self._groups.get(chat_id)
        if existing is not None:
            return existing
        chat = FakeChat(self, chat_id, title, type, username)
        self._groups[chat_id] = chat
        return chat

    def _chat_dict(self, chat_id: int) -> JSONDict:
        if chat_id in self._users:
            return self._users[chat_id].chat_dict
        if chat_id in self._groups:
            return self._groups[chat_id].chat_dict
        if chat_id in self._auto:
            return dict(self._auto[chat_id])
        raise _bad("chat not found")

    def _resolve_chat(self, value: Any, key: str = "chat_id") -> int:
        if value is None or value == "":
            raise _bad(f"{key} is empty")
        if isinstance(value, str):
            if value.startswith("@"):
                name = value[1:].lower()
                for obj in (*self._users.values(), *self._groups.values()):
                    if obj.username and obj.username.lower() == name:
                        return obj.id
            raise _bad("chat not found")
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad("chat not found")
        if value in self._users or value in self._groups or value in self._auto:
            return value
        if self.auto_chats and value != 0:
            if value > 0:
                self._auto[value] = {"id": value, "type": "private", "first_name": f"User{value}"}
            else:
                kind = "supergroup" if value <= -1_000_000_000_000 else "group"
                self._auto[value] = {"id": value, "type": kind, "title": f"Chat {value}"}
            return value
        raise _bad("chat not found")

    # ------------------------------------------------------------------ control knobs

    def block(self, chat_id: int, description: str | None = None) -> None:
        """Make every call targeting ``chat_id`` fail with 403 (no update queued)."""
        self._blocked[chat_id] = description or _default_description(403, 0, chat_id)

    def unblock(self, chat_id: int) -> None:
        """Undo ``block`` (no update queued)."""
        self._blocked.pop(chat_id, None)

    def fail_next(
        self,
        status: int,
        count: int = 1,
        method: str | Iterable[str] | None = None,
        chat_id: int | None = None,
        retry_after: int = 1,
        description: str | None = None,
    ) -> None:
        """Fail the next ``count`` matching calls with ``status``.

        ``method=None`` matches every method except getUpdates (polling runs concurrently).
        """
        self._fail_rules.append(
            _FailRule(status, count, _methods_set(method), chat_id, retry_after, description)
        )

    def storm(
        self,
        seconds: float,
        status: int = 429,
        retry_after: int = 1,
        methods: Iterable[str] | None = SEND_METHODS,
        description: str | None = None,
    ) -> None:
        """Fail every matching call for the next ``seconds`` (``methods=None``: all but getUpdates)."""
        self._storms.append(
            _Storm(time.monotonic() + seconds, status, retry_after, _methods_set(methods), description)
        )

    def slow(self, seconds: float, count: int = 1, method: str | Iterable[str] | None = None) -> None:
        """Delay the next ``count`` matching calls by ``seconds`` before they are processed."""
        self._slow_rules.append(_SlowRule(seconds, count, _methods_set(method)))

    def clear_failures(self) -> None:
        """Drop all pending fail_next/storm/slow rules."""
        self._fail_rules.clear()
        self._storms.clear()
        self._slow_rules.clear()

    def clear_calls(self) -> None:
        """Forget recorded calls and reset ``stats`` (messages and state are kept)."""
        self.calls.clear()
        self.stats = Stats()
        self._ok_by_method.clear()

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of ``method`` (any status)."""
        return [c for c in self.calls if c.method == method]

    def _snap(self, st: _Stored) -> SentMessage:
        data = st.data
        return SentMessage(
            message_id=st.message_id,
            chat_id=st.chat_id,
            text=data.get("text") or data.get("caption") or "",
            reply_markup=st.markup,
            buttons=flat_buttons(st.markup),
            document=(st.document.filename, st.document.data) if st.document else None,
            method=st.method,
            raw_text=st.raw_text,
            parse_mode=st.parse_mode,
            photo=st.photo.data if st.photo else None,
            edits=st.edits,
            deleted=st.deleted,
            message=dict(data),
        )

    def sent(self, chat_id: int) -> list[SentMessage]:
        """The bot's current messages in ``chat_id`` in order (edits applied, deleted removed)."""
        return [self._snap(m) for m in self._messages.get(chat_id, {}).values() if m.from_bot]

    def history(self, chat_id: int) -> list[SentMessage]:
        """Every bot message ever sent to ``chat_id``, including deleted ones (``deleted`` flag set)."""
        return [self._snap(m) for m in self._history.get(chat_id, [])]

    def texts(self, chat_id: int) -> list[str]:
        """Rendered texts/captions of ``sent(chat_id)``."""
        return [m.text for m in self.sent(chat_id)]

    def last(self, chat_id: int) -> SentMessage:
        """The newest current bot message in ``chat_id`` (AssertionError if none)."""
        for m in reversed(self._messages.get(chat_id, {}).values()):
            if m.from_bot:
                return self._snap(m)
        raise AssertionError(f"the bot has no messages in chat {chat_id}")

    def message(self, chat_id: int, message_id: int) -> SentMessage | None:
        """Current state of one message (bot or user), or None if missing/deleted."""
        st = self._messages.get(chat_id, {}).get(message_id)
        return self._snap(st) if st else None

    def delivered(self, chat_id: int) -> int:
        """Number of successful send calls to ``chat_id``."""
        return self._delivered[chat_id]

    def keyboard(self, chat_id: int) -> list[str] | None:
        """Labels of the reply keyboard currently shown in ``chat_id`` (None if none/removed)."""
        markup = self._reply_kb.get(chat_id)
        return [t for t, _ in flat_buttons(markup)] if markup else None

    def file(self, file_id: str) -> FileRecord:
        """A stored file by id (KeyError if unknown)."""
        return self._files[file_id]

    def get_commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        """Commands set with setMyCommands for ``scope`` (default scope if None) and language."""
        return self.commands.get((self._scope_key(scope), language_code), [])

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates queued and not yet confirmed by the bot."""
        return list(self._updates)

    # ------------------------------------------------------------------ waiting

    def _notify(self) -> None:
        ev, self._state_event = self._state_event, asyncio.Event()
        ev.set()

    def _wake_pollers(self) -> None:
        ev, self._updates_event = self._updates_event, asyncio.Event()
        ev.set()

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 5.0, message: str | None = None
    ) -> None:
        """Wait until ``predicate()`` is true (re-checked on every call/update and every 20 ms)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{message or 'condition not met'} within {timeout}s\n{self.describe()}")
            ev = self._state_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), min(remaining, 0.02))

    def describe(self, last_calls: int = 15) -> str:
        """Human-readable summary of recent calls, for assertion messages."""
        lines = [f"stats: {self.stats}", f"last {last_calls} calls:"]
        for c in self.calls[-last_calls:]:
            extra = c.params.get("text") or c.params.get("caption") or ""
            detail = f" -> {c.description}" if c.description else ""
            lines.append(
                f"  {c.method} chat={c.params.get('chat_id')} [{c.status}]{detail} {str(extra)[:80]!r}"
            )
        if self.internal_errors:
            lines.append(f"internal errors: {self.internal_errors!r}")
        return "\n".join(lines)

    def _new_bot_messages(self, chat_id: int, contains: str | None) -> list[_Stored]:
        cursor = self._cursor.get(chat_id, 0)
        found: list[_Stored] = []
        for st in reversed(self._history.get(chat_id, [])):
            if st.message_id <= cursor:
                break
            if (
                contains is None
                or contains in (st.data.get("text") or st.data.get("caption") or "")
                or (contains in st.raw_text)
            ):
                found.append(st)
        found.reverse()
        return found

    async def wait_message(
        self, chat_id: int, contains: str | None = None, count: int = 1, timeout: float = 5.0
    ) -> SentMessage:
        """Wait for ``count`` new bot messages in ``chat_id`` (optionally containing ``contains``).

        "New" means sent after the message returned by the previous ``wait_message`` for this chat
        (deleted ones count; edits to new messages are seen). Returns the newest match.
        """
        result: list[_Stored] = []

        def ready() -> bool:
            nonlocal result
            result = self._new_bot_messages(chat_id, contains)
            return len(result) >= count

        what = f"{count} new message(s) in chat {chat_id}" + (f" containing {contains!r}" if contains else "")
        try:
            await self.wait_for(ready, timeout, message=f"no {what}")
        except AssertionError as exc:
            texts = [m.text for m in self.history(chat_id)][-10:]
            raise AssertionError(f"{exc}\nrecent bot texts in chat {chat_id}: {texts}") from None
        newest = result[-1]
        self._cursor[chat_id] = newest.message_id
        return self._snap(newest)

    async def wait_text(self, chat_id: int, contains: str, timeout: float = 5.0) -> SentMessage:
        """Wait until any current bot message (new or edited) in ``chat_id`` contains ``contains``."""
        found: list[SentMessage] = []

        def ready() -> bool:
            found[:] = [m for m in self.sent(chat_id) if m.has(contains)]
            return bool(found)

        try:
            await self.wait_for(
                ready, timeout, message=f"no message containing {contains!r} in chat {chat_id}"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\ncurrent texts: {self.texts(chat_id)}") from None
        return found[-1]

    def mark_read(self, chat_id: int) -> None:
        """Make ``wait_message`` ignore every bot message sent to ``chat_id`` so far."""
        hist = self._history.get(chat_id)
        if hist:
            self._cursor[chat_id] = hist[-1].message_id

    def answers(self, cb_id: str | JSONDict) -> JSONDict | None:
        """Params of the answerCallbackQuery for a callback id / update, or None if unanswered."""
        key = cb_id if isinstance(cb_id, str) else cb_id["callback_query"]["id"]
        return self.callback_answers.get(key)

    async def wait_callback_answer(self, update: JSONDict | str, timeout: float = 5.0) -> JSONDict:
        """Wait for answerCallbackQuery of the callback ``update`` (or id); returns its params."""
        cb_id = update if isinstance(update, str) else update["callback_query"]["id"]
        await self.wait_for(
            lambda: cb_id in self.callback_answers, timeout, message=f"callback query {cb_id} not answered"
        )
        return self.callback_answers[cb_id]

    async def wait_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until at least ``count`` successful calls of ``method`` were made; returns them."""
        await self.wait_for(
            lambda: self._ok_by_method[method] >= count,
            timeout,
            message=f"fewer than {count} successful {method} calls",
        )
        return [c for c in self.calls if c.method == method and c.ok]

    async def wait_idle(self, quiet: float = 0.2, timeout: float = 10.0) -> None:
        """Wait until all updates are consumed and no non-polling call arrived for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if not self._updates and now - self._last_activity >= quiet:
                return
            if now >= deadline:
                raise AssertionError(f"bot not idle within {timeout}s\n{self.describe()}")
            await asyncio.sleep(min(0.02, max(0.0, deadline - now)))

    # ------------------------------------------------------------------ update queue

    def queue_update(self, payload: JSONDict) -> JSONDict:
        """Queue a raw update (``update_id`` is assigned); returns it."""
        update = {"update_id": next(self._update_seq), **payload}
        self._updates.append(update)
        self._wake_pollers()
        self._notify()
        return update

    def _next_message_id(self, chat_id: int) -> int:
        mid = self._next_mid.get(chat_id, 0) + 1
        self._next_mid[chat_id] = mid
        return mid

    def _store(self, st: _Stored) -> None:
        self._messages.setdefault(st.chat_id, {})[st.message_id] = st
        if st.from_bot:
            self._history.setdefault(st.chat_id, []).append(st)

    def _queue_message(
        self, chat_id: int, user: FakeUser, content: JSONDict, reply_to: SentMessage | int | None = None
    ) -> JSONDict:
        chat = self._chat_dict(chat_id)
        group = self._groups.get(chat_id)
        if group is not None and user.id not in group.members:
            group.members[user.id] = "member"
        mid = self._next_message_id(chat_id)
        msg: JSONDict = {"message_id": mid, "date": int(time.time()), "chat": chat}
        if chat["type"] == "channel":
            msg["sender_chat"] = chat
        else:
            msg["from"] = user.user_dict
        if reply_to is not None:
            rid = reply_to.message_id if isinstance(reply_to, SentMessage) else reply_to
            target = self._messages.get(chat_id, {}).get(rid)
            if target is not None:
                msg["reply_to_message"] = {k: v for k, v in target.data.items() if k != "reply_to_message"}
        msg.update(content)
        self._store(
            _Stored(
                chat_id, mid, msg, "user", False, raw_text=content.get("text", content.get("caption", ""))
            )
        )
        key = "channel_post" if chat["type"] == "channel" else "message"
        return self.queue_update({key: msg})

    def _queue_callback(self, user: FakeUser, chat_id: int, message: JSONDict, data: str) -> JSONDict:
        cb_id = f"{user.id}{next(self._cb_seq):06d}"
        self._cb_pending.add(cb_id)
        return self.queue_update(
            {
                "callback_query": {
                    "id": cb_id,
                    "from": user.user_dict,
                    "message": message,
                    "chat_instance": str(abs(hash(("ci", chat_id))) % 10**18),
                    "data": data,
                }
            }
        )

    def _member(self, user: JSONDict, status: str) -> JSONDict:
        member: JSONDict = {"user": user, "status": status}
        if status == "kicked":
            member["until_date"] = 0
        elif status == "administrator":
            member.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
                can_pin_messages=True,
            )
        elif status == "creator":
            member["is_anonymous"] = False
        return member

    def _queue_my_chat_member(self, chat_id: int, by: FakeUser, old: str, new: str) -> JSONDict:
        return self.queue_update(
            {
                "my_chat_member": {
                    "chat": self._chat_dict(chat_id),
                    "from": by.user_dict,
                    "date": int(time.time()),
                    "old_chat_member": self._member(self.bot_user, old),
                    "new_chat_member": self._member(self.bot_user, new),
                }
            }
        )

    # ------------------------------------------------------------------ files

    def _new_file(self, filename: str, data: bytes, mime: str | None, folder: str) -> FileRecord:
        n = next(self._file_seq)
        ext = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
        rec = FileRecord(
            file_id=f"FAKE{folder[:3].upper()}{n:08d}",
            file_unique_id=f"U{n:08d}",
            filename=filename,
            data=data,
            mime_type=mime,
            file_path=f"{folder}/file_{n}.{ext}",
        )
        self._files[rec.file_id] = rec
        self._paths[rec.file_path] = rec
        return rec

    def _alias_file(self, rec: FileRecord) -> FileRecord:
        n = next(self._file_seq)
        alias = FileRecord(
            f"{rec.file_id}S{n}",
            f"{rec.file_unique_id}S{n}",
            rec.filename,
            rec.data,
            rec.mime_type,
            rec.file_path,
        )
        self._files[alias.file_id] = alias
        return alias

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if (other := self._for_token(request)) is not None:
            return await other._handle_file(request)
        rec = self._paths.get(request.match_info["path"])
        if rec is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=rec.data, content_type=rec.mime_type or "application/octet-stream")

    # ------------------------------------------------------------------ HTTP plumbing

    async def _read_params(
        self, request: web.Request
    ) -> tuple[JSONDict, dict[str, tuple[str, bytes]], dict[str, str | None]]:
        params: JSONDict = {k: decode_param(k, v) for k, v in request.query.items()}
        files: dict[str, tuple[str, bytes]] = {}
        mimes: dict[str, str | None] = {}
        if request.method != "POST" or not request.can_read_body:
            return params, files, mimes
        ctype = request.content_type
        if ctype == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update({k: decode_param(k, v) for k, v in body.items()})
        elif ctype.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    data = bytes(await part.read(decode=False))
                    files[part.name] = (part.filename, data)
                    mimes[part.name] = part.headers.get("Content-Type")
                else:
                    params[part.name] = decode_param(part.name, await part.text())
        else:
            form = await request.post()
            params.update({k: decode_param(k, v) for k, v in form.items() if isinstance(v, str)})
        return params, files, mimes

    def _response(self, status: int, payload: JSONDict) -> web.Response:
        return web.Response(
            body=json.dumps(payload, ensure_ascii=False).encode(),
            status=status,
            content_type="application/json",
        )

    def _finish(
        self,
        call: Call,
        status: int,
        result: Any = None,
        description: str | None = None,
        retry_after: int | None = None,
    ) -> web.Response:
        call.status = status
        self.stats.total += 1
        self.stats.by_method[call.method] += 1
        if status == 200:
            call.result = result
            self.stats.ok += 1
            if call.method in SEND_METHODS:
                self.stats.sends_ok += 1
            payload: JSONDict = {"ok": True, "result": result}
        else:
            call.description = description
            if status != 499:
                self.stats.errors[status] += 1
            if status == 429:
                self.stats.rate_limited += 1
            payload = {"ok": False, "error_code": status, "description": description}
            if status == 429:
                payload["parameters"] = {"retry_after": retry_after or 1}
        self.calls.append(call)
        if status == 200:
            self._ok_by_method[call.method] += 1
        if call.method != "getUpdates":
            self._last_activity = time.monotonic()
        for observer in self.observers:
            observer(call)
        self._notify()
        return self._response(status, payload)

    def _matches(self, methods: frozenset[str] | None, method: str) -> bool:
        return method != "getUpdates" if methods is None else method in methods

    def _injected(self, call: Call) -> tuple[int, str, int | None] | None:
        chat_id = call.params.get("chat_id")
        for rule in self._fail_rules:
            if (
                rule.remaining > 0
                and self._matches(rule.methods, call.method)
                and (rule.chat_id is None or rule.chat_id == chat_id)
            ):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._fail_rules.remove(rule)
                desc = rule.description or _default_description(rule.status, rule.retry_after, chat_id)
                return rule.status, desc, rule.retry_after
        if self._storms:
            now = time.monotonic()
            self._storms = [s for s in self._storms if s.until > now]
            for s in self._storms:
                if self._matches(s.methods, call.method):
                    desc = s.description or _default_description(s.status, s.retry_after, chat_id)
                    return s.status, desc, s.retry_after
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        if (other := self._for_token(request)) is not None:
            return await other._handle(request)
        arrival = time.monotonic()
        raw_name = request.match_info["method"]
        entry = self._handlers.get(raw_name.lower())
        try:
            params, files, mimes = await self._read_params(request)
        except Exception as exc:
            call = Call(entry[0] if entry else raw_name, {}, {}, arrival)
            return self._finish(call, 400, description=f"Bad Request: can't parse request: {exc}")
        call = Call(entry[0] if entry else raw_name, params, files, arrival)
        if entry is None:
            return self._finish(call, 404, description="Not Found")
        for rule in self._slow_rules:
            if rule.remaining > 0 and self._matches(rule.methods, call.method):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._slow_rules.remove(rule)
                await asyncio.sleep(rule.seconds)
                break
        injected = self._injected(call)
        if injected is not None:
            self.stats.injected += 1
            status, desc, retry_after = injected
            return self._finish(call, status, description=desc, retry_after=retry_after)
        ctx = _Ctx(call, time.monotonic(), mimes, request)
        try:
            result = await entry[1](ctx)
        except ApiError as err:
            return self._finish(call, err.status, description=err.description, retry_after=err.retry_after)
        except Exception as exc:  # a bug in the fake or a wildly malformed request
            self.internal_errors.append(exc)
            return self._finish(call, 500, description=f"Internal Server Error: {exc!r}")
        return self._finish(call, 200, result=result)

    # ------------------------------------------------------------------ rate limiting & checks

    @staticmethod
    def _window_wait(window: deque[float], now: float, span: float, limit: int) -> float:
        cutoff = now - span
        while window and window[0] <= cutoff:
            window.popleft()
        if limit <= 0:
            return span
        if len(window) < limit:
            return 0.0
        return window[len(window) - limit] + span - now

    def _check_rate(self, chat_id: int, now: float) -> None:
        lim = self.limits
        if lim is None:
            return
        wait = self._window_wait(self._global_window, now, 1.0, lim.global_per_second)
        chat_win = self._chat_windows.setdefault(chat_id, deque())
        if chat_id > 0:
            wait = max(wait, self._window_wait(chat_win, now, 1.0, lim.per_chat_per_second))
        else:
            wait = max(wait, self._window_wait(chat_win, now, 60.0, lim.group_per_minute))
        if wait > 0:
            self.stats.limit_hits += 1
            retry = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry)

    def _record_send(self, chat_id: int, now: float) -> None:
        self._delivered[chat_id] += 1
        if self.limits is None:
            return
        self._global_window.append(now)
        self._chat_windows.setdefault(chat_id, deque()).append(now)

    def _check_blocked(self, chat_id: int) -> None:
        desc = self._blocked.get(chat_id)
        if desc is not None:
            raise ApiError(403, desc)
        group = self._groups.get(chat_id)
        if group is not None and group.bot_status in ("left", "kicked"):
            if group.bot_status == "kicked":
                what = (
                    "channel chat"
                    if group.type == "channel"
                    else ("supergroup chat" if group.type == "supergroup" else "group chat")
                )
                raise ApiError(403, f"Forbidden: bot was kicked from the {what}")
            raise ApiError(403, "Forbidden: bot is not a member of the group chat")

    def _send_target(self, ctx: _Ctx) -> int:
        """Validate chat for a send: 400 unknown chat, 403 blocked (rate limit is checked later)."""
        chat_id = self._resolve_chat(ctx.params.get("chat_id"))
        self._check_blocked(chat_id)
        return chat_id

    def _reply_to(self, ctx: _Ctx, chat_id: int) -> JSONDict | None:
        params = ctx.params
        rp = params.get("reply_parameters")
        rid = params.get("reply_to_message_id")
        allow = bool(params.get("allow_sending_without_reply"))
        if isinstance(rp, dict):
            rid = rp.get("message_id")
            allow = allow or bool(rp.get("allow_sending_without_reply"))
        if rid is None:
            return None
        target = self._messages.get(chat_id, {}).get(rid) if isinstance(rid, int) else None
        if target is None:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return {k: v for k, v in target.data.items() if k != "reply_to_message"}

    def _new_bot_message(
        self,
        ctx: _Ctx,
        chat_id: int,
        content: JSONDict,
        *,
        raw_text: str = "",
        parse_mode: str | None = None,
        markup: JSONDict | None = None,
        document: FileRecord | None = None,
        photo: FileRecord | None = None,
        reply: JSONDict | None = None,
    ) -> _Stored:
        mid = self._next_message_id(chat_id)
        msg: JSONDict = {
            "message_id": mid,
            "from": self.bot_user,
            "date": int(time.time()),
            "chat": self._chat_dict(chat_id),
        }
        if reply is not None:
            msg["reply_to_message"] = reply
        msg.update(content)
        if markup is not None and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        st = _Stored(
            chat_id,
            mid,
            msg,
            ctx.call.method,
            True,
            raw_text=raw_text,
            parse_mode=parse_mode,
            markup=markup,
            document=document,
            photo=photo,
        )
        self._store(st)
        if markup is not None and ("keyboard" in markup or "remove_keyboard" in markup):
            self._reply_kb[chat_id] = markup if "keyboard" in markup else None
        return st

    def _text_and_markup(
        self, ctx: _Ctx, key: str, limit: int, empty_error: str | None
    ) -> tuple[str, str, Any]:
        raw = ctx.params.get(key)
        raw = "" if raw is None else str(raw)
        parse_mode = ctx.params.get("parse_mode")
        plain = render_text(raw, parse_mode) if raw else ""
        if empty_error and not plain.strip():
            raise _bad(empty_error)
        if len(plain) > limit:
            raise _bad("message is too long" if key == "text" else "message caption is too long")
        markup = _validate_markup(ctx.params.get("reply_markup"))
        return raw, plain, markup

    # ------------------------------------------------------------------ method handlers

    def _method_table(self) -> dict[str, Callable[[_Ctx], Awaitable[Any]]]:
        return {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setMyDescription": self._store_setting,
            "setMyShortDescription": self._store_setting,
            "setMyName": self._store_setting,
            "setChatMenuButton": self._store_setting,
            "sendMessage": self._send_message,
            "sendDocument": self._send_media,
            "sendPhoto": self._send_media,
            "sendVoice": self._send_media,
            "sendVideo": self._send_media,
            "sendAudio": self._send_media,
            "sendLocation": self._send_location,
            "sendMediaGroup": self._send_media_group,
            "sendChatAction": self._send_chat_action,
            "copyMessage": self._copy_message,
            "forwardMessage": self._forward_message,
            "editMessageText": self._edit_text,
            "editMessageCaption": self._edit_caption,
            "editMessageReplyMarkup": self._edit_markup,
            "deleteMessage": self._delete_message,
            "pinChatMessage": self._pin,
            "unpinChatMessage": self._pin,
            "answerCallbackQuery": self._answer_callback,
            "getFile": self._get_file,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_admins,
            "getChatMemberCount": self._get_member_count,
        }

    async def _true(self, ctx: _Ctx) -> bool:
        return True

    async def _get_me(self, ctx: _Ctx) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _set_webhook(self, ctx: _Ctx) -> bool:
        """Remembered (url, secret_token) as Telegram would; the fake does not post to it: a test
        takes the queued updates (`take_updates`) and posts them itself."""
        url = ctx.params.get("url")
        if not isinstance(url, str):
            raise _bad("Bad Request: bad webhook: URL must be a string")
        self.webhook = {"url": url, "secret_token": ctx.params.get("secret_token")} if url else None
        if ctx.params.get("drop_pending_updates"):
            self._updates.clear()
        self._wake_pollers()
        return True

    async def _delete_webhook(self, ctx: _Ctx) -> bool:
        self.webhook = None
        if ctx.params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, ctx: _Ctx) -> JSONDict:
        url = self.webhook["url"] if self.webhook else ""
        return {"url": url, "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    def take_updates(self) -> list[JSONDict]:
        """Every queued update, removed from the queue: what Telegram would post to a webhook."""
        updates = list(self._updates)
        self._updates.clear()
        return updates

    def _confirm(self, offset: Any) -> None:
        if not isinstance(offset, int) or isinstance(offset, bool):
            return
        q = self._updates
        if offset < 0:
            while len(q) > -offset:
                q.popleft()
            return
        while q and q[0]["update_id"] < offset:
            q.popleft()

    def _pending(self, limit: int) -> list[JSONDict]:
        allowed = self._allowed
        out: list[JSONDict] = []
        for upd in self._updates:
            kind = next((k for k in upd if k != "update_id"), "")
            if (allowed is None and kind not in _DEFAULT_EXCLUDED_UPDATES) or (
                allowed is not None and kind in allowed
            ):
                out.append(upd)
                if len(out) >= limit:
                    break
        return out

    async def _get_updates(self, ctx: _Ctx) -> list[JSONDict]:
        p = ctx.params
        limit = p.get("limit", 100)
        limit = min(100, max(1, limit)) if isinstance(limit, int) else 100
        timeout = p.get("timeout", 0)
        timeout = float(timeout) if isinstance(timeout, int | float) else 0.0
        allowed = p.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed = frozenset(allowed) or None
        if self.webhook is not None:  # as Telegram: no polling while a webhook is set
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active;"
                                " use deleteWebhook to delete the webhook first")
        self._poll_gen += 1
        gen = self._poll_gen
        self._wake_pollers()  # an older long poll gets 409 Conflict, like Telegram
        self._confirm(p.get("offset"))
        deadline = time.monotonic() + min(timeout, 50.0)
        while True:
            if ctx.client_gone():
                raise ApiError(499, "Client Closed Request")  # recorded, not counted as an error
            if gen != self._poll_gen:
                raise ApiError(409, _CONFLICT)
            updates = self._pending(limit)
            if updates or self._closing:
                now = time.monotonic()
                for update in updates:
                    self.delivered_at.setdefault(update["update_id"], now)
                return updates
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            ev = self._updates_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), remaining)

    @staticmethod
    def _scope_key(scope: Any) -> str:
        return json.dumps(scope if isinstance(scope, dict) else {"type": "default"}, sort_keys=True)

    async def _set_my_commands(self, ctx: _Ctx) -> bool:
        cmds = ctx.params.get("commands")
        if not isinstance(cmds, list):
            raise _bad("commands is empty" if cmds is None else "can't parse commands JSON object")
        for c in cmds:
            if not isinstance(c, dict) or not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise _bad(
                    "BOT_COMMAND_DESCRIPTION_INVALID"
                    if c.get("description")
                    else "command description is empty"
                )
        key = (self._scope_key(ctx.params.get("scope")), str(ctx.params.get("language_code") or ""))
        self.commands[key] = [{"command": c["command"], "description": c["description"]} for c in cmds]
        return True

    async def _get_my_commands(self, ctx: _Ctx) -> list[JSONDict]:
        key = (self._scope_key(ctx.params.get("scope")), str(ctx.params.get("language_code") or ""))
        return self.commands.get(key, [])

    async def _delete_my_commands(self, ctx: _Ctx) -> bool:
        key = (self._scope_key(ctx.params.get("scope")), str(ctx.params.get("language_code") or ""))
        self.commands.pop(key, None)
        return True

    async def _store_setting(self, ctx: _Ctx) -> bool:
        lang = ctx.params.get("language_code") or ""
        self.settings[f"{ctx.call.method}:{lang}" if lang else ctx.call.method] = dict(ctx.params)
        return True

    async def _send_message(self, ctx: _Ctx) -> JSONDict:
        chat_id = self._send_target(ctx)
        raw, plain, markup = self._text_and_markup(ctx, "text", MAX_TEXT, "message text is empty")
        reply = self._reply_to(ctx, chat_id)
        self._check_rate(chat_id, ctx.now)
        content: JSONDict = {"text": plain}
        if isinstance(ctx.params.get("entities"), list):
            content["entities"] = ctx.params["entities"]
        st = self._new_bot_message(
            ctx,
            chat_id,
            content,
            raw_text=raw,
            parse_mode=ctx.params.get("parse_mode"),
            markup=markup,
            reply=reply,
        )
        self._record_send(chat_id, ctx.now)
        return st.data

    def _media_object(self, kind: str, rec: FileRecord, params: JSONDict) -> Any:
        base = {"file_id": rec.file_id, "file_unique_id": rec.file_unique_id, "file_size": len(rec.data)}
        if kind == "photo":
            small = self._alias_file(rec)
            return [
                {
                    "file_id": small.file_id,
                    "file_unique_id": small.file_unique_id,
                    "width": 90,
                    "height": 90,
                    "file_size": len(rec.data),
                },
                {**base, "width": 800, "height": 600},
            ]
        if kind == "voice":
            return {**base, "duration": params.get("duration", 1), "mime_type": rec.mime_type or "audio/ogg"}
        if kind == "video":
            return {
                **base,
                "width": params.get("width", 640),
                "height": params.get("height", 360),
                "duration": params.get("duration", 1),
                "file_name": rec.filename,
                "mime_type": rec.mime_type or "video/mp4",
            }
        if kind == "audio":
            return {
                **base,
                "duration": params.get("duration", 1),
                "file_name": rec.filename,
                "mime_type": rec.mime_type or "audio/mpeg",
            }
        return {**base, "file_name": rec.filename, "mime_type": rec.mime_type or "application/octet-stream"}

    def _input_file(self, ctx: _Ctx, kind: str, value: Any, field_name: str) -> FileRecord:
        """Resolve an uploaded file / attach:// reference / file_id / URL into a FileRecord."""
        upload_name = field_name
        if isinstance(value, str) and value.startswith("attach://"):
            upload_name = value[len("attach://") :]
            value = None
        if upload_name in ctx.files and (value is None or value == ""):
            filename, data = ctx.files[upload_name]
            mime = ctx.mimes.get(upload_name)
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(filename)[0] or mime
            folder = {"photo": "photos", "voice": "voice", "video": "videos", "audio": "music"}.get(
                kind, "documents"
            )
            rec = self._new_file(filename, data, mime, folder)
            self.uploads.append(rec)
            return rec
        if isinstance(value, str) and value:
            if value in self._files:
                return self._files[value]
            if re.match(r"https?://", value):
                name = value.rstrip("/").rsplit("/", 1)[-1] or "file"
                return self._new_file(name, b"", mimetypes.guess_type(name)[0], "documents")
            raise _bad("wrong file identifier/HTTP URL specified")
        raise _bad(f"there is no {kind} in the request")

    async def _send_media(self, ctx: _Ctx) -> JSONDict:
        kind = ctx.call.method[len("send") :].lower()
        chat_id = self._send_target(ctx)
        raw, plain, markup = self._text_and_markup(ctx, "caption", MAX_CAPTION, None)
        rec = self._input_file(ctx, kind, ctx.params.get(kind), kind)
        reply = self._reply_to(ctx, chat_id)
        self._check_rate(chat_id, ctx.now)
        content: JSONDict = {kind: self._media_object(kind, rec, ctx.params)}
        if raw:
            content["caption"] = plain
        st = self._new_bot_message(
            ctx,
            chat_id,
            content,
            raw_text=raw,
            parse_mode=ctx.params.get("parse_mode"),
            markup=markup,
            document=rec if kind in ("document", "audio", "video", "voice") else None,
            photo=rec if kind == "photo" else None,
            reply=reply,
        )
        self._record_send(chat_id, ctx.now)
        return st.data

    async def _send_location(self, ctx: _Ctx) -> JSONDict:
        chat_id = self._send_target(ctx)
        lat, lon = ctx.params.get("latitude"), ctx.params.get("longitude")
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            raise _bad("wrong latitude or longitude specified")
        markup = _validate_markup(ctx.params.get("reply_markup"))
        reply = self._reply_to(ctx, chat_id)
        self._check_rate(chat_id, ctx.now)
        st = self._new_bot_message(
            ctx, chat_id, {"location": {"latitude": lat, "longitude": lon}}, markup=markup, reply=reply
        )
        self._record_send(chat_id, ctx.now)
        return st.data

    async def _send_media_group(self, ctx: _Ctx) -> list[JSONDict]:
        chat_id = self._send_target(ctx)
        media = ctx.params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise _bad(
                "wrong number of messages in the media group" if isinstance(media, list) else "media is empty"
            )
        prepared: list[tuple[str, FileRecord, str, str, str | None]] = []
        for i, item in enumerate(media):
            kind = str(item.get("type", "photo"))
            rec = self._input_file(ctx, kind, item.get("media"), f"media{i}")
            raw = str(item.get("caption") or "")
            plain = render_text(raw, item.get("parse_mode")) if raw else ""
            if len(plain) > MAX_CAPTION:
                raise _bad("message caption is too long")
            prepared.append((kind, rec, raw, plain, item.get("parse_mode")))
        reply = self._reply_to(ctx, chat_id)
        self._check_rate(chat_id, ctx.now)
        group_id = f"{chat_id}{ctx.call.at:.0f}{next(self._file_seq)}"
        out = []
        for kind, rec, raw, plain, mode in prepared:
            content: JSONDict = {kind: self._media_object(kind, rec, {}), "media_group_id": group_id}
            if plain:
                content["caption"] = plain
            st = self._new_bot_message(
                ctx,
                chat_id,
                content,
                raw_text=raw,
                parse_mode=mode,
                document=rec if kind != "photo" else None,
                photo=rec if kind == "photo" else None,
                reply=reply,
            )
            out.append(st.data)
        self._record_send(chat_id, ctx.now)
        return out

    async def _send_chat_action(self, ctx: _Ctx) -> bool:
        self._send_target(ctx)
        if not ctx.params.get("action"):
            raise _bad("action is empty")
        return True

    _COPY_KEYS = (
        "text",
        "entities",
        "caption",
        "caption_entities",
        "document",
        "photo",
        "voice",
        "video",
        "audio",
        "location",
        "sticker",
        "contact",
        "animation",
        "venue",
    )

    def _source(self, ctx: _Ctx, what: str) -> _Stored:
        from_chat = self._resolve_chat(ctx.params.get("from_chat_id"), "from_chat_id")
        src = self._messages.get(from_chat, {}).get(ctx.params.get("message_id"))
        if src is None:
            raise _bad(f"message to {what} not found")
        return src

    async def _copy_message(self, ctx: _Ctx) -> JSONDict:
        chat_id = self._send_target(ctx)
        src = self._source(ctx, "copy")
        content = {k: v for k, v in src.data.items() if k in self._COPY_KEYS}
        if not content:
            raise _bad("message can't be copied")
        raw_text = src.raw_text
        mode = src.parse_mode
        if "caption" in ctx.params and "text" not in content:
            raw_text, plain, _ = self._text_and_markup(ctx, "caption", MAX_CAPTION, None)
            mode = ctx.params.get("parse_mode")
            content["caption"] = plain
        markup = _validate_markup(ctx.params.get("reply_markup"))
        reply = self._reply_to(ctx, chat_id)
        self._check_rate(chat_id, ctx.now)
        st = self._new_bot_message(
            ctx,
            chat_id,
            content,
            raw_text=raw_text,
            parse_mode=mode,
            markup=markup,
            document=src.document,
            photo=src.photo,
            reply=reply,
        )
        self._record_send(chat_id, ctx.now)
        return {"message_id": st.message_id}

    async def _forward_message(self, ctx: _Ctx) -> JSONDict:
        chat_id = self._send_target(ctx)
        src = self._source(ctx, "forward")
        content = {k: v for k, v in src.data.items() if k in self._COPY_KEYS}
        sender = src.data.get("from")
        if sender is not None:
            origin: JSONDict = {"type": "user", "sender_user": sender, "date": src.data["date"]}
        else:
            origin = {
                "type": "channel",
                "chat": src.data["chat"],
                "message_id": src.message_id,
                "date": src.data["date"],
            }
        content["forward_origin"] = origin
        self._check_rate(chat_id, ctx.now)
        st = self._new_bot_message(
            ctx,
            chat_id,
            content,
            raw_text=src.raw_text,
            parse_mode=src.parse_mode,
            document=src.document,
            photo=src.photo,
        )
        self._record_send(chat_id, ctx.now)
        return st.data

    def _editable(self, ctx: _Ctx) -> _Stored:
        if ctx.params.get("inline_message_id"):
            raise _bad("inline messages are not supported by the fake")
        chat_id = self._resolve_chat(ctx.params.get("chat_id"))
        self._check_blocked(chat_id)
        mid = ctx.params.get("message_id")
        if mid is None:
            raise _bad("message identifier is not specified")
        st = self._messages.get(chat_id, {}).get(mid)
        if st is None:
            raise _bad("message to edit not found")
        if not st.from_bot:
            raise _bad("message can't be edited")
        return st

    def _apply_markup(self, st: _Stored, markup: JSONDict | None) -> None:
        st.markup = markup
        if markup is not None and "inline_keyboard" in markup:
            st.data["reply_markup"] = markup
        else:
            st.data.pop("reply_markup", None)

    def _edited(self, st: _Stored) -> JSONDict:
        st.edits += 1
        st.data["edit_date"] = int(time.time())
        return st.data

    async def _edit_text(self, ctx: _Ctx) -> JSONDict:
        st = self._editable(ctx)
        if "text" not in st.data:
            raise _bad("there is no text in the message to edit")
        raw, plain, markup = self._text_and_markup(ctx, "text", MAX_TEXT, "message text is empty")
        if plain == st.data.get("text") and raw == st.raw_text and markup == st.markup:
            raise _bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        st.data["text"] = plain
        if isinstance(ctx.params.get("entities"), list):
            st.data["entities"] = ctx.params["entities"]
        else:
            st.data.pop("entities", None)
        st.raw_text = raw
        st.parse_mode = ctx.params.get("parse_mode")
        self._apply_markup(st, markup)
        return self._edited(st)

    async def _edit_caption(self, ctx: _Ctx) -> JSONDict:
        st = self._editable(ctx)
        if "text" in st.data:
            raise _bad("there is no caption in the message to edit")
        raw, plain, markup = self._text_and_markup(ctx, "caption", MAX_CAPTION, None)
        if plain == (st.data.get("caption") or "") and raw == st.raw_text and markup == st.markup:
            raise _bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        if plain:
            st.data["caption"] = plain
        else:
            st.data.pop("caption", None)
        st.raw_text = raw
        st.parse_mode = ctx.params.get("parse_mode")
        self._apply_markup(st, markup)
        return self._edited(st)

    async def _edit_markup(self, ctx: _Ctx) -> JSONDict:
        st = self._editable(ctx)
        markup = _validate_markup(ctx.params.get("reply_markup"))
        if markup is not None and "inline_keyboard" not in markup:
            raise _bad("inline keyboard expected")
        if markup == st.markup:
            raise _bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        self._apply_markup(st, markup)
        return self._edited(st)

    async def _delete_message(self, ctx: _Ctx) -> bool:
        chat_id = self._resolve_chat(ctx.params.get("chat_id"))
        self._check_blocked(chat_id)
        st = self._messages.get(chat_id, {}).pop(ctx.params.get("message_id"), None)
        if st is None:
            raise _bad("message to delete not found")
        st.deleted = True
        return True

    async def _pin(self, ctx: _Ctx) -> bool:
        chat_id = self._resolve_chat(ctx.params.get("chat_id"))
        self._check_blocked(chat_id)
        mid = ctx.params.get("message_id")
        if mid is not None and mid not in self._messages.get(chat_id, {}):
            raise _bad("message to pin not found")
        return True

    async def _answer_callback(self, ctx: _Ctx) -> bool:
        cb_id = str(ctx.params.get("callback_query_id") or "")
        if cb_id not in self._cb_pending:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        text = ctx.params.get("text")
        if text is not None and len(str(text)) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        self._cb_pending.discard(cb_id)
        self.callback_answers[cb_id] = dict(ctx.params)
        return True

    async def _get_file(self, ctx: _Ctx) -> JSONDict:
        rec = self._files.get(str(ctx.params.get("file_id") or ""))
        if rec is None:
            raise _bad("invalid file_id")
        return {
            "file_id": rec.file_id,
            "file_unique_id": rec.file_unique_id,
            "file_size": len(rec.data),
            "file_path": rec.file_path,
        }

    async def _get_chat(self, ctx: _Ctx) -> JSONDict:
        chat_id = self._resolve_chat(ctx.params.get("chat_id"))
        return {
            **self._chat_dict(chat_id),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _status_in(self, chat_id: int, user_id: int) -> str:
        group = self._groups.get(chat_id)
        if user_id == self.bot_id:
            if group is not None:
                return group.bot_status
            return "kicked" if chat_id in self._blocked else "member"
        if group is not None:
            return group.members.get(user_id, "left")
        return "member" if user_id == chat_id else "left"

    def _user_dict(self, user_id: int) -> JSONDict:
        if user_id == self.bot_id:
            return self.bot_user
        u = self._users.get(user_id)
        if u is None:
            raise _bad("user not found")
        return u.user_dict

    async def _get_chat_member(self, ctx: _Ctx) -> JSONDict:
        chat_id = self._resolve_chat(ctx.params.get("chat_id"))
        user_id = ctx.params.get("user_id")
        if not isinstance(user_id, int):
            raise _bad("user_id is empty" if user_id is None else "user not found")
        return self._member(self._user_dict(user_id), self._status_in(chat_id, user_id))

    async def _get_chat_admins(self, ctx: _Ctx) -> list[JSONDict]:
        chat_id = self._resolve_chat(ctx.params.get("chat_id"))
        group = self._groups.get(chat_id)
        if group is None:
            raise _bad("there are no administrators in the private chat")
        admins = [
            self._member(self._users[uid].user_dict, status)
            for uid, status in group.members.items()
            if status in ("creator", "administrator") and uid in self._users
        ]
        if group.bot_status == "administrator":
            admins.append(self._member(self.bot_user, "administrator"))
        return admins

    async def _get_member_count(self, ctx: _Ctx) -> int:
        chat_id = self._resolve_chat(ctx.params.get("chat_id"))
        group = self._groups.get(chat_id)
        if group is None:
            return 2
        return sum(1 for s in group.members.values() if s not in ("left", "kicked")) + (
            group.bot_status not in ("left", "kicked")
        )


__all__ = [
    "MAX_CAPTION",
    "MAX_TEXT",
    "SEND_METHODS",
    "TOKEN",
    "ApiError",
    "Call",
    "FakeBotApi",
    "FakeChat",
    "FakeUser",
    "FileRecord",
    "Limits",
    "SentMessage",
    "Stats",
    "decode_param",
    "flat_buttons",
    "render_text",
    "utf16_len",
]
