"""Pipelines: YAML validation, concurrent steps, retries and fallbacks, routes and traces."""

from __future__ import annotations

import asyncio
import csv
import json
import math
import shutil
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import shared_data_dir
from fake_openai import FakeOpenAI, FakeToken, openai_usage

from shoal.errors import BudgetExceededError, DatasetError, ProviderHTTPError, UserInputError
from shoal.pipeline import (
    ItemTrace,
    Pipeline,
    PipelineSpec,
    StepsByModel,
    StepSpec,
    TierSpec,
    bind_pipeline,
    load_pipeline,
    parse_pipeline,
    pipeline_from_dict,
)
from shoal.pricing import Cost, Price
from shoal.providers.base import Usage
from shoal.tasks.extract import Extraction
from shoal.tasks.prediction import ItemContext, Prediction

PIPELINES = Path(__file__).parent / "data" / "pipelines"
PRICED_AT = datetime(2026, 6, 17, 10, 0, tzinfo=UTC)
TEST_PRICE = Price(rates="$ per call (test)", source="test", valid_from=None)


def priced(usd: str) -> Cost:
    return Cost(amount=Decimal(usd), price=TEST_PRICE, priced_at=PRICED_AT)


class FakeStep:
    """A classify step that waits `delay_s`, fails its first `failures` calls, then predicts.

    Each call's start and end (time.monotonic) are kept in `intervals`.
    """

    def __init__(
        self,
        model: str,
        label: str = "p",
        confidence: float = 0.9,
        cost_usd: str = "0.001",
        *,
        delay_s: float = 0.0,
        failures: int = 0,
        error: Exception | None = None,
    ) -> None:
        self.model = model
        self.label = label
        self.confidence = confidence
        self.cost_usd = cost_usd
        self.delay_s = delay_s
        self.failures = failures
        self.error = error or ProviderHTTPError("HTTP 503 from the fake", status_code=503)
        self.intervals: list[tuple[float, float]] = []
        self.texts: list[str] = []

    @property
    def calls(self) -> int:
        return len(self.texts)

    async def predict(self, item: ItemContext) -> Prediction:
        start = time.monotonic()
        self.texts.append(item.text)
        await asyncio.sleep(self.delay_s)
        self.intervals.append((start, time.monotonic()))
        if self.calls <= self.failures:
            raise self.error
        return Prediction(
            model=self.model,
            label=self.label,
            confidence=self.confidence,
            probs={self.label: self.confidence},
            cost=priced(self.cost_usd),
            latency_s=0.01,
            usage=Usage(input_tokens=10, output_tokens=1),
        )


class FakeExtractStep:
    """An extract step that returns `value`, or an invalid reply when `value` is None."""

    def __init__(self, model: str, value: dict[str, Any] | None, cost_usd: str = "0.002") -> None:
        self.model = model
        self.value = value
        self.cost_usd = cost_usd
        self.texts: list[str] = []

    async def predict(self, item: ItemContext) -> Extraction:
        self.texts.append(item.text)
        return Extraction(
            model=self.model,
            value=self.value,
            confidence=0.8 if self.value is not None else 0.0,
            cost=priced(self.cost_usd),
            latency_s=0.02,
            usage=Usage(input_tokens=40, output_tokens=12),
            attempts=1,
            errors=[] if self.value is not None else ["amount: 12 is not of type 'string'"],
        )


def bind(spec: PipelineSpec, *steps: FakeStep | FakeExtractStep) -> Pipeline:
    return bind_pipeline(spec, StepsByModel({step.model: step for step in steps}))


def run(pipeline: Pipeline, item: dict[str, Any]) -> ItemTrace:
    return asyncio.run(pipeline.run_item(item))


def yaml_error(text: str) -> str:
    with pytest.raises(UserInputError) as info:
        parse_pipeline(text, source="p.yaml")
    return str(info.value)


def real_tickets(count: int) -> list[dict[str, str]]:
    path = shared_data_dir() / "support_tickets" / "dataset-tickets-multi-lang-100.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["language"] == "en"]
    return rows[:count]


