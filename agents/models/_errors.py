"""Translate vendor SDK errors into our categories at the boundary (the original stays as
``__cause__``). The agent's retry policy only ever looks at ``agents.errors``; nothing here ever
copies request headers (keys) into a message.

The anthropic and openai SDKs share one generated (Stainless) shape: ``APIStatusError`` with
``status_code``/``response``/``body``, ``APIConnectionError``/``APITimeoutError`` and
``APIResponseValidationError``, so one translator serves both; botocore has its own.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from ..errors import (
    ModelAuthError,
    ModelBadRequestError,
    ModelConfigurationError,
    ModelContextTooLongError,
    ModelError,
    ModelOverloadedError,
    ModelRateLimitError,
    ModelResponseError,
)

CONTEXT_PHRASES = ("prompt is too long", "input is too long", "context length", "context_length",
                   "context window", "maximum context", "too many tokens", "too many input tokens",
                   "input length and `max_tokens` exceed", "exceeds the maximum number of tokens")
"""Phrases providers use for "the prompt does not fit" on a plain 400 (no stable code across vendors)."""

NORMALIZATION_ERRORS = (AttributeError, KeyError, TypeError, ValueError, IndexError)
"""What reading a malformed-but-parsed body raises; the SDKs construct responses without validating."""


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def is_context_message(text: str) -> bool:
    lowered = text.lower()
    return any(phrase in lowered for phrase in CONTEXT_PHRASES)


def classify_status(status: int, message: str, *, provider: str, retry_after: float | None = None,
                    code: str | None = None) -> ModelError:
    """The category for an HTTP status (and, for 400s, the wording of the message)."""
    text = f"{provider}: HTTP {status}: {message}"
    kwargs: dict[str, Any] = {"status_code": status, "provider": provider}
    if status == 429:
        return ModelRateLimitError(text, retry_after=retry_after, **kwargs)
    if status in (408, 529) or status >= 500:
        return ModelOverloadedError(text, retry_after=retry_after, **kwargs)
    if status == 413 or code == "context_length_exceeded" or (status in (400, 422) and is_context_message(message)):
        return ModelContextTooLongError(text, **kwargs)
    if status in (401, 403):
        return ModelAuthError(text, **kwargs)
    if 400 <= status < 500:
        return ModelBadRequestError(text, **kwargs)
    return ModelResponseError(text, **kwargs)


ERROR_TYPES: dict[str, type[ModelError]] = {
    "rate_limit_error": ModelRateLimitError, "rate_limit_exceeded": ModelRateLimitError,
    "overloaded_error": ModelOverloadedError, "api_error": ModelOverloadedError, "server_error": ModelOverloadedError,
    "timeout_error": ModelOverloadedError,
    "authentication_error": ModelAuthError, "permission_error": ModelAuthError,
    "invalid_request_error": ModelBadRequestError, "not_found_error": ModelBadRequestError,
    "request_too_large": ModelContextTooLongError, "context_length_exceeded": ModelContextTooLongError,
}
"""Error ``type``/``code`` names in a body, for errors that arrive inside a 200 stream."""


def _body_error(body: object) -> tuple[str | None, str | None, str | None]:
    """(type, code, message) from ``{"error": {...}}`` or a bare ``{...}`` error object."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            def text(key: str) -> str | None:
                value = inner.get(key)
                return str(value) if value is not None else None
            return text("type"), text("code"), text("message")
        if isinstance(inner, str):
            return None, None, inner
    if isinstance(body, str):
        return None, None, body
    return None, None, None


def _classify_body(body: object, fallback: str, *, provider: str) -> ModelError:
    kind, code, message = _body_error(body)
    message = message or fallback
    text = f"{provider}: {message}"
    if (kind and "context" in kind) or code == "context_length_exceeded" or is_context_message(message):
        return ModelContextTooLongError(text, provider=provider)
    for key in (code, kind):
        if key and key in ERROR_TYPES:
            return ERROR_TYPES[key](text, provider=provider)
    return ModelResponseError(text, provider=provider)


def translate_http_sdk_error(sdk: ModuleType, exc: BaseException, *, provider: str) -> ModelError | None:
    """Our error for an anthropic/openai SDK exception (``sdk`` is the imported SDK module), or None
    when ``exc`` is not the SDK's (then it is ours or a bug, and must propagate untouched)."""
    if isinstance(exc, sdk.APIResponseValidationError):
        return ModelResponseError(f"{provider}: the response did not match the API schema: {exc.message}",
                                  status_code=exc.status_code, provider=provider)
    if isinstance(exc, sdk.APIStatusError):
        headers = exc.response.headers if exc.response is not None else None
        retry_after = parse_retry_after(headers)
        kind, code, message = _body_error(exc.body)
        if 200 <= exc.status_code < 300:  # an error event inside a streamed 200 response
            return _classify_body(exc.body, exc.message, provider=provider)
        return classify_status(exc.status_code, message or exc.message, provider=provider,
                               retry_after=retry_after, code=code)
    if isinstance(exc, sdk.APIConnectionError):  # includes APITimeoutError
        return ModelOverloadedError(f"{provider}: {exc.message}", provider=provider)
    if isinstance(exc, sdk.APIError):  # e.g. an error chunk in an OpenAI stream (no status)
        return _classify_body(exc.body, exc.message, provider=provider)
    if isinstance(exc, json.JSONDecodeError):
        return ModelResponseError(f"{provider}: the response body is not valid JSON: {exc}", provider=provider)
    if _is_validation_error(exc):
        return ModelResponseError(f"{provider}: the response could not be parsed: {exc}", provider=provider)
    credentials_error = getattr(sdk, "CredentialsError", None)
    if credentials_error is not None and isinstance(exc, credentials_error):
        return ModelConfigurationError(f"{provider}: no usable credentials: {exc}", provider=provider)
    base = getattr(sdk, "AnthropicError", None) or getattr(sdk, "OpenAIError", None)
    if base is not None and isinstance(exc, base):
        return ModelError(f"{provider}: {exc}", provider=provider)
    return None


