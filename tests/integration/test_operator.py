"""The operator API (duragent.ops) over a real store: no silent caps (2,000 pending callbacks page
with a total, and the 2,000th is answered by its id from the API, the console and the CLI), and
the journal's story of invocations: a crash, the resume, what it replayed, the cost it saved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from duragent.agents import Agent
from duragent.agents.models.scripted import ScriptedModel
from duragent.console import ConsoleServer
from duragent.durable import DurableContext, LocalRuntime, VirtualClock
from duragent.durable.errors import CallbackNotFoundError
from duragent.ops import LocalOperator, cost_split, invocations

REPO = Path(__file__).resolve().parents[2]
WAITING = 2000


def hook(event: Any, ctx: DurableContext) -> Any:
    return ctx.wait_for_callback(lambda callback_id: {"n": event["n"]}, name=f"hook {event['n']}")


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LocalRuntime]]:
    """A store where 2,000 executions wait for an answer (the old inbox showed 500 of them)."""
    db = tmp_path_factory.mktemp("crowded") / "store.db"
    with LocalRuntime(db, clock=VirtualClock()) as rt:
        for n in range(WAITING):
            rt.start(hook, {"n": n}, execution_id=f"hook-{n:04d}")
        rt.run_until_idle(skip_time=False)
        yield db, rt


def test_two_thousand_pending_callbacks_page_with_a_total(crowded: tuple[Path, LocalRuntime]) -> None:
    db, _ = crowded
    with LocalOperator.open(db) as ops:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = ops.pending(limit=1000, cursor=cursor)
            assert page.total == WAITING
            seen.extend(item.callback_id for item in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == WAITING
        last = ops.pending(limit=1, cursor=str(WAITING - 1)).items[0]
        assert last.execution_id == f"hook-{WAITING - 1:04d}" and last.name == f"hook {WAITING - 1}"
        assert last.asked == {"n": WAITING - 1}  # what the plain callback's submitter recorded
        assert ops.pending_callback(last.callback_id).execution_id == last.execution_id
        listing = ops.list_executions(limit=7, cursor="1995")
        assert listing.total == WAITING and len(listing.items) == 5 and listing.next_cursor is None


def test_the_two_thousandth_is_answered_from_the_console_and_the_cli(crowded: tuple[Path, LocalRuntime]) -> None:
    db, rt = crowded
    with LocalOperator.open(db) as ops:
        tail = ops.pending(limit=2, cursor=str(WAITING - 2)).items
    with ConsoleServer(LocalOperator.open(db)).start() as console:
        body = json.dumps({"answer": {"via": "console"}}).encode()
        request = urllib.request.Request(f"{console.base_url}/api/reviews/{tail[-1].callback_id}/answer", data=body,
                                         headers={"Authorization": f"Bearer {console.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["execution_id"] == tail[-1].execution_id
        reviews = urllib.request.Request(f"{console.base_url}/api/reviews?limit=1",
                                         headers={"Authorization": f"Bearer {console.token}"})
        with urllib.request.urlopen(reviews, timeout=30) as response:
            assert json.loads(response.read())["total"] == WAITING - 1
        console.operator.close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), "answer", tail[0].callback_id,
                           '{"via": "cli"}'], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    rt.run_until_idle(skip_time=False)
    assert rt.get(tail[-1].execution_id).result == {"via": "console"}
    assert rt.get(tail[0].execution_id).result == {"via": "cli"}
    with LocalOperator.open(db) as ops:
        assert ops.pending(limit=1).total == WAITING - 2
        with pytest.raises(CallbackNotFoundError, match="already completed"):
            ops.answer(tail[0].callback_id, 1)


# -- a crash, and what the resume replayed -------------------------------------------------------
def test_a_crash_shows_as_an_invocation_and_the_resume_replays_without_paying_twice(tmp_path: Path) -> None:
    agent = Agent(ScriptedModel(["first thought", "second thought"], name="thinker"), name="thinker")

    def thinking(event: Any, ctx: DurableContext) -> str:
        first = agent.run(ctx, "think").output
        ctx.step(lambda: "side effect", name="between")
        return str(first) + " / " + str(agent.override(model=ScriptedModel(["again"], name="thinker2"))
                                        .run(ctx, "think again").output)

    clock = VirtualClock()
    with LocalRuntime(tmp_path / "store.db", clock=clock, lease_seconds=30) as rt:
        execution_id = rt.start(thinking, {})
        # an invocation that never reports back: a worker killed mid-run (its lease then lapses)
        abandoned = rt.service.claim("ghost:1:dead", rt.lease_seconds)
        assert abandoned is not None
        clock.advance(31)
        rt.run_until_idle(skip_time=False)
        ops = LocalOperator(rt)
        info = ops.get(execution_id)
        assert info.status == "SUCCEEDED", info.error
        runs = invocations(ops.history(execution_id), ops.operations(execution_id))
        assert [run.crashed for run in runs] == [True, False]
        assert "ended without reporting back" in (runs[0].error or "")
        assert runs[1].replayed == []  # the ghost had checkpointed nothing
        cost = cost_split(ops.operations(execution_id), runs)
        assert cost is not None and cost.to_dict()["paid_calls"] == 2 and cost.to_dict()["reused_calls"] == 0

    # a crash after the first model call: the resume replays it and does not pay for it again
    def crashing(event: Any, ctx: DurableContext) -> str:
        thought = agent.override(model=ScriptedModel(["paid once"], name="once")).run(ctx, "think").output
        ctx.step(_crash_once, str(tmp_path / "crashed"), name="fragile")
        return str(thought)

    with LocalRuntime(tmp_path / "second.db", clock=VirtualClock()) as rt:
        execution_id = rt.start(crashing, {})
        with pytest.raises(SystemExit):
            rt.run_until_idle(skip_time=False)
        rt.close()
    with LocalRuntime(tmp_path / "second.db", clock=VirtualClock(start=2_000_000_000.0), lease_seconds=1,
                      functions=[crashing]) as rt:
        rt.run_until_idle()
        ops = LocalOperator(rt)
        assert ops.get(execution_id).status == "SUCCEEDED", ops.get(execution_id).error
        journal = ops.operations(execution_id)
        runs = invocations(ops.history(execution_id), journal)
        assert [run.crashed for run in runs] == [True, False]
        names = {op.Id: op.Name for op in journal}
        assert "thinker: model call 1" in [names[i] for i in runs[1].replayed]
        split = cost_split(journal, runs)
        assert split is not None and split.to_dict()["reused_calls"] == 1
        assert "reused 1 of them from the journal" in split.format()


def _crash_once(marker: str) -> str:
    """The first time, the process 'dies' mid-step (SystemExit escapes every handler, as a kill would)."""
    if not Path(marker).exists():
        Path(marker).write_text("crashed")
        raise SystemExit(137)
    return "ok"
