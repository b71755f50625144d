"""A province's records for `python -m bench scale`: at scale 1, a province with 10 cities, 100
counties and 3,000 village branches; 1,000,000 people, 5,000,000 problems and 300,000 meetings
(8 invited each), from the 1st of January 2026 to the end of January 2027 for meetings (those after
the bench's "now" are still to come) and up to the end of November 2026 for problems.

Written in SQL, a row per number from a recursive CTE, "random" from a hash of the number (so the
same scale gives the same data), on a database the bot has already migrated: no Python per row.
The indexes are dropped first and built once after the rows (sorted), as bench/reportdata.py does
for a county (whose shape, a county of townships with Python-drawn meetings, does not scale to this).
The org kinds have no province or city: those two levels are 'other'.

The layout, which bench/scale.py relies on to pick its readers:
- org 1 the province; cities 2..11; counties 100..199 (county c under city 2 + (c - 100) % 10);
  branches 1000.. (branch b under county 100 + (b - 1000) % counties);
- person p (1..people) belongs to branch 1000 + (p - 1) % branches; the first person of each
  branch is its secretary, a third of the others members, the rest residents; one member in ten
  (by a hash of p) is also a resident of the branch, so that the /broadcast audience meets people
  who hold two roles (counted once, bot/services/broadcasts.py);
- organisers: person people + 1 + k for the province (k = 0), city k (k = 1..10) and county
  (k = 11..) in org-id order.

PostgreSQL gets the same province (`to_postgresql`): the rows of a province generated here are
copied with COPY (asyncpg's copy_records_to_table, the SQLite cursor streamed), the target's
indexes dropped first and built after, foreign keys not checked row by row (the rows are known to
hold), then VACUUM ANALYZE so the planner has statistics and index-only scans see an all-visible
table, as a long-running database's autovacuum leaves it."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bot.services.orgs import RECOUNT_ROLES

CITIES = 10
FIRST_COUNTY = 100
FIRST_BRANCH = 1000
YEAR_START = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
TICKETS_END = int(datetime(2026, 11, 30, 16, 0, tzinfo=UTC).timestamp())
MEETINGS_END = int(datetime(2027, 1, 31, tzinfo=UTC).timestamp())
NOW = int(datetime(2026, 12, 1, 1, 0, tzinfo=UTC).timestamp())  # 09:00 in Shanghai, as bench/scale.py
EARLY = "2024-12-01T00:00:00.000000Z"
TABLES = ("orgs", "people", "roles", "role_counts", "role_repeats", "tickets", "ticket_events", "meetings",
          "meeting_attendees")
ISO = "'%Y-%m-%dT%H:%M:%S.000000Z'"


def sizes(scale: float) -> dict[str, int]:
    counties = max(CITIES, round(100 * scale))
    branches = max(counties, round(3_000 * scale))
    return {"cities": CITIES, "counties": counties, "branches": branches,
            "people": max(branches * 10, round(1_000_000 * scale)),
            "tickets": max(branches * 10, round(5_000_000 * scale)),
            "meetings": max(branches, round(300_000 * scale))}


def _numbers(count: str) -> str:
    return f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})"


def _hash(expr: str, a: int, b: int) -> str:
    """A scrambled non-negative integer from `expr` (an LCG step twice: no two columns share one)."""
    return f"(({expr}) * {a} + {b}) % 2147483647 * 48271 % 2147483647"


def generate(path: Path, scale: float) -> dict[str, int]:
    """Fill the migrated SQLite database at `path`; returns the sizes written."""
    n = sizes(scale)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")  # written once: no WAL to grow
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-200000")
    conn.execute("BEGIN")
    marks = ",".join("?" * len(TABLES))
    indexes = conn.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                           f" AND tbl_name IN ({marks})", TABLES).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    for sql in (_orgs_sql(n), _people_sql(n), _roles_sql(n), _organisers_sql(n), _tickets_sql(n),
                _events_sql(), _meetings_sql(n), _attendees_sql(n), RECOUNT_ROLES):
        for statement in sql:
            conn.execute(statement)
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return n


def _orgs_sql(n: dict[str, int]) -> list[str]:
    c, b = n["counties"], n["branches"]
    cols = "INSERT INTO orgs (id, code, name, kind, parent_id, position, created_at)"
    return [
        f"{cols} VALUES (1, 'province', '中共测试省委', 'other', NULL, 0, '{EARLY}')",
        f"{cols} {_numbers(str(CITIES))} SELECT 1 + i, 'city' || i, '第' || i || '市委', 'other', 1, i, '{EARLY}'"
        " FROM n",
        f"{cols} {_numbers(str(c))} SELECT {FIRST_COUNTY - 1} + i, 'county' || i, '第' || i || '县委', 'county',"
        f" 2 + (i - 1) % {CITIES}, i, '{EARLY}' FROM n",
        f"{cols} {_numbers(str(b))} SELECT {FIRST_BRANCH - 1} + i, 'b' || i, '第' || i || '村党支部',"
        f" 'village_branch', {FIRST_COUNTY} + (i - 1) % {c}, i, '{EARLY}' FROM n",
    ]


def _people_sql(n: dict[str, int]) -> list[str]:
    everyone = n["people"] + 1 + CITIES + n["counties"]
    return [f"INSERT INTO people (telegram_id, name, blocked_bot, created_at, updated_at) {_numbers(str(everyone))}"
            f" SELECT i, '人' || i, {_hash('i', 7919, 3)} % 100 = 0, '{EARLY}', '{EARLY}' FROM n"]


def _roles_sql(n: dict[str, int]) -> list[str]:
    b = n["branches"]
    return [f"INSERT INTO roles (person_id, org_id, role, granted_at) {_numbers(str(n['people']))}"
            f" SELECT i, {FIRST_BRANCH} + (i - 1) % {b},"
            f" CASE WHEN i <= {b} THEN 'secretary' WHEN i % 3 = 0 THEN 'member' ELSE 'resident' END,"
            f" '{EARLY}' FROM n",
            f"INSERT INTO roles (person_id, org_id, role, granted_at) {_numbers(str(n['people']))}"
            f" SELECT i, {FIRST_BRANCH} + (i - 1) % {b}, 'resident', '{EARLY}' FROM n"
            f" WHERE i > {b} AND i % 3 = 0 AND {_hash('i', 6271, 5)} % 10 = 0"]


def _organisers_sql(n: dict[str, int]) -> list[str]:
    """One organiser for the province, each city and each county, in org-id order."""
    return [f"INSERT INTO roles (person_id, org_id, role, granted_at) SELECT {n['people']} + ROW_NUMBER()"
            f" OVER (ORDER BY id), id, 'organizer', '{EARLY}' FROM orgs WHERE kind != 'village_branch'"]


def _tickets_sql(n: dict[str, int]) -> list[str]:
    """Problem i is raised by a person of its branch; accepted after 3, 20 or 70 hours (3% never),
    answered after 2, 4, 6 or 9 days (5% never: still open, escalated once when overdue); four in
    five may be shown on the wall."""
    b, per = n["branches"], n["people"] // n["branches"]
    span = TICKETS_END - YEAR_START
    return [f"""
