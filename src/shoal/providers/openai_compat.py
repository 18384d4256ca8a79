"""A provider for any host that speaks OpenAI's Chat Completions wire format.

One POST to `{base_url}/chat/completions` per request, without streaming or retries. Retries, rate
limits and budgets belong to the shared layer around providers.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from shoal.errors import UserInputError
from shoal.providers.base import Request, Response, TokenLogprob, Usage, reject_text_scoring
from shoal.providers.http import (
    HTTPProvider,
    ShapeError,
    call_api,
    cost_or_warn,
    count,
)

logger = logging.getLogger("shoal.providers.openai_compat")

OPENAI_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "OPENAI_BASE_URL"
API_KEY_ENV = "OPENAI_API_KEY"

# The largest `top_logprobs` the OpenAI API accepts. Requests with candidates ask for that many.
CANDIDATE_TOP_LOGPROBS = 20

class OpenAICompatProvider(HTTPProvider):
    """A provider for OpenAI's API or any host that serves the same Chat Completions format.

    `provider_id` is the prefix of `model` ("openai" gives "openai:gpt-4o-mini"), and
    `price_provider_id` is the genai-prices provider id used for pricing (default: `provider_id`).
    Only the "openai" provider falls back to the OPENAI_BASE_URL and OPENAI_API_KEY environment
    variables, so another host never receives OpenAI's key. Without `client`, each request opens
    and closes its own connection.
    """

    def __init__(
        self,
        model_id: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        provider_id: str = "openai",
        price_provider_id: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not model_id.strip():
            raise UserInputError(
                f"invalid model id {model_id!r}: give the id the host serves, e.g. gpt-4o-mini"
            )
        if provider_id == "openai":
            base_url = base_url or os.environ.get(BASE_URL_ENV) or OPENAI_BASE_URL
            api_key = api_key or os.environ.get(API_KEY_ENV) or None
        if base_url is None:
            raise UserInputError(
                f"missing base URL for provider {provider_id!r}: pass base_url, "
                "e.g. http://127.0.0.1:8000/v1"
            )

        self.model_id = model_id
        self.model = f"{provider_id}:{model_id}"
        self.price_provider_id = price_provider_id or provider_id
        self._connect(
            base_url=base_url,
            api_key=api_key,
            timeout_s=timeout_s,
            client=client,
            error_message=_error_message,
            official_base_url=OPENAI_BASE_URL,
            api_key_env=API_KEY_ENV,
        )

    async def complete(self, request: Request) -> Response:
        """Send one chat completion request and return its text, usage, logprobs and cost."""
        reject_text_scoring(self.model, request)
        body = _request_body(self.model_id, request, token_limit_field(self.base_url))
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        url = f"{self.base_url}/chat/completions"
        return await call_api(
            self._poster, url, body, headers,
            lambda payload, created_at, latency_s: self._to_response(
                payload, request, created_at, latency_s
            ),
        )

    def _to_response(
        self,
        payload: Mapping[str, Any],
        request: Request,
        created_at: datetime,
        latency_s: float,
    ) -> Response:
        choice = _first_choice(payload)
        text = _message_text(choice)
        token_logprobs = _token_logprobs(choice)
        usage = _usage(payload)

        label_probs = None
        if request.candidates:
            label_probs = label_probs_from_logprobs(text, token_logprobs, request.candidates)

        refs = (_served_model(payload), self.model_id)
        cost = cost_or_warn(self.model, usage, self.price_provider_id, refs, created_at)

        return Response(
            model=self.model,
            text=text,
            usage=usage if usage is not None else Usage(),
            latency_s=latency_s,
            created_at=created_at,
            cost=cost,
            label_probs=label_probs,
            token_logprobs=token_logprobs,
        )

def token_limit_field(base_url: str) -> str:
    """Return the request field that caps output tokens on this host.

    OpenAI's own API takes `max_completion_tokens`, and its reasoning models (o-series, gpt-5)
    reject the deprecated `max_tokens`. Other hosts (vLLM, llama.cpp, Ollama, Groq) get
    `max_tokens`, which every OpenAI-compatible server accepts.
    """
    if base_url.rstrip("/") == OPENAI_BASE_URL:
        return "max_completion_tokens"
    return "max_tokens"


def label_probs_from_logprobs(
    text: str, token_logprobs: Sequence[TokenLogprob] | None, candidates: Sequence[str]
) -> dict[str, float] | None:
    """Estimate a probability for each candidate label from the log-probabilities of generated text.

    `text` must equal one candidate after strip and case-fold. That candidate's score is
    exp(sum of all generated logprobs). At each generated position, an alternative token from
    `top_logprobs` scores exp(logprobs up to that position + its own logprob) for another
    candidate when the text so far plus that token is a prefix of exactly that one candidate.
    With candidates that differ at their first token this reduces to reading the first token's
    alternatives, and it also reaches candidates sharing a prefix ("card_arrival" and
    "card_linking"). Candidates without evidence score 0, and the scores are normalised to sum to 1.

    Returns None, meaning the confidence is unknown, when no logprobs came back or the text matches
    no candidate. Raises ValueError when two candidates are equal after strip and case-fold.
    """
    if not token_logprobs:
        return None
    keys = _candidate_keys(candidates)
    chosen = next((c for c, key in keys.items() if key == _normalise(text)), None)
    if chosen is None:
        return None

    scores = dict.fromkeys(keys, 0.0)
    scores[chosen] = math.exp(math.fsum(t.logprob for t in token_logprobs))

    prefix = ""
    prefix_logprob = 0.0
    for generated in token_logprobs:
        for alternative, logprob in generated.top_logprobs.items():
            if alternative == generated.token:
                continue
            other = _identified_candidate(prefix + alternative, keys)
            if other is not None and other != chosen:
                scores[other] += math.exp(prefix_logprob + logprob)
        prefix += generated.token
        prefix_logprob += generated.logprob

    total = math.fsum(scores.values())
    if total <= 0.0:
        # Every score underflowed to 0, so there is no usable evidence.
        return None
    return {candidate: score / total for candidate, score in scores.items()}


def _normalise(text: str) -> str:
    return text.strip().casefold()


def _candidate_keys(candidates: Sequence[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    seen: dict[str, str] = {}
    for candidate in candidates:
        key = _normalise(candidate)
        if key in seen and seen[key] != candidate:
            raise ValueError(
                f"candidates {seen[key]!r} and {candidate!r} are equal after strip and case-fold: "
                "make the labels distinct"
            )
        seen[key] = candidate
        keys[candidate] = key
    return keys


def _identified_candidate(partial_text: str, keys: Mapping[str, str]) -> str | None:
    """Return the only candidate that starts with `partial_text`, or None if none or several do."""
    partial = _normalise(partial_text)
    if not partial:
        return None
    matches = [candidate for candidate, key in keys.items() if key.startswith(partial)]
    return matches[0] if len(matches) == 1 else None


def _request_body(model_id: str, request: Request, token_field: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model_id,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        token_field: request.max_tokens,
        "temperature": request.temperature,
    }
    top_logprobs = CANDIDATE_TOP_LOGPROBS if request.candidates else request.top_logprobs
    if request.logprobs or request.candidates:
        body["logprobs"] = True
        if top_logprobs > 0:
            body["top_logprobs"] = top_logprobs
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": json.loads(request.json_schema)},
        }
    return body


def _error_message(body: str) -> str:
    """Read the message of an OpenAI error body {"error": {"message", "type", "param", "code"}}."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        details = [str(error[k]) for k in ("type", "code") if error.get(k)]
        suffix = f" [{', '.join(details)}]" if details else ""
        return f"{error['message']}{suffix}"
    snippet = body.strip()[:200]
    return snippet if snippet else "empty body"


