"""Does every catalog key the code uses resolve in every language? (`branchbot check`, tests/test_i18n.py)

The keys are found statically in the installed packages' source (so it works from a wheel):
- every string literal shaped like a key (`ticket.submit.ask`) must be a key in every locale;
- every f-string key (`f"role.{role}"`) is a pattern: with its values given (`expansions`) each
  value must be a key in every locale, otherwise the pattern must match at least one key in each.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable

PACKAGES = ("bot", "handlers", "schedules")
KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
# Dotted string literals in the code that are not message keys: package and logger names, matplotlib settings.
NOT_KEYS = frozenset({"bot.migrations", "bot.locales", "telegram.ext", "font.family", "axes.unicode_minus"})
PLACEHOLDER = "{}"


@dataclass
class Usage:
    """Keys the code uses, each with where ("package/module.py:line")."""

    literals: dict[str, list[str]] = field(default_factory=dict)
    patterns: dict[str, list[str]] = field(default_factory=dict)  # "role.{}", "join.{}_notice"


def _sources(packages: Sequence[str]) -> Iterator[tuple[str, Traversable]]:
    def walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir() and entry.name != "__pycache__":
                yield from walk(entry, f"{prefix}/{entry.name}")
            elif entry.name.endswith(".py"):
                yield f"{prefix}/{entry.name}", entry

    for package in packages:
        yield from walk(resources.files(package), package)


def _fstring_keys(node: ast.JoinedStr) -> tuple[str, list[str]] | None:
    """An f-string key as a pattern "text{}text", and the keys it can be when each placeholder is an
    inline choice of constants (f"appoint.{'remove' if x else 'make'}"); None if it is no key."""
    parts: list[str] = []
    choices: list[list[str] | None] = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif isinstance(value, ast.FormattedValue):
            parts.append(PLACEHOLDER)
            expr = value.value
            if (isinstance(expr, ast.IfExp) and isinstance(expr.body, ast.Constant)
                    and isinstance(expr.orelse, ast.Constant)):
                choices.append([str(expr.body.value), str(expr.orelse.value)])
            else:
                choices.append(None)
    pattern = "".join(parts)
    if not re.match(r"^[a-z_]+\.", pattern):
        return None
    if any(options is None for options in choices):
        return pattern, []
    keys = [pattern]
    for options in choices:
        assert options is not None
        keys = [k.replace(PLACEHOLDER, option, 1) for k in keys for option in options]
    return pattern, keys


def scan(packages: Sequence[str] = PACKAGES) -> Usage:
    """The literal keys and f-string key patterns in the source of `packages`."""
    usage = Usage()
    for name, source in _sources(packages):
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=name)
        inside_fstring = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
        for node in ast.walk(tree):
            where = f"{name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstring:
                if KEY.match(node.value) and node.value not in NOT_KEYS:
                    usage.literals.setdefault(node.value, []).append(where)
            elif isinstance(node, ast.JoinedStr) and (found := _fstring_keys(node)) is not None:
                pattern, keys = found
                if keys:
                    for key in keys:
                        usage.literals.setdefault(key, []).append(where)
                else:
                    usage.patterns.setdefault(pattern, []).append(where)
    return usage


def problems(catalogs: Mapping[str, Mapping[str, str]], usage: Usage,
             expansions: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """What does not resolve, one line each (empty: everything does)."""
    found = []
    for key, where in sorted(usage.literals.items()):
        for locale, catalog in catalogs.items():
            # A plural key (Formatter.count) lives as key.one / key.other.
            if key not in catalog and f"{key}.other" not in catalog:
                found.append(f"{locale}: missing {key!r} (used at {', '.join(where)})")
    for pattern, where in sorted(usage.patterns.items()):
        values = (expansions or {}).get(pattern)
        for locale, catalog in catalogs.items():
            if values is not None:
                found += [f"{locale}: missing {pattern.replace(PLACEHOLDER, v)!r} (used at {', '.join(where)})"
                          for v in values if pattern.replace(PLACEHOLDER, v) not in catalog]
                continue
            regex = re.compile("^" + r"[a-z0-9_]+".join(map(re.escape, pattern.split(PLACEHOLDER))) + "$")
            if not any(regex.match(key) for key in catalog):
                found.append(f"{locale}: no key matches {pattern!r} (used at {', '.join(where)})")
    return found
