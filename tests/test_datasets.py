from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest

from shoal.errors import DatasetError, UserInputError
from shoal.evaluate.datasets import (
    LabelledDataset,
    load_dataset,
    sample,
    split_off,
    stratified_sample,
)

BANKING77 = Path(__file__).parent / "data" / "banking77_test_3per_class.csv"


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _small_dataset() -> LabelledDataset:
    labels = ("a",) * 6 + ("b",) * 3 + ("c",) * 1
    texts = tuple(f"text {i}" for i in range(len(labels)))
    return LabelledDataset(texts=texts, labels=labels, source="memory")


# --- loading ---


def test_banking77_csv_loads_all_rows() -> None:
    dataset = load_dataset(BANKING77, label_column="category")

    assert len(dataset) == 231
    assert len(dataset.labels_set) == 77
    assert dataset.texts[0] == "Did my refund go through? It's not on my statement."
    assert dataset.labels[0] == "Refund_not_showing_up"
    assert dataset.source == str(BANKING77)
    assert set(Counter(dataset.labels).values()) == {3}


def test_labels_set_is_sorted_distinct() -> None:
    dataset = LabelledDataset(texts=("x", "y", "z"), labels=("b", "a", "b"), source="memory")

    assert dataset.labels_set == ("a", "b")


def test_jsonl_loads_with_custom_columns(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "snips.jsonl",
        [
            {"utterance": "play some jazz", "intent": "PlayMusic", "extra": 1},
            {"utterance": "will it rain", "intent": "GetWeather"},
            {"utterance": "café au lait playlist", "intent": " AddToPlaylist "},
        ],
    )

    dataset = load_dataset(path, text_column="utterance", label_column="intent")

    assert dataset.texts == ("play some jazz", "will it rain", "café au lait playlist")
    assert dataset.labels == ("PlayMusic", "GetWeather", "AddToPlaylist")


def test_json_lines_extension_is_accepted(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "data.json-lines",
        [{"text": "yes", "label": 1}, {"text": "no", "label": 0}],
    )

    dataset = load_dataset(path)

    assert dataset.labels == ("1", "0")


def test_jsonl_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(
        '{"text": "a", "label": "x"}\n\n   \n{"text": "b", "label": "y"}\n', encoding="utf-8"
    )

    assert len(load_dataset(path)) == 2


def test_csv_with_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\nhello,greet\nbye,leave\n".encode("utf-8-sig"))

    dataset = load_dataset(path)

    assert dataset.texts == ("hello", "bye")


def test_empty_rows_skipped_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text(
        "text,label\nhello,greet\n,greet\n   ,leave\nbye,\nbye,leave\n", encoding="utf-8"
    )

    with caplog.at_level(logging.WARNING, logger="shoal.evaluate.datasets"):
        dataset = load_dataset(path)

    assert dataset.texts == ("hello", "bye")
    assert dataset.labels == ("greet", "leave")
    assert "skipped 3 of 5 rows" in caplog.text


def test_jsonl_null_and_missing_cells_skipped(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "data.jsonl",
        [
            {"text": "a", "label": "x"},
            {"text": None, "label": "x"},
            {"label": "y"},
            {"text": "b", "label": "y"},
        ],
    )

    dataset = load_dataset(path)

    assert dataset.texts == ("a", "b")


# --- loading errors ---


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"

    with pytest.raises(DatasetError, match="not found") as caught:
        load_dataset(path)

    assert str(path) in str(caught.value)


def test_unsupported_extension_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("whatever", encoding="utf-8")

    with pytest.raises(DatasetError) as caught:
        load_dataset(path)

    message = str(caught.value)
    assert "'.xlsx'" in message
    assert ".csv, .jsonl, .json-lines" in message


