"""Drives one conformance requirement against the local engine, as AWS's runner would drive a
deployed function (CONFORMANCE.md §1.8): a virtual clock, timers fired in due order, callback
actions delivered between invocations at "CallbackStarted visible + 2 s poll + Delay", and, for
requirements whose handler crashes its process, each invocation run in a real subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duragent.durable import LocalRuntime, VirtualClock
from duragent.durable.log import record_fields
from duragent.durable.model import ErrorObject

from .matcher import Bindings, callback_action_payload, first_matching_action
from .requirements import Requirement

Handler = Callable[[Any, Any], Any]

HANDLERS: dict[str, Handler] = {}
"""Requirement id -> handler. Filled by ``@requirement`` in the handlers/ modules."""

CRASHING: set[str] = set()
"""Requirements whose handler kills its own process: invocations run in subprocesses."""

EXTRA_FUNCTIONS: dict[str, Handler] = {}
"""Other functions a requirement's handler may invoke (chained invoke targets)."""

POLL_SECONDS = 2.0
REPO = Path(__file__).resolve().parents[2]


def requirement(*ids: str, crashes: bool = False) -> Callable[[Handler], Handler]:
    """Register a handler for one or more requirement ids."""

    def register(fn: Handler) -> Handler:
        for req_id in ids:
            if req_id in HANDLERS:
                raise RuntimeError(f"two handlers for requirement {req_id}")
            HANDLERS[req_id] = fn
            if crashes:
                CRASHING.add(req_id)
        return fn

    return register


def function_name(req_id: str) -> str:
    return f"conformance-{req_id}"


def crash_marker_dir() -> Path:
    """Where crashing handlers keep "have I crashed already" markers (set by the driver)."""
    return Path(os.environ["DURAGENT_CONFORMANCE_SCRATCH"])


def crash_once(key: str) -> None:
    """Kill this process the first time ``key`` is reached; carry on afterwards (a Lambda
    runtime crash, then the re-invocation)."""
    marker = crash_marker_dir() / f"crashed-{key}"
    if marker.exists():
        return
    marker.write_text("1")
    logging.shutdown()
    os._exit(137)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[dict[str, Any]] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock2:
            self.records.append(record_fields(record))


@dataclass
class Outcome:
    execution_id: str
    status: str
    result: str | None
    history: list[dict[str, Any]]
    logs: list[dict[str, Any]] = field(default_factory=list)


def _load_handlers() -> None:
    from . import handlers  # noqa: F401  (registers every handler module)


def run(req: Requirement, bindings: Bindings, workdir: Path, handler: Handler | None = None) -> Outcome:
    """Run ``req`` to its end (or until nothing more can happen) and collect what the checks need.
    ``handler``: another handler for the requirement (an async twin) instead of the registered one."""
    _load_handlers()
    handler = handler or HANDLERS[req.id]
    os.environ["DURAGENT_CONFORMANCE_SCRATCH"] = str(workdir)
    clock = VirtualClock()
    db = workdir / "conformance.db"
    capture = _Capture()
    user_logger = logging.getLogger("duragent.durable.user")
    user_logger.addHandler(capture)
    user_logger.setLevel(logging.DEBUG)
    runtime = LocalRuntime(db, clock=clock, durability="process",
                           functions={function_name(req.id): handler, **EXTRA_FUNCTIONS})
    try:
        event = bindings.substitute(req.input)
        execution_id = runtime.start(function_name(req.id), event, name=f"conf-{req.id}")
        crashing = req.id in CRASHING
        _drive(runtime, clock, execution_id, req, bindings,
               (lambda: _invoke_in_subprocess(req.id, db, clock, workdir)) if crashing else runtime.run_once)
        info = runtime.get(execution_id)
        row = runtime.service.execution(execution_id)
        logs = capture.records + _subprocess_logs(workdir)
        return Outcome(execution_id, info.status, row["result"], runtime.history(execution_id), logs)
    finally:
        user_logger.removeHandler(capture)
        runtime.close()


