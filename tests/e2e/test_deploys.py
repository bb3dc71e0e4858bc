"""Issue 9, hole 3, as a soak: deploys that leave the handler's file half-written or briefly
missing, while executions wait in it and workers come and go.

Round after round, the handler's file is written in a random state: a complete new version, cut
short at a random point (a SyntaxError: the state a file is in while a deploy copies it), or
missing; then a real worker process (``duragent worker --until-idle``) starts on it. A worker that
meets a broken file must leave the executions waiting, with the reason, and a later worker on a
complete file must resume them: every execution ends SUCCEEDED, no step body runs twice, and the
broken states were really met. When only timers are left, the test waits for the next one to come
due (a condition, read from the store) before the next round.

Rounds: DURAGENT_DEPLOY_ROUNDS (``make soak`` runs more), executions: DURAGENT_DEPLOY_EXECUTIONS,
seed: DURAGENT_DEPLOY_SEED.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from duragent.durable import LocalRuntime
from tests.e2e import handlers as H

REPO = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("DURAGENT_DEPLOY_ROUNDS", "8"))
EXECUTIONS = int(os.environ.get("DURAGENT_DEPLOY_EXECUTIONS", "6"))
SEED = int(os.environ.get("DURAGENT_DEPLOY_SEED", "20250901"))
STEPS = max(4, ROUNDS // 3)
"""Steps of each execution, with a 1 s wait after each but the last: they live through most rounds."""


def _half_written(source: str, rng: random.Random) -> str:
    """A prefix of ``source`` that does not compile: where a copy in progress leaves it."""
    while True:
        cut = rng.randint(1, len(source) - 1)
        try:
            compile(source[:cut], "deployed.py", "exec")
        except SyntaxError:
            return source[:cut]


def _worker(db: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), "worker", "--until-idle"], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)


def test_half_written_and_missing_deploys_never_fail_an_execution(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED)
    db, log, source = tmp_path / "deploys.db", tmp_path / "effects.log", tmp_path / "app" / "deployed.py"
    source.parent.mkdir()
    version = 1
    source.write_text(H.DEPLOYED.format(version=version))
    with LocalRuntime(db) as rt:
        ids = [rt.start("deployed", {"log": str(log), "steps": STEPS}, execution_id=f"d{i}",
                        target=f"{source}:deployed")
               for i in range(EXECUTIONS)]

    met: Counter[str] = Counter()
    deadline = time.monotonic() + 60 + 10 * ROUNDS
    rounds = 0
    while True:
        with LocalRuntime(db) as rt:
            running = [eid for eid in ids if rt.get(eid).status == "RUNNING"]
        if not running and rounds >= ROUNDS:
            break
        assert time.monotonic() < deadline, f"not done after {rounds} rounds: {running} still running"
        rounds += 1
        state = "complete" if rounds > ROUNDS else rng.choice(["complete", "half-written", "half-written", "missing"])
        if state == "complete":
            version += 1
            source.write_text(H.DEPLOYED.format(version=version))
        elif state == "half-written":
            source.write_text(_half_written(H.DEPLOYED.format(version=version + 1), rng))
        else:
            source.unlink(missing_ok=True)
        with LocalRuntime(db) as rt:
            due = rt.service.next_due()
        while due is not None and due > time.time():
            time.sleep(0.01)  # the next wait comes due (a condition on the store's own timer): work to do
        done = _worker(db, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        if state != "complete" and "cannot run" in done.stderr:
            met[state] += 1

    with LocalRuntime(db) as rt:
        infos = [rt.get(eid) for eid in ids]
        stalls = sum(1 for eid in ids for e in rt.history(eid) if e["EventType"] == "InvocationCompleted"
                     and "Error" in e["InvocationCompletedDetails"])
    for info in infos:
        assert info.status == "SUCCEEDED", (info.id, info.error)
        assert info.result["total"] == sum(i * i for i in range(1, STEPS + 1)) and info.stalled is None
    runs = Counter((line.split()[0], line.split()[1], line.split()[4]) for line in log.read_text().splitlines())
    assert set(runs.values()) == {1}, f"a step body ran twice: {runs}"
    assert len(runs) == 2 * STEPS * EXECUTIONS  # the begin and done of every step
    assert sum(met.values()) > 0 and stalls > 0, f"no broken deploy was met in {rounds} rounds ({met})"
    with capsys.disabled():
        print(f"\n{rounds} deploy rounds, {EXECUTIONS} executions: workers met a half-written file "
              f"{met['half-written']} times and a missing one {met['missing']} times ({stalls} abandoned "
              f"invocations); 0 executions failed, no step ran twice")
