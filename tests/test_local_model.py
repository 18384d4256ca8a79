"""The real Qwen2.5-Coder 0.5B model in llama.cpp: label scores, the prefix cache, a choice step.

These tests load the embedded weights (about 490 MB) and run the model on CPU.
"""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal

import pytest
from conftest import CARD_LABELS, bundled_train_rows, fixture_rows

from shoal.cascade import Cascade, Tier
from shoal.cascade.core import ALWAYS_ESCALATE
from shoal.models import load_encoder, load_provider
from shoal.pricing import DEFAULT_MACHINE
from shoal.providers.base import Message, Request
from shoal.providers.encoder import EncoderClassifier
from shoal.providers.local import LlamaCppProvider, normalise_scores
from shoal.tasks.channel import ChannelStep, channel_prompt, scored_text
from shoal.tasks.classify import CandidateChoiceStep, EncoderStep

pytestmark = pytest.mark.slow

MODEL = "local:qwen2.5-coder-0.5b"
INSTRUCTIONS = (
    "Sort the bank customer's message into one category: card_arrival, card_linking or "
    "card_acceptance. Answer with the category only."
)
# Labels tier 0 is trained on in the choice step test: the card labels and three others.
TRAIN_LABELS = (*CARD_LABELS, "card_not_working", "lost_or_stolen_card", "exchange_rate")
SCORE_TOLERANCE = 1e-4  # log-probability


def fresh_provider() -> LlamaCppProvider:
    provider = load_provider(MODEL)
    assert isinstance(provider, LlamaCppProvider)
    return provider


@pytest.fixture(scope="module")
def qwen() -> LlamaCppProvider:
    provider = fresh_provider()
    provider.load()
    return provider


@pytest.fixture(scope="module")
def card_texts() -> list[str]:
    """One real BANKING77 test message for each of CARD_LABELS."""
    rows = fixture_rows(CARD_LABELS)
    return [next(text for text, label in rows if label == wanted) for wanted in CARD_LABELS]


@pytest.fixture(scope="module")
def trained_encoder() -> EncoderClassifier:
    rows = bundled_train_rows(TRAIN_LABELS, per_label=5)
    encoder = load_encoder("encoder:minilm")
    encoder.fit([text for text, _ in rows], [label for _, label in rows])
    return encoder


def label_messages(text: str) -> tuple[Message, ...]:
    return (Message("system", INSTRUCTIONS), Message("user", text))


def max_difference(a: dict[str, float], b: dict[str, float]) -> float:
    assert set(a) == set(b)
    return max(abs(a[label] - b[label]) for label in a)


def test_label_scores_form_distribution(qwen: LlamaCppProvider, card_texts: list[str]) -> None:
    for text in card_texts:
        scores, prompt_tokens, candidate_tokens = qwen.score_candidates(
            label_messages(text), CARD_LABELS
        )

        assert list(scores) == list(CARD_LABELS)
        assert all(math.isfinite(score) and score < 0 for score in scores.values())
        assert prompt_tokens > 0
        # Each label is at least two tokens ("card", "_arrival"); the end-of-turn is not counted.
        assert candidate_tokens >= 2 * len(CARD_LABELS)

        probs = normalise_scores(scores)
        assert math.fsum(probs.values()) == pytest.approx(1.0, abs=1e-9)
        assert all(0.0 <= p <= 1.0 for p in probs.values())


def test_complete_returns_label_probs(qwen: LlamaCppProvider, card_texts: list[str]) -> None:
    request = Request(messages=label_messages(card_texts[0]), candidates=CARD_LABELS)

    response = asyncio.run(qwen.complete(request))

    assert response.model == MODEL
    assert response.label_probs is not None
    assert set(response.label_probs) == set(CARD_LABELS)
    assert math.fsum(response.label_probs.values()) == pytest.approx(1.0, abs=1e-9)
    assert response.text == max(response.label_probs, key=response.label_probs.__getitem__)
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens >= 2 * len(CARD_LABELS)
    assert response.usage.compute_seconds > 0
    assert response.cost is not None
    assert isinstance(response.cost.amount, Decimal)
    assert response.cost.amount > 0
    assert response.cost.price.source == DEFAULT_MACHINE.source


# NOTE: measured with llama-cpp-python 0.3.36 on 2 x86 cores. llama.cpp's logits depend on how
# the prompt was split into decode batches. The cached prefix plus an 11-token suffix gave label
# scores up to 0.07 away from one whole decode of the prompt, and a repeated prompt (only its
# last token decoded again) was 0.05-0.1 away. Decoding every prompt from position 0 gave the
# same scores as a fresh provider.
def test_prefix_cache_matches_fresh_provider(
    qwen: LlamaCppProvider, card_texts: list[str]
) -> None:
    earlier, later = label_messages(card_texts[1]), label_messages(card_texts[2])
    qwen.score_candidates(earlier, CARD_LABELS)

    cached, decoded, _ = qwen.score_candidates(later, CARD_LABELS)
    fresh, fresh_decoded, _ = fresh_provider().score_candidates(later, CARD_LABELS)

    # The shared instruction came from the cache, so fewer prompt tokens were decoded.
    assert decoded < fresh_decoded
    assert max_difference(cached, fresh) <= SCORE_TOLERANCE


def test_repeat_scoring_same_scores(card_texts: list[str]) -> None:
    provider = fresh_provider()
    messages = label_messages(card_texts[0])

    first, _, _ = provider.score_candidates(messages, CARD_LABELS)
    second, _, _ = provider.score_candidates(messages, CARD_LABELS)

    assert max_difference(first, second) <= SCORE_TOLERANCE


