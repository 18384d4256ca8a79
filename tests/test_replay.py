"""The replay provider on real RouterBench logs: logged responses and costs, failed lookups."""

from __future__ import annotations

import ast
import asyncio
import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data_dir

from shoal.calls.guarded import GuardedProvider
from shoal.cascade import Cascade, Tier
from shoal.cascade.core import ALWAYS_ESCALATE, CascadeOutcome
from shoal.errors import ModelNotFoundError, UserInputError
from shoal.evaluate.records import RunRecordWriter
from shoal.models import REPLAY_ENV, load_provider, parse_model
from shoal.providers.base import Message, Provider, Request, Response
from shoal.providers.replay import PromptNotLoggedError, ReplayProvider
from shoal.simulate import LoggedOutcomes, load_routerbench, load_routerbench_dir
from shoal.tasks.prediction import ItemContext, Prediction, from_probs

ROUTERBENCH = shared_data_dir() / "routerbench_subset" / "datasets" / "routerbench_zs"
ARC_TEST = ROUTERBENCH / "arc_challenge_test.csv"
MBPP_FILES = (ROUTERBENCH / "mbpp_test.csv", ROUTERBENCH / "mbpp_train.csv")
FRONTIER = "gpt-4-1106-preview"
CHEAP = "gpt-3.5-turbo-1106"
# Logged in both MBPP files, with a different response and cost of FRONTIER in each.
SHARED_MBPP_PROMPT = "Write a function to sort a list of elements."
LETTERS = ("A", "B", "C", "D")
ITEMS = 8  # the first ARC test items; the two models return different letters on 3 of them


@dataclass(frozen=True)
class LoggedRow:
    """One row of a RouterBench CSV file, read with the csv module alone."""

    prompt: str
    responses: dict[str, str]
    costs: dict[str, Decimal]


def unwrap(cell: str) -> list[str]:
    """Return the texts in RouterBench's list literal, e.g. "['A']" gives ["A"]."""
    value = ast.literal_eval(cell)
    assert isinstance(value, list)
    return [str(text) for text in value]


def read_rows(path: Path, models: tuple[str, ...]) -> list[LoggedRow]:
    """Read the rows whose prompt cell contains one prompt.

    A few ARC rows contain the same prompt twice, with about twice the usual cost, so they log two
    calls. load_routerbench keeps such a cell as its literal text, and the rows are left out here.
    """
    csv.field_size_limit(2**31 - 1)
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            LoggedRow(
                prompt=unwrap(row["prompt"])[0],
                responses={model: unwrap(row[f"{model}|model_response"])[0] for model in models},
                costs={model: Decimal(row[f"{model}|total_cost"]) for model in models},
            )
            for row in csv.DictReader(handle)
            if len(unwrap(row["prompt"])) == 1
        ]


@pytest.fixture(scope="module")
def arc_rows() -> list[LoggedRow]:
    return read_rows(ARC_TEST, (FRONTIER, CHEAP))


@pytest.fixture(scope="module")
def frontier() -> ReplayProvider:
    return ReplayProvider(load_routerbench(ARC_TEST), FRONTIER)


def user_request(prompt: str, **options: object) -> Request:
    return Request(messages=(Message("user", prompt),), **options)  # type: ignore[arg-type]


def complete(provider: Provider, request: Request) -> Response:
    return asyncio.run(provider.complete(request))


# Logged answers


def test_replay_returns_logged_response_and_cost(
    frontier: ReplayProvider, arc_rows: list[LoggedRow]
) -> None:
    for row in [*arc_rows[:5], arc_rows[100], arc_rows[-1]]:
        before = datetime.now(UTC)
        response = complete(frontier, user_request(row.prompt))

        assert response.text == row.responses[FRONTIER]
        assert response.cost is not None
        assert response.cost.amount == row.costs[FRONTIER]
        assert response.cost.priced_at == response.created_at
        assert before <= response.created_at <= datetime.now(UTC)


def test_replay_response_fields(frontier: ReplayProvider, arc_rows: list[LoggedRow]) -> None:
    response = complete(frontier, user_request(arc_rows[0].prompt))

    assert response.model == "replay:gpt-4-1106-preview"
    assert response.usage.input_tokens == 0
    assert response.usage.output_tokens == 0
    assert response.latency_s == 0.0
    assert response.cached is False
    assert response.attempts == 1
    assert response.label_probs is None
    assert response.cost is not None
    assert str(ARC_TEST) in response.cost.price.source


