"""Terminal output of `shoal bench`: progress bars, the table and the verdict."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from shoal.bench.run import BenchResult
from shoal.pricing.money import format_usd
from shoal.report.table import render_escalations, render_table


class RichProgress:
    """One progress bar per bench phase, drawn on the console's stderr-safe live display."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def phase(self, description: str, total: int) -> None:
        if not self._progress.console.is_terminal:
            # No live bars outside a terminal: one line per phase keeps logs readable.
            self._progress.console.print(description, markup=False)
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total)
        self._task = self._progress.add_task(description, total=max(total, 1))
        if total == 0:
            self._progress.update(self._task, completed=1)

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, steps)

    def message(self, text: str) -> None:
        self._progress.console.print(text, markup=False)


def verdict(result: BenchResult) -> str:
    """Say whether escalation paid on dev, and so whether the cascade escalates at all.

    With a saved thresholds file there was no dev fit, so the sentence names the file instead.
    """
    fit = result.fit
    saved = result.thresholds
    if saved is not None:
        return (
            f"The cascade used the saved tier 0 threshold {saved.threshold:.3f} from "
            f"{result.options.thresholds} (chosen by {saved.method.name}); nothing was fitted on dev."
        )
    if fit is None:
        return "No escalation tier: only tier 0 was evaluated."
    thresholds = fit.thresholds
    gain = (thresholds.best_dev_accuracy - thresholds.tier0_dev_accuracy) * 100
    if not thresholds.escalates:
        return (
            f"Escalation did not pay on dev: the best setting gained {gain:+.1f} points over "
            f"tier 0 alone (tolerance {result.options.tolerance * 100:.1f}), so the fitted "
            "cascade answers every item at tier 0."
        )
    escalated = (1 - thresholds.dev_shares[0]) * 100
    chosen_gain = (thresholds.dev_accuracy - thresholds.tier0_dev_accuracy) * 100
    weights = ", ".join(f"{w:g}" for w in fit.model_weights)
    return (
        f"Escalation paid on dev: {chosen_gain:+.1f} points over tier 0 alone with "
        f"{escalated:.0f}% of items escalated (tier 0 threshold "
        f"{thresholds.thresholds[0]:.3f}, model weight {weights})."
    )


def show_result(result: BenchResult, console: Console) -> None:
    data = result.data
    console.print(
        f"\n{data.name}: tier 0 trained on {result.n_train} labelled examples "
        f"({_per_label(result)}), dev {len(data.dev)}, test {len(data.test)} items, "
        f"{len(set(data.test.labels))} labels.",
        markup=False,
    )
    render_table(result.summaries, console)
    render_escalations(result.summaries, console)
    console.print(verdict(result), markup=False)
    machine = result.options.machine
    console.print(
        f"In-process models are charged ${machine.usd_per_hour}/hour ({machine.name}; "
        f"{machine.source}).",
        markup=False, style="dim",
    )
    if result.spent_usd is not None:
        console.print(
            f"Spent ${format_usd(result.spent_usd)} of the "
            f"${format_usd(result.options.max_cost)} cap (--max-cost).",
            markup=False,
        )
    if result.summary_path is not None:
        written = [result.records_path, result.summary_path, result.plot_path, result.fit_path]
        console.print(
            "Wrote " + ", ".join(str(path) for path in written if path is not None) + ".",
            markup=False,
        )
    if result.stopped is not None:
        Console(stderr=True, soft_wrap=True).print(
            f"Stopped before the cap: {result.stopped}", markup=False, style="bold red"
        )


def _per_label(result: BenchResult) -> str:
    per_label = result.options.per_label
    return "all per label" if per_label is None else f"up to {per_label} per label"
