"""PostgreSQL behind the same interface as bot/database.py's SQLite `Database` and `Tx` (asyncpg).

The services write one SQL for both engines: `?` placeholders, ISO-8601 text for times, integers for
flags. What differs lives here: `?` becomes `$n` (once per statement text, cached), `insert` returns
the new id with RETURNING, the migrations' SQLite DDL is translated (bot/dialect.py), and values are
encoded as leniently as SQLite's type affinity takes them (an int given for a text column is stored
as its text, a sum comes back as an int, not a Decimal), so a service never needs a branch.

Writes in one process are serialised by a lock, as SQLite's one writer serialises them: the services'
read-then-write checks inside a transaction rely on it."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import asyncpg

from bot.database import Tx
from bot.dialect import pg_ddl, split_sql

log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]
Row = asyncpg.Record


class Result:
    """What `execute` returns: the count of rows changed, as sqlite3's cursor.rowcount gives it."""

    def __init__(self, status: str) -> None:
        last = status.rsplit(" ", 1)[-1]
        self.rowcount = int(last) if last.isdigit() else -1


# SQLite's way to pass a list as one parameter (a JSON array): the same, as PostgreSQL's array.
_JSON_IN = re.compile(r"\b(NOT\s+)?IN\s*\(\s*SELECT\s+value\s+FROM\s+json_each\(\s*([?]|:[A-Za-z_]\w*)\s*\)\s*\)", re.I)


# SQLite's JSON functions on a stored JSON text column, as PostgreSQL's (the values come back as
# text: compare them with a parameter, which is then text too, or CAST them).
_JSON_FUNCS = [
    (re.compile(r"json_each\((\w+(?:\.\w+)?),\s*'\$\.(\w+)'\)", re.I),
     r"json_array_elements_text(CAST(\1 AS json) -> '\2')"),
    (re.compile(r"\binstr\(", re.I), "strpos("),
    (re.compile(r"\bjson_group_array\(", re.I), "json_agg("),
    (re.compile(r"json_extract\((\w+(?:\.\w+)?),\s*'\$\.(\w+)'\)", re.I), r"(CAST(\1 AS json) ->> '\2')"),
]


def _calls(sql: str, name: str, rewrite: Callable[[list[str]], str | None]) -> str:
    """Each call `name(a, b, …)` (arguments split at their top-level commas, nested calls kept
    whole) replaced by what `rewrite` makes of its arguments; None keeps the call as it is."""
    out, last = [], 0
    for match in re.finditer(rf"\b{name}\s*\(", sql, re.I):
        if match.start() < last:
            continue
        depth, i, args, begin = 1, match.end(), [], match.end()
        while i < len(sql) and depth:
            ch = sql[i]
            if ch == "'":
                i = sql.index("'", i + 1)
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 1:
                args.append(sql[begin:i].strip())
                begin = i + 1
            i += 1
        args.append(sql[begin:i - 1].strip())
        replacement = rewrite(args)
        if replacement is not None:
            out.append(sql[last:match.start()] + replacement)
            last = i
    return "".join(out) + sql[last:]


def _scalar_min_max(sql: str) -> str:
    """SQLite's MAX(a, b) / MIN(a, b) of several arguments are GREATEST / LEAST there (NULLs aside:
    SQLite gives NULL, PostgreSQL ignores them; the bot's arguments are never NULL)."""
    sql = _calls(sql, "MAX", lambda args: f"GREATEST({', '.join(args)})" if len(args) > 1 else None)
    return _calls(sql, "MIN", lambda args: f"LEAST({', '.join(args)})" if len(args) > 1 else None)


# strftime's format letters as to_char's (the ones the bot's SQL uses).
_TO_CHAR = {"%Y": "YYYY", "%m": "MM", "%d": "DD", "%H": "HH24", "%M": "MI", "%S": "SS", "T": '"T"'}
_MODIFIER = re.compile(r"'([+-]\d+) (day|hour|minute|second)s?'$", re.I)


def _strftime(args: list[str]) -> str | None:
    """strftime('%Y-…', time text, '+N days', …) → to_char(timestamp + interval, '…'): the time
    arithmetic the bot does on its stored UTC texts."""
    fmt = args[0].strip("'")
    for letter, pattern in _TO_CHAR.items():
        fmt = fmt.replace(letter, pattern)
    when = f"CAST(CAST({args[1]} AS TEXT) AS TIMESTAMP)"
    for modifier in args[2:]:
        match = _MODIFIER.match(modifier)
        if match is None:
            return None
        when = f"({when} + INTERVAL '{match.group(1)} {match.group(2)}')"
    return f"to_char({when}, '{fmt}')"


