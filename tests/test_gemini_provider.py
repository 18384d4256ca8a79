"""GeminiProvider against a real HTTP fake of Gemini's generateContent API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
import time
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import httpx
import pytest
from fake_gemini import FakeGemini, FakeReply, FakeToken, gemini_error, gemini_usage, retry_info

from shoal.errors import (
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderTimeoutError,
    ResponseFormatError,
    UserInputError,
)
from shoal.providers.base import Message, Request, Response, TokenLogprob
from shoal.providers.gemini import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    GeminiProvider,
    request_body,
    retry_delay_seconds,
)
from shoal.providers.openai_compat import label_probs_from_logprobs

MESSAGES = (Message("system", "Classify the ticket."), Message("user", "I was charged twice"))
TICKET_LABELS = ("billing", "refund", "technical")
CARD_LABELS = ("card_arrival", "card_linking", "card_acceptance")


@pytest.fixture(autouse=True)
def no_gemini_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's own Gemini settings out of every test."""
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def make_provider(
    fake: FakeGemini, model_id: str = "gemini-2.5-flash", **kwargs: object
) -> GeminiProvider:
    options: dict[str, object] = {"base_url": fake.base_url, "api_key": fake.api_key}
    options.update(kwargs)
    return GeminiProvider(model_id, **options)  # type: ignore[arg-type]


def complete(provider: GeminiProvider, request: Request | None = None) -> Response:
    return asyncio.run(provider.complete(request or Request(messages=MESSAGES)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def generation_config(fake: FakeGemini, index: int = 0) -> dict[str, object]:
    config: dict[str, object] = fake.requests[index].body["generationConfig"]
    return config


# Text, usage and the request sent


def test_text_and_usage_mapped(fake_gemini: FakeGemini) -> None:
    fake_gemini.text = "billing"
    fake_gemini.usage = gemini_usage(1000, 200, cached_tokens=400, thoughts_tokens=50)
    before = datetime.now(UTC)

    response = complete(make_provider(fake_gemini))

    assert response.model == "google:gemini-2.5-flash"
    assert response.text == "billing"
    assert response.usage.input_tokens == 1000
    assert response.usage.cache_read_tokens == 400
    assert response.usage.cache_write_tokens == 0
    # thoughtsTokenCount is reported apart from candidatesTokenCount and billed as output.
    assert response.usage.output_tokens == 250
    assert response.usage.reasoning_tokens == 50
    assert response.latency_s > 0
    assert response.created_at.tzinfo == UTC
    assert before <= response.created_at <= datetime.now(UTC)
    assert response.token_logprobs is None
    assert response.label_probs is None


def test_usage_matches_genai_prices_extractor(fake_gemini: FakeGemini) -> None:
    fake_gemini.usage = gemini_usage(5000, 120, cached_tokens=4096, thoughts_tokens=900)
    body = fake_gemini.generate("gemini-2.5-flash", {"contents": [{"parts": [{"text": "x"}]}]})

    response = complete(make_provider(fake_gemini))

    extracted = genai_prices.extract_usage(body, provider_id="google").usage
    assert response.usage.input_tokens == extracted.input_tokens
    assert response.usage.cache_read_tokens == extracted.cache_read_tokens
    assert response.usage.output_tokens == extracted.output_tokens
    assert response.usage.reasoning_tokens == extracted.output_reasoning_tokens


def test_request_body_and_key_header(fake_gemini: FakeGemini) -> None:
    request = Request(messages=MESSAGES, max_tokens=64, temperature=0.5)

    complete(make_provider(fake_gemini), request)

    [received] = fake_gemini.requests
    assert received.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert received.headers["x-goog-api-key"] == fake_gemini.api_key
    assert fake_gemini.api_key not in received.path
    assert "Authorization" not in received.headers
    assert received.body == {
        "contents": [{"role": "user", "parts": [{"text": "I was charged twice"}]}],
        "systemInstruction": {"parts": [{"text": "Classify the ticket."}]},
        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.5},
    }


def test_roles_and_system_parts(fake_gemini: FakeGemini) -> None:
    messages = (
        Message("system", "Classify the ticket."),
        Message("user", "Card arrived?"),
        Message("assistant", "card_arrival"),
        Message("system", "Answer with one label."),
        Message("user", "It never came"),
    )

    complete(make_provider(fake_gemini), Request(messages=messages))

    body = fake_gemini.requests[0].body
    assert body["systemInstruction"] == {
        "parts": [{"text": "Classify the ticket."}, {"text": "Answer with one label."}]
    }
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Card arrived?"}]},
        {"role": "model", "parts": [{"text": "card_arrival"}]},
        {"role": "user", "parts": [{"text": "It never came"}]},
    ]


