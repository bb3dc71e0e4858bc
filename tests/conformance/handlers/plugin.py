"""Conformance handlers: the plugin suite (10-x).

The plugins write their JSON records through the ``durable.user`` logger (the stand-in for the
function's CloudWatch log group); the ``durable`` extra holds the record's fields.
"""

from __future__ import annotations

import logging
from typing import Any

from duragent.durable import (
    AttemptInfo,
    DurableContext,
    InvocationInfo,
    OperationInfo,
    Plugin,
    RetryPolicy,
    StepConfig,
    durable_function,
    step_context,
)

from ..driver import requirement

_LOG = logging.getLogger("duragent.durable.user")


class ConformancePlugin(Plugin):
    """Logs one JSON record per hook: ``{"plugin": <label>, "hook": <hook>, ...}``, stamped with the
    execution ARN captured from invocation-start. Operation and attempt hooks are filtered to steps."""

    def __init__(self, label: str = "CONFPLUGIN", *, operations: bool = False, attempts: bool = False,
                 faulty: bool = False) -> None:
        self.name = label
        self.label = label
        self.operations = operations
        self.attempts = attempts
        self.faulty = faulty
        self.arn: str | None = None

    def _emit(self, hook: str, **fields: Any) -> None:
        record = {"plugin": self.label, "hook": hook, **fields}
        if self.arn is not None:
            record.update(durableExecutionArn=self.arn, executionArn=self.arn)
        _LOG.info("%s %s", self.label, hook, extra={"durable": record})
        if self.faulty:
            raise RuntimeError(f"{self.label} fails in {hook}")

    def on_invocation_start(self, info: InvocationInfo) -> None:
        self.arn = info.execution_arn
        self._emit("invocation-start", first=info.first)

    def on_invocation_end(self, info: InvocationInfo) -> None:
        self._emit("invocation-end", status=info.status)

    def on_operation_start(self, info: OperationInfo) -> None:
        if self.operations and info.type == "STEP":
            self._emit("operation-start", op=info.operation_id)

    def on_operation_end(self, info: OperationInfo) -> None:
        if self.operations and info.type == "STEP":
            self._emit("operation-end", op=info.operation_id, status=info.status)

    def on_attempt_start(self, info: AttemptInfo) -> None:
        if self.attempts:
            self._emit("attempt-start", n=info.attempt, op=info.operation_id)

    def on_attempt_end(self, info: AttemptInfo) -> None:
        if self.attempts:
            self._emit("attempt-end", n=info.attempt, outcome=info.outcome, op=info.operation_id)


def _greet(event: Any, ctx: DurableContext) -> str:
    def greet() -> str:
        step_context().logger.info("Greeting step running for: %s", event)
        return f"Hello, {event}!"

    return ctx.step(greet)


@requirement("10-1")
@durable_function(name="conformance-plugin-10-1", plugins=[ConformancePlugin()])
def plugin_invocation_hooks(event: Any, ctx: DurableContext) -> str:
    """invocation-start (first=true) before the step, invocation-end (SUCCEEDED) after it."""
    return _greet(event, ctx)


@requirement("10-2")
@durable_function(name="conformance-plugin-10-2", plugins=[ConformancePlugin(operations=True)])
def plugin_operation_hooks(event: Any, ctx: DurableContext) -> str:
    """operation-start and operation-end carry the step's history Id."""
    return _greet(event, ctx)


@requirement("10-3")
@durable_function(name="conformance-plugin-10-3", plugins=[ConformancePlugin(attempts=True)])
def plugin_attempt_hooks(event: Any, ctx: DurableContext) -> str:
    """Attempt 1 fails, attempt 2 (1 s later) succeeds; one attempt-start/end pair each."""

    def unreliable() -> str:
        if step_context().attempt == 1:
            raise RuntimeError("transient failure on attempt 1")
        return "Operation succeeded"

    policy = RetryPolicy.exponential(max_attempts=3, initial_delay=1, backoff_rate=1, jitter=False)
    return ctx.step(unreliable, config=StepConfig(retry=policy))


@requirement("10-4")
@durable_function(name="conformance-plugin-10-4",
                  plugins=[ConformancePlugin("CONFPLUGIN-FAULTY", operations=True, attempts=True, faulty=True)])
def plugin_faulty(event: Any, ctx: DurableContext) -> str:
    """Every hook logs, then raises; the execution is unaffected."""
    return _greet(event, ctx)


@requirement("10-5")
@durable_function(name="conformance-plugin-10-5",
                  plugins=[ConformancePlugin("CONFPLUGIN-A"), ConformancePlugin("CONFPLUGIN-B")])
def plugin_two(event: Any, ctx: DurableContext) -> str:
    """Two plugins, A then B, both see both invocation hooks."""
    return _greet(event, ctx)


@requirement("10-6")
@durable_function(name="conformance-plugin-10-6", plugins=[ConformancePlugin()])
def plugin_first_flag(event: Any, ctx: DurableContext) -> None:
    """A 2 s wait: first=true on the first invocation, first=false on the replay."""
    ctx.wait(2)


@requirement("10-7")
@durable_function(name="conformance-plugin-10-7", plugins=[ConformancePlugin()])
def plugin_failure(event: Any, ctx: DurableContext) -> str:
    """A step that always fails, no retry: invocation-end reports FAILED."""

    def failing() -> str:
        raise RuntimeError("this step always fails")

    return ctx.step(failing, config=StepConfig(retry=RetryPolicy.no_retry()))
