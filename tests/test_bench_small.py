"""The bench on a small real BANKING77 file: figures recomputed from the run record, end to end."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import CARD_LABELS, bundled_train_rows, fixture_rows, write_csv
from fake_openai import FakeOpenAI, FakeToken, openai_usage
from sklearn.metrics import f1_score

from shoal.bench import BenchOptions, load_bench_data, run_bench

LABELS = (*CARD_LABELS, "card_not_working", "lost_or_stolen_card", "exchange_rate")
SUMMARY_KEYS = {
    "config",
    "accuracy",
    "macro_f1",
    "cost_per_1k_usd",
    "accuracy_per_dollar",
    "p50_ms",
    "p95_ms",
    "n_items",
    "tier_shares",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LOCAL_MODEL = "local:qwen2.5-coder-0.5b"


def small_banking77_csv(tmp_path: Path) -> Path:
    """Write 12 items for each of 6 labels: 3 fixture test messages and 9 bundled train ones."""
    rows = fixture_rows(LABELS) + bundled_train_rows(LABELS, per_label=9)
    return write_csv(tmp_path / "banking77_small.csv", rows, ("text", "category"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def records_of(records: list[dict[str, Any]], config: str) -> list[dict[str, Any]]:
    return [record for record in records if record["config"] == config]


def test_small_csv_has_twelve_per_label(tmp_path: Path) -> None:
    data = load_bench_data(
        small_banking77_csv(tmp_path), text_column="text", label_column="category"
    )

    # 4 test and 4 dev items per label are split off; the other 4 form the train pool.
    assert len(data.test) == 24
    assert len(data.dev) == 24
    assert len(data.train_pool) == 24
    assert set(data.test.labels) == set(LABELS)
    assert set(data.test.texts).isdisjoint(data.train_pool.texts)
    assert set(data.dev.texts).isdisjoint(data.train_pool.texts)


def test_encoder_bench_figures_match_records(tmp_path: Path) -> None:
    data = load_bench_data(
        small_banking77_csv(tmp_path), text_column="text", label_column="category"
    )
    output = tmp_path / "out"
    options = BenchOptions(escalate=[], per_label=4, output=output)

    result = asyncio.run(run_bench(data, options))

    assert result.fit is None
    assert result.n_train == 24
    assert not (output / "fit.json").exists()

    records = read_jsonl(output / "records.jsonl")
    assert len(records) == 24
    assert [record["item"] for record in records] == list(range(24))
    for record in records:
        assert record["config"] == "encoder:minilm"
        assert record["tier"] == 0
        assert record["answered_by"] == "encoder:minilm"
        assert record["correct"] == (record["prediction"] == record["label"])
        assert Decimal(record["cost_usd"]) == Decimal(record["steps"][0]["cost"]["usd"])
        assert Decimal(record["cost_usd"]) > 0

    (summary,) = json.loads((output / "summary.json").read_text(encoding="utf-8"))
    assert SUMMARY_KEYS <= set(summary)
    assert summary["config"] == "encoder:minilm"
    assert summary["n_items"] == 24

    gold = [record["label"] for record in records]
    predicted = [record["prediction"] for record in records]
    accuracy = sum(record["correct"] for record in records) / 24
    assert summary["accuracy"] == accuracy
    assert summary["macro_f1"] == pytest.approx(
        f1_score(gold, predicted, average="macro", zero_division=0)
    )

    total_cost = sum((Decimal(record["cost_usd"]) for record in records), Decimal(0))
    mean_cost = total_cost / 24
    assert summary["cost_per_1k_usd"] == float(mean_cost * 1000)
    assert Decimal(summary["total_cost_usd"]) == total_cost
    assert summary["accuracy_per_dollar"] == pytest.approx(accuracy / float(mean_cost))
    assert summary["tier_shares"] == {"encoder:minilm": 1.0}
    assert 0 < summary["p50_ms"] <= summary["p95_ms"]

    assert [s.config for s in result.summaries] == ["encoder:minilm"]
    assert result.summaries[0].cost_per_1k_usd == mean_cost * 1000

    plot = output / "accuracy_vs_cost.png"
    assert result.plot_path == plot
    assert plot.read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.slow
def test_cli_bench_with_local_model(tmp_path: Path) -> None:
    data = small_banking77_csv(tmp_path)
    output = tmp_path / "out"
    command = [
        sys.executable, "-m", "shoal.cli", "bench",
        "--per-label", "3",
        "--llm-sample", "5",
        "--escalate", LOCAL_MODEL,
        "--data", str(data),
        "--label-column", "category",
        "--output", str(output),
    ]

    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)

    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr

    summaries = json.loads((output / "summary.json").read_text(encoding="utf-8"))
    assert [s["config"] for s in summaries] == ["encoder:minilm", LOCAL_MODEL, "cascade"]
    for summary in summaries:
        assert SUMMARY_KEYS <= set(summary)
        assert 0.0 <= summary["accuracy"] <= 1.0
        assert summary["cost_per_1k_usd"] > 0
    assert [s["n_items"] for s in summaries] == [24, 5, 24]

    by_config = {summary["config"]: summary for summary in summaries}
    # The local model chooses among tier 0's labels, so tier 0 ran first but was never accepted.
    assert by_config[LOCAL_MODEL]["tier_shares"] == {"encoder:minilm": 0.0, LOCAL_MODEL: 1.0}
    assert sum(by_config["cascade"]["tier_shares"].values()) == pytest.approx(1.0)

    records = read_jsonl(output / "records.jsonl")
    for config, summary in by_config.items():
        config_records = records_of(records, config)
        assert len(config_records) == summary["n_items"]
        correct = sum(record["correct"] for record in config_records)
        assert summary["accuracy"] == correct / len(config_records)
    for record in records_of(records, "cascade"):
        assert record["steps"][0]["model"] == "encoder:minilm"
        assert record["answered_by"] == record["steps"][record["tier"]]["model"]
    for record in records:
        # Also for an escalated item whose model response was reused from another config.
        step_ms = sum(step["latency_ms"] for step in record["steps"])
        assert record["latency_ms"] == pytest.approx(step_ms)
        step_usd = sum(Decimal(step["cost"]["usd"]) for step in record["steps"])
        assert Decimal(record["cost_usd"]) == step_usd

    fit = json.loads((output / "fit.json").read_text(encoding="utf-8"))
    assert fit["models"] == ["encoder:minilm", LOCAL_MODEL]
    assert len(fit["thresholds"]) == 1
    assert (output / "accuracy_vs_cost.png").read_bytes().startswith(PNG_SIGNATURE)


def test_bench_api_model_budget_and_cache(
    tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API escalation tier stops cleanly at --max-cost, and a rerun is served from the cache."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key)
    fake_openai.content = "A"
    fake_openai.usage = openai_usage(200, 1)
    fake_openai.tokens = [FakeToken("A", math.log(0.6), {"A": math.log(0.6), "B": math.log(0.4)})]
    data = load_bench_data(
        small_banking77_csv(tmp_path), text_column="text", label_column="category"
    )
    cache = tmp_path / "responses.sqlite"
    # Each call costs $0.0000306 (200 input tokens at $0.15/1M, 1 output token at $0.60/1M).
    capped = BenchOptions(
        escalate=["openai:gpt-4o-mini"], per_label=4, llm_sample=8, output=tmp_path / "capped",
        max_cost=Decimal("0.0004"), cache_path=cache,
    )

    stopped = asyncio.run(run_bench(data, capped))

    assert stopped.stopped is not None
    assert "--max-cost" in stopped.stopped
    assert stopped.spent_usd is not None
    assert 0 < stopped.spent_usd <= Decimal("0.0004")
    sent_first = len(fake_openai.requests)
    assert sent_first >= 5
    records = read_jsonl(tmp_path / "capped" / "records.jsonl")
    assert all(record["correct"] == (record["prediction"] == record["label"]) for record in records)

    rerun = BenchOptions(
        escalate=["openai:gpt-4o-mini"], per_label=4, llm_sample=8, output=tmp_path / "rerun",
        cache_path=cache,
    )
    finished = asyncio.run(run_bench(data, rerun))

    assert finished.stopped is None
    rerun_records = read_jsonl(tmp_path / "rerun" / "records.jsonl")
    api_steps = [
        step for record in rerun_records for step in record["steps"]
        if step["model"] == "openai:gpt-4o-mini"
    ]
    cached = [step for step in api_steps if step["cached"]]
    assert len(cached) >= 1
    assert all(Decimal(step["cost"]["usd"]) == 0 for step in cached)
    assert all(Decimal(step["cost"]["usd"]) > 0 for step in api_steps if not step["cached"])
    for written in (tmp_path / "capped", tmp_path / "rerun"):
        for path in written.iterdir():
            if path.suffix in (".jsonl", ".json"):
                assert fake_openai.api_key not in path.read_text(encoding="utf-8")
