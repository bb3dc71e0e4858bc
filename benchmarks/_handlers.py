"""Handlers that benchmark subprocesses import by name (``benchmarks._handlers:short``), the way a
worker finds a user's handler."""

from __future__ import annotations

from typing import Any


def _double(x: int) -> int:
    return 2 * x


def short(event: Any, ctx: Any) -> int:
    """A short execution: one step, then done."""
    return int(ctx.step(_double, event, name="double"))


def trivial(i: int) -> int:
    return i


def steps_then_wait(event: dict[str, Any], ctx: Any) -> str:
    """N trivial steps, then two waits: the first invocation records the steps and suspends at the
    first wait; the second replays the N steps and suspends at the second."""
    for i in range(event["n"]):
        ctx.step(trivial, i, name="trivial")
    ctx.wait(3600)
    ctx.wait(3600)
    return "done"
