"""Tests of the vectorised threshold sweep against a plain loop, on random data and RouterBench."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_data_dir

from shoal.simulate.outcomes import LoggedOutcomes, load_routerbench
from shoal.simulate.sweep import SweepResult, _ThresholdSearch, cascade_sweep


def reference_sweep(
    confidence: np.ndarray, scores: np.ndarray, costs: np.ndarray, thresholds: np.ndarray
) -> tuple[list[float], list[float], list[list[float]]]:
    """Run the cascade item by item and threshold by threshold, as the definition reads."""
    n_items, n_models = scores.shape
    accuracies, mean_costs, shares = [], [], []
    for threshold in thresholds:
        total_score = 0.0
        total_cost = 0.0
        accepted = [0] * n_models
        for item in range(n_items):
            tier = 0
            while tier < n_models - 1 and not confidence[item, tier] >= threshold:
                tier += 1
            total_score += float(scores[item, tier])
            total_cost += sum(float(cost) for cost in costs[item, : tier + 1])
            accepted[tier] += 1
        accuracies.append(total_score / n_items)
        mean_costs.append(total_cost / n_items)
        shares.append([count / n_items for count in accepted])
    return accuracies, mean_costs, shares


def assert_matches_reference(
    confidence: np.ndarray, scores: np.ndarray, costs: np.ndarray, thresholds: np.ndarray
) -> SweepResult:
    result = cascade_sweep(confidence, scores, costs, thresholds)
    accuracies, mean_costs, shares = reference_sweep(confidence, scores, costs, thresholds)
    np.testing.assert_array_equal(result.thresholds, thresholds)
    np.testing.assert_allclose(result.accuracy, accuracies, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.mean_cost, mean_costs, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(result.accept_share, shares, rtol=0, atol=1e-15)
    return result


def random_table(
    seed: int, n_items: int, n_models: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    confidence = rng.random((n_items, n_models))
    scores = rng.random((n_items, n_models)).round(2)
    costs = rng.uniform(0.1, 2.0, (n_items, n_models)) * np.geomspace(1, 50, n_models)
    return confidence, scores, costs


def edge_thresholds(confidence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thresholds that hit the edge cases: confidence values exactly, ±inf, outside the range."""
    picked = rng.choice(confidence.ravel(), size=15, replace=False)
    return np.concatenate([
        rng.random(20),
        picked,
        np.nextafter(picked, np.inf),
        [np.inf, -np.inf, 1.5, -0.5, confidence.max(), confidence.min(), 0.0, 1.0],
    ])


# Agreement with the reference loop ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("n_models", [1, 2, 3, 11])
def test_sweep_matches_loop(seed: int, n_models: int) -> None:
    confidence, scores, costs = random_table(seed, n_items=150, n_models=n_models)
    thresholds = edge_thresholds(confidence, np.random.default_rng(seed + 100))
    assert_matches_reference(confidence, scores, costs, thresholds)


@pytest.mark.parametrize("seed", [0, 1])
def test_sweep_even_grid_matches_loop(seed: int) -> None:
    confidence, scores, costs = random_table(seed, n_items=300, n_models=5)
    thresholds = np.linspace(0.0, 1.0, 101)
    assert _ThresholdSearch(thresholds).use_guide  # the guide-table search path runs
    assert_matches_reference(confidence, scores, costs, thresholds)


def test_sweep_ties_at_thresholds() -> None:
    # Confidence in steps of 0.1, so many items tie with each other and with the thresholds.
    rng = np.random.default_rng(7)
    confidence = rng.integers(0, 11, (200, 4)) / 10
    _, scores, costs = random_table(7, n_items=200, n_models=4)
    thresholds = np.arange(11) / 10
    assert_matches_reference(confidence, scores, costs, thresholds)
    unsorted = thresholds[[5, 0, 10, 3, 3, 8, 1]]
    assert_matches_reference(confidence, scores, costs, unsorted)


def test_sweep_infinite_confidence() -> None:
    confidence, scores, costs = random_table(11, n_items=100, n_models=3)
    confidence[:10, 0] = np.inf
    confidence[10:20, 1] = -np.inf
    thresholds = np.array([-np.inf, 0.3, 0.9, np.inf])
    assert_matches_reference(confidence, scores, costs, thresholds)


def test_sweep_order_of_thresholds() -> None:
    confidence, scores, costs = random_table(5, n_items=120, n_models=4)
    thresholds = np.random.default_rng(5).random(40)
    forward = cascade_sweep(confidence, scores, costs, thresholds)
    backward = cascade_sweep(confidence, scores, costs, thresholds[::-1])
    np.testing.assert_array_equal(backward.accuracy, forward.accuracy[::-1])
    np.testing.assert_array_equal(backward.mean_cost, forward.mean_cost[::-1])
    np.testing.assert_array_equal(backward.accept_share, forward.accept_share[::-1])


