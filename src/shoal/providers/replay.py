"""A provider that replays a model's logged responses and costs instead of calling the model.

`replay:MODEL` returns, for a prompt found in logged outcomes (RouterBench CSV files or a shoal
run record), the response MODEL returned there and the USD cost logged for that call. A live
cascade can then mix in-process models with responses that frontier models really returned,
with no API key and no new spending, while each response still carries its logged cost. A
prompt the logs do not contain raises `PromptNotLoggedError`, so no response is ever made up.

Lookup: the key is the text of the request's last user message with surrounding whitespace
stripped, compared exactly (case, inner whitespace and line endings included) with the logged
prompts, stripped the same way. The logs store one prompt text per item, so system messages
and earlier turns of the request are not compared. A prompt logged more than once with
different responses or costs for the model (two MBPP prompts appear in both RouterBench's
train and test files) cannot be replayed, because the provider cannot tell which response
belongs to the request.

Requests with `candidates` get the logged text and no `label_probs`, because the logs contain
no token probabilities. A step that reads the chosen letter from the text (as
CandidateChoiceStep does for API models without logprobs) can then use a logged letter.
NOTE: CandidateChoiceStep builds its own prompt (lettered categories with examples), which no
RouterBench file or shoal run record contains, so a replay tier in `shoal bench` raises
PromptNotLoggedError on its first escalated item. Text scoring after candidate prompts
(`scored_text`) is rejected.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from shoal.errors import ModelNotFoundError, UserInputError
from shoal.pricing import Cost, Price
from shoal.providers.base import Request, Response, Usage

if TYPE_CHECKING:
    # Type only, so the provider layer imports nothing from the simulation layer above it.
    from shoal.simulate.outcomes import LoggedOutcomes

logger = logging.getLogger("shoal.providers.replay")

PROVIDER_ID = "replay"
# Characters of the prompt's start and of its end shown in a lookup error. Both ends are shown
# because few-shot prompts share their start and differ in the question at the end.
PROMPT_PREVIEW_CHARS = 50
MAX_LISTED_SOURCES = 3  # messages name up to this many log files, and count the files beyond it


class PromptNotLoggedError(UserInputError):
    """A request whose prompt has no single logged response for the replayed model."""


@dataclass(frozen=True)
class LoggedCall:
    """One logged call of the replayed model: its response, USD cost and where it was logged."""

    response: str | None  # None where the log has no response for this item
    cost_usd: float  # NaN where the log has no cost
    source: str
    item_id: str

    def same_call(self, other: LoggedCall) -> bool:
        """Return True when both calls logged the same response and the same (or no) cost."""
        both_unknown = math.isnan(self.cost_usd) and math.isnan(other.cost_usd)
        return self.response == other.response and (both_unknown or self.cost_usd == other.cost_usd)


def prompt_key(text: str) -> str:
    """Return the lookup key of a prompt: the text without surrounding whitespace."""
    return text.strip()


class ReplayProvider:
    """Replays `model`'s logged responses and costs for the prompts in `outcomes`.

    `outcomes` is one `LoggedOutcomes` or several (e.g. one per file of a folder). `model` is a
    model name as the logs spell it; the provider's `model` is `replay:<model>`. A model that
    no outcomes contain raises ModelNotFoundError listing the models they do contain.

    Responses carry the logged text, whatever the request's `max_tokens`, and the logged cost
    (None where the log has no cost). Usage is zero tokens and the latency is 0, because the
    logs record neither. `cached` stays False: the logged cost is charged as the cost of a real
    call, whereas a cached response costs nothing.
    """

    def __init__(self, outcomes: LoggedOutcomes | Sequence[LoggedOutcomes], model: str) -> None:
        tables = [outcomes] if not isinstance(outcomes, Sequence) else list(outcomes)
        if not tables:
            raise UserInputError(
                f"no logged outcomes to replay {model!r} from: pass at least one LoggedOutcomes"
            )
        self.outcomes = tables
        self.model_id = model
        self.model = f"{PROVIDER_ID}:{model}"
        self._sources = [table.source for table in tables]
        self._calls, self._ambiguous = _index_calls(self._tables_with_model(), model)
        self._price = Price(
            rates="the logged cost of each call",
            source=f"logged costs in {self.logs}",
            valid_from=None,
        )
        self._warned_unknown_cost = False

    @property
    def logs(self) -> str:
        """The log files replayed, for messages: their paths, or a count and their folder."""
        return describe_sources(self._sources)

    async def complete(self, request: Request) -> Response:
        """Return the logged response and cost for the request's last user message."""
        created_at = datetime.now(UTC)
        _reject_unreplayable(self.model, request)
        prompt = _last_user_message(self.model, request)
        call = self._lookup(prompt)
        logger.debug("%s replayed item %s of %s", self.model, call.item_id, call.source)
        return Response(
            model=self.model,
            text=call.response or "",
            usage=Usage(),
            latency_s=0.0,
            created_at=created_at,
            cost=self._cost(call, created_at),
            # The logs contain no token probabilities. A step that scores candidates falls back on
            # the generated text, as it does for an API model that returns no logprobs.
            label_probs=None,
        )

    def _tables_with_model(self) -> list[LoggedOutcomes]:
        tables = [table for table in self.outcomes if self.model_id in table.models]
        if not tables:
            known = sorted({model for table in self.outcomes for model in table.models})
            raise ModelNotFoundError(
                f"model {self.model_id!r} is not in {self.logs}; known models: " + ", ".join(known)
            )
        return tables

    def _lookup(self, prompt: str) -> LoggedCall:
        key = prompt_key(prompt)
        if key in self._ambiguous:
            calls = self._ambiguous[key]
            places = ", ".join(f"item {call.item_id} of {call.source}" for call in calls)
            raise PromptNotLoggedError(
                f"{self.model} cannot replay the prompt {preview(prompt)}: it is logged with "
                f"different responses or costs in {places}; replay only one of those files"
            )
        call = self._calls.get(key)
        if call is None:
            raise PromptNotLoggedError(
                f"{self.model} has no logged response for the prompt {preview(prompt)} in "
                f"{self.logs}; replay logs that contain this prompt, or use a live model"
            )
        if call.response is None:
            raise PromptNotLoggedError(
                f"{self.model} has no response for the prompt {preview(prompt)} in item "
                f"{call.item_id} of {call.source}; replay logs that contain its response"
            )
        return call

    def _cost(self, call: LoggedCall, created_at: datetime) -> Cost | None:
        if math.isnan(call.cost_usd):
            if not self._warned_unknown_cost:
                logger.warning(
                    "%s: %s has no logged cost for some prompts, so their responses have no cost",
                    self.model,
                    self.logs,
                )
                self._warned_unknown_cost = True
            return None
        # repr() of the float is the shortest text that reads back as the same float, so a cost
        # logged as "0.00505" becomes Decimal("0.00505") exactly.
        amount = Decimal(repr(call.cost_usd))
        # NOTE: priced_at is the time of the replay, because the logs do not record when the
        # original call was made.
        return Cost(amount=amount, price=self._price, priced_at=created_at)


