"""The bench: train tier 0, fit the cascade on dev, evaluate every config on test."""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from shoal.bench.data import BenchData
from shoal.bench.fitting import ChainFit, fit_chain
from shoal.bench.memo import MemoProvider
from shoal.bench.progress import Progress, SilentProgress
from shoal.calibration.saved import SavedThresholds, cascade_from_thresholds, load_thresholds
from shoal.calls import Budget, CachedProvider, GuardedProvider, ResponseCache
from shoal.cascade.core import ALWAYS_ESCALATE, Cascade, CascadeOutcome, Tier
from shoal.errors import BudgetExceededError, UserInputError
from shoal.evaluate.datasets import LabelledDataset, stratified_sample
from shoal.evaluate.records import RunRecordWriter, read_records
from shoal.evaluate.summary import ConfigSummary, summarize, write_summary
from shoal.models import load_encoder, load_provider, parse_model
from shoal.pricing import DEFAULT_MACHINE, MachinePrice
from shoal.providers.local import LlamaCppProvider
from shoal.report.plot import plot_pareto
from shoal.tasks.channel import DEFAULT_TEXT_KIND, ChannelStep
from shoal.tasks.classify import (
    DEFAULT_INSTRUCTIONS,
    CandidateChoiceStep,
    CandidateStep,
    EncoderStep,
)

logger = logging.getLogger("shoal.bench")

CASCADE = "cascade"
SCORINGS = ("auto", "channel", "choice")  # auto: channel for local models, choice for the rest


@dataclass
class BenchOptions:
    encoder: str = "encoder:minilm"
    escalate: list[str] = field(default_factory=lambda: ["local:qwen2.5-coder-1.5b"])
    per_label: int | None = 10  # tier 0's training examples per label; None: the whole pool
    top_k: int = 3  # labels an escalation model chooses among
    llm_sample: int = 100  # test items a single escalation model is measured on
    examples_per_label: int = 2  # retrieved labelled examples shown per candidate label
    pool_share: float = 0.3  # least confident share of dev items escalation tiers run on
    tolerance: float = 0.005  # accuracy a cheaper threshold setting may give up on dev
    seed: int = 0
    machine: MachinePrice = DEFAULT_MACHINE
    allow_download: bool = False
    output: Path | None = None
    instructions: str | None = None  # replaces the data's instructions to escalation models
    scoring: str = "auto"  # how escalation models score the candidates; one of SCORINGS
    text_kind: str | None = None  # names the texts in channel prompts; None: the data's own
    max_cost: Decimal | None = None  # the run's spending cap in USD; None: no cap
    cache_path: Path | None = None  # response cache of API models; None: no cache
    thresholds: Path | None = None  # a `shoal calibrate` file used instead of the dev fit


@dataclass
class BenchResult:
    data: BenchData
    options: BenchOptions
    n_train: int
    fit: ChainFit | None
    summaries: list[ConfigSummary]
    records_path: Path
    summary_path: Path | None
    plot_path: Path | None
    fit_path: Path | None
    spent_usd: Decimal | None = None  # settled spend against the cap, when one was set
    stopped: str | None = None  # why the run stopped early (the budget), or None
    thresholds: SavedThresholds | None = None  # the loaded --thresholds file, if any


def _record(
    config: str, index: int, text: str, label: str, outcome: CascadeOutcome, note: str | None
) -> dict[str, Any]:
    accepted = outcome.prediction
    record: dict[str, Any] = {
        "config": config,
        "item": index,
        "text": text,
        "label": label,
        "prediction": accepted.label,
        "confidence": accepted.confidence,
        "correct": accepted.label == label,
        **outcome.record_fields(),
    }
    if note:
        record["note"] = note
    return record


async def _evaluate(
    config: str,
    cascade: Cascade,
    test: LabelledDataset,
    indices: list[int],
    writer: RunRecordWriter,
    progress: Progress,
    note: str | None = None,
) -> None:
    progress.phase(f"test: {config} on {len(indices)} items", len(indices))
    for index in indices:
        outcome = await cascade.run(test.texts[index])
        writer.write(_record(config, index, test.texts[index], test.labels[index], outcome, note))
        progress.advance()


