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

__all__ = [
    "LoggedOutcomes",
    "Price",
    "load_llmrouter",
    "load_routellm",
    "load_routellm_dir",
    "load_routerbench",
    "load_routerbench_dir",
    "load_shoal_records",
]
