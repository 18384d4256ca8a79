"""`shoal eval PIPELINE DATA`: train a pipeline's encoder steps, run it on test rows, report.

PIPELINE is a YAML file or the name of an example shipped with shoal. DATA is one of:

- a CLINC150 folder (it contains data/data_full.json): the train split trains, the test split
  (out-of-scope queries included) is evaluated. The 100 out-of-scope rows of the train split
  are all kept whatever `--per-label` is: they share no topic, and on the val split the
  CLINC150 router example found 77% of out-of-scope queries with all 100 against 13% with
  10;
- the support-ticket CSV (it has subject and body columns): `text` is the subject and body;
- any other CSV or JSON Lines file with the columns the steps read and are scored against.

Without a CLINC150 folder or `--train FILE`, a seeded 70% of the rows trains and the rest
is evaluated.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from shoal.errors import UserInputError
from shoal.evaluate.pipeline_data import Row, load_clinc150, load_support_tickets, read_rows
from shoal.models import parse_model
from shoal.pipeline.eval_summary import PipelineEvalResult
from shoal.pipeline.spec import PipelineSpec, StepSpec
from shoal.pipeline.train import sample_training_rows

TRAIN_SHARE = 0.7
PIPELINE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class PipelineData:
    """Rows to train encoder steps on and rows to evaluate, and where they came from."""

    train: list[Row]
    test: list[Row]
    description: str
    # Rows trained on whole, beside the per-label sample of `train`.
    train_kept: list[Row] = field(default_factory=list)

    def training_rows(self, spec: PipelineSpec, per_label: int | None, seed: int) -> list[Row]:
        """Return the per-label sample of `train` (see `train_pipeline`) and `train_kept`."""
        return sample_training_rows(spec, self.train, per_label, seed) + self.train_kept

    def check_columns(self, spec: PipelineSpec) -> None:
        """Raise UserInputError when the rows lack a column that a step reads or is scored on.

        The test rows need every step's input and gold column, and the train rows those of
        the steps with an encoder model, which train on them. Checked before training, so
        that a misnamed column costs no training time and leaves no step unscored unnoticed.
        """
        for rows, kind, needs_training in ((self.test, "test", False), (self.train, "train", True)):
            present = {name for row in rows for name in row}
            for name, step in spec.steps.items():
                if needs_training and not _trains_encoder(step):
                    continue
                for column, role in ((step.input, "reads"), (step.gold, "is scored against")):
                    if column is not None and column not in present:
                        raise UserInputError(
                            f"the {kind} rows ({self.description}) have no column {column!r}, "
                            f"which step {name!r} {role}; the columns are: "
                            f"{', '.join(sorted(present))}. Rename the column, or change the "
                            "step's input or gold"
                        )


def _trains_encoder(step: StepSpec) -> bool:
    return any(parse_model(model).provider == "encoder" for model in step.models_with_fallback)


def is_pipeline(name: str) -> bool:
    """Return True when `name` is a pipeline file or a shipped example's name."""
    if Path(name).suffix.lower() in PIPELINE_SUFFIXES:
        return True
    from shoal.pipeline.examples import EXAMPLES

    return name in EXAMPLES


def load_pipeline_spec(name: str) -> PipelineSpec:
    """Load a pipeline file, or a shipped example by name."""
    from shoal.pipeline.yaml_loader import load_pipeline

    if Path(name).suffix.lower() in PIPELINE_SUFFIXES:
        return load_pipeline(Path(name))
    from shoal.pipeline.examples import example_path

    return load_pipeline(example_path(name))


def load_pipeline_data(
    data: Path, *, train: Path | None = None, limit: int | None = None, seed: int = 0
) -> PipelineData:
    """Read the train and test rows for `shoal eval PIPELINE DATA` (see the module doc)."""
    if (data / "data" / "data_full.json").is_file():
        if train is not None:
            raise UserInputError("--train does not apply to a CLINC150 folder, which has its own train split")
        train_split = load_clinc150(data, "train")
        chosen = PipelineData(
            train=[row for row in train_split if row["intent"] != "oos"],
            train_kept=[row for row in train_split if row["intent"] == "oos"],
            test=load_clinc150(data, "test"),
            description=(
                f"CLINC150 at {data}: train split (all its out-of-scope rows kept), "
                "test split with out-of-scope queries"
            ),
        )
    elif data.is_dir():
        raise UserInputError(
            f"{data} is a folder but not CLINC150's (no data/data_full.json); give a CSV or "
            "JSON Lines file, or the CLINC150 repository folder"
        )
    else:
        rows = _read(data)
        if train is not None:
            chosen = PipelineData(_read(train), rows, f"train {train}, test {data}")
        else:
            first, second = _split(rows, seed)
            chosen = PipelineData(
                first, second, f"{data}: a seeded {TRAIN_SHARE:.0%} trains, the rest is tested"
            )
    if limit is not None and limit < len(chosen.test):
        test = random.Random(seed).sample(chosen.test, limit)
        chosen = dataclasses.replace(
            chosen, test=test, description=f"{chosen.description} ({limit} test rows drawn)"
        )
    return chosen


