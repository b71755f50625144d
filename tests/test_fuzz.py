"""A bounded fuzz run (bench/fuzzer.py) in the suite: a fixed seed and a small budget, so that the
same steps run every time; `python -m bench fuzz --n N` runs longer with any seed.

One run is shared by the tests below, each asserting one property, so a failure names the property
and prints the steps that reproduce it. The last test checks the checker: a change it must see is
seen, and a change the actor may make is not reported."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from bench.fuzzer import ADMIN, Fuzzer, Report, fuzz, protected_changes

# The walk depends on every screen: a new step or command changes it. With the meeting length step
# and the deliberation, 四议两公开, appraisal and broadcast commands, most seeds never finish scheduling a
# meeting within 600 steps (the secretary's time goes to incoming problems). Of seeds 1-24, after
# digests, points, supervision, privacy and the opinion map came in, 1, 8, 10, 12 and 20 do; the
# coverage test below says so when a change breaks that.
SEED = 10
STEPS = 600


@pytest.fixture(scope="module")
def report() -> Report:
    return asyncio.run(fuzz(STEPS, SEED))


def explain(report: Report) -> str:
    return "\n".join([report.line(), *report.details()])


def test_the_run_exercised_real_flows_and_replays(report: Report) -> None:
    """Not vacuous: legitimate actors made tickets and meetings that others could have touched, and
    buttons sent to one person were pressed by another and refused."""
    assert report.steps == STEPS
    assert report.protected_checks >= STEPS * 0.9
    for table in ("tickets", "ticket_events", "meetings", "meeting_attendees", "roles", "orgs"):
        assert report.protected_rows.get(table, 0) > 0, f"no {table} row was ever protected\n{explain(report)}"
    assert report.replays > 0 and report.replays_refused > 0, explain(report)
    assert report.potent_replays > 0, "no replayed button had done anything for the person it was sent to"
    assert len(report.commands_in_flows) >= 2, f"commands were typed in too few flows\n{explain(report)}"


def test_no_unhandled_exception(report: Report) -> None:
    assert report.count("error") == 0, explain(report)


def test_every_call_within_telegram_limits(report: Report) -> None:
    assert report.count("limit") == 0, explain(report)


def test_no_change_without_a_right(report: Report) -> None:
    assert report.count("unauthorised") == 0, explain(report)


async def test_the_rights_check_sees_a_forged_change() -> None:
    """Change a ticket and grant a role behind the bot's back: both are reported for a stranger; the
    ticket's change not for its own resident, and nothing for an admin."""
    with tempfile.TemporaryDirectory() as tmp:
        fuzzer = Fuzzer(SEED, Path(tmp))
        await fuzzer.start()
        try:
            await fuzzer.run(150)  # some real tickets
            core, db = fuzzer.app.core, fuzzer.db
            assert db is not None
            before = db.snapshot()
            row = await core.db.fetchone("SELECT id, resident_id FROM tickets ORDER BY id LIMIT 1")
            assert row is not None, "150 steps made no ticket"
            ticket_id, resident = row[0], row[1]
            sanyi = await core.db.fetchval("SELECT id FROM orgs WHERE code = 'sanyi'")
            async with core.db.transaction() as tx:
                await tx.execute("UPDATE tickets SET status = 'forged' WHERE id = ?", (ticket_id,))
                await tx.execute("INSERT INTO roles (person_id, org_id, role, granted_at) VALUES (4001, ?, "
                                 "'secretary', '2026-11-27T01:00:00.000000Z')", (sanyi,))
            after = db.snapshot()
            stranger, _ = protected_changes(db, before, after, 4001, {ADMIN})
            assert any(c.startswith("tickets row") and "'forged'" in c for c in stranger), stranger
            assert any(c.startswith("roles row") and "was added" in c for c in stranger), stranger
            own, _ = protected_changes(db, before, after, resident, {ADMIN})
            assert not any(c.startswith("tickets row") for c in own), own
            assert protected_changes(db, before, after, ADMIN, {ADMIN})[0] == []
        finally:
            await fuzzer.stop()
