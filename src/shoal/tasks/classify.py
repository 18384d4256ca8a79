"""Classify steps: a trained encoder, and a model that chooses among an earlier step's top labels.

On BANKING77 with few labelled examples per intent, small instruct models picking from all
77 labels were less accurate than a trained encoder. They come closest on the encoder's
doubtful items when they pick among its top few labels, each shown with its closest
labelled examples, and when their probabilities are mixed with the encoder's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from shoal.calls.budget import Budget
from shoal.calls.estimate import CostBound
from shoal.errors import ResponseFormatError, ShoalError
from shoal.pricing import compute_cost
from shoal.providers.base import Message, Provider, Request, Response, Usage
from shoal.providers.encoder import EncoderClassifier
from shoal.tasks.prediction import ItemContext, Prediction, from_probs

logger = logging.getLogger("shoal.tasks.classify")

OPTION_LETTERS = "ABCDEFGHIJ"
ENCODER_FIRST_CALL_S = 1.0  # machine time reserved for tier 0's first item under a budget

DEFAULT_INSTRUCTIONS = (
    "You sort short texts into categories. Each category is shown with an example text. "
    "Answer with the letter of the category that fits the text, and nothing else."
)


class Step(Protocol):
    """A classify step: one model (or a model plus earlier results) labelling one item."""

    model: str

    async def predict(self, item: ItemContext) -> Prediction: ...


class EncoderStep:
    """Tier 0: the trained encoder classifier; also stores the item's embedding for retrieval.

    With a budget, each item's compute cost is reserved before it runs and settled after.
    """

    def __init__(self, classifier: EncoderClassifier, budget: Budget | None = None) -> None:
        self.classifier = classifier
        self.model = classifier.model
        self.budget = budget
        # Embedding one short text takes milliseconds once the encoder has been trained.
        self._bound = CostBound(classifier, first_call_s=ENCODER_FIRST_CALL_S)

    async def predict(self, item: ItemContext) -> Prediction:
        created_at = datetime.now(UTC)
        reservation = None
        if self.budget is not None:
            reservation = self.budget.reserve(self._bound(None), f"{self.model} on an item")
        try:
            probs, embedding, seconds = await asyncio.to_thread(
                self.classifier.classify, item.text
            )
        except BaseException:
            if reservation is not None:
                self.budget.release(reservation)  # type: ignore[union-attr]
            raise
        item.embedding = embedding
        cost = compute_cost(seconds, self.classifier.machine, created_at)
        self._bound.observe(seconds)
        if reservation is not None:
            self.budget.settle(reservation, cost.amount)  # type: ignore[union-attr]
        return from_probs(self.model, probs, cost, seconds, Usage(compute_seconds=seconds))


def mix_probabilities(
    previous: dict[str, float], model: dict[str, float], model_weight: float
) -> dict[str, float]:
    """Mix a model's probabilities over some labels with an earlier step's, renormalised.

    `model_weight` is the share of the model: 0 keeps the earlier step, 1 keeps the model.
    """
    if not 0.0 <= model_weight <= 1.0:
        raise ValueError(f"model_weight must be in [0, 1], got {model_weight}")
    earlier_total = sum(previous.get(label, 0.0) for label in model)
    mixed = {}
    for label, probability in model.items():
        earlier = previous.get(label, 0.0) / earlier_total if earlier_total > 0 else 0.0
        mixed[label] = (1.0 - model_weight) * earlier + model_weight * probability
    total = sum(mixed.values())
    return {label: value / total for label, value in mixed.items()} if total > 0 else mixed


def choice_messages(
    text: str,
    candidates: Sequence[str],
    examples: Sequence[Sequence[str]],
    instructions: str = DEFAULT_INSTRUCTIONS,
) -> tuple[Message, ...]:
    """Build the prompt that lists lettered candidate labels, each with its examples."""
    lines = []
    for letter, label, shown_examples in zip(OPTION_LETTERS, candidates, examples, strict=False):
        line = f"{letter}. {label.replace('_', ' ')}"
        if shown_examples:
            line += ", e.g. " + " or ".join(f'"{example}"' for example in shown_examples)
        lines.append(line)
    user = (
        "Categories:\n" + "\n".join(lines) + f'\n\nText: "{text}"\n'
        "Which category fits the text? Answer with its letter."
    )
    return (Message("system", instructions), Message("user", user))


class CandidateStep:
    """A model re-scores the previous step's `top_k` labels; the two are then mixed.

    Each candidate label is shown with the labelled training texts of that label closest to
    the item. The model's probabilities over the candidates are mixed with the previous
    step's with `model_weight` (1.0 uses the model alone). Subclasses say how the model is
    asked (`_request`) and how its answer becomes probabilities (`_model_probs`).
    """

    def __init__(
        self,
        provider: Provider,
        *,
        retriever: EncoderClassifier | None = None,
        top_k: int = 3,
        examples_per_label: int = 2,
        model_weight: float = 0.5,
    ) -> None:
        if not 2 <= top_k <= len(OPTION_LETTERS):
            raise ValueError(f"top_k must be between 2 and {len(OPTION_LETTERS)}, got {top_k}")
        self.provider = provider
        self.model = provider.model
        self.retriever = retriever
        self.top_k = top_k
        self.examples_per_label = examples_per_label
        self.model_weight = model_weight

    async def predict(self, item: ItemContext) -> Prediction:
        if not item.predictions:
            raise ShoalError(f"{self.model} chooses among an earlier step's labels; none ran")
        previous = item.predictions[-1]
        candidates = previous.top_labels(self.top_k)
        examples = [self._examples(item, label) for label in candidates]
        response = await self.provider.complete(self._request(item.text, candidates, examples))
        model_probs = self._model_probs(response, candidates)
        if response.cost is None:
            raise ShoalError(
                f"no price is known for {self.model}, so its cost cannot be counted; "
                "choose a model that genai-prices lists"
            )
        mixed = mix_probabilities(previous.probs, model_probs, self.model_weight)
        prediction = from_probs(
            self.model, mixed, response.cost, response.latency_s, response.usage
        )
        prediction.model_probs = model_probs
        prediction.attempts = response.attempts
        prediction.cached = response.cached
        return prediction

    def _examples(self, item: ItemContext, label: str) -> list[str]:
        if self.retriever is None or item.embedding is None or self.examples_per_label < 1:
            return []
        return self.retriever.nearest_examples(item.embedding, label, self.examples_per_label)

    def _request(
        self, text: str, candidates: Sequence[str], examples: Sequence[Sequence[str]]
    ) -> Request:
        raise NotImplementedError

    def _model_probs(self, response: Response, candidates: Sequence[str]) -> dict[str, float]:
        raise NotImplementedError


class CandidateChoiceStep(CandidateStep):
    """The model answers with the letter of one of the candidates, shown as lettered options.

    Its label probabilities come from scoring the option letters, or, from a provider without
    token probabilities, from the letter it generated.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        instructions: str = DEFAULT_INSTRUCTIONS,
        **options: Any,
    ) -> None:
        super().__init__(provider, **options)
        self.instructions = instructions

    def _request(
        self, text: str, candidates: Sequence[str], examples: Sequence[Sequence[str]]
    ) -> Request:
        return Request(
            messages=choice_messages(text, candidates, examples, self.instructions),
            candidates=tuple(OPTION_LETTERS[: len(candidates)]),
            max_tokens=1,
        )

    def _model_probs(self, response: Response, candidates: Sequence[str]) -> dict[str, float]:
        letters = tuple(OPTION_LETTERS[: len(candidates)])
        pairs = list(zip(letters, candidates, strict=True))
        if response.label_probs is not None:
            return {label: response.label_probs.get(letter, 0.0) for letter, label in pairs}
        # A provider without token probabilities: trust the generated letter alone.
        answer = response.text.strip().rstrip(".").upper()
        if answer not in letters:
            raise ResponseFormatError(
                f"{self.model} returned {response.text[:40]!r}, not one of the letters "
                f"{', '.join(letters)}"
            )
        return {label: float(letter == answer) for letter, label in pairs}
