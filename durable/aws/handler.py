"""The Lambda entry point: ``handler = lambda_handler(fn)``.

Lambda invokes the function with the durable invocation event (PROTOCOL.md §1): the execution
ARN, a checkpoint token and the first page of operations. The entry point pages in the rest with
GetDurableExecutionState, runs the same core as the local runtime against boto3's ``lambda``
client, and returns ``{"Status": "SUCCEEDED", "Result": "<json>"}``, ``{"Status": "FAILED",
"Error": {...}}`` or ``{"Status": "PENDING"}``. A retryable infrastructure failure (a stale token,
throttling, a 5xx) is raised instead: that is a Lambda function error, and Lambda retries the
invocation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..backend import InvocationInput
from ..errors import CheckpointError
from ..execution import Handler, run_invocation
from ..model import InvocationOutput, InvocationStatus
from ..operations._common import error_object
from ..plugins import Hooks, Plugin
from ..serdes import PayloadStore
from .client import LambdaCheckpointClient
from .offload import S3PayloadStore

log = logging.getLogger("duragent.durable.aws")

LambdaEntryPoint = Callable[[Any, Any], dict[str, Any]]


def lambda_handler(fn: Handler, *, client: Any = None, plugins: list[Plugin] | None = None,
                   offload_bucket: str | None = None, payload_store: PayloadStore | None = None,
                   s3_client: Any = None) -> LambdaEntryPoint:
    """Wrap the durable function ``fn(event, ctx)`` as a Lambda handler ``handler(event, context)``.

    Args:
        fn: the durable function (plain or ``@durable_function``; its plugins are used too).
        client: a boto3 ``lambda`` client (default: built on first use from boto3's standard
            configuration, so ``AWS_ENDPOINT_URL_LAMBDA`` is honoured).
        plugins: more ``durable.plugins.Plugin`` observers.
        offload_bucket: S3 bucket for step results over the 1 MiB checkpoint limit (default
            ``$DURAGENT_S3_BUCKET``; without one such a step fails with an error saying so).
        payload_store: a custom ``PayloadStore`` instead of S3.
        s3_client: the boto3 ``s3`` client for offloading (default: standard configuration).
    """
    all_plugins = [*getattr(fn, "plugins", []), *(plugins or [])]
    shared = LambdaCheckpointClient(client)  # one boto3 client per process, built on first use

    def handler(event: Any, context: Any = None) -> dict[str, Any]:
        store = payload_store or S3PayloadStore.from_env(offload_bucket, s3_client=s3_client)
        event, in_process = _event_dict(event)
        service = LambdaCheckpointClient(in_process or shared.client, payload_store=store)
        output = invoke(fn, event, service, hooks=Hooks(all_plugins) if all_plugins else None)
        return output.to_wire()

    handler.__name__ = getattr(fn, "__name__", "handler")
    handler.__doc__ = getattr(fn, "__doc__", None)
    handler.__wrapped__ = fn  # type: ignore[attr-defined]
    return handler


def invoke(fn: Handler, event: dict[str, Any], service: LambdaCheckpointClient, *,
           hooks: Hooks | None = None) -> InvocationOutput:
    """One invocation: decode the event, run the core, answer in the protocol's terms."""
    invocation = InvocationInput.from_event(event)
    try:
        return run_invocation(fn, invocation, service, now=time.time, hooks=hooks)
    except CheckpointError as exc:
        if exc.retryable:
            log.warning("retryable checkpoint failure for %s: %s; letting Lambda retry", invocation.arn, exc)
            raise
        return InvocationOutput(Status=InvocationStatus.FAILED, Error=error_object(exc))


def _event_dict(event: Any) -> tuple[dict[str, Any], Any]:
    """The JSON event, and (for the emulator's in-process runner, which passes an object with
    ``to_json_dict()`` and its own in-memory ``service_client``) the client that goes with it."""
    if isinstance(event, dict):
        return event, None
    to_json = getattr(event, "to_json_dict", None)
    if to_json is None:
        raise TypeError(f"not a durable invocation event: {type(event).__name__}")
    service_client = getattr(event, "service_client", None)
    return dict(to_json()), InMemoryClientFacade(service_client) if service_client is not None else None


class InMemoryClientFacade:
    """boto3-shaped ``checkpoint_durable_execution`` / ``get_durable_execution_state`` over the
    emulator's in-process ``InMemoryServiceClient`` (AWS's SDK testing package)."""

    def __init__(self, service_client: Any) -> None:
        self._service = service_client

    def checkpoint_durable_execution(self, *, DurableExecutionArn: str, CheckpointToken: str,  # noqa: N803
                                     Updates: list[dict[str, Any]], ClientToken: str | None = None) -> dict[str, Any]:
        from aws_durable_execution_sdk_python.lambda_service import OperationUpdate

        output = self._guard("CheckpointDurableExecution", lambda: self._service.checkpoint(
            DurableExecutionArn, CheckpointToken, [OperationUpdate.from_dict(u) for u in Updates], ClientToken))
        state = output.new_execution_state
        return {"CheckpointToken": output.checkpoint_token,
                "NewExecutionState": {"Operations": [op.to_dict() for op in state.operations],
                                      "NextMarker": state.next_marker}}

    def get_durable_execution_state(self, *, DurableExecutionArn: str, CheckpointToken: str,  # noqa: N803
                                    Marker: str = "", MaxItems: int = 1000) -> dict[str, Any]:
        output = self._guard("GetDurableExecutionState", lambda: self._service.get_execution_state(
            DurableExecutionArn, CheckpointToken, Marker, MaxItems))
        return {"Operations": [op.to_dict() for op in output.operations], "NextMarker": output.next_marker}

    @staticmethod
    def _guard(operation: str, call: Callable[[], Any]) -> Any:
        from botocore.exceptions import ClientError

        try:
            return call()
        except Exception as exc:  # the emulator's own exception types, as botocore would report them
            status = int(getattr(exc, "http_status_code", 0) or getattr(exc, "status_code", 0) or 400)
            raise ClientError({"Error": {"Code": type(exc).__name__, "Message": str(exc)},
                               "ResponseMetadata": {"HTTPStatusCode": status}}, operation) from exc
