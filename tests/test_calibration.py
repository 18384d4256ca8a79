from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit

from shoal.calibration import (
    IsotonicCalibration,
    PlattScaling,
    TemperatureScaling,
    best_threshold_within_budget,
    cheapest_threshold_for_accuracy,
    expected_calibration_error,
    guaranteed_threshold,
    plot_reliability,
    reliability_bins,
)

CALIBRATORS = [TemperatureScaling, PlattScaling, IsotonicCalibration]


def _overconfident(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return confidences sigmoid(2.5 z) whose true accuracy is sigmoid(z), and 0/1 outcomes."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(1.0, 1.5, size)
    correct = (rng.random(size) < expit(logits)).astype(int)
    return expit(2.5 * logits), correct


@pytest.mark.parametrize("calibrator_class", CALIBRATORS)
def test_calibrator_reduces_ece(calibrator_class: type) -> None:
    train_confidence, train_correct = _overconfident(seed=1, size=5000)
    test_confidence, test_correct = _overconfident(seed=2, size=5000)

    calibrator = calibrator_class().fit(train_confidence, train_correct)
    calibrated = calibrator.predict(test_confidence)

    before = expected_calibration_error(test_confidence, test_correct)
    after = expected_calibration_error(calibrated, test_correct)
    assert before > 0.08
    assert after < before / 2
    if calibrator_class is not PlattScaling:
        # Platt fits sigmoid(a * p + b) on the raw probability, which cannot undo this
        # miscalibration exactly, so only the relative check applies to it.
        assert after < 0.04
    assert np.all((calibrated >= 0.0) & (calibrated <= 1.0))


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_temperature_recovers_known_value(true_temperature: float) -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(1.0, 3.0, 20000)
    correct = (rng.random(logits.size) < expit(logits / true_temperature)).astype(int)

    from_logits = TemperatureScaling(score_kind="logit").fit(logits, correct)
    from_probabilities = TemperatureScaling().fit(expit(logits), correct)

    assert from_logits.temperature == pytest.approx(true_temperature, rel=0.05)
    assert from_probabilities.temperature == pytest.approx(from_logits.temperature, rel=1e-4)


def test_temperature_overconfidence_gives_t_above_one() -> None:
    confidence, correct = _overconfident(seed=4, size=5000)

    temperature = TemperatureScaling().fit(confidence, correct).temperature

    assert temperature == pytest.approx(2.5, rel=0.1)


@pytest.mark.parametrize("calibrator_class", CALIBRATORS)
def test_calibrator_input_errors(calibrator_class: type) -> None:
    calibrator = calibrator_class()

    with pytest.raises(ValueError, match="same length"):
        calibrator.fit([0.2, 0.8, 0.5], [0, 1])
    with pytest.raises(ValueError, match="at least 2 items"):
        calibrator.fit([0.2], [1])
    with pytest.raises(ValueError, match="only 0 and 1"):
        calibrator.fit([0.2, 0.8], [0, 2])
    with pytest.raises(ValueError, match="NaN"):
        calibrator.fit([0.2, float("nan")], [0, 1])
    with pytest.raises(RuntimeError, match="not fitted"):
        calibrator.predict([0.5])


@pytest.mark.parametrize("calibrator_class", [TemperatureScaling, PlattScaling])
def test_parametric_calibrator_needs_both_classes(calibrator_class: type) -> None:
    with pytest.raises(ValueError, match="both 0 and 1"):
        calibrator_class().fit([0.2, 0.8, 0.9], [1, 1, 1])


def test_temperature_rejects_probability_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        TemperatureScaling().fit([0.2, 1.5], [0, 1])


def test_isotonic_accepts_one_class_and_clips() -> None:
    calibrator = IsotonicCalibration().fit([0.2, 0.5, 0.9], [True, True, True])

    predicted = calibrator.predict([-1.0, 0.5, 2.0])

    assert predicted.tolist() == [1.0, 1.0, 1.0]


def test_ece_hand_computed() -> None:
    confidence = [0.1, 0.3, 0.35, 0.9]
    correct = [0, 1, 0, 1]
    # Bin (0, 0.5]: mean confidence 0.25, accuracy 1/3, weight 3/4.
    # Bin (0.5, 1]: mean confidence 0.9, accuracy 1, weight 1/4.
    expected = 0.75 * abs(1 / 3 - 0.25) + 0.25 * abs(1.0 - 0.9)

    assert expected_calibration_error(confidence, correct, bins=2) == pytest.approx(expected)


def test_ece_zero_when_calibrated_exactly() -> None:
    confidence = [0.5, 0.5, 1.0, 1.0]
    correct = [1, 0, 1, 1]

    assert expected_calibration_error(confidence, correct, bins=10) == pytest.approx(0.0)


def test_reliability_bins_edges_and_counts() -> None:
    confidence = [0.0, 0.5, 0.51, 1.0, 0.7]
    correct = [0, 1, 1, 0, 1]

    result = reliability_bins(confidence, correct, bins=2)

    assert [item.count for item in result] == [2, 3]
    assert result[0].mean_confidence == pytest.approx(0.25)
    assert result[0].accuracy == pytest.approx(0.5)
    assert result[1].mean_confidence == pytest.approx((0.51 + 1.0 + 0.7) / 3)
    assert result[1].accuracy == pytest.approx(2 / 3)
    assert (result[0].lower, result[0].upper, result[1].upper) == (0.0, 0.5, 1.0)


def test_reliability_bins_empty_bin_is_nan() -> None:
    result = reliability_bins([0.95, 0.97], [1, 0], bins=4)

    assert [item.count for item in result] == [0, 0, 0, 2]
    assert math.isnan(result[0].accuracy)
    assert math.isnan(result[0].mean_confidence)


def test_reliability_input_errors() -> None:
    with pytest.raises(ValueError, match="same length"):
        expected_calibration_error([0.5, 0.6], [1])
    with pytest.raises(ValueError, match="bins"):
        expected_calibration_error([0.5], [1], bins=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.2], [1])


