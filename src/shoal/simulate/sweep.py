"""Threshold sweep of a confidence cascade over many items and models, vectorised with numpy.

A confidence cascade runs models from cheapest to most expensive. At threshold `t` it accepts
the answer of the first model whose confidence is at least `t`, and the last model always
accepts. `cascade_sweep` evaluates many thresholds at once and returns, per threshold, the
accuracy, the mean cost per item and the share of items accepted at each tier.

All tiers share one threshold. A cascade with a different threshold per tier is not covered
here. For that, see `agreement_cascade` in `shoal.simulate.cascades`, which takes one
threshold per tier but uses answer agreement as the confidence.

How it avoids a loop over items: let `M_j` be the maximum confidence of tiers 0..j on an
item. The item goes past tier j exactly when every confidence so far is below `t`, that is
when `M_j < t`. With the thresholds sorted, `searchsorted(thresholds, M_j, side="right")` is
the first threshold index at which the item goes past tier j. Each tier boundary then adds a
step to every later threshold: one more item past tier j, the score change from tier j to
tier j + 1, and the cost of tier j + 1. `bincount` collects the steps per threshold index and
`cumsum` turns them into totals. That is one search and three `bincount` passes over the
items per tier boundary, with no Python loop over items or thresholds. The search is the
costly step, so thresholds that are close to evenly spaced get a faster one than
`np.searchsorted` (see `_ThresholdSearch`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class SweepResult:
    """Outcome of a confidence cascade at each threshold, with thresholds in the order given.

    `accuracy[k]` is the mean score of the accepted answers at `thresholds[k]`, `mean_cost[k]`
    the mean cost per item of every model run (in the unit of the costs given, usually USD),
    and `accept_share[k, j]` the share of items whose answer comes from model j. Each row of
    `accept_share` sums to 1, up to rounding.
    """

    thresholds: np.ndarray  # shape (n_thresholds,)
    accuracy: np.ndarray  # shape (n_thresholds,)
    mean_cost: np.ndarray  # shape (n_thresholds,)
    accept_share: np.ndarray  # shape (n_thresholds, n_models)


def cascade_sweep(
    confidence: ArrayLike, scores: ArrayLike, costs: ArrayLike, thresholds: ArrayLike
) -> SweepResult:
    """Simulate a confidence cascade at every threshold in `thresholds`.

    `confidence`, `scores` and `costs` have shape (n_items, n_models), with models in cascade
    order, cheapest first. At threshold `t` an item's answer comes from the first model j with
    `confidence[i, j] >= t`, or from the last model when none qualifies. Its score is
    `scores[i, j]` and its cost is `costs[i, :j + 1].sum()`, because every model up to j ran.
    `thresholds` is 1-D, in any order, and may repeat values or contain +inf and -inf.

    The last column of `confidence` is never compared with a threshold, so it may be NaN,
    for instance for a final model that returns no confidence.

    Raises ValueError when the shapes differ or are not 2-D with at least one item and one
    model, when `thresholds` is not 1-D or contains NaN, when a confidence other than the last
    model's is NaN, or when a score or cost is NaN or infinite.
    """
    confidence_array, score_array, cost_array = _check_tables(confidence, scores, costs)
    threshold_array = _check_thresholds(thresholds)
    n_items = score_array.shape[0]
    n_thresholds = threshold_array.size

    order = np.argsort(threshold_array, kind="stable")
    sorted_thresholds = threshold_array[order]

    past_counts, score_steps, cost_steps = _tier_steps(
        confidence_array, score_array, cost_array, _ThresholdSearch(sorted_thresholds)
    )
    accept_share = _accept_share(past_counts, n_items)
    accuracy = np.cumsum(score_steps[:n_thresholds]) / n_items
    mean_cost = np.cumsum(cost_steps[:n_thresholds]) / n_items
    return _in_given_order(threshold_array, order, accuracy, mean_cost, accept_share)


def _tier_steps(
    confidence: np.ndarray, scores: np.ndarray, costs: np.ndarray, search: _ThresholdSearch
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collect, per sorted threshold index, the changes that each tier boundary makes.

    Returns `past_counts[j, p]`, the number of items that go past tier j at sorted threshold
    p, and the score and cost steps: the change in total score and total cost that takes
    effect from index p on. Steps at index n_thresholds come from items that never go past a
    tier at any threshold given, and are dropped by the caller.
    """
    n_models = scores.shape[1]
    n_thresholds = search.thresholds.size
    past_counts = np.empty((n_models, n_thresholds), dtype=np.int64)
    score_steps = np.zeros(n_thresholds + 1)
    cost_steps = np.zeros(n_thresholds + 1)
    score_steps[0] = scores[:, 0].sum()
    cost_steps[0] = costs[:, 0].sum()

    running_max = confidence[:, 0].copy()
    for tier in range(n_models - 1):
        if tier > 0:
            np.maximum(running_max, confidence[:, tier], out=running_max)
        first_past = search.count_at_or_below(running_max)
        counts = np.bincount(first_past, minlength=n_thresholds + 1)
        past_counts[tier] = np.cumsum(counts[:n_thresholds])
        score_change = scores[:, tier + 1] - scores[:, tier]
        score_steps += np.bincount(first_past, weights=score_change, minlength=n_thresholds + 1)
        cost_steps += np.bincount(first_past, weights=costs[:, tier + 1],
                                  minlength=n_thresholds + 1)
    past_counts[n_models - 1] = 0  # no item goes past the last model
    return past_counts, score_steps, cost_steps


