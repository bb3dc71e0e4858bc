"""AsyncDurableContext: what an ``async def`` handler receives. The same operations under the same
names as DurableContext, awaited; each runs the very same flow (durable/flow.py), so the journal
of an async handler is the journal of its synchronous twin, event for event.

Bodies may be ``async def`` or plain functions: ``await ctx.step(fetch)`` awaits ``fetch()`` when
it is a coroutine function and calls it on the event loop otherwise (a plain function that
blocks, blocks the loop: wrap it with ``asyncio.to_thread`` inside an async function). Branches of
``map`` and ``parallel`` run as asyncio tasks on the handler's loop.
"""

from __future__ import annotations

import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar, overload

from .config import (
    CallbackConfig,
    ChildConfig,
    Duration,
    InvokeConfig,
    MapConfig,
    ParallelConfig,
    StepConfig,
    WaitForConditionConfig,
)
from .context import _MISS, _NO_RETRY, ContextBase, _uuid4_text
from .flow import adrive
from .operations.batch import BatchResult
from .operations.callback import AsyncCallback

T = TypeVar("T")


class AsyncDurableContext(ContextBase):
    """The handle an ``async def`` durable handler receives: ``await ctx.step(...)`` and so on."""

    is_async: ClassVar[bool] = True

    @overload
    async def step(self, fn: Callable[..., Awaitable[T]], *args: Any, name: str | None = None,
                   config: StepConfig | None = None, **kwargs: Any) -> T: ...
    @overload
    async def step(self, fn: Callable[..., T], *args: Any, name: str | None = None,
                   config: StepConfig | None = None, **kwargs: Any) -> T: ...

    async def step(self, fn: Callable[..., Any], *args: Any, name: str | None = None,
                   config: StepConfig | None = None, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` (awaited if async) once; its result is checkpointed and
        replayed thereafter."""
        value = self._replayed_step(fn, name, config)
        if value is not _MISS:
            return value
        return await adrive(self._step_flow(fn, args, kwargs, name, config))

    async def wait(self, duration: Duration | float, name: str | None = None) -> None:
        """Suspend for ``duration``. No process is held while waiting."""
        await adrive(self._wait_flow(duration, name))

    async def create_callback(self, name: str | None = None,
                              config: CallbackConfig | None = None) -> AsyncCallback:
        """A callback id to hand out; ``await cb.result()`` suspends until it is answered."""
        return await adrive(self._create_callback_flow(name, config))  # type: ignore[no-any-return]

    async def wait_for_callback(self, submitter: Callable[[str], Any], name: str | None = None,
                                config: CallbackConfig | None = None) -> Any:
        """Create a callback, pass its id to ``submitter`` (a step; plain or async), and wait for
        the answer."""
        return await adrive(self._wait_for_callback_flow(submitter, name, config))

    @overload
    async def run_in_child_context(self, fn: Callable[[AsyncDurableContext], Awaitable[T]], name: str | None = None,
                                   config: ChildConfig | None = None) -> T: ...
    @overload
    async def run_in_child_context(self, fn: Callable[[AsyncDurableContext], T], name: str | None = None,
                                   config: ChildConfig | None = None) -> T: ...

    async def run_in_child_context(self, fn: Callable[[AsyncDurableContext], Any], name: str | None = None,
                                   config: ChildConfig | None = None) -> Any:
        """Run ``fn(child_ctx)`` (awaited if async); its operations are grouped and its result
        checkpointed as one."""
        return await adrive(self._child_flow(fn, name, config))

    async def parallel(self, branches: Sequence[Any], name: str | None = None,
                       config: ParallelConfig | None = None) -> BatchResult:
        """Run each branch ``fn(child_ctx)`` as its own child context, as concurrent asyncio tasks;
        results in branch order. Branches may be callables or ``(name, fn)`` pairs."""
        return await adrive(self._parallel_flow(branches, name, config))

    async def map(self, items: Sequence[Any], fn: Callable[..., Any], name: str | None = None,
                  config: MapConfig | None = None) -> BatchResult:
        """Run ``fn(child_ctx, item, index, items)`` for every item as concurrent asyncio tasks;
        results in item order."""
        return await adrive(self._map_flow(items, fn, name, config))

    async def wait_for_condition(self, check: Callable[..., Any], name: str | None = None,
                                 config: WaitForConditionConfig | None = None) -> Any:
        """Poll ``check(state, step_context) -> state`` (plain or async) until the wait strategy
        says stop; the state is checkpointed on every poll and the execution suspends between polls."""
        return await adrive(self._condition_flow(check, name, config))

    async def invoke(self, function_name: str, payload: Any = None, name: str | None = None,
                     config: InvokeConfig | None = None) -> Any:
        """Run another durable function as its own execution and suspend until it finishes."""
        return await adrive(self._invoke_flow(function_name, payload, name, config))

    async def patched(self, change_id: str) -> bool:
        """``if await ctx.patched("use-new-pricing"): ...``: see DurableContext.patched."""
        return await adrive(self._patched_flow(change_id))

    # -- replay-safe stand-ins for the clock and randomness --------------------------------------
    async def now(self) -> float:
        """Epoch seconds, recorded once: the same value on every replay."""
        return await self.step(self.state.now, name="now", config=_NO_RETRY)

    async def random(self) -> float:
        """A random float in [0, 1), recorded once."""
        return await self.step(_random.random, name="random", config=_NO_RETRY)

    async def uuid4(self) -> _uuid.UUID:
        """A random UUID, recorded once."""
        return _uuid.UUID(await self.step(_uuid4_text, name="uuid4", config=_NO_RETRY))


__all__ = ["AsyncDurableContext"]