def test_no_system_instruction_without_system() -> None:
    body = request_body(Request(messages=(Message("user", "hi"),)))

    assert "systemInstruction" not in body


def test_invalid_messages_rejected() -> None:
    with pytest.raises(UserInputError, match="invalid message role 'tool'"):
        request_body(Request(messages=(Message("tool", "x"),)))
    with pytest.raises(UserInputError, match="at least one user or assistant message"):
        request_body(Request(messages=(Message("system", "only a system prompt"),)))


def test_thought_parts_left_out(fake_gemini: FakeGemini) -> None:
    fake_gemini.parts = [
        {"text": "The user was charged twice, so...", "thought": True},
        {"text": "bill"},
        {"text": "ing"},
    ]

    assert complete(make_provider(fake_gemini)).text == "billing"


def test_max_tokens_without_parts_gives_empty_text(fake_gemini: FakeGemini) -> None:
    fake_gemini.text = None
    fake_gemini.finish_reason = "MAX_TOKENS"
    fake_gemini.usage = gemini_usage(10, 0, thoughts_tokens=64)

    response = complete(make_provider(fake_gemini))

    assert response.text == ""
    assert response.usage.output_tokens == 64


# Token log-probabilities


def test_logprobs_mapped_to_tokens(fake_gemini: FakeGemini) -> None:
    fake_gemini.text = "refund"
    fake_gemini.tokens = [
        FakeToken("ref", -0.25, {"ref": -0.25, "bill": -1.5, "tech": -3.0}),
        # The fake leaves out a logProbability of 0.0, as protobuf's JSON form does.
        FakeToken("und", 0.0, {"und": 0.0, "unds": -5.0}),
    ]
    request = Request(messages=MESSAGES, logprobs=True, top_logprobs=2)

    response = complete(make_provider(fake_gemini), request)

    config = generation_config(fake_gemini)
    assert config["responseLogprobs"] is True
    assert config["logprobs"] == 2
    assert response.token_logprobs == [
        TokenLogprob("ref", -0.25, {"ref": -0.25, "bill": -1.5}),
        TokenLogprob("und", 0.0, {"und": 0.0, "unds": -5.0}),
    ]
    assert response.label_probs is None


def test_logprobs_without_alternatives(fake_gemini: FakeGemini) -> None:
    fake_gemini.tokens = [FakeToken("ok", -0.5, {"ok": -0.5})]

    response = complete(make_provider(fake_gemini), Request(messages=MESSAGES, logprobs=True))

    config = generation_config(fake_gemini)
    assert config["responseLogprobs"] is True
    assert "logprobs" not in config
    assert response.token_logprobs == [TokenLogprob("ok", -0.5, {})]


def test_candidates_request_twenty_alternatives(fake_gemini: FakeGemini) -> None:
    fake_gemini.text = "billing"
    fake_gemini.tokens = [FakeToken("billing", -0.1, {"billing": -0.1})]

    complete(make_provider(fake_gemini), Request(messages=MESSAGES, candidates=TICKET_LABELS))

    config = generation_config(fake_gemini)
    assert config["responseLogprobs"] is True
    assert config["logprobs"] == 20


def test_too_many_top_logprobs_rejected(fake_gemini: FakeGemini) -> None:
    request = Request(messages=MESSAGES, logprobs=True, top_logprobs=21)

    with pytest.raises(UserInputError, match="at most 20"):
        complete(make_provider(fake_gemini), request)

    assert fake_gemini.requests == []


def test_candidates_get_label_probs(fake_gemini: FakeGemini) -> None:
    fake_gemini.text = "billing"
    fake_gemini.tokens = [
        FakeToken(
            "billing",
            -0.1,
            # "Ref" also identifies refund; "the" is a prefix of no label.
            {"billing": -0.1, "refund": -2.5, "Ref": -4.0, "tech": -3.0, "the": -5.0},
        )
    ]
    request = Request(messages=MESSAGES, candidates=TICKET_LABELS)

    response = complete(make_provider(fake_gemini), request)

    scores = {
        "billing": math.exp(-0.1),
        "refund": math.exp(-2.5) + math.exp(-4.0),
        "technical": math.exp(-3.0),
    }
    total = sum(scores.values())
    assert response.label_probs is not None
    assert response.label_probs.keys() == set(TICKET_LABELS)
    for label, score in scores.items():
        assert response.label_probs[label] == pytest.approx(score / total, rel=1e-12)
    assert sum(response.label_probs.values()) == pytest.approx(1.0, rel=1e-12)


