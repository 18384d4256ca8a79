"""Loaders of logged outcomes, checked against the real RouterBench, RouteLLM and LLMRouter files."""

from __future__ import annotations

import ast
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data_dir

from shoal.errors import DatasetError
from shoal.simulate.outcomes import (
    LoggedOutcomes,
    load_llmrouter,
    load_routellm,
    load_routellm_dir,
    load_routerbench,
    load_routerbench_dir,
    load_shoal_records,
    load_shoal_records_per_model,
)

DATA = shared_data_dir()
ROUTERBENCH = DATA / "routerbench_subset" / "datasets" / "routerbench_zs"
ROUTELLM = DATA / "routellm_evals" / "routellm" / "evals"
LLMROUTER = DATA / "llmrouter_ulab" / "data" / "dcrouter_preprocessed"

ROUTERBENCH_MODELS = {
    "WizardLM/WizardLM-13B-V1.2", "claude-instant-v1", "claude-v1", "claude-v2",
    "gpt-3.5-turbo-1106", "gpt-4-1106-preview", "meta/code-llama-instruct-34b-chat",
    "meta/llama-2-70b-chat", "mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
}

# Row counts stated by the source of the RouterBench subset.
ROUTERBENCH_ROWS = {
    ("arc-challenge", "train"): 1039,
    ("arc-challenge", "test"): 445,
    ("mbpp", "train"): 299,
    ("mbpp", "test"): 128,
    ("winogrande", "train"): 887,
    ("winogrande", "test"): 380,
}


@pytest.fixture(scope="module")
def routerbench_all() -> list[LoggedOutcomes]:
    return load_routerbench_dir(ROUTERBENCH)


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(2**31 - 1)
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# RouterBench ----------------------------------------------------------------------------------


def test_routerbench_dir_row_counts(routerbench_all: list[LoggedOutcomes]) -> None:
    counts = {(outcomes.task, outcomes.split): len(outcomes) for outcomes in routerbench_all}
    assert counts == ROUTERBENCH_ROWS
    assert sum(counts.values()) == 3178


def test_routerbench_eleven_models(routerbench_all: list[LoggedOutcomes]) -> None:
    for outcomes in routerbench_all:
        assert len(outcomes.models) == 11
        assert set(outcomes.models) == ROUTERBENCH_MODELS
        assert outcomes.scores.shape == (len(outcomes), 11)
        assert outcomes.costs.shape == (len(outcomes), 11)
        assert outcomes.responses is not None
        assert len(outcomes.responses) == len(outcomes)


def test_routerbench_costs_positive(routerbench_all: list[LoggedOutcomes]) -> None:
    for outcomes in routerbench_all:
        assert not np.isnan(outcomes.costs).any(), outcomes.source
        assert (outcomes.costs > 0).all(), outcomes.source


def test_routerbench_row_matches_csv() -> None:
    path = ROUTERBENCH / "mbpp_test.csv"
    rows = read_csv_rows(path)
    outcomes = load_routerbench(path)
    row = 5
    model = "claude-v2"
    column = outcomes.models.index(model)

    assert outcomes.item_ids[row] == rows[row]["sample_id"]
    assert outcomes.scores[row, column] == float(rows[row][model])
    assert outcomes.costs[row, column] == pytest.approx(float(rows[row][f"{model}|total_cost"]))
    assert outcomes.responses is not None
    assert outcomes.responses[row][column] == ast.literal_eval(rows[row][f"{model}|model_response"])[0]


def test_routerbench_unwraps_list_literals() -> None:
    outcomes = load_routerbench(ROUTERBENCH / "arc_challenge_test.csv")
    rows = read_csv_rows(ROUTERBENCH / "arc_challenge_test.csv")
    column = outcomes.models.index("gpt-4-1106-preview")
    assert rows[0]["prompt"].startswith("['")
    assert not outcomes.prompts[0].startswith("['")
    assert outcomes.prompts[0] == ast.literal_eval(rows[0]["prompt"])[0]
    assert outcomes.responses is not None
    assert outcomes.responses[0][column] == "A"


def test_routerbench_arc_gpt4_mean_score() -> None:
    outcomes = load_routerbench(ROUTERBENCH / "arc_challenge_test.csv")
    column = outcomes.models.index("gpt-4-1106-preview")
    # 420 of the 439 scored items: 0.9567; 6 items have no GPT-4 score.
    assert np.nanmean(outcomes.scores[:, column]) == pytest.approx(0.957, abs=0.01)
    assert int(np.isnan(outcomes.scores[:, column]).sum()) == 6


