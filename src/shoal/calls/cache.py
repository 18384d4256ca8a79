"""A response cache on disk, keyed by the model and the full request.

Re-running an evaluation then costs nothing. A request seen before is served from the
cache with a zero cost that names the cache as its source, and with `Response.cached` set. The cache is one SQLite
file. It stores only what the provider returned, never API keys (requests carry none).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from shoal.pricing import Cost, Price
from shoal.providers.base import Provider, Request, Response, TokenLogprob, Usage

logger = logging.getLogger("shoal.calls.cache")

CACHE_PRICE = Price(rates="no charge: answered from the response cache", source="shoal cache",
                    valid_from=None)
SCHEMA_VERSION = 1  # part of every key, so a change of the stored format misses old entries


def request_key(model: str, request: Request) -> str:
    """Return the sha256 of the model and every field of the request, as canonical JSON."""
    document = {"version": SCHEMA_VERSION, "model": model, "request": dataclasses.asdict(request)}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _response_document(response: Response) -> dict[str, Any]:
    return {
        "model": response.model,
        "text": response.text,
        "usage": dataclasses.asdict(response.usage),
        "latency_s": response.latency_s,
        "created_at": response.created_at.isoformat(),
        "original_cost_usd": f"{response.cost.amount:f}" if response.cost is not None else None,
        "label_probs": response.label_probs,
        "token_logprobs": (
            [dataclasses.asdict(t) for t in response.token_logprobs]
            if response.token_logprobs is not None
            else None
        ),
    }


def _cached_response(document: dict[str, Any]) -> Response:
    logprobs = document["token_logprobs"]
    return Response(
        model=document["model"],
        text=document["text"],
        usage=Usage(**document["usage"]),
        latency_s=0.0,
        created_at=datetime.fromisoformat(document["created_at"]),
        cost=Cost(amount=Decimal(0), price=CACHE_PRICE, priced_at=datetime.now(UTC)),
        label_probs=document["label_probs"],
        token_logprobs=[TokenLogprob(**t) for t in logprobs] if logprobs is not None else None,
        attempts=0,
        cached=True,
    )


class ResponseCache:
    """Responses stored in one SQLite file under `path` (created when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, "
                "stored_at TEXT, response TEXT)"
            )
        self.hits = 0
        self.misses = 0

    def get(self, model: str, request: Request) -> Response | None:
        key = request_key(model, request)
        with self._lock:
            row = self._db.execute(
                "SELECT response FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return _cached_response(json.loads(row[0]))

    def put(self, model: str, request: Request, response: Response) -> None:
        document = json.dumps(_response_document(response), ensure_ascii=False)
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                (request_key(model, request), model, datetime.now(UTC).isoformat(), document),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedProvider:
    """Serve a request from the cache when it was seen before, else send it to the provider.

    Put it outside GuardedProvider: a cached answer then reserves no budget and makes no
    attempt. Only successful responses are stored.
    """

    def __init__(self, provider: Provider, cache: ResponseCache) -> None:
        self.provider = provider
        self.model = provider.model
        self.cache = cache

    def __getattr__(self, name: str) -> object:
        if name == "provider":  # not set yet: stop the lookup from recursing
            raise AttributeError(name)
        return getattr(self.provider, name)

    async def complete(self, request: Request) -> Response:
        cached = await asyncio.to_thread(self.cache.get, self.model, request)
        if cached is not None:
            logger.debug("%s: response served from the cache", self.model)
            return cached
        response = await self.provider.complete(request)
        await asyncio.to_thread(self.cache.put, self.model, request, response)
        return response
