"""A pipeline's chain of steps against one call that does every step, on the same items.

The chain is trained, bound and evaluated as `shoal eval PIPELINE DATA` does. The single
call (see `shoal.pipeline.single_call`) is scored against the same gold columns. Both
sides' figures come from their records alone, by `summarize_pipeline`:

    output/chain/records.jsonl, output/chain/summary.json   # the chain, as `shoal eval` writes them
    output/single/records.jsonl                             # the single call, same record schema
    output/summary.json                                     # both sides and the comparison
    output/compare.png                                      # accuracy against $ per 1,000 items

The token overhead is (chain tokens - single-call tokens) / single-call tokens, in percent,
with tokens counted as input plus output tokens of every call's usage. Encoder steps use
no tokens, so their work shows as compute seconds instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal.calls import Budget, GuardedProvider
from shoal.errors import BudgetExceededError, UserInputError
from shoal.evaluate.records import RunRecordWriter, encode_record, read_records
from shoal.pipeline.bind import bind_pipeline
from shoal.pipeline.eval_summary import PipelineEvalResult, summarize_pipeline
from shoal.pipeline.evaluate import evaluate_pipeline
from shoal.pipeline.model_steps import loaded_provider
from shoal.pipeline.single_call import SingleCall, plan_single_call
from shoal.pipeline.spec import PipelineSpec
from shoal.pipeline.train import train_pipeline
from shoal.pricing import DEFAULT_MACHINE, MachinePrice
from shoal.tasks.extract import ExtractStep

if TYPE_CHECKING:
    from shoal.bench.progress import Progress

logger = logging.getLogger("shoal.pipeline.compare")

Row = Mapping[str, Any]
SINGLE_CALL_RETRIES = 1  # corrected replies requested after a reply that does not validate
SINGLE_CALL_MAX_TOKENS = 512


@dataclass(frozen=True)
class SideFigures:
    """One side of the comparison: its evaluation figures and the work its calls did."""

    label: str  # "chain" or "single call"
    result: PipelineEvalResult
    input_tokens: int
    output_tokens: int
    compute_seconds: float

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_json(self) -> dict[str, Any]:
        return {
            **self.result.to_json(),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "tokens": self.tokens,
            "compute_seconds": self.compute_seconds,
        }


@dataclass(frozen=True)
class CompareResult:
    """Both sides' figures on the same test items, and where they were written."""

    pipeline: str
    single_model: str
    chain: SideFigures
    single: SideFigures
    summary_path: Path | None = None
    plot_path: Path | None = None

    @property
    def token_overhead_pct(self) -> float | None:
        """Return the chain's extra tokens in percent of the single call's, None when it used none."""
        if self.single.tokens == 0:
            return None
        return (self.chain.tokens - self.single.tokens) / self.single.tokens * 100

    def to_json(self) -> dict[str, Any]:
        chain_accuracy = self.chain.result.end_to_end_accuracy
        single_accuracy = self.single.result.end_to_end_accuracy
        difference = (
            None
            if chain_accuracy is None or single_accuracy is None
            else chain_accuracy - single_accuracy
        )
        return {
            "pipeline": self.pipeline,
            "single_model": self.single_model,
            "n_items": self.chain.result.n_items,
            "chain": self.chain.to_json(),
            "single": self.single.to_json(),
            "comparison": {
                "token_overhead_pct": self.token_overhead_pct,
                "end_to_end_accuracy_difference": difference,
            },
        }


