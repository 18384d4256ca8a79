"""`shoal compare`: a trained CLINC150 chain against one call to a fake OpenAI server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import shared_data_dir
from fake_openai import FakeOpenAI, openai_usage
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from typer.testing import CliRunner, Result

from shoal.errors import BudgetExceededError, UserInputError
from shoal.evaluate.pipeline_data import load_clinc150, sample_per_label
from shoal.evaluate.records import read_records
from shoal.models import load_provider
from shoal.pipeline import parse_pipeline
from shoal.pipeline.compare import CompareResult, compare_pipeline
from shoal.pipeline.compare_command import compare_command
from shoal.pipeline.compare_plot import place_labels, unscored_steps
from shoal.pipeline.eval_summary import StepEvalSummary
from shoal.pipeline.model_steps import loaded_provider
from shoal.pipeline.single_call import SingleCall, plan_single_call
from shoal.pricing import DEFAULT_MACHINE
from shoal.pricing.api import api_cost
from shoal.providers.base import Usage
from shoal.providers.local import LlamaCppProvider
from shoal.tasks.extract import ExtractStep

DOMAINS = ("banking", "travel", "utility")
SINGLE_MODEL = "openai:gpt-4o-mini"
PROMPT_TOKENS, COMPLETION_TOKENS = 120, 15

ROUTER = """\
name: clinc-three-domains
description: The domain of a banking, travel or utility query, then its intent.
steps:
  domain:
    task: route
    model: encoder:minilm
    gold: domain
    routes: {banking: banking, travel: travel, utility: utility, oos: null}
  banking: {task: classify, model: encoder:minilm, gold: intent}
  travel: {task: classify, model: encoder:minilm, gold: intent}
  utility: {task: classify, model: encoder:minilm, gold: intent}
