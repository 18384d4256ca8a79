"""Choosing cascade thresholds on a labelled dev split (a plain search, no guarantee).

Rule: among all threshold settings, take the cheapest whose dev accuracy is within
`tolerance` of the most accurate setting. Accepting everything at tier 0 is the cheapest
setting, so escalation is chosen only when it gains more than `tolerance` on dev.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class DevOutcomes:
    """One tier's results on the dev items; NaN confidence where the tier did not run."""

    confidence: NDArray[np.float64]
    correct: NDArray[np.bool_]
    cost_usd: NDArray[np.float64]


@dataclass
class ThresholdFit:
    """The chosen thresholds (one per tier but the last) and what they gave on dev."""

    thresholds: tuple[float, ...]
    dev_accuracy: float
    dev_mean_cost_usd: float
    dev_shares: tuple[float, ...]  # share of dev items whose prediction each tier gave
    tier0_dev_accuracy: float
    best_dev_accuracy: float
    settings_tried: int
    curve: list[dict[str, float]] = field(default_factory=list)

    @property
    def escalates(self) -> bool:
        return self.dev_shares[0] < 1.0


def _candidate_thresholds(outcomes: DevOutcomes, reach: NDArray[np.bool_], ceiling: float) -> list[float]:
    """0.0 (accept all) plus every dev confidence below `ceiling` of items that reach the tier."""
    confidences = outcomes.confidence[reach & ~np.isnan(outcomes.confidence)]
    values = {0.0, ceiling}
    values.update(float(c) for c in confidences if c < ceiling)
    return sorted(values)


def _simulate(
    tiers: list[DevOutcomes], thresholds: tuple[float, ...]
) -> tuple[float, float, tuple[float, ...]] | None:
    """Return (accuracy, mean cost, shares) of a setting, or None if it needs missing results."""
    n = len(tiers[0].correct)
    remaining = np.ones(n, dtype=bool)
    correct = np.zeros(n, dtype=bool)
    cost = np.zeros(n)
    shares = []
    for index, tier in enumerate(tiers):
        if np.isnan(tier.confidence[remaining]).any():
            return None
        cost[remaining] += tier.cost_usd[remaining]
        if index == len(tiers) - 1:
            accepted = remaining.copy()
        else:
            accepted = remaining & (tier.confidence >= thresholds[index])
        correct[accepted] = tier.correct[accepted]
        shares.append(float(accepted.sum()) / n)
        remaining &= ~accepted
    return float(correct.mean()), float(cost.mean()), tuple(shares)


def fit_thresholds(
    tiers: list[DevOutcomes], ceilings: list[float], tolerance: float = 0.005
) -> ThresholdFit:
    """Search thresholds for every tier but the last; see the module docstring for the rule.

    `ceilings[i]` is the confidence below which tier i+1 was run on the dev items, so no
    threshold above it can be evaluated.
    """
    if len(tiers) < 2:
        raise ValueError("fitting thresholds needs at least two tiers")
    reach = np.ones(len(tiers[0].correct), dtype=bool)
    grids = []
    for index in range(len(tiers) - 1):
        grids.append(_candidate_thresholds(tiers[index], reach, ceilings[index]))
        reach = reach & ~np.isnan(tiers[index + 1].confidence)

    results = []
    for setting in itertools.product(*grids):
        simulated = _simulate(tiers, setting)
        if simulated is not None:
            results.append((setting, *simulated))
    if not results:
        raise ValueError("no threshold setting could be evaluated on the dev outcomes")

    best_accuracy = max(r[1] for r in results)
    feasible = [r for r in results if r[1] >= best_accuracy - tolerance]
    chosen = min(feasible, key=lambda r: (r[2], -r[1]))
    tier0 = float(tiers[0].correct.mean())
    curve = [
        {"threshold": s[0], "accuracy": a, "mean_cost_usd": c, "tier0_share": sh[0]}
        for s, a, c, sh in results
        if all(t == 0.0 for t in s[1:])
    ]
    return ThresholdFit(
        thresholds=chosen[0],
        dev_accuracy=chosen[1],
        dev_mean_cost_usd=chosen[2],
        dev_shares=chosen[3],
        tier0_dev_accuracy=tier0,
        best_dev_accuracy=best_accuracy,
        settings_tried=len(results),
        curve=curve,
    )
