"""A PNG of accuracy against $ per 1,000 items for a chain, its steps and the single call.

`shoal eval` on a pipeline draws the same plot without the single call.

Drawn on its own `Figure` with the Agg canvas, as `shoal.report.plot` does, so matplotlib's
global state is left untouched.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

from shoal.report.plot import plain_text, set_cost_scale

if TYPE_CHECKING:
    from shoal.pipeline.compare import CompareResult
    from shoal.pipeline.eval_summary import PipelineEvalResult

logger = logging.getLogger("shoal.pipeline.compare")

Point = tuple[str, float, float]  # label, $ per 1,000 items, accuracy


def chain_points(chain: PipelineEvalResult) -> dict[str, list[Point]]:
    """Return the plotted points of a pipeline evaluation by kind: the chain and its steps.

    A step is plotted at its accuracy and mean cost over the items it ran on. The chain or
    a step without a scored item has no accuracy and is left out.
    """
    points: dict[str, list[Point]] = {"chain": [], "steps": []}
    if chain.end_to_end_accuracy is not None:
        points["chain"].append(("chain", float(chain.cost_per_1k_usd), chain.end_to_end_accuracy))
    for name, step in chain.steps.items():
        if step.accuracy is not None and step.mean_cost_usd is not None:
            points["steps"].append((name, float(step.mean_cost_usd) * 1000, step.accuracy))
    points["steps"].sort(key=lambda point: point[1])
    return points


def unscored_steps(chain: PipelineEvalResult) -> str:
    """Return a line naming the steps that ran without a score, with their $/1k, or ""."""
    unscored = [
        f"{name} (${float(step.mean_cost_usd) * 1000:.3g}/1k)"
        for name, step in chain.steps.items()
        if step.accuracy is None and step.mean_cost_usd is not None
    ]
    return "not scored, so not plotted: " + ", ".join(unscored) if unscored else ""


def compare_points(result: CompareResult) -> dict[str, list[Point]]:
    """Return the plotted points by kind: the chain, its steps, and the single call."""
    points = chain_points(result.chain.result)
    single = result.single.result
    points["single call"] = []
    if single.end_to_end_accuracy is not None:
        points["single call"].append(
            (result.single_model, float(single.cost_per_1k_usd), single.end_to_end_accuracy)
        )
    return points


def plot_compare(result: CompareResult, path: Path) -> None:
    """Write the comparison's PNG to `path`, creating its parent folders."""
    title = f"{result.pipeline}: chain against one call"
    plot_points(compare_points(result), title, path, note=unscored_steps(result.chain.result))


def plot_pipeline(result: PipelineEvalResult, path: Path) -> None:
    """Write the PNG of a pipeline evaluation (the chain and its steps) to `path`."""
    title = f"{result.pipeline}: the chain and its steps"
    plot_points(chain_points(result), title, path, note=unscored_steps(result))


def plot_points(points: dict[str, list[Point]], title: str, path: Path, note: str = "") -> None:
    """Draw the points by kind on a log-scaled cost axis and write the PNG to `path`.

    A `note` is printed in small type under the title.
    """
    styles = {
        "chain": {"color": "tab:blue", "marker": "D", "s": 70},
        "steps": {"color": "tab:gray", "marker": "o", "s": 30},
        "single call": {"color": "tab:orange", "marker": "s", "s": 70},
    }
    figure = Figure(figsize=(8, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    set_cost_scale(axes, [cost for kind in points.values() for _, cost, _ in kind])
    for kind, kind_points in points.items():
        if not kind_points:
            continue
        axes.scatter(
            [cost for _, cost, _ in kind_points],
            [accuracy for _, _, accuracy in kind_points],
            label=kind if kind != "chain" else "chain, end to end",
            **styles[kind],  # type: ignore[arg-type]
        )
    axes.set_xlabel("$ per 1,000 items")
    axes.set_ylabel("accuracy")
    axes.set_title(plain_text(f"{title}\n{note}" if note else title), fontsize=10 if note else None)
    axes.margins(x=0.15, y=0.1)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=3, frameon=False)
    # The chain and the single call are labelled first, so that they get the free places.
    order = ["chain", "single call", "steps"]
    place_labels(axes, [point for kind in order for point in points.get(kind, [])])

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=150)
    logger.info("wrote the plot to %s", path)


# Places tried for a label, in points from its marker: (dx, dy, horizontal, vertical alignment).
LABEL_PLACES = [
    (6, 3, "left", "bottom"),
    (6, -3, "left", "top"),
    (-6, 3, "right", "bottom"),
    (-6, -3, "right", "top"),
    (6, 13, "left", "bottom"),
    (6, -13, "left", "top"),
]


def place_labels(axes: Axes, points: list[Point]) -> None:
    """Label each point at the first place in LABEL_PLACES that overlaps no earlier label.

    A label with no free place keeps the first place.
    """
    figure = axes.get_figure()
    assert figure is not None
    figure.canvas.draw()  # fixes the layout, so that label extents are final
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    placed: list[Bbox] = []
    for label, cost, accuracy in points:
        for place in LABEL_PLACES:
            text = _annotate(axes, label, cost, accuracy, place)
            extent = text.get_window_extent(renderer)
            if not any(extent.overlaps(other) for other in placed):
                break
            text.remove()
        else:
            extent = _annotate(axes, label, cost, accuracy, LABEL_PLACES[0]).get_window_extent(renderer)
        placed.append(extent)


def _annotate(
    axes: Axes, label: str, cost: float, accuracy: float, place: tuple[int, int, str, str]
) -> Annotation:
    dx, dy, horizontal, vertical = place
    return axes.annotate(
        plain_text(label), (cost, accuracy), xytext=(dx, dy), textcoords="offset points",
        fontsize=8, ha=horizontal, va=vertical,
    )