def test_plot_reliability_writes_png(tmp_path) -> None:
    confidence, correct = _overconfident(seed=5, size=500)

    path = plot_reliability(confidence, correct, tmp_path / "reliability.png", title="Tier 0")

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000


def _cascade_data(seed: int, size: int) -> dict[str, np.ndarray]:
    """Return random cascade outcomes with rounded confidences, so thresholds have ties."""
    rng = np.random.default_rng(seed)
    confidence = np.round(rng.random(size), 2)
    return {
        "confidence": confidence,
        "correct0": (rng.random(size) < confidence).astype(int),
        "correct1": (rng.random(size) < 0.9).astype(int),
        "cost0": rng.uniform(0.0001, 0.0003, size),
        "cost1": rng.uniform(0.002, 0.004, size),
    }


def _brute_force(data: dict[str, np.ndarray]) -> list[tuple[float, float, float]]:
    """Return (threshold, accuracy, mean cost) for every distinct threshold, item by item."""
    rows = []
    for threshold in [math.inf, *np.unique(data["confidence"]).tolist()]:
        accepted = data["confidence"] >= threshold
        right = np.where(accepted, data["correct0"], data["correct1"])
        cost = data["cost0"] + np.where(accepted, 0.0, data["cost1"])
        rows.append((threshold, float(np.mean(right)), float(np.mean(cost))))
    return rows


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("target", [0.6, 0.75, 0.85])
def test_cheapest_threshold_matches_brute_force(seed: int, target: float) -> None:
    data = _cascade_data(seed, size=int(40 + 30 * seed))
    rows = [row for row in _brute_force(data) if row[1] >= target]

    choice = cheapest_threshold_for_accuracy(**data, target=target)

    if not rows:
        assert choice is None
        return
    cheapest = min(cost for _, _, cost in rows)
    assert choice is not None
    assert choice.accuracy >= target
    assert choice.mean_cost_usd == pytest.approx(cheapest, rel=1e-9)
    matching = [row for row in rows if row[0] == choice.threshold]
    assert matching
    assert matching[0][1] == pytest.approx(choice.accuracy)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("budget", [0.0002, 0.001, 0.002, 0.01])
