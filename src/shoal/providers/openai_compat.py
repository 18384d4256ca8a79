"""A provider for any host that speaks OpenAI's Chat Completions wire format.

One POST to `{base_url}/chat/completions` per request, without streaming or retries. Retries, rate
limits and budgets belong to the shared layer around providers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from shoal.errors import (
    PriceNotFoundError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderTimeoutError,
    ResponseFormatError,
    UserInputError,
)
from shoal.pricing import Cost, api_cost
from shoal.providers.base import Request, Response, TokenLogprob, Usage

logger = logging.getLogger("shoal.providers.openai_compat")

OPENAI_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "OPENAI_BASE_URL"
API_KEY_ENV = "OPENAI_API_KEY"

# The largest `top_logprobs` the OpenAI API accepts. Requests with candidates ask for that many.
CANDIDATE_TOP_LOGPROBS = 20

# Hints appended to HTTP error messages, by status code.
_STATUS_HINTS = {
    401: "check the API key",
    403: "check that the API key may use this model",
    404: "check the model id and the base URL",
    429: "rate limit or quota reached: retry later or check the account's quota",
}

# Models already warned about (no price, or no usage reported), so each is logged once per process.
_warned: set[tuple[str, str]] = set()


class _ShapeError(ValueError):
    """A response body that parsed as JSON but lacks a field shoal needs."""


class OpenAICompatProvider:
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
        if not timeout_s > 0:
            raise UserInputError(
                f"invalid timeout {timeout_s!r}: give a positive number of seconds"
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
        self.base_url = _check_base_url(base_url)
        self.timeout_s = timeout_s
        self.price_provider_id = price_provider_id or provider_id
        self._api_key = api_key
        self._client = client

        if self.base_url == OPENAI_BASE_URL and not api_key:
            raise UserInputError(
                f"missing API key for {self.model}: set the {API_KEY_ENV} environment variable "
                "or pass api_key"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    async def complete(self, request: Request) -> Response:
        """Send one chat completion request and return its text, usage, logprobs and cost."""
        body = _request_body(self.model_id, request, token_limit_field(self.base_url))

        created_at = datetime.now(UTC)
        started = time.perf_counter()
        http_response = await self._post(body)
        latency_s = time.perf_counter() - started

        self._raise_for_status(http_response)
        payload = self._decode(http_response)
        try:
            response = self._to_response(payload, request, created_at, latency_s)
        except _ShapeError as exc:
            raise ResponseFormatError(
                f"{self.model} returned an unexpected response from {self.base_url}: {exc}"
            ) from exc

        logger.debug(
            "%s: HTTP %d in %.3f s, %d input / %d output tokens",
            self.model,
            http_response.status_code,
            latency_s,
            response.usage.input_tokens,
            response.usage.output_tokens,
        )
        return response

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        url = f"{self.base_url}/chat/completions"
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            if self._client is not None:
                return await self._client.post(
                    url, json=body, headers=headers, timeout=self.timeout_s
                )
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                return await client.post(url, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ProviderTimeoutError(
                f"request to {self.model} at {self.base_url} timed out after {self.timeout_s} s: "
                "retry, or raise timeout_s"
            ) from exc
        except httpx.TransportError as exc:
            raise ProviderConnectionError(
                f"connection to {self.model} at {self.base_url} failed: "
                f"{self._redact(str(exc)) or type(exc).__name__}: check that the host is running "
                "and the base URL is right"
            ) from exc

    def _raise_for_status(self, http_response: httpx.Response) -> None:
        try:
            http_response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            status = http_response.status_code
            body = self._redact(http_response.text)
            message = f"{self.model} returned HTTP {status}: {_error_message(body)}"
            if status in _STATUS_HINTS:
                message += f" ({_STATUS_HINTS[status]})"
            raise ProviderHTTPError(message, status, body) from exc

    def _decode(self, http_response: httpx.Response) -> Mapping[str, Any]:
        try:
            payload = http_response.json()
        except ValueError as exc:
            snippet = self._redact(http_response.text[:200])
            raise ResponseFormatError(
                f"{self.model} returned a body that is not JSON from {self.base_url}: {snippet!r}"
            ) from exc
        if not isinstance(payload, Mapping):
            raise ResponseFormatError(
                f"{self.model} returned JSON that is not an object: {type(payload).__name__}"
            )
        return payload

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

        cost = None
        if usage is None:
            self._warn_once("usage", "%s reported no usage, so its responses carry no cost")
        else:
            cost = self._price(usage, _served_model(payload), created_at)

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

    def _price(self, usage: Usage, served_model: str | None, created_at: datetime) -> Cost | None:
        """Price the usage, or return None (logging one warning per model) when no price is known.

        The model id in the response is tried first because an alias such as "gpt-4o" can be
        served by a dated snapshot with its own price. The requested id is the fallback.
        """
        model_refs = dict.fromkeys(ref for ref in (served_model, self.model_id) if ref)
        for model_ref in model_refs:
            try:
                return api_cost(usage, self.price_provider_id, model_ref, created_at)
            except PriceNotFoundError:
                continue
        self._warn_once(
            "price",
            "%s has no price in genai-prices for provider %r, so its responses carry no cost",
            self.price_provider_id,
        )
        return None

    def _warn_once(self, kind: str, message: str, *args: object) -> None:
        """Log `message` (its first %s is the model) once per process for this model and kind."""
        key = (kind, self.model)
        if key not in _warned:
            _warned.add(key)
            logger.warning(message, self.model, *args)

    def _redact(self, text: str) -> str:
        if self._api_key:
            return text.replace(self._api_key, "[redacted]")
        return text


def _check_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserInputError(
            f"invalid base URL {base_url!r}: give an http:// or https:// URL, "
            "e.g. http://127.0.0.1:8000/v1"
        )
    return url


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
    return body


def _error_message(body: str) -> str:
    """Read the message of an OpenAI error body {"error": {"message", "type", "param", "code"}}."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    error = decoded.get("error") if isinstance(decoded, Mapping) else None
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        details = [str(error[k]) for k in ("type", "code") if error.get(k)]
        suffix = f" [{', '.join(details)}]" if details else ""
        return f"{error['message']}{suffix}"
    snippet = body.strip()[:200]
    return snippet if snippet else "empty body"


