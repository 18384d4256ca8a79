"""Command-line option values that more than one command parses."""

from __future__ import annotations

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
