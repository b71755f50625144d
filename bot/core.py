"""The services every feature shares, built once per Application."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.clock import Clock
from bot.config import Settings
from bot.database import Database
from bot.i18n import Translator
from bot.outbox import Outbox
from bot.services.flows import FlowStore
from bot.services.invites import InviteService
from bot.services.orgs import OrgService
from bot.services.people import PeopleService
from bot.services.workdays import WorkCalendar

T = TypeVar("T")


@dataclass
class Core:
    settings: Settings
    db: Database
    clock: Clock
    t: Translator
    outbox: Outbox
    people: PeopleService
    orgs: OrgService
    invites: InviteService
    flows: FlowStore
    calendar: WorkCalendar
    # Feature services (tickets, meetings, ...) register themselves here by name.
    features: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Core:
        clock = clock or Clock()
        db = Database(settings.database)
        t = Translator(settings.locale)
        outbox = Outbox(db, clock)
        people = PeopleService(db, clock, settings.locale)
        orgs = OrgService(db, clock, people, outbox, t, settings.admins)
        invites = InviteService(db, clock, orgs, outbox, t)
        return cls(settings=settings, db=db, clock=clock, t=t, outbox=outbox, people=people, orgs=orgs,
                   invites=invites, flows=FlowStore(db, clock), calendar=WorkCalendar(db))

    def service(self, name: str, factory: Callable[[Core], T]) -> T:
        """A feature's service (tickets, meetings, ...), built once on first use."""
        if name not in self.features:
            self.features[name] = factory(self)
        return self.features[name]  # type: ignore[no-any-return]

    async def open(self) -> None:
        await self.db.connect()
        await self.calendar.refresh()

    async def close(self) -> None:
        await self.db.close()

    async def bot_username(self) -> str | None:
        return await self.db.fetchval("SELECT value FROM meta WHERE key = 'bot_username'")

    async def remember_bot_username(self, username: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES ('bot_username', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (username,))
