"""The labelled splits a bench runs on: a train pool, a dev split and a test split."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from shoal.errors import DatasetError
from shoal.evaluate.datasets import LabelledDataset, load_dataset, stratified_split

BUNDLED_NAME = "BANKING77 sample (CC BY 4.0, PolyAI)"
# The system prompt of escalation models on the bundled sample. It names the kind of text,
# which the generic prompt cannot, and scored a few points higher on an early dev sample.
BUNDLED_INSTRUCTIONS = (
    "You label customer messages sent to a bank with their intent. Each intent is shown "
    "with example messages. Answer with the letter of the intent that fits the message, "
    "and nothing else."
)
# What the bundled texts are, for the prompts of channel scoring.
BUNDLED_TEXT_KIND = "Messages from bank customers"
SPLIT_PER_LABEL = 4  # dev and test items per label when one file is split


@dataclass(frozen=True)
class BenchData:
    name: str
    train_pool: LabelledDataset
    dev: LabelledDataset
    test: LabelledDataset
    instructions: str | None = None  # system prompt of escalation models; None: the generic one
    text_kind: str | None = None  # what the texts are, in channel prompts; None: the generic one


def bundled_file(split: str) -> Path:
    return Path(str(resources.files("shoal") / "assets" / "banking77" / f"{split}.csv"))


def load_bench_data(
    data: Path | None = None,
    *,
    train_data: Path | None = None,
    dev_data: Path | None = None,
    test_data: Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    seed: int = 0,
) -> BenchData:
    """Load the bundled BANKING77 sample, or the user's files.

    `data` is one labelled file split into test, dev (SPLIT_PER_LABEL items per label each)
    and a train pool. `train_data`, `dev_data` and `test_data` replace single splits. A
    train item whose text is also in dev or test is dropped, so no test item is trained on.
    """
    columns = {"text_column": text_column, "label_column": label_column}
    if data is not None:
        whole = load_dataset(data, **columns)
        test, rest = stratified_split(whole, SPLIT_PER_LABEL, seed)
        dev, pool = stratified_split(rest, SPLIT_PER_LABEL, seed)
        name = str(data)
        instructions = text_kind = None
    else:
        bundled = {"text_column": "text", "label_column": "label"}
        pool = load_dataset(bundled_file("train"), **bundled)
        dev = load_dataset(bundled_file("dev"), **bundled)
        test = load_dataset(bundled_file("test"), **bundled)
        name = BUNDLED_NAME
        instructions = BUNDLED_INSTRUCTIONS
        text_kind = BUNDLED_TEXT_KIND

    if train_data is not None:
        pool = load_dataset(train_data, **columns)
        name = f"train {train_data}"
    if dev_data is not None:
        dev = load_dataset(dev_data, **columns)
    if test_data is not None:
        test = load_dataset(test_data, **columns)

    pool = _without_texts(pool, set(dev.texts) | set(test.texts))
    _check_labels(pool, dev, test, split_one_file=data is not None and train_data is None)
    return BenchData(
        name=name, train_pool=pool, dev=dev, test=test, instructions=instructions,
        text_kind=text_kind,
    )


def _without_texts(dataset: LabelledDataset, texts: set[str]) -> LabelledDataset:
    return dataset.select(i for i, text in enumerate(dataset.texts) if text not in texts)


def _check_labels(
    pool: LabelledDataset, dev: LabelledDataset, test: LabelledDataset, split_one_file: bool
) -> None:
    if len(pool) == 0:
        raise DatasetError(
            f"no training items are left in {pool.source} once dev and test items are removed; "
            "give a larger file or a separate --train-data file"
        )
    unknown = sorted((set(dev.labels) | set(test.labels)) - set(pool.labels))
    if not unknown:
        return
    shown = ", ".join(repr(label) for label in unknown[:5])
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    if split_one_file:
        reason = (
            f"splitting one file takes {SPLIT_PER_LABEL} items per label for test and "
            f"{SPLIT_PER_LABEL} for dev first, so every label needs more than "
            f"{2 * SPLIT_PER_LABEL} rows; add rows or give --train-data, --dev-data and "
            "--test-data files"
        )
    else:
        reason = (
            "add training examples of them (training rows whose text is also in the dev or "
            "test data are left out)"
        )
    raise DatasetError(
        f"{len(unknown)} labels of the dev or test data have no training example "
        f"({shown}{more}): {reason}"
    )
