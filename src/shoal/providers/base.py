"""The provider contract: one async method, `complete(request) -> response`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from shoal.errors import UserInputError

if TYPE_CHECKING:
    from shoal.pricing import Cost


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Request:
    """Messages and options sent to a provider.

    With `candidates` set, the provider scores each candidate as the whole reply instead of
    generating freely, and the response carries `label_probs` over exactly those labels.

    With `scored_text` set as well, `candidate_prompts` contains one plain-text prompt per
    candidate, and each candidate is scored by the log-probability of `scored_text` written
    after its prompt (the "noisy channel" direction: how well the label explains the text).
    `messages` is then unused. Only providers that see prompt-token probabilities can do this.
    """

    messages: tuple[Message, ...]
    candidates: tuple[str, ...] | None = None
    candidate_prompts: tuple[str, ...] | None = None
    scored_text: str | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    logprobs: bool = False
    top_logprobs: int = 0
    # A JSON Schema as JSON text: the provider asks for an answer that follows it, with the
    # API's own structured-output mode (json_schema, a forced tool call, response_schema).
    json_schema: str | None = None


@dataclass(frozen=True)
class Usage:
    """Tokens billed by an API, or compute seconds of a self-hosted model."""

    input_tokens: int = 0  # total input, cache reads and writes included
    output_tokens: int = 0  # reasoning tokens included
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0  # already counted in output_tokens, and billed as output
    compute_seconds: float = 0.0


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top_logprobs: dict[str, float] = field(default_factory=dict)


@dataclass
class Response:
    """A provider's result for one request."""

    model: str  # `provider:id`
    text: str
    usage: Usage
    latency_s: float
    created_at: datetime  # when the request was sent (UTC), used to price it
    cost: Cost | None = None
    label_probs: dict[str, float] | None = None  # sums to 1 over the request's candidates
    token_logprobs: list[TokenLogprob] | None = None
    attempts: int = 1  # calls made for this response, retries included
    cached: bool = False  # served from shoal's response cache, at zero cost


def reject_text_scoring(model: str, request: Request) -> None:
    """Raise for a `scored_text` request sent to a provider that cannot score prompt tokens."""
    if request.scored_text is not None:
        raise UserInputError(
            f"{model} cannot score a text after candidate prompts, because it returns no "
            "probabilities for prompt tokens; use letter choice (`--scoring choice`) "
            "or a local model"
        )


class Provider(Protocol):
    """A backend that turns a request into a response."""

    model: str  # `provider:id`

    async def complete(self, request: Request) -> Response: ...
