"""Worst-case cost of a request before it is sent, for the budget's reservations.

Input tokens are estimated as ceil(UTF-8 bytes / 3) plus a few tokens per message, because
no offline tokenizer exists for Claude or Gemini. On short English and code prompts this was
at or above the real count of the OpenAI, Anthropic and Gemini tokenizers in every case
measured (December 2026). Text in scripts with many bytes per token could still exceed it.
Output is the request's whole `max_tokens`. A model priced by machine time is bounded by twice the longest call seen
so far, and before its first call by `first_call_s` (a minute unless the caller knows better).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shoal.errors import PriceNotFoundError, UserInputError
from shoal.pricing import api_cost, compute_cost
from shoal.providers.base import Request, Usage

TOKENS_PER_MESSAGE = 8  # role markers and separators a chat template adds per message
FIRST_CALL_SECONDS = 60.0  # machine time reserved for a self-hosted model's first call


def estimate_input_tokens(request: Request) -> int:
    texts = [message.content for message in request.messages]
    texts += list(request.candidate_prompts or ())
    texts += [request.scored_text or "", request.json_schema or ""]
    size = sum(len(text.encode("utf-8")) for text in texts)
    return math.ceil(size / 3) + TOKENS_PER_MESSAGE * (len(request.messages) + 1)


class CostBound:
    """The upper bound on one request's cost for one provider."""

    def __init__(self, provider: Any, first_call_s: float = FIRST_CALL_SECONDS) -> None:
        self.provider = provider
        self.model = str(provider.model)
        self.first_call_s = first_call_s
        self._longest_seconds = 0.0

    def __call__(self, request: Request | None, at: datetime | None = None) -> Decimal:
        """Bound the cost of `request`; None stands for one call of a machine-priced model."""
        at = at or datetime.now(UTC)
        machine = getattr(self.provider, "machine", None)
        if machine is not None:
            seconds = 2 * self._longest_seconds if self._longest_seconds else self.first_call_s
            return compute_cost(seconds, machine, at).amount
        if request is None:
            raise ValueError(f"{self.model} is priced by tokens, so a request is needed")
        usage = Usage(input_tokens=estimate_input_tokens(request), output_tokens=request.max_tokens)
        provider_id = getattr(self.provider, "price_provider_id", None)
        model_id = getattr(self.provider, "model_id", None)
        if provider_id is None or model_id is None:
            raise UserInputError(
                f"cannot bound the cost of {self.model}, so --max-cost cannot be enforced for "
                "it; leave --max-cost off or use a priced model"
            )
        try:
            return api_cost(usage, provider_id, model_id, at).amount
        except PriceNotFoundError as exc:
            raise UserInputError(
                f"{self.model} has no known price, so --max-cost cannot be enforced for it: "
                "add its price in a prices file or leave --max-cost off"
            ) from exc

    def observe(self, compute_seconds: float) -> None:
        """Record a finished call's machine time, which bounds later calls."""
        self._longest_seconds = max(self._longest_seconds, compute_seconds)
