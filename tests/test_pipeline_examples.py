"""The example pipelines shipped with shoal: they load, train and run on real data.

The CLINC150 example trains and runs encoder models only. The ticket example's run with
the real local model is marked slow.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import shared_data_dir

from shoal.errors import UserInputError
from shoal.evaluate.pipeline_data import load_clinc150, load_support_tickets, sample_per_label
from shoal.evaluate.records import read_records
from shoal.pipeline import (
    PipelineEvalResult,
    PipelineSpec,
    bind_pipeline,
    evaluate_pipeline,
    load_pipeline,
    train_pipeline,
)
from shoal.pipeline.examples import EXAMPLES, example_path
from shoal.pipeline.graph import entry_steps
from shoal.tasks.extract import Schema
from shoal.tasks.prediction import ItemContext

TICKETS_FILE = "tickets_v5_en_de_complete_rows.csv"


def clinc_domains() -> dict[str, list[str]]:
    """Return CLINC150's intents by domain, read from its domains.json."""
    path = shared_data_dir() / "clinc150" / "data" / "domains.json"
    return json.loads(path.read_text(encoding="utf-8"))


def outputs(record: dict[str, Any]) -> dict[str, Any]:
    return {step["step"]: step["prediction"] for step in record["trace"]["steps"]}


# Loading


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_loads(name: str) -> None:
    spec = load_pipeline(example_path(name))

    assert spec.name == name.replace("_", "-")
    assert spec.description


def test_examples_are_package_files() -> None:
    for path in EXAMPLES.values():
        assert path.is_file()
        assert path.parent.parts[-3:] == ("shoal", "assets", "pipelines")


def test_unknown_example_lists_names() -> None:
    with pytest.raises(UserInputError, match="unknown example pipeline 'tickets'.*ticket_triage"):
        example_path("tickets")


def test_clinc_example_routes_every_domain() -> None:
    spec = load_pipeline(example_path("clinc150_router"))
    router = spec.steps["domain"]

    assert router.routes == {**{domain: domain for domain in clinc_domains()}, "oos": None}
    assert router.gold == "domain"
    for domain in clinc_domains():
        assert spec.steps[domain].task == "classify"
        assert spec.steps[domain].gold == "intent"
        assert spec.steps[domain].models == ["encoder:minilm"]


def test_ticket_example_steps_independent() -> None:
    spec = load_pipeline(example_path("ticket_triage"))

    assert entry_steps(spec.steps) == ["queue", "priority", "entities"]
    assert all(not step.after for step in spec.steps.values())
    assert spec.steps["entities"].models[0].startswith("local:")


def test_ticket_schema_fields_nullable() -> None:
    spec = load_pipeline(example_path("ticket_triage"))
    schema = ticket_schema(spec)

    empty = dict.fromkeys(schema.fields)
    assert schema.fields == ["product", "error_message", "reference_number", "requested_action"]
    assert schema.errors(empty) == []
    assert schema.errors({**empty, "product": "VPN client"}) == []
    assert schema.errors({**empty, "priority": "high"}) != []  # no fields beyond the four
    assert schema.errors({"product": None}) != []  # every field is required, null or not


def ticket_schema(spec: PipelineSpec) -> Schema:
    schema_file = spec.steps["entities"].schema_file
    assert schema_file is not None
    return Schema.from_file(spec.resolve_path(schema_file))


# The CLINC150 router, trained and evaluated with encoder models


@dataclass
class ClincRun:
    test: list[dict[str, Any]]
    result: PipelineEvalResult
    records: list[dict[str, Any]]


@pytest.fixture(scope="module")
def clinc(tmp_path_factory: pytest.TempPathFactory) -> ClincRun:
    """Train on 10 rows per intent plus all 100 out-of-scope rows, then run 100 test rows.

    The test rows are 9 per domain and 10 out-of-scope queries, sampled with fixed seeds.
    """
    root = shared_data_dir() / "clinc150"
    pool = load_clinc150(root, "train")
    train = sample_per_label([r for r in pool if r["intent"] != "oos"], "intent", 10, seed=0)
    train += [row for row in pool if row["intent"] == "oos"]
    test_pool = load_clinc150(root, "test")
    in_scope = [row for row in test_pool if row["domain"] != "oos"]
    out_of_scope = [row for row in test_pool if row["domain"] == "oos"]
    test = sample_per_label(in_scope, "domain", 9, seed=1)
    test += sample_per_label(out_of_scope, "domain", 10, seed=1)
    spec = load_pipeline(example_path("clinc150_router"))

    pipeline = bind_pipeline(spec, train_pipeline(spec, train))
    output = tmp_path_factory.mktemp("clinc-example")
    result = evaluate_pipeline(pipeline, test, output=output)
    records = sorted(read_records(output / "records.jsonl"), key=lambda record: record["item"])
    return ClincRun(test, result, records)


def test_clinc_example_sample(clinc: ClincRun) -> None:
    counts = Counter(row["domain"] for row in clinc.test)

    assert counts == dict.fromkeys([*clinc_domains(), "oos"], 9) | {"oos": 10}
    assert clinc.result.n_items == 100
    assert clinc.result.failed_items == 0


