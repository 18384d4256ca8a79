"""Threshold search on hand-made dev outcomes: cheapest setting within tolerance of the best."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shoal.cascade import DevOutcomes, fit_thresholds

NAN = math.nan


def outcomes(
    confidence: list[float], correct: list[bool], cost_usd: float | list[float]
) -> DevOutcomes:
    """Build one tier's dev outcomes; a NaN confidence marks an item the tier did not run on."""
    costs = [cost_usd] * len(confidence) if isinstance(cost_usd, float) else cost_usd
    confidence_array = np.array(confidence, dtype=np.float64)
    costs_array = np.where(np.isnan(confidence_array), 0.0, np.array(costs, dtype=np.float64))
    return DevOutcomes(
        confidence=confidence_array,
        correct=np.array(correct, dtype=bool),
        cost_usd=costs_array,
    )


# Tier 0 on 8 dev items: correct on 4. Tier 1 ran on the 5 items below the ceiling 0.7.
TIER0 = outcomes(
    [0.95, 0.9, 0.8, 0.6, 0.5, 0.3, 0.2, 0.1],
    [True, True, True, False, False, False, True, False],
    0.001,
)
CEILING = 0.7


def test_useless_escalation_keeps_tier0() -> None:
    # Tier 1 is correct exactly where tier 0 is, so escalating only adds cost.
    tier1 = outcomes(
        [NAN, NAN, NAN, 0.9, 0.8, 0.7, 0.6, 0.5],
        [False, False, False, False, False, False, True, False],
        0.01,
    )

    fit = fit_thresholds([TIER0, tier1], [CEILING])

    assert fit.thresholds == (0.0,)
    assert fit.dev_shares == (1.0, 0.0)
    assert fit.escalates is False
    assert fit.dev_accuracy == 0.5
    assert fit.tier0_dev_accuracy == 0.5
    assert fit.best_dev_accuracy == 0.5
    assert fit.dev_mean_cost_usd == pytest.approx(0.001)


def test_worse_escalation_keeps_tier0() -> None:
    tier1 = outcomes(
        [NAN, NAN, NAN, 0.9, 0.8, 0.7, 0.6, 0.5],
        [False, False, False, False, False, False, False, False],
        0.01,
    )

    fit = fit_thresholds([TIER0, tier1], [CEILING])

    assert fit.thresholds == (0.0,)
    assert fit.dev_shares[0] == 1.0
    assert fit.escalates is False
    assert fit.best_dev_accuracy == 0.5


# Tier 1 fixes items 3 (confidence 0.6) and 4 (0.5) and keeps item 6 correct, so escalating
# below 0.6 gives 5/8 and below 0.7 gives 6/8.
PAYING_TIER1 = outcomes(
    [NAN, NAN, NAN, 0.9, 0.8, 0.7, 0.6, 0.5],
    [False, False, False, True, True, False, True, False],
    0.01,
)


def test_paying_escalation_picks_best_threshold() -> None:
    fit = fit_thresholds([TIER0, PAYING_TIER1], [CEILING], tolerance=0.005)

    assert fit.thresholds == (0.7,)
    assert fit.dev_accuracy == 0.75
    assert fit.best_dev_accuracy == 0.75
    assert fit.tier0_dev_accuracy == 0.5
    assert fit.dev_shares == (3 / 8, 5 / 8)
    assert fit.escalates is True
    assert fit.dev_mean_cost_usd == pytest.approx(0.001 + 5 * 0.01 / 8)


def test_cheaper_threshold_within_tolerance() -> None:
    # 5/8 is exactly 0.125 below the best 6/8, so a tolerance of 0.125 admits the cheaper 0.6.
    fit = fit_thresholds([TIER0, PAYING_TIER1], [CEILING], tolerance=0.125)

    assert fit.thresholds == (0.6,)
    assert fit.dev_accuracy == 0.625
    assert fit.best_dev_accuracy == 0.75
    assert fit.dev_shares == (0.5, 0.5)
    assert fit.dev_mean_cost_usd == pytest.approx(0.001 + 4 * 0.01 / 8)


def test_tolerance_just_below_gap() -> None:
    fit = fit_thresholds([TIER0, PAYING_TIER1], [CEILING], tolerance=0.125 - 1e-9)

    assert fit.thresholds == (0.7,)
    assert fit.dev_accuracy == 0.75


def test_tolerance_above_gain_keeps_tier0() -> None:
    fit = fit_thresholds([TIER0, PAYING_TIER1], [CEILING], tolerance=0.25)

    assert fit.thresholds == (0.0,)
    assert fit.escalates is False
    assert fit.dev_accuracy == 0.5


