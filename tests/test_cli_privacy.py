"""The command line, run as a real process: backup and restore, a person's export and forgetting them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from orgtree import CHAT_TREE, SECRETARY
from pg import env_database

from bot.database import open_database

ROOT = Path(__file__).resolve().parent.parent


def run(tmp_path: Path, *args: str, database: str = "bot.sqlite3") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATABASE=env_database(tmp_path / database), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def loaded(tmp_path: Path) -> None:
    (tmp_path / "orgs.yaml").write_text(CHAT_TREE, encoding="utf-8")
    assert run(tmp_path, "orgs", "import", "orgs.yaml").returncode == 0


def test_backup_then_restore_into_an_empty_database_only(tmp_path: Path) -> None:
    loaded(tmp_path)
    made = run(tmp_path, "backup", "--out", "backups/b1.sqlite3")
    assert made.returncode == 0, made.stderr
    assert "integrity ok" in made.stdout and (tmp_path / "backups" / "b1.sqlite3").is_file()
    restored = run(tmp_path, "restore", "backups/b1.sqlite3", database="new/bot.sqlite3")
    assert restored.returncode == 0, restored.stderr
    assert "restored from backups/b1.sqlite3" in restored.stdout
    exported = run(tmp_path, "orgs", "export", database="new/bot.sqlite3")
    assert exported.stdout == run(tmp_path, "orgs", "export").stdout and "三义村党支部" in exported.stdout
    again = run(tmp_path, "restore", "backups/b1.sqlite3", database="new/bot.sqlite3")
    assert again.returncode == 1 and "is not empty" in again.stderr and "Traceback" not in again.stderr
    missing = run(tmp_path, "restore", "nothing.sqlite3", database="other.sqlite3")
    assert missing.returncode == 1 and "no such file" in missing.stderr


def test_person_export_then_forget(tmp_path: Path) -> None:
    loaded(tmp_path)
    exported = run(tmp_path, "person", "export", str(SECRETARY), "--out", "p.json")
    assert exported.returncode == 0, exported.stderr
    data = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))
    assert data["person"]["name"] == "王建国"
    assert {r["role"] for r in data["roles"]["current"]} == {"secretary", "member"}
    forgot = run(tmp_path, "person", "forget", str(SECRETARY))
    assert forgot.returncode == 0, forgot.stderr
    assert f"person {SECRETARY} forgotten" in forgot.stdout
    run(tmp_path, "person", "export", str(SECRETARY), "--out", "after.json")
    after = json.loads((tmp_path / "after.json").read_text(encoding="utf-8"))
    assert after["person"]["name"] == "" and len(after["roles"]["current"]) == 2  # the roles are the org's count
    log = read(tmp_path, "SELECT action, by_kind, via FROM privacy_log ORDER BY id")
    assert log == [("export", "system", "cli"), ("forget", "system", "cli"), ("export", "system", "cli")]
    assert "王建国" not in "".join(str(r) for r in read(tmp_path, "SELECT * FROM role_audit"))


def read(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of the test's database, on whichever backend it is."""
    async def fetch() -> list[tuple[object, ...]]:
        db = open_database(env_database(tmp_path / "bot.sqlite3"))
        await db.connect()
        try:
            return [tuple(r) for r in await db.fetchall(sql)]
        finally:
            await db.close()

    return asyncio.run(fetch())
