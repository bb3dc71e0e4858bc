"""What the console's pages show, as JSON-ready dicts read through the operator API: nothing here
runs anything or writes to the store."""

from __future__ import annotations

import math
from typing import Any

from duragent.agents.review import pause_hint
from duragent.agents.session import is_session, transcript
from duragent.durable.model import ExecutionStatus, Operation, OperationStatus
from duragent.durable.tree import display_name, operation_tree
from duragent.ops import Invocation, LocalOperator, PendingCallback, cost_split, invocations

from .conversation import conversations

UNIT = 0.01
"""Seconds: the timeline's scale is linear below this and logarithmic above it, so a week-long
human wait and a 20 ms step are both readable in one picture."""
LONG_GAP = 60.0
"""Seconds: stretches of the timeline at least this long are marked as gaps (with their length)."""


# -- timeline -------------------------------------------------------------------------------------
def timeline(ops: list[Operation], runs: list[Invocation], started: float | None, ended: float | None,
             now: float) -> dict[str, Any]:
    """Rows in tree order with their bars already placed (``left`` and ``width`` in percent) on a
    compressed time scale, the long gaps, and where each invocation began."""
    rows = [(depth, op) for depth, op in operation_tree(ops)]
    by_id = {op.Id: op for op in ops}
    t0 = min([t for t in [started, *(op.StartTimestamp for _, op in rows)] if t is not None], default=now)
    t1 = max([t for t in [ended, *(op.EndTimestamp for _, op in rows), *(op.StartTimestamp for _, op in rows)]
              if t is not None], default=t0)
    if ended is None:
        t1 = max(t1, now)
    points = {t0, t1}
    for _, op in rows:
        points.update(t for t in (op.StartTimestamp, op.EndTimestamp) if t is not None)
    for run in runs:
        points.update(t for t in (run.started_at, run.ended_at) if t is not None)
    scale = _Scale(sorted(p for p in points if t0 <= p <= t1))
    out_rows = []
    for depth, op in rows:
        start = op.StartTimestamp if op.StartTimestamp is not None else t0
        end = op.EndTimestamp if op.EndTimestamp is not None else (t1 if not op.Status.terminal else start)
        left, right = scale.at(start), scale.at(end)
        out_rows.append({
            "id": op.Id, "parent_id": op.ParentId, "depth": depth, "name": display_name(op, by_id) or op.Name,
            "type": op.Type.value, "subtype": op.SubType, "status": op.Status.value,
            "attempt": op.StepDetails.Attempt if op.StepDetails is not None else None,
            "start": op.StartTimestamp, "end": op.EndTimestamp,
            "duration": (op.EndTimestamp - op.StartTimestamp)
            if op.StartTimestamp is not None and op.EndTimestamp is not None else None,
            "wait_until": op.WaitDetails.ScheduledEndTimestamp if op.WaitDetails is not None else None,
            "note": _note(op),
            "bar": {"left": round(left, 3), "width": round(max(right - left, 0.4), 3)},
        })
    gaps = [{"left": round(scale.at(a), 3), "width": round(scale.at(b) - scale.at(a), 3), "seconds": b - a}
            for a, b in zip(scale.points, scale.points[1:], strict=False) if b - a >= LONG_GAP]
    marks = [{"number": run.number, "left": round(scale.at(run.started_at), 3), "crashed": run.crashed}
             for run in runs if run.started_at is not None and t0 <= run.started_at <= t1]
    return {"rows": out_rows, "gaps": gaps, "invocations": marks, "start": t0, "end": t1}


class _Scale:
    """Piecewise time scale: each stretch between two consecutive moments gets a width that grows
    with the logarithm of its length."""

    def __init__(self, points: list[float]) -> None:
        self.points = points or [0.0]
        widths = [math.log1p((b - a) / UNIT) for a, b in zip(self.points, self.points[1:], strict=False)]
        total = sum(widths) or 1.0
        self.offsets = [0.0]
        for width in widths:
            self.offsets.append(self.offsets[-1] + 100.0 * width / total)

    def at(self, t: float) -> float:
        points, offsets = self.points, self.offsets
        if t <= points[0]:
            return 0.0
        if t >= points[-1]:
            return offsets[-1]
        low, high = 0, len(points) - 1
        while high - low > 1:
            mid = (low + high) // 2
            if points[mid] <= t:
                low = mid
            else:
                high = mid
        a, b = points[low], points[high]
        share = math.log1p((t - a) / UNIT) / math.log1p((b - a) / UNIT) if b > a else 0.0
        return offsets[low] + share * (offsets[high] - offsets[low])


def _note(op: Operation) -> str | None:
    if op.Status == OperationStatus.STARTED and op.WaitDetails is not None:
        return "waits until its scheduled end"
    if op.Status == OperationStatus.STARTED and op.CallbackDetails is not None:
        return "waits for an answer"
    if op.Status in (OperationStatus.PENDING, OperationStatus.READY):
        return "waits to retry"
    details = op.StepDetails or op.ContextDetails or op.CallbackDetails or op.ChainedInvokeDetails
    error = getattr(details, "Error", None) if details is not None else None
    if error is not None and op.Status != OperationStatus.SUCCEEDED:
        return ": ".join(p for p in (error.ErrorType, error.ErrorMessage) if p) or "(no details)"
    return None


# -- invocations ----------------------------------------------------------------------------------
def invocation_log(runs: list[Invocation], ops: list[Operation]) -> list[dict[str, Any]]:
    """Each invocation for people: when, how it ended, and what it replayed from the journal."""
    by_id = {op.Id: op for op in ops}
    out = []
    for run in runs:
        replayed = [by_id[i] for i in run.replayed if i in by_id]
        notable = [display_name(op, by_id) or op.Name or op.Type.value for op in replayed
                   if op.SubType == "ModelCall" or (op.Name or "").startswith("tool:")]
        out.append({**run.to_dict(), "replayed_count": len(replayed), "ran_count": len(run.ran),
                    "replayed_notable": notable[:50], "replayed_notable_more": max(0, len(notable) - 50),
                    "duration": (run.ended_at - run.started_at)
                    if run.started_at is not None and run.ended_at is not None else None})
    return out


# -- pending callbacks ------------------------------------------------------------------------------
def pending_item(item: PendingCallback) -> dict[str, Any]:
    """A review card's data: what is asked, and the CLI command that would answer it too."""
    return {**item.to_dict(), "hint": pause_hint(item.request, item.callback_id)}


# -- the execution page --------------------------------------------------------------------------
def execution_detail(operator: LocalOperator, execution_id: str, now: float) -> dict[str, Any]:
    """Everything the execution page shows (ExecutionNotFoundError for an unknown id)."""
    info = operator.get(execution_id)
    ops = operator.operations(execution_id)
    history = operator.history(execution_id)
    runs = invocations(history, ops)
    cost = cost_split(ops, runs)
    running = info.status == ExecutionStatus.RUNNING.value
    pending = operator.pending(execution_id=execution_id, limit=1000) if running else None
    return {
        "execution": info.to_dict(),
        "timeline": timeline(ops, runs, info.started_at, info.ended_at, now),
        "invocations": invocation_log(runs, ops),
        "conversation": conversations(ops),
        "session": transcript(ops) if is_session(ops) else None,
        "cursor": history[-1].get("EventId", 0) if history else 0,  # the page follows the events from here
        "ledger": cost.to_dict() if cost is not None else None,
        "ledger_text": cost.format() if cost is not None else None,
        "reviews": [pending_item(item) for item in pending.items] if pending is not None else [],
        "reviews_total": pending.total if pending is not None else 0,
    }
