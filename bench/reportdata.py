"""A county's records for `python -m bench report`: at scale 1, 300 branches under 15 townships,
100,000 people, 50,000 meetings (with attendees and minutes), 1,000,000 problems, deliberation
rounds, 四议两公开 matters and failed deliveries, spread over 2026 up to the end of November.

Written straight into the schema with executemany in batches (a generator, never a list of a
million rows), on a database the bot has already migrated. Seeded: the same scale gives the same data."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.clock import to_db
from bot.services.orgs import RECOUNT_ROLES

TOWNSHIPS = 15
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = datetime(2026, 11, 30, 16, 0, tzinfo=UTC) - YEAR_START  # to the end of November, local
BATCH = 50_000
MEETING_KINDS = ("committee_meeting", "theme_day", "general_meeting", "party_lecture", "life_meeting")
RATINGS = ("good", "good", "good", "ok", "bad", "unrated", None)


def sizes(scale: float) -> dict[str, int]:
    return {"branches": max(2, round(300 * scale)), "people": max(20, round(100_000 * scale)),
            "meetings": max(10, round(50_000 * scale)), "tickets": max(50, round(1_000_000 * scale)),
            "rounds": max(2, round(2_000 * scale)), "matters": max(2, round(1_000 * scale)),
            "failed": max(2, round(2_000 * scale))}


def _batches(rows: Iterator[tuple[object, ...]]) -> Iterator[list[tuple[object, ...]]]:
    batch: list[tuple[object, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _put(conn: sqlite3.Connection, sql: str, rows: Iterator[tuple[object, ...]]) -> None:
    for batch in _batches(rows):
        conn.executemany(sql, batch)


def generate(path: Path, scale: float, seed: int = 7) -> dict[str, int]:
    """Fill the migrated database at `path`; returns the sizes written."""
    n = sizes(scale)
    rnd = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    # Written once, read later: no WAL to grow (the bot turns it back on when it opens the file).
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    # The indexes are built once after the rows (sorted), not kept up row by row (random order).
    indexes = [row[0] for row in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN"
        " ('tickets', 'ticket_events', 'meetings', 'meeting_attendees', 'meeting_minutes', 'people', 'roles')")]
    for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN"
            " ('tickets', 'ticket_events', 'meetings', 'meeting_attendees', 'meeting_minutes', 'people', 'roles')"
    ).fetchall():
        conn.execute(f"DROP INDEX {name}")
    branches = _orgs(conn, n["branches"])
    _people(conn, rnd, n["people"], branches)
    _meetings(conn, rnd, n["meetings"], branches, n["people"])
    _tickets(conn, n["tickets"], branches)
    _deliberation(conn, rnd, n["rounds"], n["matters"], branches)
    _outbox(conn, rnd, n["failed"], n["people"])
    for sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return n


def _orgs(conn: sqlite3.Connection, branches: int) -> list[int]:
    early = to_db(YEAR_START - timedelta(days=400))
    conn.execute("INSERT INTO orgs (id, code, name, kind, parent_id, position, created_at)"
                 " VALUES (1, 'county', '中共测试县委', 'county', NULL, 0, ?)", (early,))
    conn.executemany("INSERT INTO orgs (id, code, name, kind, parent_id, position, created_at) VALUES (?, ?, ?,"
                     " 'township', 1, ?, ?)", [(1 + t, f"town{t}", f"第{t}镇党委", t, early)
                                               for t in range(1, TOWNSHIPS + 1)])
    ids = list(range(100, 100 + branches))
    conn.executemany("INSERT INTO orgs (id, code, name, kind, parent_id, position, created_at) VALUES (?, ?, ?,"
                     " 'village_branch', ?, ?, ?)", [(i, f"b{i}", f"第{i}村党支部", 2 + (i % TOWNSHIPS), i, early)
                                                     for i in ids])
    return ids


def _people(conn: sqlite3.Connection, rnd: random.Random, count: int, branches: list[int]) -> None:
    """Person p (1..count) belongs to branch p % branches: its first person is the secretary, a
    third are members, the rest residents; one in a hundred blocked the bot. One organiser per
    township and one for the county."""
    early = to_db(YEAR_START - timedelta(days=300))
    _put(conn, "INSERT INTO people (telegram_id, name, blocked_bot, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
         ((p, f"人{p}", int(rnd.random() < 0.01), early, early) for p in range(1, count + TOWNSHIPS + 2)))

    def role(p: int) -> str:
        if p <= len(branches):
            return "secretary"
        return "member" if p % 3 == 0 else "resident"

    _put(conn, "INSERT INTO roles (person_id, org_id, role, granted_at) VALUES (?, ?, ?, ?)",
         ((p, branches[p % len(branches)], role(p), early) for p in range(1, count + 1)))
    conn.executemany("INSERT INTO roles (person_id, org_id, role, granted_at) VALUES (?, ?, 'organizer', ?)",
                     [(count + 1 + t, 1 + t, early) for t in range(TOWNSHIPS + 1)])
    for statement in RECOUNT_ROLES:  # the broadcast audience's counts (migration 027)
        conn.execute(statement)


def _meetings(conn: sqlite3.Connection, rnd: random.Random, count: int, branches: list[int], people: int) -> None:
    rows, attendees, minutes = [], [], []
    for m in range(1, count + 1):
        org = rnd.choice(branches)
        start = YEAR_START + timedelta(seconds=rnd.randrange(int(SPAN.total_seconds())))
        end = start + timedelta(hours=2)
        status = "held" if rnd.random() < 0.85 else rnd.choice(("cancelled", "scheduled"))
        rows.append((m, org, rnd.choice(MEETING_KINDS), to_db(start), to_db(end), status, to_db(start)))
        if status == "held":
            for k in range(8):
                person = 1 + (org - 100) + len(branches) * k
                if person <= people:
                    attendees.append((m, person, "present" if rnd.random() < 0.8 else "absent"))
            if rnd.random() < 0.7:
                minutes.append((m, to_db(end + timedelta(hours=rnd.choice((1, 30, 80))))))
    conn.executemany("INSERT INTO meetings (id, org_id, kind, starts_at, ends_at, place, topic, status, created_by,"
                     " created_at, updated_at) VALUES (?, ?, ?, ?, ?, '村委会', '学习', ?, 1, ?, ?)",
                     [(*r, r[-1]) for r in rows])
    conn.executemany("INSERT OR IGNORE INTO meeting_attendees (meeting_id, person_id, presence) VALUES (?, ?, ?)",
                     attendees)
    conn.executemany("INSERT INTO meeting_minutes (meeting_id, kind, text, added_by, added_at)"
                     " VALUES (?, 'text', '记录', 1, ?)", minutes)


# Problems in SQL, a row per number 1..N, "random" from a hash of the number (seeded, so the same
# scale gives the same data): created over the year at a branch; accepted after 3, 20 or 70 hours
# (3% never); answered after 2, 4, 6 or 9 days (5% never); rated like RATINGS; those never accepted
# or answered late were escalated once.
TICKETS_SQL = """
INSERT INTO tickets (id, org_id, handler_org_id, resident_id, category, public_ok, anonymous, status, summary,
                     content_key, accept_due, answer_due, rating, created_at, accepted_at, answered_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count),
