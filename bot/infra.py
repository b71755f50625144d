"""The infrastructure every feature service is built on (database, clock, texts, outbox, people,
orgs): built once per Application, before the feature services (bot/core.py)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.bots import BotRegistry
from bot.clock import Clock
from bot.config import Settings
from bot.database import Database, open_database
from bot.formatting import Formatter
from bot.i18n import Translator
from bot.metrics import Metrics
from bot.outbox import Outbox
from bot.services.flows import FlowStore
from bot.services.invites import InviteService
from bot.services.orgs import OrgService
from bot.services.people import PeopleService
from bot.services.prompts import PromptService
from bot.services.screens import ScreenService
from bot.services.workdays import WorkCalendar


@dataclass
class Infra:
    settings: Settings
    db: Database
    clock: Clock
    t: Translator
    formatter: Formatter
    outbox: Outbox
    people: PeopleService
    orgs: OrgService
    invites: InviteService
    flows: FlowStore
    prompts: PromptService
    calendar: WorkCalendar
    screens: ScreenService
    metrics: Metrics  # this Application's own registry (bot/metrics.py)
    bots: BotRegistry  # the deployment's bots (BOT_TOKENS); one, for BOT_TOKEN alone

    @classmethod
    def parts(cls, settings: Settings, clock: Clock | None = None) -> dict[str, object]:
        """The infrastructure's fields, built in dependency order."""
        clock = clock or Clock()
        db = open_database(settings.database)
        t = Translator(settings.locale)
        outbox = Outbox(db, clock)
        people = PeopleService(db, clock, settings.locale)
        orgs = OrgService(db, clock, people, outbox, t, settings.admins)
        invites = InviteService(db, clock, orgs, outbox, t)
        return dict(settings=settings, db=db, clock=clock, t=t, formatter=Formatter(t, settings.tz), outbox=outbox,
                    people=people, orgs=orgs,
                    invites=invites, flows=FlowStore(db, clock), prompts=PromptService(db, clock),
                    calendar=WorkCalendar(db), screens=ScreenService(db, clock, outbox), metrics=Metrics(),
                    # The command line runs without a token (orgs import, …): then no bot at all.
                    bots=BotRegistry(db, clock, settings.bots() if settings.token or settings.tokens else []))

    async def open(self) -> None:
        await self.db.connect()
        await self.calendar.refresh()

    async def close(self) -> None:
        await self.db.close()

    async def bot_username(self, org_id: int | None = None) -> str | None:
        """The username for join links: of the bot serving `org_id` when there are several bots."""
        if org_id is not None and (served := await self.bots.username_for_org(org_id)) is not None:
            return served
        return await self.db.fetchval("SELECT value FROM meta WHERE key = 'bot_username'")

    async def remember_bot_username(self, username: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES ('bot_username', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (username,))
