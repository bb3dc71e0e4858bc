"""``@tool``: a typed Python function becomes something a model can call, durably.

A *plain* tool runs as one durable step: its result is checkpointed, so a replay never runs it
again. A *durable* tool takes the ``DurableContext`` as its first parameter and runs in a child
context of its own, where it may ``ctx.step``, ``ctx.wait`` or wait for a callback itself.

Tools may be ``async def``, and either kind serves both surfaces: in an async handler an async
tool is awaited on the loop and a plain one runs in a worker thread (so the parallel tool calls
of one response stay concurrent); in a sync handler a plain tool is called and an async one runs
on duragent's event loop (durable/loop.py). A durable tool gets the context of its own kind.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import re
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel

from duragent.durable import (
    AsyncDurableContext,
    DurableContext,
    JsonSerdes,
    RetryPolicy,
    StepConfig,
    StepSemantics,
    UsageError,
)
from duragent.durable.errors import DurableOperationError, error_class
from duragent.durable.flow import Flow, run_flow
from duragent.durable.loop import run_coroutine

from . import schema as _schema
from .errors import ToolError, ToolValidationError

if TYPE_CHECKING:  # agents imports tools; keep the import one-way at load time
    from duragent.agents.messages import ToolResult, ToolSpec

F = TypeVar("F", bound=Callable[..., Any])

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TEXT_SERDES: JsonSerdes[str] = JsonSerdes(str)
_ANY_JSON: JsonSerdes[Any] = JsonSerdes()


class Tool:
    """A function a model may call: name, description, argument schema, and how to run it.

    Build one with ``@tool``. Calling the ``Tool`` directly calls the function (handy in tests).
    """

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
                 requires_approval: bool = False, at_most_once: bool = False, timeout: float | None = None,
                 retry: RetryPolicy | None = None) -> None:
        if not callable(fn):
            raise UsageError(f"@tool needs a function, got {fn!r}")
        self.fn = fn
        self.is_async: bool = inspect.iscoroutinefunction(fn)
        """``async def`` tool: awaited in async handlers, run on duragent's loop in sync ones."""
        self.name: str = name or str(getattr(fn, "__name__", ""))
        """The name the model calls the tool by (default: the function's name)."""
        if not _NAME.match(self.name):
            raise UsageError(f"tool name {self.name!r} is invalid: use 1-64 characters from A-Z a-z 0-9 _ -")
        summary, params = _schema.parse_docstring(inspect.getdoc(fn))
        self.description: str = description if description is not None else summary
        """What the model is told the tool does (default: the docstring's prose)."""
        self.parameter_descriptions: dict[str, str] = params
        """Per-parameter descriptions parsed from the docstring."""
        signature = inspect.signature(fn)
        first = next(iter(signature.parameters.values()), None)
        hints = _schema.type_hints(fn)
        self.durable: bool = first is not None and _schema.is_context_parameter(first, hints.get(first.name))
        """True if the function takes the DurableContext first (it then runs in a child context)."""
        self.requires_approval = requires_approval
        """A human must approve each call before it runs (enforced by the agent, not here)."""
        self.at_most_once = at_most_once
        """Side effects: the step is started durably before the body runs and is never re-run
        after a crash mid-call (StepSemantics.AT_MOST_ONCE_PER_RETRY). Plain tools only."""
        self.timeout = timeout
        """Seconds a plain tool may run before the call fails (a sync tool's thread is abandoned, not
        killed; an async tool is cancelled)."""
        self.retry = retry
        """Durable retry policy of the step; None = no retry (the model sees the error instead)."""
        if self.durable and (at_most_once or timeout is not None or retry is not None):
            raise UsageError(f"tool {self.name!r} takes the DurableContext, so it runs as a child context and "
                             "at_most_once=, timeout= and retry= do not apply; set them on the steps it runs")
        if timeout is not None and timeout <= 0:
            raise UsageError(f"tool {self.name!r}: timeout must be positive seconds, got {timeout!r}")
        self.arguments_model: type[BaseModel] = _schema.arguments_model(
            fn, model_name=f"{_camel(self.name)}Arguments", skip_first=self.durable, descriptions=params)
        """The pydantic model arguments are validated with."""
        self.parameters: dict[str, Any] = _schema.json_schema(self.arguments_model)
        """JSON schema of the arguments object."""
        self._positional_only = [p.name for p in signature.parameters.values()
                                 if p.kind is inspect.Parameter.POSITIONAL_ONLY]
        self.__doc__ = fn.__doc__
        self.__name__ = self.name
        self.__wrapped__ = fn

    # -- describing ------------------------------------------------------------------------------
    def spec(self) -> ToolSpec:
        """What a model is told about this tool."""
        from duragent.agents.messages import ToolSpec

        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def validate(self, arguments: dict[str, Any] | None) -> dict[str, Any]:
        """Validated python keyword arguments, or ToolValidationError (a message for the model)."""
        return _schema.validate_arguments(self.arguments_model, self.name, arguments)

    # -- running ---------------------------------------------------------------------------------
    @overload
    def run(self, ctx: DurableContext, arguments: dict[str, Any] | None, *, call_id: str) -> ToolResult: ...
    @overload
    def run(self, ctx: AsyncDurableContext, arguments: dict[str, Any] | None, *,
            call_id: str) -> Awaitable[ToolResult]: ...

    def run(self, ctx: Any, arguments: dict[str, Any] | None, *, call_id: str) -> Any:
        """Validate and run one call durably; every outcome becomes a ToolResult for the model
        (awaitable under an AsyncDurableContext).

        Bad arguments and exceptions raised by the tool come back with ``is_error=True`` and a
        message the model can act on. Suspension (a wait, a retry) propagates as usual.
        """
        return run_flow(self.flow(ctx, arguments, call_id=call_id), ctx)

    def flow(self, ctx: DurableContext | AsyncDurableContext, arguments: dict[str, Any] | None, *,
             call_id: str) -> Flow[ToolResult]:
        """``run`` as a flow (durable/flow.py), for callers that are flows themselves."""
        from duragent.agents.messages import ToolResult

        try:
            kwargs = self.validate(arguments)
        except ToolValidationError as exc:
            return ToolResult(tool_call_id=call_id, content=str(exc), is_error=True)
        operation = f"tool:{self.name}"
        try:
            if self.durable:
                text = yield ctx.run_in_child_context(self._durable_body(ctx.is_async, kwargs), name=operation)
            else:
                semantics = (StepSemantics.AT_MOST_ONCE_PER_RETRY if self.at_most_once
                             else StepSemantics.AT_LEAST_ONCE_PER_RETRY)
                config = StepConfig(retry=self.retry or RetryPolicy.no_retry(), semantics=semantics,
                                    serdes=_TEXT_SERDES)
                text = yield ctx.step(self._step_body(ctx.is_async, kwargs), name=operation, config=config)
        except DurableOperationError as exc:
            return ToolResult(tool_call_id=call_id, content=error_text(exc.error_type, exc.message),
                              is_error=True)
        return ToolResult(tool_call_id=call_id, content=text)

    def _step_body(self, awaited: bool, kwargs: dict[str, Any]) -> Callable[[], Any]:
        """The step function of a plain tool, for the surface at hand (``awaited``: async)."""
        if awaited:
            if self.is_async:
                return lambda: self._atext(kwargs)

            async def in_thread() -> str:  # a blocking tool must not hold up the other calls on the loop
                return await asyncio.to_thread(self._text, kwargs)

            return in_thread
        if self.is_async:
            return lambda: run_coroutine(self._atext(kwargs))
        return lambda: self._text(kwargs)

    def _durable_body(self, awaited: bool, kwargs: dict[str, Any]) -> Callable[[Any], Any]:
        """The child-context body of a durable tool; the tool gets a context of its own kind."""
        if awaited:
            if self.is_async:
                async def awaited_body(child: AsyncDurableContext) -> str:
                    return to_text(await self._call(kwargs, child))

                return awaited_body

            async def threaded_body(child: AsyncDurableContext) -> str:
                view = child._view(DurableContext)
                return to_text(await asyncio.to_thread(self._call, kwargs, view))

            return threaded_body
        if self.is_async:
            return lambda child: to_text(run_coroutine(self._call(kwargs, child._view(AsyncDurableContext))))
        return lambda child: to_text(self._call(kwargs, child))

    def _text(self, kwargs: dict[str, Any]) -> str:
        if self.timeout is None:
            return to_text(self._call(kwargs))
        return to_text(_with_timeout(lambda: self._call(kwargs), self.timeout, self.name))

    async def _atext(self, kwargs: dict[str, Any]) -> str:
        if self.timeout is None:
            return to_text(await self._call(kwargs))
        try:
            return to_text(await asyncio.wait_for(self._call(kwargs), self.timeout))
        except TimeoutError:
            raise ToolError(f"tool {self.name!r} did not finish within {self.timeout:g} s") from None

    def _call(self, kwargs: dict[str, Any], *context: Any) -> Any:
        positional = [kwargs[name] for name in self._positional_only if name in kwargs]
        named = {k: v for k, v in kwargs.items() if k not in self._positional_only}
        return self.fn(*context, *positional, **named)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        flags = [f for f, on in (("async", self.is_async), ("durable", self.durable),
                                 ("at_most_once", self.at_most_once),
                                 ("requires_approval", self.requires_approval)) if on]
        return f"Tool({self.name!r}{', ' if flags else ''}{', '.join(flags)})"


