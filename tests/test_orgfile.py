"""bot/services/orgfile.py: the org tree as a YAML file (parse → apply, export)."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pg import env_database
from service_fixtures import (
    SAMPLE,
    clock_fixture,  # noqa: F401  (the `clock` fixture)
    core_fixture,  # noqa: F401  (the `core` fixture)
    load,
    make_core,
    org_id,
    roles_of,
    rows,
    snapshot,
)

from bot.actors import SYSTEM_ACTOR
from bot.clock import SettableClock
from bot.core import Core
from bot.services import orgfile
from bot.services.orgfile import OrgFileError


def problems_of(text: str, known: set[str] | None = None) -> list[str]:
    with pytest.raises(OrgFileError) as info:
        orgfile.parse(textwrap.dedent(text), known or set())
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


# --- the sample file ------------------------------------------------------------------------

async def test_sample_file_imports(core: Core) -> None:
    report = await load(core, SAMPLE)

    assert (report.orgs_added, report.orgs_changed, report.people_added) == (3, 0, 2)
    assert (report.roles_granted, report.roles_revoked) == (3, 0)
    assert report.orgs_not_in_file == []
    orgs = {r["code"]: r for r in await rows(core, "SELECT * FROM orgs")}
    assert orgs["danfeng"]["parent_id"] is None
    assert orgs["longjuzhai"]["parent_id"] == orgs["danfeng"]["id"]
    assert orgs["sanyi"]["parent_id"] == orgs["longjuzhai"]["id"]
    assert (orgs["sanyi"]["name"], orgs["sanyi"]["kind"]) == ("三义村党支部", "village_branch")
    assert (orgs["danfeng"]["name"], orgs["danfeng"]["kind"]) == ("中共丹凤县委", "county")
    assert await roles_of(core, 1001) == {("secretary", "sanyi"), ("member", "sanyi")}
    assert await roles_of(core, 1002) == {("organizer", "longjuzhai")}
    assert await core.people.display_name(1001) == "王建国"
    assert await core.people.display_name(1002) == "李明"
    audit = await rows(core, "SELECT source, action, actor_id, note FROM role_audit")
    assert audit == [{"source": "file", "action": "grant", "actor_id": None, "note": "test.yaml"}] * 3


async def test_importing_the_same_file_twice_changes_nothing(core: Core) -> None:
    await load(core, SAMPLE)
    before = await snapshot(core)
    report = await load(core, SAMPLE)
    assert (report.orgs_added, report.orgs_changed, report.people_added,
            report.roles_granted, report.roles_revoked) == (0, 0, 0, 0, 0)
    assert await snapshot(core) == before


# --- export ---------------------------------------------------------------------------------

async def test_export_is_the_import_format(core: Core) -> None:
    await load(core, SAMPLE)
    doc = yaml.safe_load(await orgfile.export(core.orgs))
    assert doc == {
        "orgs": [{"code": "danfeng", "name": "中共丹凤县委", "kind": "county", "children": [
            {"code": "longjuzhai", "name": "龙驹寨街道党工委", "kind": "township", "children": [
                {"code": "sanyi", "name": "三义村党支部", "kind": "village_branch"}]}]}],
        "people": [
            {"telegram_id": 1001, "name": "王建国", "roles": ["member@sanyi", "secretary@sanyi"]},
            {"telegram_id": 1002, "name": "李明", "roles": ["organizer@longjuzhai"]},
        ],
    }


async def test_export_round_trips_into_a_fresh_database(core: Core, tmp_path: Path) -> None:
    await load(core, SAMPLE)
    first = await orgfile.export(core.orgs)
    assert "中共丹凤县委" in first  # written as text, not \u escapes

    fresh = make_core(tmp_path / "fresh.sqlite")
    await fresh.open()
    try:
        await load(fresh, first)
        assert await orgfile.export(fresh.orgs) == first
    finally:
        await fresh.close()


async def test_export_round_trips_after_an_org_was_added_in_front(core: Core, tmp_path: Path) -> None:
    await load(core, """
        orgs:
          - {code: x, name: 旧支部, kind: village_branch}
        people:
          - {telegram_id: 1, name: 甲, roles: [member@x]}
    """)
    # A later file puts a new org in front of the old one; the person is in both.
    await load(core, """
        orgs:
          - {code: y, name: 新支部, kind: village_branch}
          - {code: x, name: 旧支部, kind: village_branch}
        people:
          - {telegram_id: 1, name: 甲, roles: [member@x, member@y]}
    """)
    first = await orgfile.export(core.orgs)
    fresh = make_core(tmp_path / "fresh.sqlite")
    await fresh.open()
    try:
        await load(fresh, first)
        assert await orgfile.export(fresh.orgs) == first
    finally:
        await fresh.close()


async def test_export_of_a_long_telegram_name_can_be_imported(core: Core) -> None:
    await load(core, SAMPLE)
    invite = await core.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    long_name = "阿" * 64 + " " + "B" * 64  # the longest first_name + last_name Telegram allows
    await core.people.touch(3000, long_name, None, "zh-hans")
    await core.invites.join(3000, invite.payload)
    exported = await orgfile.export(core.orgs)
    assert long_name in exported
    orgfile.parse(exported)


# --- problems: every one, with its path, all at once, and nothing written ----------------------

def test_duplicate_code_names_both_places() -> None:
    problems = problems_of("""
        orgs:
          - code: danfeng
            name: 县委
            kind: county
            children:
              - code: longjuzhai
                name: 街道
                kind: township
                children:
                  - {code: sanyi, name: 三义村, kind: village_branch}
                  - {code: sanyi, name: 又一个三义村, kind: village_branch}
    """)
    assert problems == ["orgs[0].children[0].children[1].code: duplicate code 'sanyi'"
                        " (first at orgs[0].children[0].children[0].code)"]


@pytest.mark.parametrize(("org", "expected"), [
    ("{code: a, name: A, kind: city}", "orgs[0].kind: 'city' is not one of county | township |"),
    ("{code: a, kind: county}", "orgs[0].name: missing or empty"),
    ("{code: a, name: '  ', kind: county}", "orgs[0].name: missing or empty"),
    ("{name: A, kind: county}", "orgs[0].code: missing"),
    ("{code: Big Code, name: A, kind: county}", "orgs[0].code: 'Big Code' is not a valid code"),
    ("{code: a, name: A, kind: county, colour: red}", "orgs[0].colour: unknown key"),
    ("just-a-string", "orgs[0]: expected a mapping"),
])
def test_each_org_problem_is_reported_with_its_path(org: str, expected: str) -> None:
    problems = problems_of(f"orgs:\n  - {org}\n")
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_invalid_yaml_names_the_line() -> None:
    problems = problems_of("""\
        orgs:
          - code: a
           name: b
    """)
    assert len(problems) == 1
    assert problems[0].startswith("line 3, column "), problems
    assert "not valid YAML" in problems[0]


@pytest.mark.parametrize(("person", "expected"), [
    ("{telegram_id: abc, name: X, roles: []}", "people[0].telegram_id: 'abc' is not a Telegram user id"),
    ("{telegram_id: -5, name: X, roles: []}", "people[0].telegram_id: -5 is not a Telegram user id"),
    ("{telegram_id: 1.5, name: X, roles: []}", "people[0].telegram_id: 1.5 is not a Telegram user id"),
    ("{telegram_id: true, name: X, roles: []}", "people[0].telegram_id: True is not a Telegram user id"),
    ("{name: X, roles: []}", "people[0].telegram_id: None is not a Telegram user id"),
    ("{telegram_id: 1, roles: [secretary@nowhere]}", "people[0].roles[0]: no org with code 'nowhere'"),
    ("{telegram_id: 1, roles: [boss@a]}", "people[0].roles[0]: unknown role 'boss'"),
    ("{telegram_id: 1, roles: [secretary]}", "people[0].roles[0]: 'secretary' is not role@org_code"),
    ("{telegram_id: 1, roles: secretary@a}", "people[0].roles: expected a list"),
    ("{telegram_id: 1, roles: [member@a, member@a]}", "people[0].roles[1]: 'member@a' listed twice"),
    ("{telegram_id: 1, phone: 123}", "people[0].phone: unknown key"),
])
def test_each_person_problem_is_reported_with_its_path(person: str, expected: str) -> None:
    problems = problems_of(f"orgs:\n  - {{code: a, name: A, kind: county}}\npeople:\n  - {person}\n")
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_duplicate_person_names_the_first() -> None:
    problems = problems_of("""
        orgs:
          - {code: a, name: A, kind: county}
        people:
          - {telegram_id: 1001, name: 王建国, roles: [member@a]}
          - {telegram_id: 1001, name: 王建国, roles: [secretary@a]}
    """)
    assert problems == ["people[1].telegram_id: duplicate id 1001 (first at people[0].telegram_id)"]


def test_unknown_top_level_key() -> None:
    problems = problems_of("orgs: []\nmembers: []\n")
    assert len(problems) == 1 and problems[0].startswith("members: unknown key"), problems


def test_role_may_name_an_org_known_only_to_the_database() -> None:
    plan = orgfile.parse("orgs: []\npeople:\n  - {telegram_id: 1, roles: [member@old]}\n", {"old"})
    assert plan.people[0].roles == [("member", "old")]


def test_all_problems_are_reported_at_once() -> None:
    problems = problems_of("""
        orgs:
          - code: danfeng
            name: 县委
            kind: city
            colour: red
            children:
              - {code: sanyi, kind: village_branch}
              - {code: sanyi, name: 重复, kind: village_branch}
        people:
          - {telegram_id: abc, name: 甲, roles: [secretary@sanyi]}
          - {telegram_id: 1002, name: 乙, roles: [boss@sanyi, member@nowhere]}
          - {telegram_id: 1002, name: 丙, roles: member@sanyi}
    """)
    assert problems == [
        "orgs[0].colour: unknown key (expected children, code, kind, name)",
        "orgs[0].kind: 'city' is not one of county | township | village_branch | community | grid_branch"
        " | party_group | other",
        "orgs[0].children[0].name: missing or empty",
        "orgs[0].children[1].code: duplicate code 'sanyi' (first at orgs[0].children[0].code)",
        "people[0].telegram_id: 'abc' is not a Telegram user id (a positive whole number)",
        "people[1].roles[0]: unknown role 'boss' (expected resident | member | secretary | organizer)",
        "people[1].roles[1]: no org with code 'nowhere'",
        "people[2].telegram_id: duplicate id 1002 (first at people[1].telegram_id)",
        "people[2].roles: expected a list such as [secretary@sanyi]",
    ]


BAD_FILE = """\
orgs:
  - code: danfeng
    name: 中共丹凤县委（改名）
    kind: county
    children:
      - {code: newone, name: 新支部, kind: village_branch}
      - {code: sanyi, name: 三义村党支部, kind: village_branch}
