"""The plumbing of `python -m bench votes` at a small size: the round is opened through the chat,
every press is answered, and the published result matches the presses exactly. No timing is
asserted (the machine is shared; the figures are the benchmark's business)."""

from __future__ import annotations

import random

from bench.votes import CHOICES, FIRST_OUTSIDER, Outcome, plan_presses, votes_run

V = 50


def test_the_plan_has_changes_double_presses_and_forged_presses() -> None:
    voters = list(range(1, 201))
    outsiders = [FIRST_OUTSIDER, FIRST_OUTSIDER + 1]
    presses, last = plan_presses(voters, outsiders, 60.0, random.Random(1))
    per_user: dict[int, list[int]] = {}
    for press in presses:
        per_user.setdefault(press.user, []).append(press.choice)
    assert [p.at for p in presses] == sorted(p.at for p in presses)
    assert all(0 <= p.at <= 60.0 for p in presses)
    assert sum(1 for c in per_user.values() if len(c) == 2 and c[0] != c[1]) == 20   # 10% change
    assert sum(1 for c in per_user.values() if len(c) == 2 and c[0] == c[1]) == 2    # 1% press twice
    assert {p.user for p in presses if not p.eligible} == set(outsiders)
    assert set(last) == set(voters) and all(last[u] == per_user[u][-1] for u in voters)
    assert all(0 <= c < len(CHOICES) for c in last.values())


async def test_a_small_run_counts_every_ballot_once() -> None:
    out: Outcome = await votes_run(V, limit=30, window=1.0)
    assert out.voters == V
    assert out.unanswered == 0
    assert out.counted == out.expected and sum(out.expected.values()) == V
    assert out.lost == 0 and out.double == 0
    assert out.ballots == V                      # the turnout line: each voter once
    assert out.refused_forged == 1               # the one outsider (1% of 50) was refused
    assert out.presses == V + 5 + 1 + 1          # 5 changes (10%), 1 double press, 1 forged press (at least one)
