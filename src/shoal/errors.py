"""shoal's exception tree.

    ShoalError
    ├── UserInputError        bad input a user can fix: the CLI prints one line and exits 2
    │   ├── DatasetError      missing file, missing column, empty dataset, single label
    │   ├── ModelNotFoundError    unknown `provider:id`
    │   ├── PriceNotFoundError    no price for a `provider:id` in the bundled price data
    │   └── WeightsError      missing, incomplete or corrupt weight file
    ├── ProviderError         a provider failed to return a response (cause kept as __cause__)
    │   ├── ProviderHTTPError     the API returned an error status
    │   ├── ProviderTimeoutError  the request timed out
    │   └── ProviderConnectionError  the connection failed or dropped
    ├── BudgetExceededError   the next call could cross the spending cap (--max-cost)
    └── ResponseFormatError   a provider returned something shoal cannot parse
"""

from __future__ import annotations


class ShoalError(Exception):
    """Base class of every error shoal raises on purpose."""


class UserInputError(ShoalError):
    """An input the user can correct; the message names the value and the fix."""


class DatasetError(UserInputError):
    """A dataset file that cannot be used as given."""


class ModelNotFoundError(UserInputError):
    """A model name that matches no provider or known model."""


class PriceNotFoundError(UserInputError):
    """A model that the bundled price data has no price for."""


class WeightsError(UserInputError):
    """Weights that are missing, incomplete or fail their checksum."""


class ProviderError(ShoalError):
    """A provider failed to return a response."""


class ProviderHTTPError(ProviderError):
    """An API returned an HTTP error status."""

    def __init__(
        self, message: str, status_code: int, body: str = "", retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.retry_after_s = retry_after_s  # the Retry-After header, in seconds, if sent


class ProviderTimeoutError(ProviderError):
    """A request to a provider timed out."""


class ProviderConnectionError(ProviderError):
    """The connection to a provider failed or dropped."""


class BudgetExceededError(ShoalError):
    """A call was not sent because its worst-case cost would cross the run's spending cap."""


class ResponseFormatError(ShoalError):
    """A provider's response has a shape shoal cannot parse."""
