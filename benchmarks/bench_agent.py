"""7. Agents: a 200-turn tool loop on the real anthropic SDK against the fake provider server.

Framework overhead per turn = (wall time of the duragent ``Agent`` run, journal included, from
start to finished execution) - (wall time of the bare SDK sending the very same 200 request bodies,
recorded from the agent run, to the same server), divided by 200. The server runs in a process of
its own (a real provider is remote too; in-process, its JSON parsing and threads would compete for
this process's GIL). Each agent run is paired with a bare run just before it; the median of the
pairs' differences is reported.

Marginal journal bytes per turn: in a separate, untimed run a plugin samples the store's size
(pages in use, WAL included) before every model call; growth over 40-turn windows at the start,
middle and end of the conversation (turns 1-40, 81-120, 160-199). The bytes of the rows each turn writes (operations + history events) are shown
alongside."""

from __future__ import annotations

import gc
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anthropic

from duragent.agents import Agent
from duragent.agents.models.anthropic import AnthropicModel
from duragent.durable import LocalRuntime, Plugin
from duragent.tools import tool
from tests.fakes.provider_server import FakeToolCall, FakeUsage, Reply

from ._common import (
    REPO,
    TARGET_AGENT_BYTES,
    TARGET_AGENT_FLATNESS,
    TARGET_AGENT_OVERHEAD_MS,
    Result,
    main,
    median,
)

TURNS = 200
SYSTEM = "You are a careful assistant. Use the add tool for every addition; never do arithmetic yourself."
PROMPT = "Starting from 0, add 1 at a time using the tool until you have done it 199 times, then report."


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number.
        b: the second number.
    """
    return a + b


def script() -> list[Reply]:
    replies = [Reply(text="Adding one more.", tool_calls=[FakeToolCall("add", {"a": k - 1, "b": 1}, id=f"toolu_{k:04d}")],
                     usage=FakeUsage(input_tokens=400 + 60 * k, output_tokens=40))
               for k in range(1, TURNS)]
    replies.append(Reply(text=f"Done: the total is {TURNS - 1}.", usage=FakeUsage(input_tokens=400 + 60 * TURNS,
                                                                                   output_tokens=12)))
    return replies


class FakeServer:
    """``benchmarks._fake_server`` in a subprocess, driven over its stdin."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks._fake_server"], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the fake provider server did not start")

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"fake server: {line!r} -> {answer!r}")

    def bodies(self, path: Path) -> list[dict[str, Any]]:
        self.command(f"bodies {path}")
        return list(json.loads(path.read_text()))

    def close(self) -> None:
        try:
            self.command("quit")
            self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def make_agent(server: FakeServer) -> Agent:
    model = AnthropicModel("claude-fake", base_url=server.url, api_key="unused")
    return Agent(model, tools=[add], system=SYSTEM, max_turns=TURNS)


def agent_run(server: FakeServer, db: Path, durability: str,
              plugins: list[Any] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one whole agent execution."""
    agent = make_agent(server)
    turns: list[int] = []

    def agent_loop(event: Any, ctx: Any) -> int:
        result = agent.run(ctx, PROMPT)
        turns.append(result.turns)
        return result.turns

    server.command("script")
    gc.collect()
    with LocalRuntime(db, durability=durability, plugins=plugins) as rt:
        t0, c0 = time.perf_counter(), time.process_time()
        info = rt.run(agent_loop)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if info.status != "SUCCEEDED" or info.result != TURNS or turns != [TURNS]:
        raise RuntimeError(f"agent run ended {info.status} ({info.result!r}, {info.error})")
    return elapsed, cpu


def bare_run(server: FakeServer, bodies: list[dict[str, Any]]) -> tuple[float, float]:
    client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
    server.command("script")
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    for body in bodies:
        message = client.messages.create(**body)
        if message.stop_reason not in ("tool_use", "end_turn"):
            raise RuntimeError(f"bare SDK run got {message.stop_reason!r}")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    client.close()
    server.command("forget")
    return elapsed, cpu


class SizeSampler(Plugin):
    """The store's size before every model call (a second connection sees committed WAL pages)."""

    name = "size-sampler"

    def __init__(self, db: Path) -> None:
        self.db = db
        self.samples: list[int] = []
        self._conn: sqlite3.Connection | None = None

    def size(self) -> int:
        if self._conn is None:
            self._conn = sqlite3.connect(str(self.db))
        pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
        free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * self._conn.execute("PRAGMA page_size").fetchone()[0])

    def on_operation_start(self, info: Any) -> None:
        if info.sub_type == "ModelCall" and not info.replaying:
            self.samples.append(self.size())


