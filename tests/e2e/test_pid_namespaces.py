"""Issue 9, hole 2: two workers in different PID namespaces (two containers sharing a volume and a
hostname) on one store never run an at-most-once step twice.

Each worker runs for real under ``unshare --pid --fork`` (as root, as the crash tests kill for
real). Worker A runs an execution whose at-most-once step takes seconds; worker B, in another PID
namespace, starts while the step runs. A's PID means nothing in B's namespace (there it is free, or
some other process), so B must not take A's lease over: it may only wait for the lease to lapse.

- A alive: B never takes over; the step ran once, the execution succeeded in A, nothing failed.
- A SIGKILLed mid-step (``make soak`` runs more of these): B takes over only after A's lease lapsed,
  the interrupted attempt is recorded as such and never runs again (attempt 2 runs instead).

Both with a ``/proc`` mounted for each namespace and with the host's ``/proc`` left in place.
Trials: DURAGENT_PIDNS_TRIALS (each trial runs every variant once).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from duragent.durable import LocalRuntime
from tests.e2e import handlers as H

REPO = Path(__file__).resolve().parents[2]
TRIALS = int(os.environ.get("DURAGENT_PIDNS_TRIALS", "1"))
LEASE_SECONDS = 3.0

# A worker that serves the store until nothing is RUNNING; it writes a marker once it is serving.
WORKER = """
import os, sys, threading, time
from duragent.durable import LocalRuntime

db, ready, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
rt = LocalRuntime(db, lease_seconds=lease)
stop = threading.Event()
serving = threading.Thread(target=rt.worker, args=(stop,), kwargs={"max_sleep": 0.02})
serving.start()
time.sleep(0.2)  # a few passes of the worker loop, each one looking at the other's lease
open(ready, "w").write(str(os.getpid()))
while rt.list(status="RUNNING"):
    time.sleep(0.05)
stop.set()
serving.join()
"""


def _unshare_available() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"cannot make PID namespaces here: {probe.stderr.strip()}"


pytestmark = pytest.mark.skipif(_unshare_available() is not None, reason=str(_unshare_available()))


def _worker_in_new_pid_namespace(db: Path, ready: Path, *, own_proc: bool, pid_one: bool) -> subprocess.Popen[bytes]:
    """``pid_one``: the worker is its namespace's PID 1. Otherwise a shell is, and runs a few
    programs first, so that the worker's PID is one that names no process (nor thread) in the other
    namespace: there it looks dead, as a container's PIDs look to its neighbour."""
    command = [sys.executable, "-c", WORKER, str(db), str(ready), str(LEASE_SECONDS)]
    wrapped = command if pid_one else ["sh", "-c", "for i in $(seq 20); do /bin/true; done; \"$@\"; exit $?", "sh",
                                       *command]
    unshare = ["unshare", "--pid", "--fork", "--kill-child", *(["--mount-proc"] if own_proc else [])]
    return subprocess.Popen([*unshare, *wrapped], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(what: str, condition: Any, procs: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            if proc.poll() is not None and proc.returncode != 0:
                assert proc.stderr is not None
                raise AssertionError(f"a worker exited {proc.returncode}: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.005)


def _lines(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def _charge_lines(log: Path, phase: str) -> list[list[str]]:
    return [x for x in _lines(log) if x[1] == "2" and x[4] == phase]


def run_trial(tmp_path: Path, name: str, *, own_proc: bool, kill_first: bool) -> dict[str, Any]:
    db, log = tmp_path / f"{name}.db", tmp_path / f"{name}.log"
    ready_a, ready_b = tmp_path / f"{name}.a", tmp_path / f"{name}.b"
    amo_seconds = 1.5 if kill_first else 3.0
    with LocalRuntime(db) as rt:
        eid = rt.start(H.guarded_charge, {"log": str(log), "amo_seconds": amo_seconds}, execution_id=name)
    a = _worker_in_new_pid_namespace(db, ready_a, own_proc=own_proc, pid_one=False)
    procs = [a]
    try:
        _wait_for("at-most-once step begun in A", lambda: _charge_lines(log, "begin"), procs)
        b = _worker_in_new_pid_namespace(db, ready_b, own_proc=own_proc, pid_one=True)
        procs.append(b)
        if kill_first:
            a.send_signal(signal.SIGKILL)  # --kill-child: the namespace's processes die with it
            a.wait(10)
        _wait_for("worker B serving", ready_b.exists, [b] if kill_first else procs)
        assert not _charge_lines(log, "done"), "the step ended before B was serving: the trial proves nothing"
        for proc in procs:
            _, stderr = proc.communicate(timeout=60)
            if proc is not a or not kill_first:
                assert proc.returncode == 0, stderr.decode()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    with LocalRuntime(db) as rt:
        info = rt.get(eid)
        history = rt.history(eid)
    begins, dones = _charge_lines(log, "begin"), _charge_lines(log, "done")
    attempts = [int(x[2]) for x in begins]
    context = f"{name}: log {_lines(log)}"
    assert info.status == "SUCCEEDED", f"{context}: {info.error}"
    assert len(attempts) == len(set(attempts)), f"{context}: an at-most-once attempt ran twice"
    failed = [e for e in history if e["EventType"] == "StepFailed"]
    if not kill_first:
        # A was alive all along: B never took over; one attempt, begun and finished in A
        assert attempts == [1] and len(dones) == 1, context
        assert failed == [], context
        assert info.invocations == 1, context
    else:
        # A died mid-step: B waited for the lease to lapse, recorded the interruption, ran attempt 2
        assert attempts == [1, 2] and [int(x[2]) for x in dones] == [2], context
        assert [e["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] for e in failed] == \
            ["duragent.StepInterruptedError"], context
        resumed = [e for e in history if e["EventType"] == "InvocationCompleted"
                   and "Error" in e["InvocationCompletedDetails"]]
        assert resumed, context  # the killed invocation shows as a Runtime.ExitError
        took_over = [e["EventTimestamp"] for e in history if e["EventType"] == "StepFailed"][0]
        started = [e["EventTimestamp"] for e in history if e["EventType"] == "StepStarted"
                   and e.get("Name") == "charge"][0]
        assert took_over - started >= LEASE_SECONDS - 0.5, f"{context}: taken over before the lease lapsed"
    return {"attempts": attempts}


VARIANTS = [(own_proc, kill_first) for own_proc in (True, False) for kill_first in (False, True)]


@pytest.mark.parametrize(("own_proc", "kill_first"), VARIANTS,
                         ids=[f"{'own' if p else 'host'}-proc-{'killed' if k else 'alive'}" for p, k in VARIANTS])
def test_workers_in_two_pid_namespaces_never_run_an_at_most_once_step_twice(
        tmp_path: Path, own_proc: bool, kill_first: bool) -> None:
    for trial in range(TRIALS):
        run_trial(tmp_path, f"t{trial}", own_proc=own_proc, kill_first=kill_first)
