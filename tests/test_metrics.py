from __future__ import annotations

import ast
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from shoal.evaluate import metrics
from shoal.evaluate.metrics import (
    accuracy,
    accuracy_per_dollar,
    cost_per_1k,
    macro_f1,
    mean_cost,
    percentile,
)

SEEDS = range(8)


def _random_labels(seed: int) -> tuple[list[str], list[str]]:
    """Return gold labels from a-e and predictions from a-g, so some predictions are not in gold."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 60))
    gold = [str(label) for label in rng.choice(list("abcde"), size=size)]
    predicted = [str(label) for label in rng.choice(list("abcdefg"), size=size)]
    # Copy some gold labels so that the scores are not all near zero.
    for index in rng.choice(size, size=size // 2, replace=False):
        predicted[index] = gold[index]
    return gold, predicted


@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_matches_sklearn(seed: int) -> None:
    gold, predicted = _random_labels(seed)

    assert accuracy(gold, predicted) == pytest.approx(accuracy_score(gold, predicted), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_macro_f1_matches_sklearn(seed: int) -> None:
    gold, predicted = _random_labels(seed)

    expected = f1_score(gold, predicted, average="macro", zero_division=0)

    assert macro_f1(gold, predicted) == pytest.approx(expected, abs=1e-12)


def test_macro_f1_counts_unseen_predicted_label() -> None:
    gold = ["a", "a", "b", "b"]
    predicted = ["a", "z", "b", "b"]

    # a: P=1 R=0.5 F1=2/3; b: F1=1; z: F1=0 -> mean (2/3 + 1 + 0) / 3
    assert macro_f1(gold, predicted) == pytest.approx((2 / 3 + 1) / 3, abs=1e-12)
    assert macro_f1(gold, predicted) == pytest.approx(
        f1_score(gold, predicted, average="macro", zero_division=0), abs=1e-12
    )


def test_macro_f1_none_prediction_is_wrong() -> None:
    gold = ["a", "a", "b", "b"]
    predicted: list[str | None] = ["a", None, "b", "b"]

    # a: P=1 R=0.5 F1=2/3; b: F1=1; None adds no label of its own.
    assert macro_f1(gold, predicted) == pytest.approx((2 / 3 + 1) / 2, abs=1e-12)
    assert accuracy(gold, predicted) == 0.75


def test_macro_f1_with_given_labels() -> None:
    gold = ["a", "b", "b"]
    predicted = ["a", "b", "a"]

    expected = f1_score(gold, predicted, labels=["a", "b", "c"], average="macro", zero_division=0)

    assert macro_f1(gold, predicted, labels=["a", "b", "c"]) == pytest.approx(expected, abs=1e-12)


def test_perfect_predictions_score_one() -> None:
    gold = ["x", "y", "y", "z"]

    assert accuracy(gold, gold) == 1.0
    assert macro_f1(gold, gold) == 1.0


@pytest.mark.parametrize("function", [accuracy, macro_f1])
def test_label_metrics_reject_bad_input(function: Callable[[list[str], list[str]], float]) -> None:
    with pytest.raises(ValueError, match="differ in length: 2 and 1"):
        function(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        function([], [])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("q", [0, 1, 5, 25, 50, 62.5, 90, 95, 99, 100])
def test_percentile_matches_numpy(seed: int, q: float) -> None:
    rng = np.random.default_rng(seed)
    values = list(rng.lognormal(mean=2.0, sigma=1.0, size=int(rng.integers(1, 40))))

    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_percentile_small_known_values() -> None:
    assert percentile([4.0], 95) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0, 0.0, 20.0], 95) == pytest.approx(19.0, abs=1e-12)


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="got 101"):
        percentile([1.0], 101)
    with pytest.raises(ValueError, match="got -1"):
        percentile([1.0], -1)


def test_mean_cost_is_exact() -> None:
    costs = [Decimal("0.0000001"), Decimal("0.0000003"), Decimal("0.000125")]

    assert mean_cost(costs) == Decimal("0.00004180")
    assert mean_cost([Decimal("0.1"), Decimal("0.2")]) == Decimal("0.15")


def test_cost_per_1k_is_exact() -> None:
    costs = [Decimal("0.0000001"), Decimal("0.0000003")]

    assert cost_per_1k(costs) == Decimal("0.0002")
    assert cost_per_1k([Decimal("0.00015"), Decimal("0.00060"), Decimal("0")]) == Decimal("0.25")


def test_cost_functions_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="no items"):
        mean_cost([])
    with pytest.raises(ValueError, match="no items"):
        cost_per_1k([])
    with pytest.raises(TypeError, match="float 0.1"):
        mean_cost([Decimal("0.1"), 0.1])  # type: ignore[list-item]


def test_accuracy_per_dollar_divides_by_mean() -> None:
    assert accuracy_per_dollar(0.9, Decimal("0.0001")) == pytest.approx(9000.0, rel=1e-12)
    assert accuracy_per_dollar(0.0, Decimal("0.5")) == 0.0


def test_accuracy_per_dollar_zero_cost_none() -> None:
    assert accuracy_per_dollar(0.8, Decimal("0")) is None
    assert accuracy_per_dollar(0.8, Decimal("0.000")) is None


def test_accuracy_per_dollar_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="got 1.5"):
        accuracy_per_dollar(1.5, Decimal("1"))
    with pytest.raises(ValueError, match="got -0.01"):
        accuracy_per_dollar(0.5, Decimal("-0.01"))


def test_metrics_module_imports_no_sklearn() -> None:
    source = Path(metrics.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])

    assert "sklearn" not in imported
    assert "httpx" not in imported
