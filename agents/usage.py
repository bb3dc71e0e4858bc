"""The cost ledger: tokens and dollars per model, in three books that together tell the truth about
the bill:

- ``paid``: model calls answered and checkpointed, each once, whichever invocation made it;
- ``lost``: calls sent and billed whose answer died with a crashed worker before it was
  checkpointed ("paid, lost in flight"), estimated from the usage of the retry that replaced them;
- ``reused``: calls answered from checkpoints on replay instead of being paid again (what a
  resumed job did not pay twice; these calls are also in ``paid``, once).

The provider's bill is ``paid + lost``. Calls answered through a provider batch are priced at the
batch rate; prompt-cache writes and reads at their own rates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .messages import ModelResponse, Usage


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens. ``batch_rate``: the fraction of these prices a provider batch
    charges (both Anthropic's Message Batches and OpenAI's Batch API charge half)."""

    input: float
    output: float
    cache_read: float = 0.0
    cache_write: float = 0.0
    batch_rate: float = 0.5

    def cost(self, usage: Usage, *, batch: bool = False) -> float:
        dollars = (usage.input_tokens * self.input + usage.output_tokens * self.output
                   + usage.cache_read_tokens * self.cache_read + usage.cache_write_tokens * self.cache_write) / 1e6
        return dollars * self.batch_rate if batch else dollars


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
    batch_calls: int = 0
    """How many of ``calls`` went through a provider batch (priced at the batch rate)."""

    def add(self, other: ModelLine) -> None:
        self.calls += other.calls
        self.usage = self.usage + other.usage
        self.cost += other.cost
        self.batch_calls += other.batch_calls


def scaled(usage: Usage, times: int) -> Usage:
    return Usage(input_tokens=usage.input_tokens * times, output_tokens=usage.output_tokens * times,
                 cache_read_tokens=usage.cache_read_tokens * times, cache_write_tokens=usage.cache_write_tokens * times)


