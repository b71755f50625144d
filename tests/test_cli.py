"""The command line, run as a real process: org import/export and join links with QR codes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import zxingcpp
from orgtree import CHAT_TREE
from pg import env_database
from PIL import Image

from bot.config import Settings
from bot.core import Core
from bot.services.invites import JoinOutcome

ROOT = Path(__file__).resolve().parent.parent


def run_cli(tmp_path: Path, *args: str, token: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATABASE=env_database(tmp_path / "bot.sqlite3"), PYTHONPATH=str(ROOT))
    if token:
        env["BOT_TOKEN"] = "1:x"
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def core_for(tmp_path: Path) -> Core:
    return Core.build(Settings(token=None, database=env_database(tmp_path / "bot.sqlite3"), _env_file=None))  # type: ignore[call-arg]


async def remember_username(tmp_path: Path, username: str = "branch_test_bot") -> None:
    core = core_for(tmp_path)
    await core.open()
    await core.remember_bot_username(username)
    await core.close()


def test_import_then_export_round_trips(tmp_path: Path) -> None:
    (tmp_path / "orgs.yaml").write_text(CHAT_TREE, encoding="utf-8")
    result = run_cli(tmp_path, "orgs", "import", "orgs.yaml")
    assert result.returncode == 0, result.stderr
    assert "orgs: 4 added" in result.stdout and "roles: 4 granted" in result.stdout
    exported = run_cli(tmp_path, "orgs", "export")
    assert exported.returncode == 0
    assert "三义村党支部" in exported.stdout and "secretary@sanyi" in exported.stdout
    (tmp_path / "again.yaml").write_text(exported.stdout, encoding="utf-8")
    again = run_cli(tmp_path, "orgs", "import", "again.yaml")
    assert "0 added, 0 changed" in again.stdout and "0 granted, 0 revoked" in again.stdout
    assert run_cli(tmp_path, "orgs", "export").stdout == exported.stdout


def test_invite_prints_link_and_writes_a_scannable_qr(tmp_path: Path) -> None:
    (tmp_path / "orgs.yaml").write_text(CHAT_TREE, encoding="utf-8")
    run_cli(tmp_path, "orgs", "import", "orgs.yaml")
    asyncio.run(remember_username(tmp_path))
    result = run_cli(tmp_path, "invite", "sanyi", "--role", "resident", "--qr", "wall.png")
    assert result.returncode == 0, result.stderr
    link, payload = result.stdout.splitlines()[:2]
    assert link == f"https://t.me/branch_test_bot?start={payload}"
    assert payload.startswith("j-") and len(payload) <= 64
    decoded = zxingcpp.read_barcodes(Image.open(tmp_path / "wall.png"))
    assert [code.text for code in decoded] == [link]

    async def follow() -> JoinOutcome:
        core = core_for(tmp_path)
        await core.open()
        try:
            return (await core.invites.join(5555, payload)).outcome
        finally:
            await core.close()

    assert asyncio.run(follow()) is JoinOutcome.joined


def test_revoke_and_reissue(tmp_path: Path) -> None:
    (tmp_path / "orgs.yaml").write_text(CHAT_TREE, encoding="utf-8")
    run_cli(tmp_path, "orgs", "import", "orgs.yaml")
    asyncio.run(remember_username(tmp_path))
    first = run_cli(tmp_path, "invite", "sanyi", "--role", "member").stdout.splitlines()[1]
    second = run_cli(tmp_path, "invite", "sanyi", "--role", "member", "--revoke-old").stdout.splitlines()[1]
    listing = run_cli(tmp_path, "invite", "--list", "sanyi").stdout
    assert f"{first}\tsanyi\tmember\trevoked" in listing
    assert f"{second}\tsanyi\tmember\tactive" in listing
    revoked = run_cli(tmp_path, "invite", "--revoke", second)
    assert revoked.returncode == 0 and f"revoked: {second}" in revoked.stdout
    assert f"{second}\tsanyi\tmember\trevoked" in run_cli(tmp_path, "invite", "--list").stdout


def test_invite_errors_are_one_clear_line(tmp_path: Path) -> None:
    asyncio.run(remember_username(tmp_path))
    unknown = run_cli(tmp_path, "invite", "nowhere", "--role", "member")
    assert unknown.returncode == 1 and "no org with code 'nowhere'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    bad_role = run_cli(tmp_path, "invite", "sanyi", "--role", "king")
    assert bad_role.returncode == 2 and "invalid choice: 'king'" in bad_role.stderr


def test_invite_without_known_username_or_token(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "invite", "sanyi", "--role", "member")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: BOT_TOKEN: missing")
    assert "Traceback" not in result.stderr


def test_ticket_settings_and_category_assignee(tmp_path: Path) -> None:
    (tmp_path / "orgs.yaml").write_text(CHAT_TREE, encoding="utf-8")
    run_cli(tmp_path, "orgs", "import", "orgs.yaml")
    ok = run_cli(tmp_path, "tickets", "settings", "sanyi", "--accept-days", "2", "--answer-days", "7",
                 "--categories", "道路,用水,其他")
    assert ok.returncode == 0, ok.stderr
    assert run_cli(tmp_path, "tickets", "assign", "sanyi", "用水", "1001").returncode == 0
    bad = run_cli(tmp_path, "tickets", "settings", "sanyi", "--accept-days", "0")
    assert bad.returncode == 1 and "between 1 and 60" in bad.stderr
    assert run_cli(tmp_path, "tickets", "settings", "nowhere").returncode == 1

    async def read() -> tuple[list[str], tuple[object, ...], int]:

        core = core_for(tmp_path)
        await core.open()
        try:
            org = await core.orgs.by_code("sanyi")
            assert org is not None
            row = await core.db.fetchone("SELECT accept_days, answer_days FROM ticket_settings WHERE org_id = ?",
                                         (org.id,))
            person = await core.db.fetchval(
                "SELECT person_id FROM category_assignees WHERE org_id = ? AND category = '用水'", (org.id,))
            return await core.tickets.categories(org.id), tuple(row), person
        finally:
            await core.close()

    assert asyncio.run(read()) == (["道路", "用水", "其他"], (2, 7), 1001)
