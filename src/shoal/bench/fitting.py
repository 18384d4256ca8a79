"""Fitting an escalation chain on the dev split: model weights, then thresholds.

Escalation tiers are run only on the dev items that could reach them: the `pool_share`
least confident items of the tier before. That bounds the number of slow model calls and
the highest threshold the search can evaluate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from shoal.bench.progress import Progress
from shoal.cascade.fit import DevOutcomes, ThresholdFit, fit_thresholds
from shoal.evaluate.datasets import LabelledDataset
from shoal.tasks.classify import CandidateStep, EncoderStep, mix_probabilities
from shoal.tasks.prediction import ItemContext

logger = logging.getLogger("shoal.bench.fitting")

# Shares of the model in the mixed probabilities that the dev fit tries, in increasing order.
MODEL_WEIGHTS = (0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.75, 1.0)


@dataclass
class ChainFit:
    """The choices fitted on the dev split: a model weight per escalation tier and the thresholds."""

    model_weights: list[float]
    ceilings: list[float]
    thresholds: ThresholdFit
    pool_sizes: list[int]


def _outcomes(items: list[ItemContext], gold: tuple[str, ...], tier: int) -> DevOutcomes:
    confidence = np.full(len(items), np.nan)
    correct = np.zeros(len(items), dtype=bool)
    cost = np.zeros(len(items))
    for index, item in enumerate(items):
        if len(item.predictions) > tier:
            prediction = item.predictions[tier]
            confidence[index] = prediction.confidence
            correct[index] = prediction.label == gold[index]
            cost[index] = float(prediction.cost.amount)
    return DevOutcomes(confidence=confidence, correct=correct, cost_usd=cost)


def _choose_weight(items: list[ItemContext], gold: tuple[str, ...], tier: int) -> float:
    """Pick the model weight with the best accuracy on the items the tier ran on.

    When several weights tie, the middle one is taken. A model whose probabilities are
    nearly 0 or 1 overrules the earlier step all at once past some weight, so accuracy can
    fall off a cliff next to the best weights. The middle of the best ones keeps away from
    that edge.
    """
    ran = [(item, gold[i]) for i, item in enumerate(items) if len(item.predictions) > tier]
    correct_by_weight = []
    for weight in MODEL_WEIGHTS:
        correct = 0
        for item, label in ran:
            previous = item.predictions[tier - 1].probs
            mixed = mix_probabilities(previous, item.predictions[tier].model_probs or {}, weight)
            correct += max(mixed, key=mixed.__getitem__) == label
        correct_by_weight.append(correct)
    best = max(correct_by_weight)
    tied = [w for w, c in zip(MODEL_WEIGHTS, correct_by_weight, strict=True) if c == best]
    return tied[(len(tied) - 1) // 2]


def _apply_weight(items: list[ItemContext], tier: int, weight: float) -> None:
    for item in items:
        if len(item.predictions) > tier:
            prediction = item.predictions[tier]
            mixed = mix_probabilities(
                item.predictions[tier - 1].probs, prediction.model_probs or {}, weight
            )
            prediction.probs = mixed
            prediction.label = max(mixed, key=mixed.__getitem__)
            prediction.confidence = mixed[prediction.label]


async def fit_chain(
    encoder_step: EncoderStep,
    escalation_steps: list[CandidateStep],
    dev: LabelledDataset,
    *,
    pool_share: float,
    tolerance: float,
    progress: Progress,
) -> ChainFit:
    """Run the tiers on dev, choose each tier's model weight, then fit the thresholds."""
    items = [ItemContext(text=text) for text in dev.texts]
    progress.phase(f"dev: {encoder_step.model} on {len(items)} items", len(items))
    for item in items:
        item.predictions.append(await encoder_step.predict(item))
        progress.advance()

    weights, ceilings, pool_sizes = [], [], []
    for tier, step in enumerate(escalation_steps, start=1):
        reaching = [item for item in items if len(item.predictions) == tier]
        confidences = np.array([item.predictions[-1].confidence for item in reaching])
        ceiling = float(np.quantile(confidences, pool_share)) if len(reaching) else 0.0
        pool = [item for item in reaching if item.predictions[-1].confidence < ceiling]
        progress.phase(f"dev: {step.model} on the {len(pool)} least confident items", len(pool))
        for item in pool:
            item.predictions.append(await step.predict(item))
            progress.advance()
        weight = _choose_weight(items, dev.labels, tier)
        _apply_weight(items, tier, weight)
        step.model_weight = weight
        weights.append(weight)
        ceilings.append(ceiling)
        pool_sizes.append(len(pool))

    outcomes = [_outcomes(items, dev.labels, tier) for tier in range(len(escalation_steps) + 1)]
    fit = fit_thresholds(outcomes, ceilings, tolerance=tolerance)
    logger.info(
        "dev fit: thresholds %s, accuracy %.3f (tier 0 %.3f), shares %s",
        fit.thresholds, fit.dev_accuracy, fit.tier0_dev_accuracy, fit.dev_shares,
    )
    return ChainFit(
        model_weights=weights, ceilings=ceilings, thresholds=fit, pool_sizes=pool_sizes
    )
