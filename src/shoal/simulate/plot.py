"""A PNG per task of simulated strategies: accuracy against $ per 1,000 items.

Single models and the oracle are points. Each strategy family is drawn as the Pareto front of
its settings' test points, and its chosen setting is marked.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from shoal.report.plot import plain_text, set_cost_scale
from shoal.simulate.frontier import pareto_front
from shoal.simulate.report import TaskReport

FAMILY_KINDS = ("router", "cascade", "baseline")


def plot_task(report: TaskReport, path: Path) -> None:
    """Write the plot of `report` to `path`, creating its folder."""
    figure = Figure(figsize=(9, 6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()

    costs = []
    for result in report.strategies:
        point = result.test
        costs.append(point.cost_per_1k_usd)
        if result.kind in ("single", "reference", "oracle"):
            marker = {"single": "o", "reference": "*", "oracle": "P"}[result.kind]
            axes.scatter([point.cost_per_1k_usd], [point.accuracy], marker=marker, s=60, color="tab:gray")
            label = result.strategy.removeprefix("single:").rsplit("/", 1)[-1]
            axes.annotate(plain_text(label), (point.cost_per_1k_usd, point.accuracy),
                          xytext=(4, 4), textcoords="offset points", fontsize=7)
        elif result.kind in FAMILY_KINDS and len(result.curve) > 1 and result.strategy != "best-single":
            front = pareto_front(result.curve)
            line = axes.plot([p.cost_per_1k_usd for p in front], [p.accuracy for p in front],
                             linewidth=1.2, label=result.strategy)[0]
            axes.scatter([point.cost_per_1k_usd], [point.accuracy], marker="D", s=40,
                         color=line.get_color())
            costs.extend(p.cost_per_1k_usd for p in front)

    set_cost_scale(axes, costs)
    axes.set_xlabel("$ per 1,000 items (test split)")
    axes.set_ylabel("accuracy (test split)")
    axes.set_title(plain_text(
        f"{report.task}: {report.test_items} test items; diamonds are settings chosen on train"
    ))
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=3, frameon=False, fontsize=8)

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=150)
