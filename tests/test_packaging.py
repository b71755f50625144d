"""The package as installed: every package directory is in the wheel's list, the catalogs and
migrations load through importlib.resources, and the command line's own checks work."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

from bot.i18n import LOCALES_DIR

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_directory_is_listed_for_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {".".join(init.parent.relative_to(ROOT).parts) for top in ("bot", "handlers", "schedules", "bench")
               for init in (ROOT / top).rglob("__init__.py")}
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert config["package-dir"]["bot.locales"] == "locales"
    assert "bot.locales" in listed


def test_catalogs_and_migrations_are_package_resources() -> None:
    assert LOCALES_DIR == resources.files("bot.locales")
    assert {entry.name for entry in LOCALES_DIR.iterdir() if entry.is_dir()} >= {"zh_CN", "en"}
    assert any(entry.name.endswith(".sql") for entry in resources.files("bot.migrations").iterdir())


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATABASE=str(tmp_path / "fresh.sqlite3"), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def test_check_finds_every_key_in_both_languages(tmp_path: Path) -> None:
    result = cli(tmp_path, "check")
    assert result.returncode == 0, result.stderr
    assert "all found in every language" in result.stdout


def test_db_migrate_creates_a_fresh_database_then_has_nothing_to_do(tmp_path: Path) -> None:
    first = cli(tmp_path, "db", "migrate")
    assert first.returncode == 0, first.stderr
    assert "001_core.sql" in first.stdout
    again = cli(tmp_path, "db", "migrate")
    assert again.returncode == 0 and "nothing to apply" in again.stdout
    assert (tmp_path / "fresh.sqlite3").exists()


def test_help_names_the_console_script(tmp_path: Path) -> None:
    result = cli(tmp_path, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: branchbot")
    for command in ("run", "orgs", "invite", "check", "db"):
        assert command in result.stdout
