"""People who have talked to the bot or were named in an org file: names, language, blocked flag."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock, to_db
from bot.config import SUPPORTED_LOCALES
from bot.database import Database, Tx
from bot.i18n import language_for


@dataclass(frozen=True)
class Person:
    telegram_id: int
    name: str
    username: str | None
    language: str
    blocked_bot: bool


class PeopleService:
    def __init__(self, db: Database, clock: Clock, default_locale: str) -> None:
        self.db = db
        self.clock = clock
        self.default_locale = default_locale
        # What we last wrote per person, so that an ordinary update costs no write.
        self._seen: dict[int, tuple[str, str | None, str | None]] = {}
        # Each person's language, as last read: most updates ask for it once or twice, and the two
        # columns it comes from are written only here (set_language, touch), which drop the copy.
        self._languages: dict[int, str] = {}
        # Several instances on one database (db.shared): another may change a person (language,
        # blocked flag, forgotten) behind this one's back, so nothing is kept between updates.
        self._cached = not db.shared

    async def touch(self, telegram_id: int, name: str, username: str | None, language_code: str | None,
                    interacting: bool = False) -> None:
        """Record (or refresh) a person who just sent us an update; one who is `interacting` (a
        message or a button in their chat with us) has not blocked the bot, whatever we noted."""
        seen = (name, username, language_code)
        if self._seen.get(telegram_id) == seen:
            return
        now = to_db(self.clock.now())
        self._languages.pop(telegram_id, None)  # Telegram's language code may have changed
        # A name set by an org file wins over the Telegram display name.
        await self.db.write(
            "INSERT INTO people (telegram_id, name, username, tg_language_code, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(telegram_id) DO UPDATE SET"
            " name = CASE WHEN people.name = '' THEN excluded.name ELSE people.name END,"
            " username = excluded.username, tg_language_code = excluded.tg_language_code,"
            " blocked_bot = CASE WHEN ? THEN 0 ELSE people.blocked_bot END,"
            " updated_at = excluded.updated_at",
            (telegram_id, name, username, language_code, now, now, interacting),
        )
        blocked = await self.db.fetchval("SELECT blocked_bot FROM people WHERE telegram_id = ?", (telegram_id,))
        # Only remember a person whose flag is clear, so a blocked one is looked at again next time.
        if not blocked and self._cached:
            self._seen[telegram_id] = seen

    def forget(self, telegram_id: int) -> None:
        """Drop the cached copies (the blocked flag changed behind our back, or the person was forgotten)."""
        self._seen.pop(telegram_id, None)
        self._languages.pop(telegram_id, None)

    async def ensure(self, tx: Tx, telegram_id: int, name: str = "") -> None:
        now = to_db(self.clock.now())
        await tx.execute(
            "INSERT INTO people (telegram_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(telegram_id) DO NOTHING",
            (telegram_id, name, now, now),
        )

    async def get(self, telegram_id: int) -> Person | None:
        row = await self.db.fetchone("SELECT * FROM people WHERE telegram_id = ?", (telegram_id,))
        if row is None:
            return None
        return Person(
            telegram_id=row["telegram_id"],
            name=row["name"],
            username=row["username"],
            language=language_for(row["language"], row["tg_language_code"], self.default_locale),
            blocked_bot=bool(row["blocked_bot"]),
        )

    async def language(self, telegram_id: int, tx: Tx | None = None) -> str:
        known = self._languages.get(telegram_id)
        if known is not None:
            return known
        sql = "SELECT language, tg_language_code FROM people WHERE telegram_id = ?"
        row = await (tx or self.db).fetchone(sql, (telegram_id,))
        if row is None:
            return self.default_locale
        language = language_for(row["language"], row["tg_language_code"], self.default_locale)
        if self._cached:
            self._languages[telegram_id] = language
        return language

    async def display_name(self, telegram_id: int, tx: Tx | None = None) -> str:
        sql = "SELECT name, username FROM people WHERE telegram_id = ?"
        row = await (tx or self.db).fetchone(sql, (telegram_id,))
        if row is None:
            return str(telegram_id)
        return row["name"] or (f"@{row['username']}" if row["username"] else str(telegram_id))

    async def set_language(self, telegram_id: int, language: str) -> None:
        if language not in SUPPORTED_LOCALES:
            raise ValueError(f"unsupported language {language!r}")
        self._languages.pop(telegram_id, None)
        async with self.db.transaction() as tx:
            await self.ensure(tx, telegram_id)
            await tx.execute(
                "UPDATE people SET language = ?, updated_at = ? WHERE telegram_id = ?",
                (language, to_db(self.clock.now()), telegram_id),
            )
        self._languages.pop(telegram_id, None)

    async def set_blocked(self, telegram_id: int, blocked: bool) -> None:
        """Kept current by my_chat_member updates and by 403 answers; data is kept either way."""
        self.forget(telegram_id)
        async with self.db.transaction() as tx:
            await self.ensure(tx, telegram_id)
            await tx.execute(
                "UPDATE people SET blocked_bot = ?, updated_at = ? WHERE telegram_id = ?",
                (int(blocked), to_db(self.clock.now()), telegram_id),
            )
            if blocked:
                await tx.execute(
                    "UPDATE outbox SET status = 'blocked', last_error = 'blocked by the user'"
                    " WHERE chat_id = ? AND status = 'pending'",
                    (telegram_id,),
                )
