"""Conformance handlers: the step suite."""

from __future__ import annotations

from ..driver import requirement  # noqa: F401

from durable import DurableContext


@requirement("1-1")
def step_basic(event: str, ctx: DurableContext) -> str:
    return ctx.step(lambda: f"Hello, {event}!")
