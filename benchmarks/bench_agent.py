"""7. Agents: a 200-turn tool loop on the real anthropic SDK against the fake provider server, each
tool call returning about 1 KB of text (a page of real documentation: Python's standard-library
docstrings), as a search or file-reading tool would.

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
from duragent.durable.local.rows import unpack
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
PAGE_CHARS = 1024
SYSTEM = "You are a careful assistant. Read the documentation pages you need with the read_docs tool."
PROMPT = f"Read documentation pages 1 to {TURNS - 1} one at a time, then say how many you read."


def _corpus() -> str:
    """Real English technical prose: the standard library's class and function docstrings."""
    import importlib
    import inspect

    texts = []
    for name in ("json", "sqlite3", "pathlib", "collections", "itertools", "functools", "re", "datetime",
                 "argparse", "logging", "subprocess", "threading", "asyncio", "email", "http.client", "csv",
                 "decimal", "fractions", "statistics", "string", "textwrap", "typing", "dataclasses", "enum",
                 "heapq", "shutil", "tempfile", "zipfile", "tarfile", "hashlib", "random", "io", "unittest",
                 "inspect", "ast", "pickle", "calendar", "queue", "socket", "selectors", "contextlib", "weakref"):
        module = importlib.import_module(name)
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            doc = inspect.getdoc(obj) if inspect.isclass(obj) or inspect.isfunction(obj) else None
            if doc and len(doc) > 200:
                texts.append(doc)
    return "\n\n".join(texts)


_CORPUS = _corpus()


@tool
def read_docs(page: int) -> str:
    """Read one page of the documentation.

    Args:
        page: the page number, from 1.
    """
    start = (page * PAGE_CHARS) % max(1, len(_CORPUS) - PAGE_CHARS)
    return _CORPUS[start:start + PAGE_CHARS]


def script() -> list[Reply]:
    replies = [Reply(text=f"Reading page {k}.", tool_calls=[FakeToolCall("read_docs", {"page": k}, id=f"toolu_{k:04d}")],
                     usage=FakeUsage(input_tokens=400 + 300 * k, output_tokens=40))
               for k in range(1, TURNS)]
    replies.append(Reply(text=f"Done: I read {TURNS - 1} pages.", usage=FakeUsage(input_tokens=400 + 300 * TURNS,
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
    return Agent(model, tools=[read_docs], system=SYSTEM, max_turns=TURNS)


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
    """Bytes of journal data each turn wrote, as stored (large rows compressed; no B-tree overhead)."""
    conn = sqlite3.connect(str(db))
    try:
        rows = conn.execute("SELECT op, data FROM journal ORDER BY k").fetchall()
    finally:
        conn.close()
    turns: list[int] = []
    calls: set[bytes | str] = set()
    for op, data in rows:
        # a turn begins with its model call's first row (a slow call's START may have a row of its own)
        if op is not None and op not in calls and ": model call " in (json.loads(unpack(data)).get("Name") or ""):
            calls.add(op)
            turns.append(0)
        if turns:
            turns[-1] += len(data)
    return turns


def run(mode: str, workdir: Path) -> list[Result]:
    reps = 3 if mode == "quick" else 11
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
                              note=f"rows written at turn {shown}: {rows[shown - 1]} B (journal data as stored); "
                                   f"window mean {sum(rows[a - 1:b - 1]) / (b - a):.0f} B"))
    results.append(Result("agent", "store bytes per turn, turns 160-199 / turns 1-40", marginal[200] / marginal[10],
                          "x", target=TARGET_AGENT_FLATNESS,
                          note=f"flat = no growth with conversation length; rows written turn 199 / turn 10: "
                               f"{rows[TURNS - 2] / rows[9]:.2f}",
                          extra={"size_samples": s, "row_bytes_per_turn": rows}))
    return results


if __name__ == "__main__":
    main(run, "agent")