def row_bytes_per_turn(db: Path) -> list[int]:
    """Bytes of operation rows and history events each turn wrote (JSON text, no B-tree overhead)."""
    conn = sqlite3.connect(str(db))
    try:
        ops = conn.execute("SELECT id, data FROM operations ORDER BY seq").fetchall()
        events = conn.execute("SELECT data FROM events").fetchall()
    finally:
        conn.close()
    event_bytes: dict[str, int] = {}
    for (data,) in events:
        op_id = json.loads(data).get("Id")
        if op_id:
            event_bytes[op_id] = event_bytes.get(op_id, 0) + len(data.encode())
    turns: list[int] = []
    for op_id, data in ops:
        name = json.loads(data).get("Name") or ""
        if ": model call " in name:
            turns.append(0)
        if turns:
            turns[-1] += len(data.encode()) + event_bytes.get(op_id, 0)
    return turns


def run(mode: str, workdir: Path) -> list[Result]:
    reps = 5 if mode == "quick" else 11
    results: list[Result] = []
    server = FakeServer()
    try:
        # warm-up, and the exact request bodies the bare SDK will replay
        agent_run(server, workdir / "warmup.db", "process")
        bodies = server.bodies(workdir / "bodies.json")
        if len(bodies) != TURNS:
            raise RuntimeError(f"recorded {len(bodies)} requests, expected {TURNS}")
        bare_run(server, bodies)
        bare: dict[str, list[tuple[float, float]]] = {"full": [], "process": []}
        timed: dict[str, list[tuple[float, float]]] = {"full": [], "process": []}
        for i in range(reps):
            for durability in ("full", "process"):
                bare[durability].append(bare_run(server, bodies))
                timed[durability].append(agent_run(server, workdir / f"agent-{durability}-{i}.db", durability))
                server.command("forget")
        for durability in ("full", "process"):
            runs, base = timed[durability], bare[durability]
            pairs = [(a[0] - b[0]) / TURNS * 1000 for a, b in zip(runs, base, strict=True)]
            cpu_pairs = [(a[1] - b[1]) / TURNS * 1000 for a, b in zip(runs, base, strict=True)]
            agent_ms = median([r[0] for r in runs]) / TURNS * 1000
            bare_ms = median([b[0] for b in base]) / TURNS * 1000
            results.append(Result("agent", f"overhead per turn, durability={durability}", median(pairs), "ms",
                                  target=TARGET_AGENT_OVERHEAD_MS if durability == "full" else None,
                                  note=f"agent {agent_ms:.2f} - bare SDK {bare_ms:.2f} ms/turn (medians); pairs "
                                       f"{min(pairs):.2f}..{max(pairs):.2f}; CPU-time overhead "
                                       f"{median(cpu_pairs):.2f} ms",
                                  extra={"agent_wall_cpu_s": runs, "bare_wall_cpu_s": base,
                                         "pair_overhead_ms": pairs, "pair_cpu_overhead_ms": cpu_pairs}))
        all_bare = [b[0] for b in bare["full"] + bare["process"]]
        all_bare_cpu = [b[1] for b in bare["full"] + bare["process"]]
        results.append(Result("agent", "bare anthropic SDK per request", median(all_bare) / TURNS * 1000, "ms",
                              note=f"{TURNS} recorded requests, fake server in its own process; CPU "
                                   f"{median(all_bare_cpu) / TURNS * 1000:.2f} ms"))

        db = workdir / "bytes.db"
        sampler = SizeSampler(db)
        agent_run(server, db, "process", plugins=[sampler])
    finally:
        server.close()
    s = sampler.samples  # s[k-1]: size before model call k
    rows = row_bytes_per_turn(db)
    # size before model call k is s[k-1]; 40-turn windows, since the store grows a 4 KB page (and
    # the odd B-tree split) at a time: a narrower window mostly measures where the page edges fall
    windows = {10: (1, 41), 100: (81, 121), 200: (160, 200)}
    marginal: dict[int, float] = {}
    for turn, (a, b) in windows.items():
        marginal[turn] = (s[b - 1] - s[a - 1]) / (b - a)
        shown = min(turn, TURNS - 1)  # turn 200 is the final answer, with no tool call
        results.append(Result("agent", f"store bytes per turn around turn {turn} (turns {a}-{b - 1})", marginal[turn],
                              "B", target=TARGET_AGENT_BYTES,
                              note=f"rows written at turn {shown}: {rows[shown - 1]} B (operations + events JSON); "
                                   f"window mean {sum(rows[a - 1:b - 1]) / (b - a):.0f} B"))
    results.append(Result("agent", "store bytes per turn, turns 160-199 / turns 1-40", marginal[200] / marginal[10],
                          "x", target=TARGET_AGENT_FLATNESS,
                          note=f"flat = no growth with conversation length; rows written turn 199 / turn 10: "
                               f"{rows[TURNS - 2] / rows[9]:.2f}",
                          extra={"size_samples": s, "row_bytes_per_turn": rows}))
    return results


if __name__ == "__main__":
    main(run, "agent")
