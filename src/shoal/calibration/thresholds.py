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

    `n` calibration items were given. `start_items` of them (a random share) chose where the
    tests start, and the other `tested_items` tested the thresholds. `accepted_share`,
    `accepted_accuracy` and `accepted_count` are measured on the tested items, and `p_value`
    is the binomial p-value that rejected "accepted accuracy < target" there.
    """

    threshold: float
    accepted_share: float
    accepted_accuracy: float
    accepted_count: int
    n: int
    tested_items: int
    start_items: int
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
            f"(on the {self.tested_items} items that tested it, {self.accepted_share:.1%} were "
            f"accepted, with accuracy {self.accepted_accuracy:.1%})."
        )


DEFAULT_GRID = np.linspace(1.0, 0.0, 1001)
DEFAULT_START_SHARE = 0.2
# Testing starts at the highest candidate whose estimated chance of rejection is at least this
# share of the best candidate's.
START_POWER_SHARE = 0.9


def guaranteed_threshold(
    confidence: ArrayLike,
    correct0: ArrayLike,
    target_accuracy: float,
    delta: float,
    candidates: ArrayLike | None = None,
    start_share: float = DEFAULT_START_SHARE,
    seed: int = 0,
) -> GuaranteedThreshold | None:
    r"""Choose the lowest threshold whose accepted accuracy is >= target with prob. >= 1 - delta.

    This is Learn then Test (LTT) with fixed-sequence testing. Let alpha = 1 - target_accuracy
    and, for a threshold l, R(l) = P(tier 0 is wrong | confidence >= l) on the data
    distribution. Each candidate has the null hypothesis

        H0(l): R(l) > alpha    (accepted accuracy below target).

    On m test items let k(l) be the number with confidence >= l and e(l) the number of errors
    among them. Given k(l), with i.i.d. items, e(l) ~ Binomial(k(l), R(l)), so the exact
    binomial p-value

        p(l) = P(Binomial(k(l), alpha) <= e(l))

    satisfies P(p(l) <= delta) <= delta under H0(l), because the binomial CDF falls as the
    rate rises. Rejecting at p(l) <= delta is the same as the one-sided Clopper-Pearson
    upper bound on R(l) at level 1 - delta being <= alpha.

    Fixed-sequence testing: the candidates are tested in a fixed decreasing order l_1 > l_2
    > ..., each at level delta, and testing stops at the first null that is not rejected. A
    null can be rejected only if every earlier null was, so a false rejection needs the
    first true null in the order to be rejected, which happens with probability <= delta.
    The family-wise error rate is therefore <= delta, and the lowest rejected threshold is
    returned.

    Where to start: the highest thresholds accept so few items that even zero errors cannot
    reject them, and starting there would end every run at once. So a random `start_share`
    of the items (drawn with `seed`) is set aside to choose the first candidate: the highest
    one whose null the test items are nearly as likely to reject as the likeliest one's,
    judged by its accepted share and error rate on those items. Starting below the top
    loses nothing, because the lowest rejected candidate is what is returned. The remaining items run the tests. The order
    depends only on items the tests do not use, so the argument above is exact. With
    `start_share` = 0 every item tests and the sequence starts at the highest candidate.

    `candidates` is the grid of thresholds, which must be chosen without looking at the
    calibration data. The default is 1001 points from 1.0 down to 0.0, and then confidence
    must lie in [0, 1].

    Because testing stops at the first non-rejection, a few errors among the
    highest-confidence test items can end the sequence early. More data makes this rarer.

    Returns None when the first tested null is not rejected: for example when the target is
    unreachable, the data are too few, or target_accuracy is 1.
    """
    if not 0.0 < target_accuracy <= 1.0:
        raise ValueError(f"target_accuracy must be in (0, 1], got {target_accuracy!r}")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    if not 0.0 <= start_share < 1.0:
        raise ValueError(f"start_share must be in [0, 1), got {start_share!r}")
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

    alpha = 1.0 - target_accuracy
    start_count = round(start_share * size)
    order = np.random.default_rng(seed).permutation(size)
    start_rows, test_rows = order[:start_count], order[start_count:]
    test_size = test_rows.size
    if test_size == 0:
        raise ValueError(f"start_share {start_share} leaves no item of {size} to test with")
    first = 0
    if start_count > 0:
        power = _rejection_power(
            scores[start_rows], right[start_rows], grid, test_size, alpha, delta
        )
        # The highest candidate nearly as likely to be rejected as the likeliest one. The
        # estimates grow as long as the few start items show no error, so the likeliest
        # one alone would often start too low.
        first = int(np.flatnonzero(power >= START_POWER_SHARE * power.max())[0])

    counts, errors = _accepted_counts(scores[test_rows], right[test_rows], grid)
    p_values = np.where(counts > 0, binom.cdf(errors, counts, alpha), 1.0)
    last_rejected: int | None = None
    for index in range(first, grid.size):
        if p_values[index] > delta:
            break
        last_rejected = index
    if last_rejected is None:
        return None

    count = int(counts[last_rejected])
    return GuaranteedThreshold(
        threshold=float(grid[last_rejected]),
        accepted_share=count / test_size,
        accepted_accuracy=1.0 - int(errors[last_rejected]) / count,
        accepted_count=count,
        n=size,
        tested_items=int(test_size),
        start_items=start_count,
        delta=float(delta),
        target_accuracy=float(target_accuracy),
        p_value=float(p_values[last_rejected]),
    )


def _accepted_counts(
    scores: NDArray[np.float64], right: NDArray[np.int64], grid: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return, per threshold of `grid`, the items with score >= it and the errors among them."""
    order = np.argsort(-scores, kind="stable")
    prefix_errors = np.concatenate(([0], np.cumsum(1 - right[order])))
    ascending = scores[order][::-1]
    counts = scores.shape[0] - np.searchsorted(ascending, grid, side="left")
    return counts, prefix_errors[counts]


def _rejection_power(
    scores: NDArray[np.float64],
    right: NDArray[np.int64],
    grid: NDArray[np.float64],
    test_size: int,
    alpha: float,
    delta: float,
) -> NDArray[np.float64]:
    """Estimate, per candidate, the chance that `test_size` test items reject its null.

    The start items give the share of items each candidate accepts and the error rate among
    them. The error rate is the posterior mean under a Jeffreys prior, so zero observed errors
    do not count as a zero rate. A null is rejected when the test errors are at most the
    largest count whose binomial p-value is <= delta.
    """
    counts, errors = _accepted_counts(scores, right, grid)
    expected = np.round(counts * (test_size / scores.shape[0])).astype(np.int64)
    error_rate = (errors + 0.5) / (counts + 1.0)
    # binom.ppf gives the smallest e with cdf(e) >= delta, so step back when cdf(e) > delta.
    critical = binom.ppf(delta, expected, alpha)
    critical = np.where(binom.cdf(critical, expected, alpha) > delta, critical - 1, critical)
    power = np.where(critical >= 0, binom.cdf(critical, expected, error_rate), 0.0)
    return np.where(counts > 0, power, 0.0)
