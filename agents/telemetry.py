"""OpenTelemetry attributes for the cost ledger, set on whatever span is current (with
``durable.otel.TracingPlugin``: the step attempt that made a model call, and the invocation that
finished an agent run). Without OpenTelemetry in use, or with no span current, these do nothing.

Names follow the GenAI semantic conventions where they exist (``gen_ai.*``); the ledger's own
books are ``duragent.ledger.*``.
"""

from __future__ import annotations

import sys
from typing import Any

from .messages import ModelResponse
from .usage import Ledger, price_for


def _current_span() -> Any:
    """The recording span current here, if any. OpenTelemetry is never imported from here: when
    nothing else has imported it (a TracingPlugin, the application's own tracing), no span can be
    current, and an agent pays nothing for it at start-up."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    span = trace.get_current_span()
    return span if span.is_recording() else None


def record_model_call_span(response: ModelResponse, prices: Any = None) -> None:
    """Tokens and dollars of one paid model call, and the attempts of it lost in flight."""
    span = _current_span()
    if span is None:
        return
    usage = response.usage
    price = price_for(response.model, prices)
    cost = price.cost(usage, batch=response.batch) if price else 0.0
    span.set_attributes({
        "gen_ai.request.model": response.model,
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read_input_tokens": usage.cache_read_tokens,
        "gen_ai.usage.cache_creation_input_tokens": usage.cache_write_tokens,
        "duragent.model_call.cost_usd": round(cost, 8),
        "duragent.model_call.batch": response.batch,
        "duragent.model_call.lost_in_flight": response.lost_in_flight,
        "duragent.model_call.lost_usd": round(cost * response.lost_in_flight, 8),
    })


def ledger_attributes(ledger: Ledger) -> dict[str, Any]:
    return {
        "duragent.ledger.paid_calls": ledger.paid_calls,
        "duragent.ledger.paid_usd": round(ledger.paid_cost, 8),
        "duragent.ledger.lost_calls": ledger.lost_calls,
        "duragent.ledger.lost_usd": round(ledger.lost_cost, 8),
        "duragent.ledger.reused_calls": ledger.reused_calls,
        "duragent.ledger.reused_usd": round(ledger.saved_cost, 8),
        "duragent.ledger.total_usd": round(ledger.total_cost, 8),
        "duragent.ledger.total_tokens": ledger.total_usage.total_tokens,
    }


def record_ledger_span(name: str, ledger: Ledger) -> None:
    """An agent run's ledger: paid, lost in flight and reused (count and dollars)."""
    span = _current_span()
    if span is not None:
        span.set_attributes({"duragent.agent.name": name, **ledger_attributes(ledger)})
