"""Labelled datasets: loading CSV and JSON Lines files, and seeded samples and splits.

Every error a user can cause raises `DatasetError` with one line that names the value and the fix.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoal.errors import DatasetError, UserInputError

logger = logging.getLogger("shoal.evaluate.datasets")

CSV_EXTENSIONS = (".csv",)
JSONL_EXTENSIONS = (".jsonl", ".json-lines")
SUPPORTED_EXTENSIONS = CSV_EXTENSIONS + JSONL_EXTENSIONS


@dataclass(frozen=True)
class LabelledDataset:
    """Texts with their gold labels, in file order, and the file they came from."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(
                f"a dataset needs one label per text: got {len(self.texts)} texts "
                f"and {len(self.labels)} labels"
            )

    @property
    def labels_set(self) -> tuple[str, ...]:
        """Distinct labels, sorted, so that prompts and classifiers see them in a stable order."""
        return tuple(sorted(set(self.labels)))

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, indices: Iterable[int]) -> LabelledDataset:
        """Return the items at `indices`, in the order given, with the same source."""
        chosen = list(indices)
        return LabelledDataset(
            texts=tuple(self.texts[i] for i in chosen),
            labels=tuple(self.labels[i] for i in chosen),
            source=self.source,
        )


@dataclass(frozen=True)
class _Row:
    """One row as read from a file: its number for messages and its column values."""

    number: int  # 1-based data row for CSV, 1-based line for JSON Lines
    values: dict[str, Any]


def read_table(path: Path) -> tuple[list[str], list[_Row]]:
    """Read a .csv (UTF-8, header row) or JSON Lines file as its columns and rows.

    Raises DatasetError for a missing file or an unsupported extension.
    """
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}; check the path and try again")
    suffix = path.suffix.lower()
    if suffix in CSV_EXTENSIONS:
        return _read_csv(path)
    if suffix in JSONL_EXTENSIONS:
        return _read_jsonl(path)
    raise DatasetError(
        f"unsupported dataset extension {path.suffix or '(none)'!r} for {path}; "
        f"use one of {', '.join(SUPPORTED_EXTENSIONS)}"
    )


def load_dataset(
    path: str | Path, text_column: str = "text", label_column: str = "label"
) -> LabelledDataset:
    """Load a labelled dataset from a .csv (UTF-8, header row) or a JSON Lines file.

    Rows whose text or label is empty (or missing, in JSON Lines) are skipped, and their count
    is logged as a warning. Labels lose surrounding whitespace and texts are kept as written.
    Raises DatasetError for a missing file, an unsupported extension, a missing column, a malformed
    JSON line, a dataset with no usable rows, or one with fewer than two distinct labels.
    """
    path = Path(path)
    columns, rows = read_table(path)

    if not rows:
        raise DatasetError(f"dataset {path} has no rows; add labelled rows to the file")
    _check_column(path, columns, text_column, "--text-column", "text_column")
    _check_column(path, columns, label_column, "--label-column", "label_column")

    dataset = _build_dataset(path, rows, text_column, label_column)
    _check_label_count(dataset)
    logger.info(
        "loaded %d items with %d labels from %s", len(dataset), len(dataset.labels_set), path
    )
    return dataset


def _read_csv(path: Path) -> tuple[list[str], list[_Row]]:
    # utf-8-sig reads plain UTF-8 too, and drops the byte-order mark that spreadsheet exports add.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        try:
            rows = [_Row(number, dict(values)) for number, values in enumerate(reader, start=1)]
        except (csv.Error, UnicodeDecodeError) as error:
            raise DatasetError(
                f"dataset {path} is not a readable UTF-8 CSV file ({error}); "
                "save it as UTF-8 CSV with a header row"
            ) from error
        columns = list(reader.fieldnames or [])
    return columns, rows


def _read_jsonl(path: Path) -> tuple[list[str], list[_Row]]:
    columns: dict[str, None] = {}  # an ordered set: keys in first-seen order
    rows: list[_Row] = []
    for number, line in _numbered_lines(path):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(
                f"dataset {path} line {number} is not valid JSON ({error.msg}); "
                "write one JSON object per line"
            ) from error
        if not isinstance(values, dict):
            raise DatasetError(
                f"dataset {path} line {number} is a JSON {type(values).__name__}, not an object; "
                "write one JSON object per line"
            )
        columns.update(dict.fromkeys(values))
        rows.append(_Row(number, values))
    return list(columns), rows


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8-sig") as handle:
        try:
            yield from enumerate(handle, start=1)
        except UnicodeDecodeError as error:
            raise DatasetError(
                f"dataset {path} is not valid UTF-8 ({error.reason}); save it as UTF-8"
            ) from error


