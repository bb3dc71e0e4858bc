"""Tools that arrive in sets at run time (an MCP server's), and the tools of one agent run.

A ``Toolset`` is listed when a run first needs it: the list is a durable step, so a replay offers
the model exactly the tools it was offered, without connecting to anything. Before every model
call that will really run, each toolset is listed again (once per invocation) and compared with
what was recorded; a server whose tools changed while the execution waited is reported like an
edited system prompt (``ToolsChangedError``, or a warning with ``on_prompt_change='warn'``, and
then the new list is recorded with that model call). ``duragent replay-check`` makes the same
comparison where the replay stops, so a deploy gate names the server.

Connections are the toolset's business: a ``ToolsetSession`` is opened lazily for one run in one
invocation and closed when the run's flow ends there (returned, failed or suspended), so a
suspended execution holds no connection and no process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Sequence
from typing import Any, Literal, TypeVar

from duragent.durable import JsonSerdes, RetryPolicy, StepConfig, UsageError
from duragent.durable.errors import ReplayFrontier, SuspendExecution
from duragent.durable.flow import Flow
from duragent.durable.loop import background_loop

from .messages import ModelResponse, ToolSpec

T = TypeVar("T")

log = logging.getLogger("agents")

_SPECS: JsonSerdes[list[ToolSpec]] = JsonSerdes(list[ToolSpec])


class ToolsetSession(ABC):
    """A toolset's connection for one agent run in one invocation (opened on first use)."""

    @abstractmethod
    async def list_tools(self) -> list[ToolSpec]:
        """The tools as offered to the model now (names as the model calls them)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release whatever was opened (a no-op if nothing was)."""


class Toolset(ABC):
    """Tools listed from somewhere at run time; pass one in ``Agent(tools=[...])`` beside plain tools."""

    name: str
    """Names the toolset in the journal (its listing step) and in messages; unique per agent."""
    retry: RetryPolicy | None
    """Durable retry while the source is down (None: no retry)."""

    @abstractmethod
    def session(self) -> ToolsetSession:
        """A new, not yet connected, session for one agent run in one invocation."""

    @abstractmethod
    def tool(self, spec: ToolSpec, session: Any) -> Any:
        """A tool-like object (``name``, ``parameters``, ``requires_approval``, ``validate``,
        ``flow``) that runs ``spec`` through ``session()``, a callable giving this run's session."""


def split_tools(tools: Sequence[Any]) -> tuple[dict[str, Any], list[Toolset]]:
    """The agent's own tools by name, and its toolsets (names checked for clashes)."""
    plain: dict[str, Any] = {}
    toolsets: list[Toolset] = []
    for item in tools:
        if isinstance(item, Toolset):
            if any(t.name == item.name for t in toolsets):
                raise UsageError(f"two toolsets are named {item.name!r}; give one of them another name=")
            toolsets.append(item)
        else:
            plain[item.name] = item
    return plain, toolsets


