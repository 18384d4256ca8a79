"""Expected calibration error and reliability diagrams with equal-width confidence bins.

Bin i of B covers (i / B, (i + 1) / B], except that the first bin also contains 0, so every
confidence in [0, 1] falls in exactly one bin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from shoal.calibration.calibrators import as_correct, as_probabilities


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin; the means are NaN when the bin is empty."""

    lower: float
    upper: float
    mean_confidence: float
    accuracy: float
    count: int


def _checked(
    confidence: ArrayLike, correct: ArrayLike, bins: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    values = as_probabilities(confidence, "confidence")
    labels = as_correct(correct)
    if values.shape[0] != labels.shape[0]:
        raise ValueError(
            "confidence and correct must have the same length, "
            f"got {values.shape[0]} and {labels.shape[0]}"
        )
    if values.shape[0] == 0:
        raise ValueError("confidence is empty; at least 1 item is needed")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    return values, labels


def _bin_indices(confidence: NDArray[np.float64], bins: int) -> NDArray[np.intp]:
    upper_edges = np.linspace(0.0, 1.0, bins + 1)[1:]
    # The first upper edge >= c gives the bin (lower, upper] that contains c.
    indices = np.searchsorted(upper_edges, confidence, side="left")
    return np.clip(indices, 0, bins - 1)


def reliability_bins(
    confidence: ArrayLike, correct: ArrayLike, bins: int = 15
) -> list[ReliabilityBin]:
    """Group items into `bins` equal-width confidence bins, empty bins included."""
    values, labels = _checked(confidence, correct, bins)
    indices = _bin_indices(values, bins)
    edges = np.linspace(0.0, 1.0, bins + 1)

    result = []
    for index in range(bins):
        members = indices == index
        count = int(members.sum())
        if count:
            mean_confidence = float(values[members].mean())
            accuracy = float(labels[members].mean())
        else:
            mean_confidence = accuracy = float("nan")
        result.append(
            ReliabilityBin(
                lower=float(edges[index]),
                upper=float(edges[index + 1]),
                mean_confidence=mean_confidence,
                accuracy=accuracy,
                count=count,
            )
        )
    return result


def expected_calibration_error(
    confidence: ArrayLike, correct: ArrayLike, bins: int = 15
) -> float:
    """Compute ECE = sum over bins of (count / n) * |accuracy - mean confidence|."""
    total = 0
    weighted_gap = 0.0
    for reliability_bin in reliability_bins(confidence, correct, bins):
        if reliability_bin.count == 0:
            continue
        gap = abs(reliability_bin.accuracy - reliability_bin.mean_confidence)
        weighted_gap += reliability_bin.count * gap
        total += reliability_bin.count
    return weighted_gap / total


def draw_reliability(
    axes: Axes, confidence: ArrayLike, correct: ArrayLike, title: str, bins: int = 15
) -> None:
    """Draw a reliability diagram on `axes`.

    Each non-empty bin is a bar whose height is the bin's accuracy, labelled with its item
    count, and a marker at its mean confidence. The dashed diagonal is perfect calibration.
    """
    reliability = reliability_bins(confidence, correct, bins)
    ece = expected_calibration_error(confidence, correct, bins)
    filled = [item for item in reliability if item.count > 0]
    accuracies = [item.accuracy for item in filled]

    axes.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", label="perfect calibration")
    bars = axes.bar(
        [(item.lower + item.upper) / 2 for item in filled], accuracies, width=0.9 / bins,
        color="tab:blue", alpha=0.7, edgecolor="black",
        label=f"accuracy per bin (ECE = {ece:.3f})",
    )
    axes.bar_label(bars, labels=[f"n={item.count}" for item in filled], fontsize=7, padding=2)
    axes.scatter(
        [item.mean_confidence for item in filled], accuracies, color="tab:red", zorder=3,
        s=15, label="mean confidence",
    )
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.08)
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_title(title)
    axes.legend(loc="upper left", fontsize=8)


def plot_reliability(
    confidence: ArrayLike,
    correct: ArrayLike,
    path: str | Path,
    title: str = "Reliability diagram",
    bins: int = 15,
) -> Path:
    """Write a reliability diagram (see `draw_reliability`) to `path` as PNG and return the path."""
    figure = Figure(figsize=(6.0, 6.0), dpi=100)
    FigureCanvasAgg(figure)
    draw_reliability(figure.add_subplot(1, 1, 1), confidence, correct, title, bins)
    output = Path(path)
    figure.savefig(output, format="png")
    return output


# A panel of `plot_reliability_panels`: its title, the confidences and whether each was correct.
Panel = tuple[str, NDArray[np.float64], NDArray[np.bool_]]


def plot_reliability_panels(panels: list[Panel], path: Path, bins: int = 15) -> Path:
    """Write one reliability diagram per panel, left to right, to `path` as PNG.

    `shoal calibrate` draws tier-0 confidence before and after calibration side by side.
    """
    figure = Figure(figsize=(6.0 * len(panels), 6.0), dpi=100)
    FigureCanvasAgg(figure)
    for index, (title, confidence, correct) in enumerate(panels, start=1):
        draw_reliability(figure.add_subplot(1, len(panels), index), confidence, correct, title, bins)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path
