"""An agent's conversation rebuilt from the journal, for people: per agent run (a thread), the
system and user prompts, each model turn, and under each tool call the review it went through and
the result it got, paired by the model's call id.

The pairing follows the journal's structure, never a guess by tool name: one tool call runs in the
same context right after its model call; several run as the branches of a map named
"<agent>: tools <turn>", branch i holding call i (branch ids are derived from the map's id, and a
finished map records each branch's result with its call id).
"""

from __future__ import annotations

import json
import re
from typing import Any

from duragent.agents.messages import ModelResponse, ToolResult
from duragent.agents.review import Reject, ReviewRequest, read_decision, review_request
from duragent.agents.usage import MODEL_CALL_SUBTYPE
from duragent.durable import submitter_record
from duragent.durable.journal import operation_id
from duragent.durable.model import ErrorObject, Operation, OperationStatus, OperationType

_MODEL_CALL = re.compile(r"^(?P<agent>.*): model call (?P<turn>\d+)$")
_BUDGET = re.compile(r"^(?P<agent>.*): budget \d+$")


def conversations(ops: list[Operation]) -> list[dict[str, Any]]:
    """Threads (one per agent run, plus one per context for questions asked outside agents), in
    the order they began: ``{"id", "agent", "where", "entries": [...]}``."""
    journal = _Journal(ops)
    threads: list[dict[str, Any]] = []
    for parent_id, children in journal.children.items():
        threads.extend(_threads_in(journal, parent_id, children))
    threads.sort(key=lambda t: t.pop("_first"))
    return threads


class _Journal:
    def __init__(self, ops: list[Operation]) -> None:
        self.ops = ops
        self.by_id = {op.Id: op for op in ops}
        self.order = {op.Id: index for index, op in enumerate(ops)}
        self.children: dict[str | None, list[Operation]] = {}
        for op in ops:
            if op.Type != OperationType.EXECUTION:
                self.children.setdefault(op.ParentId, []).append(op)

    def where(self, parent_id: str | None) -> str:
        """The enclosing contexts by name ("research › map-item-0"), outermost first."""
        names: list[str] = []
        seen: set[str] = set()
        while parent_id and parent_id in self.by_id and parent_id not in seen:
            seen.add(parent_id)
            parent = self.by_id[parent_id]
            names.append(parent.Name or parent.SubType or parent.Type.value)
            parent_id = parent.ParentId
        return " › ".join(reversed(names))


def _threads_in(journal: _Journal, parent_id: str | None, children: list[Operation]) -> list[dict[str, Any]]:
    threads: list[dict[str, Any]] = []
    current: dict[str, dict[str, Any]] = {}  # agent name -> its open thread in this context
    questions: dict[str, Any] | None = None
    used: set[str] = set()
    for index, op in enumerate(children):
        if op.Id in used:
            continue
        match = _MODEL_CALL.match(op.Name or "") if op.SubType == MODEL_CALL_SUBTYPE else None
        if match:
            agent, turn = match["agent"], int(match["turn"])
            thread = current.get(agent)
            if thread is None or turn <= thread["_turn"]:  # a new run of this agent in this context
                thread = _new_thread(journal, agent, parent_id, op)
                current[agent] = thread
                threads.append(thread)
            thread["_turn"] = turn
            thread["entries"].extend(_turn_entries(journal, op, turn, agent, children[index + 1:], used))
            continue
        if op.Type == OperationType.CONTEXT and op.SubType == "WaitForCallback":
            request = review_request(submitter_record(op.Id, journal.children.get(op.Id, [])))
            if request is None:
                continue
            budget = _BUDGET.match(op.Name or "")
            thread = current.get(budget["agent"]) if budget else None
            if thread is None:
                if questions is None:
                    questions = _new_thread(journal, None, parent_id, op)
                    threads.append(questions)
                thread = questions
            thread["entries"].append(_review_entry(journal, op, request, None))
    for thread in threads:
        thread.pop("_turn", None)
    return threads


