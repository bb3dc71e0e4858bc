"""Handlers that worker subprocesses import by name (``benchmarks._handlers:short``)."""

from __future__ import annotations

from typing import Any


def _double(x: int) -> int:
    return 2 * x


def short(event: Any, ctx: Any) -> int:
    """A short execution: one step, then done."""
    return int(ctx.step(_double, event, name="double"))
