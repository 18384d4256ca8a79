"""Money values: prices with their source and date, and `Decimal` costs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

ZERO = Decimal(0)
SIGNIFICANT_DIGITS = 3


@dataclass(frozen=True)
class Price:
    """The rates a cost was computed with, where they came from and the date they hold from."""

    rates: str  # human-readable rates, e.g. "$0.15/1M input, $0.60/1M output"
    source: str  # e.g. "genai-prices 0.2.3" or the page an hourly machine price was read on
    valid_from: date | None


@dataclass(frozen=True)
class Cost:
    """The dollars of one call, with the price used and the timestamp it was priced for."""

    amount: Decimal
    price: Price
    priced_at: datetime

    def to_record(self) -> dict[str, str | None]:
        return {
            "usd": f"{self.amount:f}",
            "rates": self.price.rates,
            "source": self.price.source,
            "valid_from": self.price.valid_from.isoformat() if self.price.valid_from else None,
            "priced_at": self.priced_at.isoformat(),
        }


def sum_costs(amounts: list[Decimal]) -> Decimal:
    return sum(amounts, ZERO)


def format_usd(amount: Decimal) -> str:
    """Format dollars without an exponent: 2 decimals from $1 up, else 3 significant digits.

    3 significant digits keep tiny per-1k costs readable, e.g. 0.000123 rather than 0.00.
    """
    if amount == 0:
        return "0"
    if abs(amount) >= 1:
        return f"{amount:,.2f}"
    exponent = amount.adjusted() - (SIGNIFICANT_DIGITS - 1)
    return f"{amount.quantize(Decimal(1).scaleb(exponent)):f}"