def _new_thread(journal: _Journal, agent: str | None, parent_id: str | None, first: Operation) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    response = _response(first) if first.SubType == MODEL_CALL_SUBTYPE else None
    if response is not None and response.opening is not None:
        if response.opening.system:
            entries.append({"kind": "system", "text": response.opening.system})
        entries.append({"kind": "user", "text": response.opening.prompt})
    elif agent is not None:
        entries.append({"kind": "note", "text": "The prompts were not recorded (this run predates recording them)."})
    return {"id": first.Id, "agent": agent, "where": journal.where(parent_id), "entries": entries,
            "_turn": 0, "_first": journal.order[first.Id]}


def _response(op: Operation) -> ModelResponse | None:
    text = op.StepDetails.Result if op.StepDetails else None
    if op.Status != OperationStatus.SUCCEEDED or not text:
        return None
    try:
        return ModelResponse.model_validate_json(text)
    except ValueError:
        return None


def _turn_entries(journal: _Journal, op: Operation, turn: int, agent: str, after: list[Operation],
                  used: set[str]) -> list[dict[str, Any]]:
    """The assistant entry of one model call, then per tool call its review and result."""
    response = _response(op)
    entry: dict[str, Any] = {"kind": "assistant", "operation_id": op.Id, "name": op.Name, "agent": agent,
                             "turn": turn, "status": op.Status.value, "time": op.EndTimestamp or op.StartTimestamp,
                             "text": "", "tool_calls": [], "model": None, "usage": None, "stop_reason": None,
                             "error": None}
    if response is None:
        if op.Status in (OperationStatus.FAILED, OperationStatus.TIMED_OUT):
            entry["error"] = _error_text(_error(op))
        return [entry]
    calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls]
    entry.update(text=response.text, tool_calls=calls, model=response.model, stop_reason=response.stop_reason,
                 usage=response.usage.model_dump())
    entries = [entry]
    if not calls:
        return entries
    following = _until_next_model_call(after)
    if len(calls) == 1:
        groups = [following]
        finished: dict[int, ToolResult] = {}
    else:
        batch = next((o for o in following if o.Type == OperationType.CONTEXT and o.SubType == "Map"
                      and o.Name == f"{agent}: tools {turn}"), None)
        if batch is not None:
            used.add(batch.Id)
        groups = _branches(journal, batch, len(calls))
        finished = _batch_results(batch)
    for index, call in enumerate(calls):
        entries.extend(_call_entries(journal, call, groups[index], finished.get(index), used))
    return entries


def _until_next_model_call(after: list[Operation]) -> list[Operation]:
    found = []
    for op in after:
        if op.SubType == MODEL_CALL_SUBTYPE:
            break
        found.append(op)
    return found


def _branches(journal: _Journal, batch: Operation | None, count: int) -> list[list[Operation]]:
    """The operations of each branch of a flat map, by branch index."""
    if batch is None:
        return [[] for _ in range(count)]
    members = journal.children.get(batch.Id, [])
    groups: list[list[Operation]] = []
    for index in range(count):
        prefix = operation_id(index, batch.Id)
        ids = {operation_id(position, prefix) for position in range(1, 5)}
        groups.append([op for op in members if op.Id in ids])
    return groups


def _batch_results(batch: Operation | None) -> dict[int, ToolResult]:
    """What each branch handed back to the model, once the map finished (call id and content)."""
    text = batch.ContextDetails.Result if batch is not None and batch.ContextDetails else None
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    found: dict[int, ToolResult] = {}
    for item in data.get("all", []) if isinstance(data, dict) else []:
        try:
            found[int(item["index"])] = ToolResult.model_validate_json(item["payload"])
        except (KeyError, TypeError, ValueError):
            continue
    return found