def _first_choice(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ShapeError("missing choices[0]")
    return choices[0]


def _message_text(choice: Mapping[str, Any]) -> str:
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ShapeError("missing choices[0].message")
    content = message.get("content")
    if content is None:
        # A refusal or a tool call carries no content.
        return ""
    if not isinstance(content, str):
        raise ShapeError(f"choices[0].message.content is {type(content).__name__}, not a string")
    return content


def _served_model(payload: Mapping[str, Any]) -> str | None:
    model = payload.get("model")
    return model if isinstance(model, str) and model.strip() else None


def _usage(payload: Mapping[str, Any]) -> Usage | None:
    """Map OpenAI usage to shoal's Usage, or return None when the host reported none.

    `prompt_tokens` already counts cached tokens, and `completion_tokens` already counts
    reasoning tokens (`completion_tokens_details.reasoning_tokens`), as genai-prices expects.
    """
    usage = payload.get("usage")
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise ShapeError(f"usage is {type(usage).__name__}, not an object")

    prompt_tokens = count(usage, "prompt_tokens", "usage.prompt_tokens")
    completion_tokens = count(usage, "completion_tokens", "usage.completion_tokens")
    details = usage.get("prompt_tokens_details") or {}
    if not isinstance(details, dict):
        raise ShapeError("usage.prompt_tokens_details is not an object")
    cached_tokens = count(details, "cached_tokens", "usage.prompt_tokens_details.cached_tokens")
    if cached_tokens > prompt_tokens:
        raise ShapeError(f"cached_tokens {cached_tokens} exceeds prompt_tokens {prompt_tokens}")

    output_details = usage.get("completion_tokens_details") or {}
    if not isinstance(output_details, dict):
        raise ShapeError("usage.completion_tokens_details is not an object")
    reasoning = count(
        output_details, "reasoning_tokens", "usage.completion_tokens_details.reasoning_tokens"
    )
    # NOTE: a host whose completion_tokens leaves reasoning tokens out would be under-priced here.
    return Usage(
        input_tokens=prompt_tokens,
        output_tokens=completion_tokens,
        cache_read_tokens=cached_tokens,
        reasoning_tokens=min(reasoning, completion_tokens),
    )


def _token_logprobs(choice: Mapping[str, Any]) -> list[TokenLogprob] | None:
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return None
    if not isinstance(logprobs, dict):
        raise ShapeError("choices[0].logprobs is not an object")
    content = logprobs.get("content")
    if content is None:
        return None
    if not isinstance(content, list):
        raise ShapeError("choices[0].logprobs.content is not a list")
    return [_token_logprob(item, i) for i, item in enumerate(content)]


def _token_logprob(item: Any, index: int) -> TokenLogprob:
    path = f"choices[0].logprobs.content[{index}]"
    token, logprob = _token_and_logprob(item, path)

    alternatives = item.get("top_logprobs") or []
    if not isinstance(alternatives, list):
        raise ShapeError(f"{path}.top_logprobs is not a list")
    top: dict[str, float] = {}
    for alternative in alternatives:
        alt_token, alt_logprob = _token_and_logprob(alternative, f"{path}.top_logprobs[]")
        # A host may list the same token text twice under different token ids, so keep the likelier.
        top[alt_token] = max(alt_logprob, top.get(alt_token, -math.inf))
    return TokenLogprob(token=token, logprob=logprob, top_logprobs=top)


def _token_and_logprob(item: Any, path: str) -> tuple[str, float]:
    if not isinstance(item, dict):
        raise ShapeError(f"{path} is not an object")
    token = item.get("token")
    logprob = item.get("logprob")
    if not isinstance(token, str):
        raise ShapeError(f"{path}.token is missing")
    if isinstance(logprob, bool) or not isinstance(logprob, int | float):
        raise ShapeError(f"{path}.logprob is {logprob!r}, not a number")
    return token, float(logprob)