def test_generate_after_scoring_unchanged(qwen: LlamaCppProvider, card_texts: list[str]) -> None:
    request = Request(
        messages=(Message("user", "Name three colours of the rainbow, comma separated."),),
        max_tokens=8,
    )
    before, _, _, _ = qwen.generate(request)

    qwen.score_candidates(label_messages(card_texts[0]), CARD_LABELS)
    after, _, _, _ = qwen.generate(request)

    assert after == before


def test_choice_step_after_encoder(
    qwen: LlamaCppProvider, trained_encoder: EncoderClassifier
) -> None:
    encoder_step = EncoderStep(trained_encoder)
    choice_step = CandidateChoiceStep(qwen, retriever=trained_encoder, top_k=3)
    cascade = Cascade([Tier(encoder_step, ALWAYS_ESCALATE), Tier(choice_step)])
    items = fixture_rows(TRAIN_LABELS)[::4][:4]

    for text, _ in items:
        outcome = asyncio.run(cascade.run(text))

        tier0, choice = outcome.predictions
        candidates = tier0.top_labels(3)
        assert outcome.accepted == 1
        assert choice.model == MODEL
        assert set(choice.probs) == set(candidates)
        assert choice.label in candidates
        assert 0.0 <= choice.confidence <= 1.0
        assert choice.confidence == max(choice.probs.values())
        assert choice.model_probs is not None
        assert math.fsum(choice.model_probs.values()) == pytest.approx(1.0, abs=1e-9)
        assert isinstance(choice.cost.amount, Decimal)
        assert choice.cost.amount > 0
        assert choice.usage.input_tokens > 0
        assert outcome.cost_usd == tier0.cost.amount + choice.cost.amount


# Channel scoring: the text's log-probability after each candidate's prompt.

CHANNEL_LABELS = ("card_arrival", "lost_or_stolen_card", "exchange_rate")


def channel_prompts(kind: str = "Messages from bank customers") -> list[str]:
    rows = bundled_train_rows(CHANNEL_LABELS, per_label=2)
    return [
        channel_prompt(label, [text for text, known in rows if known == label], kind)
        for label in CHANNEL_LABELS
    ]


def test_channel_prefers_matching_label(qwen: LlamaCppProvider) -> None:
    texts = {
        "card_arrival": "My new card still has not been delivered, where is it?",
        "lost_or_stolen_card": "Someone stole my wallet with my card in it last night.",
        "exchange_rate": "How much do you charge to convert pounds into euros?",
    }
    prompts = channel_prompts()

    for label, text in texts.items():
        scores, prompt_tokens, text_tokens = qwen.score_text(prompts, scored_text(text))

        assert CHANNEL_LABELS[scores.index(max(scores))] == label
        assert all(score < 0 for score in scores)
        assert prompt_tokens > 0
        assert text_tokens % len(prompts) == 0


def test_channel_scores_do_not_depend_on_earlier_calls(
    qwen: LlamaCppProvider, card_texts: list[str]
) -> None:
    prompts = channel_prompts()
    text = scored_text(card_texts[0])
    qwen.score_candidates(label_messages(card_texts[1]), CARD_LABELS)
    qwen.score_text(channel_prompts("Texts"), scored_text(card_texts[2]))

    after_others, _, _ = qwen.score_text(prompts, text)
    fresh, _, _ = fresh_provider().score_text(prompts, text)

    assert max(abs(a - b) for a, b in zip(after_others, fresh, strict=True)) <= SCORE_TOLERANCE


def test_channel_step_after_encoder(
    qwen: LlamaCppProvider, trained_encoder: EncoderClassifier
) -> None:
    encoder_step = EncoderStep(trained_encoder)
    channel_step = ChannelStep(qwen, retriever=trained_encoder, top_k=3, model_weight=0.3)
    cascade = Cascade([Tier(encoder_step, ALWAYS_ESCALATE), Tier(channel_step)])

    for text, _ in fixture_rows(TRAIN_LABELS)[1::4][:3]:
        outcome = asyncio.run(cascade.run(text))

        tier0, channel = outcome.predictions
        assert set(channel.probs) == set(tier0.top_labels(3))
        assert channel.model_probs is not None
        assert math.fsum(channel.model_probs.values()) == pytest.approx(1.0, abs=1e-9)
        assert channel.usage.input_tokens > 0
        assert channel.usage.output_tokens > 0
        assert channel.cost.amount > 0
        assert outcome.cost_usd == tier0.cost.amount + channel.cost.amount


def test_generated_logprobs_spell_the_reply(qwen: LlamaCppProvider) -> None:
    request = Request(
        messages=(Message("user", "Name three colours of the rainbow, comma separated."),),
        max_tokens=12,
        logprobs=True,
    )

    text, prompt_tokens, reply_tokens, logprobs = qwen.generate(request)
    again, _, _, logprobs_again = qwen.generate(request)

    assert logprobs is not None and logprobs_again is not None
    assert "".join(token.token for token in logprobs) == text
    assert len(logprobs) == reply_tokens
    assert all(token.logprob <= 0.0 for token in logprobs)
    # Greedy decoding: the second run reuses the cached prompt and repeats the reply.
    assert again == text
    assert [t.token for t in logprobs_again] == [t.token for t in logprobs]
    assert max(
        abs(a.logprob - b.logprob) for a, b in zip(logprobs, logprobs_again, strict=True)
    ) <= 0.05
    assert prompt_tokens > 0
