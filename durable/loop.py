"""Where an ``async def`` handler runs when its caller is synchronous (a worker thread, ``duragent
run``, ``run_until_idle``, Lambda's entry point, replay-check).

Such callers hand the coroutine to one long-lived event loop and block until it is done:

- inside ``await LocalRuntime.serve()`` that is the serving application's own loop, so handlers
  share it (and its clients, queues and streams) with the application;
- anywhere else, a process-wide loop on one daemon thread ("duragent-async"). It outlives each
  invocation on purpose: async SDK clients (AsyncAnthropic, AsyncOpenAI, httpx) keep connections
  bound to the loop that opened them, and a loop per invocation would strand them.

The coroutine runs in a copy of the caller's context variables, as if it had been called there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .errors import UsageError

T = TypeVar("T")


class InvocationCancelled(BaseException):  # noqa: N818 - a signal, not an error
    """The loop running an async handler cancelled it (the serving task was cancelled): the
    invocation ends without an outcome and the execution is left for the next worker."""


class LoopTarget:
    """A running loop that takes the coroutines of synchronous callers in its context (set by
    ``LocalRuntime.serve``), and the tasks it is running for them, so they can be cancelled."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.tasks: set[asyncio.Task[Any]] = set()

    def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()


TARGET: contextvars.ContextVar[LoopTarget | None] = contextvars.ContextVar("duragent_loop_target", default=None)

_lock = threading.Lock()
_background: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The process-wide loop for async handlers of synchronous callers, started on first use."""
    global _background
    with _lock:
        if _background is None or not _background[1].is_alive() or _background[0].is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_run_forever, args=(loop,), daemon=True, name="duragent-async")
            thread.start()
            _background = (loop, thread)
        return _background[0]


def _run_forever(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end on the serving loop (inside ``serve``) or the background loop, and
    return its result; blocks the calling thread meanwhile. Raises InvocationCancelled if the loop
    cancelled it."""
    target = TARGET.get()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if target is not None and target.loop is not running and target.loop.is_running():
        loop, tasks = target.loop, target.tasks
    else:
        loop, tasks = background_loop(), None
    if loop is running:
        coro.close()
        raise UsageError("a synchronous duragent call that runs an async handler was made on duragent's own "
                         "event loop thread; await the async API instead (e.g. 'await runtime.serve()')")
    context = contextvars.copy_context()
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def start() -> None:
        task = loop.create_task(coro, context=context)
        if tasks is not None:
            tasks.add(task)
        task.add_done_callback(lambda t: _settle(t, done, tasks))

    loop.call_soon_threadsafe(start)
    try:
        return done.result()
    except concurrent.futures.CancelledError:
        raise InvocationCancelled("the event loop cancelled the async handler") from None


def _settle(task: asyncio.Task[T], done: concurrent.futures.Future[T],
            tasks: set[asyncio.Task[Any]] | None) -> None:
    if tasks is not None:
        tasks.discard(task)
    if task.cancelled():
        done.cancel()
        return
    error = task.exception()
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(task.result())


__all__ = ["InvocationCancelled", "LoopTarget", "TARGET", "background_loop", "run_coroutine"]
