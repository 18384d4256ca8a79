"""Channel scoring: how probable the item's text is after each candidate label's examples.

Asking a small model which label fits a text (the direct direction) leans on its grasp of
the label names and on option order. The channel direction asks instead how likely the
model finds the text as one more example of each label: a prompt names the label and lists
its labelled texts closest to the item, and the item's text is scored as the next one. The
scored tokens are the same under every candidate, so labels of different lengths compare
fairly. On the doubtful items of the bundled BANKING77 dev split this was right far more
often than letter choice (see docs/benchmarks.md). It needs a model whose prompt-token
probabilities can be read, so it runs on local models only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shoal.errors import ResponseFormatError
from shoal.providers.base import Provider, Request, Response
from shoal.tasks.classify import CandidateStep

DEFAULT_TEXT_KIND = "Texts"


def channel_prompt(label: str, examples: Sequence[str], text_kind: str = DEFAULT_TEXT_KIND) -> str:
    """Return the plain-text prompt after which the item's text is scored for `label`."""
    lines = [f'{text_kind} labelled "{label.replace("_", " ")}":']
    lines += [f"- {' '.join(example.split())}" for example in examples]
    return "\n".join(lines) + "\n-"


def scored_text(text: str) -> str:
    """Return the item's text as it follows a prompt: one line, after the list marker's space."""
    return " " + " ".join(text.split())


class ChannelStep(CandidateStep):
    """The model scores the item's text after each candidate's label and nearest examples."""

    def __init__(
        self, provider: Provider, *, text_kind: str = DEFAULT_TEXT_KIND, **options: Any
    ) -> None:
        super().__init__(provider, **options)
        self.text_kind = text_kind

    def _request(
        self, text: str, candidates: Sequence[str], examples: Sequence[Sequence[str]]
    ) -> Request:
        prompts = tuple(
            channel_prompt(label, shown, self.text_kind)
            for label, shown in zip(candidates, examples, strict=True)
        )
        return Request(
            messages=(),
            candidates=tuple(candidates),
            candidate_prompts=prompts,
            scored_text=scored_text(text),
            max_tokens=0,
        )

    def _model_probs(self, response: Response, candidates: Sequence[str]) -> dict[str, float]:
        if response.label_probs is None:
            raise ResponseFormatError(
                f"{self.model} returned no label probabilities for a channel-scoring request"
            )
        return {label: response.label_probs.get(label, 0.0) for label in candidates}
