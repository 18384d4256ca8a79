"""Pipeline evaluation and training: a real CLINC150 router, null routes, scores and costs."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import shared_data_dir

from shoal.errors import BudgetExceededError, DatasetError, UserInputError
from shoal.evaluate.pipeline_data import (
    load_clinc150,
    load_support_tickets,
    read_rows,
    sample_per_label,
)
from shoal.evaluate.records import read_records
from shoal.pipeline import (
    PipelineEvalResult,
    PipelineSpec,
    StepsByModel,
    StepSpec,
    bind_pipeline,
    evaluate_pipeline,
    parse_pipeline,
    step_training_rows,
    train_pipeline,
)
from shoal.pricing import Cost, Price
from shoal.providers.base import Usage
from shoal.tasks.prediction import ItemContext, Prediction

DOMAINS = ("banking", "travel", "utility")

CLINC_ROUTER = """\
name: clinc150-router
steps:
  domain:
    task: route
    model: encoder:minilm
    gold: domain
    routes:
      banking: banking
      travel: travel
      utility: utility
      oos: null
  banking:
    task: classify
    model: encoder:minilm
    gold: intent
  travel:
    task: classify
    model: encoder:minilm
    gold: intent
  utility:
    task: classify
    model: encoder:minilm
    gold: intent
