"""9. Fast start: time to the first byte of output of ``duragent list`` (a store with a few executions),
``duragent --help`` and ``duragent show ID``, against ``python -c pass`` (the interpreter alone),
each in a fresh process, median of several runs. For information: what is held (in ``make test``) is
that these commands import no provider SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from duragent.durable import LocalRuntime, VirtualClock

from ._common import Result, main, median
from ._handlers import short


def first_output(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds from spawning ``cmd`` to its first byte on stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    assert proc.stdout is not None
    proc.stdout.read(1)
    elapsed = time.perf_counter() - t0
    proc.stdout.read()
    proc.wait()
    return elapsed


def run(mode: str, workdir: Path) -> list[Result]:
    reps = 7 if mode == "quick" else 15
    db = workdir / "cli.db"
    with LocalRuntime(db, clock=VirtualClock(), functions=[short]) as rt:
        ids = [rt.run(short, i).id for i in range(5)]
    env = {**os.environ, "DURAGENT_DB": str(db)}
    duragent = [sys.executable, "-m", "duragent"]
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "duragent list": [*duragent, "list"],
                "duragent --help": [*duragent, "--help"],
                "duragent show ID": [*duragent, "show", ids[0]]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(reps):  # interleaved, so load drifts hit every command alike
        for name, cmd in commands.items():
            times[name].append(first_output(cmd, env, workdir) * 1000)
    base = median(times["python -c pass"])
    results = [Result("startup", "python -c pass (first byte: exit)", base, "ms", note=f"median of {reps}")]
    for name in ("duragent list", "duragent --help", "duragent show ID"):
        value = median(times[name])
        results.append(Result("startup", f"{name}: time to first output", value, "ms",
                              note=f"{value / base:.1f}x python -c pass; runs {min(times[name]):.0f}.."
                                   f"{max(times[name]):.0f} ms", extra={"runs_ms": times[name]}))
    return results


if __name__ == "__main__":
    main(run, "startup")
