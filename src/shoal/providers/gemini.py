"""A provider for Google's Gemini API (`generateContent`), over plain HTTP without Google's SDK.

One POST to `{base_url}/v1beta/models/{model_id}:generateContent` per request, without streaming
or retries. Retries, rate limits and budgets belong to the shared layer around providers. The API
key travels in the `x-goog-api-key` header and never in the URL, so it cannot reach a log line
that records URLs.

Wire format: https://ai.google.dev/api/generate-content (GenerateContentRequest, GenerationConfig,
GenerateContentResponse, UsageMetadata, LogprobsResult).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from shoal.errors import ProviderHTTPError, ResponseFormatError, UserInputError
from shoal.providers.base import (
    Message,
    Request,
    Response,
    TokenLogprob,
    Usage,
    reject_text_scoring,
)
from shoal.providers.http import (
    HTTPProvider,
    ShapeError,
    call_api,
    cost_or_warn,
    count,
)
from shoal.providers.openai_compat import label_probs_from_logprobs

logger = logging.getLogger("shoal.providers.gemini")

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
BASE_URL_ENV = "GEMINI_BASE_URL"
API_KEY_ENV = "GEMINI_API_KEY"
# The key variable read when GEMINI_API_KEY is unset.
FALLBACK_API_KEY_ENV = "GOOGLE_API_KEY"

# genai-prices 0.2.3 lists Gemini models under provider id "google".
PRICE_PROVIDER_ID = "google"

# GenerationConfig.logprobs "must be in the range of [0, 20]" (ai.google.dev/api/generate-content).
# Requests with candidates ask for the maximum.
MAX_TOP_LOGPROBS = 20

# finishReason values that mean Google blocked the reply, from the Candidate.FinishReason enum
# (ai.google.dev/api/generate-content), with the reason each one gives.
BLOCKED_FINISH_REASONS = {
    "SAFETY": "it may be unsafe",
    "RECITATION": "it may recite training data",
    "LANGUAGE": "it is in an unsupported language",
    "BLOCKLIST": "it contains a forbidden term",
    "PROHIBITED_CONTENT": "it may contain prohibited content",
    "SPII": "it may contain sensitive personal information",
}

# Gemini model ids are path segments such as "gemini-2.5-flash" or "gemini-2.0-flash-001".
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

_ROLES = {"user": "user", "assistant": "model"}


class _BlockedError(ValueError):
    """A well-formed response without text, because Google blocked the prompt or the reply."""


class GeminiProvider(HTTPProvider):
    """A provider for Google's Gemini API, model `google:{model_id}`.

    The key comes from `api_key`, else GEMINI_API_KEY, else GOOGLE_API_KEY, and the base URL from
    `base_url`, else GEMINI_BASE_URL, else Google's endpoint. Only Google's own endpoint requires a
    key: another base URL (a proxy, a test server) gets no `x-goog-api-key` header when none is
    set. Without `client`, each request opens and closes its own connection.
    """

    def __init__(
        self,
        model_id: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not _MODEL_ID.fullmatch(model_id):
            raise UserInputError(
                f"invalid Gemini model id {model_id!r}: give the bare id, e.g. gemini-2.5-flash"
            )
        base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        api_key = (
            api_key
            or os.environ.get(API_KEY_ENV)
            or os.environ.get(FALLBACK_API_KEY_ENV)
            or None
        )

        self.model_id = model_id
        self.model = f"google:{model_id}"
        self.price_provider_id = PRICE_PROVIDER_ID
        self._connect(
            base_url=base_url,
            api_key=api_key,
            timeout_s=timeout_s,
            client=client,
            error_message=_error_message,
            official_base_url=DEFAULT_BASE_URL,
            api_key_env=API_KEY_ENV,
            example_base_url=DEFAULT_BASE_URL,
        )

    @property
    def url(self) -> str:
        """The generateContent endpoint of this model."""
        return f"{self.base_url}/v1beta/models/{self.model_id}:generateContent"

    async def complete(self, request: Request) -> Response:
        """Send one generateContent request and return its text, usage, logprobs and cost."""
        reject_text_scoring(self.model, request)
        body = request_body(request)
        headers = {"x-goog-api-key": self._api_key} if self._api_key else {}
        try:
            return await call_api(self._poster, self.url, body, headers, self._parser(request))
        except ProviderHTTPError as exc:
            # Gemini's 429 bodies carry the delay in a RetryInfo detail, often without a header.
            if exc.retry_after_s is None:
                exc.retry_after_s = retry_delay_seconds(exc.body)
            raise

    def _parser(
        self, request: Request
    ) -> Callable[[Mapping[str, Any], datetime, float], Response]:
        def parse(payload: Mapping[str, Any], created_at: datetime, latency_s: float) -> Response:
            try:
                return self._to_response(payload, request, created_at, latency_s)
            except _BlockedError as exc:
                raise ResponseFormatError(f"{self.model} returned no text: {exc}") from exc

        return parse

    def _to_response(
        self,
        payload: Mapping[str, Any],
        request: Request,
        created_at: datetime,
        latency_s: float,
    ) -> Response:
        candidate = _first_candidate(payload)
        text = _candidate_text(candidate)
        token_logprobs = _token_logprobs(candidate)
        usage = _usage(payload)

        label_probs = None
        if request.candidates:
            label_probs = _label_probs(text, token_logprobs, request.candidates)

        refs = (_model_version(payload), self.model_id)
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


def request_body(request: Request) -> dict[str, Any]:
    """Build the generateContent body: contents, systemInstruction and generationConfig.

    System messages become `systemInstruction` parts, "user" stays "user" and "assistant" becomes
    "model". A JSON Schema goes to `responseJsonSchema`, which accepts JSON Schema as written.
    The older `responseSchema` takes an OpenAPI 3.0 subset with upper-case type names instead.
    Raises UserInputError for an unknown role, for messages without a user or assistant turn, for
    more than 20 top logprobs and for a `json_schema` that is not valid JSON.
    """
    contents, system_parts = _contents(request.messages)
    config: dict[str, Any] = {
        "maxOutputTokens": request.max_tokens,
        "temperature": request.temperature,
    }

    top_logprobs = MAX_TOP_LOGPROBS if request.candidates else request.top_logprobs
    if top_logprobs > MAX_TOP_LOGPROBS:
        raise UserInputError(
            f"invalid top_logprobs {top_logprobs}: the Gemini API returns at most "
            f"{MAX_TOP_LOGPROBS} alternatives per token"
        )
    if request.logprobs or request.candidates:
        config["responseLogprobs"] = True
        if top_logprobs > 0:
            config["logprobs"] = top_logprobs

    if request.json_schema is not None:
        try:
            schema = json.loads(request.json_schema)
        except ValueError as exc:
            raise UserInputError(
                f"invalid json_schema, which is not valid JSON ({exc}): give a JSON Schema object"
            ) from exc
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = schema

    body: dict[str, Any] = {"contents": contents, "generationConfig": config}
    if system_parts:
        body["systemInstruction"] = {"parts": system_parts}
    return body


def _contents(
    messages: Sequence[Message],
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    contents: list[dict[str, Any]] = []
    system_parts: list[dict[str, str]] = []
    for message in messages:
        if message.role == "system":
            system_parts.append({"text": message.content})
            continue
        role = _ROLES.get(message.role)
        if role is None:
            raise UserInputError(
                f"invalid message role {message.role!r}: use 'system', 'user' or 'assistant'"
            )
        contents.append({"role": role, "parts": [{"text": message.content}]})
    if not contents:
        raise UserInputError(
            "invalid request: the Gemini API needs at least one user or assistant message"
        )
    return contents, system_parts


def retry_delay_seconds(body: str) -> float | None:
    """Read the RetryInfo delay ("31s") from a Google error body, or return None without one.

    Gemini's 429 responses carry the delay in `error.details[]` as a google.rpc.RetryInfo, often
    without a Retry-After header.
    """
    error = _error_object(body)
    details = error.get("details") if error is not None else None
    if not isinstance(details, list):
        return None
    for detail in details:
        if not isinstance(detail, dict):
            continue
        if not str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            continue
        delay = detail.get("retryDelay")
        # A protobuf Duration in JSON is decimal seconds with an "s" suffix, e.g. "0.5s".
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def _error_object(body: str) -> Mapping[str, Any] | None:
    """Return the `error` object of a Google error body, or None when there is none."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    # Some Google endpoints wrap the error object in a one-element list.
    if isinstance(decoded, list) and decoded:
        decoded = decoded[0]
    error = decoded.get("error") if isinstance(decoded, dict) else None
    return error if isinstance(error, dict) else None


