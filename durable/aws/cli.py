"""``--aws`` for the ``duragent`` command: the same inspect-and-answer commands, against durable
executions on AWS Lambda (or its emulator) through boto3, so a human review works the same way
locally and on Lambda::

    duragent list --aws --function NAME [--status RUNNING] [--pending] [--json]
    duragent show --aws EXECUTION_ARN [--json]         (or: --function NAME EXECUTION_NAME)
    duragent history --aws EXECUTION_ARN [--json]
    duragent callback succeed|fail|heartbeat --aws CALLBACK_ID [--result JSON]
    duragent approve --aws CALLBACK_ID [--edit JSON]   duragent reject --aws CALLBACK_ID --feedback TEXT
    duragent stop --aws EXECUTION_ARN

The endpoint, region and credentials come from boto3's standard configuration
(``AWS_ENDPOINT_URL_LAMBDA``, ``AWS_REGION``, profiles), or ``--endpoint-url`` / ``--region``.
``durable.cli`` calls ``extend_parser`` on its parser and ``handler_for`` on the parsed args.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import DurableError, UsageError
from ..model import ErrorObject
from . import remote

EXIT_OK = 0
COMMANDS = ("list", "show", "history", "callback", "approve", "reject", "stop")


class RemoteError(DurableError):
    """AWS refused a request (unknown execution, expired callback, no credentials...)."""


def extend_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``--aws``, ``--function``, ``--endpoint-url`` and ``--region`` to the commands that
    can work on Lambda."""
    for name, sub in _subcommands(parser).items():
        if name not in COMMANDS:
            continue
        targets = list(_subcommands(sub).values()) or [sub]  # callback succeed|fail|heartbeat
        for target in targets:
            group = target.add_argument_group("AWS Lambda (instead of the local store)")
            group.add_argument("--aws", action="store_true",
                               help="work on AWS Lambda durable executions through boto3")
            if name in ("list", "show", "history", "stop"):
                group.add_argument("--function", metavar="NAME",
                                   help="the Lambda function (list; or to find an execution by name)")
            group.add_argument("--endpoint-url", metavar="URL",
                               help="Lambda API endpoint (default: boto3's, e.g. $AWS_ENDPOINT_URL_LAMBDA)")
            group.add_argument("--region", help="AWS region (default: boto3's)")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def handler_for(args: argparse.Namespace) -> Callable[[argparse.Namespace], int] | None:
    """The AWS implementation of the parsed command when ``--aws`` was given, else None."""
    if not getattr(args, "aws", False):
        return None
    return {"list": cmd_list, "show": cmd_show, "history": cmd_history, "callback": cmd_callback,
            "approve": cmd_review, "reject": cmd_review, "stop": cmd_stop}[args.command]


def _client(args: argparse.Namespace) -> Any:
    import boto3

    kwargs = {key: value for key, value in (("endpoint_url", args.endpoint_url), ("region_name", args.region))
              if value}
    return boto3.client("lambda", **kwargs)


def _call(what: str, fn: Callable[[], Any]) -> Any:
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


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=False)).rstrip()
                     for line in [headers, *rows])


def _decode(text: Any) -> Any:
    if not isinstance(text, str) or text == "":
        return None if text == "" else text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _arn(args: argparse.Namespace, client: Any) -> str:
    """The execution ARN: ID itself, or with ``--function`` the execution of that name."""
    ident = str(args.id)
    if ":" in ident or "/" in ident or not getattr(args, "function", None):
        return ident
    found = _call("list executions", lambda: remote.list_executions(args.function, name=ident, client=client))
    if not found:
        raise UsageError(f"function {args.function} has no execution named {ident!r}; "
                         f"`duragent list --aws --function {args.function}` shows them")
    return str(found[0]["DurableExecutionArn"])


# -- commands -------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    if not args.function:
        raise UsageError("list --aws needs --function NAME (the Lambda function whose executions to list)")
    client = _client(args)
    statuses = ["RUNNING"] if args.pending else ([args.status] if args.status else None)
    executions = _call("list executions", lambda: remote.list_executions(
        args.function, statuses=statuses, limit=args.limit, client=client))
    if args.pending:
        return _list_pending(args, executions, client)
    rows = [{"id": e["DurableExecutionArn"], "name": e.get("DurableExecutionName"), "function": args.function,
             "status": e.get("Status"), "started_at": e.get("StartTimestamp"), "ended_at": e.get("EndTimestamp")}
            for e in executions]
    if args.json:
        _print_json(rows)
    elif not rows:
        print(f"no executions of {args.function}")
    else:
        print(_table(("EXECUTION ARN", "NAME", "STATUS", "STARTED"),
                     [(r["id"], r["name"] or "", r["status"], _when(r["started_at"])) for r in rows]))
    return EXIT_OK


def _list_pending(args: argparse.Namespace, executions: list[dict[str, Any]], client: Any) -> int:
    items: list[dict[str, Any]] = []
    for execution in executions:
        arn = str(execution["DurableExecutionArn"])
        events: list[dict[str, Any]] = _call("get history", functools.partial(remote.get_history, arn, client=client))
        for callback in remote.pending_callbacks(arn, client=None, events=events):
            request = _review_request(callback, events)
            items.append({"kind": str(request.get("kind", "callback")) if request else "callback",
                          "execution_id": arn, "name": (request or {}).get("title") or callback["ParentName"]
                          or callback["Name"], "callback_id": callback["CallbackId"],
                          "arguments": (request or {}).get("arguments")})
    if args.json:
        _print_json(items)
    elif not items:
        print("nothing is waiting for an answer")
    else:
        print(_table(("EXECUTION ARN", "KIND", "NAME", "CALLBACK ID"),
                     [(i["execution_id"], i["kind"], i["name"] or "", i["callback_id"]) for i in items]))
    return EXIT_OK


