"""Probability mixing, the lettered prompt, and CandidateChoiceStep with fake and HTTP providers."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import numpy as np
import pytest
from conftest import CARD_LABELS
from fake_openai import FakeOpenAI, FakeToken, openai_usage
from numpy.typing import NDArray

from shoal.errors import ResponseFormatError, ShoalError
from shoal.pricing import Cost, Price
from shoal.providers.base import Request, Response, Usage
from shoal.providers.openai_compat import OpenAICompatProvider
from shoal.tasks.classify import (
    DEFAULT_INSTRUCTIONS,
    CandidateChoiceStep,
    choice_messages,
    mix_probabilities,
)
from shoal.tasks.prediction import ItemContext, Prediction

PRICED_AT = datetime(2026, 6, 17, 10, 0, tzinfo=UTC)
TEST_PRICE = Price(rates="$1/call (test)", source="test", valid_from=None)
TEXT = "I ordered a card but it has not arrived. Help please!"

# Tier 0's probabilities; its top 3 labels are CARD_LABELS, in that order.
TIER0_PROBS = {
    "card_arrival": 0.5,
    "card_linking": 0.3,
    "card_acceptance": 0.15,
    "card_not_working": 0.05,
}


def tier0_prediction() -> Prediction:
    return Prediction(
        model="encoder:minilm",
        label="card_arrival",
        confidence=0.5,
        probs=dict(TIER0_PROBS),
        cost=Cost(amount=Decimal("0.0000002"), price=TEST_PRICE, priced_at=PRICED_AT),
        latency_s=0.003,
        usage=Usage(compute_seconds=0.003),
    )


def item_after_tier0() -> ItemContext:
    return ItemContext(text=TEXT, predictions=[tier0_prediction()])


def expected_mix(model_probs: dict[str, float], weight: float) -> dict[str, float]:
    """Tier 0 renormalised over the candidates, mixed with the model's probabilities."""
    earlier_total = sum(TIER0_PROBS[label] for label in model_probs)
    mixed = {
        label: (1 - weight) * TIER0_PROBS[label] / earlier_total + weight * probability
        for label, probability in model_probs.items()
    }
    total = sum(mixed.values())
    return {label: value / total for label, value in mixed.items()}


class FakeChooser:
    """A provider that returns fixed label probabilities or text and records its requests."""

    model = "fake:chooser"

    def __init__(
        self,
        text: str,
        label_probs: dict[str, float] | None,
        cost: Cost | None = None,
    ) -> None:
        self.text = text
        self.label_probs = label_probs
        self.cost = cost
        self.requests: list[Request] = []

    async def complete(self, request: Request) -> Response:
        self.requests.append(request)
        return Response(
            model=self.model,
            text=self.text,
            usage=Usage(input_tokens=120, output_tokens=1),
            latency_s=0.4,
            created_at=PRICED_AT,
            cost=self.cost,
            label_probs=self.label_probs,
        )


def chooser_cost() -> Cost:
    return Cost(amount=Decimal("0.0000186"), price=TEST_PRICE, priced_at=PRICED_AT)