def _julianday(args: list[str]) -> str | None:
    """julianday(time text): days since the Julian epoch, as a number (differences in days)."""
    if len(args) != 1:
        return None
    return f"(EXTRACT(EPOCH FROM CAST(CAST({args[0]} AS TEXT) AS TIMESTAMP)) / 86400.0 + 2440587.5)"


# SQLite's catalog, as the same rows from PostgreSQL's (tables listed, a table's columns read; the
# privacy scrub, the backup's checks and the tests use them).
_CATALOG = [
    (re.compile(r"\bFROM\s+sqlite_master\b", re.I),
     "FROM (SELECT CAST('table' AS TEXT) AS type, table_name AS name, table_name AS tbl_name, CAST(NULL AS TEXT) AS sql"
     " FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
     " UNION ALL SELECT 'index', indexname, tablename, indexdef FROM pg_indexes"
     " WHERE schemaname = current_schema()) AS sqlite_master"),
    (re.compile(r"^\s*PRAGMA\s+table_info\(\s*\"?(\w+)\"?\s*\)\s*;?\s*$", re.I),
     r"SELECT ordinal_position - 1 AS cid, column_name AS name, upper(data_type) AS type,"
     r" CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS notnull, column_default AS dflt_value, 0 AS pk"
     r" FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '\1'"
     r" ORDER BY ordinal_position"),
]


_BOOLEAN_OPERATOR = re.compile(r"<>|!=|<=|>=|[=<>]|\b(?:AND|OR|NOT|IN|IS|LIKE|EXISTS|BETWEEN)\b", re.I)
_INNERMOST_CASE = re.compile(r"\bCASE\b(?:(?!\bCASE\b).)*?\bEND\b", re.I | re.S)


def _is_condition(expr: str) -> bool:
    """Whether an expression is a condition (a comparison, AND, IN, EXISTS… at its top level, not
    inside parentheses, a string or a CASE)."""
    flat, depth, i = [], 0, 0
    while i < len(expr):
        ch = expr[i]
        if ch == "'":
            i = expr.find("'", i + 1) + 1 or len(expr)
            flat.append("''")
            continue
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and ch != ")":
            flat.append(ch)
        i += 1
    text = "".join(flat)
    while (stripped := _INNERMOST_CASE.sub(" 0 ", text)) != text:
        text = stripped
    return bool(_BOOLEAN_OPERATOR.search(text))


def _aggregate_of_condition(name: str) -> Callable[[list[str]], str | None]:
    """SUM/MAX/MIN(condition): SQLite counts the true ones, or takes the largest (a condition is 1 or
    0 there); PostgreSQL has no sum(boolean) or max(boolean), so the condition is cast to an integer
    (NULL stays NULL, as SQLite skips it). MIN/MAX of several arguments are not aggregates."""

    def rewrite(args: list[str]) -> str | None:
        if len(args) != 1 or not _is_condition(args[0]):
            return None
        return f"{name}(CAST(({args[0]}) AS INTEGER))"

    return rewrite


_SUBQUERY = re.compile(r"\b(FROM|JOIN)\s*\(\s*(SELECT|WITH|VALUES)\b", re.I)
# What may follow a subquery that has no alias (anything else is its alias).
_NO_ALIAS = re.compile(r"\s*(?:$|[),;]|(?:WHERE|GROUP|ORDER|LIMIT|UNION|EXCEPT|INTERSECT|JOIN|LEFT|INNER|CROSS|"
                       r"NATURAL|ON|HAVING|WINDOW|OFFSET)\b)", re.I)


def _alias_subqueries(sql: str) -> str:
    """SQLite takes `FROM (SELECT …)` without a name; PostgreSQL before 16 wants one: `AS _sN`.
    From the last to the first, so that a name put in never moves a subquery still to be seen."""
    starts = [sql.index("(", m.start()) for m in _SUBQUERY.finditer(sql)]
    for n, start in enumerate(reversed(starts), 1):
        depth, i = 0, start
        while i < len(sql):
            ch = sql[i]
            if ch == "'":
                i = sql.find("'", i + 1)
                if i < 0:
                    return sql
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        if not depth and _NO_ALIAS.match(sql, i + 1):
            sql = sql[:i + 1] + f" AS _s{n}" + sql[i + 1:]
    return sql


_INSERT_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\s+INTO\b", re.I)
_RETURNING = re.compile(r"\bRETURNING\b(?![^(]*\))", re.I)