def test_label_probs_across_shared_prefix(fake_gemini: FakeGemini) -> None:
    fake_gemini.text = "card_linking"
    fake_gemini.tokens = [
        FakeToken("card", -0.05, {"card": -0.05, "Card": -3.2}),
        FakeToken("_link", -0.4, {"_link": -0.4, "_arr": -1.3, "_acc": -2.6}),
        FakeToken("ing", -0.01, {"ing": -0.01}),
    ]
    request = Request(messages=MESSAGES, candidates=CARD_LABELS)

    response = complete(make_provider(fake_gemini), request)

    assert response.token_logprobs is not None
    expected = label_probs_from_logprobs("card_linking", response.token_logprobs, CARD_LABELS)
    assert response.label_probs == expected
    assert response.label_probs is not None
    linking = math.exp(-0.05 - 0.4 - 0.01)
    arrival = math.exp(-0.05 - 1.3)
    acceptance = math.exp(-0.05 - 2.6)
    total = linking + arrival + acceptance
    assert response.label_probs["card_arrival"] == pytest.approx(arrival / total, rel=1e-12)


def test_candidates_without_logprobs_one_hot(fake_gemini: FakeGemini) -> None:
    fake_gemini.text = " Refund\n"
    fake_gemini.tokens = None  # the model sent no logprobsResult

    response = complete(
        make_provider(fake_gemini), Request(messages=MESSAGES, candidates=TICKET_LABELS)
    )

    assert response.token_logprobs is None
    assert response.label_probs == {"billing": 0.0, "refund": 1.0, "technical": 0.0}


def test_candidates_without_match_give_none(fake_gemini: FakeGemini) -> None:
    fake_gemini.text = "I am not sure"
    request = Request(messages=MESSAGES, candidates=TICKET_LABELS)

    without_logprobs = complete(make_provider(fake_gemini), request)
    fake_gemini.tokens = [FakeToken("I", -0.5, {"I": -0.5, "billing": -1.0})]
    with_logprobs = complete(make_provider(fake_gemini), request)

    assert without_logprobs.label_probs is None
    assert with_logprobs.token_logprobs is not None
    assert with_logprobs.label_probs is None


# Structured output


def test_json_schema_sent_as_response_json_schema(fake_gemini: FakeGemini) -> None:
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(TICKET_LABELS)}},
        "required": ["label"],
        "additionalProperties": False,
    }
    fake_gemini.text = '{"label": "refund"}'
    request = Request(messages=MESSAGES, json_schema=json.dumps(schema))

    response = complete(make_provider(fake_gemini), request)

    config = generation_config(fake_gemini)
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema
    assert "responseSchema" not in config
    assert json.loads(response.text) == {"label": "refund"}


def test_invalid_json_schema_rejected(fake_gemini: FakeGemini) -> None:
    request = Request(messages=MESSAGES, json_schema="{not json")

    with pytest.raises(UserInputError, match="invalid json_schema"):
        complete(make_provider(fake_gemini), request)

    assert fake_gemini.requests == []


# Cost


@pytest.mark.parametrize(
    ("model_id", "cached", "thoughts", "expected"),
    [
        # 600 uncached at $0.30/1M, 400 cached at $0.03/1M, 250 output at $2.50/1M.
        ("gemini-2.5-flash", 400, 50, Decimal("0.000817")),
        # 1000 input at $0.30/1M and 200 output at $2.50/1M.
        ("gemini-2.5-flash", 0, 0, Decimal("0.0008")),
        # 600 uncached at $0.10/1M, 400 cached at $0.01/1M, 250 output at $0.40/1M.
        ("gemini-2.5-flash-lite", 400, 50, Decimal("0.000164")),
        # 1000 input at $0.10/1M and 200 output at $0.40/1M.
        ("gemini-2.5-flash-lite", 0, 0, Decimal("0.00018")),
    ],
)
def test_cost_equals_genai_prices(
    fake_gemini: FakeGemini, model_id: str, cached: int, thoughts: int, expected: Decimal
) -> None:
    fake_gemini.usage = gemini_usage(1000, 200, cached_tokens=cached, thoughts_tokens=thoughts)

    response = complete(make_provider(fake_gemini, model_id=model_id))

    reference = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=1000, cache_read_tokens=cached, output_tokens=200 + thoughts
        ),
        model_id,
        provider_id="google",
        genai_request_timestamp=response.created_at,
    ).total_price
    assert response.cost is not None
    assert response.cost.amount == reference
    assert response.cost.amount == expected
    assert response.cost.priced_at == response.created_at
    assert response.cost.price.source == f"genai-prices {genai_prices.__version__}"


