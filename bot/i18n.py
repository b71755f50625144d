"""Message catalogs: locales/<locale>/*.yaml, merged per locale; keys are dotted paths."""

from __future__ import annotations

import logging
import string
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml

from bot.config import SUPPORTED_LOCALES

log = logging.getLogger(__name__)

# locales/ at the top of the repository, shipped in the wheel as the package `bot.locales`
# (pyproject.toml maps one to the other), so an installed bot finds its texts.
LOCALES_DIR: Traversable = resources.files("bot.locales")


def _flatten(prefix: str, node: Any, out: dict[str, str], source: Traversable) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out, source)
    elif isinstance(node, str):
        if prefix in out:
            raise ValueError(f"{source}: key {prefix!r} defined twice")
        out[prefix] = node
    else:
        raise ValueError(f"{source}: {prefix!r} must be text, not {type(node).__name__}")


def load_catalog(locale: str, root: Traversable = LOCALES_DIR) -> dict[str, str]:
    catalog: dict[str, str] = {}
    folder = root / locale
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name) \
        if folder.is_dir() else []
    for path in files:
        _flatten("", yaml.safe_load(path.read_text(encoding="utf-8")) or {}, catalog, path)
    return catalog


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def language_for(chosen: str | None, telegram_code: str | None, default: str) -> str:
    """The stored choice, else Telegram's language_code, else the default."""
    if chosen in SUPPORTED_LOCALES:
        return chosen
    if telegram_code:
        code = telegram_code.lower()
        if code.startswith("zh"):
            return "zh_CN"
        if code.startswith("en"):
            return "en"
    return default


class Translator:
    """Renders catalog texts; a missing key falls back to the default locale, then to the key."""

    def __init__(self, default: str = "zh_CN", root: Traversable = LOCALES_DIR) -> None:
        self.default = default
        self.catalogs = {locale: load_catalog(locale, root) for locale in SUPPORTED_LOCALES}

    def __call__(self, lang: str | None, key: str, /, **values: Any) -> str:
        catalog = self.catalogs.get(lang or self.default) or self.catalogs[self.default]
        text = catalog.get(key)
        if text is None:
            text = self.catalogs[self.default].get(key)
            if text is None:
                log.error("missing text %r", key)
                return key
        return text.format(**values) if values else text

    def all_languages(self, key: str) -> set[str]:
        """The text of `key` in every locale (to match reply-keyboard buttons)."""
        return {cat[key] for cat in self.catalogs.values() if key in cat}