INSERT INTO tickets (id, org_id, handler_org_id, resident_id, category, public_ok, anonymous, status, summary,
                     content_key, escalation, accept_due, answer_due, answer_text, rating, created_at, accepted_at,
                     answered_at, closed_at)
{_numbers(str(n['tickets']))},
h(i, a, b, c, d, e) AS (SELECT i, {_hash('i', 48271, 11)}, {_hash('i', 69621, 37)}, {_hash('i', 16807, 91)},
    {_hash('i', 39373, 53)}, {_hash('i', 40692, 17)} FROM n),
r(i, k, c, acc, ans, rating, pub, who) AS (SELECT i, a % {b}, {YEAR_START} + b % {span},
    CASE WHEN c % 100 < 97 THEN 3600 * (CASE c % 3 WHEN 0 THEN 3 WHEN 1 THEN 20 ELSE 70 END) END,
    CASE WHEN c % 100 < 95 THEN 86400 * (CASE d % 4 WHEN 0 THEN 2 WHEN 1 THEN 4 WHEN 2 THEN 6 ELSE 9 END) END,
    CASE d % 7 WHEN 0 THEN 'good' WHEN 1 THEN 'good' WHEN 2 THEN 'good' WHEN 3 THEN 'ok' WHEN 4 THEN 'bad'
        WHEN 5 THEN 'unrated' END, e % 5 < 4, e % {per} FROM h)
SELECT i, {FIRST_BRANCH} + k, {FIRST_BRANCH} + k, 1 + k + {b} * who, '其他', pub, 0,
       CASE WHEN ans IS NOT NULL THEN 'closed' WHEN acc IS NOT NULL THEN 'accepted' ELSE 'new' END,
       '路灯坏了，晚上看不见路', '路灯坏了晚上看不见路', ans IS NULL AND c + 7 * 86400 < {NOW},
       strftime({ISO}, c + 2 * 86400, 'unixepoch'), strftime({ISO}, c + 7 * 86400, 'unixepoch'),
       CASE WHEN ans IS NOT NULL THEN '已经修好了，谢谢反映' END,
       CASE WHEN ans IS NOT NULL THEN rating END,
       strftime({ISO}, c, 'unixepoch'), strftime({ISO}, c + acc, 'unixepoch'),
       strftime({ISO}, c + ans, 'unixepoch'), strftime({ISO}, c + ans + 86400, 'unixepoch')
