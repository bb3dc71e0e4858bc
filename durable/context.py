"""DurableContext: the operations a handler calls. Each method resolves its arguments and hands
off to one module in ``operations/``; this file reads like a table of contents.

``ContextBase`` holds what every surface shares (identity, the operation counter, child contexts,
and each operation's flow, see durable/flow.py); ``DurableContext`` runs those flows for a
synchronous handler, ``AsyncDurableContext`` (async_context.py) awaits the very same flows.
"""

from __future__ import annotations

import inspect
import random as _random
import threading
import uuid as _uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from .config import (
    CallbackConfig,
    ChildConfig,
    Duration,
    InvokeConfig,
    LoggerConfig,
    MapConfig,
    ParallelConfig,
    StepConfig,
    WaitForConditionConfig,
)
from .errors import SuspendExecution, UsageError
from .flow import Flow, drive, plain
from .journal import Position, operation_id
from .live import LiveEvents
from .log import DurableLogger
from .model import OperationStatus
from .operations import batch as _batch
from .operations import callback as _callback
from .operations import child as _child
from .operations import condition as _condition
from .operations import invoke as _invoke
from .operations import step as _step
from .operations import wait as _wait
from .operations._common import CURRENT_STEP, StepContext, forbid_inside_step
from .plugins import OperationInfo
from .retry import RetryPolicy
from .serdes import JsonSerdes, deserialize, load_payload, serdes_for
from .state import ExecutionState

T = TypeVar("T")
C = TypeVar("C", bound="ContextBase")

_MISS: Any = object()
"""What ``_replayed_step`` returns when the step is not a plain replay."""
_NO_RETRY = StepConfig(retry=RetryPolicy.no_retry())
PATCH_SUBTYPE = "Patch"
_PATCH_CONFIG = StepConfig(retry=RetryPolicy.no_retry(), sub_type=PATCH_SUBTYPE)


def _default_name(fn: Callable[..., Any]) -> str | None:
    name = getattr(fn, "__name__", None)
    return None if not name or name == "<lambda>" else name