def _drive(runtime: LocalRuntime, clock: VirtualClock, execution_id: str, req: Requirement, bindings: Bindings,
           run_once: Callable[[], bool]) -> None:
    """Run invocations and fire timers in due order, with the runner's polling loop (§1.6) as a
    second actor: a callback is seen by the first poll at least POLL_SECONDS after it appeared (and
    after the runner's previous pass); a pass walks the open callbacks in history order and, for
    each, sleeps its action's Delay and sends it, so the sends of one pass are chained and in event
    order. A heartbeat leaves its callback open: the next pass matches the follow-up action."""
    actions = req.callback_actions
    used: set[int] = set()
    closed: set[str] = set()  # callbacks the runner will never look at again (answered, or unmatched)
    open_since: dict[str, float] = {}  # open callback id -> when the runner can first see it
    order: list[str] = []  # every callback id, in history order
    names: dict[str, Any] = {}
    sends: deque[tuple[float, str, int]] = deque()  # the current pass: (due, callback id, action index)
    runner_free = float("-inf")  # when the runner finished its last pass
    seen_events = 0
    for _ in range(10_000):
        while run_once():
            pass
        runtime.service.fire_due()
        if run_once():
            continue
        info = runtime.get(execution_id)
        if info.status != "RUNNING":
            return
        history = runtime.history(execution_id)
        for event in history[seen_events:]:
            if event["EventType"] == "CallbackStarted":
                callback_id = event["CallbackStartedDetails"]["CallbackId"]
                order.append(callback_id)
                names[callback_id] = event.get("Name")
                open_since[callback_id] = clock.now() + POLL_SECONDS
        seen_events = len(history)
        timer = runtime.service.next_due()
        if sends:
            runner_at: float | None = sends[0][0]
        elif open_since:
            runner_at = max(min(open_since.values()), runner_free + POLL_SECONDS)
        else:
            runner_at = None
        if runner_at is None and timer is None:
            return  # nothing will ever happen again (a callback nobody answers)
        if timer is not None and (runner_at is None or timer <= runner_at):
            clock.advance_to(timer)
            continue
        assert runner_at is not None
        clock.advance_to(runner_at)
        if sends:
            _, callback_id, index = sends.popleft()
            if _apply_action(runtime, callback_id, actions[index], bindings):
                open_since[callback_id] = clock.now() + POLL_SECONDS  # heartbeat: seen again next poll
            if not sends:
                runner_free = clock.now()
            continue
        # A poll: one pass over the open callbacks it can see, in history order.
        cursor = clock.now()
        for callback_id in order:
            if callback_id in closed or open_since.get(callback_id, float("inf")) > clock.now():
                continue
            del open_since[callback_id]
            match = first_matching_action(actions, used, names[callback_id], bindings)
            if match is None:
                if actions:
                    raise AssertionError(f"No matching CallbackAction for callback {names[callback_id]!r}")
                closed.add(callback_id)  # no actions at all: left open for its timeout (4-3, 7-5...)
                continue
            used.add(match)
            payload = callback_action_payload(actions[match], bindings)
            if payload.operation != "heartbeat":
                closed.add(callback_id)
            cursor += payload.delay
            sends.append((cursor, callback_id, match))
        if not sends:
            runner_free = clock.now()
    raise AssertionError("the requirement did not settle within 10,000 driver steps")


def _apply_action(runtime: LocalRuntime, callback_id: str, action: dict[str, Any], bindings: Bindings) -> bool:
    """Send one action; True when it was a heartbeat (the callback stays open for the next one)."""
    operation, data, _ = callback_action_payload(action, bindings)
    try:
        if operation == "success":
            runtime.send_callback_success(callback_id, data if isinstance(data, str) or data is None else json.dumps(data))
        elif operation == "failure":
            runtime.send_callback_failure(callback_id, ErrorObject.model_validate(data or {}))
        else:
            runtime.send_callback_heartbeat(callback_id)
            return True
    except Exception as exc:  # an answer to a callback that already timed out: the runner logs and moves on
        logging.getLogger(__name__).info("callback action %s failed: %s", operation, exc)
    return False


# -- crashing requirements: one subprocess per invocation ---------------------------------------

def _invoke_in_subprocess(req_id: str, db: Path, clock: VirtualClock, workdir: Path) -> bool:
    code = ("import sys; from tests.conformance.driver import serve_one; "
            "sys.exit(serve_one(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]))")
    proc = subprocess.run([sys.executable, "-c", code, req_id, str(db), repr(clock.now()), str(workdir)],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=120)
    if proc.returncode == 3:
        return False  # nothing was runnable
    if proc.returncode not in (0, 137):
        raise AssertionError(f"invocation subprocess failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return True


def serve_one(req_id: str, db: str, now: float, workdir: str) -> int:
    """Subprocess side: run at most one invocation at virtual time ``now``; exit 3 if idle."""
    _load_handlers()
    os.environ["DURAGENT_CONFORMANCE_SCRATCH"] = workdir
    handler = logging.FileHandler(Path(workdir) / f"logs-{os.getpid()}.jsonl")
    from duragent.durable.log import JsonFormatter

    handler.setFormatter(JsonFormatter())
    user_logger = logging.getLogger("duragent.durable.user")
    user_logger.addHandler(handler)
    user_logger.setLevel(logging.DEBUG)
    runtime = LocalRuntime(db, clock=VirtualClock(now), durability="process",
                           functions={function_name(req_id): HANDLERS[req_id], **EXTRA_FUNCTIONS})
    ran = runtime.run_once()
    runtime.close()
    handler.flush()
    return 0 if ran else 3


def _subprocess_logs(workdir: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path in sorted(workdir.glob("logs-*.jsonl"), key=lambda p: p.stat().st_mtime):
        for line in path.read_text().splitlines():
            if line.strip():
                records.append(json.loads(line))
    records.sort(key=lambda r: r.get("timestamp", 0))
    return records
