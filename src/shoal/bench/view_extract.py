"""Terminal output of `shoal bench --task extract`: the table and what the fit chose."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from shoal.bench.extract import ExtractBenchResult
from shoal.bench.extract_eval import ExtractEvalResult
from shoal.evaluate.extraction_summary import ExtractionSummary
from shoal.pricing.money import format_usd
from shoal.report.table import format_accuracy_per_dollar, format_tier_shares


def show_extract_result(result: ExtractBenchResult, console: Console) -> None:
    console.print(
        f"\n{result.dataset}: {result.n_test} test items, thresholds fitted on "
        f"{result.n_dev} dev items.",
        markup=False,
    )
    console.print(_table(result.summaries))
    _show_fit_and_files(result, console)


def show_eval_result(result: ExtractEvalResult, console: Console) -> None:
    console.print(f"\n{result.dataset}: {result.n_items} items.", markup=False)
    console.print(_table(result.summaries))
    for summary in result.summaries:
        if summary.squad is not None:
            console.print(
                f"{summary.config}: SQuAD exact match {summary.squad['exact']:.1%}, "
                f"F1 {summary.squad['f1']:.1%}",
                markup=False,
            )
    _show_fit_and_files(result, console)


def _table(summaries: Sequence[ExtractionSummary]) -> Table:
    table = Table(title="field F1 per dollar")
    for column in ("config", "n", "field F1", "exact match", "valid", "$/1k",
                   "field F1 per $", "p50 ms", "p95 ms", "share per tier"):
        table.add_column(column, justify="left" if column in ("config", "share per tier") else "right")
    for summary in summaries:
        table.add_row(
            summary.config,
            str(summary.n_items),
            f"{summary.field_f1:.3f}",
            f"{summary.exact_match:.1%}",
            f"{summary.valid_share:.0%}",
            format_usd(summary.cost_per_1k_usd),
            format_accuracy_per_dollar(summary.accuracy_per_dollar),
            f"{summary.p50_ms:,.0f}",
            f"{summary.p95_ms:,.0f}",
            format_tier_shares(summary.tier_shares),
        )
    return table


def _show_fit_and_files(result: ExtractBenchResult | ExtractEvalResult, console: Console) -> None:
    fit = getattr(result, "fit", None)
    if fit is not None:
        console.print(
            f"Fit on dev: threshold {fit.thresholds[0]:.3f}, exact match "
            f"{fit.dev_accuracy:.1%} against {fit.tier0_dev_accuracy:.1%} for the first tier "
            f"alone, {fit.dev_shares[-1]:.0%} of dev items escalated.",
            markup=False,
        )
    spent = getattr(result, "spent_usd", None)
    if spent is not None:
        console.print(f"Spent ${format_usd(spent)} (--max-cost).", markup=False)
    if result.summary_path is not None:
        console.print(f"Wrote {result.records_path} and {result.summary_path}.", markup=False)
    if result.stopped is not None:
        Console(stderr=True, soft_wrap=True).print(
            f"Stopped before the cap: {result.stopped}", markup=False, style="bold red"
        )
