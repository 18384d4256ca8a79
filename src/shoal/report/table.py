"""Terminal tables of config summaries: accuracy, cost, accuracy per $, latency, tier shares."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from shoal.evaluate.summary import ConfigSummary
from shoal.pricing.money import SIGNIFICANT_DIGITS, format_usd


def format_accuracy_per_dollar(value: float | None) -> str:
    if value is None:
        return "n/a (zero cost)"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{SIGNIFICANT_DIGITS}g}"


def format_share(share: float) -> str:
    """Format a share as a whole percent, with "<1%" and ">99%" where rounding would hide a tier."""
    text = f"{share:.0%}"
    if share > 0 and text == "0%":
        return "<1%"
    if share < 1 and text == "100%":
        return ">99%"
    return text


def format_tier_shares(tier_shares: dict[str, float]) -> str:
    """Return e.g. "encoder:minilm 88% | local:qwen2.5-coder-1.5b 12%", in tier order."""
    return " | ".join(f"{model} {format_share(share)}" for model, share in tier_shares.items())


def _format_ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def render_table(summaries: Sequence[ConfigSummary], console: Console | None = None) -> None:
    """Print one row per config, then each config's note below the table."""
    console = console or Console()
    table = Table(title="accuracy per dollar")
    for name in ("config", "n", "accuracy", "macro-F1", "$/1k", "accuracy per $"):
        table.add_column(name, justify="left" if name == "config" else "right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    table.add_column("share per tier")

    for summary in summaries:
        table.add_row(
            Text(summary.config),
            str(summary.n_items),
            f"{summary.accuracy:.1%}",
            f"{summary.macro_f1:.3f}",
            format_usd(summary.cost_per_1k_usd),
            format_accuracy_per_dollar(summary.accuracy_per_dollar),
            _format_ms(summary.p50_ms),
            _format_ms(summary.p95_ms),
            Text(format_tier_shares(summary.tier_shares)),
        )
    console.print(table)

    console.print("accuracy per $ = accuracy / mean cost per item in dollars", style="dim")
    for summary in summaries:
        if summary.note:
            console.print(f"{summary.config}: {summary.note}", markup=False)


def render_escalations(summaries: Sequence[ConfigSummary], console: Console | None = None) -> None:
    """Print each escalation tier's accuracy on the items it received beside tier 0's on them.

    Prints nothing when no config escalated any item.
    """
    console = console or Console()
    rows = [(summary, escalation) for summary in summaries for escalation in summary.escalations]
    if not rows:
        return

    table = Table(title="escalations: each tier against tier 0 on the same items")
    table.add_column("config")
    table.add_column("tier", justify="right")
    table.add_column("model")
    table.add_column("items received", justify="right")
    table.add_column("tier accuracy", justify="right")
    table.add_column("tier 0 accuracy", justify="right")
    for summary, escalation in rows:
        table.add_row(
            Text(summary.config),
            str(escalation.tier),
            Text(escalation.model),
            str(escalation.n_items),
            f"{escalation.accuracy:.1%}",
            f"{escalation.tier0_accuracy:.1%}",
        )
    console.print(table)
