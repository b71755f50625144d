"""OrgService: who may manage, approve and see what, and appointing through the outbox."""

from __future__ import annotations

import pytest
from service_fixtures import (
    ADMIN,
    COUNTY_ORG,
    ERLANG_SECRETARY,
    MEMBER,
    OTHER_TOWN_ORG,
    RESIDENT,
    SECRETARY,
    STRANGER,
    TOWN_ORG,
    VILLAGE_ORG,
    clock_fixture,  # noqa: F401  (the `clock` fixture)
    core_fixture,  # noqa: F401  (the `core` fixture)
    org_id,
    outbox_rows,
    roles_of,
    rows,
    snapshot,
    tree_fixture,  # noqa: F401  (the `tree` fixture: service_fixtures.TREE loaded)
)

from bot.core import Core
from bot.services.orgs import NotAllowed, NotFound

# --- can_manage -----------------------------------------------------------------------------

@pytest.mark.parametrize(("person", "code", "expected"), [
    (TOWN_ORG, "longjuzhai", True),        # organizer of the org itself
    (TOWN_ORG, "sanyi", True),             # organizer above
    (TOWN_ORG, "erlang", True),
    (COUNTY_ORG, "xijie", True),           # two levels above
    (ADMIN, "sanyi", True),
    (ADMIN, "lonely", True),
    (SECRETARY, "sanyi", False),           # a secretary does not manage
    (OTHER_TOWN_ORG, "sanyi", False),      # organizer of another branch
    (OTHER_TOWN_ORG, "longjuzhai", False),  # organizer of a sibling org
    (VILLAGE_ORG, "longjuzhai", False),    # organizer of a child org does not manage the parent
    (VILLAGE_ORG, "erlang", False),        # ...nor its sibling
    (TOWN_ORG, "danfeng", False),          # nor does an organizer manage the org above
    (MEMBER, "sanyi", False),
    (RESIDENT, "sanyi", False),
    (COUNTY_ORG, "lonely", False),         # another root
    (STRANGER, "sanyi", False),
])
async def test_can_manage(tree: Core, person: int, code: str, expected: bool) -> None:
    assert await tree.orgs.can_manage(person, await org_id(tree, code)) is expected


# --- can_approve ----------------------------------------------------------------------------

@pytest.mark.parametrize(("person", "code", "expected"), [
    (SECRETARY, "sanyi", True),            # the org's secretary
    (TOWN_ORG, "sanyi", True),             # organizer above
    (COUNTY_ORG, "sanyi", True),
    (VILLAGE_ORG, "sanyi", True),          # organizer of the org itself
    (ADMIN, "sanyi", True),
    (MEMBER, "sanyi", False),
    (RESIDENT, "sanyi", False),
    (ERLANG_SECRETARY, "sanyi", False),    # secretary of a sibling
    (SECRETARY, "erlang", False),
    (SECRETARY, "longjuzhai", False),      # a secretary approves for their own org only, not above
    (OTHER_TOWN_ORG, "sanyi", False),
    (STRANGER, "sanyi", False),
])
async def test_can_approve(tree: Core, person: int, code: str, expected: bool) -> None:
    assert await tree.orgs.can_approve(person, await org_id(tree, code)) is expected


# --- approvers ------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "expected"), [
    ("sanyi", [SECRETARY, VILLAGE_ORG]),   # its secretary + its own organizer (the nearest)
    ("erlang", [ERLANG_SECRETARY, TOWN_ORG]),  # its secretary + the nearest organizers above
    ("xijie", [OTHER_TOWN_ORG]),           # no secretary: the organizers one level up
    ("longjuzhai", [TOWN_ORG]),
    ("danfeng", [COUNTY_ORG]),
    ("lonely", [ADMIN]),                   # nobody at all: the admins
])
async def test_approvers(tree: Core, code: str, expected: list[int]) -> None:
    oid = await org_id(tree, code)
    async with tree.db.transaction() as tx:
        assert await tree.orgs.approvers(oid, "member", tx) == expected


