"""The supervision bulletin's counting: grouped SQL over an org's subtree, run on a connection of
its own (`db.snapshot()`: a county's year is a million tickets, and the event loop must go on).

Every figure is a count of raw records with the rule written next to its query, so it can be
checked by hand (tests/test_supervision.py does, measure by measure). Figures are per org (its own
records); bot/services/supervision.py adds them up the tree. The two figures about people (who
blocked the bot, failed deliveries to them) are counted per subtree directly, each person or row
once however many roles they hold there."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Statuses of tickets (bot/services/tickets.py Status) that are still waiting on the handler.
OPEN_TICKETS = ("new", "accepted", "need_info", "reopened")
MINUTES_GRACE_DAYS = 2  # bot/services/meeting_model.py MINUTES_GRACE: minutes count as on time within it
DEFAULT_STALL_DAYS = 30  # bot/services/matters.py DEFAULT_STALL_DAYS

# (held meetings of each org and kind by month): a meeting counts for its own org, and for every org
# below it when it was sent down (include_below), as the ledger and the quota checks count it.
QUOTA_SQL = """
WITH RECURSIVE sub(id) AS (SELECT id FROM orgs WHERE id IN (SELECT value FROM json_each(:orgs))),
anc(des, id) AS (SELECT id, id FROM sub UNION ALL
    SELECT anc.des, o.parent_id FROM anc JOIN orgs o ON o.id = anc.id WHERE o.parent_id IS NOT NULL),
b(idx, lo, hi) AS ({buckets})
SELECT a.des, m.kind,
       m.kind = 'party_lecture' AND m.lecturer_id IN
           (SELECT person_id FROM roles r WHERE r.org_id = a.des AND r.role = 'secretary') AS by_secretary,
       b.idx, COUNT(*)
FROM anc a JOIN meetings m ON m.org_id = a.id AND (a.id = a.des OR m.include_below = 1)
JOIN b ON m.starts_at >= b.lo AND m.starts_at < b.hi
WHERE m.status = 'held' AND m.starts_at >= :wlo AND m.starts_at < :whi
GROUP BY 1, 2, 3, 4
"""


def quota_sql(indexes: list[int]) -> str:
    """QUOTA_SQL with its buckets as rows (index, :loN, :hiN), plain SQL on both engines."""
    rows = " UNION ALL ".join(f"SELECT {int(i)}, :lo{int(i)}, :hi{int(i)}" for i in indexes)
    return QUOTA_SQL.replace("{buckets}", rows)


# Held meetings of the period by their own org; minutes on time: a text, photo or document added
# within two days of the end. A meeting still inside those two days without minutes is not due yet.
MEETINGS_SQL = f"""
SELECT org_id, COUNT(*), SUM(on_time OR late_at <= :now), SUM(CASE WHEN on_time THEN 1 ELSE 0 END) FROM (
  SELECT m.org_id,
         strftime('%Y-%m-%dT%H:%M:%S', substr(m.ends_at, 1, 19), '+{MINUTES_GRACE_DAYS} days')
             || substr(m.ends_at, 20) AS late_at,
         EXISTS (SELECT 1 FROM meeting_minutes mm WHERE mm.meeting_id = m.id AND mm.added_at <=
             strftime('%Y-%m-%dT%H:%M:%S', substr(m.ends_at, 1, 19), '+{MINUTES_GRACE_DAYS} days')
             || substr(m.ends_at, 20)) AS on_time
  FROM meetings m
  WHERE m.status = 'held' AND m.starts_at >= :lo AND m.starts_at < :hi
    AND m.org_id IN (SELECT value FROM json_each(:orgs))) held
GROUP BY org_id
"""

# Attendance of those meetings: present by the secretary's mark, else by check-in (Attendee.attended).
ATTENDANCE_SQL = """
SELECT m.org_id, COUNT(*),
       SUM(CASE WHEN a.presence = 'present' OR (a.presence IS NULL AND a.checked_in_at IS NOT NULL) THEN 1 ELSE 0 END),
       SUM(CASE WHEN a.presence IS NOT NULL THEN a.presence != 'present' ELSE a.checked_in_at IS NULL END
           AND a.answer = 'leave')
FROM meetings m JOIN meeting_attendees a ON a.meeting_id = m.id
WHERE m.status = 'held' AND m.starts_at >= :lo AND m.starts_at < :hi
  AND m.org_id IN (SELECT value FROM json_each(:orgs))
