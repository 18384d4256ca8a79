"""Channel scoring: its prompts, ChannelStep with a fake provider, and providers that refuse it."""

from __future__ import annotations

import asyncio

import pytest
from conftest import CARD_LABELS
from fake_openai import FakeOpenAI
from test_classify_steps import (
    TEXT,
    FakeChooser,
    FakeRetriever,
    chooser_cost,
    expected_mix,
    item_after_tier0,
    predict,
)

from shoal.errors import ResponseFormatError, UserInputError
from shoal.models import load_encoder
from shoal.providers.base import Message, Request
from shoal.providers.openai_compat import OpenAICompatProvider
from shoal.tasks.channel import ChannelStep, channel_prompt, scored_text

CHANNEL_REQUEST = Request(
    messages=(),
    candidates=("a", "b"),
    candidate_prompts=('Texts labelled "a":\n-', 'Texts labelled "b":\n-'),
    scored_text=" hello",
)


def test_prompt_names_label_and_lists_examples() -> None:
    prompt = channel_prompt(
        "card_arrival", ["Where is my card?", "My card\nhas not come"], "Messages from bank customers"
    )

    assert prompt == (
        'Messages from bank customers labelled "card arrival":\n'
        "- Where is my card?\n"
        "- My card has not come\n"
        "-"
    )


def test_prompt_without_examples() -> None:
    assert channel_prompt("exchange_rate", []) == 'Texts labelled "exchange rate":\n-'


def test_scored_text_is_one_line_after_a_space() -> None:
    assert scored_text("  Where is\n my  card? ") == " Where is my card?"


def test_request_has_one_prompt_per_candidate() -> None:
    provider = FakeChooser("card_arrival", dict.fromkeys(CARD_LABELS, 1 / 3), chooser_cost())
    retriever = FakeRetriever()
    item = item_after_tier0()
    item.embedding = 1.0  # type: ignore[assignment]  # FakeRetriever ignores it
    step = ChannelStep(
        provider, retriever=retriever, top_k=3, examples_per_label=2, text_kind="Messages"  # type: ignore[arg-type]
    )

    predict(step, item)

    (request,) = provider.requests
    assert request.messages == ()
    assert request.candidates == CARD_LABELS
    assert request.scored_text == " " + TEXT
    assert request.candidate_prompts == (
        'Messages labelled "card arrival":\n- example 1 of card_arrival\n'
        "- example 2 of card_arrival\n-",
        'Messages labelled "card linking":\n-',
        'Messages labelled "card acceptance":\n- example 1 of card_acceptance\n'
        "- example 2 of card_acceptance\n-",
    )
    assert retriever.calls == [(label, 2) for label in CARD_LABELS]


@pytest.mark.parametrize("weight", [0.3, 1.0])
def test_model_probs_mixed_with_tier0(weight: float) -> None:
    model_probs = {"card_arrival": 0.1, "card_linking": 0.85, "card_acceptance": 0.05}
    provider = FakeChooser("card_linking", model_probs, chooser_cost())
    step = ChannelStep(provider, top_k=3, model_weight=weight)

    prediction = predict(step, item_after_tier0())

    expected = expected_mix(model_probs, weight)
    assert prediction.model_probs == pytest.approx(model_probs)
    assert prediction.probs == pytest.approx(expected)
    assert prediction.label == max(expected, key=expected.__getitem__)
    assert prediction.cost == chooser_cost()


def test_response_without_probabilities_rejected() -> None:
    step = ChannelStep(FakeChooser("card_arrival", None, chooser_cost()), top_k=3)

    with pytest.raises(ResponseFormatError, match="no label probabilities"):
        predict(step, item_after_tier0())


def test_openai_provider_refuses_before_sending(fake_openai: FakeOpenAI) -> None:
    provider = OpenAICompatProvider(
        "gpt-4o-mini", base_url=fake_openai.base_url, api_key=fake_openai.api_key
    )

    with pytest.raises(UserInputError, match="--scoring choice"):
        asyncio.run(provider.complete(CHANNEL_REQUEST))
    assert fake_openai.requests == []


def test_encoder_refuses() -> None:
    encoder = load_encoder("encoder:minilm")
    encoder.fit(["where is my card", "what is the rate"], ["card_arrival", "exchange_rate"])
    request = Request(
        messages=(Message("user", "hello"),),
        candidates=("card_arrival", "exchange_rate"),
        candidate_prompts=("a", "b"),
        scored_text=" hello",
    )

    with pytest.raises(UserInputError, match="cannot score a text"):
        asyncio.run(encoder.complete(request))
