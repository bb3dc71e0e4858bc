"""durable.otel.TracingPlugin: spans for invocations, operations and attempts, nested as they ran,
read back through the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from duragent.durable import DurableContext, LocalRuntime, RetryPolicy, StepConfig, VirtualClock
from duragent.durable.otel import TracingPlugin


def test_spans_follow_invocations_operations_and_attempts(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first attempt fails")
        return "ok"

    def handler(event: dict, ctx: DurableContext) -> str:
        ctx.step(flaky, name="flaky", config=StepConfig(retry=RetryPolicy.exponential(initial_delay=1, jitter=False)))
        return ctx.run_in_child_context(lambda child: child.step(lambda: "inner", name="inner"), name="group")

    rt = LocalRuntime(tmp_path / "t.db", clock=VirtualClock(), plugins=[TracingPlugin(provider)])
    execution_id = rt.start(handler, {})
    rt.run_until_idle()
    assert rt.get(execution_id).result == "inner"

    spans = exporter.get_finished_spans()
    invocations = [s for s in spans if s.name == "durable.invocation"]
    assert len(invocations) == 2  # the retry suspended the first invocation
    assert [s.attributes["durable.first_invocation"] for s in invocations] == [True, False]
    assert [s.attributes["durable.invocation_status"] for s in invocations] == ["PENDING", "SUCCEEDED"]

    flaky_ops = [s for s in spans if s.name == "durable.step flaky"]
    assert len(flaky_ops) == 2  # once per invocation that ran it (not a replay: it was not done yet)
    assert flaky_ops[0].attributes.get("durable.suspended") is True
    assert flaky_ops[1].attributes["durable.operation_status"] == "SUCCEEDED"
    attempt_spans = [s for s in spans if s.name.startswith("durable.attempt")]
    outcomes = [(s.attributes["durable.attempt"], s.attributes["durable.attempt_outcome"])
                for s in attempt_spans if s.attributes["durable.operation_id"] == flaky_ops[0].attributes[
                    "durable.operation_id"]]
    assert outcomes == [(1, "FAILED"), (2, "SUCCEEDED")]
    for attempt in attempt_spans:  # attempts nest under their operation, operations under the invocation
        assert attempt.parent is not None
    inner = next(s for s in spans if s.name == "durable.step inner")
    group = next(s for s in spans if s.name == "durable.context group")
    assert inner.parent is not None and inner.parent.span_id == group.context.span_id
    assert group.parent is not None and group.parent.span_id == invocations[1].context.span_id
    assert not any(s.attributes.get("durable.replaying") for s in spans)  # replays are not traced by default