# Independent steps run concurrently

PARALLEL = """\
name: parallel
steps:
  a:
    task: classify
    model: openai:slow-a
    labels: [p, q]
  b:
    task: classify
    model: openai:slow-b
    labels: [p, q]
  c:
    task: classify
    model: openai:after-both
    labels: [p, q]
    after: [a, b]
"""


def test_independent_steps_overlap() -> None:
    a = FakeStep("openai:slow-a", delay_s=0.05)
    b = FakeStep("openai:slow-b", delay_s=0.05)
    c = FakeStep("openai:after-both")
    pipeline = bind(parse_pipeline(PARALLEL), a, b, c)

    trace = run(pipeline, {"text": "Where is my refund?"})

    ((a_start, a_end),) = a.intervals
    ((b_start, b_end),) = b.intervals
    ((c_start, _),) = c.intervals
    assert a_start < b_end
    assert b_start < a_end
    assert c_start >= max(a_end, b_end)
    step_a, step_b = trace.step("a"), trace.step("b")
    assert step_a is not None and step_b is not None
    assert step_a.started_at < step_b.finished_at
    assert step_b.started_at < step_a.finished_at
    assert [record.step for record in trace.steps] == ["a", "b", "c"]


def test_step_after_failed_step_skipped() -> None:
    a = FakeStep("openai:slow-a", failures=5)
    b = FakeStep("openai:slow-b")
    c = FakeStep("openai:after-both")
    pipeline = bind(parse_pipeline(PARALLEL), a, b, c)

    trace = run(pipeline, {"text": "Where is my refund?"})

    assert trace.skipped == ["c"]
    assert c.calls == 0
    assert trace.ok is False
    assert [record.step for record in trace.steps] == ["a", "b"]


# Retries and fallback

FLAKY = """\
name: flaky
steps:
  a:
    task: classify
    model: openai:flaky
    labels: [p, q]
    retries: {retries}
    fallback: anthropic:claude-haiku-4-5
"""


def test_failing_step_retries_then_fallback() -> None:
    flaky = FakeStep("openai:flaky", "p", cost_usd="0.001", failures=99)
    backup = FakeStep("anthropic:claude-haiku-4-5", "q", cost_usd="0.0004")
    pipeline = bind(parse_pipeline(FLAKY.format(retries=2)), flaky, backup)

    trace = run(pipeline, {"text": "Where is my refund?"})

    record = trace.step("a")
    assert record is not None
    assert flaky.calls == 3
    assert backup.calls == 1
    assert record.status == "ok"
    assert record.fallback_used is True
    assert record.model == "anthropic:claude-haiku-4-5"
    assert record.prediction == "q"
    assert record.attempts == 4
    assert [call.fallback for call in record.calls] == [False, False, False, True]
    assert all("503" in (call.error or "") for call in record.calls[:3])
    # The failed calls raised before any response, so only the fallback's call costs.
    assert record.cost_usd == Decimal("0.0004")
    assert trace.cost_usd == Decimal("0.0004")


def test_retry_success_skips_fallback() -> None:
    flaky = FakeStep("openai:flaky", "p", failures=1)
    backup = FakeStep("anthropic:claude-haiku-4-5", "q")
    pipeline = bind(parse_pipeline(FLAKY.format(retries=1)), flaky, backup)

    record = run(pipeline, {"text": "Where is my refund?"}).step("a")

    assert record is not None
    assert flaky.calls == 2
    assert backup.calls == 0
    assert record.fallback_used is False
    assert record.prediction == "p"
    assert record.attempts == 2


def test_zero_retries_falls_back_at_once() -> None:
    flaky = FakeStep("openai:flaky", "p", failures=1)
    backup = FakeStep("anthropic:claude-haiku-4-5", "q")
    pipeline = bind(parse_pipeline(FLAKY.format(retries=0)), flaky, backup)

    record = run(pipeline, {"text": "Where is my refund?"}).step("a")

    assert record is not None
    assert flaky.calls == 1
    assert backup.calls == 1
    assert record.fallback_used is True


