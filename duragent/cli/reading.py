"""``list``, ``show`` and ``history``: what is in the store (or on AWS), for people or as JSON."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from duragent.agents.review import pause_hint
from duragent.durable.model import ExecutionStatus, Operation, OperationStatus, OperationType
from duragent.durable.tree import display_name, operation_tree
from duragent.ops import Page, PendingCallback, cost_split, invocations

from .common import EXIT_OK, command, error_text, indent, operator, print_json, short, span, table, when


# -- list ---------------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    """Executions (newest first), or with ``--pending`` what waits for an answer; a page at a time."""
    with operator(args) as ops:
        if args.pending:
            pending = ops.pending(limit=args.limit, cursor=args.cursor)
            _print_pending(args, pending)
        else:
            listing = ops.list_executions(status=args.status, limit=args.limit, cursor=args.cursor)
            _print_executions(args, listing)
    return EXIT_OK


def _print_executions(args: argparse.Namespace, page: Page[Any]) -> None:
    if args.json:
        print_json(page.to_dict("executions"))
        return
    if not page.items:
        print("no executions" + (f" with status {args.status.upper()}" if args.status else "") +
              (" on this page" if page.cursor else ""))
    else:
        rows = [(x.id, x.name if x.name != x.id else "", x.function or "", x.status, when(x.started_at),
                 when(x.ended_at)) for x in page.items]
        print(table(("ID", "NAME", "FUNCTION", "STATUS", "STARTED", "ENDED"), rows))
    _print_more(args, page, "execution")


def _print_pending(args: argparse.Namespace, page: Page[PendingCallback]) -> None:
    if args.json:
        print_json(page.to_dict("pending", lambda item: {**item.to_dict(), "hint": _hint(args, item)}))
        return
    if not page.items:
        print("nothing is waiting for an answer" + (" on this page" if page.cursor else ""))
    now = time.time()
    for item in page.items:
        age = span(now - item.started_at) if item.started_at else ""
        print(f"{item.kind}  {short(item.title, 70)}  (execution {item.execution_id}"
              f"{', waiting ' + age if age else ''})")
        if item.request is not None and item.request.arguments:
            print(f"    arguments: {short(json.dumps(item.request.arguments, ensure_ascii=False), 100)}")
        print(indent(_hint(args, item)))
    _print_more(args, page, "callback")


def _print_more(args: argparse.Namespace, page: Page[Any], noun: str) -> None:
    """Say how much of the listing this page is, and how to get the next page: never a silent cap."""
    if not page.items:
        return
    last = page.first + len(page.items) - 1
    of = f" of {page.total}" if page.total is not None else ""
    if page.next_cursor is None and page.first == 1:
        if page.total is not None and page.total > 1:
            print(f"{page.total} {noun}s")
        return
    rest = " ".join(part for part in ("list", "--pending" if args.pending else "",
                                      f"--status {args.status}" if getattr(args, "status", None) else "",
                                      f"--limit {args.limit}" if str(args.limit) != "100" else "",
                                      f"--cursor {page.next_cursor}") if part)
    more = f"; next page: {command(args, rest)}" if page.next_cursor else ""
    print(f"showing {noun}s {page.first}-{last}{of}{more}")


def _hint(args: argparse.Namespace, item: PendingCallback) -> str:
    return pause_hint(item.request, item.callback_id, lambda rest: command(args, rest))


# -- show -----------------------------------------------------------------------------------------
def cmd_show(args: argparse.Namespace) -> int:
    """One execution: header, what it waits for, the operation tree, invocations and cost."""
    with operator(args) as ops:
        info = ops.get(args.id)
        execution_id = info.id
        journal = ops.operations(execution_id)
        history = ops.history(execution_id) if journal is not None else []
        pending = ops.pending(execution_id=execution_id, limit=1000) \
            if info.status == ExecutionStatus.RUNNING.value else None
    runs = invocations(history, journal) if journal is not None else []
    cost = cost_split(journal, runs) if journal is not None else None
    if args.json:
        data: dict[str, Any] = info.to_dict()
        if journal is not None:
            data["operations"] = [op.to_wire() for op in journal]
            data["invocation_log"] = [run.to_dict() for run in runs]
        if cost is not None:
            data["ledger"] = cost.to_dict()
        if pending is not None:
            data["pending"] = [{**item.to_dict(), "hint": _hint(args, item)} for item in pending.items]
        print_json(data)
        return EXIT_OK
    header = [("id", info.id), ("name", info.name if info.name != info.id else None), ("function", info.function),
              ("status", info.status), ("started", when(info.started_at)), ("ended", when(info.ended_at)),
              ("invocations", _invocations_text(info.invocations, runs)),
              ("input", short(json.dumps(info.input, ensure_ascii=False), 200))]
    if info.status == ExecutionStatus.SUCCEEDED.value:
        header.append(("result", short(json.dumps(info.result, ensure_ascii=False), 200)))
    if info.error:
        header.append(("error", error_text(info.error)))
    if info.stalled:
        header.append(("cannot run", f"{short(info.stalled['reason'], 300)} (attempt {info.stalled['attempts']}; "
                                     f"next try {when(info.stalled['retry_at'])})"))
    for key, value in header:
        if value is not None:
            print(f"{key + ':':<13}{value}")
    waiting = waiting_lines(args, journal or [], pending.items if pending else [])
    if waiting:
        print("\nwaiting for:")
        print("\n".join(waiting))
    if journal is not None:
        rows = [_op_row(op, depth) for depth, op in operation_tree(journal)]
        print()
        print(table(("OPERATION", "NAME", "STATUS", "ATTEMPT", "TOOK", ""), rows) if rows else "no operations yet")
    if cost is not None:
        print()
        print(cost.format())
    return EXIT_OK


def _invocations_text(count: int | None, runs: list[Any]) -> str | None:
    if count is None:
        return None
    crashed = sum(1 for run in runs if run.crashed)
    return f"{count}" + (f" ({crashed} ended without reporting back: a crash or a kill)" if crashed else "")


def _op_row(op: Operation, depth: int) -> tuple[str, ...]:
    kind = op.Type.value + (f"/{op.SubType}" if op.SubType and op.SubType.upper() != op.Type.value else "")
    attempt = f"attempt {op.StepDetails.Attempt}" if op.StepDetails and op.StepDetails.Attempt else ""
    took = span(op.EndTimestamp - op.StartTimestamp) if op.EndTimestamp and op.StartTimestamp else ""
    note = ""
    if op.Status == OperationStatus.STARTED and op.WaitDetails:
        note = f"until {when(op.WaitDetails.ScheduledEndTimestamp)}"
    elif op.Status == OperationStatus.STARTED and op.CallbackDetails:
        note = f"callback id {op.CallbackDetails.CallbackId}"
    else:
        details = op.StepDetails or op.ContextDetails or op.CallbackDetails or op.ChainedInvokeDetails
        error = getattr(details, "Error", None) if details is not None else None
        if error is not None and op.Status != OperationStatus.SUCCEEDED:
            note = short(error_text(error.to_wire()))
    return ("  " * depth + kind, op.Name or "-", op.Status.value, attempt, took, note)


def waiting_lines(args: argparse.Namespace, ops: list[Operation], pending: list[PendingCallback]) -> list[str]:
    """What a suspended execution waits for: timers and retries, with when, and each callback
    with the command that answers it."""
    by_id = {op.Id: op for op in ops}
    now = time.time()
    lines: list[str] = []
    for op in ops:
        name = display_name(op, by_id) or "-"
        if op.Type == OperationType.WAIT and op.Status == OperationStatus.STARTED and op.WaitDetails:
            due = op.WaitDetails.ScheduledEndTimestamp
            lines.append(f"  wait {name!r} until {when(due)} (in {span((due or now) - now)})")
        elif op.Type == OperationType.STEP and op.Status in (OperationStatus.PENDING, OperationStatus.READY):
            details = op.StepDetails
            due = details.NextAttemptTimestamp if details else None
            attempt = details.Attempt if details else 0
            lines.append(f"  retry of step {name!r} (attempt {attempt}) at {when(due)} (in {span((due or now) - now)})")
        elif op.Type == OperationType.CHAINED_INVOKE and op.Status == OperationStatus.STARTED:
            lines.append(f"  invoke {name!r} to finish")
    for item in pending:
        what = {"tool_approval": "a review of a tool call", "budget": "a budget review",
                "question": "an answer to a question"}.get(item.kind, "a callback")
        lines.append(f"  {what}: {short(item.title, 80)!r} (callback id {item.callback_id})")
        if item.request is not None and item.request.arguments:
            lines.append(f"    arguments: {short(json.dumps(item.request.arguments, ensure_ascii=False), 100)}")
        lines.append(indent(_hint(args, item)))
    return lines


# -- history --------------------------------------------------------------------------------------
def _event_details(event: dict[str, Any]) -> str:
    """The few fields of an event's details that tell the story, shortened."""
    details = event.get(f"{event.get('EventType')}Details") or {}
    parts: list[str] = []
    for key in ("Input", "Result"):
        if isinstance(details.get(key), dict):
            parts.append(f"{key.lower()}={short(details[key].get('Payload'), 50)}")
    if isinstance(details.get("Error"), dict):
        parts.append(f"error={short(error_text(details['Error'].get('Payload')), 60)}")
    if "Duration" in details:
        parts.append(f"duration={details['Duration']}s")
    if "CallbackId" in details:
        parts.append(f"callback id={short(details['CallbackId'], 24)}")
    if isinstance(details.get("RetryDetails"), dict):
        parts.append(f"attempt={details['RetryDetails'].get('CurrentAttempt')}")
    if isinstance(details.get("StartTimestamp"), (int, float)) and isinstance(details.get("EndTimestamp"), (int, float)):
        parts.append(f"took={span(details['EndTimestamp'] - details['StartTimestamp'])}")
    return " ".join(parts)


def cmd_history(args: argparse.Namespace) -> int:
    """The execution's events, in the AWS GetDurableExecutionHistory shape with ``--json``."""
    with operator(args) as ops:
        events = ops.history(args.id)
    if args.json:
        print_json(events)
        return EXIT_OK
    rows = [(str(e.get("EventId")), _clock(e.get("EventTimestamp")), str(e.get("EventType")),
             short(e.get("Name") or "", 30), _event_details(e)) for e in events]
    print(table(("#", "TIME", "EVENT", "NAME", "DETAILS"), rows))
    return EXIT_OK


def _clock(ts: Any) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if isinstance(ts, (int, float)) else "-"

