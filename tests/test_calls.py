"""The shared call layer over real HTTP: retries, limits, the budget and the response cache."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, ScriptedError, openai_error, openai_usage

import shoal.calls.guarded as guarded_module
from shoal.calls import Budget, CachedProvider, CallLimits, GuardedProvider, ResponseCache, RetryPolicy
from shoal.calls.estimate import estimate_input_tokens
from shoal.calls.retry import RETRY_STATUSES
from shoal.errors import (
    BudgetExceededError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderTimeoutError,
)
from shoal.pricing import api_cost
from shoal.providers.base import Message, Request, Usage
from shoal.providers.openai_compat import OpenAICompatProvider

REQUEST = Request(messages=(Message("user", "Where is my card?"),), max_tokens=5)
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.02)


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the retry delays instead of waiting them out."""
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(guarded_module, "_sleep", record)
    return recorded


def openai_provider(fake: FakeOpenAI, **options: object) -> OpenAICompatProvider:
    return OpenAICompatProvider(
        "gpt-4o-mini", base_url=fake.base_url, api_key=fake.api_key, **options  # type: ignore[arg-type]
    )


def scripted(status: int, retry_after: str | None = None) -> ScriptedError:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return ScriptedError(status, openai_error(f"status {status}", "server_error"), headers)


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


# Retries


def test_retries_429_then_503_succeed(fake_openai: FakeOpenAI, delays: list[float]) -> None:
    fake_openai.script.extend([scripted(429, "2"), scripted(503)])
    provider = GuardedProvider(openai_provider(fake_openai), retry=FAST_RETRY)

    response = run(provider.complete(REQUEST))

    assert response.text == "ok"
    assert response.attempts == 3
    assert len(fake_openai.requests) == 3
    assert len(delays) == 2
    assert delays[0] >= 2.0  # the Retry-After of the 429
    assert 0.0 <= delays[1] <= 0.02


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_not_retried(
    fake_openai: FakeOpenAI, delays: list[float], status: int
) -> None:
    fake_openai.script.append(scripted(status))
    provider = GuardedProvider(openai_provider(fake_openai), retry=FAST_RETRY)

    with pytest.raises(ProviderHTTPError) as caught:
        run(provider.complete(REQUEST))

    assert caught.value.status_code == status
    assert len(fake_openai.requests) == 1
    assert delays == []


def test_retries_stop_after_max_attempts(fake_openai: FakeOpenAI, delays: list[float]) -> None:
    fake_openai.script.extend([scripted(500) for _ in range(6)])
    provider = GuardedProvider(openai_provider(fake_openai), retry=FAST_RETRY)

    with pytest.raises(ProviderHTTPError) as caught:
        run(provider.complete(REQUEST))

    assert caught.value.status_code == 500
    assert isinstance(caught.value.__cause__, Exception)  # httpx's error is kept
    assert len(fake_openai.requests) == FAST_RETRY.max_attempts
    assert len(delays) == FAST_RETRY.max_attempts - 1


def test_long_retry_after_stops_retrying(fake_openai: FakeOpenAI, delays: list[float]) -> None:
    fake_openai.script.append(scripted(429, "3600"))
    provider = GuardedProvider(openai_provider(fake_openai), retry=FAST_RETRY)

    with pytest.raises(ProviderHTTPError) as caught:
        run(provider.complete(REQUEST))

    assert caught.value.retry_after_s == 3600.0
    assert len(fake_openai.requests) == 1


def test_timeout_becomes_timeout_error(fake_openai: FakeOpenAI, delays: list[float]) -> None:
    fake_openai.delay_s = 2.0
    policy = RetryPolicy(max_attempts=2, base_delay_s=0.0)
    provider = GuardedProvider(openai_provider(fake_openai, timeout_s=0.2), retry=policy)

    with pytest.raises(ProviderTimeoutError, match="timed out"):
        run(provider.complete(REQUEST))

    assert len(fake_openai.requests) == 2
    assert len(delays) == 1


def test_refused_connection_retried_then_raised(delays: list[float]) -> None:
    provider = OpenAICompatProvider(
        "gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key="sk-unused-0123456789"
    )
    guarded = GuardedProvider(provider, retry=RetryPolicy(max_attempts=3, base_delay_s=0.0))

    with pytest.raises(ProviderConnectionError):
        run(guarded.complete(REQUEST))

    assert len(delays) == 2


def test_retry_policy_statuses() -> None:
    policy = RetryPolicy()
    for status in RETRY_STATUSES:
        assert policy.is_retryable(ProviderHTTPError("x", status))
    for status in (400, 401, 403, 404, 422):
        assert not policy.is_retryable(ProviderHTTPError("x", status))
    assert policy.delay_s(policy.max_attempts, ProviderHTTPError("x", 503)) is None


