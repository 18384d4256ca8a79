"""Confidence calibration and threshold selection for two-tier cascades."""

from shoal.calibration.calibrators import (
    Calibrator,
    IsotonicCalibration,
    PlattScaling,
    TemperatureScaling,
)
from shoal.calibration.reliability import (
    ReliabilityBin,
    expected_calibration_error,
    plot_reliability,
    reliability_bins,
)
from shoal.calibration.thresholds import (
    GuaranteedThreshold,
    ThresholdChoice,
    ThresholdCurve,
    best_threshold_within_budget,
    cheapest_threshold_for_accuracy,
    guaranteed_threshold,
    threshold_curve,
)

__all__ = [
    "Calibrator",
    "GuaranteedThreshold",
    "IsotonicCalibration",
    "PlattScaling",
    "ReliabilityBin",
    "TemperatureScaling",
    "ThresholdChoice",
    "ThresholdCurve",
    "best_threshold_within_budget",
    "cheapest_threshold_for_accuracy",
    "expected_calibration_error",
    "guaranteed_threshold",
    "plot_reliability",
    "reliability_bins",
    "threshold_curve",
]
