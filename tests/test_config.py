"""bot.config: settings from the environment, each problem reported on one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No BOT_ variable from the caller's environment and no .env: run in an empty folder."""
    for name in list(os.environ):
        if name.upper().startswith("BOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults() -> None:
    s = load_settings()
    assert s.token is None
    assert s.admins == frozenset()
    assert (s.locale, s.timezone, s.proxy) == ("zh_CN", "Asia/Shanghai", None)
    assert s.api_url == "https://api.telegram.org/bot"
    assert str(s.tz) == "Asia/Shanghai"


@pytest.mark.parametrize(("raw", "expected"), [
    ("1001, 1002", {1001, 1002}),
    ("1001,1002", {1001, 1002}),
    ("1001;1002 ;", {1001, 1002}),
    (" 7 ", {7}),
    ("", set()),
    ("-100123", {-100123}),
])
def test_admins_parse_to_ints(monkeypatch: pytest.MonkeyPatch, raw: str, expected: set[int]) -> None:
    monkeypatch.setenv("BOT_ADMINS", raw)
    admins = load_settings().admins
    assert admins == frozenset(expected)
    assert all(type(a) is int for a in admins)


@pytest.mark.parametrize(("name", "value", "start"), [
    ("BOT_ADMINS", "abc", "BOT_ADMINS: not a Telegram id: abc"),
    ("BOT_ADMINS", "1001, x2", "BOT_ADMINS: not a Telegram id: x2"),
    ("BOT_TIMEZONE", "Mars/Olympus", "BOT_TIMEZONE: unknown time zone 'Mars/Olympus'"),
    ("BOT_TIMEZONE", "../etc/passwd", "BOT_TIMEZONE: unknown time zone"),
    ("BOT_LOCALE", "fr", "BOT_LOCALE: unsupported locale 'fr'"),
    ("BOT_LOCALE", "zh-CN", "BOT_LOCALE: unsupported locale 'zh-CN'"),
    ("BOT_API_URL", "api.telegram.org", "BOT_API_URL: 'api.telegram.org' is not an http(s) URL"),
    ("BOT_PROXY", "127.0.0.1:1080", "BOT_PROXY: '127.0.0.1:1080' is not a proxy URL"),
])
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                                     start: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(start), message
    assert "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_require_token_without_a_token() -> None:
    settings = load_settings()
    with pytest.raises(SettingsError) as info:
        settings.require_token()
    assert str(info.value).startswith("BOT_TOKEN: missing")


def test_require_token_with_a_blank_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "   ")
    with pytest.raises(SettingsError, match=r"^BOT_TOKEN: missing"):
        load_settings().require_token()


def test_require_token_returns_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", " 123:abc ")
    settings = load_settings()
    assert settings.require_token() == "123:abc"
    assert "123:abc" not in repr(settings)  # a secret is not printed with the settings


def test_a_dotenv_file_in_the_working_folder_is_read(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("BOT_LOCALE=en\nBOT_ADMINS=5,6\n", encoding="utf-8")
    settings = load_settings()
    assert (settings.locale, settings.admins) == ("en", frozenset({5, 6}))
    monkeypatch.setenv("BOT_LOCALE", "zh_CN")  # the environment wins over .env
    assert load_settings().locale == "zh_CN"


def test_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_LOCALE", "en")
    assert load_settings(locale="zh_CN").locale == "zh_CN"
    assert isinstance(load_settings(), Settings)


def _run_bot(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("BOT_")}
    # The checkout on the path, as when started from it (cwd is a scratch folder, so that no .env is read).
    clean["PYTHONPATH"] = str(ROOT) + os.pathsep + clean.get("PYTHONPATH", "")
    clean.update(env)
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=clean, capture_output=True,
                          text=True, timeout=120, check=False)


def test_run_without_a_token_exits_2_with_one_line(clean_env: Path) -> None:
    proc = _run_bot(clean_env, "run")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: BOT_TOKEN"), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (clean_env / "data").exists()  # nothing was created before the check


def test_run_with_a_bad_setting_exits_2_with_one_line(clean_env: Path) -> None:
    proc = _run_bot(clean_env, "run", BOT_TOKEN="123:abc", BOT_ADMINS="abc")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == ["error: BOT_ADMINS: not a Telegram id: abc (expected e.g. 1001,1002)"]