def _check_column(path: Path, columns: list[str], column: str, option: str, argument: str) -> None:
    if column in columns:
        return
    found = ", ".join(repr(name) for name in columns) or "(none)"
    raise DatasetError(
        f"column {column!r} not found in dataset {path}, which has the columns {found}; "
        f"name the right one with {option} (or {argument}= in Python)"
    )


def _build_dataset(
    path: Path, rows: Sequence[_Row], text_column: str, label_column: str
) -> LabelledDataset:
    texts: list[str] = []
    labels: list[str] = []
    skipped = 0
    for row in rows:
        text = _cell_text(path, row, text_column)
        label = _cell_text(path, row, label_column).strip()
        if not text.strip() or not label:
            skipped += 1
            continue
        texts.append(text)
        labels.append(label)

    if skipped:
        logger.warning(
            "skipped %d of %d rows in %s with an empty %r or %r",
            skipped, len(rows), path, text_column, label_column,
        )
    if not texts:
        raise DatasetError(
            f"dataset {path} has no row with a non-empty {text_column!r} and {label_column!r}; "
            "fill in both columns, or name other columns with --text-column/--label-column"
        )
    return LabelledDataset(texts=tuple(texts), labels=tuple(labels), source=str(path))


def _cell_text(path: Path, row: _Row, column: str) -> str:
    """Return a cell as a string: a missing cell or JSON null is empty, numbers are written out."""
    value = row.values.get(column)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):  # JSON labels such as 0 and 1; bool is an int too
        return str(value)
    raise DatasetError(
        f"dataset {path} row {row.number} has a {type(value).__name__} in column {column!r}; "
        "give a string or a number there"
    )


def _check_label_count(dataset: LabelledDataset) -> None:
    labels = dataset.labels_set
    if len(labels) < 2:
        raise DatasetError(
            f"dataset {dataset.source} has a label set of one label ({labels[0]!r}); "
            "classification needs at least two distinct labels, so check --label-column"
        )


def stratified_sample(
    dataset: LabelledDataset, per_label: int | None, seed: int
) -> LabelledDataset:
    """Take up to `per_label` random items of every label, kept in dataset order.

    `per_label=None` returns the whole dataset. A label with fewer items keeps all of them.
    The same seed always returns the same items.
    """
    return stratified_split(dataset, per_label, seed)[0]


def stratified_split(
    dataset: LabelledDataset, per_label: int | None, seed: int
) -> tuple[LabelledDataset, LabelledDataset]:
    """Split up to `per_label` random items of every label off the dataset.

    Returns `(taken, rest)`, each in dataset order, together holding every item once.
    `per_label=None` takes everything.
    """
    if per_label is None:
        return dataset, dataset.select([])
    if per_label < 1:
        raise UserInputError(
            f"items per label must be at least 1, got {per_label}; "
            "give a positive number, or none for the whole dataset"
        )

    rng = np.random.default_rng(seed)
    labels = np.array(dataset.labels)
    chosen: list[int] = []
    for label in dataset.labels_set:
        indices = np.flatnonzero(labels == label)
        if len(indices) <= per_label:
            chosen.extend(int(i) for i in indices)
        else:
            chosen.extend(int(i) for i in rng.choice(indices, size=per_label, replace=False))
    taken = set(chosen)
    rest = [i for i in range(len(dataset)) if i not in taken]
    return dataset.select(sorted(taken)), dataset.select(rest)


def sample(dataset: LabelledDataset, n: int, seed: int) -> LabelledDataset:
    """Take `n` random items without replacement, kept in dataset order.

    When `n` is at least the dataset size, every item is returned.
    """
    if n < 1:
        raise UserInputError(f"sample size must be at least 1, got {n}; give a positive number")
    if n >= len(dataset):
        return dataset
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(dataset), size=n, replace=False)
    return dataset.select(sorted(int(i) for i in chosen))


def split_off(
    dataset: LabelledDataset, n: int, seed: int
) -> tuple[LabelledDataset, LabelledDataset]:
    """Split `n` random items off the dataset, e.g. to train a classifier on.

    Returns `(taken, rest)`, each in dataset order, together holding every item once. The same
    seed always gives the same split. The split is not stratified, so a rare label may be
    missing from `taken`.
    """
    if not 0 <= n <= len(dataset):
        raise UserInputError(
            f"cannot split {n} items off a dataset of {len(dataset)} items ({dataset.source}); "
            f"give a number from 0 to {len(dataset)}"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(dataset))
    taken = sorted(int(i) for i in order[:n])
    rest = sorted(int(i) for i in order[n:])
    return dataset.select(taken), dataset.select(rest)
