"""Simulation of routing and cascade strategies on logged outcomes, without calling models."""

from shoal.simulate.outcomes import (
    LoggedOutcomes,
    Price,
    load_llmrouter,
    load_routellm,
    load_routellm_dir,
    load_routerbench,
    load_routerbench_dir,
    load_shoal_records,
)
from shoal.simulate.sweep import SweepResult, cascade_sweep

__all__ = [
    "LoggedOutcomes",
    "Price",
    "SweepResult",
    "cascade_sweep",
    "load_llmrouter",
    "load_routellm",
    "load_routellm_dir",
    "load_routerbench",
    "load_routerbench_dir",
    "load_shoal_records",
]
