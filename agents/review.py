"""The review protocol: what a person is asked, what they may answer, and the one check between.

An agent asks through ``agents.human``: a ``wait_for_callback`` whose submitter step records a
``ReviewRequest`` (readable by any operator process without re-running anything). Whoever answers
(the CLI, the console, the AWS CLI) builds a typed decision and sends ``encode_decision(request,
decision)``, which refuses a decision that does not fit the request before anything is recorded.
The agent reads the answer back with ``read_decision``: the same checks, so what the operator
paths send is exactly what the agent accepts.

The answer's JSON (the callback's success result):

- a tool approval or a budget review: ``{"approved": true, "edits"?: {...}, "reviewer"?: "..."}``
  or ``{"approved": false, "feedback": "...", "reviewer"?: "..."}``. ``edits`` is partial: each
  key replaces the proposed argument of that name (a top-level merge); the merged arguments must
  validate against the tool's argument schema recorded with the request. Answers recorded before
  ``edits`` existed carried ``"arguments"``; they are read as edits.
- a question: the answer itself, validated against the request's ``response_schema`` (no schema:
  a JSON string).

Edits and answers are checked with ``jsonschema`` against the schema recorded at request time, so
an operator process needs none of the user's code; the agent validates again with the tool's
pydantic model (which may be stricter) and asks again if that fails.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from duragent.durable import UsageError

ReviewKind = Literal["tool_approval", "question", "budget"]
REVIEW_KINDS: tuple[str, ...] = ("tool_approval", "question", "budget")


class ReviewError(UsageError):
    """An answer that does not fit the review it answers; the message says what was wrong and what
    would be right. ``problem`` is the what-was-wrong part alone (a re-asked review shows it)."""

    def __init__(self, message: str, *, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem or message


def _refuse(problem: str, right: str) -> ReviewError:
    return ReviewError(f"{problem}; {right}", problem=problem)


class ReviewRequest(BaseModel):
    """What a reviewer is asked. Stored as the submitter step's result (``model_dump(exclude_none=True)``)."""

    kind: ReviewKind
    title: str
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    """The arguments the model proposed (a tool approval)."""
    argument_schema: dict[str, Any] | None = None
    """The tool's JSON schema, recorded with the request so an operator can validate edits without
    the user's code. None in requests recorded before it existed (edits are then checked by the agent only)."""
    tool_call_id: str | None = None
    """The model's id of the call under review (pairs the review with its call and result)."""
    question: str | None = None
    response_schema: dict[str, Any] | None = None
    """A question's expected answer as JSON schema; None means text (a JSON string)."""
    callback_id: str | None = None


class Approve(BaseModel):
    """Yes; for a tool approval optionally with ``edits``: a partial set of arguments merged over the proposed ones."""

    edits: dict[str, Any] | None = None
    reviewer: str | None = None


class Reject(BaseModel):
    """No, and why: the model reads ``feedback`` (it must not be empty)."""

    feedback: str
    reviewer: str | None = None


class Answer(BaseModel):
    """The answer to a question, as JSON-able data fitting its ``response_schema``."""

    value: Any


Decision = Approve | Reject | Answer


# -- what is a review ------------------------------------------------------------------------------
def review_request(record: Any) -> ReviewRequest | None:
    """The one rule for "is this a review": a submitter record (see
    ``duragent.durable.submitter_record``) that is a ``ReviewRequest`` dump. Anything else (a
    plain callback's submitter, a malformed record) is not a review: None."""
    if not isinstance(record, dict) or record.get("kind") not in REVIEW_KINDS:
        return None
    try:
        return ReviewRequest.model_validate(record)
    except ValidationError:
        return None


# -- answering: operator side ----------------------------------------------------------------------
def encode_decision(request: ReviewRequest, decision: Decision) -> str:
    """The JSON text to send as the callback's success result, once ``decision`` fits ``request``.

    Raises ``ReviewError`` (nothing should be recorded then) for a decision of the wrong kind, a
    rejection without feedback, edits that do not validate against the tool's argument schema once
    merged over the proposed arguments, or an answer that does not validate against the question's
    response schema."""
    checked = check_decision(request, decision)
    if isinstance(checked, Answer):
        return json.dumps(checked.value, ensure_ascii=False)
    return json.dumps(_wire(checked), ensure_ascii=False)


def check_decision(request: ReviewRequest, decision: Decision) -> Decision:
    """``decision`` normalized (feedback and reviewer stripped, empty edits dropped), or ReviewError."""
    what = _describe(request)
    if request.kind == "question":
        if not isinstance(decision, Answer):
            raise _refuse(f"{what} takes an answer, not {_verb(decision)}", _answer_shape(request))
        _check_answer(request, decision.value)
        return decision
    if isinstance(decision, Answer):
        raise _refuse(f"{what} takes an approval or a rejection, not an answer value", "approve or reject it")
    reviewer = decision.reviewer.strip() if decision.reviewer and decision.reviewer.strip() else None
    if isinstance(decision, Reject):
        feedback = decision.feedback.strip() if isinstance(decision.feedback, str) else ""
        if not feedback:
            raise _refuse("a rejection needs feedback", "give a non-empty text saying why "
                          "(the model reads it)")
        return Reject(feedback=feedback, reviewer=reviewer)
    edits = decision.edits or None
    if edits is not None:
        if request.kind != "tool_approval":
            raise _refuse(f"{what} takes no edits (only a tool review does)", "approve or reject it as it is")
        _check_arguments(request, merge_edits(request.arguments, edits))
    return Approve(edits=edits, reviewer=reviewer)


