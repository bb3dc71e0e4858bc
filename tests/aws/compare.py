"""Local runtime history vs emulator history, event by event (ids of the execution and
timestamps aside). Differences the emulator is known to introduce (PROTOCOL.md §8) are
tolerated by name, so each test can say which quirks it met."""

from __future__ import annotations

from typing import Any

QUIRKS = {
    "invocation-completed-details": "EMU leaves InvocationCompletedDetails out of history",
    "step-succeeded-retry-details": "EMU leaves RetryDetails out of a plain StepSucceeded",
}


def compare(local: list[dict[str, Any]], emu: list[dict[str, Any]], *, prefix: bool = False
            ) -> tuple[list[str], set[str]]:
    """(differences, quirks met). ``prefix``: the emulator history may stop early."""
    diffs: list[str] = []
    quirks: set[str] = set()
    if prefix:
        local = local[:len(emu)]
    if len(local) != len(emu):
        diffs.append(f"{len(local)} local events vs {len(emu)} emulator events")
    for index, (ours, theirs) in enumerate(zip(local, emu, strict=False), start=1):
        where = f"event {index} ({ours.get('EventType')})"
        for key in ("EventType", "SubType", "Name", "ParentId"):
            if ours.get(key) != theirs.get(key):
                diffs.append(f"{where}: {key} {ours.get(key)!r} (local) vs {theirs.get(key)!r} (emulator)")
        if not str(ours.get("EventType", "")).startswith("Execution") and ours.get("Id") != theirs.get("Id"):
            diffs.append(f"{where}: Id {ours.get('Id')!r} vs {theirs.get('Id')!r}")
        detail_key = f"{ours.get('EventType')}Details"
        mine, yours = ours.get(detail_key), theirs.get(detail_key)
        if ours.get("EventType") == "InvocationCompleted" and mine is not None and yours is None:
            quirks.add("invocation-completed-details")
            continue
        if ours.get("EventType") == "StepSucceeded" and isinstance(mine, dict) and isinstance(yours, dict) \
                and "RetryDetails" in mine and "RetryDetails" not in yours:
            quirks.add("step-succeeded-retry-details")
            mine = {k: v for k, v in mine.items() if k != "RetryDetails"}
        diffs.extend(_details(where, mine, yours, ours.get("EventType", "")))
    return diffs, quirks


_IGNORED = {"ScheduledEndTimestamp", "CallbackId", "StackTrace", "DurableExecutionArn", "ExecutionTimeout"}


def _details(where: str, mine: Any, yours: Any, event_type: str, path: str = "") -> list[str]:
    if isinstance(mine, dict) and isinstance(yours, dict):
        out: list[str] = []
        if set(mine) != set(yours):
            out.append(f"{where}: details keys{path} {sorted(mine)} (local) vs {sorted(yours)} (emulator)")
        for key in set(mine) & set(yours):
            if key in _IGNORED:
                continue
            out.extend(_details(where, mine[key], yours[key], event_type, f"{path}.{key}"))
        return out
    if event_type == "ExecutionStarted" and path == ".Input.Payload":
        return []  # each side encodes the start input itself
    if mine != yours:
        return [f"{where}: details{path} {str(mine)[:120]!r} (local) vs {str(yours)[:120]!r} (emulator)"]
    return []