def test_sweep_shares_sum_to_one() -> None:
    confidence, scores, costs = random_table(9, n_items=500, n_models=11)
    result = cascade_sweep(confidence, scores, costs, np.linspace(-0.1, 1.1, 57))
    np.testing.assert_allclose(result.accept_share.sum(axis=1), 1.0, rtol=0, atol=1e-12)


# Extreme thresholds ----------------------------------------------------------------------------


def test_sweep_threshold_above_all() -> None:
    confidence, scores, costs = random_table(3, n_items=200, n_models=6)
    result = cascade_sweep(confidence, scores, costs, [np.inf, confidence.max() + 0.01])
    for row in range(2):
        assert result.accuracy[row] == pytest.approx(scores[:, -1].mean(), rel=1e-12)
        assert result.mean_cost[row] == pytest.approx(costs.sum(axis=1).mean(), rel=1e-12)
        np.testing.assert_array_equal(result.accept_share[row], [0, 0, 0, 0, 0, 1])


def test_sweep_threshold_below_all() -> None:
    confidence, scores, costs = random_table(4, n_items=200, n_models=6)
    result = cascade_sweep(confidence, scores, costs, [-np.inf, confidence.min()])
    for row in range(2):
        assert result.accuracy[row] == pytest.approx(scores[:, 0].mean(), rel=1e-12)
        assert result.mean_cost[row] == pytest.approx(costs[:, 0].mean(), rel=1e-12)
        np.testing.assert_array_equal(result.accept_share[row], [1, 0, 0, 0, 0, 0])


def test_sweep_just_above_confidence() -> None:
    # Item 0 has confidence 0.5 at the first tier: accepted at 0.5, escalated just above it.
    confidence = np.array([[0.5, 0.0]])
    scores = np.array([[1.0, 0.0]])
    costs = np.array([[1.0, 4.0]])
    thresholds = [0.5, float(np.nextafter(0.5, 1.0))]
    result = cascade_sweep(confidence, scores, costs, thresholds)
    np.testing.assert_array_equal(result.accuracy, [1.0, 0.0])
    np.testing.assert_array_equal(result.mean_cost, [1.0, 5.0])
    np.testing.assert_array_equal(result.accept_share, [[1.0, 0.0], [0.0, 1.0]])


# RouterBench -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arc_outcomes() -> LoggedOutcomes:
    path = (shared_data_dir() / "routerbench_subset" / "datasets" / "routerbench_zs"
            / "arc_challenge_test.csv")
    return load_routerbench(path).complete()


def test_sweep_routerbench_matches_loop(arc_outcomes: LoggedOutcomes) -> None:
    scores, costs = arc_outcomes.scores, arc_outcomes.costs
    assert scores.shape == (437, 11)
    confidence = np.random.default_rng(2024).random(scores.shape)
    thresholds = np.concatenate([np.linspace(0.0, 1.0, 41), confidence[:5, 0], [np.inf, -np.inf]])
    assert_matches_reference(confidence, scores, costs, thresholds)


def test_sweep_routerbench_extremes(arc_outcomes: LoggedOutcomes) -> None:
    scores, costs = arc_outcomes.scores, arc_outcomes.costs
    confidence = np.random.default_rng(2024).random(scores.shape)
    result = cascade_sweep(confidence, scores, costs, [np.inf, -np.inf])
    assert result.accuracy[0] == pytest.approx(scores[:, -1].mean(), rel=1e-12)
    assert result.mean_cost[0] == pytest.approx(costs.sum(axis=1).mean(), rel=1e-12)
    assert result.accuracy[1] == pytest.approx(scores[:, 0].mean(), rel=1e-12)
    assert result.mean_cost[1] == pytest.approx(costs[:, 0].mean(), rel=1e-12)


# Threshold search ------------------------------------------------------------------------------


SEARCH_CASES = {
    "even grid": np.linspace(0.0, 1.0, 1001),
    "even grid with infinities": np.concatenate([[-np.inf], np.linspace(-3, 7, 64), [np.inf]]),
    "negative grid": np.linspace(-1e6, -1e5, 333),
    "uneven": np.sort(np.random.default_rng(1).random(200)),
    "quantiles of skewed scores": np.quantile(
        np.random.default_rng(2).beta(5, 1, 10_000), np.linspace(0, 1, 301)
    ),
    "log scale": np.geomspace(1e-6, 1, 500),
    "repeats": np.repeat(np.linspace(0, 1, 21), 7),
    "narrow range far from zero": 1e10 + np.linspace(0.0, 1e-3, 50),
    "one finite value": np.array([-np.inf, 0.25, np.inf]),
    "only infinities": np.array([-np.inf, np.inf, np.inf]),
    "single": np.array([0.5]),
}