def _read(path: Path) -> list[Row]:
    rows = read_rows(path)
    if rows and "text" not in rows[0] and {"subject", "body"} <= set(rows[0]):
        return load_support_tickets(path)
    return rows


def _split(rows: list[Row], seed: int) -> tuple[list[Row], list[Row]]:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cut = round(len(rows) * TRAIN_SHARE)
    if cut == 0 or cut == len(rows):
        raise UserInputError(f"{len(rows)} rows are too few to split into train and test rows")
    return [rows[i] for i in sorted(order[:cut])], [rows[i] for i in sorted(order[cut:])]


@dataclass(frozen=True)
class PipelineEvalOptions:
    """The options of `shoal eval` that apply to a pipeline."""

    train: Path | None
    per_label: int | None
    limit: int | None
    concurrency: int
    seed: int
    max_cost: Decimal | None


def run_pipeline_eval(name: str, data: Path, options: PipelineEvalOptions, output: Path | None) -> bool:
    """Train, run and report a pipeline for `shoal eval`; return False when the cap stopped it."""
    from shoal.bench.view import RichProgress
    from shoal.calls import Budget
    from shoal.pipeline import bind_pipeline, evaluate_pipeline, train_pipeline

    spec = load_pipeline_spec(name)
    rows = load_pipeline_data(data, train=options.train, limit=options.limit, seed=options.seed)
    rows.check_columns(spec)
    training = rows.training_rows(spec, options.per_label, options.seed)
    Console(stderr=True).print(
        f"training {spec.name}'s encoder steps on {len(training)} rows", markup=False, style="dim"
    )
    budget = Budget(options.max_cost) if options.max_cost is not None else None
    steps = train_pipeline(spec, training, seed=options.seed, budget=budget)
    console = Console() if sys.stdout.isatty() else Console(width=150)
    with RichProgress(console) as bars:
        result = evaluate_pipeline(
            bind_pipeline(spec, steps), rows.test,
            output=output if output is not None else Path(f"eval-{spec.name}"),
            concurrency=options.concurrency, progress=bars,
        )
    show_pipeline_result(result, rows, console)
    return result.stopped is None


def show_pipeline_result(result: PipelineEvalResult, data: PipelineData, console: Console) -> None:
    """Print the per-step and end-to-end figures."""
    console.print(
        f"\n{result.pipeline}: {result.n_items} test items; {data.description}.", markup=False
    )
    table = Table()
    for column in ("step", "ran", "accuracy", "routed correctly", "accuracy when routed correctly", "$/1k"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for name, step in result.steps.items():
        table.add_row(
            name,
            f"{step.ran} ({step.share:.0%})",
            format_share(step.accuracy),
            "" if step.routed_correctly is None else str(step.routed_correctly),
            format_share(step.accuracy_routed_correctly),
            format_per_1k(step.mean_cost_usd),
        )
    table.add_row(
        "end to end", str(result.n_items), format_share(result.end_to_end_accuracy), "", "",
        format_per_1k(result.mean_cost_usd), style="bold",
    )
    console.print(table)
    per_dollar = result.accuracy_per_dollar
    console.print(
        f"accuracy per $ {per_dollar:,.0f}" if per_dollar is not None else "no cost recorded",
        f"| p50 {result.p50_ms:,.0f} ms, p95 {result.p95_ms:,.0f} ms per item"
        f" | {result.failed_items} items with a failed or skipped step",
        markup=False,
    )
    if result.stopped is not None:
        console.print(result.stopped, style="yellow", markup=False)
    paths = (result.records_path, result.summary_path, result.plot_path)
    written = [path for path in paths if path is not None]
    if written:
        console.print("Wrote " + ", ".join(str(path) for path in written) + ".", markup=False)


def format_share(value: float | None) -> str:
    """Format a share as a percentage, or "" when there is none."""
    return "" if value is None else f"{value:.1%}"


def format_per_1k(mean_cost_usd: Decimal | None) -> str:
    """Format a mean cost per item as dollars per 1,000 items, or "" when there is none."""
    return "" if mean_cost_usd is None else f"{float(mean_cost_usd) * 1000:.5f}"