GROUP BY m.org_id
"""

# Problems received in the period, by the org that answers for them (handler_org_id). Deadlines are
# the ones stored at submission (working days from the org's settings and China's calendar).
# Withdrawn and declined problems leave the acceptance and answer counts; a problem counts there
# once it was accepted (answered) or its deadline has passed. A problem reopened as 不满意 lost
# its answer: it counts as answered in time only if answered again by the original deadline.
TICKETS_SQL = """
SELECT handler_org_id, COUNT(*),
  SUM(status NOT IN ('withdrawn', 'declined') AND (accepted_at IS NOT NULL OR accept_due <= :now)),
  SUM(status NOT IN ('withdrawn', 'declined') AND accepted_at IS NOT NULL AND accepted_at <= accept_due),
  SUM(status NOT IN ('withdrawn', 'declined') AND (answered_at IS NOT NULL OR answer_due <= :now)),
  SUM(status NOT IN ('withdrawn', 'declined') AND answered_at IS NOT NULL AND answered_at <= answer_due),
  SUM(EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id AND e.action = 'escalated')),
  SUM(rating IN ('good', 'ok', 'bad')), SUM(rating IN ('good', 'ok')), SUM(rating = 'unrated')
FROM tickets t
WHERE created_at >= :lo AND created_at < :hi AND handler_org_id IN (SELECT value FROM json_each(:orgs))
GROUP BY handler_org_id
"""

# Overdue now, whenever received: still open and past its deadline (to accept while new, else to
# answer), as the secretary's /inbox marks it.
OVERDUE_SQL = f"""
SELECT handler_org_id, COUNT(*) FROM tickets
WHERE handler_org_id IN (SELECT value FROM json_each(:orgs)) AND status IN ({", ".join(f"'{s}'" for s in OPEN_TICKETS)})
  AND CASE WHEN status = 'new' THEN accept_due ELSE answer_due END <= :now
GROUP BY handler_org_id
"""

# Deliberation rounds held: closed in the period (their result is fixed at the close); turnout of
# the rounds that had a vote: ballots out of those eligible, as the result says.
ROUNDS_SQL = """
SELECT org_id, COUNT(*), SUM(voted),
       SUM(CASE WHEN voted = 1 THEN CAST(json_extract(result, '$.ballots') AS BIGINT) ELSE 0 END),
       SUM(CASE WHEN voted = 1 THEN CAST(json_extract(result, '$.eligible') AS BIGINT) ELSE 0 END),
       SUM(CAST(json_extract(result, '$.opinions') AS BIGINT))
FROM (SELECT org_id, result, status, ended_at,
             -- a JSON true reads as 1 in SQLite and as 'true' in PostgreSQL
             CASE WHEN CAST(json_extract(result, '$.voted') AS TEXT) IN ('1', 'true') THEN 1 ELSE 0 END AS voted
      FROM delib_rounds) r
WHERE status = 'closed' AND result IS NOT NULL AND ended_at >= :lo AND ended_at < :hi
  AND org_id IN (SELECT value FROM json_each(:orgs))
GROUP BY org_id
"""

# 四议两公开 matters under way at some time in the period (opened by its end, not finished or
# rejected before its start), by where they stand now; overdue: waiting on a stage or on the
# decision's publication for longer than the org's limit (the stalled-step reminder's rule).
MATTERS_SQL = f"""
SELECT m.org_id, CASE WHEN m.status = 'open' THEN 's' || (m.stage + 1) ELSE m.status END, COUNT(*),
       SUM(m.status IN ('open', 'decided') AND julianday(:now_plain) - julianday(substr(m.waiting_since, 1, 19))
           >= COALESCE(s.stall_days, {DEFAULT_STALL_DAYS}))
FROM matters m LEFT JOIN matter_settings s ON s.org_id = m.org_id
WHERE m.opened_at < :hi AND m.org_id IN (SELECT value FROM json_each(:orgs))
  AND NOT (m.status = 'done' AND m.result_at < :lo) AND NOT (m.status = 'rejected' AND m.waiting_since < :lo)
GROUP BY 1, 2
"""

# Per subtree: people with a role there who blocked the bot (now), and messages to them that failed
# for good in the period (the outbox gave up). Each person, each message once per subtree.
CLOSURE = """
WITH RECURSIVE sub(id) AS (SELECT id FROM orgs WHERE id IN (SELECT value FROM json_each(:orgs))),
down(anc, id) AS (SELECT id, id FROM sub UNION ALL
    SELECT down.anc, o.id FROM down JOIN orgs o ON o.parent_id = down.id)"""
BLOCKED_SQL = CLOSURE + """,
blocked(person_id, org_id) AS MATERIALIZED (SELECT DISTINCT r.person_id, r.org_id FROM people p
    JOIN roles r ON r.person_id = p.telegram_id WHERE p.blocked_bot = 1)
SELECT d.anc, COUNT(DISTINCT b.person_id) FROM down d JOIN blocked b ON b.org_id = d.id GROUP BY d.anc
"""
FAILED_SQL = CLOSURE + """,
failed(id, org_id) AS MATERIALIZED (SELECT DISTINCT o.id, r.org_id FROM outbox o
    JOIN roles r ON r.person_id = o.recipient WHERE o.status = 'failed' AND o.created_at >= :lo AND o.created_at < :hi)