class FakeRetriever:
    """Returns made-up closest examples per label, as EncoderClassifier.nearest_examples does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def nearest_examples(self, embedding: NDArray[np.float32], label: str, k: int) -> list[str]:
        self.calls.append((label, k))
        if label == "card_linking":
            return []
        return [f"example {number} of {label}" for number in range(1, k + 1)]


def predict(step: CandidateChoiceStep, item: ItemContext) -> Prediction:
    return asyncio.run(step.predict(item))


# mix_probabilities

PREVIOUS = {"a": 0.375, "b": 0.125, "c": 0.5}  # over a and b renormalised: 0.75 and 0.25
MODEL = {"a": 0.25, "b": 0.75}


def test_mix_weight_zero_keeps_previous() -> None:
    assert mix_probabilities(PREVIOUS, MODEL, 0.0) == {"a": 0.75, "b": 0.25}


def test_mix_weight_one_keeps_model() -> None:
    assert mix_probabilities(PREVIOUS, MODEL, 1.0) == {"a": 0.25, "b": 0.75}


def test_mix_weight_half_averages() -> None:
    assert mix_probabilities(PREVIOUS, MODEL, 0.5) == {"a": 0.5, "b": 0.5}


def test_mix_only_model_labels() -> None:
    mixed = mix_probabilities(PREVIOUS, MODEL, 0.25)

    assert set(mixed) == {"a", "b"}
    assert mixed["a"] == pytest.approx(0.75 * 0.75 + 0.25 * 0.25)
    assert math.fsum(mixed.values()) == pytest.approx(1.0)


def test_mix_renormalises_model_probs() -> None:
    mixed = mix_probabilities(PREVIOUS, {"a": 0.1, "b": 0.3}, 1.0)

    assert mixed == pytest.approx({"a": 0.25, "b": 0.75})


def test_mix_previous_without_labels() -> None:
    mixed = mix_probabilities({"c": 1.0}, MODEL, 0.5)

    assert mixed == pytest.approx({"a": 0.25, "b": 0.75})


@pytest.mark.parametrize("weight", [-0.1, 1.1, math.nan])
def test_mix_invalid_weight_rejected(weight: float) -> None:
    with pytest.raises(ValueError, match="model_weight must be in"):
        mix_probabilities(PREVIOUS, MODEL, weight)


# choice_messages


def test_choice_prompt_lists_letters() -> None:
    examples = [["Where is my new card?"], [], ["Can I pay abroad?", "Is my card accepted?"]]

    system, user = choice_messages(TEXT, CARD_LABELS, examples)

    assert system.role == "system"
    assert system.content == DEFAULT_INSTRUCTIONS
    assert user.role == "user"
    lines = user.content.split("\n")
    assert lines[0] == "Categories:"
    assert lines[1].startswith("A. card arrival")
    assert '"Where is my new card?"' in lines[1]
    assert lines[2] == "B. card linking"
    assert lines[3].startswith("C. card acceptance")
    assert '"Can I pay abroad?"' in lines[3]
    assert '"Is my card accepted?"' in lines[3]
    assert f'Text: "{TEXT}"' in lines
    assert lines[-1] == "Which category fits the text? Answer with its letter."
    assert "_" not in user.content


def test_choice_prompt_custom_instructions() -> None:
    system, _ = choice_messages(TEXT, CARD_LABELS, [[]] * 3, instructions="Pick one.")

    assert system.content == "Pick one."


# CandidateChoiceStep with a fake provider


def test_letter_probs_mixed_with_tier0() -> None:
    provider = FakeChooser("B", {"A": 0.1, "B": 0.7, "C": 0.2}, chooser_cost())
    step = CandidateChoiceStep(provider, top_k=3, model_weight=0.5)

    prediction = predict(step, item_after_tier0())

    model_probs = {"card_arrival": 0.1, "card_linking": 0.7, "card_acceptance": 0.2}
    expected = expected_mix(model_probs, 0.5)
    assert prediction.model == "fake:chooser"
    assert prediction.model_probs == model_probs
    assert prediction.probs == pytest.approx(expected)
    assert prediction.label == "card_linking"
    assert prediction.confidence == pytest.approx(expected["card_linking"])
    assert prediction.cost.amount == Decimal("0.0000186")
    assert prediction.latency_s == 0.4
    assert prediction.usage == Usage(input_tokens=120, output_tokens=1)


def test_request_offers_letters_only() -> None:
    provider = FakeChooser("A", {"A": 0.6, "B": 0.3, "C": 0.1}, chooser_cost())
    step = CandidateChoiceStep(provider, top_k=3)

    predict(step, item_after_tier0())

    (request,) = provider.requests
    assert request.candidates == ("A", "B", "C")
    assert request.max_tokens == 1
    assert request.messages == choice_messages(TEXT, CARD_LABELS, [[]] * 3)


def test_top_k_limits_candidates() -> None:
    provider = FakeChooser("A", {"A": 0.6, "B": 0.4}, chooser_cost())
    step = CandidateChoiceStep(provider, top_k=2, model_weight=1.0)

    prediction = predict(step, item_after_tier0())

    assert provider.requests[0].candidates == ("A", "B")
    assert prediction.probs == pytest.approx({"card_arrival": 0.6, "card_linking": 0.4})


def predict_with_retriever(examples_per_label: int) -> tuple[FakeRetriever, FakeChooser]:
    """Run a top-3 choice step with a fake retriever on an embedded item."""
    retriever = FakeRetriever()
    provider = FakeChooser("A", {"A": 0.6, "B": 0.3, "C": 0.1}, chooser_cost())
    step = CandidateChoiceStep(
        provider,
        retriever=retriever,  # type: ignore[arg-type]
        top_k=3,
        examples_per_label=examples_per_label,
    )
    item = item_after_tier0()
    item.embedding = np.zeros(384, dtype=np.float32)
    predict(step, item)
    return retriever, provider


def test_retriever_examples_in_prompt() -> None:
    retriever, provider = predict_with_retriever(examples_per_label=2)

    assert retriever.calls == [(label, 2) for label in CARD_LABELS]
    lines = provider.requests[0].messages[1].content.split("\n")
    assert lines[1].startswith("A. card arrival")
    assert '"example 1 of card_arrival"' in lines[1]
    assert '"example 2 of card_arrival"' in lines[1]
    assert lines[2] == "B. card linking"
    assert '"example 2 of card_acceptance"' in lines[3]


def test_zero_examples_skips_retriever() -> None:
    retriever, provider = predict_with_retriever(examples_per_label=0)

    assert retriever.calls == []
    assert provider.requests[0].messages == choice_messages(TEXT, CARD_LABELS, [[]] * 3)


def test_text_letter_gives_one_hot() -> None:
    provider = FakeChooser(" b. ", None, chooser_cost())
    step = CandidateChoiceStep(provider, top_k=3, model_weight=1.0)

    prediction = predict(step, item_after_tier0())

    assert prediction.model_probs == {
        "card_arrival": 0.0,
        "card_linking": 1.0,
        "card_acceptance": 0.0,
    }
    assert prediction.label == "card_linking"
    assert prediction.confidence == 1.0


def test_text_letter_mixed_with_tier0() -> None:
    provider = FakeChooser("C", None, chooser_cost())
    step = CandidateChoiceStep(provider, top_k=3, model_weight=0.5)

    prediction = predict(step, item_after_tier0())

    one_hot = {"card_arrival": 0.0, "card_linking": 0.0, "card_acceptance": 1.0}
    assert prediction.probs == pytest.approx(expected_mix(one_hot, 0.5))
    assert prediction.label == "card_acceptance"


@pytest.mark.parametrize("answer", ["D", "The answer is B", ""])
def test_invalid_answer_raises_format_error(answer: str) -> None:
    provider = FakeChooser(answer, None, chooser_cost())
    step = CandidateChoiceStep(provider, top_k=3)

    with pytest.raises(ResponseFormatError, match="not one of the letters A, B, C") as caught:
        predict(step, item_after_tier0())

    assert "fake:chooser" in str(caught.value)
    assert repr(answer[:40]) in str(caught.value)


def test_no_earlier_prediction_rejected() -> None:
    step = CandidateChoiceStep(FakeChooser("A", None, chooser_cost()), top_k=3)

    with pytest.raises(ShoalError, match="none ran"):
        predict(step, ItemContext(text=TEXT))


def test_unpriced_response_rejected() -> None:
    step = CandidateChoiceStep(FakeChooser("A", {"A": 1.0, "B": 0.0, "C": 0.0}), top_k=3)

    with pytest.raises(ShoalError, match="no price is known for fake:chooser"):
        predict(step, item_after_tier0())


@pytest.mark.parametrize("top_k", [1, 11])
def test_top_k_out_of_range_rejected(top_k: int) -> None:
    with pytest.raises(ValueError, match=f"got {top_k}"):
        CandidateChoiceStep(FakeChooser("A", None), top_k=top_k)


# CandidateChoiceStep over real HTTP to the fake OpenAI server


def test_openai_letter_logprobs_priced(fake_openai: FakeOpenAI) -> None:
    fake_openai.content = "B"
    fake_openai.usage = openai_usage(183, 1)
    fake_openai.tokens = [
        FakeToken("B", math.log(0.7), {"B": math.log(0.7), "A": math.log(0.2), "C": math.log(0.1)})
    ]
    provider = OpenAICompatProvider(
        "gpt-4o-mini", base_url=fake_openai.base_url, api_key=fake_openai.api_key
    )
    step = CandidateChoiceStep(provider, top_k=3, model_weight=0.5)
    before = datetime.now(UTC)

    prediction = predict(step, item_after_tier0())

    model_probs = {"card_arrival": 0.2, "card_linking": 0.7, "card_acceptance": 0.1}
    expected = expected_mix(model_probs, 0.5)
    assert prediction.model == "openai:gpt-4o-mini"
    assert prediction.model_probs == pytest.approx(model_probs)
    assert prediction.label == "card_linking"
    assert prediction.confidence == pytest.approx(expected["card_linking"])
    assert prediction.usage == Usage(input_tokens=183, output_tokens=1)

    priced_at = prediction.cost.priced_at
    assert before <= priced_at <= datetime.now(UTC)
    expected_cost = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=183, output_tokens=1),
        "gpt-4o-mini",
        provider_id="openai",
        genai_request_timestamp=priced_at,
    ).total_price
    assert prediction.cost.amount == expected_cost
    # 183 input tokens at $0.15/1M and 1 output token at $0.60/1M.
    assert prediction.cost.amount == Decimal("0.00002805")

    (sent,) = fake_openai.requests
    assert sent.body["max_tokens"] == 1
    assert sent.body["logprobs"] is True
    assert sent.body["top_logprobs"] == 20
    assert "A. card arrival" in sent.body["messages"][1]["content"]


def test_openai_letter_without_logprobs(fake_openai: FakeOpenAI) -> None:
    fake_openai.content = "A"
    fake_openai.tokens = None
    provider = OpenAICompatProvider(
        "gpt-4o-mini", base_url=fake_openai.base_url, api_key=fake_openai.api_key
    )
    step = CandidateChoiceStep(provider, top_k=3, model_weight=1.0)

    prediction = predict(step, item_after_tier0())

    assert prediction.label == "card_arrival"
    assert prediction.confidence == 1.0