def compare_pipeline(
    spec: PipelineSpec,
    train_rows: Sequence[Row],
    test_rows: Sequence[Row],
    single_model: str,
    *,
    concurrency: int = 4,
    output: Path,
    per_label: int | None = None,
    seed: int = 0,
    machine: MachinePrice = DEFAULT_MACHINE,
    single_step: ExtractStep | None = None,
    budget: Budget | None = None,
    progress: Progress | None = None,
) -> CompareResult:
    """Run the chain and the single call on `test_rows`, and write the records and figures.

    The records are written to `output` (see the module doc) and the figures read from them.
    Both sides draw on `budget`; a side it stops raises BudgetExceededError, and the
    records written until then stay in `output`.

    `single_step` replaces the ExtractStep built for `single_model`, for callers that
    configure their own provider, retries or token limit.
    """
    if not test_rows:
        raise UserInputError("no test rows to compare on; give at least one row")
    plan = plan_single_call(spec, train_rows)
    if single_step is None:
        provider = GuardedProvider(loaded_provider(single_model, machine), budget=budget)
        single_step = ExtractStep(
            provider,
            plan.schema,
            instructions=plan.instructions,
            max_retries=SINGLE_CALL_RETRIES,
            max_tokens=SINGLE_CALL_MAX_TOKENS,
        )

    builder = train_pipeline(
        spec, train_rows, per_label=per_label, seed=seed, machine=machine, budget=budget
    )
    logger.info("comparing %s: chain on %d items", spec.name, len(test_rows))
    chain_result = evaluate_pipeline(
        bind_pipeline(spec, builder), test_rows, output=output / "chain",
        concurrency=concurrency, progress=progress,
    )
    if chain_result.stopped is not None:
        raise BudgetExceededError(
            f"the chain {chain_result.stopped}; the single call was not run. The chain's "
            f"records and figures are in {output / 'chain'}"
        )
    assert chain_result.records_path is not None  # evaluate_pipeline sets it with an output
    chain_records = read_records(chain_result.records_path)

    logger.info(
        "comparing %s: single call of %s on %d items", spec.name, single_model, len(test_rows)
    )
    single_output = output / "single"
    single_records = asyncio.run(
        _run_single(
            SingleCall(spec, plan, single_step), test_rows, concurrency, single_output, progress
        )
    )
    single_result = summarize_pipeline(
        single_records,
        steps=list(spec.steps),
        records_path=single_output / "records.jsonl",
    )
    # The single call's cost is not split by step, so no step has a mean cost of its own.
    single_steps = {
        name: dataclasses.replace(step, mean_cost_usd=None)
        for name, step in single_result.steps.items()
    }
    single_result = dataclasses.replace(single_result, steps=single_steps)

    result = CompareResult(
        pipeline=spec.name,
        single_model=single_model,
        chain=_side("chain", chain_result, _chain_usages(chain_records)),
        single=_side("single call", single_result, _single_usages(single_records)),
    )
    return _write(result, output)


async def _run_single(
    call: SingleCall,
    rows: Sequence[Row],
    concurrency: int,
    output: Path,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Run the single call on every row, at most `concurrency` at a time, writing each record.

    Records are written as items finish, as `evaluate_pipeline` writes them, and returned
    in item order.
    """
    if concurrency < 1:
        raise UserInputError(f"concurrency must be at least 1, got {concurrency}")
    slots = asyncio.Semaphore(concurrency)
    output.mkdir(parents=True, exist_ok=True)
    (output / "records.jsonl").unlink(missing_ok=True)
    if progress is not None:
        progress.phase(f"single call: {call.step.model} on {len(rows)} items", len(rows))

    with RunRecordWriter(output / "records.jsonl") as writer:

        async def run_one(index: int) -> dict[str, Any]:
            async with slots:
                record = await call.record(index, rows[index])
            writer.write(record)
            if progress is not None:
                progress.advance()
            return record

        records = await asyncio.gather(*(run_one(index) for index in range(len(rows))))
    # The summary reads each record as it is written, with Decimals as strings.
    return [json.loads(encode_record(record)) for record in records]


def _chain_usages(records: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for record in records:
        for step in record["trace"]["steps"]:
            for call in step.get("calls", []):
                for tier in call.get("tiers", []):
                    yield tier.get("usage") or {}


def _single_usages(records: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for record in records:
        call = record["trace"].get("call")
        if call is not None:
            yield call.get("usage") or {}


def _side(label: str, result: PipelineEvalResult, usages: Iterator[dict[str, Any]]) -> SideFigures:
    listed = list(usages)
    return SideFigures(
        label=label,
        result=result,
        input_tokens=sum(int(usage.get("input_tokens", 0)) for usage in listed),
        output_tokens=sum(int(usage.get("output_tokens", 0)) for usage in listed),
        compute_seconds=sum(float(usage.get("compute_seconds", 0.0)) for usage in listed),
    )


def _write(result: CompareResult, output: Path) -> CompareResult:
    from shoal.pipeline.compare_plot import plot_compare

    output.mkdir(parents=True, exist_ok=True)
    summary_path = output / "summary.json"
    summary_path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    plot_path = output / "compare.png"
    plot_compare(result, plot_path)
    return dataclasses.replace(result, summary_path=summary_path, plot_path=plot_path)
