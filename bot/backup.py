"""Backups: `python -m bot backup --out FILE` and `python -m bot restore FILE`.

SQLite: SQLite's online backup API, from a read transaction opened first. In WAL mode that
transaction is a snapshot: the bot keeps writing meanwhile, and the copy holds exactly what was
committed when it began. In the same snapshot every table's rows are counted; the counts go into the
copy (table `backup_manifest`), and a restore checks them against what it finds before it writes
anything, then drops the manifest. A restore writes only into an empty database.

PostgreSQL (BOT_DATABASE=postgresql://…): pg_dump and pg_restore with the same checks
(bot/pgbackup.py); the engine is chosen in one place (`engine`) and the command line does not change.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

MANIFEST = "backup_manifest"
# Rows the migrations themselves write (a fresh `db migrate` has them): not a sign of data.
SCHEMA_TABLES = frozenset({"schema_migrations", "sqlite_sequence"})
SCHEMA_ROWS = {"meta": "key = 'privacy_key'"}


class BackupError(Exception):
    """The backup or restore cannot be made; the message says why, in one line."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    counts: dict[str, int]
    schema_version: int | None
    taken_at: str

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def engine(database: str | os.PathLike[str]) -> str:
    """The backend behind BOT_DATABASE: 'postgresql' (pg_dump, bot/pgbackup.py) or 'sqlite'."""
    text = str(database)
    return "postgresql" if text.startswith(("postgresql://", "postgres://")) else "sqlite"


def sqlite_path(database: str | os.PathLike[str]) -> Path:
    text = str(database)
    return Path(text.removeprefix("sqlite:///")) if text.startswith("sqlite:///") else Path(text)


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in _tables(conn) if t != MANIFEST}


def _version(conn: sqlite3.Connection) -> int | None:
    try:
        return conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
    except sqlite3.OperationalError:
        return None


def backup(database: str | os.PathLike[str], out: Path, pages: int = -1,
           progress: Callable[[int, int, int], object] | None = None) -> BackupReport:
    """Copy the live database to `out` (written beside it, then renamed: a reader never sees half a
    file). `pages` and `progress` are sqlite3's: the copy may go in steps, still one snapshot (on
    PostgreSQL `progress` is called once, when the snapshot is taken)."""
    if engine(database) == "postgresql":
        from bot import pgbackup

        return pgbackup.backup(str(database), out, progress)
    source_path = sqlite_path(database)
    if not source_path.exists():
        raise BackupError(f"{source_path}: no such database")
    if out.resolve() == source_path.resolve():
        raise BackupError(f"{out}: that is the database itself; write the backup to another file")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(source_path, isolation_level=None)
    target = sqlite3.connect(partial, isolation_level=None)
    try:
        source.execute("PRAGMA busy_timeout=10000")
        source.execute("BEGIN")  # the snapshot: counts and pages below are read in it
        try:
            counts = _counts(source)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{source_path}: not an SQLite database ({exc})") from None
        version = _version(source)
        source.backup(target, pages=pages, progress=progress)
        source.execute("COMMIT")
        taken_at = datetime.now(UTC).isoformat(timespec="seconds")
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        # Rows per table; names starting with @ describe the backup itself.
        target.execute(f"CREATE TABLE {MANIFEST} (name TEXT PRIMARY KEY, rows INTEGER NOT NULL, note TEXT)")
        target.executemany(f"INSERT INTO {MANIFEST} VALUES (?, ?, NULL)", counts.items())
        target.executemany(f"INSERT INTO {MANIFEST} VALUES (?, ?, ?)",
                           [("@taken_at", 0, taken_at), ("@version", version or 0, None)])
        _check_integrity(target, partial)
    except BaseException:
        target.close()
        partial.unlink(missing_ok=True)  # never leave half a backup behind
        raise
    finally:
        source.close()
        target.close()
    os.replace(partial, out)
    return BackupReport(out, counts, version, taken_at)


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    result = conn.execute("PRAGMA integrity_check").fetchall()
    if [tuple(r) for r in result] != [("ok",)]:
        raise BackupError(f"{path}: integrity check failed: {result[0][0]}")
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise BackupError(f"{path}: {len(broken)} row(s) point at rows that are missing (first in {broken[0][0]})")


