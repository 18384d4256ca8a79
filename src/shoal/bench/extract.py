"""The extraction bench: each model alone and a fitted cascade on the bundled SNIPS sample.

Every model is an extract step on the same schema. The cascade accepts the first tier's
object when its confidence reaches a threshold fitted on the dev split (the cheapest
setting whose dev exact match is within `tolerance` of the best), and otherwise sends the
item to the next tier. An object that never validates has confidence 0, so it is always escalated.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from shoal.bench.memo import MemoProvider
from shoal.bench.progress import Progress, SilentProgress
from shoal.calls import Budget, GuardedProvider
from shoal.cascade.core import Cascade, CascadeOutcome, Tier
from shoal.cascade.fit import DevOutcomes, ThresholdFit, fit_thresholds
from shoal.errors import BudgetExceededError
from shoal.evaluate.extraction_data import ExtractionDataset, load_bundled_snips
from shoal.evaluate.extraction_metrics import exact_match
from shoal.evaluate.extraction_summary import ExtractionSummary, summarize_extraction
from shoal.evaluate.records import RunRecordWriter, read_records
from shoal.models import load_provider
from shoal.pricing import DEFAULT_MACHINE, MachinePrice
from shoal.tasks.extract import Extraction, ExtractStep, Schema
from shoal.tasks.prediction import ItemContext

CASCADE = "cascade"
DEFAULT_MODELS = ("local:qwen2.5-coder-0.5b", "local:qwen2.5-coder-1.5b")


@dataclass
class ExtractBenchOptions:
    intent: str = "GetWeather"  # the bundled SNIPS intent whose slots are extracted
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    dev_items: int = 40  # dev items the first tier runs on to fit the threshold
    test_items: int = 60
    pool_share: float = 0.5  # least confident share of dev items the next tier runs on
    tolerance: float = 0.01  # dev exact match a cheaper threshold may give up
    max_retries: int = 1
    examples: int = 3  # worked examples from the train split shown before each item
    seed: int = 0
    machine: MachinePrice = DEFAULT_MACHINE
    output: Path | None = None
    max_cost: Decimal | None = None


@dataclass
class ExtractBenchResult:
    options: ExtractBenchOptions
    dataset: str
    n_dev: int
    n_test: int
    fit: ThresholdFit | None
    summaries: list[ExtractionSummary]
    records_path: Path
    summary_path: Path | None
    spent_usd: Decimal | None = None
    stopped: str | None = None


def _sample(dataset: ExtractionDataset, size: int, seed: int) -> ExtractionDataset:
    if size >= len(dataset.examples):
        return dataset
    rng = np.random.default_rng(seed)
    chosen = sorted(int(i) for i in rng.choice(len(dataset.examples), size, replace=False))
    return ExtractionDataset(
        name=dataset.name,
        examples=[dataset.examples[i] for i in chosen],
        schema=dataset.schema,
        field_types=dataset.field_types,
    )


def build_steps(
    models: list[str],
    schema: Schema,
    train: ExtractionDataset,
    budget: Budget | None,
    *,
    machine: MachinePrice,
    max_retries: int,
    examples: int,
) -> list[ExtractStep]:
    """Build one extract step per model, each shown the first `examples` train items."""
    shown = [(example.text, example.gold) for example in train.examples[:examples]]
    steps = []
    for name in models:
        provider = load_provider(name, machine=machine)
        guarded = MemoProvider(GuardedProvider(provider, budget=budget))
        steps.append(ExtractStep(guarded, schema, max_retries=max_retries, examples=shown))
    return steps


def _is_right(value: dict[str, Any] | None, gold: dict[str, Any], types: dict[str, str]) -> bool:
    return value is not None and exact_match(gold, value, normalisers=types)  # type: ignore[arg-type]


async def _fit(
    steps: list[ExtractStep], dev: ExtractionDataset, options: ExtractBenchOptions,
    progress: Progress,
) -> ThresholdFit:
    """Run the first tier on dev, the second on its least confident items, fit the threshold."""
    first: list[Extraction] = []
    progress.phase(f"dev: {steps[0].model} on {len(dev.examples)} items", len(dev.examples))
    for example in dev.examples:
        first.append(await steps[0].predict(ItemContext(text=example.text)))
        progress.advance()
    confidences = np.array([result.confidence for result in first])
    ceiling = float(np.quantile(confidences, options.pool_share))
    pool = [i for i, result in enumerate(first) if result.confidence <= ceiling]
    progress.phase(f"dev: {steps[1].model} on the {len(pool)} least confident items", len(pool))
    second: dict[int, Extraction] = {}
    for index in pool:
        second[index] = await steps[1].predict(ItemContext(text=dev.examples[index].text))
        progress.advance()

    outcomes = []
    for results in (dict(enumerate(first)), second):
        size = len(dev.examples)
        confidence, correct, cost = np.full(size, np.nan), np.zeros(size, bool), np.zeros(size)
        for index, result in results.items():
            example = dev.examples[index]
            confidence[index] = result.confidence
            correct[index] = _is_right(result.value, example.gold, dev.field_types)
            cost[index] = float(result.cost.amount)
        outcomes.append(DevOutcomes(confidence=confidence, correct=correct, cost_usd=cost))
    # The ceiling is nudged up so that items exactly at it count as reaching the next tier.
    return fit_thresholds(outcomes, [float(np.nextafter(ceiling, np.inf))], options.tolerance)


def _record(
    config: str, index: int, example: Any, outcome: CascadeOutcome, types: dict[str, str]
) -> dict[str, Any]:
    accepted = outcome.prediction
    return {
        "config": config,
        "item": index,
        "id": example.id,
        "text": example.text,
        "gold": example.gold,
        "prediction": accepted.value,  # type: ignore[attr-defined]
        "valid": accepted.value is not None,  # type: ignore[attr-defined]
        "correct": _is_right(accepted.value, example.gold, types),  # type: ignore[attr-defined]
        "confidence": accepted.confidence,
        **outcome.record_fields(),
    }


async def evaluate_config(
    config: str, cascade: Cascade, test: ExtractionDataset, writer: RunRecordWriter,
    progress: Progress,
) -> None:
    progress.phase(f"test: {config} on {len(test.examples)} items", len(test.examples))
    for index, example in enumerate(test.examples):
        outcome = await cascade.run(example.text)
        writer.write(_record(config, index, example, outcome, test.field_types))
        progress.advance()


async def run_extract_bench(
    options: ExtractBenchOptions, progress: Progress | None = None
) -> ExtractBenchResult:
    progress = progress or SilentProgress()
    output = options.output or Path(tempfile.mkdtemp(prefix="shoal-extract-"))
    output.mkdir(parents=True, exist_ok=True)
    records_path = output / "records.jsonl"
    records_path.unlink(missing_ok=True)

    dev = _sample(load_bundled_snips(options.intent, "dev"), options.dev_items, options.seed)
    test = _sample(load_bundled_snips(options.intent, "test"), options.test_items, options.seed)
    schema = Schema(test.schema, name=options.intent)
    budget = Budget(options.max_cost) if options.max_cost is not None else None
    train = load_bundled_snips(options.intent, "train")
    steps = build_steps(
        options.models, schema, train, budget,
        machine=options.machine, max_retries=options.max_retries, examples=options.examples,
    )

    fit = None
    stopped = None
    try:
        if len(steps) > 1:
            fit = await _fit(steps, dev, options, progress)
        with RunRecordWriter(records_path) as writer:
            for step in steps:
                await evaluate_config(step.model, Cascade([Tier(step)]), test, writer, progress)  # type: ignore[list-item]
            if fit is not None:
                tiers = [Tier(steps[0], fit.thresholds[0]), Tier(steps[1])]  # type: ignore[arg-type]
                await evaluate_config(CASCADE, Cascade(tiers), test, writer, progress)
    except BudgetExceededError as exc:
        stopped = str(exc)

    records = read_records(records_path) if records_path.is_file() else []
    summaries = summarize_extraction(records, test.field_types)
    summary_path = None
    if options.output is not None:
        summary_path = output / "summary.json"
        summary_path.write_text(
            ExtractionSummary.to_json_text(summaries, fit), encoding="utf-8"
        )
    return ExtractBenchResult(
        options=options, dataset=test.name, n_dev=len(dev.examples), n_test=len(test.examples),
        fit=fit, summaries=summaries, records_path=records_path, summary_path=summary_path,
        spent_usd=budget.spent if budget is not None else None, stopped=stopped,
    )