people:
  - {telegram_id: 1001, name: 王建国, roles: [organizer@danfeng]}
  - {telegram_id: 3000, name: 新人, roles: [member@newone]}
  - {telegram_id: 1002, name: 李明, roles: [boss@sanyi]}
"""


async def test_nothing_is_written_when_one_line_is_wrong(core: Core) -> None:
    await load(core, SAMPLE)
    before = await snapshot(core)
    with pytest.raises(OrgFileError) as info:
        await load(core, BAD_FILE)
    assert info.value.problems == [
        "people[2].roles[0]: unknown role 'boss' (expected resident | member | secretary | organizer)"]
    assert await snapshot(core) == before


def test_cli_import_reports_every_problem_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOKEN", "BOT_ADMINS", "BOT_LOCALE", "BOT_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOT_DATABASE", env_database(tmp_path / "cli.sqlite"))
    (tmp_path / "good.yaml").write_text(SAMPLE, encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(BAD_FILE.replace("[organizer@danfeng]", "[organizer@nowhere]"),
                                       encoding="utf-8")

    assert main(["orgs", "import", "good.yaml"]) == 0
    out = capsys.readouterr().out
    assert "orgs: 3 added, 0 changed; people: 2 added; roles: 3 granted, 0 revoked" in out
    exported = tmp_path / "before.yaml"
    assert main(["orgs", "export", "--out", str(exported)]) == 0

    assert main(["orgs", "import", "bad.yaml"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "bad.yaml: people[0].roles[0]: no org with code 'nowhere'",
        "bad.yaml: people[2].roles[0]: unknown role 'boss' (expected resident | member | secretary | organizer)",
        "2 problem(s); nothing was changed.",
    ]
    after = tmp_path / "after.yaml"
    assert main(["orgs", "export", "--out", str(after)]) == 0
    assert after.read_text(encoding="utf-8") == exported.read_text(encoding="utf-8")


# --- re-import: roles, moves, orgs missing from the file -----------------------------------------

async def test_reimport_changes_exactly_the_difference_in_roles(core: Core, clock: SettableClock) -> None:
    await load(core, SAMPLE)
    first_audit = await rows(core, "SELECT id FROM role_audit")
    clock.advance(timedelta(days=1))
    report = await load(core, SAMPLE.split("people:")[0] + """people:
          - {telegram_id: 1001, name: 王建国, roles: [member@sanyi, organizer@longjuzhai]}
          - {telegram_id: 1002, name: 李明, roles: [organizer@longjuzhai]}
    """, note="second.yaml")

    assert (report.roles_granted, report.roles_revoked, report.people_added) == (1, 1, 0)
    assert await roles_of(core, 1001) == {("member", "sanyi"), ("organizer", "longjuzhai")}
    assert await roles_of(core, 1002) == {("organizer", "longjuzhai")}
    new_audit = await rows(
        core, "SELECT at, actor_id, source, action, person_id, org_id, role, note FROM role_audit WHERE id > ?"
        " ORDER BY id", (max(r["id"] for r in first_audit),))
    at = "2026-11-28T08:00:00.000000Z"
    assert new_audit == [
        {"at": at, "actor_id": None, "source": "file", "action": "revoke", "person_id": 1001,
         "org_id": await org_id(core, "sanyi"), "role": "secretary", "note": "second.yaml"},
        {"at": at, "actor_id": None, "source": "file", "action": "grant", "person_id": 1001,
         "org_id": await org_id(core, "longjuzhai"), "role": "organizer", "note": "second.yaml"},
    ]


async def test_people_not_in_the_file_keep_their_roles(core: Core) -> None:
    await load(core, SAMPLE)
    await load(core, SAMPLE.split("people:")[0] + "people:\n  - {telegram_id: 1002, name: 李明, roles: []}\n")
    assert await roles_of(core, 1001) == {("secretary", "sanyi"), ("member", "sanyi")}
    assert await roles_of(core, 1002) == set()


async def test_moving_an_org_to_another_parent(core: Core) -> None:
    await load(core, SAMPLE)
    report = await load(core, """
        orgs:
          - code: danfeng
            name: 中共丹凤县委
            kind: county
            children:
              - {code: longjuzhai, name: 龙驹寨街道党工委, kind: township}
              - code: chengguan
                name: 城关街道党工委
                kind: township
                children:
                  - {code: sanyi, name: 三义村党支部, kind: village_branch}
    """)
    assert (report.orgs_added, report.orgs_changed) == (1, 1)
    sanyi = await core.orgs.by_code("sanyi")
    assert sanyi is not None and sanyi.parent_id == await org_id(core, "chengguan")
    assert [o.code for o in await core.orgs.ancestors(sanyi.id)] == ["sanyi", "chengguan", "danfeng"]
    # Rights follow the tree: the organizer of longjuzhai no longer manages sanyi.
    assert not await core.orgs.can_manage(1002, sanyi.id)


async def test_orgs_missing_from_the_file_are_kept_and_reported(core: Core) -> None:
    await load(core, SAMPLE)
    report = await load(core, """
        orgs:
          - {code: danfeng, name: 中共丹凤县委, kind: county}
        people:
          - {telegram_id: 1001, name: 王建国, roles: [secretary@sanyi]}
    """)
    assert report.orgs_not_in_file == ["longjuzhai", "sanyi"]
    assert {r["code"] for r in await rows(core, "SELECT code FROM orgs")} == {"danfeng", "longjuzhai", "sanyi"}
    # A role may still name a kept org; the person's other role there is revoked.
    assert await roles_of(core, 1001) == {("secretary", "sanyi")}
    assert report.roles_revoked == 1


async def test_renaming_an_org_and_a_person(core: Core) -> None:
    await load(core, SAMPLE)
    report = await load(core, SAMPLE.replace("三义村党支部", "三义村党总支").replace("李明", "李小明"))
    assert report.orgs_changed == 1
    sanyi = await core.orgs.by_code("sanyi")
    assert sanyi is not None and sanyi.name == "三义村党总支"
    assert await core.people.display_name(1002) == "李小明"
