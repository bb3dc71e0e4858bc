"""Drives a conformance requirement on AWS's emulator, the way AWS's runner drives a deployed
function (CONFORMANCE.md §1.1, §1.6): start the execution, wait for it (sync), or poll its
history every PollIntervalSeconds and answer callbacks with the requirement's CallbackActions
through ``durable.aws.remote`` (async). History-only requirements stop as soon as the expected
events are there.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duragent.durable.aws import lambda_handler, remote
from tests.conformance.driver import CRASHING, EXTRA_FUNCTIONS, HANDLERS, REPO, function_name
from tests.conformance.matcher import Bindings, callback_action_payload, first_matching_action, match_history
from tests.conformance.requirements import Requirement

from .compare import tolerate
from .emulator import Emulator

TERMINAL_EVENTS = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionStopped"}


@dataclass
class EmulatorOutcome:
    arn: str
    status: str
    result: str | None
    history: list[dict[str, Any]]
    logs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Driver errors (no progress, unmatched callback) - a failing requirement."""
    history_only: bool = False


class LogCapture(logging.Handler):
    """Every ``durable.user`` record, to be filtered per execution by its ARN field."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[dict[str, Any]] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        from duragent.durable.log import record_fields

        with self._guard:
            self.records.append(record_fields(record))

    def for_execution(self, arn: str) -> list[dict[str, Any]]:
        with self._guard:
            return [r for r in self.records if r.get("executionArn") == arn or r.get("durableExecutionArn") == arn]


def register_all(emu: Emulator, scratch: Path) -> None:
    """Every conformance handler (and chained-invoke target) as a function of the endpoint. A
    handler that kills its process runs each invocation in a subprocess, as Lambda would."""
    for req_id, handler in HANDLERS.items():
        fn = SubprocessFunction(req_id, scratch / req_id) if req_id in CRASHING else lambda_handler(handler)
        emu.endpoint.register(function_name(req_id), fn)
    for name, handler in EXTRA_FUNCTIONS.items():
        emu.endpoint.register(name, ColdStart(lambda_handler(handler)))


class ColdStart:
    """A chained-invoke target that takes TARGET_START_SECONDS to start, as a Lambda function does.
    The requirements' histories assume the caller's invocation has completed (InvocationCompleted)
    before its target finishes; an instant in-process target could finish first and swap them."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        time.sleep(TARGET_START_SECONDS)
        return self.fn(event, context)


TARGET_START_SECONDS = 1.0


class SubprocessFunction:
    """One Lambda invocation per process: a crash (os._exit) is a function error the emulator
    retries, like a Lambda runtime exit. Log lines go to JSON files in ``scratch``."""

    def __init__(self, req_id: str, scratch: Path) -> None:
        self.req_id = req_id
        self.scratch = scratch

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.scratch.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(REPO), "DURAGENT_CONFORMANCE_SCRATCH": str(self.scratch)}
        proc = subprocess.run([sys.executable, "-c", _SERVE_ONE, self.req_id], input=json.dumps(event), text=True,
                              capture_output=True, cwd=REPO, env=env, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"Runtime.ExitError: exit status {proc.returncode} {proc.stderr[-500:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def logs(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for path in sorted(self.scratch.glob("logs-*.jsonl")):
            records.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
        return sorted(records, key=lambda r: r.get("timestamp", 0))


_SERVE_ONE = """
import json, logging, os, sys
from duragent.durable.log import JsonFormatter
from duragent.durable.aws import lambda_handler
from tests.conformance.driver import HANDLERS, _load_handlers
_load_handlers()
handler = logging.FileHandler(os.path.join(os.environ["DURAGENT_CONFORMANCE_SCRATCH"], f"logs-{os.getpid()}.jsonl"))
handler.setFormatter(JsonFormatter())
logging.getLogger("duragent.durable.user").addHandler(handler)
logging.getLogger("duragent.durable.user").setLevel(logging.DEBUG)
print(json.dumps(lambda_handler(HANDLERS[sys.argv[1]])(json.load(sys.stdin), None)))
"""


def run_requirement(emu: Emulator, req: Requirement, bindings: Bindings, capture: LogCapture,
                    *, timeout: float = 120.0) -> EmulatorOutcome:
    event = bindings.substitute(req.input)
    arn = emu.start_execution(function_name(req.id), event, name=f"conf-{req.id}")
    errors: list[str] = []
    history_only = False
    if req.async_invoke:
        history_only = _poll(emu, arn, req, bindings, errors, timeout)
    else:
        emu.wait(arn, timeout=timeout)
    history = [remote.plain(e) for e in emu.history(arn)]
    execution = remote.get_execution(arn, client=emu.lambda_client)
    if history_only and execution["Status"] == "RUNNING":
        remote.stop_execution(arn, "history-only requirement matched; stopped by the test", client=emu.lambda_client)
    logs = capture.for_execution(arn)
    fn = emu.endpoint.functions.get(function_name(req.id))
    if isinstance(fn, SubprocessFunction):
        logs += [r for r in fn.logs() if r.get("executionArn") == arn or r.get("durableExecutionArn") == arn]
    return EmulatorOutcome(arn, execution["Status"], execution.get("Result"), history, logs, errors, history_only)


def _poll(emu: Emulator, arn: str, req: Requirement, bindings: Bindings, errors: list[str], timeout: float) -> bool:
    """The runner's polling loop (§1.6). Returns True when it stopped on a history-only match."""
    interval = float(req.async_config.get("PollIntervalSeconds", 2))
    no_progress = float(req.async_config.get("NoProgressTimeoutSeconds", 30))
    actions = req.callback_actions
    used: set[int] = set()
    handled: set[str] = set()
    seen, last_change = 0, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        history = [remote.plain(e) for e in emu.history(arn)]
        if any(e["EventType"] in TERMINAL_EVENTS for e in history):
            return False
        if len(history) != seen:
            seen, last_change = len(history), time.monotonic()
        elif time.monotonic() - last_change > no_progress:
            errors.append(f"no progress for {no_progress} s")
            return False
        for event in history:
            if event["EventType"] != "CallbackStarted":
                continue
            callback_id = event["CallbackStartedDetails"]["CallbackId"]
            if callback_id in handled:
                continue
            match = first_matching_action(actions, used, event.get("Name"), bindings)
            if match is None:
                if actions:
                    errors.append(f"No matching CallbackAction for callback {event.get('Name')!r}")
                handled.add(callback_id)
                continue
            used.add(match)
            operation, data, delay = callback_action_payload(actions[match], bindings)
            if operation != "heartbeat":
                handled.add(callback_id)
            time.sleep(delay)
            _send(emu, callback_id, operation, data)
        if req.expected_result is None and not tolerate(match_history(req.expected_history, history,
                                                                      bindings.copy()))[0]:
            return True
    errors.append(f"not finished after {timeout} s")
    return False


def _send(emu: Emulator, callback_id: str, operation: str, data: Any) -> None:
    try:
        if operation == "success":
            remote.send_callback_success(callback_id, data, client=emu.lambda_client)
        elif operation == "failure":
            remote.send_callback_failure(callback_id, data or {}, client=emu.lambda_client)
        else:
            remote.send_callback_heartbeat(callback_id, client=emu.lambda_client)
    except Exception as exc:  # an answer to a callback that already timed out: the runner moves on
        logging.getLogger(__name__).info("callback %s failed: %s", operation, exc)