def test_replay_strips_surrounding_whitespace(
    frontier: ReplayProvider, arc_rows: list[LoggedRow]
) -> None:
    row = arc_rows[3]
    response = complete(frontier, user_request(f"\n  {row.prompt}  \n"))

    assert response.text == row.responses[FRONTIER]


def test_replay_uses_last_user_message(frontier: ReplayProvider, arc_rows: list[LoggedRow]) -> None:
    request = Request(
        messages=(
            Message("system", "Answer with one letter."),
            Message("user", arc_rows[0].prompt),
            Message("assistant", arc_rows[0].responses[FRONTIER]),
            Message("user", arc_rows[2].prompt),
        )
    )

    assert complete(frontier, request).text == arc_rows[2].responses[FRONTIER]


def test_replay_candidates_get_logged_letter(
    frontier: ReplayProvider, arc_rows: list[LoggedRow]
) -> None:
    request = user_request(arc_rows[2].prompt, candidates=LETTERS, max_tokens=1)
    response = complete(frontier, request)

    assert response.text == arc_rows[2].responses[FRONTIER]
    assert response.label_probs is None


# Lookups that fail


def test_unknown_prompt_raises(frontier: ReplayProvider) -> None:
    with pytest.raises(PromptNotLoggedError) as caught:
        complete(frontier, user_request("What is the boiling point of water at sea level?"))

    message = str(caught.value)
    assert "replay:gpt-4-1106-preview" in message
    assert str(ARC_TEST) in message
    assert "'What is the boiling point of water at sea level?'" in message


def test_changed_prompt_raises(frontier: ReplayProvider, arc_rows: list[LoggedRow]) -> None:
    prompt = arc_rows[3].prompt
    changed = {
        "lower case": prompt.lower(),
        "inner space doubled": prompt.replace(" ", "  ", 1),
        "last character cut": prompt[:-1],
        "CRLF line endings": prompt.replace("\n", "\r\n"),
    }
    for change, text in changed.items():
        with pytest.raises(PromptNotLoggedError) as caught:
            complete(frontier, user_request(text))

        assert "no logged response" in str(caught.value), change


def test_long_prompt_error_shows_start_and_end(
    frontier: ReplayProvider, arc_rows: list[LoggedRow]
) -> None:
    prompt = arc_rows[3].prompt + " Explain."
    with pytest.raises(PromptNotLoggedError) as caught:
        complete(frontier, user_request(prompt))

    message = str(caught.value)
    assert repr(prompt[:50]) in message
    assert repr(prompt[-50:]) in message
    assert f"({len(prompt)} characters)" in message


def test_unknown_model_lists_known_models() -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        ReplayProvider(load_routerbench(ARC_TEST), "gpt-5")

    message = str(caught.value)
    assert "'gpt-5'" in message
    assert str(ARC_TEST) in message
    for model in (FRONTIER, CHEAP, "claude-v2", "mistralai/mixtral-8x7b-chat"):
        assert model in message


def test_prompt_logged_twice_differently_raises() -> None:
    provider = ReplayProvider([load_routerbench(path) for path in MBPP_FILES], FRONTIER)

    with pytest.raises(PromptNotLoggedError) as caught:
        complete(provider, user_request(SHARED_MBPP_PROMPT))

    message = str(caught.value)
    assert "different responses or costs" in message
    for path in MBPP_FILES:
        assert str(path) in message


def test_prompt_logged_once_per_file_replays() -> None:
    for path in MBPP_FILES:
        (row,) = [r for r in read_rows(path, (FRONTIER,)) if r.prompt == SHARED_MBPP_PROMPT]
        response = complete(
            ReplayProvider(load_routerbench(path), FRONTIER), user_request(SHARED_MBPP_PROMPT)
        )

        assert response.text == row.responses[FRONTIER]
        assert response.cost is not None
        assert response.cost.amount == row.costs[FRONTIER]


def test_text_scoring_rejected(frontier: ReplayProvider, arc_rows: list[LoggedRow]) -> None:
    request = Request(
        messages=(),
        candidates=("yes", "no"),
        candidate_prompts=("Answer yes:", "Answer no:"),
        scored_text=arc_rows[0].prompt,
        max_tokens=0,
    )
    with pytest.raises(UserInputError) as caught:
        complete(frontier, request)

    assert "cannot score a text after candidate prompts" in str(caught.value)


def test_request_without_user_message_rejected(frontier: ReplayProvider) -> None:
    request = Request(messages=(Message("system", "You answer questions."),))
    with pytest.raises(UserInputError) as caught:
        complete(frontier, request)

    assert "the request has no user message" in str(caught.value)


