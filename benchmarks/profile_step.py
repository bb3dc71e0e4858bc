"""Profile the durable step path: ``python -m benchmarks.profile_step [N]``.

Runs a handler of N trivial ``ctx.step`` calls (durability="process", so the disk does not hide
the Python cost) under cProfile, and a replay of the same N steps, and writes the top functions
by own time and by cumulative time to ``benchmarks/results/profile_step.txt``."""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from typing import Any

from duragent.durable import DurableContext, LocalRuntime, VirtualClock
from duragent.durable.errors import SuspendExecution
from duragent.durable.local.service import local_arn
from duragent.durable.state import ExecutionState

from ._common import RESULTS, scratch_dir


def trivial(i: int) -> int:
    return i


def steps_then_wait(event: dict[str, Any], ctx: Any) -> None:
    for i in range(event["n"]):
        ctx.step(trivial, i, name="trivial")
    ctx.wait(3600)


def report(profile: cProfile.Profile, title: str, wall: float, n: int, top: int = 30) -> str:
    out = io.StringIO()
    out.write(f"==== {title}: {wall / n * 1e6:.1f} µs/step without the profiler, N={n} ====\n")
    for key in ("tottime", "cumulative"):
        stats = pstats.Stats(profile, stream=out)
        stats.strip_dirs().sort_stats(key).print_stats(top)
    return out.getvalue()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    sections = []
    with scratch_dir("profile") as workdir:
        # first run: unprofiled timing, then profiled
        with LocalRuntime(workdir / "plain.db", durability="process", clock=VirtualClock()) as rt:
            t0 = time.perf_counter()
            rt.run(steps_then_wait, {"n": n})
            wall = time.perf_counter() - t0
        profile = cProfile.Profile()
        with LocalRuntime(workdir / "profiled.db", durability="process", clock=VirtualClock()) as rt:
            execution_id = rt.start(steps_then_wait, {"n": n})
            profile.enable()
            rt.run_once()
            profile.disable()
            sections.append(report(profile, "first run, durability=process (whole invocation)", wall, n))

            # replay: the same N steps from the stored operations, in memory
            operations = rt.operations(execution_id)
            arn = local_arn(rt.get(execution_id).function, execution_id)

            def replay() -> None:
                state = ExecutionState(arn=arn, token="unused", operations=list(operations), service=rt.service,
                                       now=rt.clock.now)
                try:
                    steps_then_wait({"n": n}, DurableContext(state))
                except SuspendExecution:
                    pass
                finally:
                    state.close()

            t0 = time.perf_counter()
            replay()
            replay_wall = time.perf_counter() - t0
            profile = cProfile.Profile()
            profile.enable()
            replay()
            profile.disable()
            sections.append(report(profile, "replay in memory", replay_wall, n))

            # re-invocation: load N operations from SQLite and parse them
            profile = cProfile.Profile()
            t0 = time.perf_counter()
            profile.enable()
            rt.operations(execution_id)
            profile.disable()
            sections.append(report(profile, "loading operations (rt.operations)", time.perf_counter() - t0, n, 15))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "profile_step.txt"
    path.write_text("\n".join(sections))
    for section in sections:
        print("\n".join(section.splitlines()[:60]))
    print(f"full profile: {path}")


if __name__ == "__main__":
    main()
