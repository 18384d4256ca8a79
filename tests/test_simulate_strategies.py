"""Tests of the strategy families, the simulation report and `shoal simulate`, on RouterBench."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data_dir
from typer.testing import CliRunner

from shoal.cli import app
from shoal.simulate.agreement import AgreementRule, candidate_rules, choice_matrix, run_agreement
from shoal.simulate.cascades import agreement_cascade
from shoal.simulate.frontier import StrategyPoint
from shoal.simulate.outcomes import LoggedOutcomes, load_routerbench
from shoal.simulate.report import pair_splits, result_rows, routing_text, simulate_task
from shoal.simulate.strategies import Splits, cheap_models, choose_setting, escalation_points

GPT4 = "gpt-4-1106-preview"
YI = "zero-one-ai/Yi-34B-Chat"
MIXTRAL = "mistralai/mixtral-8x7b-chat"
INSTANT = "claude-instant-v1"


def routerbench_folder() -> Path:
    return shared_data_dir() / "routerbench_subset" / "datasets" / "routerbench_zs"


@pytest.fixture(scope="module")
def arc() -> tuple[LoggedOutcomes, LoggedOutcomes]:
    folder = routerbench_folder()
    train = load_routerbench(folder / "arc_challenge_train.csv").complete()
    test = load_routerbench(folder / "arc_challenge_test.csv").complete()
    return train, test


def point(accuracy: float, cost: float) -> StrategyPoint:
    return StrategyPoint("p", accuracy, cost)


def test_choose_setting_cheapest_reaching_target() -> None:
    points = [point(0.95, 3.0), point(0.91, 1.0), point(0.92, 1.0), point(0.80, 0.1)]

    assert choose_setting(points, target=0.9) == 2


def test_choose_setting_falls_back_to_most_accurate() -> None:
    points = [point(0.70, 3.0), point(0.75, 2.0), point(0.75, 1.0)]

    assert choose_setting(points, target=0.9) == 2


def test_escalation_points_match_item_loop() -> None:
    rng = np.random.default_rng(3)
    size = 200
    confidence = np.round(rng.random(size), 1)
    first = rng.random(size)  # fractional scores are allowed
    final = (rng.random(size) < 0.9).astype(float)
    first_cost = rng.uniform(0.001, 0.002, size)
    final_cost = rng.uniform(0.01, 0.02, size)
    thresholds = np.array([np.inf, 1.0, 0.7, 0.35, 0.0, -np.inf])

    points = escalation_points("x", confidence, first, first_cost, final, final_cost, thresholds)

    for threshold, result in zip(thresholds, points, strict=True):
        accepted = confidence >= threshold
        expected_score = np.where(accepted, first, final).mean()
        expected_cost = (first_cost + np.where(accepted, 0.0, final_cost)).mean()
        assert result.accuracy == pytest.approx(expected_score)
        assert result.mean_cost_usd == pytest.approx(expected_cost)


@pytest.mark.parametrize(
    ("order", "thresholds"),
    [((MIXTRAL, YI), []), ((MIXTRAL, INSTANT, YI), [0.5])],
    ids=["pair", "triple"],
)
def test_vectorised_agreement_matches_item_loop(
    arc: tuple[LoggedOutcomes, LoggedOutcomes], order: tuple[str, ...], thresholds: list[float]
) -> None:
    _, test = arc
    rule = AgreementRule(order=order, final=GPT4)

    accuracy, cost, escalated = run_agreement(test, choice_matrix(test), rule)
    expected = agreement_cascade(test, [*order, GPT4], [1.0, *thresholds])

    assert accuracy == pytest.approx(expected.accuracy)
    assert cost == pytest.approx(expected.mean_cost)
    assert 0.0 < escalated < 0.5


def test_candidate_rules_keep_cost_order() -> None:
    rules = candidate_rules(["a", "b", "c", "d"], final="z")

    assert len(rules) == 6 + 4
    assert all(list(rule.order) == sorted(rule.order) for rule in rules)
    assert {rule.final for rule in rules} == {"z"}


def test_cheap_models_exclude_reference_and_dear(arc: tuple[LoggedOutcomes, LoggedOutcomes]) -> None:
    train, test = arc
    splits = Splits(train=train, test=test, reference=GPT4, tolerance=0.01)

    cheap = cheap_models(splits)

    assert GPT4 not in cheap
    assert "claude-v1" not in cheap
    assert "claude-v2" not in cheap
    assert cheap[0] == "mistralai/mistral-7b-chat"
    assert YI in cheap


def test_routing_text_keeps_last_question() -> None:
    prompt = "Example question\nA) x\nAnswer: A\n\nReal question?\nA) y\nB) z\nAnswer:"

    assert routing_text(prompt) == "Real question?\nA) y\nB) z\nAnswer:"


def test_pair_splits_pairs_train_and_test(arc: tuple[LoggedOutcomes, LoggedOutcomes]) -> None:
    train, test = arc

    pairs = pair_splits([test, train])

    assert len(pairs) == 1
    paired_train, paired_test = pairs[0]
    assert (len(paired_train), len(paired_test)) == (len(train), len(test))
    assert paired_train.split == "train"


def test_pair_splits_halves_a_lone_split(arc: tuple[LoggedOutcomes, LoggedOutcomes]) -> None:
    _, test = arc

    (first, second), = pair_splits([test])

    assert len(first) + len(second) == len(test)
    assert not set(first.item_ids) & set(second.item_ids)
    assert (first.split, second.split) == ("train", "test")


def test_simulate_arc_without_encoder(arc: tuple[LoggedOutcomes, LoggedOutcomes]) -> None:
    train, test = arc

    report = simulate_task(train, test)
    rows = {row["strategy"]: row for row in result_rows(report)}

    reference = rows[f"single:{GPT4}"]
    assert reference["accuracy"] == pytest.approx(0.9565, abs=1e-4)
    assert reference["cost_per_1k_usd"] == pytest.approx(5.001, abs=1e-3)
    assert rows["oracle"]["accuracy"] >= max(
        row["accuracy"] for row in rows.values() if row["strategy"].startswith("single:")
    )
    assert rows["oracle"]["oracle_saving_captured"] == pytest.approx(1.0)
    assert rows["best-single"]["oracle_saving_captured"] == pytest.approx(0.0)
    assert "knn-router" not in rows
    assert report.notes == ["learned routers skipped: no encoder"]
    agreement = report.result("agreement-cascade")
    assert agreement.train is not None
    splits = Splits(train=train, test=test, reference=GPT4, tolerance=0.01)
    assert len(agreement.curve) == len(candidate_rules(cheap_models(splits), GPT4))
    for row in rows.values():
        assert set(row) >= {
            "strategy", "accuracy", "cost_per_1k_usd", "accuracy_per_dollar", "aiq",
            "oracle_saving_captured",
        }
        assert 0.0 <= row["aiq"] <= 1.0
    best = report.result("shoal-best")
    assert best.setting.startswith("agreement-cascade")


def test_simulate_rejects_missing_costs(arc: tuple[LoggedOutcomes, LoggedOutcomes]) -> None:
    train, test = arc
    costs = test.costs.copy()
    costs[0, 0] = math.nan
    broken = LoggedOutcomes(
        task=test.task, split="test", item_ids=test.item_ids, prompts=test.prompts,
        models=test.models, scores=test.scores, costs=costs, responses=test.responses,
        source="broken.csv",
    )

    with pytest.raises(Exception, match="without a cost"):
        simulate_task(train, broken)


def test_simulate_unknown_reference(arc: tuple[LoggedOutcomes, LoggedOutcomes]) -> None:
    train, test = arc

    with pytest.raises(Exception, match="reference model 'gpt-5' is not in"):
        simulate_task(train, test, reference="gpt-5")


def test_cli_simulate_json_with_routers(tmp_path: Path) -> None:
    folder = tmp_path / "arc"
    folder.mkdir()
    for split in ("train", "test"):
        source = routerbench_folder() / f"arc_challenge_{split}.csv"
        (folder / source.name).symlink_to(source)

    result = CliRunner().invoke(
        app, ["simulate", str(folder), "--format", "json", "--output", str(tmp_path / "out")]
    )

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    strategies = {row["strategy"] for row in document["strategies"]}
    assert {"oracle", "best-single", f"single:{GPT4}", "knn-router", "linear-router",
            "calibrated-knn", "agreement-cascade", "shoal-best"} <= strategies
    (task,) = document["tasks"]
    assert task["task"] == "arc-challenge"
    assert task["goal"]["reference"] == GPT4
    assert (tmp_path / "out" / "simulate.json").is_file()
    assert (tmp_path / "out" / "arc-challenge.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_simulate_bad_inputs(tmp_path: Path) -> None:
    runner = CliRunner()
    other = tmp_path / "outcomes.txt"
    other.write_text("x")

    missing = runner.invoke(app, ["simulate", str(tmp_path / "nothing.csv")])
    wrong_kind = runner.invoke(app, ["simulate", str(other)])
    bad_format = runner.invoke(app, ["simulate", str(other), "--format", "xml"])

    assert "outcomes not found" in str(missing.exception)
    assert "cannot read" in str(wrong_kind.exception)
    assert "invalid --format" in str(bad_format.exception)


def test_pair_features_use_the_likelier_model() -> None:
    from shoal.simulate.learned import pair_features

    choices = np.array([[0, 0, 1], [0, 1, 1], [-1, -1, 2]])
    predicted = np.array([[0.9, 0.2, 0.5], [0.3, 0.8, 0.1], [0.6, 0.1, 0.4]])

    features, answering = pair_features(choices, predicted, (0, 1))

    assert answering.tolist() == [0, 1, 0]
    assert features[:, 0].tolist() == [1.0, 0.0, 0.0]  # a missing choice never agrees
    assert features[:, 3].tolist() == [0.9, 0.0, 0.0]
    assert features[1, 1:3].tolist() == [0.3, 0.8]


def test_cli_simulate_option_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    source = str(routerbench_folder() / "arc_challenge_test.csv")
    a_file = tmp_path / "taken"
    a_file.write_text("x")

    both = runner.invoke(app, ["simulate", source, "--tolerance", "0.02", "--cost-share", "0.3"])
    file_output = runner.invoke(app, ["simulate", source, "--output", str(a_file)])

    assert "give one" in str(both.exception)
    assert "is a file" in str(file_output.exception)


def test_cli_simulate_one_file_notes_the_halves() -> None:
    source = str(routerbench_folder() / "arc_challenge_test.csv")

    result = CliRunner().invoke(app, ["simulate", source, "--encoder", "none", "--format", "json"])

    assert result.exit_code == 0, result.output
    (task,) = json.loads(result.stdout)["tasks"]
    assert (task["train_items"], task["test_items"]) == (218, 219)
    assert any("split at random" in note for note in task["notes"])