def test_fallback_failing_too_fails_step() -> None:
    flaky = FakeStep("openai:flaky", failures=99)
    backup = FakeStep("anthropic:claude-haiku-4-5", failures=99)
    pipeline = bind(parse_pipeline(FLAKY.format(retries=1)), flaky, backup)

    trace = run(pipeline, {"text": "Where is my refund?"})

    record = trace.step("a")
    assert record is not None
    assert record.status == "failed"
    assert record.prediction is None
    assert record.attempts == 4
    assert record.error is not None
    assert record.error.startswith("anthropic:claude-haiku-4-5: HTTP 503")
    assert trace.ok is False
    assert trace.to_record()["steps"][0]["status"] == "failed"


def test_budget_stop_not_retried() -> None:
    flaky = FakeStep("openai:flaky", failures=99, error=BudgetExceededError("cap of $1 reached"))
    backup = FakeStep("anthropic:claude-haiku-4-5")
    pipeline = bind(parse_pipeline(FLAKY.format(retries=3)), flaky, backup)

    with pytest.raises(BudgetExceededError, match="cap of"):
        run(pipeline, {"text": "Where is my refund?"})
    assert flaky.calls == 1
    assert backup.calls == 0


def test_invalid_extraction_goes_to_fallback() -> None:
    spec = parse_pipeline(
        """\
name: extract
steps:
  fields:
    task: extract
    model: local:qwen2.5-coder-0.5b
    schema: {type: object, properties: {amount: {type: string}}}
    retries: 2
    fallback: openai:gpt-4o-mini
"""
    )
    small = FakeExtractStep("local:qwen2.5-coder-0.5b", None, cost_usd="0.00001")
    large = FakeExtractStep("openai:gpt-4o-mini", {"amount": "12.00"}, cost_usd="0.0003")
    pipeline = bind(spec, small, large)

    record = run(pipeline, {"text": "Refund 12.00 for order 5."}).step("fields")

    assert record is not None
    # The extract step retried with the errors shown already, so the pipeline does not.
    assert len(small.texts) == 1
    assert record.fallback_used is True
    assert record.prediction == {"amount": "12.00"}
    assert record.calls[0].error is not None
    assert "does not validate" in record.calls[0].error
    # The invalid reply was paid for.
    assert record.cost_usd == Decimal("0.00031")


# Routes

ROUTES = """\
name: tickets
steps:
  router:
    task: route
    model: openai:router
    labels: [billing, technical, other]
    routes:
      billing: billing
      technical: technical
    threshold: 0.8
    fallback_step: general
  billing:
    task: classify
    model: openai:billing
    labels: [refund, invoice]
  technical:
    task: classify
    model: openai:technical
    labels: [outage, bug]
  general:
    task: classify
    model: openai:gpt-4o
    labels: [refund, invoice, outage, bug, other]
"""


def route_fakes(
    label: str, confidence: float, failures: int = 0
) -> tuple[FakeStep, dict[str, FakeStep]]:
    router = FakeStep("openai:router", label, confidence, "0.0001", failures=failures)
    specialists = {
        "billing": FakeStep("openai:billing", "refund", 0.9, "0.0002"),
        "technical": FakeStep("openai:technical", "outage", 0.9, "0.0003"),
        "general": FakeStep("openai:gpt-4o", "other", 0.9, "0.005"),
    }
    return router, specialists


def run_routes(
    label: str, confidence: float, failures: int = 0
) -> tuple[ItemTrace, dict[str, FakeStep]]:
    router, specialists = route_fakes(label, confidence, failures)
    pipeline = bind(parse_pipeline(ROUTES), router, *specialists.values())
    return run(pipeline, {"text": "I was charged twice."}), specialists


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [(0.8 - 1e-9, "general"), (0.8, "billing"), (0.8 + 1e-9, "billing")],
)
def test_route_threshold_boundary(confidence: float, expected: str) -> None:
    trace, specialists = run_routes("billing", confidence)

    router = trace.step("router")
    assert router is not None
    assert router.routed_to == expected
    assert [record.step for record in trace.steps] == ["router", expected]
    assert {name: fake.calls for name, fake in specialists.items()} == {
        name: int(name == expected) for name in specialists
    }