def _call_entries(journal: _Journal, call: dict[str, Any], ops: list[Operation], handed_back: ToolResult | None,
                  used: set[str]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    tool = call["name"]
    for op in ops:
        if op.Id in used:
            continue
        if op.Type == OperationType.CONTEXT and op.SubType == "WaitForCallback" and op.Name == f"approval:{tool}":
            request = review_request(submitter_record(op.Id, journal.children.get(op.Id, [])))
            if request is not None and request.kind == "tool_approval":
                used.add(op.Id)
                entries.append(_review_entry(journal, op, request, call["id"]))
        elif op.Name == f"tool:{tool}" and op.Type in (OperationType.STEP, OperationType.CONTEXT):
            used.add(op.Id)
            entries.append(_result_entry(op, tool, call["id"], handed_back))
            break
    if handed_back is not None and not any(e["kind"] == "tool_result" for e in entries):
        entries.append({"kind": "tool_result", "operation_id": None, "tool": tool, "tool_call_id": call["id"],
                        "status": "NOT_RUN", "content": handed_back.content, "is_error": handed_back.is_error,
                        "time": None})
    return entries


def _result_entry(op: Operation, tool: str, call_id: str, handed_back: ToolResult | None) -> dict[str, Any]:
    if handed_back is not None:
        content, is_error = handed_back.content, handed_back.is_error
    elif op.Status == OperationStatus.SUCCEEDED:
        content, is_error = _as_text(_decoded(_result(op))), False
    elif op.Status in (OperationStatus.FAILED, OperationStatus.TIMED_OUT):
        content, is_error = _error_text(_error(op)) or "the tool failed", True
    else:
        content, is_error = "", False
    return {"kind": "tool_result", "operation_id": op.Id, "tool": tool, "tool_call_id": call_id,
            "status": op.Status.value, "content": content, "is_error": is_error,
            "time": op.EndTimestamp or op.StartTimestamp}


def _review_entry(journal: _Journal, op: Operation, request: ReviewRequest, call_id: str | None) -> dict[str, Any]:
    answer = _decoded(_result(op)) if op.Status == OperationStatus.SUCCEEDED else None
    outcome, decision = _outcome(op, request, answer)
    callback = next((c for c in journal.children.get(op.Id, []) if c.CallbackDetails is not None), None)
    return {
        "kind": "review", "operation_id": op.Id, "name": op.Name, "review_kind": request.kind,
        "title": request.title, "tool": request.tool, "arguments": request.arguments,
        "question": request.question, "response_schema": request.response_schema, "status": outcome,
        "decision": decision, "answer": answer,
        "callback_id": callback.CallbackDetails.CallbackId if outcome == "pending" and callback and
        callback.CallbackDetails else None,
        "time": op.EndTimestamp or op.StartTimestamp, "tool_call_id": call_id or request.tool_call_id,
    }


def _outcome(op: Operation, request: ReviewRequest, answer: Any) -> tuple[str, dict[str, Any] | None]:
    """pending, approved, rejected, answered (a question), unreadable, timed_out or failed; and the
    decision as the agent read it (approved, edits, feedback, reviewer)."""
    if not op.Status.terminal:
        return "pending", None
    if op.Status != OperationStatus.SUCCEEDED:
        error = _error(op)
        timed_out = op.Status == OperationStatus.TIMED_OUT or "Timeout" in str(error.ErrorType if error else "")
        return ("timed_out" if timed_out else "failed"), None
    if request.kind == "question":
        return "answered", None
    try:
        decision = read_decision(request, answer)
    except Exception:  # an answer sent raw that the agent could not read either: it became a rejection
        return "unreadable", None
    approved = not isinstance(decision, Reject)
    return ("approved" if approved else "rejected"), {"approved": approved, **decision.model_dump(exclude_none=True)}


def _details(op: Operation) -> Any:
    return op.StepDetails or op.ContextDetails or op.CallbackDetails or op.ChainedInvokeDetails


def _result(op: Operation) -> str | None:
    details = _details(op)
    return getattr(details, "Result", None) if details is not None else None


def _error(op: Operation) -> ErrorObject | None:
    details = _details(op)
    return getattr(details, "Error", None) if details is not None else None


def _error_text(error: ErrorObject | None) -> str | None:
    if error is None:
        return None
    return ": ".join(part for part in (error.ErrorType, error.ErrorMessage) if part) or "(no details)"


def _decoded(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