class _ThresholdSearch:
    """Count, for many keys, the sorted thresholds at or below each key.

    `count_at_or_below(keys)` equals `np.searchsorted(thresholds, keys, side="right")`. That
    binary search took about 0.9 s of a 1.0 s sweep in bench/sweep.py (1,000,000 items,
    11 models, 1001 thresholds, 2-vCPU Xeon). A guide table is faster when the finite
    thresholds are close to evenly spaced. The finite range is cut into equal buckets and a
    key's bucket is found by arithmetic. The table gives a lower bound of the count in that
    bucket, and a few vectorised compare-and-step passes finish it. Keys must not be NaN.

    Floating-point rounding can put a key one bucket off, so each lower bound is taken one
    bucket below and the number of passes covers the thresholds of three buckets. Finer
    buckets are tried when the thresholds are uneven. Thresholds that would still need more
    than `_MAX_PASSES` passes (many repeats, gaps that vary a lot, as on a log scale) use
    `np.searchsorted`, as do ranges too narrow for the bucket arithmetic to be exact enough.
    """

    _MAX_PASSES = 4
    _BUCKETS_PER_THRESHOLD = (2, 8, 32)
    # Buckets must be much wider than the float spacing of the thresholds, so that rounding
    # moves a key by far less than one bucket.
    _MIN_BUCKET_IN_SPACINGS = 1024.0

    def __init__(self, sorted_thresholds: np.ndarray) -> None:
        self.thresholds = sorted_thresholds
        self.use_guide = False
        finite = sorted_thresholds[np.isfinite(sorted_thresholds)]
        if finite.size < 2:
            return
        self.low = float(finite[0])
        high = float(finite[-1])
        spacing = np.spacing(max(abs(self.low), abs(high)))
        # NaN after the last threshold compares false, so a count never passes the end.
        self.padded = np.append(sorted_thresholds, np.nan)

        for per_threshold in self._BUCKETS_PER_THRESHOLD:
            n_buckets = per_threshold * finite.size
            self.width = (high - self.low) / n_buckets
            if not (np.isfinite(self.width)
                    and self.width > self._MIN_BUCKET_IN_SPACINGS * spacing):
                return
            self._build_table(n_buckets)
            if self.passes <= self._MAX_PASSES:
                self.use_guide = True
                return

    def _build_table(self, n_buckets: int) -> None:
        """Set the lower bound of the count per bucket and the passes needed to finish it.

        Bucket b covers keys near [low + b * width, low + (b + 1) * width). Its lower bound is
        the count at the edge one bucket below, its upper bound the count at the edge two
        buckets above. The first and last buckets also take every key below or above the
        finite range, so their bounds are the count of -inf thresholds and all thresholds.
        """
        buckets = np.arange(n_buckets)
        self.last_bucket = n_buckets - 1
        self.starts = np.searchsorted(
            self.thresholds, self.low + (buckets - 1) * self.width, side="right"
        )
        self.starts[0] = np.searchsorted(self.thresholds, -np.inf, side="right")
        ends = np.searchsorted(self.thresholds, self.low + (buckets + 2) * self.width, side="right")
        ends[-1] = self.thresholds.size
        self.passes = int((ends - self.starts).max())

    def count_at_or_below(self, keys: np.ndarray) -> np.ndarray:
        if not self.use_guide:
            return np.searchsorted(self.thresholds, keys, side="right")
        with np.errstate(over="ignore"):  # keys far outside the range become ±inf, then clip
            position = (keys - self.low) / self.width
        np.clip(position, 0, self.last_bucket, out=position)
        counts = self.starts[position.astype(np.intp)]
        for _ in range(self.passes):
            counts += self.padded[counts] <= keys
        return counts