"""


class AnsweringOpenAI(FakeOpenAI):
    """Replies to each document with the JSON object stored for its text."""

    def __init__(self, answers: dict[str, dict[str, str]]) -> None:
        super().__init__()
        self.answers = answers
        self.usage = openai_usage(PROMPT_TOKENS, COMPLETION_TOKENS)

    def completion(self, request_body: dict[str, Any]) -> dict[str, Any]:
        turn = request_body["messages"][-1]["content"]
        text = turn.split("<document>\n", 1)[1].split("\n</document>", 1)[0]
        self.content = json.dumps(self.answers[text])
        return super().completion(request_body)


def fake_answer(index: int, row: dict[str, Any]) -> dict[str, str]:
    """Return the gold object, except for every third item (a wrong domain) and every fifth (a wrong intent)."""
    domain, intent = row["domain"], row["intent"]
    if index % 3 == 1:
        domain = "travel" if domain != "travel" else "banking"
    elif index % 5 == 2:
        intent = "balance" if intent != "balance" else "transfer"
    if intent == "oos":
        intent = "balance"  # the schema has no oos intent, and oos items have no intent scored
    return {"domain": domain, "intent": intent}


@dataclass
class CompareRun:
    test: list[dict[str, Any]]
    result: CompareResult
    output: Path
    fake: AnsweringOpenAI


def clinc_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    root = shared_data_dir() / "clinc150"
    pool = load_clinc150(root, "train", domains=DOMAINS)
    train = sample_per_label([row for row in pool if row["intent"] != "oos"], "intent", 10, seed=0)
    train += [row for row in pool if row["intent"] == "oos"]
    test = sample_per_label(load_clinc150(root, "test", domains=DOMAINS), "domain", 4, seed=1)
    return train, test


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompareRun]:
    train, test = clinc_rows()
    fake = AnsweringOpenAI({row["text"]: fake_answer(i, row) for i, row in enumerate(test)}).start()
    output = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_BASE_URL", fake.base_url)
        patch.setenv("OPENAI_API_KEY", fake.api_key)
        result = compare_pipeline(
            parse_pipeline(ROUTER), train, test, SINGLE_MODEL, concurrency=4, output=output
        )
        yield CompareRun(test, result, output, fake)
    fake.stop()


def test_plan_merges_specialists_into_intent() -> None:
    train, _ = clinc_rows()

    plan = plan_single_call(parse_pipeline(ROUTER), train)

    properties = plan.schema.document["properties"]
    assert set(properties) == {"domain", "intent"}
    assert properties["domain"]["enum"] == ["banking", "oos", "travel", "utility"]
    assert len(properties["intent"]["enum"]) == 45
    assert plan.property_of["travel"] == "intent"
    assert "intent is not scored" in plan.instructions


def test_plan_keeps_extract_schema() -> None:
    spec = parse_pipeline(
        "name: two\nsteps:\n"
        "  queue: {task: classify, model: local:qwen2.5-coder-0.5b, labels: [a, b]}\n"
        "  facts:\n    task: extract\n    model: local:qwen2.5-coder-0.5b\n"
        "    schema: {type: object, properties: {amount: {type: string}}}\n"
    )

    plan = plan_single_call(spec, [])

    assert plan.schema.document["properties"]["facts"]["properties"] == {
        "amount": {"type": "string"}
    }
    assert plan.schema.document["properties"]["queue"] == {"type": "string", "enum": ["a", "b"]}


def test_plan_rejects_step_without_labels() -> None:
    spec = parse_pipeline(
        "name: one\nsteps:\n  queue: {task: classify, model: encoder:minilm, gold: queue}\n"
    )

    with pytest.raises(UserInputError, match="no labels for the single call"):
        plan_single_call(spec, [{"text": "x", "queue": "a"}])


def test_one_call_per_item(run: CompareRun) -> None:
    assert len(run.fake.requests) == len(run.test)


def test_single_accuracy_from_records(run: CompareRun) -> None:
    records = read_records(run.output / "single" / "records.jsonl")
    scored = [record["end_to_end_correct"] for record in records]
    domain_right = [record["correct"]["domain"] for record in records]

    assert len(records) == len(run.test)
    assert run.result.single.result.end_to_end_accuracy == pytest.approx(sum(scored) / len(scored))
    assert run.result.single.result.steps["domain"].accuracy == pytest.approx(
        sum(domain_right) / len(domain_right)
    )
    wrong_domains = sum(1 for index in range(len(run.test)) if index % 3 == 1)
    assert sum(domain_right) == len(run.test) - wrong_domains


def test_single_misrouted_item_wrong(run: CompareRun) -> None:
    records = read_records(run.output / "single" / "records.jsonl")
    record = next(record for record in records if record["item"] == 1)

    assert record["correct"]["domain"] is False
    assert record["end_to_end_correct"] is False


def test_single_cost_is_priced_usage(run: CompareRun) -> None:
    records = read_records(run.output / "single" / "records.jsonl")
    for record in records:
        call = record["trace"]["call"]
        priced_at = datetime.fromisoformat(call["cost"]["priced_at"])
        expected = api_cost(
            Usage(PROMPT_TOKENS, COMPLETION_TOKENS), "openai", "gpt-4o-mini", priced_at
        )
        assert Decimal(record["cost_usd"]) == expected.amount
    mean = sum(Decimal(record["cost_usd"]) for record in records) / len(records)
    assert run.result.single.result.cost_per_1k_usd == mean * 1000


def test_chain_figures_from_records(run: CompareRun) -> None:
    records = read_records(run.output / "chain" / "records.jsonl")
    scored = [record["end_to_end_correct"] for record in records]
    costs = [Decimal(record["cost_usd"]) for record in records]

    assert run.result.chain.result.end_to_end_accuracy == pytest.approx(sum(scored) / len(scored))
    assert float(run.result.chain.result.cost_per_1k_usd) == pytest.approx(float(sum(costs) / len(costs) * 1000))
    assert run.result.chain.tokens == 0
    assert run.result.chain.compute_seconds > 0


def test_token_overhead_formula(run: CompareRun) -> None:
    single_tokens = len(run.test) * (PROMPT_TOKENS + COMPLETION_TOKENS)

    assert run.result.single.tokens == single_tokens
    assert run.result.token_overhead_pct == pytest.approx(
        (run.result.chain.tokens - single_tokens) / single_tokens * 100
    )
    assert run.result.token_overhead_pct == pytest.approx(-100.0)


def test_summary_and_plot_written(run: CompareRun) -> None:
    summary = json.loads((run.output / "summary.json").read_text())

    assert summary["single"]["tokens"] == run.result.single.tokens
    assert summary["comparison"]["token_overhead_pct"] == pytest.approx(-100.0)
    assert summary["chain"]["end_to_end_accuracy"] == run.result.chain.result.end_to_end_accuracy
    assert (run.output / "compare.png").read_bytes().startswith(b"\x89PNG")


def invoke_compare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *options: str
) -> tuple[Result, list[dict[str, str]]]:
    """Run `shoal compare` on the test rows against a fake OpenAI server; return the rows too."""
    train, test = clinc_rows()
    pipeline = tmp_path / "router.yaml"
    pipeline.write_text(ROUTER, encoding="utf-8")
    data = tmp_path / "items.jsonl"
    rows = [{"text": row["text"], "domain": row["domain"], "intent": row["intent"]} for row in test]
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps(row) + "\n" for row in train), encoding="utf-8")
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    fake = AnsweringOpenAI({row["text"]: fake_answer(0, row) for row in rows}).start()
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
    app = typer.Typer()
    app.command("compare")(compare_command)
    app.command("unused")(lambda: None)  # two commands, so typer keeps the subcommand name
    arguments = ["compare", str(pipeline), str(data), "--train", str(train_file)]
    arguments += ["--model", SINGLE_MODEL, "--output", str(tmp_path / "out"), *options]
    try:
        return CliRunner().invoke(app, arguments), rows
    finally:
        fake.stop()


def test_cli_json_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, rows = invoke_compare(tmp_path, monkeypatch, "--format", "json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["single_model"] == SINGLE_MODEL
    assert document["n_items"] == len(rows)
    assert document["single"]["end_to_end_accuracy"] == 1.0
    assert document["single"]["tokens"] == len(rows) * (PROMPT_TOKENS + COMPLETION_TOKENS)


def test_cli_table_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, rows = invoke_compare(tmp_path, monkeypatch)

    assert result.exit_code == 0, result.output
    assert f"100.0% ({len(rows)})" in result.stdout  # the single call's router, all scored
    assert "-100.0% (the chain's steps use no tokens" in result.stdout
    assert (tmp_path / "out" / "chain" / "pipeline.png").is_file()


def test_cli_spending_cap_stops_single_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The encoder chain costs far less than a cent; one API call's worst case does not fit.
    result, rows = invoke_compare(tmp_path, monkeypatch, "--max-cost", "0.0001")

    assert isinstance(result.exception, BudgetExceededError)
    assert len(read_records(tmp_path / "out" / "chain" / "records.jsonl")) == len(rows)
    assert not (tmp_path / "out" / "summary.json").exists()


def test_invalid_reply_scores_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    train, test = clinc_rows()
    spec = parse_pipeline(ROUTER)
    plan = plan_single_call(spec, train)
    fake = FakeOpenAI().start()
    fake.content = "not JSON"
    fake.usage = openai_usage(PROMPT_TOKENS, COMPLETION_TOKENS)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
    step = ExtractStep(load_provider(SINGLE_MODEL), plan.schema, max_retries=0)
    row = next(row for row in test if row["domain"] == "banking")

    try:
        record = asyncio.run(SingleCall(spec, plan, step).record(0, row))
    finally:
        fake.stop()

    assert record["trace"]["call"]["valid"] is False
    assert record["correct"] == {"domain": False}
    assert record["end_to_end_correct"] is False
    assert Decimal(record["cost_usd"]) > 0


@pytest.mark.parametrize(
    ("chain_tokens", "single_tokens", "overhead"),
    [(300, 200, 50.0), (200, 200, 0.0), (0, 200, -100.0), (5, 0, None)],
)
def test_token_overhead_cases(
    run: CompareRun, chain_tokens: int, single_tokens: int, overhead: float | None
) -> None:
    chain = dataclasses.replace(run.result.chain, input_tokens=chain_tokens, output_tokens=0)
    single = dataclasses.replace(run.result.single, input_tokens=0, output_tokens=single_tokens)

    result = dataclasses.replace(run.result, chain=chain, single=single)

    assert result.token_overhead_pct == overhead


def test_cli_rejects_unknown_format(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("compare")(compare_command)
    app.command("unused")(lambda: None)

    result = CliRunner().invoke(
        app, ["compare", "clinc150_router", str(tmp_path), "--format", "csv"]
    )

    assert isinstance(result.exception, UserInputError)
    assert "--format must be 'table' or 'json'" in str(result.exception)


@pytest.mark.slow
def test_local_single_call_on_three_items(tmp_path: Path) -> None:
    train, test = clinc_rows()
    items = [row for row in test if row["domain"] != "oos"][:3]

    result = compare_pipeline(
        parse_pipeline(ROUTER),
        train,
        items,
        "local:qwen2.5-coder-0.5b",
        concurrency=1,
        output=tmp_path,
        per_label=3,
    )

    records = read_records(tmp_path / "single" / "records.jsonl")
    assert len(records) == 3
    assert all(record["trace"]["call"]["valid"] for record in records)
    assert result.single.compute_seconds > 0
    assert result.single.tokens > 0


@pytest.mark.slow
def test_local_weights_loaded_before_first_item() -> None:
    # Loaded up front, the weights' load time is not charged to the first item.
    provider = loaded_provider("local:qwen2.5-coder-0.5b", DEFAULT_MACHINE)

    assert isinstance(provider, LlamaCppProvider)
    assert provider._llama is not None


def test_plot_labels_do_not_overlap() -> None:
    figure = Figure(figsize=(8, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    points = [(f"specialist_{n}", 0.001, 0.8) for n in range(4)]  # four points on one spot
    axes.scatter([cost for _, cost, _ in points], [accuracy for _, _, accuracy in points])

    place_labels(axes, points)

    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [text.get_window_extent(renderer) for text in axes.texts]
    assert len(boxes) == 4
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_unscored_steps_named_with_cost(run: CompareRun) -> None:
    chain = run.result.chain.result
    unscored = StepEvalSummary(
        step="entities", ran=3, share=1.0, scored=0, accuracy=None,
        mean_cost_usd=Decimal("0.000184"),
    )
    with_extraction = dataclasses.replace(chain, steps={**chain.steps, "entities": unscored})

    assert unscored_steps(chain) == ""
    assert unscored_steps(with_extraction) == "not scored, so not plotted: entities ($0.184/1k)"
