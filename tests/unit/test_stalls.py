"""Issue 9, hole 3, in-process: an execution whose handler cannot be loaded stays RUNNING; the
abandoned invocation is recorded with the reason; it is retried with exponential backoff; and the
first invocation that runs again clears the record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from duragent.durable import DurableContext, LocalRuntime, VirtualClock
from duragent.durable.local.service import MAX_STALL_SECONDS

GOOD = '''
def handler(event, ctx):
    return {"doubled": ctx.step(lambda: event["n"] * 2, name="double")}
'''


def _abandoned(rt: LocalRuntime, eid: str) -> list[dict[str, Any]]:
    return [e["InvocationCompletedDetails"]["Error"]["Payload"] for e in rt.history(eid)
            if e["EventType"] == "InvocationCompleted" and "Error" in e["InvocationCompletedDetails"]]


def test_backoff_then_a_fixed_file_resumes(tmp_path: Path, rt: LocalRuntime, clock: VirtualClock) -> None:
    source = tmp_path / "deployed_job.py"
    source.write_text("def handler(event, ctx):\n    return (\n")  # half-written
    eid = rt.start("deployed-job", {"n": 21}, target=f"{source}:handler")

    delays = []
    for attempt in range(1, 5):
        assert rt.run_until_idle() == 1  # one try, then nothing is runnable until the backoff ends
        info = rt.get(eid)
        assert info.status == "RUNNING" and info.stalled is not None
        assert info.stalled["attempts"] == attempt and "SyntaxError" in info.stalled["reason"]
        delays.append(info.stalled["retry_at"] - clock.now())
        assert rt.run_once() is False
        clock.advance(delays[-1] + 0.001)
    assert delays == [rt.retry_delay * 2 ** i for i in range(4)]
    assert len(_abandoned(rt, eid)) == 4 and all(e["ErrorType"] == "SyntaxError" for e in _abandoned(rt, eid))
    assert rt.get(eid).invocations == 4

    source.write_text(GOOD)  # the deploy completes
    rt.run_until_idle()
    info = rt.get(eid)
    assert info.status == "SUCCEEDED" and info.result == {"doubled": 42}
    assert info.stalled is None and rt.service.execution(eid)["info"] is None


def test_the_backoff_is_capped(tmp_path: Path, rt: LocalRuntime, clock: VirtualClock) -> None:
    eid = rt.start("missing", {}, target=f"{tmp_path / 'not_there.py'}:handler")
    for _ in range(14):
        rt.run_until_idle()
        stalled = rt.get(eid).stalled
        assert stalled is not None
        clock.advance(stalled["retry_at"] - clock.now() + 0.001)
    assert stalled["retry_at"] - stalled["at"] == MAX_STALL_SECONDS
    assert "no such file" in stalled["reason"]


def test_a_function_no_runtime_knows_waits_instead_of_failing(rt: LocalRuntime) -> None:
    def nested(event: Any, ctx: DurableContext) -> int:  # no import target: only its own runtime can run it
        return 1

    eid = rt.start(nested)
    other = LocalRuntime(rt.store.path, clock=rt.clock)  # another process, without the function
    try:
        other.run_until_idle()
        stalled = other.get(eid).stalled
        assert stalled is not None and "no handler registered for function 'nested'" in stalled["reason"]
        rt.clock.advance(stalled["retry_at"] - rt.clock.now() + 0.001)  # type: ignore[attr-defined]
        rt.run_until_idle()  # the runtime that has it
        assert rt.get(eid).status == "SUCCEEDED" and rt.get(eid).stalled is None
    finally:
        other.close()


def test_a_stopped_execution_shows_no_stall(tmp_path: Path, rt: LocalRuntime) -> None:
    eid = rt.start("missing", {}, target=f"{tmp_path / 'not_there.py'}:handler")
    rt.run_until_idle()
    assert rt.get(eid).stalled is not None
    rt.stop(eid)
    assert rt.get(eid).status == "STOPPED" and rt.get(eid).stalled is None


@pytest.mark.parametrize("body", ["import not_a_module_anywhere\n", "raise KeyError('SETTINGS')\n",
                                  "import sys\nsys.exit('no config')\n", "def other(event, ctx):\n    return 1\n"])
def test_every_kind_of_unloadable_module_stalls(tmp_path: Path, rt: LocalRuntime, body: str) -> None:
    source = tmp_path / f"mod_{abs(hash(body))}.py"
    source.write_text(body)
    eid = rt.start("job", {}, target=f"{source}:handler")
    rt.run_until_idle()
    info = rt.get(eid)
    assert info.status == "RUNNING" and info.stalled is not None, info
