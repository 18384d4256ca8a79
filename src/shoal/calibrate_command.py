"""`shoal calibrate RUN`: choose tier 0's threshold from a bench run and save it to a file.

cli.py registers `calibrate_command` with `app.command("calibrate")`. This module sits outside
the shoal.calibration package, and imports it only inside the command, because that package's
__init__ loads scikit-learn, SciPy and matplotlib. Importing it from cli.py slowed every
`shoal` command by about 2 s in one measurement (`python -X importtime -c "import shoal.cli"`).
"""

from __future__ import annotations

import json
import math
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from shoal.errors import UserInputError
from shoal.pricing.money import format_usd

if TYPE_CHECKING:
    from shoal.calibration.reliability import Panel
    from shoal.calibration.run_fit import CalibrationRun
    from shoal.calibration.saved import MethodEntry, SavedThresholds

FORMATS = ("table", "json")
DEFAULT_DELTA = 0.1

RELIABILITY_NAME = "reliability.png"


def calibrate_command(
    run: Annotated[Path, typer.Argument(help="The --output folder of a `shoal bench` run, or its records.jsonl.")],
    target: Annotated[float | None, typer.Option("--target", help="Choose the cheapest threshold whose cascade accuracy (0-1) reaches this on the run's items.")] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="Choose the most accurate threshold whose mean cost is at most this many USD per item.")] = None,
    guarantee: Annotated[float | None, typer.Option("--guarantee", help="Choose the lowest threshold whose accepted tier-0 accuracy (0-1) is at least this with probability 1 - --delta, by a binomial test (Learn then Test).")] = None,
    delta: Annotated[float | None, typer.Option("--delta", help=f"With --guarantee: the allowed probability (0-1) that the bound fails (default: {DEFAULT_DELTA}).")] = None,
    calibrator: Annotated[str, typer.Option("--calibrator", help="Calibrate tier-0 confidence first: none, temperature, platt or isotonic. A calibrator is fitted on --fit-share of the items, and the threshold and ECE use the rest.")] = "none",
    fit_share: Annotated[float, typer.Option("--fit-share", help="Share (0-1) of the run's items a calibrator is fitted on.")] = 0.5,
    escalate: Annotated[str | None, typer.Option("--escalate", help="The escalation model paired with tier 0 (default: the run's first escalation model).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random splits: calibrator items against threshold items, and the items that choose where --guarantee starts testing.")] = 0,
    output: Annotated[Path | None, typer.Option("--output", help="Thresholds file to write, or a folder for thresholds.json (default: the run folder). reliability.png always goes to the run folder.")] = None,
    format: Annotated[str, typer.Option("--format", help="Output format: 'table' (for reading) or 'json' (the file's content and the paths written).")] = "table",
) -> None:
    """Fit tier 0's threshold on a bench run's records and save it for `shoal bench --thresholds`.

    Give exactly one of --target, --budget or --guarantee.
    """
    from shoal.calibration.reliability import plot_reliability_panels
    from shoal.calibration.run_fit import calibrate_run
    from shoal.calibration.run_join import join_run_records
    from shoal.calibration.saved import save_thresholds

    if format not in FORMATS:
        raise UserInputError(f"invalid --format {format!r}: use one of {', '.join(FORMATS)}")
    method = parse_method(target, budget, guarantee, delta)

    joined = join_run_records(run, escalate)
    result = calibrate_run(joined, method, calibrator, fit_share, seed)
    folder = joined.records_path.parent
    thresholds_path = save_thresholds(result.saved, output or folder)
    plot_path = plot_reliability_panels(_panels(result), folder / RELIABILITY_NAME)

    if result.saved.figures.cached_escalation_steps:
        Console(stderr=True, soft_wrap=True).print(
            f"warning: {result.saved.figures.cached_escalation_steps} of the escalation "
            "model's steps were answered from the response cache and recorded at $0, so the "
            "costs read low; rerun `shoal bench --no-cache` for their costs",
            markup=False, style="yellow",
        )
    if format == "json":
        document = {
            "thresholds_path": str(thresholds_path),
            "reliability_path": str(plot_path),
            "thresholds": result.saved.model_dump(mode="json"),
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        _print_table(result.saved, Console())
        Console().print(f"Wrote {thresholds_path}, {plot_path}.", markup=False)


def parse_method(
    target: float | None, budget: float | None, guarantee: float | None, delta: float | None
) -> MethodEntry:
    """Check the method options and return the method. Exactly one method must be given."""
    from shoal.calibration.saved import MethodEntry

    methods = {"--target": target, "--budget": budget, "--guarantee": guarantee}
    chosen_options = [option for option, value in methods.items() if value is not None]
    if len(chosen_options) != 1:
        raise UserInputError(
            "give exactly one of --target ACCURACY, --budget USD_PER_ITEM or --guarantee "
            f"ACCURACY, got {', '.join(chosen_options) or 'none'}"
        )
    if delta is not None and guarantee is None:
        raise UserInputError("--delta applies only with --guarantee; drop it or add --guarantee")
    if target is not None:
        _check_accuracy("--target", target, low_open=False)
        return MethodEntry(name="target", target_accuracy=target)
    if budget is not None:
        if not math.isfinite(budget) or budget < 0:
            raise UserInputError(
                f"invalid --budget {budget!r}: give a USD amount per item >= 0, e.g. 0.00002"
            )
        return MethodEntry(name="budget", budget_usd_per_item=budget)
    assert guarantee is not None
    _check_accuracy("--guarantee", guarantee, low_open=True)
    chosen_delta = DEFAULT_DELTA if delta is None else delta
    if not 0.0 < chosen_delta < 1.0:
        raise UserInputError(f"invalid --delta {chosen_delta!r}: it must be between 0 and 1")
    return MethodEntry(name="guarantee", target_accuracy=guarantee, delta=chosen_delta)


def _check_accuracy(option: str, value: float, *, low_open: bool) -> None:
    low_ok = value > 0.0 if low_open else value >= 0.0
    if not (low_ok and value <= 1.0):
        bounds = "(0, 1]" if low_open else "[0, 1]"
        raise UserInputError(f"invalid {option} {value!r}: give an accuracy in {bounds}, e.g. 0.9")


def _panels(result: CalibrationRun) -> list[Panel]:
    items = result.saved.calibration.evaluation_items
    name = result.saved.calibrator.name
    if name == "none":
        return [(f"Tier-0 confidence ({items} items)", result.raw_confidence, result.correct0)]
    return [
        (f"Before calibration ({items} held-out items)", result.raw_confidence, result.correct0),
        (
            f"After {name} calibration ({items} held-out items)",
            result.calibrated_confidence,
            result.correct0,
        ),
    ]


def _method_text(saved: SavedThresholds) -> str:
    method = saved.method
    if method.name == "target":
        return f"cheapest reaching accuracy {method.target_accuracy:g}"
    if method.name == "budget":
        return f"most accurate within ${format_usd(Decimal(str(method.budget_usd_per_item)))} per item"
    return f"guarantee: accepted accuracy >= {method.target_accuracy:g} at delta {method.delta:g}"


def _threshold_text(saved: SavedThresholds) -> str:
    raw = saved.threshold
    if math.isinf(raw):
        return "escalate every item"
    text = f"{raw:.6g} (raw confidence)"
    calibrated = saved.tiers[0].calibrated_threshold
    if saved.calibrator.name != "none" and calibrated is not None:
        text += f", {calibrated:.6g} calibrated"
    return text


def _print_table(saved: SavedThresholds, console: Console) -> None:
    from shoal.pricing.money import format_usd

    figures = saved.figures
    calibration = saved.calibration
    table = Table(title=" -> ".join(saved.models), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("method", _method_text(saved))
    calibrator = saved.calibrator.name
    if calibrator != "none":
        calibrator += f", fitted on {calibration.fit_items} items"
    table.add_row("calibrator", calibrator)
    table.add_row(
        "ECE", f"{calibration.ece_before:.3f} before, {calibration.ece_after:.3f} after"
    )
    table.add_row("tier-0 threshold", _threshold_text(saved))
    table.add_row(
        "accuracy",
        f"{figures.accuracy:.4f} (tier 0 alone {figures.tier0_accuracy:.4f}, "
        f"{saved.models[1]} alone {figures.tier1_accuracy:.4f})",
    )
    per_1k = Decimal(repr(figures.mean_cost_usd)) * 1000
    table.add_row("cost per 1k items", f"${format_usd(per_1k)}")
    table.add_row("accepted at tier 0", f"{figures.accepted_share:.1%}")
    table.add_row("items", f"{figures.n}" + (" (held out)" if calibration.fit_items else ""))
    console.print(table)
    if saved.guarantee is not None:
        console.print(saved.guarantee, markup=False)
