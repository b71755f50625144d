"""Pledges (设岗承诺): the branch's secretary keeps a list of posts (设岗); each party member takes a
post or writes a pledge (承诺); the branch sees everyone's. A member reports progress (践诺) with
text and photos; the secretary confirms it (督诺), which counts for points
(bot/services/points.py) and is told to the member through the outbox.

Every right is checked here from the database, every time: a forged, stale or foreign button
changes nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.actors import Actor
from bot.callbacks import PG, PgAct, PgAction
from bot.clock import from_db, to_db
from bot.database import Database, Tx
from bot.infra import Infra
from bot.limits import clip
from bot.outbox import Button
from bot.services.orgs import NotAllowed, NotFound, Refused, Role

__all__ = ["NotAllowed", "NotFound", "PledgeService", "Refused"]

MAX_TITLE = 60
MAX_TEXT = 500
MAX_POSTS = 40
MAX_MEDIA = 5
NOTICE_ROOM = 1500


class Purpose(StrEnum):
    REPORT = "pledge/report"        # a progress report, to the branch's secretaries
    MEDIA = "pledge/media"          # its photos, copied to them
    CONFIRMED = "pledge/confirmed"  # 督诺, to the member


@dataclass(frozen=True)
class Post:
    id: int
    org_id: int
    title: str
    takers: int


@dataclass(frozen=True)
class Pledge:
    id: int
    org_id: int
    person_id: int
    name: str
    post_id: int | None
    text: str
    confirmed: int
    pending: int


@dataclass(frozen=True)
class Report:
    id: int
    pledge_id: int
    person_id: int
    name: str
    pledge_text: str
    text: str
    media: list[dict[str, Any]]
    created_at: datetime
    status: str


def _check(text: str, limit: int, empty: str) -> str:
    text = text.strip()
    if not text:
        raise Refused(empty)
    if len(text) > limit:
        raise Refused("pledge.refused.too_long", limit=limit)
    return text


PLEDGE_SQL = ("SELECT p.*, (SELECT COUNT(*) FROM pledge_reports r WHERE r.pledge_id = p.id AND r.status = 'confirmed')"
              " AS confirmed, (SELECT COUNT(*) FROM pledge_reports r WHERE r.pledge_id = p.id AND r.status = 'pending')"
              " AS pending FROM pledges p")


class PledgeService:
    def __init__(self, core: Infra) -> None:
        self.core = core
        self.db: Database = core.db
        self.clock = core.clock
        self.t = core.t
        self.outbox = core.outbox
        self.orgs = core.orgs
        self.people = core.people

    # --- rights -----------------------------------------------------------------------------
    async def _has(self, src: Tx | Database, person: Actor, org_id: int, roles: tuple[str, ...]) -> bool:
        if not isinstance(person, int):
            return False
        marks = ",".join("?" * len(roles))
        return await src.fetchone(f"SELECT 1 FROM roles WHERE person_id = ? AND org_id = ? AND role IN ({marks})",
                                  (person, org_id, *roles)) is not None

    async def is_secretary(self, actor: Actor, org_id: int, src: Tx | Database | None = None) -> bool:
        return await self._has(src or self.db, actor, org_id, (Role.secretary,))

    async def is_member(self, actor: Actor, org_id: int, src: Tx | Database | None = None) -> bool:
        return await self._has(src or self.db, actor, org_id, (Role.member, Role.secretary))

    async def _may_read(self, src: Tx | Database, actor: Actor, org_id: int) -> bool:
        """The branch's members and secretary, organisers at or above it."""
        if not isinstance(actor, int):
            return False
        return await self.is_member(actor, org_id, src) or await self.orgs.has_role_at_or_above(
            actor, org_id, [Role.organizer], src)  # type: ignore[arg-type]

    async def orgs_of(self, actor: Actor) -> list[tuple[int, str, bool]]:
        """(org id, name, is its secretary) where the person is a member or secretary."""
        if not isinstance(actor, int):
            return []
        rows = await self.db.fetchall(
            "SELECT o.id, o.name, MAX(r.role = 'secretary') FROM roles r JOIN orgs o ON o.id = r.org_id"
            " WHERE r.person_id = ? AND r.role IN ('member', 'secretary') GROUP BY o.id ORDER BY o.id", (actor,))
        return [(r[0], r[1], bool(r[2])) for r in rows]

    # --- posts (设岗) -------------------------------------------------------------------------
    async def posts(self, actor: Actor, org_id: int) -> list[Post]:
        if not await self._may_read(self.db, actor, org_id):
            raise NotAllowed("posts")
        rows = await self.db.fetchall(
            "SELECT p.id, p.org_id, p.title, (SELECT COUNT(*) FROM pledges g WHERE g.post_id = p.id"
            " AND g.ended_at IS NULL) FROM pledge_posts p WHERE p.org_id = ? AND p.removed_at IS NULL ORDER BY p.id",
            (org_id,))
        return [Post(r[0], r[1], r[2], r[3]) for r in rows]

    async def add_post(self, actor: Actor, org_id: int, title: str) -> Post:
        title = _check(title, MAX_TITLE, "pledge.refused.empty")
        async with self.db.transaction() as tx:
            if not await self.is_secretary(actor, org_id, tx):
                raise NotAllowed("add_post")
            count = await tx.fetchval("SELECT COUNT(*) FROM pledge_posts WHERE org_id = ? AND removed_at IS NULL",
                                      (org_id,))
            if count >= MAX_POSTS:
                raise Refused("pledge.refused.too_many_posts", limit=MAX_POSTS)
            post_id = await tx.insert(
                "INSERT INTO pledge_posts (org_id, title, created_by, created_at) VALUES (?, ?, ?, ?)",
                (org_id, title, actor, to_db(self.clock.now())))
        return Post(post_id, org_id, title, 0)

    async def remove_post(self, actor: Actor, post_id: int) -> None:
        async with self.db.transaction() as tx:
            org_id = await tx.fetchval("SELECT org_id FROM pledge_posts WHERE id = ? AND removed_at IS NULL",
                                       (post_id,))
            if org_id is None:
                raise Refused("pledge.refused.post_gone")
            if not await self.is_secretary(actor, org_id, tx):
                raise NotAllowed("remove_post")
            await tx.execute("UPDATE pledge_posts SET removed_at = ? WHERE id = ?", (to_db(self.clock.now()), post_id))

    # --- pledges ----------------------------------------------------------------------------
    async def take_post(self, actor: Actor, post_id: int) -> Pledge:
        """A member takes a post of their branch (once while they hold it)."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT org_id, title FROM pledge_posts WHERE id = ? AND removed_at IS NULL",
                                    (post_id,))
            if row is None:
                raise Refused("pledge.refused.post_gone")
            if not await self.is_member(actor, row[0], tx):
                raise NotAllowed("take_post")
            if await tx.fetchval("SELECT 1 FROM pledges WHERE person_id = ? AND post_id = ? AND ended_at IS NULL",
                                 (actor, post_id)):
                raise Refused("pledge.refused.taken_already")
            pledge_id = await tx.insert(
                "INSERT INTO pledges (org_id, person_id, post_id, text, created_at) VALUES (?, ?, ?, ?, ?)",
                (row[0], actor, post_id, row[1], to_db(self.clock.now())))
            return await self._pledge(tx, pledge_id)

    async def write_pledge(self, actor: Actor, org_id: int, text: str) -> Pledge:
        text = _check(text, MAX_TEXT, "pledge.refused.empty")
        async with self.db.transaction() as tx:
            if not await self.is_member(actor, org_id, tx):
                raise NotAllowed("write_pledge")
            pledge_id = await tx.insert(
                "INSERT INTO pledges (org_id, person_id, text, created_at) VALUES (?, ?, ?, ?)",
                (org_id, actor, text, to_db(self.clock.now())))
            return await self._pledge(tx, pledge_id)

    async def _pledge(self, src: Tx | Database, pledge_id: int) -> Pledge:
        row = await src.fetchone(f"{PLEDGE_SQL} WHERE p.id = ?", (pledge_id,))
        if row is None:
            raise NotFound("pledge")
        return await self._pledge_of(row)

    async def _pledge_of(self, row: Any) -> Pledge:
        return Pledge(id=row["id"], org_id=row["org_id"], person_id=row["person_id"],
                      name=await self.people.display_name(row["person_id"]), post_id=row["post_id"], text=row["text"],
                      confirmed=row["confirmed"], pending=row["pending"])

    async def board(self, actor: Actor, org_id: int) -> list[Pledge]:
        """Everyone's posts and pledges in the branch (what the branch sees)."""
        if not await self._may_read(self.db, actor, org_id):
            raise NotAllowed("board")
        rows = await self.db.fetchall(f"{PLEDGE_SQL} WHERE p.org_id = ? AND p.ended_at IS NULL ORDER BY p.person_id,"
                                      " p.id", (org_id,))
        return [await self._pledge_of(r) for r in rows]

    async def get(self, actor: Actor, pledge_id: int) -> Pledge:
        pledge = await self._pledge(self.db, pledge_id)
        if not await self._may_read(self.db, actor, pledge.org_id):
            raise NotAllowed("pledge")
        return pledge

    # --- 践诺 and 督诺 ------------------------------------------------------------------------
    async def check_report(self, actor: Actor, pledge_id: int, src: Tx | Database | None = None) -> Pledge:
        """Only the pledge's own member, while they still belong to the branch."""
        pledge = await self._pledge(src or self.db, pledge_id)
        if pledge.person_id != actor or not await self.is_member(actor, pledge.org_id, src):
            raise NotAllowed("report")
        return pledge

    async def report(self, actor: Actor, pledge_id: int, text: str, media: list[dict[str, Any]]) -> int:
        """践诺: the member's progress (text and up to five photos, each {file_id, chat_id, message_id});
        the branch's secretaries get it with a 督诺 button (the photos copied)."""
        text = text.strip()
        if not text and not media:
            raise Refused("pledge.refused.empty_report")
        if len(text) > MAX_TEXT:
            raise Refused("pledge.refused.too_long", limit=MAX_TEXT)
        if len(media) > MAX_MEDIA:
            raise Refused("pledge.refused.too_many_photos", limit=MAX_MEDIA)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            pledge = await self.check_report(actor, pledge_id, tx)
            report_id = await tx.insert(
                "INSERT INTO pledge_reports (pledge_id, person_id, text, media, created_at) VALUES (?, ?, ?, ?, ?)",
                (pledge_id, actor, text, json.dumps(media), to_db(now)))
            secretaries = [r[0] for r in await tx.fetchall(
                "SELECT person_id FROM roles WHERE org_id = ? AND role = 'secretary' AND person_id != ?"
                " ORDER BY person_id", (pledge.org_id, actor))]
            for person in secretaries:
                await self._tell_secretary(tx, person, pledge, report_id, text, media)
        return report_id

    async def _tell_secretary(self, tx: Tx, person: int, pledge: Pledge, report_id: int, text: str,
                              media: list[dict[str, Any]]) -> None:
        lang = await self.people.language(person, tx)
        body = self.t(lang, "pledge.notice.report", name=pledge.name, pledge=clip(pledge.text, 200),
                      text=clip(text, NOTICE_ROOM) or self.t(lang, "pledge.photos_only"), n=len(media))
        await self.outbox.send_text(
            tx, key=f"pg:r:{report_id}:{person}", chat_id=person, text=body, purpose=Purpose.REPORT,
            subject_id=report_id,
            buttons=[[Button(self.t(lang, "pledge.button.confirm"), PG.encode(PgAct(PgAction.CONFIRM, report_id)))]])
        for n, item in enumerate(media):
            await self.outbox.enqueue(
                tx, key=f"pg:r:{report_id}:{person}:{n}", chat_id=person, method="copyMessage",
                payload={"chat_id": person, "from_chat_id": item["chat_id"], "message_id": item["message_id"]},
                purpose=Purpose.MEDIA, subject_id=report_id)

    async def _report(self, src: Tx | Database, report_id: int) -> Report:
        row = await src.fetchone(
            "SELECT r.*, p.text AS pledge_text, p.org_id FROM pledge_reports r JOIN pledges p ON p.id = r.pledge_id"
            " WHERE r.id = ?", (report_id,))
        if row is None:
            raise NotFound("report")
        return Report(id=row["id"], pledge_id=row["pledge_id"], person_id=row["person_id"],
                      name=await self.people.display_name(row["person_id"]), pledge_text=row["pledge_text"],
                      text=row["text"], media=json.loads(row["media"]), created_at=from_db(row["created_at"]),
                      status=row["status"])

    async def pending(self, actor: Actor, org_id: int) -> list[Report]:
        """The branch's reports waiting for 督诺, for its secretary."""
        if not await self.is_secretary(actor, org_id):
            raise NotAllowed("pending")
        rows = await self.db.fetchall(
            "SELECT r.id FROM pledge_reports r JOIN pledges p ON p.id = r.pledge_id WHERE p.org_id = ?"
            " AND r.status = 'pending' ORDER BY r.id", (org_id,))
        return [await self._report(self.db, r[0]) for r in rows]

    async def reports(self, actor: Actor, pledge_id: int) -> list[Report]:
        pledge = await self.get(actor, pledge_id)
        rows = await self.db.fetchall("SELECT id FROM pledge_reports WHERE pledge_id = ? ORDER BY id", (pledge.id,))
        return [await self._report(self.db, r[0]) for r in rows]

    async def confirm(self, actor: Actor, report_id: int) -> Report:
        """督诺: the secretary of the pledge's branch confirms a report (not their own); the member is told."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            report = await self._report(tx, report_id)
            org_id = await tx.fetchval("SELECT org_id FROM pledges WHERE id = ?", (report.pledge_id,))
            if not await self.is_secretary(actor, org_id, tx):
                raise NotAllowed("confirm")
            if report.person_id == actor:
                raise Refused("pledge.refused.own_report")
            cur = await tx.execute("UPDATE pledge_reports SET status = 'confirmed', decided_by = ?, decided_at = ?"
                                   " WHERE id = ? AND status = 'pending'", (actor, to_db(now), report_id))
            if not cur.rowcount:
                raise Refused("pledge.refused.confirmed_already")
            lang = await self.people.language(report.person_id, tx)
            await self.outbox.send_text(
                tx, key=f"pg:c:{report_id}", chat_id=report.person_id, purpose=Purpose.CONFIRMED,
                subject_id=report_id, text=self.t(lang, "pledge.notice.confirmed", pledge=clip(report.pledge_text, 200),
                                                  name=await self.people.display_name(actor, tx)))
        return await self._report(self.db, report_id)
