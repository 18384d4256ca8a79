"""The figures of a pipeline evaluation, computed from its run records alone.

The record schema is in `shoal.pipeline.evaluate`. A step's accuracy is over the items it
ran on that have a gold value for it, and its mean cost over the items it ran on. The
end-to-end accuracy is over the items with at least one scored step. Costs are Decimal
dollars, and summary.json writes the total as a fixed-point string, as
`shoal.evaluate.summary` does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from shoal.errors import UserInputError
from shoal.evaluate import metrics


@dataclass(frozen=True)
class StepEvalSummary:
    """The figures of one step over the items of an evaluation."""

    step: str
    ran: int  # items the step ran on, failed runs included
    share: float  # ran / items evaluated
    scored: int  # items it ran on that have a gold value for it
    accuracy: float | None  # None when no item was scored
    mean_cost_usd: Decimal | None  # over the items it ran on, or None when it never ran
    # Specialists only: the items routed to them correctly, and the accuracy on those.
    routed_correctly: int | None = None
    accuracy_routed_correctly: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ran": self.ran,
            "share": self.share,
            "scored": self.scored,
            "accuracy": self.accuracy,
            "mean_cost_usd": None if self.mean_cost_usd is None else float(self.mean_cost_usd),
            "routed_correctly": self.routed_correctly,
            "accuracy_routed_correctly": self.accuracy_routed_correctly,
        }


@dataclass(frozen=True)
class PipelineEvalResult:
    """The figures of one pipeline over the items of an evaluation, and where they were written."""

    pipeline: str
    n_items: int
    scored_items: int  # items with at least one scored step
    end_to_end_accuracy: float | None
    steps: dict[str, StepEvalSummary]
    total_cost_usd: Decimal
    mean_cost_usd: Decimal
    cost_per_1k_usd: Decimal
    accuracy_per_dollar: float | None  # end-to-end accuracy / mean cost, or None at zero cost
    p50_ms: float
    p95_ms: float
    failed_items: int  # items with a failed or skipped step
    stopped: str | None = None  # why the run ended before every item, e.g. the spending cap
    records_path: Path | None = None
    summary_path: Path | None = None
    plot_path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "n_items": self.n_items,
            "scored_items": self.scored_items,
            "end_to_end_accuracy": self.end_to_end_accuracy,
            "total_cost_usd": f"{self.total_cost_usd:f}",
            "mean_cost_usd": float(self.mean_cost_usd),
            "cost_per_1k_usd": float(self.cost_per_1k_usd),
            "accuracy_per_dollar": self.accuracy_per_dollar,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "failed_items": self.failed_items,
            "stopped": self.stopped,
            "steps": {name: step.to_json() for name, step in self.steps.items()},
        }


def summarize_pipeline(
    records: Sequence[dict[str, Any]],
    *,
    steps: Sequence[str] = (),
    records_path: Path | None = None,
) -> PipelineEvalResult:
    """Compute the figures of pipeline records. `steps` adds steps that may never have run."""
    if not records:
        raise UserInputError("no pipeline records to summarize; evaluate at least one item")
    costs = [_decimal(record, record.get("cost_usd")) for record in records]
    latencies = [float(_field(record, "latency_ms")) for record in records]
    scored = [
        record["end_to_end_correct"]
        for record in records
        if _field(record, "end_to_end_correct") is not None
    ]
    end_to_end = sum(scored) / len(scored) if scored else None
    mean_cost = metrics.mean_cost(costs)

    names = list(dict.fromkeys([*steps, *(name for record in records for name in _ran(record))]))
    return PipelineEvalResult(
        pipeline=str(_field(records[0], "pipeline")),
        n_items=len(records),
        scored_items=len(scored),
        end_to_end_accuracy=end_to_end,
        steps={name: _step_summary(name, records) for name in names},
        total_cost_usd=sum(costs, Decimal(0)),
        mean_cost_usd=mean_cost,
        cost_per_1k_usd=metrics.cost_per_1k(costs),
        accuracy_per_dollar=(
            metrics.accuracy_per_dollar(end_to_end, mean_cost) if end_to_end is not None else None
        ),
        p50_ms=metrics.percentile(latencies, 50),
        p95_ms=metrics.percentile(latencies, 95),
        failed_items=sum(1 for record in records if not _trace_ok(record)),
        records_path=records_path,
    )


def _step_summary(name: str, records: Sequence[dict[str, Any]]) -> StepEvalSummary:
    ran = [record for record in records if name in _ran(record)]
    scores = [record["correct"][name] for record in ran if name in record.get("correct", {})]
    routed = [record for record in ran if name in record.get("routed_correctly", {})]
    routed_right = [record for record in routed if record["routed_correctly"][name]]
    right_scores = [
        record["correct"][name] for record in routed_right if name in record.get("correct", {})
    ]
    step_costs = [_decimal(record, _ran(record)[name].get("cost_usd")) for record in ran]
    return StepEvalSummary(
        step=name,
        ran=len(ran),
        share=len(ran) / len(records),
        scored=len(scores),
        accuracy=_mean(scores),
        mean_cost_usd=metrics.mean_cost(step_costs) if step_costs else None,
        routed_correctly=len(routed_right) if routed else None,
        accuracy_routed_correctly=_mean(right_scores),
    )


def _ran(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the trace's step records by step name."""
    trace = _field(record, "trace")
    return {str(step["step"]): step for step in trace.get("steps", [])}


def _trace_ok(record: dict[str, Any]) -> bool:
    trace = record["trace"]
    steps = trace.get("steps", [])
    return not trace.get("skipped") and all(step.get("status") == "ok" for step in steps)


def _mean(scores: Sequence[bool]) -> float | None:
    return sum(scores) / len(scores) if scores else None


def _field(record: dict[str, Any], key: str) -> Any:
    if key not in record:
        raise UserInputError(
            f"pipeline record of item {record.get('item', '?')!r} has no {key!r} field; "
            "regenerate the records with this version of shoal"
        )
    return record[key]


def _decimal(record: dict[str, Any], value: Any) -> Decimal:
    # str() first, so that a float written by hand brings no binary noise into Decimal.
    try:
        return Decimal(str(value))
    except ArithmeticError as error:
        raise UserInputError(
            f"pipeline record of item {record.get('item', '?')!r} has the cost {value!r}, "
            "which is not a number of dollars; write it as a decimal string"
        ) from error


def write_pipeline_summary(path: Path, result: PipelineEvalResult) -> PipelineEvalResult:
    """Write the figures as indented JSON, and return the result with `summary_path` set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    return dataclasses.replace(result, summary_path=path)
