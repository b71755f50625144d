"""Several bots in one deployment (BOT_TOKENS): which bot serves which org, and which bot each chat
talks to. A chat may only be written to by a bot it talks to (a person started it, a group added
it), so each outbox row goes out through the bot of its chat: the one that received the chat's
last update; for a chat no bot has heard from, the bot serving the person's org; else the first.
With a single bot the tables stay empty and nothing here changes what the bot does."""

from __future__ import annotations

import json

from bot.clock import Clock, to_db
from bot.config import BotSpec, SettingsError
from bot.database import Database

# The bot for an outbox row's chat, as SQL over `outbox` (the first bot's id is the last parameter).
ROW_BOT_SQL = (
    "COALESCE((SELECT bot_id FROM chat_bots WHERE chat_id = outbox.chat_id),"
    " (SELECT ob.bot_id FROM roles r JOIN org_bots ob ON ob.org_id = r.org_id"
    "  WHERE r.person_id = outbox.chat_id ORDER BY r.granted_at LIMIT 1), ?)"
)


class BotRegistry:
    """The deployment's bots; `several` is False for a single bot, and then nothing is recorded."""

    REMEMBERED = 100_000  # chats whose bot is known without a read; a changed bot is written at once

    def __init__(self, db: Database, clock: Clock, specs: list[BotSpec]) -> None:
        self.db = db
        self.clock = clock
        self.specs = specs
        self.several = len(specs) > 1
        self._chat_bot: dict[int, int] = {}

    @property
    def first_bot_id(self) -> int:
        return self.specs[0].bot_id if self.specs else 0

    async def configure(self) -> None:
        """Write the bots and the orgs each serves (every org under its top orgs). An org code that
        is not in the org tree stops start-up: a county whose bot serves nobody is a typo."""
        if not self.several:
            return
        codes = [code for spec in self.specs for code in spec.org_codes]
        rows = await self.db.fetchall(
            "SELECT code, id FROM orgs WHERE code IN (SELECT value FROM json_each(?))", (_json(codes),))
        found = {row["code"]: row["id"] for row in rows}
        missing = [code for code in codes if code not in found]
        if missing:
            raise SettingsError(f"BOT_TOKENS: no org with code {', '.join(map(repr, missing))}"
                                " (import the org tree first: python -m bot orgs import FILE)")
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM org_bots")
            await tx.execute("DELETE FROM bots WHERE bot_id NOT IN (SELECT value FROM json_each(?))",
                             (_json([s.bot_id for s in self.specs]),))
            for position, spec in enumerate(self.specs):
                await tx.execute("INSERT INTO bots (bot_id, position) VALUES (?, ?)"
                                 " ON CONFLICT(bot_id) DO UPDATE SET position = excluded.position",
                                 (spec.bot_id, position))
                for code in spec.org_codes:
                    await tx.execute(
                        "WITH RECURSIVE sub(id) AS (SELECT id FROM orgs WHERE id = ?"
                        " UNION SELECT o.id FROM orgs o JOIN sub ON o.parent_id = sub.id)"
                        # WHERE true: SQLite reads ON CONFLICT after a bare SELECT … FROM as a join's ON
                        " INSERT INTO org_bots (org_id, bot_id) SELECT id, ? FROM sub WHERE true"
                        " ON CONFLICT(org_id) DO UPDATE SET bot_id = excluded.bot_id",
                        (found[code], spec.bot_id))

    async def remember_username(self, bot_id: int, username: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE bots SET username = ? WHERE bot_id = ?", (username, bot_id))

    async def username_for_org(self, org_id: int) -> str | None:
        """The username of the bot serving the org (None: a single bot, or an org no bot serves)."""
        if not self.several:
            return None
        return await self.db.fetchval(
            "SELECT b.username FROM org_bots ob JOIN bots b ON b.bot_id = ob.bot_id WHERE ob.org_id = ?", (org_id,))

    async def record_chat(self, chat_id: int, bot_id: int) -> None:
        """The chat's last update came to this bot: from now on it is written to through it."""
        if not self.several or (not self.db.shared and self._chat_bot.get(chat_id) == bot_id):
            return  # shared database: another instance may have moved the chat to another bot
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO chat_bots (chat_id, bot_id, updated_at) VALUES (?, ?, ?) ON CONFLICT(chat_id)"
                " DO UPDATE SET bot_id = excluded.bot_id, updated_at = excluded.updated_at",
                (chat_id, bot_id, to_db(self.clock.now())))
        if len(self._chat_bot) >= self.REMEMBERED:
            self._chat_bot.clear()
        self._chat_bot[chat_id] = bot_id

    async def bot_of_chat(self, chat_id: int) -> int:
        """The bot an outbox row to this chat goes out through (as the delivery workers pick it)."""
        value = await self.db.fetchval(f"SELECT {ROW_BOT_SQL} FROM (SELECT CAST(? AS BIGINT) AS chat_id) AS outbox",
                                       (self.first_bot_id, chat_id))  # in the order of the ?s
        return int(value)


def bot_id_of(token: str) -> int:
    """A bot's id as the registry knows it: the token's first part (see BotSpec.bot_id)."""
    return BotSpec(token, ()).bot_id


def _json(values: list[object]) -> str:
    return json.dumps(values)
