"""A smoke test of the benchmark code (``make bench`` is not part of ``make test``): the replay
benchmark's two halves, recording N steps and waking the execution in a fresh interpreter, work
on a tiny N, and its numbers are the ones it claims to measure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks._common import Result
from benchmarks.bench_replay import build, reinvoke
from duragent.durable import LocalRuntime


@pytest.mark.parametrize("warm", [False, True])
def test_the_replay_benchmark_wakes_a_recorded_execution_in_a_fresh_process(tmp_path: Path, warm: bool) -> None:
    master = tmp_path / "master.db"
    assert build(master, 20) > 0
    copy = tmp_path / "copy.db"
    shutil.copyfile(master, copy)
    measured = reinvoke(copy, warm=warm)
    assert measured["status"] == "RUNNING" and measured["seconds"] > 0
    # the peak is this invocation's own (reset before it); the kernel counts resident pages lazily, so
    # a tiny replay may read a few pages under the size taken just before
    assert measured["rss_before_kb"] > 0 and measured["peak_kb"] >= measured["rss_before_kb"] - 1024
    assert (measured["warm_up_seconds"] is not None) == warm
    with LocalRuntime(copy) as rt:  # the second invocation replayed 20 steps and suspended again
        assert rt.get("big").invocations == 2
        assert sum(op.Type.value == "STEP" for op in rt.operations("big")) == 20
        assert sum(op.Type.value == "WAIT" for op in rt.operations("big")) == 2
        # the warm-up execution ran again only when the worker was warmed with it
        assert rt.get("warm").invocations == (2 if warm else 1)


def test_results_compare_with_their_target_in_the_stated_direction() -> None:
    assert Result("b", "m", 3.0, "x", target=5.0, op=">=").met is False
    assert Result("b", "m", 6.0, "x", target=5.0, op=">=").met is True
    assert Result("b", "m", 1.2, "x", target=1.2).met is True
    assert Result("b", "m", 1.2, "x", target=1.2, op="<").met is False
    assert Result("b", "m", 1.0, "x").met is None