# -- answering: agent side -------------------------------------------------------------------------
def read_decision(request: ReviewRequest, answer: Any) -> Decision:
    """The decision in a callback's answer (decoded JSON), checked exactly as ``encode_decision``
    checks it: ReviewError if it does not fit (e.g. it was sent around the operator paths, with
    ``send_callback_success`` or a raw callback on AWS)."""
    if request.kind == "question":
        return check_decision(request, Answer(value=answer))
    example = '{"approved": true} or {"approved": false, "feedback": "why"}'
    if not isinstance(answer, dict) or not isinstance(answer.get("approved"), bool):
        raise _refuse(f"an answer to {_describe(request)} must be a JSON object with \"approved\": true or "
                      f"false, got {_clip(answer)}", f"send {example}")
    unknown = sorted(set(answer) - {"approved", "edits", "arguments", "feedback", "reviewer"})
    if unknown:
        raise _refuse(f"an answer to {_describe(request)} has unknown keys {unknown}", f"send {example}"
                      + (' (an approval may add "edits": {...})' if request.kind == "tool_approval" else ""))
    reviewer = answer.get("reviewer")
    if reviewer is not None and not isinstance(reviewer, str):
        raise _refuse(f"\"reviewer\" must be text, got {_clip(reviewer)}", 'send "reviewer": "name"')
    decision: Decision
    if answer["approved"]:
        if "feedback" in answer and answer["feedback"] not in (None, ""):
            raise _refuse(f"an approval of {_describe(request)} carries no feedback", "reject it to give feedback")
        edits = answer.get("edits", answer.get("arguments"))  # "arguments": recorded before "edits" existed
        if edits is not None and not isinstance(edits, dict):
            raise _refuse(f"\"edits\" must be a JSON object, got {_clip(edits)}",
                          'send argument names and new values, e.g. "edits": {"amount": 10}')
        decision = Approve(edits=edits, reviewer=reviewer)
    else:
        if answer.get("edits") is not None or answer.get("arguments") is not None:
            raise _refuse(f"a rejection of {_describe(request)} carries no edits", "approve with edits instead")
        feedback = answer.get("feedback")
        if feedback is not None and not isinstance(feedback, str):
            raise _refuse(f"\"feedback\" must be text, got {_clip(feedback)}", 'send "feedback": "why"')
        decision = Reject(feedback=feedback or "", reviewer=reviewer)
    return check_decision(request, decision)


def merge_edits(proposed: dict[str, Any] | None, edits: dict[str, Any] | None) -> dict[str, Any]:
    """The arguments a reviewer approved: each key of ``edits`` replaces the proposed argument of
    that name; the others stay as proposed (a top-level merge: nested objects are replaced whole)."""
    return {**(proposed or {}), **(edits or {})}


def describe_changes(proposed: dict[str, Any] | None, final: dict[str, Any]) -> str | None:
    """What the model is told when a reviewer changed its arguments, or None if nothing changed:
    ``A reviewer changed the arguments before running: amount 100 -> 10.``"""
    before = proposed or {}
    missing = object()
    changes = []
    for key in [*before, *(k for k in final if k not in before)]:
        old, new = before.get(key, missing), final.get(key, missing)
        if old == new and (old is missing or type(old) is type(new)):
            continue
        changes.append(f"{key} {_value(old, missing)} -> {_value(new, missing)}")
    if not changes:
        return None
    return "A reviewer changed the arguments before running: " + "; ".join(changes) + "."


# -- what to type ----------------------------------------------------------------------------------
def pause_hint(request: ReviewRequest | None, callback_id: str,
               command: Callable[[str], str] | None = None) -> str:
    """The command lines that answer a pause, one per line: approve / reject for a tool or budget
    review, ``answer`` with the JSON schema for a question, ``callback succeed`` / ``fail`` for a
    plain callback. ``command`` turns ``"approve ID"`` into a full command line (default: prefix
    ``duragent``; the CLI adds its ``--db``, the AWS CLI its ``--aws``)."""
    cmd = command or (lambda rest: f"duragent {rest}")
    cid = shlex.quote(callback_id)
    if request is None:
        return "\n".join([f"answer: {cmd(f'callback succeed {cid} --result JSON')}",
                          f"    or: {cmd(f'callback fail {cid} --error-message TEXT')}"])
    if request.kind == "question":
        return f"answer: {cmd(f'answer {cid} JSON')}\n        {_answer_shape(request)}"
    edit = ""
    if request.kind == "tool_approval":
        example = _edit_example(request)
        edit = f" [--edit JSON]   (--edit {shlex.quote(example)} changes only what it names)" if example \
            else " [--edit JSON]   (--edit changes only the arguments it names)"
    return "\n".join([f"approve: {cmd(f'approve {cid}')}{edit}",
                      f" reject: {cmd(f'reject {cid} --feedback TEXT')}   (the model reads TEXT)"])


