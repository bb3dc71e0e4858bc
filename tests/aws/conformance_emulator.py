"""Drives a conformance requirement on AWS's emulator, the way AWS's runner drives a deployed
function (CONFORMANCE.md §1.1, §1.6): start the execution, wait for it (sync), or poll its
history every PollIntervalSeconds and answer callbacks with the requirement's CallbackActions
through ``durable.aws.remote`` (async). History-only requirements stop as soon as the expected
events are there.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from durable.aws import lambda_handler, remote
from tests.conformance.driver import EXTRA_FUNCTIONS, HANDLERS, function_name
from tests.conformance.matcher import Bindings, callback_action_payload, first_matching_action, match_history
from tests.conformance.requirements import Requirement

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
        from durable.log import record_fields

        with self._guard:
            self.records.append(record_fields(record))

    def for_execution(self, arn: str) -> list[dict[str, Any]]:
        with self._guard:
            return [r for r in self.records if r.get("executionArn") == arn or r.get("durableExecutionArn") == arn]


def register_all(emu: Emulator) -> None:
    """Every conformance handler (and chained-invoke target) as a function of the endpoint."""
    for req_id, handler in HANDLERS.items():
        emu.endpoint.register(function_name(req_id), lambda_handler(handler))
    for name, handler in EXTRA_FUNCTIONS.items():
        emu.endpoint.register(name, lambda_handler(handler))


def run_requirement(emu: Emulator, req: Requirement, bindings: Bindings, capture: LogCapture,
                    *, timeout: float = 120.0) -> EmulatorOutcome:
    event = bindings.substitute(req.input)
    arn = emu.start_execution(function_name(req.id), event, name=f"conf-{req.id.replace('-', '_')}")
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
    return EmulatorOutcome(arn, execution["Status"], execution.get("Result"), history,
                           capture.for_execution(arn), errors, history_only)


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
        if req.expected_result is None and not match_history(req.expected_history, history, bindings.copy()):
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
