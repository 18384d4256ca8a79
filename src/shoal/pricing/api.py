"""Cost of API calls, priced with the data bundled in genai-prices.

Only the snapshot shipped inside the installed genai-prices wheel is read. shoal never starts
genai-prices' `UpdatePrices` background fetch, and a fetch that another library in the same process
started is ignored, so every cost is reproducible from the pinned package version.
"""

from __future__ import annotations

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

    gp_usage = genai_prices.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    # Rates are looked up on every call: genai-prices caches its model lookups, and time-of-day
    # prices rule out caching rates per date.
    snapshot = _bundled_snapshot()
    try:
        calculation = snapshot.calc(gp_usage, model_id, provider_id, None, priced_at)
    except LookupError as exc:
        raise _price_not_found(snapshot, provider_id, model_id) from exc

    constraint = _active_constraint(calculation.model, calculation.model_price)
    price = Price(
        rates=describe_rates(calculation.model_price, constraint),
        source=PRICE_SOURCE,
        valid_from=_valid_from(constraint),
    )
    return Cost(amount=calculation.total_price, price=price, priced_at=priced_at)


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