FROM r"""]


def _events_sql() -> list[str]:
    return ["INSERT INTO ticket_events (ticket_id, at, action, note) SELECT id, created_at, 'escalated',"
            " 'answer:1' FROM tickets WHERE accepted_at IS NULL OR answered_at > answer_due"]


def _meetings_sql(n: dict[str, int]) -> list[str]:
    """Meeting i at a branch, over 13 months: held before now, still to come after."""
    b, span = n["branches"], MEETINGS_END - YEAR_START
    kinds = "CASE a % 5 WHEN 0 THEN 'committee_meeting' WHEN 1 THEN 'theme_day' WHEN 2 THEN 'general_meeting'" \
            " WHEN 3 THEN 'party_lecture' ELSE 'life_meeting' END"
    return [f"""
INSERT INTO meetings (id, org_id, kind, starts_at, ends_at, place, topic, status, created_by, created_at, updated_at)
{_numbers(str(n['meetings']))},
r(i, k, a, s) AS (SELECT i, {_hash('i', 22695, 1)} % {b}, {_hash('i', 1103, 12345)},
    {YEAR_START} + {_hash('i', 65539, 7)} % {span} FROM n)
SELECT i, {FIRST_BRANCH} + k, {kinds}, strftime({ISO}, s, 'unixepoch'), strftime({ISO}, s + 7200, 'unixepoch'),
       '村委会', '学习', CASE WHEN s + 7200 <= {NOW} THEN 'held' ELSE 'scheduled' END, 1 + k,
       strftime({ISO}, s - 7 * 86400, 'unixepoch'), strftime({ISO}, s - 7 * 86400, 'unixepoch')
FROM r"""]


def _attendees_sql(n: dict[str, int]) -> list[str]:
    """The first eight people of the meeting's branch (its secretary first) are invited."""
    b, people = n["branches"], n["people"]
    return [f"INSERT OR IGNORE INTO meeting_attendees (meeting_id, person_id, presence)"
            f" {_numbers('8')} SELECT m.id, 1 + (m.org_id - {FIRST_BRANCH}) + {b} * (n.i - 1),"
            f" CASE WHEN m.status = 'held' THEN CASE WHEN (m.id + n.i) % 5 = 0 THEN 'absent' ELSE 'present' END END"
            f" FROM meetings m, n WHERE 1 + (m.org_id - {FIRST_BRANCH}) + {b} * (n.i - 1) <= {people}"]


def to_postgresql(source: Path, url: str) -> dict[str, int]:
    """Copy the province in the SQLite file `source` into the migrated, empty PostgreSQL database at
    `url`; returns the rows copied per table."""
    return asyncio.run(_copy(source, url))


async def _copy(source: Path, url: str) -> dict[str, int]:
    """Long because it is the copy in order: indexes off, rows, identities, indexes, statistics."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    pg = await asyncpg.connect(url)  # plain codecs: COPY's binary format takes ints and strs as they come
    counts: dict[str, int] = {}
    try:
        try:  # foreign keys not checked row by row (needs a superuser; otherwise they are, slower)
            await pg.execute("SET session_replication_role = replica")
        except asyncpg.InsufficientPrivilegeError:
            pass
        indexes = await pg.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema()"
            " AND i.tablename = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
            " WHERE c.conname = i.indexname)", list(TABLES))
        for name, _ in indexes:
            await pg.execute(f'DROP INDEX "{name}"')
        for table in TABLES:
            columns = [c[1] for c in src.execute(f'PRAGMA table_info("{table}")')]
            names = ", ".join(f'"{c}"' for c in columns)
            cursor = src.execute(f'SELECT {names} FROM "{table}"')
            await pg.copy_records_to_table(table, records=cursor, columns=columns)
            counts[table] = int(await pg.fetchval(f'SELECT COUNT(*) FROM "{table}"'))
            if "id" in columns:  # identities continue after the highest id copied
                await pg.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                                 f' COALESCE(MAX(id), 0) + 1, false) FROM "{table}"')
        await pg.execute("SET maintenance_work_mem = '256MB'")
        for _, sql in indexes:
            await pg.execute(sql)
        for table in TABLES:
            await pg.execute(f'VACUUM ANALYZE "{table}"')
    finally:
        await pg.close()
        src.close()
    return counts
