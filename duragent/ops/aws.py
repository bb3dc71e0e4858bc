"""The operator API over AWS Lambda durable executions, through boto3's ``lambda`` client
(``duragent.durable.aws.remote``). The endpoint, region and credentials come from boto3's standard
configuration (``AWS_ENDPOINT_URL_LAMBDA``, ``AWS_REGION``, profiles) unless given.

Lambda lists executions per function, so listing and finding a callback by its id need
``function``. Reviews are found the way the local store finds them: the submitter step of the
``wait_for_callback`` records what was asked, and the execution's history holds that record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from duragent.agents.review import review_request
from duragent.durable import display_name
from duragent.durable.aws import remote
from duragent.durable.errors import CallbackNotFoundError, DurableError, UsageError
from duragent.durable.model import ErrorObject, Operation, OperationStatus, OperationType

from . import values
from .base import Operator
from .types import Answered, Execution, ExecutionSummary, Page, PendingCallback

T = TypeVar("T")


class RemoteError(DurableError):
    """AWS refused a request (unknown execution, expired callback, no credentials...)."""


class AwsOperator(Operator):
    """Operate the durable executions of a Lambda ``function`` (name or ARN)."""

    backend = "aws"

    def __init__(self, *, function: str | None = None, client: Any = None, endpoint_url: str | None = None,
                 region: str | None = None) -> None:
        self.function = values.short_text(function, "--function", limit=256) if function else None
        self._client = client
        self._settings = {key: value for key, value in (("endpoint_url", endpoint_url), ("region_name", region))
                          if value}

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("lambda", **self._settings)
        return self._client

    # -- reading -----------------------------------------------------------------------------
    def list_executions(self, *, status: str | None = None, limit: int | str = 100,
                        cursor: str | None = None) -> Page[ExecutionSummary]:
        function = self._function("list")
        limit = values.page_limit(limit)
        status = values.execution_status(status)
        if cursor is not None:
            values.short_text(cursor, "cursor", limit=4096)
        rows, marker = _call("list executions", lambda: remote.list_executions_page(
            function, statuses=[status] if status else None, limit=limit, marker=cursor, client=self.client))
        items = [ExecutionSummary(id=r["DurableExecutionArn"], name=r.get("DurableExecutionName"),
                                  function=function, status=r.get("Status") or "", started_at=r.get("StartTimestamp"),
                                  ended_at=r.get("EndTimestamp")) for r in rows]
        # Lambda's listing has no count: the total is known only when this page is the whole listing
        return Page(items, len(items) if cursor is None and marker is None else None, cursor, marker)

    def get(self, execution_id: str) -> Execution:
        arn = self.arn(execution_id)
        found = _call("get execution", lambda: remote.get_execution(arn, client=self.client))
        return Execution(id=arn, name=found.get("DurableExecutionName"), function=found.get("FunctionArn"),
                         status=found.get("Status") or "", result=_decode(found.get("Result")),
                         error=found.get("Error"), input=_decode(found.get("InputPayload")),
                         started_at=found.get("StartTimestamp"), ended_at=found.get("EndTimestamp"))

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        arn = self.arn(execution_id)
        return _call("get history", lambda: remote.get_history(arn, client=self.client))

    def pending(self, *, limit: int | str = 100, cursor: str | None = None,
                execution_id: str | None = None) -> Page[PendingCallback]:
        limit = values.page_limit(limit)
        offset = values.page_offset(0 if cursor is None else cursor, "cursor")
        arns = [self.arn(execution_id)] if execution_id is not None else self._running()
        items: list[PendingCallback] = []
        for arn in arns:
            items.extend(self._pending_of(arn))
        page = items[offset:offset + limit]
        end = offset + len(page)
        return Page(page, len(items), str(offset) if offset else None, str(end) if end < len(items) else None)

    def pending_callback(self, callback_id: str) -> PendingCallback:
        values.callback_id(callback_id)
        self._function("find a callback by its id (to read what it asks)")
        for arn in self._running():
            for item in self._pending_of(arn):
                if item.callback_id == callback_id:
                    return item
        raise CallbackNotFoundError(f"no callback {callback_id[:24]}… awaits an answer in the running executions "
                                    f"of {self.function}; `duragent list --pending --aws --function "
                                    f"{self.function}` shows the open ones")

    # -- answering ---------------------------------------------------------------------------
    def succeed_callback(self, callback_id: str, result: str | None) -> Answered:
        if self.function is None:  # nothing to look the callback up in: send it as it is
            if result is not None:
                values.parse_json(result, "--result", "'{\"approved\": true}'")
            values.callback_id(callback_id)
            self.send_callback_success(callback_id, result)
            return Answered("succeed", callback_id, "", None if result is None else json.loads(result))
        return super().succeed_callback(callback_id, result)

    def stop(self, execution_id: str) -> Execution:
        arn = self.arn(execution_id)
        _call("stop execution", lambda: remote.stop_execution(arn, client=self.client))
        return self.get(arn)

    def send_callback_success(self, callback_id: str, result: str | None) -> str:
        values.callback_id(callback_id)
        _call("send callback success", lambda: remote.send_callback_success(callback_id, result, client=self.client))
        return ""

    def send_callback_failure(self, callback_id: str, error: ErrorObject) -> str:
        values.callback_id(callback_id)
        _call("send callback failure", lambda: remote.send_callback_failure(callback_id, error, client=self.client))
        return ""

    def send_callback_heartbeat(self, callback_id: str) -> str:
        values.callback_id(callback_id)
        _call("send callback heartbeat", lambda: remote.send_callback_heartbeat(callback_id, client=self.client))
        return ""

    # -- internals ------------------------------------------------------------------------------
    def arn(self, ident: str) -> str:
        """The execution ARN: ``ident`` itself, or with ``function`` the execution of that name."""
        values.short_text(ident, "execution", limit=2048)
        if ":" in ident or "/" in ident or self.function is None:
            return ident
        function = self.function
        found, _ = _call("list executions", lambda: remote.list_executions_page(
            function, name=ident, limit=1, client=self.client))
        if not found:
            raise UsageError(f"function {function} has no execution named {ident!r}; "
                             f"`duragent list --aws --function {function}` shows them")
        return str(found[0]["DurableExecutionArn"])

    def _function(self, what: str) -> str:
        if self.function is None:
            raise UsageError(f"--aws needs --function NAME to {what}: Lambda lists executions per function")
        return self.function

    def _running(self) -> list[str]:
        function = self._function("list what waits for an answer")
        arns: list[str] = []
        marker: str | None = None
        while True:
            after = marker
            rows, marker = _call("list executions", lambda: remote.list_executions_page(
                function, statuses=["RUNNING"], limit=values.MAX_PAGE, marker=after, client=self.client))  # noqa: B023
            arns.extend(str(r["DurableExecutionArn"]) for r in rows)
            if not marker:
                return list(reversed(arns))  # oldest first, as locally

    def _pending_of(self, arn: str) -> list[PendingCallback]:
        events = _call("get history", lambda: remote.get_history(arn, client=self.client))
        started = next((e for e in events if e.get("EventType") == "ExecutionStarted"), {})
        ops = _operations(events)
        items = []
        for callback in remote.pending_callbacks(arn, events=events):
            op = ops.get(callback["Id"])
            if op is None:
                continue
            record = _submitter_record(callback.get("ParentId"), events)
            request = review_request(record)
            items.append(PendingCallback(callback_id=callback["CallbackId"], execution_id=arn,
                                         execution_name=started.get("Name"), function=self.function,
                                         name=display_name(op, ops), started_at=op.StartTimestamp, request=request,
                                         asked=record if request is None else None))
        return items


def _call(what: str, fn: Callable[[], T]) -> T:
    """Run one AWS call; its refusals become one-line errors (the original stays the cause)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn()
    except ClientError as exc:
        info = exc.response.get("Error", {})
        hint = {"ResourceNotFoundException": "`duragent list --aws --function NAME` shows the executions",
                "CallbackTimeoutException": "the callback timed out or was already answered; "
                                            "`duragent list --aws --function NAME --pending` shows open ones"}
        message = f"{what}: {info.get('Code')}: {info.get('Message')}"
        raise RemoteError(f"{message}; {hint.get(str(info.get('Code')), 'see `duragent --help`')}") from exc
    except BotoCoreError as exc:
        raise RemoteError(f"{what}: {exc}; check the AWS region, credentials and endpoint "
                          "(--region, --endpoint-url or AWS_ENDPOINT_URL_LAMBDA)") from exc


