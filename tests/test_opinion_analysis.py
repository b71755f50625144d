"""The opinion map's analysis (bot/services/opinion_analysis.py) on planted data (bench/opinion_data.py):
3 groups with known positions on 60 statements, 1,000 participants, 30% of votes missing."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from bench.opinion_data import plant
from bot.services.opinion_analysis import MIN_VOTES, TOP_BRIDGING, analyse, place


def test_the_planted_groups_are_recovered_and_the_shared_statements_bridge_them() -> None:
    planted = plant(participants=1000, statements=60, groups=3, missing=0.3, shared=TOP_BRIDGING)
    analysis = analyse(planted.votes, planted.seen)
    assert analysis.k == 3
    assert adjusted_rand_score(planted.groups[analysis.rows], analysis.labels) >= 0.9
    assert sorted(analysis.bridging) == planted.shared
    # Each group's representative statements are ones where that group stands apart; the most
    # divisive are never shared ones.
    assert len(analysis.representative) == 3 and all(analysis.representative)
    assert analysis.divisive and not set(analysis.divisive) & set(planted.shared)
    assert sum(analysis.sizes) == analysis.grouped == 1000


def test_shares_consensus_and_representativeness_follow_the_pol_is_formulas() -> None:
    planted = plant(participants=300, statements=20, groups=2, missing=0.2, shared=2, seed=3)
    a = analyse(planted.votes, planted.seen)
    s = a.stats[5]
    votes, seen = planted.votes[:, 5], planted.seen[:, 5]
    assert (s.agree, s.disagree, s.passed) == (int(((votes == 1) & seen).sum()), int(((votes == -1) & seen).sum()),
                                               int(((votes == 0) & seen).sum()))
    expected = 1.0
    for ga, gd, gp in s.groups:
        expected *= (ga + 1) / (ga + gd + gp + 2)
    assert abs(s.consensus - expected) < 1e-9
    for metric, direction in s.repness:
        if direction:
            assert metric > 0


def test_few_votes_are_counted_but_not_grouped_and_small_rounds_do_not_fail() -> None:
    votes = np.array([[1, -1, 1, 1, -1, 1, 1, 0], [1, 0, 0, 0, 0, 0, 0, 0]], dtype=np.int8)
    seen = np.array([[True] * 8, [True] + [False] * 7])
    a = analyse(votes, seen)
    assert a.participants == 2 and a.grouped == 1 and a.k == 0
    assert a.stats[0].agree == 2
    empty = analyse(np.zeros((0, 3), dtype=np.int8), np.zeros((0, 3), dtype=bool))
    assert empty.participants == 0 and empty.bridging == []
    same = np.ones((5, MIN_VOTES), dtype=np.int8)
    assert analyse(same, same.astype(bool)).k in (0, 1)


def test_a_new_voter_is_placed_in_the_nearest_group() -> None:
    planted = plant(participants=400, statements=30, groups=3, missing=0.3, shared=3, seed=5)
    a = analyse(planted.votes, planted.seen)
    agree_with = {}
    for i, row in enumerate(planted.votes[a.rows[:60]]):
        agree_with[i] = place(a.model, row.astype(float), int(planted.seen[a.rows[i]].sum())) == a.labels[i]
    assert sum(agree_with.values()) >= 57
