"""A fake Anthropic Messages API server over real HTTP on 127.0.0.1, for provider tests.

Set the attributes of a `FakeAnthropic` before a request to choose what it returns, and read
`requests` afterwards to see what it received. Replies queued in `script` are sent first, one
per request, so that a test can play a 429 followed by a success.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from fake_http import FakeServer, JSONHandler, RecordedRequest

__all__ = [
    "ERROR_TYPES",
    "MESSAGES_PATH",
    "FakeAnthropic",
    "FakeReply",
    "RecordedRequest",
    "anthropic_error",
    "anthropic_usage",
    "error_reply",
    "request_problem",
]

MESSAGES_PATH = "/v1/messages"

# Error types of the Messages API by HTTP status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class FakeReply:
    """One scripted reply: a status, a JSON body and extra headers such as Retry-After."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def anthropic_usage(
    input_tokens: int,
    output_tokens: int,
    cache_creation_input_tokens: int = 0,
    cache_read_input_tokens: int = 0,
) -> dict[str, Any]:
    """Build an Anthropic usage object, whose `input_tokens` excludes cache reads and writes."""
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation_input_tokens,
        "cache_read_input_tokens": cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache_creation_input_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def anthropic_error(error_type: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": "req_fake0123456789",
    }


def error_reply(
    status: int, message: str = "", retry_after: str | None = None
) -> FakeReply:
    """Build a scripted error reply with the error type that Anthropic uses for `status`."""
    error_type = ERROR_TYPES.get(status, "api_error")
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return FakeReply(status, anthropic_error(error_type, message or error_type), headers)


class FakeAnthropic(FakeServer[FakeReply]):
    """A threaded HTTP server that responds to POST /v1/messages like Anthropic's API.

    Its `base_url` excludes the /v1 path, as the base URL of Anthropic's SDKs does.
    """

    def __init__(self, api_key: str = "sk-ant-fake-test-key-0123456789") -> None:
        super().__init__(_Handler)
        self.api_key = api_key
        self.model: str | None = None  # None echoes the requested model
        self.content: list[dict[str, Any]] = [{"type": "text", "text": "ok"}]
        # The input of the tool_use block sent when the request forces a tool. With None, the
        # fake sends `content` instead.
        self.tool_input: dict[str, Any] | None = None
        self.usage: dict[str, Any] | None = anthropic_usage(10, 1)
        self.error_status: int | None = None
        self.error_type: str | None = None  # None takes the type of `error_status`
        self.error_message: str | None = None  # None sends the error type as the message
        self.retry_after: str | None = None  # the Retry-After header sent with errors
        self.raw_body: bytes | None = None  # sent as-is with status 200, e.g. malformed JSON

    def configured_error(self) -> FakeReply | None:
        if self.error_status is None:
            return None
        error_type = self.error_type or ERROR_TYPES.get(self.error_status, "api_error")
        headers = {"retry-after": self.retry_after} if self.retry_after is not None else {}
        message = self.error_message or error_type
        return FakeReply(self.error_status, anthropic_error(error_type, message), headers)

    def message(self, request_body: dict[str, Any]) -> dict[str, Any]:
        """Build the Message object for one request."""
        tool_choice = request_body.get("tool_choice")
        forced_tool = tool_choice.get("name") if isinstance(tool_choice, dict) else None
        if forced_tool is not None and self.tool_input is not None:
            content: list[dict[str, Any]] = [
                {
                    "type": "tool_use",
                    "id": f"toolu_fake{len(self.requests)}",
                    "name": forced_tool,
                    "input": self.tool_input,
                }
            ]
            stop_reason = "tool_use"
        else:
            content = self.content
            stop_reason = "end_turn"

        body: dict[str, Any] = {
            "id": f"msg_fake{len(self.requests)}",
            "type": "message",
            "role": "assistant",
            "model": self.model or request_body.get("model"),
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
        }
        if self.usage is not None:
            body["usage"] = self.usage
        return body


def request_problem(body: Any) -> str | None:
    """Return why the Messages API would reject this body with a 400, or None if it is valid."""
    if not isinstance(body, dict):
        return "Invalid JSON body"
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return (
                f"messages.{index}.role: Input should be 'user' or 'assistant'; "
                "use the top-level system parameter for system prompts"
            )
    return None


class _Handler(JSONHandler[FakeAnthropic]):
    default_headers: ClassVar[dict[str, str]] = {"request-id": "req_fake0123456789"}

    def do_POST(self) -> None:
        body = self.receive_json()
        fake = self.fake

        if self.path != MESSAGES_PATH:
            self._reply(error_reply(404, f"Not found: {self.path}"))
            return
        given_key = self.headers.get("x-api-key") or ""
        if given_key != fake.api_key:
            # The real API does not quote the key. This fake echoes it so that tests can check
            # that shoal redacts it.
            self._reply(error_reply(401, f"invalid x-api-key: {given_key}"))
            return
        if not self.headers.get("anthropic-version"):
            self._reply(error_reply(400, "anthropic-version: header is required"))
            return

        reply = fake.next_scripted() or fake.configured_error()
        if reply is not None:
            self._reply(reply)
            return
        if fake.raw_body is not None:
            self._send(200, fake.raw_body)
            return
        problem = request_problem(body)
        if problem is not None:
            self._reply(error_reply(400, problem))
            return
        self._reply(FakeReply(200, fake.message(body)))

    def _reply(self, reply: FakeReply) -> None:
        self._send_json(reply.status, reply.body, reply.headers)