@pytest.mark.parametrize("name", sorted(SEARCH_CASES))
def test_search_matches_searchsorted(name: str) -> None:
    thresholds = SEARCH_CASES[name]
    finite = thresholds[np.isfinite(thresholds)]
    rng = np.random.default_rng(3)
    spread = np.ptp(finite) if finite.size else 1.0
    centre = finite.mean() if finite.size else 0.0
    keys = np.concatenate([
        centre + spread * rng.uniform(-0.7, 0.7, 5000),
        thresholds,
        np.nextafter(thresholds, np.inf),
        np.nextafter(thresholds, -np.inf),
        [np.inf, -np.inf, 0.0, 1e308, -1e308],
    ])
    search = _ThresholdSearch(thresholds)
    if search.use_guide:  # keys on and beside every bucket edge
        edges = search.low + np.arange(-1, search.last_bucket + 3) * search.width
        keys = np.concatenate([keys, edges, np.nextafter(edges, np.inf),
                               np.nextafter(edges, -np.inf)])
    expected = np.searchsorted(thresholds, keys, side="right")
    np.testing.assert_array_equal(search.count_at_or_below(keys), expected)


def test_search_guide_only_when_exact() -> None:
    assert _ThresholdSearch(SEARCH_CASES["even grid"]).use_guide
    assert _ThresholdSearch(SEARCH_CASES["even grid with infinities"]).use_guide
    assert _ThresholdSearch(SEARCH_CASES["uneven"]).use_guide  # with finer buckets
    assert not _ThresholdSearch(SEARCH_CASES["log scale"]).use_guide
    assert not _ThresholdSearch(SEARCH_CASES["repeats"]).use_guide
    assert not _ThresholdSearch(SEARCH_CASES["narrow range far from zero"]).use_guide
    assert not _ThresholdSearch(SEARCH_CASES["single"]).use_guide


# Inputs ----------------------------------------------------------------------------------------


def test_sweep_ignores_last_confidence() -> None:
    confidence, scores, costs = random_table(6, n_items=80, n_models=3)
    thresholds = np.linspace(0, 1, 11)
    expected = cascade_sweep(confidence, scores, costs, thresholds)
    confidence[:, -1] = np.nan
    result = cascade_sweep(confidence, scores, costs, thresholds)
    np.testing.assert_array_equal(result.accuracy, expected.accuracy)
    np.testing.assert_array_equal(result.mean_cost, expected.mean_cost)


def test_sweep_accepts_lists_and_float32() -> None:
    # float32(0.1) is 0.10000000149..., at or above the float64 threshold 0.1, so item 1 stays.
    confidence = np.array([[0.05, 0.0], [0.1, 0.0]], dtype=np.float32)
    scores = [[0, 1], [1, 0]]
    costs = [[1, 3], [1, 3]]
    result = cascade_sweep(confidence, scores, costs, [0.1])
    np.testing.assert_array_equal(result.accuracy, [1.0])
    np.testing.assert_array_equal(result.mean_cost, [2.5])
    np.testing.assert_array_equal(result.accept_share, [[0.5, 0.5]])


def test_sweep_no_thresholds() -> None:
    confidence, scores, costs = random_table(8, n_items=10, n_models=3)
    result = cascade_sweep(confidence, scores, costs, [])
    assert result.accuracy.shape == (0,)
    assert result.mean_cost.shape == (0,)
    assert result.accept_share.shape == (0, 3)


def test_sweep_keeps_caller_thresholds() -> None:
    confidence, scores, costs = random_table(8, n_items=10, n_models=3)
    thresholds = np.array([0.9, 0.1, 0.5])
    result = cascade_sweep(confidence, scores, costs, thresholds)
    np.testing.assert_array_equal(thresholds, [0.9, 0.1, 0.5])
    assert result.thresholds is not thresholds


def bad_inputs() -> dict[str, tuple[object, object, object, object, str]]:
    confidence, scores, costs = random_table(0, n_items=4, n_models=3)
    with_nan = confidence.copy()
    with_nan[2, 1] = np.nan
    nan_scores = scores.copy()
    nan_scores[0, 2] = np.nan
    inf_costs = costs.copy()
    inf_costs[1, 0] = np.inf
    grid = [0.5]
    return {
        "nan confidence": (with_nan, scores, costs, grid, "confidence contains NaN"),
        "nan score": (confidence, nan_scores, costs, grid, "scores contains NaN or infinite"),
        "infinite cost": (confidence, scores, inf_costs, grid, "costs contains NaN or infinite"),
        "nan threshold": (confidence, scores, costs, [0.2, np.nan], "thresholds contains NaN"),
        "2-D thresholds": (confidence, scores, costs, [[0.5]], "give a 1-D array"),
        "shape mismatch": (confidence[:, :2], scores, costs, grid, r"but scores has \(4, 3\)"),
        "1-D tables": (confidence[0], scores[0], costs[0], grid, "give a 2-D array"),
        "no items": (confidence[:0], scores[:0], costs[:0], grid, "at least one item"),
        "no models": (confidence[:, :0], scores[:, :0], costs[:, :0], grid, "one model"),
    }


@pytest.mark.parametrize("case", sorted(bad_inputs()))
def test_sweep_rejects_bad_input(case: str) -> None:
    confidence, scores, costs, thresholds, message = bad_inputs()[case]
    with pytest.raises(ValueError, match=message):
        cascade_sweep(confidence, scores, costs, thresholds)  # type: ignore[arg-type]