@dataclass
class Ledger:
    """Per model: calls, tokens, dollars, in the books ``paid``, ``lost`` and ``reused`` (see the
    module docstring). ``total_cost`` is the bill: paid + lost."""

    prices: dict[str, Price] | None = None
    paid: dict[str, ModelLine] = field(default_factory=dict)
    reused: dict[str, ModelLine] = field(default_factory=dict)
    lost: dict[str, ModelLine] = field(default_factory=dict)

    def _line(self, usage: Usage, model: str, calls: int, batch: bool) -> ModelLine:
        price = price_for(model, self.prices)
        return ModelLine(calls=calls, usage=usage, cost=price.cost(usage, batch=batch) if price else 0.0,
                         batch_calls=calls if batch else 0)

    def record(self, response: ModelResponse, *, replayed: bool = False) -> None:
        """One answered model call: paid once; ``replayed`` also books it as reused; attempts of it
        lost in flight are booked as lost, each estimated at this answer's usage."""
        line = self._line(response.usage, response.model, 1, response.batch)
        self.paid.setdefault(response.model, ModelLine()).add(line)
        if replayed:
            self.reused.setdefault(response.model, ModelLine()).add(line)
        if response.lost_in_flight:
            self.record_lost(response.model, response.lost_in_flight, response.usage)

    def record_lost(self, model: str, calls: int, estimate: Usage | None = None) -> None:
        """``calls`` requests sent and never answered to us (``estimate``: the usage of one, if known)."""
        usage = scaled(estimate, calls) if estimate is not None else Usage()
        self.lost.setdefault(model, ModelLine()).add(self._line(usage, model, calls, False))

    def merge(self, other: Ledger) -> None:
        for mine, theirs in ((self.paid, other.paid), (self.reused, other.reused), (self.lost, other.lost)):
            for model, line in theirs.items():
                mine.setdefault(model, ModelLine()).add(line)

    @staticmethod
    def _sum_usage(book: dict[str, ModelLine]) -> Usage:
        total = Usage()
        for line in book.values():
            total = total + line.usage
        return total

    @property
    def total_usage(self) -> Usage:
        """Tokens billed: answered calls plus the estimate of those lost in flight."""
        return self._sum_usage(self.paid) + self._sum_usage(self.lost)

    @property
    def paid_cost(self) -> float:
        return sum(line.cost for line in self.paid.values())

    @property
    def lost_cost(self) -> float:
        return sum(line.cost for line in self.lost.values())

    @property
    def saved_cost(self) -> float:
        """What the reused calls would have cost had they been paid again."""
        return sum(line.cost for line in self.reused.values())

    @property
    def total_cost(self) -> float:
        """The bill: answered calls and calls lost in flight."""
        return self.paid_cost + self.lost_cost

    @property
    def paid_calls(self) -> int:
        return sum(line.calls for line in self.paid.values())

    @property
    def lost_calls(self) -> int:
        return sum(line.calls for line in self.lost.values())

    @property
    def reused_calls(self) -> int:
        return sum(line.calls for line in self.reused.values())

    @property
    def billed_calls(self) -> int:
        """Requests the provider billed: paid + lost (what its own count should show)."""
        return self.paid_calls + self.lost_calls

    def to_dict(self) -> dict[str, Any]:
        def book(lines: dict[str, ModelLine]) -> dict[str, Any]:
            return {m: {"calls": ln.calls, **ln.usage.model_dump(), "cost_usd": round(ln.cost, 6),
                        **({"batch_calls": ln.batch_calls} if ln.batch_calls else {})}
                    for m, ln in lines.items()}

        return {"paid": book(self.paid), "lost_in_flight": book(self.lost), "reused": book(self.reused),
                "calls": {"paid": self.paid_calls, "lost_in_flight": self.lost_calls, "reused": self.reused_calls},
                "paid_usd": round(self.paid_cost, 6), "lost_usd": round(self.lost_cost, 6),
                "saved_usd": round(self.saved_cost, 6), "total_usd": round(self.total_cost, 6)}

    def format(self) -> str:
        """A few lines for people (``duragent show`` prints this)."""
        lines = [f"{'model':<40} {'calls':>5} {'in':>8} {'out':>8} {'cache r/w':>13} {'cost $':>10}"]
        models = sorted(set(self.paid) | set(self.lost) | set(self.reused))
        for model in models:
            for label, book in (("", self.paid), (" (lost in flight)", self.lost),
                                (" (reused)", self.reused)):
                line = book.get(model)
                if line and line.calls:
                    batch = f" ({line.batch_calls} batch)" if line.batch_calls and book is self.paid else ""
                    cache = f"{line.usage.cache_read_tokens}/{line.usage.cache_write_tokens}"
                    lines.append(f"{(model + label + batch)[:40]:<40} {line.calls:>5} {line.usage.input_tokens:>8} "
                                 f"{line.usage.output_tokens:>8} {cache:>13} {line.cost:>10.4f}")
        calls = self.paid_calls
        summary = f"paid ${self.paid_cost:.4f} for {calls} model call{'s' if calls != 1 else ''}, each once"
        if self.lost_calls:
            summary += (f"; {self.lost_calls} more paid and lost in flight with a crashed worker "
                        f"(~${self.lost_cost:.4f}, estimated): billed ${self.total_cost:.4f}")
        lines.append(summary)
        if self.reused_calls:
            lines.append(f"reused {self.reused_calls} of them from the journal after a crash or resume "
                         f"(${self.saved_cost:.4f} not paid twice)")
        return "\n".join(lines)


MODEL_CALL_SUBTYPE = "ModelCall"
"""History SubType of a model-call step: how the ledger finds model calls in a journal."""

MODEL_CALL_START_SUBTYPE = "ModelCallStart"
"""SubType of the step that starts a recoverable model call (a provider-side response whose id is
checkpointed before waiting); its interrupted attempts are calls lost in flight."""

INTERRUPTED_ERROR = "duragent.StepInterruptedError"
SENT_SUBTYPES = frozenset({MODEL_CALL_SUBTYPE, MODEL_CALL_START_SUBTYPE})


def _response(payload: str | None) -> ModelResponse | None:
    if not payload:
        return None
    try:
        return ModelResponse.model_validate_json(payload)
    except ValueError:
        return None


def _interrupted(error: dict[str, Any] | None) -> int:
    """The interrupted-attempt count a step's recorded error carries (see durable step_context)."""
    data = (error or {}).get("ErrorData")
    if not data or "interrupted_attempts" not in data:
        return 0
    try:
        count = json.loads(data).get("interrupted_attempts")
    except (ValueError, AttributeError):
        return 0
    return count if isinstance(count, int) and count > 0 else 0