async def test_approvers_list_each_person_once(tree: Core) -> None:
    sanyi = await org_id(tree, "sanyi")
    async with tree.db.transaction() as tx:
        await tree.orgs.grant(tx, person_id=VILLAGE_ORG, org_id=sanyi, role="secretary", actor_id=None, source="test")
        assert await tree.orgs.approvers(sanyi, "member", tx) == [SECRETARY, VILLAGE_ORG]


# --- tree_view ------------------------------------------------------------------------------

def lines(view: list) -> list[tuple[int, str, dict[str, int]]]:
    return [(line.depth, line.org.code, line.counts) for line in view]


async def test_tree_view_of_a_secretary_is_their_subtree_with_counts(tree: Core) -> None:
    assert lines(await tree.orgs.tree_view(SECRETARY)) == [
        (0, "sanyi", {"secretary": 1, "member": 1, "resident": 1, "organizer": 1}),
    ]


async def test_tree_view_of_an_organizer_is_their_subtree(tree: Core) -> None:
    assert lines(await tree.orgs.tree_view(TOWN_ORG)) == [
        (0, "longjuzhai", {"organizer": 1}),
        (1, "sanyi", {"secretary": 1, "member": 1, "resident": 1, "organizer": 1}),
        (1, "erlang", {"secretary": 1}),
    ]


async def test_tree_view_does_not_repeat_an_org_inside_another_shown(tree: Core) -> None:
    # Also secretary of sanyi, which is already inside longjuzhai.
    async with tree.db.transaction() as tx:
        await tree.orgs.grant(tx, person_id=TOWN_ORG, org_id=await org_id(tree, "sanyi"), role="secretary",
                              actor_id=None, source="test")
    assert [code for _, code, _ in lines(await tree.orgs.tree_view(TOWN_ORG))] == ["longjuzhai", "sanyi", "erlang"]


async def test_tree_view_of_an_admin_is_everything(tree: Core) -> None:
    assert lines(await tree.orgs.tree_view(ADMIN)) == [
        (0, "danfeng", {"organizer": 1}),
        (1, "longjuzhai", {"organizer": 1}),
        (2, "sanyi", {"secretary": 1, "member": 1, "resident": 1, "organizer": 1}),
        (2, "erlang", {"secretary": 1}),
        (1, "chengguan", {"organizer": 1}),
        (2, "xijie", {}),
        (0, "lonely", {}),
    ]


@pytest.mark.parametrize("person", [RESIDENT, MEMBER, STRANGER])
async def test_tree_view_is_not_for_residents_or_members(tree: Core, person: int) -> None:
    with pytest.raises(NotAllowed):
        await tree.orgs.tree_view(person)


# --- appoint --------------------------------------------------------------------------------

async def test_appoint_by_an_organizer_above(tree: Core) -> None:
    sanyi = await org_id(tree, "sanyi")
    await tree.people.set_language(MEMBER, "en")

    assert await tree.orgs.appoint(TOWN_ORG, MEMBER, sanyi, "secretary") is True

    assert ("secretary", "sanyi") in await roles_of(tree, MEMBER)
    audit = await rows(tree, "SELECT id, at, actor_id, source, action, person_id, org_id, role FROM role_audit"
                             " WHERE source = 'chat'")
    assert audit == [{"id": audit[0]["id"], "at": "2026-11-27T08:00:00.000000Z", "actor_id": TOWN_ORG,
                      "source": "chat", "action": "grant", "person_id": MEMBER, "org_id": sanyi, "role": "secretary"}]
    sent = await outbox_rows(tree)
    assert len(sent) == 1
    assert sent[0]["chat_id"] == MEMBER and sent[0]["status"] == "pending"
    assert sent[0]["dedup_key"] == f"role-audit:{audit[0]['id']}"
    assert sent[0]["payload"] == {
        "chat_id": MEMBER,
        "text": "You have been appointed secretary of “三义村党支部”. Send /help to see what you can do."}


