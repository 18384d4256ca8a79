"""`shoal bench` with bad input: exit code 2, one `error:` line naming the value, no traceback.

Each case runs the real CLI in a subprocess. Every one must fail before tier 0 is trained.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import write_csv

# Seconds before a CLI run is killed. A run that wrongly trained tier 0 first would still end
# within this limit, so the log check in test_model_error_before_training can catch it.
CLI_TIMEOUT_S = 120


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_bench(tmp_path: Path, *args: str, verbose: bool = False) -> CliResult:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SHOAL_MACHINE_USD_PER_HOUR")
    }
    output = str(tmp_path / "out")
    command = [sys.executable, "-m", "shoal.cli", "bench", *args, "--output", output]
    if verbose:
        command.append("--verbose")
    completed = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def assert_one_error_line(result: CliResult, *named: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    assert result.stderr.startswith("error: ")
    assert result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1, result.stderr
    for value in named:
        assert value in result.stderr


def labelled_csv(tmp_path: Path) -> Path:
    rows = [("Where is my card?", "card_arrival"), ("Link my card", "card_linking")] * 3
    return write_csv(tmp_path / "tickets.csv", rows, ("text", "category"))


# Dataset errors


def test_missing_data_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"

    result = run_bench(tmp_path, "--data", str(missing))

    assert_one_error_line(result, str(missing), "not found")


def test_missing_data_path_with_brackets(tmp_path: Path) -> None:
    # Square brackets in a path are rich markup syntax; the message must show them as written.
    missing = tmp_path / "data[/]x" / "[red]missing.csv"

    result = run_bench(tmp_path, "--data", str(missing))

    assert_one_error_line(result, str(missing))


def test_missing_text_column(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "other.csv", [("a", "b"), ("c", "d")], ("body", "category"))

    result = run_bench(tmp_path, "--data", str(data), "--label-column", "category")

    assert_one_error_line(result, "'text'", "'body'", "--text-column")


def test_missing_label_column(tmp_path: Path) -> None:
    data = labelled_csv(tmp_path)

    result = run_bench(tmp_path, "--data", str(data), "--label-column", "intent")

    assert_one_error_line(result, "'intent'", "'category'", "--label-column")


def test_header_only_dataset(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "empty.csv", [], ("text", "category"))

    result = run_bench(tmp_path, "--data", str(data), "--label-column", "category")

    assert_one_error_line(result, str(data), "no rows")


def test_one_label_dataset(tmp_path: Path) -> None:
    rows = [("Where is my card?", "card_arrival"), ("Card not here", "card_arrival")]
    data = write_csv(tmp_path / "one.csv", rows, ("text", "category"))

    result = run_bench(tmp_path, "--data", str(data), "--label-column", "category")

    assert_one_error_line(result, "'card_arrival'", "two distinct labels")


# Model errors: these fail while models load, which run_bench does before training.

MODEL_CASES = [
    pytest.param(
        ["--escalate", "local:nope"], ["'local:nope'", "local:qwen2.5-coder-0.5b"], id="local"
    ),
    pytest.param(
        ["--escalate", "foo:bar"], ["'foo'", "'foo:bar'", "encoder, local, openai"], id="provider"
    ),
    pytest.param(
        ["--encoder", "encoder:nope"], ["'encoder:nope'", "encoder:minilm"], id="encoder"
    ),
]


@pytest.mark.parametrize(("args", "named"), MODEL_CASES)
def test_unknown_model(tmp_path: Path, args: list[str], named: list[str]) -> None:
    result = run_bench(tmp_path, *args)

    assert_one_error_line(result, *named)


def test_corrupt_model_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"this is not a GGUF file\x00\xff\x13" * 64)

    result = run_bench(tmp_path, "--escalate", f"local:{bad}")

    assert_one_error_line(result, str(bad), "GGUF")


def test_corrupt_encoder_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an ONNX file\x00\xff" * 64)

    result = run_bench(tmp_path, "--encoder", f"encoder:{bad}", "--escalate", "none")

    assert_one_error_line(result, str(bad), "[ONNXRuntimeError]", "valid ONNX file")


def test_missing_model_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.gguf"

    result = run_bench(tmp_path, "--escalate", f"local:{missing}")

    assert_one_error_line(result, str(missing), "not found")


@pytest.mark.parametrize("value", ["zero", "0", "2.5"])
def test_invalid_per_label(tmp_path: Path, value: str) -> None:
    result = run_bench(tmp_path, "--per-label", value)

    assert_one_error_line(result, f"--per-label {value!r}")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--escalate", "local:nope"], id="unknown-model"),
        pytest.param(["--escalate", "local:{tmp}/bad.gguf"], id="corrupt-file"),
    ],
)
def test_model_error_before_training(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "bad.gguf").write_bytes(b"\x00junk" * 100)
    filled = [arg.replace("{tmp}", str(tmp_path)) for arg in args]

    result = run_bench(tmp_path, *filled, verbose=True)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # The encoder logs "trained encoder:minilm on N examples" at INFO once it is fitted.
    assert "trained encoder:minilm" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "out" / "records.jsonl").exists()


@pytest.mark.parametrize("value", ["lots", "0", "-1", "nan"])
def test_invalid_max_cost(tmp_path: Path, value: str) -> None:
    result = run_bench(tmp_path, "--max-cost", value)

    assert_one_error_line(result, f"--max-cost {value!r}")


def test_scoring_channel_needs_local_model(tmp_path: Path) -> None:
    result = run_bench(tmp_path, "--scoring", "channel", "--escalate", "vllm:some-model")

    assert_one_error_line(result, "--scoring channel", "vllm:some-model")


def test_unknown_scoring(tmp_path: Path) -> None:
    result = run_bench(tmp_path, "--scoring", "vote")

    assert_one_error_line(result, "'vote'", "channel")


def test_budget_stop_keeps_records(tmp_path: Path) -> None:
    result = run_bench(
        tmp_path, "--data", str(labelled_csv_large(tmp_path)), "--label-column", "category",
        "--escalate", "none",
        "--max-cost", "0.0000001",
    )

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "Stopped before the cap" in result.stderr
    assert "--max-cost" in result.stderr
    assert (tmp_path / "out" / "summary.json").exists()


def labelled_csv_large(tmp_path: Path) -> Path:
    rows = [(f"Where is my card? {i}", "card_arrival") for i in range(12)]
    rows += [(f"Link my card please {i}", "card_linking") for i in range(12)]
    return write_csv(tmp_path / "tickets.csv", rows, ("text", "category"))


def test_invalid_prices_file_fails_before_work(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  - model: openai:gpt-4o-mini\n    colour: red\n", "utf-8")

    result = run_bench(tmp_path, "--prices", str(prices), "--escalate", "none")

    assert_one_error_line(result, str(prices), "colour")
    assert not (tmp_path / "out" / "records.jsonl").exists()
