"""LocalRuntime from an asyncio application: the ``a``-prefixed twins of its methods and an
in-process worker task, none of which blocks the event loop.

    async with asyncio.TaskGroup() as tg:           # or asyncio.create_task(runtime.serve())
        tg.create_task(runtime.serve())
        execution_id = await runtime.astart(handler, {"topic": "..."})
        info = await runtime.wait_until_done(execution_id)

Store calls run in worker threads. ``serve`` claims runnable executions like ``worker`` does and
runs each invocation in a worker thread; an ``async def`` handler is handed from that thread back
to the serving loop (durable/loop.py), so it runs *on the application's loop*, beside its other
tasks, sharing its clients and queues. Cancelling ``serve`` cancels the async handlers it is
running (their executions are released at once, to be replayed by the next worker, nothing is
recorded as failed), lets the synchronous ones in worker threads finish, and returns.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import Duration
from ..errors import UsageError
from ..loop import TARGET, InvocationCancelled, LoopTarget
from .faults import describe_store_error

if TYPE_CHECKING:
    from ..model import ErrorObject, Operation
    from .runtime import ExecutionInfo, LocalRuntime
    from .service import Invocation

log = logging.getLogger("duragent.durable.local")


class WakeSignal(threading.Event):
    """The runtime's "something may be runnable now" signal: a threading.Event (the worker thread
    sleeps on it) that also wakes the asyncio tasks waiting in ``serve``."""

    def __init__(self) -> None:
        super().__init__()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._guard = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._guard:
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                pass

    async def wait_async(self, timeout: float | None) -> bool:
        """Wait without blocking the loop; True if set."""
        event = asyncio.Event()
        key = (asyncio.get_running_loop(), event)
        with self._guard:
            self._waiters.add(key)
        try:
            if self.is_set():
                return True
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                return False
            return True
        finally:
            with self._guard:
                self._waiters.discard(key)


class AsyncRuntime:
    """The asyncio face of LocalRuntime (a mixin of it)."""

    _progress_signal: WakeSignal | None = None
    """Set whenever ``serve`` ends an invocation (what ``wait_until_done`` waits on)."""

    # -- executions, callbacks: the sync methods, off the loop ------------------------------------
    async def astart(self: Any, fn_or_name: Callable[..., Any] | str, input: Any = None,
                     execution_id: str | None = None, *, name: str | None = None, target: str | None = None,
                     timeout: Duration | float | None = None) -> str:
        """``start`` without blocking the loop."""
        return await asyncio.to_thread(self.start, fn_or_name, input, execution_id, name=name, target=target,
                                       timeout=timeout)

    async def aget(self: Any, execution_id: str) -> ExecutionInfo:
        return await asyncio.to_thread(self.get, execution_id)

    async def ahistory(self: Any, execution_id: str) -> builtins.list[dict[str, Any]]:
        return await asyncio.to_thread(self.history, execution_id)

    async def alist(self: Any, *, status: str | None = None, function: str | None = None,
                    limit: int = 100) -> builtins.list[dict[str, Any]]:
        return await asyncio.to_thread(self.list, status=status, function=function, limit=limit)

    async def astop(self: Any, execution_id: str, error: ErrorObject | None = None) -> None:
        await asyncio.to_thread(self.stop, execution_id, error)

    async def asend_callback_success(self: Any, callback_id: str,
                                     result: str | bytes | None = None) -> str:
        return await asyncio.to_thread(self.send_callback_success, callback_id, result)

    async def asend_callback_failure(self: Any, callback_id: str,
                                     error: ErrorObject | dict[str, Any] | str | None = None) -> str:
        return await asyncio.to_thread(self.send_callback_failure, callback_id, error)

    async def asend_callback_heartbeat(self: Any, callback_id: str) -> str:
        return await asyncio.to_thread(self.send_callback_heartbeat, callback_id)

    async def apending_callbacks(self: Any) -> builtins.list[tuple[str, Operation, str]]:
        return await asyncio.to_thread(self.pending_callbacks)

    async def wait_until_done(self: Any, execution_id: str, *, timeout: float | None = None,
                              poll: float = 0.5) -> ExecutionInfo:
        """The execution once it is no longer RUNNING (succeeded, failed, timed out, stopped).
        Wakes when ``serve`` ends an invocation, and every ``poll`` seconds for executions other
        processes drive. Raises TimeoutError after ``timeout`` seconds."""
        async def settle() -> ExecutionInfo:
            while True:
                info = await self.aget(execution_id)
                if info.status != "RUNNING":
                    return info
                await _progress(self).wait_async(poll)

        return await asyncio.wait_for(settle(), timeout)

    # -- the worker task ---------------------------------------------------------------------------
    async def serve(self: Any, *, concurrency: int = 8, idle_exit: bool = False,
                    max_sleep: float = 1.0) -> int:
        """Serve every execution in the store from this event loop until cancelled (or, with
        ``idle_exit``, until nothing is runnable now); returns how many invocations ran. Up to
        ``concurrency`` invocations run at once."""
        if concurrency < 1:
            raise UsageError(f"serve(concurrency=...) must be at least 1, got {concurrency}")
        fault = await asyncio.to_thread(self._write_fault)
        if fault is not None:
            raise fault  # serving means writing (claims, timers): say why it cannot, rather than idle
        target = LoopTarget(asyncio.get_running_loop())
        token = TARGET.set(target)  # the invocation threads started below hand async handlers back here
        running: dict[asyncio.Future[None], Invocation] = {}
        served = 0
        try:
            while True:
                while len(running) < concurrency:
                    try:
                        invocation = await asyncio.to_thread(_claim_next, self)
                    except sqlite3.Error as exc:  # a full disk or a locked file: wait and try again
                        fault = describe_store_error(exc, self.store.path)
                        if not fault.transient:
                            raise fault from None  # read-only, damaged: retrying cannot help
                        log.warning("%s; retrying in %.0f s", fault, self.retry_delay)
                        await asyncio.sleep(self.retry_delay)
                        break
                    if invocation is None:
                        break
                    running[asyncio.ensure_future(asyncio.to_thread(self._invoke, invocation))] = invocation
                if not running and idle_exit:
                    break
                waiters: set[asyncio.Future[Any]] = set(running)
                more = None
                if len(running) < concurrency:  # room for more: also wake for new work or a due timer
                    more = asyncio.ensure_future(_more_work(self, max_sleep, busy=bool(running)))
                    waiters.add(more)
                done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if more is not None and not more.done():
                    more.cancel()
                finished = [task for task in done if task is not more]
                for task in finished:
                    served += 1
                    _settle(self, task, running.pop(task))
                if finished:
                    _progress(self).set()
                    _progress(self).clear()
        except asyncio.CancelledError:
            target.cancel_all()  # async handlers stop at their next await
            if running:
                await asyncio.wait(running)  # sync handlers in threads finish their invocation
                for task, invocation in running.items():
                    _settle(self, task, invocation)
            raise
        finally:
            TARGET.reset(token)
        return served


def _claim_next(runtime: LocalRuntime) -> Invocation | None:
    """What ``LocalRuntime.run_once`` claims (see ``LocalRuntime._claim``)."""
    return runtime._claim()


def _settle(runtime: LocalRuntime, task: asyncio.Future[None], invocation: Invocation) -> None:
    """After an invocation thread ended: an invocation cancelled mid-way leaves its execution to
    the next worker at once (no outcome recorded)."""
    if task.cancelled():
        return
    error = task.exception()
    if isinstance(error, InvocationCancelled):
        try:
            runtime.service.renew(invocation.execution_id, runtime.owner, 0.0)
        except sqlite3.Error:  # the lease lapses by itself
            log.debug("could not release %s", invocation.execution_id, exc_info=True)
        log.info("invocation of %s cancelled; released for the next worker", invocation.execution_id)
    elif error is not None:
        log.error("invocation of %s crashed outside the handler", invocation.execution_id, exc_info=error)


async def _more_work(runtime: LocalRuntime, max_sleep: float, *, busy: bool) -> None:
    """Return when there may be more to claim: the next due timer, a poke (a start, a callback
    answer), or ``max_sleep``. A virtual clock skips to the timer instead, when nothing runs."""
    due = await asyncio.to_thread(runtime.service.next_due)
    delay = max_sleep if due is None else min(max_sleep, max(0.0, due - runtime.clock.now()))
    if runtime.clock.virtual and not busy:
        runtime.clock.sleep(delay)
        await asyncio.sleep(0)
        return
    wake = runtime._wake
    wake.clear()
    # virtual time does not pass while invocations run: only a poke or a finished one wakes us then
    await wake.wait_async(None if runtime.clock.virtual else delay)


def _progress(runtime: AsyncRuntime) -> WakeSignal:
    """The runtime's progress signal, made on first use."""
    if runtime._progress_signal is None:
        runtime._progress_signal = WakeSignal()
    return runtime._progress_signal


__all__ = ["AsyncRuntime", "WakeSignal"]