SELECT d.anc, COUNT(DISTINCT f.id) FROM down d JOIN failed f ON f.org_id = d.id GROUP BY d.anc
"""
# The same, of each org's own people (the workbook's 本级 line).
BLOCKED_OWN_SQL = """
SELECT r.org_id, COUNT(DISTINCT p.telegram_id) FROM people p JOIN roles r ON r.person_id = p.telegram_id
WHERE p.blocked_bot = 1 AND r.org_id IN (SELECT value FROM json_each(:orgs)) GROUP BY r.org_id
"""
FAILED_OWN_SQL = """
SELECT r.org_id, COUNT(DISTINCT o.id) FROM outbox o JOIN roles r ON r.person_id = o.recipient
WHERE o.status = 'failed' AND o.created_at >= :lo AND o.created_at < :hi
  AND r.org_id IN (SELECT value FROM json_each(:orgs)) GROUP BY r.org_id
"""


@dataclass(frozen=True)
class Query:
    """What to count: the orgs (ids), the period as UTC bounds in the database's format, now, and
    the monthly buckets (index, lo, hi) the quota periods are made of."""

    orgs: list[int]
    lo: str
    hi: str
    now: str
    buckets: list[tuple[int, str, str]]


@dataclass(frozen=True)
class Raw:
    """The counts as read: per org (own records), per subtree (people), and held meetings by
    (org, quota kind, bucket)."""

    own: dict[int, Counter[str]]
    subtree: dict[int, Counter[str]]
    held: dict[tuple[int, str, int], int]


class Reader(Protocol):
    """A snapshot's reads (`db.snapshot()`: off the event loop on SQLite, on the server on PostgreSQL)."""

    async def fetchall(self, sql: str, params: dict[str, Any]) -> Sequence[Any]: ...


async def count(db: Any, q: Query) -> Raw:
    """Run every query from one snapshot of the database."""
    async with db.snapshot() as reader:
        return await _count(reader, q)


async def _count(conn: Reader, q: Query) -> Raw:
    """Long because each measure is one query and its columns, listed in one place."""
    orgs = json.dumps(q.orgs)
    span = {"orgs": orgs, "lo": q.lo, "hi": q.hi, "now": q.now}
    own: dict[int, Counter[str]] = {org: Counter() for org in q.orgs}

    async def put(sql: str, params: dict[str, Any], names: tuple[str, ...]) -> None:
        for row in await conn.fetchall(sql, params):
            target = own.setdefault(row[0], Counter())
            for name, value in zip(names, row[1:], strict=True):
                target[name] += int(value or 0)

    await put(MEETINGS_SQL, span, ("held", "minutes_due", "minutes_on_time"))
    await put(ATTENDANCE_SQL, {"orgs": orgs, "lo": q.lo, "hi": q.hi},
              ("invited", "attended", "on_leave"))
    await put(TICKETS_SQL, span, ("received", "accept_due", "accepted_in_time", "answer_due", "answered_in_time",
                                  "escalated", "rated", "satisfied", "unrated"))
    await put(OVERDUE_SQL, {"orgs": orgs, "now": q.now}, ("overdue",))
    await put(ROUNDS_SQL, {"orgs": orgs, "lo": q.lo, "hi": q.hi},
              ("rounds", "voting_rounds", "ballots", "eligible", "opinions"))
    await put(BLOCKED_OWN_SQL, {"orgs": orgs}, ("blocked",))
    await put(FAILED_OWN_SQL, {"orgs": orgs, "lo": q.lo, "hi": q.hi}, ("failed",))
    now_plain = q.now[:19]
    for org, state, n, overdue in await conn.fetchall(MATTERS_SQL, {**span, "now_plain": now_plain}):
        target = own.setdefault(org, Counter())
        target[f"matter:{state}"] += int(n)
        target["matters"] += int(n)
        target["matters_overdue"] += int(overdue or 0)
    subtree: dict[int, Counter[str]] = {org: Counter() for org in q.orgs}
    for org, n in await conn.fetchall(BLOCKED_SQL, {"orgs": orgs}):
        subtree[org]["blocked"] = int(n)
    for org, n in await conn.fetchall(FAILED_SQL, {"orgs": orgs, "lo": q.lo, "hi": q.hi}):
        subtree[org]["failed"] = int(n)
    held: dict[tuple[int, str, int], int] = {}
    if q.buckets:
        params: dict[str, Any] = {"orgs": orgs, "wlo": q.buckets[0][1], "whi": q.buckets[-1][2]}
        for i, lo, hi in q.buckets:
            params[f"lo{i}"], params[f"hi{i}"] = lo, hi
        for org, kind, by_secretary, idx, n in await conn.fetchall(quota_sql([b[0] for b in q.buckets]), params):
            held[(org, kind, idx)] = held.get((org, kind, idx), 0) + int(n)
            if by_secretary:
                key = (org, "secretary_lecture", idx)
                held[key] = held.get(key, 0) + int(n)
    return Raw(own=own, subtree=subtree, held=held)
