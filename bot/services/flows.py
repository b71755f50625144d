"""State of multi-step flows, kept in the database so a restart half-way loses nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.clock import Clock, to_db
from bot.database import Database


@dataclass(frozen=True)
class FlowState:
    flow: str
    step: str
    data: dict[str, Any]


class FlowStore:
    """One open flow per person; starting another replaces it, /cancel clears it (asking first
    when it holds what the person typed: handlers/system.py). A question that someone else asks
    the person, or that must not be lost when another flow starts (a leave reason, information a
    secretary asked for), is an open question instead (bot/services/prompts.py)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        # person -> (flow, step, data as JSON) or None, as last read or written. Why: an update
        # asks for the person's flow two or three times (the router, the step, the check), and
        # this store is the only writer of the table. The JSON is parsed on every get, so a
        # caller changing its copy of `data` changes nothing here.
        # Several instances on one database (db.shared): another one may handle the person's next
        # update, so every get reads the table.
        self._known: dict[int, tuple[str, str, str] | None] = {}
        self._cached = not db.shared

    async def get(self, person_id: int) -> FlowState | None:
        if person_id in self._known:
            known = self._known[person_id]
        else:
            row = await self.db.fetchone("SELECT flow, step, data FROM flows WHERE person_id = ?", (person_id,))
            known = (row["flow"], row["step"], row["data"]) if row else None
            if self._cached:
                self._known[person_id] = known
        return FlowState(known[0], known[1], json.loads(known[2])) if known else None

    async def set(self, person_id: int, flow: str, step: str, data: dict[str, Any] | None = None) -> None:
        text = json.dumps(data or {}, ensure_ascii=False)
        self._known.pop(person_id, None)  # if the write fails, the next get reads the table
        await self.db.write(
            "INSERT INTO flows (person_id, flow, step, data, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(person_id) DO UPDATE SET flow = excluded.flow, step = excluded.step,"
            " data = excluded.data, updated_at = excluded.updated_at",
            (person_id, flow, step, text, to_db(self.clock.now())),
        )
        if self._cached:
            self._known[person_id] = (flow, step, text)

    async def clear(self, person_id: int) -> FlowState | None:
        state = await self.get(person_id)
        if state is not None:
            self._known.pop(person_id, None)
            await self.db.write("DELETE FROM flows WHERE person_id = ?", (person_id,))
            if self._cached:
                self._known[person_id] = None
        return state
