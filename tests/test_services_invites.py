"""InviteService: join links, join requests, and deciding them."""

from __future__ import annotations

import pytest
from service_fixtures import (
    ADMIN,
    MEMBER,
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

from bot.actors import SYSTEM_ACTOR
from bot.callbacks import JOIN_DECISION, Verdict
from bot.core import Core
from bot.services.invites import PAYLOAD_PREFIX, DecisionOutcome, JoinOutcome
from bot.services.orgs import NotAllowed, NotFound

NEWCOMER = 2001


async def newcomer(core: Core, person: int = NEWCOMER, name: str = "王小明", language: str | None = None) -> int:
    await core.people.touch(person, name, None, language)
    return person


async def invite_audit(core: Core) -> list[dict]:
    return await rows(core, "SELECT actor_id, source, action, person_id, org_id, role, note FROM role_audit"
                            " WHERE source = 'invite' ORDER BY id")


# --- links ----------------------------------------------------------------------------------

async def test_create_makes_a_short_unique_payload(tree: Core) -> None:
    a = await tree.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    b = await tree.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    assert a.payload != b.payload
    for invite in (a, b):
        assert invite.payload.startswith(PAYLOAD_PREFIX)
        assert len(invite.payload) <= 64  # Telegram's limit for a /start payload
        assert invite.payload.replace("-", "").replace("_", "").isalnum()
    assert (await tree.invites.get(a.payload)) == a


async def test_create_checks_role_org_and_right(tree: Core) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        await tree.invites.create("sanyi", "boss", created_by=SYSTEM_ACTOR)
    with pytest.raises(NotFound):
        await tree.invites.create("nowhere", "member", created_by=SYSTEM_ACTOR)
    with pytest.raises(NotAllowed):
        await tree.invites.create("sanyi", "member", created_by=MEMBER)
    assert await rows(tree, "SELECT * FROM invites") == []


# --- resident links -------------------------------------------------------------------------

async def test_resident_link_joins_at_once(tree: Core) -> None:
    invite = await tree.invites.create("sanyi", "resident", created_by=SECRETARY)
    person = await newcomer(tree)

    result = await tree.invites.join(person, invite.payload)

    assert result.outcome is JoinOutcome.joined
    assert result.org is not None and result.org.code == "sanyi" and result.role == "resident"
    assert await roles_of(tree, person) == {("resident", "sanyi")}
    assert await invite_audit(tree) == [
        {"actor_id": person, "source": "invite", "action": "grant", "person_id": person,
         "org_id": await org_id(tree, "sanyi"), "role": "resident", "note": invite.payload}]
    assert await rows(tree, "SELECT * FROM join_requests") == []
    assert await outbox_rows(tree) == []


async def test_resident_link_of_another_org_moves_them(tree: Core) -> None:
    first = await tree.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    second = await tree.invites.create("erlang", "resident", created_by=SYSTEM_ACTOR)
    person = await newcomer(tree)
    await tree.invites.join(person, first.payload)

    result = await tree.invites.join(person, second.payload)

    assert result.outcome is JoinOutcome.moved
    assert await roles_of(tree, person) == {("resident", "erlang")}
    audit = await invite_audit(tree)
    assert [(a["action"], a["org_id"], a["note"]) for a in audit] == [
        ("grant", await org_id(tree, "sanyi"), first.payload),
        ("revoke", await org_id(tree, "sanyi"), second.payload),
        ("grant", await org_id(tree, "erlang"), second.payload),
    ]


async def test_resident_link_keeps_other_roles(tree: Core) -> None:
    invite = await tree.invites.create("erlang", "resident", created_by=SYSTEM_ACTOR)
    assert (await tree.invites.join(MEMBER, invite.payload)).outcome is JoinOutcome.joined
    assert await roles_of(tree, MEMBER) == {("member", "sanyi"), ("resident", "erlang")}


async def test_same_link_twice_is_already(tree: Core) -> None:
    invite = await tree.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    person = await newcomer(tree)
    await tree.invites.join(person, invite.payload)
    before = await snapshot(tree)
    assert (await tree.invites.join(person, invite.payload)).outcome is JoinOutcome.already
    assert await snapshot(tree) == before
    member_link = await tree.invites.create("sanyi", "member", created_by=SYSTEM_ACTOR)
    before = await snapshot(tree)
    assert (await tree.invites.join(MEMBER, member_link.payload)).outcome is JoinOutcome.already
    assert await snapshot(tree) == before


# --- links that need approval ---------------------------------------------------------------

@pytest.mark.parametrize("role", ["member", "secretary"])
async def test_approval_link_creates_a_request_and_asks_every_approver(tree: Core, role: str) -> None:
    await tree.people.set_language(VILLAGE_ORG, "en")
    invite = await tree.invites.create("sanyi", role, created_by=TOWN_ORG)
    person = await newcomer(tree)

    result = await tree.invites.join(person, invite.payload)

    assert result.outcome is JoinOutcome.requested
    assert await roles_of(tree, person) == set()
    requests = await rows(tree, "SELECT id, invite_id, person_id, org_id, role, status FROM join_requests")
    assert len(requests) == 1
    rid = requests[0]["id"]
    assert requests[0] == {"id": rid, "invite_id": invite.id, "person_id": person,
                           "org_id": await org_id(tree, "sanyi"), "role": role, "status": "pending"}
    sent = await outbox_rows(tree)
    assert [(r["chat_id"], r["dedup_key"], r["status"]) for r in sent] == [
        (SECRETARY, f"join-request:{rid}:{SECRETARY}", "pending"),
        (VILLAGE_ORG, f"join-request:{rid}:{VILLAGE_ORG}", "pending"),
    ]
    zh_role = {"member": "党员", "secretary": "书记"}[role]
    en_role = {"member": "a party member", "secretary": "a secretary"}[role]
    assert sent[0]["payload"] == {
        "chat_id": SECRETARY,
        "text": f"王小明申请以{zh_role}身份加入「三义村党支部」。",
        "reply_markup": {"inline_keyboard": [[
            {"text": "✅ 同意", "callback_data": f"jr:a:{rid}"},
            {"text": "❌ 拒绝", "callback_data": f"jr:r:{rid}"},
        ]]},
    }
    assert sent[1]["payload"] == {
        "chat_id": VILLAGE_ORG,
        "text": f"王小明 asks to join “三义村党支部” as {en_role}.",
        "reply_markup": {"inline_keyboard": [[
            {"text": "✅ Approve", "callback_data": f"jr:a:{rid}"},
            {"text": "❌ Reject", "callback_data": f"jr:r:{rid}"},
        ]]},
    }
    assert (JOIN_DECISION(Verdict.APPROVE, rid), JOIN_DECISION(Verdict.REJECT, rid)) == (f"jr:a:{rid}", f"jr:r:{rid}")


async def test_organizer_request_is_not_put_to_the_org_secretary(tree: Core) -> None:
    invite = await tree.invites.create("sanyi", "organizer", created_by=TOWN_ORG)
    person = await newcomer(tree)
    assert (await tree.invites.join(person, invite.payload)).outcome is JoinOutcome.requested
    rid = (await rows(tree, "SELECT id FROM join_requests"))[0]["id"]
    sent = await outbox_rows(tree)
    assert [r["chat_id"] for r in sent] == [VILLAGE_ORG]
    with pytest.raises(NotAllowed):
        await tree.invites.decide(SECRETARY, rid, approve=True)
    assert await roles_of(tree, person) == set()


async def test_request_for_an_org_nobody_leads_goes_to_the_admins(tree: Core) -> None:
    invite = await tree.invites.create("lonely", "member", created_by=SYSTEM_ACTOR)
    person = await newcomer(tree)
    assert (await tree.invites.join(person, invite.payload)).outcome is JoinOutcome.requested
    assert [r["chat_id"] for r in await outbox_rows(tree)] == [ADMIN]


async def test_second_join_while_pending_is_pending(tree: Core) -> None:
    invite = await tree.invites.create("sanyi", "member", created_by=SYSTEM_ACTOR)
    other_link = await tree.invites.create("sanyi", "member", created_by=SYSTEM_ACTOR)
    person = await newcomer(tree)
    await tree.invites.join(person, invite.payload)
    before = await snapshot(tree)

    assert (await tree.invites.join(person, invite.payload)).outcome is JoinOutcome.pending
    assert (await tree.invites.join(person, other_link.payload)).outcome is JoinOutcome.pending

    assert await snapshot(tree) == before
    assert len(await rows(tree, "SELECT * FROM join_requests")) == 1


# --- decide ---------------------------------------------------------------------------------

async def pending_request(core: Core, role: str = "member", person: int = NEWCOMER) -> int:
    invite = await core.invites.create("sanyi", role, created_by=SYSTEM_ACTOR)
    await newcomer(core, person)
    assert (await core.invites.join(person, invite.payload)).outcome is JoinOutcome.requested
    return (await rows(core, "SELECT id FROM join_requests WHERE person_id = ? AND status = 'pending'",
                       (person,)))[0]["id"]


async def test_approve_grants_the_role_and_tells_the_requester(tree: Core) -> None:
    rid = await pending_request(tree)
    await tree.people.set_language(NEWCOMER, "en")

    decision = await tree.invites.decide(SECRETARY, rid, approve=True)

    assert decision.outcome is DecisionOutcome.approved
    assert decision.org is not None and decision.org.code == "sanyi"
    assert (decision.role, decision.person_name) == ("member", "王小明")
    assert await roles_of(tree, NEWCOMER) == {("member", "sanyi")}
    request = (await rows(tree, "SELECT status, decided_by, decided_at FROM join_requests WHERE id = ?", (rid,)))[0]
    assert request == {"status": "approved", "decided_by": SECRETARY, "decided_at": "2026-11-27T08:00:00.000000Z"}
    assert await invite_audit(tree) == [
        {"actor_id": SECRETARY, "source": "invite", "action": "grant", "person_id": NEWCOMER,
         "org_id": await org_id(tree, "sanyi"), "role": "member", "note": f"join request {rid}"}]
    notices = await outbox_rows(tree, NEWCOMER)
    assert [(r["dedup_key"], r["payload"]["text"]) for r in notices] == [
        (f"join-decision:{rid}",
         "Your request to join “三义村党支部” as a party member was approved. Send /help to see what you can do.")]


async def test_reject_grants_nothing_and_tells_the_requester(tree: Core) -> None:
    rid = await pending_request(tree)

    decision = await tree.invites.decide(VILLAGE_ORG, rid, approve=False)

    assert decision.outcome is DecisionOutcome.rejected
    assert await roles_of(tree, NEWCOMER) == set()
    assert (await rows(tree, "SELECT status, decided_by FROM join_requests"))[0] == {
        "status": "rejected", "decided_by": VILLAGE_ORG}
    assert [r["payload"]["text"] for r in await outbox_rows(tree, NEWCOMER)] == [
        "很抱歉，您加入「三义村党支部」（党员）的申请未通过。如有疑问请联系书记。"]
    # After a rejection, the person may ask again.
    invite = await tree.invites.create("sanyi", "member", created_by=SYSTEM_ACTOR)
    assert (await tree.invites.join(NEWCOMER, invite.payload)).outcome is JoinOutcome.requested


@pytest.mark.parametrize("second_approves", [True, False])
async def test_second_decision_is_already_and_names_the_first(tree: Core, second_approves: bool) -> None:
    rid = await pending_request(tree)
    await tree.invites.decide(SECRETARY, rid, approve=True)
    before = await snapshot(tree)

    decision = await tree.invites.decide(VILLAGE_ORG, rid, approve=second_approves)

    assert decision.outcome is DecisionOutcome.already
    assert decision.by == "王建国"  # the secretary's name, from the org file
    assert decision.status == "approved"
    assert decision.person_name == "王小明"
    assert await snapshot(tree) == before


@pytest.mark.parametrize("actor", [MEMBER, RESIDENT, STRANGER, NEWCOMER])
async def test_a_non_approver_may_not_decide(tree: Core, actor: int) -> None:
    rid = await pending_request(tree)
    before = await snapshot(tree)
    for approve in (True, False):
        with pytest.raises(NotAllowed):
            await tree.invites.decide(actor, rid, approve=approve)
    assert await snapshot(tree) == before


async def test_decide_unknown_request(tree: Core) -> None:
    before = await snapshot(tree)
    assert (await tree.invites.decide(SECRETARY, 424242, approve=True)).outcome is DecisionOutcome.not_found
    assert await snapshot(tree) == before


async def test_a_secretary_cannot_make_themselves_organizer(tree: Core) -> None:
    sanyi = await org_id(tree, "sanyi")
    assert not await tree.orgs.can_manage(SECRETARY, sanyi)
    try:
        invite = await tree.invites.create("sanyi", "organizer", created_by=SECRETARY)
        await tree.invites.join(SECRETARY, invite.payload)
        rid = (await rows(tree, "SELECT id FROM join_requests WHERE person_id = ?", (SECRETARY,)))[0]["id"]
        await tree.invites.decide(SECRETARY, rid, approve=True)
    except NotAllowed:
        pass
    assert ("organizer", "sanyi") not in await roles_of(tree, SECRETARY)
    assert not await tree.orgs.can_manage(SECRETARY, sanyi)


# --- revoked and invalid links --------------------------------------------------------------

async def test_revoked_link(tree: Core) -> None:
    invite = await tree.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    revoked = await tree.invites.revoke(invite.payload, actor=SYSTEM_ACTOR)
    assert revoked.revoked is True
    assert (await tree.invites.get(invite.payload)).revoked is True  # type: ignore[union-attr]
    person = await newcomer(tree)

    result = await tree.invites.join(person, invite.payload)

    assert result.outcome is JoinOutcome.revoked
    assert result.org is not None and result.org.code == "sanyi" and result.role == "resident"
    assert await roles_of(tree, person) == set()


async def test_create_with_revoke_old_revokes_only_that_org_and_role(tree: Core) -> None:
    old = await tree.invites.create("sanyi", "member", created_by=SYSTEM_ACTOR)
    other_role = await tree.invites.create("sanyi", "resident", created_by=SYSTEM_ACTOR)
    other_org = await tree.invites.create("erlang", "member", created_by=SYSTEM_ACTOR)
    new = await tree.invites.create("sanyi", "member", created_by=SYSTEM_ACTOR, revoke_old=True)
    person = await newcomer(tree)

    assert (await tree.invites.join(person, old.payload)).outcome is JoinOutcome.revoked
    assert await rows(tree, "SELECT * FROM join_requests") == []
    assert (await tree.invites.join(person, new.payload)).outcome is JoinOutcome.requested
    assert (await tree.invites.join(person, other_role.payload)).outcome is JoinOutcome.joined
    assert (await tree.invites.join(person, other_org.payload)).outcome is JoinOutcome.requested
    assert [(i.payload, i.revoked) for i in await tree.invites.list("sanyi", actor=SYSTEM_ACTOR)] == [
        (old.payload, True), (other_role.payload, False), (new.payload, False)]


@pytest.mark.parametrize("payload", ["j-doesnotexist", "", "j-", "x-" + "a" * 16])
async def test_invalid_payload(tree: Core, payload: str) -> None:
    person = await newcomer(tree)
    before = await snapshot(tree)
    result = await tree.invites.join(person, payload)
    assert result.outcome is JoinOutcome.invalid and result.org is None
    assert await snapshot(tree) == before


async def test_revoke_unknown_payload(tree: Core) -> None:
    with pytest.raises(NotFound):
        await tree.invites.revoke("j-doesnotexist", actor=SYSTEM_ACTOR)