def _review_request(callback: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What a human review asks, as its submitter step recorded it (the rule: agents.review.review_request)."""
    if callback.get("ParentId") is None:
        return None
    try:
        from duragent.agents.review import review_request
    except ImportError:
        return None
    for event in events:
        if event.get("EventType") != "StepSucceeded" or event.get("ParentId") != callback["ParentId"]:
            continue
        request = review_request(_decode(((event.get("StepSucceededDetails") or {}).get("Result") or {}).get("Payload")))
        if request is not None:
            return request.model_dump(exclude_none=True)
    return None


def cmd_show(args: argparse.Namespace) -> int:
    client = _client(args)
    arn = _arn(args, client)
    execution = _call("get execution", lambda: remote.get_execution(arn, client=client))
    info = {"id": arn, "name": execution.get("DurableExecutionName"), "function": execution.get("FunctionArn"),
            "status": execution.get("Status"), "result": _decode(execution.get("Result")),
            "error": execution.get("Error"), "input": _decode(execution.get("InputPayload")),
            "started_at": execution.get("StartTimestamp"), "ended_at": execution.get("EndTimestamp")}
    if args.json:
        _print_json(info)
    else:
        for key in ("id", "name", "function", "status"):
            print(f"{key + ':':<10}{info[key]}")
        print(f"{'started:':<10}{_when(info['started_at'])}   ended: {_when(info['ended_at'])}")
        if info["status"] == "SUCCEEDED":
            print(f"{'result:':<10}{json.dumps(info['result'], ensure_ascii=False)}")
        if info["error"]:
            print(f"{'error:':<10}{info['error'].get('ErrorType')}: {info['error'].get('ErrorMessage')}")
        for callback in remote.pending_callbacks(arn, client=client):
            print(f"waiting:  callback {callback['ParentName'] or callback['Name'] or ''} "
                  f"id {callback['CallbackId']}")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    client = _client(args)
    arn = _arn(args, client)
    events = _call("get history", lambda: remote.get_history(arn, client=client))
    if args.json:
        _print_json(events)
        return EXIT_OK
    rows = []
    for event in events:
        details = event.get(f"{event.get('EventType')}Details") or {}
        shown = " ".join(f"{k.lower()}={str((details[k] or {}).get('Payload'))[:50]}" for k in ("Input", "Result", "Error")
                         if isinstance(details.get(k), dict))
        rows.append((str(event.get("EventId")), time.strftime("%H:%M:%S", time.localtime(event.get("EventTimestamp", 0))),
                     str(event.get("EventType")), str(event.get("Name") or "")[:30], shown))
    print(_table(("#", "TIME", "EVENT", "NAME", "DETAILS"), rows))
    return EXIT_OK


def cmd_callback(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.action == "succeed":
        if args.result is not None:
            try:
                json.loads(args.result)
            except json.JSONDecodeError as exc:
                raise UsageError(f"--result is not JSON ({exc}); pass a JSON document such as "
                                 "'{\"approved\": true}'") from None
        _call("send callback success", lambda: remote.send_callback_success(args.callback_id, args.result,
                                                                            client=client))
    elif args.action == "fail":
        error = ErrorObject(ErrorType=args.error_type, ErrorMessage=args.error_message, ErrorData=args.error_data)
        _call("send callback failure", lambda: remote.send_callback_failure(args.callback_id, error, client=client))
    else:
        _call("send callback heartbeat", lambda: remote.send_callback_heartbeat(args.callback_id, client=client))
    done = {"succeed": "succeeded", "fail": "failed", "heartbeat": "heartbeat recorded"}[args.action]
    print(f"callback {done}; Lambda resumes the execution")
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    """``approve`` / ``reject`` on Lambda: the answer shape agents expect."""
    answer: dict[str, Any]
    if args.command == "approve":
        answer = {"approved": True}
        if getattr(args, "edit", None) is not None:
            try:
                edited = json.loads(args.edit)
            except json.JSONDecodeError as exc:
                raise UsageError(f"--edit is not JSON ({exc}); pass the tool's arguments as a JSON object") from None
            if not isinstance(edited, dict):
                raise UsageError("--edit must be a JSON object of the tool's arguments; e.g. '{\"city\": \"Paris\"}'")
            answer["arguments"] = edited
    else:
        answer = {"approved": False, "feedback": args.feedback}
    if getattr(args, "reviewer", None):
        answer["reviewer"] = args.reviewer
    client = _client(args)
    _call("send callback success", lambda: remote.send_callback_success(args.callback_id, json.dumps(answer),
                                                                        client=client))
    print(f"review {'approved' if answer['approved'] else 'rejected'}; Lambda resumes the execution")
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    client = _client(args)
    arn = _arn(args, client)
    _call("stop execution", lambda: remote.stop_execution(arn, client=client))
    print(f"execution {arn} {remote.get_execution(arn, client=client).get('Status')}")
    return EXIT_OK

