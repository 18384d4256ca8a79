"""When to retry a failed call, and how long to wait first."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from shoal.errors import (
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderTimeoutError,
)

# Statuses worth another attempt: rate limits, server errors and Anthropic's 529 "overloaded".
# 400, 401, 403, 404 and 422 are the caller's mistake and fail again the same way.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring Retry-After up to `max_retry_after_s`.

    Attempt n (from 1) that fails waits a random time in [0, min(max_delay_s,
    base_delay_s * 2 ** (n - 1))], or the server's Retry-After when it sent one and it is
    longer. A Retry-After above `max_retry_after_s` ends the retries, because waiting that
    long stalls the whole run.
    """

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_retry_after_s: float = 120.0
    retry_statuses: frozenset[int] = RETRY_STATUSES
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry delays must not be negative")

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, ProviderHTTPError):
            return error.status_code in self.retry_statuses
        return isinstance(error, ProviderTimeoutError | ProviderConnectionError)

    def delay_s(self, attempt: int, error: BaseException) -> float | None:
        """Return the wait before the next attempt after `attempt` failed, or None to stop."""
        if attempt >= self.max_attempts or not self.is_retryable(error):
            return None
        backoff = self.rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))
        retry_after = getattr(error, "retry_after_s", None)
        if retry_after is None:
            return backoff
        if retry_after > self.max_retry_after_s:
            return None
        return max(retry_after, backoff)