"""


@dataclass
class ClincRun:
    train: list[dict[str, Any]]
    test: list[dict[str, Any]]
    result: PipelineEvalResult
    records: list[dict[str, Any]]
    output: Path


@pytest.fixture(scope="module")
def clinc(tmp_path_factory: pytest.TempPathFactory) -> ClincRun:
    """Train the router and 3 specialists, then evaluate 60 test rows.

    They train on 10 rows per intent and all 100 out-of-scope rows, because out-of-scope
    queries have no common topic and 10 teach the router too little.
    """
    root = shared_data_dir() / "clinc150"
    pool = load_clinc150(root, "train", domains=DOMAINS)
    in_scope = [row for row in pool if row["intent"] != "oos"]
    train = sample_per_label(in_scope, "intent", 10, seed=0)
    train += [row for row in pool if row["intent"] == "oos"]
    test_pool = load_clinc150(root, "test", domains=DOMAINS)
    test = sample_per_label(test_pool, "domain", 15, seed=1)  # 15 per domain, oos included
    spec = parse_pipeline(CLINC_ROUTER)

    pipeline = bind_pipeline(spec, train_pipeline(spec, train))
    output = tmp_path_factory.mktemp("clinc")
    result = evaluate_pipeline(pipeline, test, output=output, concurrency=4)
    records = sorted(read_records(output / "records.jsonl"), key=lambda record: record["item"])
    return ClincRun(train, test, result, records, output)


def outputs(record: dict[str, Any]) -> dict[str, Any]:
    return {step["step"]: step["prediction"] for step in record["trace"]["steps"]}


# The CLINC150 router, trained and evaluated for real


def test_clinc_rows_have_domains(clinc: ClincRun) -> None:
    assert Counter(row["domain"] for row in clinc.test) == dict.fromkeys([*DOMAINS, "oos"], 15)
    assert len(clinc.train) == 3 * 15 * 10 + 100
    assert {row["domain"] for row in clinc.train if row["intent"] == "oos"} == {"oos"}


def test_clinc_records_one_per_item(clinc: ClincRun) -> None:
    assert [record["item"] for record in clinc.records] == list(range(60))
    assert clinc.result.n_items == 60
    assert (clinc.output / "summary.json").is_file()


def test_clinc_step_accuracy_from_records(clinc: ClincRun) -> None:
    gold_column = {"domain": "domain", "banking": "intent", "travel": "intent", "utility": "intent"}
    for step, column in gold_column.items():
        scores = [
            outputs(record)[step] == clinc.test[record["item"]][column]
            for record in clinc.records
            if step in outputs(record)
        ]
        summary = clinc.result.steps[step]
        assert summary.ran == len(scores)
        assert summary.accuracy == pytest.approx(sum(scores) / len(scores))
        assert summary.share == pytest.approx(len(scores) / 60)


def test_clinc_end_to_end_from_records(clinc: ClincRun) -> None:
    right = 0
    for record in clinc.records:
        row = clinc.test[record["item"]]
        predicted = outputs(record)
        routed_right = predicted["domain"] == row["domain"]
        specialist = predicted.get(row["domain"], row["intent"])  # oos: no specialist
        right += routed_right and specialist == row["intent"]
    assert clinc.result.end_to_end_accuracy == pytest.approx(right / 60)
    assert clinc.result.end_to_end_accuracy <= clinc.result.steps["domain"].accuracy
    # A real run, not a degenerate one: the router learns the domains.
    assert clinc.result.steps["domain"].accuracy >= 0.7


def test_clinc_misrouted_items_wrong(clinc: ClincRun) -> None:
    misrouted = [
        record
        for record in clinc.records
        if outputs(record)["domain"] != clinc.test[record["item"]]["domain"]
    ]
    assert misrouted, "the sample should hold misrouted items"
    for record in misrouted:
        assert record["end_to_end_correct"] is False
        assert record["correct"]["domain"] is False


def test_clinc_oos_route_is_final(clinc: ClincRun) -> None:
    final = [record for record in clinc.records if outputs(record)["domain"] == "oos"]
    assert any(clinc.test[record["item"]]["intent"] == "oos" for record in final)
    for record in final:
        (router,) = record["trace"]["steps"]
        assert router["routed_to"] is None
        assert router["route_reason"] == "label"
        expected = clinc.test[record["item"]]["domain"] == "oos"
        assert record["end_to_end_correct"] is expected


def test_clinc_specialist_routed_correctly(clinc: ClincRun) -> None:
    for domain in DOMAINS:
        reached = [record for record in clinc.records if domain in outputs(record)]
        routed = [r for r in reached if clinc.test[r["item"]]["domain"] == domain]
        scores = [outputs(r)[domain] == clinc.test[r["item"]]["intent"] for r in routed]
        summary = clinc.result.steps[domain]
        assert summary.routed_correctly == len(routed)
        assert summary.accuracy_routed_correctly == pytest.approx(sum(scores) / len(scores))


def test_clinc_costs_add_up(clinc: ClincRun) -> None:
    total = Decimal(0)
    for record in clinc.records:
        steps = sum(Decimal(step["cost_usd"]) for step in record["trace"]["steps"])
        assert Decimal(record["cost_usd"]) == steps
        total += steps
    assert clinc.result.total_cost_usd == total
    assert total > 0
    written = json.loads((clinc.output / "summary.json").read_text(encoding="utf-8"))
    assert Decimal(written["total_cost_usd"]) == total
    assert written["end_to_end_accuracy"] == clinc.result.end_to_end_accuracy
    accuracy = clinc.result.end_to_end_accuracy
    assert clinc.result.accuracy_per_dollar == pytest.approx(accuracy / float(total / 60))


# Training rows follow the routes


def clinc_rows() -> list[dict[str, str]]:
    rows = []
    for domain, intents in {
        "banking": ["balance", "freeze"],
        "travel": ["visa", "jet_lag"],
    }.items():
        for intent in intents:
            rows += [
                {"text": f"{intent} {n}", "intent": intent, "domain": domain} for n in range(3)
            ]
    return [*rows, {"text": "sing me a song", "intent": "oos", "domain": "oos"}]


def router(**changes: Any) -> dict[str, Any]:
    steps: dict[str, Any] = {
        "domain": {
            "task": "route",
            "model": "encoder:minilm",
            "gold": "domain",
            "routes": {"banking": "banking", "travel": "travel", "oos": None},
        },
        "banking": {"task": "classify", "model": "encoder:minilm", "gold": "intent"},
        "travel": {"task": "classify", "model": "encoder:minilm", "gold": "intent"},
    }
    for step, keys in changes.items():
        steps[step] = {**steps.get(step, {}), **keys}
    return {"name": "router", "steps": steps}


def test_specialist_trains_on_its_domain() -> None:
    spec = PipelineSpec.model_validate(router())

    chosen = step_training_rows(spec, clinc_rows())

    assert len(chosen["domain"]) == 13
    assert {row["intent"] for row in chosen["banking"]} == {"balance", "freeze"}
    assert {row["intent"] for row in chosen["travel"]} == {"visa", "jet_lag"}


def test_fallback_step_trains_on_all_rows() -> None:
    spec = PipelineSpec.model_validate(
        router(
            domain={"routes": {"banking": "banking"}, "fallback_step": "travel"},
        )
    )

    chosen = step_training_rows(spec, clinc_rows())

    assert len(chosen["travel"]) == 13
    assert len(chosen["banking"]) == 6


def test_trained_specialist_predicts_domain_intents() -> None:
    spec = PipelineSpec.model_validate(router())

    builder = train_pipeline(spec, clinc_rows())

    banking = builder("banking", spec.steps["banking"], "encoder:minilm")
    prediction = asyncio.run(banking.predict(ItemContext(text="freeze 1")))
    assert set(prediction.probs) == {"balance", "freeze"}


def test_encoder_step_without_gold_rejected() -> None:
    spec = PipelineSpec.model_validate(router(banking={"gold": None}))

    with pytest.raises(UserInputError, match="step 'banking' uses an encoder model.*no gold"):
        train_pipeline(spec, clinc_rows())


def test_specialist_of_router_without_gold_rejected() -> None:
    spec = PipelineSpec.model_validate(router(domain={"model": "openai:gpt-4o-mini", "gold": None}))

    with pytest.raises(UserInputError, match="step 'banking' uses.*set gold on 'domain'"):
        train_pipeline(spec, clinc_rows())


def test_generative_steps_need_no_router_gold() -> None:
    spec = PipelineSpec.model_validate(
        router(
            domain={"model": "openai:route", "gold": None},
            banking={"model": "openai:spec", "labels": ["balance", "freeze"]},
            travel={"model": "openai:spec", "labels": ["visa", "jet_lag"]},
        )
    )
    specialist = LookupStep("openai:spec", {})

    builder = train_pipeline(
        spec, clinc_rows(), otherwise=StepsByModel({"openai:spec": specialist})
    )

    assert step_training_rows(spec, clinc_rows())["banking"] is None
    assert builder("banking", spec.steps["banking"], "openai:spec") is specialist


def test_one_label_training_rows_rejected() -> None:
    rows = [row for row in clinc_rows() if row["intent"] != "freeze"]
    spec = PipelineSpec.model_validate(router())

    with pytest.raises(UserInputError, match="step 'banking' has only the label 'balance'"):
        train_pipeline(spec, rows)


def test_generative_step_gets_gold_labels() -> None:
    spec = PipelineSpec.model_validate(
        {"name": "x", "steps": {"a": {"task": "classify", "model": "openai:m", "gold": "intent"}}}
    )
    seen: list[StepSpec] = []

    def builder(name: str, step: StepSpec, model: str) -> LookupStep:
        seen.append(step)
        return LookupStep(model, {})

    train_pipeline(spec, clinc_rows(), otherwise=builder)("a", spec.steps["a"], "openai:m")

    assert seen[0].labels == ["balance", "freeze", "jet_lag", "oos", "visa"]


# Null routes in the spec


def test_null_route_needs_no_fallback_step() -> None:
    spec = parse_pipeline(CLINC_ROUTER)

    assert spec.steps["domain"].routes == {
        "banking": "banking",
        "travel": "travel",
        "utility": "utility",
        "oos": None,
    }
    assert spec.steps["domain"].specialists == ["banking", "travel", "utility"]


def test_null_route_with_threshold_needs_fallback() -> None:
    text = CLINC_ROUTER.replace("    gold: domain\n", "    gold: domain\n    threshold: 0.5\n")

    with pytest.raises(UserInputError, match="needs the step that takes the items below it"):
        parse_pipeline(text)


# Scores and concurrency, with fake steps

PRICE = Price(rates="$ per call (test)", source="test", valid_from=None)


class LookupStep:
    """A classify step that predicts the label its table gives the text, else "other"."""

    def __init__(self, model: str, table: dict[str, str], cost_usd: str = "0.001") -> None:
        self.model = model
        self.table = table
        self.cost_usd = cost_usd
        self.running = 0
        self.most_running = 0

    async def predict(self, item: ItemContext) -> Prediction:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        label = self.table.get(item.text, "other")
        return Prediction(
            model=self.model,
            label=label,
            confidence=0.9,
            probs={label: 0.9},
            cost=Cost(Decimal(self.cost_usd), PRICE, datetime(2026, 6, 1, tzinfo=UTC)),
            latency_s=0.01,
            usage=Usage(),
        )


def fake_router(route: LookupStep, specialist: LookupStep) -> Any:
    spec = PipelineSpec.model_validate(
        router(
            domain={"model": "openai:route"},
            banking={"model": "openai:spec"},
            travel={"model": "openai:spec"},
        )
    )
    return bind_pipeline(spec, StepsByModel({"openai:route": route, "openai:spec": specialist}))


def test_scores_with_fake_steps(tmp_path: Path) -> None:
    route = LookupStep("openai:route", {"a": "banking", "b": "banking", "c": "oos"}, "0.002")
    specialist = LookupStep("openai:spec", {"a": "balance", "b": "balance"}, "0.0005")
    rows = [
        {"text": "a", "domain": "banking", "intent": "balance"},  # right
        {"text": "b", "domain": "travel", "intent": "balance"},  # misrouted, specialist "right"
        {"text": "c", "domain": "oos", "intent": "oos"},  # final at the router
    ]

    result = evaluate_pipeline(fake_router(route, specialist), rows, output=tmp_path)

    records = sorted(read_records(tmp_path / "records.jsonl"), key=lambda record: record["item"])
    assert [record["end_to_end_correct"] for record in records] == [True, False, True]
    assert result.end_to_end_accuracy == pytest.approx(2 / 3)
    assert result.steps["domain"].accuracy == pytest.approx(2 / 3)
    assert result.steps["banking"].accuracy == 1.0
    assert result.steps["banking"].routed_correctly == 1
    assert result.steps["travel"].ran == 0
    assert result.steps["travel"].accuracy is None
    assert result.total_cost_usd == Decimal("0.007")
    assert result.steps["banking"].mean_cost_usd == Decimal("0.0005")
    assert result.plot_path == tmp_path / "pipeline.png"
    assert result.plot_path.read_bytes().startswith(b"\x89PNG")


def test_unsure_router_left_out_of_end_to_end() -> None:
    # The router's confidence (0.9) is below its threshold, so every item goes to the
    # generalist, and only the generalist's intent decides the item end to end.
    spec = PipelineSpec.model_validate(
        router(
            domain={"model": "openai:route", "threshold": 0.95, "fallback_step": "general"},
            banking={"model": "openai:spec"},
            travel={"model": "openai:spec"},
            general={"task": "classify", "model": "openai:spec", "gold": "intent"},
        )
    )
    route = LookupStep("openai:route", {"a": "banking", "b": "banking"})
    specialist = LookupStep("openai:spec", {"a": "balance", "b": "balance"})
    pipeline = bind_pipeline(spec, StepsByModel({"openai:route": route, "openai:spec": specialist}))
    rows = [
        {"text": "a", "domain": "travel", "intent": "balance"},  # router wrong, intent right
        {"text": "b", "domain": "banking", "intent": "visa"},  # router right, intent wrong
    ]

    result = evaluate_pipeline(pipeline, rows)

    assert result.steps["domain"].accuracy == 0.5
    assert result.steps["general"].ran == 2
    assert result.steps["banking"].ran == 0
    assert result.end_to_end_accuracy == 0.5


class CappedStep(LookupStep):
    """A LookupStep whose spending cap refuses the item with the text "over"."""

    async def predict(self, item: ItemContext) -> Prediction:
        if item.text == "over":
            raise BudgetExceededError("the next call could cross the cap")
        return await super().predict(item)


def test_spending_cap_keeps_finished_items(tmp_path: Path) -> None:
    route = CappedStep("openai:route", {"a": "oos"})
    rows = [{"text": text, "domain": "oos"} for text in ("a", "a", "over", "a", "a")]

    result = evaluate_pipeline(
        fake_router(route, LookupStep("openai:spec", {})), rows, output=tmp_path, concurrency=1
    )

    assert result.n_items == 2
    assert result.stopped is not None and result.stopped.startswith("stopped after 2 of 5 items")
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["stopped"] == result.stopped
    assert len(read_records(tmp_path / "records.jsonl")) == 2


def test_spending_cap_before_any_item_raises() -> None:
    route = CappedStep("openai:route", {})

    with pytest.raises(BudgetExceededError):
        evaluate_pipeline(fake_router(route, LookupStep("openai:spec", {})), [{"text": "over"}])


def test_item_concurrency_bounded() -> None:
    route = LookupStep("openai:route", {})
    specialist = LookupStep("openai:spec", {})
    rows = [{"text": str(n), "domain": "oos", "intent": "oos"} for n in range(12)]

    evaluate_pipeline(fake_router(route, specialist), rows, concurrency=3)

    assert route.most_running == 3


def test_missing_input_column_ends_evaluation() -> None:
    route = LookupStep("openai:route", {})
    pipeline = fake_router(route, LookupStep("openai:spec", {}))

    with pytest.raises(DatasetError, match="no field 'text'"):
        evaluate_pipeline(pipeline, [{"body": "x", "domain": "oos"}])


# Dataset loaders


def test_clinc150_unknown_domain_rejected() -> None:
    with pytest.raises(DatasetError, match="unknown CLINC150 domain 'bank'"):
        load_clinc150(shared_data_dir() / "clinc150", domains=["bank"])


def test_clinc150_sample_is_seeded() -> None:
    root = shared_data_dir() / "clinc150"
    first = load_clinc150(root, "val", domains=["meta"], per_intent=2, seed=3)
    again = load_clinc150(root, "val", domains=["meta"], per_intent=2, seed=3)

    assert first == again
    assert Counter(row["intent"] for row in first).most_common(1)[0][1] == 2
    assert len(first) == 15 * 2 + 2


def test_support_tickets_text_joins_subject_body() -> None:
    path = shared_data_dir() / "support_tickets" / "tickets_v5_en_de_complete_rows.csv"

    tickets = load_support_tickets(path)

    assert len(tickets) == 1872
    assert len(load_support_tickets(path, limit=5)) == 5
    with_subject = next(t for t in tickets if t["subject"])
    assert with_subject["text"] == f"{with_subject['subject'].strip()}\n\n{with_subject['body']}"
    no_subject = next(t for t in tickets if not t["subject"])
    assert no_subject["text"] == no_subject["body"]
    assert {t["priority"] for t in tickets} == {"high", "medium", "low"}


def test_read_rows_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "hi", "label": "a"}\n\n{"text": "yo", "label": "b"}\n')

    assert read_rows(path) == [{"text": "hi", "label": "a"}, {"text": "yo", "label": "b"}]


def test_read_rows_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "rows.txt"
    path.write_text("x")

    with pytest.raises(DatasetError, match="unsupported dataset extension '.txt'"):
        read_rows(path)