def _insert_or_ignore(sql: str) -> str:
    """INSERT OR IGNORE: a row that would break a UNIQUE or PRIMARY KEY constraint is skipped, which
    is ON CONFLICT DO NOTHING there (before a RETURNING clause)."""
    sql = _INSERT_OR_IGNORE.sub("INSERT INTO", sql).rstrip().rstrip(";")
    returning = list(_RETURNING.finditer(sql))
    if returning:
        at = returning[-1].start()
        return sql[:at] + "ON CONFLICT DO NOTHING " + sql[at:]
    return sql + " ON CONFLICT DO NOTHING"


def _functions(sql: str) -> str:
    if _INSERT_OR_IGNORE.search(sql):
        sql = _insert_or_ignore(sql)
    if "(" in sql and _SUBQUERY.search(sql):
        sql = _alias_subqueries(sql)
    sql = _scalar_min_max(sql)
    lowered = sql.lower()
    for name in ("SUM", "MAX", "MIN"):
        if name.lower() in lowered:
            sql = _calls(sql, name, _aggregate_of_condition(name))
    if "strftime" in sql.lower():
        sql = _calls(sql, "strftime", _strftime)
    if "julianday" in sql.lower():
        sql = _calls(sql, "julianday", _julianday)
    return sql


@lru_cache(maxsize=4096)
def translate(sql: str) -> tuple[str, tuple[str, ...], frozenset[int]]:
    """Long because it is one scanner: `?` → `$1, $2, …` and `:name` → `$n` (the names in order),
    outside quoted strings, quoted names and comments (`::` casts stay); `IN (SELECT value FROM
    json_each(?))` → `= ANY($n)`, whose argument (a JSON array) is passed as a list (the third item
    holds those arguments' positions)."""
    sql = _JSON_IN.sub(lambda m: ("<> ALL(" if m.group(1) else "= ANY(")
                       + m.group(2).replace("?", "\x00").replace(":", "\x01") + ")", sql)
    for pattern, replacement in _JSON_FUNCS:
        sql = pattern.sub(replacement, sql)
    sql = _functions(sql)
    if "sqlite_master" in sql or "PRAGMA" in sql.upper():
        for pattern, replacement in _CATALOG:
            sql = pattern.sub(replacement, sql)
    lists: set[int] = set()
    out: list[str] = []
    names: list[str] = []
    n = 0
    i = 0
    quote: str | None = None
    while i < len(sql):
        ch = sql[i]
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = len(sql) if end < 0 else end
            out.append(sql[i:end])
            i = end
            continue
        elif ch in ("?", "\x00"):
            n += 1
            out.append(f"${n}")
            if ch == "\x00":
                lists.add(n - 1)
            i += 1
            continue
        elif ch == ":" and sql.startswith("::", i):
            out.append("::")
            i += 2
            continue
        elif ch in (":", "\x01") and (match := _NAME.match(sql, i + 1)):
            name = match.group(0)
            if name not in names:
                names.append(name)
            out.append(f"${names.index(name) + 1}")
            if ch == "\x01":
                lists.add(names.index(name))
            i = match.end()
            continue
        out.append(ch)
        i += 1
    return "".join(out), tuple(names), frozenset(lists)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def pg_sql(sql: str) -> str:
    return translate(sql)[0]


def _args(sql: str, params: Params) -> tuple[str, Sequence[Any]]:
    """The statement as PostgreSQL takes it, and its arguments in `$n` order."""
    text, names, lists = translate(sql)
    args = [params[name] for name in names] if isinstance(params, dict) else list(params)
    for i in lists:
        if isinstance(args[i], str):
            args[i] = json.loads(args[i])
    return text, args


def _q(sql: str, params: Params) -> list[Any]:
    text, args = _args(sql, params)
    return [text, *args]


def _text(value: Any) -> str:
    # SQLite's affinity: an int given for a text column is stored as its text.
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bool(value: Any) -> str:
    return "t" if value else "f"


def _truth(text: str) -> int:
    # A comparison or EXISTS read back is 1 or 0, as SQLite gives it.
    return 1 if text == "t" else 0


def _numeric(text: str) -> int | float:
    # SUM/AVG of integers come back as numeric: give ints (or floats) as SQLite does, never Decimal.
    return int(text) if text.lstrip("-").isdigit() else float(text)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("text", schema="pg_catalog", encoder=_text, decoder=str, format="text")
    await conn.set_type_codec("varchar", schema="pg_catalog", encoder=_text, decoder=str, format="text")
    await conn.set_type_codec("int8", schema="pg_catalog", encoder=_int, decoder=int, format="text")
    await conn.set_type_codec("int4", schema="pg_catalog", encoder=_int, decoder=int, format="text")
    await conn.set_type_codec("bool", schema="pg_catalog", encoder=_bool, decoder=_truth, format="text")
    await conn.set_type_codec("numeric", schema="pg_catalog", encoder=str, decoder=_numeric, format="text")


