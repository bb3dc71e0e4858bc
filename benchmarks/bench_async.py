"""8. Async handlers: what ``await ctx.step`` costs next to ``ctx.step``, and what an async map of a
thousand branches waiting on I/O holds.

* step cost: the same N trivial steps (durability="process"), timed inside the handler, once in a
  sync handler (``ctx.step(fn)``) and once in an async one (``await ctx.step(async_fn)``), the two
  runs interleaved so that load on the machine hits both alike; the ratio of the medians is judged.
* a map of 1,000 branches, each waiting on a real socket (a line sent to an echo server in another
  process that answers after 50 ms) and then taking a step: the OS threads of this process while
  the branches wait, counted from inside every branch, against the count just before the map (the
  invocation's loop, flusher and lease threads are there already). Wall time shows they waited
  together (1,000 x 50 ms one after the other would take 50 s).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from duragent.durable import AsyncDurableContext, DurableContext, LocalRuntime

from ._common import (
    TARGET_ASYNC_MAP_EXTRA_THREADS,
    TARGET_ASYNC_STEP_RATIO,
    Result,
    main,
    median,
    os_threads,
)


def trivial(i: int) -> int:
    return i


async def atrivial(i: int) -> int:
    return i


def sync_steps(timings: list[float]) -> Any:
    def handler(event: dict[str, Any], ctx: DurableContext) -> int:
        n = event["n"]
        t0 = time.perf_counter()
        for i in range(n):
            ctx.step(trivial, i, name="trivial")
        timings.append((time.perf_counter() - t0) / n * 1e6)
        return n

    return handler


def async_steps(timings: list[float]) -> Any:
    async def handler(event: dict[str, Any], ctx: AsyncDurableContext) -> int:
        n = event["n"]
        t0 = time.perf_counter()
        for i in range(n):
            await ctx.step(atrivial, i, name="trivial")
        timings.append((time.perf_counter() - t0) / n * 1e6)
        return n

    return handler


def step_cost(workdir: Path, n: int, reps: int) -> list[Result]:
    sync_us: list[float] = []
    async_us: list[float] = []
    for rep in range(reps):
        for kind, make, into in (("sync", sync_steps, sync_us), ("async", async_steps, async_us)):
            with LocalRuntime(workdir / f"{kind}-{rep}.db", durability="process") as rt:
                info = rt.run(make(into), {"n": n})
            if info.status != "SUCCEEDED":
                raise RuntimeError(f"{kind} step benchmark ended {info.status}: {info.error}")
    ratio = median(async_us) / median(sync_us)
    return [
        Result("async", f"sync step, N={n}: µs/step", median(sync_us), "µs", extra={"runs_us": sync_us}),
        Result("async", f"async step, N={n}: µs/step", median(async_us), "µs", extra={"runs_us": async_us}),
        Result("async", "async step / sync step", ratio, "x", target=TARGET_ASYNC_STEP_RATIO,
               note=f"medians of {reps} interleaved runs each"),
    ]


ECHO_SERVER = """
import asyncio, sys

async def answer(reader, writer):
    line = await reader.readline()
    await asyncio.sleep(float(sys.argv[1]))
    writer.write(line)
    await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=2048)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def io_map(workdir: Path, branches: int, delay: float) -> list[Result]:
    server = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(delay)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        seen: dict[str, Any] = {"threads": []}

        async def handler(event: dict[str, Any], ctx: AsyncDurableContext) -> int:
            await ctx.step(atrivial, 0, name="warm-up")  # the invocation's own threads exist from here
            seen["before"] = os_threads()

            async def fetch(child: AsyncDurableContext, item: int, index: int, items: list[int]) -> int:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(f"{item}\n".encode())
                await writer.drain()
                seen["threads"].append(os_threads())  # every branch is waiting on its socket now
                echoed = int(await reader.readline())
                writer.close()
                await writer.wait_closed()
                return await child.step(atrivial, echoed, name="record")

            t0 = time.perf_counter()
            batch = await ctx.map(list(range(event["n"])), fetch, name="fetch-all")
            seen["seconds"] = time.perf_counter() - t0
            return len(batch.get_results())

        with LocalRuntime(workdir / "map.db", durability="process") as rt:
            info = rt.run(handler, {"n": branches})
        if info.status != "SUCCEEDED" or info.result != branches:
            raise RuntimeError(f"the I/O map ended {info.status}: {info.error}")
    finally:
        server.kill()
        server.wait()
    extra = max(seen["threads"]) - seen["before"]
    return [
        Result("async", f"async map of {branches} I/O branches: threads added", extra, "threads",
               target=TARGET_ASYNC_MAP_EXTRA_THREADS,
               note=f"{seen['before']} before the map, at most {max(seen['threads'])} while it waited"),
        Result("async", f"async map of {branches} I/O branches: wall time", seen["seconds"], "s",
               note=f"each branch waits {delay * 1000:.0f} ms on its socket, then checkpoints a step"),
    ]


def run(mode: str, workdir: Path) -> list[Result]:
    n, reps = (2000, 7) if mode == "quick" else (5000, 11)
    return step_cost(workdir, n, reps) + io_map(workdir, 1000, 0.05)


if __name__ == "__main__":
    main(run, "async")
