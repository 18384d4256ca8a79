"""`shoal simulate`: every routing and cascade strategy on logged outcomes, with no model calls."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shoal.errors import UserInputError

OUTPUT_FORMATS = ("table", "json")
DEFAULT_TOLERANCE = 0.01


def load_outcome_files(path: Path) -> list[Any]:
    """Load RouterBench-style CSV files (one file or a folder) or a shoal records.jsonl."""
    from shoal.simulate.outcomes import load_routerbench, load_routerbench_dir, load_shoal_records

    if path.is_dir():
        if not any(path.glob("*.csv")) and (path / "records.jsonl").is_file():
            return [load_shoal_records(path / "records.jsonl")]
        return load_routerbench_dir(path)
    if not path.exists():
        raise UserInputError(f"outcomes not found: {path}; give a CSV file, a folder or records.jsonl")
    if path.suffix == ".csv":
        return [load_routerbench(path)]
    if path.suffix == ".jsonl":
        return [load_shoal_records(path)]
    raise UserInputError(
        f"cannot read {path}: give a RouterBench-style .csv file, a folder of them, or the "
        "records.jsonl of a shoal bench run"
    )


def simulate_command(
    outcomes: Annotated[list[Path], typer.Argument(help="RouterBench-style CSV files or folders (train and test splits are paired by file name), or the records.jsonl of a shoal bench run.")],
    reference: Annotated[str | None, typer.Option(help="The model the strategies are measured against (default: gpt-4-1106-preview when present, else the most accurate model on train).")] = None,
    tolerance: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Accuracy (0-1) below the reference's that a strategy's chosen setting may give up on train, for a lower cost (default: 0.01).")] = None,
    cost_share: Annotated[float | None, typer.Option(min=0.0, help="Instead of --tolerance: choose each strategy's most accurate setting whose train cost is at most this share of the reference's, e.g. 0.3.")] = None,
    encoder: Annotated[str, typer.Option(help="Sentence encoder that embeds prompts for the learned routers, or 'none' to skip them.")] = "encoder:minilm",
    output_format: Annotated[str, typer.Option("--format", help="'table' or 'json' (JSON on stdout).")] = "table",
    output: Annotated[Path | None, typer.Option(help="Folder for simulate.json and one PNG plot per task.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random splits and folds.")] = 0,
) -> None:
    """Simulate single models, the oracle, random mixes, learned routers and cascades on logged outcomes.

    Every strategy's setting is chosen on the train split and scored on the test split.
    """
    from shoal.simulate.report import result_rows, simulate_tasks

    if tolerance is not None and cost_share is not None:
        raise UserInputError("--tolerance and --cost-share choose settings in two ways; give one")
    if output_format not in OUTPUT_FORMATS:
        raise UserInputError(f"invalid --format {output_format!r}; use table or json")
    if output is not None and output.exists() and not output.is_dir():
        raise UserInputError(f"--output {output} is a file; give a folder for simulate.json and the plots")
    tables = [table for path in outcomes for table in load_outcome_files(path)]
    embed = None
    if encoder.lower() != "none":
        from shoal.models import load_encoder

        embed = load_encoder(encoder).encoder.embed
    progress = Console(stderr=True)
    reports = simulate_tasks(
        tables, reference=reference, tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
        cost_share=cost_share, embed=embed,
        seed=seed,
        progress=lambda message: progress.print(message, markup=False, style="dim"),
    )
    document = {
        "tasks": [_task_fields(report) for report in reports],
        "strategies": [row for report in reports for row in result_rows(report)],
    }
    if output is not None:
        _write_output(output, reports, document)
    if output_format == "json":
        sys.stdout.write(json.dumps(_json_safe(document), indent=2) + "\n")
        return
    console = Console() if sys.stdout.isatty() else Console(width=160)
    for report in reports:
        _show_task(console, report, [r for r in document["strategies"] if r["task"] == report.task])
    if output is not None:
        console.print(f"Wrote {output / 'simulate.json'} and one plot per task.", markup=False)


def _task_fields(report: Any) -> dict[str, Any]:
    return {
        "task": report.task,
        "train_items": report.train_items,
        "test_items": report.test_items,
        "reference": report.reference,
        "aiq_cost_range_per_1k_usd": [cost * 1000 for cost in report.cost_range],
        "goal": report.goal,
        "notes": report.notes,
    }


def _write_output(folder: Path, reports: list[Any], document: dict[str, Any]) -> None:
    from shoal.simulate.plot import plot_task

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserInputError(
            f"cannot create --output folder {folder}: {error.strerror or error}"
        ) from None
    (folder / "simulate.json").write_text(json.dumps(_json_safe(document), indent=2) + "\n")
    for report in reports:
        plot_task(report, folder / f"{report.task}.png")


def _json_safe(value: Any) -> Any:
    """Replace infinities and NaN, which JSON cannot hold, with null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _show_task(console: Console, report: Any, rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"{report.task}: {report.train_items} train, {report.test_items} test items")
    for column in ("strategy", "accuracy", "$/1k", "acc/$", "AIQ", "oracle saving", "setting"):
        table.add_column(column, justify="left" if column in ("strategy", "setting") else "right")
    for row in rows:
        captured = row["oracle_saving_captured"]
        per_dollar = row["accuracy_per_dollar"]
        table.add_row(
            row["strategy"],
            f"{row['accuracy']:.1%}",
            f"{row['cost_per_1k_usd']:.3f}",
            "free" if per_dollar is None else f"{per_dollar:,.0f}",
            f"{row['aiq']:.3f}",
            "-" if captured is None else f"{captured:.0%}",
            row["setting"],
        )
    console.print(table)
    goal = report.goal
    verdict = "meets" if goal["chosen_meets_goal"] else "misses"
    front = goal["front_point"]
    console.print(
        f"Goal: at least {goal['accuracy_floor']:.1%} (1 point below {report.reference}) for at "
        f"most ${goal['cost_ceiling_per_1k_usd']:.3f} per 1k items (30% of its cost). The "
        f"setting chosen on train (shoal-best) {verdict} it.",
        markup=False,
    )
    if front:
        console.print(
            f"Of all settings scored on test, the cheapest that meets it: {front['setting']}, "
            f"{front['accuracy']:.1%} for ${front['cost_per_1k_usd']:.3f} per 1k items.",
            markup=False,
        )
    else:
        console.print("No setting scored on test meets it.", markup=False)
    for note in report.notes:
        console.print(f"Note: {note}", markup=False, style="dim")
