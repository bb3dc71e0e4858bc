"""``run`` and ``worker``: the commands that run handlers (local store only). Only these two may
create a store, and they say so on stderr when they do."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from duragent.durable.errors import HandlerNotFoundError
from duragent.durable.local import LocalRuntime
from duragent.durable.local.faults import describe_store_error
from duragent.durable.model import ExecutionStatus
from duragent.durable.plugins import InvocationInfo, Plugin
from duragent.durable.registry import resolve_target
from duragent.ops import LocalOperator, values

from .common import EXIT_FAILED, EXIT_OK, CliError, command, db_path, error_text, print_json, read_json
from .following import progress_while
from .reading import waiting_lines

log = logging.getLogger("duragent.cli")


def open_runtime(args: argparse.Namespace, plugins: list[Plugin] | None = None) -> LocalRuntime:
    """The store to run in, created when there is none yet (and said so on stderr)."""
    path = db_path(args)
    existed = path.exists()
    try:
        runtime = LocalRuntime(db=path, plugins=plugins)
    except (OSError, sqlite3.Error) as exc:
        raise describe_store_error(exc, path) from None
    if not existed:
        print(f"duragent: created a new store at {path}", file=sys.stderr)
    return runtime


def import_cwd() -> None:
    """``package.module:func`` resolves against the current directory, as with ``python -m``."""
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def absolute_target(target: str) -> str:
    """Store file targets as absolute paths, so a worker started elsewhere can import them."""
    module_ref, _, attr = target.rpartition(":")
    if module_ref and (module_ref.endswith(".py") or "/" in module_ref):
        return f"{Path(module_ref).resolve()}:{attr}"
    return target


def load_target(target: str) -> Callable[..., Any]:
    values.short_text(target, "TARGET", limit=4096)
    import_cwd()
    try:
        return resolve_target(target)
    except HandlerNotFoundError:
        raise
    except Exception as exc:  # the user's module failed while importing
        raise CliError(f"cannot load {target!r}: {type(exc).__name__}: {exc}; fix the module so that it "
                       "imports cleanly") from None


# -- run ------------------------------------------------------------------------------------------
def _drive(runtime: LocalRuntime, execution_id: str) -> None:
    """Run invocations in the foreground until this execution completes or suspends, driving
    only it and the executions it invokes (never someone else's). Timers are not waited for: a
    suspended execution is left for ``duragent worker``."""
    runtime.run_until_idle(skip_time=False, execution_id=execution_id)


def _report_run(args: argparse.Namespace, runtime: LocalRuntime, execution_id: str) -> int:
    ops = LocalOperator(runtime)
    info = ops.get(execution_id)
    if info.status == ExecutionStatus.SUCCEEDED.value:
        print(f"execution {info.id} SUCCEEDED", file=sys.stderr)
        print_json(info.result)
        return EXIT_OK
    if info.status == ExecutionStatus.RUNNING.value:
        lines = waiting_lines(args, ops.operations(execution_id), ops.pending(execution_id=execution_id,
                                                                                limit=1000).items)
        print(f"execution {info.id} is RUNNING (suspended)" + (", waiting for:" if lines else ""))
        print("\n".join(lines or ["  (another worker is running it now)"]))
        print(f"resume it with: {command(args, 'worker')}   (--until-idle: exit when nothing is runnable)")
        return EXIT_OK
    print(f"duragent: execution {info.id} {info.status}: {error_text(info.error)}", file=sys.stderr)
    print(f"details: {command(args, f'show {info.id}')}", file=sys.stderr)
    return EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    """Start (or re-attach to, with the same ``--id`` and input) an execution and drive it."""
    event = {} if args.input is None else read_json(args.input, "--input", "'{\"amount\": 5}' or @path/to/input.json")
    if args.id is not None:
        values.execution_id(args.id, "--id")
    fn = load_target(args.target)
    with open_runtime(args) as runtime:
        execution_id = runtime.start(fn, event, args.id, target=absolute_target(args.target), timeout=args.timeout)
        with progress_while(runtime, execution_id, sys.stderr):  # a live status line, on a terminal only
            _drive(runtime, execution_id)
        return _report_run(args, runtime, execution_id)


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
    for name in ("duragent.durable", "duragent.cli"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _on_stop_signals(stop: threading.Event, wake: Callable[[], None]) -> dict[int, Any]:
    """First SIGINT/SIGTERM: finish the invocation in flight, then exit. A second one: exit now."""

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("stopping after the current invocation (signal %d again to stop at once)", signum)
        stop.set()
        wake()
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)

    return {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}


def cmd_worker(args: argparse.Namespace) -> int:
    """Serve every execution in the store until stopped (or until idle)."""
    import_cwd()
    _log_to_stderr()
    reporter = _WorkerLog()
    stop = threading.Event()
    runtime = open_runtime(args, plugins=[reporter])
    previous = _on_stop_signals(stop, runtime.wake)
    try:
        log.info("worker serving %s%s", db_path(args), " until idle" if args.until_idle else "")
        runtime.worker(stop, idle_exit=args.until_idle)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runtime.close()
    print(f"duragent worker: {reporter.invocations} invocation(s); "
          f"{'stopped' if stop.is_set() else 'idle'}", file=sys.stderr)
    return EXIT_OK
