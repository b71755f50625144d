"""Which outbox rows are low-priority (a person may take them in the daily digest) and when such a
row is still urgent. Plain strings, no imports of the services: bot/outbox.py reads this when it
queues a row, and the services import the outbox (tests/test_digests_service.py checks each string
against the constant of the service that writes it).

Everything not listed here stays immediate: a meeting's notice, reminder or change, a ticket for
its handler, an answer to its resident, ..."""

from __future__ import annotations

from typing import Any

# purpose -> the catalog key of its name in a digest's list.
DIGESTIBLE: dict[str, str] = {
    "broadcast/message": "digest.kind.broadcast",      # a broadcast not marked urgent
    "meeting/minutes": "digest.kind.minutes",          # a meeting's minutes are due
    "supervision/bulletin": "digest.kind.supervision",  # a monthly supervision summary (督查通报)
    # Echo-wall posts go to the org's wall chat (a group: never held); a digest lists instead the
    # problems answered on the wall of the person's orgs (DigestService._wall_news). A post sent to
    # a person under one of these purposes would be held like the rest.
    "ticket/wall": "digest.kind.wall",
    "deliberation/wall": "digest.kind.wall",
    "matters/wall": "digest.kind.wall",
    "appraisal/wall": "digest.kind.wall",
}

# purpose -> SQL true (one parameter: the row's subject_id) when that subject is urgent after all.
URGENT_SUBJECT: dict[str, str] = {
    "broadcast/message": "SELECT 1 FROM broadcasts WHERE id = ? AND urgent = 1",
}

# purpose -> SQL true (one parameter: subject_id) when the subject was withdrawn or no longer
# needs saying: such a held row is left out of the digest (and its open button says so).
WITHDRAWN_SUBJECT: dict[str, str] = {
    "broadcast/message": "SELECT 1 FROM broadcasts WHERE id = ? AND status = 'cancelled'",
    "meeting/minutes": ("SELECT 1 FROM meetings m WHERE m.id = ? AND (m.status = 'cancelled'"
                        " OR EXISTS (SELECT 1 FROM meeting_minutes x WHERE x.meeting_id = m.id))"),
}


def hold_clause(chat_id: int, method: str, purpose: str | None,
                subject_id: int | None) -> tuple[str, tuple[Any, ...]]:
    """A `WHEN ... THEN 'digest'` branch for the outbox's status CASE, and its parameters, or
    ("", ()) when the row can never be held: only new messages to a person, of a digestible
    purpose, whose recipient chose the digest."""
    if chat_id <= 0 or not method.startswith("send") or purpose not in DIGESTIBLE:
        return "", ()
    sql = " WHEN EXISTS (SELECT 1 FROM notice_settings WHERE person_id = ? AND digest = 1)"
    params: tuple[Any, ...] = (chat_id,)
    urgent = URGENT_SUBJECT.get(purpose)
    if urgent is not None:
        sql += f" AND NOT EXISTS ({urgent})"
        params += (subject_id,)
    return sql + " THEN 'digest'", params
