"""`shoal eval PIPELINE DATA`: data loading and a real encoder-only run on CLINC150."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import shared_data_dir
from typer.testing import CliRunner

from shoal.cli import app
from shoal.errors import UserInputError
from shoal.evaluate.records import read_records
from shoal.pipeline import parse_pipeline
from shoal.pipeline.command import is_pipeline, load_pipeline_data, load_pipeline_spec

ROUTER = """\
name: clinc-two-domains
steps:
  domain:
    task: route
    model: encoder:minilm
    gold: domain
    routes: {banking: banking, travel: travel, oos: null}
    threshold: 0.0
    fallback_step: general
  banking: {task: classify, model: encoder:minilm, gold: intent}
  travel: {task: classify, model: encoder:minilm, gold: intent}
  general: {task: classify, model: encoder:minilm, gold: intent}
"""

TWO_CLASSIFIERS = """\
name: two-classifiers
steps:
  queue: {task: classify, model: encoder:minilm, gold: queue}
  priority: {task: classify, model: encoder:minilm, gold: priority}
"""


def clinc_folder() -> Path:
    return shared_data_dir() / "clinc150"


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_is_pipeline_by_suffix_or_example() -> None:
    assert is_pipeline("triage.yaml")
    assert is_pipeline("triage.YML")
    assert is_pipeline("clinc150_router")
    assert not is_pipeline("sroie")


def test_example_spec_by_name() -> None:
    spec = load_pipeline_spec("ticket_triage")

    assert set(spec.steps) == {"queue", "priority", "entities"}


def test_clinc_folder_uses_its_splits() -> None:
    data = load_pipeline_data(clinc_folder(), limit=50, seed=1)

    assert len(data.train) == 15000
    assert len(data.train_kept) == 100
    assert {row["intent"] for row in data.train_kept} == {"oos"}
    assert len(data.test) == 50
    assert {"text", "intent", "domain"} <= set(data.test[0])


def test_clinc_training_keeps_every_oos_row() -> None:
    data = load_pipeline_data(clinc_folder())
    spec = load_pipeline_spec("clinc150_router")

    rows = data.training_rows(spec, per_label=2, seed=0)

    assert len(rows) == 150 * 2 + 100
    assert sum(row["intent"] == "oos" for row in rows) == 100


def test_training_rows_per_label_combination(tmp_path: Path) -> None:
    rows = [{"text": str(n), "queue": "qa"[n % 2], "priority": "hl"[n % 3 % 2]} for n in range(24)]
    data = load_pipeline_data(write_rows(tmp_path / "rows.csv", rows), seed=0)
    spec = parse_pipeline(TWO_CLASSIFIERS)

    sampled = data.training_rows(spec, per_label=1, seed=0)

    combinations = {(row["queue"], row["priority"]) for row in data.train}
    assert len(sampled) == len(combinations) == 4


def test_missing_gold_column_rejected(tmp_path: Path) -> None:
    test = write_rows(tmp_path / "test.csv", [{"text": "c", "queue": "q"}])
    data = load_pipeline_data(test, train=test)

    with pytest.raises(UserInputError, match="no column 'priority', which step 'priority' is scored"):
        data.check_columns(parse_pipeline(TWO_CLASSIFIERS))


def test_missing_input_column_rejected(tmp_path: Path) -> None:
    test = write_rows(tmp_path / "test.csv", [{"body": "c", "queue": "q", "priority": "h"}])
    data = load_pipeline_data(test, train=test)

    with pytest.raises(UserInputError, match="no column 'text', which step 'queue' reads"):
        data.check_columns(parse_pipeline(TWO_CLASSIFIERS))


def test_clinc_folder_rejects_train_option(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="--train does not apply"):
        load_pipeline_data(clinc_folder(), train=tmp_path / "x.csv")


def test_tickets_get_text_and_a_seeded_split() -> None:
    path = shared_data_dir() / "support_tickets" / "tickets_v5_en_de_complete_rows.csv"

    first = load_pipeline_data(path, seed=3)
    again = load_pipeline_data(path, seed=3)

    assert len(first.train) + len(first.test) == 1872
    assert len(first.train) == round(1872 * 0.7)
    assert first.test == again.test
    ticket = first.test[0]
    assert ticket["text"].startswith(ticket["subject"].strip())


def test_separate_train_file(tmp_path: Path) -> None:
    train = write_rows(tmp_path / "train.csv", [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    test = write_rows(tmp_path / "test.csv", [{"text": "c", "label": "x"}])

    data = load_pipeline_data(test, train=train)

    assert [row["text"] for row in data.train] == ["a", "b"]
    assert [row["text"] for row in data.test] == ["c"]


def test_folder_that_is_not_clinc(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="not CLINC150's"):
        load_pipeline_data(tmp_path)


def test_cli_eval_pipeline_on_clinc(tmp_path: Path) -> None:
    pipeline = tmp_path / "router.yaml"
    pipeline.write_text(ROUTER, encoding="utf-8")
    output = tmp_path / "run"

    result = CliRunner().invoke(app, [
        "eval", str(pipeline), str(clinc_folder()), "--limit", "60", "--output", str(output),
    ])

    assert result.exit_code == 0, result.output
    assert "end to end" in result.stdout
    summary = json.loads((output / "summary.json").read_text())
    records = read_records(output / "records.jsonl")
    assert summary["n_items"] == len(records) == 60
    right = sum(record["end_to_end_correct"] for record in records)
    assert summary["end_to_end_accuracy"] == pytest.approx(right / 60)
    router_right = sum(record["correct"]["domain"] for record in records)
    assert right <= router_right


def test_cli_rejects_extraction_options_for_pipeline(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "eval", "clinc150_router", str(tmp_path), "--model", "local:qwen2.5-coder-0.5b",
        "--max-retries", "3",
    ])

    assert isinstance(result.exception, UserInputError)
    assert "--model, --max-retries do not apply to a pipeline" in str(result.exception)


def test_cli_rejects_pipeline_options_for_extraction(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "sroie", str(tmp_path), "--per-label", "all"])

    assert isinstance(result.exception, UserInputError)
    assert "--per-label does not apply to the extraction dataset 'sroie'" in str(result.exception)


def test_train_file_missing_gold_rejected(tmp_path: Path) -> None:
    train = write_rows(tmp_path / "train.csv", [{"text": "a", "queue": "q"}])
    test = write_rows(tmp_path / "test.csv", [{"text": "c", "queue": "q", "priority": "h"}])
    data = load_pipeline_data(test, train=train)

    with pytest.raises(UserInputError, match="the train rows .* no column 'priority'"):
        data.check_columns(parse_pipeline(TWO_CLASSIFIERS))