def _first_choice(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise _ShapeError("missing choices[0]")
    return choices[0]


def _message_text(choice: Mapping[str, Any]) -> str:
    message = choice.get("message")
    if not isinstance(message, Mapping):
        raise _ShapeError("missing choices[0].message")
    content = message.get("content")
    if content is None:
        # A refusal or a tool call carries no content.
        return ""
    if not isinstance(content, str):
        raise _ShapeError(f"choices[0].message.content is {type(content).__name__}, not a string")
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
    if not isinstance(usage, Mapping):
        raise _ShapeError(f"usage is {type(usage).__name__}, not an object")

    prompt_tokens = _count(usage, "prompt_tokens", "usage.prompt_tokens")
    completion_tokens = _count(usage, "completion_tokens", "usage.completion_tokens")
    details = usage.get("prompt_tokens_details") or {}
    if not isinstance(details, Mapping):
        raise _ShapeError("usage.prompt_tokens_details is not an object")
    cached_tokens = _count(details, "cached_tokens", "usage.prompt_tokens_details.cached_tokens")
    if cached_tokens > prompt_tokens:
        raise _ShapeError(f"cached_tokens {cached_tokens} exceeds prompt_tokens {prompt_tokens}")

    # NOTE: a host whose completion_tokens leaves reasoning tokens out would be under-priced here.
    return Usage(
        input_tokens=prompt_tokens,
        output_tokens=completion_tokens,
        cache_read_tokens=cached_tokens,
    )


def _count(container: Mapping[str, Any], key: str, path: str) -> int:
    value = container.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _ShapeError(f"{path} is {value!r}, not a non-negative integer")
    return value


def _token_logprobs(choice: Mapping[str, Any]) -> list[TokenLogprob] | None:
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return None
    if not isinstance(logprobs, Mapping):
        raise _ShapeError("choices[0].logprobs is not an object")
    content = logprobs.get("content")
    if content is None:
        return None
    if not isinstance(content, list):
        raise _ShapeError("choices[0].logprobs.content is not a list")
    return [_token_logprob(item, i) for i, item in enumerate(content)]


def _token_logprob(item: Any, index: int) -> TokenLogprob:
    path = f"choices[0].logprobs.content[{index}]"
    token, logprob = _token_and_logprob(item, path)

    alternatives = item.get("top_logprobs") or []
    if not isinstance(alternatives, list):
        raise _ShapeError(f"{path}.top_logprobs is not a list")
    top: dict[str, float] = {}
    for alternative in alternatives:
        alt_token, alt_logprob = _token_and_logprob(alternative, f"{path}.top_logprobs[]")
        # A host may list the same token text twice under different token ids, so keep the likelier.
        top[alt_token] = max(alt_logprob, top.get(alt_token, -math.inf))
    return TokenLogprob(token=token, logprob=logprob, top_logprobs=top)


def _token_and_logprob(item: Any, path: str) -> tuple[str, float]:
    if not isinstance(item, Mapping):
        raise _ShapeError(f"{path} is not an object")
    token = item.get("token")
    logprob = item.get("logprob")
    if not isinstance(token, str):
        raise _ShapeError(f"{path}.token is missing")
    if isinstance(logprob, bool) or not isinstance(logprob, int | float):
        raise _ShapeError(f"{path}.logprob is {logprob!r}, not a number")
    return token, float(logprob)
