"""Operations, end to end: `/healthz` and `/metrics` of the running bot (`run --health`), webhook
mode against the fake Bot API (`run --webhook … --listen …`), and the log lines (`BOT_LOG_FORMAT`):
the update and chat on each line of an update's handling, and never a token."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botprocess import BotProcess
from pg import env_database
from prometheus_client.parser import text_string_to_metric_families

from bench.fakebotapi import TOKEN, FakeBotApi
from bot import ops
from bot.app import build_application, start_application, start_webhook_application
from bot.clock import SettableClock
from bot.logs import REDACTED, make_handler
from conftest import BotRunner
from schedules import delivery

ROOT = Path(__file__).resolve().parent.parent
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class OpsRunner(BotRunner):
    """The bot with its operations server on a free port, as `run --health 127.0.0.1:PORT` starts it
    (and, given a webhook, as `run --webhook URL --listen` does, on the same server)."""

    def __init__(self, fake: FakeBotApi, database: Path, clock: SettableClock,
                 webhook: ops.Webhook | None = None) -> None:
        super().__init__(fake, database, clock)
        self.webhook = webhook
        self.site: ops.OpsSite | None = None

    async def start(self) -> None:
        self.app = build_application(self.settings, self.clock, delivery_limits=self.limits)
        listen = "127.0.0.1:0" if self.webhook else None
        [self.site] = ops.attach(self.app, health="127.0.0.1:0", listen=listen, webhook=self.webhook)
        if self.webhook is not None:
            await start_webhook_application(self.app, self.webhook)
        else:
            await start_application(self.app, poll_timeout=1)

    def url(self, path: str) -> str:
        assert self.site is not None
        return f"http://127.0.0.1:{self.site.port}{path}"


async def health(http: aiohttp.ClientSession, runner: OpsRunner) -> tuple[int, dict[str, Any]]:
    async with http.get(runner.url("/healthz")) as response:
        return response.status, await response.json()


async def metrics(http: aiohttp.ClientSession, runner: OpsRunner) -> Samples:
    async with http.get(runner.url("/metrics")) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def until(check: Callable[[], Any], what: str, timeout: float = 15.0) -> None:
    """Wait for a condition that depends on real time (the JobQueue's first run), polling."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def ops_bot(fake: FakeBotApi, tmp_path: Path, clock: SettableClock) -> Any:
    runner = OpsRunner(fake, tmp_path / "bot.sqlite3", clock)
    await runner.start()
    await runner.load_orgs()
    yield runner
    await runner.stop()


async def test_health_and_metrics_follow_updates_sends_and_jobs(ops_bot: OpsRunner, fake: FakeBotApi) -> None:
    async with aiohttp.ClientSession() as http:
        status, body = await health(http, ops_bot)
        assert status == 200
        assert body == {"status": "ok", "database": True, "mode": "polling", "last_update_age_seconds": None,
                        "outbox_depth": 0}

        fake.user(2001, first_name="老张").send("/help")
        await fake.wait_message(2001)
        await ops_bot.idle()
        status, body = await health(http, ops_bot)
        assert status == 200 and body["last_update_age_seconds"] >= 0
        seen = await metrics(http, ops_bot)
        assert value(seen, "bot_updates_total", type="message") == 1
        assert value(seen, "bot_handler_seconds_count", type="message") == 1
        assert value(seen, "bot_handler_seconds_bucket", type="message", le="+Inf") == 1
        assert value(seen, "bot_last_update_age_seconds") >= 0
        assert ("process_resident_memory_bytes", frozenset()) in seen

        # Outbox depth is read from the database at each scrape: rows queued while delivery is stopped.
        await delivery.stop(ops_bot.app)  # type: ignore[arg-type]
        chats = {"ok": 3001, "blocked": 3002, "429": 3003, "400": 3004, "500": 3005}
        for chat in chats.values():
            fake.user(chat)
        async with ops_bot.core.db.transaction() as tx:
            for chat in chats.values():
                await ops_bot.core.outbox.send_text(tx, key=f"ops:{chat}", chat_id=chat, text="通知",
                                                    purpose="test/ops")
        seen = await metrics(http, ops_bot)
        assert value(seen, "bot_outbox_depth", kind="test/ops") == 5
        assert value(seen, "bot_database_up") == 1
        assert (await health(http, ops_bot))[1]["outbox_depth"] == 5

        # Each outcome of a send is counted by kind.
        fake.block(chats["blocked"])
        fake.fail_next(429, method="sendMessage", chat_id=chats["429"])
        fake.fail_next(400, method="sendMessage", chat_id=chats["400"], description="Bad Request: chat not found")
        fake.fail_next(500, method="sendMessage", chat_id=chats["500"])
        await delivery.start(ops_bot.app)  # type: ignore[arg-type]
        await ops_bot.delivery_idle()
        seen = await metrics(http, ops_bot)
        assert value(seen, "bot_outbox_sent_total", kind="test/ops") == 3  # ok, 429 then sent, 500 then sent
        assert value(seen, "bot_outbox_429_total", kind="test/ops") == 1
        assert value(seen, "bot_outbox_blocked_total", kind="test/ops") == 1
        assert value(seen, "bot_outbox_failures_total", kind="test/ops", final="true") == 1
        assert value(seen, "bot_outbox_failures_total", kind="test/ops", final="false") == 1
        assert value(seen, "bot_outbox_depth", kind="test/ops") == 0  # emptied: 0, not gone
        assert value(seen, "bot_outbox_oldest_due_seconds") == 0
        # Every Bot API call, the direct reply to /help included, by method and outcome.
        assert value(seen, "bot_api_requests_total", method="sendMessage", outcome="200") == 1 + 3
        for outcome in ("429", "400", "403", "500"):
            assert value(seen, "bot_api_requests_total", method="sendMessage", outcome=outcome) == 1, outcome

        # Periodic jobs run on the JobQueue's real timer (first run a second after start-up).
        async def tickets_job_ran() -> bool:
            return value(await metrics(http, ops_bot), "bot_job_lag_seconds_count", job="tickets") >= 1
        await until(tickets_job_ran, "the tickets job's first run")
        seen = await metrics(http, ops_bot)
        assert value(seen, "bot_job_last_lag_seconds", job="tickets") >= 0


async def test_healthz_is_503_while_the_database_is_unreachable(ops_bot: OpsRunner) -> None:
    await delivery.stop(ops_bot.app)  # type: ignore[arg-type]  # it would read the closed database
    await ops_bot.core.db.close()
    closed = True
    try:
        async with aiohttp.ClientSession() as http:
            status, body = await health(http, ops_bot)
            assert status == 503
            assert body["status"] == "unavailable" and body["database"] is False and body["outbox_depth"] is None
            assert value(await metrics(http, ops_bot), "bot_database_up") == 0  # the rest is still served
            await ops_bot.core.db.connect()
            closed = False
            assert (await health(http, ops_bot))[0] == 200
    finally:
        if closed:  # the bot's shutdown closes it
            await ops_bot.core.db.connect()


async def test_webhook_mode_handles_only_requests_with_the_secret(fake: FakeBotApi, tmp_path: Path,
                                                                  clock: SettableClock) -> None:
    hook = ops.Webhook("https://bot.example.org/tg/hook")
    runner = OpsRunner(fake, tmp_path / "bot.sqlite3", clock, webhook=hook)
    await runner.start()
    try:
        assert fake.webhook == {"url": hook.url, "secret_token": hook.secret}
        assert not fake.calls_to("getUpdates")  # no polling in webhook mode
        secret = {ops.SECRET_HEADER: fake.webhook["secret_token"]}
        person = fake.user(2003, first_name="李四")
        async with aiohttp.ClientSession() as http:
            person.send("/help")
            [update] = fake.take_updates()  # what Telegram posts to the webhook
            async with http.post(runner.url("/tg/hook"), json=update, headers=secret) as response:
                assert response.status == 200
            await fake.wait_message(2003)

            person.send("/help")
            [forged] = fake.take_updates()
            for headers in ({ops.SECRET_HEADER: "wrong"}, {}):
                async with http.post(runner.url("/tg/hook"), json=forged, headers=headers) as response:
                    assert response.status == 403
            async with http.post(runner.url("/tg/hook"), data=b"not json", headers=secret) as response:
                assert response.status == 400
            assert runner.app is not None
            await asyncio.wait_for(runner.app.update_queue.join(), 10)
            await runner.delivery_idle()
            assert len(fake.history(2003)) == 1  # only the update with the secret was answered
            seen = await metrics(http, runner)  # the same server serves the health endpoints
            assert value(seen, "bot_updates_total", type="message") == 1
            assert value(seen, "bot_webhook_requests_total", outcome="ok") == 1
            assert value(seen, "bot_webhook_requests_total", outcome="forbidden") == 2
            assert value(seen, "bot_webhook_requests_total", outcome="bad") == 1
            status, body = await health(http, runner)
            assert status == 200 and body["mode"] == "webhook"
    finally:
        await runner.stop()
    assert not hook.accepting  # stopped: what Telegram posts now gets 503 and is sent again later


def test_webhook_option_errors() -> None:
    with pytest.raises(ValueError, match="https://"):
        ops.Webhook("ftp://bot.example.org/hook")
    with pytest.raises(ValueError, match="health"):
        ops.Webhook("https://bot.example.org/metrics")
    assert ops.Webhook("https://bot.example.org").path == "/"
    with pytest.raises(ValueError, match="--listen"):
        ops.attach(None, webhook=ops.Webhook("https://bot.example.org/hook"))  # type: ignore[arg-type]


# --- logs ---------------------------------------------------------------------------------------

@pytest.fixture
def captured() -> Any:
    """Log lines of both formats from the root logger (what `setup` installs), INFO and up."""
    streams = {fmt: io.StringIO() for fmt in ("json", "text")}
    handlers = [make_handler(fmt, [TOKEN], stream) for fmt, stream in streams.items()]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    yield streams
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


async def test_lines_logged_while_handling_an_update_carry_its_ids(bot: BotRunner, fake: FakeBotApi,
                                                                   captured: dict[str, io.StringIO]) -> None:
    person = fake.user(2002, first_name="赵六")
    update = person.block()  # the bot logs that the person blocked it, while handling this update
    await bot.idle()
    logging.getLogger("test.ops").info("after the update")
    lines = [json.loads(line) for line in captured["json"].getvalue().splitlines()]
    [blocked] = [line for line in lines if "blocked the bot" in line["message"]]
    assert blocked["update_id"] == update["update_id"] and blocked["chat_id"] == 2002
    assert blocked["level"] == "INFO" and blocked["logger"] == "handlers.system"
    assert datetime.fromisoformat(blocked["time"]).tzinfo is not None
    [after] = [line for line in lines if line["message"] == "after the update"]
    assert "update_id" not in after and "chat_id" not in after  # outside the handling: none
    text = next(line for line in captured["text"].getvalue().splitlines() if "blocked the bot" in line)
    assert f"[update {update['update_id']} chat 2002]" in text


def test_a_token_never_reaches_a_log_line(captured: dict[str, io.StringIO]) -> None:
    log = logging.getLogger("test.ops")
    log.warning("request to %s failed", f"http://127.0.0.1:8081/bot{TOKEN}/getMe")
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/sendMessage: 502 Bad Gateway")
    except RuntimeError:
        log.exception("send failed")
    other = "5000000001:AAE" + "x" * 32  # another bot's token, not the configured one
    log.warning("unknown token %s", other)
    for fmt, stream in captured.items():
        out = stream.getvalue()
        assert TOKEN not in out and other not in out, fmt
        assert out.count(REDACTED) >= 3 and "/sendMessage: 502 Bad Gateway" in out and "/getMe" in out, fmt
        assert "Traceback" in out, fmt
    exc_line = next(json.loads(line) for line in captured["json"].getvalue().splitlines() if "send failed" in line)
    assert f"bot{REDACTED}/sendMessage" in exc_line["exc"]


# --- the command line, as a process ---------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_webhook_process(fake: FakeBotApi, tmp_path: Path, address: str) -> BotProcess:
    """`python -m bot run --webhook … --listen ADDR --health ADDR` with JSON logs, against the fake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_TOKEN=TOKEN, BOT_API_URL=fake.base_url, BOT_FILE_URL=fake.base_file_url,
               BOT_DATABASE=env_database(tmp_path / "bot.sqlite3"), BOT_LOG_FORMAT="json",
               BOT_WEBHOOK_SECRET="s3cret-for-tests", PYTHONPATH=str(ROOT))
    return await BotProcess.start(["run", "--webhook", "https://bot.example.org/hook", "--listen", address,
                                   "--health", address], env, tmp_path)


async def test_run_webhook_as_a_process_with_json_logs(fake: FakeBotApi, tmp_path: Path) -> None:
    """`python -m bot run --webhook URL --listen ADDR --health ADDR` with BOT_LOG_FORMAT=json: sets the
    webhook, answers what is posted with the secret, logs JSON lines without the token, stops on SIGTERM."""
    address = f"127.0.0.1:{free_port()}"
    bot = await start_webhook_process(fake, tmp_path, address)
    try:
        await bot.step("start-up until setWebhook", fake.wait_calls("setWebhook", timeout=60))
        assert fake.webhook == {"url": "https://bot.example.org/hook", "secret_token": "s3cret-for-tests"}
        fake.user(2004).send("/help")
        [update] = fake.take_updates()
        async with aiohttp.ClientSession() as http:
            response = await bot.step("webhook POST", http.post(f"http://{address}/hook", json=update,
                                                                headers={ops.SECRET_HEADER: "s3cret-for-tests"}))
            response.release()
            assert response.status == 200
            await bot.step("reply", fake.wait_message(2004, timeout=30))
            async with http.get(f"http://{address}/healthz") as response:
                assert response.status == 200 and (await response.json())["mode"] == "webhook"
    finally:
        await bot.stop(60)
    bot.assert_stopped()
    stderr = bot.stderr.decode()
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert any("webhook set" in line["message"] for line in lines)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert TOKEN not in stderr


async def test_sigterm_during_start_up_stops_the_webhook_process(fake: FakeBotApi, tmp_path: Path) -> None:
    """SIGTERM while `run --webhook` is still starting (here: setWebhook answered 502, retried with
    backoff) stops it at once, with code 0: the start-up is cancelled where it waits, not finished first."""
    fake.storm(600, status=502, methods=["setWebhook"])
    address = f"127.0.0.1:{free_port()}"
    bot = await start_webhook_process(fake, tmp_path, address)
    try:
        await bot.step("first setWebhook (refused)", fake.wait_for(lambda: fake.stats.by_method["setWebhook"] >= 1,
                                                                   timeout=60, message="no setWebhook call"))
    finally:
        await bot.stop(30)
    bot.assert_stopped()
    messages = [json.loads(line)["message"] for line in bot.stderr.decode().splitlines()]
    assert "stopping during start-up" in messages, messages
    assert fake.webhook is None


async def test_run_refuses_webhook_options_that_do_not_fit(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_TOKEN=TOKEN, BOT_DATABASE=env_database(tmp_path / "bot.sqlite3"), PYTHONPATH=str(ROOT))
    for args, message in ((["--listen", "127.0.0.1:1"], "--listen is for webhook mode"),
                          (["--webhook", "https://x.org/h"], "--webhook needs --listen"),
                          (["--webhook", "https://x.org/h", "--listen", "nowhere"], "--listen expects HOST:PORT")):
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", *args, cwd=tmp_path, env=env,
                                                    stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 2 and message in stderr.decode(), stderr.decode()
