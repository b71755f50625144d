"""Message catalogs: every key in every locale with the same placeholders, every key the code uses exists,
and the language a person gets."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from service_fixtures import clock_fixture, core_fixture  # noqa: F401  (the `clock` and `core` fixtures)

from bot import catalog_check
from bot.config import SUPPORTED_LOCALES
from bot.core import Core
from bot.i18n import Translator, language_for, load_catalog, placeholders
from bot.services.invites import DecisionOutcome, JoinOutcome
from bot.services.orgs import ROLES
from bot.services.tickets import DEFAULT_CATEGORIES, RATINGS
from bot.services.tickets import Status as TicketStatus

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for d in ("bot", "handlers", "schedules") for p in (ROOT / d).rglob("*.py"))
CATALOGS = Translator().catalogs
DEFAULT = CATALOGS["zh_CN"]



DECIDED = [o.value for o in DecisionOutcome if o.value in ("approved", "rejected")]
# What an f-string key's placeholder can be, by the text around it ("{}" marks the placeholder).
EXPANSIONS: dict[str, list[str]] = {
    "role.{}": list(ROLES),
    "readable.role_as.{}": list(ROLES),
    "join.{}": [o.value for o in JoinOutcome],
    "join.{}_notice": DECIDED,
    "join.already_{}": DECIDED,
    "join.you_{}": DECIDED,
    "ticket.status.{}": [s.value for s in TicketStatus],
    "ticket.category.{}": list(DEFAULT_CATEGORIES),
    "ticket.rating.{}": list(RATINGS),
    "ticket.reason.{}": ["0", "1", "2"],
    "ticket.view.{}": ["resident", "handler"],
    "ticket.action.{}": ["accepted", "answered", "declined"],
    "ticket.escalated_{}": ["accept", "answer"],
    "ticket.overdue_{}": ["accept", "answer"],
    "ticket.remind_{}": ["accept", "answer"],
    "ticket.button.{}": ["accept", "reply", "ask", "transfer", "decline", "resolve", "history"],
    "ticket.to_resident.{}": ["accepted", "answered", "need_info", "transferred", "declined"],
    "ticket.to_handler.{}": ["new", "info_added", "transferred", "withdrawn", "reopened", "rated_good", "rated_ok"],
    "ticket.event.{}": ["submitted", "accepted", "asked_info", "info_added", "answered", "resolved", "transferred",
                        "declined", "withdrawn", "rated_good", "rated_ok", "rated_bad", "closed_unrated",
                        "escalated", "blocked_submitter", "unblocked_submitter"],
}


def _command_names() -> list[str]:
    from handlers import all_commands

    return [cmd.name for cmd in all_commands()]


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_locale_has_every_key_with_the_same_placeholders(locale: str) -> None:
    assert set(CATALOGS) == set(SUPPORTED_LOCALES)
    catalog = CATALOGS[locale]
    assert len(catalog) > 50
    missing = sorted(set(DEFAULT) - set(catalog))
    extra = sorted(set(catalog) - set(DEFAULT))
    assert missing == [] and extra == [], f"{locale}: missing {missing}, not in zh_CN {extra}"
    differ = {k: (placeholders(DEFAULT[k]), placeholders(catalog[k]))
              for k in DEFAULT if placeholders(DEFAULT[k]) != placeholders(catalog[k])}
    assert differ == {}


def test_placeholders_helper() -> None:
    assert placeholders("{name}（ID {id}）") == {"name", "id"}
    assert placeholders("no fields") == set()
    assert placeholders("{{literal}} {x}") == {"x"}


def test_every_text_formats_with_its_placeholders() -> None:
    for locale, catalog in CATALOGS.items():
        for key, text in catalog.items():
            values = {name: "X" for name in placeholders(text)}
            assert text.format(**values), (locale, key)
            assert text.strip(), (locale, key)


# --- keys used by the code ------------------------------------------------------------------

def _scan() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Literal keys and f-string key patterns found in the source, each with where they are."""
    usage = catalog_check.scan()
    return usage.literals, usage.patterns


def _t_calls() -> list[tuple[str, str, set[str], str]]:
    """(key, where, keyword names) of every t(lang, "literal") / reply(u, c, "literal") call without **values."""
    calls = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            index = {"t": 1, "reply": 2, "answer_callback": 2}.get(name)
            if index is None or len(node.args) <= index or any(k.arg is None for k in node.keywords):
                continue
            arg = node.args[index]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                keys = [arg.value]
            elif isinstance(arg, ast.IfExp) and all(isinstance(x, ast.Constant) for x in (arg.body, arg.orelse)):
                keys = [arg.body.value, arg.orelse.value]  # type: ignore[attr-defined]
            else:
                continue
            kwargs = {k.arg for k in node.keywords if k.arg} - {"reply_markup", "alert"}
            for key in keys:
                calls.append((key, f"{path.relative_to(ROOT)}:{node.lineno}", kwargs, name))
    return calls


def test_the_scan_finds_the_keys_the_code_uses() -> None:
    literals, patterns = _scan()
    # Spot checks that the scan itself works (call forms: t(), reply(), ternaries, menu keys, f-strings).
    for key in ("join.approval_request", "appoint.granted_notice", "error.too_long", "cancel.nothing",
                "fallback.unsupported", "menu.help", "appoint.remove", "appoint.make", "invite.pick_org"):
        assert key in literals, key
    assert "role.{}" in patterns and "join.{}_notice" in patterns and "command.{}" in patterns
    assert len(literals) > 40


def test_every_literal_key_used_in_the_code_exists() -> None:
    literals, _ = _scan()
    # A plural key (Formatter.count) lives as key.one / key.other.
    missing = {key: where for key, where in literals.items() if key not in DEFAULT and f"{key}.other" not in DEFAULT}
    assert missing == {}


