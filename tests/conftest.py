"""Shared test data: real BANKING77 rows and small labelled CSV files written to tmp_path."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic
from fake_gemini import FakeGemini
from fake_openai import FakeOpenAI

from shoal.bench.data import bundled_file

# 3 test messages per BANKING77 intent, columns text,category.
BANKING77_FIXTURE = Path(__file__).parent / "data" / "banking77_test_3per_class.csv"

def shared_data_dir() -> Path:
    """Return the folder of the shared test datasets (SROIE, SNIPS, SQuAD 2.0 sample).

    $SHOAL_SHARED_DATA wins. Otherwise the `shared/data` folder beside the repository is
    used, then /work/shared/data, where CI clones elsewhere on the same machine. Tests that
    need the data skip, saying why, when none of them exists.
    """
    explicit = os.environ.get("SHOAL_SHARED_DATA")
    candidates = [Path(explicit)] if explicit else []
    candidates += [Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")]
    for candidate in candidates:
        if (candidate / "sroie").is_dir():
            return candidate
    pytest.skip(
        "shared datasets not found; set SHOAL_SHARED_DATA to the folder that holds sroie/, "
        "snips/ and squad2_sample500/",
        allow_module_level=True,
    )


# Labels that share the prefix "card_", so label scoring must not favour a shared prefix.
CARD_LABELS = ("card_arrival", "card_linking", "card_acceptance")


def read_rows(path: Path, text_column: str, label_column: str) -> list[tuple[str, str]]:
    """Read (text, label) pairs from a CSV file, in file order."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row[text_column], row[label_column]) for row in csv.DictReader(handle)]


def fixture_rows(labels: Sequence[str]) -> list[tuple[str, str]]:
    """Return the BANKING77 fixture rows of `labels`, in file order."""
    return [row for row in read_rows(BANKING77_FIXTURE, "text", "category") if row[1] in labels]


def bundled_train_rows(labels: Sequence[str], per_label: int) -> list[tuple[str, str]]:
    """Return the first `per_label` rows of each label in shoal's bundled BANKING77 train sample."""
    counts = dict.fromkeys(labels, 0)
    rows = []
    for text, label in read_rows(bundled_file("train"), "text", "label"):
        if label in counts and counts[label] < per_label:
            counts[label] += 1
            rows.append((text, label))
    return rows


def write_csv(path: Path, rows: Sequence[tuple[str, str]], header: tuple[str, str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture
def fake_gemini() -> Iterator[FakeGemini]:
    server = FakeGemini().start()
    yield server
    server.stop()