def test_routerbench_missing_scores_are_nan() -> None:
    outcomes = load_routerbench(ROUTERBENCH / "arc_challenge_test.csv")
    incomplete = np.isnan(outcomes.scores).any(axis=1)
    # The source splits some ARC items over two rows with the same sample_id, at times one in
    # train and one in test: one row scores gpt-3.5-turbo-1106 only, the other the ten others.
    assert int(incomplete.sum()) == 8
    assert len(outcomes.item_ids) - len(set(outcomes.item_ids)) == 1
    assert len(outcomes.complete()) == 437
    assert not np.isnan(outcomes.complete().scores).any()
    assert any("lack a score" in note for note in outcomes.notes)


def test_routerbench_scores_binary_where_known(routerbench_all: list[LoggedOutcomes]) -> None:
    for outcomes in routerbench_all:
        known = outcomes.scores[~np.isnan(outcomes.scores)]
        assert set(np.unique(known)) <= {0.0, 1.0}


def test_subset_keeps_model_order() -> None:
    outcomes = load_routerbench(ROUTERBENCH / "winograde_test.csv")
    picked = outcomes.subset(["gpt-4-1106-preview", "claude-instant-v1"])
    assert picked.models == ["gpt-4-1106-preview", "claude-instant-v1"]
    original = outcomes.models.index("claude-instant-v1")
    assert np.array_equal(picked.scores[:, 1], outcomes.scores[:, original])
    assert np.array_equal(picked.costs[:, 1], outcomes.costs[:, original])
    assert picked.responses is not None
    assert outcomes.responses is not None
    assert picked.responses[3][1] == outcomes.responses[3][original]
    assert len(picked) == len(outcomes)


def test_subset_unknown_model() -> None:
    outcomes = load_routerbench(ROUTERBENCH / "winograde_test.csv")
    with pytest.raises(KeyError, match="gpt-5"):
        outcomes.subset(["gpt-5"])


def test_csv_field_limit_raised() -> None:
    load_routerbench(ROUTERBENCH / "mbpp_test.csv")
    assert csv.field_size_limit() >= min(2**31 - 1, sys.maxsize)


# RouteLLM -------------------------------------------------------------------------------------


def test_routellm_gsm8k() -> None:
    path = ROUTELLM / "gsm8k" / "gsm8k_responses.csv"
    outcomes = load_routellm(path)
    rows = read_csv_rows(path)
    gpt4 = outcomes.models.index("gpt-4-1106-preview")

    assert len(outcomes) == 1319
    assert outcomes.task == "gsm8k"
    assert outcomes.models == ["mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"]
    assert np.isnan(outcomes.costs).all()
    expected = [row["gpt-4-1106-preview"] == "True" for row in rows]
    assert outcomes.scores[:, gpt4].tolist() == [float(value) for value in expected]
    assert outcomes.responses is not None
    assert outcomes.responses[0][gpt4] == rows[0]["gpt-4-1106-preview_response"]


def test_routellm_price_per_call() -> None:
    path = ROUTELLM / "gsm8k" / "gsm8k_responses.csv"
    outcomes = load_routellm(path, prices={"gpt-4-1106-preview": 0.01})
    gpt4 = outcomes.models.index("gpt-4-1106-preview")
    assert (outcomes.costs[:, gpt4] == 0.01).all()
    assert np.isnan(outcomes.costs[:, 1 - gpt4]).all()


def test_routellm_price_per_token_estimate() -> None:
    path = ROUTELLM / "gsm8k" / "gsm8k_responses.csv"
    prices = {"gpt-4-1106-preview": (10.0, 30.0)}
    outcomes = load_routellm(path, prices=prices)
    gpt4 = outcomes.models.index("gpt-4-1106-preview")
    assert outcomes.responses is not None
    prompt, response = outcomes.prompts[0], outcomes.responses[0][gpt4] or ""
    expected = (len(prompt) / 4 * 10.0 + len(response) / 4 * 30.0) / 1e6
    assert outcomes.costs[0, gpt4] == pytest.approx(expected)


def test_routellm_token_price_needs_responses() -> None:
    path = ROUTELLM / "mmlu" / "responses" / "mmlu_anatomy.csv"
    with pytest.raises(DatasetError, match="price per call"):
        load_routellm(path, prices={"gpt-4-1106-preview": (10.0, 30.0)})


def test_routellm_price_for_unknown_model() -> None:
    path = ROUTELLM / "mmlu" / "responses" / "mmlu_anatomy.csv"
    with pytest.raises(DatasetError, match="gpt-5"):
        load_routellm(path, prices={"gpt-5": 0.01})


