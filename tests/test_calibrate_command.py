"""`shoal calibrate` on a real small bench run, and `shoal bench --thresholds` reusing its file.

One bench run (tier 0 = the bundled MiniLM encoder, escalation = an OpenAI model served by a
fake on 127.0.0.1) is shared by the module. Every saved threshold is checked against the
calibration functions called directly on arrays read from the same run record.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import bundled_train_rows, fixture_rows, write_csv
from fake_openai import FakeOpenAI, FakeToken, openai_usage
from typer.testing import CliRunner

from shoal.bench import BenchOptions, load_bench_data, run_bench
from shoal.bench.view import verdict
from shoal.calibration import (
    IsotonicCalibration,
    PlattScaling,
    TemperatureScaling,
    best_threshold_within_budget,
    cheapest_threshold_for_accuracy,
    expected_calibration_error,
    guaranteed_threshold,
    threshold_curve,
)
from shoal.calibration.run_fit import split_items
from shoal.calibration.run_join import join_run_records
from shoal.calibration.saved import load_thresholds, save_thresholds
from shoal.cli import app
from shoal.errors import DatasetError, UserInputError

# Ten BANKING77 intents. With one training example per label, tier 0 is right on about 80%
# of the test items, so both calibration classes occur and escalation can help.
LABELS = (
    "disposable_card_limits", "get_disposable_virtual_card", "card_delivery_estimate",
    "pin_blocked", "top_up_reverted", "card_swallowed", "card_acceptance",
    "beneficiary_not_allowed", "age_limit", "receiving_money",
)
ESCALATION_MODEL = "openai:gpt-4o-mini"
TIER0_MODEL = "encoder:minilm"
LLM_SAMPLE = 30  # of the 40 test items, so the join must drop the other 10
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PANEL_WIDTH_PX = 600  # one reliability panel: 6 inches at 100 dpi
CLI_TIMEOUT_S = 120


class LabelAwareOpenAI(FakeOpenAI):
    """A fake that replies with the letter of the text's gold label, or a wrong one for some texts.

    The answer is wrong when the text's code points sum to a multiple of 4 (about a quarter
    of the texts), or when the gold label is not among the options. So the escalation model
    is right on some items where tier 0 is wrong, and wrong on others.
    """

    def __init__(self, gold: dict[str, str]) -> None:
        super().__init__()
        self.gold = gold
        self.usage = openai_usage(200, 1)

    def completion(self, request_body: dict[str, Any]) -> dict[str, Any]:
        prompt = request_body["messages"][-1]["content"]
        text = re.search(r'Text: "(.*)"\nWhich', prompt, re.DOTALL)
        options = dict(re.findall(r"^([A-Z])\. (.+?), e\.g\.", prompt, re.MULTILINE))
        assert text is not None and options, prompt
        gold = self.gold[text.group(1)]
        right = [letter for letter, name in options.items() if name.replace(" ", "_") == gold]
        wrong = [letter for letter in options if letter not in right]
        letter = right[0] if right and sum(map(ord, text.group(1))) % 4 else wrong[0]
        # The bench sends one request at a time, so setting the reply fields here is safe.
        self.content = letter
        self.tokens = [FakeToken(letter, math.log(0.8), {letter: math.log(0.8)})]
        return super().completion(request_body)


@dataclass(frozen=True)
class BenchRun:
    folder: Path
    data_path: Path
    fake: LabelAwareOpenAI


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchRun]:
    root = tmp_path_factory.mktemp("calibrate")
    rows = fixture_rows(LABELS) + bundled_train_rows(LABELS, per_label=9)
    data_path = write_csv(root / "banking77_ten.csv", rows, ("text", "category"))
    fake = LabelAwareOpenAI(dict(rows)).start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_BASE_URL", fake.base_url)
        patch.setenv("OPENAI_API_KEY", fake.api_key)
        data = load_bench_data(data_path, text_column="text", label_column="category")
        options = BenchOptions(
            escalate=[ESCALATION_MODEL], per_label=1, llm_sample=LLM_SAMPLE,
            output=root / "run",
        )
        asyncio.run(run_bench(data, options))
        yield BenchRun(folder=root / "run", data_path=data_path, fake=fake)
    fake.stop()


@dataclass(frozen=True)
class Arrays:
    """The joined arrays, read from the records here without shoal's join."""

    items: list[int]
    confidence: np.ndarray
    correct0: np.ndarray
    correct1: np.ndarray
    cost0: np.ndarray
    cost1: np.ndarray

    def take(self, positions: np.ndarray) -> Arrays:
        return Arrays(
            items=[self.items[i] for i in positions],
            confidence=self.confidence[positions],
            correct0=self.correct0[positions],
            correct1=self.correct1[positions],
            cost0=self.cost0[positions],
            cost1=self.cost1[positions],
        )

    def curve_args(self, confidence: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        scores = self.confidence if confidence is None else confidence
        return (scores, self.correct0, self.correct1, self.cost0, self.cost1)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def by_item(records: list[dict[str, Any]], config: str) -> dict[int, dict[str, Any]]:
    return {record["item"]: record for record in records if record["config"] == config}


def read_arrays(folder: Path) -> Arrays:
    records = read_jsonl(folder / "records.jsonl")
    tier0 = by_item(records, TIER0_MODEL)
    tier1 = by_item(records, ESCALATION_MODEL)
    items = sorted(set(tier0) & set(tier1))
    return Arrays(
        items=items,
        confidence=np.array([tier0[i]["confidence"] for i in items]),
        correct0=np.array([tier0[i]["correct"] for i in items]),
        correct1=np.array([tier1[i]["correct"] for i in items]),
        cost0=np.array([float(Decimal(tier0[i]["cost_usd"])) for i in items]),
        cost1=np.array([float(Decimal(tier1[i]["steps"][1]["cost"]["usd"])) for i in items]),
    )


def calibrate(*args: str) -> Any:
    """Run `shoal calibrate` in-process and return typer's result."""
    return CliRunner().invoke(app, ["calibrate", *args])


def calibrate_json(run: Path, *args: str) -> dict[str, Any]:
    result = calibrate(str(run), *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def png_width(path: Path) -> int:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    return struct.unpack(">I", data[16:20])[0]  # IHDR width, right after the signature


def test_run_has_both_outcomes(bench_run: BenchRun) -> None:
    arrays = read_arrays(bench_run.folder)

    assert len(arrays.items) == LLM_SAMPLE
    assert 0 < arrays.correct0.sum() < LLM_SAMPLE
    assert np.any(arrays.correct1 & ~arrays.correct0)
    assert np.any(arrays.correct0 & ~arrays.correct1)


def test_join_matches_records(bench_run: BenchRun) -> None:
    expected = read_arrays(bench_run.folder)

    joined = join_run_records(bench_run.folder)

    assert joined.tier0_model == TIER0_MODEL
    assert joined.tier1_model == ESCALATION_MODEL
    assert joined.items.tolist() == expected.items
    assert joined.confidence.tolist() == expected.confidence.tolist()
    assert joined.correct0.tolist() == expected.correct0.tolist()
    assert joined.correct1.tolist() == expected.correct1.tolist()
    assert joined.cost0_usd.tolist() == expected.cost0.tolist()
    assert joined.cost1_usd.tolist() == expected.cost1.tolist()
    assert joined.cached1.sum() == 0
    assert joined.records_path == bench_run.folder / "records.jsonl"


def test_join_accepts_records_file(bench_run: BenchRun) -> None:
    joined = join_run_records(bench_run.folder / "records.jsonl")

    assert joined.n == LLM_SAMPLE


def test_target_matches_direct_choice(bench_run: BenchRun, tmp_path: Path) -> None:
    arrays = read_arrays(bench_run.folder)
    output = tmp_path / "target.json"

    printed = calibrate_json(bench_run.folder, "--target", "0.85", "--output", str(output))

    expected = cheapest_threshold_for_accuracy(*arrays.curve_args(), target=0.85)
    assert expected is not None
    assert 0.0 < expected.accepted_share < 1.0  # a threshold between the extremes
    saved = json.loads(output.read_text(encoding="utf-8"))
    assert printed["thresholds"] == saved
    assert printed["thresholds_path"] == str(output)
    assert saved["schema_version"] == 1
    assert saved["threshold_units"] == "raw_confidence"
    assert [tier["model"] for tier in saved["tiers"]] == [TIER0_MODEL, ESCALATION_MODEL]
    assert saved["tiers"][0]["threshold"] == expected.threshold
    assert saved["tiers"][0]["calibrated_threshold"] == expected.threshold
    assert saved["tiers"][1]["threshold"] is None
    assert saved["tiers"][1]["model_weight"] == 1.0
    assert saved["method"] == {
        "name": "target", "target_accuracy": 0.85, "budget_usd_per_item": None, "delta": None
    }
    assert saved["calibrator"] == {"name": "none"}
    assert saved["figures"]["n"] == LLM_SAMPLE
    assert saved["figures"]["accuracy"] == pytest.approx(expected.accuracy)
    assert saved["figures"]["mean_cost_usd"] == pytest.approx(expected.mean_cost_usd)
    assert saved["figures"]["accepted_share"] == pytest.approx(expected.accepted_share)
    assert saved["figures"]["tier0_accuracy"] == pytest.approx(arrays.correct0.mean())
    assert saved["figures"]["tier1_accuracy"] == pytest.approx(arrays.correct1.mean())
    assert saved["guarantee"] is None
    assert saved["source"] == str((bench_run.folder / "records.jsonl").resolve())
    assert saved["created_at"].endswith("Z")


def test_budget_matches_direct_choice(bench_run: BenchRun, tmp_path: Path) -> None:
    arrays = read_arrays(bench_run.folder)
    # Half of what escalating every item costs, so the budget binds.
    budget = float(arrays.cost0.mean() + arrays.cost1.mean() / 2)
    output = tmp_path / "budget.json"

    saved = calibrate_json(
        bench_run.folder, "--budget", repr(budget), "--output", str(output)
    )["thresholds"]

    expected = best_threshold_within_budget(*arrays.curve_args(), budget_per_item=budget)
    assert expected is not None
    assert saved["method"]["name"] == "budget"
    assert saved["method"]["budget_usd_per_item"] == budget
    assert saved["tiers"][0]["threshold"] == expected.threshold
    assert saved["figures"]["accuracy"] == pytest.approx(expected.accuracy)
    assert saved["figures"]["mean_cost_usd"] == pytest.approx(expected.mean_cost_usd)
    assert saved["figures"]["mean_cost_usd"] <= budget


def test_guarantee_saves_statement(bench_run: BenchRun, tmp_path: Path) -> None:
    arrays = read_arrays(bench_run.folder)
    output = tmp_path / "guarantee.json"

    saved = calibrate_json(
        bench_run.folder, "--guarantee", "0.7", "--delta", "0.2", "--output", str(output)
    )["thresholds"]

    expected = guaranteed_threshold(arrays.confidence, arrays.correct0, 0.7, 0.2, seed=0)
    assert expected is not None
    assert saved["method"] == {
        "name": "guarantee", "target_accuracy": 0.7, "budget_usd_per_item": None, "delta": 0.2
    }
    assert saved["tiers"][0]["threshold"] == expected.threshold
    assert saved["guarantee"] == expected.statement()
    accepted = arrays.confidence >= expected.threshold
    assert saved["figures"]["accepted_share"] == pytest.approx(accepted.mean())


def test_guarantee_delta_defaults(bench_run: BenchRun, tmp_path: Path) -> None:
    saved = calibrate_json(
        bench_run.folder, "--guarantee", "0.7", "--output", str(tmp_path / "t.json")
    )["thresholds"]

    assert saved["method"]["delta"] == 0.1


def fitted_calibrator(name: str, confidence: np.ndarray, correct: np.ndarray) -> Any:
    classes = {
        "temperature": TemperatureScaling,
        "platt": PlattScaling,
        "isotonic": IsotonicCalibration,
    }
    return classes[name]().fit(confidence, correct)


def saved_parameters(name: str, calibrator: Any) -> dict[str, Any]:
    if name == "temperature":
        return {"name": name, "temperature": calibrator.temperature}
    if name == "platt":
        return {"name": name, "slope": calibrator.slope, "intercept": calibrator.intercept}
    return {
        "name": name,
        "x": calibrator.model.X_thresholds_.tolist(),
        "y": calibrator.model.y_thresholds_.tolist(),
    }


@pytest.mark.parametrize("name", ["temperature", "platt", "isotonic"])
def test_calibrator_matches_direct_fit(bench_run: BenchRun, tmp_path: Path, name: str) -> None:
    arrays = read_arrays(bench_run.folder)
    output = tmp_path / f"{name}.json"

    calibrate_json(
        bench_run.folder, "--target", "0.85", "--calibrator", name, "--seed", "3",
        "--output", str(output),
    )

    fit_positions, held_out_positions = split_items(LLM_SAMPLE, 0.5, 3)
    assert sorted([*fit_positions, *held_out_positions]) == list(range(LLM_SAMPLE))
    assert len(fit_positions) == LLM_SAMPLE // 2
    fit, held_out = arrays.take(fit_positions), arrays.take(held_out_positions)
    calibrator = fitted_calibrator(name, fit.confidence, fit.correct0)
    calibrated = calibrator.predict(held_out.confidence)
    expected = cheapest_threshold_for_accuracy(*held_out.curve_args(calibrated), target=0.85)
    assert expected is not None

    saved_json = json.loads(output.read_text(encoding="utf-8"))
    assert saved_json["calibrator"] == saved_parameters(name, calibrator)
    assert saved_json["calibration"]["fit_items"] == len(fit_positions)
    assert saved_json["calibration"]["evaluation_items"] == len(held_out_positions)
    assert saved_json["calibration"]["ece_before"] == pytest.approx(
        expected_calibration_error(held_out.confidence, held_out.correct0, 15)
    )
    assert saved_json["calibration"]["ece_after"] == pytest.approx(
        expected_calibration_error(calibrated, held_out.correct0, 15)
    )
    assert saved_json["tiers"][0]["calibrated_threshold"] == pytest.approx(expected.threshold)
    assert saved_json["figures"]["accuracy"] == pytest.approx(expected.accuracy)
    assert saved_json["figures"]["accepted_share"] == pytest.approx(expected.accepted_share)

    saved = load_thresholds(output)
    assert saved.calibrate(held_out.confidence) == pytest.approx(calibrated)
    # The raw threshold accepts exactly the items the calibrated threshold accepts.
    raw_accepts = held_out.confidence >= saved.threshold
    calibrated_accepts = saved.calibrate(held_out.confidence) >= expected.threshold
    assert raw_accepts.tolist() == calibrated_accepts.tolist()


def test_calibrated_guarantee_names_units(bench_run: BenchRun, tmp_path: Path) -> None:
    arrays = read_arrays(bench_run.folder)
    output = tmp_path / "guarantee.json"

    calibrate_json(
        bench_run.folder, "--guarantee", "0.7", "--delta", "0.3", "--calibrator", "isotonic",
        "--output", str(output),
    )

    fit_positions, held_out_positions = split_items(LLM_SAMPLE, 0.5, 0)
    fit, held_out = arrays.take(fit_positions), arrays.take(held_out_positions)
    calibrated = fitted_calibrator("isotonic", fit.confidence, fit.correct0).predict(
        held_out.confidence
    )
    expected = guaranteed_threshold(calibrated, held_out.correct0, 0.7, 0.3, seed=0)
    assert expected is not None
    saved = load_thresholds(output)
    assert saved.tiers[0].calibrated_threshold == expected.threshold
    assert saved.guarantee is not None
    assert saved.guarantee.startswith(expected.statement())
    assert saved.guarantee.endswith(
        f"In raw tier-0 confidence the same threshold is {saved.threshold:.6g}."
    )


def test_reliability_png_has_two_panels(bench_run: BenchRun, tmp_path: Path) -> None:
    plot = bench_run.folder / "reliability.png"

    calibrate_json(bench_run.folder, "--target", "0.85", "--output", str(tmp_path / "a.json"))
    assert png_width(plot) == PANEL_WIDTH_PX

    calibrate_json(
        bench_run.folder, "--target", "0.85", "--calibrator", "isotonic",
        "--output", str(tmp_path / "b.json"),
    )
    assert png_width(plot) == 2 * PANEL_WIDTH_PX


def test_table_output_names_threshold(bench_run: BenchRun, tmp_path: Path) -> None:
    output = tmp_path / "table.json"

    result = calibrate(str(bench_run.folder), "--target", "0.85", "--output", str(output))

    assert result.exit_code == 0, result.output
    threshold = load_thresholds(output).threshold
    assert f"{threshold:.6g} (raw confidence)" in result.stdout
    assert f"{TIER0_MODEL} -> {ESCALATION_MODEL}" in result.stdout
    assert str(output) in result.stdout


def bench_with_thresholds(
    bench_run: BenchRun, thresholds: Path, output: Path, escalate: str = ESCALATION_MODEL
) -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_BASE_URL", bench_run.fake.base_url)
        patch.setenv("OPENAI_API_KEY", bench_run.fake.api_key)
        data = load_bench_data(bench_run.data_path, text_column="text", label_column="category")
        options = BenchOptions(
            escalate=[escalate], per_label=1, llm_sample=LLM_SAMPLE, output=output,
            thresholds=thresholds,
        )
        return asyncio.run(run_bench(data, options))


def test_bench_reuses_saved_threshold(bench_run: BenchRun, tmp_path: Path) -> None:
    thresholds = tmp_path / "isotonic.json"
    calibrate_json(
        bench_run.folder, "--target", "0.85", "--calibrator", "isotonic",
        "--output", str(thresholds),
    )
    saved = load_thresholds(thresholds)
    assert 0.0 < saved.figures.accepted_share < 1.0

    result = bench_with_thresholds(bench_run, thresholds, tmp_path / "rerun")

    assert result.fit is None
    assert result.thresholds == saved
    assert verdict(result).startswith(f"The cascade used the saved tier 0 threshold {saved.threshold:.3f}")
    assert not (tmp_path / "rerun" / "fit.json").exists()
    cascade = by_item(read_jsonl(tmp_path / "rerun" / "records.jsonl"), "cascade")
    first_run = by_item(read_jsonl(bench_run.folder / "records.jsonl"), TIER0_MODEL)
    assert len(cascade) == 40
    escalated = 0
    for item, record in cascade.items():
        raw = record["steps"][0]["confidence"]
        assert raw == pytest.approx(first_run[item]["confidence"])
        accepted = raw >= saved.threshold
        # The calibrator, applied before the calibrated threshold, gives the same decision.
        calibrated = saved.calibrate(np.array([raw]))[0]
        assert accepted == (calibrated >= saved.tiers[0].calibrated_threshold)
        assert record["tier"] == (0 if accepted else 1)
        assert record["answered_by"] == (TIER0_MODEL if accepted else ESCALATION_MODEL)
        escalated += not accepted
    assert 0 < escalated < 40


def test_bench_figures_match_saved(bench_run: BenchRun, tmp_path: Path) -> None:
    """Without a calibrator the saved figures cover every joined item, so the rerun matches."""
    thresholds = tmp_path / "target.json"
    calibrate_json(bench_run.folder, "--target", "0.85", "--output", str(thresholds))
    saved = load_thresholds(thresholds)

    bench_with_thresholds(bench_run, thresholds, tmp_path / "rerun")

    cascade = by_item(read_jsonl(tmp_path / "rerun" / "records.jsonl"), "cascade")
    joined = read_arrays(bench_run.folder).items
    accuracy = sum(cascade[item]["correct"] for item in joined) / len(joined)
    accepted = sum(cascade[item]["tier"] == 0 for item in joined) / len(joined)
    assert accuracy == pytest.approx(saved.figures.accuracy)
    assert accepted == pytest.approx(saved.figures.accepted_share)


def test_bench_rejects_other_models(bench_run: BenchRun, tmp_path: Path) -> None:
    thresholds = tmp_path / "target.json"
    calibrate_json(bench_run.folder, "--target", "0.85", "--output", str(thresholds))

    with pytest.raises(UserInputError, match="cannot be used for the cascade") as caught:
        bench_with_thresholds(bench_run, thresholds, tmp_path / "rerun", "openai:gpt-4.1-nano")

    message = str(caught.value)
    assert str(thresholds) in message
    assert f"{TIER0_MODEL} -> {ESCALATION_MODEL}" in message
    assert f"{TIER0_MODEL} -> openai:gpt-4.1-nano" in message
    assert not (tmp_path / "rerun").exists()


def test_escalate_all_round_trips(bench_run: BenchRun, tmp_path: Path) -> None:
    calibrate_json(bench_run.folder, "--target", "0.85", "--output", str(tmp_path / "a.json"))
    saved = load_thresholds(tmp_path / "a.json")
    tiers = [saved.tiers[0].model_copy(update={"threshold": math.inf}), saved.tiers[1]]

    save_thresholds(saved.model_copy(update={"tiers": tiers}), tmp_path / "inf.json")

    text = (tmp_path / "inf.json").read_text(encoding="utf-8")
    assert '"threshold": "Infinity"' in text
    assert load_thresholds(tmp_path / "inf.json").threshold == math.inf


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda doc: doc["tiers"][0].update(threshold=1.5), "tiers"),
        (lambda doc: doc["tiers"][1].update(threshold=0.5), "tiers[1].threshold must be null"),
        (lambda doc: doc.update(colour="blue"), "colour"),
        (lambda doc: doc.update(schema_version=2), "schema_version"),
        (lambda doc: doc["calibrator"].update(name="spline"), "calibrator"),
        (lambda doc: doc["method"].update(target_accuracy=None), "needs target_accuracy"),
    ],
)
def test_load_rejects_invalid_file(
    bench_run: BenchRun, tmp_path: Path, change: Any, named: str
) -> None:
    path = tmp_path / "t.json"
    calibrate_json(bench_run.folder, "--target", "0.85", "--output", str(path))
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document), encoding="utf-8")

    with pytest.raises(UserInputError) as caught:
        load_thresholds(path)

    assert str(path) in str(caught.value)
    assert named in str(caught.value)


