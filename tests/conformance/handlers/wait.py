"""Conformance handlers: the wait suite (2-x)."""

from __future__ import annotations

from typing import Any

from duragent.durable import DurableContext, Duration

from ..driver import requirement


@requirement("2-1")
def wait_basic(event: Any, ctx: DurableContext) -> None:
    """One 2 s wait."""
    ctx.wait(Duration.from_seconds(2))


@requirement("2-2")
def wait_named(event: Any, ctx: DurableContext) -> None:
    """One named 2 s wait."""
    ctx.wait(Duration.from_seconds(2), name="custom_wait_name")


@requirement("2-3")
def wait_sequential(event: Any, ctx: DurableContext) -> dict[str, int]:
    """Two waits, each a suspension of its own."""
    ctx.wait(Duration.from_seconds(2), name="wait-1")
    ctx.wait(Duration.from_seconds(2), name="wait-2")
    return {"completedWaits": 2}


@requirement("2-4")
def wait_minutes(event: Any, ctx: DurableContext) -> None:
    """A wait given in minutes: 60 s on the wire."""
    ctx.wait(Duration.from_minutes(1))


@requirement("2-5")
def wait_hours(event: Any, ctx: DurableContext) -> None:
    """A wait given in hours: 3600 s on the wire."""
    ctx.wait(Duration.from_hours(1))
