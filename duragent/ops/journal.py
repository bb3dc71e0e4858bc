"""What an execution's journal tells beyond its operations: each invocation (when it ran, whether
it crashed, which results it replayed from the journal instead of running them again) and the
cost of its model calls split into what was paid, what was paid and lost in flight, and what
replay reused."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from duragent.agents.usage import SENT_SUBTYPES, Ledger, ledger_from_operations
from duragent.durable.model import Operation


@dataclass(frozen=True)
class Invocation:
    """One run of the handler. ``replayed``: ids of operations that had completed before it
    started (their results came back from the journal); ``ran``: ids of operations that started
    or completed while it ran."""

    number: int
    started_at: float | None
    ended_at: float | None
    error: str | None = None
    """Why it ended without reporting back (a crashed or killed worker), or None."""
    replayed: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)

    @property
    def crashed(self) -> bool:
        return self.error is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "crashed": self.crashed}


def invocations(history: list[dict[str, Any]], ops: list[Operation]) -> list[Invocation]:
    """The finished invocations, oldest first, from the history's ``InvocationCompleted`` events
    (one that crashed is recorded when the next one starts). What each replayed is read from the
    order of the events, not from clocks: an operation that completed before the previous
    invocation reported back came back from the journal in this one."""
    known = {op.Id for op in ops if op.Type.value != "EXECUTION"}
    completed: list[tuple[int, str]] = []  # (event id, operation id) of each operation's completion
    touched: list[tuple[int, str]] = []
    seen: set[str] = set()
    ends: list[tuple[int, dict[str, Any]]] = []
    for event in history:
        kind, op_id, number = str(event.get("EventType") or ""), event.get("Id"), int(event.get("EventId") or 0)
        if kind == "InvocationCompleted":
            ends.append((number, event.get("InvocationCompletedDetails") or {}))
        elif op_id in known:
            touched.append((number, op_id))
            if kind.endswith(_TERMINAL) and op_id not in seen:
                seen.add(op_id)
                completed.append((number, op_id))
    found: list[Invocation] = []
    previous_end = 0
    for index, (end_event, details) in enumerate(ends):
        replayed = [op_id for number, op_id in completed if number < previous_end] if index else []
        ran = list(dict.fromkeys(op_id for number, op_id in touched if previous_end < number < end_event))
        found.append(Invocation(index + 1, details.get("StartTimestamp"), details.get("EndTimestamp"),
                                _error_text(details.get("Error")), replayed, ran))
        previous_end = end_event
    return found


_TERMINAL = ("Succeeded", "Failed", "TimedOut", "Stopped", "Cancelled")


def _error_text(error: Any) -> str | None:
    if not isinstance(error, dict):
        return None
    payload = error.get("Payload", error)
    if not isinstance(payload, dict):
        return str(payload)
    text = ": ".join(str(p) for p in (payload.get("ErrorType"), payload.get("ErrorMessage")) if p)
    return text or "(no details)"


@dataclass(frozen=True)
class CostSplit:
    """The execution's ledger (``agents.usage.Ledger``): every answered model call paid once
    (``paid``), the calls paid and lost in flight with a crashed worker (``lost``, estimated), and
    the answered ones that later invocations replayed from the journal instead of paying for them
    again (``reused``). The bill is paid + lost."""

    ledger: Ledger

    def to_dict(self) -> dict[str, Any]:
        ledger = self.ledger
        return {**ledger.to_dict(), "paid_calls": ledger.paid_calls, "lost_calls": ledger.lost_calls,
                "reused_calls": ledger.reused_calls}

    def format(self) -> str:
        """A few lines for people: per model and book, then the split."""
        return self.ledger.format()


def cost_split(ops: list[Operation], runs: list[Invocation]) -> CostSplit | None:
    """The ledger of an execution that called models (None if it made none)."""
    if not any(op.SubType in SENT_SUBTYPES for op in ops):
        return None
    replayed = {op_id for run in runs for op_id in run.replayed}
    return CostSplit(ledger_from_operations(ops, reused_ids=replayed))
