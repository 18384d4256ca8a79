"""Choosing the tier-0 confidence threshold of a two-tier cascade on labelled data.

An item is accepted at tier 0 when its confidence is >= the threshold. Otherwise it is
escalated to tier 1, whose answer is used and whose cost is paid on top of tier 0's cost.
A threshold of `math.inf` escalates every item.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binom

from shoal.calibration.calibrators import as_correct, as_probabilities, as_scores

# Mean costs are sums of floats, so a budget comparison allows this relative rounding slack.
BUDGET_RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ThresholdCurve:
    """Cascade accuracy and mean cost at every distinct threshold, highest threshold first.

    `thresholds[0]` is `math.inf` (escalate all), then the distinct confidences in
    decreasing order, so the last entry accepts every item at tier 0.
    """

    thresholds: NDArray[np.float64]
    accuracy: NDArray[np.float64]
    mean_cost_usd: NDArray[np.float64]
    accepted_share: NDArray[np.float64]


@dataclass(frozen=True)
class ThresholdChoice:
    """A chosen threshold and the cascade's results with it on the labelled data."""

    threshold: float
    accuracy: float
    mean_cost_usd: float
    accepted_share: float


def _as_costs(cost: ArrayLike, size: int, name: str) -> NDArray[np.float64]:
    values = np.asarray(cost, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(size, float(values))
    values = as_scores(values, name)
    if values.shape[0] != size:
        raise ValueError(f"{name} must have {size} items like confidence, got {values.shape[0]}")
    if np.any(values < 0.0):
        raise ValueError(f"{name} must be non-negative, found {values.min():g}")
    return values


def threshold_curve(
    confidence: ArrayLike,
    correct0: ArrayLike,
    correct1: ArrayLike,
    cost0: ArrayLike,
    cost1: ArrayLike,
) -> ThresholdCurve:
    """Compute cascade accuracy and mean cost per item for every distinct threshold.

    `cost0` and `cost1` are USD per item (arrays, or scalars applied to every item).
    Tier 0's cost is paid for every item, tier 1's only for escalated items.
    """
    scores = as_scores(confidence, "confidence")
    size = scores.shape[0]
    if size == 0:
        raise ValueError("confidence is empty; at least 1 item is needed")
    right0 = as_correct(correct0, "correct0")
    right1 = as_correct(correct1, "correct1")
    for name, array in (("correct0", right0), ("correct1", right1)):
        if array.shape[0] != size:
            raise ValueError(f"{name} must have {size} items like confidence, got {array.shape[0]}")
    price0 = _as_costs(cost0, size, "cost0")
    price1 = _as_costs(cost1, size, "cost1")

    # Sort by confidence, highest first. Accepting at threshold u takes the first k(u) items,
    # where k(u) counts the confidences >= u, so prefix sums give every threshold at once.
    order = np.argsort(-scores, kind="stable")
    descending = scores[order]
    prefix_right0 = np.concatenate(([0], np.cumsum(right0[order])))
    prefix_right1 = np.concatenate(([0], np.cumsum(right1[order])))
    prefix_price1 = np.concatenate(([0.0], np.cumsum(price1[order])))

    distinct = np.unique(descending)[::-1]
    ascending = descending[::-1]
    accepted_counts = size - np.searchsorted(ascending, distinct, side="left")
    thresholds = np.concatenate(([math.inf], distinct))
    accepted_counts = np.concatenate(([0], accepted_counts))

    right = prefix_right0[accepted_counts] + (prefix_right1[-1] - prefix_right1[accepted_counts])
    spent = price0.sum() + (prefix_price1[-1] - prefix_price1[accepted_counts])
    return ThresholdCurve(
        thresholds=thresholds,
        accuracy=right / size,
        mean_cost_usd=spent / size,
        accepted_share=accepted_counts / size,
    )


def _choice(curve: ThresholdCurve, index: int) -> ThresholdChoice:
    return ThresholdChoice(
        threshold=float(curve.thresholds[index]),
        accuracy=float(curve.accuracy[index]),
        mean_cost_usd=float(curve.mean_cost_usd[index]),
        accepted_share=float(curve.accepted_share[index]),
    )


def cheapest_threshold_for_accuracy(
    confidence: ArrayLike,
    correct0: ArrayLike,
    correct1: ArrayLike,
    cost0: ArrayLike,
    cost1: ArrayLike,
    target: float,
) -> ThresholdChoice | None:
    """Return the threshold with the lowest mean cost whose cascade accuracy is >= `target`.

    Ties in cost go to the higher accuracy, then to the higher threshold. Returns None when
    no threshold reaches `target` on this data. This is an empirical fit with no guarantee
    for new data (see `guaranteed_threshold` for one).
    """
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target must be an accuracy in [0, 1], got {target!r}")
    curve = threshold_curve(confidence, correct0, correct1, cost0, cost1)
    feasible = np.flatnonzero(curve.accuracy >= target)
    if feasible.size == 0:
        return None
    # lexsort sorts by the last key first. Indices grow as thresholds fall, so -index
    # prefers the higher threshold on full ties.
    ranked = np.lexsort((feasible, -curve.accuracy[feasible], curve.mean_cost_usd[feasible]))
    return _choice(curve, int(feasible[ranked[0]]))


def best_threshold_within_budget(
    confidence: ArrayLike,
    correct0: ArrayLike,
    correct1: ArrayLike,
    cost0: ArrayLike,
    cost1: ArrayLike,
    budget_per_item: float,
) -> ThresholdChoice | None:
    """Return the most accurate threshold whose mean cost per item is <= `budget_per_item` USD.

    Ties in accuracy go to the lower cost, then to the higher threshold. Returns None when
    even accepting every item at tier 0 costs more than the budget.
    """
    if not math.isfinite(budget_per_item) or budget_per_item < 0.0:
        raise ValueError(f"budget_per_item must be a finite USD amount >= 0, got {budget_per_item!r}")
    curve = threshold_curve(confidence, correct0, correct1, cost0, cost1)
    limit = budget_per_item * (1.0 + BUDGET_RELATIVE_TOLERANCE)
    feasible = np.flatnonzero(curve.mean_cost_usd <= limit)
    if feasible.size == 0:
        return None
    ranked = np.lexsort((feasible, curve.mean_cost_usd[feasible], -curve.accuracy[feasible]))
    return _choice(curve, int(feasible[ranked[0]]))


@dataclass(frozen=True)
class GuaranteedThreshold:
    """A tier-0 threshold with a high-probability lower bound on accepted accuracy.

    `accepted_share` and `accepted_accuracy` are measured on the calibration data, and
    `p_value` is the binomial p-value that rejected "accepted accuracy < target" there.
    """

    threshold: float
    accepted_share: float
    accepted_accuracy: float
    accepted_count: int
    n: int
    delta: float
    target_accuracy: float
    p_value: float

    def statement(self) -> str:
        """Return the guarantee as one plain sentence."""
        return (
            f"Assuming the {self.n} calibration items and future items are exchangeable "
            f"(for example i.i.d. from the same distribution), with probability at least "
            f"{1 - self.delta:.4g} over the draw of the calibration data, the tier-0 answers "
            f"accepted at confidence >= {self.threshold:.6g} are correct at a rate of at least "
            f"{self.target_accuracy:.4g} "
            f"(on the calibration data {self.accepted_share:.1%} of items were accepted, "
            f"with accuracy {self.accepted_accuracy:.1%})."
        )


DEFAULT_GRID = np.linspace(1.0, 0.0, 1001)


def guaranteed_threshold(
    confidence: ArrayLike,
    correct0: ArrayLike,
    target_accuracy: float,
    delta: float,
    candidates: ArrayLike | None = None,
) -> GuaranteedThreshold | None:
    r"""Choose the lowest threshold whose accepted accuracy is >= target with prob. >= 1 - delta.

    This is the Learn then Test (LTT) procedure with fixed-sequence testing. Let alpha = 1 - target_accuracy and, for a threshold l, let
    R(l) = P(tier 0 is wrong | confidence >= l) on the data distribution. Each candidate
    has the null hypothesis

        H0(l): R(l) > alpha    (accepted accuracy below target).

    On the n calibration items let k(l) be the number with confidence >= l and e(l) the
    number of errors among them. Given k(l), with i.i.d. items, e(l) ~ Binomial(k(l), R(l)),
    so the exact binomial p-value

        p(l) = P(Binomial(k(l), alpha) <= e(l))

    satisfies P(p(l) <= delta) <= delta under H0(l), because the binomial CDF falls as the
    rate rises. Rejecting at p(l) <= delta is the same as the one-sided Clopper-Pearson
    upper bound on R(l) at level 1 - delta being <= alpha.

    Fixed-sequence testing: the candidates are tested in decreasing order l_1 > l_2 > ...,
    each at level delta, and testing stops at the first null that is not rejected. A null
    can be rejected only if every earlier null was, so a false rejection needs the first
    true null in the order to be rejected, which happens with probability <= delta. The
    family-wise error rate is therefore <= delta without any multiplicity correction, and
    the lowest rejected threshold is returned.

    `candidates` is the grid of thresholds, which must be chosen without looking at the
    calibration data. The default is 1001 points from 1.0 down to 0.0, and then confidence
    must lie in [0, 1].

    NOTE: a candidate that accepts too few calibration items to be rejected even with zero
    errors (k(l) < log(delta) / log(1 - alpha)) is skipped instead of ending the sequence.
    Otherwise the few items above the top thresholds would stop every run and return None.
    Which candidates are skipped depends on the confidence values, so the argument above is
    not exact for this rule. The simulation test in tests/test_calibration.py checks that the
    error rate stays within delta for a smooth confidence distribution.

    Because testing stops at the first non-rejection, a few errors among the
    highest-confidence items can end the sequence early. More calibration data makes this
    less likely.

    Returns None when the first tested null is not rejected, for example when the target
    is unreachable, the data are too few, or target_accuracy is 1.
    """
    if not 0.0 < target_accuracy <= 1.0:
        raise ValueError(f"target_accuracy must be in (0, 1], got {target_accuracy!r}")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    right = as_correct(correct0, "correct0")
    if candidates is None:
        scores = as_probabilities(confidence, "confidence")
        grid = DEFAULT_GRID
    else:
        scores = as_scores(confidence, "confidence")
        grid = np.unique(as_scores(candidates, "candidates"))[::-1]
        if grid.size == 0:
            raise ValueError("candidates is empty; pass at least one threshold")
    size = scores.shape[0]
    if right.shape[0] != size:
        raise ValueError(
            f"confidence and correct0 must have the same length, got {size} and {right.shape[0]}"
        )
    if size < 2:
        raise ValueError(f"at least 2 calibration items are needed, got {size}")

    order = np.argsort(-scores, kind="stable")
    prefix_errors = np.concatenate(([0], np.cumsum(1 - right[order])))
    ascending = scores[order][::-1]
    accepted_counts = size - np.searchsorted(ascending, grid, side="left")
    error_counts = prefix_errors[accepted_counts]
    alpha = 1.0 - target_accuracy
    p_values = np.where(
        accepted_counts > 0, binom.cdf(error_counts, accepted_counts, alpha), 1.0
    )

    # With k accepted items and no errors the p-value is (1 - alpha) ** k, so a candidate with
    # fewer than min_count items can never be rejected and is skipped (see the NOTE above).
    min_count = 1 if alpha == 0.0 else max(1, math.ceil(math.log(delta) / math.log1p(-alpha)))
    tested = accepted_counts >= min_count
    last_rejected: int | None = None
    for index in np.flatnonzero(tested):
        if p_values[index] > delta:
            break
        last_rejected = int(index)
    if last_rejected is None:
        return None

    count = int(accepted_counts[last_rejected])
    return GuaranteedThreshold(
        threshold=float(grid[last_rejected]),
        accepted_share=count / size,
        accepted_accuracy=1.0 - int(error_counts[last_rejected]) / count,
        accepted_count=count,
        n=size,
        delta=float(delta),
        target_accuracy=float(target_accuracy),
        p_value=float(p_values[last_rejected]),
    )
