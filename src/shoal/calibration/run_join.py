"""Joining a bench run record into the per-item arrays that threshold selection needs.

`shoal bench` writes one config per model: tier 0 alone (one step per record), each
escalation model alone (two steps: tier 0 passes every item on, then the model predicts with
model weight 1.0) on a random `llm_sample` of the test items, and the cascade. The join
pairs, per test item, tier 0's confidence, correctness and cost from the tier-0 config with
the escalation model's correctness and cost from that model's own config. Only items present
in both configs are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shoal.errors import DatasetError, UserInputError
from shoal.evaluate.records import read_records

RECORDS_NAME = "records.jsonl"


@dataclass(frozen=True)
class JoinedOutcomes:
    """Per-item outcomes of a two-tier cascade, read from one run record.

    Costs are USD per item. `cost1_usd` is what the escalation model's own step cost, so a
    cascade pays `cost0_usd` for every item and `cost1_usd` on top for escalated ones.
    """

    tier0_model: str
    tier1_model: str
    items: NDArray[np.int64]
    confidence: NDArray[np.float64]
    correct0: NDArray[np.bool_]
    correct1: NDArray[np.bool_]
    cost0_usd: NDArray[np.float64]
    cost1_usd: NDArray[np.float64]
    cached1: NDArray[np.bool_]  # escalation step served from the response cache, at $0
    records_path: Path

    @property
    def n(self) -> int:
        return int(self.items.shape[0])

    def subset(self, positions: NDArray[np.intp]) -> JoinedOutcomes:
        """Return the outcomes at `positions` (indices into these arrays, not item ids)."""
        return replace(
            self,
            items=self.items[positions],
            confidence=self.confidence[positions],
            correct0=self.correct0[positions],
            correct1=self.correct1[positions],
            cost0_usd=self.cost0_usd[positions],
            cost1_usd=self.cost1_usd[positions],
            cached1=self.cached1[positions],
        )


def records_path_of(run: Path) -> Path:
    """Return the records.jsonl of a bench output folder, or `run` itself when it is a file."""
    if run.is_dir():
        path = run / RECORDS_NAME
        if not path.is_file():
            raise DatasetError(
                f"no {RECORDS_NAME} in run folder {run}; give the --output folder of "
                "a `shoal bench` run"
            )
        return path
    if run.is_file():
        return run
    raise UserInputError(
        f"run folder not found: {run}; give the --output folder of a `shoal bench` run"
    )


def join_run_records(run: Path, escalation_model: str | None = None) -> JoinedOutcomes:
    """Read a bench run (folder or records.jsonl) and join tier 0 with one escalation model.

    `escalation_model` defaults to the first escalation model in the record. Raises
    DatasetError when the record lacks the tier-0 config, any escalation model's own config,
    or items common to both.
    """
    path = records_path_of(run)
    by_config = _group_by_config(read_records(path), path)
    tier0_model = _tier0_config(by_config, path)
    candidates = _escalation_configs(by_config, tier0_model)
    if not candidates:
        raise DatasetError(
            f"{path} has no records of an escalation model measured alone after "
            f"{tier0_model}; calibrate a `shoal bench` run with at least one --escalate model"
        )
    chosen = escalation_model or candidates[0]
    if chosen not in candidates:
        raise UserInputError(
            f"--escalate {chosen!r} is not an escalation model of {path}; use one of: "
            + ", ".join(candidates)
        )
    return _join(by_config[tier0_model], by_config[chosen], tier0_model, chosen, path)


def _group_by_config(
    records: list[dict[str, Any]], path: Path
) -> dict[str, dict[int, dict[str, Any]]]:
    """Index records by config, then by item, rejecting malformed or repeated items."""
    grouped: dict[str, dict[int, dict[str, Any]]] = {}
    for number, record in enumerate(records, start=1):
        config = record.get("config")
        item = record.get("item")
        steps = record.get("steps")
        if not isinstance(config, str) or not isinstance(item, int) or not steps:
            raise DatasetError(
                f"{path} record {number} lacks a config, an item index or its steps; "
                "calibrate the records.jsonl that `shoal bench` wrote"
            )
        items = grouped.setdefault(config, {})
        if item in items:
            raise DatasetError(
                f"{path} has item {item} of config {config!r} twice (record {number}); "
                "the file mixes runs, so rerun `shoal bench` into an empty --output folder"
            )
        items[item] = record
    return grouped


def _first(items: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return next(iter(items.values()))


def _tier0_config(by_config: dict[str, dict[int, dict[str, Any]]], path: Path) -> str:
    """Return the first config whose records are one step by the model the config is named for."""
    for config, items in by_config.items():
        steps = _first(items)["steps"]
        if len(steps) == 1 and steps[0].get("model") == config:
            return config
    raise DatasetError(
        f"{path} has no records of tier 0 alone; calibrate a classification run of "
        "`shoal bench` (configs: tier 0, each escalation model, cascade)"
    )


def _escalation_configs(
    by_config: dict[str, dict[int, dict[str, Any]]], tier0_model: str
) -> list[str]:
    """Return, in file order, the configs of an escalation model measured alone after tier 0."""
    found = []
    for config, items in by_config.items():
        steps = _first(items)["steps"]
        if (
            len(steps) == 2
            and steps[0].get("model") == tier0_model
            and steps[1].get("model") == config
        ):
            found.append(config)
    return found


def _step_cost(step: dict[str, Any]) -> Decimal:
    return Decimal(str(step["cost"]["usd"]))


def _join(
    tier0: dict[int, dict[str, Any]],
    tier1: dict[int, dict[str, Any]],
    tier0_model: str,
    tier1_model: str,
    path: Path,
) -> JoinedOutcomes:
    items = sorted(set(tier0) & set(tier1))
    if not items:
        raise DatasetError(
            f"{path} has no item measured by both {tier0_model} and {tier1_model}; "
            "rerun `shoal bench` until both configs finish"
        )
    first = [tier0[i] for i in items]
    second = [tier1[i] for i in items]
    try:
        confidence = np.array([float(r["confidence"]) for r in first])
    except (TypeError, ValueError):
        raise DatasetError(
            f"{path} has a {tier0_model} record without a numeric confidence; "
            "calibrate an unedited run record"
        ) from None
    return JoinedOutcomes(
        tier0_model=tier0_model,
        tier1_model=tier1_model,
        items=np.array(items, dtype=np.int64),
        confidence=confidence,
        correct0=np.array([bool(r["correct"]) for r in first]),
        correct1=np.array([bool(r["correct"]) for r in second]),
        cost0_usd=np.array([float(Decimal(str(r["cost_usd"]))) for r in first]),
        # Every step after tier 0's is the escalation model's, failed attempts included.
        cost1_usd=np.array([float(sum(map(_step_cost, r["steps"][1:]))) for r in second]),
        cached1=np.array([bool(r["steps"][1].get("cached")) for r in second]),
        records_path=path,
    )