def _error_message(body: str) -> str:
    """Read a Google error body {"error": {"code", "message", "status", "details"}} into one line.

    The line ends with the status (e.g. RESOURCE_EXHAUSTED) and any ErrorInfo reason. Google
    rejects an invalid key with HTTP 400 and the reason API_KEY_INVALID, so that case gets a hint.
    """
    error = _error_object(body)
    if error is None or not isinstance(error.get("message"), str):
        snippet = body.strip()[:200]
        return snippet if snippet else "empty body"

    labels = [str(error["status"])] if error.get("status") else []
    details = error.get("details")
    reasons = []
    if isinstance(details, list):
        reasons = [
            str(detail["reason"])
            for detail in details
            if isinstance(detail, dict) and detail.get("reason")
        ]
    labels.extend(reasons)

    message = " ".join(error["message"].split())
    if labels:
        message += f" [{', '.join(labels)}]"
    if "API_KEY_INVALID" in reasons:
        message += f" (check the API key in {API_KEY_ENV})"
    return message


def _first_candidate(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    candidates = payload.get("candidates")
    if not candidates:
        feedback = payload.get("promptFeedback")
        block_reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if block_reason:
            raise _BlockedError(
                f"Google blocked the prompt (promptFeedback.blockReason {block_reason}). "
                "Rephrase the prompt or use another model"
            )
        raise ShapeError("missing candidates[0]")
    if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
        raise ShapeError("candidates is not a list of objects")
    return candidates[0]


def _candidate_text(candidate: Mapping[str, Any]) -> str:
    """Join the text parts of candidates[0], leaving out thought summaries.

    A candidate without parts (e.g. finishReason MAX_TOKENS after thinking used up the budget)
    gives "", unless its finishReason shows that Google blocked the reply.
    """
    content = candidate.get("content", {})
    if not isinstance(content, dict):
        raise ShapeError("candidates[0].content is not an object")
    parts = content.get("parts", [])
    if not isinstance(parts, list):
        raise ShapeError("candidates[0].content.parts is not a list")

    texts: list[str] = []
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            raise ShapeError(f"candidates[0].content.parts[{index}] is not an object")
        text = part.get("text")
        if text is None or part.get("thought") is True:
            continue
        if not isinstance(text, str):
            raise ShapeError(f"candidates[0].content.parts[{index}].text is not a string")
        texts.append(text)
    text = "".join(texts)

    finish_reason = candidate.get("finishReason")
    if not text and finish_reason in BLOCKED_FINISH_REASONS:
        # NOTE: the tokens of a blocked response may still be billed, but no cost is recorded.
        raise _BlockedError(
            f"Google blocked the response (finishReason {finish_reason}) because "
            f"{BLOCKED_FINISH_REASONS[finish_reason]}. Rephrase the prompt or use another model"
        )
    return text


def _model_version(payload: Mapping[str, Any]) -> str | None:
    version = payload.get("modelVersion")
    return version if isinstance(version, str) and version.strip() else None


def _usage(payload: Mapping[str, Any]) -> Usage | None:
    """Map `usageMetadata` to shoal's Usage, or return None when the response has none.

    `promptTokenCount` already includes `cachedContentTokenCount` ("When cached_content is set,
    this also includes the number of tokens in the cached content", UsageMetadata in
    googleapis.github.io/js-genai). Thinking tokens are counted apart from candidatesTokenCount,
    in `thoughtsTokenCount`, and billed as output ("response pricing is the sum of output tokens and
    thinking tokens", ai.google.dev/gemini-api/docs/thinking), so they are added to output_tokens.
    `toolUsePromptTokenCount` is added to the input, as genai-prices 0.2.3's Google usage
    extractor does.
    """
    metadata = payload.get("usageMetadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise ShapeError(f"usageMetadata is {type(metadata).__name__}, not an object")

    def read(key: str) -> int:
        return count(metadata, key, f"usageMetadata.{key}")

    prompt = read("promptTokenCount")
    tool_prompt = read("toolUsePromptTokenCount")
    cached = read("cachedContentTokenCount")
    generated = read("candidatesTokenCount")
    thoughts = read("thoughtsTokenCount")
    if cached > prompt:
        raise ShapeError(
            f"cachedContentTokenCount {cached} exceeds promptTokenCount {prompt}"
        )
    return Usage(
        input_tokens=prompt + tool_prompt,
        output_tokens=generated + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )


def _label_probs(
    text: str, token_logprobs: Sequence[TokenLogprob] | None, candidates: Sequence[str]
) -> dict[str, float] | None:
    """Score the candidates from logprobs, or one-hot on the text when no logprobs came back."""
    if token_logprobs is None:
        # A single certain token scores the matching candidate 1 and the others 0, with the same
        # strip and case-fold matching (and duplicate check) as the logprob path.
        token_logprobs = [TokenLogprob(token=text, logprob=0.0)]
    return label_probs_from_logprobs(text, token_logprobs, candidates)


def _token_logprobs(candidate: Mapping[str, Any]) -> list[TokenLogprob] | None:
    """Pair `chosenCandidates[i]` with the alternatives in `topCandidates[i].candidates`."""
    result = candidate.get("logprobsResult")
    if result is None:
        return None
    if not isinstance(result, dict):
        raise ShapeError("candidates[0].logprobsResult is not an object")
    chosen = result.get("chosenCandidates")
    if chosen is None:
        return None
    top = result.get("topCandidates", [])
    if not isinstance(chosen, list) or not isinstance(top, list):
        raise ShapeError("candidates[0].logprobsResult fields are not lists")

    tokens: list[TokenLogprob] = []
    for index, item in enumerate(chosen):
        path = f"candidates[0].logprobsResult.chosenCandidates[{index}]"
        token, logprob = _token_and_logprob(item, path)
        alternatives = _alternatives(top[index], index) if index < len(top) else {}
        tokens.append(TokenLogprob(token=token, logprob=logprob, top_logprobs=alternatives))
    return tokens


def _alternatives(step: Any, index: int) -> dict[str, float]:
    path = f"candidates[0].logprobsResult.topCandidates[{index}]"
    if not isinstance(step, dict):
        raise ShapeError(f"{path} is not an object")
    items = step.get("candidates", [])
    if not isinstance(items, list):
        raise ShapeError(f"{path}.candidates is not a list")
    alternatives: dict[str, float] = {}
    for item in items:
        token, logprob = _token_and_logprob(item, f"{path}.candidates[]")
        # Two token ids can decode to the same text, so keep the likelier.
        if token not in alternatives or logprob > alternatives[token]:
            alternatives[token] = logprob
    return alternatives


def _token_and_logprob(item: Any, path: str) -> tuple[str, float]:
    if not isinstance(item, dict):
        raise ShapeError(f"{path} is not an object")
    # Protobuf's JSON form leaves out fields at their default value, so an absent
    # `logProbability` is 0.0 (probability 1) and an absent `token` is "".
    token = item.get("token", "")
    logprob = item.get("logProbability", 0.0)
    if not isinstance(token, str):
        raise ShapeError(f"{path}.token is {token!r}, not a string")
    if isinstance(logprob, bool) or not isinstance(logprob, int | float):
        raise ShapeError(f"{path}.logProbability is {logprob!r}, not a number")
    return token, float(logprob)
