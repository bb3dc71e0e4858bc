"""The conformance handlers on AWS's emulator, through our Lambda entry point.

For every requirement: (a) the emulator's history matches the requirement's expected history and
result (and logs), and (b) the local runtime's history and the emulator's agree event by event.
Every difference the emulator is known to introduce is tolerated only by name (compare.QUIRKS,
PROTOCOL.md §8); each test reports the quirks it met. Executions run concurrently in real time
(the emulator's --skip-time fires a timer before the invocation that set it has completed, which
reorders InvocationCompleted), so the whole suite costs about as long as its slowest requirement.
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.driver import CRASHING, Outcome, _load_handlers
from tests.conformance.driver import run as run_locally
from tests.conformance.matcher import Bindings, check_logs, check_result, match_history
from tests.conformance.requirements import Requirement, all_requirement_ids, load_requirement
from tests.conformance.test_conformance import SUITES

from .compare import MET, QUIRKS, compare, tolerate, without_invocation_completed
from .conformance_emulator import EmulatorOutcome, LogCapture, register_all, run_requirement
from .emulator import Emulator

_load_handlers()

RANDOM_DELAYS = {"1-13": "the default retry strategy uses full jitter: each side draws its own delays"}
ANY_ORDER = {"8-11": "branches run concurrently and finish in any order (the requirement says so)",
             "9-11": "items run concurrently and finish in any order (the requirement says so)"}

CONCURRENCY = 32
"""Executions in flight at once (the emulator's HTTP server has a small listen backlog)."""

IDS = [req_id for suite in SUITES for req_id in all_requirement_ids(suite)]


@dataclass
class Run:
    req: Requirement
    bindings: Bindings
    local: Outcome
    emulator: EmulatorOutcome | None
    failure: str | None = None


@pytest.fixture(scope="module")
def runs(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every requirement, locally (virtual clock, one after another) and then on the emulator
    (all at once, real time)."""
    import logging

    scratch = Path(tmp_path_factory.mktemp("conformance-emulator"))
    register_all(emulator, scratch)
    runs: dict[str, Run] = {}
    for req_id in IDS:
        req = load_requirement(req_id)
        bindings = Bindings()
        bindings.resolve_variables(req.variables)
        with tempfile.TemporaryDirectory() as workdir:
            local = run_locally(req, bindings.copy(), Path(workdir))
        runs[req_id] = Run(req, bindings, local, None)
    capture = LogCapture()
    user_logger = logging.getLogger("duragent.durable.user")
    user_logger.addHandler(capture)
    user_logger.setLevel(logging.DEBUG)

    def on_emulator(req_id: str) -> None:
        run = runs[req_id]
        try:
            run.emulator = run_requirement(emulator, run.req, run.bindings, capture)
        except Exception as exc:
            run.failure = f"{type(exc).__name__}: {exc}"

    try:
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            list(pool.map(on_emulator, IDS))
    finally:
        user_logger.removeHandler(capture)
    return runs


@pytest.mark.parametrize("req_id", IDS)
def test_requirement_on_emulator(req_id: str, runs: dict[str, Run], record_property: Any) -> None:
    run = runs[req_id]
    assert run.failure is None, run.failure
    emu = run.emulator
    assert emu is not None
    expected, actual = run.req.expected_history, emu.history
    met: set[str] = set()
    if req_id in CRASHING:  # the handler kills its process: a function error, retried by the emulator
        expected, actual = without_invocation_completed(expected, actual)
        met.add("crash-no-invocation-completed")
    bindings = run.bindings
    errors, quirks = tolerate(emu.errors + match_history(expected, actual, bindings))
    met |= quirks
    if run.req.expected_result is not None and not errors:
        errors += check_result(run.req.expected_result, emu.status, emu.result, bindings)
    if run.req.expected_logs and not errors:
        errors += check_logs(run.req.expected_logs, emu.logs, bindings)

    local_history = json.loads(json.dumps(run.local.history))
    emu_history = emu.history
    if req_id in CRASHING:
        _, local_history = without_invocation_completed([], local_history)
        _, emu_history = without_invocation_completed([], emu_history)
    diffs, quirks = compare(local_history, emu_history, prefix=emu.history_only,
                            random_delays=req_id in RANDOM_DELAYS, any_order=req_id in ANY_ORDER)
    met |= quirks
    if not emu.history_only:
        if run.local.status != emu.status:
            diffs.append(f"status {run.local.status} (local) vs {emu.status} (emulator)")
        elif emu.status == "SUCCEEDED" and _json(run.local.result) != _json(emu.result):
            diffs.append(f"result {run.local.result!r} (local) vs {emu.result!r} (emulator)")
    record_property("emulator_quirks", ", ".join(sorted(met)))
    for quirk in met:
        MET.setdefault(quirk, set()).add(req_id)
    assert not (errors or diffs), (
        f"{req_id}: {run.req.description}\nemulator vs requirement:\n  " + "\n  ".join(errors)
        + "\nlocal vs emulator:\n  " + "\n  ".join(diffs) + f"\nquirks tolerated: {sorted(met)}"
        + "\n--- emulator history ---\n" + "\n".join(_line(e) for e in emu.history))
    assert met <= set(QUIRKS)


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return text


def _line(event: dict[str, Any]) -> str:
    details = {k: v for k, v in event.items() if k.endswith("Details")}
    return f"{event.get('EventId'):>3} {event['EventType']:<22} {event.get('Name')!s:<28} {details}"[:300]
