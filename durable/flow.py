"""One implementation, two surfaces: durable logic written once as a generator (a *flow*) and run
either synchronously or with ``await``.

A flow yields wherever user code may have to be waited for, and receives the outcome back::

    result = yield fn(*args)          # a value under DurableContext, an awaitable under AsyncDurableContext

``drive`` runs a flow in a synchronous handler: what is yielded is already the value, so it goes
straight back in (an awaitable there is a mistake, reported as one). ``adrive`` runs the same flow
in an async handler: what is yielded is awaited, and its value or its exception goes back in at
the ``yield``, so the flow's ``try``/``except`` sees exactly what a direct call would have raised.

Every durable operation (operations/*.py), the agent loop, tools and patterns are flows, so the
journal logic of each exists once; the two context classes differ only in which driver they use
and how they schedule branches (threads or tasks).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .errors import UsageError

if TYPE_CHECKING:
    from .async_context import AsyncDurableContext
    from .context import DurableContext

T = TypeVar("T")

Flow = Generator[Any, Any, T]
"""A generator that yields values (sync) or awaitables (async) and returns its result."""


def drive(flow: Flow[T]) -> T:
    """Run ``flow`` to its end synchronously: every yielded value is sent straight back."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            value = flow.send(value) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        error = None
        if _awaitable(value):  # user code returned a coroutine nobody here can await
            _discard(value)
            value, error = None, UsageError(
                "an async function was called from a synchronous handler (it returned an awaitable that "
                "nothing awaits); declare the handler 'async def' and await the operation, or pass a "
                "plain function")


async def adrive(flow: Flow[T]) -> T:
    """Run ``flow`` to its end in the running event loop: every yielded awaitable is awaited and
    its outcome (value or exception) sent back in at the ``yield``."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is None:
                yielded = flow.send(value)
            else:
                yielded, error = flow.throw(error), None
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if _awaitable(yielded):
            try:
                value = await yielded
            except BaseException as exc:  # noqa: BLE001 - handed to the flow, which decides
                value, error = None, exc
        else:
            value = yielded


@overload
def run_flow(flow: Flow[T], ctx: DurableContext) -> T: ...
@overload
def run_flow(flow: Flow[T], ctx: AsyncDurableContext) -> Awaitable[T]: ...


def run_flow(flow: Flow[T], ctx: Any) -> Any:
    """``flow``'s result under ``ctx``'s surface: the value now for a DurableContext, an awaitable
    for an AsyncDurableContext. For libraries serving sync and async handlers with one routine."""
    return adrive(flow) if getattr(ctx, "is_async", False) else drive(flow)


def flow_body(flow_fn: Callable[..., Flow[Any]]) -> Callable[..., Any]:
    """``flow_fn(ctx, *args)`` as a body for ``run_in_child_context``, ``map`` or ``parallel``
    under either surface: ``lambda child, *args: run_flow(flow_fn(child, *args), child)``."""
    def body(ctx: Any, *args: Any) -> Any:
        return run_flow(flow_fn(ctx, *args), ctx)

    body.__name__ = getattr(flow_fn, "__name__", "body")
    return body


async def emit(callback: Callable[[Any], Any], value: Any) -> None:
    """Call ``callback(value)`` and await it if it is async (callbacks may be either)."""
    result = callback(value)
    if inspect.isawaitable(result):
        await result


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Flow[Any]:
    """A flow of one call to user code: its value (sync) or its awaited value (async)."""
    return (yield fn(*args, **kwargs))


def plain(fn: Callable[..., T], *args: Any, **kwargs: Any) -> Flow[T]:
    """A flow of a function that never runs user code (it only reads and writes the journal)."""
    return fn(*args, **kwargs)
    yield  # pragma: no cover - makes this a generator function


def _awaitable(value: Any) -> bool:
    return value is not None and not isinstance(value, (str, int, float, bool, dict, list, tuple)) \
        and inspect.isawaitable(value)


def _discard(value: Any) -> None:
    """Close a coroutine nobody will await, so Python does not warn that it never ran."""
    close = getattr(value, "close", None)
    if callable(close):
        close()


__all__ = ["Flow", "adrive", "call", "drive", "emit", "flow_body", "plain", "run_flow"]