def test_unknown_cost_and_missing_response() -> None:
    outcomes = LoggedOutcomes(
        task="qa",
        split="test",
        item_ids=["q1", "q2"],
        prompts=["Capital of France?", "Capital of Peru?"],
        models=["m"],
        scores=np.array([[1.0], [1.0]]),
        costs=np.array([[math.nan], [0.002]]),
        responses=[["Paris"], [None]],
        source="hand-written outcomes",
    )
    provider = ReplayProvider(outcomes, "m")

    response = complete(provider, user_request("Capital of France?"))
    assert response.text == "Paris"
    assert response.cost is None
    with pytest.raises(PromptNotLoggedError) as caught:
        complete(provider, user_request("Capital of Peru?"))
    assert "has no response for the prompt 'Capital of Peru?' in item q2" in str(caught.value)


def test_outcomes_without_responses_raise() -> None:
    outcomes = LoggedOutcomes(
        task="qa",
        split="test",
        item_ids=["q1"],
        prompts=["Capital of France?"],
        models=["m"],
        scores=np.array([[1.0]]),
        costs=np.array([[0.001]]),
        responses=None,
        source="scores-only outcomes",
    )
    with pytest.raises(PromptNotLoggedError) as caught:
        complete(ReplayProvider(outcomes, "m"), user_request("Capital of France?"))

    assert "has no response" in str(caught.value)


# load_provider("replay:...") and SHOAL_REPLAY


def test_load_provider_replays_csv(
    monkeypatch: pytest.MonkeyPatch, arc_rows: list[LoggedRow]
) -> None:
    monkeypatch.setenv(REPLAY_ENV, str(ARC_TEST))
    provider = load_provider("replay:gpt-4-1106-preview")

    assert isinstance(provider, ReplayProvider)
    assert provider.model == "replay:gpt-4-1106-preview"
    response = complete(provider, user_request(arc_rows[1].prompt))
    assert response.text == arc_rows[1].responses[FRONTIER]
    assert response.cost is not None
    assert response.cost.amount == arc_rows[1].costs[FRONTIER]


def test_load_provider_reads_logs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REPLAY_ENV, str(ARC_TEST))
    first = load_provider("replay:gpt-4-1106-preview")
    second = load_provider("replay:claude-v2")

    assert isinstance(first, ReplayProvider)
    assert isinstance(second, ReplayProvider)
    assert first.outcomes[0] is second.outcomes[0]


def test_load_provider_replays_folder(
    monkeypatch: pytest.MonkeyPatch, arc_rows: list[LoggedRow]
) -> None:
    monkeypatch.setenv(REPLAY_ENV, str(ROUTERBENCH))
    provider = load_provider("replay:gpt-4-1106-preview")

    assert isinstance(provider, ReplayProvider)
    assert len(provider.outcomes) == len(list(ROUTERBENCH.glob("*.csv")))
    response = complete(provider, user_request(arc_rows[4].prompt))
    assert response.text == arc_rows[4].responses[FRONTIER]


def test_load_provider_replays_run_record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    with RunRecordWriter(path) as writer:
        for item, (text, prediction, cost) in enumerate(
            [
                ("I still have not received my card", "card_arrival", Decimal("0.0000001")),
                ("How do I link my card?", "card_linking", Decimal("0.00042")),
            ]
        ):
            writer.write(
                {
                    "config": "openai:gpt-4o-mini",
                    "item": item,
                    "text": text,
                    "prediction": prediction,
                    "correct": True,
                    "cost_usd": cost,
                }
            )
    monkeypatch.setenv(REPLAY_ENV, str(path))

    provider = load_provider("replay:openai:gpt-4o-mini")
    linking = complete(provider, user_request("How do I link my card?"))
    arrival = complete(provider, user_request("I still have not received my card"))

    assert linking.text == "card_linking"
    assert linking.cost is not None
    assert linking.cost.amount == Decimal("0.00042")
    assert arrival.text == "card_arrival"
    assert arrival.cost is not None
    assert arrival.cost.amount == Decimal("0.0000001")


def test_replay_record_of_one_model_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The escalation model of a bench run is measured on a subsample, and the cascade config
    # combines models: neither may hide the items the other configs logged.
    path = tmp_path / "records.jsonl"
    rows = [
        ("encoder:minilm", 0, "I still have not received my card", "card_arrival"),
        ("encoder:minilm", 1, "How do I link my card?", "card_linking"),
        ("local:qwen2.5-coder-1.5b", 1, "How do I link my card?", "card_linking"),
        ("cascade", 0, "I still have not received my card", "card_arrival"),
    ]
    with RunRecordWriter(path) as writer:
        for config, item, text, prediction in rows:
            writer.write({
                "config": config, "item": item, "text": text, "prediction": prediction,
                "correct": True, "cost_usd": Decimal("0.0000001"),
            })
    monkeypatch.setenv(REPLAY_ENV, str(path))

    encoder = load_provider("replay:encoder:minilm")
    response = complete(encoder, user_request("I still have not received my card"))

    assert response.text == "card_arrival"
    with pytest.raises(ModelNotFoundError, match="cascade"):
        load_provider("replay:cascade")


