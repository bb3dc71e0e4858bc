"""The AWS durable-execution conformance requirements, run against the local engine.

One pytest test per requirement, its id in the test id (``[1-11]``). A requirement may be listed
in NOT_IMPLEMENTED only with a reason; each such entry is a known gap.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .driver import HANDLERS, _load_handlers, run
from .matcher import Bindings, check_logs, check_result, match_history
from .requirements import all_requirement_ids, load_requirement

SUITES = ("step", "wait", "child", "callback", "invoke", "wait_for_condition", "wait_for_callback", "parallel",
          "map", "plugin")

NOT_IMPLEMENTED: dict[str, str] = {}

_load_handlers()


def _ids() -> list[str]:
    ids: list[str] = []
    for suite in SUITES:
        ids.extend(all_requirement_ids(suite))
    return ids


@pytest.mark.parametrize("req_id", _ids())
def test_requirement(req_id: str, tmp_path: Path) -> None:
    if req_id in NOT_IMPLEMENTED:
        pytest.xfail(NOT_IMPLEMENTED[req_id])
    assert req_id in HANDLERS, f"no handler written for requirement {req_id}"
    req = load_requirement(req_id)
    bindings = Bindings()
    bindings.resolve_variables(req.variables)
    outcome = run(req, bindings, tmp_path)
    errors = match_history(req.expected_history, outcome.history, bindings)
    if req.expected_result is not None and not errors:
        errors += check_result(req.expected_result, outcome.status, outcome.result, bindings)
    if req.expected_logs and not errors:
        errors += check_logs(req.expected_logs, outcome.logs, bindings)
    if errors:
        shown = "\n".join(
            f"{e['EventId']:>3} {e['EventType']:<22} {e.get('Name')!s:<28} "
            f"{ {k: v for k, v in e.items() if k.endswith('Details')} }"[:300]
            for e in outcome.history)
        pytest.fail(f"{req_id}: {req.description}\n" + "\n".join(errors) + f"\n--- history ---\n{shown}"
                    + f"\nstatus={outcome.status} result={outcome.result!r}")
