"""Accuracy, macro-F1, latency percentiles and cost figures, as pure functions.

Every function raises ValueError on empty input, and the paired ones on sequences of
different lengths. Money stays `Decimal` throughout, and only accuracy per dollar is a float.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal


def _check_pair(gold: Sequence[object], predicted: Sequence[object]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(
            f"gold and predicted labels differ in length: {len(gold)} and {len(predicted)}"
        )
    if not gold:
        raise ValueError("gold and predicted labels are empty; a metric needs at least one item")


def accuracy(gold: Sequence[str], predicted: Sequence[str | None]) -> float:
    """Return the share of items whose prediction equals the gold label.

    A None prediction (an item the model gave no usable prediction for) counts as wrong.
    """
    _check_pair(gold, predicted)
    correct = sum(1 for truth, guess in zip(gold, predicted) if truth == guess)
    return correct / len(gold)


def macro_f1(
    gold: Sequence[str],
    predicted: Sequence[str | None],
    labels: Sequence[str] | None = None,
) -> float:
    """Return the unweighted mean of per-label F1 scores.

    With `labels=None` the mean runs over the union of gold and predicted labels, as in
    scikit-learn's `f1_score(average="macro", zero_division=0)`. A None prediction is wrong for its
    gold label but is not a label of its own.
    """
    _check_pair(gold, predicted)
    if labels is None:
        labels = sorted(set(gold) | {guess for guess in predicted if guess is not None})
    if not labels:
        raise ValueError("macro-F1 needs at least one label")

    true_positives: Counter[str] = Counter()
    predicted_counts: Counter[str] = Counter()
    gold_counts: Counter[str] = Counter(gold)
    for truth, guess in zip(gold, predicted):
        if guess is None:
            continue
        predicted_counts[guess] += 1
        if truth == guess:
            true_positives[truth] += 1

    total = 0.0
    for label in labels:
        # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + gold); 0 when both counts are 0.
        denominator = predicted_counts[label] + gold_counts[label]
        if denominator:
            total += 2 * true_positives[label] / denominator
    return total / len(labels)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (q in [0, 100]) by linear interpolation between order statistics.

    This is the default method of `numpy.percentile`: the value at position (n - 1) * q / 100 of
    the sorted values.
    """
    if not values:
        raise ValueError("percentile of an empty sequence; give at least one value")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be between 0 and 100, got {q}")

    ordered = sorted(values)
    position = (len(ordered) - 1) * (q / 100)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    low_value, high_value = ordered[lower], ordered[upper]
    # Interpolating from the nearer end, as numpy does, keeps the result within [low, high].
    if fraction >= 0.5:
        return float(high_value - (high_value - low_value) * (1 - fraction))
    return float(low_value + (high_value - low_value) * fraction)


def mean_cost(costs: Sequence[Decimal]) -> Decimal:
    """Return the mean cost per item in dollars."""
    if not costs:
        raise ValueError("mean cost of no items; give at least one cost")
    for cost in costs:
        if not isinstance(cost, Decimal):
            raise TypeError(f"costs must be Decimal dollars, got {type(cost).__name__} {cost!r}")
    return sum(costs, Decimal(0)) / len(costs)


def cost_per_1k(costs: Sequence[Decimal]) -> Decimal:
    """Return the dollars per 1,000 items at the mean cost of these items."""
    return mean_cost(costs) * 1000


def accuracy_per_dollar(accuracy: float, mean_cost: Decimal) -> float | None:
    """Return accuracy divided by the mean cost per item in dollars.

    Returns None when the mean cost is zero (e.g. a free model that records no compute price),
    because the ratio has no finite value and reports show it as not applicable.
    """
    if not 0 <= accuracy <= 1:
        raise ValueError(f"accuracy must be between 0 and 1, got {accuracy}")
    if mean_cost < 0:
        raise ValueError(f"mean cost must not be negative, got {mean_cost}")
    if mean_cost == 0:
        return None
    return accuracy / float(mean_cost)
