"""The opinion map's analysis (issue 13), after Pol.is (compdemocracy/polis, math/src/polismath/math):
a participant × statement matrix (agree 1, disagree −1, pass or unseen 0), PCA to two dimensions,
k-means with k = 2..5 picked by silhouette score, then per statement the shares overall and per
group, the group-aware consensus and the representativeness of each statement for each group.

What we followed from Pol.is, kept simple:
- only participants with at least MIN_VOTES votes are grouped (Pol.is: 7); everyone is counted;
- the projection of a participant who saw few statements is stretched by sqrt(S / votes), so that
  unseen statements (0) do not pull them to the middle (Pol.is "sparsity-aware" scaling);
- agree probability with a prior: pa = (agree + 1) / (seen + 2);
- group-aware consensus: the product over groups of pa in the group;
- representativeness: ra = pa(group) / pa(everyone else) (and rd the same for disagree); a statement
  represents a group when the group agrees (or disagrees) more often than not and more than the
  rest do; the metric is ra × pa (Pol.is also runs two z-tests before taking it: left out).
- divisiveness (not a Pol.is number; its "comment extremity" is close): how far apart the groups'
  agree probabilities are (max − min).

Pure numpy / scikit-learn on arrays: no database, no asyncio; the service runs it in a worker
thread. No person's id goes in or out: rows are positions in the caller's list."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

MIN_VOTES = 7
K_RANGE = range(2, 6)
SILHOUETTE_SAMPLE = 1500    # silhouette on a sample: exact for small rounds, linear time for large ones
TOP_BRIDGING = 5
TOP_REPRESENTATIVE = 3
TOP_DIVISIVE = 3
SEED = 7                    # the same votes give the same groups (and the same group numbers)


@dataclass
class StatementStats:
    agree: int
    disagree: int
    passed: int
    groups: list[tuple[int, int, int]]      # (agree, disagree, pass) in each group
    consensus: float
    divisive: float
    repness: list[tuple[float, int]]        # per group: (metric, +1 agree / −1 disagree / 0 none)

    @property
    def seen(self) -> int:
        return self.agree + self.disagree + self.passed


@dataclass
class Analysis:
    participants: int                       # everyone with at least one vote
    grouped: int                            # those with at least MIN_VOTES votes
    k: int                                  # 0: too few to group
    labels: np.ndarray                      # group of each grouped participant (0..k-1)
    rows: np.ndarray                        # which input rows were grouped
    coords: np.ndarray                      # their map positions (grouped × 2)
    sizes: list[int]
    stats: list[StatementStats]
    bridging: list[int] = field(default_factory=list)           # statement columns
    representative: list[list[tuple[int, int]]] = field(default_factory=list)  # per group: (column, direction)
    divisive: list[int] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)        # to place one more person on the map

    def priority(self) -> np.ndarray:
        """How useful each statement is to show next: it separates the groups or bridges them."""
        return np.array([max(s.divisive, s.consensus) for s in self.stats], dtype=float)


def analyse(votes: np.ndarray, seen: np.ndarray) -> Analysis:
    """`votes`: P × S of 1 / −1 / 0; `seen`: P × S, True where the person voted (a pass too).

    One BLAS / OpenMP thread: the analysis runs in a worker thread beside the bot's event loop, and
    on a busy two-core machine the libraries' spinning threads made it ten times slower (3–6 s
    instead of 0.5 s for 5,000 × 300) and starved the loop."""
    with threadpool_limits(limits=1):
        return _analyse(votes, seen)


def _analyse(votes: np.ndarray, seen: np.ndarray) -> Analysis:
    votes = np.asarray(votes, dtype=np.float64)
    seen = np.asarray(seen, dtype=bool)
    counts = seen.sum(axis=1)
    participants = int((counts > 0).sum())
    rows = np.flatnonzero(counts >= MIN_VOTES)
    n_statements = votes.shape[1]
    labels = np.zeros(len(rows), dtype=int)
    coords = np.zeros((len(rows), 2))
    k, model = 0, {}
    # Everyone voting alike has no axis to map along: nobody is grouped apart (k = 0).
    if len(rows) >= 3 and n_statements >= 2 and float(votes[rows].var(axis=0).sum()) > 0:
        coords, model = _project(votes[rows], counts[rows])
        k, labels = _cluster(coords)
        model["centroids"] = [coords[labels == g].mean(axis=0).tolist() for g in range(k)]
    sizes = [int((labels == g).sum()) for g in range(k)] if k else []
    stats = _statements(votes, seen, rows, labels, max(k, 1))
    analysis = Analysis(participants=participants, grouped=len(rows), k=k, labels=labels, rows=rows,
                        coords=coords, sizes=sizes, stats=stats, model=model)
    _pick(analysis)
    return analysis


def _project(matrix: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    pca = PCA(n_components=2, random_state=SEED)
    coords = pca.fit_transform(matrix)
    stretch = np.sqrt(matrix.shape[1] / np.maximum(counts, 1))
    coords = coords * stretch[:, None]
    return coords, {"mean": pca.mean_.tolist(), "components": pca.components_.tolist()}


def _cluster(coords: np.ndarray) -> tuple[int, np.ndarray]:
    """k-means for k = 2..5 (fewer when there are few people); the k with the best silhouette."""
    best: tuple[float, int, np.ndarray] | None = None
    distinct = len(np.unique(coords.round(9), axis=0))
    for k in K_RANGE:
        if k >= min(len(coords), distinct + 1):
            break
        labels = KMeans(n_clusters=k, n_init=4, random_state=SEED).fit_predict(coords)
        if len(set(labels.tolist())) < 2:
            continue
        score = float(silhouette_score(coords, labels, sample_size=min(SILHOUETTE_SAMPLE, len(coords)),
                                       random_state=SEED))
        if best is None or score > best[0] + 1e-9:
            best = (score, k, labels)
    if best is None:
        return 1, np.zeros(len(coords), dtype=int)
    return best[1], _renumber(best[2], best[1])


def _renumber(labels: np.ndarray, k: int) -> np.ndarray:
    """Group 1 is the largest, then by size: numbers people can read, stable for the same votes."""
    order = sorted(range(k), key=lambda g: (-int((labels == g).sum()), g))
    mapping = np.empty(k, dtype=int)
    for new, old in enumerate(order):
        mapping[old] = new
    return mapping[labels]


def _statements(votes: np.ndarray, seen: np.ndarray, rows: np.ndarray, labels: np.ndarray,
                k: int) -> list[StatementStats]:
    agree = (votes > 0) & seen
    disagree = (votes < 0) & seen
    passed = seen & (votes == 0)
    total = (agree.sum(axis=0), disagree.sum(axis=0), passed.sum(axis=0))
    onehot = np.eye(k, dtype=np.int64)[labels] if len(rows) else np.zeros((0, k), dtype=np.int64)
    # Per group counts: (statements × grouped) @ (grouped × k).
    ga = agree[rows].T.astype(np.int64) @ onehot
    gd = disagree[rows].T.astype(np.int64) @ onehot
    gp = passed[rows].T.astype(np.int64) @ onehot
    gs = ga + gd + gp
    pa = (ga + 1) / (gs + 2)
    pd = (gd + 1) / (gs + 2)
    consensus = pa.prod(axis=1) if len(rows) else np.zeros(votes.shape[1])
    divisive = pa.max(axis=1) - pa.min(axis=1) if k > 1 else np.zeros(votes.shape[1])
    ra, rd = _ratios(ga, gd, gs)
    out = []
    for s in range(votes.shape[1]):
        rep = []
        for g in range(k if len(rows) else 0):
            agree_metric = ra[s, g] * pa[s, g] if pa[s, g] > 0.5 and ra[s, g] > 1 else 0.0
            disagree_metric = rd[s, g] * pd[s, g] if pd[s, g] > 0.5 and rd[s, g] > 1 else 0.0
            if agree_metric >= disagree_metric:
                rep.append((float(agree_metric), 1 if agree_metric > 0 else 0))
            else:
                rep.append((float(disagree_metric), -1))
        out.append(StatementStats(
            agree=int(total[0][s]), disagree=int(total[1][s]), passed=int(total[2][s]),
            groups=[(int(ga[s, g]), int(gd[s, g]), int(gp[s, g])) for g in range(ga.shape[1])],
            consensus=float(consensus[s]), divisive=float(divisive[s]), repness=rep))
    return out


def _ratios(ga: np.ndarray, gd: np.ndarray, gs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pol.is repness ratios: the group's probability over everyone else's, with the same prior."""
    ra_rest = (ga.sum(axis=1, keepdims=True) - ga + 1) / (gs.sum(axis=1, keepdims=True) - gs + 2)
    rd_rest = (gd.sum(axis=1, keepdims=True) - gd + 1) / (gs.sum(axis=1, keepdims=True) - gs + 2)
    return (ga + 1) / (gs + 2) / ra_rest, (gd + 1) / (gs + 2) / rd_rest


