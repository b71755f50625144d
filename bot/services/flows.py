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
    """One open flow per person; starting another replaces it, /cancel clears it."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def get(self, person_id: int) -> FlowState | None:
        row = await self.db.fetchone("SELECT flow, step, data FROM flows WHERE person_id = ?", (person_id,))
        return FlowState(row["flow"], row["step"], json.loads(row["data"])) if row else None

    async def set(self, person_id: int, flow: str, step: str, data: dict[str, Any] | None = None) -> None:
        await self.db.write(
            "INSERT INTO flows (person_id, flow, step, data, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(person_id) DO UPDATE SET flow = excluded.flow, step = excluded.step,"
            " data = excluded.data, updated_at = excluded.updated_at",
            (person_id, flow, step, json.dumps(data or {}, ensure_ascii=False), to_db(self.clock.now())),
        )

    async def clear(self, person_id: int) -> FlowState | None:
        state = await self.get(person_id)
        if state is not None:
            await self.db.write("DELETE FROM flows WHERE person_id = ?", (person_id,))
        return state
