"""Money, dated prices and costs. Pure arithmetic except `api`, which reads bundled price data."""

from shoal.pricing.api import PRICE_SOURCE, api_cost
from shoal.pricing.compute import DEFAULT_MACHINE, MachinePrice, compute_cost, machine_from_env
from shoal.pricing.money import ZERO, Cost, Price, sum_costs

__all__ = [
    "DEFAULT_MACHINE",
    "PRICE_SOURCE",
    "ZERO",
    "Cost",
    "MachinePrice",
    "Price",
    "api_cost",
    "compute_cost",
    "machine_from_env",
    "sum_costs",
]
