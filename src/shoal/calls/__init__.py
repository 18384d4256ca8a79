"""The shared layer around every provider: retries, rate limits, the budget and the response cache.

Providers make one attempt per request and translate failures into shoal's errors. What
happens around an attempt (waiting for a slot, reserving money, retrying, answering from the
cache) lives here, once for all providers.
"""

from shoal.calls.budget import Budget, Reservation
from shoal.calls.cache import CachedProvider, ResponseCache
from shoal.calls.guarded import GuardedProvider
from shoal.calls.limits import CallLimits, RateLimiter
from shoal.calls.retry import RetryPolicy

__all__ = [
    "Budget",
    "CachedProvider",
    "CallLimits",
    "GuardedProvider",
    "RateLimiter",
    "Reservation",
    "ResponseCache",
    "RetryPolicy",
]
