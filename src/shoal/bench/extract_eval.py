"""`shoal eval` for extraction: each model alone on a real extraction dataset.

Datasets: SROIE receipts (company, date, address, total), SNIPS slots of one intent, and the
SQuAD 2.0 sample (an answer span, or null when the context does not answer). The figures
are field F1, exact match, $/1k, field F1 per dollar and latency, and for SQuAD also its own
exact match and F1 with unanswerable questions scored as SQuAD 2.0 does.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from shoal.bench.extract import DEFAULT_MODELS, build_steps, evaluate_config
from shoal.bench.progress import Progress, SilentProgress
from shoal.calls import Budget
from shoal.cascade.core import Cascade, Tier
from shoal.errors import BudgetExceededError, UserInputError
from shoal.evaluate.extraction_data import (
    ExtractionDataset,
    load_snips,
    load_squad2,
    load_sroie,
)
from shoal.evaluate.extraction_summary import ExtractionSummary, summarize_extraction
from shoal.evaluate.records import RunRecordWriter, read_records
from shoal.pricing import DEFAULT_MACHINE, MachinePrice
from shoal.tasks.extract import Schema

DATASETS = ("sroie", "snips", "squad2")


@dataclass
class ExtractEvalOptions:
    dataset: str
    path: Path
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    limit: int = 20  # first items of the dataset, in file order
    intent: str = "GetWeather"  # SNIPS only
    max_retries: int = 1
    machine: MachinePrice = DEFAULT_MACHINE
    output: Path | None = None
    max_cost: Decimal | None = None


@dataclass
class ExtractEvalResult:
    options: ExtractEvalOptions
    dataset: str
    n_items: int
    summaries: list[ExtractionSummary]
    records_path: Path
    summary_path: Path | None
    stopped: str | None = None


def check_dataset_name(name: str) -> None:
    """Raise UserInputError when `name` is not an extraction dataset shoal can load."""
    if name not in DATASETS:
        raise UserInputError(
            f"unknown dataset {name!r}; use one of: {', '.join(DATASETS)}, or give a "
            "pipeline: a .yaml file or a shipped example (clinc150_router, ticket_triage)"
        )


def load_extraction_dataset(options: ExtractEvalOptions) -> ExtractionDataset:
    check_dataset_name(options.dataset)
    if options.dataset == "sroie":
        return load_sroie(options.path, limit=options.limit)
    if options.dataset == "snips":
        return load_snips(options.path, options.intent, "test", limit=options.limit)
    return load_squad2(options.path, limit=options.limit)


async def run_extract_eval(
    options: ExtractEvalOptions, progress: Progress | None = None
) -> ExtractEvalResult:
    progress = progress or SilentProgress()
    data = load_extraction_dataset(options)
    output = options.output or Path(tempfile.mkdtemp(prefix="shoal-eval-"))
    output.mkdir(parents=True, exist_ok=True)
    records_path = output / "records.jsonl"
    records_path.unlink(missing_ok=True)
    budget = Budget(options.max_cost) if options.max_cost is not None else None
    no_examples = ExtractionDataset(data.name, [], data.schema, data.field_types)
    steps = build_steps(
        options.models, Schema(data.schema, name=options.dataset), no_examples, budget,
        machine=options.machine, max_retries=options.max_retries, examples=0,
    )

    stopped = None
    try:
        with RunRecordWriter(records_path) as writer:
            for step in steps:
                await evaluate_config(step.model, Cascade([Tier(step)]), data, writer, progress)  # type: ignore[list-item]
    except BudgetExceededError as exc:
        stopped = str(exc)

    alternatives = ("answer",) if options.dataset == "squad2" else ()
    records = read_records(records_path) if records_path.is_file() else []
    summaries = summarize_extraction(records, data.field_types, alternatives)
    summary_path = None
    if options.output is not None:
        summary_path = output / "summary.json"
        summary_path.write_text(ExtractionSummary.to_json_text(summaries, None), "utf-8")
    return ExtractEvalResult(
        options=options, dataset=data.name, n_items=len(data.examples), summaries=summaries,
        records_path=records_path, summary_path=summary_path, stopped=stopped,
    )
