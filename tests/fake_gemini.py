"""A fake Gemini generateContent server over real HTTP on 127.0.0.1, for provider tests.

Set the attributes of a `FakeGemini` before a request to choose what it returns, and read
`requests` afterwards to see what it received. Replies appended to `script` are sent first, one
per request, in order, which lets a test string together e.g. a 429 and then a success.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fake_http import FakeServer, FakeToken, JSONHandler, RecordedRequest

__all__ = [
    "GENERATE_PATH",
    "FakeGemini",
    "FakeReply",
    "FakeToken",
    "RecordedRequest",
    "gemini_error",
    "gemini_usage",
    "retry_info",
]

# POST /v1beta/models/{model}:generateContent
GENERATE_PATH = re.compile(r"/v1beta/models/(?P<model>[^/:]+):generateContent")


@dataclass(frozen=True)
class FakeReply:
    """One scripted reply: a JSON `body` with `status`, or with `body` None a normal success."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def gemini_usage(
    prompt_tokens: int,
    candidates_tokens: int,
    cached_tokens: int = 0,
    thoughts_tokens: int = 0,
) -> dict[str, Any]:
    """Build a usageMetadata object as Gemini sends it.

    `prompt_tokens` includes `cached_tokens`, and `thoughts_tokens` are counted apart from
    `candidates_tokens`. Zero counts are left out, as protobuf's JSON form does.
    """
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": candidates_tokens,
        "totalTokenCount": prompt_tokens + candidates_tokens + thoughts_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }
    if cached_tokens:
        usage["cachedContentTokenCount"] = cached_tokens
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached_tokens}]
    if thoughts_tokens:
        usage["thoughtsTokenCount"] = thoughts_tokens
    return usage


def gemini_error(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Build a Google API error body {"error": {"code", "message", "status", "details"}}."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def retry_info(delay: str) -> dict[str, Any]:
    """Build the google.rpc.RetryInfo detail that Gemini adds to 429 bodies, e.g. delay "31s"."""
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


class FakeGemini(FakeServer[FakeReply]):
    """A threaded HTTP server that responds to generateContent like the Gemini API."""

    def __init__(self, api_key: str = "AIzaFakeGeminiTestKey0123456789") -> None:
        super().__init__(_Handler)
        self.api_key = api_key
        self.model_version: str | None = None  # None echoes the model id from the path
        self.text: str | None = "ok"  # None sends a candidate without content
        self.parts: list[dict[str, Any]] | None = None  # replaces the parts built from `text`
        self.finish_reason = "STOP"
        self.usage: dict[str, Any] | None = gemini_usage(10, 1)
        self.tokens: list[FakeToken] | None = None  # sent only when responseLogprobs is set
        self.prompt_block_reason: str | None = None  # set: no candidates, only promptFeedback
        self.error_status: int | None = None
        self.error_body: dict[str, Any] = gemini_error(500, "INTERNAL", "An internal error.")
        self.error_headers: dict[str, str] = {}
        self.raw_body: bytes | None = None  # sent as-is with status 200, e.g. malformed JSON

    def generate(self, model: str, request_body: dict[str, Any]) -> dict[str, Any]:
        """Build the GenerateContentResponse for one request."""
        body: dict[str, Any] = {
            "modelVersion": self.model_version or model,
            "responseId": f"fake-response-{len(self.requests)}",
        }
        if self.usage is not None:
            body["usageMetadata"] = self.usage
        if self.prompt_block_reason is not None:
            body["promptFeedback"] = {"blockReason": self.prompt_block_reason}
            return body

        candidate: dict[str, Any] = {"finishReason": self.finish_reason, "index": 0}
        parts = self.parts if self.parts is not None else [{"text": self.text}]
        if self.parts is not None or self.text is not None:
            candidate["content"] = {"role": "model", "parts": parts}
        config = request_body.get("generationConfig") or {}
        if config.get("responseLogprobs") and self.tokens is not None:
            top_n = int(config.get("logprobs") or 0)
            candidate["logprobsResult"] = _logprobs_result(self.tokens, top_n)
            candidate["avgLogprobs"] = sum(t.logprob for t in self.tokens) / len(self.tokens)
        body["candidates"] = [candidate]
        return body


def _logprobs_result(tokens: list[FakeToken], top_n: int) -> dict[str, Any]:
    top_candidates = []
    for token in tokens:
        alternatives = sorted(token.top.items(), key=lambda item: item[1], reverse=True)[:top_n]
        top_candidates.append(
            {"candidates": [_candidate(alt, logprob) for alt, logprob in alternatives]}
        )
    return {
        "topCandidates": top_candidates,
        "chosenCandidates": [_candidate(t.token, t.logprob) for t in tokens],
        "logProbabilitySum": sum(t.logprob for t in tokens),
    }


def _candidate(token: str, logprob: float) -> dict[str, Any]:
    # The token id is made up, stable for a given token text.
    item: dict[str, Any] = {"token": token, "tokenId": sum(token.encode()) % 256_000}
    if logprob != 0.0:
        item["logProbability"] = logprob  # protobuf's JSON form leaves out the default 0.0
    return item


class _Handler(JSONHandler[FakeGemini]):
    content_type = "application/json; charset=UTF-8"

    def do_POST(self) -> None:
        body = self.receive_json()
        fake = self.fake

        match = GENERATE_PATH.fullmatch(self.path)
        if match is None:
            message = f"The requested URL {self.path} was not found on this server."
            self._send_json(404, gemini_error(404, "NOT_FOUND", message))
            return
        given_key = self.headers.get("x-goog-api-key")
        if given_key is None:
            # Google's reply to a request that carries no key at all.
            message = (
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API."
            )
            self._send_json(403, gemini_error(403, "PERMISSION_DENIED", message))
            return
        if given_key != fake.api_key:
            # Google rejects a wrong key with HTTP 400 and the reason API_KEY_INVALID, without
            # quoting the key. This fake quotes it so that tests can check that shoal redacts it.
            message = f"API key not valid. Please pass a valid API key: {given_key}"
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                }
            ]
            self._send_json(400, gemini_error(400, "INVALID_ARGUMENT", message, details))
            return

        # Scripted replies are used only by requests that pass the path and key checks.
        scripted = fake.next_scripted()
        if scripted is not None and scripted.body is not None:
            self._send_json(scripted.status, scripted.body, scripted.headers)
            return
        if scripted is None and fake.error_status is not None:
            self._send_json(fake.error_status, fake.error_body, fake.error_headers)
            return
        if scripted is None and fake.raw_body is not None:
            self._send(200, fake.raw_body)
            return
        if not isinstance(body, dict) or not body.get("contents"):
            message = "* GenerateContentRequest.contents: contents is not specified"
            self._send_json(400, gemini_error(400, "INVALID_ARGUMENT", message))
            return
        headers = scripted.headers if scripted is not None else {}
        self._send_json(200, fake.generate(match["model"], body), headers)
