"""Property: over random failures, retries and usages, settled spend never passes --max-cost."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

import shoal.calls.guarded as guarded_module
from shoal.calls import Budget, GuardedProvider, RetryPolicy
from shoal.calls.estimate import estimate_input_tokens
from shoal.errors import BudgetExceededError, ProviderHTTPError, ProviderTimeoutError
from shoal.pricing import api_cost
from shoal.providers.base import Message, Request, Response, Usage

PRICED_AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# One attempt's outcome: an error status (0 for a timeout) or the usage share to bill.
attempt_outcome = st.one_of(
    st.sampled_from([429, 500, 503, 529, 400, 0]),
    st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
)


class ScriptedProvider:
    """An in-process provider whose attempts fail or succeed as the script says.

    A successful attempt bills a share of the request's estimated input tokens and of its
    max_tokens, priced as gpt-4o-mini, so every real cost stays within the worst case.
    """

    model = "openai:gpt-4o-mini"
    model_id = "gpt-4o-mini"
    price_provider_id = "openai"

    def __init__(self, outcomes: list[object]) -> None:
        self.outcomes = deque(outcomes)
        self.billed = Decimal(0)

    async def complete(self, request: Request) -> Response:
        await asyncio.sleep(0)  # let concurrent requests interleave
        outcome = self.outcomes.popleft() if self.outcomes else (1.0, 1.0)
        if outcome == 0:
            raise ProviderTimeoutError("timed out")
        if isinstance(outcome, int):
            raise ProviderHTTPError(f"HTTP {outcome}", outcome)
        input_share, output_share = outcome  # type: ignore[misc]
        usage = Usage(
            input_tokens=int(estimate_input_tokens(request) * input_share),
            output_tokens=int(request.max_tokens * output_share),
        )
        cost = api_cost(usage, "openai", "gpt-4o-mini", PRICED_AT)
        self.billed += cost.amount
        return Response(self.model, "ok", usage, 0.0, PRICED_AT, cost=cost)


@settings(max_examples=150, deadline=None)
@given(
    cap=st.decimals(min_value=0, max_value=Decimal("0.002"), places=7),
    outcomes=st.lists(attempt_outcome, max_size=60),
    lengths=st.lists(st.integers(1, 4000), min_size=1, max_size=25),
    max_tokens=st.integers(1, 500),
    concurrent=st.booleans(),
)
def test_spend_never_passes_cap(
    cap: Decimal, outcomes: list[object], lengths: list[int], max_tokens: int, concurrent: bool
) -> None:
    async def no_wait(seconds: float) -> None:
        return None

    guarded_module._sleep = no_wait  # type: ignore[assignment]
    provider = ScriptedProvider(outcomes)
    budget = Budget(cap)
    guarded = GuardedProvider(provider, retry=RetryPolicy(max_attempts=3), budget=budget)
    requests = [
        Request(messages=(Message("user", "x" * length),), max_tokens=max_tokens)
        for length in lengths
    ]

    async def send(request: Request) -> str:
        try:
            await guarded.complete(request)
        except BudgetExceededError:
            return "stopped"
        except (ProviderHTTPError, ProviderTimeoutError):
            return "failed"
        return "answered"

    async def send_all() -> list[str]:
        if concurrent:
            return list(await asyncio.gather(*(send(r) for r in requests)))
        return [await send(r) for r in requests]

    try:
        results = asyncio.run(send_all())
    finally:
        guarded_module._sleep = asyncio.sleep

    assert budget.spent <= cap
    assert budget.spent == provider.billed
    assert budget.reserved == 0
    assert len(results) == len(requests)