def test_budget_threshold_matches_brute_force(seed: int, budget: float) -> None:
    data = _cascade_data(seed, size=int(40 + 30 * seed))
    rows = [row for row in _brute_force(data) if row[2] <= budget]

    choice = best_threshold_within_budget(**data, budget_per_item=budget)

    if not rows:
        assert choice is None
        return
    best = max(accuracy for _, accuracy, _ in rows)
    assert choice is not None
    assert choice.mean_cost_usd <= budget * (1 + 1e-9)
    assert choice.accuracy == pytest.approx(best)
    assert choice.threshold in [row[0] for row in rows]


def test_budget_exactly_at_a_threshold_cost() -> None:
    data = _cascade_data(seed=7, size=80)
    rows = _brute_force(data)
    _, accuracy, cost = rows[len(rows) // 2]

    choice = best_threshold_within_budget(**data, budget_per_item=cost)

    assert choice is not None
    assert choice.accuracy >= accuracy


def test_thresholds_accept_scalar_costs() -> None:
    data = _cascade_data(seed=8, size=50)
    data["cost0"] = 0.0
    data["cost1"] = 0.01

    everything_escalated = best_threshold_within_budget(**data, budget_per_item=0.01)
    nothing_escalated = best_threshold_within_budget(**data, budget_per_item=0.0)

    assert everything_escalated is not None
    assert nothing_escalated is not None
    assert nothing_escalated.accepted_share == 1.0
    assert nothing_escalated.mean_cost_usd == 0.0


def test_unreachable_accuracy_returns_none() -> None:
    data = _cascade_data(seed=9, size=50)

    assert cheapest_threshold_for_accuracy(**data, target=1.0) is None


def test_threshold_input_errors() -> None:
    data = _cascade_data(seed=10, size=20)

    with pytest.raises(ValueError, match="correct1 must have 20 items"):
        cheapest_threshold_for_accuracy(**{**data, "correct1": data["correct1"][:5]}, target=0.5)
    with pytest.raises(ValueError, match="non-negative"):
        best_threshold_within_budget(**{**data, "cost1": -data["cost1"]}, budget_per_item=1.0)
    with pytest.raises(ValueError, match="target"):
        cheapest_threshold_for_accuracy(**data, target=1.5)


def _true_accepted_accuracy(threshold: float) -> float:
    """Accepted accuracy for confidence ~ Uniform(0, 1) and P(correct | c) = 0.3 + 0.7 c."""
    return 0.3 + 0.35 * (1.0 + threshold)


def _draw_calibration(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    confidence = rng.random(size)
    correct = (rng.random(size) < 0.3 + 0.7 * confidence).astype(int)
    return confidence, correct


def test_guarantee_holds_in_simulation() -> None:
    rng = np.random.default_rng(11)
    target, delta, draws = 0.9, 0.1, 400
    failures = 0
    found = 0
    for _ in range(draws):
        confidence, correct = _draw_calibration(rng, size=1000)
        result = guaranteed_threshold(confidence, correct, target_accuracy=target, delta=delta)
        if result is None:
            continue
        found += 1
        if _true_accepted_accuracy(result.threshold) < target:
            failures += 1

    # Monte Carlo slack: the standard error of a rate near 0.1 over 400 draws is about 0.015.
    assert failures / draws <= delta + 0.04
    # The procedure must not be trivially safe. Testing stops at the first non-rejection, and
    # 20% of the items only choose the start, so at n = 1000 about 70% of draws find one.
    assert found / draws > 0.6


def test_guarantee_threshold_close_to_oracle() -> None:
    rng = np.random.default_rng(12)
    confidence, correct = _draw_calibration(rng, size=20000)
    oracle = 0.6 / 0.35 - 1.0

    result = guaranteed_threshold(confidence, correct, target_accuracy=0.9, delta=0.05)

    assert result is not None
    assert oracle <= result.threshold < oracle + 0.05
    assert result.accepted_accuracy >= 0.9
    assert result.n == 20000


def test_guarantee_unreachable_target_returns_none() -> None:
    rng = np.random.default_rng(13)
    confidence, correct = _draw_calibration(rng, size=2000)

    assert guaranteed_threshold(confidence, correct, target_accuracy=1.0, delta=0.1) is None
    assert guaranteed_threshold(confidence, correct, target_accuracy=0.999, delta=0.1) is None


def test_guarantee_statement_names_assumption() -> None:
    rng = np.random.default_rng(14)
    confidence, correct = _draw_calibration(rng, size=2000)

    result = guaranteed_threshold(confidence, correct, target_accuracy=0.85, delta=0.05)

    assert result is not None
    sentence = result.statement()
    assert "exchangeable" in sentence
    assert "0.95" in sentence
    assert "0.85" in sentence
    assert sentence.count(".") >= 1
    assert sentence.endswith(".")


def test_guarantee_custom_candidates() -> None:
    confidence = np.array([0.95] * 60 + [0.5] * 40)
    correct = np.array([1] * 60 + [0] * 40)

    result = guaranteed_threshold(
        confidence, correct, target_accuracy=0.9, delta=0.1, candidates=[0.9, 0.4], start_share=0.0
    )

    assert result is not None
    assert result.threshold == 0.9
    assert result.accepted_count == 60
    assert result.accepted_accuracy == 1.0
    assert (result.tested_items, result.start_items) == (100, 0)


def test_guarantee_start_items_are_held_out() -> None:
    rng = np.random.default_rng(15)
    confidence, correct = _draw_calibration(rng, size=1000)

    result = guaranteed_threshold(confidence, correct, target_accuracy=0.9, delta=0.1)

    assert result is not None
    assert (result.n, result.start_items, result.tested_items) == (1000, 200, 800)
    assert result.accepted_count <= 800
    assert "800 items that tested it" in result.statement()


def test_guarantee_without_start_items_stops_at_the_top() -> None:
    # With every item testing, the sequence starts at 1.0, which accepts no item, so the
    # first test fails; the held-out start avoids exactly this.
    rng = np.random.default_rng(16)
    confidence, correct = _draw_calibration(rng, size=1000)

    assert guaranteed_threshold(confidence, correct, 0.9, 0.1, start_share=0.0) is None
    assert guaranteed_threshold(confidence, correct, 0.9, 0.1) is not None


def test_guarantee_holds_over_calibration_test_splits() -> None:
    # A fixed pool split at random into calibration and test items, 200 times: the share of
    # splits whose accepted test accuracy falls below the target must stay near delta.
    rng = np.random.default_rng(17)
    pool_confidence, pool_correct = _draw_calibration(rng, size=60000)
    target, delta, splits, calibration_size = 0.9, 0.1, 200, 1500
    below = found = 0
    for split in range(splits):
        order = rng.permutation(pool_confidence.size)
        calibration, test = order[:calibration_size], order[calibration_size:]
        result = guaranteed_threshold(
            pool_confidence[calibration], pool_correct[calibration], target, delta, seed=split
        )
        if result is None:
            continue
        found += 1
        accepted = pool_confidence[test] >= result.threshold
        if pool_correct[test][accepted].mean() < target:
            below += 1

    # Sampling slack: the standard error of a share near 0.1 over 200 splits is about 0.021.
    assert below / splits <= delta + 0.05
    assert found / splits > 0.7


def test_guarantee_input_errors() -> None:
    with pytest.raises(ValueError, match="delta"):
        guaranteed_threshold([0.5, 0.6], [1, 0], target_accuracy=0.9, delta=0.0)
    with pytest.raises(ValueError, match="target_accuracy"):
        guaranteed_threshold([0.5, 0.6], [1, 0], target_accuracy=0.0, delta=0.1)
    with pytest.raises(ValueError, match="same length"):
        guaranteed_threshold([0.5, 0.6], [1], target_accuracy=0.9, delta=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        guaranteed_threshold([0.5, 1.6], [1, 0], target_accuracy=0.9, delta=0.1)


@pytest.mark.parametrize("offset", [-1e-6, 0.0, 1e-6], ids=["below", "at", "just-above"])
def test_target_below_at_and_above_a_reached_accuracy(offset: float) -> None:
    data = _cascade_data(seed=20, size=120)
    rows = _brute_force(data)
    reached = sorted({accuracy for _, accuracy, _ in rows})[-3]  # a reachable, not the best
    target = reached + offset

    choice = cheapest_threshold_for_accuracy(**data, target=target)

    assert choice is not None
    assert choice.accuracy >= target
    cheapest = min(cost for _, accuracy, cost in rows if accuracy >= target)
    assert choice.mean_cost_usd == pytest.approx(cheapest)
    if offset > 0:
        assert choice.accuracy > reached