def test_routellm_mmlu_dir() -> None:
    subjects = load_routellm_dir(ROUTELLM / "mmlu" / "responses")
    assert len(subjects) == 57
    assert sum(len(subject) for subject in subjects) == 14042
    assert subjects[0].task == "mmlu_abstract_algebra"
    assert all(subject.responses is None for subject in subjects)
    assert all(subject.split == "test" for subject in subjects)


# LLMRouter ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "count"), [("train", 5608), ("test", 500)])
def test_llmrouter_counts(split: str, count: int) -> None:
    outcomes = load_llmrouter(LLMROUTER / f"{split}.json")
    assert len(outcomes) == count
    assert len(outcomes.models) == 9
    assert outcomes.split == split
    assert np.isnan(outcomes.costs).all()
    assert outcomes.responses is None


def test_llmrouter_same_models_both_splits() -> None:
    train = load_llmrouter(LLMROUTER / "train.json")
    test = load_llmrouter(LLMROUTER / "test.json")
    assert train.models == test.models


def test_llmrouter_item_matches_json() -> None:
    path = LLMROUTER / "test.json"
    items = json.loads(path.read_text(encoding="utf-8"))
    outcomes = load_llmrouter(path, prices={"codegemma-7b": 0.0002})
    column = outcomes.models.index("codegemma-7b")
    for row in (0, 17, 499):
        assert outcomes.prompts[row] == items[row]["question"]
        assert outcomes.scores[row, column] == items[row]["scores"]["codegemma-7b"]
    assert (outcomes.costs[:, column] == 0.0002).all()


# shoal run records ----------------------------------------------------------------------------


def write_records(path: Path, records: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def record(config: str, item: int, correct: bool, cost: str) -> dict[str, object]:
    return {
        "config": config, "item": item, "text": f"text {item}", "label": "a",
        "prediction": "a" if correct else "b", "correct": correct, "cost_usd": cost,
    }


def test_shoal_records_aligned(tmp_path: Path) -> None:
    path = write_records(tmp_path / "banking77" / "records.jsonl", [
        record("encoder:minilm", 1, False, "0.0000001"),
        record("encoder:minilm", 0, True, "0.0000001"),
        record("local:llm", 0, True, "0.0012"),
        record("local:llm", 1, True, "0.0013"),
    ])
    outcomes = load_shoal_records(path)
    assert outcomes.models == ["encoder:minilm", "local:llm"]
    assert outcomes.item_ids == ["0", "1"]
    assert outcomes.prompts == ["text 0", "text 1"]
    assert outcomes.task == "banking77"
    assert outcomes.scores.tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert outcomes.costs[1, 1] == pytest.approx(0.0013)
    assert outcomes.responses == [["a", "a"], ["b", "a"]]
    assert outcomes.notes == []


def test_shoal_records_drop_unshared_items(tmp_path: Path) -> None:
    path = write_records(tmp_path / "records.jsonl", [
        record("encoder:minilm", 0, True, "0.0000001"),
        record("encoder:minilm", 1, True, "0.0000001"),
        record("encoder:minilm", 2, False, "0.0000001"),
        record("local:llm", 0, True, "0.001"),
        record("local:llm", 2, True, "0.001"),
    ])
    outcomes = load_shoal_records(path)
    assert outcomes.item_ids == ["0", "2"]
    assert len(outcomes.notes) == 1
    assert "kept the 2 of 3 items" in outcomes.notes[0]


def test_shoal_records_last_duplicate_wins(tmp_path: Path) -> None:
    path = write_records(tmp_path / "records.jsonl", [
        record("local:llm", 0, False, "0.001"),
        record("local:llm", 0, True, "0.002"),
    ])
    outcomes = load_shoal_records(path)
    assert outcomes.scores.tolist() == [[1.0]]
    assert outcomes.costs[0, 0] == pytest.approx(0.002)


def test_shoal_records_no_shared_item(tmp_path: Path) -> None:
    path = write_records(tmp_path / "records.jsonl", [
        record("encoder:minilm", 0, True, "0.0000001"),
        record("local:llm", 1, True, "0.001"),
    ])
    with pytest.raises(DatasetError, match="no item that every config"):
        load_shoal_records(path)


def test_shoal_records_missing_field(tmp_path: Path) -> None:
    broken = record("local:llm", 0, True, "0.001")
    del broken["cost_usd"]
    path = write_records(tmp_path / "records.jsonl", [broken])
    with pytest.raises(DatasetError, match="'cost_usd'"):
        load_shoal_records(path)


def test_shoal_records_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_shoal_records(tmp_path / "absent.jsonl")


# Errors ---------------------------------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_missing_file_errors(tmp_path: Path) -> None:
    for loader in (load_routerbench, load_routellm, load_llmrouter):
        with pytest.raises(DatasetError, match="not found"):
            loader(tmp_path / "absent.csv")
    with pytest.raises(DatasetError, match="folder not found"):
        load_routerbench_dir(tmp_path / "absent")


def test_routerbench_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x_test.csv", ["prompt", "m", "m|total_cost"], [["p", "1", "0.1"]])
    with pytest.raises(DatasetError, match="'sample_id'"):
        load_routerbench(path)


def test_routerbench_missing_score_column(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x_test.csv", ["sample_id", "prompt", "m|total_cost"], [["1", "p", "0.1"]]
    )
    with pytest.raises(DatasetError, match="no 'm' column"):
        load_routerbench(path)


def test_routerbench_no_model_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x_test.csv", ["sample_id", "prompt", "m"], [["1", "p", "1"]])
    with pytest.raises(DatasetError, match=r"no `<model>\|total_cost` columns"):
        load_routerbench(path)


def test_routerbench_score_outside_range(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x_test.csv",
        ["sample_id", "prompt", "m", "m|total_cost"],
        [["1", "p", "1", "0.1"], ["2", "q", "7", "0.1"]],
    )
    with pytest.raises(DatasetError, match=r"score 7.0 of model 'm' on item '2' is outside \[0, 1\]"):
        load_routerbench(path)


def test_routerbench_score_not_number(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x_test.csv", ["sample_id", "prompt", "m", "m|total_cost"], [["1", "p", "yes", "0.1"]]
    )
    with pytest.raises(DatasetError, match="column 'm'"):
        load_routerbench(path)


def test_routerbench_split_and_task_from_name(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "my_task_train.csv",
        ["sample_id", "prompt", "m", "m|total_cost"],
        [["1", "p", "0.5", ""]],
    )
    outcomes = load_routerbench(path)
    assert outcomes.task == "my_task"
    assert outcomes.split == "train"
    assert math.isnan(outcomes.costs[0, 0])
    assert outcomes.responses is None


def test_routellm_no_model_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["prompt"], [["p"]])
    with pytest.raises(DatasetError, match="no model columns"):
        load_routellm(path)