h(i, a, b, c, d) AS (SELECT i, (i * 48271 + 11) % 2147483647 * 48271 % 2147483647,
    (i * 69621 + 37) % 2147483647 * 48271 % 2147483647, (i * 16807 + 91) % 2147483647 * 69621 % 2147483647,
    (i * 39373 + 53) % 2147483647 * 16807 % 2147483647 FROM n),
r(i, org, c, acc, ans, rating) AS (SELECT i, :first + a % :branches, :t0 + b % :span,
    CASE WHEN c % 100 < 97 THEN 3600 * (CASE c % 3 WHEN 0 THEN 3 WHEN 1 THEN 20 ELSE 70 END) END,
    CASE WHEN c % 100 < 95 THEN 86400 * (CASE d % 4 WHEN 0 THEN 2 WHEN 1 THEN 4 WHEN 2 THEN 6 ELSE 9 END) END,
    CASE d % 7 WHEN 0 THEN 'good' WHEN 1 THEN 'good' WHEN 2 THEN 'good' WHEN 3 THEN 'ok' WHEN 4 THEN 'bad'
        WHEN 5 THEN 'unrated' END FROM h)
SELECT i, org, org, 1 + org - :first, '其他', 1, 0,
       CASE WHEN ans IS NOT NULL THEN 'closed' WHEN acc IS NOT NULL THEN 'accepted' ELSE 'new' END, '路灯坏了', '',
       strftime('%Y-%m-%dT%H:%M:%S.000000Z', c + 2 * 86400, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%S.000000Z', c + 7 * 86400, 'unixepoch'),
       CASE WHEN ans IS NOT NULL THEN rating END,
       strftime('%Y-%m-%dT%H:%M:%S.000000Z', c, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%S.000000Z', c + acc, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%S.000000Z', c + ans, 'unixepoch')
FROM r
"""


def _tickets(conn: sqlite3.Connection, count: int, branches: list[int]) -> None:
    conn.execute(TICKETS_SQL, {"count": count, "first": branches[0], "branches": len(branches),
                               "t0": int(YEAR_START.timestamp()), "span": int(SPAN.total_seconds())})
    conn.execute("INSERT INTO ticket_events (ticket_id, at, action, note) SELECT id, created_at, 'escalated',"
                 " 'answer:1' FROM tickets WHERE accepted_at IS NULL OR answered_at > answer_due")


def _deliberation(conn: sqlite3.Connection, rnd: random.Random, rounds: int, matters: int,
                  branches: list[int]) -> None:
    span = int(SPAN.total_seconds())
    rows = []
    for i in range(1, rounds + 1):
        opened = YEAR_START + timedelta(seconds=rnd.randrange(span))
        ended = opened + timedelta(days=7)
        eligible = rnd.randrange(20, 300)
        result = json.dumps({"options": [], "ballots": rnd.randrange(eligible), "proxies": 0, "eligible": eligible,
                             "opinions": rnd.randrange(30), "top": [], "voted": rnd.random() < 0.7})
        rows.append((i, rnd.choice(branches), to_db(opened), to_db(ended), to_db(ended), result))
    conn.executemany("INSERT INTO delib_rounds (id, org_id, audience, title, opened_by, opened_at, opinions_until,"
                     " status, ended_at, result) VALUES (?, ?, 'both', '议事', 1, ?, ?, 'closed', ?, ?)", rows)
    states = [("open", s) for s in range(4)] + [("decided", 4), ("published", 4), ("done", 4), ("rejected", 1)]
    conn.executemany(
        "INSERT INTO matters (id, org_id, title, opened_by, opened_at, stage, status, waiting_since, result_at)"
        " VALUES (?, ?, '修路', 1, ?, ?, ?, ?, ?)",
        [(i, rnd.choice(branches), to_db(opened), *rnd.choice(states), to_db(opened + timedelta(days=10)),
          to_db(opened + timedelta(days=40)))
         for i in range(1, matters + 1) for opened in [YEAR_START + timedelta(seconds=rnd.randrange(span))]])


def _outbox(conn: sqlite3.Connection, rnd: random.Random, count: int, people: int) -> None:
    span = int(SPAN.total_seconds())
    conn.executemany(
        "INSERT INTO outbox (dedup_key, chat_id, method, payload, not_before, status, created_at, recipient, purpose)"
        " VALUES (?, ?, 'sendMessage', '{}', ?, 'failed', ?, ?, 'meeting/notice')",
        [(f"bench:{i}", p, when, when, p) for i in range(count)
         for p, when in [(rnd.randrange(1, people + 1), to_db(YEAR_START + timedelta(seconds=rnd.randrange(span))))]])
