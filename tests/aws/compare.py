"""Local runtime history vs emulator history, event by event, ids of the execution and
timestamps aside (operation ids are compared: both sides derive them the SDK's way).

The emulator rebuilds history from the checkpoint updates it kept, and loses a few details on
the way (PROTOCOL.md §8). Each such difference is tolerated only under its name in QUIRKS, so a
test can list the quirks it met; anything else is a difference and fails.
"""

from __future__ import annotations

import copy
import re
from typing import Any

QUIRKS: dict[str, str] = {
    "invocation-completed-details": "EMU leaves InvocationCompletedDetails out of history",
    "step-succeeded-retry-details": "EMU leaves RetryDetails out of a StepSucceeded written by SUCCEED",
    "final-step-failed-delay": "EMU writes RetryDetails.NextAttemptDelaySeconds 0 on a final StepFailed (FAIL)",
    "retry-payload-dropped": "EMU drops Result.Payload from the StepSucceeded of a STEP RETRY without error "
                             "(a wait_for_condition poll)",
    "callback-started-timeouts": "EMU leaves Timeout/HeartbeatTimeout out of CallbackStartedDetails",
    "chained-invoke-executed-version": "EMU leaves ExecutedVersion out of ChainedInvokeStartedDetails "
                                       "(it resolves no function versions)",
    "chained-invoke-tenant-id": "EMU leaves TenantId out of ChainedInvokeStartedDetails (it says the service "
                                "does too; the conformance YAML expects it)",
    "unnamed-without-name": "EMU (through boto3) has no Name key on an unnamed operation's events",
    "error-truncated": "EMU marks the Error of ContextFailed and Callback{Failed,TimedOut} events Truncated: true "
                       "although execution data is included (it does not pass IncludeExecutionData on)",
    "crash-no-invocation-completed": "EMU writes no InvocationCompleted for an invocation that ended in a "
                                     "function error (a crash), so every later EventId is one lower",
    "execution-timeout": "ExecutionStarted carries ExecutionTimeout on EMU; the local runtime has no "
                         "execution timeout and leaves it out",
}

MET: dict[str, set[str]] = {}
"""Quirk name -> the requirements that met it in this test session (printed at the end)."""

# Matcher errors (tests/conformance/matcher.py) that a quirk explains, by regex.
_MATCH_ERRORS: list[tuple[str, re.Pattern[str]]] = [
    ("invocation-completed-details", re.compile(r"\(InvocationCompleted\)\.InvocationCompletedDetails: missing key$")),
    ("step-succeeded-retry-details", re.compile(r"\(StepSucceeded\)\.StepSucceededDetails\.RetryDetails: missing key$")),
    ("retry-payload-dropped", re.compile(r"\(StepSucceeded\)\.StepSucceededDetails\.Result\.Payload: missing key$")),
    ("callback-started-timeouts",
     re.compile(r"\(CallbackStarted\)\.CallbackStartedDetails\.(Heartbeat)?Timeout: missing key$")),
    ("chained-invoke-executed-version",
     re.compile(r"\(ChainedInvokeStarted\)\.ChainedInvokeStartedDetails\.ExecutedVersion: missing key$")),
    ("chained-invoke-tenant-id",
     re.compile(r"\(ChainedInvokeStarted\)\.ChainedInvokeStartedDetails\.TenantId: missing key$")),
    ("unnamed-without-name", re.compile(r"\(\w+\)\.Name: missing key$")),
]


def tolerate(errors: list[str]) -> tuple[list[str], set[str]]:
    """Split matcher errors into (real errors, names of the quirks that explain the others)."""
    real: list[str] = []
    met: set[str] = set()
    for error in errors:
        for name, pattern in _MATCH_ERRORS:
            if pattern.search(error):
                met.add(name)
                break
        else:
            real.append(error)
    return real, met


def compare(local: list[dict[str, Any]], emu: list[dict[str, Any]], *, prefix: bool = False,
            random_delays: bool = False, any_order: bool = False) -> tuple[list[str], set[str]]:
    """(differences, quirks met). ``prefix``: the emulator history may stop early (history-only
    requirements); ``random_delays``: retry delays are jittered, so their values may differ;
    ``any_order``: concurrent branches finish in any order, so events are compared sorted."""
    diffs: list[str] = []
    met: set[str] = set()
    local, emu = _normalized(local), _normalized(emu)
    if prefix:
        local = local[:len(emu)]
    if any_order:
        local, emu = sorted(local, key=_order_key), sorted(emu, key=_order_key)
    if len(local) != len(emu):
        diffs.append(f"{len(local)} local events vs {len(emu)} emulator events")
    for index, (ours, theirs) in enumerate(zip(local, emu, strict=False), start=1):
        kind = str(ours.get("EventType"))
        where = f"event {index} ({kind} {ours.get('Name')!r})"
        for key in ("EventType", "SubType", "ParentId"):
            if ours.get(key) != theirs.get(key):
                diffs.append(f"{where}: {key} {ours.get(key)!r} (local) vs {theirs.get(key)!r} (emulator)")
        if ours.get("Name") != theirs.get("Name"):
            diffs.append(f"{where}: Name {ours.get('Name')!r} (local) vs {theirs.get('Name')!r} (emulator)")
        elif ours.get("Name") is None and "Name" in ours and "Name" not in theirs and "Id" in theirs:
            met.add("unnamed-without-name")
        if not kind.startswith("Execution") and ours.get("Id") != theirs.get("Id"):
            diffs.append(f"{where}: Id {ours.get('Id')!r} (local) vs {theirs.get('Id')!r} (emulator)")
        key = f"{kind}Details"
        mine, yours = copy.deepcopy(ours.get(key)), copy.deepcopy(theirs.get(key))
        if kind == "InvocationCompleted" and mine is not None and yours is None:
            met.add("invocation-completed-details")
            continue
        if isinstance(mine, dict) and isinstance(yours, dict):
            _known_losses(kind, mine, yours, met, random_delays)
        diffs.extend(_details(where, mine, yours, kind))
    return diffs, met