async def test_appoint_notice_in_chinese_by_default(tree: Core) -> None:
    assert await tree.orgs.appoint(ADMIN, RESIDENT, await org_id(tree, "sanyi"), "organizer") is True
    sent = await outbox_rows(tree, RESIDENT)
    assert [r["payload"]["text"] for r in sent] == ["您已被任命为「三义村党支部」组织委员。发送 /help 查看可用功能。"]


async def test_remove_by_an_organizer_above(tree: Core) -> None:
    sanyi = await org_id(tree, "sanyi")
    await tree.people.set_language(SECRETARY, "en")

    assert await tree.orgs.appoint(COUNTY_ORG, SECRETARY, sanyi, "secretary", remove=True) is True

    assert await roles_of(tree, SECRETARY) == set()
    audit = await rows(tree, "SELECT id, actor_id, source, action, person_id, org_id, role FROM role_audit"
                             " WHERE source = 'chat'")
    assert [{k: v for k, v in a.items() if k != "id"} for a in audit] == [
        {"actor_id": COUNTY_ORG, "source": "chat", "action": "revoke", "person_id": SECRETARY, "org_id": sanyi,
         "role": "secretary"}]
    sent = await outbox_rows(tree)
    assert [(r["chat_id"], r["dedup_key"], r["payload"]["text"]) for r in sent] == [
        (SECRETARY, f"role-audit:{audit[0]['id']}", "You are no longer secretary of “三义村党支部”.")]


async def test_appoint_what_is_already_so_changes_nothing(tree: Core) -> None:
    sanyi = await org_id(tree, "sanyi")
    before = await snapshot(tree)
    assert await tree.orgs.appoint(TOWN_ORG, SECRETARY, sanyi, "secretary") is False
    assert await tree.orgs.appoint(TOWN_ORG, MEMBER, sanyi, "secretary", remove=True) is False
    assert await snapshot(tree) == before


async def test_appointing_oneself_sends_no_notice(tree: Core) -> None:
    assert await tree.orgs.appoint(TOWN_ORG, TOWN_ORG, await org_id(tree, "erlang"), "organizer") is True
    assert ("organizer", "erlang") in await roles_of(tree, TOWN_ORG)
    assert await outbox_rows(tree) == []


@pytest.mark.parametrize(("actor", "remove"), [
    (SECRETARY, False),       # the secretary of the org itself
    (SECRETARY, True),
    (OTHER_TOWN_ORG, False),  # an organizer of another branch
    (OTHER_TOWN_ORG, True),
    (ERLANG_SECRETARY, False),  # the secretary of a sibling
    (MEMBER, False),
])
async def test_appoint_is_not_allowed_for_others_and_changes_nothing(tree: Core, actor: int, remove: bool) -> None:
    sanyi = await org_id(tree, "sanyi")
    # Removing acts on the secretary; appointing acts on a member.
    person = SECRETARY if remove else MEMBER
    before = await snapshot(tree)
    with pytest.raises(NotAllowed):
        await tree.orgs.appoint(actor, person, sanyi, "secretary", remove=remove)
    assert await snapshot(tree) == before


async def test_an_organizer_of_a_child_org_cannot_appoint_above_it(tree: Core) -> None:
    before = await snapshot(tree)
    with pytest.raises(NotAllowed):
        await tree.orgs.appoint(VILLAGE_ORG, MEMBER, await org_id(tree, "longjuzhai"), "organizer")
    assert await snapshot(tree) == before


async def test_appoint_rejects_other_roles_and_unknown_people(tree: Core) -> None:
    sanyi = await org_id(tree, "sanyi")
    before = await snapshot(tree)
    with pytest.raises(ValueError, match="cannot be appointed"):
        await tree.orgs.appoint(ADMIN, RESIDENT, sanyi, "member")
    with pytest.raises(NotFound):
        await tree.orgs.appoint(ADMIN, STRANGER, sanyi, "secretary")
    with pytest.raises(NotFound):
        await tree.orgs.appoint(ADMIN, MEMBER, 999_999, "secretary")
    assert await snapshot(tree) == before
