"""`shoal compare PIPELINE DATA`: a pipeline's chain against one call that does every step.

PIPELINE and DATA are read as `shoal eval PIPELINE DATA` reads them (see
`shoal.pipeline.command`). The chain's encoder steps train on the train rows, then the
chain and the single call run on the same test rows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shoal.errors import UserInputError
from shoal.options import parse_max_cost, parse_per_label
from shoal.pipeline.command import (
    PipelineData,
    format_per_1k,
    format_share,
    load_pipeline_data,
    load_pipeline_spec,
)
from shoal.pipeline.compare import CompareResult, SideFigures
from shoal.pipeline.eval_summary import StepEvalSummary

# The larger of shoal's two in-process models (models.LOCAL_MODELS), used when no API model is named.
DEFAULT_SINGLE_MODEL = "local:qwen2.5-coder-1.5b"


def compare_command(
    pipeline: Annotated[str, typer.Argument(help="A pipeline YAML file or a shipped example (clinc150_router, ticket_triage).")],
    data: Annotated[Path, typer.Argument(help="A CLINC150 folder, or a CSV or JSON Lines file with the columns the steps read and are scored against.")],
    model: Annotated[str, typer.Option(help="The model of the single call, which does every step in one prompt (default: the largest local model; an API model such as openai:gpt-4o-mini needs its key).")] = DEFAULT_SINGLE_MODEL,
    train: Annotated[Path | None, typer.Option(help="Labelled rows the chain's encoder steps train on (default: a seeded 70% of DATA, or CLINC150's train split).")] = None,
    per_label: Annotated[str, typer.Option(help="Labelled rows kept of each label (of each combination of the steps' gold labels) to train the encoder steps on, or 'all'.")] = "10",
    limit: Annotated[int | None, typer.Option(min=1, help="Test items: a seeded sample of the test rows (default: all).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Items run at the same time on each side.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the train/test split and samples.")] = 0,
    max_cost: Annotated[str | None, typer.Option(help="Spending cap in USD for both sides together; the run stops before a call that could cross it.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="'table' or 'json' (the summary.json document).")] = "table",
    output: Annotated[Path | None, typer.Option(help="Folder for chain/ and single/ records, summary.json and compare.png (default: compare- and the name in the pipeline file).")] = None,
) -> None:
    """Compare a pipeline's chain with one call that does every step: accuracy, cost, tokens, latency."""
    from shoal.bench.view import RichProgress
    from shoal.calls import Budget
    from shoal.pipeline.compare import compare_pipeline

    if output_format not in ("table", "json"):
        raise UserInputError(f"--format must be 'table' or 'json', got {output_format!r}")
    budget = Budget(parse_max_cost(max_cost)) if max_cost is not None else None
    rows_per_label = parse_per_label(per_label)
    spec = load_pipeline_spec(pipeline)
    rows = load_pipeline_data(data, train=train, limit=limit, seed=seed)
    rows.check_columns(spec)
    training = rows.training_rows(spec, rows_per_label, seed)
    folder = output if output is not None else Path(f"compare-{spec.name}")
    status = Console(stderr=True)
    status.print(
        f"comparing {spec.name} with one call of {model} on {len(rows.test)} items; the "
        f"chain's encoder steps train on {len(training)} rows",
        markup=False, style="dim",
    )
    # With --format json, stdout carries the document alone, so the bars go to stderr.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    bars_console = status if output_format == "json" else console
    with RichProgress(bars_console) as bars:
        result = compare_pipeline(
            spec, training, rows.test, model, concurrency=concurrency, output=folder,
            seed=seed, budget=budget, progress=bars,
        )
    if output_format == "json":
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    show_compare_result(result, rows, console)


def show_compare_result(result: CompareResult, data: PipelineData, console: Console) -> None:
    """Print both sides' per-step and end-to-end figures, then the comparison."""
    console.print(
        f"\n{result.pipeline}: chain against one call of {result.single_model}, "
        f"{result.chain.result.n_items} test items; {data.description}.",
        markup=False,
    )
    # Each side scores a specialist on the items its own router sent there, so the counts
    # of scored items differ between the sides.
    table = Table()
    for column in ("step", "chain accuracy (scored)", "single-call accuracy (scored)", "chain $/1k"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for name, step in result.chain.result.steps.items():
        single = result.single.result.steps.get(name)
        table.add_row(
            name, _scored(step), _scored(single), format_per_1k(step.mean_cost_usd)
        )
    console.print(table)

    sides = Table()
    for column in ("side", "end to end", "$/1k", "accuracy per $", "p50 ms", "p95 ms", "tokens", "compute s"):
        sides.add_column(column, justify="left" if column == "side" else "right")
    for side in (result.chain, result.single):
        sides.add_row(*_side_row(side))
    console.print(sides)
    overhead = result.token_overhead_pct
    if overhead is None:
        note = "n/a (the single call used no tokens)"
    elif result.chain.tokens == 0:
        note = f"{overhead:+.1f}% (the chain's steps use no tokens; compare compute seconds)"
    else:
        note = f"{overhead:+.1f}%"
    console.print(f"token overhead of the chain: {note}", markup=False)
    assert result.summary_path is not None  # compare_pipeline always writes the summary
    folder = result.summary_path.parent
    console.print(
        f"Wrote {folder / 'chain'}/, {folder / 'single'}/, {result.summary_path} and "
        f"{result.plot_path}.",
        markup=False,
    )


def _side_row(side: SideFigures) -> list[str]:
    figures = side.result
    per_dollar = figures.accuracy_per_dollar
    return [
        side.label,
        format_share(figures.end_to_end_accuracy),
        format_per_1k(figures.mean_cost_usd),
        "" if per_dollar is None else f"{per_dollar:,.0f}",
        f"{figures.p50_ms:,.0f}",
        f"{figures.p95_ms:,.0f}",
        f"{side.tokens:,}",
        f"{side.compute_seconds:,.2f}",
    ]


def _scored(step: StepEvalSummary | None) -> str:
    if step is None or step.accuracy is None:
        return ""
    return f"{format_share(step.accuracy)} ({step.scored})"
