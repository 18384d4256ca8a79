"""A provider for Anthropic's Messages API, spoken over httpx without the SDK.

One POST to `{base_url}/v1/messages` per request, without streaming or retries. Retries, rate
limits and budgets belong to the shared layer around providers. The wire format follows the
Messages API with `anthropic-version: 2023-06-01`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from shoal.errors import UserInputError
from shoal.providers.base import Message, Request, Response, Usage, reject_text_scoring
from shoal.providers.http import (
    HTTPProvider,
    ShapeError,
    call_api,
    count,
    price_usage,
)

logger = logging.getLogger("shoal.providers.anthropic")

DEFAULT_BASE_URL = "https://api.anthropic.com"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
API_KEY_ENV = "ANTHROPIC_API_KEY"
API_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"

# The single tool that a request with `json_schema` forces the model to call.
ANSWER_TOOL_NAME = "answer"
ANSWER_TOOL_DESCRIPTION = (
    "Give the final answer as this tool's input, which must follow the input schema."
)


class AnthropicProvider(HTTPProvider):
    """A provider for Anthropic's Messages API, or a host that serves the same format.

    `model` is "anthropic:{model_id}". The base URL and key fall back to the ANTHROPIC_BASE_URL
    and ANTHROPIC_API_KEY environment variables, and the base URL excludes the "/v1" path, as
    in Anthropic's SDKs. Without `client`, each request opens and closes its own connection.
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
        if not model_id.strip():
            raise UserInputError(
                f"invalid model id {model_id!r}: give an Anthropic model id, e.g. claude-haiku-4-5"
            )
        base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        api_key = api_key or os.environ.get(API_KEY_ENV) or None

        self.model_id = model_id
        self.model = f"anthropic:{model_id}"
        self.price_provider_id = "anthropic"  # genai-prices' provider id
        self._connect(
            base_url=base_url,
            api_key=api_key,
            timeout_s=timeout_s,
            client=client,
            error_message=_error_message,
            official_base_url=DEFAULT_BASE_URL,
            api_key_env=API_KEY_ENV,
            example_base_url="http://127.0.0.1:8000",
        )

    async def complete(self, request: Request) -> Response:
        """Send one Messages API request and return its text, usage, label probabilities and cost.

        Raises UserInputError for a request this API cannot take (a `scored_text` request, a
        message role other than system, user or assistant, or an invalid `json_schema`)
        before anything is sent.
        """
        reject_text_scoring(self.model, request)
        body = _request_body(self.model_id, request)
        headers = {"anthropic-version": API_VERSION, "content-type": "application/json"}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return await call_api(
            self._poster, f"{self.base_url}{MESSAGES_PATH}", body, headers,
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
        content = _content_blocks(payload)
        if request.json_schema is not None:
            text = _tool_answer(content)
        else:
            text = _content_text(content)
        usage = _usage(payload)

        label_probs = None
        if request.candidates:
            label_probs = one_hot_label_probs(text, request.candidates)

        refs = (_served_model(payload), self.model_id)
        cost = price_usage(self.model, usage, self.price_provider_id, refs, created_at)

        return Response(
            model=self.model,
            text=text,
            usage=usage,
            latency_s=latency_s,
            created_at=created_at,
            cost=cost,
            label_probs=label_probs,
        )


def one_hot_label_probs(text: str, candidates: Sequence[str]) -> dict[str, float] | None:
    """Give probability 1 to the candidate equal to `text` after strip and case-fold.

    The Messages API returns no log-probabilities, so the generated text is the only
    evidence. Returns None when the text matches no candidate. Raises ValueError when two
    candidates are equal after strip and case-fold.
    """
    keys: dict[str, str] = {}
    for candidate in candidates:
        key = candidate.strip().casefold()
        if key in keys and keys[key] != candidate:
            raise ValueError(
                f"candidates {keys[key]!r} and {candidate!r} are equal after strip and "
                "case-fold: make the labels distinct"
            )
        keys[key] = candidate

    chosen = keys.get(text.strip().casefold())
    if chosen is None:
        return None
    return {candidate: 1.0 if candidate == chosen else 0.0 for candidate in candidates}


def _request_body(model_id: str, request: Request) -> dict[str, Any]:
    """Build the Messages API body, with the system messages moved to the top-level `system`."""
    system = [m.content for m in request.messages if m.role == "system"]
    turns = [_turn(m) for m in request.messages if m.role != "system"]
    if not turns:
        raise UserInputError(
            "the request has no user or assistant message: the Messages API needs at least "
            "one user message"
        )

    body: dict[str, Any] = {
        "model": model_id,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "messages": turns,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if request.json_schema is not None:
        body["tools"] = [
            {
                "name": ANSWER_TOOL_NAME,
                "description": ANSWER_TOOL_DESCRIPTION,
                "input_schema": _input_schema(request.json_schema),
            }
        ]
        body["tool_choice"] = {"type": "tool", "name": ANSWER_TOOL_NAME}
    return body


def _turn(message: Message) -> dict[str, str]:
    if message.role not in ("user", "assistant"):
        raise UserInputError(
            f"invalid message role {message.role!r}: the Messages API takes system, user and "
            "assistant messages"
        )
    return {"role": message.role, "content": message.content}


def _input_schema(json_schema: str) -> dict[str, Any]:
    try:
        schema = json.loads(json_schema)
    except ValueError as exc:
        raise UserInputError(
            f"invalid json_schema: not valid JSON ({exc}): give a JSON Schema as JSON text"
        ) from exc
    # A tool's input is always a JSON object, so Anthropic only takes object schemas here.
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise UserInputError(
            'invalid json_schema: give an object schema, e.g. {"type": "object", '
            '"properties": {...}}, because Anthropic takes the answer as a tool input'
        )
    return schema


def _error_message(body: str) -> str:
    """Read an Anthropic error body {"type": "error", "error": {"type", "message"}} into one line."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        details = [str(error["type"])] if error.get("type") else []
        request_id = decoded.get("request_id") if isinstance(decoded, dict) else None
        if isinstance(request_id, str) and request_id:
            details.append(f"request {request_id}")
        suffix = f" [{', '.join(details)}]" if details else ""
        return f"{error['message']}{suffix}"
    snippet = body.strip()[:200]
    return snippet if snippet else "empty body"


def _content_blocks(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = payload.get("content")
    if not isinstance(content, list):
        raise ShapeError("missing content (a list of content blocks)")
    for index, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise ShapeError(f"content[{index}] is not a content block with a type")
    return content


def _content_text(content: Sequence[Mapping[str, Any]]) -> str:
    """Join the text blocks. Other blocks, such as thinking, are not part of the reply text."""
    parts = []
    for index, block in enumerate(content):
        if block["type"] != "text":
            continue
        text = block.get("text")
        if not isinstance(text, str):
            raise ShapeError(f"missing content[{index}].text")
        parts.append(text)
    return "".join(parts)


def _tool_answer(content: Sequence[Mapping[str, Any]]) -> str:
    """Return the input of the forced `answer` tool call as JSON text."""
    for index, block in enumerate(content):
        if block["type"] != "tool_use" or block.get("name") != ANSWER_TOOL_NAME:
            continue
        answer = block.get("input")
        if not isinstance(answer, dict):
            raise ShapeError(f"missing content[{index}].input of the {ANSWER_TOOL_NAME} tool")
        return json.dumps(answer)
    raise ShapeError(f"missing a tool_use block for the {ANSWER_TOOL_NAME!r} tool in content")


def _served_model(payload: Mapping[str, Any]) -> str | None:
    model = payload.get("model")
    return model if isinstance(model, str) and model.strip() else None


def _usage(payload: Mapping[str, Any]) -> Usage:
    """Map Anthropic usage to shoal's Usage.

    Anthropic's `input_tokens` leaves out the tokens read from and written to the prompt cache,
    so shoal's total input adds them back, as genai-prices expects. Thinking tokens are part
    of `output_tokens`, and the API reports no separate count.
    """
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        raise ShapeError("missing usage")
    for key in ("input_tokens", "output_tokens"):
        if usage.get(key) is None:
            raise ShapeError(f"missing usage.{key}")

    uncached_input = count(usage, "input_tokens", "usage.input_tokens")
    output_tokens = count(usage, "output_tokens", "usage.output_tokens")
    # NOTE: writes to the 1-hour cache (`usage.cache_creation.ephemeral_1h_input_tokens`) cost
    # more than 5-minute writes, but Usage has one cache-write count, priced at the 5-minute rate.
    # shoal sets no cache_control, so its own requests write no cache.
    cache_write = count(
        usage, "cache_creation_input_tokens", "usage.cache_creation_input_tokens"
    )
    cache_read = count(usage, "cache_read_input_tokens", "usage.cache_read_input_tokens")
    return Usage(
        input_tokens=uncached_input + cache_write + cache_read,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