class ContextBase:
    """Identity, operation ids and the flow of every operation, whatever the surface."""

    is_async: ClassVar[bool] = False
    """True for the surface whose operations are awaited."""

    def __init__(self, state: ExecutionState, *, parent_id: str | None = None, prefix: str | None = None,
                 path: str = "handler", logger_config: LoggerConfig | None = None) -> None:
        self.state = state
        self.parent_id = parent_id
        self._prefix = prefix
        self._path = path
        self._counter = 0
        self._peeked: tuple[int, str] = (0, "")
        self._lock = threading.Lock()
        self._logger_config = logger_config or LoggerConfig()
        self.logger = DurableLogger({"executionArn": state.arn, "durableExecutionArn": state.arn},
                                    self.is_replaying, self._logger_config.replay_logging)

    # -- identity ------------------------------------------------------------------------------
    @property
    def execution_arn(self) -> str:
        return self.state.arn

    @property
    def execution_id(self) -> str:
        return self.state.execution_id

    def _next_operation(self, name: str | None) -> tuple[str, Position]:
        """The next operation id in this context and a readable position for error messages."""
        with self._lock:
            self._counter += 1
            counter = self._counter
        peeked = self._peeked  # the id ``_replayed_step`` just hashed for this position, if it did
        op_id = peeked[1] if peeked[0] == counter else operation_id(counter, self._prefix)
        return op_id, Position(self._path, counter, name)

    def _peek_operation(self) -> str:
        """The id the next operation of this context will get."""
        return operation_id(self._counter + 1, self._prefix)

    def _child_context(self: C, op_id: str, name: str | None, parent_id: str | None = None) -> C:
        path = f"{self._path} → {name!r}" if name else f"{self._path} → child {op_id[:8]}"
        return type(self)(self.state, parent_id=parent_id or op_id, prefix=op_id, path=path,
                          logger_config=self._logger_config)

    def _view(self, surface: type[C]) -> C:
        """This context (same ids, from the same position on) under another surface: lets a
        synchronous durable tool run inside an async handler, and the reverse. The view takes the
        context over: the original must not be used after it."""
        view = surface.__new__(surface)
        view.__dict__.update(self.__dict__)
        view.logger = DurableLogger(self.logger.fields, view.is_replaying, self._logger_config.replay_logging)
        return view

    @property
    def live(self) -> LiveEvents:
        """Live events for whoever follows this execution right now (``duragent follow``, an event
        stream): ``ctx.live.send("progress", done=3)``. Not journaled, delivered at most once,
        free when nobody listens (``ctx.live.listening``)."""
        return self.state.live

    def is_replaying(self) -> bool:
        """True while the next operation of this context is already in history."""
        return self._peek_operation() in self.state.operations

    def replays_next(self) -> bool:
        """True if the next operation of this context is recorded as finished, so it will return
        its recorded outcome without running; False if it will run, run again or wait. Lets code
        skip preparing work (listing an MCP server's tools) that a replay does not need."""
        op = self.state.get(self._peek_operation())
        return op is not None and op.Status.terminal

    def is_read_only(self) -> bool:
        """True under ``duragent replay-check``: the replay writes nothing and ends where it would
        do new work or wait (checks that only matter there, like a changed MCP server, run then)."""
        return self.state.read_only

    def set_logger(self, config: LoggerConfig) -> None:
        """E.g. ``ctx.set_logger(LoggerConfig(replay_logging=True))`` to log on replay too."""
        self._logger_config = config
        self.logger = DurableLogger(self.logger.fields, self.is_replaying, config.replay_logging)

    # -- the flow of each operation (durable/flow.py), shared by both surfaces --------------------
    def _replayed_step(self, fn: Callable[..., Any], name: str | None, config: StepConfig | None) -> Any:
        """The recorded result of the step the handler asks for next, if history holds it as
        succeeded under the same identity; ``_MISS`` otherwise (and for plugins, which are told
        about every operation): then the step's flow runs, and names any mismatch. Replay spends
        most of its time here, so nothing is built that the answer does not need."""
        if self.state.hooks is not None or CURRENT_STEP.get() is not None:
            return _MISS
        if name is None:
            name = _default_name(fn)
        counter = self._counter + 1
        state = self.state
        op_id = operation_id(counter, self._prefix)
        op = dict.get(state.operations, op_id)
        if op is None:
            self._peeked = (counter, op_id)  # a new step: its flow takes this id without hashing again
            return _MISS
        sub_type = (config.sub_type if config is not None else None) or "Step"
        hit, payload = state.replayed_result(op, name, sub_type, self.parent_id)
        if not hit:
            return _MISS
        with self._lock:
            if self._counter != counter - 1:  # another thread took this position meanwhile
                return _MISS
            self._counter = counter
        serdes = serdes_for(fn, config.serdes if config is not None else None)
        if payload is not None and payload[:1] == "{":  # perhaps a pointer to a payload kept elsewhere
            payload = load_payload(state.service, payload)
        # our JSON serdes raises its own clear errors; a custom one is wrapped to name itself
        return serdes.deserialize(payload) if serdes.__class__ is JsonSerdes else deserialize(serdes, payload)

    def _step_flow(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                   name: str | None, config: StepConfig | None) -> Flow[Any]:
        forbid_inside_step("step")
        name = name if name is not None else _default_name(fn)
        return self._observed("STEP", name, (config.sub_type if config else None) or "Step",
                              _step.run_step(self, fn, args, kwargs, name=name, config=config))

    def _wait_flow(self, duration: Duration | float, name: str | None) -> Flow[None]:
        forbid_inside_step("wait")
        return self._observed("WAIT", name, "Wait", plain(_wait.run_wait, self, Duration.of(duration), name))

    def _create_callback_flow(self, name: str | None, config: CallbackConfig | None) -> Flow[Any]:
        forbid_inside_step("create_callback")
        return self._observed("CALLBACK", name, "Callback", plain(_callback.create_callback, self, name, config))

    def _wait_for_callback_flow(self, submitter: Callable[[str], Any], name: str | None,
                                config: CallbackConfig | None) -> Flow[Any]:
        forbid_inside_step("wait_for_callback")
        return self._observed("CONTEXT", name, "WaitForCallback",
                              _callback.wait_for_callback(self, submitter, name, config))

    def _child_flow(self, fn: Callable[[Any], Any], name: str | None, config: ChildConfig | None) -> Flow[Any]:
        forbid_inside_step("run_in_child_context")
        return self._observed("CONTEXT", name, (config.sub_type if config else None) or "RunInChildContext",
                              _child.run_child(self, _child.user_body(fn), name=name, config=config, result_of=fn))

    def _parallel_flow(self, branches: Sequence[Any], name: str | None,
                       config: ParallelConfig | None) -> Flow[_batch.BatchResult]:
        forbid_inside_step("parallel")
        config = config or ParallelConfig()
        return self._observed("CONTEXT", name, "Parallel", _batch.run_batch(
            self, _batch.parallel_branches(branches), name=name, config=config, kind="Parallel"))

    def _map_flow(self, items: Sequence[Any], fn: Callable[..., Any], name: str | None,
                  config: MapConfig | None) -> Flow[_batch.BatchResult]:
        forbid_inside_step("map")
        config = config or MapConfig()
        items = list(items)
        return self._observed("CONTEXT", name, "Map", _batch.run_batch(
            self, _batch.map_branches(items, fn, config), name=name, config=config, kind="Map"))

    def _condition_flow(self, check: Callable[..., Any], name: str | None,
                        config: WaitForConditionConfig | None) -> Flow[Any]:
        forbid_inside_step("wait_for_condition")
        return self._observed("STEP", name, "WaitForCondition",
                              _condition.wait_for_condition(self, check, name=name, config=config))

    def _invoke_flow(self, function_name: str, payload: Any, name: str | None,
                     config: InvokeConfig | None) -> Flow[Any]:
        forbid_inside_step("invoke")
        return self._observed("CHAINED_INVOKE", name, "ChainedInvoke",
                              plain(_invoke.invoke, self, function_name, payload, name=name, config=config))

    def _patched_flow(self, change_id: str) -> Flow[bool]:
        forbid_inside_step("patched")
        marker = f"patch:{change_id}"
        with self._lock:
            next_id = self._peek_operation()
        recorded = self.state.get(next_id)
        if recorded is not None and not (recorded.SubType == PATCH_SUBTYPE and recorded.Name == marker):
            return False
        yield from self._step_flow(_patch_marker, (), {}, marker, _PATCH_CONFIG)
        return True

    def _observed(self, kind: str, name: str | None, sub_type: str, flow: Flow[T]) -> Flow[T]:
        """Tell plugins an operation started and ended (and whether it came from history)."""
        if self.state.hooks is None:
            return flow
        return self._observing(kind, name, sub_type, flow)

    def _observing(self, kind: str, name: str | None, sub_type: str, flow: Flow[T]) -> Flow[T]:
        hooks = self.state.hooks
        op_id = self._peek_operation()
        existing = self.state.get(op_id)
        replaying = existing is not None and existing.Status.terminal
        info = OperationInfo(self.state.arn, op_id, name, kind, sub_type, self.parent_id, replaying)
        hooks.operation_start(info)
        try:
            result = yield from flow
        except SuspendExecution:
            raise
        except Exception:
            hooks.operation_end(_with_status(info, OperationStatus.FAILED.value))
            raise
        hooks.operation_end(_with_status(info, OperationStatus.SUCCEEDED.value))
        return result

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._path}, execution={self.execution_id!r})"