def test_key_absent_from_logs_and_errors(
    fake_openai: FakeOpenAI, delays: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "sk-wrong-key-that-must-not-leak-42"
    provider = GuardedProvider(
        OpenAICompatProvider("gpt-4o-mini", base_url=fake_openai.base_url, api_key=wrong_key),
        retry=FAST_RETRY,
    )

    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderHTTPError) as caught:
        run(provider.complete(REQUEST))

    assert caught.value.status_code == 401
    assert wrong_key in fake_openai.requests[-1].headers["Authorization"]
    assert wrong_key not in str(caught.value)
    assert wrong_key not in caught.value.body
    assert "[redacted]" in caught.value.body
    assert caplog.records
    assert all(wrong_key not in record.getMessage() for record in caplog.records)


# Limits


def test_concurrency_limit_holds() -> None:
    class SlowProvider:
        model = "fake:slow"

        def __init__(self) -> None:
            self.running = 0
            self.most_running = 0

        async def complete(self, request: Request) -> object:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            await asyncio.sleep(0.01)
            self.running -= 1
            return _free_response(self.model)

    slow = SlowProvider()
    provider = GuardedProvider(slow, limits=CallLimits(max_concurrency=3))  # type: ignore[arg-type]

    async def many() -> None:
        await asyncio.gather(*(provider.complete(REQUEST) for _ in range(20)))

    run(many())

    assert slow.most_running == 3


