"""Planted opinion data for the opinion map (issue 13): groups with known positions on statements,
some statements shared by every group, votes missing at random. Used by `python -m bench
opinions` and by the tests (tests/test_opinion_analysis.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Planted:
    votes: np.ndarray        # participants × statements: 1 agree, −1 disagree, 0 pass or unseen
    seen: np.ndarray         # True where the participant voted (a pass too)
    groups: np.ndarray       # the planted group of each participant
    shared: list[int]        # statements every group agrees with


def plant(participants: int = 1000, statements: int = 60, groups: int = 3, missing: float = 0.3,
          shared: int = 6, faithful: float = 0.85, passing: float = 0.05, seed: int = 1) -> Planted:
    """Each group has a position (+1 / −1) on each statement; the first `shared` statements are +1
    for every group, and no other statement is +1 for every group. A participant votes their
    group's position with probability `faithful`, the other way otherwise, passes with
    probability `passing`, and has not seen a statement with probability `missing`."""
    rng = np.random.default_rng(seed)
    positions = rng.choice([-1, 1], size=(groups, statements))
    positions[:, :shared] = 1
    for s in range(shared, statements):
        while (positions[:, s] == 1).all() or (positions[:, s] == -1).all():
            positions[:, s] = rng.choice([-1, 1], size=groups)
    group = rng.integers(0, groups, size=participants)
    own = positions[group]
    flip = rng.random((participants, statements)) >= faithful
    votes = np.where(flip, -own, own)
    passed = rng.random((participants, statements)) < passing
    votes[passed] = 0
    seen = rng.random((participants, statements)) >= missing
    votes[~seen] = 0
    return Planted(votes=votes.astype(np.int8), seen=seen, groups=group, shared=list(range(shared)))
