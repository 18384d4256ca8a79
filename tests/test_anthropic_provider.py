"""AnthropicProvider against a real HTTP fake of the Messages API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import httpx
import pytest
from fake_anthropic import FakeAnthropic, FakeReply, anthropic_usage, error_reply

from shoal.errors import (
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderTimeoutError,
    ResponseFormatError,
    UserInputError,
)
from shoal.providers.anthropic import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    AnthropicProvider,
    one_hot_label_probs,
)
from shoal.providers.base import Message, Request, Response

MESSAGES = (Message("system", "Classify the ticket."), Message("user", "I was charged twice"))
TICKET_LABELS = ("billing", "refund", "technical")
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": list(TICKET_LABELS)}},
    "required": ["label"],
}


def make_provider(
    fake: FakeAnthropic, model_id: str = "claude-haiku-4-5", **kwargs: object
) -> AnthropicProvider:
    options: dict[str, object] = {"base_url": fake.base_url, "api_key": fake.api_key}
    options.update(kwargs)
    return AnthropicProvider(model_id, **options)  # type: ignore[arg-type]


def complete(provider: AnthropicProvider, request: Request | None = None) -> Response:
    return asyncio.run(provider.complete(request or Request(messages=MESSAGES)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def genai_total(
    model_id: str,
    created_at: datetime,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Decimal:
    usage = genai_prices.Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
    )
    price = genai_prices.calc_price(
        usage, model_id, provider_id="anthropic", genai_request_timestamp=created_at
    )
    return price.total_price


# Text, usage and the request sent


def test_text_and_usage_mapped(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.content = [{"type": "text", "text": "billing"}]
    fake_anthropic.usage = anthropic_usage(
        600, 200, cache_creation_input_tokens=100, cache_read_input_tokens=300
    )
    before = datetime.now(UTC)

    response = complete(make_provider(fake_anthropic))

    assert response.model == "anthropic:claude-haiku-4-5"
    assert response.text == "billing"
    # Anthropic's input_tokens leaves out the 100 cache writes and 300 cache reads.
    assert response.usage.input_tokens == 1000
    assert response.usage.cache_read_tokens == 300
    assert response.usage.cache_write_tokens == 100
    assert response.usage.output_tokens == 200
    assert response.usage.reasoning_tokens == 0
    assert response.latency_s > 0
    assert response.created_at.tzinfo == UTC
    assert before <= response.created_at <= datetime.now(UTC)
    assert response.token_logprobs is None
    assert response.label_probs is None


def test_text_blocks_joined(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.content = [
        {"type": "thinking", "thinking": "The customer paid twice.", "signature": "sig"},
        {"type": "text", "text": "bill"},
        {"type": "text", "text": "ing"},
    ]

    assert complete(make_provider(fake_anthropic)).text == "billing"


def test_empty_content_gives_empty_text(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.content = []

    assert complete(make_provider(fake_anthropic)).text == ""


def test_request_headers_and_body(fake_anthropic: FakeAnthropic) -> None:
    request = Request(messages=MESSAGES, max_tokens=64, temperature=0.5)

    complete(make_provider(fake_anthropic), request)

    [received] = fake_anthropic.requests
    assert received.path == "/v1/messages"
    headers = {name.lower(): value for name, value in received.headers.items()}
    assert headers["x-api-key"] == fake_anthropic.api_key
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers
    assert received.body == {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "temperature": 0.5,
        "system": "Classify the ticket.",
        "messages": [{"role": "user", "content": "I was charged twice"}],
    }


def test_system_messages_joined_top_level(fake_anthropic: FakeAnthropic) -> None:
    messages = (
        Message("system", "Classify the ticket."),
        Message("user", "My card was charged twice."),
        Message("assistant", "billing"),
        Message("system", "Answer with one label."),
        Message("user", "Where is my new card?"),
    )

    complete(make_provider(fake_anthropic), Request(messages=messages))

    body = fake_anthropic.requests[0].body
    assert body["system"] == "Classify the ticket.\n\nAnswer with one label."
    assert body["messages"] == [
        {"role": "user", "content": "My card was charged twice."},
        {"role": "assistant", "content": "billing"},
        {"role": "user", "content": "Where is my new card?"},
    ]


def test_no_system_field_without_system(fake_anthropic: FakeAnthropic) -> None:
    request = Request(messages=(Message("user", "I was charged twice"),))

    complete(make_provider(fake_anthropic), request)

    assert "system" not in fake_anthropic.requests[0].body


def test_invalid_role_rejected_before_request(fake_anthropic: FakeAnthropic) -> None:
    request = Request(messages=(Message("tool", "42"), Message("user", "Hi")))

    with pytest.raises(UserInputError, match="invalid message role 'tool'"):
        complete(make_provider(fake_anthropic), request)

    assert fake_anthropic.requests == []


def test_system_only_rejected_before_request(fake_anthropic: FakeAnthropic) -> None:
    request = Request(messages=(Message("system", "Classify the ticket."),))

    with pytest.raises(UserInputError, match="no user or assistant message"):
        complete(make_provider(fake_anthropic), request)

    assert fake_anthropic.requests == []


def test_scored_text_rejected_without_sending(fake_anthropic: FakeAnthropic) -> None:
    request = Request(
        messages=(),
        candidates=TICKET_LABELS,
        candidate_prompts=("Label: billing\nText:", "Label: refund\nText:", "Label: tech\nText:"),
        scored_text="I was charged twice",
    )

    with pytest.raises(UserInputError, match="anthropic:claude-haiku-4-5 cannot score a text"):
        complete(make_provider(fake_anthropic), request)

    assert fake_anthropic.requests == []


# Candidates


def test_candidates_one_hot(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.content = [{"type": "text", "text": " Refund\n"}]

    response = complete(
        make_provider(fake_anthropic), Request(messages=MESSAGES, candidates=TICKET_LABELS)
    )

    assert response.text == " Refund\n"
    assert response.label_probs == {"billing": 0.0, "refund": 1.0, "technical": 0.0}
    assert list(response.label_probs) == list(TICKET_LABELS)
    # The API has no logprobs, so the body is the same as without candidates.
    body = fake_anthropic.requests[0].body
    assert "tools" not in body
    assert set(body) == {"model", "max_tokens", "temperature", "system", "messages"}


def test_candidates_without_match_give_none(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.content = [{"type": "text", "text": "It is about billing."}]

    response = complete(
        make_provider(fake_anthropic), Request(messages=MESSAGES, candidates=TICKET_LABELS)
    )

    assert response.text == "It is about billing."
    assert response.label_probs is None


def test_one_hot_rejects_duplicate_candidates() -> None:
    with pytest.raises(ValueError, match="'billing' and 'Billing '"):
        one_hot_label_probs("billing", ("billing", "Billing "))


def test_one_hot_keeps_candidate_spelling() -> None:
    probs = one_hot_label_probs("CARD_ARRIVAL", ("Card_Arrival", "card_linking"))

    assert probs == {"Card_Arrival": 1.0, "card_linking": 0.0}


# Structured output through a forced tool call


def test_json_schema_sent_as_forced_tool(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.tool_input = {"label": "refund"}
    request = Request(messages=MESSAGES, json_schema=json.dumps(ANSWER_SCHEMA))

    response = complete(make_provider(fake_anthropic), request)

    body = fake_anthropic.requests[0].body
    [tool] = body["tools"]
    assert tool["name"] == "answer"
    assert tool["input_schema"] == ANSWER_SCHEMA
    assert isinstance(tool["description"], str)
    assert tool["description"]
    assert body["tool_choice"] == {"type": "tool", "name": "answer"}
    assert response.text == json.dumps({"label": "refund"})
    assert json.loads(response.text) == {"label": "refund"}


def test_json_schema_with_candidates(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.tool_input = {"label": "refund"}
    request = Request(
        messages=MESSAGES, candidates=TICKET_LABELS, json_schema=json.dumps(ANSWER_SCHEMA)
    )

    response = complete(make_provider(fake_anthropic), request)

    # The reply text is JSON, not a bare label.
    assert response.label_probs is None


def test_json_schema_without_tool_use_raises(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.content = [{"type": "text", "text": '{"label": "refund"}'}]
    request = Request(messages=MESSAGES, json_schema=json.dumps(ANSWER_SCHEMA))

    with pytest.raises(ResponseFormatError, match="missing a tool_use block"):
        complete(make_provider(fake_anthropic), request)


def test_tool_use_without_input_raises(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.raw_body = json.dumps(
        {
            "type": "message",
            "model": "claude-haiku-4-5",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "answer"}],
            "usage": anthropic_usage(10, 1),
        }
    ).encode()
    request = Request(messages=MESSAGES, json_schema=json.dumps(ANSWER_SCHEMA))

    with pytest.raises(ResponseFormatError, match=r"missing content\[0\]\.input"):
        complete(make_provider(fake_anthropic), request)


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        ('{"type": "object",', "not valid JSON"),
        ('{"type": "string"}', "give an object schema"),
        ('["label"]', "give an object schema"),
    ],
)
def test_invalid_json_schema_rejected(
    fake_anthropic: FakeAnthropic, schema: str, match: str
) -> None:
    request = Request(messages=MESSAGES, json_schema=schema)

    with pytest.raises(UserInputError, match=match):
        complete(make_provider(fake_anthropic), request)

    assert fake_anthropic.requests == []


# Cost


def test_cost_with_cache_equals_genai_prices(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.usage = anthropic_usage(
        600, 200, cache_creation_input_tokens=100, cache_read_input_tokens=300
    )

    response = complete(make_provider(fake_anthropic))

    expected = genai_total(
        "claude-haiku-4-5",
        response.created_at,
        input_tokens=1000,
        output_tokens=200,
        cache_read_tokens=300,
        cache_write_tokens=100,
    )
    assert response.cost is not None
    assert response.cost.amount == expected
    # 600 uncached at $1/1M, 300 cache reads at $0.10/1M, 100 cache writes at $1.25/1M and
    # 200 output at $5/1M, per genai-prices 0.2.3.
    assert response.cost.amount == Decimal("0.001755")
    assert response.cost.priced_at == response.created_at
    assert response.cost.price.source == f"genai-prices {genai_prices.__version__}"


def test_cost_without_cache_equals_genai_prices(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.usage = {"input_tokens": 1000, "output_tokens": 200}

    response = complete(make_provider(fake_anthropic, model_id="claude-3-5-haiku-20241022"))

    assert response.usage.input_tokens == 1000
    assert response.usage.cache_read_tokens == 0
    assert response.usage.cache_write_tokens == 0
    expected = genai_total(
        "claude-3-5-haiku-20241022", response.created_at, input_tokens=1000, output_tokens=200
    )
    assert response.cost is not None
    assert response.cost.amount == expected
    # 1000 input at $0.80/1M and 200 output at $4/1M, per genai-prices 0.2.3.
    assert response.cost.amount == Decimal("0.0016")


def test_null_cache_counts_are_zero(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.usage = {
        "input_tokens": 1000,
        "output_tokens": 200,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
    }

    response = complete(make_provider(fake_anthropic))

    assert response.usage.input_tokens == 1000
    assert response.usage.cache_read_tokens == 0
    assert response.usage.cache_write_tokens == 0


def test_cost_uses_served_model_id(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.model = "claude-3-5-haiku-20241022"
    fake_anthropic.usage = anthropic_usage(1000, 200)

    response = complete(make_provider(fake_anthropic, model_id="claude-haiku-4-5"))

    # Priced as the served Claude 3.5 Haiku ($0.0016), not as Claude Haiku 4.5 ($0.002).
    assert response.model == "anthropic:claude-haiku-4-5"
    assert response.cost is not None
    assert response.cost.amount == Decimal("0.0016")


def test_alias_priced_by_served_model(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.model = "claude-haiku-4-5-20251001"
    fake_anthropic.usage = anthropic_usage(1000, 200)

    response = complete(make_provider(fake_anthropic, model_id="house-alias"))

    assert response.cost is not None
    assert response.cost.amount == Decimal("0.002")


def test_unpriced_model_warns_once(
    fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shoal")
    provider = make_provider(fake_anthropic, model_id="unpriced-claude-house-1")

    first = complete(provider)
    second = complete(provider)

    assert first.cost is None
    assert second.cost is None
    assert first.usage.input_tokens == 10
    warnings = [r for r in caplog.records if "unpriced-claude-house-1" in r.getMessage()]
    assert len(warnings) == 1
    assert "no price" in warnings[0].getMessage()


# Configuration


def test_key_and_base_url_from_env(
    fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BASE_URL_ENV, fake_anthropic.base_url)
    monkeypatch.setenv(API_KEY_ENV, fake_anthropic.api_key)

    provider = AnthropicProvider("claude-haiku-4-5")
    response = complete(provider)

    assert provider.base_url == fake_anthropic.base_url
    assert response.text == "ok"
    assert fake_anthropic.requests[0].headers["x-api-key"] == fake_anthropic.api_key


def test_env_names_and_default_url() -> None:
    assert API_KEY_ENV == "ANTHROPIC_API_KEY"
    assert BASE_URL_ENV == "ANTHROPIC_BASE_URL"
    assert DEFAULT_BASE_URL == "https://api.anthropic.com"


def test_missing_key_rejected_before_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    monkeypatch.delenv(API_KEY_ENV, raising=False)

    with pytest.raises(UserInputError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider("claude-haiku-4-5")


def test_local_host_without_key_sends_none(
    fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    provider = AnthropicProvider("claude-haiku-4-5", base_url=fake_anthropic.base_url)

    with pytest.raises(ProviderHTTPError) as info:
        complete(provider)

    assert info.value.status_code == 401
    assert "x-api-key" not in fake_anthropic.requests[0].headers


def test_invalid_base_url_rejected() -> None:
    with pytest.raises(UserInputError, match="'api.anthropic.com'"):
        AnthropicProvider("claude-haiku-4-5", base_url="api.anthropic.com", api_key="sk-ant-x")


def test_blank_model_id_rejected() -> None:
    with pytest.raises(UserInputError, match="invalid model id"):
        AnthropicProvider(" ", base_url="http://127.0.0.1:9", api_key="sk-ant-x")


def test_base_url_with_v1_gives_404_hint(fake_anthropic: FakeAnthropic) -> None:
    provider = make_provider(fake_anthropic, base_url=f"{fake_anthropic.base_url}/v1/")

    with pytest.raises(ProviderHTTPError) as info:
        complete(provider)

    assert fake_anthropic.requests[0].path == "/v1/v1/messages"
    assert info.value.status_code == 404
    assert "not_found_error" in str(info.value)
    assert "check the model id and the base URL" in str(info.value)


def test_given_client_stays_open(fake_anthropic: FakeAnthropic) -> None:
    async def run() -> tuple[Response, bool]:
        async with httpx.AsyncClient() as client:
            provider = make_provider(fake_anthropic, client=client)
            response = await provider.complete(Request(messages=MESSAGES))
            return response, client.is_closed

    response, closed = asyncio.run(run())

    assert response.text == "ok"
    assert closed is False


# Errors


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_status_raises_http_error(
    fake_anthropic: FakeAnthropic, status: int, error_type: str
) -> None:
    fake_anthropic.error_status = status
    fake_anthropic.error_message = f"Fake failure {status}"

    with pytest.raises(ProviderHTTPError) as info:
        complete(make_provider(fake_anthropic))

    error = info.value
    assert error.status_code == status
    assert f"HTTP {status}" in str(error)
    assert f"Fake failure {status} [{error_type}, request req_fake0123456789]" in str(error)
    assert json.loads(error.body)["error"]["type"] == error_type
    assert error.retry_after_s is None
    assert isinstance(error.__cause__, httpx.HTTPStatusError)


@pytest.mark.parametrize(("status", "header", "seconds"), [(429, "7", 7.0), (529, "0", 0.0)])
def test_retry_after_read(
    fake_anthropic: FakeAnthropic, status: int, header: str, seconds: float
) -> None:
    fake_anthropic.error_status = status
    fake_anthropic.retry_after = header

    with pytest.raises(ProviderHTTPError) as info:
        complete(make_provider(fake_anthropic))

    assert info.value.status_code == status
    assert info.value.retry_after_s == seconds


def test_scripted_rate_limit_then_success(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script.append(error_reply(429, "Number of requests too high", "0"))
    fake_anthropic.content = [{"type": "text", "text": "billing"}]
    provider = make_provider(fake_anthropic)

    with pytest.raises(ProviderHTTPError) as info:
        complete(provider)
    response = complete(provider)

    assert info.value.status_code == 429
    assert info.value.retry_after_s == 0.0
    assert "rate_limit_error" in str(info.value)
    assert "rate limit or quota reached" in str(info.value)
    assert response.text == "billing"
    assert len(fake_anthropic.requests) == 2


def test_scripted_overloaded_then_success(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script.extend([error_reply(529, "Overloaded"), error_reply(529, "Overloaded")])
    provider = make_provider(fake_anthropic)

    for _ in range(2):
        with pytest.raises(ProviderHTTPError, match=r"Overloaded \[overloaded_error"):
            complete(provider)

    assert complete(provider).text == "ok"


def test_unauthorized_hides_key(
    fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_key = "sk-ant-wrong-secret-key-999"
    provider = make_provider(fake_anthropic, api_key=wrong_key)

    with pytest.raises(ProviderHTTPError) as info:
        complete(provider)

    error = info.value
    assert error.status_code == 401
    assert "authentication_error" in str(error)
    assert "check the API key" in str(error)
    # The fake echoes the key it was sent, so these checks exercise the redaction.
    assert fake_anthropic.requests[0].headers["x-api-key"] == wrong_key
    assert "[redacted]" in error.body
    assert wrong_key not in str(error)
    assert wrong_key not in error.body
    assert wrong_key not in caplog.text
    assert wrong_key not in repr(provider)


def test_key_absent_from_success_logs(
    fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = make_provider(fake_anthropic)

    complete(provider)

    assert fake_anthropic.api_key not in caplog.text
    assert fake_anthropic.api_key not in repr(provider)


def test_timeout_raises_timeout_error(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.delay_s = 3.0
    provider = make_provider(fake_anthropic, timeout_s=0.2)
    started = time.perf_counter()

    with pytest.raises(ProviderTimeoutError, match="timed out after 0.2 s") as info:
        complete(provider)

    assert time.perf_counter() - started < 2.0
    assert isinstance(info.value.__cause__, httpx.TimeoutException)


def test_refused_connection_raises_connection_error() -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    provider = AnthropicProvider("claude-haiku-4-5", base_url=base_url, api_key="sk-ant-x")

    with pytest.raises(ProviderConnectionError, match="127.0.0.1") as info:
        complete(provider)

    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert "sk-ant-x" not in str(info.value)


def test_malformed_json_raises_format_error(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.raw_body = b'{"content": ['

    with pytest.raises(ResponseFormatError, match="not JSON") as info:
        complete(make_provider(fake_anthropic))

    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"type": "message", "usage": {"input_tokens": 1, "output_tokens": 1}}, "missing content"),
        (
            {"content": ["ok"], "usage": {"input_tokens": 1, "output_tokens": 1}},
            r"content\[0\] is not a content block",
        ),
        (
            {"content": [{"type": "text"}], "usage": {"input_tokens": 1, "output_tokens": 1}},
            r"missing content\[0\]\.text",
        ),
        ({"content": [{"type": "text", "text": "ok"}]}, "missing usage"),
        (
            {"content": [{"type": "text", "text": "ok"}], "usage": {"output_tokens": 1}},
            r"missing usage\.input_tokens",
        ),
        (
            {"content": [{"type": "text", "text": "ok"}], "usage": {"input_tokens": 1}},
            r"missing usage\.output_tokens",
        ),
        (
            {
                "content": [{"type": "text", "text": "ok"}],
                "usage": {"input_tokens": -3, "output_tokens": 1},
            },
            r"usage\.input_tokens is -3",
        ),
    ],
)
def test_malformed_message_raises_format_error(
    fake_anthropic: FakeAnthropic, payload: dict[str, object], match: str
) -> None:
    fake_anthropic.raw_body = json.dumps(payload).encode()

    with pytest.raises(ResponseFormatError, match=match) as info:
        complete(make_provider(fake_anthropic))

    assert "anthropic:claude-haiku-4-5 returned an unexpected response" in str(info.value)


def test_scripted_success_reply_used(fake_anthropic: FakeAnthropic) -> None:
    message = {
        "type": "message",
        "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": "technical"}],
        "usage": anthropic_usage(5, 1),
    }
    fake_anthropic.script.append(FakeReply(200, message))

    first = complete(make_provider(fake_anthropic))
    second = complete(make_provider(fake_anthropic))

    assert first.text == "technical"
    assert second.text == "ok"
