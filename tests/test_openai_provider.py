"""OpenAICompatProvider against a real HTTP fake of the Chat Completions API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from fake_openai import FakeOpenAI, FakeToken, openai_error, openai_usage

from shoal.errors import (
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderTimeoutError,
    ResponseFormatError,
    UserInputError,
)
from shoal.providers.base import Message, Request, Response, TokenLogprob
from shoal.providers.openai_compat import (
    OpenAICompatProvider,
    label_probs_from_logprobs,
    token_limit_field,
)

MESSAGES = (Message("system", "Classify the ticket."), Message("user", "I was charged twice"))
TICKET_LABELS = ("billing", "refund", "technical")
CARD_LABELS = ("card_arrival", "card_linking", "card_acceptance")


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


def make_provider(
    fake: FakeOpenAI, model_id: str = "gpt-4o-mini", **kwargs: object
) -> OpenAICompatProvider:
    options: dict[str, object] = {"base_url": fake.base_url, "api_key": fake.api_key}
    options.update(kwargs)
    return OpenAICompatProvider(model_id, **options)  # type: ignore[arg-type]


def complete(provider: OpenAICompatProvider, request: Request | None = None) -> Response:
    return asyncio.run(provider.complete(request or Request(messages=MESSAGES)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# Text, usage and the request sent


def test_text_and_usage_mapped(fake_openai: FakeOpenAI) -> None:
    fake_openai.content = "billing"
    fake_openai.usage = openai_usage(1000, 200, cached_tokens=400, reasoning_tokens=50)
    before = datetime.now(UTC)

    response = complete(make_provider(fake_openai))

    assert response.model == "openai:gpt-4o-mini"
    assert response.text == "billing"
    assert response.usage.input_tokens == 1000
    assert response.usage.cache_read_tokens == 400
    assert response.usage.cache_write_tokens == 0
    # completion_tokens already counts the 50 reasoning tokens.
    assert response.usage.output_tokens == 200
    assert response.latency_s > 0
    assert response.created_at.tzinfo == UTC
    assert before <= response.created_at <= datetime.now(UTC)
    assert response.token_logprobs is None
    assert response.label_probs is None


def test_request_body_and_bearer_key(fake_openai: FakeOpenAI) -> None:
    request = Request(messages=MESSAGES, max_tokens=64, temperature=0.5)

    complete(make_provider(fake_openai), request)

    [received] = fake_openai.requests
    assert received.path == "/v1/chat/completions"
    assert received.headers["Authorization"] == f"Bearer {fake_openai.api_key}"
    assert received.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Classify the ticket."},
            {"role": "user", "content": "I was charged twice"},
        ],
        "max_tokens": 64,
        "temperature": 0.5,
    }


def test_null_content_gives_empty_text(fake_openai: FakeOpenAI) -> None:
    fake_openai.content = None

    assert complete(make_provider(fake_openai)).text == ""


def test_token_limit_field_per_host() -> None:
    assert token_limit_field("https://api.openai.com/v1") == "max_completion_tokens"
    assert token_limit_field("https://api.openai.com/v1/") == "max_completion_tokens"
    assert token_limit_field("http://127.0.0.1:8000/v1") == "max_tokens"


# Token log-probabilities


def test_logprobs_mapped_to_tokens(fake_openai: FakeOpenAI) -> None:
    fake_openai.content = "refund"
    fake_openai.tokens = [
        FakeToken("ref", -0.25, {"ref": -0.25, "bill": -1.5, "tech": -3.0}),
        FakeToken("und", -0.01, {"und": -0.01, "unds": -5.0}),
    ]
    request = Request(messages=MESSAGES, logprobs=True, top_logprobs=2)

    response = complete(make_provider(fake_openai), request)

    assert fake_openai.requests[0].body["logprobs"] is True
    assert fake_openai.requests[0].body["top_logprobs"] == 2
    assert response.token_logprobs == [
        TokenLogprob("ref", -0.25, {"ref": -0.25, "bill": -1.5}),
        TokenLogprob("und", -0.01, {"und": -0.01, "unds": -5.0}),
    ]
    assert response.label_probs is None


def test_candidates_request_twenty_alternatives(fake_openai: FakeOpenAI) -> None:
    fake_openai.content = "billing"
    fake_openai.tokens = [FakeToken("billing", -0.1, {"billing": -0.1})]

    complete(make_provider(fake_openai), Request(messages=MESSAGES, candidates=TICKET_LABELS))

    body = fake_openai.requests[0].body
    assert body["logprobs"] is True
    assert body["top_logprobs"] == 20


def test_candidates_get_label_probs(fake_openai: FakeOpenAI) -> None:
    fake_openai.content = "billing"
    fake_openai.tokens = [
        FakeToken(
            "billing",
            -0.1,
            # "Ref" also identifies refund; "the" is a prefix of no label.
            {"billing": -0.1, "refund": -2.5, "Ref": -4.0, "tech": -3.0, "the": -5.0},
        )
    ]

    request = Request(messages=MESSAGES, candidates=TICKET_LABELS)

    response = complete(make_provider(fake_openai), request)

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


def test_label_probs_shared_prefixes() -> None:
    tokens = [
        # "Card" starts all three labels, so it is evidence for none of them.
        TokenLogprob("card", -0.05, {"card": -0.05, "Card": -3.2, "transfer": -4.0}),
        # "_" also starts all three labels.
        TokenLogprob("_link", -0.4, {"_link": -0.4, "_arr": -1.3, "_acc": -2.6, "_": -3.0}),
        TokenLogprob("ing", -0.01, {"ing": -0.01, "ed": -5.0}),
    ]

    probs = label_probs_from_logprobs("card_linking", tokens, CARD_LABELS)

    scores = {
        "card_linking": math.exp(-0.05 - 0.4 - 0.01),
        "card_arrival": math.exp(-0.05 - 1.3),
        "card_acceptance": math.exp(-0.05 - 2.6),
    }
    total = sum(scores.values())
    assert probs is not None
    assert list(probs) == list(CARD_LABELS)
    for label, score in scores.items():
        assert probs[label] == pytest.approx(score / total, rel=1e-12)


def test_label_probs_ambiguous_alternatives_ignored() -> None:
    tokens = [
        TokenLogprob("card", -0.2, {"card": -0.2, "Card": -1.0}),
        TokenLogprob("_arrival", -0.1, {"_arrival": -0.1}),
    ]

    probs = label_probs_from_logprobs("card_arrival", tokens, CARD_LABELS)

    assert probs == {"card_arrival": 1.0, "card_linking": 0.0, "card_acceptance": 0.0}


def test_label_probs_match_after_strip_casefold() -> None:
    tokens = [
        TokenLogprob(" ", -0.01, {" ": -0.01}),
        TokenLogprob("Refund", -0.3, {"Refund": -0.3, "Billing": -1.4}),
        TokenLogprob("\n", -0.02, {"\n": -0.02}),
    ]

    probs = label_probs_from_logprobs(" Refund\n", tokens, TICKET_LABELS)

    refund = math.exp(-0.01 - 0.3 - 0.02)
    billing = math.exp(-0.01 - 1.4)
    assert probs is not None
    assert probs["refund"] == pytest.approx(refund / (refund + billing), rel=1e-12)
    assert probs["billing"] == pytest.approx(billing / (refund + billing), rel=1e-12)
    assert probs["technical"] == 0.0


def test_label_probs_none_without_evidence() -> None:
    tokens = [TokenLogprob("billing", -0.1, {"billing": -0.1})]

    assert label_probs_from_logprobs("billing", None, TICKET_LABELS) is None
    assert label_probs_from_logprobs("billing", [], TICKET_LABELS) is None
    assert label_probs_from_logprobs("billing issue", tokens, TICKET_LABELS) is None
    underflow = [TokenLogprob("billing", -1e6, {"billing": -1e6})]
    assert label_probs_from_logprobs("billing", underflow, TICKET_LABELS) is None


def test_label_probs_reject_duplicate_candidates() -> None:
    tokens = [TokenLogprob("billing", -0.1, {})]

    with pytest.raises(ValueError, match="'billing' and 'Billing '"):
        label_probs_from_logprobs("billing", tokens, ("billing", "Billing "))


FRAGMENTS = (
    "card", "Card", "_", "_arr", "ival", "_link", "ing", "bill", "billing", "ref", "und", " "
)
LOGPROBS = st.floats(min_value=-30.0, max_value=0.0)
TOKENS = st.lists(
    st.builds(
        TokenLogprob,
        st.sampled_from(FRAGMENTS),
        LOGPROBS,
        st.dictionaries(st.sampled_from(FRAGMENTS), LOGPROBS, max_size=6),
    ),
    min_size=1,
    max_size=4,
)


@given(TOKENS)
def test_label_probs_form_distribution(tokens: list[TokenLogprob]) -> None:
    labels = CARD_LABELS + TICKET_LABELS
    text = "".join(t.token for t in tokens)

    probs = label_probs_from_logprobs(text, tokens, labels)

    if text.strip().casefold() not in labels:
        assert probs is None
        return
    assert probs is not None
    assert list(probs) == list(labels)
    assert all(p >= 0.0 for p in probs.values())
    assert math.fsum(probs.values()) == pytest.approx(1.0, rel=1e-12)
    assert probs[text.strip().casefold()] > 0.0


def test_candidates_without_match_give_none(fake_openai: FakeOpenAI) -> None:
    fake_openai.content = "I am not sure"
    fake_openai.tokens = [FakeToken("I", -0.5, {"I": -0.5, "billing": -1.0})]
    request = Request(messages=MESSAGES, candidates=TICKET_LABELS)

    response = complete(make_provider(fake_openai), request)

    assert response.token_logprobs is not None
    assert response.label_probs is None


# Cost


def test_cost_equals_genai_prices(fake_openai: FakeOpenAI) -> None:
    fake_openai.usage = openai_usage(1000, 200, cached_tokens=400, reasoning_tokens=50)

    response = complete(make_provider(fake_openai))

    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, cache_read_tokens=400, output_tokens=200),
        "gpt-4o-mini",
        provider_id="openai",
        genai_request_timestamp=response.created_at,
    ).total_price
    assert response.cost is not None
    assert response.cost.amount == expected
    # 600 uncached at $0.15/1M, 400 cached at $0.075/1M and 200 output at $0.60/1M.
    assert response.cost.amount == Decimal("0.00024")
    assert response.cost.priced_at == response.created_at
    assert response.cost.price.source == f"genai-prices {genai_prices.__version__}"


def test_cost_uses_served_model_id(fake_openai: FakeOpenAI) -> None:
    fake_openai.model = "gpt-4o-mini-2024-07-18"
    fake_openai.usage = openai_usage(1000, 200)

    response = complete(make_provider(fake_openai, model_id="house-alias"))

    assert response.cost is not None
    assert response.cost.amount == Decimal("0.00027")


def test_unpriced_model_warns_once(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shoal")
    provider = make_provider(fake_openai, model_id="unpriced-house-model-1")

    first = complete(provider)
    second = complete(provider)

    assert first.cost is None
    assert second.cost is None
    assert first.usage.input_tokens == 10
    warnings = [r for r in caplog.records if "unpriced-house-model-1" in r.getMessage()]
    assert len(warnings) == 1
    assert "no price" in warnings[0].getMessage()


def test_missing_usage_gives_no_cost(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shoal")
    fake_openai.usage = None

    response = complete(make_provider(fake_openai, model_id="gpt-4.1-nano"))

    assert response.cost is None
    assert response.usage.input_tokens == 0
    assert "reported no usage" in caplog.text


# Configuration


def test_key_and_base_url_from_env(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key)

    response = complete(OpenAICompatProvider("gpt-4o-mini"))

    assert response.text == "ok"
    assert fake_openai.requests[0].headers["Authorization"] == f"Bearer {fake_openai.api_key}"


def test_missing_key_rejected_before_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    with pytest.raises(UserInputError, match="OPENAI_API_KEY"):
        OpenAICompatProvider("gpt-4o-mini")


def test_other_provider_ignores_openai_key(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-only-secret")
    provider = OpenAICompatProvider("llama-3", base_url=fake_openai.base_url, provider_id="vllm")

    with pytest.raises(ProviderHTTPError):
        complete(provider)

    assert provider.model == "vllm:llama-3"
    assert "Authorization" not in fake_openai.requests[0].headers


def test_invalid_base_url_rejected() -> None:
    with pytest.raises(UserInputError, match="'api.openai.com/v1'"):
        OpenAICompatProvider("gpt-4o-mini", base_url="api.openai.com/v1", api_key="sk-x")


def test_given_client_stays_open(fake_openai: FakeOpenAI) -> None:
    async def run() -> tuple[Response, bool]:
        async with httpx.AsyncClient() as client:
            provider = make_provider(fake_openai, client=client)
            response = await provider.complete(Request(messages=MESSAGES))
            return response, client.is_closed

    response, closed = asyncio.run(run())

    assert response.text == "ok"
    assert closed is False


# Errors


def test_unauthorized_hides_key(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_key = "sk-wrong-secret-key-999"
    provider = make_provider(fake_openai, api_key=wrong_key)

    with pytest.raises(ProviderHTTPError) as info:
        complete(provider)

    error = info.value
    assert error.status_code == 401
    assert "Incorrect API key provided" in str(error)
    assert "check the API key" in str(error)
    assert isinstance(error.__cause__, httpx.HTTPStatusError)
    # The fake echoes the key it was sent, so these checks exercise the redaction.
    assert fake_openai.requests[0].headers["Authorization"] == f"Bearer {wrong_key}"
    assert wrong_key not in str(error)
    assert wrong_key not in error.body
    assert wrong_key not in caplog.text
    assert wrong_key not in repr(provider)


def test_server_error_keeps_body(fake_openai: FakeOpenAI) -> None:
    fake_openai.error_status = 500
    fake_openai.error_body = openai_error(
        "The server had an error while processing your request.", "server_error"
    )

    with pytest.raises(ProviderHTTPError) as info:
        complete(make_provider(fake_openai))

    assert info.value.status_code == 500
    assert "HTTP 500" in str(info.value)
    assert "The server had an error while processing your request." in str(info.value)
    assert json.loads(info.value.body) == fake_openai.error_body


def test_timeout_raises_timeout_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.delay_s = 3.0
    provider = make_provider(fake_openai, timeout_s=0.2)
    started = time.perf_counter()

    with pytest.raises(ProviderTimeoutError, match="timed out after 0.2 s") as info:
        complete(provider)

    assert time.perf_counter() - started < 2.0
    assert isinstance(info.value.__cause__, httpx.TimeoutException)


def test_refused_connection_raises_connection_error() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    provider = OpenAICompatProvider("gpt-4o-mini", base_url=base_url, api_key="sk-x")

    with pytest.raises(ProviderConnectionError, match="127.0.0.1") as info:
        complete(provider)

    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_malformed_json_raises_format_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.raw_body = b'{"choices": ['

    with pytest.raises(ResponseFormatError, match="not JSON") as info:
        complete(make_provider(fake_openai))

    assert isinstance(info.value.__cause__, ValueError)


def test_missing_choices_raises_format_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.raw_body = b'{"object": "chat.completion", "choices": []}'

    with pytest.raises(ResponseFormatError, match=r"choices\[0\]"):
        complete(make_provider(fake_openai))


def test_cached_above_prompt_rejected(fake_openai: FakeOpenAI) -> None:
    fake_openai.usage = openai_usage(100, 5, cached_tokens=400)

    with pytest.raises(ResponseFormatError, match="cached_tokens 400 exceeds prompt_tokens 100"):
        complete(make_provider(fake_openai))