def _check_tables(
    confidence: ArrayLike, scores: ArrayLike, costs: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the three tables as float64 arrays after checking shapes and values."""
    arrays = {
        name: np.asarray(value, dtype=np.float64)
        for name, value in (("confidence", confidence), ("scores", scores), ("costs", costs))
    }
    shape = arrays["scores"].shape
    for name, array in arrays.items():
        if array.ndim != 2:
            raise ValueError(
                f"{name} has shape {array.shape}; give a 2-D array (n_items, n_models)"
            )
        if array.shape != shape:
            raise ValueError(
                f"{name} has shape {array.shape} but scores has {shape}; give confidence, "
                "scores and costs one row per item and one column per model"
            )
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(
            f"the tables have shape {shape}; give at least one item and one model"
        )

    if np.isnan(arrays["confidence"][:, :-1]).any():
        raise ValueError(
            "confidence contains NaN for a model before the last; give every such model a "
            "confidence or drop the items without one"
        )
    for name in ("scores", "costs"):
        if not np.isfinite(arrays[name]).all():
            raise ValueError(
                f"{name} contains NaN or infinite values; drop those items first (for logged "
                "outcomes, `LoggedOutcomes.complete()` drops items without a score)"
            )
    return arrays["confidence"], arrays["scores"], arrays["costs"]


def _check_thresholds(thresholds: ArrayLike) -> np.ndarray:
    array = np.asarray(thresholds, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"thresholds has shape {array.shape}; give a 1-D array")
    if np.isnan(array).any():
        raise ValueError("thresholds contains NaN; give numbers (+inf and -inf are allowed)")
    return array


def _accept_share(past_counts: np.ndarray, n_items: int) -> np.ndarray:
    """Turn counts of items past each tier into the share accepted by each tier.

    `past_counts[j, p]` is the number of items that go past tier j at sorted threshold p. The
    items accepted by tier j are those past tier j - 1 (all items for tier 0) but not past j.
    """
    reaching = np.empty_like(past_counts)
    reaching[0] = n_items
    reaching[1:] = past_counts[:-1]
    return np.ascontiguousarray(((reaching - past_counts) / n_items).T)


def _in_given_order(
    thresholds: np.ndarray,
    order: np.ndarray,
    accuracy: np.ndarray,
    mean_cost: np.ndarray,
    accept_share: np.ndarray,
) -> SweepResult:
    """Put results computed on sorted thresholds back in the order the caller gave."""
    given_accuracy = np.empty_like(accuracy)
    given_cost = np.empty_like(mean_cost)
    given_share = np.empty_like(accept_share)
    given_accuracy[order] = accuracy
    given_cost[order] = mean_cost
    given_share[order] = accept_share
    return SweepResult(thresholds.copy(), given_accuracy, given_cost, given_share)
