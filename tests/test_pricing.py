"""Cost arithmetic: compute time at an hourly machine price, API tokens at genai-prices rates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import genai_prices
import pytest
from genai_prices import data_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.errors import PriceNotFoundError, UserInputError
from shoal.pricing import DEFAULT_MACHINE, PRICE_SOURCE, MachinePrice, api_cost, compute_cost
from shoal.pricing.api import _bundled_snapshot
from shoal.pricing.compute import machine_from_env, machine_price_override
from shoal.providers.base import Usage

PRICED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MILLION = Decimal(1_000_000)


def machine(usd_per_hour: str) -> MachinePrice:
    return MachinePrice(
        name="test box", usd_per_hour=Decimal(usd_per_hour), source="test", as_of=date(2026, 1, 1)
    )


# Compute time


def test_compute_cost_default_machine() -> None:
    cost = compute_cost(90.0, DEFAULT_MACHINE, PRICED_AT)

    # 90 s * $0.0816/h / 3600 s/h
    assert cost.amount == Decimal("0.00204")
    assert cost.priced_at == PRICED_AT
    assert cost.price.rates == f"$0.0816/hour ({DEFAULT_MACHINE.name})"
    assert cost.price.source == DEFAULT_MACHINE.source
    assert cost.price.valid_from == date(2026, 6, 17)


def test_compute_cost_fractional_seconds() -> None:
    assert compute_cost(1.5, machine("0.36"), PRICED_AT).amount == Decimal("0.00015")


def test_compute_cost_rounds_to_microseconds() -> None:
    # 1.2345678 s is charged as 1.234568 s.
    cost = compute_cost(1.2345678, machine("3.6"), PRICED_AT)

    assert cost.amount == Decimal("0.001234568")


def test_compute_cost_zero_seconds() -> None:
    cost = compute_cost(0.0, DEFAULT_MACHINE, PRICED_AT)

    assert cost.amount == Decimal(0)
    assert cost.price == DEFAULT_MACHINE.price()


def test_compute_cost_rejects_negative_seconds() -> None:
    with pytest.raises(ValueError, match="-0.5"):
        compute_cost(-0.5, DEFAULT_MACHINE, PRICED_AT)


def test_machine_override_valid() -> None:
    override = machine_price_override(" 0.25 ", source="--machine-price")

    assert override.usd_per_hour == Decimal("0.25")
    assert override.source == "--machine-price"
    assert compute_cost(3600.0, override, PRICED_AT).amount == Decimal("0.25")


def test_machine_override_zero_allowed() -> None:
    assert machine_price_override("0", source="test").usd_per_hour == Decimal(0)


@pytest.mark.parametrize("raw", ["abc", "", "-0.01", "NaN", "Infinity", "1,5"])
def test_machine_override_invalid(raw: str) -> None:
    with pytest.raises(UserInputError, match="invalid machine price") as info:
        machine_price_override(raw, source="test")

    assert repr(raw) in str(info.value)


def test_machine_price_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_MACHINE_USD_PER_HOUR", "0.5")

    from_env = machine_from_env()

    assert from_env.usd_per_hour == Decimal("0.5")
    assert "SHOAL_MACHINE_USD_PER_HOUR" in from_env.source
    assert compute_cost(72.0, from_env, PRICED_AT).amount == Decimal("0.01")


def test_machine_price_env_unset_or_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOAL_MACHINE_USD_PER_HOUR", raising=False)
    assert machine_from_env() is DEFAULT_MACHINE

    monkeypatch.setenv("SHOAL_MACHINE_USD_PER_HOUR", "  ")
    assert machine_from_env() is DEFAULT_MACHINE


def test_machine_price_env_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_MACHINE_USD_PER_HOUR", "cheap")

    with pytest.raises(UserInputError, match="'cheap'"):
        machine_from_env()


# API tokens


def test_api_cost_with_cache_reads() -> None:
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=400)

    cost = api_cost(usage, "openai", "gpt-4o-mini", PRICED_AT)

    # 600 uncached input at $0.15/1M, 400 cached at $0.075/1M, 200 output at $0.60/1M.
    by_hand = (
        600 * Decimal("0.15") + 400 * Decimal("0.075") + 200 * Decimal("0.60")
    ) / MILLION
    assert by_hand == Decimal("0.00024")
    assert cost.amount == by_hand


def test_api_cost_without_cache_reads() -> None:
    usage = Usage(input_tokens=1000, output_tokens=200)

    cost = api_cost(usage, "openai", "gpt-4o-mini", PRICED_AT)

    assert cost.amount == (1000 * Decimal("0.15") + 200 * Decimal("0.60")) / MILLION
    assert cost.amount == Decimal("0.00027")


def test_api_cost_with_cache_writes() -> None:
    usage = Usage(
        input_tokens=1000, output_tokens=100, cache_read_tokens=300, cache_write_tokens=200
    )

    cost = api_cost(usage, "anthropic", "claude-haiku-4-5", PRICED_AT)

    # 500 plain input at $1/1M, 300 cache reads at $0.10/1M, 200 cache writes at $1.25/1M,
    # 100 output at $5/1M.
    assert cost.amount == Decimal("0.00128")
    assert cost.price.rates == "$1/1M input, $0.1/1M cache read, $1.25/1M cache write, $5/1M output"


def test_api_cost_records_price() -> None:
    cost = api_cost(Usage(input_tokens=1000, output_tokens=200), "openai", "gpt-4o-mini", PRICED_AT)

    assert cost.price.rates == "$0.15/1M input, $0.075/1M cache read, $0.6/1M output"
    assert cost.price.source == f"genai-prices {genai_prices.__version__}"
    assert cost.price.source == PRICE_SOURCE
    assert cost.price.valid_from is None
    assert cost.priced_at == PRICED_AT
    assert cost.to_record() == {
        "usd": "0.00027",
        "rates": "$0.15/1M input, $0.075/1M cache read, $0.6/1M output",
        "source": PRICE_SOURCE,
        "valid_from": None,
        "priced_at": "2026-03-01T12:00:00+00:00",
    }


def test_api_cost_dated_price_boundary() -> None:
    # o3's price dropped from $10/$40 to $2/$8 per 1M tokens on 2025-06-10 (UTC).
    usage = Usage(input_tokens=1000, output_tokens=200)
    just_before = datetime(2025, 6, 9, 23, 59, 59, tzinfo=UTC)
    at_start = datetime(2025, 6, 10, 0, 0, tzinfo=UTC)
    # 01:00 at UTC+2 is still 9 June in UTC.
    before_in_utc = datetime(2025, 6, 10, 1, 0, tzinfo=timezone(timedelta(hours=2)))

    old = api_cost(usage, "openai", "o3", just_before)
    new = api_cost(usage, "openai", "o3", at_start)
    offset = api_cost(usage, "openai", "o3", before_in_utc)

    assert old.amount == Decimal("0.0180")
    assert old.price.valid_from is None
    assert new.amount == Decimal("0.0036")
    assert new.price.valid_from == date(2025, 6, 10)
    assert new.price.rates == "$2/1M input, $0.5/1M cache read, $8/1M output"
    assert offset.amount == old.amount


def test_api_cost_time_of_day_price() -> None:
    # DeepSeek charges more for requests sent between 00:30 and 16:30 UTC.
    usage = Usage(input_tokens=1_000_000)
    before_peak = datetime(2026, 3, 1, 0, 29, 59, tzinfo=UTC)
    peak_start = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
    peak_end = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)

    assert api_cost(usage, "deepseek", "deepseek-chat", before_peak).amount == Decimal("0.135")
    peak = api_cost(usage, "deepseek", "deepseek-chat", peak_start)
    assert peak.amount == Decimal("0.27")
    assert peak.price.rates.endswith("(requests sent 00:30-16:30 UTC)")
    assert api_cost(usage, "deepseek", "deepseek-chat", peak_end).amount == Decimal("0.135")


def test_api_cost_tier_threshold() -> None:
    # gemini-2.5-pro input costs $1.25/1M up to 200,000 input tokens and $2.50/1M for every
    # token of a request above that.
    def input_cost(tokens: int) -> Decimal:
        return api_cost(Usage(input_tokens=tokens), "google", "gemini-2.5-pro", PRICED_AT).amount

    assert input_cost(199_999) == Decimal("0.24999875")
    assert input_cost(200_000) == Decimal("0.25")
    assert input_cost(200_001) == Decimal("0.5000025")


def test_api_cost_tiers_described() -> None:
    cost = api_cost(Usage(input_tokens=10), "google", "gemini-2.5-pro", PRICED_AT)

    assert cost.price.rates.startswith("$1.25/1M input ($2.5 above 200,000 input tokens)")


def test_api_cost_matches_calc_price() -> None:
    usage = Usage(input_tokens=5000, output_tokens=700, cache_read_tokens=1200)

    cost = api_cost(usage, "openai", "gpt-5-mini", PRICED_AT)

    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=5000, output_tokens=700, cache_read_tokens=1200),
        "gpt-5-mini",
        provider_id="openai",
        genai_request_timestamp=PRICED_AT,
    )
    assert cost.amount == expected.total_price


def test_api_cost_ignores_fetched_snapshot() -> None:
    # A snapshot from genai-prices' updater (here an empty one) must not change shoal's prices.
    fetched = data_snapshot.DataSnapshot(providers=[], from_auto_update=True)
    data_snapshot.set_custom_snapshot(fetched)
    try:
        cost = api_cost(Usage(input_tokens=1000), "openai", "gpt-4o-mini", PRICED_AT)
    finally:
        data_snapshot.set_custom_snapshot(None)

    assert cost.amount == Decimal("0.00015")


def test_unknown_model_error_message() -> None:
    with pytest.raises(PriceNotFoundError) as info:
        api_cost(Usage(input_tokens=1), "openai", "gpt-9000-ultra", PRICED_AT)

    message = str(info.value)
    assert isinstance(info.value, UserInputError)
    assert "openai:gpt-9000-ultra" in message
    assert "check the model id" in message
    assert "\n" not in message
    assert isinstance(info.value.__cause__, LookupError)


def test_unknown_provider_lists_ids() -> None:
    with pytest.raises(PriceNotFoundError, match="acme:model-x") as info:
        api_cost(Usage(input_tokens=1), "acme", "model-x", PRICED_AT)

    assert "provider ids: anthropic," in str(info.value)
    assert "openai" in str(info.value)


def test_naive_timestamp_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        api_cost(Usage(input_tokens=1), "openai", "gpt-4o-mini", datetime(2026, 3, 1, 12, 0))


# The per-token rates shoal reads from a price give genai-prices' own amounts exactly.

_SNAPSHOT = _bundled_snapshot()
_PROVIDERS = ("openai", "anthropic", "google", "mistral", "deepseek", "groq", "together")
_MODELS = [
    (provider.id, model.id)
    for provider in _SNAPSHOT.providers
    if provider.id in _PROVIDERS
    for model in provider.models
]


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(_MODELS),
    tokens=st.tuples(*(st.integers(0, 400_000) for _ in range(4))),
    hour=st.integers(0, 23),
    day=st.dates(date(2024, 1, 1), date(2026, 12, 31)),
)
def test_fast_rates_match_genai_prices(
    model: tuple[str, str], tokens: tuple[int, int, int, int], hour: int, day: date
) -> None:
    provider_id, model_id = model
    cache_read, cache_write, uncached, output = tokens
    at = datetime(day.year, day.month, day.day, hour, 30, tzinfo=UTC)
    usage = Usage(
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=output,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
    gp_usage = genai_prices.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=output,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
    try:
        expected = _SNAPSHOT.calc(gp_usage, model_id, provider_id, None, at).total_price
    except (LookupError, ValueError):
        return  # genai-prices cannot price this usage for the model, so there is nothing to match

    assert api_cost(usage, provider_id, model_id, at).amount == expected