# -- internals -------------------------------------------------------------------------------------
def _wire(decision: Approve | Reject) -> dict[str, Any]:
    if isinstance(decision, Approve):
        wire: dict[str, Any] = {"approved": True}
        if decision.edits:
            wire["edits"] = decision.edits
    else:
        wire = {"approved": False, "feedback": decision.feedback}
    if decision.reviewer:
        wire["reviewer"] = decision.reviewer
    return wire


def _check_arguments(request: ReviewRequest, merged: dict[str, Any]) -> None:
    schema = request.argument_schema
    if schema is None:  # a request recorded before schemas were: the agent validates the edit itself
        return
    problems = _schema_problems(schema, merged)
    if problems:
        raise _refuse(f"the edit does not fit the arguments of {request.tool or 'the tool'}: {'; '.join(problems)}",
                      f"{request.tool or 'the tool'} takes {_summary(schema)} (an edit names only the arguments "
                      "it changes)")


def _check_answer(request: ReviewRequest, value: Any) -> None:
    schema = request.response_schema
    if schema is None:
        if not isinstance(value, str):
            raise _refuse(f"{_describe(request)} expects text, got {_clip(value)}", _answer_shape(request))
        return
    problems = _schema_problems(schema, value)
    if problems:
        raise _refuse(f"the answer to {_describe(request)} does not fit its schema: {'; '.join(problems)}",
                      _answer_shape(request))


def _schema_problems(schema: dict[str, Any], value: Any) -> list[str]:
    """Up to five readable schema errors (``amount: 'ten' is not of type 'integer'``), most specific first."""
    # imported here: only answering or reading a review needs it (an agent's cold start does not)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        validator = Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(value), key=lambda e: (list(e.absolute_path), e.message))
    except SchemaError as exc:  # a schema we recorded is always valid; one that is not cannot check anything
        return [f"the recorded schema is not valid JSON schema ({exc.message})"]
    problems = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.absolute_path)
        problems.append(f"{where}: {error.message}" if where else error.message)
    return problems


def _summary(schema: dict[str, Any]) -> str:
    """``to (string, required), amount (integer)``: what the arguments object takes."""
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        return "no arguments" if schema.get("type") == "object" else json.dumps(schema)
    required = set(schema.get("required") or [])
    parts = []
    for name, spec in properties.items():
        kind = _type_text(spec if isinstance(spec, dict) else {})
        flags = [kind] if kind else []
        if name in required:
            flags.append("required")
        parts.append(f"{name} ({', '.join(flags)})" if flags else name)
    return ", ".join(parts)


def _type_text(spec: dict[str, Any]) -> str:
    if "type" in spec:
        kind = spec["type"]
        return " | ".join(kind) if isinstance(kind, list) else str(kind)
    if "enum" in spec:
        return " | ".join(json.dumps(v) for v in spec["enum"])
    if "anyOf" in spec:
        return " | ".join(t for t in (_type_text(s) for s in spec["anyOf"] if isinstance(s, dict)) if t)
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    return ""


def _answer_shape(request: ReviewRequest) -> str:
    if request.response_schema is None:
        return "the answer is text, sent as a JSON string such as '\"yes, go ahead\"'"
    return "the answer is JSON matching this schema: " + json.dumps(_without_titles(request.response_schema),
                                                                   separators=(",", ":"))


def _without_titles(schema: Any) -> Any:
    """A schema without pydantic's ``title`` noise (shown to people, never used to validate)."""
    if isinstance(schema, dict):
        return {k: _without_titles(v) for k, v in schema.items()
                if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [_without_titles(v) for v in schema]
    return schema


def _edit_example(request: ReviewRequest) -> str | None:
    """A one-field edit of the proposed arguments, e.g. ``{"amount": 100}``, to show the shape."""
    for key, value in (request.arguments or {}).items():
        if isinstance(value, (str, int, float, bool)) and len(json.dumps(value)) <= 40:
            return json.dumps({key: value}, ensure_ascii=False)
    return None


def _describe(request: ReviewRequest) -> str:
    if request.kind == "tool_approval":
        return f"the review of {request.tool}" if request.tool else "the tool review"
    if request.kind == "budget":
        return "the budget review"
    return "the question"


def _verb(decision: Decision) -> str:
    return "an approval" if isinstance(decision, Approve) else "a rejection"


def _value(value: Any, missing: object) -> str:
    if value is missing:
        return "(unset)"
    return json.dumps(value, ensure_ascii=False, default=str)


def _clip(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
