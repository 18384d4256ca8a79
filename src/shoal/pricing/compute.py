"""Cost of self-hosted models: measured compute seconds times an hourly machine price."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from shoal.errors import UserInputError
from shoal.pricing.money import Cost, Price

SECONDS_PER_HOUR = Decimal(3600)
# Compute seconds are kept to the microsecond before pricing.
SECONDS_QUANTUM = Decimal("0.000001")


@dataclass(frozen=True)
class MachinePrice:
    """An hourly machine price that in-process models are charged at."""

    name: str
    usd_per_hour: Decimal
    source: str
    as_of: date

    def price(self) -> Price:
        return Price(
            rates=f"${self.usd_per_hour}/hour ({self.name})",
            source=self.source,
            valid_from=self.as_of,
        )


# A 2-vCPU, 8 GiB on-demand instance, the size the bench is measured on. The rate is AWS
# us-east-1 Linux on-demand as quoted by factualminds.com, "Amazon EC2 On-Demand Pricing:
# Instance Families, Regional Multipliers, and the Graviton Crossover (2026)", June 2026.
# NOTE: m7g is ARM (Graviton) while the bench ran on x86, so the charge is an estimate.
DEFAULT_MACHINE = MachinePrice(
    name="aws m7g.large, 2 vCPU, 8 GiB, us-east-1 on-demand",
    usd_per_hour=Decimal("0.0816"),
    source="AWS EC2 on-demand list price, as quoted by factualminds.com (June 2026)",
    as_of=date(2026, 6, 17),
)

MACHINE_PRICE_ENV = "SHOAL_MACHINE_USD_PER_HOUR"


def machine_from_env(default: MachinePrice = DEFAULT_MACHINE) -> MachinePrice:
    """Return the machine price set in SHOAL_MACHINE_USD_PER_HOUR, or the default."""
    raw = os.environ.get(MACHINE_PRICE_ENV)
    if raw is None or raw.strip() == "":
        return default
    return machine_price_override(raw, source=f"environment variable {MACHINE_PRICE_ENV}")


def machine_price_override(raw: str, source: str) -> MachinePrice:
    """Build a user-given hourly price; `raw` is dollars per hour, e.g. "0.25"."""
    try:
        usd = Decimal(raw.strip())
    except InvalidOperation:
        raise UserInputError(
            f"invalid machine price {raw!r}: give dollars per hour as a number, e.g. 0.0816"
        ) from None
    if not usd.is_finite() or usd < 0:
        raise UserInputError(
            f"invalid machine price {raw!r}: it must be a non-negative number of dollars per hour"
        )
    return MachinePrice(
        name="user-set machine", usd_per_hour=usd, source=source, as_of=date.today()
    )


def compute_cost(seconds: float, machine: MachinePrice, priced_at: datetime) -> Cost:
    """Charge `seconds` of compute at the machine's hourly price."""
    if seconds < 0:
        raise ValueError(f"compute seconds must be >= 0, got {seconds}")
    exact_seconds = Decimal(repr(seconds)).quantize(SECONDS_QUANTUM)
    amount = exact_seconds * machine.usd_per_hour / SECONDS_PER_HOUR
    return Cost(amount=amount, price=machine.price(), priced_at=priced_at)
