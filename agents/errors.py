"""Provider errors, translated at the boundary into our own categories (the original SDK error
stays as ``__cause__``). The agent's retry logic only ever sees these.

    ModelError
    ├── ModelConfigurationError     missing SDK, missing key, unknown model string (not retryable)
    ├── ModelRateLimitError         429 (retryable; honours retry_after)
    ├── ModelOverloadedError        529 / 5xx / connection trouble (retryable)
    ├── ModelContextTooLongError    the prompt does not fit (not retryable)
    ├── ModelBadRequestError        400-class request errors (not retryable)
    ├── ModelAuthError              401/403 (not retryable)
    ├── ModelResponseError          a malformed or unusable response (retryable)
    └── ModelCallAbandonedError     a provider-kept call ended without an answer (started again)
"""

from __future__ import annotations

from duragent.durable.errors import DurableError


class ModelError(DurableError):
    retryable: bool = False

    def __init__(self, message: str, *, status_code: int | None = None, retry_after: float | None = None,
                 provider: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after
        self.provider = provider


class ModelConfigurationError(ModelError):
    pass


class ModelRateLimitError(ModelError):
    retryable = True


class ModelOverloadedError(ModelError):
    retryable = True


class ModelContextTooLongError(ModelError):
    pass


class ModelBadRequestError(ModelError):
    pass


class ModelAuthError(ModelError):
    pass


class ModelResponseError(ModelError):
    retryable = True


class ModelCallAbandonedError(ModelError):
    """A provider-kept call (a background response) ended without an answer: failed, cancelled,
    or waited on too long and cancelled. The agent starts the call again."""
