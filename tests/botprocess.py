"""`python -m bot …` as a process of a test: its output read while it runs, and every wait named.

The output is read as it comes, not at the end: a process whose standard error is a pipe that
nobody reads stops at its first log line past the pipe's 64 KiB, its event loop blocked in the
write, and then answers nothing. Each `step` is timed; a step that fails, or a process that does
not exit after SIGTERM, fails the test with the step's name, every step's time since the start
and the process's last log lines, so a failure seen once in CI says which wait ran out and why."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class BotProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.started = time.monotonic()
        self.steps: list[tuple[str, float]] = []
        self.stdout = bytearray()
        self.stderr = bytearray()
        assert proc.stdout is not None and proc.stderr is not None
        self._readers = [asyncio.create_task(self._read(proc.stdout, self.stdout)),
                         asyncio.create_task(self._read(proc.stderr, self.stderr))]
        self.stop_error: str | None = None

    @classmethod
    async def start(cls, args: list[str], env: Mapping[str, str], cwd: Path) -> BotProcess:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, cwd=cwd, env=dict(env),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    @staticmethod
    async def _read(stream: asyncio.StreamReader, into: bytearray) -> None:
        while chunk := await stream.read(65536):
            into += chunk

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def report(self, lines: int = 40) -> str:
        """The steps' times (seconds since the start) and the process's last log lines."""
        steps = ", ".join(f"{name} at {at:.2f} s" for name, at in self.steps) or "none"
        tail = [line[:1000] for line in self.stderr.decode(errors="replace").splitlines()[-lines:]]
        return (f"steps done: {steps}; now {self.elapsed():.2f} s; exit code {self.proc.returncode}\n"
                "last lines of its standard error:\n" + "\n".join(tail))

    async def step(self, name: str, awaitable: Awaitable[T]) -> T:
        """Await one step of the test; if it fails, say which and where the process was."""
        try:
            result = await awaitable
        except BaseException as exc:
            if isinstance(exc, (AssertionError, TimeoutError, OSError)):
                raise AssertionError(f"step {name!r} failed after {self.elapsed():.2f} s: {type(exc).__name__}: {exc}\n"
                                     f"{self.report()}") from exc
            raise
        self.steps.append((name, self.elapsed()))
        return result

    async def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then wait for the exit and the end of its output. Never raises (it runs in a
        `finally`, where it must not hide the test's own failure): a process still running after
        `timeout` is killed and `stop_error` says so; `assert_stopped` fails the test with it."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        sent = self.elapsed()
        try:
            await asyncio.wait_for(asyncio.gather(self.proc.wait(), *self._readers), timeout)
            self.steps.append(("exit after SIGTERM", self.elapsed()))
        except TimeoutError:
            self.stop_error = (f"still running {timeout:.0f} s after SIGTERM (sent at {sent:.2f} s); killed\n"
                               f"{self.report()}")
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
            for reader in self._readers:
                reader.cancel()
            await asyncio.gather(*self._readers, return_exceptions=True)
        return self.proc.returncode

    def assert_stopped(self) -> None:
        """The process exited by itself after SIGTERM, with code 0."""
        assert self.stop_error is None, self.stop_error
        assert self.proc.returncode == 0, f"exit code {self.proc.returncode}\n{self.report()}"
