"""What the console shows, as JSON-ready dicts built from the store: nothing here runs anything.

The agents package is optional for the engine, so it is imported lazily: without it the console
still shows executions, timelines and callbacks, only without ledgers and review requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..local.runtime import LocalRuntime
from ..model import ErrorObject, ExecutionStatus, Operation, OperationStatus, OperationType
from ..operations.callback import submitter_record
from ..tree import operation_tree

MODEL_CALL = "ModelCall"


# -- small helpers ----------------------------------------------------------------------------------
def _json_or_text(text: str | None) -> Any:
    """A stored payload decoded as JSON, or the text itself when it is not JSON."""
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _error_text(error: ErrorObject | None) -> str | None:
    if error is None:
        return None
    return ": ".join(part for part in (error.ErrorType, error.ErrorMessage) if part) or "(no details)"


def _details(op: Operation) -> Any:
    return op.StepDetails or op.ContextDetails or op.CallbackDetails or op.ChainedInvokeDetails


def _result(op: Operation) -> str | None:
    details = _details(op)
    return getattr(details, "Result", None) if details is not None else None


def _error(op: Operation) -> ErrorObject | None:
    details = _details(op)
    return getattr(details, "Error", None) if details is not None else None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


# -- timeline -------------------------------------------------------------------------------------
def timeline(ops: list[Operation]) -> list[dict[str, Any]]:
    """Operations in checkpoint order, children right after their parent, with their depth."""
    return [_timeline_row(op, depth) for depth, op in operation_tree(ops)]


def _timeline_row(op: Operation, depth: int) -> dict[str, Any]:
    start, end = op.StartTimestamp, op.EndTimestamp
    note = None
    if op.Status == OperationStatus.STARTED and op.WaitDetails is not None:
        note = "waits until scheduled end"
    elif op.Status == OperationStatus.STARTED and op.CallbackDetails is not None:
        note = "waits for an answer"
    elif op.Status != OperationStatus.SUCCEEDED:
        note = _error_text(_error(op))
    return {
        "id": op.Id, "parent_id": op.ParentId, "depth": depth, "name": op.Name, "type": op.Type.value,
        "subtype": op.SubType, "status": op.Status.value,
        "attempt": op.StepDetails.Attempt if op.StepDetails is not None else None,
        "start": start, "end": end,
        "duration": (end - start) if start is not None and end is not None else None,
        "wait_until": op.WaitDetails.ScheduledEndTimestamp if op.WaitDetails is not None else None,
        "note": note,
    }


# -- conversation ---------------------------------------------------------------------------------
def _model_response(text: str) -> dict[str, Any] | None:
    """A model-call step result as a dict (validated by agents' ModelResponse when available)."""
    try:
        from duragent.agents.messages import ModelResponse
    except ImportError:  # pragma: no cover - the agents package ships with duragent
        data = _json_or_text(text)
        return data if isinstance(data, dict) else None
    try:
        return ModelResponse.model_validate_json(text).model_dump(mode="json")
    except ValueError:
        return None


def _review_request(op: Operation, children: dict[str | None, list[Operation]]) -> dict[str, Any] | None:
    """What a review asked, as its submitter step recorded it (see agents.human)."""
    try:
        from duragent.agents.human import as_review_request
    except ImportError:  # pragma: no cover - the agents package ships with duragent
        return None
    return as_review_request(submitter_record(op.Id, children.get(op.Id, [])))


def _callback_id(op: Operation, children: dict[str | None, list[Operation]]) -> str | None:
    for child in children.get(op.Id, []):
        if child.CallbackDetails is not None and child.CallbackDetails.CallbackId:
            return child.CallbackDetails.CallbackId
    return None


def _claim(open_calls: list[dict[str, Any]], tool: str | None) -> dict[str, Any] | None:
    """The oldest tool call of this tool still waiting for its result (best effort: steps carry
    the tool's name, not the call id)."""
    for index, call in enumerate(open_calls):
        if call["name"] == tool:
            return open_calls.pop(index)
    return None


def conversation(ops: Iterable[Operation]) -> list[dict[str, Any]]:
    """The agent conversation rebuilt from the journal: assistant turns (model-call step results),
    reviews of tool calls, and tool results (``tool:*`` operations), in checkpoint order."""
    ops = list(ops)
    children: dict[str | None, list[Operation]] = {}
    for op in ops:
        children.setdefault(op.ParentId, []).append(op)
    entries: list[dict[str, Any]] = []
    open_calls: list[dict[str, Any]] = []
    reviewed: set[int] = set()
    for op in ops:
        name = op.Name or ""
        if op.SubType == MODEL_CALL:
            entries.append(_assistant_entry(op, name, open_calls))
        elif op.Type == OperationType.CONTEXT and op.SubType == "WaitForCallback":
            entry = _review_entry(op, children, open_calls, reviewed)
            if entry is not None:
                entries.append(entry)
        elif name.startswith("tool:") and op.Type in (OperationType.STEP, OperationType.CONTEXT):
            entries.append(_tool_entry(op, name[len("tool:"):], open_calls))
    return entries


def _assistant_entry(op: Operation, name: str, open_calls: list[dict[str, Any]]) -> dict[str, Any]:
    agent = name.split(": model call", 1)[0] if ": model call" in name else None
    entry: dict[str, Any] = {"kind": "assistant", "operation_id": op.Id, "name": name, "agent": agent,
                             "status": op.Status.value, "time": op.EndTimestamp or op.StartTimestamp}
    response = _model_response(_result(op) or "") if op.Status == OperationStatus.SUCCEEDED else None
    if response is None:
        entry["error"] = _error_text(_error(op)) if op.Status == OperationStatus.FAILED else None
        entry.update(text="", tool_calls=[], model=None, usage=None, stop_reason=None)
        return entry
    blocks = response.get("content") or []
    calls = [{"id": b.get("id"), "name": b.get("name"), "arguments": b.get("arguments") or {}}
             for b in blocks if isinstance(b, dict) and b.get("type") == "tool_call"]
    open_calls.extend(calls)
    entry.update(text="".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text"),
                 tool_calls=calls, model=response.get("model"), usage=response.get("usage"),
                 stop_reason=response.get("stop_reason"))
    return entry


def _review_entry(op: Operation, children: dict[str | None, list[Operation]],
                  open_calls: list[dict[str, Any]], reviewed: set[int]) -> dict[str, Any] | None:
    request = _review_request(op, children)
    if request is None:
        return None  # a plain wait_for_callback, not a review
    decision = _json_or_text(_result(op)) if op.Status == OperationStatus.SUCCEEDED else None
    outcome = _review_outcome(op, request, decision)
    entry: dict[str, Any] = {
        "kind": "review", "operation_id": op.Id, "name": op.Name, "review_kind": request.get("kind"),
        "title": request.get("title"), "tool": request.get("tool"), "arguments": request.get("arguments"),
        "question": request.get("question"), "status": outcome, "decision": decision,
        "callback_id": _callback_id(op, children) if outcome == "pending" else None,
        "time": op.EndTimestamp or op.StartTimestamp, "tool_call_id": None,
    }
    if request.get("kind") == "tool_approval":
        # the oldest call of this tool that no earlier review claimed (several may await review at once)
        call = next((c for c in open_calls if c["name"] == request.get("tool") and id(c) not in reviewed), None)
        if call is not None:
            reviewed.add(id(call))
            entry["tool_call_id"] = call["id"]
            if outcome not in ("pending", "approved"):
                open_calls.remove(call)  # rejected: no tool step will follow
    return entry


def _review_outcome(op: Operation, request: dict[str, Any], decision: Any) -> str:
    """pending, approved, rejected, answered (a question), timed_out or failed."""
    if not op.Status.terminal:
        return "pending"
    if op.Status == OperationStatus.SUCCEEDED:
        if request.get("kind") == "question":
            return "answered"
        approved = decision.get("approved") if isinstance(decision, dict) else decision
        if isinstance(approved, str):
            approved = approved.strip().lower() in ("approve", "approved", "yes", "ok")
        return "approved" if approved is True else "rejected"
    error = _error(op)
    timed_out = op.Status == OperationStatus.TIMED_OUT or "Timeout" in str(error.ErrorType if error else "")
    return "timed_out" if timed_out else "failed"


def _tool_entry(op: Operation, tool: str, open_calls: list[dict[str, Any]]) -> dict[str, Any]:
    call = _claim(open_calls, tool)
    if op.Status == OperationStatus.SUCCEEDED:
        content, is_error = _as_text(_json_or_text(_result(op))), False
    elif op.Status in (OperationStatus.FAILED, OperationStatus.TIMED_OUT):
        content, is_error = _error_text(_error(op)) or "the tool failed", True
    else:
        content, is_error = "", False
    return {"kind": "tool_result", "operation_id": op.Id, "tool": tool,
            "tool_call_id": call["id"] if call else None, "status": op.Status.value,
            "content": content, "is_error": is_error, "time": op.EndTimestamp or op.StartTimestamp}


# -- ledger -------------------------------------------------------------------------------------
def ledger(ops: list[Operation]) -> tuple[dict[str, Any] | None, str | None]:
    """The cost ledger (dict and text) of an agent execution; (None, None) without model calls."""
    try:
        from duragent.agents.usage import agent_ledger
    except ImportError:  # pragma: no cover
        return None, None
    book = agent_ledger(ops)
    return (book.to_dict(), book.format()) if book is not None else (None, None)


# -- whole pages ---------------------------------------------------------------------------------
def execution_detail(runtime: LocalRuntime, execution_id: str) -> dict[str, Any]:
    """Everything the execution page shows (raises ExecutionNotFoundError for an unknown id)."""
    info = runtime.get(execution_id)
    ops = runtime.operations(execution_id)
    book, text = ledger(ops)
    return {
        "execution": info.to_dict(),
        "operations": [op.to_wire() for op in ops],
        "timeline": timeline(ops),
        "conversation": conversation(ops),
        "ledger": book,
        "ledger_text": text,
        "reviews": reviews(runtime, execution_id=execution_id),
    }


def reviews(runtime: LocalRuntime, *, execution_id: str | None = None) -> list[dict[str, Any]]:
    """Callbacks of running executions that await an answer, with what a review asks."""
    try:
        from duragent.agents.human import pending_reviews
        items = pending_reviews(runtime)
    except ImportError:  # pragma: no cover
        items = [{"execution_id": e, "callback_id": c, "name": op.Name, "started": op.StartTimestamp,
                  "request": None} for e, op, c in runtime.pending_callbacks()]
    infos: dict[str, Any] = {}
    out: list[dict[str, Any]] = []
    for item in items:
        owner = str(item["execution_id"])
        if execution_id is not None and owner != execution_id:
            continue
        if owner not in infos:
            infos[owner] = runtime.get(owner)
        info = infos[owner]
        if info.status != ExecutionStatus.RUNNING.value:
            continue  # its execution ended: the callback can no longer be answered
        request = item.get("request") or {}
        out.append({
            "callback_id": item["callback_id"], "execution_id": owner, "execution_name": info.name,
            "function": info.function, "name": item.get("name"), "started": item.get("started"),
            "kind": request.get("kind", "callback"), "title": request.get("title") or item.get("name"),
            "tool": request.get("tool"), "arguments": request.get("arguments"),
            "question": request.get("question"), "response_schema": request.get("response_schema"),
            "argument_schema": request.get("argument_schema"), "tool_call_id": request.get("tool_call_id"),
            "request": item.get("request"),
        })
    return out
