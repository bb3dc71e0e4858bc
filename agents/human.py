"""Human review as durable callbacks: the execution suspends for free until a person answers.

A review is a ``wait_for_callback`` whose submitter step records *what* was asked (an
``ReviewRequest``), so an inbox (``duragent list --pending``, the console) can show it without
re-running anything. Answers are JSON: ``{"approved": true, "arguments": {...}}`` or
``{"approved": false, "feedback": "..."}`` — what ``duragent approve`` / ``reject`` send.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from duragent.durable import CallbackConfig, CallbackTimeoutError, DurableContext, Duration
from duragent.durable.operations.callback import submitter_record

T = TypeVar("T")

DEFAULT_REVIEW_TIMEOUT = Duration.from_days(7)


class ReviewRequest(BaseModel):
    """What a reviewer is asked. Stored as the submitter step's result."""

    kind: Literal["tool_approval", "question", "budget"]
    title: str
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    question: str | None = None
    response_schema: dict[str, Any] | None = None
    callback_id: str | None = None


class ApprovalDecision(BaseModel):
    approved: bool
    arguments: dict[str, Any] | None = None
    """Edited arguments to run the tool with instead of the model's."""
    feedback: str | None = None
    reviewer: str | None = None

    @classmethod
    def parse(cls, answer: Any) -> ApprovalDecision:
        """Accept the CLI's JSON, a bare true/false, or {"approved": ...}."""
        if isinstance(answer, bool):
            return cls(approved=answer)
        if isinstance(answer, str):
            lowered = answer.strip().lower()
            if lowered in ("approve", "approved", "yes", "ok"):
                return cls(approved=True)
            return cls(approved=False, feedback=answer)
        if answer is None:
            return cls(approved=False, feedback="empty answer")
        return cls.model_validate(answer)


def _submitter(request: ReviewRequest) -> Any:
    def submit(callback_id: str) -> dict[str, Any]:
        return request.model_copy(update={"callback_id": callback_id}).model_dump(exclude_none=True)

    return submit


def request_approval(ctx: DurableContext, *, tool: str, arguments: dict[str, Any], name: str,
                     timeout: Duration | None = DEFAULT_REVIEW_TIMEOUT) -> ApprovalDecision:
    """Suspend until a reviewer approves, edits or rejects a tool call. A timeout is a rejection."""
    request = ReviewRequest(kind="tool_approval", title=f"Run tool {tool}?", tool=tool, arguments=arguments)
    try:
        answer = ctx.wait_for_callback(_submitter(request), name=name, config=CallbackConfig(timeout=timeout))
    except CallbackTimeoutError:
        return ApprovalDecision(approved=False, feedback="no reviewer answered before the approval timed out")
    try:
        return ApprovalDecision.parse(answer)
    except ValidationError as exc:
        return ApprovalDecision(approved=False, feedback=f"unreadable review answer: {exc.errors()[0]['msg']}")


def ask_human(ctx: DurableContext, question: str, response_type: type[T] = str,  # type: ignore[assignment]
              *, name: str | None = None, timeout: Duration | None = DEFAULT_REVIEW_TIMEOUT,
              attempts: int = 3) -> T:
    """Ask a person a free-form question and suspend until they answer; the answer is validated
    into ``response_type`` (str, a pydantic model, any type pydantic understands). An answer that
    does not validate is asked again, saying what was wrong, up to ``attempts`` times."""
    adapter: TypeAdapter[Any] = TypeAdapter(response_type)
    schema = None if response_type is str else adapter.json_schema()
    base_name = name or f"ask: {question[:60]}"
    prompt = question
    for attempt in range(1, attempts + 1):
        request = ReviewRequest(kind="question", title=prompt, question=prompt, response_schema=schema)
        answer = ctx.wait_for_callback(_submitter(request),
                                       name=base_name if attempt == 1 else f"{base_name} (again {attempt})",
                                       config=CallbackConfig(timeout=timeout))
        if response_type is str and not isinstance(answer, str):
            return json.dumps(answer) if answer is not None else ""  # type: ignore[return-value]
        try:
            return adapter.validate_python(answer)  # type: ignore[no-any-return]
        except ValidationError as exc:
            if attempt == attempts:
                raise
            problem = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
                                for e in exc.errors()[:3])
            prompt = f"{question}\n(The previous answer did not fit: {problem}. Please answer again.)"
    raise AssertionError("unreachable")


REVIEW_KINDS = ("tool_approval", "question", "budget")


def as_review_request(record: Any) -> dict[str, Any] | None:
    """A submitter's record when it is one of our review requests (a ``ReviewRequest`` dump)."""
    return record if isinstance(record, dict) and record.get("kind") in REVIEW_KINDS else None


def pending_reviews(runtime: Any) -> list[dict[str, Any]]:
    """Every callback awaiting an answer, with what was asked when it is a review.

    Works on a ``LocalRuntime``: reads the submitter step beside each pending callback."""
    out: list[dict[str, Any]] = []
    by_execution: dict[str, list[Any]] = {}
    for execution_id, op, callback_id in runtime.pending_callbacks():
        if execution_id not in by_execution:
            by_execution[execution_id] = runtime.operations(execution_id)
        ops = by_execution[execution_id]
        parent = next((o for o in ops if o.Id == op.ParentId), None)
        # a wait_for_callback's callback is named after the review ("approval:send_email"), not the internal op
        name = parent.Name if parent is not None and parent.SubType == "WaitForCallback" and parent.Name else op.Name
        request = as_review_request(submitter_record(op.ParentId, ops))
        out.append({"execution_id": execution_id, "callback_id": callback_id, "name": name,
                    "started": op.StartTimestamp, "request": request})
    return out
