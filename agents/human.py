"""Human review as durable callbacks: the execution suspends for free until a person answers.

A review is a ``wait_for_callback`` whose submitter step records *what* was asked (a
``ReviewRequest``), so an inbox (``duragent list --pending``, the console) can show it without
re-running anything. Answers are read through ``agents.review`` (the protocol: what an answer
looks like and what it must fit). An answer that does not fit (say, sent with a raw ``duragent
callback succeed``) is never taken for a rejection or a yes: the review is asked again, its title
saying what was wrong, up to ``attempts`` times.

Each function follows its context: with a DurableContext it returns the answer, with an
AsyncDurableContext an awaitable of it (one flow, durable/flow.py, run either way).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel, TypeAdapter, ValidationError

from duragent.durable import (
    AsyncDurableContext,
    CallbackConfig,
    CallbackTimeoutError,
    DurableContext,
    Duration,
    UsageError,
    display_name,
    submitter_record,
)
from duragent.durable.flow import Flow, run_flow

from .review import (
    REVIEW_KINDS,
    Answer,
    Approve,
    Decision,
    Reject,
    ReviewError,
    ReviewRequest,
    describe_changes,
    merge_edits,
    read_decision,
    review_request,
)

T = TypeVar("T")

DEFAULT_REVIEW_TIMEOUT = Duration.from_days(7)
DEFAULT_ATTEMPTS = 3

__all__ = ["DEFAULT_REVIEW_TIMEOUT", "REVIEW_KINDS", "ApprovalDecision", "ReviewRequest", "approval_flow",
           "as_review_request", "ask_human", "decision_flow", "pending_reviews", "request_approval",
           "request_decision"]

Context = DurableContext | AsyncDurableContext


class ApprovalDecision(BaseModel):
    """How a tool approval ended, for the code that asked (``request_approval``)."""

    approved: bool
    outcome: Literal["approved", "rejected", "timed_out", "no_usable_answer"] = "approved"
    """Why it ended so: a reviewer's yes or no, nobody in time, or answers that never fit."""
    arguments: dict[str, Any] | None = None
    """Approved: the arguments to run the tool with (the proposed ones with the reviewer's edits merged)."""
    edits: dict[str, Any] | None = None
    """What the reviewer changed (None: approved as proposed)."""
    changes: str | None = None
    """The edits, said for the model (``A reviewer changed the arguments before running: ...``)."""
    feedback: str | None = None
    """Not approved: why (the reviewer's feedback, a timeout, or answers that never fit)."""
    reviewer: str | None = None


def _submitter(request: ReviewRequest) -> Callable[[str], dict[str, Any]]:
    def submit(callback_id: str) -> dict[str, Any]:
        return request.model_copy(update={"callback_id": callback_id}).model_dump(exclude_none=True)

    return submit


def _ask(ctx: Context, request: ReviewRequest, *, name: str, timeout: Duration | None, attempts: int,
         interpret: Callable[[Decision], T]) -> Flow[T]:
    """Ask, read the answer through the protocol, and ask again (saying why) while it does not fit.
    Raises ReviewError after ``attempts`` unfit answers, CallbackTimeoutError when nobody answers."""
    if attempts < 1:
        raise UsageError(f"attempts must be at least 1, got {attempts}")
    asked = request
    for attempt in range(1, attempts + 1):
        answer = yield ctx.wait_for_callback(_submitter(asked),
                                             name=name if attempt == 1 else f"{name} (again {attempt})",
                                             config=CallbackConfig(timeout=timeout))
        try:
            return interpret(read_decision(asked, answer))
        except ReviewError as exc:
            if attempt == attempts:
                raise ReviewError(f"{attempts} answer(s) to {name!r} did not fit; the last: {exc}",
                                  problem=exc.problem) from None
            note = f"(The previous answer did not fit: {exc.problem}. Please answer again.)"
            update: dict[str, Any] = {"title": f"{request.title}\n{note}"}
            if request.question is not None:
                update["question"] = f"{request.question}\n{note}"
            asked = request.model_copy(update=update)
    raise AssertionError("unreachable")


@overload
def request_approval(ctx: DurableContext, *, tool: str, arguments: dict[str, Any], name: str,
                     timeout: Duration | None = ..., argument_schema: dict[str, Any] | None = ...,
                     validate: Callable[[dict[str, Any]], object] | None = ..., tool_call_id: str | None = ...,
                     attempts: int = ...) -> ApprovalDecision: ...
@overload
def request_approval(ctx: AsyncDurableContext, *, tool: str, arguments: dict[str, Any], name: str,
                     timeout: Duration | None = ..., argument_schema: dict[str, Any] | None = ...,
                     validate: Callable[[dict[str, Any]], object] | None = ..., tool_call_id: str | None = ...,
                     attempts: int = ...) -> Awaitable[ApprovalDecision]: ...


def request_approval(ctx: Any, *, tool: str, arguments: dict[str, Any], name: str,
                     timeout: Duration | None = DEFAULT_REVIEW_TIMEOUT, argument_schema: dict[str, Any] | None = None,
                     validate: Callable[[dict[str, Any]], object] | None = None, tool_call_id: str | None = None,
                     attempts: int = DEFAULT_ATTEMPTS) -> Any:
    """Suspend until a reviewer approves (optionally with edits) or rejects a tool call.

    ``argument_schema`` is recorded with the request so operators can check an edit before sending
    it; ``validate`` (e.g. ``Tool.validate``) checks the merged arguments here too, and an edit it
    refuses is asked again. A timeout, or ``attempts`` answers that never fit, end as a rejection."""
    return run_flow(approval_flow(ctx, tool=tool, arguments=arguments, name=name, timeout=timeout,
                                  argument_schema=argument_schema, validate=validate, tool_call_id=tool_call_id,
                                  attempts=attempts), ctx)


def approval_flow(ctx: Context, *, tool: str, arguments: dict[str, Any], name: str,
                  timeout: Duration | None = DEFAULT_REVIEW_TIMEOUT, argument_schema: dict[str, Any] | None = None,
                  validate: Callable[[dict[str, Any]], object] | None = None, tool_call_id: str | None = None,
                  attempts: int = DEFAULT_ATTEMPTS) -> Flow[ApprovalDecision]:
    """``request_approval`` as a flow (durable/flow.py), for callers that are flows themselves."""
    request = ReviewRequest(kind="tool_approval", title=f"Run tool {tool}?", tool=tool, arguments=arguments,
                            argument_schema=argument_schema, tool_call_id=tool_call_id)

    def interpret(decision: Decision) -> ApprovalDecision:
        if isinstance(decision, Reject):
            return ApprovalDecision(approved=False, outcome="rejected", feedback=decision.feedback,
                                    reviewer=decision.reviewer)
        assert isinstance(decision, Approve)  # read_decision gives a tool approval nothing else
        final = merge_edits(arguments, decision.edits)
        if decision.edits and validate is not None:
            try:
                validate(final)
            except Exception as exc:  # the tool's own validation (pydantic) may be stricter than the schema
                raise ReviewError(f"the edited arguments do not fit tool {tool}: {exc}",
                                  problem=f"the edited arguments do not fit: {exc}") from None
        return ApprovalDecision(approved=True, arguments=final, edits=decision.edits,
                                changes=describe_changes(arguments, final), reviewer=decision.reviewer)

    try:
        return (yield from _ask(ctx, request, name=name, timeout=timeout, attempts=attempts, interpret=interpret))
    except CallbackTimeoutError:
        return ApprovalDecision(approved=False, outcome="timed_out",
                                feedback="no reviewer answered before the approval timed out")
    except ReviewError as exc:
        return ApprovalDecision(approved=False, outcome="no_usable_answer",
                                feedback=f"no usable review answer arrived ({exc.problem})")


@overload
def request_decision(ctx: DurableContext, request: ReviewRequest, *, name: str, timeout: Duration | None = ...,
                     attempts: int = ...) -> Approve | Reject: ...
@overload
def request_decision(ctx: AsyncDurableContext, request: ReviewRequest, *, name: str, timeout: Duration | None = ...,
                     attempts: int = ...) -> Awaitable[Approve | Reject]: ...


def request_decision(ctx: Any, request: ReviewRequest, *, name: str, timeout: Duration | None = DEFAULT_REVIEW_TIMEOUT,
                     attempts: int = DEFAULT_ATTEMPTS) -> Any:
    """Suspend until a reviewer approves or rejects ``request`` (a budget review, say). Raises
    CallbackTimeoutError when nobody answers in time, ReviewError after ``attempts`` unfit answers."""
    return run_flow(decision_flow(ctx, request, name=name, timeout=timeout, attempts=attempts), ctx)


def decision_flow(ctx: Context, request: ReviewRequest, *, name: str, timeout: Duration | None = DEFAULT_REVIEW_TIMEOUT,
                  attempts: int = DEFAULT_ATTEMPTS) -> Flow[Approve | Reject]:
    """``request_decision`` as a flow (durable/flow.py)."""

    def interpret(decision: Decision) -> Approve | Reject:
        assert not isinstance(decision, Answer)  # read_decision gives a review nothing else
        return decision

    return (yield from _ask(ctx, request, name=name, timeout=timeout, attempts=attempts, interpret=interpret))


@overload
def ask_human(ctx: DurableContext, question: str, response_type: type[T] = str,  # type: ignore[assignment]
              *, name: str | None = None, timeout: Duration | None = DEFAULT_REVIEW_TIMEOUT,
              attempts: int = DEFAULT_ATTEMPTS) -> T: ...
@overload
def ask_human(ctx: AsyncDurableContext, question: str, response_type: type[T] = str,  # type: ignore[assignment]
              *, name: str | None = None, timeout: Duration | None = DEFAULT_REVIEW_TIMEOUT,
              attempts: int = DEFAULT_ATTEMPTS) -> Awaitable[T]: ...


def ask_human(ctx: Any, question: str, response_type: Any = str, *, name: str | None = None,
              timeout: Duration | None = DEFAULT_REVIEW_TIMEOUT, attempts: int = DEFAULT_ATTEMPTS) -> Any:
    """Ask a person a free-form question and suspend until they answer; the answer is validated
    into ``response_type`` (str, a pydantic model, any type pydantic understands; its JSON schema is
    recorded with the question). An answer that does not validate is asked again, saying what was
    wrong, up to ``attempts`` times; then ReviewError fails the call. Awaitable under an
    AsyncDurableContext."""
    return run_flow(_ask_flow(ctx, question, response_type, name=name, timeout=timeout, attempts=attempts), ctx)


def _ask_flow(ctx: Context, question: str, response_type: Any, *, name: str | None, timeout: Duration | None,
              attempts: int) -> Flow[Any]:
    adapter: TypeAdapter[Any] = TypeAdapter(response_type)
    schema = None if response_type is str else adapter.json_schema()
    request = ReviewRequest(kind="question", title=question, question=question, response_schema=schema)

    def interpret(decision: Decision) -> Any:
        assert isinstance(decision, Answer)  # read_decision gives a question nothing else
        try:
            return adapter.validate_python(decision.value)
        except ValidationError as exc:
            problem = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
                                for e in exc.errors()[:3])
            raise ReviewError(f"the answer does not fit {response_type!r}: {problem}", problem=problem) from None

    return (yield from _ask(ctx, request, name=name or f"ask: {question[:60]}", timeout=timeout,
                            attempts=attempts, interpret=interpret))


def as_review_request(record: Any) -> dict[str, Any] | None:
    """A submitter's record when it is one of our review requests, as a dict (see ``review_request``)."""
    request = review_request(record)
    return None if request is None else request.model_dump(exclude_none=True)


def pending_reviews(runtime: Any) -> list[dict[str, Any]]:
    """Every callback awaiting an answer, with what was asked when it is a review.

    Works on a ``LocalRuntime``: reads the submitter step beside each pending callback."""
    out: list[dict[str, Any]] = []
    by_execution: dict[str, list[Any]] = {}
    for execution_id, op, callback_id in runtime.pending_callbacks():
        if execution_id not in by_execution:
            by_execution[execution_id] = runtime.operations(execution_id)
        ops = by_execution[execution_id]
        name = display_name(op, {o.Id: o for o in ops})  # "approval:send_email", not the internal operation
        request = as_review_request(submitter_record(op.ParentId, ops))
        out.append({"execution_id": execution_id, "callback_id": callback_id, "name": name,
                    "started": op.StartTimestamp, "request": request})
    return out