def test_load_rejects_missing_and_broken(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="thresholds file not found"):
        load_thresholds(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(UserInputError, match="not valid JSON"):
        load_thresholds(broken)


def only_config(bench_run: BenchRun, folder: Path, config: str) -> Path:
    """Write a run folder whose records.jsonl keeps only `config`'s records."""
    folder.mkdir()
    lines = (bench_run.folder / "records.jsonl").read_text(encoding="utf-8").splitlines()
    kept_lines = [line for line in lines if json.loads(line)["config"] == config]
    (folder / "records.jsonl").write_text("\n".join(kept_lines) + "\n", encoding="utf-8")
    return folder


def test_error_missing_run_folder(tmp_path: Path) -> None:
    result = calibrate(str(tmp_path / "nowhere"), "--target", "0.9")

    assert isinstance(result.exception, UserInputError)
    assert "run folder not found" in str(result.exception)
    assert str(tmp_path / "nowhere") in str(result.exception)


def test_error_folder_without_records(tmp_path: Path) -> None:
    result = calibrate(str(tmp_path), "--target", "0.9")

    assert isinstance(result.exception, DatasetError)
    assert "no records.jsonl" in str(result.exception)


def test_error_no_escalation_config(bench_run: BenchRun, tmp_path: Path) -> None:
    folder = only_config(bench_run, tmp_path / "tier0", TIER0_MODEL)

    result = calibrate(str(folder), "--target", "0.9")

    assert isinstance(result.exception, DatasetError)
    assert "no records of an escalation model measured alone" in str(result.exception)


def test_error_no_tier0_config(bench_run: BenchRun, tmp_path: Path) -> None:
    folder = only_config(bench_run, tmp_path / "cascade", "cascade")

    result = calibrate(str(folder), "--target", "0.9")

    assert isinstance(result.exception, DatasetError)
    assert "no records of tier 0 alone" in str(result.exception)


def test_error_unknown_escalation_model(bench_run: BenchRun) -> None:
    result = calibrate(str(bench_run.folder), "--target", "0.9", "--escalate", "openai:o3")

    assert isinstance(result.exception, UserInputError)
    assert "'openai:o3' is not an escalation model" in str(result.exception)
    assert ESCALATION_MODEL in str(result.exception)


def test_error_unreachable_target(bench_run: BenchRun) -> None:
    arrays = read_arrays(bench_run.folder)
    best = float(threshold_curve(*arrays.curve_args()).accuracy.max())
    assert best < 1.0

    result = calibrate(str(bench_run.folder), "--target", "1.0")

    assert isinstance(result.exception, UserInputError)
    message = str(result.exception)
    assert "no threshold reaches --target 1" in message
    assert f"the best reachable accuracy is {best:.4f}" in message


def test_error_budget_below_tier0(bench_run: BenchRun) -> None:
    result = calibrate(str(bench_run.folder), "--budget", "0")

    assert isinstance(result.exception, UserInputError)
    assert "below tier 0's own mean cost" in str(result.exception)


def test_error_guarantee_unreachable(bench_run: BenchRun) -> None:
    result = calibrate(str(bench_run.folder), "--guarantee", "1.0")

    assert isinstance(result.exception, UserInputError)
    assert "no threshold keeps tier 0's accepted accuracy >= 1" in str(result.exception)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ([], "give exactly one of"),
        (["--target", "0.9", "--budget", "0.1"], "got --target, --budget"),
        (["--target", "1.5"], "invalid --target 1.5"),
        (["--guarantee", "0"], "invalid --guarantee 0.0"),
        (["--target", "0.9", "--delta", "0.1"], "--delta applies only with --guarantee"),
        (["--guarantee", "0.9", "--delta", "1"], "invalid --delta 1.0"),
        (["--budget", "-1"], "invalid --budget -1.0"),
        (["--target", "0.9", "--calibrator", "beta"], "unknown --calibrator 'beta'"),
        (["--target", "0.9", "--format", "yaml"], "invalid --format 'yaml'"),
        (["--target", "0.9", "--calibrator", "platt", "--fit-share", "1"], "--fit-share"),
    ],
)
def test_error_invalid_options(bench_run: BenchRun, args: list[str], named: str) -> None:
    result = calibrate(str(bench_run.folder), *args)

    assert isinstance(result.exception, UserInputError), result.output
    assert named in str(result.exception)


