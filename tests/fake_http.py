"""Shared plumbing for the fake vendor API servers that the provider tests run on 127.0.0.1.

`FakeServer` owns the listening socket and its thread, the recorded requests and the scripted
replies. `JSONHandler` reads each request body and sends JSON replies. Each vendor's fake
subclasses both and adds only the vendor's paths, key check and response bodies.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, Self, TypeVar

ReplyT = TypeVar("ReplyT")
FakeT = TypeVar("FakeT", bound="FakeServer[Any]")


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


class FakeServer(Generic[ReplyT]):
    """A threaded HTTP server on a free port of 127.0.0.1 that serves one `JSONHandler` class.

    Replies of type `ReplyT` appended to `script` go out first, one per request. Handlers sleep
    `delay_s` seconds before replying, and `stop` wakes them early.
    """

    # Appended to the server's origin to form `base_url`, e.g. "/v1".
    base_path: ClassVar[str] = ""

    def __init__(self, handler_class: type[JSONHandler[Any]]) -> None:
        self.script: deque[ReplyT] = deque()
        self.delay_s = 0.0
        self.requests: list[RecordedRequest] = []

        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        # A short poll interval keeps `stop` (and so each test's teardown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def origin(self) -> str:
        """The scheme, host and port of the server, e.g. "http://127.0.0.1:40123"."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.origin + self.base_path

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake handlers still sleeping through `delay_s`
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_delay(self) -> None:
        self._release.wait(self.delay_s)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def next_scripted(self) -> ReplyT | None:
        """Remove and return the next scripted reply, or None when the script is empty."""
        with self._lock:
            return self.script.popleft() if self.script else None


class JSONHandler(BaseHTTPRequestHandler, Generic[FakeT]):
    """A request handler for a `FakeServer` that replies over HTTP/1.1 with JSON bodies."""

    protocol_version = "HTTP/1.1"
    content_type: ClassVar[str] = "application/json"
    # Sent with every reply, before the headers that a single reply adds.
    default_headers: ClassVar[dict[str, str]] = {}

    @property
    def fake(self) -> FakeT:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def receive_json(self) -> Any:
        """Read the body, record the request on the fake and wait out its `delay_s`.

        Returns the parsed JSON body, or None when the body is not valid JSON.
        """
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.fake.record(RecordedRequest(self.path, dict(self.headers.items()), body))
        self.fake.wait_delay()
        return body

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", self.content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in {**self.default_headers, **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first, as in the timeout test

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet
