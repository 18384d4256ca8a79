"""Fitting a two-tier cascade's tier-0 threshold on a bench run, optionally after calibration.

Without a calibrator the threshold is chosen on every joined item. With one, the joined items
are split at random: the calibrator is fitted on `fit_share` of them, and the expected
calibration error (before and after) and the threshold are computed on the rest. Keeping
the threshold's items apart from the calibrator's matters for `guarantee`, whose bound
assumes the candidate thresholds were fixed before its items were seen.

The threshold is chosen in calibrated units, then mapped back to raw confidence (see
`raw_threshold`), so a live cascade compares raw confidences and needs no calibrator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from shoal.calibration.calibrators import IsotonicCalibration, PlattScaling, TemperatureScaling
from shoal.calibration.reliability import expected_calibration_error
from shoal.calibration.run_join import JoinedOutcomes
from shoal.calibration.saved import (
    SCHEMA_VERSION,
    THRESHOLD_UNITS,
    CalibrationEntry,
    CalibratorParameters,
    FiguresEntry,
    IsotonicCalibrator,
    MethodEntry,
    NoCalibrator,
    PlattCalibrator,
    SavedThresholds,
    TemperatureCalibrator,
    TierEntry,
)
from shoal.calibration.thresholds import (
    best_threshold_within_budget,
    cheapest_threshold_for_accuracy,
    guaranteed_threshold,
    threshold_curve,
)
from shoal.errors import DatasetError, UserInputError

CALIBRATORS = ("none", "temperature", "platt", "isotonic")
ECE_BINS = 15
# The escalation model's own records come from the bench's single-model config, which runs
# the model alone (model weight 1.0), so the threshold is valid for that weight only.
ESCALATION_MODEL_WEIGHT = 1.0
# Halvings of [0, 1] before the raw-threshold search stops. Bisection reaches two adjacent
# doubles within about 1075 halvings even next to 0, where the subnormals need the most.
MAX_BISECTIONS = 1100


@dataclass(frozen=True)
class CalibrationRun:
    """A fitted thresholds file and the evaluation items' confidences for the reliability plot."""

    saved: SavedThresholds
    raw_confidence: NDArray[np.float64]
    calibrated_confidence: NDArray[np.float64]
    correct0: NDArray[np.bool_]