def test_missing_label_column_names_columns(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        load_dataset(BANKING77)  # the label column there is "category"

    message = str(caught.value)
    assert "'label'" in message
    assert "'text', 'category'" in message
    assert "--label-column" in message


def test_missing_text_column_names_option(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "data.jsonl", [{"body": "a", "label": "x"}])

    with pytest.raises(DatasetError) as caught:
        load_dataset(path)

    message = str(caught.value)
    assert "'text'" in message
    assert "'body', 'label'" in message
    assert "--text-column" in message


def test_header_only_csv_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("text,label\n", encoding="utf-8")

    with pytest.raises(DatasetError, match="has no rows") as caught:
        load_dataset(path)

    assert str(path) in str(caught.value)


def test_zero_byte_jsonl_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")

    with pytest.raises(DatasetError, match="has no rows"):
        load_dataset(path)


def test_all_rows_empty_is_error(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("text,label\n,x\ny,\n", encoding="utf-8")

    with pytest.raises(DatasetError) as caught:
        load_dataset(path)

    message = str(caught.value)
    assert "no row with a non-empty 'text' and 'label'" in message
    assert str(path) in message


def test_single_label_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("text,label\na,spam\nb,spam\n", encoding="utf-8")

    with pytest.raises(DatasetError) as caught:
        load_dataset(path)

    message = str(caught.value)
    assert "a label set of one label" in message
    assert "'spam'" in message


def test_malformed_json_line_names_number(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(
        '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": "c", "label"\n',
        encoding="utf-8",
    )

    with pytest.raises(DatasetError) as caught:
        load_dataset(path)

    message = str(caught.value)
    assert "line 3" in message
    assert str(path) in message


def test_json_line_not_object_rejected(tmp_path: Path) -> None:
    path = tmp_path / "list.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n["b", "y"]\n', encoding="utf-8")

    with pytest.raises(DatasetError, match="line 2 is a JSON list"):
        load_dataset(path)


def test_nested_cell_value_rejected(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "nested.jsonl",
        [{"text": "a", "label": "x"}, {"text": {"body": "b"}, "label": "y"}],
    )

    with pytest.raises(DatasetError, match="row 2 has a dict in column 'text'"):
        load_dataset(path)


def test_invalid_utf8_csv_rejected(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncafé,x\nthé,y\n".encode("latin-1"))

    with pytest.raises(DatasetError, match="UTF-8"):
        load_dataset(path)


def test_dataset_rejects_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="2 texts and 1 labels"):
        LabelledDataset(texts=("a", "b"), labels=("x",), source="memory")


# --- sampling ---


def test_stratified_sample_caps_each_label() -> None:
    dataset = _small_dataset()

    taken = stratified_sample(dataset, per_label=2, seed=7)

    assert Counter(taken.labels) == {"a": 2, "b": 2, "c": 1}
    indices = [dataset.texts.index(text) for text in taken.texts]
    assert indices == sorted(indices)
    assert all(dataset.labels[i] == label for i, label in zip(indices, taken.labels))


def test_stratified_sample_none_returns_all() -> None:
    dataset = _small_dataset()

    assert stratified_sample(dataset, per_label=None, seed=0) == dataset


def test_stratified_sample_is_seeded() -> None:
    dataset = load_dataset(BANKING77, label_column="category")

    first = stratified_sample(dataset, per_label=1, seed=3)
    again = stratified_sample(dataset, per_label=1, seed=3)
    other = stratified_sample(dataset, per_label=1, seed=4)

    assert first == again
    assert len(first) == 77
    assert first.texts != other.texts


def test_stratified_sample_rejects_zero() -> None:
    with pytest.raises(UserInputError, match="got 0"):
        stratified_sample(_small_dataset(), per_label=0, seed=0)


def test_sample_without_replacement_seeded() -> None:
    dataset = _small_dataset()

    taken = sample(dataset, 4, seed=11)

    assert len(taken) == 4
    assert len(set(taken.texts)) == 4
    assert taken == sample(dataset, 4, seed=11)
    assert set(taken.texts) <= set(dataset.texts)


def test_sample_larger_than_dataset_returns_all() -> None:
    dataset = _small_dataset()

    assert sample(dataset, 10, seed=0) == dataset
    assert sample(dataset, 500, seed=0) == dataset


def test_sample_rejects_zero() -> None:
    with pytest.raises(UserInputError, match="got 0"):
        sample(_small_dataset(), 0, seed=0)


def test_split_off_partitions_dataset() -> None:
    dataset = _small_dataset()

    taken, rest = split_off(dataset, 3, seed=5)

    assert len(taken) == 3
    assert len(rest) == 7
    assert sorted(taken.texts + rest.texts) == sorted(dataset.texts)
    assert (taken, rest) == split_off(dataset, 3, seed=5)
    for part in (taken, rest):
        indices = [dataset.texts.index(text) for text in part.texts]
        assert indices == sorted(indices)
        assert all(dataset.labels[i] == label for i, label in zip(indices, part.labels))


def test_split_off_seed_changes_split() -> None:
    dataset = load_dataset(BANKING77, label_column="category")

    first, _ = split_off(dataset, 50, seed=1)
    second, _ = split_off(dataset, 50, seed=2)

    assert first.texts != second.texts


def test_split_off_bounds() -> None:
    dataset = _small_dataset()

    empty, everything = split_off(dataset, 0, seed=0)
    assert len(empty) == 0
    assert everything == dataset

    with pytest.raises(UserInputError, match="cannot split 11 items off a dataset of 10"):
        split_off(dataset, 11, seed=0)
    with pytest.raises(UserInputError, match="cannot split -1 items"):
        split_off(dataset, -1, seed=0)
