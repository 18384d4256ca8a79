"""`shoal models`: the model catalogue as a table or as JSON.

cli.py registers `models_command` with `app.command("models")`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shoal.catalogue.catalogue import (
    CatalogueEntry,
    PriceData,
    PriceRefreshError,
    build_catalogue,
    bundled_price_data,
    fetch_price_data,
    filter_vendor,
)
from shoal.catalogue.prices_file import PRICES_ENV, load_prices_file, prices_file_path
from shoal.errors import UserInputError

FORMATS = ("table", "json")


def models_command(
    format: Annotated[str, typer.Option("--format", help="Output format: 'table' (a table for reading) or 'json' (a list of objects, one per model).")] = "table",
    prices: Annotated[Path | None, typer.Option("--prices", help=f"YAML file whose prices override or add to the catalogue's (default: the {PRICES_ENV} environment variable).")] = None,
    vendor: Annotated[str | None, typer.Option("--vendor", help="Show only models whose vendor contains this text, ignoring case, e.g. 'meta' or 'qwen'.")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Download the newest genai-prices data before pricing. This needs network access, and the bundled prices are used when the download fails.")] = False,
) -> None:
    """List small and frontier models with token prices in USD per 1M tokens and API features."""
    if format not in FORMATS:
        raise UserInputError(f"invalid --format {format!r}: use one of {', '.join(FORMATS)}")

    now = datetime.now(UTC)
    bundled = bundled_price_data()
    primary: PriceData = bundled
    if refresh:
        primary = _refreshed_or_bundled(bundled)

    prices_path = prices_file_path(prices)
    overrides = load_prices_file(prices_path) if prices_path is not None else []
    entries = build_catalogue(
        now,
        prices=primary,
        fallback=bundled if primary is not bundled else None,
        overrides=overrides,
    )
    if vendor is not None:
        entries = filter_vendor(entries, vendor)

    if format == "json":
        sys.stdout.write(json.dumps([entry.to_json() for entry in entries], indent=2) + "\n")
    else:
        _print_table(entries, now)


def _refreshed_or_bundled(bundled: PriceData) -> PriceData:
    try:
        return fetch_price_data()
    except PriceRefreshError as exc:
        stderr = Console(stderr=True)
        stderr.print(
            f"[bold yellow]warning:[/] --refresh failed: {escape(str(exc))}. "
            f"Showing the prices bundled with {escape(bundled.source)} instead.",
            highlight=False,
            soft_wrap=True,
        )
        return bundled


def _print_table(entries: Sequence[CatalogueEntry], now: datetime) -> None:
    table = Table(title="Models and token prices (USD per 1M tokens)")
    table.add_column("Model", no_wrap=True)
    table.add_column("Vendor")
    table.add_column("Input", justify="right")
    table.add_column("Output", justify="right")
    table.add_column("Cache read", justify="right")
    table.add_column("Price date")
    table.add_column("Logprobs")
    table.add_column("JSON schema")
    for entry in entries:
        table.add_row(
            escape(entry.model),
            escape(entry.vendor),
            _usd(entry.input_usd_per_1m),
            _usd(entry.output_usd_per_1m),
            _usd(entry.cache_read_usd_per_1m),
            entry.price_date.isoformat(),
            "yes" if entry.logprobs else "no",
            "yes" if entry.json_schema else "no",
        )

    sources = ", ".join(dict.fromkeys(entry.price_source for entry in entries))
    table.caption = (
        f"Prices from {escape(sources)}, in force on {now.date().isoformat()} UTC. Tiered prices show "
        "the base rate. Price date: the day the price took effect, or the date of the price "
        "data when no start date is recorded."
    )
    # Outside a terminal rich assumes 80 columns, too narrow for the table.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    console.print(table)


def _usd(value: Decimal | None) -> str:
    if value is None:
        return "-"
    # normalize() drops trailing zeros, and the "f" format avoids exponents such as 1E+1.
    return f"${value.normalize():f}"