class Toolbox:
    """The tools of one agent run: the agent's own, plus what each toolset offered, as recorded."""

    def __init__(self, tools: dict[str, Any], toolsets: Sequence[Toolset], *, agent: str,
                 on_change: Literal["fail", "warn"]) -> None:
        self.tools = tools
        self.toolsets = list(toolsets)
        self.agent = agent
        self.on_change = on_change
        self._recorded: dict[str, list[ToolSpec]] = {}
        self._live: dict[str, list[ToolSpec] | None] = {}
        self._by_name: dict[str, tuple[Toolset, ToolSpec]] = {}
        self._bound: dict[tuple[str, str], Any] = {}
        self._sessions: dict[str, ToolsetSession] = {}
        self._stamp: dict[str, list[ToolSpec]] | None = None
        self._lock = threading.Lock()

    # -- the run's life ------------------------------------------------------------------------
    def around(self, ctx: Any, flow: Flow[T]) -> Flow[T]:
        """Run the agent's ``flow``; close this run's sessions whenever it stops here."""
        if not self.toolsets:
            return (yield from flow)
        try:
            return (yield from flow)
        except (SuspendExecution, ReplayFrontier):
            if ctx.is_read_only() and self.on_change == "fail":
                yield from self._check_unchanged(ctx)  # replay-check: did the tools change while it waited?
            raise
        except GeneratorExit:  # abandoned unfinished: nothing may be awaited now
            self._abandon()
            raise
        finally:
            yield from self._close(ctx)

    def start(self, ctx: Any) -> Flow[None]:
        """List every toolset once per run, each as a durable step (replays read the record)."""
        for toolset in self.toolsets:
            async def alist(toolset: Toolset = toolset) -> list[ToolSpec]:
                specs = await self.session(toolset).list_tools()  # a replay never gets here: no session
                self._live[toolset.name] = specs
                return specs

            body: Any = alist if ctx.is_async else (lambda alist=alist: _run(alist()))
            specs = yield ctx.step(body, name=f"{self.agent}: tools of {toolset.name}",
                                   config=StepConfig(retry=toolset.retry or RetryPolicy.no_retry(), serdes=_SPECS))
            self._record(toolset.name, specs)

    def offer(self, ctx: Any) -> Flow[list[ToolSpec]]:
        """The toolsets' tools for the next model call. When that call will really run, each
        toolset is listed now and compared with the record first."""
        if not self.toolsets or ctx.replays_next():
            return self._offered()
        changes: dict[str, list[ToolSpec]] = {}
        for toolset in self.toolsets:
            live = yield from self._list_live(ctx, toolset)
            if live is not None and live != self._recorded.get(toolset.name):
                changes[toolset.name] = live
        if changes:
            message = "; ".join(self._describe(name, live) for name, live in changes.items())
            if self.on_change == "fail":
                raise _changed(f"{self.agent}: {message} while this execution waited; pass "
                               "on_prompt_change='warn' to continue with the tools offered now")
            self._stamp = changes  # recorded with the model call; seen() takes them over
            offered = dict(self._recorded, **changes)
            return [spec for name in self._order() for spec in offered.get(name, [])]
        return self._offered()

    def stamp(self) -> dict[str, list[ToolSpec]] | None:
        """The tool lists the model call about to run must record (those that changed), if any."""
        return self._stamp

    def seen(self, response: ModelResponse) -> list[str]:
        """Take over the tool lists a model call recorded (fresh or replayed alike); the warnings
        about lists that changed (the same on every replay)."""
        self._stamp = None
        warnings: list[str] = []
        for name, specs in (response.toolsets or {}).items():
            if name in self._recorded and specs != self._recorded[name]:
                message = f"{self.agent}: {self._describe(name, specs)}; continuing with the new tools"
                log.warning("%s (on_prompt_change='warn')", message)
                warnings.append(message)
            self._record(name, specs)
        return warnings

    def get(self, name: str) -> Any:
        """The tool the model called by ``name``: the agent's own, or a toolset's as offered."""
        if name in self.tools:
            return self.tools[name]
        found = self._by_name.get(name)
        if found is None:
            return None
        toolset, spec = found
        with self._lock:  # parallel tool calls ask from their branches' threads
            key = (toolset.name, name)
            if key not in self._bound:
                self._bound[key] = toolset.tool(spec, lambda: self.session(toolset))
            return self._bound[key]

    def names(self) -> list[str]:
        return sorted([*self.tools, *self._by_name])

    def session(self, toolset: Toolset) -> ToolsetSession:
        """This run's session of ``toolset`` (created on first use, from any branch's thread)."""
        with self._lock:
            session = self._sessions.get(toolset.name)
            if session is None:
                session = self._sessions[toolset.name] = toolset.session()
            return session

    # -- internals -------------------------------------------------------------------------------
    def _record(self, name: str, specs: list[ToolSpec]) -> None:
        self._recorded[name] = list(specs)
        self._by_name = {}
        for toolset in self.toolsets:
            for spec in self._recorded.get(toolset.name, []):
                if spec.name in self.tools:
                    raise UsageError(f"{self.agent}: {toolset.name} offers a tool named {spec.name!r}, like one "
                                     "of the agent's own tools; give the toolset a prefix=")
                if spec.name in self._by_name:
                    raise UsageError(f"{self.agent}: {toolset.name} and {self._by_name[spec.name][0].name} both "
                                     f"offer a tool named {spec.name!r}; give one of them a prefix=")
                self._by_name[spec.name] = (toolset, spec)
        self._bound = {key: tool for key, tool in self._bound.items() if key[0] != name}

    def _order(self) -> list[str]:
        return [toolset.name for toolset in self.toolsets]

    def _offered(self) -> list[ToolSpec]:
        return [spec for name in self._order() for spec in self._recorded.get(name, [])]

    def _list_live(self, ctx: Any, toolset: Toolset) -> Flow[list[ToolSpec] | None]:
        """The toolset's tools now (listed once per invocation); None if it cannot be reached
        (the recorded list is offered then, and calls report the outage)."""
        if toolset.name not in self._live:
            session = self.session(toolset)

            async def attempt() -> list[ToolSpec] | None:
                try:
                    return await session.list_tools()
                except Exception as exc:  # noqa: BLE001 - an outage must not stop the model call
                    log.warning("%s: cannot list the tools of %s to check them (%s); offering the tools "
                                "recorded before", self.agent, toolset.name, exc)
                    return None

            self._live[toolset.name] = yield _on(ctx, attempt())
        return self._live[toolset.name]

    def _check_unchanged(self, ctx: Any) -> Flow[None]:
        for toolset in self.toolsets:
            if toolset.name not in self._recorded:
                continue
            live = yield from self._list_live(ctx, toolset)
            if live is not None and live != self._recorded[toolset.name]:
                raise _changed(f"{self.agent}: {self._describe(toolset.name, live)} while this execution "
                               "waited; its next model call fails (or pass on_prompt_change='warn')")

    def _describe(self, name: str, live: list[ToolSpec]) -> str:
        return f"{name} changed its tools ({describe_change(self._recorded.get(name, []), live)})"

    def _close(self, ctx: Any) -> Flow[None]:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
            self._live = {}
        if sessions:
            yield _on(ctx, _close_all(sessions))

    def _abandon(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:  # closed on their own loop, without waiting here
            _schedule(session.aclose())


def describe_change(before: list[ToolSpec], after: list[ToolSpec]) -> str:
    """``added: a; removed: b; changed: c`` between two tool lists."""
    old = {spec.name: spec for spec in before}
    new = {spec.name: spec for spec in after}
    parts = []
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(n for n in set(old) & set(new) if old[n] != new[n])
    if added:
        parts.append("added: " + ", ".join(added))
    if removed:
        parts.append("removed: " + ", ".join(removed))
    if changed:
        parts.append("changed: " + ", ".join(changed))
    return "; ".join(parts) or "reordered"


def _changed(message: str) -> Exception:
    from .agent import ToolsChangedError  # agent.py imports this module

    return ToolsChangedError(message)


async def _close_all(sessions: list[ToolsetSession]) -> None:
    for session in sessions:
        try:
            await session.aclose()
        except Exception:  # noqa: BLE001 - closing must never fail the run
            log.debug("closing a toolset session failed", exc_info=True)


def _on(ctx: Any, coro: Coroutine[Any, Any, T]) -> Any:
    """What a flow yields to get ``coro``'s value under ``ctx``'s surface: the coroutine itself
    (awaited on the handler's loop) or, for a synchronous handler, its value from duragent's loop."""
    return coro if ctx.is_async else _run(coro)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on duragent's background loop (where synchronous handlers' sessions live)."""
    return asyncio.run_coroutine_threadsafe(coro, background_loop()).result()


def _schedule(coro: Coroutine[Any, Any, Any]) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = background_loop()
        asyncio.run_coroutine_threadsafe(coro, loop)
        return
    task = loop.create_task(coro)
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


_PENDING: set[asyncio.Task[Any]] = set()


def run_on_session_loop(coro: Coroutine[Any, Any, T]) -> T:
    """For synchronous callers (a tool's step body): ``coro``'s value, run where sessions live."""
    return _run(coro)


__all__ = ["Toolbox", "Toolset", "ToolsetSession", "describe_change", "run_on_session_loop", "split_tools"]
