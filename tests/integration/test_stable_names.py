"""Recorded names never depend on a module path: a store written before the single import root
(``tests/fixtures/legacy_names.sqlite``, see ``tests/fixtures/legacy_job.py``) replays today, and
its replay reads the same as a journal written entirely by today's code."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from duragent import LocalRuntime, StepError, ToolError, VirtualClock
from duragent.durable.errors import UsageError, error_class, recorded_error_type
from duragent.durable.operations._common import type_name
from tests.fixtures.legacy_job import legacy_job

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_names.sqlite"


def _finish(rt: LocalRuntime, execution_id: str) -> Any:
    [callback_id] = [cb for eid, _, cb in rt.service.pending_callbacks() if eid == execution_id]
    rt.send_callback_success(callback_id, '"go"')
    rt.run_until_idle()
    return rt.get(execution_id)


def _shape(history: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["EventType"], e.get("Name")) for e in history if not e["EventType"].startswith("Execution")]


def test_a_store_written_before_the_move_replays_after_it(tmp_path: Path) -> None:
    store = tmp_path / "legacy.db"
    shutil.copy(FIXTURE, store)  # never touch the fixture itself
    old = LocalRuntime(store, clock=VirtualClock())
    old.register(legacy_job)
    failed = [e for e in old.history("legacy-1") if e["EventType"] == "StepFailed"]
    assert [e["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] for e in failed] == [
        "tools.errors.ToolError", "durable.errors.UsageError"]  # as the old code recorded them
    resumed = _finish(old, "legacy-1")
    assert resumed.status == "SUCCEEDED", resumed.error

    new = LocalRuntime(tmp_path / "new.db", clock=VirtualClock())
    new.start(legacy_job, {}, execution_id="new-1")
    new.run_until_idle()
    fresh = _finish(new, "new-1")
    assert fresh.status == "SUCCEEDED", fresh.error

    # the ToolError recorded under its old module path is still a ToolError: the model saw (and
    # the rebuilt conversation holds) the bare message, not "ToolError: ..."
    assert resumed.result == fresh.result == {
        "output": "the tool said: no such order 7", "tool_texts": ["no such order 7"],
        "step_error": {"message": "refused on purpose"}, "answer": "go"}
    assert _shape(old.history("legacy-1")) == _shape(new.history("new-1"))
    new_failed = [e for e in new.history("new-1") if e["EventType"] == "StepFailed"]
    assert [e["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] for e in new_failed] == [
        "duragent.ToolError", "duragent.UsageError"]


def test_our_errors_record_stable_names_and_read_legacy_ones() -> None:
    assert type_name(StepError("x")) == "duragent.StepError"
    assert type_name(ToolError("x")) == "duragent.ToolError"
    assert type_name(ValueError("x")) == "ValueError"
    assert recorded_error_type("durable.errors.StepInterruptedError") == "duragent.StepInterruptedError"
    assert recorded_error_type("agents.errors.ModelRateLimitError") == "duragent.ModelRateLimitError"
    assert error_class("tools.errors.ToolValidationError") is error_class("duragent.ToolValidationError")
    assert error_class("duragent.UsageError") is UsageError
    assert error_class("mymodule.Custom") is None

    class Custom(ToolError):
        pass

    assert Custom.recorded_name == f"{__name__}.test_our_errors_record_stable_names_and_read_legacy_ones.<locals>.Custom"


def test_every_error_of_ours_has_a_unique_stable_name() -> None:
    import duragent  # noqa: F401  - registers every package's errors
    from duragent.durable import errors

    names = list(errors._OURS)
    assert len(names) == len(set(names))
    assert all(name.startswith("duragent.") and "." not in name.removeprefix("duragent.") for name in names)
    assert {"duragent.StepError", "duragent.ToolError", "duragent.ModelRateLimitError",
            "duragent.BudgetExceededError", "duragent.PromptError"} <= set(names)