class PgTx(Tx):
    """An open transaction on one pooled connection; callbacks registered here run after COMMIT. A
    `Tx`, as SQLite's: services tell a transaction from the database with isinstance(src, Tx)."""

    def __init__(self, conn: asyncpg.Connection) -> None:  # Tx's own __init__ takes an sqlite3 connection
        self._conn = conn  # type: ignore[assignment]
        self._after_commit: list[Callable[[], None]] = []
        # One statement at a time on the connection: with sqlite3 each call finished before the
        # next began, so services may gather several reads of one transaction.
        self._busy = asyncio.Lock()

    async def execute(self, sql: str, params: Params = ()) -> Result:
        async with self._busy:
            return Result(await self._conn.execute(*_q(sql, params)))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        async with self._busy:
            await self._conn.executemany(pg_sql(sql), [tuple(_args(sql, r)[1]) for r in rows])

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._busy:
            return await self._conn.fetchrow(*_q(sql, params))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._busy:
            return await self._conn.fetch(*_q(sql, params))

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        async with self._busy:
            return await self._conn.fetchval(*_q(sql, params))

    async def insert(self, sql: str, params: Params = ()) -> int:
        async with self._busy:
            value = await self._conn.fetchval(*_q(_returning_id(sql), params))
        return int(value or 0)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)


@lru_cache(maxsize=1024)
def _returning_id(sql: str) -> str:
    stripped = sql.rstrip().rstrip(";")
    return stripped if "RETURNING" in stripped.upper() else stripped + " RETURNING id"


class PgDatabase:
    """The bot's PostgreSQL database (BOT_DATABASE=postgresql://…), same methods as `Database`."""

    def __init__(self, url: str, pool_size: int = 4) -> None:
        self.url = url
        self.path = None  # no file: callers that need one (SQLite backup) must not be used on PG
        self.dialect = "postgresql"
        # Several instances may share this database: no per-process copies of shared state, and
        # rows are claimed so that two instances never take the same one.
        self.shared = True
        self.skip_locked = " FOR UPDATE SKIP LOCKED"
        self._pool: asyncpg.Pool | None = None
        self._pool_size = pool_size
        self._write_lock = asyncio.Lock()
        self.applied: list[str] = []
        self.last_checkpoint: tuple[int, int, int] | None = None

    async def connect(self) -> None:
        self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self._pool_size,
                                               init=_init_connection)
        self.applied = await self.migrate()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def migrate(self) -> list[str]:
        """The same numbered migrations as SQLite, translated (bot/dialect.py), each in one
        transaction; an advisory lock keeps two starting processes from applying one twice."""
        from bot.database import _migrations

        assert self._pool is not None
        applied = []
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(7245001)")
            try:
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                                   " (version BIGINT PRIMARY KEY, name TEXT NOT NULL)")
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, name, sql in _migrations():
                    if version in done:
                        continue
                    log.info("applying migration %s", name)
                    async with conn.transaction():
                        for statement in split_sql(sql):
                            translated = pg_ddl(statement)
                            if translated:
                                await conn.execute(translated)
                        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                           version, name)
                    applied.append(name)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(7245001)")
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgTx]:
        """BEGIN … COMMIT on one pooled connection; rolled back on any exception."""
        assert self._pool is not None, "database not connected"
        async with self._write_lock, self._pool.acquire() as conn:
            tx = PgTx(conn)
            async with conn.transaction():
                yield tx
        for callback in tx._after_commit:
            callback()

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[PgTx]:
        """Long reads from one snapshot (REPEATABLE READ, read only) on a pooled connection; the
        server does the work, so the loop goes on without a thread."""
        assert self._pool is not None, "database not connected"
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield PgTx(conn)

    async def write(self, sql: str, params: Params = ()) -> int:
        """One statement, atomic by itself. Returns the number of rows changed."""
        assert self._pool is not None, "database not connected"
        async with self._write_lock:
            return Result(await self._pool.execute(*_q(sql, params))).rowcount

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        assert self._pool is not None, "database not connected"
        return await self._pool.fetchrow(*_q(sql, params))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        assert self._pool is not None, "database not connected"
        return await self._pool.fetch(*_q(sql, params))

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        assert self._pool is not None, "database not connected"
        return await self._pool.fetchval(*_q(sql, params))