def test_grid_and_curve_below_ceiling() -> None:
    fit = fit_thresholds([TIER0, PAYING_TIER1], [CEILING])

    # 0.0, the tier 0 confidences below the ceiling (0.1, 0.2, 0.3, 0.5, 0.6) and the ceiling.
    assert fit.settings_tried == 7
    assert [point["threshold"] for point in fit.curve] == [0.0, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7]
    assert [point["accuracy"] for point in fit.curve] == [
        0.5, 0.5, 0.5, 0.5, 0.5, 0.625, 0.75
    ]
    assert fit.curve[-1]["tier0_share"] == 3 / 8


def test_results_above_ceiling_never_used() -> None:
    # Tier 1 did not run on items 0-2 (confidence at or above the ceiling). Their correct
    # flags and costs are lures: a search that read them would escalate everything.
    lured = DevOutcomes(
        confidence=np.array([NAN, NAN, NAN, 0.9, 0.8, 0.7, 0.6, 0.5]),
        correct=np.array([True] * 3 + [True, True, False, True, False]),
        cost_usd=np.array([0.0] * 3 + [0.01] * 5),
    )

    fit = fit_thresholds([TIER0, lured], [CEILING])

    assert fit.thresholds[0] <= CEILING
    assert fit.thresholds == (0.7,)
    assert fit.dev_accuracy == 0.75
    assert all(point["threshold"] <= CEILING for point in fit.curve)


def test_unevaluable_thresholds_skipped() -> None:
    # A ceiling of 1.0 puts 0.8, 0.9 and 0.95 in the grid, but each of those settings sends an
    # item that tier 1 never ran on to tier 1, so the search must skip them.
    lured = DevOutcomes(
        confidence=np.array([NAN, NAN, NAN, 0.9, 0.8, 0.7, 0.6, 0.5]),
        correct=np.array([True] * 8),
        cost_usd=np.array([0.0] * 3 + [0.01] * 5),
    )

    fit = fit_thresholds([TIER0, lured], [1.0])

    assert fit.settings_tried == 7
    assert fit.thresholds == (0.8,)
    assert fit.dev_accuracy == 1.0
    assert fit.dev_shares == (3 / 8, 5 / 8)


# Three tiers on 6 dev items. Tier 1 ran on items 2-5 (tier 0 below 0.7), tier 2 on items 3-5
# (tier 1 below 0.65). Tier 2 fixes items 3 and 4 but breaks item 5.
THREE_TIERS = [
    outcomes([0.9, 0.8, 0.6, 0.5, 0.4, 0.3], [True, True, False, False, False, True], 0.001),
    outcomes([NAN, NAN, 0.9, 0.4, 0.6, 0.3], [False, False, True, False, False, True], 0.01),
    outcomes([NAN, NAN, NAN, 0.8, 0.7, 0.9], [False, False, False, True, True, False], 0.1),
]
THREE_CEILINGS = [0.7, 0.65]


def test_three_tiers_best_setting() -> None:
    fit = fit_thresholds(THREE_TIERS, THREE_CEILINGS)

    assert fit.thresholds == (0.7, 0.65)
    assert fit.dev_accuracy == pytest.approx(5 / 6)
    assert fit.best_dev_accuracy == pytest.approx(5 / 6)
    assert fit.tier0_dev_accuracy == pytest.approx(3 / 6)
    assert fit.dev_shares == pytest.approx((2 / 6, 1 / 6, 3 / 6))
    assert fit.dev_mean_cost_usd == pytest.approx((6 * 0.001 + 4 * 0.01 + 3 * 0.1) / 6)
    # Tier 0 grid {0, 0.3, 0.4, 0.5, 0.6, 0.7} times tier 1 grid {0, 0.3, 0.4, 0.6, 0.65}.
    assert fit.settings_tried == 30
    assert len(fit.curve) == 6


def test_three_tiers_drop_costly_tier() -> None:
    # With room for one item less, tier 2 is not worth its price: the cheapest setting with
    # 4/6 correct sends items 2-5 to tier 1 and none on to tier 2.
    fit = fit_thresholds(THREE_TIERS, THREE_CEILINGS, tolerance=0.17)

    assert fit.thresholds == (0.7, 0.0)
    assert fit.dev_accuracy == pytest.approx(4 / 6)
    assert fit.dev_shares == pytest.approx((2 / 6, 4 / 6, 0.0))
    assert fit.dev_mean_cost_usd == pytest.approx((6 * 0.001 + 4 * 0.01) / 6)


def test_one_tier_rejected() -> None:
    with pytest.raises(ValueError, match="at least two tiers"):
        fit_thresholds([TIER0], [])