@overload
def tool(fn: F, /) -> Tool: ...


@overload
def tool(*, name: str | None = None, description: str | None = None, requires_approval: bool = False,
         at_most_once: bool = False, timeout: float | None = None,
         retry: RetryPolicy | None = None) -> Callable[[F], Tool]: ...


def tool(fn: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None,
         requires_approval: bool = False, at_most_once: bool = False, timeout: float | None = None,
         retry: RetryPolicy | None = None) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a ``Tool`` of a typed function: ``@tool`` or ``@tool(name=..., at_most_once=True, ...)``.

    Args:
        name: the tool's name for the model (default: the function's name).
        description: what the model is told (default: the docstring's prose).
        requires_approval: a human reviews each call before it runs (the agent enforces it).
        at_most_once: for side effects; never re-run a call a crash may have interrupted.
        timeout: seconds a plain tool may run before the call fails.
        retry: durable retry policy for a plain tool's step (default: no retry).
    """
    def make(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description, requires_approval=requires_approval,
                    at_most_once=at_most_once, timeout=timeout, retry=retry)

    return make(fn) if fn is not None else make


# -- helpers -------------------------------------------------------------------------------------

def to_text(value: Any) -> str:
    """A tool's return value as text for the model: str as is, pydantic models and other JSON-able
    values as JSON, anything else ``str()``."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        pass
    try:
        return _ANY_JSON.serialize(value) or str(value)  # pydantic's JSON of dataclasses, datetimes...
    except Exception:
        return str(value)


def error_text(error_type: str | None, message: str) -> str:
    """An error as the model sees it: ``ValueError: text``, or the bare text of a ToolError."""
    if not error_type or _is_tool_error(error_type):
        return message or "the tool failed"
    short = error_type.rsplit(".", 1)[-1]
    return f"{short}: {message}" if message else short


def _is_tool_error(error_type: str) -> bool:
    """Whether a recorded ``ErrorType`` names a ToolError class: our own by their stable names
    (or the names recorded before the single import root), a user's subclass by ``module.Qualname``.
    For those, only modules already imported are consulted (a tool's own module always is), so
    this never imports anything."""
    ours = error_class(error_type)
    if ours is not None:
        return issubclass(ours, ToolError)
    module_name, _, qualname = error_type.partition(".")
    while qualname:
        module = sys.modules.get(module_name)
        if module is not None:
            obj: Any = module
            for part in qualname.split("."):
                obj = getattr(obj, part, None)
            if isinstance(obj, type):
                return issubclass(obj, ToolError)
        head, _, qualname = qualname.partition(".")
        module_name = f"{module_name}.{head}"
    return False


def _with_timeout(call: Callable[[], Any], seconds: float, name: str) -> Any:
    """Run ``call`` in a daemon thread; give up after ``seconds`` (the thread cannot be killed)."""
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()  # the step context (durable.step_context()) goes along

    def target() -> None:
        try:
            outcome["value"] = context.run(call)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name=f"tool:{name}")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise ToolError(f"tool {name!r} did not finish within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-]+", name) if part) or "Tool"
