"""Command-line option values that more than one command parses."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from shoal.errors import UserInputError


def parse_per_label(value: str) -> int | None:
    """Return the --per-label count, or None for 'all'. Other values raise UserInputError."""
    if value.strip().lower() == "all":
        return None
    try:
        number = int(value)
    except ValueError:
        raise UserInputError(
            f"invalid --per-label {value!r}: give a positive whole number or 'all'"
        ) from None
    if number < 1:
        raise UserInputError(f"invalid --per-label {value!r}: it must be at least 1, or 'all'")
    return number


def parse_max_cost(value: str) -> Decimal:
    """Return the --max-cost amount in USD; a leading "$" is allowed. Others raise UserInputError."""
    try:
        amount = Decimal(value.strip().removeprefix("$"))
    except InvalidOperation:
        raise UserInputError(
            f"invalid --max-cost {value!r}: give an amount in USD, e.g. 0.50"
        ) from None
    if not amount.is_finite() or amount <= 0:
        raise UserInputError(f"invalid --max-cost {value!r}: it must be more than 0 USD")
    return amount
