"""The Model protocol every provider adapter implements, its async counterpart, and the one way
the agent calls a model from an async handler (``request_async``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from duragent.durable.flow import emit

from ..messages import ModelRequest, ModelResponse

TextCallback = Callable[[str], None]
AsyncTextCallback = Callable[[str], "Awaitable[None] | None"]
"""A text callback in an async handler: a plain function, or an async one (awaited per delta)."""


@runtime_checkable
class Model(Protocol):
    """A model that answers one normalized request. Adapters hold their client; the client and its
    key never leave the adapter (nothing of it is checkpointed)."""

    @property
    def model_id(self) -> str:
        """``provider:name``: what the journal and the ledger record."""
        ...

    def request(self, request: ModelRequest, *, on_text: TextCallback | None = None) -> ModelResponse:
        """One call, no hidden retries. ``on_text`` receives text deltas as they stream in."""
        ...


@runtime_checkable
class AsyncModel(Protocol):
    """A model that can also answer without blocking an event loop (the built-in adapters can)."""

    async def arequest(self, request: ModelRequest, *,
                       on_text: AsyncTextCallback | None = None) -> ModelResponse:
        """``request``, awaited: one call, no hidden retries, text deltas to ``on_text``."""
        ...


async def request_async(model: Model, request: ModelRequest, *,
                        on_text: AsyncTextCallback | None = None) -> ModelResponse:
    """One model call from an async handler: the model's own ``arequest`` when it has one;
    otherwise its ``request`` in a worker thread, with text deltas handed to ``on_text`` on the
    loop, in order (a model written for sync handlers works unchanged in async ones)."""
    if isinstance(model, AsyncModel):
        return await model.arequest(request, on_text=on_text)
    return await request_in_thread(model.request, request, on_text=on_text)


async def request_in_thread(call: Callable[..., ModelResponse], request: ModelRequest, *,
                            on_text: AsyncTextCallback | None = None) -> ModelResponse:
    """``call(request, on_text=...)`` (a blocking model call) in a worker thread; its text deltas
    reach ``on_text`` on the event loop, in order, before the response does."""
    if on_text is None:
        return await asyncio.to_thread(call, request)
    loop = asyncio.get_running_loop()
    deltas: asyncio.Queue[str | None] = asyncio.Queue()

    async def deliver() -> None:
        while (delta := await deltas.get()) is not None:
            await emit(on_text, delta)

    def hand_over(delta: str) -> None:  # called on the model's thread
        loop.call_soon_threadsafe(deltas.put_nowait, delta)

    delivery = asyncio.ensure_future(deliver())
    try:
        # deltas are queued from the thread before its result is: the sentinel below comes last
        return await asyncio.to_thread(call, request, on_text=hand_over)
    finally:
        deltas.put_nowait(None)
        await delivery
