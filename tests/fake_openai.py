"""A fake Chat Completions server over real HTTP on 127.0.0.1, for provider tests.

Set the attributes of a `FakeOpenAI` before a request to choose what it returns, and read
`requests` afterwards to see what it received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fake_http import FakeServer, FakeToken, JSONHandler, RecordedRequest

__all__ = [
    "CHAT_PATH",
    "FakeOpenAI",
    "FakeToken",
    "RecordedRequest",
    "ScriptedError",
    "openai_error",
    "openai_usage",
]

CHAT_PATH = "/v1/chat/completions"


def openai_usage(
    prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, reasoning_tokens: int = 0
) -> dict[str, Any]:
    """Build an OpenAI usage object, whose counts include cached and reasoning tokens."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_error(message: str, error_type: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


@dataclass
class ScriptedError:
    """An error response the fake sends once, before it answers normally again."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeOpenAI(FakeServer[ScriptedError]):
    """A threaded HTTP server that responds to POST /v1/chat/completions like OpenAI's API.

    Errors appended to `script` go to the next requests in order, e.g. a 429 then a 503,
    before normal replies.
    """

    base_path = "/v1"

    def __init__(self, api_key: str = "sk-fake-test-key-0123456789") -> None:
        super().__init__(_Handler)
        self.api_key = api_key
        self.model: str | None = None  # None echoes the requested model
        self.content: str | None = "ok"
        self.usage: dict[str, Any] | None = openai_usage(10, 1)
        self.tokens: list[FakeToken] | None = None  # returned only when the request sets logprobs
        self.error_status: int | None = None
        self.error_body: dict[str, Any] = openai_error("The server had an error", "server_error")
        self.raw_body: bytes | None = None  # sent as-is with status 200, e.g. malformed JSON

    def completion(self, request_body: dict[str, Any]) -> dict[str, Any]:
        """Build the chat.completion object for one request."""
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": self.content, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
        if request_body.get("logprobs") and self.tokens is not None:
            top_n = int(request_body.get("top_logprobs") or 0)
            choice["logprobs"] = {"content": [_logprob_item(t, top_n) for t in self.tokens]}

        body: dict[str, Any] = {
            "id": f"chatcmpl-fake{len(self.requests)}",
            "object": "chat.completion",
            "created": 1_760_000_000,
            "model": self.model or request_body.get("model"),
            "choices": [choice],
        }
        if self.usage is not None:
            body["usage"] = self.usage
        return body


def _logprob_item(token: FakeToken, top_n: int) -> dict[str, Any]:
    alternatives = sorted(token.top.items(), key=lambda item: item[1], reverse=True)[:top_n]
    return {
        "token": token.token,
        "logprob": token.logprob,
        "bytes": list(token.token.encode()),
        "top_logprobs": [
            {"token": alt, "logprob": logprob, "bytes": list(alt.encode())}
            for alt, logprob in alternatives
        ],
    }


class _Handler(JSONHandler[FakeOpenAI]):
    def do_POST(self) -> None:
        body = self.receive_json()
        fake = self.fake

        if self.path != CHAT_PATH:
            self._send_json(404, openai_error(f"Unknown path {self.path}", "invalid_request_error"))
            return
        given_key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if given_key != fake.api_key:
            # The real API masks the key it quotes. This fake echoes the whole key so that tests
            # can check that shoal redacts it.
            message = f"Incorrect API key provided: {given_key}."
            self._send_json(401, openai_error(message, "invalid_request_error", "invalid_api_key"))
            return
        scripted = fake.next_scripted()
        if scripted is not None:
            self._send_json(scripted.status, scripted.body, scripted.headers)
            return
        if fake.error_status is not None:
            self._send_json(fake.error_status, fake.error_body)
            return
        if fake.raw_body is not None:
            self._send(200, fake.raw_body)
            return
        if not isinstance(body, dict):
            self._send_json(400, openai_error("Invalid JSON body", "invalid_request_error"))
            return
        self._send_json(200, fake.completion(body))
