"""Time of `cascade_sweep` on a synthetic table: 1,000,000 items, 11 models, 1001 thresholds.

The table is seeded, so every run sweeps the same data. Confidence is uniform on [0, 1],
scores are 0 or 1 with a hit rate that grows along the cascade, and costs per call grow
about tenfold from the first model to the last. The sweep runs once to warm up, then
`--repeats` times, and the best and median wall times are printed. The peak memory that numpy
allocates during one sweep is measured with tracemalloc in a separate run, so the tracing
does not slow the timed ones.

    python bench/sweep.py --items 1000000 --models 11 --thresholds 1001 --spacing even
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from shoal.simulate.sweep import cascade_sweep


def make_table(items: int, models: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return seeded confidence, scores and costs of shape (items, models)."""
    rng = np.random.default_rng(seed)
    confidence = rng.random((items, models))
    hit_rate = np.linspace(0.5, 0.9, models)
    scores = (rng.random((items, models)) < hit_rate).astype(np.float64)
    cost_per_call = np.geomspace(1e-4, 1e-3, models)
    costs = cost_per_call * rng.uniform(0.5, 1.5, (items, models))
    return confidence, scores, costs


# Threshold sets of n values in [0, 1]. `cascade_sweep` searches even ones (and random ones at the
# default seed) with a guide table and log-scale ones with a binary search, so the spacing
# changes the time.
SPACINGS: dict[str, Callable[[int, int], np.ndarray]] = {
    "even": lambda n, seed: np.linspace(0.0, 1.0, n),
    "random": lambda n, seed: np.random.default_rng(seed + 1).random(n),
    "log": lambda n, seed: np.geomspace(1e-6, 1.0, n),
}


def time_sweep(table: tuple[np.ndarray, ...], thresholds: np.ndarray, repeats: int) -> list[float]:
    """Return the wall time in seconds of each of `repeats` sweeps, after one warm-up sweep."""
    cascade_sweep(*table, thresholds)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        cascade_sweep(*table, thresholds)
        times.append(time.perf_counter() - started)
    return times


def peak_sweep_memory_mib(table: tuple[np.ndarray, ...], thresholds: np.ndarray) -> float:
    """Return the peak memory allocated during one sweep beyond the inputs, in MiB."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    cascade_sweep(*table, thresholds)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or platform's guess where that is missing."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="rows of the table")
    parser.add_argument("--models", type=int, default=11, help="models in the cascade")
    parser.add_argument("--thresholds", type=int, default=1001,
                        help="number of thresholds between 0 and 1")
    parser.add_argument("--spacing", choices=sorted(SPACINGS), default="even",
                        help="how thresholds are spaced: even (a grid), random (seeded uniform "
                             "draws) or log (a log-scale grid from 1e-6)")
    parser.add_argument("--repeats", type=int, default=5, help="timed sweeps after the warm-up")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic table")
    args = parser.parse_args()

    table = make_table(args.items, args.models, args.seed)
    thresholds = SPACINGS[args.spacing](args.thresholds, args.seed)
    times = time_sweep(table, thresholds, args.repeats)
    result = cascade_sweep(*table, thresholds)
    share_sums = result.accept_share.sum(axis=1)
    assert np.allclose(share_sums, 1.0), "accept shares do not sum to 1"

    report: dict[str, Any] = {
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
                   f"numpy {np.__version__}",
        "items": args.items,
        "models": args.models,
        "thresholds": args.thresholds,
        "spacing": args.spacing,
        "repeats": args.repeats,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "input_mib": sum(array.nbytes for array in table) / 2**20,
        "peak_sweep_mib": peak_sweep_memory_mib(table, thresholds),
        "accuracy_range": [float(result.accuracy.min()), float(result.accuracy.max())],
        "mean_cost_range": [float(result.mean_cost.min()), float(result.mean_cost.max())],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
