"""The checkpoint client for AWS Lambda durable functions: ``DurableService`` over boto3's
``lambda`` client (``CheckpointDurableExecution``, ``GetDurableExecutionState``).

The endpoint, region and credentials come from boto3's standard configuration, so
``AWS_ENDPOINT_URL_LAMBDA`` points it at an emulator. Errors are translated at this boundary
(PROTOCOL.md §1): a stale token is ``InvalidCheckpointTokenError``; throttling, 5xx and
connection failures are retried here a few times with the same ``ClientToken`` (the service
replays the cached answer) and then raised as a retryable ``CheckpointError``, which the
Lambda entry point lets escape so Lambda retries the invocation; any other refusal is a
non-retryable ``CheckpointError`` and the invocation reports FAILED.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..backend import CheckpointResponse, StateResponse
from ..errors import CheckpointError, InvalidCheckpointTokenError, RetryableCheckpointError, UsageError
from ..model import Operation, OperationUpdate
from ..serdes import PayloadStore

log = logging.getLogger("duragent.durable.aws")

STATE_PAGE_SIZE = 1000
"""MaxItems for GetDurableExecutionState (the API's maximum)."""

RETRY_DELAYS = (0.2, 0.5, 1.0)
"""Backoff (seconds) between in-client attempts of a throttled or failed call."""

_THROTTLING = {"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded"}
_SERVER = {"ServiceException", "InternalFailure", "ServiceUnavailable", "InternalServerError"}


def default_lambda_client() -> Any:
    """boto3's ``lambda`` client as the SDK builds it: standard configuration (env, profile,
    ``AWS_ENDPOINT_URL_LAMBDA``), short connect timeout. botocore's own retries are off: the
    client retries (RETRY_DELAYS), keeping each batch's ClientToken."""
    import boto3
    from botocore.config import Config

    return boto3.client("lambda", config=Config(connect_timeout=5, read_timeout=50,
                                                retries={"mode": "standard", "max_attempts": 1},
                                                user_agent_extra="duragent"))


class LambdaCheckpointClient:
    """``DurableService`` for executions that live in AWS Lambda (or its emulator).

    ``client`` is a boto3 ``lambda`` client (built from the standard configuration when
    omitted); ``payload_store`` offloads step results over the service's payload limit (see
    ``durable.aws.offload``).
    """

    def __init__(self, client: Any = None, *, payload_store: PayloadStore | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self.payload_store = payload_store
        self._sleep = sleep

    @property
    def client(self) -> Any:
        if self._client is None:
            client = default_lambda_client()
            if not hasattr(client, "checkpoint_durable_execution"):
                raise UsageError("this boto3 has no Lambda durable execution API (CheckpointDurableExecution); "
                                 "bundle a newer one with the function: pip install 'boto3>=1.44'")
            self._client = client
        return self._client

    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        # One ClientToken for every attempt of this batch: a retry after a lost answer is
        # recognised by the service and answered from its cache instead of applied twice.
        request = {"DurableExecutionArn": arn, "CheckpointToken": token, "ClientToken": str(uuid.uuid4()),
                   "Updates": [update.to_wire() for update in updates]}
        response = self._call("checkpoint_durable_execution", request)
        state = response.get("NewExecutionState") or {}
        return CheckpointResponse(token=response.get("CheckpointToken") or None,
                                  operations=_operations(state.get("Operations")),
                                  next_marker=state.get("NextMarker") or None)

    def get_state(self, arn: str, token: str, marker: str | None) -> StateResponse:
        request: dict[str, Any] = {"DurableExecutionArn": arn, "CheckpointToken": token,
                                   "MaxItems": STATE_PAGE_SIZE}
        if marker:
            request["Marker"] = marker
        response = self._call("get_durable_execution_state", request)
        return StateResponse(operations=_operations(response.get("Operations")),
                             next_marker=response.get("NextMarker") or None)

    def _call(self, method: str, request: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                return getattr(self.client, method)(**request)  # type: ignore[no-any-return]
            except ClientError as exc:
                error = translate_client_error(exc, method)
            except BotoCoreError as exc:  # no connection, read timeout: nothing was answered
                error = RetryableCheckpointError(f"{method} failed: {exc}")
                error.__cause__ = exc
            if not error.retryable or isinstance(error, InvalidCheckpointTokenError) or \
                    attempt == len(RETRY_DELAYS):
                raise error
            log.info("%s: %s; retrying in %.1f s", method, error, RETRY_DELAYS[attempt])
            self._sleep(RETRY_DELAYS[attempt])
        raise AssertionError("unreachable")  # pragma: no cover


def translate_client_error(exc: Any, method: str) -> CheckpointError:
    """Our category for a botocore ``ClientError`` (the original stays as ``__cause__``)."""
    info = exc.response.get("Error", {}) if hasattr(exc, "response") else {}
    code = str(info.get("Code") or "")
    message = str(info.get("Message") or exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) \
        if hasattr(exc, "response") else 0
    error: CheckpointError
    if "invalid checkpoint token" in message.lower():
        error = InvalidCheckpointTokenError(f"{method}: {message}")
    elif code.startswith("KMS"):  # a key the function cannot use: retrying will not help (5xx or not)
        error = CheckpointError(f"{method} refused ({code}): {message}")
    elif code in _THROTTLING or code in _SERVER or status == 429 or status >= 500:
        error = RetryableCheckpointError(f"{method} failed ({code or status}): {message}")
    else:
        error = CheckpointError(f"{method} refused ({code or status}): {message}")
    error.__cause__ = exc
    return error


def _operations(items: list[dict[str, Any]] | None) -> list[Operation]:
    return [Operation.model_validate(item) for item in items or []]
