"""OpenTelemetry traces through the plugin hooks: a span per invocation, per operation that runs
(not the ones replayed from history, unless asked) and per step attempt, nested as they happen.

    from duragent.durable.otel import TracingPlugin
    rt = LocalRuntime(plugins=[TracingPlugin()])          # or @durable_function(plugins=[...])

The invocation's span and each step attempt's span are the *current* span while they run, so
code inside a step (an instrumented HTTP client, ``trace.get_current_span().set_attribute(...)``)
lands under its attempt: duragent's agents record each model call's tokens and cost there, and
the run's ledger (paid, lost in flight, reused) on the invocation span.

Needs ``opentelemetry-api`` (``pip install 'duragent[otel]'``); with no SDK configured the spans
are no-ops, as OpenTelemetry intends.
"""

from __future__ import annotations

import threading
from typing import Any

from .errors import UsageError
from .plugins import AttemptInfo, InvocationInfo, OperationInfo, Plugin

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
except ImportError:  # pragma: no cover - exercised only without the extra
    trace = None  # type: ignore[assignment]
    otel_context = None  # type: ignore[assignment]


class TracingPlugin(Plugin):
    name = "otel"

    def __init__(self, tracer_provider: Any = None, *, trace_replays: bool = False) -> None:
        if trace is None:
            raise UsageError("TracingPlugin needs OpenTelemetry: pip install 'duragent[otel]'")
        self._tracer = trace.get_tracer("duragent", tracer_provider=tracer_provider)
        self.trace_replays = trace_replays
        self._spans: dict[str, tuple[Any, str]] = {}
        """Open spans by key (``inv:``/``op:``/``att:`` + id), with the execution they belong to."""
        self._attached: dict[str, tuple[Any, int]] = {}
        """Context tokens of spans made current (invocations, attempts), with the thread that did it."""
        self._lock = threading.Lock()

    def _attach(self, key: str) -> None:
        with self._lock:
            entry = self._spans.get(key)
        if entry is not None:
            token = otel_context.attach(trace.set_span_in_context(entry[0]))
            with self._lock:
                self._attached[key] = (token, threading.get_ident())

    def _detach(self, key: str) -> None:
        with self._lock:
            entry = self._attached.pop(key, None)
        if entry is not None and entry[1] == threading.get_ident():  # tokens belong to their thread
            otel_context.detach(entry[0])

    def _start(self, key: str, name: str, parent_key: str | None, attributes: dict[str, Any],
               arn: str) -> None:
        with self._lock:
            entry = self._spans.get(parent_key) if parent_key else None
        parent = entry[0] if entry is not None else None
        ctx = trace.set_span_in_context(parent) if parent is not None else otel_context.Context()
        span = self._tracer.start_span(name, context=ctx,
                                       attributes={k: v for k, v in attributes.items() if v is not None})
        with self._lock:
            self._spans[key] = (span, arn)

    def _end(self, key: str, attributes: dict[str, Any], failed: bool = False) -> None:
        with self._lock:
            entry = self._spans.pop(key, None)
        if entry is None:
            return
        span = entry[0]
        for name, value in attributes.items():
            if value is not None:
                span.set_attribute(name, value)
        if failed:
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        span.end()

    # -- hooks ---------------------------------------------------------------------------------
    def on_invocation_start(self, info: InvocationInfo) -> None:
        self._start(f"inv:{info.execution_arn}", "durable.invocation", None,
                    {"durable.execution_arn": info.execution_arn, "durable.first_invocation": info.first},
                    info.execution_arn)
        self._attach(f"inv:{info.execution_arn}")

    def on_invocation_end(self, info: InvocationInfo) -> None:
        # Operations that suspended (a wait, a callback, a retry) end with their invocation.
        with self._lock:
            open_keys = [k for k, (_, arn) in self._spans.items()
                         if arn == info.execution_arn and not k.startswith("inv:")]
        for key in reversed(open_keys):
            self._detach(key)
            self._end(key, {"durable.suspended": True})
        self._detach(f"inv:{info.execution_arn}")
        self._end(f"inv:{info.execution_arn}", {"durable.invocation_status": info.status},
                  failed=info.status == "FAILED")

    def _operation_parent(self, info: OperationInfo) -> str:
        with self._lock:
            if info.parent_id and f"op:{info.parent_id}" in self._spans:
                return f"op:{info.parent_id}"
        return f"inv:{info.execution_arn}"

    def on_operation_start(self, info: OperationInfo) -> None:
        if info.replaying and not self.trace_replays:
            return
        self._start(f"op:{info.operation_id}", f"durable.{info.type.lower()} {info.name or info.sub_type}",
                    self._operation_parent(info),
                    {"durable.operation_id": info.operation_id, "durable.operation_type": info.type,
                     "durable.operation_subtype": info.sub_type, "durable.operation_name": info.name,
                     "durable.replaying": info.replaying}, info.execution_arn)

    def on_operation_end(self, info: OperationInfo) -> None:
        self._end(f"op:{info.operation_id}", {"durable.operation_status": info.status},
                  failed=info.status == "FAILED")

    def on_attempt_start(self, info: AttemptInfo) -> None:
        self._start(f"att:{info.operation_id}", f"durable.attempt {info.attempt}", f"op:{info.operation_id}",
                    {"durable.operation_id": info.operation_id, "durable.attempt": info.attempt},
                    info.execution_arn)
        self._attach(f"att:{info.operation_id}")

    def on_attempt_end(self, info: AttemptInfo) -> None:
        self._detach(f"att:{info.operation_id}")
        self._end(f"att:{info.operation_id}", {"durable.attempt_outcome": info.outcome},
                  failed=info.outcome == "FAILED")