def _index_calls(
    tables: Sequence[LoggedOutcomes], model: str
) -> tuple[dict[str, LoggedCall], dict[str, list[LoggedCall]]]:
    """Map each prompt key to the model's logged call, and list the keys logged ambiguously.

    A prompt logged again with the same response and cost keeps its first call. A prompt
    logged again with a different one moves to the ambiguous map with every call seen.
    Empty prompts are left out, because they would match any empty request.
    """
    calls: dict[str, LoggedCall] = {}
    ambiguous: dict[str, list[LoggedCall]] = {}
    for table in tables:
        column = table.models.index(model)
        for row, prompt in enumerate(table.prompts):
            key = prompt_key(prompt)
            if not key:
                continue
            call = LoggedCall(
                response=table.responses[row][column] if table.responses is not None else None,
                cost_usd=float(table.costs[row, column]),
                source=table.source,
                item_id=table.item_ids[row],
            )
            if key in ambiguous:
                ambiguous[key].append(call)
            elif key not in calls:
                calls[key] = call
            elif not calls[key].same_call(call):
                ambiguous[key] = [calls.pop(key), call]
    return calls, ambiguous


def _reject_unreplayable(model: str, request: Request) -> None:
    """Raise for a request the logs cannot serve: a text scored after candidate prompts."""
    if request.scored_text is not None or request.candidate_prompts is not None:
        raise UserInputError(
            f"{model} cannot score a text after candidate prompts, because the logs contain "
            "responses, not token probabilities; use letter choice (`--scoring choice`) "
            "or a local model"
        )


def _last_user_message(model: str, request: Request) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.content
    raise UserInputError(
        f"{model} looks up the request's last user message in the logs, but the request has "
        "no user message; send the prompt as a user message"
    )


def preview(prompt: str) -> str:
    """Quote a prompt for an error message: whole when short, else its start, end and length."""
    text = prompt_key(prompt)
    if len(text) <= 2 * PROMPT_PREVIEW_CHARS:
        return repr(text)
    start = text[:PROMPT_PREVIEW_CHARS]
    end = text[-PROMPT_PREVIEW_CHARS:]
    return f"{start!r} ... {end!r} ({len(text)} characters)"


def describe_sources(sources: Sequence[str]) -> str:
    """Name log files for a message: each path, or for many files their count and folder."""
    unique = list(dict.fromkeys(sources))
    if len(unique) <= MAX_LISTED_SOURCES:
        return ", ".join(unique)
    try:
        folder = os.path.commonpath(unique)
    except ValueError:  # paths on different drives, or absolute mixed with relative
        return f"{len(unique)} files ({unique[0]}, ...)"
    return f"{len(unique)} files in {folder}"
