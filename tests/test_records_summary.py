from __future__ import annotations

import json
import logging
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shoal.errors import UserInputError
from shoal.evaluate.records import RunRecordWriter, read_records
from shoal.evaluate.summary import (
    ConfigSummary,
    EscalationSummary,
    summarize,
    summary_to_json,
    write_summary,
)
from shoal.pricing.money import Cost, Price

ENCODER = "encoder:minilm"
SMALL = "local:qwen2.5-coder-0.5b"
LARGE = "local:qwen2.5-coder-1.5b"


def _step(model: str, prediction: str | None, accepted: bool) -> dict[str, Any]:
    return {"model": model, "prediction": prediction, "confidence": 0.5, "accepted": accepted}


def _record(
    config: str,
    item: int,
    label: str,
    steps: list[tuple[str, str | None]],
    cost: str,
    latency_ms: float,
    **extra: Any,
) -> dict[str, Any]:
    """Build a record whose last step is accepted, as a cascade writes it."""
    last = len(steps) - 1
    model, prediction = steps[last]
    return {
        "config": config,
        "item": item,
        "label": label,
        "prediction": prediction,
        "confidence": 0.9,
        "correct": prediction == label,
        "tier": last,
        "answered_by": model,
        "cost_usd": cost,
        "latency_ms": latency_ms,
        "steps": [_step(m, p, index == last) for index, (m, p) in enumerate(steps)],
        **extra,
    }


# --- run records ---


def test_records_round_trip_with_decimals(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "nested" / "run.jsonl"
    price = Price(rates="$0.10/hour", source="test", valid_from=date(2026, 6, 17))
    cost = Cost(Decimal("0.0000001"), price, datetime(2026, 6, 17, 10, 0, tzinfo=timezone.utc))

    with RunRecordWriter(path) as writer:
        writer.write({"config": "c", "item": 0, "cost_usd": Decimal("0.0000001")})
        writer.write({"config": "c", "item": 1, "steps": [{"cost": cost}], "text": "café"})

    records = read_records(path)

    assert records[0] == {"config": "c", "item": 0, "cost_usd": "0.0000001"}
    assert records[1]["steps"][0]["cost"] == {
        "usd": "0.0000001",
        "rates": "$0.10/hour",
        "source": "test",
        "valid_from": "2026-06-17",
        "priced_at": "2026-06-17T10:00:00+00:00",
    }
    assert records[1]["text"] == "café"
    assert path.read_text(encoding="utf-8").count("\n") == 2


def test_writer_flushes_each_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"

    with RunRecordWriter(path) as writer:
        writer.write({"item": 0})
        assert read_records(path) == [{"item": 0}]
        writer.write({"item": 1})
        assert read_records(path) == [{"item": 0}, {"item": 1}]


def test_writer_appends_to_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with RunRecordWriter(path) as writer:
        writer.write({"item": 0})

    with RunRecordWriter(path) as writer:
        writer.write({"item": 1})

    assert read_records(path) == [{"item": 0}, {"item": 1}]


def test_writer_drops_partial_last_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"item": 0}\n{"item": 1, "cost_u', encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="shoal.evaluate.records"):
        with RunRecordWriter(path) as writer:
            writer.write({"item": 1})

    assert path.read_text(encoding="utf-8") == '{"item": 0}\n{"item": 1}\n'
    assert "removed a partial last line (19 bytes)" in caplog.text


def test_writer_keeps_complete_unterminated_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"item": 0}\n{"item": 1}', encoding="utf-8")

    with RunRecordWriter(path) as writer:
        writer.write({"item": 2})

    assert read_records(path) == [{"item": 0}, {"item": 1}, {"item": 2}]