def _decode(text: Any) -> Any:
    if not isinstance(text, str) or text == "":
        return None if text == "" else text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _operations(events: list[dict[str, Any]]) -> dict[str, Operation]:
    """Each operation's identity as the history's first event of it tells (enough to name it)."""
    ops: dict[str, Operation] = {}
    for event in events:
        op_id = event.get("Id")
        kind = str(event.get("EventType") or "")
        if not op_id or op_id in ops or kind.startswith(("Execution", "Invocation")):
            continue
        type_ = next((t for t in (OperationType.CALLBACK, OperationType.STEP, OperationType.WAIT,
                                  OperationType.CHAINED_INVOKE, OperationType.CONTEXT)
                      if kind.upper().startswith(t.value.replace("_", ""))), None)
        if type_ is None:
            continue
        ops[op_id] = Operation(Id=op_id, ParentId=event.get("ParentId"), Name=event.get("Name"), Type=type_,
                               SubType=event.get("SubType"), Status=OperationStatus.STARTED,
                               StartTimestamp=event.get("EventTimestamp"))
    return ops


def _submitter_record(context_id: str | None, events: list[dict[str, Any]]) -> Any:
    """What the submitter step of the wait_for_callback context ``context_id`` returned."""
    if context_id is None:
        return None
    for event in events:
        if event.get("EventType") == "StepSucceeded" and event.get("ParentId") == context_id:
            return _decode(((event.get("StepSucceededDetails") or {}).get("Result") or {}).get("Payload"))
    return None