def test_load_provider_without_env_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REPLAY_ENV, raising=False)
    with pytest.raises(UserInputError) as caught:
        load_provider("replay:gpt-4-1106-preview")

    assert "set SHOAL_REPLAY" in str(caught.value)


def test_load_provider_missing_logs_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(REPLAY_ENV, str(tmp_path / "absent.csv"))
    with pytest.raises(UserInputError) as caught:
        load_provider("replay:gpt-4-1106-preview")

    assert "absent.csv not found" in str(caught.value)


def test_load_provider_other_file_type_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "logs.txt"
    path.write_text("prompt,answer\n", encoding="utf-8")
    monkeypatch.setenv(REPLAY_ENV, str(path))
    with pytest.raises(UserInputError) as caught:
        load_provider("replay:gpt-4-1106-preview")

    assert "neither a folder, a .csv file nor a .jsonl file" in str(caught.value)


def test_load_provider_unknown_model_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REPLAY_ENV, str(ARC_TEST))
    with pytest.raises(ModelNotFoundError) as caught:
        load_provider("replay:gpt-5")

    assert FRONTIER in str(caught.value)


def test_replay_is_a_known_provider() -> None:
    assert parse_model("replay:mistralai/mixtral-8x7b-chat").model_id == (
        "mistralai/mixtral-8x7b-chat"
    )


# A cascade with a replayed tier


class LetterStep:
    """Sends the item's text as the prompt and uses the returned letter as the label."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.model = provider.model

    async def predict(self, item: ItemContext) -> Prediction:
        request = user_request(item.text, candidates=LETTERS, max_tokens=1)
        response = await self.provider.complete(request)
        answer = response.text.strip()
        assert answer in LETTERS, f"{self.model} answered {response.text!r}"
        assert response.cost is not None
        probs = {letter: float(letter == answer) for letter in LETTERS}
        return from_probs(self.model, probs, response.cost, response.latency_s, response.usage)


def replay_step(model: str) -> LetterStep:
    outcomes = load_routerbench_dir(ROUTERBENCH)
    return LetterStep(GuardedProvider(ReplayProvider(outcomes, model)))


def run_cascade(cascade: Cascade, rows: list[LoggedRow]) -> list[CascadeOutcome]:
    async def run_all() -> list[CascadeOutcome]:
        return [await cascade.run(row.prompt) for row in rows]

    return asyncio.run(run_all())


def test_escalated_items_get_frontier_answers_and_costs(arc_rows: list[LoggedRow]) -> None:
    rows = arc_rows[:ITEMS]
    cascade = Cascade(
        [
            Tier(replay_step(CHEAP), threshold=ALWAYS_ESCALATE),
            Tier(replay_step(FRONTIER)),
        ]
    )

    outcomes = run_cascade(cascade, rows)

    for row, outcome in zip(rows, outcomes, strict=True):
        assert outcome.accepted == 1
        assert outcome.predictions[0].label == row.responses[CHEAP]
        assert outcome.prediction.label == row.responses[FRONTIER]
        assert outcome.prediction.model == "replay:gpt-4-1106-preview"
        assert outcome.cost_usd == row.costs[CHEAP] + row.costs[FRONTIER]
    logged_total = sum((row.costs[CHEAP] + row.costs[FRONTIER] for row in rows), Decimal(0))
    assert sum((outcome.cost_usd for outcome in outcomes), Decimal(0)) == logged_total
    changed = [row for row in rows if row.responses[CHEAP] != row.responses[FRONTIER]]
    assert changed, "the items chosen should include answers that escalation changes"


def test_accepted_items_cost_only_first_tier(arc_rows: list[LoggedRow]) -> None:
    rows = arc_rows[:ITEMS]
    cascade = Cascade([Tier(replay_step(CHEAP), threshold=None), Tier(replay_step(FRONTIER))])

    outcomes = run_cascade(cascade, rows)

    for row, outcome in zip(rows, outcomes, strict=True):
        assert outcome.accepted == 0
        assert len(outcome.predictions) == 1
        assert outcome.prediction.label == row.responses[CHEAP]
        assert outcome.cost_usd == row.costs[CHEAP]
