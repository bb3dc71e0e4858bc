"""Fuzzed checkpoint batches against the local service: whatever a client sends, the service
either applies the whole batch or refuses it with a CheckpointError, and a refused batch leaves
the store exactly as it was (no half-applied batch, no crash)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duragent.durable import LocalRuntime, VirtualClock
from duragent.durable.errors import CheckpointError
from duragent.durable.journal import operation_id
from duragent.durable.model import (
    CallbackOptions,
    ContextOptions,
    ErrorObject,
    OperationAction,
    OperationType,
    OperationUpdate,
    StepOptions,
    WaitOptions,
)

IDS = [operation_id(i, None) for i in range(1, 5)]
names = st.sampled_from([None, "a", "b"])
updates = st.builds(
    lambda id_, parent, name, type_, sub, action, payload, error, opts: OperationUpdate(
        Id=id_, ParentId=parent, Name=name, Type=type_, SubType=sub, Action=action, Payload=payload,
        Error=ErrorObject(ErrorType="E", ErrorMessage="m") if error else None, **opts),
    st.sampled_from(IDS), st.sampled_from([None, *IDS]), names, st.sampled_from(list(OperationType)),
    st.sampled_from([None, "Step", "Wait", "RunInChildContext"]), st.sampled_from(list(OperationAction)),
    st.sampled_from([None, '"x"', "1"]), st.booleans(),
    st.sampled_from([{}, {"StepOptions": StepOptions(NextAttemptDelaySeconds=1)},
                     {"WaitOptions": WaitOptions(WaitSeconds=2)}, {"CallbackOptions": CallbackOptions()},
                     {"ContextOptions": ContextOptions(ReplayChildren=False)}]),
)
_ids = itertools.count()


def _snapshot(rt: LocalRuntime, execution_id: str) -> tuple[Any, ...]:
    return (tuple(op.model_dump_json() for op in rt.operations(execution_id)), tuple(map(str, rt.history(execution_id))))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(updates, min_size=1, max_size=4), min_size=1, max_size=4))
def test_any_batch_is_applied_whole_or_refused_cleanly(tmp_path: Path, batches: list[list[OperationUpdate]]) -> None:
    rt = LocalRuntime(tmp_path / f"fuzz-{next(_ids)}.db", clock=VirtualClock(), durability="process")
    execution_id = rt.start(lambda event, ctx: None, {})
    invocation = rt.service.claim(rt.owner, 30)
    assert invocation is not None
    token: str | None = invocation.input.token
    arn = invocation.input.arn
    for batch in batches:
        if token is None:
            break
        before = _snapshot(rt, execution_id)
        try:
            response = rt.service.checkpoint(arn, token, batch)
        except CheckpointError:
            assert _snapshot(rt, execution_id) == before  # refused: nothing written
            continue
        token = response.token
        assert len(rt.history(execution_id)) >= len(before[1])
    events = rt.history(execution_id)
    assert [e["EventId"] for e in events] == list(range(1, len(events) + 1))  # history stays well formed
    rt.close()