def test_writer_rejects_unknown_value_type(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"

    with RunRecordWriter(path) as writer:
        with pytest.raises(TypeError, match="cannot hold a set"):
            writer.write({"item": 0, "labels": {"a"}})
        writer.write({"item": 1})

    assert read_records(path) == [{"item": 1}]


def test_writer_outside_with_raises(tmp_path: Path) -> None:
    writer = RunRecordWriter(tmp_path / "run.jsonl")

    with pytest.raises(RuntimeError, match="outside its `with` block"):
        writer.write({"item": 0})


def test_read_skips_truncated_last_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"item": 0}\n{"item": 1}\n{"item": 2, "label": "ca', encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="shoal.evaluate.records"):
        records = read_records(path)

    assert records == [{"item": 0}, {"item": 1}]
    assert "line 3" in caplog.text


def test_read_skips_cut_multibyte_character(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    full = '{"item": 1, "text": "café"}'.encode("utf-8")
    path.write_bytes(b'{"item": 0}\n' + full[:-3])  # cuts the two bytes of "é" in half

    assert read_records(path) == [{"item": 0}]


def test_read_rejects_corrupt_middle_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"item": 0}\nnot json\n{"item": 2}\n', encoding="utf-8")

    with pytest.raises(UserInputError, match="line 2 is not a JSON object"):
        read_records(path)


def test_read_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.jsonl"

    with pytest.raises(UserInputError) as caught:
        read_records(path)

    assert str(path) in str(caught.value)
    assert "not found" in str(caught.value)


# --- summaries ---


def _cascade_records() -> list[dict[str, Any]]:
    """Eight cascade items: 4 answered by tier 0, 3 by tier 1, 1 by tier 2."""
    return [
        _record("cascade", 0, "a", [(ENCODER, "a")], "0.0000001", 1.0),
        _record("cascade", 1, "b", [(ENCODER, "b")], "0.0000001", 2.0),
        _record("cascade", 2, "a", [(ENCODER, "a")], "0.0000001", 3.0),
        _record("cascade", 3, "b", [(ENCODER, "a")], "0.0000001", 4.0),
        # Escalated once: tier 1 right on 2 of 3, tier 0 right on 1 of those 3.
        _record("cascade", 4, "a", [(ENCODER, "b"), (SMALL, "a")], "0.0010001", 100.0),
        _record("cascade", 5, "b", [(ENCODER, "b"), (SMALL, "a")], "0.0010001", 110.0),
        _record("cascade", 6, "c", [(ENCODER, "a"), (SMALL, "c")], "0.0010001", 120.0),
        # Escalated twice; it also counts for tier 1 above, which makes 4 items at tier 1.
        _record(
            "cascade", 7, "c", [(ENCODER, "c"), (SMALL, "b"), (LARGE, "c")], "0.0030001", 400.0,
            note="measured on a random subsample of 8 items",
        ),
    ]


def test_summary_figures_of_cascade() -> None:
    [summary] = summarize(_cascade_records())

    assert summary.config == "cascade"
    assert summary.n_items == 8
    # Correct: items 0, 1, 2, 4, 6, 7.
    assert summary.accuracy == 6 / 8
    # sum 4*0.0000001 + 3*0.0010001 + 0.0030001 = 0.0060008; mean 0.00075010
    assert summary.mean_cost_usd == Decimal("0.00075010")
    assert summary.cost_per_1k_usd == Decimal("0.7501")
    assert summary.accuracy_per_dollar == pytest.approx(0.75 / 0.0007501, rel=1e-12)
    # Latencies sorted 1 2 3 4 100 110 120 400; p50 at position 3.5, p95 at 6.65.
    assert summary.p50_ms == pytest.approx(52.0, abs=1e-9)
    assert summary.p95_ms == pytest.approx(120 + 0.65 * 280, abs=1e-9)
    assert summary.note == "measured on a random subsample of 8 items"


def test_summary_macro_f1_of_cascade() -> None:
    [summary] = summarize(_cascade_records())

    # gold    a b a b a b c c
    # predict a b a a a a c c
    # a: TP=3 FP=2 FN=0 -> F1 6/8; b: TP=1 FP=0 FN=2 -> 2/4; c: TP=2 -> 1
    assert summary.macro_f1 == pytest.approx((6 / 8 + 2 / 4 + 1) / 3, abs=1e-12)


def test_summary_tier_shares_in_tier_order() -> None:
    [summary] = summarize(_cascade_records())

    assert list(summary.tier_shares) == [ENCODER, SMALL, LARGE]
    assert summary.tier_shares == {ENCODER: 4 / 8, SMALL: 3 / 8, LARGE: 1 / 8}


def test_summary_escalation_accuracies() -> None:
    [summary] = summarize(_cascade_records())

    assert summary.escalations == [
        # Items 4-7 reached tier 1: it is right on 4, 6 (2/4); tier 0 is right on 5, 7 (2/4).
        EscalationSummary(tier=1, model=SMALL, n_items=4, accuracy=0.5, tier0_accuracy=0.5),
        # Item 7 reached tier 2: right; tier 0 was right on it too.
        EscalationSummary(tier=2, model=LARGE, n_items=1, accuracy=1.0, tier0_accuracy=1.0),
    ]


def test_tier_share_zero_for_model_never_accepted() -> None:
    records = [
        _record("cascade", 0, "a", [(ENCODER, "a")], "0.0000001", 1.0),
        _record("cascade", 1, "b", [(ENCODER, "a")], "0.0000001", 1.0),
    ]
    records[1]["steps"].append(_step(SMALL, "b", accepted=False))

    [summary] = summarize(records)

    assert summary.tier_shares == {ENCODER: 1.0, SMALL: 0.0}


def test_summaries_grouped_in_first_seen_order() -> None:
    records = [
        _record("single:large", 0, "a", [(LARGE, "a")], "0.002", 300.0),
        _record("cascade", 0, "a", [(ENCODER, "a")], "0", 1.0),
        _record("single:large", 1, "b", [(LARGE, "a")], "0.004", 500.0),
        _record("cascade", 1, "b", [(ENCODER, "b")], "0", 2.0),
    ]

    summaries = summarize(records)

    assert [summary.config for summary in summaries] == ["single:large", "cascade"]
    large, cascade = summaries
    assert large.n_items == 2
    assert large.accuracy == 0.5
    assert large.cost_per_1k_usd == Decimal("3")
    assert large.tier_shares == {LARGE: 1.0}
    assert large.escalations == []
    assert large.note is None
    assert cascade.accuracy_per_dollar is None
    assert cascade.cost_per_1k_usd == Decimal("0")


def test_summary_null_prediction_counts_wrong() -> None:
    records = [
        _record("single", 0, "a", [(SMALL, None)], "0.001", 10.0),
        _record("single", 1, "b", [(SMALL, "b")], "0.001", 10.0),
    ]

    [summary] = summarize(records)

    assert summary.accuracy == 0.5
    # a: no prediction, F1 0; b: F1 1; the null prediction is not a label of its own.
    assert summary.macro_f1 == 0.5


def test_summary_duplicate_item_uses_last(caplog: pytest.LogCaptureFixture) -> None:
    records = [
        _record("single", 0, "a", [(SMALL, "b")], "0.001", 10.0),
        _record("single", 1, "b", [(SMALL, "b")], "0.001", 10.0),
        _record("single", 0, "a", [(SMALL, "a")], "0.002", 20.0),
    ]

    with caplog.at_level(logging.WARNING, logger="shoal.evaluate.summary"):
        [summary] = summarize(records)

    assert summary.n_items == 2
    assert summary.accuracy == 1.0
    assert summary.cost_per_1k_usd == Decimal("1.5")
    assert "more than one record for item 0" in caplog.text


def test_summary_missing_field_names_it() -> None:
    record = _record("single", 3, "a", [(SMALL, "a")], "0.001", 10.0)
    del record["cost_usd"]

    with pytest.raises(UserInputError) as caught:
        summarize([record])

    message = str(caught.value)
    assert "'cost_usd'" in message
    assert "'single'" in message
    assert "item 3" in message


def test_summary_invalid_cost_names_value() -> None:
    record = _record("single", 0, "a", [(SMALL, "a")], "twelve cents", 10.0)

    with pytest.raises(UserInputError, match="'twelve cents'"):
        summarize([record])


def test_summary_from_written_records(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with RunRecordWriter(path) as writer:
        for record in _cascade_records():
            writer.write({**record, "cost_usd": Decimal(record["cost_usd"])})

    [summary] = summarize(read_records(path))

    assert summary.cost_per_1k_usd == Decimal("0.7501")
    assert summary.accuracy == 0.75


def test_summary_json_has_exact_keys(tmp_path: Path) -> None:
    summaries = summarize(_cascade_records())

    [entry] = summary_to_json(summaries)

    assert list(entry) == [
        "config", "accuracy", "macro_f1", "cost_per_1k_usd", "total_cost_usd",
        "accuracy_per_dollar", "p50_ms", "p95_ms", "n_items", "tier_shares", "escalations",
        "note",
    ]
    assert entry["cost_per_1k_usd"] == 0.7501
    assert Decimal(entry["total_cost_usd"]) == Decimal("0.0007501") * entry["n_items"]
    assert isinstance(entry["cost_per_1k_usd"], float)
    assert entry["escalations"][0] == {
        "tier": 1, "model": SMALL, "n_items": 4, "accuracy": 0.5, "tier0_accuracy": 0.5,
    }


def test_write_summary_creates_json(tmp_path: Path) -> None:
    summaries: list[ConfigSummary] = summarize(_cascade_records())
    path = tmp_path / "out" / "summary.json"

    write_summary(path, summaries)

    written = json.loads(path.read_text(encoding="utf-8"))
    assert written == summary_to_json(summaries)
