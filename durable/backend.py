"""The two-method service every backend implements (the local SQLite service, AWS Lambda).

The core never knows which one it talks to: that is what lets one handler run unchanged on a
laptop and on Lambda.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .model import Operation, OperationUpdate


@dataclass
class CheckpointResponse:
    token: str | None
    """None: checkpointing is over (the execution completed, or the token was revoked)."""
    operations: list[Operation] = field(default_factory=list)
    """Operations changed since the token was issued, this batch's included."""
    next_marker: str | None = None


@dataclass
class StateResponse:
    operations: list[Operation]
    next_marker: str | None = None


class DurableService(Protocol):
    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse: ...

    def get_state(self, arn: str, token: str, marker: str | None) -> StateResponse: ...


@dataclass
class InvocationInput:
    """The invocation event (PROTOCOL.md §1), decoded."""

    arn: str
    token: str
    operations: list[Operation]
    next_marker: str | None = None
    updated_ids: list[str] = field(default_factory=list)

    @classmethod
    def from_event(cls, event: dict) -> InvocationInput:  # type: ignore[type-arg]
        state = event.get("InitialExecutionState") or {}
        return cls(arn=event["DurableExecutionArn"], token=event["CheckpointToken"],
                   operations=[Operation.model_validate(o) for o in state.get("Operations") or []],
                   next_marker=state.get("NextMarker") or None,
                   updated_ids=list(event.get("UpdatedOperationIds") or []))