def _pick(analysis: Analysis) -> None:
    """The three parts of the result: bridging, each group's representative, the most divisive."""
    stats = analysis.stats
    voted = [i for i, s in enumerate(stats) if s.seen > 0]
    # Bridging: accepted in every group, and by more people than reject it overall.
    bridging = [i for i in sorted(voted, key=lambda i: (-stats[i].consensus, i)) if stats[i].agree > stats[i].disagree]
    analysis.bridging = bridging[:TOP_BRIDGING]
    if analysis.k > 1:
        for g in range(analysis.k):
            ranked = sorted((i for i in voted if stats[i].repness[g][1] != 0),
                            key=lambda i: (-stats[i].repness[g][0], i))
            analysis.representative.append([(i, stats[i].repness[g][1]) for i in ranked[:TOP_REPRESENTATIVE]])
        chosen = set(analysis.bridging)
        divisive = [i for i in sorted(voted, key=lambda i: (-stats[i].divisive, i))
                    if i not in chosen and stats[i].divisive > 0.2]
        analysis.divisive = divisive[:TOP_DIVISIVE]
    elif analysis.k == 1:
        analysis.representative.append([])


def place(model: dict[str, Any], row: np.ndarray, count: int) -> int | None:
    """The group (0-based) whose centre is nearest to one person's votes, projected with the last
    analysis's PCA (so a person who voted since then still sees where they stand)."""
    if not model or not model.get("centroids"):
        return None
    mean = np.asarray(model["mean"])
    components = np.asarray(model["components"])
    if row.shape[0] != mean.shape[0]:
        return None
    point = (row - mean) @ components.T * np.sqrt(row.shape[0] / max(count, 1))
    centroids = np.asarray(model["centroids"])
    return int(np.argmin(np.linalg.norm(centroids - point, axis=1)))
