"""Backups of a PostgreSQL database (BOT_DATABASE=postgresql://…) with pg_dump and pg_restore, behind
the same `backup` / `restore` / `verify` as SQLite's (bot/backup.py chooses).

The backup is consistent while the bot writes: one REPEATABLE READ transaction counts every table's
rows and exports its snapshot, and pg_dump reads that same snapshot (`--snapshot`). The file is a tar
of two members: `backup-manifest.json` (row counts, schema version, time, the dump's SHA-256) and
`pg-dump.custom` (pg_dump's custom format), so it is one self-describing file like SQLite's.

A restore checks the file first (the checksum, and pg_restore reads the archive's table of contents),
refuses a target that holds data, then replays the dump through psql in ONE transaction that ends
by counting every table against the manifest: a difference rolls everything back, so the target is
either the backup, counted again, or as it was."""

from __future__ import annotations

import asyncio
import glob
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bot.backup import SCHEMA_ROWS, SCHEMA_TABLES, BackupError, BackupReport

MANIFEST = "backup-manifest.json"
DUMP = "pg-dump.custom"
FORMAT = "branchbot-postgresql-backup/1"


def _tool(name: str) -> str:
    """A PostgreSQL client program: PG_BINDIR, then the newest /usr/lib/postgresql/*/bin, then PATH
    (pg_dump refuses a server newer than itself, so the newest installed one is taken)."""
    for candidate in [os.environ.get("PG_BINDIR", ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]:
        if candidate and (Path(candidate) / name).exists():
            return str(Path(candidate) / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install PostgreSQL's client programs (postgresql-client)")
    return found


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to the end from synchronous code, also when called inside a running loop."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


async def _tables(conn: asyncpg.Connection) -> list[str]:
    return [r[0] for r in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")]


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f'SELECT COUNT(*) FROM "{t}"') for t in await _tables(conn)}


async def _version(conn: asyncpg.Connection) -> int | None:
    if "schema_migrations" not in await _tables(conn):
        return None
    return await conn.fetchval("SELECT MAX(version) FROM schema_migrations")


async def _connect(url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"cannot connect to the database: {exc}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def backup(url: str, out: Path, snapshot_taken: Callable[[int, int, int], object] | None = None) -> BackupReport:
    """pg_dump of the live database into `out` (written beside it, then renamed). `snapshot_taken`
    is called (in another thread) once the rows are counted, before pg_dump starts: what commits
    from then on is not in the backup."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="botbackup-") as work:
        dump = Path(work) / DUMP
        counts, version = run_async(_dump(url, dump, snapshot_taken))
        taken_at = datetime.now(UTC).isoformat(timespec="seconds")
        manifest = {"format": FORMAT, "taken_at": taken_at, "version": version, "counts": counts,
                    "sha256": _sha256(dump)}
        (Path(work) / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        try:
            with tarfile.open(partial, "w") as tar:
                tar.add(Path(work) / MANIFEST, arcname=MANIFEST)
                tar.add(dump, arcname=DUMP)
        except BaseException:
            partial.unlink(missing_ok=True)  # never leave half a backup behind
            raise
    os.replace(partial, out)
    return BackupReport(out, counts, version, taken_at)


async def _dump(url: str, dump: Path,
                snapshot_taken: Callable[[int, int, int], object] | None) -> tuple[dict[str, int], int | None]:
    """Count the rows and run pg_dump, both in one exported snapshot."""
    conn = await _connect(url)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            counts = await _counts(conn)
            version = await _version(conn)
            if snapshot_taken is not None:
                await asyncio.to_thread(snapshot_taken, 0, 0, 0)
            process = await asyncio.create_subprocess_exec(
                _tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                f"--file={dump}", f"--dbname={url}",
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = await process.communicate()
            if process.returncode != 0:
                raise BackupError(f"pg_dump failed: {_first_line(err)}")
    finally:
        await conn.close()
    return counts, version


def _first_line(err: bytes) -> str:
    lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def is_backup(path: Path) -> bool:
    """Whether the file is a PostgreSQL backup made by `backup` (a tar with our manifest)."""
    try:
        if not path.is_file() or not tarfile.is_tarfile(path):
            return False
        with tarfile.open(path) as tar:
            return MANIFEST in tar.getnames()
    except (OSError, tarfile.TarError):
        return False


def _read(path: Path, work: Path) -> tuple[dict[str, Any], Path]:
    """The manifest and the dump, unpacked into `work`, the dump checked against its checksum and
    read by pg_restore (its table of contents)."""
    try:
        with tarfile.open(path) as tar:
            manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
            tar.extract(DUMP, work, filter="data")
    except (OSError, KeyError, ValueError, tarfile.TarError) as exc:
        raise BackupError(f"{path}: not a backup made by `backup` ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: not a backup made by `backup` (format {manifest.get('format')!r})")
    dump = work / DUMP
    if _sha256(dump) != manifest.get("sha256"):
        raise BackupError(f"{path}: the dump is damaged (its checksum differs from the manifest's)")
    listed = subprocess.run([_tool("pg_restore"), "--list", str(dump)], capture_output=True)
    if listed.returncode != 0:
        raise BackupError(f"{path}: pg_restore cannot read the dump: {_first_line(listed.stderr)}")
    return manifest, dump


def verify(path: Path) -> BackupReport:
    with tempfile.TemporaryDirectory(prefix="botrestore-") as work:
        manifest, _ = _read(path, Path(work))
    return BackupReport(path, manifest["counts"], manifest["version"], manifest["taken_at"])


async def occupied(url: str) -> dict[str, int]:
    """Tables of the database that hold data (a new or freshly migrated database holds none)."""
    conn = await _connect(url)
    try:
        counts = await _counts(conn)
        for table, schema_rows in SCHEMA_ROWS.items():
            if table in counts:
                counts[table] -= await conn.fetchval(f"SELECT COUNT(*) FROM {table} WHERE {schema_rows}")
    finally:
        await conn.close()
    return {t: n for t, n in counts.items() if n and t not in SCHEMA_TABLES}


def restore(path: Path, url: str) -> BackupReport:
    """Check the backup, refuse a target that holds data, then replay it in one transaction that
    checks every table's count before it commits."""
    with tempfile.TemporaryDirectory(prefix="botrestore-") as work:
        manifest, dump = _read(path, Path(work))
        busy = run_async(occupied(url))
        if busy:
            rows = sum(busy.values())
            raise BackupError(f"the database is not empty ({rows} rows in {len(busy)} tables); a backup is restored"
                              " only into an empty database: create a new one and set BOT_DATABASE to it")
        _replay(dump, url, manifest["counts"])
    return BackupReport(path, manifest["counts"], manifest["version"], manifest["taken_at"])


# Before the dump's statements: the empty target's own tables go (a freshly migrated target has the
# schema already, maybe a newer one); `restore` runs the migrations the backup lacks afterwards.
_DROP_TABLES = """DO $$DECLARE t record; BEGIN
FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
EXECUTE format('DROP TABLE %I CASCADE', t.tablename); END LOOP; END$$;
"""


def _checks(counts: dict[str, int]) -> str:
    """A statement that fails (and so rolls the restore back) when a table's rows differ."""
    lines = [f"IF (SELECT COUNT(*) FROM public.{json.dumps(t)}) <> {int(n)} THEN "
             f"RAISE EXCEPTION 'rows differ from the backup''s own count in %', {_literal(t)}; END IF;"
             for t, n in sorted(counts.items())]
    return "DO $$BEGIN\n" + "\n".join(lines) + "\nEND$$;\n"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _replay(dump: Path, url: str, counts: dict[str, int]) -> None:
    """pg_restore writes the dump as SQL; psql runs it, between the drop and the checks, as one
    transaction that stops at the first error."""
    with tempfile.TemporaryFile() as errors:
        psql = subprocess.Popen(
            [_tool("psql"), "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
             f"--dbname={url}"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        assert psql.stdin is not None
        writer = subprocess.Popen([_tool("pg_restore"), "--no-owner", "--no-privileges", "--file=-", str(dump)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert writer.stdout is not None
        try:
            psql.stdin.write(_DROP_TABLES.encode())
            while chunk := writer.stdout.read(1 << 16):
                psql.stdin.write(chunk)
            psql.stdin.write(("SET search_path = public;\n" + _checks(counts)).encode())
            psql.stdin.close()
        except BrokenPipeError:  # psql stopped at an error: its message says why
            pass
        writer.wait()
        psql.wait()
        if writer.returncode != 0:
            raise BackupError(f"pg_restore failed: {_first_line(writer.stderr.read())}")  # type: ignore[union-attr]
        if psql.returncode != 0:
            errors.seek(0)
            message = _first_line(errors.read()).split("ERROR:", 1)[-1].strip()
            raise BackupError(f"restore rolled back: {message}")
