"""Histories made comparable across two executions of the same program (a sync handler and its
async twin): what only says *when* or *which execution* is dropped or renamed, everything the
journal decided is kept: event types, order, ids, names, parents, payloads, errors, retry details."""

from __future__ import annotations

import json
from typing import Any

_WHEN = ("Timestamp", "RequestId")
_WHERE = ("StackTrace",)  # frames differ between a sync body and an awaited one; type and message stay


def comparable(history: list[dict[str, Any]], *, any_order: bool = False) -> list[dict[str, Any]]:
    """``history`` with timestamps, request ids and stack traces dropped (also inside JSON
    payloads, where a batch keeps its branches' errors), and execution, callback and
    invoked-execution ids replaced by their order of appearance. ``any_order``: concurrent
    branches interleave as they please (threads one way, tasks another), so the events are
    compared as a set: sorted, without their EventId."""
    names: dict[str, str] = {}
    for event in history:
        if str(event.get("EventType", "")).startswith("Execution"):
            names.setdefault(str(event.get("Id")), f"<execution-{len(names) + 1}>")
        callback = (event.get("CallbackStartedDetails") or {}).get("CallbackId")
        if callback:
            names.setdefault(callback, f"<callback-{len(names) + 1}>")
        invoked = (event.get("ChainedInvokeStartedDetails") or {}).get("DurableExecutionArn")
        if invoked:  # the execution a chained invoke started
            names.setdefault(invoked, f"<invoked-{len(names) + 1}>")

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()
                    if not k.endswith(_WHEN) and k not in _WHERE}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            for raw, label in names.items():
                value = value.replace(raw, label)
            if value.startswith("{") and "StackTrace" in value:
                try:
                    return json.dumps(clean(json.loads(value)), sort_keys=True)
                except ValueError:
                    return value
        return value

    events = [clean(event) for event in history]
    if any_order:
        events = sorted(({k: v for k, v in e.items() if k != "EventId"} for e in events),
                        key=lambda e: json.dumps(e, sort_keys=True))
    return events


def first_difference(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> str | None:
    """A readable account of where two comparable histories part, or None if they are equal."""
    for index, (a, b) in enumerate(zip(left, right, strict=False), start=1):
        if a != b:
            return f"event {index}:\n  sync:  {a}\n  async: {b}"
    if len(left) != len(right):
        return f"{len(left)} events (sync) vs {len(right)} (async)"
    return None
