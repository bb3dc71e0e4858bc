"""Async handlers meet the AWS conformance requirements exactly as sync handlers do: each async
twin (async_twins.py) is judged by its requirement's expected history and result, and its whole
history is the sync original's, event for event (timestamps and generated ids aside)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.journals import comparable, first_difference

from .async_twins import CONCURRENT, TWINS
from .driver import _load_handlers, run
from .matcher import Bindings, check_result, match_history
from .requirements import SUITES, load_requirement

_load_handlers()


def test_every_suite_has_async_twins() -> None:
    covered = {SUITES[int(req_id.split("-")[0])] for req_id in TWINS}
    assert covered >= set(SUITES.values()) - {"plugin"}, sorted(covered)


@pytest.mark.parametrize("req_id", sorted(TWINS, key=lambda r: tuple(int(p) for p in r.split("-"))))
def test_async_twin_meets_the_requirement_with_the_sync_history(req_id: str, tmp_path: Path) -> None:
    req = load_requirement(req_id)
    bindings = Bindings()
    bindings.resolve_variables(req.variables)
    (tmp_path / "sync").mkdir()
    (tmp_path / "async").mkdir()
    sync = run(req, bindings.copy(), tmp_path / "sync")
    outcome = run(req, bindings, tmp_path / "async", handler=TWINS[req_id])

    errors = match_history(req.expected_history, outcome.history, bindings)
    if req.expected_result is not None and not errors:
        errors += check_result(req.expected_result, outcome.status, outcome.result, bindings)
    assert not errors, f"{req_id}: {req.description}\n" + "\n".join(errors)
    assert (outcome.status, outcome.result) == (sync.status, sync.result)
    any_order = req_id in CONCURRENT
    difference = first_difference(comparable(sync.history, any_order=any_order),
                                  comparable(outcome.history, any_order=any_order))
    assert difference is None, f"{req_id}: the async history departs from the sync one at {difference}"
