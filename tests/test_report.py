from __future__ import annotations

import struct
from decimal import Decimal
from pathlib import Path

import matplotlib
import pytest
from rich.console import Console

from shoal.evaluate.summary import ConfigSummary, EscalationSummary
from shoal.pricing.money import format_usd
from shoal.report.plot import pareto_front, plot_pareto
from shoal.report.table import (
    format_accuracy_per_dollar,
    format_share,
    format_tier_shares,
    render_escalations,
    render_table,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENCODER = "encoder:minilm"
LARGE = "local:qwen2.5-coder-1.5b"


def _summary(
    config: str,
    accuracy: float,
    cost_per_1k: str,
    tier_shares: dict[str, float] | None = None,
    escalations: list[EscalationSummary] | None = None,
    note: str | None = None,
) -> ConfigSummary:
    cost = Decimal(cost_per_1k)
    mean = cost / 1000
    return ConfigSummary(
        config=config,
        n_items=231,
        accuracy=accuracy,
        macro_f1=accuracy - 0.01,
        cost_per_1k_usd=cost,
        mean_cost_usd=mean,
        total_cost_usd=mean * 231,
        accuracy_per_dollar=None if mean == 0 else accuracy / float(mean),
        p50_ms=3.14,
        p95_ms=1234.6,
        tier_shares=tier_shares or {config: 1.0},
        escalations=escalations or [],
        note=note,
    )


def _summaries() -> list[ConfigSummary]:
    return [
        _summary(ENCODER, 0.81, "0.000123"),
        _summary(LARGE, 0.86, "0.42"),
        _summary(
            "cascade",
            0.88,
            "0.051",
            tier_shares={ENCODER: 0.88, LARGE: 0.12},
            escalations=[
                EscalationSummary(
                    tier=1, model=LARGE, n_items=28, accuracy=0.75, tier0_accuracy=0.25
                )
            ],
            note="measured on a random subsample of 120 items",
        ),
        _summary("api:free-tier", 0.7, "0"),
    ]


def _recording_console() -> Console:
    return Console(record=True, width=220, color_system=None)


# --- pareto_front ---


def test_pareto_front_drops_dominated() -> None:
    points = [(1.0, 0.8), (2.0, 0.7), (3.0, 0.9), (0.5, 0.6)]

    assert pareto_front(points) == [3, 0, 2]


def test_pareto_front_equal_cost_higher_accuracy() -> None:
    # Same cost, lower accuracy: dominated. Same accuracy, higher cost: dominated.
    points = [(1.0, 0.8), (1.0, 0.7), (2.0, 0.8)]

    assert pareto_front(points) == [0]


def test_pareto_front_keeps_identical_points() -> None:
    assert pareto_front([(1.0, 0.8), (1.0, 0.8)]) == [0, 1]


def test_pareto_front_single_and_empty() -> None:
    assert pareto_front([(0.0, 0.5)]) == [0]
    assert pareto_front([]) == []


def test_pareto_front_zero_cost_point() -> None:
    points = [(0.0, 0.5), (0.1, 0.9), (0.2, 0.4)]

    assert pareto_front(points) == [0, 1]


# --- plot ---


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_plot_writes_valid_png(tmp_path: Path) -> None:
    path = tmp_path / "plots" / "pareto.png"

    plot_pareto(_summaries(), path, title="banking77: accuracy against $ per 1,000 items")

    assert path.stat().st_size > 0
    width, height = _png_size(path)
    assert width > 0
    assert height > 0


def test_plot_linear_narrow_cost_range(tmp_path: Path) -> None:
    path = tmp_path / "narrow.png"
    summaries = [_summary("a", 0.8, "1.0"), _summary("b", 0.9, "2.0")]

    plot_pareto(summaries, path, title="narrow")

    assert _png_size(path)[0] > 0


def test_plot_all_zero_costs(tmp_path: Path) -> None:
    path = tmp_path / "free.png"
    summaries = [_summary("a", 0.8, "0"), _summary("b", 0.9, "0")]

    plot_pareto(summaries, path, title="free")

    assert _png_size(path)[0] > 0


def test_plot_leaves_global_backend(tmp_path: Path) -> None:
    backend = matplotlib.get_backend()

    plot_pareto(_summaries(), tmp_path / "p.png", title="t")

    assert matplotlib.get_backend() == backend


def test_plot_rejects_no_summaries(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        plot_pareto([], tmp_path / "p.png", title="t")


# --- formatting ---


def test_format_usd_significant_digits() -> None:
    assert format_usd(Decimal("0.000123")) == "0.000123"
    assert format_usd(Decimal("0.0001234567")) == "0.000123"
    assert format_usd(Decimal("1E-7")) == "0.000000100"
    assert format_usd(Decimal("0.42")) == "0.420"
    assert format_usd(Decimal(0)) == "0"
    assert format_usd(Decimal("3.456")) == "3.46"
    assert format_usd(Decimal("1234.5")) == "1,234.50"


def test_format_share_edges() -> None:
    assert format_share(0.0) == "0%"
    assert format_share(0.004) == "<1%"
    assert format_share(0.005) == "<1%"
    assert format_share(0.0051) == "1%"
    assert format_share(0.12) == "12%"
    assert format_share(0.994) == "99%"
    assert format_share(0.995) == ">99%"
    assert format_share(1.0) == "100%"


def test_format_tier_shares_joins_models() -> None:
    shares = {ENCODER: 0.88, LARGE: 0.12}

    assert format_tier_shares(shares) == "encoder:minilm 88% | local:qwen2.5-coder-1.5b 12%"


def test_format_accuracy_per_dollar() -> None:
    assert format_accuracy_per_dollar(None) == "n/a (zero cost)"
    assert format_accuracy_per_dollar(6585365.85) == "6,585,366"
    assert format_accuracy_per_dollar(2.0476) == "2.05"


# --- tables ---


def test_table_shows_every_config() -> None:
    console = _recording_console()

    render_table(_summaries(), console)

    text = console.export_text()
    for header in ("config", "accuracy", "macro-F1", "$/1k", "accuracy per $", "p50 ms", "p95 ms"):
        assert header in text
    assert "0.000123" in text
    assert "88.0%" in text
    assert "encoder:minilm 88% | local:qwen2.5-coder-1.5b 12%" in text
    assert "n/a (zero cost)" in text
    assert "1,235" in text
    assert "3.1" in text
    assert "api:free-tier" in text


def test_table_prints_notes_below() -> None:
    console = _recording_console()

    render_table(_summaries(), console)

    text = console.export_text()
    note = "cascade: measured on a random subsample of 120 items"
    assert note in text
    assert text.index(note) > text.index("api:free-tier")


def test_table_keeps_brackets_in_names() -> None:
    console = _recording_console()

    render_table([_summary("cascade[bold]", 0.9, "0.1")], console)

    assert "cascade[bold]" in console.export_text()


def test_escalations_show_tier0_beside() -> None:
    console = _recording_console()

    render_escalations(_summaries(), console)

    text = console.export_text()
    row = next(line for line in text.splitlines() if LARGE in line and "cascade" in line)
    assert "28" in row
    assert row.index("75.0%") < row.index("25.0%")


def test_escalations_silent_without_escalations() -> None:
    console = _recording_console()

    render_escalations([_summary(ENCODER, 0.8, "0.0001")], console)

    assert console.export_text() == ""