def _book_unanswered(ledger: Ledger, unanswered: dict[str, tuple[str, int]]) -> None:
    """Calls lost in flight whose retry never answered (still retrying, or failed for good):
    estimated at the mean usage of the calls to the same model that were answered."""
    for model_hint, count in unanswered.values():
        model = model_hint or (next(iter(ledger.paid)) if len(ledger.paid) == 1 else "unknown")
        line = ledger.paid.get(model)
        estimate = None
        if line is not None and line.calls:
            u = line.usage
            n = line.calls
            estimate = Usage(input_tokens=u.input_tokens // n, output_tokens=u.output_tokens // n,
                             cache_read_tokens=u.cache_read_tokens // n, cache_write_tokens=u.cache_write_tokens // n)
        ledger.record_lost(model, count, estimate)


def replayed_model_calls(events: list[dict[str, Any]]) -> set[str]:
    """Ids of model calls answered in one invocation and replayed by a later one (the reused book):
    an answer followed by at least two invocation ends was there when the next invocation ran."""
    ends_after = 0
    replayed: set[str] = set()
    for event in reversed(events):
        kind = event.get("EventType")
        if kind == "InvocationCompleted":
            ends_after += 1
        elif kind == "StepSucceeded" and event.get("SubType") == MODEL_CALL_SUBTYPE and ends_after >= 2:
            replayed.add(str(event.get("Id")))
    return replayed


def ledger_from_history(events: list[dict[str, Any]], prices: dict[str, Price] | None = None) -> Ledger:
    """Rebuild an execution's ledger from its history: every answered model call paid once, the
    attempts lost in flight, and the calls later invocations reused."""
    ledger = Ledger(prices=prices)
    reused = replayed_model_calls(events)
    answered: set[str] = set()
    unanswered: dict[str, tuple[str, int]] = {}
    for event in events:
        if event.get("SubType") not in SENT_SUBTYPES:
            continue
        op_id = str(event.get("Id"))
        kind = event.get("EventType")
        if kind == "StepSucceeded" and event.get("SubType") == MODEL_CALL_SUBTYPE:
            response = _response((event.get("StepSucceededDetails") or {}).get("Result", {}).get("Payload"))
            if response is not None:
                ledger.record(response, replayed=op_id in reused)
                answered.add(op_id)
        elif kind == "StepSucceeded":  # a started recoverable call: its lost attempts come with its answer
            answered.add(op_id)
        elif kind == "StepFailed":
            count = _interrupted(((event.get("StepFailedDetails") or {}).get("Error") or {}).get("Payload"))
            if count:
                unanswered[op_id] = ("", count)
    _book_unanswered(ledger, {k: v for k, v in unanswered.items() if k not in answered})
    return ledger


def ledger_from_operations(operations: list[Any], prices: dict[str, Price] | None = None,
                           reused_ids: set[str] | None = None) -> Ledger:
    """The same ledger, from an execution's operations (what ``duragent show`` has at hand).
    ``reused_ids``: model calls to count as reused (answered before an invocation that replayed
    them; ``replayed_model_calls(history)`` finds them)."""
    ledger = Ledger(prices=prices)
    unanswered: dict[str, tuple[str, int]] = {}
    for op in operations:
        sub_type = getattr(op, "SubType", None)
        if sub_type not in SENT_SUBTYPES:
            continue
        details = op.StepDetails
        status = op.Status.value
        if status == "SUCCEEDED":
            if sub_type == MODEL_CALL_SUBTYPE:
                response = _response(details.Result if details else None)
                if response is not None:
                    ledger.record(response, replayed=bool(reused_ids) and op.Id in reused_ids)  # type: ignore[operator]
            continue
        error = details.Error.to_wire() if details is not None and details.Error is not None else None
        count = _interrupted(error)
        if count:
            unanswered[op.Id] = ("", count)
    _book_unanswered(ledger, unanswered)
    return ledger


def agent_ledger(operations: list[Any], prices: dict[str, Price] | None = None,
                 history: list[dict[str, Any]] | None = None) -> Ledger | None:
    """The ledger of an execution that called models, or None when it made no model call.
    With its ``history``, calls reused by later invocations are booked as reused too."""
    if not any(getattr(op, "SubType", None) in SENT_SUBTYPES for op in operations):
        return None
    reused = replayed_model_calls(history) if history is not None else None
    return ledger_from_operations(operations, prices, reused_ids=reused)