def test_low_confidence_route_goes_to_fallback() -> None:
    trace, specialists = run_routes("billing", 0.55)

    router = trace.step("router")
    assert router is not None
    assert router.routed_to == "general"
    assert router.route_reason == "below threshold"
    assert specialists["billing"].calls == 0
    assert trace.outputs == {"router": "billing", "general": "other"}
    assert trace.cost_usd == Decimal("0.0051")


def test_unrouted_label_goes_to_fallback_step() -> None:
    trace, specialists = run_routes("other", 0.95)

    router = trace.step("router")
    assert router is not None
    assert router.routed_to == "general"
    assert router.route_reason == "unrouted label"
    assert specialists["general"].calls == 1


def test_failed_router_goes_to_fallback_step() -> None:
    trace, specialists = run_routes("billing", 0.95, failures=99)

    router = trace.step("router")
    assert router is not None
    assert router.status == "failed"
    assert router.routed_to == "general"
    assert router.route_reason == "failed"
    assert specialists["billing"].calls == 0
    assert specialists["general"].calls == 1


# Traces

CASCADES = """\
name: cascades
steps:
  router:
    task: route
    cascade:
      - model: local:qwen2.5-coder-0.5b
        threshold: 0.9
      - model: local:qwen2.5-coder-1.5b
    routes:
      billing: billing
      technical: technical
  billing:
    task: classify
    cascade:
      - model: openai:gpt-4o-mini
        threshold: 0.7
      - model: openai:gpt-4o
    labels: [refund, invoice]
    retries: 1
  technical:
    task: classify
    model: openai:technical
    labels: [outage, bug]
  priority:
    task: classify
    model: anthropic:claude-haiku-4-5
    labels: [high, medium, low]
"""


def test_traces_add_up_to_item_cost() -> None:
    router_small = FakeStep("local:qwen2.5-coder-0.5b", "billing", 0.6, "0.0000021")
    router_large = FakeStep("local:qwen2.5-coder-1.5b", "billing", 0.95, "0.0000093")
    # The first call's second tier fails after its first tier was paid for, then the retry
    # runs both tiers again.
    billing_small = FakeStep("openai:gpt-4o-mini", "refund", 0.5, "0.00002805")
    billing_large = FakeStep("openai:gpt-4o", "refund", 0.97, "0.000465", failures=1)
    technical = FakeStep("openai:technical", "bug", 0.9, "0.01")
    priority = FakeStep("anthropic:claude-haiku-4-5", "high", 0.8, "0.000123")
    pipeline = bind(
        parse_pipeline(CASCADES),
        router_small, router_large, billing_small, billing_large, technical, priority,
    )

    trace = run(pipeline, {"text": "I was charged twice for one order."})

    assert [record.step for record in trace.steps] == ["router", "billing", "priority"]
    billing = trace.step("billing")
    assert billing is not None
    assert billing.attempts == 2
    assert billing.calls[0].cost_usd == Decimal("0.00002805")
    assert billing.cost_usd == Decimal("0.00052110")
    expected = (
        Decimal("0.0000021") + Decimal("0.0000093")  # router: both tiers
        + Decimal("0.00002805") * 2 + Decimal("0.000465")  # billing: two calls
        + Decimal("0.000123")  # priority
    )
    assert trace.cost_usd == expected
    assert trace.cost_usd == Decimal("0.0006555")

    record = trace.to_record()
    assert record["cost_usd"] == sum((step["cost_usd"] for step in record["steps"]), Decimal(0))
    for step in record["steps"]:
        assert step["cost_usd"] == sum((call["cost_usd"] for call in step["calls"]), Decimal(0))
        for call in step["calls"]:
            tier_costs = [Decimal(tier["cost"]["usd"]) for tier in call["tiers"]]
            assert call["cost_usd"] == sum(tier_costs, Decimal(0))