def read_manifest(conn: sqlite3.Connection, path: Path) -> tuple[dict[str, int], int | None, str]:
    if MANIFEST not in _tables(conn):
        raise BackupError(f"{path}: not a backup made by `backup` (no {MANIFEST} table)")
    rows = {name: (n, note) for name, n, note in conn.execute(f"SELECT name, rows, note FROM {MANIFEST}")}
    taken = rows.get("@taken_at", (0, ""))[1] or ""
    version = rows.get("@version", (0, None))[0] or None
    return {name: n for name, (n, _) in rows.items() if not name.startswith("@")}, version, taken


def verify(path: Path) -> BackupReport:
    """Open a backup file and check it: SQLite's integrity check, every reference resolves, and
    every table holds the rows the manifest counted when the backup was taken."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    from bot import pgbackup

    if pgbackup.is_backup(path):
        return pgbackup.verify(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            _check_integrity(conn, path)
            counts, version, taken = read_manifest(conn, path)
            found = _counts(conn)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path}: not an SQLite database ({exc})") from None
    finally:
        conn.close()
    if found != counts:
        differ = sorted(t for t in set(found) | set(counts) if found.get(t) != counts.get(t))
        raise BackupError(f"{path}: rows differ from the backup's own count in {', '.join(differ)}")
    return BackupReport(path, counts, version, taken)


def occupied(database: Path) -> dict[str, int]:
    """Tables of `database` that hold data (an absent or freshly migrated database holds none)."""
    if not database.exists() or database.stat().st_size == 0:
        return {}
    conn = sqlite3.connect(database)
    try:
        counts = _counts(conn)
        for table, schema_rows in SCHEMA_ROWS.items():
            if table in counts:
                counts[table] -= conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {schema_rows}").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{database}: not an SQLite database ({exc})") from None
    finally:
        conn.close()
    return {t: n for t, n in counts.items() if n and t not in SCHEMA_TABLES}


def restore(path: Path, database: str | os.PathLike[str]) -> BackupReport:
    """Check the backup, refuse a target that holds data, then copy it in and drop the manifest.
    Migrations newer than the backup are applied by the caller (Database.connect)."""
    from bot import pgbackup

    if engine(database) == "postgresql" and not pgbackup.is_backup(path):
        verify(path)  # the reason: no such file, not a backup, …
        raise BackupError(f"{path}: a backup of an SQLite database restores only into SQLite (to PostgreSQL:"
                          " restore it to a file, then `python -m bot migrate --from FILE --to URL`)")
    if pgbackup.is_backup(path) != (engine(database) == "postgresql"):
        raise BackupError(f"{path}: a backup of {'a PostgreSQL' if pgbackup.is_backup(path) else 'an SQLite'}"
                          " database restores only into the same kind (SQLite to PostgreSQL: restore it to a file,"
                          " then `python -m bot migrate --from FILE --to URL`)")
    if engine(database) == "postgresql":
        return pgbackup.restore(path, str(database))
    target_path = sqlite_path(database)
    report = verify(path)
    busy = occupied(target_path)
    if busy:
        rows = sum(busy.values())
        raise BackupError(f"{target_path} is not empty ({rows} rows in {len(busy)} tables); a backup is restored"
                          " only into an empty database: move it aside or set BOT_DATABASE to a new file")
    target_path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(target_path, isolation_level=None)
    try:
        source.backup(target)
        target.execute(f"DROP TABLE {MANIFEST}")
        target.execute("PRAGMA journal_mode=WAL")
        _check_integrity(target, target_path)
    finally:
        source.close()
        target.close()
    return report
