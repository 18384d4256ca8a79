"""A PNG of accuracy against $ per 1,000 items, with the Pareto front of configs marked.

The figure is drawn on its own `Figure` with the Agg canvas, so matplotlib's global backend and
pyplot state are left untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from shoal.evaluate.summary import ConfigSummary

logger = logging.getLogger("shoal.report.plot")

LOG_SCALE_SPAN = 10  # use a log x axis when positive costs span more than this factor


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Return the indices of the (cost, accuracy) points that no other point dominates.

    A point dominates another when its accuracy is at least as high and its cost at most as
    high, with at least one of the two strictly better. Identical points do not dominate each
    other, so both stay on the front. Indices are ordered by cost, then by accuracy.
    """
    front = [
        index
        for index, point in enumerate(points)
        if not any(_dominates(other, point) for other in points)
    ]
    return sorted(front, key=lambda index: (points[index][0], points[index][1]))


def _dominates(first: tuple[float, float], second: tuple[float, float]) -> bool:
    first_cost, first_accuracy = first
    second_cost, second_accuracy = second
    no_worse = first_cost <= second_cost and first_accuracy >= second_accuracy
    better = first_cost < second_cost or first_accuracy > second_accuracy
    return no_worse and better


def plot_pareto(summaries: Sequence[ConfigSummary], path: Path, title: str) -> None:
    """Write a PNG of each config's accuracy against its $ per 1,000 items to `path`.

    Configs on the Pareto front are joined by a line and drawn with their own marker. Parent
    folders of `path` are created.
    """
    if not summaries:
        raise ValueError("plot_pareto needs at least one config summary")
    points = [(float(summary.cost_per_1k_usd), summary.accuracy) for summary in summaries]
    front = pareto_front(points)

    figure = Figure(figsize=(8, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    set_cost_scale(axes, [cost for cost, _ in points])
    _draw_points(axes, summaries, points, front)
    axes.set_xlabel("$ per 1,000 items")
    axes.set_ylabel("accuracy")
    axes.set_title(plain_text(title))
    axes.margins(x=0.15, y=0.1)  # room for the config labels right of and above the points
    axes.grid(True, alpha=0.3)
    # Below the axes, so the legend never hides a point or its label.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, frameon=False)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=150)
    logger.info("wrote the accuracy/cost plot of %d configs to %s", len(summaries), path)


def set_cost_scale(axes: Axes, costs: list[float]) -> None:
    """Pick a log x axis when positive costs span more than LOG_SCALE_SPAN, else a linear one.

    A log axis cannot show a cost of 0, so with a zero cost present the axis is symlog, linear
    below the smallest positive cost.
    """
    positive = [cost for cost in costs if cost > 0]
    if not positive or max(positive) / min(positive) <= LOG_SCALE_SPAN:
        return
    if len(positive) < len(costs):
        axes.set_xscale("symlog", linthresh=min(positive))
    else:
        axes.set_xscale("log")


def _draw_points(
    axes: Axes,
    summaries: Sequence[ConfigSummary],
    points: list[tuple[float, float]],
    front: list[int],
) -> None:
    on_front = set(front)
    dominated = [index for index in range(len(points)) if index not in on_front]

    axes.plot(
        [points[index][0] for index in front],
        [points[index][1] for index in front],
        color="tab:blue", marker="D", markersize=8, linewidth=1.5, label="Pareto front",
    )
    if dominated:
        axes.scatter(
            [points[index][0] for index in dominated],
            [points[index][1] for index in dominated],
            color="tab:gray", marker="o", s=40, label="dominated",
        )
    for summary, (cost, accuracy) in zip(summaries, points):
        axes.annotate(
            plain_text(summary.config), (cost, accuracy),
            xytext=(6, 6), textcoords="offset points", fontsize=8,
        )


def plain_text(text: str) -> str:
    """Escape "$" so that matplotlib draws it instead of starting math text."""
    return text.replace("$", r"\$")
