"""HTTP plumbing shared by the API providers: one JSON POST, errors translated, keys redacted.

Each API provider builds its own request body and reads its own response shape. This module
sends the body and turns every way the call can fail into shoal's exception tree, with the
httpx error kept as `__cause__`. The status code and any Retry-After delay travel on
ProviderHTTPError, so the shared retry layer can decide without knowing the vendor.
"""

from __future__ import annotations

import functools
import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any

import httpx

from shoal.errors import (
    PriceNotFoundError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderTimeoutError,
    ResponseFormatError,
    UserInputError,
)
from shoal.pricing import Cost, api_cost
from shoal.providers.base import Response, Usage

logger = logging.getLogger("shoal.providers.http")

# Hints appended to HTTP error messages, by status code.
STATUS_HINTS = {
    401: "check the API key",
    403: "check that the API key may use this model",
    404: "check the model id and the base URL",
    429: "rate limit or quota reached: retry later or check the account's quota",
}

class ShapeError(ValueError):
    """A response body that parsed as JSON but lacks a field shoal needs."""


# Models already warned about (no price, or no usage reported), so each is logged once per process.
_warned: set[tuple[str, str]] = set()


def check_base_url(base_url: str, example: str = "http://127.0.0.1:8000/v1") -> str:
    """Return `base_url` without a trailing slash; anything but http(s) is a UserInputError."""
    url = base_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserInputError(
            f"invalid base URL {base_url!r}: give an http:// or https:// URL, e.g. {example}"
        )
    return url


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Read a Retry-After header: delay seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class JSONPoster:
    """Posts JSON bodies for one model and translates failures into shoal's errors.

    `error_message` reads the vendor's error body into one line. `secrets` (API keys) are
    replaced by "[redacted]" in every message and error body this class produces. Without
    `client`, each request opens and closes its own connection.
    """

    def __init__(
        self,
        model: str,
        *,
        timeout_s: float,
        secrets: Sequence[str | None] = (),
        error_message: Callable[[str], str],
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not timeout_s > 0:
            raise UserInputError(
                f"invalid timeout {timeout_s!r}: give a positive number of seconds"
            )
        self.model = model
        self.timeout_s = timeout_s
        self._timeout = httpx.Timeout(timeout_s)  # built once: httpx would build one per call
        self._secrets = [secret for secret in secrets if secret]
        self._error_message = error_message
        self._client = client

    async def post(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> tuple[Mapping[str, Any], float]:
        """POST `body` to `url`; return the decoded JSON object and the latency in seconds."""
        started = time.perf_counter()
        http_response = await self._send(url, body, headers)
        latency_s = time.perf_counter() - started
        self._raise_for_status(http_response)
        return self._decode(http_response, url), latency_s

    async def _send(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> httpx.Response:
        try:
            if self._client is not None:
                return await self._client.post(
                    url, json=body, headers=headers, timeout=self._timeout
                )
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                return await client.post(url, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ProviderTimeoutError(
                f"request to {self.model} at {self.redact(url)} timed out after "
                f"{self.timeout_s} s: retry, or raise the timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise ProviderConnectionError(
                f"connection to {self.model} at {self.redact(url)} failed: "
                f"{self.redact(str(exc)) or type(exc).__name__}: check that the host is "
                "running and the base URL is right"
            ) from exc

    def _raise_for_status(self, http_response: httpx.Response) -> None:
        try:
            http_response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            status = http_response.status_code
            body = self.redact(http_response.text)
            message = f"{self.model} returned HTTP {status}: {self._error_message(body)}"
            if status in STATUS_HINTS:
                message += f" ({STATUS_HINTS[status]})"
            retry_after = retry_after_seconds(http_response.headers.get("retry-after"))
            raise ProviderHTTPError(message, status, body, retry_after_s=retry_after) from exc

    def _decode(self, http_response: httpx.Response, url: str) -> Mapping[str, Any]:
        try:
            payload = http_response.json()
        except ValueError as exc:
            snippet = self.redact(http_response.text[:200])
            raise ResponseFormatError(
                f"{self.model} returned a body that is not JSON from {self.redact(url)}: "
                f"{snippet!r}"
            ) from exc
        # Parsers check for dict, what JSON objects decode to: an isinstance check against the
        # Mapping ABC is several times slower, and a reply is checked at dozens of places.
        if not isinstance(payload, dict):
            raise ResponseFormatError(
                f"{self.model} returned JSON that is not an object: {type(payload).__name__}"
            )
        return payload

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


class HTTPProvider:
    """The base URL, key and poster that every API provider sets up the same way."""

    model: str

    def _connect(
        self,
        *,
        base_url: str,
        api_key: str | None,
        timeout_s: float,
        client: httpx.AsyncClient | None,
        error_message: Callable[[str], str],
        official_base_url: str,
        api_key_env: str,
        example_base_url: str = "http://127.0.0.1:8000/v1",
    ) -> None:
        """Check the base URL and build the poster; a missing key for the vendor's own URL raises."""
        self.base_url = check_base_url(base_url, example=example_base_url)
        self.timeout_s = timeout_s
        self._api_key = api_key
        self._poster = JSONPoster(
            self.model,
            timeout_s=timeout_s,
            secrets=[api_key],
            error_message=error_message,
            client=client,
        )
        if self.base_url == official_base_url and not api_key:
            raise UserInputError(
                f"missing API key for {self.model}: set the {api_key_env} environment variable "
                "or pass api_key"
            )

    def __repr__(self) -> str:
        # The key is left out on purpose.
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"


def warn_once(model: str, kind: str, message: str, *args: object) -> None:
    """Log `message` (its first %s is the model) once per process for this model and kind."""
    key = (kind, model)
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, model, *args)


def price_usage(
    model: str,
    usage: Usage,
    price_provider_id: str,
    model_refs: Sequence[str | None],
    created_at: datetime,
) -> Cost | None:
    """Price usage from the user's prices file, else with the first model id that genai-prices lists.

    Without either price it warns once and returns None. The model id in the response comes
    first in `model_refs`, because an alias such as "gpt-4o" can be served by a dated
    snapshot with its own price.
    """
    entry = _prices_file().user_price(model)
    if entry is not None:
        return _prices_file().user_cost(entry, usage, created_at)
    for model_ref in dict.fromkeys(ref for ref in model_refs if ref):
        try:
            return api_cost(usage, price_provider_id, model_ref, created_at)
        except PriceNotFoundError:
            continue
    warn_once(
        model,
        "price",
        "%s has no price in genai-prices for provider %r, so its responses carry no cost",
        price_provider_id,
    )
    return None


@functools.cache
def _prices_file() -> ModuleType:
    # Imported on first use: shoal.catalogue imports the providers, so a module-level import
    # would be circular.
    return importlib.import_module("shoal.catalogue.prices_file")


def count(container: Mapping[str, Any], key: str, path: str) -> int:
    """Read a non-negative integer field (missing or null is 0), else raise ShapeError."""
    value = container.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ShapeError(f"{path} is {value!r}, not a non-negative integer")
    return value


async def call_api(
    poster: JSONPoster,
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    parse: Callable[[Mapping[str, Any], datetime, float], Response],
) -> Response:
    """POST a request and parse the reply with `parse(payload, created_at, latency_s)`.

    A ShapeError from `parse` becomes a ResponseFormatError naming the model and the URL.
    """
    created_at = datetime.now(UTC)
    payload, latency_s = await poster.post(url, body, headers)
    try:
        response = parse(payload, created_at, latency_s)
    except ShapeError as exc:
        raise ResponseFormatError(
            f"{poster.model} returned an unexpected response from {poster.redact(url)}: {exc}"
        ) from exc
    logger.debug(
        "%s: %.3f s, %d input / %d output tokens",
        poster.model,
        latency_s,
        response.usage.input_tokens,
        response.usage.output_tokens,
    )
    return response


def cost_or_warn(
    model: str,
    usage: Usage | None,
    price_provider_id: str,
    model_refs: Sequence[str | None],
    created_at: datetime,
) -> Cost | None:
    """Price the usage, or warn once and return None when the API reported no usage."""
    if usage is None:
        warn_once(model, "usage", "%s reported no usage, so its responses carry no cost")
        return None
    return price_usage(model, usage, price_provider_id, model_refs, created_at)