def test_routellm_invalid_correctness(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["prompt", "m"], [["p", "maybe"]])
    with pytest.raises(DatasetError, match="not True or False"):
        load_routellm(path)


def test_llmrouter_score_outside_range(tmp_path: Path) -> None:
    path = tmp_path / "test.json"
    path.write_text(json.dumps([{"question": "q", "scores": {"m": 1.5}}]), encoding="utf-8")
    with pytest.raises(DatasetError, match="outside"):
        load_llmrouter(path)


def test_llmrouter_models_differ(tmp_path: Path) -> None:
    path = tmp_path / "test.json"
    items = [{"question": "q", "scores": {"m": 1}}, {"question": "r", "scores": {"n": 0}}]
    path.write_text(json.dumps(items), encoding="utf-8")
    with pytest.raises(DatasetError, match="same models"):
        load_llmrouter(path)


def test_outcomes_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shape"):
        LoggedOutcomes(
            task="t", split="", item_ids=["0"], prompts=["p"], models=["m"],
            scores=np.zeros((2, 1)), costs=np.zeros((1, 1)), responses=None, source="test",
        )


def test_outcomes_negative_cost() -> None:
    with pytest.raises(DatasetError, match="non-negative"):
        LoggedOutcomes(
            task="t", split="", item_ids=["0"], prompts=["p"], models=["m"],
            scores=np.zeros((1, 1)), costs=np.full((1, 1), -1.0), responses=None, source="test",
        )


def test_shoal_records_leave_out_cascade(tmp_path: Path) -> None:
    path = write_records(tmp_path / "records.jsonl", [
        record("encoder:minilm", 0, True, "0.0000001"),
        record("cascade", 0, True, "0.0001"),
        record("local:llm", 0, False, "0.001"),
    ])

    outcomes = load_shoal_records(path)

    assert outcomes.models == ["encoder:minilm", "local:llm"]
    assert outcomes.notes == ["left out config 'cascade', which combines several models"]


def test_shoal_records_per_model_keep_every_item(tmp_path: Path) -> None:
    path = write_records(tmp_path / "records.jsonl", [
        record("encoder:minilm", 0, True, "0.0000001"),
        record("encoder:minilm", 1, False, "0.0000001"),
        record("local:llm", 1, True, "0.001"),
    ])

    tables = load_shoal_records_per_model(path)

    assert [table.models for table in tables] == [["encoder:minilm"], ["local:llm"]]
    assert [table.item_ids for table in tables] == [["0", "1"], ["1"]]
