"""Evaluating a pipeline on labelled rows: one run record per item, then the figures.

Each step with a `gold` column is scored on the items it ran on, and the item is correct
end to end when every step on its path that has a gold value is correct. A misrouted item
is therefore wrong end to end, even where the wrong specialist happens to be right. A
router below its threshold abstains: its label is left out of the end-to-end score, and
the fallback step it sent the item to decides. The gap between the steps' accuracies and
the end-to-end accuracy is the loss from chaining.

One record per item (a JSON line, written as the item finishes):

    {"pipeline": "clinc150-router",
     "item": 12,                                 # index of the row in the rows given
     "gold": {"domain": "banking", "banking": "balance"},   # by step, its gold value
     "correct": {"domain": true, "banking": false},         # steps that ran and have gold
     "routed_correctly": {"banking": true},      # specialists that ran, see below
     "end_to_end_correct": false,                # null when no step has a gold value
     "cost_usd": "0.0000004",                    # the trace's cost, every call included
     "latency_ms": 8.1,                          # wall time of the item
     "trace": {...}}                             # ItemTrace.to_record()

A specialist was routed correctly when it is its route step's `fallback_step`, which
takes any item, or when the route step's gold label routes to it. The figures are
computed from these records alone (see `shoal.pipeline.eval_summary`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal.errors import BudgetExceededError, UserInputError
from shoal.evaluate.records import RunRecordWriter, encode_record
from shoal.pipeline.eval_summary import (
    PipelineEvalResult,
    summarize_pipeline,
    write_pipeline_summary,
)
from shoal.pipeline.executor import Pipeline, _first_leaf
from shoal.pipeline.graph import specialist_owners
from shoal.pipeline.spec import PipelineSpec
from shoal.pipeline.trace import ItemTrace

if TYPE_CHECKING:
    from shoal.bench.progress import Progress

Row = Mapping[str, Any]


def evaluate_pipeline(
    pipeline: Pipeline,
    rows: Sequence[Row],
    *,
    output: Path | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> PipelineEvalResult:
    """Run the pipeline on every row and return its figures, as `evaluate_pipeline_async` does."""
    return asyncio.run(
        evaluate_pipeline_async(
            pipeline, rows, output=output, concurrency=concurrency, progress=progress
        )
    )


async def evaluate_pipeline_async(
    pipeline: Pipeline,
    rows: Sequence[Row],
    *,
    output: Path | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> PipelineEvalResult:
    """Run the pipeline on every row, at most `concurrency` items at a time.

    With `output`, the records go to `output/records.jsonl` (replacing an earlier run's),
    the figures to `output/summary.json` and their plot to `output/pipeline.png`. An error
    that ends an item's run, such as a row without a step's input column, ends the
    evaluation. When the spending cap stops the run, the figures cover the items that
    finished and `stopped` gives the reason. The error is raised only when no item finished.
    """
    if concurrency < 1:
        raise UserInputError(f"concurrency must be at least 1, got {concurrency}")
    if not rows:
        raise UserInputError("no rows to evaluate the pipeline on; give at least one row")
    records: list[dict[str, Any]] = []
    records_path = output / "records.jsonl" if output is not None else None
    if records_path is not None:
        records_path.parent.mkdir(parents=True, exist_ok=True)
        records_path.unlink(missing_ok=True)

    if progress is not None:
        progress.phase(f"evaluate: {pipeline.name} on {len(rows)} items", len(rows))
    slots = asyncio.Semaphore(concurrency)

    async def run_one(index: int, writer: RunRecordWriter | None) -> None:
        async with slots:
            trace = await pipeline.run_item(rows[index])
        record = item_record(pipeline.spec, index, rows[index], trace)
        if writer is not None:
            writer.write(record)
        # The summary reads each record as written to the file, with Decimals as strings.
        records.append(json.loads(encode_record(record)))
        if progress is not None:
            progress.advance()

    opened = RunRecordWriter(records_path) if records_path is not None else nullcontext()
    failure: BaseException | None = None
    with opened as writer:
        try:
            async with asyncio.TaskGroup() as group:
                for index in range(len(rows)):
                    group.create_task(run_one(index, writer))
        except BaseExceptionGroup as group_error:
            failure = _first_leaf(group_error)
    stopped = None
    if isinstance(failure, BudgetExceededError) and records:
        stopped = f"stopped after {len(records)} of {len(rows)} items: {failure}"
    elif failure is not None:
        # Raised outside the handler, so that the error keeps its own cause, not the group.
        raise failure

    records.sort(key=lambda record: record["item"])
    result = summarize_pipeline(records, steps=list(pipeline.spec.steps), records_path=records_path)
    result = dataclasses.replace(result, stopped=stopped)
    if output is not None:
        from shoal.pipeline.compare_plot import plot_pipeline

        result = write_pipeline_summary(output / "summary.json", result)
        plot_pipeline(result, output / "pipeline.png")
        result = dataclasses.replace(result, plot_path=output / "pipeline.png")
    return result


def item_record(spec: PipelineSpec, index: int, row: Row, trace: ItemTrace) -> dict[str, Any]:
    """Build the run record of one item: its trace, and each step's gold value and score."""
    gold = {
        name: _text(row.get(step.gold))
        for name, step in spec.steps.items()
        if step.gold is not None and _text(row.get(step.gold))
    }
    correct = {
        record.step: is_correct(record.prediction, gold[record.step])
        for record in trace.steps
        if record.step in gold
    }
    return {
        "pipeline": spec.name,
        "item": index,
        "gold": gold,
        "correct": correct,
        "routed_correctly": _routed_correctly(spec, trace, gold),
        "end_to_end_correct": _end_to_end(correct, gold, trace),
        "cost_usd": trace.cost_usd,
        "latency_ms": trace.latency_s * 1000,
        "trace": trace.to_record(),
    }


def is_correct(prediction: str | dict[str, Any] | None, gold: str) -> bool:
    """Compare a prediction with a gold value: labels as trimmed text, objects as JSON.

    NOTE: an extract step counts as correct only when its object equals the gold JSON
    object exactly; a per-field score is left to `shoal.evaluate.extraction_metrics`.
    """
    if prediction is None:
        return False
    if isinstance(prediction, dict):
        try:
            return bool(prediction == json.loads(gold))
        except json.JSONDecodeError:
            return False
    return _text(prediction) == gold


def _routed_correctly(
    spec: PipelineSpec, trace: ItemTrace, gold: dict[str, str]
) -> dict[str, bool]:
    owners = specialist_owners(spec.steps)
    routed: dict[str, bool] = {}
    for record in trace.steps:
        owner = owners.get(record.step)
        if owner is None or owner not in gold:
            continue
        route = spec.steps[owner]
        expected = (route.routes or {}).get(gold[owner], route.fallback_step)
        routed[record.step] = record.step in (expected, route.fallback_step)
    return routed


def _end_to_end(correct: dict[str, bool], gold: dict[str, str], trace: ItemTrace) -> bool | None:
    """Return whether every scored step that decides the item's output is correct.

    A skipped step with gold counts as wrong. A route step below its threshold handed the
    item to its fallback step, so its label is left out and the fallback step's score
    counts in its place.
    """
    if any(name in gold for name in trace.skipped):
        return False
    deferred = {record.step for record in trace.steps if record.route_reason == "below threshold"}
    scores = [score for name, score in correct.items() if name not in deferred]
    if not scores:
        return None
    return all(scores)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()
