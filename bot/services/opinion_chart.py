"""The opinion map as a PNG (bot/charts.py: matplotlib, Chinese labels): one dot per participant
who was grouped, coloured by group, each group labelled with its number and size at its centre.
Dots, not people: no names, no ids, no hover data. Runs in a worker thread (the service calls it
through asyncio.to_thread)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bot.charts import new_figure, png_bytes
from bot.services.opinion_analysis import Analysis

COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"]
MAX_DOTS = 4000   # beyond this a random sample is drawn (the picture is the same, drawing is faster)


@dataclass(frozen=True)
class Labels:
    title: str
    group: Callable[[int, int], str]   # (group number from 1, its size) → "第1组（38人）"
    note: str                          # what a dot is
    empty: str                         # too few votes to draw groups yet


def draw(analysis: Analysis | None, labels: Labels) -> bytes:
    figure = new_figure(6.4, 5.2, dpi=110)
    ax = figure.add_subplot()
    ax.set_title(labels.title, fontsize=13)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_color("#cccccc")
    if analysis is None or analysis.k < 1 or len(analysis.coords) == 0:
        ax.text(0.5, 0.5, labels.empty, ha="center", va="center", fontsize=12, transform=ax.transAxes)
        return png_bytes(figure)
    coords, groups = analysis.coords, analysis.labels
    if len(coords) > MAX_DOTS:
        pick = np.random.default_rng(0).choice(len(coords), MAX_DOTS, replace=False)
        coords, groups = coords[pick], groups[pick]
    for g in range(analysis.k):
        mine = coords[groups == g]
        ax.scatter(mine[:, 0], mine[:, 1], s=14, alpha=0.55, color=COLOURS[g % len(COLOURS)], linewidths=0)
    for g in range(analysis.k):
        centre = analysis.coords[analysis.labels == g].mean(axis=0)
        ax.annotate(labels.group(g + 1, analysis.sizes[g]), centre, ha="center", va="center", fontsize=12,
                    bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": COLOURS[g % len(COLOURS)]})
    ax.set_xlabel(labels.note, fontsize=9, color="#555555")  # under the axes: the layout makes room for it
    return png_bytes(figure)
