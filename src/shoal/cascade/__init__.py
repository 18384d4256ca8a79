"""Cascades: accept a tier's prediction when its confidence reaches the tier's threshold."""

from shoal.cascade.core import Cascade, CascadeOutcome, Tier, accepts
from shoal.cascade.fit import DevOutcomes, ThresholdFit, fit_thresholds

__all__ = [
    "Cascade",
    "CascadeOutcome",
    "DevOutcomes",
    "ThresholdFit",
    "Tier",
    "accepts",
    "fit_thresholds",
]
