"""Several bot instances on one PostgreSQL database, as issue 11 deploys them: the harness of
tests/test_cluster.py (no tests here).

    Telegram (this process: FakeBotApi builds the updates, `Cluster.post` posts them)
        │  POST /telegram, X-Telegram-Bot-Api-Secret-Token
        ▼
    round-robin proxy (aiohttp, this process) ──▶ 3 × `python -m bot run --webhook … --listen …`
                                                       │ (subprocesses, sharing one database)
    FakeBotApi (Telegram's limits enforced) ◀──────────┘ sendMessage, editMessageText, …

The database is a fresh one on the throwaway PostgreSQL of tests/pg.py. An instance is killed with
SIGKILL, as a crash or the OOM killer would; the proxy then skips it (connection refused), as a load
balancer's health check would, and the poster retries an update whose request failed, as Telegram
retries a webhook delivery that got no 200."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import os
import signal
import socket
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pg import server

from bench.fakebotapi import SEND_METHODS, TOKEN, Call, FakeBotApi
from bot.clock import Clock
from bot.config import Settings
from bot.core import Core

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_URL = "https://bot.example/telegram"
WEBHOOK_PATH = "/telegram"
SECRET = "cluster-test-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
PR_SET_PDEATHSIG = 1  # prctl(2)
START_TIMEOUT = 120.0  # seconds for an instance to answer /healthz (imports on a loaded 2-core machine)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it when the test process dies, however it dies, so
    that no instance outlives an interrupted run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Instance:
    """One `python -m bot run --webhook` process."""

    index: int
    port: int
    health_port: int
    log: Path
    process: asyncio.subprocess.Process | None = None
    killed_at: float | None = None  # monotonic time of the SIGKILL

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None and self.killed_at is None


@dataclass
class ProxyStats:
    forwarded: Counter[int] = field(default_factory=Counter)  # instance index -> requests answered
    refused: int = 0   # connection refused: skipped to the next instance
    failed: int = 0    # the instance died during the request: 502 to the poster


class Proxy:
    """A round-robin HTTP load balancer for the webhook path: each request goes to the next
    instance; an instance that refuses the connection is skipped for the next one."""

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances
        self.port = free_port()
        self.stats = ProxyStats()
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                              timeout=aiohttp.ClientTimeout(total=30))

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in (SECRET_HEADER.lower(), "content-type")}
        assert self._session is not None
        for _ in range(len(self.instances)):
            target = self.instances[next(self._turn) % len(self.instances)]
            try:
                async with self._session.post(f"http://{target.address}{WEBHOOK_PATH}", data=body,
                                              headers=headers) as response:
                    text = await response.text()
                    self.stats.forwarded[target.index] += 1
                    return web.Response(status=response.status, text=text)
            except aiohttp.ClientConnectorError:
                self.stats.refused += 1  # nobody listens there (dead): the next one
            except (aiohttp.ClientError, TimeoutError):
                self.stats.failed += 1  # died mid-request: the sender cannot know whether it was kept
                return web.Response(status=502, text="502: upstream went away")
        return web.Response(status=502, text="502: no instance")


@dataclass(frozen=True)
class Sent:
    """One call the fake server answered, with the server's time when it answered (monotonic; the
    time its rate windows count)."""

    at: float
    call: Call

    @property
    def chat_id(self) -> Any:
        return self.call.chat_id


@dataclass
class Sends:
    """What the fake server answered the whole deployment, and the limits it enforced."""

    calls: list[Sent]
    limit_hits: int
    rate_limited: int

    def ok_sends(self) -> list[Sent]:
        return [c for c in self.calls if c.call.ok and c.call.method in SEND_METHODS]

    def refused(self) -> list[str]:
        """Each send refused with 429 for a limit, with what the fake had accepted before it."""
        ok = self.ok_sends()
        out = []
        for c in self.calls:
            if c.call.status != 429:
                continue
            chat = c.chat_id
            same_chat = [o.at for o in ok if o.chat_id == chat and c.at - 60.0 <= o.at < c.at]
            last_second = sum(1 for o in ok if c.at - 1.0 < o.at < c.at)
            gap = c.at - max(same_chat) if same_chat else None
            out.append(f"{c.call.method} to {chat}: {last_second} sends in the second before;"
                       f" this chat's last send {gap if gap is None else round(gap, 3)} s before"
                       f" ({len(same_chat)} in the minute before)")
        return out

    def worst_second(self) -> int:
        """The most successful sends in any one-second window (sliding)."""
        times = sorted(c.at for c in self.ok_sends())
        window: deque[float] = deque()
        worst = 0
        for at in times:
            window.append(at)
            while window[0] <= at - 1.0:
                window.popleft()
            worst = max(worst, len(window))
        return worst

    def _times_by_chat(self, private: bool) -> list[list[float]]:
        by_chat: dict[int, list[float]] = defaultdict(list)
        for c in self.ok_sends():
            if isinstance(c.chat_id, int) and (c.chat_id > 0) == private:
                by_chat[c.chat_id].append(c.at)
        return [sorted(times) for times in by_chat.values()]

    def closest_pair_per_chat(self) -> float:
        """The shortest time between two successful sends to one private chat (inf: none)."""
        gaps = [b - a for times in self._times_by_chat(True) for a, b in itertools.pairwise(times)]
        return min(gaps, default=float("inf"))

    def worst_group_minute(self) -> int:
        """The most successful sends to one group within any 60 seconds."""
        worst = 0
        for times in self._times_by_chat(False):
            worst = max([worst, *(sum(1 for t in times if a <= t < a + 60.0) for a in times)])
        return worst


class Cluster:
    """The fake Bot API, a fresh PostgreSQL database, the proxy and `size` instances."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.workdir = workdir
        self.database = server().fresh(f"cluster:{workdir}")
        self.fake = FakeBotApi(auto_chats=True)
        self.instances = [Instance(i, free_port(), free_port(), workdir / f"instance{i}.log") for i in range(size)]
        self.proxy = Proxy(self.instances)
        self.core: Core | None = None
        # Every answer of the fake server with its time (an observer runs as the answer is made).
        self.answered: list[Sent] = []
        self.fake.observers.append(lambda call: self.answered.append(Sent(time.monotonic(), call)))
        self.posted = 0
        self.retries = 0
        self._http: aiohttp.ClientSession | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    async def open(self) -> Core:
        """The fake server, and a Core of this process on the database (to prepare what the test
        needs before the instances start, and to read the results)."""
        await self.fake.start()
        settings = Settings(_env_file=None, token=None, database=self.database,  # type: ignore[call-arg]
                            locale="zh_CN", timezone="Asia/Shanghai")
        self.core = Core.build(settings, clock=Clock())
        await self.core.open()
        return self.core

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
        env.update(BOT_TOKEN=TOKEN, BOT_API_URL=self.fake.base_url, BOT_FILE_URL=self.fake.base_file_url,
                   BOT_DATABASE=self.database, BOT_WEBHOOK_SECRET=SECRET, BOT_LOCALE="zh_CN",
                   BOT_TIMEZONE="Asia/Shanghai", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        return env

    async def start(self) -> None:
        """The proxy and every instance, ready (their /healthz answers 200)."""
        await self.proxy.start()
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                           timeout=aiohttp.ClientTimeout(total=60))
        for instance in self.instances:
            await self._spawn(instance)
        await asyncio.gather(*(self._ready(i) for i in self.instances))

    async def revive(self) -> None:
        """Start again every instance that was killed, as an orchestrator restarts a crashed one."""
        dead = [i for i in self.instances if not i.alive]
        for instance in dead:
            if instance.process is not None:
                await instance.process.wait()
            instance.killed_at = None
            await self._spawn(instance)
        await asyncio.gather(*(self._ready(i) for i in dead))

    async def _spawn(self, instance: Instance) -> None:
        with instance.log.open("ab") as log:
            instance.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "--webhook", WEBHOOK_URL, "--listen", instance.address,
                "--health", f"127.0.0.1:{instance.health_port}", cwd=self.workdir, env=self._env(),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent)

    async def _ready(self, instance: Instance) -> None:
        assert self._http is not None and instance.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if instance.process.returncode is not None:
                raise AssertionError(f"instance {instance.index} exited with {instance.process.returncode}:\n"
                                     f"{self.log_tail(instance)}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with self._http.get(f"http://127.0.0.1:{instance.health_port}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
        raise AssertionError(f"instance {instance.index} not ready in {START_TIMEOUT}s:\n{self.log_tail(instance)}")

    def instance_ids(self) -> dict[str, int]:
        """The running instances by the id they claim work with (hostname:pid, bot/updates.py)."""
        host = socket.gethostname()
        return {f"{host}:{i.process.pid}": i.index for i in self.instances if i.alive and i.process is not None}

    def kill(self, index: int) -> Instance:
        """SIGKILL: no shutdown, no flush, nothing of the process's memory survives."""
        instance = self.instances[index]
        assert instance.process is not None and instance.alive
        os.kill(instance.process.pid, signal.SIGKILL)
        instance.killed_at = time.monotonic()
        return instance

    async def close(self) -> None:
        """Every process ends (SIGTERM, then SIGKILL), the servers stop, the Core closes."""
        for instance in self.instances:
            if instance.process is not None and instance.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    instance.process.send_signal(signal.SIGTERM)
        for instance in self.instances:
            if instance.process is None:
                continue
            try:
                await asyncio.wait_for(instance.process.wait(), 20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    instance.process.kill()
                await instance.process.wait()
        if self._http is not None:
            await self._http.close()
        await self.proxy.stop()
        await self.fake.stop()
        if self.core is not None:
            await self.core.close()

    def log_tail(self, instance: Instance, lines: int = 40) -> str:
        try:
            return "\n".join(instance.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    # --- Telegram's side ---------------------------------------------------------------------------
    def take(self) -> list[dict[str, Any]]:
        """The updates the fake users made since the last call (what Telegram would post)."""
        return self.fake.take_updates()

    async def post(self, update: dict[str, Any], timeout: float = 90.0) -> None:
        """Deliver one update as Telegram does: again and again until an instance answers 200."""
        assert self._http is not None
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with self._http.post(f"http://127.0.0.1:{self.proxy.port}{WEBHOOK_PATH}", json=update,
                                           headers={SECRET_HEADER: SECRET}) as response:
                    if response.status == 200:
                        self.posted += 1
                        return
            if time.monotonic() > deadline:
                raise AssertionError(f"update {update['update_id']} not taken within {timeout}s")
            self.retries += 1
            await asyncio.sleep(0.5)

    async def post_in_order(self, updates: Iterable[dict[str, Any]]) -> None:
        """One chat's updates, each posted once the previous one was taken (answered 200), without
        waiting for the bot's answers: consecutive steps reach different instances."""
        for update in updates:
            await self.post(update)

    def sends(self) -> Sends:
        return Sends(list(self.answered), self.fake.stats.limit_hits, self.fake.stats.rate_limited)

    async def wait(self, predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout}s: {what}")
            await asyncio.sleep(step)