def test_clinc_example_accuracy_sane(clinc: ClincRun) -> None:
    router = clinc.result.steps["domain"].accuracy
    end_to_end = clinc.result.end_to_end_accuracy

    assert router is not None
    assert end_to_end is not None
    # Chance is 1/11 for the router and 1/151 end to end. 10 rows per intent reach far more.
    assert router >= 0.6
    assert end_to_end >= 0.45


def test_clinc_specialists_predict_own_intents(clinc: ClincRun) -> None:
    intents = clinc_domains()
    reached: Counter[str] = Counter()
    for record in clinc.records:
        for step, prediction in outputs(record).items():
            if step not in ("domain", "general"):
                assert prediction in intents[step]
                reached[step] += 1
    assert sum(reached.values()) == sum(clinc.result.steps[d].ran for d in intents)
    assert len(reached) >= 8  # the router sends items to most domains


def test_clinc_unsure_router_hands_over_to_generalist(clinc: ClincRun) -> None:
    every_intent = {intent for intents in clinc_domains().values() for intent in intents}
    handed = 0
    for record in clinc.records:
        router = record["trace"]["steps"][0]
        assert router["step"] == "domain"
        unsure = router["confidence"] < 0.7
        assert (router["routed_to"] == "general") is unsure
        assert ("general" in outputs(record)) is unsure
        if unsure:
            handed += 1
            assert outputs(record)["general"] in every_intent | {"oos"}
            # The router's label is left out: the generalist alone decides the item.
            gold = clinc.test[record["item"]]["intent"]
            assert record["end_to_end_correct"] is (outputs(record)["general"] == gold)
    assert handed == clinc.result.steps["general"].ran > 0


def test_clinc_oos_answered_by_router_or_generalist(clinc: ClincRun) -> None:
    final = {record["item"]: list(outputs(record).values())[-1] for record in clinc.records}
    out_of_scope = [item for item, row in enumerate(clinc.test) if row["intent"] == "oos"]
    for record in clinc.records:
        router = record["trace"]["steps"][0]
        if router["routed_to"] is None:  # "oos" with confidence: no step after the router
            assert router["prediction"] == "oos"
            assert list(outputs(record)) == ["domain"]

    # The router is unsure of most out-of-scope queries; the generalist then calls them oos.
    assert sum(final[item] == "oos" for item in out_of_scope) >= 3


def test_clinc_routed_accuracy_not_below(clinc: ClincRun) -> None:
    """A specialist scores at least as well on correctly routed items as on all it ran on.

    Misrouted items carry intents the specialist was never trained on, so it gets them
    wrong.
    """
    for domain in clinc_domains():
        summary = clinc.result.steps[domain]
        if summary.accuracy is None or summary.accuracy_routed_correctly is None:
            continue
        assert summary.accuracy_routed_correctly >= summary.accuracy


# Ticket triage on the support-ticket data


def ticket_split() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split the tickets into a seeded 70% to train on and 30% to test on."""
    tickets = load_support_tickets(shared_data_dir() / "support_tickets" / TICKETS_FILE)
    order = list(range(len(tickets)))
    random.Random(0).shuffle(order)
    cut = int(0.7 * len(tickets))
    return [tickets[i] for i in sorted(order[:cut])], [tickets[i] for i in order[cut:]]


def test_ticket_classifiers_train_on_tickets() -> None:
    train, test = ticket_split()
    spec = load_pipeline(example_path("ticket_triage"))

    builder = train_pipeline(spec, train, per_label=10)

    queue = builder("queue", spec.steps["queue"], "encoder:minilm")
    priority = builder("priority", spec.steps["priority"], "encoder:minilm")
    item = ItemContext(text=test[0]["text"])
    queue_prediction = asyncio.run(queue.predict(item))
    priority_prediction = asyncio.run(priority.predict(item))
    assert set(queue_prediction.probs) == {row["queue"] for row in train}
    assert len(queue_prediction.probs) == 10
    assert set(priority_prediction.probs) == {"high", "medium", "low"}
    assert queue_prediction.cost.amount > 0


@pytest.mark.slow
def test_ticket_example_runs_local_model(tmp_path: Path) -> None:
    train, test = ticket_split()
    spec = load_pipeline(example_path("ticket_triage"))
    pipeline = bind_pipeline(spec, train_pipeline(spec, train, per_label=20))

    result = evaluate_pipeline(pipeline, test[:3], output=tmp_path)

    schema = ticket_schema(spec)
    records = list(read_records(tmp_path / "records.jsonl"))
    assert result.failed_items == 0
    for record in records:
        steps = record["trace"]["steps"]
        assert [step["step"] for step in steps] == ["queue", "priority", "entities"]
        entities = outputs(record)["entities"]
        assert isinstance(entities, dict)
        assert schema.errors(entities) == []
        step_costs = [Decimal(step["cost_usd"]) for step in steps]
        for step in steps:
            calls = sum(Decimal(call["cost_usd"]) for call in step["calls"])
            assert Decimal(step["cost_usd"]) == calls
        assert Decimal(record["cost_usd"]) == sum(step_costs)
        assert step_costs[2] > 0  # the local model is priced by its compute time
    assert result.total_cost_usd == sum(Decimal(record["cost_usd"]) for record in records)
