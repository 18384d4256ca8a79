"""User prices file: YAML that overrides catalogue prices or prices models the catalogue lacks.

The file is given with `--prices FILE` or the SHOAL_PRICES environment variable:

    models:
      - model: vllm:qwen2.5-7b-instruct        # provider:id, as shoal loads it
        input_usd_per_1m: 0.04
        output_usd_per_1m: 0.08
        price_date: 2026-11-01
        cache_read_usd_per_1m: null             # optional, default null
        vendor: Alibaba (Qwen)                  # optional
        host: vllm                              # optional, default: the provider prefix
        logprobs: true                          # optional
        json_schema: true                       # optional

An entry for a catalogue model keeps the catalogue's vendor, logprobs and json_schema unless it
gives them. For other models a missing vendor is "unknown" and missing features are false.
The file is validated strictly: unknown keys, missing keys, wrong types, negative prices and
duplicate models each raise a one-line UserInputError naming the entry and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from shoal.catalogue.catalogue import CatalogueEntry
from shoal.catalogue.curated import curated_model
from shoal.catalogue.hosts import KNOWN_PROVIDERS, canonical_provider
from shoal.errors import UserInputError
from shoal.pricing import Cost, Price
from shoal.providers.base import Usage

PRICES_ENV = "SHOAL_PRICES"
PRICE_KEYS = ("input_usd_per_1m", "output_usd_per_1m", "cache_read_usd_per_1m")
REQUIRED_KEYS = ("model", "input_usd_per_1m", "output_usd_per_1m", "price_date")
OPTIONAL_KEYS = ("cache_read_usd_per_1m", "host", "vendor", "logprobs", "json_schema")
UNKNOWN_VENDOR = "unknown"


@dataclass(frozen=True)
class _Location:
    """The position of a value for error messages: the file, and the entry if there is one."""

    path: Path
    entry: str | None = None

    def error(self, problem: str) -> UserInputError:
        where = f"invalid prices file {self.path}"
        if self.entry is not None:
            where += f", {self.entry}"
        return UserInputError(f"{where}: {problem}")


def prices_file_path(option: Path | None = None) -> Path | None:
    """Return the prices file to use: `option` (from --prices), else $SHOAL_PRICES, else None."""
    if option is not None:
        return option
    from_env = os.environ.get(PRICES_ENV, "").strip()
    return Path(from_env) if from_env else None


def load_prices_file(path: Path) -> list[CatalogueEntry]:
    """Read and validate a prices file; raise UserInputError naming the problem and the fix."""
    location = _Location(path)
    data = _read_yaml(path)
    if data is None:
        raise location.error("the file is empty; list the prices under the key 'models'")
    if not isinstance(data, dict) or set(data) != {"models"}:
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise location.error(
            f"the top level must be a mapping with the single key 'models', found {found}"
        )
    items = data["models"]
    if not isinstance(items, list) or not items:
        raise location.error("'models' must be a non-empty list of entries")

    entries: list[CatalogueEntry] = []
    first_entry: dict[str, int] = {}
    for number, item in enumerate(items, start=1):
        entry = _parse_entry(item, _Location(path, f"entry {number}"))
        if entry.model in first_entry:
            raise _Location(path, f"entry {number} ({entry.model})").error(
                f"model {entry.model} is already priced by entry {first_entry[entry.model]}; "
                "keep one entry per model"
            )
        first_entry[entry.model] = number
        entries.append(entry)
    return entries


def user_price(model: str, path: Path | None = None) -> CatalogueEntry | None:
    """Return the user's price for `model` (`provider:id`), or None if no prices file prices it.

    The file is `path`, else $SHOAL_PRICES. It is read again only when its size or modification
    time changes. Raises UserInputError for an unreadable or invalid file.
    """
    chosen = prices_file_path(path)
    if chosen is None:
        return None
    try:
        stat = chosen.stat()
        entries = _load_cached(chosen.resolve(), stat.st_mtime_ns, stat.st_size)
    except OSError:
        # Reading without the cache raises the UserInputError that names the problem.
        entries = tuple(load_prices_file(chosen))
    canonical = _canonical_model(model)
    return next((entry for entry in entries if entry.model == canonical), None)


@lru_cache(maxsize=8)
def _load_cached(path: Path, mtime_ns: int, size: int) -> tuple[CatalogueEntry, ...]:
    del mtime_ns, size  # part of the cache key only
    return tuple(load_prices_file(path))


def _read_yaml(path: Path) -> Any:
    # Imported here so that loading models works without PyYAML, which only this file needs.
    try:
        import yaml
    except ImportError as exc:
        raise UserInputError(
            f"cannot read prices file {path}: PyYAML is not installed; run pip install pyyaml"
        ) from exc

    location = _Location(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(
            f"prices file {path} not found: give an existing YAML file to --prices or "
            f"{PRICES_ENV}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(
            f"cannot read prices file {path}: {exc}; give a readable UTF-8 YAML file"
        ) from exc

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise location.error(f"YAML syntax error{position}: {problem}") from exc


def _parse_entry(item: Any, location: _Location) -> CatalogueEntry:
    if not isinstance(item, dict):
        raise location.error(
            f"an entry must be a mapping of keys to values, found {type(item).__name__}"
        )
    model = _parse_model(item.get("model"), location)
    location = _Location(location.path, f"{location.entry} ({model})")

    unknown = sorted(str(key) for key in item if key not in REQUIRED_KEYS + OPTIONAL_KEYS)
    if unknown:
        raise location.error(
            f"unknown key {unknown[0]!r}; allowed keys: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in item]
    if missing:
        raise location.error(
            f"missing key {missing[0]!r}; required keys: {', '.join(REQUIRED_KEYS)}"
        )

    curated = curated_model(model)
    provider = model.partition(":")[0]
    default_vendor = curated.vendor if curated is not None else UNKNOWN_VENDOR
    cache_read = item.get("cache_read_usd_per_1m")
    return CatalogueEntry(
        model=model,
        vendor=_parse_text(item, "vendor", default_vendor, location),
        host=_parse_text(item, "host", provider, location),
        input_usd_per_1m=_parse_price(item["input_usd_per_1m"], "input_usd_per_1m", location),
        output_usd_per_1m=_parse_price(item["output_usd_per_1m"], "output_usd_per_1m", location),
        cache_read_usd_per_1m=(
            None if cache_read is None
            else _parse_price(cache_read, "cache_read_usd_per_1m", location)
        ),
        price_date=_parse_date(item["price_date"], location),
        logprobs=_parse_flag(item, "logprobs", curated.logprobs if curated else False, location),
        json_schema=_parse_flag(
            item, "json_schema", curated.json_schema if curated else False, location
        ),
        price_source=f"prices file {location.path}",
    )


def _parse_model(value: Any, location: _Location) -> str:
    if value is None:
        raise location.error("missing key 'model'; give the model as provider:id")
    if not isinstance(value, str):
        raise location.error(f"'model' is {value!r}, not text; give the model as provider:id")
    provider, sep, model_id = value.strip().partition(":")
    if not sep or not provider or not model_id:
        raise location.error(
            f"'model' is {value!r}; write provider:id, e.g. vllm:qwen2.5-7b-instruct"
        )
    if provider not in KNOWN_PROVIDERS:
        raise location.error(
            f"'model' {value!r} has unknown provider {provider!r}; known providers: "
            + ", ".join(KNOWN_PROVIDERS)
        )
    return f"{canonical_provider(provider)}:{model_id}"


def _canonical_model(model: str) -> str:
    provider, sep, model_id = model.partition(":")
    return f"{canonical_provider(provider)}:{model_id}" if sep else model


def _parse_price(value: Any, key: str, location: _Location) -> Decimal:
    # bool is an int subclass, and YAML reads `yes` and `true` as booleans. Text is accepted
    # when it is a number, because YAML 1.1 reads an unquoted 1e-3 as text.
    price: Decimal | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        price = Decimal(str(value))
    elif isinstance(value, str):
        try:
            price = Decimal(value.strip())
        except InvalidOperation:
            price = None
    if price is None:
        raise location.error(
            f"{key!r} is {_show(value)}, not a number; give USD per 1M tokens, e.g. 0.15"
        )
    if not price.is_finite() or price < 0:
        raise location.error(f"{key!r} is {_show(value)}; a price must be a finite number >= 0")
    return price


def _parse_date(value: Any, location: _Location) -> date:
    # YAML reads an unquoted 2026-11-01 as a date, and a timestamp as a datetime.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise location.error(f"'price_date' is {_show(value)}, not a date; write it as YYYY-MM-DD")


def _parse_text(item: dict[str, Any], key: str, default: str, location: _Location) -> str:
    value = item.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise location.error(f"{key!r} is {_show(value)}; give a non-empty text")
    return value.strip()


def _parse_flag(item: dict[str, Any], key: str, default: bool, location: _Location) -> bool:
    value = item.get(key, default)
    if not isinstance(value, bool):
        raise location.error(f"{key!r} is {_show(value)}; give true or false")
    return value


def _show(value: Any) -> str:
    """Write a YAML value for an error message: dates as ISO text, anything else as repr."""
    if isinstance(value, date):
        return repr(value.isoformat())
    return repr(value)


def user_cost(entry: CatalogueEntry, usage: Usage, priced_at: datetime) -> Cost:
    """Price one call's usage with a prices-file entry.

    Uncached input tokens are charged at the input rate, cache reads at the cache-read rate
    (the input rate when the file gives none) and output at the output rate.
    """
    # NOTE: the file has no cache-write rate, so cache writes are charged as plain input.
    cache_rate = entry.cache_read_usd_per_1m
    if cache_rate is None:
        cache_rate = entry.input_usd_per_1m
    uncached = usage.input_tokens - usage.cache_read_tokens
    amount = (
        entry.input_usd_per_1m * uncached
        + cache_rate * usage.cache_read_tokens
        + entry.output_usd_per_1m * usage.output_tokens
    ) / 1_000_000
    rates = (
        f"${entry.input_usd_per_1m}/1M input, ${cache_rate}/1M cache read, "
        f"${entry.output_usd_per_1m}/1M output"
    )
    price = Price(rates=rates, source=entry.price_source, valid_from=entry.price_date)
    return Cost(amount=amount.normalize(), price=price, priced_at=priced_at)
