"""A fake Chat Completions server over real HTTP on 127.0.0.1, for provider tests.

Set the attributes of a `FakeOpenAI` before a request to choose what it returns, and read
`requests` afterwards to see what it received.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class FakeToken:
    """One generated token with its logprob and its alternatives' logprobs."""

    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any


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


class FakeOpenAI:
    """A threaded HTTP server that responds to POST /v1/chat/completions like OpenAI's API."""

    def __init__(self, api_key: str = "sk-fake-test-key-0123456789") -> None:
        self.api_key = api_key
        self.model: str | None = None  # None echoes the requested model
        self.content: str | None = "ok"
        self.usage: dict[str, Any] | None = openai_usage(10, 1)
        self.tokens: list[FakeToken] | None = None  # returned only when the request sets logprobs
        self.error_status: int | None = None
        self.error_body: dict[str, Any] = openai_error("The server had an error", "server_error")
        self.raw_body: bytes | None = None  # sent as-is with status 200, e.g. malformed JSON
        self.delay_s = 0.0
        self.requests: list[RecordedRequest] = []

        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        # A short poll interval keeps `stop` (and so each test's teardown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake handlers still sleeping through `delay_s`
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_delay(self) -> None:
        self._release.wait(self.delay_s)

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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        fake = self.fake
        fake.requests.append(RecordedRequest(self.path, dict(self.headers.items()), body))
        fake.wait_delay()

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

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode())

    def _send(self, status: int, data: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first, as in the timeout test

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet
