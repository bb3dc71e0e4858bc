"""The ``duragent`` command: run, serve, inspect and answer durable executions in a local store.

Every command opens the SQLite store (``--db``, else ``$DURAGENT_DB``, else
``.duragent/duragent.db``), does one thing and exits. Exit codes are a contract: 0 success or
suspended, 1 the execution failed, 2 bad usage or input. Bad input is reported as one line on
stderr (``duragent: error: <what was wrong>; <what would be right>``) and is checked before
anything is written, so a typo never changes the store.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from .aws import cli as aws_cli
from .errors import (
    CallbackNotFoundError,
    DurableError,
    ExecutionNotFoundError,
    HandlerNotFoundError,
    StoreError,
    UsageError,
)
from .local.runtime import DEFAULT_DB, ExecutionInfo, LocalRuntime
from .model import ErrorObject, ExecutionStatus, Operation, OperationStatus, OperationType
from .operations.callback import submitter_record
from .plugins import InvocationInfo, Plugin
from .registry import resolve_target
from .tree import operation_tree

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

TARGET_HINT = "TARGET is path/to/file.py:func or package.module:func"
_EXECUTION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HINTS: list[tuple[type[Exception], str]] = [
    (CallbackNotFoundError, "`duragent list --pending` shows the callbacks that await an answer"),
    (ExecutionNotFoundError, "`duragent list` shows the execution ids"),
    (HandlerNotFoundError, TARGET_HINT),
    (StoreError, "pass --db with the path of a duragent store or a new file name"),
    (DurableError, "see `duragent --help`"),
]

log = logging.getLogger("duragent.durable.cli")


# -- errors and output ------------------------------------------------------------------------------
class CliError(UsageError):
    """Bad input found by the CLI itself; the message already says what would be right."""


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"duragent: error: {message}; see `{self.prog} --help`\n")


def _error_line(exc: Exception) -> str:
    """One line: what was wrong; what would be right (a hint is added when the message has none)."""
    message = " ".join(str(exc).split())
    if ";" not in message:
        hint = next((text for kind, text in _HINTS if isinstance(exc, kind)), "see `duragent --help`")
        message = f"{message}; {hint}"
    return f"duragent: error: {message}"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _when(ts: float | None) -> str:
    """Local wall-clock time for people; '-' when there is none."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _span(seconds: float | None) -> str:
    """A short human duration: 12ms, 3.4s, 5m07s, 2h03m, 4d05h."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _short(text: Any, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [headers, *rows]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=False)).rstrip()
                     for line in lines)


def _error_text(error: dict[str, Any] | None) -> str:
    if not error:
        return "-"
    kind, message = error.get("ErrorType"), error.get("ErrorMessage")
    return ": ".join(str(part) for part in (kind, message) if part) or "(no details)"


# -- store and inputs -----------------------------------------------------------------------------
def _db_path(args: argparse.Namespace) -> Path:
    return Path(args.db or os.environ.get("DURAGENT_DB") or DEFAULT_DB)


def _command(args: argparse.Namespace, rest: str) -> str:
    """A copy-pasteable command line that points at the same store as this one."""
    db = f" --db {shlex.quote(args.db)}" if args.db else ""
    return f"duragent {rest}{db}"


def _open(args: argparse.Namespace, *, must_exist: bool = True, plugins: list[Plugin] | None = None) -> LocalRuntime:
    """Inspecting or answering needs an existing store; only run and worker may create one."""
    path = _db_path(args)
    if must_exist and not path.exists():
        raise CliError(f"no duragent store at {path}; pass --db (or set DURAGENT_DB) to the store "
                       "that `duragent run` used")
    try:
        return LocalRuntime(db=path, plugins=plugins)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the store at {path} ({exc}); pass --db with a writable path") from None


def _parse_json(text: str, what: str, example: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not JSON ({exc}); pass a JSON document such as {example}") from None


def _read_input(spec: str | None) -> Any:
    """``--input`` is JSON text, ``@path`` to a JSON file, or ``@-`` for stdin; default ``{}``."""
    if spec is None:
        return {}
    if not spec.startswith("@"):
        return _parse_json(spec, "--input", "'{\"amount\": 5}' or @path/to/input.json")
    source = spec[1:]
    if source == "-":
        return _parse_json(sys.stdin.read(), "--input from stdin", "'{\"amount\": 5}'")
    try:
        text = Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"--input file {source!r} does not exist; pass @path/to/an/existing.json "
                       "or the JSON itself") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read --input file {source!r} ({exc}); pass a readable UTF-8 JSON "
                       "file") from None
    return _parse_json(text, f"--input file {source!r}", "{\"amount\": 5}")


def _check_execution_id(execution_id: str | None) -> None:
    if execution_id is not None and not _EXECUTION_ID.fullmatch(execution_id):
        raise CliError(f"--id {execution_id!r} is not a valid execution id; use 1-64 characters "
                       "from A-Z a-z 0-9 - _")


def _import_cwd() -> None:
    """``package.module:func`` resolves against the current directory, as with ``python -m``."""
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def _absolute_target(target: str) -> str:
    """Store file targets as absolute paths, so a worker started elsewhere can import them."""
    module_ref, _, attr = target.rpartition(":")
    if module_ref and (module_ref.endswith(".py") or "/" in module_ref):
        return f"{Path(module_ref).resolve()}:{attr}"
    return target


def _load_target(target: str) -> Callable[..., Any]:
    _import_cwd()
    try:
        return resolve_target(target)
    except HandlerNotFoundError:
        raise
    except Exception as exc:  # the user's module failed while importing
        raise CliError(f"cannot load {target!r}: {type(exc).__name__}: {exc}; fix the module so that it "
                       "imports cleanly") from None


# -- what an execution waits for ------------------------------------------------------------------
def _display_name(op: Operation, by_id: dict[str, Operation]) -> str:
    """A wait_for_callback's callback is named after the user's call, not the internal child."""
    parent = by_id.get(op.ParentId or "")
    if op.Type == OperationType.CALLBACK and parent is not None and parent.SubType == "WaitForCallback":
        return parent.Name or op.Name or "-"
    return op.Name or "-"


def _waiting_lines(args: argparse.Namespace, ops: list[Operation]) -> list[str]:
    """What a suspended execution is waiting for, with the command that answers each callback."""
    by_id = {op.Id: op for op in ops}
    now = time.time()
    lines: list[str] = []
    for op in ops:
        name = _display_name(op, by_id)
        if op.Type == OperationType.WAIT and op.Status == OperationStatus.STARTED and op.WaitDetails:
            due = op.WaitDetails.ScheduledEndTimestamp
            lines.append(f"  wait {name!r} until {_when(due)} (in {_span((due or now) - now)})")
        elif op.Type == OperationType.CALLBACK and op.Status == OperationStatus.STARTED and op.CallbackDetails:
            callback_id = op.CallbackDetails.CallbackId or ""
            lines.append(f"  callback {name!r}, callback id {callback_id}")
            lines += [f"    {line}" for line in _pause_hint(op, by_id, callback_id, args).splitlines()]
        elif op.Type == OperationType.STEP and op.Status in (OperationStatus.PENDING, OperationStatus.READY):
            details = op.StepDetails
            due = details.NextAttemptTimestamp if details else None
            attempt = details.Attempt if details else 0
            lines.append(f"  retry of step {name!r} (attempt {attempt}) at {_when(due)}"
                         f" (in {_span((due or now) - now)})")
        elif op.Type == OperationType.CHAINED_INVOKE and op.Status == OperationStatus.STARTED:
            lines.append(f"  invoke {name!r} to finish")
    return lines


# -- run ------------------------------------------------------------------------------------------
def _drive(runtime: LocalRuntime, execution_id: str) -> None:
    """Run invocations in the foreground until this execution completes or suspends.
    Timers are not waited for: a suspended execution is left for ``duragent worker``."""
    while True:
        row = runtime.service.execution(execution_id)
        if row["status"] != ExecutionStatus.RUNNING.value or not row["runnable"]:
            return
        if not runtime.run_once():
            return


def _report_run(args: argparse.Namespace, runtime: LocalRuntime, info: ExecutionInfo) -> int:
    if info.status == ExecutionStatus.SUCCEEDED.value:
        print(f"execution {info.id} SUCCEEDED", file=sys.stderr)
        _print_json(info.result)
        return EXIT_OK
    if info.status == ExecutionStatus.RUNNING.value:
        lines = _waiting_lines(args, runtime.operations(info.id))
        print(f"execution {info.id} is RUNNING (suspended)" + (", waiting for:" if lines else ""))
        print("\n".join(lines or ["  (another worker is running it now)"]))
        print(f"resume it with: {_command(args, 'worker')}   (--until-idle: exit when nothing is runnable)")
        return EXIT_OK
    print(f"duragent: execution {info.id} {info.status}: {_error_text(info.error)}", file=sys.stderr)
    print(f"details: {_command(args, f'show {info.id}')}", file=sys.stderr)
    return EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    """Start (or re-attach to, with the same ``--id`` and input) an execution and drive it."""
    event = _read_input(args.input)
    _check_execution_id(args.id)
    fn = _load_target(args.target)
    with _open(args, must_exist=False) as runtime:
        execution_id = runtime.start(fn, event, args.id, target=_absolute_target(args.target),
                                     timeout=args.timeout)
        _drive(runtime, execution_id)
        return _report_run(args, runtime, runtime.get(execution_id))


# -- worker ---------------------------------------------------------------------------------------
class _WorkerLog(Plugin):
    """Logs one line per invocation, so a person watching the worker sees progress."""

    name = "duragent-worker-log"
    _OUTCOME = {"PENDING": "suspended", "SUCCEEDED": "succeeded", "FAILED": "failed"}

    def __init__(self) -> None:
        self.invocations = 0

    def on_invocation_start(self, info: InvocationInfo) -> None:
        self.invocations += 1

    def on_invocation_end(self, info: InvocationInfo) -> None:
        status = info.status or "?"
        log.info("%s %s", info.execution_arn.rsplit("/", 1)[-1], self._OUTCOME.get(status, status))


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("duragent.durable")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _on_stop_signals(stop: threading.Event, wake: threading.Event) -> dict[int, Any]:
    """First SIGINT/SIGTERM: finish the invocation in flight, then exit. A second one: exit now."""

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("stopping after the current invocation (signal %d again to stop at once)", signum)
        stop.set()
        wake.set()
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)

    return {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}


def cmd_worker(args: argparse.Namespace) -> int:
    """Serve every execution in the store until stopped (or until idle)."""
    _import_cwd()
    _log_to_stderr()
    reporter = _WorkerLog()
    stop = threading.Event()
    runtime = _open(args, must_exist=False, plugins=[reporter])
    previous = _on_stop_signals(stop, runtime._wake)
    try:
        runtime.worker(stop, idle_exit=args.until_idle)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runtime.close()
    print(f"duragent worker: {reporter.invocations} invocation(s); "
          f"{'stopped' if stop.is_set() else 'idle'}", file=sys.stderr)
    return EXIT_OK


# -- list -----------------------------------------------------------------------------------------
@dataclass
class PendingItem:
    """Something in the store that waits for a person or a system outside it."""

    kind: str
    execution_id: str
    name: str
    callback_id: str
    started_at: float | None
    arguments: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["age_seconds"] = None if self.started_at is None else round(time.time() - self.started_at, 3)
        return data


def pending_callbacks(runtime: LocalRuntime) -> Iterator[PendingItem]:
    """Callbacks of running executions that await an answer."""
    statuses: dict[str, str] = {}
    names: dict[str, dict[str, Operation]] = {}
    for execution_id, op, callback_id in runtime.service.pending_callbacks():
        if execution_id not in statuses:
            statuses[execution_id] = runtime.get(execution_id).status
        if statuses[execution_id] != ExecutionStatus.RUNNING.value:
            continue  # its execution ended; the callback can no longer be answered
        if execution_id not in names:
            names[execution_id] = {o.Id: o for o in runtime.operations(execution_id)}
        request = _review_request(op, names[execution_id])
        kind = request.kind if request else "callback"
        name = request.title if request else _display_name(op, names[execution_id])
        yield PendingItem(kind, execution_id, name, callback_id, op.StartTimestamp,
                          request.arguments if request else None)


def _review_request(op: Operation, ops: dict[str, Operation]) -> Any:
    """What a human review asks (an agents.review.ReviewRequest), as its submitter step recorded it."""
    try:
        from duragent.agents.review import review_request
    except ImportError:
        return None
    return review_request(submitter_record(op.ParentId, ops.values()))


def _pause_hint(op: Operation, ops: dict[str, Operation], callback_id: str, args: argparse.Namespace) -> str:
    """The commands that answer this callback: approve / reject a review, answer a question..."""
    try:
        from duragent.agents.review import pause_hint
    except ImportError:
        return (f"answer: {_command(args, f'callback succeed {callback_id} --result JSON')}\n"
                f"    or: {_command(args, f'callback fail {callback_id} --error-message TEXT')}")
    return pause_hint(_review_request(op, ops), callback_id, lambda rest: _command(args, rest))


def _pending_review(runtime: LocalRuntime, callback_id: str) -> Any:
    """The review request of a pending callback (None: a plain callback); CallbackNotFoundError if none waits."""
    execution_id, op = runtime.pending_callback(callback_id)
    return _review_request(op, {o.Id: o for o in runtime.operations(execution_id)})


PENDING_SOURCES: list[Callable[[LocalRuntime], Iterator[PendingItem]]] = [pending_callbacks]
"""What ``list --pending`` shows; other kinds (approvals, say) append a source here."""


def _list_pending(args: argparse.Namespace, runtime: LocalRuntime | None) -> int:
    items = [item for source in PENDING_SOURCES for item in source(runtime)] if runtime else []
    if args.json:
        _print_json([item.to_dict() for item in items])
        return EXIT_OK
    if not items:
        print("nothing is waiting for an answer")
        return EXIT_OK
    now = time.time()
    rows = [(i.execution_id, i.kind, i.name, i.callback_id, _span(now - i.started_at if i.started_at else None))
            for i in items]
    print(_table(("EXECUTION", "KIND", "NAME", "CALLBACK ID", "AGE"), rows))
    return EXIT_OK


def _list_executions(args: argparse.Namespace, runtime: LocalRuntime | None) -> int:
    rows = runtime.list(status=args.status, limit=args.limit) if runtime else []
    if args.json:
        _print_json(rows)
        return EXIT_OK
    if not rows:
        print("no executions" + (f" with status {args.status}" if args.status else ""))
        return EXIT_OK
    table = [(r["id"], r["function"], r["status"], _when(r["started_at"]), _when(r["ended_at"])) for r in rows]
    print(_table(("ID", "FUNCTION", "STATUS", "STARTED", "ENDED"), table))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """Executions (newest first), or with ``--pending`` what waits for an answer."""
    lister = _list_pending if args.pending else _list_executions
    if not _db_path(args).exists():
        return lister(args, None)  # an empty list, without creating a store
    with _open(args) as runtime:
        return lister(args, runtime)


# -- show -----------------------------------------------------------------------------------------
def _op_row(op: Operation, depth: int) -> tuple[str, ...]:
    kind = op.Type.value + (f"/{op.SubType}" if op.SubType and op.SubType.upper() != op.Type.value else "")
    attempt = f"attempt {op.StepDetails.Attempt}" if op.StepDetails and op.StepDetails.Attempt else ""
    took = _span(op.EndTimestamp - op.StartTimestamp) if op.EndTimestamp and op.StartTimestamp else ""
    note = ""
    if op.Status == OperationStatus.STARTED and op.WaitDetails:
        note = f"until {_when(op.WaitDetails.ScheduledEndTimestamp)}"
    elif op.Status == OperationStatus.STARTED and op.CallbackDetails:
        note = f"callback id {op.CallbackDetails.CallbackId}"
    else:
        error = (op.StepDetails or op.ContextDetails or op.CallbackDetails or op.ChainedInvokeDetails)
        if error is not None and getattr(error, "Error", None) is not None and op.Status != OperationStatus.SUCCEEDED:
            note = _short(_error_text(error.Error.to_wire()))  # type: ignore[union-attr]
    return ("  " * depth + kind, op.Name or "-", op.Status.value, attempt, took, note)


def _op_tree(ops: list[Operation]) -> list[tuple[str, ...]]:
    """Operations in checkpoint order, children indented under their parent context."""
    return [_op_row(op, depth) for depth, op in operation_tree(ops)]


def _show_text(info: ExecutionInfo, ops: list[Operation]) -> None:
    header = [("id", info.id), ("function", info.function), ("status", info.status),
              ("started", _when(info.started_at)), ("ended", _when(info.ended_at)),
              ("invocations", str(info.invocations)), ("input", _short(json.dumps(info.input), 200))]
    if info.status == ExecutionStatus.SUCCEEDED.value:
        header.append(("result", _short(json.dumps(info.result, ensure_ascii=False), 200)))
    if info.error:
        header.append(("error", _error_text(info.error)))
    for key, value in header:
        print(f"{key + ':':<13}{value}")
    rows = _op_tree(ops)
    print()
    print(_table(("OPERATION", "NAME", "STATUS", "ATTEMPT", "TOOK", ""), rows) if rows else "no operations yet")
    ledger = _ledger(ops)
    if ledger is not None:
        print()
        print(ledger.format())


def _ledger(ops: list[Operation]) -> Any:
    """The cost ledger of an agent execution, when the agents package is there."""
    try:
        from duragent.agents.usage import agent_ledger
    except ImportError:
        return None
    return agent_ledger(ops)


def cmd_show(args: argparse.Namespace) -> int:
    """One execution: header and operation tree, or ``--json`` with the wire operations."""
    with _open(args) as runtime:
        info = runtime.get(args.id)
        ops = runtime.operations(args.id)
    if args.json:
        ledger = _ledger(ops)
        _print_json({**info.to_dict(), "operations": [op.to_wire() for op in ops],
                     **({"ledger": ledger.to_dict()} if ledger is not None else {})})
    else:
        _show_text(info, ops)
    return EXIT_OK


# -- history --------------------------------------------------------------------------------------
def _event_details(event: dict[str, Any]) -> str:
    """The few fields of an event's details that tell the story, shortened."""
    details = event.get(f"{event.get('EventType')}Details") or {}
    parts: list[str] = []
    for key in ("Input", "Result"):
        if isinstance(details.get(key), dict):
            parts.append(f"{key.lower()}={_short(details[key].get('Payload'), 50)}")
    if isinstance(details.get("Error"), dict):
        parts.append(f"error={_short(_error_text(details['Error'].get('Payload')), 60)}")
    if "Duration" in details:
        parts.append(f"duration={details['Duration']}s")
    if "CallbackId" in details:
        parts.append(f"callback id={_short(details['CallbackId'], 24)}")
    if isinstance(details.get("RetryDetails"), dict):
        parts.append(f"attempt={details['RetryDetails'].get('CurrentAttempt')}")
    if "StartTimestamp" in details and "EndTimestamp" in details:
        parts.append(f"took={_span(details['EndTimestamp'] - details['StartTimestamp'])}")
    return " ".join(parts)


def cmd_history(args: argparse.Namespace) -> int:
    """The execution's events, in the AWS GetDurableExecutionHistory shape with ``--json``."""
    with _open(args) as runtime:
        events = runtime.history(args.id)
    if args.json:
        _print_json(events)
        return EXIT_OK
    rows = [(str(e.get("EventId")), time.strftime("%H:%M:%S", time.localtime(e.get("EventTimestamp", 0))),
             str(e.get("EventType")), _short(e.get("Name") or "", 30), _event_details(e)) for e in events]
    print(_table(("#", "TIME", "EVENT", "NAME", "DETAILS"), rows))
    return EXIT_OK


# -- callback, stop -------------------------------------------------------------------------------
def cmd_callback(args: argparse.Namespace) -> int:
    """Answer a callback as the outside world would; a worker then resumes the execution."""
    result: str | None = None
    answer: Any = None
    if args.action == "succeed" and args.result is not None:
        answer = _parse_json(args.result, "--result", "'{\"approved\": true}'")
        result = args.result  # verbatim: the text the outside world sent is what gets stored
    with _open(args) as runtime:
        if args.action == "succeed":
            request = _pending_review(runtime, args.callback_id)
            if request is not None:  # a review: refuse up front an answer the agent could not use
                from duragent.agents.review import read_decision

                read_decision(request, answer)
            execution_id = runtime.send_callback_success(args.callback_id, result)
        elif args.action == "fail":
            error = ErrorObject(ErrorType=args.error_type, ErrorMessage=args.error_message,
                                ErrorData=args.error_data)
            execution_id = runtime.send_callback_failure(args.callback_id, error)
        else:
            execution_id = runtime.send_callback_heartbeat(args.callback_id)
    done = {"succeed": "succeeded", "fail": "failed", "heartbeat": "heartbeat recorded"}[args.action]
    print(f"callback {done} (execution {execution_id})")
    if args.action != "heartbeat":
        print(f"resume it with: {_command(args, 'worker --until-idle')}")
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    """``approve`` / ``reject``: answer a human review through the review protocol (agents.review),
    which checks the decision (and an edit, against the tool's schema) before anything is sent."""
    from duragent.agents.review import Approve, Decision, Reject, encode_decision, pause_hint

    decision: Decision
    if args.command == "approve":
        edits = None
        if args.edit is not None:
            edits = _parse_json(args.edit, "--edit", "'{\"to\": \"ops@example.com\"}'")
            if not isinstance(edits, dict):
                raise CliError("--edit must be a JSON object of the arguments to change; e.g. '{\"amount\": 10}'")
        decision = Approve(edits=edits, reviewer=args.reviewer)
    else:
        decision = Reject(feedback=args.feedback, reviewer=args.reviewer)
    with _open(args) as runtime:
        request = _pending_review(runtime, args.callback_id)
        if request is None:
            hint = pause_hint(None, args.callback_id, lambda rest: _command(args, rest)).splitlines()[0]
            done = "approved" if args.command == "approve" else "rejected"
            raise CliError(f"callback {args.callback_id} is not a review, so it cannot be {done}; answer it with "
                           f"{hint.removeprefix('answer: ')}")
        execution_id = runtime.send_callback_success(args.callback_id, encode_decision(request, decision))
    print(f"review {'approved' if args.command == 'approve' else 'rejected'} (execution {execution_id})")
    print(f"resume it with: {_command(args, 'worker --until-idle')}")
    return EXIT_OK


def cmd_replay_check(args: argparse.Namespace) -> int:
    """Replay waiting executions against the current code, without side effects; exit 1 on divergence."""
    from .replay_check import replay_check

    _import_cwd()
    with _open(args) as runtime:
        results = replay_check(runtime, args.ids or None)
    if args.json:
        _print_json([r.to_dict() for r in results])
    elif not results:
        print("no running executions to check")
    else:
        for r in results:
            print(f"{'ok  ' if r.ok else 'FAIL'} {r.execution_id}  {r.function}: {r.detail}")
    bad = [r for r in results if not r.ok]
    if bad and not args.json:
        print(f"{len(bad)} of {len(results)} execution(s) would not replay on this code", file=sys.stderr)
    return EXIT_FAILED if bad else EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop a running execution for good."""
    with _open(args) as runtime:
        runtime.stop(args.id)
        print(f"execution {args.id} {runtime.get(args.id).status}")
    return EXIT_OK


def cmd_ui(args: argparse.Namespace) -> int:
    """Serve the local web console (durable/console) until Ctrl-C; it prints the URL to open."""
    from .console import serve

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not a port; use 1-65535, or 0 for a free one")
    with _open(args) as runtime:
        try:
            return serve(runtime, port=args.port)
        except OSError as exc:
            raise CliError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc}); "
                           "pass --port 0 to pick a free port") from None


# -- parser ---------------------------------------------------------------------------------------
def _status(text: str) -> str:
    value = text.upper()
    if value not in ExecutionStatus.__members__:
        raise argparse.ArgumentTypeError(f"unknown status {text!r} (one of {', '.join(ExecutionStatus)})")
    return value


def _positive_seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--timeout takes a whole number of seconds (at least 1), got {text!r}")
    return value


def _installed_version() -> str:
    from duragent import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    db_help = f"the SQLite store (default: $DURAGENT_DB or {DEFAULT_DB})"
    parser = _Parser(prog="duragent", description="Run and inspect durable functions on a local store.")
    parser.add_argument("--db", help=db_help)
    parser.add_argument("--version", action="version", version=f"duragent {_installed_version()}")
    common = _Parser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, help=db_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = command("run", cmd_run, "start an execution and drive it until it completes or suspends")
    p.add_argument("target", metavar="TARGET", help="path/to/file.py:func or package.module:func")
    p.add_argument("--input", metavar="JSON|@FILE", help="the event: JSON text, @file.json or @- (stdin)")
    p.add_argument("--id", help="execution id (idempotent: the same id and input attach to it)")
    p.add_argument("--timeout", type=_positive_seconds, metavar="SECONDS",
                   help="end the execution TIMED_OUT if it has not finished by then")

    p = command("worker", cmd_worker, "serve every execution in the store until stopped")
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is runnable now")

    p = command("list", cmd_list, "list executions, or with --pending what waits for an answer")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--status", type=_status, help="only executions with this status")
    p.add_argument("--pending", action="store_true", help="list callbacks awaiting an answer")
    p.add_argument("--limit", type=int, default=100, help="at most this many executions (default 100)")

    for name, handler, text in (("show", cmd_show, "one execution and its operation tree"),
                                ("history", cmd_history, "the history events of one execution")):
        p = command(name, handler, text)
        p.add_argument("id", metavar="ID")
        p.add_argument("--json", action="store_true", help="print JSON")

    p = command("callback", cmd_callback, "answer a callback: succeed, fail or heartbeat")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("succeed", parents=[common], help="complete the callback with a result")
    a.add_argument("callback_id", metavar="CALLBACK_ID")
    a.add_argument("--result", metavar="JSON", help="the result, JSON text stored verbatim")
    a = actions.add_parser("fail", parents=[common], help="fail the callback")
    a.add_argument("callback_id", metavar="CALLBACK_ID")
    a.add_argument("--error-type", default="CallbackFailure")
    a.add_argument("--error-message", default="callback failed")
    a.add_argument("--error-data", default=None)
    a = actions.add_parser("heartbeat", parents=[common], help="keep a callback with a heartbeat timeout alive")
    a.add_argument("callback_id", metavar="CALLBACK_ID")

    p = command("approve", cmd_review, "approve a human review (optionally with edited tool arguments)")
    p.add_argument("callback_id", metavar="CALLBACK_ID")
    p.add_argument("--edit", metavar="JSON", help="change these arguments (a JSON object; the others stay as "
                   "proposed), checked against the tool's schema before anything is sent")
    p.add_argument("--reviewer", help="who answered (recorded with the answer)")
    p = command("reject", cmd_review, "reject a human review; the tool never runs and the model sees why")
    p.add_argument("callback_id", metavar="CALLBACK_ID")
    p.add_argument("--feedback", required=True, metavar="TEXT", help="why: the model reads this")
    p.add_argument("--reviewer", help="who answered (recorded with the answer)")

    p = command("replay-check", cmd_replay_check,
                "replay running executions against the current code (no side effects); exit 1 on divergence")
    p.add_argument("ids", nargs="*", metavar="ID", help="only these executions (default: every running one)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("stop", cmd_stop, "stop a running execution")
    p.add_argument("id", metavar="ID")

    p = command("ui", cmd_ui, "serve the local web console; prints the URL to open, token included")
    p.add_argument("--port", type=int, default=8321, help="port on 127.0.0.1 (default 8321; 0 picks a free one)")
    aws_cli.extend_parser(parser)  # --aws: the same commands on AWS Lambda (durable/aws/cli.py)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int((aws_cli.handler_for(args) or args.handler)(args))
    except DurableError as exc:
        print(_error_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.Error as exc:
        print(_error_line(StoreError(f"cannot use the store at {_db_path(args)} ({exc})")), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
