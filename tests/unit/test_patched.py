"""ctx.patched: a deliberate change takes the new path in new executions and keeps the old path in
executions that passed that point before the change."""

from __future__ import annotations

from pathlib import Path

from duragent.durable import DurableContext, LocalRuntime, VirtualClock


def old_code(event: dict, ctx: DurableContext) -> str:
    price = ctx.step(lambda: 10, name="old price")
    ctx.wait(60, name="pause")
    return f"charged {price}"


def new_code(event: dict, ctx: DurableContext) -> str:
    if ctx.patched("new-pricing"):
        price = ctx.step(lambda: 12, name="new price")
    else:
        price = ctx.step(lambda: 10, name="old price")
    ctx.wait(60, name="pause")
    return f"charged {price}"


def test_in_flight_executions_keep_the_old_path_and_new_ones_take_the_new(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path / "p.db", clock=VirtualClock(), functions={"order": old_code})
    in_flight = rt.start("order", {"n": 1})
    rt.run_until_idle(skip_time=False)  # suspended in the pause, on the old code
    rt.register(new_code, "order")  # deploy
    fresh = rt.start("order", {"n": 2})
    rt.run_until_idle()  # both finish on the new code
    assert rt.get(in_flight).status == "SUCCEEDED" and rt.get(in_flight).result == "charged 10"
    assert rt.get(fresh).result == "charged 12"
    names = [op.Name for op in rt.operations(fresh)][1:]
    assert names == ["patch:new-pricing", "new price", "pause"]
    assert "patch:new-pricing" not in [op.Name for op in rt.operations(in_flight)]


def test_a_patched_execution_replays_on_the_new_path(tmp_path: Path) -> None:
    calls: list[str] = []

    def handler(event: dict, ctx: DurableContext) -> str:
        path = "new" if ctx.patched("v2") else "old"
        calls.append(path)
        ctx.wait(60, name="pause")
        return path

    rt = LocalRuntime(tmp_path / "r.db", clock=VirtualClock())
    execution_id = rt.start(handler, {})
    rt.run_until_idle()
    assert rt.get(execution_id).result == "new"
    assert calls == ["new", "new"]  # the second invocation replayed the marker: still the new path
