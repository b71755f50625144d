"""The Core: the infrastructure and every feature service, each a typed field, built once per
Application. Handlers reach it as `context.core`, jobs as `app.core`, the command line through
`open_core`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from openpyxl import Workbook

from bot.actors import SystemActor
from bot.clock import Clock
from bot.config import Settings
from bot.infra import Infra
from bot.services import deliberation_ledger, matters_ledger, opinions_ledger, points_ledger
from bot.services.appraisal import AppraisalService
from bot.services.broadcasts import BroadcastService
from bot.services.deliberation import DeliberationService
from bot.services.deliberation import Refused as DelibRefused
from bot.services.digests import DigestService
from bot.services.echo_wall import EchoWall
from bot.services.matters import MatterService
from bot.services.meetings import MeetingService
from bot.services.opinions import OpinionMapService
from bot.services.orgs import NotAllowed
from bot.services.pledges import PledgeService
from bot.services.points import PointsService
from bot.services.privacy import PrivacyService
from bot.services.retention import RetentionService
from bot.services.supervision import SupervisionService
from bot.services.tickets import TicketService


@dataclass
class Core(Infra):
    tickets: TicketService = field(init=False)
    meetings: MeetingService = field(init=False)
    echo_wall: EchoWall = field(init=False)
    deliberation: DeliberationService = field(init=False)
    matters: MatterService = field(init=False)
    appraisal: AppraisalService = field(init=False)
    broadcasts: BroadcastService = field(init=False)
    digests: DigestService = field(init=False)
    privacy: PrivacyService = field(init=False)
    retention: RetentionService = field(init=False)
    pledges: PledgeService = field(init=False)
    points: PointsService = field(init=False)
    supervision: SupervisionService = field(init=False)
    opinions: OpinionMapService = field(init=False)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Core:
        core = cls(**Infra.parts(settings, clock))  # type: ignore[arg-type]
        # Feature services are built on the infrastructure, never on each other's internals.
        core.tickets = TicketService(core)
        core.meetings = MeetingService(core)
        core.echo_wall = EchoWall(core)
        core.deliberation = DeliberationService(core)
        core.matters = MatterService(core, core.deliberation)
        core.appraisal = AppraisalService(core)
        core.broadcasts = BroadcastService(core)
        core.digests = DigestService(core)
        core.privacy = PrivacyService(core)
        core.retention = RetentionService(core.db, core.clock, settings.retention_days)
        core.pledges = PledgeService(core)
        core.points = PointsService(core, core.deliberation)
        core.supervision = SupervisionService(core, core.meetings)
        core.opinions = OpinionMapService(core, core.deliberation)
        return core

    async def ledger(self, actor: int | SystemActor, org_id: int, first: date, last: date,
                     lang: str) -> tuple[str, bytes]:
        """The org's ledger (台账) for a period: its meetings, and the deliberation rounds and
        四议两公开 matters, and the members' points and star ratings of that period as further sheets,
        so that an inspector gets one file. The meetings' right decides; the other sheets are left
        out for whoever may not read them."""
        data = await self.meetings.ledger_data(actor, org_id, first, last)  # type: ignore[arg-type]
        extra: list[Callable[[Workbook], None]] = []
        try:
            _, rounds = await self.deliberation.ledger_rounds(actor, org_id, first, last)
            extra.append(partial(deliberation_ledger.add_sheets, rounds=rounds, t=self.t, fmt=self.formatter,
                                 lang=lang))
        except (NotAllowed, DelibRefused):
            pass
        try:
            maps = await self.opinions.ledger_maps(actor, org_id, first, last)
            extra.append(partial(opinions_ledger.add_sheets, maps=maps, t=self.t, fmt=self.formatter, lang=lang))
        except NotAllowed:
            pass
        try:
            _, matters = await self.matters.ledger_matters(actor, org_id, lang, first, last)
            extra.append(partial(matters_ledger.add_sheets, matters=matters, t=self.t, fmt=self.formatter,
                                 lang=lang))
        except NotAllowed:
            pass
        try:
            points = await self.points.ledger_points(actor, org_id, first, last)
            extra.append(partial(points_ledger.add_sheets, data=points, t=self.t, fmt=self.formatter, lang=lang))
        except NotAllowed:
            pass
        return await self.meetings.render_ledger(data, lang, extra)
