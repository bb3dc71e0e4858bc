"""The cost ledger: tokens and dollars per model, split into what this run paid for and what it
reused from checkpoints (inference a resumed job did not pay for twice)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .messages import ModelResponse, Usage


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_read: float = 0.0
    cache_write: float = 0.0

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output
                + usage.cache_read_tokens * self.cache_read + usage.cache_write_tokens * self.cache_write) / 1e6


DEFAULT_PRICES: dict[str, Price] = {
    # Public list prices per million tokens; override with Agent(prices={...}) or Ledger(prices=...).
    "anthropic:claude-opus-4": Price(15.0, 75.0, 1.5, 18.75),
    "anthropic:claude-sonnet-4": Price(3.0, 15.0, 0.3, 3.75),
    "anthropic:claude-haiku-4": Price(1.0, 5.0, 0.1, 1.25),
    "anthropic:claude-3-5-haiku": Price(0.8, 4.0, 0.08, 1.0),
    "openai:gpt-4o": Price(2.5, 10.0, 1.25),
    "openai:gpt-4o-mini": Price(0.15, 0.6, 0.075),
    "openai:gpt-4.1": Price(2.0, 8.0, 0.5),
    "openai:gpt-4.1-mini": Price(0.4, 1.6, 0.1),
    "bedrock:anthropic.claude-sonnet-4": Price(3.0, 15.0, 0.3, 3.75),
    "bedrock:anthropic.claude-3-5-haiku": Price(0.8, 4.0, 0.08, 1.0),
    "scripted": Price(3.0, 15.0),
}


def price_for(model_id: str, prices: dict[str, Price] | None = None) -> Price | None:
    """The longest matching prefix wins, so ``anthropic:claude-sonnet-4-6`` finds the sonnet-4 price."""
    table = {**DEFAULT_PRICES, **(prices or {})}
    best: str | None = None
    for key in table:
        if model_id.startswith(key) and (best is None or len(key) > len(best)):
            best = key
    return table[best] if best is not None else None


@dataclass
class ModelLine:
    calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0


@dataclass
class Ledger:
    """Per model: calls, tokens, dollars; ``paid`` (run now) and ``reused`` (replayed from the journal)."""

    prices: dict[str, Price] | None = None
    paid: dict[str, ModelLine] = field(default_factory=dict)
    reused: dict[str, ModelLine] = field(default_factory=dict)

    def record(self, response: ModelResponse, *, replayed: bool) -> None:
        book = self.reused if replayed else self.paid
        line = book.setdefault(response.model, ModelLine())
        line.calls += 1
        line.usage = line.usage + response.usage
        price = price_for(response.model, self.prices)
        line.cost += price.cost(response.usage) if price else 0.0

    def merge(self, other: Ledger) -> None:
        for mine, theirs in ((self.paid, other.paid), (self.reused, other.reused)):
            for model, line in theirs.items():
                into = mine.setdefault(model, ModelLine())
                into.calls += line.calls
                into.usage = into.usage + line.usage
                into.cost += line.cost

    @property
    def total_usage(self) -> Usage:
        total = Usage()
        for book in (self.paid, self.reused):
            for line in book.values():
                total = total + line.usage
        return total

    @property
    def paid_cost(self) -> float:
        return sum(line.cost for line in self.paid.values())

    @property
    def saved_cost(self) -> float:
        return sum(line.cost for line in self.reused.values())

    @property
    def total_cost(self) -> float:
        return self.paid_cost + self.saved_cost

    @property
    def reused_calls(self) -> int:
        return sum(line.calls for line in self.reused.values())

    @property
    def paid_calls(self) -> int:
        return sum(line.calls for line in self.paid.values())

    def to_dict(self) -> dict[str, Any]:
        def book(lines: dict[str, ModelLine]) -> dict[str, Any]:
            return {m: {"calls": ln.calls, **ln.usage.model_dump(), "cost_usd": round(ln.cost, 6)}
                    for m, ln in lines.items()}

        return {"paid": book(self.paid), "reused": book(self.reused), "paid_usd": round(self.paid_cost, 6),
                "saved_usd": round(self.saved_cost, 6), "total_usd": round(self.total_cost, 6)}

    def format(self) -> str:
        """A few lines for people (``duragent show`` prints this)."""
        lines = [f"{'model':<34} {'calls':>5} {'in':>8} {'out':>8} {'cost $':>10}"]
        models = sorted(set(self.paid) | set(self.reused))
        for model in models:
            for label, book in (("", self.paid), (" (reused)", self.reused)):
                line = book.get(model)
                if line and line.calls:
                    lines.append(f"{(model + label)[:34]:<34} {line.calls:>5} {line.usage.input_tokens:>8} "
                                 f"{line.usage.output_tokens:>8} {line.cost:>10.4f}")
        if self.reused_calls:
            lines.append(f"paid ${self.paid_cost:.4f}; reused ${self.saved_cost:.4f} from the journal "
                         f"({self.reused_calls} model calls not paid twice)")
        else:
            lines.append(f"total ${self.paid_cost:.4f} ({self.paid_calls} model calls)")
        return "\n".join(lines)


MODEL_CALL_SUBTYPE = "ModelCall"
"""History SubType of a model-call step: how the ledger finds model calls in a journal."""


def ledger_from_history(events: list[dict[str, Any]], prices: dict[str, Price] | None = None) -> Ledger:
    """Rebuild an execution's ledger from its history (every successful model call, paid once)."""
    ledger = Ledger(prices=prices)
    for event in events:
        if event.get("EventType") != "StepSucceeded" or event.get("SubType") != MODEL_CALL_SUBTYPE:
            continue
        payload = (event.get("StepSucceededDetails") or {}).get("Result", {}).get("Payload")
        if not payload:
            continue
        try:
            response = ModelResponse.model_validate_json(payload)
        except ValueError:
            continue
        ledger.record(response, replayed=False)
    return ledger


def ledger_from_operations(operations: list[Any], prices: dict[str, Price] | None = None,
                           reused_ids: set[str] | None = None) -> Ledger:
    """The same ledger, from an execution's operations (what ``duragent show`` has at hand).
    ``reused_ids``: model calls to count as reused (finished before a crash, replayed after it)."""
    ledger = Ledger(prices=prices)
    for op in operations:
        if getattr(op, "SubType", None) != MODEL_CALL_SUBTYPE or op.Status.value != "SUCCEEDED":
            continue
        payload = op.StepDetails.Result if op.StepDetails else None
        if not payload:
            continue
        try:
            response = ModelResponse.model_validate_json(payload)
        except ValueError:
            continue
        ledger.record(response, replayed=bool(reused_ids) and op.Id in reused_ids)  # type: ignore[operator]
    return ledger


def agent_ledger(operations: list[Any], prices: dict[str, Price] | None = None) -> Ledger | None:
    """The ledger of an execution that called models, or None when it made no model call."""
    if not any(getattr(op, "SubType", None) == MODEL_CALL_SUBTYPE for op in operations):
        return None
    return ledger_from_operations(operations, prices)
