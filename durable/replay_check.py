"""Replay waiting executions against the code deployed now, with no side effects, and report the
first divergence: a deploy gate (``duragent replay-check`` in CI).

The replay is read-only: completed operations return their stored results as usual, and the check
stops where the code would write anything or run a step body again (new work is fine, that is
what the execution will do next). A different operation at a recorded position is a divergence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .async_context import AsyncDurableContext
from .backend import CheckpointResponse, StateResponse
from .context import DurableContext
from .errors import NonDeterministicExecutionError, ReplayFrontier, SuspendExecution
from .execution import read_input
from .loop import run_coroutine
from .model import OperationUpdate
from .registry import is_async_handler
from .state import ExecutionState


@dataclass
class ReplayCheck:
    execution_id: str
    function: str
    ok: bool
    outcome: str
    """"reaches new work", "suspends", "completes", "diverges" or "raises"."""
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _NoWrites:
    """The service of a read-only replay: nothing may be written."""

    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        raise ReplayFrontier("a checkpoint")

    def get_state(self, arn: str, token: str, marker: str | None) -> StateResponse:
        return StateResponse([], None)


def check_execution(handler: Callable[..., Any], execution_id: str, function: str, arn: str,
                    operations: list[Any]) -> ReplayCheck:
    state = ExecutionState(arn=arn, token="", operations=operations, service=_NoWrites(), now=time.time)
    state.read_only = True
    try:
        if is_async_handler(handler):
            run_coroutine(handler(read_input(state), AsyncDurableContext(state)))
        else:
            handler(read_input(state), DurableContext(state))
    except ReplayFrontier as stop:
        return ReplayCheck(execution_id, function, True, "reaches new work", f"replays, then would {stop.what}")
    except SuspendExecution as stop:
        return ReplayCheck(execution_id, function, True, "suspends", f"replays, then waits: {stop.reason}")
    except NonDeterministicExecutionError as exc:
        return ReplayCheck(execution_id, function, False, "diverges", str(exc))
    except Exception as exc:
        return ReplayCheck(execution_id, function, False, "raises",
                           f"the handler raised while replaying recorded work: {type(exc).__name__}: {exc}")
    finally:
        state.close()
    return ReplayCheck(execution_id, function, True, "completes", "replays to the end from history")


def replay_check(runtime: Any, execution_ids: list[str] | None = None) -> list[ReplayCheck]:
    """Check every RUNNING execution of a LocalRuntime (or the ones named) against current code."""
    from .local.service import local_arn

    if execution_ids is None:
        execution_ids = [row["id"] for row in runtime.list(status="RUNNING", limit=100_000)]
    results: list[ReplayCheck] = []
    for execution_id in execution_ids:
        row = runtime.service.execution(execution_id)
        try:
            handler = runtime._handler(row["function"], row["target"])
        except Exception as exc:  # the code is gone: that is a divergence too
            results.append(ReplayCheck(execution_id, row["function"], False, "raises",
                                       f"cannot load the handler: {exc}"))
            continue
        results.append(check_execution(handler, execution_id, row["function"],
                                       local_arn(row["function"], execution_id), runtime.operations(execution_id)))
    return results
