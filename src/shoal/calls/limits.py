"""Per-provider limits on calls: how many run at once, and requests and tokens per minute."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class CallLimits:
    """Limits for one provider; None leaves a limit off."""

    max_concurrency: int | None = 16
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_concurrency", "requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value}")


class _TokenBucket:
    """A bucket that refills `per_minute` units a minute up to one minute's worth."""

    def __init__(self, per_minute: float) -> None:
        self.capacity = per_minute
        self.rate_per_s = per_minute / 60.0
        self.level = per_minute
        self.updated = time.monotonic()

    def wait_s(self, amount: float) -> float:
        """Take `amount` if the bucket contains it and return 0, else return the wait needed."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate_per_s)
        self.updated = now
        amount = min(amount, self.capacity)  # a request larger than a minute's worth waits a full bucket
        if self.level >= amount:
            self.level -= amount
            return 0.0
        return (amount - self.level) / self.rate_per_s


class RateLimiter:
    """Waits until a request fits the requests-per-minute and tokens-per-minute limits."""

    def __init__(self, limits: CallLimits) -> None:
        self._requests = (
            _TokenBucket(limits.requests_per_minute) if limits.requests_per_minute else None
        )
        self._tokens = _TokenBucket(limits.tokens_per_minute) if limits.tokens_per_minute else None
        self._lock = asyncio.Lock()

    @property
    def limited(self) -> bool:
        return self._requests is not None or self._tokens is not None

    async def acquire(self, tokens: int) -> None:
        if not self.limited:
            return
        # One waiter at a time, so requests leave in the order they arrived.
        async with self._lock:
            for bucket, amount in ((self._requests, 1.0), (self._tokens, float(tokens))):
                if bucket is None:
                    continue
                while (wait := bucket.wait_s(amount)) > 0:
                    await asyncio.sleep(wait)
