"""Reference strategies on logged outcomes: each single model, the oracle and random mixes.

Every function reads the logged scores and costs and returns `StrategyPoint`s with the mean
score and mean cost per item. The outcomes must have a score and a cost for every item and
model, so call `LoggedOutcomes.complete()` first on files with gaps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shoal.simulate.frontier import StrategyPoint
from shoal.simulate.outcomes import LoggedOutcomes

ORACLE = "oracle"


def single_models(outcomes: LoggedOutcomes) -> list[StrategyPoint]:
    """Return one point per model, in `outcomes.models` order: its mean score and mean cost."""
    _check_complete(outcomes)
    accuracies = outcomes.scores.mean(axis=0)
    costs = outcomes.costs.mean(axis=0)
    return [
        StrategyPoint(model, float(accuracies[column]), float(costs[column]))
        for column, model in enumerate(outcomes.models)
    ]


def best_single(points: Sequence[StrategyPoint]) -> StrategyPoint:
    """Return the most accurate point, and the cheapest one when several tie on accuracy.

    Raises ValueError when `points` is empty.
    """
    if not points:
        raise ValueError("best_single needs at least one strategy point")
    return min(points, key=lambda point: (-point.accuracy, point.mean_cost_usd))


def oracle(outcomes: LoggedOutcomes) -> tuple[StrategyPoint, np.ndarray]:
    """Route each item to the cheapest model that is right, knowing every model's score.

    A model is right on an item when its score is 1. On an item where no model is right, the
    oracle picks the cheapest model overall and is scored with that model's logged score,
    which is 0 for right/wrong data. Ties in cost go to the model listed first.

    Returns the point and the chosen model's column index per item.
    """
    _check_complete(outcomes)
    right = outcomes.scores == 1.0
    right_costs = np.where(right, outcomes.costs, np.inf)
    cheapest_right = right_costs.argmin(axis=1)
    cheapest = outcomes.costs.argmin(axis=1)
    choices = np.where(right.any(axis=1), cheapest_right, cheapest)

    items = np.arange(len(outcomes))
    point = StrategyPoint(
        ORACLE,
        float(outcomes.scores[items, choices].mean()),
        float(outcomes.costs[items, choices].mean()),
    )
    return point, choices


def random_mix(
    outcomes: LoggedOutcomes, model_a: str, model_b: str, share_b: float
) -> StrategyPoint:
    """Return the expected point when each item goes to `model_b` with probability `share_b`.

    The expectation is exact, not sampled: accuracy and cost are the mix
    (1 - share_b) * model_a + share_b * model_b of the two models' means.

    Raises KeyError for an unknown model and ValueError when `share_b` is outside [0, 1].
    """
    if not 0.0 <= share_b <= 1.0:
        raise ValueError(f"share_b is {share_b}; give a probability between 0 and 1")
    pair = outcomes.subset([model_a, model_b])
    first, second = single_models(pair)
    share_a = 1.0 - share_b
    return StrategyPoint(
        f"{model_a} + {share_b:.0%} {model_b}",
        share_a * first.accuracy + share_b * second.accuracy,
        share_a * first.mean_cost_usd + share_b * second.mean_cost_usd,
    )


def random_mix_curve(
    outcomes: LoggedOutcomes, model_a: str, model_b: str, steps: int = 11
) -> list[StrategyPoint]:
    """Return `random_mix` at `steps` evenly spaced shares of `model_b`, from 0 to 1.

    Raises ValueError when `steps` is below 2.
    """
    if steps < 2:
        raise ValueError(f"steps is {steps}; give at least 2 so the curve has both ends")
    return [
        random_mix(outcomes, model_a, model_b, float(share))
        for share in np.linspace(0.0, 1.0, steps)
    ]


def _check_complete(outcomes: LoggedOutcomes) -> None:
    if len(outcomes) == 0:
        raise ValueError(f"{outcomes.source} has no items to evaluate")
    for name, values in (("scores", outcomes.scores), ("costs", outcomes.costs)):
        if np.isnan(values).any():
            raise ValueError(
                f"{outcomes.source} has missing {name}; call outcomes.complete() to drop "
                "items without scores, and give prices for models without costs"
            )
