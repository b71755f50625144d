"""Typed settings, read from the environment or a `.env` file (pydantic-settings)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SUPPORTED_LOCALES = ("zh_CN", "en")
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class Settings(BaseSettings):
    """Everything the bot reads from its environment; `BOT_` is the prefix of every variable."""

    model_config = SettingsConfigDict(env_prefix="BOT_", env_file=".env", extra="ignore")

    token: SecretStr | None = None
    # Several bots in one deployment: token -> codes of the top orgs it serves (e.g. one bot per
    # county), as JSON: {"123:abc": ["shangzhou"], "456:def": ["danfeng"]}. Unset: BOT_TOKEN alone.
    tokens: dict[SecretStr, list[str]] | None = None
    api_url: str = "https://api.telegram.org/bot"
    file_url: str = "https://api.telegram.org/file/bot"
    proxy: str | None = None
    # A SQLite file (a path or sqlite:///path) or a postgresql://… URL (bot/database.py open_database).
    database: Path | str = Path("data/bot.sqlite3")
    timezone: str = "Asia/Shanghai"
    locale: str = "zh_CN"
    admins: Annotated[frozenset[int], NoDecode] = Field(default_factory=frozenset)
    log_format: Literal["text", "json"] = "text"
    # Webhook mode (`run --webhook URL`): the secret Telegram sends back in every request's
    # X-Telegram-Bot-Api-Secret-Token header; without it, a random one is made at each start.
    webhook_secret: SecretStr | None = None
    # Days after its close that a ticket keeps its resident link, name and media (PIPL); 1096 is three
    # years with their leap day, so never less than three calendar years.
    retention_days: int = Field(default=1096, ge=1)

    @field_validator("database", mode="after")
    @classmethod
    def _database(cls, value: Path | str) -> Path | str:
        text = str(value)
        if text.startswith(("postgresql://", "postgres://")):
            return text
        return Path(text.removeprefix("sqlite:///"))

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
            bad = [p for p in parts if not p.lstrip("-").isdigit()]
            if bad:
                raise ValueError(f"not a Telegram id: {', '.join(bad)} (expected e.g. 1001,1002)")
            return frozenset(int(p) for p in parts)
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (expected e.g. Asia/Shanghai)") from exc
        return value

    @field_validator("locale")
    @classmethod
    def _check_locale(cls, value: str) -> str:
        if value not in SUPPORTED_LOCALES:
            raise ValueError(f"unsupported locale {value!r} (expected one of {', '.join(SUPPORTED_LOCALES)})")
        return value

    @field_validator("api_url", "file_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("proxy")
    @classmethod
    def _check_proxy(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://", "socks5://", "socks5h://", "socks4://")):
            raise ValueError(f"{value!r} is not a proxy URL (expected http://host:port or socks5://host:port)")
        return value or None

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("1 to 256 characters, only A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return value

    @field_validator("tokens")
    @classmethod
    def _check_tokens(cls, value: dict[SecretStr, list[str]] | None) -> dict[SecretStr, list[str]] | None:
        if value is None:
            return None
        if not value:
            raise ValueError('no bot (expected e.g. {"123:abc": ["county-a"], "456:def": ["county-b"]})')
        served: dict[str, int] = {}
        ids: set[int] = set()
        for n, (token, codes) in enumerate(value.items(), 1):
            bot_id = token.get_secret_value().split(":", 1)[0]
            if ":" not in token.get_secret_value() or not bot_id.isdigit():
                raise ValueError(f"bot {n}: not a bot token (expected the 123456:ABC… form from @BotFather)")
            if int(bot_id) in ids:
                raise ValueError(f"bot {bot_id} is given twice")
            ids.add(int(bot_id))
            if not codes or any(not code.strip() for code in codes):
                raise ValueError(f"bot {bot_id}: give the codes of the top orgs it serves, e.g. [\"county-a\"]")
            for code in codes:
                if code in served:
                    raise ValueError(f"org {code!r} is served by two bots ({served[code]} and {bot_id})")
                served[code] = int(bot_id)
        return value

    def bots(self) -> list[BotSpec]:
        """The bots this deployment runs, the first one first: BOT_TOKENS's, or BOT_TOKEN alone
        (serving every org, as a single bot always did)."""
        if self.tokens is None:
            return [BotSpec(self.require_token(), ())]
        specs = [BotSpec(token.get_secret_value().strip(), tuple(codes)) for token, codes in self.tokens.items()]
        if self.token is not None and self.token.get_secret_value().strip() not in {s.token for s in specs}:
            raise SettingsError("BOT_TOKEN: not one of BOT_TOKENS's bots (set one of the two, or list it there)")
        return specs

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def require_token(self) -> str:
        if self.token is None or not self.token.get_secret_value().strip():
            raise SettingsError("BOT_TOKEN: missing; set it in the environment or in .env")
        return self.token.get_secret_value().strip()


@dataclass(frozen=True)
class BotSpec:
    """One bot of the deployment: its token and the codes of the top orgs it serves (none: all)."""

    token: str
    org_codes: tuple[str, ...]

    @property
    def bot_id(self) -> int:
        """The bot's Telegram id, the token's first part: known without asking Telegram, never secret."""
        head = self.token.split(":", 1)[0]
        return int(head) if head.isdigit() else 0


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's report into one line that names the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "BOT_" + str(err["loc"][0]).upper() if err["loc"] else "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{name}: {msg}") from None