def test_trace_sums_over_real_tickets() -> None:
    tickets = real_tickets(5)
    router = FakeStep("openai:router", "technical", 0.9, "0.0000375")
    specialists = route_fakes("technical", 0.9)[1]
    pipeline = bind(parse_pipeline(ROUTES), router, *specialists.values())

    traces = [run(pipeline, {"text": ticket["body"]}) for ticket in tickets]

    assert router.texts == [ticket["body"] for ticket in tickets]
    assert all(trace.ok for trace in traces)
    assert sum((trace.cost_usd for trace in traces), Decimal(0)) == Decimal("0.0016875")
    # Costs stay exact Decimals when written as JSON text, the form run records use.
    for trace in traces:
        written = json.loads(json.dumps(trace.to_record(), default=str))
        assert Decimal(written["cost_usd"]) == trace.cost_usd


def test_missing_input_field_rejected() -> None:
    router, specialists = route_fakes("billing", 0.9)
    pipeline = bind(parse_pipeline(ROUTES), router, *specialists.values())

    with pytest.raises(DatasetError, match="no field 'text', which step 'router' reads"):
        run(pipeline, {"body": "I was charged twice."})


# Building a pipeline in Python


def test_python_pipeline_matches_yaml() -> None:
    spec = PipelineSpec(
        name="tickets",
        steps={
            "router": StepSpec(
                task="route",
                model="openai:router",
                labels=["billing", "technical", "other"],
                routes={"billing": "billing", "technical": "technical"},
                threshold=0.8,
                fallback_step="general",
            ),
            "billing": StepSpec(
                task="classify", model="openai:billing", labels=["refund", "invoice"]
            ),
            "technical": StepSpec(
                task="classify", model="openai:technical", labels=["outage", "bug"]
            ),
            "general": StepSpec(
                task="classify",
                model="openai:gpt-4o",
                labels=["refund", "invoice", "outage", "bug", "other"],
            ),
        },
    )
    router, specialists = route_fakes("technical", 0.85)

    trace = run(bind(spec, router, *specialists.values()), {"text": "The site is down."})

    assert spec == parse_pipeline(ROUTES)
    assert trace.outputs == {"router": "technical", "technical": "outage"}


def test_python_cascade_step_built() -> None:
    step = StepSpec(
        task="classify",
        cascade=[TierSpec(model="local:qwen2.5-coder-0.5b", threshold=0.9),
                 TierSpec(model="openai:gpt-4o-mini")],
        labels=["p", "q"],
    )

    assert step.models == ["local:qwen2.5-coder-0.5b", "openai:gpt-4o-mini"]


def test_python_dict_error_names_key() -> None:
    data = {"name": "x", "steps": {"a": {"task": "classify", "model": "openai:m", "retries": -1}}}

    with pytest.raises(UserInputError) as info:
        pipeline_from_dict(data, source="config")

    assert str(info.value) == (
        "config: steps.a.retries: Input should be greater than or equal to 0 (got -1)"
    )


# YAML validation


def test_yaml_unknown_key_names_line() -> None:
    message = yaml_error(
        "name: x\nsteps:\n  a:\n    task: classify\n    model: openai:m\n"
        "    labels: [p, q]\n    retry: 2\n"
    )

    assert message.startswith("p.yaml line 7: steps.a.retry: unknown key 'retry'; allowed keys: ")
    assert "retries" in message


def test_yaml_errors_one_per_line() -> None:
    message = yaml_error(
        "name: x\nsteps:\n  a:\n    task: classify\n    model: openai:m\n"
        "    labels: [p, q]\n    retry: 2\n    treshold: 1\n"
    )

    lines = message.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("p.yaml line 7: steps.a.retry: unknown key 'retry'")
    assert lines[1].startswith("p.yaml line 8: steps.a.treshold: unknown key 'treshold'")