def test_cost_uses_model_version(fake_gemini: FakeGemini) -> None:
    fake_gemini.model_version = "gemini-2.5-flash-lite"
    fake_gemini.usage = gemini_usage(1000, 200)

    response = complete(make_provider(fake_gemini, model_id="house-alias"))

    assert response.model == "google:house-alias"
    assert response.cost is not None
    assert response.cost.amount == Decimal("0.00018")


def test_unpriced_model_warns_once(
    fake_gemini: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shoal")
    provider = make_provider(fake_gemini, model_id="gemini-unpriced-house-1")

    first = complete(provider)
    second = complete(provider)

    assert first.cost is None
    assert second.cost is None
    assert first.usage.input_tokens == 10
    warnings = [r for r in caplog.records if "gemini-unpriced-house-1" in r.getMessage()]
    assert len(warnings) == 1
    assert "no price" in warnings[0].getMessage()


def test_missing_usage_gives_no_cost(
    fake_gemini: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shoal")
    fake_gemini.usage = None

    response = complete(make_provider(fake_gemini, model_id="gemini-2.0-flash"))

    assert response.cost is None
    assert response.usage.input_tokens == 0
    assert "reported no usage" in caplog.text


# Configuration


def test_exported_constants() -> None:
    assert API_KEY_ENV == "GEMINI_API_KEY"
    assert BASE_URL_ENV == "GEMINI_BASE_URL"
    assert DEFAULT_BASE_URL == "https://generativelanguage.googleapis.com"


def test_key_and_base_url_from_env(
    fake_gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_BASE_URL", fake_gemini.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", fake_gemini.api_key)
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaOtherKeyThatMustNotBeUsed")

    response = complete(GeminiProvider("gemini-2.5-flash"))

    assert response.text == "ok"
    assert fake_gemini.requests[0].headers["x-goog-api-key"] == fake_gemini.api_key


def test_google_api_key_fallback(
    fake_gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_BASE_URL", fake_gemini.base_url)
    monkeypatch.setenv("GOOGLE_API_KEY", fake_gemini.api_key)

    response = complete(GeminiProvider("gemini-2.5-flash"))

    assert response.text == "ok"
    assert fake_gemini.requests[0].headers["x-goog-api-key"] == fake_gemini.api_key


def test_missing_key_rejected_before_request() -> None:
    with pytest.raises(UserInputError, match="GEMINI_API_KEY"):
        GeminiProvider("gemini-2.5-flash")


def test_other_base_url_without_key(fake_gemini: FakeGemini) -> None:
    provider = GeminiProvider("gemini-2.5-flash", base_url=fake_gemini.base_url)

    with pytest.raises(ProviderHTTPError) as info:
        complete(provider)

    assert "x-goog-api-key" not in fake_gemini.requests[0].headers
    assert info.value.status_code == 403
    assert "PERMISSION_DENIED" in str(info.value)


@pytest.mark.parametrize("model_id", ["", "models/gemini-2.5-flash", "gemini 2.5", "x?key=1"])
def test_invalid_model_id_rejected(model_id: str) -> None:
    with pytest.raises(UserInputError, match="invalid Gemini model id"):
        GeminiProvider(model_id, api_key="AIza-x")


def test_invalid_base_url_rejected() -> None:
    with pytest.raises(UserInputError, match="'generativelanguage.googleapis.com'"):
        GeminiProvider(
            "gemini-2.5-flash", base_url="generativelanguage.googleapis.com", api_key="AIza-x"
        )


def test_given_client_stays_open(fake_gemini: FakeGemini) -> None:
    async def run() -> tuple[Response, bool]:
        async with httpx.AsyncClient() as client:
            provider = make_provider(fake_gemini, client=client)
            response = await provider.complete(Request(messages=MESSAGES))
            return response, client.is_closed

    response, closed = asyncio.run(run())

    assert response.text == "ok"
    assert closed is False


def test_scored_text_rejected_without_request(fake_gemini: FakeGemini) -> None:
    request = Request(
        messages=(),
        candidates=TICKET_LABELS,
        candidate_prompts=("Label: billing\n", "Label: refund\n", "Label: technical\n"),
        scored_text="I was charged twice",
    )

    with pytest.raises(UserInputError, match="google:gemini-2.5-flash cannot score a text"):
        complete(make_provider(fake_gemini), request)

    assert fake_gemini.requests == []


# Errors


@pytest.mark.parametrize(
    ("status", "google_status", "message"),
    [
        (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
        (401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
        (403, "PERMISSION_DENIED", "The caller does not have permission"),
        (404, "NOT_FOUND", "models/gemini-0 is not found for API version v1beta"),
        (429, "RESOURCE_EXHAUSTED", "You exceeded your current quota."),
        (500, "INTERNAL", "An internal error has occurred."),
        (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    ],
)
def test_error_status_raises_http_error(
    fake_gemini: FakeGemini, status: int, google_status: str, message: str
) -> None:
    fake_gemini.error_status = status
    fake_gemini.error_body = gemini_error(status, google_status, message)
    fake_gemini.error_headers = {"Retry-After": "7"}

    with pytest.raises(ProviderHTTPError) as info:
        complete(make_provider(fake_gemini))

    error = info.value
    assert error.status_code == status
    assert error.retry_after_s == 7.0
    assert f"HTTP {status}" in str(error)
    assert message in str(error)
    assert f"[{google_status}]" in str(error)
    assert "\n" not in str(error)
    assert json.loads(error.body) == fake_gemini.error_body
    assert isinstance(error.__cause__, httpx.HTTPStatusError)


def test_retry_info_gives_retry_after(fake_gemini: FakeGemini) -> None:
    fake_gemini.error_status = 429
    fake_gemini.error_body = gemini_error(
        429, "RESOURCE_EXHAUSTED", "Quota exceeded.", [retry_info("31.5s")]
    )

    with pytest.raises(ProviderHTTPError) as info:
        complete(make_provider(fake_gemini))

    assert info.value.retry_after_s == 31.5
    assert "RESOURCE_EXHAUSTED" in str(info.value)


def test_retry_after_header_wins(fake_gemini: FakeGemini) -> None:
    fake_gemini.error_status = 429
    fake_gemini.error_body = gemini_error(
        429, "RESOURCE_EXHAUSTED", "Quota exceeded.", [retry_info("31s")]
    )
    fake_gemini.error_headers = {"Retry-After": "2"}

    with pytest.raises(ProviderHTTPError) as info:
        complete(make_provider(fake_gemini))

    assert info.value.retry_after_s == 2.0


def test_retry_delay_seconds_cases() -> None:
    assert retry_delay_seconds(json.dumps(gemini_error(429, "X", "m", [retry_info("0s")]))) == 0.0
    assert retry_delay_seconds(json.dumps(gemini_error(429, "X", "m"))) is None
    unreadable = gemini_error(429, "X", "m", [retry_info("soon")])
    assert retry_delay_seconds(json.dumps(unreadable)) is None
    assert retry_delay_seconds("not json") is None
    wrapped = json.dumps([gemini_error(429, "X", "m", [retry_info("4s")])])
    assert retry_delay_seconds(wrapped) == 4.0


def test_scripted_429_then_success(fake_gemini: FakeGemini) -> None:
    fake_gemini.script.append(
        FakeReply(
            429,
            gemini_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted."),
            {"Retry-After": "0"},
        )
    )
    fake_gemini.script.append(FakeReply())
    fake_gemini.text = "billing"
    provider = make_provider(fake_gemini)

    with pytest.raises(ProviderHTTPError) as info:
        complete(provider)
    response = complete(provider)

    assert info.value.status_code == 429
    assert info.value.retry_after_s == 0.0
    assert response.text == "billing"
    assert len(fake_gemini.requests) == 2
    assert not fake_gemini.script


def test_invalid_key_hidden_everywhere(
    fake_gemini: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_key = "AIzaWrongSecretKey999"
    provider = make_provider(fake_gemini, api_key=wrong_key)

    with pytest.raises(ProviderHTTPError) as info:
        complete(provider)

    error = info.value
    assert error.status_code == 400
    assert "API key not valid" in str(error)
    assert "INVALID_ARGUMENT, API_KEY_INVALID" in str(error)
    assert "check the API key in GEMINI_API_KEY" in str(error)
    # The fake quotes the key it was sent, so these checks exercise the redaction.
    assert fake_gemini.requests[0].headers["x-goog-api-key"] == wrong_key
    assert wrong_key not in fake_gemini.requests[0].path
    assert wrong_key not in str(error)
    assert wrong_key not in error.body
    assert "[redacted]" in error.body
    assert wrong_key not in caplog.text
    assert wrong_key not in repr(provider)


def test_key_absent_from_success_logs(
    fake_gemini: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    complete(make_provider(fake_gemini))

    assert caplog.records, "expected at least the provider's debug line"
    assert fake_gemini.api_key not in caplog.text


def test_timeout_raises_timeout_error(fake_gemini: FakeGemini) -> None:
    fake_gemini.delay_s = 3.0
    provider = make_provider(fake_gemini, timeout_s=0.2)
    started = time.perf_counter()

    with pytest.raises(ProviderTimeoutError, match="timed out after 0.2 s") as info:
        complete(provider)

    assert time.perf_counter() - started < 2.0
    assert isinstance(info.value.__cause__, httpx.TimeoutException)
    assert fake_gemini.api_key not in str(info.value)


def test_refused_connection_raises_connection_error() -> None:
    key = "AIzaRefusedConnectionKey"
    provider = GeminiProvider(
        "gemini-2.5-flash", base_url=f"http://127.0.0.1:{free_port()}", api_key=key
    )

    with pytest.raises(ProviderConnectionError, match="127.0.0.1") as info:
        complete(provider)

    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert key not in str(info.value)


def test_malformed_json_raises_format_error(fake_gemini: FakeGemini) -> None:
    fake_gemini.raw_body = b'{"candidates": ['

    with pytest.raises(ResponseFormatError, match="not JSON") as info:
        complete(make_provider(fake_gemini))

    assert isinstance(info.value.__cause__, ValueError)


def test_missing_candidates_raises_format_error(fake_gemini: FakeGemini) -> None:
    fake_gemini.raw_body = b'{"modelVersion": "gemini-2.5-flash", "candidates": []}'

    with pytest.raises(ResponseFormatError, match=r"candidates\[0\]"):
        complete(make_provider(fake_gemini))


@pytest.mark.parametrize(
    ("raw_body", "field"),
    [
        (b'{"candidates": [{"content": {"parts": [{"text": 5}]}}]}', r"parts\[0\]\.text"),
        (b'{"candidates": [{"content": {"parts": {}}}]}', "parts is not a list"),
        (b'{"candidates": [{"content": {}}], "usageMetadata": [1]}', "usageMetadata is list"),
        (
            (
                b'{"candidates": [{"logprobsResult": '
                b'{"chosenCandidates": [{"logProbability": "x"}]}}]}'
            ),
            "logProbability is 'x'",
        ),
        (
            b'{"candidates": [{}], "usageMetadata": {"promptTokenCount": -1}}',
            "promptTokenCount is -1",
        ),
    ],
)
def test_wrong_field_types_raise_format_error(
    fake_gemini: FakeGemini, raw_body: bytes, field: str
) -> None:
    fake_gemini.raw_body = raw_body

    with pytest.raises(ResponseFormatError, match=field):
        complete(make_provider(fake_gemini))


def test_cached_above_prompt_rejected(fake_gemini: FakeGemini) -> None:
    fake_gemini.usage = gemini_usage(100, 5, cached_tokens=400)

    with pytest.raises(
        ResponseFormatError, match="cachedContentTokenCount 400 exceeds promptTokenCount 100"
    ):
        complete(make_provider(fake_gemini))


@pytest.mark.parametrize("finish_reason", ["SAFETY", "RECITATION"])
def test_blocked_answer_raises_format_error(fake_gemini: FakeGemini, finish_reason: str) -> None:
    fake_gemini.text = None
    fake_gemini.finish_reason = finish_reason

    with pytest.raises(ResponseFormatError, match=f"finishReason {finish_reason}") as info:
        complete(make_provider(fake_gemini))

    assert "returned no text" in str(info.value)
    assert "Google blocked the response" in str(info.value)


def test_blocked_prompt_raises_format_error(fake_gemini: FakeGemini) -> None:
    fake_gemini.prompt_block_reason = "SAFETY"

    with pytest.raises(ResponseFormatError, match="blockReason SAFETY"):
        complete(make_provider(fake_gemini))


def test_safety_finish_with_text_kept(fake_gemini: FakeGemini) -> None:
    fake_gemini.text = "billing"
    fake_gemini.finish_reason = "SAFETY"

    assert complete(make_provider(fake_gemini)).text == "billing"