class DurableContext(ContextBase):
    """The handle a durable handler receives. Everything it does through ``ctx`` is journaled."""

    # -- operations ----------------------------------------------------------------------------
    def step(self, fn: Callable[..., T], *args: Any, name: str | None = None, config: StepConfig | None = None,
             **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` once; its result is checkpointed and replayed thereafter."""
        _refuse_async(fn, "ctx.step")
        value = self._replayed_step(fn, name, config)
        if value is not _MISS:
            return value  # type: ignore[no-any-return]
        return drive(self._step_flow(fn, args, kwargs, name, config))  # type: ignore[no-any-return]

    def wait(self, duration: Duration | float, name: str | None = None) -> None:
        """Suspend for ``duration``. No process is held while waiting."""
        drive(self._wait_flow(duration, name))

    def create_callback(self, name: str | None = None, config: CallbackConfig | None = None) -> _callback.Callback:
        """A callback id to hand out; ``.result()`` suspends until it is answered."""
        return drive(self._create_callback_flow(name, config))  # type: ignore[no-any-return]

    def wait_for_callback(self, submitter: Callable[[str], Any], name: str | None = None,
                          config: CallbackConfig | None = None) -> Any:
        """Create a callback, pass its id to ``submitter`` (run as a step), and wait for the answer."""
        _refuse_async(submitter, "ctx.wait_for_callback")
        return drive(self._wait_for_callback_flow(submitter, name, config))

    def run_in_child_context(self, fn: Callable[[DurableContext], T], name: str | None = None,
                             config: ChildConfig | None = None) -> T:
        """Run ``fn(child_ctx)``; its operations are grouped and its result checkpointed as one."""
        _refuse_async(fn, "ctx.run_in_child_context")
        return drive(self._child_flow(fn, name, config))  # type: ignore[no-any-return]

    def parallel(self, branches: Sequence[Any], name: str | None = None,
                 config: ParallelConfig | None = None) -> _batch.BatchResult:
        """Run each branch ``fn(child_ctx)`` as its own child context, concurrently; results in
        branch order. Branches may be callables or ``(name, fn)`` pairs."""
        return drive(self._parallel_flow(branches, name, config))

    def map(self, items: Sequence[Any], fn: Callable[..., Any], name: str | None = None,
            config: MapConfig | None = None) -> _batch.BatchResult:
        """Run ``fn(child_ctx, item, index, items)`` for every item, concurrently; results in item order."""
        _refuse_async(fn, "ctx.map")
        return drive(self._map_flow(items, fn, name, config))

    def wait_for_condition(self, check: Callable[[Any, StepContext], Any], name: str | None = None,
                           config: WaitForConditionConfig | None = None) -> Any:
        """Poll ``check(state, step_context) -> state`` until the wait strategy says stop; the state
        is checkpointed on every poll and the execution suspends between polls."""
        _refuse_async(check, "ctx.wait_for_condition")
        return drive(self._condition_flow(check, name, config))

    def invoke(self, function_name: str, payload: Any = None, name: str | None = None,
               config: InvokeConfig | None = None) -> Any:
        """Run another durable function as its own execution and suspend until it finishes."""
        return drive(self._invoke_flow(function_name, payload, name, config))

    def patched(self, change_id: str) -> bool:
        """Branch on a deliberate code change without breaking executions already in flight.

        ``if ctx.patched("use-new-pricing"): new() else: old()``. Executions that reach this point
        for the first time take the new path, and a marker records that they did; executions whose
        history already holds something else at this position took the old path before the change
        existed, and keep taking it (the marker takes no position in their history).
        """
        return drive(self._patched_flow(change_id))

    # -- replay-safe stand-ins for the clock and randomness --------------------------------------
    def now(self) -> float:
        """Epoch seconds, recorded once: the same value on every replay."""
        return self.step(self.state.now, name="now", config=_NO_RETRY)

    def random(self) -> float:
        """A random float in [0, 1), recorded once."""
        return self.step(_random.random, name="random", config=_NO_RETRY)

    def uuid4(self) -> _uuid.UUID:
        """A random UUID, recorded once."""
        return _uuid.UUID(self.step(_uuid4_text, name="uuid4", config=_NO_RETRY))


def _refuse_async(fn: Any, what: str) -> None:
    """An ``async def`` handed to the synchronous surface is a mistake: say so before anything is
    checkpointed (instead of failing later on a coroutine that cannot be serialized)."""
    code = getattr(fn, "__code__", None)  # a function or method (every step's case): one flag to read
    is_async = bool(code.co_flags & inspect.CO_COROUTINE) if code is not None else \
        inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004
    if is_async:
        raise UsageError(f"{what} was given the async function {getattr(fn, '__name__', fn)!r} in a synchronous "
                         "handler; declare the handler 'async def' and await the operation "
                         f"('await {what}(...)'), or pass a plain function")


def _with_status(info: OperationInfo, status: str) -> OperationInfo:
    from dataclasses import replace

    return replace(info, status=status)


def _patch_marker() -> bool:
    return True


def _uuid4_text() -> str:
    return str(_uuid.uuid4())


__all__: Sequence[str] = ["ContextBase", "DurableContext"]