def test_yaml_wrong_type_names_line() -> None:
    message = yaml_error(
        "name: x\nsteps:\n  a:\n    task: classify\n    model: openai:m\n"
        "    labels: [p, q]\n\n    retries: two\n"
    )

    assert message == (
        "p.yaml line 8: steps.a.retries: Input should be a valid integer (got 'two')"
    )


def test_yaml_unquoted_yes_rejected() -> None:
    message = yaml_error("name: x\nsteps:\n  a:\n    task: classify\n    model: openai:m\n"
                         "    labels: [yes, maybe]\n")

    assert message.startswith(
        "p.yaml line 6: steps.a.labels[0]: Input should be a valid string (got True); "
        "put quotes around"
    )


def test_yaml_unknown_step_reference() -> None:
    message = yaml_error(ROUTES.replace("technical: technical", "technical: tech"))

    assert message == (
        "p.yaml line 9: steps.router.routes.technical: unknown step 'tech'; the steps are: "
        "router, billing, technical, general"
    )


def test_yaml_cycle_rejected() -> None:
    message = yaml_error(PARALLEL.replace("    labels: [p, q]\n  b:", "    labels: [p, q]\n"
                                          "    after: [c]\n  b:"))

    assert message == (
        "p.yaml line 7: steps.a.after[0]: the steps form a cycle: a -> c -> a; "
        "remove one of its edges"
    )


def test_yaml_syntax_error_names_line() -> None:
    message = yaml_error("name: x\nsteps:\n  a:\n    task: classify\n    model: [openai:m\n")

    assert message.startswith("p.yaml line 6: invalid YAML: ")


def test_yaml_duplicate_step_rejected() -> None:
    message = yaml_error(PARALLEL.replace("  b:\n", "  a:\n"))

    assert message == "p.yaml line 7: key 'a' is written twice in the same mapping; keep one"


def test_yaml_shared_specialist_rejected() -> None:
    second_router = (
        "  second:\n    task: route\n    model: openai:second\n"
        "    routes:\n      billing: billing\n"
    )

    message = yaml_error(ROUTES + second_router)

    assert message.startswith(
        "p.yaml line 28: steps.second.routes.billing: step 'billing' is already a specialist "
        "of route step 'router'"
    )


def test_yaml_after_specialist_rejected() -> None:
    message = yaml_error(ROUTES + "    after: [billing]\n")

    assert message.startswith(
        "p.yaml line 24: steps.general.after[0]: step 'billing' runs only when route step "
        "'router' picks it"
    )


def test_yaml_route_threshold_needs_fallback_step() -> None:
    message = yaml_error(ROUTES.replace("    fallback_step: general\n", "")
                         .replace("technical, other]", "technical]"))

    assert message.startswith("p.yaml line 3: steps.router.fallback_step: missing; ")


def test_yaml_last_tier_threshold_rejected() -> None:
    message = yaml_error(CASCADES.replace("      - model: openai:gpt-4o\n",
                                          "      - model: openai:gpt-4o\n        threshold: 0.5\n"))

    assert message == (
        "p.yaml line 18: steps.billing.cascade[1].threshold: the last tier accepts every item "
        "it receives; remove its threshold"
    )


def test_yaml_missing_schema_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: x\nsteps:\n  f:\n    task: extract\n    model: openai:m\n"
        "    schema_file: nowhere.json\n",
        encoding="utf-8",
    )

    with pytest.raises(UserInputError) as info:
        load_pipeline(path)

    assert str(info.value).startswith(
        f"{path} line 6: steps.f.schema_file: schema file {tmp_path / 'nowhere.json'} not found"
    )


def test_missing_pipeline_file(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="pipeline file .* not found"):
        load_pipeline(tmp_path / "absent.yaml")


