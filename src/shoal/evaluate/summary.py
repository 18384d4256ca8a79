"""Per-config figures computed from run records alone, so every reported number can be recomputed.

Accuracy and macro-F1 compare each record's "prediction" with its "label" (a null prediction is
wrong). Costs come from "cost_usd", latency percentiles from "latency_ms", tier shares from
"answered_by", and escalation figures from "steps". The record schema is in
`shoal.evaluate.records`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from shoal.errors import UserInputError
from shoal.evaluate import metrics

logger = logging.getLogger("shoal.evaluate.summary")


@dataclass(frozen=True)
class EscalationSummary:
    """Accuracy of one escalation tier on the items that reached it, beside tier 0's on them."""

    tier: int  # step index, 1 or more
    model: str
    n_items: int  # items that reached this step
    accuracy: float  # this step's prediction against the label
    tier0_accuracy: float  # step 0's prediction against the label, on the same items

    def to_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "model": self.model,
            "n_items": self.n_items,
            "accuracy": self.accuracy,
            "tier0_accuracy": self.tier0_accuracy,
        }


@dataclass(frozen=True)
class ConfigSummary:
    """The figures of one config (a model or a cascade) over the items of a run."""

    config: str
    n_items: int
    accuracy: float
    macro_f1: float
    cost_per_1k_usd: Decimal
    mean_cost_usd: Decimal
    total_cost_usd: Decimal  # every step of every item, retries included
    accuracy_per_dollar: float | None  # None when the mean cost is zero
    p50_ms: float
    p95_ms: float
    tier_shares: dict[str, float]  # model -> share of items it gave the accepted prediction for
    escalations: list[EscalationSummary] = field(default_factory=list)
    note: str | None = None


def summarize(records: Sequence[dict[str, Any]]) -> list[ConfigSummary]:
    """Group records by "config", in first-seen order, and compute each config's figures.

    When one config has several records for the same "item", the last one is used and a warning
    is logged. Raises UserInputError for a record without a field the figures need.
    """
    groups: dict[str, dict[Any, dict[str, Any]]] = {}
    for position, record in enumerate(records):
        config = str(_field(record, "config", "(unknown)"))
        items = groups.setdefault(config, {})
        key = record.get("item", f"record {position}")
        if key in items:
            logger.warning(
                "config %r has more than one record for item %r; using the last", config, key
            )
        items[key] = record
    return [_summarize_config(config, list(items.values())) for config, items in groups.items()]


def _summarize_config(config: str, records: list[dict[str, Any]]) -> ConfigSummary:
    gold = [str(_field(record, "label", config)) for record in records]
    predicted = [_prediction(record) for record in records]
    costs = [_cost(record, config) for record in records]
    latencies = [float(_field(record, "latency_ms", config)) for record in records]

    accuracy = metrics.accuracy(gold, predicted)
    mean_cost = metrics.mean_cost(costs)
    return ConfigSummary(
        config=config,
        n_items=len(records),
        accuracy=accuracy,
        macro_f1=metrics.macro_f1(gold, predicted),
        cost_per_1k_usd=metrics.cost_per_1k(costs),
        mean_cost_usd=mean_cost,
        total_cost_usd=sum(costs, Decimal(0)),
        accuracy_per_dollar=metrics.accuracy_per_dollar(accuracy, mean_cost),
        p50_ms=metrics.percentile(latencies, 50),
        p95_ms=metrics.percentile(latencies, 95),
        tier_shares=_tier_shares(records),
        escalations=_escalations(records),
        note=_note(records),
    )


def _field(record: dict[str, Any], key: str, config: str) -> Any:
    if key not in record:
        item = record.get("item", "?")
        raise UserInputError(
            f"run record of config {config!r}, item {item!r} has no {key!r} field; "
            "regenerate the run record with this version of shoal"
        )
    return record[key]


def _prediction(record: dict[str, Any]) -> str | None:
    value = record.get("prediction")
    return None if value is None else str(value)


def _cost(record: dict[str, Any], config: str) -> Decimal:
    value = _field(record, "cost_usd", config)
    try:
        # str() first, because a float written by hand would carry binary noise into Decimal.
        return Decimal(str(value))
    except InvalidOperation as error:
        raise UserInputError(
            f"run record of config {config!r}, item {record.get('item', '?')!r} has cost_usd "
            f"{value!r}, which is not a number of dollars; write it as a decimal string"
        ) from error


def _steps(record: dict[str, Any]) -> list[dict[str, Any]]:
    steps = record.get("steps") or []
    return [step for step in steps if isinstance(step, dict)]


def _tier_shares(records: list[dict[str, Any]]) -> dict[str, float]:
    """Return each model's share of items by "answered_by", ordered by the first tier it is at.

    Models that appear in steps but never gave the accepted prediction get a share of 0.
    """
    first_tier: dict[str, int] = {}
    answered: dict[str, int] = {}
    for record in records:
        for index, step in enumerate(_steps(record)):
            model = str(step.get("model"))
            first_tier[model] = min(first_tier.get(model, index), index)
        model = str(_field(record, "answered_by", str(record.get("config"))))
        tier = int(record.get("tier", 0))
        first_tier[model] = min(first_tier.get(model, tier), tier)
        answered[model] = answered.get(model, 0) + 1

    # sorted() is stable, so models at the same tier keep their first-seen order.
    ordered = sorted(first_tier, key=lambda model: first_tier[model])
    return {model: answered.get(model, 0) / len(records) for model in ordered}


def _escalations(records: list[dict[str, Any]]) -> list[EscalationSummary]:
    # (tier, model) -> [(label, tier 0 prediction, tier k prediction)], in first-seen order
    reached: dict[tuple[int, str], list[tuple[str, str | None, str | None]]] = {}
    for record in records:
        steps = _steps(record)
        if len(steps) < 2:
            continue
        label = str(record.get("label"))
        tier0 = _prediction(steps[0])
        for index in range(1, len(steps)):
            key = (index, str(steps[index].get("model")))
            reached.setdefault(key, []).append((label, tier0, _prediction(steps[index])))

    summaries = []
    for (tier, model), rows in sorted(reached.items(), key=lambda entry: entry[0][0]):
        labels = [row[0] for row in rows]
        summaries.append(
            EscalationSummary(
                tier=tier,
                model=model,
                n_items=len(rows),
                accuracy=metrics.accuracy(labels, [row[2] for row in rows]),
                tier0_accuracy=metrics.accuracy(labels, [row[1] for row in rows]),
            )
        )
    return summaries


def _note(records: list[dict[str, Any]]) -> str | None:
    for record in records:
        note = record.get("note")
        if note:
            return str(note)
    return None


def summary_to_json(summaries: Sequence[ConfigSummary]) -> list[dict[str, Any]]:
    """Return summaries as JSON-ready dicts, with $/1k as a float for plotting tools."""
    return [
        {
            "config": summary.config,
            "accuracy": summary.accuracy,
            "macro_f1": summary.macro_f1,
            "cost_per_1k_usd": float(summary.cost_per_1k_usd),
            "total_cost_usd": f"{summary.total_cost_usd:f}",
            "accuracy_per_dollar": summary.accuracy_per_dollar,
            "p50_ms": summary.p50_ms,
            "p95_ms": summary.p95_ms,
            "n_items": summary.n_items,
            "tier_shares": dict(summary.tier_shares),
            "escalations": [escalation.to_json() for escalation in summary.escalations],
            "note": summary.note,
        }
        for summary in summaries
    ]


def write_summary(path: str | Path, summaries: Sequence[ConfigSummary]) -> None:
    """Write the summaries as an indented JSON list, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary_to_json(summaries), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