def _escalation_steps(
    options: BenchOptions,
    encoder_step: EncoderStep,
    data: BenchData,
    budget: Budget | None,
    cache: ResponseCache | None,
) -> list[CandidateStep]:
    if options.scoring not in SCORINGS:
        raise UserInputError(
            f"unknown scoring {options.scoring!r}; use one of: {', '.join(SCORINGS)}"
        )
    steps: list[CandidateStep] = []
    for name in options.escalate:
        if options.scoring == "channel" and parse_model(name).provider != "local":
            raise UserInputError(
                f"--scoring channel needs a local model, and {name} is not one; "
                "use --scoring choice or auto"
            )
        provider = load_provider(
            name, machine=options.machine, allow_download=options.allow_download
        )
        local = isinstance(provider, LlamaCppProvider)
        if local:
            provider.load()
        # Local models are not cached: their cost and latency are what the bench measures.
        guarded: Any = GuardedProvider(provider, budget=budget)
        if cache is not None and not local:
            guarded = CachedProvider(guarded, cache)
        shared: dict[str, Any] = {
            "retriever": encoder_step.classifier,
            "top_k": options.top_k,
            "examples_per_label": options.examples_per_label,
        }
        if options.scoring == "choice" or not local:
            instructions = options.instructions or data.instructions or DEFAULT_INSTRUCTIONS
            steps.append(
                CandidateChoiceStep(MemoProvider(guarded), instructions=instructions, **shared)
            )
        else:
            text_kind = options.text_kind or data.text_kind or DEFAULT_TEXT_KIND
            steps.append(ChannelStep(MemoProvider(guarded), text_kind=text_kind, **shared))
    return steps


async def run_bench(
    data: BenchData, options: BenchOptions, progress: Progress | None = None
) -> BenchResult:
    progress = progress or SilentProgress()
    saved = _saved_thresholds(options)
    output = options.output or Path(tempfile.mkdtemp(prefix="shoal-bench-"))
    output.mkdir(parents=True, exist_ok=True)
    records_path = output / "records.jsonl"
    records_path.unlink(missing_ok=True)

    budget = Budget(options.max_cost) if options.max_cost is not None else None
    cache = ResponseCache(options.cache_path) if options.cache_path is not None else None
    # Models are loaded before any work, so a bad name or file fails in seconds.
    classifier = load_encoder(
        options.encoder, machine=options.machine, allow_download=options.allow_download
    )
    encoder_step = EncoderStep(classifier, budget=budget)
    steps = _escalation_steps(options, encoder_step, data, budget, cache)

    train = stratified_sample(data.train_pool, options.per_label, options.seed)
    progress.phase(f"train: {options.encoder} on {len(train)} labelled examples", 1)
    classifier.fit(train.texts, train.labels)
    progress.advance()
    fit = None
    stopped = None
    try:
        if steps and saved is None:
            fit = await fit_chain(
                encoder_step, steps, data.dev,
                pool_share=options.pool_share, tolerance=options.tolerance, progress=progress,
            )
        await _evaluate_configs(
            data, options, encoder_step, steps, fit, saved, records_path, progress
        )
    except BudgetExceededError as exc:
        # Every finished item is already in the run record; the summary covers those.
        stopped = str(exc)
        logger.info("run stopped by the budget: %s", exc)
    finally:
        if cache is not None:
            cache.close()

    summaries = summarize(read_records(records_path)) if records_path.is_file() else []
    summary_path = plot_path = fit_path = None
    if options.output is not None:
        summary_path = output / "summary.json"
        write_summary(summary_path, summaries)
        if summaries:
            plot_path = output / "accuracy_vs_cost.png"
            plot_pareto(summaries, plot_path, title=f"Accuracy against $/1k items: {data.name}")
        if fit is not None:
            fit_path = output / "fit.json"
            _write_fit(fit_path, fit, options, steps)
    return BenchResult(
        data=data, options=options, n_train=len(train), fit=fit, summaries=summaries,
        records_path=records_path, summary_path=summary_path, plot_path=plot_path,
        fit_path=fit_path, spent_usd=budget.spent if budget is not None else None,
        stopped=stopped, thresholds=saved,
    )


