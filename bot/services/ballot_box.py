"""The ballot box: one ballot per person per box, open or secret. Deliberation rounds vote in it
(box "delib:<id>"); the secretary's appraisal (书记双述双评) is meant to vote in it too.

A secret box stores "has voted" (ballot_voters) apart from the choices, and the choices only as
counts per choice (ballot_tallies): there is no row per ballot at all, so no id, rowid, timestamp
or order of rows can join a person to what they chose. So a secret ballot cannot be changed
(nothing says which counts were that person's). An open box keeps each person's choices
(ballots_open) and lets them change until the close.

The rules of who may vote and when belong to the caller; this module only keeps the box
consistent inside the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from bot.database import Database, Tx


class AlreadyVoted(Exception):
    """A secret box already holds this person's ballot (it cannot be changed)."""


@dataclass(frozen=True)
class Tally:
    counts: dict[int, int]  # choice → ballots that chose it
    ballots: int            # people who voted
    proxies: int            # of them, ballots cast on someone's behalf (代投)


class BallotBox:
    def __init__(self, box: str, secret: bool) -> None:
        self.box = box
        self.secret = secret

    async def has_voted(self, src: Tx | Database, person_id: int) -> bool:
        row = await src.fetchone("SELECT 1 FROM ballot_voters WHERE box = ? AND person_id = ?", (self.box, person_id))
        return row is not None

    async def choices_of(self, src: Tx | Database, person_id: int) -> list[int] | None:
        """The person's current choices in an open box; None when they have not voted, and always
        None in a secret box (nobody can read them back)."""
        if self.secret:
            return None
        raw = await src.fetchval("SELECT choices FROM ballots_open WHERE box = ? AND person_id = ?",
                                 (self.box, person_id))
        return None if raw is None else [int(c) for c in json.loads(raw)]

    async def cast(self, tx: Tx, person_id: int, choices: Sequence[int], proxy_by: int | None = None) -> bool:
        """Record the ballot. True for a first ballot, False for a changed one (open boxes only);
        AlreadyVoted for a second ballot in a secret box."""
        picked = sorted(set(choices))
        if not picked:
            raise ValueError("a ballot needs a choice")
        if self.secret:
            cur = await tx.execute(
                "INSERT INTO ballot_voters (box, person_id, proxy_by) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (self.box, person_id, proxy_by))
            if not cur.rowcount:
                raise AlreadyVoted(self.box)
            await tx.executemany(
                "INSERT INTO ballot_tallies (box, choice, n) VALUES (?, ?, 1)"
                " ON CONFLICT(box, choice) DO UPDATE SET n = ballot_tallies.n + 1", [(self.box, c) for c in picked])
            return True
        first = not await self.has_voted(tx, person_id)
        await tx.execute(
            "INSERT INTO ballot_voters (box, person_id, proxy_by) VALUES (?, ?, ?)"
            " ON CONFLICT(box, person_id) DO UPDATE SET proxy_by = excluded.proxy_by",
            (self.box, person_id, proxy_by))
        await tx.execute(
            "INSERT INTO ballots_open (box, person_id, choices) VALUES (?, ?, ?)"
            " ON CONFLICT(box, person_id) DO UPDATE SET choices = excluded.choices",
            (self.box, person_id, json.dumps(picked)))
        return first

    async def tally(self, src: Tx | Database) -> Tally:
        voters = await src.fetchone(
            "SELECT COUNT(*), COUNT(proxy_by) FROM ballot_voters WHERE box = ?", (self.box,))
        counts: dict[int, int] = {}
        if self.secret:
            for row in await src.fetchall("SELECT choice, n FROM ballot_tallies WHERE box = ?", (self.box,)):
                counts[int(row[0])] = int(row[1])
        else:
            for row in await src.fetchall("SELECT choices FROM ballots_open WHERE box = ?", (self.box,)):
                for choice in json.loads(row[0]):
                    counts[int(choice)] = counts.get(int(choice), 0) + 1
        assert voters is not None
        return Tally(counts, int(voters[0]), int(voters[1]))
