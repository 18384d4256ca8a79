"""A hard cap on a run's spend: reserve each call's worst case first, settle its real cost after."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from decimal import Decimal

from shoal.errors import BudgetExceededError
from shoal.pricing.money import format_usd

logger = logging.getLogger("shoal.calls.budget")

ZERO = Decimal(0)


@dataclass
class Reservation:
    """Money held for one call until its real cost is known."""

    amount: Decimal
    label: str
    open: bool = True


class Budget:
    """Spend and reservations against `max_usd`; their sum never passes the cap.

    A call is sent only after `reserve` has held its worst-case cost. `settle` replaces the
    hold with the real cost, and `release` drops it when the call cost nothing. Every
    provider of a run shares one Budget, so retries, fallbacks and escalations all draw on it.
    The cap is kept as long as each reservation is at least the call's real cost. A real cost
    above its reservation is still counted, and logged as a warning.
    """

    def __init__(self, max_usd: Decimal | str | float) -> None:
        cap = Decimal(str(max_usd))
        if not cap.is_finite() or cap < 0:
            raise ValueError(f"max_usd must be a non-negative amount, got {max_usd!r}")
        self.max_usd = cap
        self.spent = ZERO
        self.reserved = ZERO
        self._lock = threading.Lock()

    @property
    def available(self) -> Decimal:
        return self.max_usd - self.spent - self.reserved

    def reserve(self, amount: Decimal, label: str) -> Reservation:
        """Hold `amount` for a call, or raise BudgetExceededError when it does not fit."""
        if amount < 0:
            raise ValueError(f"cannot reserve a negative amount: {amount}")
        with self._lock:
            if self.spent + self.reserved + amount > self.max_usd:
                raise BudgetExceededError(
                    f"the next call, {label}, could cost up to ${format_usd(amount)}, which "
                    f"would take the spend past --max-cost ${format_usd(self.max_usd)} (spent "
                    f"${format_usd(self.spent)}, ${format_usd(self.reserved)} held for calls "
                    "in flight); raise --max-cost to go on"
                )
            self.reserved += amount
            return Reservation(amount=amount, label=label)

    def settle(self, reservation: Reservation, cost: Decimal) -> None:
        """Replace a reservation with the call's real cost."""
        with self._lock:
            self._close(reservation)
            self.spent += cost
        if cost > reservation.amount:
            logger.warning(
                "%s cost $%s, more than the $%s reserved for it; the estimate was too low",
                reservation.label, f"{cost:f}", f"{reservation.amount:f}",
            )

    def release(self, reservation: Reservation) -> None:
        """Drop a reservation whose call cost nothing (it failed before any usage)."""
        with self._lock:
            self._close(reservation)

    def _close(self, reservation: Reservation) -> None:
        if not reservation.open:
            raise ValueError(f"the reservation for {reservation.label} was already closed")
        reservation.open = False
        self.reserved -= reservation.amount
