"""Cascade acceptance at the threshold, escalation and the exact cost of the steps that ran."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shoal.cascade import Cascade, Tier, accepts
from shoal.cascade.core import ALWAYS_ESCALATE
from shoal.pricing import Cost, Price
from shoal.providers.base import Usage
from shoal.tasks.prediction import ItemContext, Prediction

PRICED_AT = datetime(2026, 6, 17, 10, 0, tzinfo=UTC)
TEST_PRICE = Price(rates="$1/call (test)", source="test", valid_from=None)


class FixedStep:
    """A step that always predicts one label with a fixed confidence and cost."""

    def __init__(self, model: str, label: str, confidence: float, cost_usd: str) -> None:
        self.model = model
        self.label = label
        self.confidence = confidence
        self.cost_usd = Decimal(cost_usd)
        self.seen: list[list[Prediction]] = []  # the predictions each item arrived with

    async def predict(self, item: ItemContext) -> Prediction:
        self.seen.append(list(item.predictions))
        return Prediction(
            model=self.model,
            label=self.label,
            confidence=self.confidence,
            probs={self.label: self.confidence, "other": 1.0 - self.confidence},
            cost=Cost(amount=self.cost_usd, price=TEST_PRICE, priced_at=PRICED_AT),
            latency_s=0.25,
            usage=Usage(compute_seconds=0.25),
        )


def two_tiers(
    confidence: float, threshold: float | None = 0.7
) -> tuple[Cascade, FixedStep, FixedStep]:
    small = FixedStep("encoder:small", "card_arrival", confidence, "0.0000012")
    large = FixedStep("local:large", "card_linking", 0.55, "0.000315")
    return Cascade([Tier(small, threshold), Tier(large)]), small, large


# accepts


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [(0.7 - 1e-9, False), (0.7, True), (0.7 + 1e-9, True)],
)
def test_accepts_at_threshold(confidence: float, expected: bool) -> None:
    assert accepts(confidence, 0.7) is expected


@pytest.mark.parametrize("confidence", [0.0, 0.5, 1.0])
def test_zero_threshold_accepts_all(confidence: float) -> None:
    assert accepts(confidence, 0.0) is True


@pytest.mark.parametrize("confidence", [0.0, 1.0])
def test_none_threshold_accepts(confidence: float) -> None:
    assert accepts(confidence, None) is True


@pytest.mark.parametrize("confidence", [0.0, 1.0])
def test_always_escalate_never_accepts(confidence: float) -> None:
    assert accepts(confidence, ALWAYS_ESCALATE) is False


# Cascade.run


def test_confident_tier0_accepted() -> None:
    cascade, small, large = two_tiers(confidence=0.7)

    outcome = asyncio.run(cascade.run("Where is my new card?"))

    assert outcome.accepted == 0
    assert outcome.prediction.model == "encoder:small"
    assert outcome.prediction.label == "card_arrival"
    assert len(outcome.predictions) == 1
    assert large.seen == []
    assert outcome.cost_usd == Decimal("0.0000012")
    assert outcome.latency_s == 0.25


def test_doubtful_tier0_escalates() -> None:
    cascade, small, large = two_tiers(confidence=0.7 - 1e-9)

    outcome = asyncio.run(cascade.run("Where is my new card?"))

    assert outcome.accepted == 1
    assert outcome.prediction.model == "local:large"
    assert outcome.prediction.label == "card_linking"
    assert [p.model for p in outcome.predictions] == ["encoder:small", "local:large"]
    assert len(small.seen) == 1
    assert small.seen[0] == []
    # The next tier receives the earlier tier's prediction, to choose among its labels.
    assert [p.model for p in large.seen[0]] == ["encoder:small"]


def test_cost_sums_steps_that_ran() -> None:
    cascade, _, _ = two_tiers(confidence=0.2)

    outcome = asyncio.run(cascade.run("Where is my new card?"))

    assert outcome.cost_usd == Decimal("0.0003162")
    assert isinstance(outcome.cost_usd, Decimal)
    assert outcome.latency_s == 0.5


def test_last_tier_always_accepts() -> None:
    small = FixedStep("encoder:small", "card_arrival", 0.99, "0.000001")
    large = FixedStep("local:large", "card_linking", 0.01, "0.0002")
    cascade = Cascade([Tier(small, ALWAYS_ESCALATE), Tier(large, ALWAYS_ESCALATE)])

    outcome = asyncio.run(cascade.run("Where is my new card?"))

    assert outcome.accepted == 1
    assert outcome.prediction.confidence == 0.01
    assert outcome.cost_usd == Decimal("0.000201")


def test_single_tier_always_accepts() -> None:
    only = FixedStep("encoder:small", "card_arrival", 0.0, "0.000001")

    outcome = asyncio.run(Cascade([Tier(only, ALWAYS_ESCALATE)]).run("Where is my new card?"))

    assert outcome.accepted == 0
    assert outcome.cost_usd == Decimal("0.000001")


def test_zero_threshold_never_escalates() -> None:
    cascade, _, large = two_tiers(confidence=0.0, threshold=0.0)

    outcome = asyncio.run(cascade.run("Where is my new card?"))

    assert outcome.accepted == 0
    assert large.seen == []


def test_cascade_models_in_order() -> None:
    cascade, _, _ = two_tiers(confidence=0.5)

    assert cascade.models == ["encoder:small", "local:large"]


def test_empty_cascade_rejected() -> None:
    with pytest.raises(ValueError, match="at least one tier"):
        Cascade([])