def test_example_pipeline_runs_on_ticket() -> None:
    spec = load_pipeline(PIPELINES / "support_tickets.yaml")
    fakes: dict[tuple[str, str], FakeStep | FakeExtractStep] = {}

    def build(name: str, step: StepSpec, model: str) -> FakeStep | FakeExtractStep:
        if step.task == "extract":
            fake: FakeStep | FakeExtractStep = FakeExtractStep(model, {"product": "order 5"})
        else:
            fake = FakeStep(model, step.route_labels[0], 0.95)
        fakes[(name, model)] = fake
        return fake

    (ticket,) = real_tickets(1)
    trace = run(bind_pipeline(spec, build), ticket)

    assert [record.step for record in trace.steps] == [
        "priority", "queue", "billing_fields", "language"
    ]
    assert trace.outputs["billing_fields"] == {"product": "order 5"}
    assert fakes[("queue", "local:qwen2.5-coder-0.5b")].texts == [ticket["body"]]
    assert fakes[("queue", "local:qwen2.5-coder-1.5b")].texts == []
    assert trace.ok


# Steps that call models, over real HTTP to the fake OpenAI server


def test_model_builder_classifies_over_http(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key)
    fake_openai.content = "B"
    fake_openai.usage = openai_usage(183, 1)
    fake_openai.tokens = [
        FakeToken("B", math.log(0.7), {"B": math.log(0.7), "A": math.log(0.2), "C": math.log(0.1)})
    ]
    spec = parse_pipeline(
        "name: x\nsteps:\n  priority:\n    task: classify\n    model: openai:gpt-4o-mini\n"
        "    labels: [high, medium, low]\n    input: body\n"
    )
    (ticket,) = real_tickets(1)

    trace = run(bind_pipeline(spec), ticket)

    record = trace.step("priority")
    assert record is not None
    assert record.prediction == "medium"
    assert record.confidence == pytest.approx(0.7)
    # 183 input tokens at $0.15/1M and 1 output token at $0.60/1M (genai-prices 0.2.3).
    assert record.cost_usd == Decimal("0.00002805")
    assert trace.cost_usd == Decimal("0.00002805")
    (sent,) = fake_openai.requests
    prompt = sent.body["messages"][1]["content"]
    assert "A. high\nB. medium\nC. low" in prompt
    assert ticket["body"][:40] in prompt
    assert sent.body["max_tokens"] == 1


def test_model_builder_extracts_over_http(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key)
    shutil.copy(PIPELINES / "billing.schema.json", tmp_path / "billing.schema.json")
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: x\nsteps:\n  fields:\n    task: extract\n    model: openai:gpt-4o-mini\n"
        "    schema_file: billing.schema.json\n",
        encoding="utf-8",
    )
    fake_openai.content = '{"product": "Dell XPS 13", "amount": null, "wants_refund": false}'
    fake_openai.usage = openai_usage(400, 20)

    trace = run(bind_pipeline(load_pipeline(path)), {"text": "Is the Dell XPS 13 in stock?"})

    record = trace.step("fields")
    assert record is not None
    assert record.prediction == {"product": "Dell XPS 13", "amount": None, "wants_refund": False}
    # 400 input tokens at $0.15/1M and 20 output tokens at $0.60/1M.
    assert record.cost_usd == Decimal("0.000072")
    (sent,) = fake_openai.requests
    assert sent.body["response_format"]["type"] == "json_schema"


def test_model_builder_rejects_encoder() -> None:
    spec = parse_pipeline(
        "name: x\nsteps:\n  a:\n    task: classify\n    model: encoder:minilm\n"
        "    labels: [p, q]\n"
    )

    with pytest.raises(UserInputError, match="must first be trained on labelled examples"):
        bind_pipeline(spec)


def test_encoder_bound_in_python() -> None:
    spec = parse_pipeline(
        "name: x\nsteps:\n  a:\n    task: classify\n    model: encoder:minilm\n"
        "    labels: [p, q]\n"
    )
    encoder = FakeStep("encoder:minilm", "q", 0.7, "0.0000001")

    builder = StepsByModel({("a", "encoder:minilm"): encoder})

    trace = run(bind_pipeline(spec, builder), {"text": "Where is my card?"})

    assert trace.outputs == {"a": "q"}
