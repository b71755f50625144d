"""The one percentile function every benchmark uses."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable


def percentile(values: Iterable[float], q: int) -> float:
    """The q-th percentile (1..99) of `values`, NaN if there are none.

    statistics.quantiles with the inclusive method: the samples are taken as the whole population
    (every update of the run), so p99 of 100 values lies between the two largest."""
    data = list(values)
    if not data:
        return math.nan
    if len(data) == 1:
        return data[0]
    return statistics.quantiles(data, n=100, method="inclusive")[q - 1]
