"""The status/code tables that turn provider errors into our categories (the wire-level checks
through the real SDKs are in tests/integration/test_model_adapters.py)."""

from __future__ import annotations

import email.utils
import time

import pytest

from duragent.agents.errors import (
    ModelAuthError,
    ModelBadRequestError,
    ModelContextTooLongError,
    ModelError,
    ModelOverloadedError,
    ModelRateLimitError,
    ModelResponseError,
)
from duragent.agents.models._errors import classify_status, parse_retry_after, translate_botocore_error
from duragent.agents.models._util import parse_arguments


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Retry-After": "7"}, 7.0),
    ({"retry-after": "2.5"}, 2.5),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
    ({"retry-after": "soon"}, None),
    ({}, None),
    (None, None),
])
def test_parse_retry_after(headers: dict[str, str] | None, expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_future_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after({"retry-after": when}) or 0) <= 30


@pytest.mark.parametrize(("status", "message", "expected"), [
    (429, "slow", ModelRateLimitError),
    (529, "overloaded", ModelOverloadedError),
    (500, "oops", ModelOverloadedError),
    (502, "bad gateway", ModelOverloadedError),
    (408, "timeout", ModelOverloadedError),
    (400, "prompt is too long: 300000 tokens > 200000 maximum", ModelContextTooLongError),
    (400, "This model's maximum context length is 128000 tokens", ModelContextTooLongError),
    (413, "request too large", ModelContextTooLongError),
    (400, "messages: field required", ModelBadRequestError),
    (404, "model not found", ModelBadRequestError),
    (422, "unprocessable", ModelBadRequestError),
    (401, "bad key", ModelAuthError),
    (403, "forbidden", ModelAuthError),
])
def test_classify_status(status: int, message: str, expected: type[ModelError]) -> None:
    error = classify_status(status, message, provider="p")
    assert type(error) is expected
    assert error.status_code == status and error.provider == "p"


def client_error(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}}}, "Converse")


@pytest.mark.parametrize(("code", "message", "status", "expected"), [
    ("ThrottlingException", "slow", 429, ModelRateLimitError),
    ("throttlingException", "slow (inside a stream)", 200, ModelRateLimitError),
    ("ServiceUnavailableException", "busy", 503, ModelOverloadedError),
    ("InternalServerException", "oops", 500, ModelOverloadedError),
    ("ModelNotReadyException", "warming", 429, ModelOverloadedError),
    ("ModelTimeoutException", "slow model", 408, ModelOverloadedError),
    ("ValidationException", "Input is too long for requested model.", 400, ModelContextTooLongError),
    ("ValidationException", "messages.0: bad", 400, ModelBadRequestError),
    ("AccessDeniedException", "no", 403, ModelAuthError),
    ("ResourceNotFoundException", "no model", 404, ModelBadRequestError),
    ("SomethingNew", "?", 502, ModelOverloadedError),
    ("SomethingNew", "?", 200, ModelResponseError),
])
def test_translate_botocore_codes(code: str, message: str, status: int, expected: type[ModelError]) -> None:
    assert type(translate_botocore_error(client_error(code, message, status))) is expected


def test_botocore_retry_after_and_non_botocore_errors() -> None:
    error = translate_botocore_error(client_error("ThrottlingException", "slow", 429, {"retry-after": "3"}))
    assert error is not None and error.retry_after == 3.0
    assert translate_botocore_error(RuntimeError("not ours")) is None


@pytest.mark.parametrize(("raw", "expected"), [
    ('{"a": 1}', {"a": 1}), ("", {}), (None, {}), ("{bad", {"_raw": "{bad"}), ("[1]", {"_raw": "[1]"}),
])
def test_parse_arguments(raw: str | None, expected: dict[str, object]) -> None:
    assert parse_arguments(raw) == expected
