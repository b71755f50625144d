"""The Core: the infrastructure and every feature service, each a typed field, built once per
Application. Handlers reach it as `context.core`, jobs as `app.core`, the command line through
`open_core`."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.clock import Clock
from bot.config import Settings
from bot.infra import Infra
from bot.services.broadcasts import BroadcastService
from bot.services.echo_wall import EchoWall
from bot.services.meetings import MeetingService
from bot.services.tickets import TicketService


@dataclass
class Core(Infra):
    tickets: TicketService = field(init=False)
    meetings: MeetingService = field(init=False)
    echo_wall: EchoWall = field(init=False)
    broadcasts: BroadcastService = field(init=False)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Core:
        core = cls(**Infra.parts(settings, clock))  # type: ignore[arg-type]
        # Feature services are built on the infrastructure, never on each other's internals.
        core.tickets = TicketService(core)
        core.meetings = MeetingService(core)
        core.echo_wall = EchoWall(core)
        core.broadcasts = BroadcastService(core)
        return core
