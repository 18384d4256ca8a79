"""Predictions: a classify step's result for one item, and the item's context in a cascade."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shoal.pricing import Cost
from shoal.providers.base import Usage


@dataclass
class Prediction:
    """A step's label for one item, with its confidence, cost and latency.

    `probs` are over the labels the step considered; `confidence` is the probability of
    the predicted label among them.
    """

    model: str
    label: str
    confidence: float
    probs: dict[str, float]
    cost: Cost
    latency_s: float
    usage: Usage
    attempts: int = 1
    cached: bool = False  # answered from the response cache, so it cost nothing
    # The model's own probabilities before they were mixed with an earlier step's.
    model_probs: dict[str, float] | None = None

    def top_labels(self, k: int) -> list[str]:
        return sorted(self.probs, key=self.probs.__getitem__, reverse=True)[:k]

    def to_step_record(self, accepted: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "prediction": self.label,
            "confidence": self.confidence,
            "accepted": accepted,
            "cost": self.cost.to_record(),
            "latency_ms": self.latency_s * 1000,
            "attempts": self.attempts,
            "cached": self.cached,
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
                "cache_read_tokens": self.usage.cache_read_tokens,
                "cache_write_tokens": self.usage.cache_write_tokens,
                "reasoning_tokens": self.usage.reasoning_tokens,
                "compute_seconds": self.usage.compute_seconds,
            },
        }


@dataclass
class ItemContext:
    """One item on its way through a cascade: the text and the predictions made so far."""

    text: str
    predictions: list[Prediction] = field(default_factory=list)
    embedding: NDArray[np.float32] | None = None  # set by an encoder step, used for retrieval


def from_probs(
    model: str, probs: dict[str, float], cost: Cost, latency_s: float, usage: Usage
) -> Prediction:
    """Build a prediction whose label is the most probable one."""
    label = max(probs, key=probs.__getitem__)
    return Prediction(
        model=model,
        label=label,
        confidence=float(probs[label]),
        probs=probs,
        cost=cost,
        latency_s=latency_s,
        usage=usage,
    )
