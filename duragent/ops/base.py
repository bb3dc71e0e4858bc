"""The operator API: one interface over a local store and over AWS, for everything a person or a
script does to executions from outside: list them (paged, with totals), read one and its history,
find what waits for an answer, answer it, stop an execution.

The CLI, the console and ``--aws`` are thin shells over it. Reviews are answered through the
review protocol (``duragent.agents.review``): a decision is checked against the request recorded
with the callback (its kind, the tool's argument schema, the question's answer schema) before
anything is sent, so a wrong answer is refused with nothing recorded.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Self

from duragent.agents.review import (
    Answer,
    Approve,
    Decision,
    Reject,
    ReviewError,
    encode_decision,
    read_decision,
)
from duragent.durable.model import ErrorObject, Operation

if TYPE_CHECKING:
    from duragent.agents.events import AgentEventStream

from . import values
from .types import Answered, Execution, ExecutionSummary, Page, PendingCallback


class Operator(ABC):
    """Operate durable executions of one backend (``backend``: "local" or "aws")."""

    backend: str = ""

    # -- reading -----------------------------------------------------------------------------
    @abstractmethod
    def list_executions(self, *, status: str | None = None, limit: int | str = 100,
                        cursor: str | None = None) -> Page[ExecutionSummary]:
        """Executions, newest first: ``limit`` of them from ``cursor`` (a page's ``next_cursor``)."""

    @abstractmethod
    def get(self, execution_id: str) -> Execution:
        """One execution (ExecutionNotFoundError, or a backend error, for an unknown id)."""

    @abstractmethod
    def history(self, execution_id: str) -> list[dict[str, Any]]:
        """Its events in the AWS ``GetDurableExecutionHistory`` shape."""

    def operations(self, execution_id: str) -> list[Operation] | None:
        """Its operations (the journal), where the backend lets an outsider read them; else None."""
        return None

    @abstractmethod
    def pending(self, *, limit: int | str = 100, cursor: str | None = None,
                execution_id: str | None = None) -> Page[PendingCallback]:
        """Callbacks awaiting an answer (reviews, questions and plain callbacks), oldest first,
        with a total: nothing is left out silently."""

    @abstractmethod
    def pending_callback(self, callback_id: str) -> PendingCallback:
        """Any callback awaiting an answer, by its id, however many others wait
        (CallbackNotFoundError when it is unknown or no longer waits)."""

    # -- answering ---------------------------------------------------------------------------
    def approve(self, callback_id: str, *, edits: dict[str, Any] | None = None,
                reviewer: str | None = None) -> Answered:
        """Approve a tool or budget review; ``edits`` (a tool review only) changes only the
        arguments it names, and must fit the tool's schema once merged."""
        if edits is not None:
            values.check_value(edits, "the edit")
        return self._decide(callback_id, "approve", Approve(edits=edits, reviewer=self._reviewer(reviewer)))

    def reject(self, callback_id: str, feedback: str, *, reviewer: str | None = None) -> Answered:
        """Reject a tool or budget review; the model reads ``feedback`` (it must not be empty)."""
        values.short_text(feedback, "the feedback", limit=20_000)
        return self._decide(callback_id, "reject", Reject(feedback=feedback, reviewer=self._reviewer(reviewer)))

    def answer(self, callback_id: str, value: Any) -> Answered:
        """Answer a question (``value`` must fit its answer schema) or a plain callback (any JSON)."""
        values.check_value(value, "the answer")
        item = self.pending_callback(callback_id)
        if item.request is None:
            text = values.to_json(value, "the answer")
        else:
            text = self._encode(item, Answer(value=value))
        execution_id = self.send_callback_success(callback_id, text)
        return Answered("answer", callback_id, execution_id, json.loads(text))

    def succeed_callback(self, callback_id: str, result: str | None) -> Answered:
        """Complete a callback with ``result``, JSON text stored verbatim. For a review the text
        must still be an answer the agent can read (what approve / reject / answer send): one it
        could not use is refused here, with nothing recorded."""
        value = None if result is None else values.parse_json(result, "--result", "'{\"approved\": true}'")
        item = self.pending_callback(callback_id)
        if item.request is not None:
            read_decision(item.request, value)
        execution_id = self.send_callback_success(callback_id, result)
        return Answered("succeed", callback_id, execution_id, value)

    def fail_callback(self, callback_id: str, error: ErrorObject) -> Answered:
        """Fail a callback: the waiting execution sees a CallbackError built from ``error``."""
        for what, text in (("--error-type", error.ErrorType), ("--error-message", error.ErrorMessage),
                           ("--error-data", error.ErrorData)):
            if text is not None:
                values.short_text(text, what, limit=20_000)
        execution_id = self.send_callback_failure(callback_id, error)
        return Answered("fail", callback_id, execution_id)

    def heartbeat_callback(self, callback_id: str) -> Answered:
        return Answered("heartbeat", callback_id, self.send_callback_heartbeat(callback_id))

    @abstractmethod
    def stop(self, execution_id: str) -> Execution:
        """Stop a running execution for good; returns it as it is now."""

    # -- the backend's raw sends (no checks beyond the backend's own) -----------------------------
    @abstractmethod
    def send_callback_success(self, callback_id: str, result: str | None) -> str:
        """Send ``result`` as the callback's answer; returns the execution id."""

    @abstractmethod
    def send_callback_failure(self, callback_id: str, error: ErrorObject) -> str: ...

    @abstractmethod
    def send_callback_heartbeat(self, callback_id: str) -> str: ...

    def events(self, execution_id: str, *, after: int = 0, live: bool = True) -> AgentEventStream:
        """Follow an execution as it runs: its durable events after the cursor ``after``, each once,
        and its live events (text as it is generated) while ``live`` (``duragent.agents.events``)."""
        raise values.InputError(f"following an execution is not available on the {self.backend or 'this'} "
                                "backend; follow executions of a local store")

    def send_message(self, execution_id: str, text: str | None = None, *, end: bool = False) -> str:
        """Hand a chat session (``agents.conversation``) its next message, or end it (``end``).
        Returns the callback id that took it; SessionError when the session is not waiting for one."""
        raise values.InputError(f"chat sessions are not available on the {self.backend or 'this'} backend")

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release what the operator holds (a store connection)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------
    def _decide(self, callback_id: str, action: str, decision: Decision) -> Answered:
        item = self.pending_callback(callback_id)
        if item.request is None:
            raise ReviewError(f"callback {callback_id} is not a review, so it cannot be {action}d; answer it with "
                              "`duragent callback succeed CALLBACK_ID --result JSON` (or `duragent answer`)")
        text = self._encode(item, decision)
        execution_id = self.send_callback_success(callback_id, text)
        return Answered(action, callback_id, execution_id, json.loads(text))

    @staticmethod
    def _encode(item: PendingCallback, decision: Decision) -> str:
        assert item.request is not None
        return encode_decision(item.request, decision)

    @staticmethod
    def _reviewer(reviewer: str | None) -> str | None:
        if reviewer is None:
            return None
        return values.short_text(reviewer, "the reviewer's name").strip() or None
