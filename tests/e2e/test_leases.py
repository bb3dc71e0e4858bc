"""Two worker processes on one SQLite file: every execution completes, every step body runs exactly
once, and no execution is ever in an invocation in both processes at the same time."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from duragent.durable import LocalRuntime
from duragent.durable.local.doctor import examine
from tests.e2e import handlers as H

REPO = Path(__file__).resolve().parents[2]
EXECUTIONS = int(os.environ.get("DURAGENT_LEASE_EXECUTIONS", "8"))
WORKERS = int(os.environ.get("DURAGENT_LEASE_WORKERS", "2"))  # `make soak` runs four

# A worker that records when each of its invocations starts and ends (monotonic clock: one
# timeline for all processes on the machine), and exits once nothing in the store is RUNNING.
WORKER = """
import os, sys, threading, time
from duragent.durable import LocalRuntime, Plugin

db, trace = sys.argv[1], sys.argv[2]

def note(kind, arn):
    line = f"{kind} {arn.rsplit('/', 1)[-1]} {os.getpid()} {time.monotonic_ns()}\\n"
    fd = os.open(trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line.encode())
    os.close(fd)

class Trace(Plugin):
    def on_invocation_start(self, info): note("start", info.execution_arn)
    def on_invocation_end(self, info): note("end", info.execution_arn)

rt = LocalRuntime(db, plugins=[Trace()])
stop = threading.Event()

def watch():
    while rt.list(status="RUNNING"):
        time.sleep(0.05)
    stop.set()

threading.Thread(target=watch, daemon=True).start()
rt.worker(stop, max_sleep=0.05)
"""


def test_two_worker_processes_share_one_store(tmp_path: Path) -> None:
    db, log, trace = tmp_path / "shared.db", tmp_path / "effects.log", tmp_path / "trace.log"
    with LocalRuntime(db) as rt:
        ids = [rt.start(H.steps_and_waits, {"log": str(log), "step_seconds": 0.01}, execution_id=f"e{i}")
               for i in range(EXECUTIONS)]

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(db), str(trace)], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(WORKERS)]
    try:
        for proc in workers:
            _, stderr = proc.communicate(timeout=30 + 2 * EXECUTIONS)
            assert proc.returncode == 0, stderr.decode()
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    pids = {proc.pid for proc in workers}

    with LocalRuntime(db) as rt:
        for eid in ids:
            info = rt.get(eid)
            assert info.status == "SUCCEEDED", info.error
            assert info.result == 1 + 4 + 9
            assert info.invocations == 3  # one per wait boundary: nobody ran an invocation twice
            succeeded = [e["Name"] for e in rt.history(eid) if e["EventType"] == "StepSucceeded"]
            assert sorted(succeeded) == ["s1", "s2", "s3"]

    assert examine(db).findings == [], examine(db).format()

    # every step body ran exactly once (one begin, one done), in one of the workers
    runs: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
    for raw in log.read_text().splitlines():
        eid, step, _attempt, pid, phase = raw.split()
        runs[(eid, int(step))].append((phase, int(pid)))
    assert set(runs) == {(eid, step) for eid in ids for step in (1, 2, 3)}
    for key, entries in runs.items():
        assert [phase for phase, _ in entries] == ["begin", "done"], (key, entries)
        assert entries[0][1] in pids

    # no execution was inside an invocation in two processes at once
    spans: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    open_spans: dict[tuple[str, int], int] = {}
    for raw in trace.read_text().splitlines():
        kind, eid, pid_text, t_text = raw.split()
        pid, t = int(pid_text), int(t_text)
        if kind == "start":
            assert (eid, pid) not in open_spans
            open_spans[(eid, pid)] = t
        else:
            spans[eid].append((open_spans.pop((eid, pid)), t, pid))
    assert not open_spans
    for eid, intervals in spans.items():
        assert len(intervals) == 3, (eid, intervals)
        intervals.sort()
        for (_, end, _), (start, _, _) in zip(intervals, intervals[1:], strict=False):
            assert end <= start, f"{eid} ran in two processes at once: {intervals}"
    # the workers shared the work (waits make executions runnable again while they all poll)
    assert len({pid for intervals in spans.values() for *_, pid in intervals}) >= min(2, WORKERS)
