"""DurableContext: the operations a handler calls. Each method resolves its arguments and hands
off to one module in ``operations/``; this file reads like a table of contents."""

from __future__ import annotations

import random as _random
import threading
import uuid as _uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

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
from .errors import SuspendExecution
from .journal import operation_id
from .log import DurableLogger
from .model import OperationStatus
from .operations import batch as _batch
from .operations import callback as _callback
from .operations import child as _child
from .operations import condition as _condition
from .operations import invoke as _invoke
from .operations import step as _step
from .operations import wait as _wait
from .operations._common import StepContext, forbid_inside_step
from .plugins import OperationInfo
from .retry import RetryPolicy
from .state import ExecutionState

T = TypeVar("T")

_NO_RETRY = StepConfig(retry=RetryPolicy.no_retry())
PATCH_SUBTYPE = "Patch"
_PATCH_CONFIG = StepConfig(retry=RetryPolicy.no_retry(), sub_type=PATCH_SUBTYPE)


def _default_name(fn: Callable[..., Any]) -> str | None:
    name = getattr(fn, "__name__", None)
    return None if not name or name == "<lambda>" else name


class DurableContext:
    """The handle a durable handler receives. Everything it does through ``ctx`` is journaled."""

    def __init__(self, state: ExecutionState, *, parent_id: str | None = None, prefix: str | None = None,
                 path: str = "handler", logger_config: LoggerConfig | None = None) -> None:
        self.state = state
        self.parent_id = parent_id
        self._prefix = prefix
        self._path = path
        self._counter = 0
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

    def _next_operation(self, name: str | None) -> tuple[str, str]:
        """The next operation id in this context and a readable position for error messages."""
        with self._lock:
            self._counter += 1
            counter = self._counter
        label = f"{self._path} → operation #{counter}" + (f" ({name!r})" if name else "")
        return operation_id(counter, self._prefix), label

    def _child_context(self, op_id: str, name: str | None, parent_id: str | None = None) -> DurableContext:
        path = f"{self._path} → {name!r}" if name else f"{self._path} → child {op_id[:8]}"
        return DurableContext(self.state, parent_id=parent_id or op_id, prefix=op_id, path=path,
                              logger_config=self._logger_config)

    def is_replaying(self) -> bool:
        """True while the next operation of this context is already in history."""
        return operation_id(self._counter + 1, self._prefix) in self.state.operations

    def set_logger(self, config: LoggerConfig) -> None:
        """E.g. ``ctx.set_logger(LoggerConfig(replay_logging=True))`` to log on replay too."""
        self._logger_config = config
        self.logger = DurableLogger(self.logger.fields, self.is_replaying, config.replay_logging)

    # -- operations ----------------------------------------------------------------------------
    def step(self, fn: Callable[..., T], *args: Any, name: str | None = None, config: StepConfig | None = None,
             **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` once; its result is checkpointed and replayed thereafter."""
        forbid_inside_step("step")
        name = name if name is not None else _default_name(fn)
        return self._observe("STEP", name, (config.sub_type if config else None) or "Step",
                             lambda: _step.run_step(self, fn, args, kwargs, name=name, config=config))

    def wait(self, duration: Duration | float, name: str | None = None) -> None:
        """Suspend for ``duration``. No process is held while waiting."""
        forbid_inside_step("wait")
        self._observe("WAIT", name, "Wait", lambda: _wait.run_wait(self, Duration.of(duration), name))

    def create_callback(self, name: str | None = None, config: CallbackConfig | None = None) -> _callback.Callback:
        """A callback id to hand out; ``.result()`` suspends until it is answered."""
        forbid_inside_step("create_callback")
        return self._observe("CALLBACK", name, "Callback", lambda: _callback.create_callback(self, name, config))

    def wait_for_callback(self, submitter: Callable[[str], Any], name: str | None = None,
                          config: CallbackConfig | None = None) -> Any:
        """Create a callback, pass its id to ``submitter`` (run as a step), and wait for the answer."""
        forbid_inside_step("wait_for_callback")
        return self._observe("CONTEXT", name, "WaitForCallback",
                             lambda: _callback.wait_for_callback(self, submitter, name, config))

    def run_in_child_context(self, fn: Callable[[DurableContext], T], name: str | None = None,
                             config: ChildConfig | None = None) -> T:
        """Run ``fn(child_ctx)``; its operations are grouped and its result checkpointed as one."""
        forbid_inside_step("run_in_child_context")
        return self._observe("CONTEXT", name, (config.sub_type if config else None) or "RunInChildContext",
                             lambda: _child.run_child(self, fn, name=name, config=config))

    def parallel(self, branches: Sequence[Any], name: str | None = None,
                 config: ParallelConfig | None = None) -> _batch.BatchResult:
        """Run each branch ``fn(child_ctx)`` as its own child context, concurrently; results in
        branch order. Branches may be callables or ``(name, fn)`` pairs."""
        forbid_inside_step("parallel")
        config = config or ParallelConfig()
        return self._observe("CONTEXT", name, "Parallel", lambda: _batch.run_batch(
            self, _batch.parallel_branches(branches), name=name, config=config, kind="Parallel"))

    def map(self, items: Sequence[Any], fn: Callable[..., Any], name: str | None = None,
            config: MapConfig | None = None) -> _batch.BatchResult:
        """Run ``fn(child_ctx, item, index, items)`` for every item, concurrently; results in item order."""
        forbid_inside_step("map")
        config = config or MapConfig()
        items = list(items)
        return self._observe("CONTEXT", name, "Map", lambda: _batch.run_batch(
            self, _batch.map_branches(items, fn, config), name=name, config=config, kind="Map"))

    def wait_for_condition(self, check: Callable[[Any, StepContext], Any], name: str | None = None,
                           config: WaitForConditionConfig | None = None) -> Any:
        """Poll ``check(state, step_context) -> state`` until the wait strategy says stop; the state
        is checkpointed on every poll and the execution suspends between polls."""
        forbid_inside_step("wait_for_condition")
        return self._observe("STEP", name, "WaitForCondition",
                             lambda: _condition.wait_for_condition(self, check, name=name, config=config))

    def invoke(self, function_name: str, payload: Any = None, name: str | None = None,
               config: InvokeConfig | None = None) -> Any:
        """Run another durable function as its own execution and suspend until it finishes."""
        forbid_inside_step("invoke")
        return self._observe("CHAINED_INVOKE", name, "ChainedInvoke",
                             lambda: _invoke.invoke(self, function_name, payload, name=name, config=config))

    def _observe(self, kind: str, name: str | None, sub_type: str, call: Callable[[], T]) -> T:
        """Tell plugins an operation started and ended (and whether it came from history)."""
        hooks = self.state.hooks
        if hooks is None:
            return call()
        op_id = operation_id(self._counter + 1, self._prefix)
        existing = self.state.get(op_id)
        replaying = existing is not None and existing.Status.terminal
        info = OperationInfo(self.state.arn, op_id, name, kind, sub_type, self.parent_id, replaying)
        hooks.operation_start(info)
        try:
            result = call()
        except SuspendExecution:
            raise
        except Exception:
            hooks.operation_end(_with_status(info, OperationStatus.FAILED.value))
            raise
        hooks.operation_end(_with_status(info, OperationStatus.SUCCEEDED.value))
        return result

    def patched(self, change_id: str) -> bool:
        """Branch on a deliberate code change without breaking executions already in flight.

        ``if ctx.patched("use-new-pricing"): new() else: old()``. Executions that reach this point
        for the first time take the new path, and a marker records that they did; executions whose
        history already holds something else at this position took the old path before the change
        existed, and keep taking it (the marker takes no position in their history).
        """
        forbid_inside_step("patched")
        marker = f"patch:{change_id}"
        with self._lock:
            next_id = operation_id(self._counter + 1, self._prefix)
        recorded = self.state.get(next_id)
        if recorded is not None and not (recorded.SubType == PATCH_SUBTYPE and recorded.Name == marker):
            return False
        self.step(_patch_marker, name=marker, config=_PATCH_CONFIG)
        return True

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

    def __repr__(self) -> str:
        return f"DurableContext({self._path}, execution={self.execution_id!r})"


def _with_status(info: OperationInfo, status: str) -> OperationInfo:
    from dataclasses import replace

    return replace(info, status=status)


def _patch_marker() -> bool:
    return True


def _uuid4_text() -> str:
    return str(_uuid.uuid4())


__all__: Sequence[str] = ["DurableContext"]
