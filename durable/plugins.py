"""Plugin hooks: observe invocations, operations and step attempts (tracing, metrics, audit).

Subclass ``Plugin`` and override what you need; pass plugins to ``@durable_function(plugins=[...])``,
``LocalRuntime(plugins=[...])`` or ``lambda_handler(fn, plugins=[...])``. Every hook is told whether
the execution is replaying. A hook that raises is logged and never breaks the execution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("duragent.durable.plugins")


@dataclass(frozen=True)
class InvocationInfo:
    execution_arn: str
    first: bool
    """True on the execution's first invocation."""
    status: str | None = None
    """On invocation end: SUCCEEDED, FAILED or PENDING."""


@dataclass(frozen=True)
class OperationInfo:
    execution_arn: str
    operation_id: str
    name: str | None
    type: str
    sub_type: str | None
    parent_id: str | None
    replaying: bool
    """True when the operation's outcome comes from history instead of running now."""
    status: str | None = None
    """On operation end: SUCCEEDED or FAILED."""


@dataclass(frozen=True)
class AttemptInfo:
    execution_arn: str
    operation_id: str
    name: str | None
    attempt: int
    outcome: str | None = None
    """On attempt end: SUCCEEDED or FAILED."""
    replaying: bool = False


class Plugin:
    """Base class with no-op hooks."""

    name = "plugin"

    def on_invocation_start(self, info: InvocationInfo) -> None: ...

    def on_invocation_end(self, info: InvocationInfo) -> None: ...

    def on_operation_start(self, info: OperationInfo) -> None: ...

    def on_operation_end(self, info: OperationInfo) -> None: ...

    def on_attempt_start(self, info: AttemptInfo) -> None: ...

    def on_attempt_end(self, info: AttemptInfo) -> None: ...


class Hooks:
    """Dispatches to every plugin, shielding the execution from their failures."""

    def __init__(self, plugins: list[Plugin], execution_arn: str = "") -> None:
        self.plugins = list(plugins)
        self.execution_arn = execution_arn

    def _call(self, method: str, info: Any) -> None:
        for plugin in self.plugins:
            try:
                getattr(plugin, method)(info)
            except Exception:
                log.warning("plugin %s raised in %s; ignored", getattr(plugin, "name", plugin), method,
                            exc_info=True)

    def invocation_start(self, arn: str, first: bool) -> None:
        self.execution_arn = arn
        self._call("on_invocation_start", InvocationInfo(arn, first))

    def invocation_end(self, arn: str, status: str, first: bool = False) -> None:
        self._call("on_invocation_end", InvocationInfo(arn, first, status))

    def operation_start(self, info: OperationInfo) -> None:
        self._call("on_operation_start", info)

    def operation_end(self, info: OperationInfo) -> None:
        self._call("on_operation_end", info)

    def attempt_start(self, op_id: str, name: str | None, attempt: int) -> None:
        self._call("on_attempt_start", AttemptInfo(self.execution_arn, op_id, name, attempt))

    def attempt_end(self, op_id: str, name: str | None, attempt: int, outcome: str) -> None:
        self._call("on_attempt_end", AttemptInfo(self.execution_arn, op_id, name, attempt, outcome))
