"""Accuracy-cost points of routing strategies, their Pareto front and summary measures.

A strategy is summarised by its mean score over a task's items (`accuracy`) and its mean cost
per item in USD. `pareto_front` keeps the points that no other point beats on both, `aiq`
reduces a set of points to one number (RouterBench's Average Improvement in Quality), and
`oracle_saving_captured` measures how much of the oracle's saving a strategy achieves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

# Accuracies closer than this count as equal when comparing a strategy with the best model.
_ACCURACY_TOLERANCE = 1e-12


@dataclass(frozen=True)
class StrategyPoint:
    """One strategy's mean score per item (0 to 1) and mean cost per item in USD."""

    strategy: str
    accuracy: float
    mean_cost_usd: float

    @property
    def cost_per_1k_usd(self) -> float:
        """Cost of 1,000 items in USD."""
        return self.mean_cost_usd * 1000.0

    @property
    def accuracy_per_dollar(self) -> float:
        """Accuracy divided by the mean cost per item, or infinity for a free strategy."""
        if self.mean_cost_usd == 0:
            return float("inf")
        return self.accuracy / self.mean_cost_usd


def pareto_front(points: Iterable[StrategyPoint]) -> list[StrategyPoint]:
    """Return the non-dominated points, sorted by cost and then by accuracy.

    A point is dominated when another point costs no more and is at least as accurate, and is
    strictly better on one of the two. Points with equal cost and accuracy do not dominate each
    other, so all of them are kept.
    """
    candidates = list(points)
    front = [
        point
        for point in candidates
        if not any(_dominates(other, point) for other in candidates)
    ]
    return sorted(front, key=lambda point: (point.mean_cost_usd, point.accuracy))


def _dominates(first: StrategyPoint, second: StrategyPoint) -> bool:
    no_worse = (
        first.mean_cost_usd <= second.mean_cost_usd and first.accuracy >= second.accuracy
    )
    better = first.mean_cost_usd < second.mean_cost_usd or first.accuracy > second.accuracy
    return no_worse and better


def aiq(
    points: Iterable[StrategyPoint], cost_range: tuple[float, float] | None = None
) -> float:
    """Compute the Average Improvement in Quality: the mean height of the quality-cost curve.

    The curve is built as follows:

    1. For each distinct cost keep the highest accuracy, and sort by cost.
    2. Take the upper convex hull of those (cost, accuracy) points. Mixing two strategies at
       random reaches every point on the segment between them, so the hull is reachable.
    3. Make the hull non-decreasing by carrying the running maximum accuracy forward, because
       a larger budget can always be spent on a cheaper, better strategy.
    4. Integrate the curve with the trapezoid rule over the cost range and divide by its width.

    The cost range defaults to [lowest cost, highest cost] of the points. A given `cost_range`
    (low, high) can be wider: above the highest cost the curve stays at its last value, and
    below the lowest cost it is 0, because no strategy is that cheap. A single point, or points
    that all cost the same, return the highest accuracy when no `cost_range` is given.

    Raises ValueError when there are no points or `cost_range` has high <= low.
    """
    curve = _monotone_hull(points)
    costs = [cost for cost, _ in curve]
    if cost_range is None:
        low, high = costs[0], costs[-1]
        if high == low:
            return curve[-1][1]
    else:
        low, high = cost_range
        if not high > low:
            raise ValueError(f"cost_range {cost_range} is empty; give (low, high) with high > low")
    return _curve_area(curve, low, high) / (high - low)


def _monotone_hull(points: Iterable[StrategyPoint]) -> list[tuple[float, float]]:
    """Return the non-decreasing upper convex hull of the points, as (cost, accuracy) pairs."""
    best: dict[float, float] = {}
    for point in points:
        best[point.mean_cost_usd] = max(best.get(point.mean_cost_usd, point.accuracy), point.accuracy)
    if not best:
        raise ValueError("aiq needs at least one strategy point")

    # Upper hull by the monotone chain method: pop the last vertex while it lies on or below
    # the segment from the vertex before it to the new point.
    hull: list[tuple[float, float]] = []
    for cost, accuracy in sorted(best.items()):
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], (cost, accuracy)) >= 0:
            hull.pop()
        hull.append((cost, accuracy))

    running_max = hull[0][1]
    monotone = []
    for cost, accuracy in hull:
        running_max = max(running_max, accuracy)
        monotone.append((cost, running_max))
    return monotone


def _cross(origin: tuple[float, float], first: tuple[float, float], second: tuple[float, float]) -> float:
    """Return the z component of (first - origin) x (second - origin), which is >= 0 unless the path turns right."""
    return (first[0] - origin[0]) * (second[1] - origin[1]) - (first[1] - origin[1]) * (
        second[0] - origin[0]
    )


def _curve_value(curve: Sequence[tuple[float, float]], cost: float) -> float:
    """Return the curve's height at `cost`: 0 below the first vertex, flat after the last."""
    if cost < curve[0][0]:
        return 0.0
    if cost >= curve[-1][0]:
        return curve[-1][1]
    for (left_cost, left_value), (right_cost, right_value) in pairwise(curve):
        if left_cost <= cost <= right_cost:
            share = (cost - left_cost) / (right_cost - left_cost)
            return left_value + share * (right_value - left_value)
    raise AssertionError("unreachable: cost lies between the first and last vertex")


def _curve_area(curve: Sequence[tuple[float, float]], low: float, high: float) -> float:
    """Integrate the curve over [low, high] with the trapezoid rule between its breakpoints."""
    breakpoints = {low, high}
    breakpoints.update(cost for cost, _ in curve if low < cost < high)
    ordered = sorted(breakpoints)
    area = 0.0
    for left, right in pairwise(ordered):
        left_value = _curve_value(curve, left)
        if left < curve[0][0] <= right:
            # The curve jumps from 0 to the first vertex here, so only [first vertex, right]
            # has area.
            left, left_value = curve[0]
        right_value = _curve_value(curve, right)
        area += (right - left) * (left_value + right_value) / 2.0
    return area


def oracle_saving_captured(
    point: StrategyPoint, best_single: StrategyPoint, oracle: StrategyPoint
) -> float | None:
    """Return the share of the oracle's saving over the best single model that `point` achieves.

    The share is (cost(best_single) - cost(point)) / (cost(best_single) - cost(oracle)): 1
    means the strategy is as cheap as the oracle, 0 means it costs as much as the best single
    model, and a negative value means it costs more. It is only a fair comparison when the
    strategy keeps the best single model's accuracy, so the function returns None when
    `point` is less accurate than `best_single`. It also returns None when the oracle is not
    cheaper than the best single model, because there is no saving to share.
    """
    if point.accuracy < best_single.accuracy - _ACCURACY_TOLERANCE:
        return None
    saving = best_single.mean_cost_usd - oracle.mean_cost_usd
    if saving <= 0:
        return None
    return (best_single.mean_cost_usd - point.mean_cost_usd) / saving
