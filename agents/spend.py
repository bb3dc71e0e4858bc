"""What one agent run spends and which budgets that spend answers to.

A run keeps a ``Ledger`` of its model calls. When it runs another agent (as a tool, see
``Agent.as_tool``), the sub-run's spend comes back with its result (``SubAgentSpend``) and is
booked in the caller's ledger, and the sub-run answers to the caller's budgets as well as its own:
before each of its model calls it checks the caller's ``Budget`` against everything spent under
it (the caller's spend so far plus its own) and asks the caller's reviewer when that is reached.

The budget reviews are durable callbacks like any other; how many were approved travels back with
the sub-run's checkpointed result, so a replayed caller continues from the same count.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from duragent.durable import CallbackTimeoutError, Duration
from duragent.durable.flow import Flow

from .human import decision_flow
from .messages import ModelResponse, SubAgentSpend
from .review import Reject, ReviewError, ReviewRequest
from .usage import Ledger

if TYPE_CHECKING:
    from .agent import Budget, Context

_RECORD_EXCLUDE = {"content", "stop_reason", "prompt_hash", "tools_hash", "request_hash", "opening"}


REUSED = "reused"
"""Marks the record of a call the sub-run replayed from its journal instead of paying for it."""


def spend_record(response: ModelResponse) -> dict[str, Any]:
    """A model call reduced to what prices it (model id, usage and any pricing flags)."""
    return response.model_dump(mode="json", exclude=_RECORD_EXCLUDE & set(type(response).model_fields))


def response_of(record: dict[str, Any]) -> ModelResponse:
    """The priceable stand-in of a recorded model call (no content)."""
    fields = {k: v for k, v in record.items() if k != REUSED}
    return ModelResponse.model_validate({**fields, "content": [], "stop_reason": "end_turn"})


_MARKS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_MARKS_LOCK = threading.Lock()


def invocation_mark(ctx: Context) -> str:
    """A token unique to the invocation ``ctx`` belongs to (not journaled as identity, only as data)."""
    state = ctx.state
    with _MARKS_LOCK:
        mark = _MARKS.get(state)
        if mark is None:
            mark = _MARKS[state] = uuid.uuid4().hex
        return mark


@dataclass
class BudgetScope:
    """One budget a run answers to: its own, or one of its caller's (``inherited``)."""

    budget: Budget
    owner: str
    """The agent whose budget it is (named in the review)."""
    base_usd: float = 0.0
    """Spent under this budget before this run began (by its owner and earlier sub-runs)."""
    base_tokens: int = 0
    checks: int = 0
    """Budget reviews approved so far: the budget allows ``checks + 1`` times its amounts."""
    inherited: bool = False

    def spent(self, ledger: Ledger) -> tuple[float, int]:
        return self.base_usd + ledger.total_cost, self.base_tokens + ledger.total_usage.total_tokens

    def reached(self, ledger: Ledger) -> bool:
        usd, tokens = self.spent(ledger)
        allowed = self.checks + 1
        return (self.budget.max_usd is not None and usd >= self.budget.max_usd * allowed) or \
            (self.budget.max_tokens is not None and tokens >= self.budget.max_tokens * allowed)


@dataclass
class RunSpend:
    """A run's ledger, the records it can hand back to a caller, and its budgets."""

    ledger: Ledger
    scopes: list[BudgetScope] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def record(self, response: ModelResponse, *, replayed: bool) -> None:
        self.ledger.record(response, replayed=replayed)
        self.records.append({**spend_record(response), REUSED: True} if replayed else spend_record(response))

    def absorb(self, spend: SubAgentSpend, *, replayed: bool, inherited: Sequence[BudgetScope]) -> None:
        """Book a sub-run's spend here (all of it reused when the sub-run's result was replayed)
        and continue the budget counts it reached."""
        for record in spend.calls:
            reused = replayed or bool(record.get(REUSED))
            self.ledger.record(response_of(record), replayed=reused)
            self.records.append({**record, REUSED: True} if reused else record)
        for scope, checks in zip(inherited, spend.budget_checks, strict=False):
            scope.checks = max(scope.checks, checks)

    def for_sub_run(self) -> list[BudgetScope]:
        """The budgets a sub-run started now answers to: every one of this run's, with this run's
        spend so far as their base."""
        usd, tokens = self.ledger.total_cost, self.ledger.total_usage.total_tokens
        return [replace(scope, base_usd=scope.base_usd + usd, base_tokens=scope.base_tokens + tokens,
                        inherited=True) for scope in self.scopes]

    def handed_back(self, ctx: Context) -> SubAgentSpend:
        """What a sub-run reports to its caller."""
        return SubAgentSpend(calls=list(self.records), budget_checks=[s.checks for s in self.scopes if s.inherited],
                             invocation=invocation_mark(ctx))


def check_budgets(ctx: Context, spend: RunSpend, runner: str, timeout: Duration | None) -> Flow[None]:
    """Before a model call: for each budget reached, ask its reviewer (the run suspends) whether
    to allow another budget's worth; a refusal, no answer in time or no usable answer stops the
    run with BudgetExceededError."""
    from .agent import BudgetExceededError

    for scope in spend.scopes:
        while scope.reached(spend.ledger):
            scope.checks += 1
            usd, tokens = scope.spent(spend.ledger)
            spent = f"${usd:.4f}, {tokens} tokens"
            by = f" (spent by {runner})" if scope.inherited and runner != scope.owner else ""
            request = ReviewRequest(kind="budget", title=f"{scope.owner} reached its budget ({spent}){by}. Continue?",
                                    question=f"Spent {spent}; approve to allow another budget's worth.")
            name = f"{scope.owner}: budget {scope.checks}" + (f" ({runner})" if by else "")
            try:
                decision = yield from decision_flow(ctx, request, name=name, timeout=timeout)
            except CallbackTimeoutError as exc:  # nobody answered: as with approvals, that is a no
                raise BudgetExceededError(f"{scope.owner} stopped at its budget ({spent}); no reviewer answered "
                                          "before the budget review timed out") from exc
            except ReviewError as exc:  # answers that never fit: no usable yes either
                raise BudgetExceededError(f"{scope.owner} stopped at its budget ({spent}); no usable answer to "
                                          f"the budget review arrived ({exc.problem})") from exc
            if isinstance(decision, Reject):
                raise BudgetExceededError(f"{scope.owner} stopped at its budget ({spent}); the reviewer declined "
                                          f"to continue: {decision.feedback}")


__all__ = ["BudgetScope", "RunSpend", "check_budgets", "response_of", "spend_record"]
