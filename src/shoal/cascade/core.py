"""Running a cascade over one item."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shoal.pricing import sum_costs
from shoal.tasks.classify import Step
from shoal.tasks.prediction import ItemContext, Prediction

# A threshold that no confidence reaches: the tier always passes the item on.
ALWAYS_ESCALATE = math.inf


@dataclass(frozen=True)
class Tier:
    """A step and the confidence at which its prediction is accepted (None: always)."""

    step: Step
    threshold: float | None = None


def accepts(confidence: float, threshold: float | None) -> bool:
    """Accept when the confidence reaches the threshold; a threshold of 0.0 accepts all."""
    return threshold is None or confidence >= threshold


@dataclass
class CascadeOutcome:
    """Every prediction made for one item and which of them was accepted."""

    predictions: list[Prediction]
    accepted: int

    @property
    def prediction(self) -> Prediction:
        return self.predictions[self.accepted]

    @property
    def cost_usd(self) -> Decimal:
        return sum_costs([p.cost.amount for p in self.predictions])

    @property
    def latency_s(self) -> float:
        return sum(p.latency_s for p in self.predictions)

    def record_fields(self) -> dict[str, Any]:
        """Return the run-record fields every task writes for an item: tiers, cost, latency."""
        return {
            "tier": self.accepted,
            "answered_by": self.prediction.model,
            "cost_usd": self.cost_usd,
            # The sum of the steps' measured latencies, not this item's wall time, because a
            # step whose response was reused from another config took no time here.
            "latency_ms": self.latency_s * 1000,
            "steps": [
                p.to_step_record(accepted=i == self.accepted)
                for i, p in enumerate(self.predictions)
            ],
        }


class Cascade:
    """An ordered list of tiers; the last tier's prediction is accepted whatever its confidence."""

    def __init__(self, tiers: list[Tier]) -> None:
        if not tiers:
            raise ValueError("a cascade needs at least one tier")
        self.tiers = tiers

    @property
    def models(self) -> list[str]:
        return [tier.step.model for tier in self.tiers]

    async def run(self, text: str) -> CascadeOutcome:
        item = ItemContext(text=text)
        last = len(self.tiers) - 1
        for index, tier in enumerate(self.tiers):
            prediction = await tier.step.predict(item)
            item.predictions.append(prediction)
            if index == last or accepts(prediction.confidence, tier.threshold):
                return CascadeOutcome(predictions=item.predictions, accepted=index)
        raise AssertionError("unreachable: the last tier always accepts")
