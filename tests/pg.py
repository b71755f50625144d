"""The test suite on PostgreSQL: `BOT_TEST_BACKEND=postgresql python -m pytest -q`.

One throwaway server per test session, started from the machine's PostgreSQL binaries (as the
unprivileged user `postgres` when run as root), listening only on a Unix socket in a temporary
directory, with fsync off (it is thrown away). The migrations run once into a template database; each
test's database file name maps to a fresh `CREATE DATABASE … TEMPLATE`, which is a file copy.
Without PostgreSQL the session is skipped with one line, and under CI=true that is a failure."""

from __future__ import annotations

import asyncio
import atexit
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from bot.pgbackup import run_async

BACKEND = os.environ.get("BOT_TEST_BACKEND", "sqlite").lower()
ON_PG = BACKEND in ("postgresql", "postgres", "pg")
TEMPLATE = "bot_template"


def _bindir() -> Path | None:
    for candidate in [os.environ.get("PG_BINDIR", ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]:
        if candidate and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def missing_reason() -> str | None:
    """Why the PostgreSQL run cannot happen here, or None when it can."""
    if _bindir() is None:
        return "PostgreSQL tests skipped: no pg_ctl/initdb found (install postgresql or set PG_BINDIR)"
    return None


class Server:
    """A PostgreSQL cluster in a temporary directory, stopped at exit."""

    def __init__(self) -> None:
        bindir = _bindir()
        assert bindir is not None, missing_reason()
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="botpg-"))
        self.data = self.dir / "data"
        self.user: str | None = "postgres" if os.geteuid() == 0 else None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        options = (f"-k {self.dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off"
                   " -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        atexit.register(self.stop)
        self._count = 0
        self._lock = threading.Lock()
        self._names = threading.Lock()
        self._made: dict[str, str] = {}
        run_async(self._template())
        self._spares = _Spares(self)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.dir)

    def url(self, name: str) -> str:
        return f"postgresql://postgres@/{name}?host={self.dir}"

    async def _template(self) -> None:
        import asyncpg

        from bot.database_pg import PgDatabase

        admin = await asyncpg.connect(self.url("postgres"))
        try:
            await admin.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await admin.close()
        db = PgDatabase(self.url(TEMPLATE))
        await db.connect()
        await db.close()

    async def _create(self, name: str, template: str) -> None:
        import asyncpg

        admin = await asyncpg.connect(self.url("postgres"))
        try:
            await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        finally:
            await admin.close()

    def fresh(self, key: str, migrated: bool = True) -> str:
        """The URL of this test's database (the same for the same file path: restarts reopen it)."""
        with self._lock:
            if key in self._made:
                return self._made[key]
            if migrated:
                name = self._spares.take(TEMPLATE)
            else:
                name = self._name()
                run_async(self._create(name, "template0"))
            self._made[key] = self.url(name)
            return self._made[key]

    def _name(self) -> str:
        with self._names:  # not self._lock: the spares' thread names databases while fresh() waits
            self._count += 1
            return f"t{os.getpid()}_{self._count}"

    def clone(self, source_key: str, target_key: str) -> None:
        """Make the target's database a copy of the source's (the source closed, and unchanged since
        its first copy: the copies are made ahead, see _Spares)."""
        source = _db_name(self._made[source_key])
        with self._lock:
            target = _db_name(self._made[target_key]) if target_key in self._made else self._name()
            self._made[target_key] = self.url(target)
        spare = self._spares.take(source)

        async def run() -> None:
            import asyncpg

            admin = await asyncpg.connect(self.url("postgres"))
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")
                await admin.execute(f"ALTER DATABASE {spare} RENAME TO {target}")
            finally:
                await admin.close()

        run_async(run())

    def stop(self) -> None:
        self._spares.stop()
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _db_name(url: str) -> str:
    return url.split("@/", 1)[1].split("?")[0]


class _Spares:
    """Copies of template databases made ahead on a thread of their own, so that a test finds its
    fresh database ready instead of waiting for CREATE DATABASE (a third of a second, most of a
    short test's time). Each template asked for once is kept AHEAD copies ahead."""

    AHEAD = 3

    def __init__(self, server: Server) -> None:
        self._server = server
        self._cond = threading.Condition()
        self._ready: dict[str, list[str]] = {}
        self._error: BaseException | None = None
        self._stopped = False
        self._thread = threading.Thread(target=lambda: asyncio.run(self._fill()), daemon=True,
                                        name="pg-spares")
        self._thread.start()

    def take(self, template: str) -> str:
        """A new database, a copy of `template` (the first copy of a template is waited for)."""
        with self._cond:
            ready = self._ready.setdefault(template, [])
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: ready or self._error, timeout=300):
                raise TimeoutError(f"no copy of {template} made within 300 s")
            if self._error is not None:
                raise self._error
            return ready.pop(0)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def _wanted(self) -> str | None:
        short = [t for t, ready in self._ready.items() if len(ready) < self.AHEAD]
        return min(short, key=lambda t: len(self._ready[t])) if short else None

    async def _fill(self) -> None:
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._stopped or self._wanted() is not None)
                    if self._stopped:
                        return
                    template = self._wanted()
                assert template is not None
                name = self._server._name()
                await self._server._create(name, template)
                with self._cond:
                    self._ready[template].append(name)
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the tests waiting in take()
            with self._cond:
                self._error = exc
                self._cond.notify_all()




_server: Server | None = None


def server() -> Server:
    global _server
    if _server is None:
        _server = Server()
    return _server


def database_for(path: Path | str) -> Path | str:
    """What a test that asked for this SQLite file gets on the selected backend (a database URL, say
    a restarted bot's `settings.database`, is already that)."""
    if not ON_PG or str(path).startswith(("postgresql://", "postgres://")):
        return path
    return server().fresh(str(path))


def env_database(target: Path | str) -> str:
    """BOT_DATABASE for a command-line process of this test: its database on the selected backend
    (the same one the test's own Core uses)."""
    return str(database_for(target))


def copy_database(source: Path, target: Path) -> None:
    """A test's database copied over another's: the SQLite file, or on PostgreSQL a CREATE DATABASE
    from the source as its template."""
    if ON_PG:
        server().clone(str(source), str(target))
    else:
        shutil.copyfile(source, target)
