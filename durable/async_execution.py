"""One invocation of an ``async def`` handler: the handler is awaited with an AsyncDurableContext,
and its outcome is judged by exactly the rules of a synchronous invocation (execution.py's
``_run``: SUCCEEDED / FAILED / PENDING, what is flushed, what must propagate)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .async_context import AsyncDurableContext
from .backend import DurableService, InvocationInput
from .execution import Handler, _run, begin_invocation, end_invocation, read_input
from .model import InvocationOutput


async def arun_invocation(handler: Handler, invocation: InvocationInput, service: DurableService, *,
                          now: Callable[[], float], hooks: Any = None) -> InvocationOutput:
    state, first = begin_invocation(invocation, service, now=now, hooks=hooks)
    ctx = AsyncDurableContext(state)
    try:
        settled = await settle(handler, read_input(state), ctx)
        output = _run(settled, ctx, state)  # type: ignore[arg-type]
    finally:
        state.close()
    return end_invocation(state, output, first, hooks)


async def settle(handler: Callable[..., Any], event: Any, ctx: AsyncDurableContext) -> Handler:
    """Await the handler; hand back a stand-in that returns its result or raises its exception, so
    the synchronous outcome rules judge it. Cancellation is not an outcome: it propagates."""
    try:
        result = await handler(event, ctx)
    except BaseException as exc:
        if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
            raise
        error = exc

        def raises(_event: Any, _ctx: Any) -> Any:
            raise error

        return raises
    return lambda _event, _ctx: result


__all__ = ["arun_invocation", "settle"]
