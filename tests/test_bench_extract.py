"""The extraction bench end to end against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import shared_data_dir
from fake_openai import FakeOpenAI, openai_usage

from shoal.bench.extract import ExtractBenchOptions, run_extract_bench
from shoal.bench.extract_eval import ExtractEvalOptions, run_extract_eval
from shoal.errors import DatasetError, UserInputError
from shoal.evaluate.extraction_data import load_bundled_snips

EXTRACT_KEYS = {
    "config", "field_f1", "exact_match", "cost_per_1k_usd", "accuracy_per_dollar",
    "p50_ms", "p95_ms", "n_items", "tier_shares",
}


def test_extract_bench_writes_summary(
    tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key)
    fields = load_bundled_snips("GetWeather").fields
    fake_openai.content = json.dumps({name: "paris" if name == "city" else None for name in fields})
    fake_openai.usage = openai_usage(300, 20)
    options = ExtractBenchOptions(
        models=["openai:gpt-4o-mini", "openai:gpt-4.1-mini"], dev_items=6, test_items=5,
        output=tmp_path,
    )

    result = asyncio.run(run_extract_bench(options))

    document = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    configs = {entry["config"]: entry for entry in document["configs"]}
    assert set(configs) == {"openai:gpt-4o-mini", "openai:gpt-4.1-mini", "cascade"}
    for entry in configs.values():
        assert EXTRACT_KEYS <= set(entry)
        assert entry["n_items"] == 5
        assert 0.0 <= entry["field_f1"] <= 1.0
        assert entry["cost_per_1k_usd"] > 0
    assert "threshold" in document["fit"]
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert len(records) == 15
    for record in records:
        assert record["valid"] is True
        assert Decimal(record["cost_usd"]) == sum(
            Decimal(step["cost"]["usd"]) for step in record["steps"]
        )
    # gpt-4o-mini: 300 input tokens at $0.15/1M and 20 output tokens at $0.60/1M per call.
    small = configs["openai:gpt-4o-mini"]
    assert small["cost_per_1k_usd"] == pytest.approx(0.057)
    assert result.summaries[0].field_f1 == small["field_f1"]


def test_unknown_intent_rejected(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="GetWeather"):
        asyncio.run(run_extract_bench(ExtractBenchOptions(intent="Nope", output=tmp_path)))


def test_eval_squad_scores_unanswerable(
    tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key)
    fake_openai.content = json.dumps({"answer": None})
    fake_openai.usage = openai_usage(400, 5)
    options = ExtractEvalOptions(
        dataset="squad2", path=shared_data_dir() / "squad2_sample500",
        models=["openai:gpt-4o-mini"], limit=10, output=tmp_path,
    )

    result = asyncio.run(run_extract_eval(options))

    (summary,) = result.summaries
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    unanswerable = sum(record["gold"]["answer"] == [] for record in records)
    # Null is right exactly on the unanswerable questions, as SQuAD 2.0 scores them.
    assert summary.squad is not None
    assert summary.squad["exact"] == pytest.approx(unanswerable / 10)
    assert summary.squad["f1"] == pytest.approx(unanswerable / 10)
    assert summary.squad.get("NoAns_exact", 1.0) == 1.0
    document = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert document["configs"][0]["squad"]["total"] == 10


def test_eval_unknown_dataset_rejected(tmp_path: Path) -> None:
    options = ExtractEvalOptions(dataset="receipts", path=tmp_path)

    with pytest.raises(UserInputError, match="sroie, snips, squad2"):
        asyncio.run(run_extract_eval(options))