def _saved_thresholds(options: BenchOptions) -> SavedThresholds | None:
    """Load --thresholds and check its models now, before any model is loaded."""
    if options.thresholds is None:
        return None
    saved = load_thresholds(options.thresholds)
    saved.check_models(options.encoder, options.escalate, options.thresholds)
    return saved


async def _evaluate_configs(
    data: BenchData,
    options: BenchOptions,
    encoder_step: EncoderStep,
    steps: list[CandidateStep],
    fit: ChainFit | None,
    saved: SavedThresholds | None,
    records_path: Path,
    progress: Progress,
) -> None:
    """Evaluate tier 0, each escalation model alone, then the cascade, on test.

    The cascade uses the saved thresholds when given, else the dev fit.
    """
    all_items = list(range(len(data.test)))
    with RunRecordWriter(records_path) as writer:
        await _evaluate(
            encoder_step.model, Cascade([Tier(encoder_step)]), data.test, all_items, writer,
            progress,
        )
        for step in _single_model_steps(steps):
            subsample = _subsample(data.test, options)
            note = (
                f"{_describe(step)} {encoder_step.model}'s top {options.top_k} labels"
                + (f"; measured on a random {len(subsample)} of {len(data.test)} test items"
                   if len(subsample) < len(data.test) else "")
            )
            single = Cascade([Tier(encoder_step, ALWAYS_ESCALATE), Tier(step)])
            await _evaluate(step.model, single, data.test, subsample, writer, progress, note)
        cascade = None
        if saved is not None:
            cascade = cascade_from_thresholds(saved, encoder_step, steps[0], options.thresholds)
        elif fit is not None:
            tiers = [Tier(encoder_step, fit.thresholds.thresholds[0])]
            tiers += [
                Tier(step, fit.thresholds.thresholds[i + 1] if i + 1 < len(steps) else None)
                for i, step in enumerate(steps)
            ]
            cascade = Cascade(tiers)
        if cascade is not None:
            note = " -> ".join(cascade.models)
            await _evaluate(CASCADE, cascade, data.test, all_items, writer, progress, note)


def _describe(step: CandidateStep) -> str:
    if isinstance(step, ChannelStep):
        return "scores the text after each of"
    return "chooses among"


def _single_model_steps(steps: list[CandidateStep]) -> list[CandidateStep]:
    """Copy the escalation steps with model weight 1.0, so each model chooses alone."""
    copies = [copy.copy(step) for step in steps]
    for step in copies:
        step.model_weight = 1.0
    return copies


def _subsample(test: LabelledDataset, options: BenchOptions) -> list[int]:
    """Return the sorted indices of a random `llm_sample` test items (all when fewer)."""
    if options.llm_sample >= len(test):
        return list(range(len(test)))
    rng = np.random.default_rng(options.seed)
    return sorted(int(i) for i in rng.choice(len(test), size=options.llm_sample, replace=False))


def _write_fit(
    path: Path, fit: ChainFit, options: BenchOptions, steps: list[CandidateStep]
) -> None:
    document = {
        "models": [options.encoder, *options.escalate],
        "scoring": [type(step).__name__ for step in steps],
        "thresholds": list(fit.thresholds.thresholds),
        "model_weights": fit.model_weights,
        "dev_pool_ceilings": fit.ceilings,
        "dev_pool_sizes": fit.pool_sizes,
        "dev_accuracy": fit.thresholds.dev_accuracy,
        "tier0_dev_accuracy": fit.thresholds.tier0_dev_accuracy,
        "best_dev_accuracy": fit.thresholds.best_dev_accuracy,
        "dev_shares": list(fit.thresholds.dev_shares),
        "tolerance": options.tolerance,
        "escalates": fit.thresholds.escalates,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