def split_items(n: int, fit_share: float, seed: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Split positions 0..n-1 at random into (fit, evaluation), both sorted and non-empty."""
    if not 0.0 < fit_share < 1.0:
        raise UserInputError(f"invalid --fit-share {fit_share!r}: it must be between 0 and 1")
    fit_count = round(n * fit_share)
    if fit_count < 2 or n - fit_count < 1:
        raise DatasetError(
            f"{n} joined items are too few to fit a calibrator on {fit_share:.0%} of them and "
            "keep the rest apart; use --calibrator none, or a run with a larger --llm-sample"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:fit_count]), np.sort(order[fit_count:])


def fit_calibrator(
    name: str, confidence: NDArray[np.float64], correct: NDArray[np.bool_]
) -> CalibratorParameters:
    """Fit the calibrator `name` on tier-0 (confidence, correct) pairs and return its parameters."""
    if name not in CALIBRATORS:
        raise UserInputError(
            f"unknown --calibrator {name!r}; use one of: {', '.join(CALIBRATORS)}"
        )
    try:
        if name == "temperature":
            temperature = TemperatureScaling().fit(confidence, correct).temperature
            assert temperature is not None
            return TemperatureCalibrator(temperature=temperature)
        if name == "platt":
            return _platt_parameters(PlattScaling().fit(confidence, correct))
        if name == "isotonic":
            model = IsotonicCalibration().fit(confidence, correct).model
            assert model is not None
            return IsotonicCalibrator(
                x=[float(v) for v in model.X_thresholds_],
                y=[float(v) for v in model.y_thresholds_],
            )
    except ValueError as exc:
        raise DatasetError(
            f"cannot fit the {name} calibrator on {confidence.shape[0]} items: {exc}; "
            "use another --seed or --fit-share, --calibrator isotonic or none, or a run with "
            "more items"
        ) from exc
    return NoCalibrator()


def _platt_parameters(scaling: PlattScaling) -> PlattCalibrator:
    if scaling.slope <= 0.0:
        raise DatasetError(
            f"the Platt fit has slope {scaling.slope:.4g} <= 0, so higher tier-0 confidence "
            "does not mean more correct answers on the fit items; use --calibrator isotonic "
            "or none"
        )
    return PlattCalibrator(slope=scaling.slope, intercept=scaling.intercept)


def raw_threshold(
    calibrator: CalibratorParameters, threshold: float, raw_confidence: NDArray[np.float64]
) -> float:
    """Map a threshold on calibrated confidence back to raw confidence.

    The calibrators are non-decreasing, so {c : g(c) >= t} is the interval from the smallest
    such c up to 1. Bisection finds that c to the nearest double, and the result is lowered
    to the smallest raw confidence in `raw_confidence` that g accepts, so the raw threshold
    accepts exactly the same of these items as the calibrated one.
    """
    if math.isinf(threshold):
        return math.inf

    def reaches(value: float) -> bool:
        return bool(calibrator.apply(np.array([value]))[0] >= threshold)

    if not reaches(1.0):
        return math.inf
    if reaches(0.0):
        return 0.0
    low, high = 0.0, 1.0
    for _ in range(MAX_BISECTIONS):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if reaches(middle):
            high = middle
        else:
            low = middle

    accepted = raw_confidence[calibrator.apply(raw_confidence) >= threshold]
    return min(high, float(accepted.min())) if accepted.size else high


def choose_threshold(
    method: MethodEntry, outcomes: JoinedOutcomes, confidence: NDArray[np.float64], seed: int
) -> tuple[float, str | None]:
    """Choose tier 0's threshold on `confidence` by `method`, with its guarantee if any."""
    arrays = (
        confidence, outcomes.correct0, outcomes.correct1, outcomes.cost0_usd, outcomes.cost1_usd
    )
    if method.name == "target":
        assert method.target_accuracy is not None
        choice = cheapest_threshold_for_accuracy(*arrays, target=method.target_accuracy)
        if choice is None:
            raise UserInputError(_unreachable_target(method.target_accuracy, outcomes, confidence))
        return choice.threshold, None
    if method.name == "budget":
        assert method.budget_usd_per_item is not None
        choice = best_threshold_within_budget(*arrays, budget_per_item=method.budget_usd_per_item)
        if choice is None:
            raise UserInputError(
                f"--budget {method.budget_usd_per_item:g} USD per item is below tier 0's own "
                f"mean cost of {outcomes.cost0_usd.mean():.3g} USD per item on the "
                f"{outcomes.n} evaluation items; raise --budget"
            )
        return choice.threshold, None

    assert method.target_accuracy is not None and method.delta is not None
    guaranteed = guaranteed_threshold(
        confidence, outcomes.correct0, method.target_accuracy, method.delta, seed=seed
    )
    if guaranteed is None:
        raise UserInputError(
            f"no threshold keeps tier 0's accepted accuracy >= {method.target_accuracy:g} with "
            f"probability >= {1 - method.delta:g} on the {outcomes.n} evaluation items; lower "
            "--guarantee, raise --delta, or calibrate a run with more items "
            "(shoal bench --llm-sample)"
        )
    return guaranteed.threshold, guaranteed.statement()


def _unreachable_target(
    target: float, outcomes: JoinedOutcomes, confidence: NDArray[np.float64]
) -> str:
    curve = threshold_curve(
        confidence, outcomes.correct0, outcomes.correct1, outcomes.cost0_usd, outcomes.cost1_usd
    )
    return (
        f"no threshold reaches --target {target:g} on the {outcomes.n} evaluation items; the "
        f"best reachable accuracy is {curve.accuracy.max():.4f} ({outcomes.tier0_model} alone "
        f"{outcomes.correct0.mean():.4f}, {outcomes.tier1_model} alone "
        f"{outcomes.correct1.mean():.4f}); lower --target"
    )


def cascade_figures(threshold: float, outcomes: JoinedOutcomes) -> FiguresEntry:
    """Compute the cascade's results when tier 0 accepts raw confidence >= `threshold`."""
    accepted = outcomes.confidence >= threshold
    correct = np.where(accepted, outcomes.correct0, outcomes.correct1)
    cost = outcomes.cost0_usd + np.where(accepted, 0.0, outcomes.cost1_usd)
    return FiguresEntry(
        n=outcomes.n,
        accuracy=float(correct.mean()),
        mean_cost_usd=float(cost.mean()),
        accepted_share=float(accepted.mean()),
        tier0_accuracy=float(outcomes.correct0.mean()),
        tier1_accuracy=float(outcomes.correct1.mean()),
        cached_escalation_steps=int(outcomes.cached1.sum()),
    )


def calibrate_run(
    joined: JoinedOutcomes,
    method: MethodEntry,
    calibrator_name: str = "none",
    fit_share: float = 0.5,
    seed: int = 0,
) -> CalibrationRun:
    """Fit the calibrator, choose the threshold and describe both as a thresholds file."""
    if calibrator_name not in CALIBRATORS:
        raise UserInputError(
            f"unknown --calibrator {calibrator_name!r}; use one of: {', '.join(CALIBRATORS)}"
        )
    if calibrator_name == "none":
        fit_positions = np.array([], dtype=np.intp)
        evaluation = joined
        calibrator: CalibratorParameters = NoCalibrator()
    else:
        fit_positions, evaluation_positions = split_items(joined.n, fit_share, seed)
        fitted = joined.subset(fit_positions)
        calibrator = fit_calibrator(calibrator_name, fitted.confidence, fitted.correct0)
        evaluation = joined.subset(evaluation_positions)

    calibrated = calibrator.apply(evaluation.confidence)
    chosen, statement = choose_threshold(method, evaluation, calibrated, seed)
    threshold = raw_threshold(calibrator, chosen, evaluation.confidence)
    if statement is not None and calibrator_name != "none":
        statement += (
            f" The confidence there is {calibrator_name}-calibrated. In raw tier-0 confidence "
            f"the same threshold is {threshold:.6g}."
        )
    saved = SavedThresholds(
        schema_version=SCHEMA_VERSION,
        tiers=[
            TierEntry(model=joined.tier0_model, threshold=threshold, calibrated_threshold=chosen),
            TierEntry(model=joined.tier1_model, model_weight=ESCALATION_MODEL_WEIGHT),
        ],
        threshold_units=THRESHOLD_UNITS,
        method=method,
        calibrator=calibrator,
        calibration=CalibrationEntry(
            fit_share=None if calibrator_name == "none" else fit_share,
            seed=seed,
            fit_items=int(fit_positions.shape[0]),
            evaluation_items=evaluation.n,
            ece_bins=ECE_BINS,
            ece_before=expected_calibration_error(
                evaluation.confidence, evaluation.correct0, ECE_BINS
            ),
            ece_after=expected_calibration_error(calibrated, evaluation.correct0, ECE_BINS),
        ),
        figures=cascade_figures(threshold, evaluation),
        guarantee=statement,
        source=str(joined.records_path.resolve()),
        created_at=datetime.now(UTC),
    )
    return CalibrationRun(
        saved=saved,
        raw_confidence=evaluation.confidence,
        calibrated_confidence=calibrated,
        correct0=evaluation.correct0,
    )