def test_the_check_reports_a_key_missing_in_one_language() -> None:
    usage = catalog_check.scan()
    assert catalog_check.problems(CATALOGS, usage) == []
    one_short = {locale: dict(catalog) for locale, catalog in CATALOGS.items()}
    del one_short["en"]["error.too_long"]
    assert any("en: missing 'error.too_long'" in p for p in catalog_check.problems(one_short, usage))
    # An f-string key whose values are not listed must still match some key in each language.
    for key in [k for k in one_short["en"] if k.startswith("role.")]:
        del one_short["en"][key]
    assert "en: no key matches 'role.{}'" in " ".join(catalog_check.problems(one_short, usage))
    # And with its values listed, each value must be a key.
    missing = catalog_check.problems(CATALOGS, usage, {"role.{}": ["no_such_role"]})
    assert [p for p in missing if "role." in p] == [f"{locale}: missing 'role.no_such_role' (used at "
                                                    f"{', '.join(usage.patterns['role.{}'])})"
                                                    for locale in CATALOGS]


def test_every_fstring_key_used_in_the_code_exists() -> None:
    _, patterns = _scan()
    expansions = dict(EXPANSIONS, **{"command.{}": _command_names()})
    unknown = sorted(set(patterns) - set(expansions))
    assert unknown == [], f"add the values of these f-string keys to EXPANSIONS: {unknown} ({patterns})"
    missing = [pattern.replace("{}", value) for pattern in patterns for value in expansions[pattern]
               if pattern.replace("{}", value) not in DEFAULT]
    assert missing == []


def test_every_menu_key_exists() -> None:
    from handlers import all_commands

    keys = [cmd.menu_key for cmd in all_commands() if cmd.menu_key]
    assert keys and all(key in DEFAULT for key in keys), keys


def test_every_literal_call_passes_the_placeholders_of_its_text() -> None:
    calls = _t_calls()
    assert len(calls) > 30
    wrong = []
    for key, where, kwargs, _ in calls:
        for locale, catalog in CATALOGS.items():
            if key in catalog and not placeholders(catalog[key]) <= kwargs:
                wrong.append(f"{where}: {key} ({locale}) needs {sorted(placeholders(catalog[key]))},"
                             f" gets {sorted(kwargs)}")
    assert wrong == []


# --- Translator -----------------------------------------------------------------------------

def test_translator_renders_and_falls_back() -> None:
    t = Translator("zh_CN")
    assert t("en", "join.joined", org="三义村", role="resident") == "Welcome! You joined “三义村” as resident."
    assert t("zh_CN", "join.joined", org="三义村", role="居民") == "欢迎！您已作为居民加入「三义村」。"
    assert t(None, "role.member") == "党员"
    assert t("fr", "role.member") == "党员"  # an unknown locale gets the default
    assert t("en", "no.such_key") == "no.such_key"


def test_translator_falls_back_to_the_default_locale_for_a_key_missing_in_one(tmp_path: Path) -> None:
    for locale, text in (("zh_CN", "a:\n  only: 只有中文\n  both: 中文\n"), ("en", "a:\n  both: English\n")):
        (tmp_path / locale).mkdir()
        (tmp_path / locale / "x.yaml").write_text(text, encoding="utf-8")
    t = Translator("zh_CN", root=tmp_path)
    assert t("en", "a.both") == "English"
    assert t("en", "a.only") == "只有中文"
    assert t.all_languages("a.both") == {"中文", "English"}


def test_a_key_defined_twice_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "a.yaml").write_text("x:\n  y: one\n", encoding="utf-8")
    (tmp_path / "en" / "b.yaml").write_text("x:\n  y: two\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"'x\.y' defined twice"):
        load_catalog("en", tmp_path)


# --- language_for ---------------------------------------------------------------------------

@pytest.mark.parametrize(("chosen", "telegram", "default", "expected"), [
    ("en", "zh-hans", "zh_CN", "en"),        # the stored choice wins
    ("zh_CN", "en-US", "en", "zh_CN"),
    (None, "zh-hans", "en", "zh_CN"),        # then Telegram's language_code
    (None, "zh-CN", "en", "zh_CN"),
    (None, "zh", "en", "zh_CN"),
    (None, "en-US", "zh_CN", "en"),
    (None, "en", "zh_CN", "en"),
    (None, "EN-gb", "zh_CN", "en"),
    (None, "fr", "zh_CN", "zh_CN"),          # then the default
    (None, "fr", "en", "en"),
    (None, None, "en", "en"),
    (None, "", "zh_CN", "zh_CN"),
    ("de", "en-US", "zh_CN", "en"),          # an unsupported stored value is ignored
    ("de", None, "zh_CN", "zh_CN"),
])
def test_language_for(chosen: str | None, telegram: str | None, default: str, expected: str) -> None:
    assert language_for(chosen, telegram, default) == expected


async def test_a_person_s_language_follows_the_same_order(core: Core) -> None:
    assert await core.people.language(1001) == "zh_CN"  # unknown person: the default
    await core.people.touch(1001, "Ann", "ann", "en-US")
    assert await core.people.language(1001) == "en"
    await core.people.set_language(1001, "zh_CN")
    assert await core.people.language(1001) == "zh_CN"
    await core.people.touch(1001, "Ann", "ann", "en")  # a later Telegram code does not override the choice
    assert await core.people.language(1001) == "zh_CN"
    person = await core.people.get(1001)
    assert person is not None and person.language == "zh_CN"
    with pytest.raises(ValueError, match="unsupported language"):
        await core.people.set_language(1001, "fr")