def _order_key(event: dict[str, Any]) -> tuple[str, str, str]:
    return (str(event.get("EventType")), str(event.get("Id")), str(event.get("Name")))


def _normalized(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Null members dropped (boto3 drops them) and callback ids, which each service mints its
    own way, replaced by their position wherever they appear (an error message may quote one)."""
    ids: dict[str, str] = {}
    for event in history:
        callback_id = (event.get("CallbackStartedDetails") or {}).get("CallbackId")
        if callback_id:
            ids.setdefault(callback_id, f"<callback-{len(ids) + 1}>")

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            for raw, label in ids.items():
                value = value.replace(raw, label).replace(raw[:12], label)  # or a quoted prefix of it
        return value

    return [{**clean(e), **({"Name": None} if "Name" in e and e["Name"] is None else {})} for e in history]


def _known_losses(kind: str, mine: dict[str, Any], yours: dict[str, Any], met: set[str], random_delays: bool) -> None:
    """Align what a named quirk explains (mutates both sides)."""
    mine_retry, yours_retry = mine.get("RetryDetails"), yours.get("RetryDetails")
    if kind == "StepSucceeded" and mine_retry is not None and yours_retry is None:
        met.add("step-succeeded-retry-details")
        del mine["RetryDetails"]
    if kind == "StepSucceeded" and "Payload" in (mine.get("Result") or {}) and "Payload" not in (yours.get("Result") or {}):
        met.add("retry-payload-dropped")
        del mine["Result"]["Payload"]
    if kind == "StepFailed" and isinstance(mine_retry, dict) and isinstance(yours_retry, dict) and \
            "NextAttemptDelaySeconds" not in mine_retry and yours_retry.get("NextAttemptDelaySeconds") == 0:
        met.add("final-step-failed-delay")
        del yours_retry["NextAttemptDelaySeconds"]
    if random_delays and isinstance(mine_retry, dict) and isinstance(yours_retry, dict):
        mine_retry.pop("NextAttemptDelaySeconds", None)
        yours_retry.pop("NextAttemptDelaySeconds", None)
    if kind == "CallbackStarted":
        for field in ("Timeout", "HeartbeatTimeout"):
            if field in mine and field not in yours:
                met.add("callback-started-timeouts")
                del mine[field]
    if kind == "ChainedInvokeStarted":
        for field, quirk in (("ExecutedVersion", "chained-invoke-executed-version"),
                             ("TenantId", "chained-invoke-tenant-id")):
            if field in mine and field not in yours:
                met.add(quirk)
                del mine[field]
    if kind == "ExecutionStarted" and "ExecutionTimeout" in yours and "ExecutionTimeout" not in mine:
        met.add("execution-timeout")
        del yours["ExecutionTimeout"]
    mine_error, yours_error = mine.get("Error"), yours.get("Error")
    if isinstance(mine_error, dict) and isinstance(yours_error, dict) and \
            mine_error.get("Truncated") is False and yours_error.get("Truncated") is True:
        met.add("error-truncated")
        yours_error["Truncated"] = False


_IGNORED = {"ScheduledEndTimestamp", "CallbackId", "StackTrace", "DurableExecutionArn"}


def _details(where: str, mine: Any, yours: Any, kind: str, path: str = "") -> list[str]:
    if isinstance(mine, dict) and isinstance(yours, dict):
        out: list[str] = []
        if set(mine) != set(yours):
            out.append(f"{where}: details keys{path} {sorted(mine)} (local) vs {sorted(yours)} (emulator)")
        for key in sorted(set(mine) & set(yours)):
            if key not in _IGNORED:
                out.extend(_details(where, mine[key], yours[key], kind, f"{path}.{key}"))
        return out
    if kind == "ExecutionStarted" and path == ".Input.Payload":
        return []  # each side encodes the start input its own way (separators)
    if mine != yours:
        return [f"{where}: details{path} {str(mine)[:160]!r} (local) vs {str(yours)[:160]!r} (emulator)"]
    return []


def without_invocation_completed(expected: list[dict[str, Any]], actual: list[dict[str, Any]]
                                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Both histories with their InvocationCompleted events dropped and EventIds renumbered, for
    the "crash-no-invocation-completed" quirk (expected EventIds shift by the dropped ones)."""
    dropped = sorted(int(e["EventId"]) for e in expected if e.get("EventType") == "InvocationCompleted")
    kept_expected = [{**e, "EventId": int(e["EventId"]) - sum(1 for d in dropped if d < int(e["EventId"]))}
                     for e in expected if e.get("EventType") != "InvocationCompleted"]
    kept_actual = [{**e, "EventId": index} for index, e in
                   enumerate((e for e in actual if e.get("EventType") != "InvocationCompleted"), start=1)]
    return kept_expected, kept_actual
