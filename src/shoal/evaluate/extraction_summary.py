"""Figures of an extraction run, per config, computed from its run record only."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shoal.evaluate import metrics
from shoal.evaluate.extraction_metrics import exact_match_rate, field_scores, squad_scores

if TYPE_CHECKING:
    from shoal.cascade.fit import ThresholdFit


@dataclass(frozen=True)
class ExtractionSummary:
    """One config's extraction figures. Accuracy per dollar is field F1 per dollar."""

    config: str
    n_items: int
    field_f1: float
    field_precision: float
    field_recall: float
    exact_match: float
    valid_share: float  # items whose object validated
    cost_per_1k_usd: Decimal
    mean_cost_usd: Decimal
    total_cost_usd: Decimal
    accuracy_per_dollar: float | None
    p50_ms: float
    p95_ms: float
    tier_shares: dict[str, float]
    # SQuAD exact match and F1 over all questions, for a dataset with an "answer" field.
    squad: dict[str, float | int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "field_f1": self.field_f1,
            "field_precision": self.field_precision,
            "field_recall": self.field_recall,
            "exact_match": self.exact_match,
            "valid_share": self.valid_share,
            "cost_per_1k_usd": float(self.cost_per_1k_usd),
            "total_cost_usd": f"{self.total_cost_usd:f}",
            "accuracy_per_dollar": self.accuracy_per_dollar,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "n_items": self.n_items,
            "tier_shares": self.tier_shares,
            **({"squad": self.squad} if self.squad is not None else {}),
        }

    @staticmethod
    def to_json_text(summaries: Sequence[ExtractionSummary], fit: ThresholdFit | None) -> str:
        document: dict[str, Any] = {"configs": [summary.to_json() for summary in summaries]}
        if fit is not None:
            document["fit"] = {
                "threshold": fit.thresholds[0],
                "dev_exact_match": fit.dev_accuracy,
                "tier0_dev_exact_match": fit.tier0_dev_accuracy,
                "best_dev_exact_match": fit.best_dev_accuracy,
                "dev_shares": list(fit.dev_shares),
                "escalates": fit.escalates,
            }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def summarize_extraction(
    records: Sequence[Mapping[str, Any]],
    field_types: Mapping[str, str],
    alternative_fields: Sequence[str] = (),
) -> list[ExtractionSummary]:
    """Group records by config, in first-seen order, and compute each config's figures.

    `alternative_fields` name fields whose gold list holds acceptable answers (SQuAD's
    "answer"); a dataset with an "answer" field among them also gets SQuAD's scores.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(str(record["config"]), []).append(record)
    return [
        _summarize(config, group, field_types, alternative_fields)
        for config, group in groups.items()
    ]


def _summarize(
    config: str,
    records: list[Mapping[str, Any]],
    field_types: Mapping[str, str],
    alternative_fields: Sequence[str],
) -> ExtractionSummary:
    gold = [record["gold"] for record in records]
    predicted = [record["prediction"] for record in records]
    scores = field_scores(
        gold, predicted, normalisers=field_types, alternative_fields=alternative_fields  # type: ignore[arg-type]
    )
    squad = None
    if "answer" in alternative_fields:
        squad = squad_scores(
            ((prediction or {}).get("answer"), answers.get("answer") or [])
            for prediction, answers in zip(predicted, gold, strict=True)
        )
    costs = [Decimal(str(record["cost_usd"])) for record in records]
    latencies = [float(record["latency_ms"]) for record in records]
    mean = metrics.mean_cost(costs)
    answered = Counter(str(record["answered_by"]) for record in records)
    models = dict.fromkeys(step["model"] for record in records for step in record["steps"])
    return ExtractionSummary(
        config=config,
        n_items=len(records),
        field_f1=scores.f1,
        field_precision=scores.precision,
        field_recall=scores.recall,
        exact_match=exact_match_rate(
            gold, predicted, normalisers=field_types, alternative_fields=alternative_fields  # type: ignore[arg-type]
        ),
        valid_share=sum(bool(record["valid"]) for record in records) / len(records),
        cost_per_1k_usd=mean * 1000,
        mean_cost_usd=mean,
        total_cost_usd=sum(costs, Decimal(0)),
        accuracy_per_dollar=metrics.accuracy_per_dollar(scores.f1, mean),
        p50_ms=metrics.percentile(latencies, 50),
        p95_ms=metrics.percentile(latencies, 95),
        tier_shares={model: answered[model] / len(records) for model in models},
        squad=squad,
    )
