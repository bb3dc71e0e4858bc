"""`duragent replay-check`: replays waiting executions against the code deployed now, runs no step
body, writes nothing, and fails (exit 1) naming the first divergence."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HANDLER = """
from pathlib import Path

from duragent.durable import DurableContext

EFFECTS = Path(__file__).with_suffix(".effects")


def charge(amount: int) -> int:
    with EFFECTS.open("a") as fh:
        fh.write("charge\\n")
    return amount


def handler(event: dict, ctx: DurableContext) -> dict:
    charged = ctx.step(charge, event["amount"], name="{first}")
    ctx.wait(3600, name="cool-off")
    shipped = ctx.step(lambda: "shipped", name="ship")
    return {{"charged": charged, "shipped": shipped}}
"""


def _cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_unchanged_code_passes_and_changed_code_fails_with_the_position(tmp_path: Path) -> None:
    module = tmp_path / "shop.py"
    module.write_text(textwrap.dedent(HANDLER.format(first="charge")))
    db = tmp_path / "s.db"
    run = _cli(db, "run", f"{module}:handler", "--input", '{"amount": 5}', "--id", "order-1")
    assert run.returncode == 0, run.stderr
    effects = module.with_suffix(".effects")
    assert effects.read_text().splitlines() == ["charge"]
    history_before = _cli(db, "history", "order-1", "--json").stdout

    same = _cli(db, "replay-check", "--json")
    assert same.returncode == 0, same.stdout + same.stderr
    [result] = json.loads(same.stdout)
    assert result["ok"] and result["outcome"] == "suspends" and result["execution_id"] == "order-1"

    module.write_text(textwrap.dedent(HANDLER.format(first="charge card")))  # a renamed step: a divergence
    changed = _cli(db, "replay-check")
    assert changed.returncode == 1
    assert "FAIL order-1" in changed.stdout
    assert "'charge card'" in changed.stdout and "'charge'" in changed.stdout  # what code asks, what history holds
    assert "1 of 1 execution(s)" in changed.stderr

    assert effects.read_text().splitlines() == ["charge"]  # no step body ran during the checks
    assert _cli(db, "history", "order-1", "--json").stdout == history_before  # nothing was written


def test_new_work_after_the_recorded_history_is_not_a_divergence(tmp_path: Path) -> None:
    from duragent.durable import DurableContext, LocalRuntime, VirtualClock
    from duragent.durable.replay_check import replay_check

    ran: list[str] = []

    def first(event: dict, ctx: DurableContext) -> str:
        ctx.step(lambda: ran.append("a") or "a", name="a")
        ctx.wait(60, name="pause")
        return "done"

    def grown(event: dict, ctx: DurableContext) -> str:
        ctx.step(lambda: ran.append("a") or "a", name="a")
        ctx.wait(60, name="pause")
        ctx.step(lambda: ran.append("b") or "b", name="b")  # added after the pause: fine for old executions
        return "done"

    rt = LocalRuntime(tmp_path / "g.db", clock=VirtualClock(), functions={"job": first})
    execution_id = rt.start("job", {})
    rt.run_until_idle(skip_time=False)
    assert ran == ["a"]
    rt.clock.advance(61)  # type: ignore[attr-defined]
    rt.service.fire_due()  # the wait is over; the next invocation would run new work
    rt.register(grown, "job")
    [result] = replay_check(rt, [execution_id])
    assert result.ok and result.outcome == "reaches new work" and "'b'" in result.detail
    assert ran == ["a"]  # still nothing ran
