"""Cost of API calls, priced with the data bundled in genai-prices.

Only the snapshot shipped inside the installed genai-prices wheel is read. shoal never starts
genai-prices' `UpdatePrices` background fetch, and a fetch that another library in the same process
started is ignored, so every cost is reproducible from the pinned package version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import genai_prices
from genai_prices import data_snapshot
from genai_prices import types as gp_types

from shoal.errors import PriceNotFoundError
from shoal.pricing.money import Cost, Price

if TYPE_CHECKING:
    # Type-only: pricing sits below providers, so it must not import them at runtime.
    from shoal.providers.base import Usage

PRICE_SOURCE = f"genai-prices {genai_prices.__version__}"

# Token price keys of genai-prices' unit registry, in the order the rates are written out.
_TOKEN_RATE_NAMES = (
    ("input_mtok", "input"),
    ("cache_read_mtok", "cache read"),
    ("cache_write_mtok", "cache write"),
    ("output_mtok", "output"),
)


def api_cost(usage: Usage, provider_id: str, model_id: str, priced_at: datetime) -> Cost:
    """Price one API call's token usage at the rates in force at `priced_at`.

    `provider_id` is a genai-prices provider id such as "openai", "anthropic" or "groq", and
    `priced_at` is the timezone-aware time the request was sent, because dated prices and
    time-of-day prices (DeepSeek's off-peak hours) depend on it. Raises PriceNotFoundError when
    the bundled data has no price for the model, and ValueError for a naive `priced_at` or for
    cache tokens that exceed `usage.input_tokens`.
    """
    if priced_at.tzinfo is None:
        raise ValueError(f"priced_at must be timezone-aware, got naive {priced_at.isoformat()}")

    cached = usage.cache_read_tokens + usage.cache_write_tokens
    if cached > usage.input_tokens:
        raise ValueError(
            f"cache read and write tokens ({cached}) exceed the input tokens "
            f"({usage.input_tokens}), which count them too"
        )
    snapshot = _bundled_snapshot()
    try:
        provider, model = snapshot.find_provider_model(model_id, None, provider_id, None)
    except LookupError as exc:
        raise _price_not_found(snapshot, provider_id, model_id) from exc
    # The price in force is chosen on every call, because dated prices and time-of-day
    # prices change with `priced_at`.
    model_price = model.get_prices(priced_at)
    rates = _linear_rates(model_price)
    if rates is not None:
        amount = rates.total(usage)
    else:
        gp_usage = genai_prices.Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        )
        amount = model.calc_price(gp_usage, provider, genai_request_timestamp=priced_at).total_price
    # Trailing zeros are dropped, so an amount reads the same whichever path priced it.
    return Cost(amount=amount.normalize(), price=_price_of(model, model_price), priced_at=priced_at)


def describe_rates(
    model_price: gp_types.ModelPrice,
    constraint: gp_types.StartDateConstraint | gp_types.TimeOfDateConstraint | None = None,
) -> str:
    """Write a model's token rates in dollars per 1M tokens, e.g. "$0.15/1M input, $0.6/1M output".

    Only the token rates are written. Other units that genai-prices can price (web searches,
    audio, images) are left out because shoal's Usage never reports them.
    """
    parts: list[str] = []
    for price_key, name in _TOKEN_RATE_NAMES:
        rate = getattr(model_price, price_key)
        if rate is not None:
            parts.append(_describe_rate(rate, name))
    text = ", ".join(parts) if parts else "no token rates"

    if isinstance(constraint, gp_types.TimeOfDateConstraint):
        start = constraint.start_time.strftime("%H:%M")
        end = constraint.end_time.strftime("%H:%M")
        text += f" (requests sent {start}-{end} UTC)"
    return text


def _describe_rate(rate: Decimal | gp_types.TieredPrices, name: str) -> str:
    if isinstance(rate, Decimal):
        return f"${rate}/1M {name}"

    # Past a tier's start, genai-prices charges every token of the request at the tier's rate.
    tiers = ", ".join(f"${tier.price} above {tier.start:,} input tokens" for tier in rate.tiers)
    return f"${rate.base}/1M {name} ({tiers})"


@dataclass(frozen=True)
class _LinearRates:
    """A price that is linear in the token counts: dollars per token of each kind, plus a fixed part."""

    fixed: Decimal
    input: Decimal  # per input token, cache reads and writes included
    cache_read: Decimal  # added per cache-read token, on top of `input`
    cache_write: Decimal  # added per cache-write token, on top of `input`
    output: Decimal

    def total(self, usage: Usage) -> Decimal:
        return (
            self.fixed
            + self.input * usage.input_tokens
            + self.cache_read * usage.cache_read_tokens
            + self.cache_write * usage.cache_write_tokens
            + self.output * usage.output_tokens
        )


_BASIS_TOKENS = 1_000_000
_linear_cache: dict[int, tuple[gp_types.ModelPrice, _LinearRates | None]] = {}
_price_cache: dict[int, tuple[gp_types.ModelPrice, Price]] = {}


def _linear_rates(model_price: gp_types.ModelPrice) -> _LinearRates | None:
    """Read a price without tiers as per-token rates, by pricing one basis usage per token kind.

    genai-prices takes about 0.1 ms to price one usage, as long as a local HTTP round trip.
    Prices without tiers are linear in the token counts, so the rates found here give the
    same Decimal amounts exactly (a test compares both over many models and usages).
    Tiered prices return None and are priced by genai-prices on each call.
    """
    known = _linear_cache.get(id(model_price))
    if known is not None and known[0] is model_price:
        return known[1]
    rates = None
    if not any(
        isinstance(getattr(model_price, key), gp_types.TieredPrices) for key, _ in _TOKEN_RATE_NAMES
    ):
        def price(**tokens: int) -> Decimal:
            return model_price.calc_price(genai_prices.Usage(**tokens))["total_price"]

        n = _BASIS_TOKENS
        fixed = price()
        input_rate = (price(input_tokens=n) - fixed) / n
        rates = _LinearRates(
            fixed=fixed,
            input=input_rate,
            cache_read=(price(input_tokens=n, cache_read_tokens=n) - fixed) / n - input_rate,
            cache_write=(price(input_tokens=n, cache_write_tokens=n) - fixed) / n - input_rate,
            output=(price(output_tokens=n) - fixed) / n,
        )
    # The ModelPrice is kept in the entry, so its id cannot be reused by another object.
    _linear_cache[id(model_price)] = (model_price, rates)
    return rates


def _price_of(model: gp_types.ModelInfo, model_price: gp_types.ModelPrice) -> Price:
    known = _price_cache.get(id(model_price))
    if known is not None and known[0] is model_price:
        return known[1]
    constraint = _active_constraint(model, model_price)
    price = Price(
        rates=describe_rates(model_price, constraint),
        source=PRICE_SOURCE,
        valid_from=_valid_from(constraint),
    )
    _price_cache[id(model_price)] = (model_price, price)
    return price


def _bundled_snapshot() -> data_snapshot.DataSnapshot:
    # NOTE: `_bundled_snapshot` is private in genai-prices 0.2.3 (pinned in pyproject.toml). The
    # public `calc_price` would switch to a snapshot fetched by `UpdatePrices` if anything in the
    # process started one, and the recorded source would then no longer name the prices used.
    return data_snapshot._bundled_snapshot()  # pyright: ignore[reportPrivateUsage]


def _active_constraint(
    model: gp_types.ModelInfo, model_price: gp_types.ModelPrice
) -> gp_types.StartDateConstraint | gp_types.TimeOfDateConstraint | None:
    """Find the constraint of the conditional price that genai-prices selected, if any."""
    if not isinstance(model.prices, list):
        return None
    for conditional in model.prices:
        # Without a price context genai-prices returns the selected ModelPrice object itself.
        if conditional.prices is model_price:
            return conditional.constraint
    return None


def _valid_from(
    constraint: gp_types.StartDateConstraint | gp_types.TimeOfDateConstraint | None,
) -> date | None:
    if isinstance(constraint, gp_types.StartDateConstraint):
        return constraint.start_date
    return None


def _price_not_found(
    snapshot: data_snapshot.DataSnapshot, provider_id: str, model_id: str
) -> PriceNotFoundError:
    if data_snapshot.find_provider_by_id(snapshot.providers, provider_id) is None:
        known = ", ".join(sorted(provider.id for provider in snapshot.providers))
        return PriceNotFoundError(
            f"no price for model {provider_id}:{model_id}: provider {provider_id!r} is not in "
            f"{PRICE_SOURCE}; use one of its provider ids: {known}"
        )
    return PriceNotFoundError(
        f"no price for model {provider_id}:{model_id} in {PRICE_SOURCE}: check the model id "
        f"spelling, or use a model that {PRICE_SOURCE} lists for provider {provider_id!r}"
    )
