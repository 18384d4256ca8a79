"""GuardedProvider: one provider behind the shared limits, retries and budget."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from shoal.calls.budget import Budget
from shoal.calls.estimate import CostBound, estimate_input_tokens
from shoal.calls.limits import CallLimits, RateLimiter
from shoal.calls.retry import RetryPolicy
from shoal.errors import ProviderError
from shoal.providers.base import Provider, Request, Response

logger = logging.getLogger("shoal.calls")

_sleep = asyncio.sleep  # tests replace it to record the delays without waiting


class GuardedProvider:
    """Wraps a provider: concurrency and rate limits, retries with backoff, and the budget.

    For each request it reserves the worst-case cost (when a budget is set), then makes up
    to `retry.max_attempts` attempts, each inside the concurrency and rate limits. Errors
    that another attempt cannot fix (HTTP 400, 401, 403, 404, bad input) are raised at once.
    The last error is raised unchanged when the attempts run out, so the provider's own
    error stays the `__cause__`. The response's `attempts` counts every attempt made.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        retry: RetryPolicy | None = None,
        limits: CallLimits | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.provider = provider
        self.model = provider.model
        self.retry = retry or RetryPolicy()
        self.limits = limits or CallLimits()
        self.budget = budget
        self._bound = CostBound(provider)
        self._rate = RateLimiter(self.limits)
        self._slots = (
            asyncio.Semaphore(self.limits.max_concurrency) if self.limits.max_concurrency else None
        )

    def __getattr__(self, name: str) -> object:
        if name == "provider":  # not set yet: stop the lookup from recursing
            raise AttributeError(name)
        # Read-only details of the wrapped provider (model_id, machine, ...) stay visible.
        return getattr(self.provider, name)

    async def complete(self, request: Request) -> Response:
        reservation = None
        if self.budget is not None:
            reservation = self.budget.reserve(self._bound(request), f"a call to {self.model}")
        try:
            response = await self._attempts(request)
        except BaseException:
            if reservation is not None:
                self.budget.release(reservation)  # type: ignore[union-attr]
            raise
        self._bound.observe(response.usage.compute_seconds)
        if reservation is not None:
            cost = response.cost.amount if response.cost is not None else Decimal(0)
            self.budget.settle(reservation, cost)  # type: ignore[union-attr]
        return response

    async def _attempts(self, request: Request) -> Response:
        tokens = 0
        if self._rate.limited:
            tokens = estimate_input_tokens(request) + request.max_tokens
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._attempt(request, tokens)
            except ProviderError as error:
                delay = self.retry.delay_s(attempt, error)
                if delay is None:
                    if attempt > 1:
                        logger.warning("%s failed after %d attempts: %s", self.model, attempt, error)
                    raise
                logger.info(
                    "%s attempt %d failed (%s); retrying in %.2f s", self.model, attempt, error, delay
                )
                await _sleep(delay)
                continue
            response.attempts = attempt
            return response

    async def _attempt(self, request: Request, tokens: int) -> Response:
        await self._rate.acquire(tokens)
        if self._slots is None:
            return await self.provider.complete(request)
        async with self._slots:
            return await self.provider.complete(request)
