"""LocalRuntime inside an asyncio application: ``await runtime.serve()`` as an in-process worker
task, the ``a``-prefixed methods, and a clean shutdown on cancellation. Nothing here may block the
event loop; the tests wait on conditions (events, rows), with deadlines, never on fixed sleeps."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from duragent.durable import AsyncDurableContext, DurableContext, LocalRuntime, UsageError

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30.0


def run_app(main: Any) -> Any:
    return asyncio.run(asyncio.wait_for(main(), DEADLINE))


def test_serve_runs_async_handlers_on_the_applications_loop(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path / "app.db")
    texts: asyncio.Queue[str] = asyncio.Queue()

    async def handler(event: dict[str, Any], ctx: AsyncDurableContext) -> dict[str, Any]:
        await ctx.step(lambda: texts.put(f"hello {event['who']}"), name="say")  # the app's own queue
        answer = await ctx.wait_for_callback(lambda callback_id: {"asked": event["who"]}, name="review")
        return {"who": event["who"], "answer": answer, "thread": threading.get_ident()}

    async def main() -> dict[str, Any]:
        worker = asyncio.create_task(rt.serve())
        execution_id = await rt.astart(handler, {"who": "ana"})
        said = await texts.get()
        while not (pending := await rt.apending_callbacks()):
            await asyncio.sleep(0.01)
        await rt.asend_callback_success(pending[0][2], json.dumps("approved"))
        info = await rt.wait_until_done(execution_id)
        history = await rt.ahistory(execution_id)
        listed = await rt.alist(status="SUCCEEDED")
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
        return {"said": said, "info": info, "history": history, "listed": listed,
                "loop_thread": threading.get_ident()}

    out = run_app(main)
    rt.close()
    info = out["info"]
    assert info.status == "SUCCEEDED", info.error
    assert info.result["who"] == "ana" and info.result["answer"] == "approved"
    assert info.result["thread"] == out["loop_thread"]  # the handler ran on the application's loop
    assert out["said"] == "hello ana"
    assert [row["id"] for row in out["listed"]] == [info.id]
    assert any(e["EventType"] == "CallbackSucceeded" for e in out["history"])


def test_a_blocking_sync_handler_never_holds_up_the_loop(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path / "sync.db")
    entered = threading.Event()
    release = threading.Event()

    def blocking(event: Any, ctx: DurableContext) -> str:
        def wait_for_the_app() -> str:
            entered.set()
            assert release.wait(DEADLINE), "the app never released the handler: its loop was blocked"
            return "released"

        return ctx.step(wait_for_the_app, name="block")

    async def main() -> str:
        worker = asyncio.create_task(rt.serve())
        execution_id = await rt.astart(blocking, {})
        await asyncio.to_thread(entered.wait, DEADLINE)
        release.set()  # this line runs only because serve left the loop free
        info = await rt.wait_until_done(execution_id)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        return str(info.result)

    assert run_app(main) == "released"
    rt.close()


def test_cancelling_serve_stops_async_handlers_cleanly_and_the_next_worker_resumes(tmp_path: Path) -> None:
    db = tmp_path / "cancel.db"
    rt = LocalRuntime(db)
    inside = asyncio.Event()
    seen: dict[str, Any] = {"cancelled": 0, "runs": 0}

    async def stuck(event: Any, ctx: AsyncDurableContext) -> str:
        await ctx.step(lambda: "first", name="first")

        async def hang() -> str:
            seen["runs"] += 1
            if seen["runs"] == 1:
                inside.set()
                try:
                    await asyncio.Event().wait()  # never set: only cancellation ends this
                except asyncio.CancelledError:
                    seen["cancelled"] += 1
                    raise
            return "second"

        return await ctx.step(hang, name="hang")

    async def main() -> tuple[str, int]:
        worker = asyncio.create_task(rt.serve())
        execution_id = await rt.astart(stuck, {})
        await inside.wait()
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
        info = await rt.aget(execution_id)
        return execution_id, info.status

    before = set(threading.enumerate())
    execution_id, status = run_app(main)
    assert status == "RUNNING"  # not failed: the invocation simply did not end
    assert seen["cancelled"] == 1
    left = [t for t in set(threading.enumerate()) - before if t.name != "duragent-lease"]
    assert not left, left  # serve left no thread behind
    history = rt.history(execution_id)
    assert not [e for e in history if e["EventType"] in ("ExecutionFailed", "StepFailed")]

    # released at once: another runtime (another owner) claims it now, not after the lease lapses
    with LocalRuntime(db, functions=[stuck]) as other:
        assert other.run_once()
        info = other.get(execution_id)
    assert info.status == "SUCCEEDED" and info.result == "second", info.error
    first = [e for e in other_history(db, execution_id) if e.get("Name") == "first"]
    assert [e["EventType"] for e in first] == ["StepStarted", "StepSucceeded"]  # finished work not redone
    rt.close()


def other_history(db: Path, execution_id: str) -> list[dict[str, Any]]:
    with LocalRuntime(db) as rt:
        return rt.history(execution_id)


def test_cancelling_serve_lets_a_sync_handler_in_its_thread_finish(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path / "finish.db")
    entered = threading.Event()
    release = threading.Event()

    def slow(event: Any, ctx: DurableContext) -> str:
        def work() -> str:
            entered.set()
            release.wait(DEADLINE)
            return "finished"

        return ctx.step(work, name="work")

    async def main() -> str:
        worker = asyncio.create_task(rt.serve())
        execution_id = await rt.astart(slow, {})
        await asyncio.to_thread(entered.wait, DEADLINE)
        worker.cancel()
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await worker
        return str((await rt.aget(execution_id)).status)

    assert run_app(main) == "SUCCEEDED"
    rt.close()


def test_serve_with_idle_exit_and_bad_arguments(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path / "idle.db")

    async def double(event: int, ctx: AsyncDurableContext) -> int:
        return await ctx.step(lambda: event * 2, name="double")

    async def main() -> tuple[int, list[Any]]:
        ids = [await rt.astart(double, n) for n in range(5)]
        served = await rt.serve(idle_exit=True, concurrency=2)
        with pytest.raises(UsageError, match="at least 1"):
            await rt.serve(concurrency=0)
        with pytest.raises(TimeoutError):
            never = await rt.astart(lambda event, ctx: ctx.wait(3600), {})
            await rt.wait_until_done(never, timeout=0.2)
        return served, [(await rt.aget(i)).result for i in ids]

    served, results = run_app(main)
    assert served == 5 and results == [0, 2, 4, 6, 8]
    rt.close()


def test_the_sync_api_runs_async_handlers_even_when_called_from_a_coroutine(tmp_path: Path) -> None:
    """run()/run_until_idle() block their caller; called from inside an event loop they still work
    (the handler runs on duragent's own loop thread)."""
    rt = LocalRuntime(tmp_path / "nested.db")

    async def handler(event: Any, ctx: AsyncDurableContext) -> str:
        return await ctx.step(lambda: "ok", name="ok")

    async def main() -> str:
        return str(rt.run(handler, {}).result)

    assert run_app(main) == "ok"
    rt.close()


CLI_HANDLERS = '''
import asyncio
from duragent.durable import AsyncDurableContext, durable_function


@durable_function
async def greet(event, ctx: AsyncDurableContext):
    async def double():
        await asyncio.sleep(0)
        return event["n"] * 2

    doubled = await ctx.step(double, name="double")
    answer = await ctx.wait_for_callback(lambda callback_id: None, name="review")
    return {"doubled": doubled, "answer": answer}
'''


def test_the_cli_runs_worker_serves_and_replay_checks_async_handlers(tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text(CLI_HANDLERS)
    env = {k: v for k, v in os.environ.items() if k != "DURAGENT_DB"}
    env["PYTHONPATH"] = str(REPO)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "duragent", "--db", str(tmp_path / "cli.db"), *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    cli("run", "jobs.py:greet", "--input", '{"n": 21}', "--id", "g1")  # runs until the review suspends it
    assert json.loads(cli("show", "g1", "--json").stdout)["status"] == "RUNNING"
    assert [r["outcome"] for r in json.loads(cli("replay-check", "--json").stdout)] == ["suspends"]
    [pending] = json.loads(cli("list", "--pending", "--json").stdout)["pending"]
    cli("callback", "succeed", pending["callback_id"], "--result", '"yes"')
    cli("worker", "--until-idle")
    shown = json.loads(cli("show", "g1", "--json").stdout)
    assert shown["status"] == "SUCCEEDED" and shown["result"] == {"doubled": 42, "answer": "yes"}
