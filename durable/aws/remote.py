"""Operating durable executions on Lambda from outside, through boto3's ``lambda`` client: list a
function's executions, show one, read its history, and answer, fail or heartbeat a callback.

These are what ``duragent ... --aws`` runs, so a human review works the same way locally and on
Lambda. Every function takes an optional ``client`` (a boto3 ``lambda`` client); by default one
is built from boto3's standard configuration (``AWS_ENDPOINT_URL_LAMBDA``, region, profile).
Results are plain dicts in the API's shapes, with timestamps as epoch seconds (floats) so they
print as JSON; ``history`` events have the same keys as ``LocalRuntime.history``.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from ..model import ErrorObject

MAX_PAGE = 1000


def lambda_client() -> Any:
    """boto3's ``lambda`` client from the standard configuration."""
    import boto3

    return boto3.client("lambda")


def _client(client: Any) -> Any:
    return client if client is not None else lambda_client()


def plain(value: Any) -> Any:
    """boto3's answer made JSON-able: datetimes become epoch seconds, blobs text, metadata dropped."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items() if key != "ResponseMetadata"}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, _dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=_dt.UTC)).timestamp()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def list_executions(function: str, *, statuses: list[str] | None = None, name: str | None = None,
                    qualifier: str | None = None, limit: int = 100, client: Any = None) -> list[dict[str, Any]]:
    """The durable executions of ``function`` (name or ARN), newest first: ``DurableExecutionArn``,
    ``DurableExecutionName``, ``FunctionArn``, ``Status``, ``StartTimestamp``, ``EndTimestamp``."""
    lam = _client(client)
    found: list[dict[str, Any]] = []
    marker: str | None = None
    while len(found) < limit:
        page, marker = list_executions_page(function, statuses=statuses, name=name, qualifier=qualifier,
                                            limit=min(MAX_PAGE, limit - len(found)), marker=marker, client=lam)
        found.extend(page)
        if not marker:
            break
    return found[:limit]


def list_executions_page(function: str, *, statuses: list[str] | None = None, name: str | None = None,
                         qualifier: str | None = None, limit: int = 100, marker: str | None = None,
                         client: Any = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``list_executions`` (at most ``limit``, up to 1000) from ``marker``, and the
    marker of the next page (None on the last)."""
    request: dict[str, Any] = {"FunctionName": function, "ReverseOrder": True, "MaxItems": min(MAX_PAGE, limit)}
    if statuses:
        request["Statuses"] = list(statuses)
    if name:
        request["DurableExecutionName"] = name
    if qualifier:
        request["Qualifier"] = qualifier
    if marker:
        request["Marker"] = marker
    page = _client(client).list_durable_executions_by_function(**request)
    return plain(page.get("DurableExecutions") or []), page.get("NextMarker") or None


def get_execution(arn: str, *, include_data: bool = True, client: Any = None) -> dict[str, Any]:
    """``GetDurableExecution``: status, input, result (the JSON text), error, timestamps."""
    return plain(_client(client).get_durable_execution(DurableExecutionArn=arn,  # type: ignore[no-any-return]
                                                        IncludeExecutionData=include_data))


def get_history(arn: str, *, include_data: bool = True, client: Any = None) -> list[dict[str, Any]]:
    """Every history event of the execution, oldest first (all pages)."""
    lam = _client(client)
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {"DurableExecutionArn": arn, "IncludeExecutionData": include_data,
                               "MaxItems": MAX_PAGE}
    while True:
        page = lam.get_durable_execution_history(**request)
        events.extend(plain(page.get("Events") or []))
        marker = page.get("NextMarker")
        if not marker:
            return events
        request["Marker"] = marker


def pending_callbacks(arn: str, *, client: Any = None, events: list[dict[str, Any]] | None = None
                      ) -> list[dict[str, Any]]:
    """Callbacks of the execution still awaiting an answer: ``CallbackId``, ``Name``, ``Id``,
    ``ParentId`` and the ``Name`` of the enclosing operation (a wait_for_callback context).
    ``events``: the execution's history, if already fetched."""
    if events is None:
        events = get_history(arn, client=client)
    names = {e.get("Id"): e.get("Name") for e in events if e.get("Id")}
    started: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = event.get("EventType", "")
        if kind == "CallbackStarted":
            started[event["Id"]] = event
        elif kind.startswith("Callback") and event.get("Id") in started:
            del started[event["Id"]]
    return [{"CallbackId": e["CallbackStartedDetails"]["CallbackId"], "Name": e.get("Name"), "Id": e["Id"],
             "ParentId": e.get("ParentId"), "ParentName": names.get(e.get("ParentId")),
             "DurableExecutionArn": arn} for e in started.values()]


def send_callback_success(callback_id: str, result: str | bytes | Any = None, *, client: Any = None) -> None:
    """Complete a callback. ``result`` is the JSON text the waiting execution receives (stored
    verbatim); anything not ``str``/``bytes`` is JSON-encoded first."""
    request: dict[str, Any] = {"CallbackId": callback_id}
    if isinstance(result, bytes):
        request["Result"] = result
    elif isinstance(result, str):
        request["Result"] = result.encode()
    elif result is not None:
        request["Result"] = json.dumps(result).encode()
    _client(client).send_durable_execution_callback_success(**request)


def send_callback_failure(callback_id: str, error: ErrorObject | dict[str, Any] | str | None = None, *,
                          client: Any = None) -> None:
    """Fail a callback: the waiting execution sees a ``CallbackError`` built from ``error``."""
    if error is None or isinstance(error, str):
        error = ErrorObject(ErrorType="CallbackFailure", ErrorMessage=error or "callback failed")
    elif isinstance(error, dict):
        error = ErrorObject.model_validate(error)
    _client(client).send_durable_execution_callback_failure(CallbackId=callback_id, Error=error.to_wire())


def send_callback_heartbeat(callback_id: str, *, client: Any = None) -> None:
    """Tell a callback with a heartbeat timeout that its worker is still alive."""
    _client(client).send_durable_execution_callback_heartbeat(CallbackId=callback_id)


def stop_execution(arn: str, error: ErrorObject | dict[str, Any] | str | None = None, *,
                   client: Any = None) -> float | None:
    """Stop a running execution; returns the stop time (epoch seconds)."""
    request: dict[str, Any] = {"DurableExecutionArn": arn}
    if isinstance(error, str):
        error = ErrorObject(ErrorType="Stopped", ErrorMessage=error)
    if isinstance(error, dict):
        error = ErrorObject.model_validate(error)
    if error is not None:
        request["Error"] = error.to_wire()
    answer = plain(_client(client).stop_durable_execution(**request))
    return answer.get("StopTimestamp")  # type: ignore[no-any-return]