def test_rate_limit_waits_for_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    import shoal.calls.limits as limits_module

    clock = [1000.0]
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(limits_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(limits_module.asyncio, "sleep", fake_sleep)
    limiter = limits_module.RateLimiter(CallLimits(requests_per_minute=60, tokens_per_minute=600))

    async def acquire_all() -> None:
        for _ in range(3):
            await limiter.acquire(300)

    run(acquire_all())

    # 600 tokens a minute: the first two requests of 300 pass, the third waits 30 s of refill.
    assert waits == [pytest.approx(30.0)]


# Budget


def _free_response(model: str):  # type: ignore[no-untyped-def]
    from shoal.providers.base import Response

    return Response(model=model, text="ok", usage=Usage(), latency_s=0.0,
                    created_at=datetime.now(UTC), cost=None)


def test_budget_stops_before_sending(fake_openai: FakeOpenAI) -> None:
    budget = Budget(Decimal("0.000001"))
    provider = GuardedProvider(openai_provider(fake_openai), budget=budget)

    with pytest.raises(BudgetExceededError, match="--max-cost"):
        run(provider.complete(REQUEST))

    assert fake_openai.requests == []
    assert budget.spent == 0
    assert budget.reserved == 0


def test_budget_settles_real_cost(fake_openai: FakeOpenAI, delays: list[float]) -> None:
    fake_openai.usage = openai_usage(40, 3)
    fake_openai.script.append(scripted(503))
    budget = Budget(Decimal("1"))
    provider = GuardedProvider(openai_provider(fake_openai), budget=budget, retry=FAST_RETRY)

    response = run(provider.complete(REQUEST))

    assert response.cost is not None
    assert budget.spent == response.cost.amount
    assert budget.spent == Decimal("0.0000078")  # 40 x $0.15/1M + 3 x $0.60/1M
    assert budget.reserved == 0


def test_budget_reservation_bounds_cost() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    from shoal.calls.estimate import CostBound

    class Priced:
        model = "openai:gpt-4o-mini"
        model_id = "gpt-4o-mini"
        price_provider_id = "openai"

    bound = CostBound(Priced())(REQUEST, at)

    tokens = estimate_input_tokens(REQUEST)
    assert tokens >= len("Where is my card?") // 3
    expected = api_cost(Usage(input_tokens=tokens, output_tokens=5), "openai", "gpt-4o-mini", at)
    assert bound == expected.amount


def test_budget_rejects_bad_cap() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        Budget("-1")


# Response cache


def test_cache_answers_repeat_for_free(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.usage = openai_usage(40, 3)
    cache = ResponseCache(tmp_path / "responses.sqlite")
    provider = CachedProvider(GuardedProvider(openai_provider(fake_openai)), cache)

    first = run(provider.complete(REQUEST))
    second = run(provider.complete(REQUEST))

    assert len(fake_openai.requests) == 1
    assert first.cached is False
    assert first.cost is not None and first.cost.amount > 0
    assert second.cached is True
    assert second.text == first.text
    assert second.usage == first.usage
    assert second.cost is not None
    assert second.cost.amount == 0
    assert "cache" in second.cost.price.source


def test_cache_persists_and_misses_other_requests(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    path = tmp_path / "responses.sqlite"
    run(CachedProvider(openai_provider(fake_openai), ResponseCache(path)).complete(REQUEST))

    reopened = CachedProvider(openai_provider(fake_openai), ResponseCache(path))
    again = run(reopened.complete(REQUEST))
    other = run(reopened.complete(Request(messages=REQUEST.messages, max_tokens=6)))

    assert again.cached is True
    assert other.cached is False
    assert len(fake_openai.requests) == 2
    assert fake_openai.api_key.encode() not in path.read_bytes()


def test_cache_skips_budget(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "responses.sqlite")
    run(CachedProvider(openai_provider(fake_openai), cache).complete(REQUEST))
    budget = Budget(Decimal(0))
    provider = CachedProvider(GuardedProvider(openai_provider(fake_openai), budget=budget), cache)

    response = run(provider.complete(REQUEST))

    assert response.cached is True
    assert budget.spent == 0


# The same retry rules for the Anthropic and Gemini wire formats


def test_anthropic_retries_429_and_529(fake_anthropic, delays: list[float]) -> None:  # type: ignore[no-untyped-def]
    from fake_anthropic import error_reply

    from shoal.providers.anthropic import AnthropicProvider

    fake_anthropic.script.extend([error_reply(429, retry_after="1"), error_reply(529)])
    provider = GuardedProvider(
        AnthropicProvider(
            "claude-haiku-4-5", base_url=fake_anthropic.base_url, api_key=fake_anthropic.api_key
        ),
        retry=FAST_RETRY,
    )

    response = run(provider.complete(REQUEST))

    assert response.attempts == 3
    assert len(fake_anthropic.requests) == 3
    assert delays[0] >= 1.0
    assert response.cost is not None


@pytest.mark.parametrize("status", [400, 401])
def test_anthropic_client_error_not_retried(fake_anthropic, delays: list[float], status: int) -> None:  # type: ignore[no-untyped-def]
    from fake_anthropic import error_reply

    from shoal.providers.anthropic import AnthropicProvider

    fake_anthropic.script.append(error_reply(status))
    provider = GuardedProvider(
        AnthropicProvider(
            "claude-haiku-4-5", base_url=fake_anthropic.base_url, api_key=fake_anthropic.api_key
        ),
        retry=FAST_RETRY,
    )

    with pytest.raises(ProviderHTTPError):
        run(provider.complete(REQUEST))

    assert len(fake_anthropic.requests) == 1
    assert delays == []


def test_gemini_retries_429_and_503(fake_gemini, delays: list[float]) -> None:  # type: ignore[no-untyped-def]
    from fake_gemini import FakeReply, gemini_error, retry_info

    from shoal.providers.gemini import GeminiProvider

    fake_gemini.script.extend([
        FakeReply(429, gemini_error(429, "RESOURCE_EXHAUSTED", "quota", [retry_info("2s")])),
        FakeReply(503, gemini_error(503, "UNAVAILABLE", "overloaded")),
    ])
    provider = GuardedProvider(
        GeminiProvider(
            "gemini-2.5-flash", base_url=fake_gemini.base_url, api_key=fake_gemini.api_key
        ),
        retry=FAST_RETRY,
    )

    response = run(provider.complete(REQUEST))

    assert response.attempts == 3
    assert len(fake_gemini.requests) == 3
    assert delays[0] >= 2.0  # the RetryInfo delay of the 429 body
    assert response.cost is not None


def test_gemini_bad_request_not_retried(fake_gemini, delays: list[float]) -> None:  # type: ignore[no-untyped-def]
    from fake_gemini import FakeReply, gemini_error

    from shoal.providers.gemini import GeminiProvider

    fake_gemini.script.append(FakeReply(400, gemini_error(400, "INVALID_ARGUMENT", "bad")))
    provider = GuardedProvider(
        GeminiProvider(
            "gemini-2.5-flash", base_url=fake_gemini.base_url, api_key=fake_gemini.api_key
        ),
        retry=FAST_RETRY,
    )

    with pytest.raises(ProviderHTTPError) as caught:
        run(provider.complete(REQUEST))

    assert caught.value.status_code == 400
    assert len(fake_gemini.requests) == 1


def test_prices_file_prices_self_hosted_calls(
    fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "models:\n"
        "  - model: vllm:qwen2.5-7b-instruct\n"
        "    input_usd_per_1m: 0.02\n"
        "    output_usd_per_1m: 0.04\n"
        "    cache_read_usd_per_1m: 0.01\n"
        "    price_date: 2026-12-01\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SHOAL_PRICES", str(prices))
    fake_openai.usage = openai_usage(1000, 50, cached_tokens=400)
    provider = OpenAICompatProvider(
        "qwen2.5-7b-instruct",
        base_url=fake_openai.base_url,
        api_key=fake_openai.api_key,
        provider_id="vllm",
    )

    response = run(provider.complete(REQUEST))

    assert response.cost is not None
    # 600 uncached x $0.02/1M + 400 cached x $0.01/1M + 50 output x $0.04/1M
    assert response.cost.amount == Decimal("0.000018")
    assert str(prices) in response.cost.price.source
    assert response.cost.price.valid_from == datetime(2026, 12, 1).date()
