"""`shoal bench`: tier 0, escalation tiers and the fitted cascade on one labelled sample."""

from shoal.bench.data import BenchData, load_bench_data
from shoal.bench.run import BenchOptions, BenchResult, run_bench

__all__ = ["BenchData", "BenchOptions", "BenchResult", "load_bench_data", "run_bench"]
