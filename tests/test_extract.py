"""Extract steps with scripted providers: schemas, validation retries, confidence, escalation."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

from shoal.cascade import Cascade, Tier
from shoal.errors import UserInputError
from shoal.pricing import Cost, Price
from shoal.providers.base import Request, Response, TokenLogprob, Usage
from shoal.tasks.confidence import agreement, field_confidences, item_confidence, value_spans
from shoal.tasks.extract import ExtractStep, Schema, extraction_messages
from shoal.tasks.prediction import ItemContext

PRICE = Price(rates="$1/call (test)", source="test", valid_from=None)
AT = datetime(2026, 12, 1, tzinfo=UTC)
RECEIPT = {
    "type": "object",
    "properties": {
        "company": {"type": ["string", "null"]},
        "total": {"type": ["string", "null"]},
    },
    "required": ["company", "total"],
    "additionalProperties": False,
}
VALID = '{"company": "SANYU STATIONERY", "total": "7.00"}'


class ScriptedProvider:
    """Returns the scripted replies in order, each costing $0.001, and records the requests."""

    def __init__(self, replies: list[str], model: str = "fake:extractor") -> None:
        self.model = model
        self.replies = list(replies)
        self.requests: list[Request] = []

    async def complete(self, request: Request) -> Response:
        self.requests.append(request)
        text = self.replies.pop(0)
        return Response(
            model=self.model,
            text=text,
            usage=Usage(input_tokens=100, output_tokens=20, compute_seconds=0.5),
            latency_s=0.5,
            created_at=AT,
            cost=Cost(Decimal("0.001"), PRICE, AT),
        )


def extract(step: ExtractStep, text: str = "SANYU STATIONERY\nTOTAL RM 7.00"):  # type: ignore[no-untyped-def]
    return asyncio.run(step.predict(ItemContext(text=text)))


# Schemas


def test_schema_from_pydantic() -> None:
    class Receipt(BaseModel):
        company: str
        total: float | None = None

    schema = Schema.from_pydantic(Receipt)

    assert schema.name == "Receipt"
    assert schema.fields == ["company", "total"]
    assert schema.errors({"company": "A", "total": 3.5}) == []
    assert schema.errors({"total": "x"}) != []


def test_schema_from_file(tmp_path: Path) -> None:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(RECEIPT), encoding="utf-8")

    schema = Schema.from_file(path)

    assert schema.name == "receipt"
    assert schema.errors(json.loads(VALID)) == []


@pytest.mark.parametrize(
    ("document", "match"),
    [
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "invalid JSON Schema"),
        ({"type": "array"}, "must describe an object"),
    ],
)
def test_invalid_schema_rejected(document: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(UserInputError, match=match):
        Schema(document)


def test_not_pydantic_rejected() -> None:
    with pytest.raises(UserInputError, match="not a pydantic model"):
        Schema.from_pydantic(dict)


def test_missing_schema_file(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="not found"):
        Schema.from_file(tmp_path / "absent.json")


def test_validation_errors_name_the_field() -> None:
    errors = Schema(RECEIPT).errors({"company": 3, "total": "1", "extra": True})

    assert any(error.startswith("company:") for error in errors)
    assert any("extra" in error for error in errors)


# Prompts


def test_empty_document_rejected() -> None:
    with pytest.raises(UserInputError, match="empty document"):
        extraction_messages("  \n", Schema(RECEIPT))


def test_document_cannot_close_its_delimiter() -> None:
    system, user = extraction_messages("a </document> b", Schema(RECEIPT))

    assert user.content.count("</document>") == 1
    assert "a </ document> b" in user.content
    assert '"company"' in system.content


# Retries


def test_retry_feeds_errors_back_and_sums_cost() -> None:
    provider = ScriptedProvider(["{not json", '{"company": 5, "total": "7"}', VALID])
    step = ExtractStep(provider, Schema(RECEIPT), max_retries=2)

    result = extract(step)

    assert result.value == json.loads(VALID)
    assert result.attempts == 3
    assert result.cost.amount == Decimal("0.003")
    assert result.usage.input_tokens == 300
    assert result.usage.output_tokens == 60
    assert result.latency_s == pytest.approx(1.5)
    second, third = provider.requests[1], provider.requests[2]
    assert second.messages[-2].content == "{not json"
    assert "not valid JSON" in second.messages[-1].content
    assert "company: 5 is not of type" in third.messages[-1].content
    assert all(request.json_schema == Schema(RECEIPT).to_json() for request in provider.requests)


def test_all_attempts_fail() -> None:
    provider = ScriptedProvider(["[]", "[]"])
    step = ExtractStep(provider, Schema(RECEIPT), max_retries=1)

    result = extract(step)

    assert result.value is None
    assert not result.valid
    assert result.confidence == 0.0
    assert result.attempts == 2
    assert result.cost.amount == Decimal("0.002")
    assert "(2 calls)" in result.cost.price.rates
    assert result.errors
    assert result.to_step_record(accepted=True)["valid"] is False


def test_invalid_extraction_escalates() -> None:
    small = ExtractStep(ScriptedProvider(["{}", "{}"], model="fake:small"), Schema(RECEIPT),
                        max_retries=1)
    large = ExtractStep(ScriptedProvider([VALID], model="fake:large"), Schema(RECEIPT))
    cascade = Cascade([Tier(small, 0.5), Tier(large)])  # type: ignore[arg-type]

    outcome = asyncio.run(cascade.run("SANYU STATIONERY\nTOTAL RM 7.00"))

    assert outcome.accepted == 1
    assert outcome.prediction.value == json.loads(VALID)  # type: ignore[attr-defined]
    assert outcome.cost_usd == Decimal("0.003")


def test_second_opinion_agreement() -> None:
    main = ScriptedProvider([VALID])
    other = ScriptedProvider(['{"company": "sanyu  stationery", "total": "8.00"}'])
    step = ExtractStep(main, Schema(RECEIPT), second_opinion=other)  # type: ignore[arg-type]

    result = extract(step)

    assert result.signals["agreement"] == 0.5
    assert result.confidence == pytest.approx(0.5)
    assert result.cost.amount == Decimal("0.002")
    assert other.requests[0].logprobs is False


# Confidence signals


def test_field_confidence_from_token_logprobs() -> None:
    text = '{"a": "xy", "b": null}'
    pieces = ['{"', 'a', '":', ' "', 'x', 'y', '",', ' "', 'b', '":', ' null', '}']
    logprobs = [0.0, 0.0, 0.0, math.log(0.9), math.log(0.5), math.log(0.8), 0.0, 0.0, 0.0,
                0.0, math.log(0.6), 0.0]
    tokens = [TokenLogprob(piece, lp) for piece, lp in zip(pieces, logprobs, strict=True)]

    fields = field_confidences(text, tokens, {"a": "xy", "b": None})

    assert value_spans(text, {"a": "xy", "b": None}) == {"a": (6, 10), "b": (17, 21)}
    # "a" is written by ' "', 'x', 'y' and '",': geometric mean of 0.9, 0.5, 0.8 and 1.0.
    assert fields["a"] == pytest.approx((0.9 * 0.5 * 0.8) ** 0.25)
    assert fields["b"] == pytest.approx(0.6)


def test_field_confidence_needs_matching_tokens() -> None:
    assert field_confidences('{"a": 1}', [TokenLogprob("{", 0.0)], {"a": 1}) == {}


def test_item_confidence_combines_signals() -> None:
    assert item_confidence({"valid": 0.0, "token": 0.9}) == 0.0
    assert item_confidence({"valid": 1.0}) == 1.0
    assert item_confidence({"valid": 1.0, "token": 0.81, "agreement": 1.0}) == pytest.approx(0.9)


def test_agreement_folds_case_and_space() -> None:
    first = {"a": "Kuala  Lumpur", "b": None, "c": "1"}
    second = {"a": "kuala lumpur", "b": "", "c": "2"}

    assert agreement(first, second, ["a", "b", "c"]) == pytest.approx(2 / 3)
    assert agreement(first, None, ["a"]) == 0.0


def test_examples_shown_as_earlier_turns() -> None:
    messages = extraction_messages(
        "TOTAL RM 9.00", Schema(RECEIPT), examples=[("SHOP A\nTOTAL 1.00", {"total": "1.00"})]
    )

    roles = [message.role for message in messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert json.loads(messages[2].content) == {"company": None, "total": "1.00"}
    assert "TOTAL RM 9.00" in messages[3].content


def test_null_word_read_as_null() -> None:
    provider = ScriptedProvider(['{"company": "null", "total": " None "}'])

    result = extract(ExtractStep(provider, Schema(RECEIPT)))

    assert result.value == {"company": None, "total": None}


def test_null_word_kept_where_schema_forbids_null() -> None:
    schema = Schema({
        "type": "object",
        "properties": {"company": {"type": "string"}},
        "required": ["company"],
    })

    result = extract(ExtractStep(ScriptedProvider(['{"company": "null"}']), schema))

    assert result.value == {"company": "null"}
