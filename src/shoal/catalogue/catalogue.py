"""The priced model catalogue: curated models with their genai-prices rates and API features.

Rates come from the snapshot bundled in genai-prices (see shoal.pricing.api), or from newer data
that `shoal models --refresh` downloads, looked up for the UTC day of `now`. Two choices make
one rate per model:

- Tiered prices (more expensive past a prompt size) show the base rate.
- Time-of-day prices (DeepSeek's off-peak discount) show the rate in force for most of that UTC
  day, found by asking genai-prices for the rate every 15 minutes of the day.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import genai_prices
from genai_prices import data_snapshot
from genai_prices import types as gp_types

from shoal.catalogue.curated import CURATED_MODELS, CuratedModel
from shoal.catalogue.hosts import HOSTS
from shoal.errors import PriceNotFoundError, ShoalError, UserInputError
from shoal.pricing.api import PRICE_SOURCE, _bundled_snapshot  # pyright: ignore[reportPrivateUsage]

logger = logging.getLogger("shoal.catalogue")

# genai-prices 0.2.3 records no date for its bundled data, so this is the day its wheel was
# uploaded to PyPI (2026-11-10 UTC, found with `pip index versions --uploaded-prior-to`).
# Update it together with the pinned genai-prices version.
BUNDLED_SNAPSHOT_DATE = date(2026, 11, 10)

# genai-prices provider ids of the providers that are not OpenAI-compatible hosts.
NATIVE_PRICE_PROVIDERS = {"anthropic": "anthropic", "google": "google"}

_SAMPLE_STEP = timedelta(minutes=15)


class PriceRefreshError(ShoalError):
    """Newer price data could not be fetched or read."""


@dataclass(frozen=True)
class CatalogueEntry:
    """One model of the catalogue with its token prices in USD per 1M tokens.

    `price_date` is the first day the price applies: the start date genai-prices records for a
    dated price, or else the date of the price data. For the bundled snapshot that date is
    BUNDLED_SNAPSHOT_DATE, a day on which the price was already in force. For a user prices
    file it is the date the file gives.
    """

    model: str  # `provider:id`
    vendor: str
    host: str
    input_usd_per_1m: Decimal
    output_usd_per_1m: Decimal
    cache_read_usd_per_1m: Decimal | None
    price_date: date
    logprobs: bool  # the API returns token log-probabilities
    json_schema: bool  # the API can constrain output to a JSON schema
    price_source: str

    def to_json(self) -> dict[str, Any]:
        """Return the entry as a JSON object, with prices as numbers and the date as ISO text."""
        cache_read = self.cache_read_usd_per_1m
        return {
            "model": self.model,
            "vendor": self.vendor,
            "host": self.host,
            "input_usd_per_1m": float(self.input_usd_per_1m),
            "output_usd_per_1m": float(self.output_usd_per_1m),
            "cache_read_usd_per_1m": None if cache_read is None else float(cache_read),
            "price_date": self.price_date.isoformat(),
            "logprobs": self.logprobs,
            "json_schema": self.json_schema,
            "price_source": self.price_source,
        }


# The keys of a catalogue entry, in the order the JSON output and the prices file use them.
ENTRY_KEYS: tuple[str, ...] = tuple(field.name for field in fields(CatalogueEntry))


@dataclass(frozen=True)
class PriceData:
    """A genai-prices snapshot, named for `price_source`, and the date given to undated prices."""

    snapshot: data_snapshot.DataSnapshot
    source: str
    undated_price_date: date


def bundled_price_data() -> PriceData:
    """Return the price data bundled with the installed genai-prices."""
    return PriceData(_bundled_snapshot(), PRICE_SOURCE, BUNDLED_SNAPSHOT_DATE)


def fetch_price_data(timeout_s: float = 10.0) -> PriceData:
    """Download the newest genai-prices data once, without starting its background updater.

    Raises PriceRefreshError when the download or the parsing fails.
    """
    import httpx2

    updater = genai_prices.UpdatePrices(
        request_timeout=httpx2.Timeout(timeout=timeout_s, connect=min(timeout_s, 5.0))
    )
    try:
        snapshot = updater.fetch()
    # The fetch can fail in the network layer, on the HTTP status, or while genai-prices
    # validates the payload (pydantic errors are ValueError subclasses).
    except (httpx2.HTTPError, OSError, ValueError) as exc:
        raise PriceRefreshError(
            f"could not fetch prices from {updater.url}: {type(exc).__name__}: {exc}"
        ) from exc
    if snapshot is None:
        raise PriceRefreshError(f"could not fetch prices from {updater.url}: no data returned")

    fetched_on = datetime.now(UTC).date()
    return PriceData(snapshot, f"genai-prices data fetched {fetched_on.isoformat()}", fetched_on)


def price_provider_id(host: str) -> str | None:
    """Return the genai-prices provider id of a host or native provider, None when unpriced."""
    if host in NATIVE_PRICE_PROVIDERS:
        return NATIVE_PRICE_PROVIDERS[host]
    known = HOSTS.get(host)
    return known.price_provider_id if known is not None else None


def price_model(curated: CuratedModel, now: datetime, prices: PriceData) -> CatalogueEntry:
    """Price one curated model; raise PriceNotFoundError if `prices` has no token price for it."""
    provider_id = price_provider_id(curated.host)
    if provider_id is None:
        raise PriceNotFoundError(
            f"no price for {curated.model}: host {curated.host!r} has no genai-prices provider; "
            "give its price in a prices file"
        )
    try:
        _, model_info = prices.snapshot.find_provider_model(
            curated.model_id, None, provider_id, None
        )
    except LookupError as exc:
        raise PriceNotFoundError(
            f"no price for {curated.model} in {prices.source} (provider {provider_id!r}): "
            "fix the model id or remove the model from the catalogue"
        ) from exc

    model_price, start_date = day_rate(model_info, now)
    input_rate = base_rate(model_price.input_mtok)
    output_rate = base_rate(model_price.output_mtok)
    if input_rate is None or output_rate is None:
        raise PriceNotFoundError(
            f"no input or output token price for {curated.model} in {prices.source}: "
            "give its price in a prices file"
        )

    return CatalogueEntry(
        model=curated.model,
        vendor=curated.vendor,
        host=curated.host,
        input_usd_per_1m=input_rate,
        output_usd_per_1m=output_rate,
        cache_read_usd_per_1m=base_rate(model_price.cache_read_mtok),
        price_date=start_date or prices.undated_price_date,
        logprobs=curated.logprobs,
        json_schema=curated.json_schema,
        price_source=prices.source,
    )


def day_rate(
    model_info: gp_types.ModelInfo, now: datetime
) -> tuple[gp_types.ModelPrice, date | None]:
    """Return the price in force for most of the UTC day of `now`, and its start date if any."""
    if isinstance(model_info.prices, gp_types.ModelPrice):
        return model_info.prices, None

    day_start = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    samples: list[gp_types.ModelPrice] = []
    at = day_start
    while at < day_start + timedelta(days=1):
        # Without a price context genai-prices returns one of the model's own ModelPrice
        # objects, so identity distinguishes the candidate prices.
        samples.append(model_info.get_prices(at))
        at += _SAMPLE_STEP
    counts = Counter(id(price) for price in samples)
    chosen_id, _ = counts.most_common(1)[0]
    chosen = next(price for price in samples if id(price) == chosen_id)

    for conditional in model_info.prices:
        constraint = conditional.constraint
        if conditional.prices is chosen and isinstance(constraint, gp_types.StartDateConstraint):
            return chosen, constraint.start_date
    return chosen, None


def base_rate(rate: Decimal | gp_types.TieredPrices | None) -> Decimal | None:
    """Return a flat rate as is, and the base rate of a tiered one."""
    if isinstance(rate, gp_types.TieredPrices):
        return rate.base
    return rate


def build_catalogue(
    now: datetime | None = None,
    *,
    prices: PriceData | None = None,
    fallback: PriceData | None = None,
    curated: Iterable[CuratedModel] = CURATED_MODELS,
    overrides: Sequence[CatalogueEntry] = (),
) -> list[CatalogueEntry]:
    """Price every curated model at `now` (default: the current time), then apply `overrides`.

    `prices` defaults to the bundled data. A model that `prices` cannot price is priced from
    `fallback` when one is given, and otherwise raises PriceNotFoundError. Each override
    replaces the entry of the same model or, for a new model, is added at the end.
    """
    at = now if now is not None else datetime.now(UTC)
    if at.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got naive {at.isoformat()}")
    primary = prices if prices is not None else bundled_price_data()

    entries: list[CatalogueEntry] = []
    for model in curated:
        try:
            entries.append(price_model(model, at, primary))
        except PriceNotFoundError as exc:
            if fallback is None:
                raise
            logger.warning("%s; using %s for %s", exc, fallback.source, model.model)
            entries.append(price_model(model, at, fallback))
    return apply_overrides(entries, overrides)


def apply_overrides(
    entries: Sequence[CatalogueEntry], overrides: Sequence[CatalogueEntry]
) -> list[CatalogueEntry]:
    """Replace entries by the override of the same model, and append overrides of new models."""
    by_model = {override.model: override for override in overrides}
    merged = [by_model.pop(entry.model, entry) for entry in entries]
    merged.extend(override for override in overrides if override.model in by_model)
    return merged


def filter_vendor(entries: Sequence[CatalogueEntry], vendor: str) -> list[CatalogueEntry]:
    """Keep entries whose vendor contains `vendor`, ignoring case ("qwen" finds "Alibaba (Qwen)").

    Raises UserInputError, listing the vendors, when no entry matches.
    """
    needle = vendor.strip().casefold()
    matches = [entry for entry in entries if needle and needle in entry.vendor.casefold()]
    if not matches:
        vendors = ", ".join(dict.fromkeys(entry.vendor for entry in entries))
        raise UserInputError(f"no models of vendor {vendor!r}; vendors: {vendors}")
    return matches