def test_cli_prints_one_error_line(tmp_path: Path) -> None:
    """Through `main`, a calibrate error is one `error:` line and exit code 2."""
    command = [sys.executable, "-m", "shoal.cli", "calibrate", str(tmp_path / "nowhere"),
               "--target", "0.9"]

    completed = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )

    assert completed.returncode == 2
    assert completed.stderr.startswith("error: run folder not found")
    assert completed.stderr.count("\n") == 1
    assert "Traceback" not in completed.stderr


def test_cli_bench_thresholds_mismatch(bench_run: BenchRun, tmp_path: Path) -> None:
    thresholds = tmp_path / "t.json"
    calibrate_json(bench_run.folder, "--target", "0.85", "--output", str(thresholds))
    command = [
        sys.executable, "-m", "shoal.cli", "bench", "--data", str(bench_run.data_path),
        "--label-column", "category", "--escalate", "none", "--no-cache",
        "--thresholds", str(thresholds), "--output", str(tmp_path / "out"),
    ]

    completed = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )

    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.startswith("error: thresholds file")
    assert "cannot be used for the cascade encoder:minilm;" in completed.stderr
    assert completed.stderr.count("\n") == 1


def test_output_folder_gets_thresholds_file(bench_run: BenchRun, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()

    calibrate_json(bench_run.folder, "--target", "0.85", "--output", str(folder))

    assert load_thresholds(folder / "thresholds.json").method.name == "target"


def test_unwritable_output_is_one_line_error(bench_run: BenchRun, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")

    result = calibrate(str(bench_run.folder), "--target", "0.85", "--output", str(blocker / "t.json"))

    assert isinstance(result.exception, UserInputError)
    assert "cannot write the thresholds file" in str(result.exception)