@contextlib.contextmanager
def translated_sdk_errors(sdk: ModuleType, *, provider: str) -> Iterator[None]:
    """Around one anthropic/openai call (sync or async): SDK exceptions leave as our categories,
    with the original as ``__cause__``; ours and everything else (a callback's own error) pass."""
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:
        translated = translate_http_sdk_error(sdk, exc, provider=provider)
        if translated is None:
            raise
        raise translated from exc


def _is_validation_error(exc: BaseException) -> bool:
    try:
        import pydantic
    except ImportError:  # pragma: no cover - pydantic is a core dependency
        return False
    return isinstance(exc, pydantic.ValidationError)


BOTO_CODES: dict[str, type[ModelError]] = {
    "throttlingexception": ModelRateLimitError,
    "toomanyrequestsexception": ModelRateLimitError,
    "servicequotaexceededexception": ModelRateLimitError,
    "serviceunavailableexception": ModelOverloadedError,
    "serviceunavailable": ModelOverloadedError,
    "internalserverexception": ModelOverloadedError,
    "internalfailure": ModelOverloadedError,
    "modelnotreadyexception": ModelOverloadedError,
    "modeltimeoutexception": ModelOverloadedError,
    "modelstreamerrorexception": ModelOverloadedError,
    "modelerrorexception": ModelOverloadedError,
    "accessdeniedexception": ModelAuthError,
    "unrecognizedclientexception": ModelAuthError,
    "invalidsignatureexception": ModelAuthError,
    "expiredtokenexception": ModelAuthError,
    "resourcenotfoundexception": ModelBadRequestError,
}
"""botocore error codes, compared lower-cased (stream exception events use camelCase member names)."""


def translate_botocore_error(exc: BaseException, *, provider: str = "bedrock") -> ModelError | None:
    """Our error for a botocore exception, or None when ``exc`` is not botocore's."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):  # includes EventStreamError (exceptions inside a stream)
        response: dict[str, Any] = getattr(exc, "response", {}) or {}
        error = response.get("Error", {}) or {}
        meta = response.get("ResponseMetadata", {}) or {}
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or exc)
        status = meta.get("HTTPStatusCode")
        retry_after = parse_retry_after(meta.get("HTTPHeaders"))
        text = f"{provider}: {code or 'error'}: {message}"
        kwargs: dict[str, Any] = {"status_code": status, "provider": provider}
        lowered = code.lower()
        if lowered == "validationexception":
            if is_context_message(message):
                return ModelContextTooLongError(text, **kwargs)
            return ModelBadRequestError(text, **kwargs)
        if lowered in BOTO_CODES:
            cls = BOTO_CODES[lowered]
            if cls in (ModelRateLimitError, ModelOverloadedError):
                return cls(text, retry_after=retry_after, **kwargs)
            return cls(text, **kwargs)
        if isinstance(status, int) and status >= 400:
            return classify_status(status, message, provider=provider, retry_after=retry_after, code=code)
        return ModelResponseError(text, **kwargs)
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return ModelConfigurationError(f"{provider}: no AWS credentials found ({exc}); set AWS_PROFILE or "
                                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", provider=provider)
    if isinstance(exc, bx.NoRegionError):
        return ModelConfigurationError(f"{provider}: no AWS region; set AWS_DEFAULT_REGION (or a profile's region) or pass region=",
                                       provider=provider)
    if isinstance(exc, bx.ParamValidationError):
        return ModelBadRequestError(f"{provider}: {exc}", provider=provider)
    if isinstance(exc, (bx.HTTPClientError, bx.ConnectionError)):  # connect/read timeouts, refused, closed
        return ModelOverloadedError(f"{provider}: {exc}", provider=provider)
    from botocore.eventstream import ParserError as EventStreamParserError
    from botocore.parsers import ResponseParserError

    if isinstance(exc, (ResponseParserError, EventStreamParserError)):
        return ModelResponseError(f"{provider}: the response could not be parsed: {exc}", provider=provider)
    if isinstance(exc, bx.BotoCoreError):
        return ModelError(f"{provider}: {exc}", provider=provider)
    return None
