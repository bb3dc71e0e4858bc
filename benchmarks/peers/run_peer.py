"""One peer measurement in a fresh interpreter of ``.venv-peers`` (DBOS, LangGraph with its SQLite
checkpointer, AWS's durable-execution testing runner). Standalone: it imports no duragent code.

    python benchmarks/peers/run_peer.py COMMAND JSON_ARGS SCRATCH_DIR

prints one JSON object. Commands:

* ``aws_step`` / ``aws_replay``: AWS's SDK under its testing runner (in memory, time skipped). A
  handler of N trivial steps and two 1-hour waits runs three invocations; each invocation is timed
  around the Lambda handler (parse the invocation's state, run or replay the steps, checkpoint the
  wait). ``aws_step``: invocation 1 per step; ``aws_replay``: invocations 2 and 3 per step (best).
* ``dbos_step``: a DBOS workflow of N trivial ``@DBOS.step``s on a SQLite system database, timed inside
  the workflow (``wal``: the file switched to WAL first; DBOS's default is SQLite's rollback journal).
* ``dbos_short``: COUNT one-step workflows run one after the other; executions per second.
* ``langgraph_step``: a LangGraph graph whose one node runs N times, with ``SqliteSaver`` (WAL,
  synchronous FULL, its defaults) checkpointing every superstep; µs per superstep.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, TypedDict


def aws(args: dict[str, Any], scratch: Path) -> dict[str, Any]:
    from aws_durable_execution_sdk_python import DurableContext, durable_execution
    from aws_durable_execution_sdk_python.config import Duration
    from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

    n = int(args["n"])
    times: list[float] = []

    @durable_execution
    def handler(event: dict[str, Any], context: DurableContext) -> str:
        for i in range(event["n"]):
            context.step(lambda _, i=i: i, name="trivial")
        context.wait(Duration.from_seconds(3600))
        context.wait(Duration.from_seconds(3600))
        return "done"

    def timed(event: Any, lambda_context: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return handler(event, lambda_context)
        finally:
            times.append(time.perf_counter() - t0)

    with DurableFunctionTestRunner(handler=timed) as runner:
        result = runner.run(input=json.dumps({"n": n}), execution_timeout=900)
    if str(result.status).split(".")[-1] != "SUCCEEDED" or len(times) != 3:
        raise SystemExit(f"AWS runner: {result.status} after {len(times)} invocations")
    per = [t / n * 1e6 for t in times]
    return {"first_us_per_step": per[0], "us_per_step": min(per[1:]), "invocations_us_per_step": per}


def dbos_setup(scratch: Path, wal: bool) -> Any:
    from dbos import DBOS

    db = scratch / "dbos.sqlite"
    if wal:
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
    DBOS(config={"name": "peer-bench", "system_database_url": f"sqlite:///{db}", "run_admin_server": False})
    return DBOS


def dbos_step(args: dict[str, Any], scratch: Path) -> dict[str, Any]:
    dbos = dbos_setup(scratch, bool(args.get("wal")))

    @dbos.step()
    def trivial(i: int) -> int:
        return i

    @dbos.workflow()
    def steps(n: int) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            trivial(i)
        return (time.perf_counter() - t0) / n * 1e6

    dbos.launch()
    try:
        return {"us_per_step": steps(int(args["n"]))}
    finally:
        dbos.destroy()


def dbos_short(args: dict[str, Any], scratch: Path) -> dict[str, Any]:
    dbos = dbos_setup(scratch, bool(args.get("wal")))

    @dbos.step()
    def double(x: int) -> int:
        return 2 * x

    @dbos.workflow()
    def short(x: int) -> int:
        return double(x)

    dbos.launch()
    try:
        short(-1)  # warm-up
        count = int(args["count"])
        t0 = time.perf_counter()
        for i in range(count):
            if short(i) != 2 * i:
                raise SystemExit("DBOS returned a wrong result")
        return {"per_second": count / (time.perf_counter() - t0)}
    finally:
        dbos.destroy()


class State(TypedDict):
    """The LangGraph benchmark's state (at module level: LangGraph reads the nodes' type hints)."""

    i: int
    n: int


def langgraph_step(args: dict[str, Any], scratch: Path) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    def work(state: State) -> dict[str, int]:
        return {"i": state["i"] + 1}

    def again(state: State) -> str:
        return "work" if state["i"] < state["n"] else END

    graph = StateGraph(State)
    graph.add_node("work", work)
    graph.add_edge(START, "work")
    graph.add_conditional_edges("work", again)
    conn = sqlite3.connect(scratch / "langgraph.sqlite", check_same_thread=False)
    app = graph.compile(checkpointer=SqliteSaver(conn))
    n = int(args["n"])
    t0 = time.perf_counter()
    out = app.invoke({"i": 0, "n": n}, {"configurable": {"thread_id": "bench"}, "recursion_limit": n + 10})
    elapsed = time.perf_counter() - t0
    if out["i"] != n:
        raise SystemExit("LangGraph stopped early")
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0], conn.execute("PRAGMA synchronous").fetchone()[0]
    conn.close()
    return {"us_per_step": elapsed / n * 1e6, "sqlite": f"{mode[0]}, synchronous={mode[1]}"}


COMMANDS = {"aws_step": aws, "aws_replay": aws, "dbos_step": dbos_step, "dbos_short": dbos_short,
            "langgraph_step": langgraph_step}


def main() -> None:
    command, args, scratch = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    scratch.mkdir(parents=True, exist_ok=True)
    import logging

    logging.disable(logging.WARNING)  # DBOS logs every launch and shutdown at INFO
    print(json.dumps(COMMANDS[command](args, scratch)))


if __name__ == "__main__":
    main()
