"""Conformance handlers: the wait_for_condition suite (6-x)."""

from __future__ import annotations

import json
from typing import Any

from duragent.durable import (
    DurableContext,
    StepContext,
    WaitDecision,
    WaitForConditionConfig,
    WaitForConditionError,
    poll_until,
)

from ..driver import requirement


def _increment(state: int, step_ctx: StepContext) -> int:
    return state + 1


def _at_least(threshold: int, delay: float = 1) -> Any:
    """Poll every ``delay`` seconds until the integer state reaches ``threshold``."""
    return poll_until(lambda state: state >= threshold, delay=delay)


@requirement("6-1")
def wfc_basic(event: int, ctx: DurableContext) -> int:
    """A counter from 0, one increment per poll, until it reaches the input (3)."""
    return ctx.wait_for_condition(_increment, config=WaitForConditionConfig(
        initial_state=0, wait_strategy=_at_least(event)))


@requirement("6-2")
def wfc_immediate(event: int, ctx: DurableContext) -> int:
    """Initial state 5 already satisfies ``state >= 5``: one poll, no suspension."""

    def unchanged(state: int, step_ctx: StepContext) -> int:
        return state

    return ctx.wait_for_condition(unchanged, config=WaitForConditionConfig(
        initial_state=5, wait_strategy=_at_least(5)))


@requirement("6-3")
def wfc_named(event: int, ctx: DurableContext) -> int:
    """Named ``poll-status``: the name is on every poll's events."""
    return ctx.wait_for_condition(_increment, name="poll-status", config=WaitForConditionConfig(
        initial_state=0, wait_strategy=_at_least(event)))


@requirement("6-4")
def wfc_initial_state(event: int, ctx: DurableContext) -> int:
    """Initial state 5, threaded through the polls up to the input (8)."""
    return ctx.wait_for_condition(_increment, config=WaitForConditionConfig(
        initial_state=5, wait_strategy=_at_least(event)))


@requirement("6-5")
def wfc_fixed_delay(event: int, ctx: DurableContext) -> int:
    """A hand-written fixed 2 s strategy (no backoff, no jitter)."""

    def every_two_seconds(state: int, attempt: int) -> WaitDecision:
        return WaitDecision.stop() if state >= event else WaitDecision.continue_after(2)

    return ctx.wait_for_condition(_increment, config=WaitForConditionConfig(
        initial_state=0, wait_strategy=every_two_seconds))


@requirement("6-6")
def wfc_max_attempts(event: int, ctx: DurableContext) -> int:
    """Never satisfied; the strategy gives up after 3 attempts and the execution fails."""
    return ctx.wait_for_condition(_increment, config=WaitForConditionConfig(
        initial_state=event or 0, wait_strategy=poll_until(lambda state: False, delay=1, max_attempts=3)))


def _raising_check(state: Any, step_ctx: StepContext) -> Any:
    raise RuntimeError("condition check failed")


@requirement("6-7")
def wfc_check_raises(event: Any, ctx: DurableContext) -> Any:
    """The check raises on its first poll: no internal retry, the execution fails."""
    return ctx.wait_for_condition(_raising_check, config=WaitForConditionConfig(
        initial_state=0, wait_strategy=_at_least(1)))


@requirement("6-8")
def wfc_check_raises_caught(event: Any, ctx: DurableContext) -> str:
    """The check raises; the handler catches the failure and recovers."""
    try:
        ctx.wait_for_condition(_raising_check, config=WaitForConditionConfig(
            initial_state=0, wait_strategy=_at_least(1)))
    except WaitForConditionError:
        return "recovered"
    return "not reached"


@requirement("6-9")
def wfc_object_state(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """State ``{status, attempts}``: DONE once attempts reaches 2."""

    def check(state: dict[str, Any], step_ctx: StepContext) -> dict[str, Any]:
        attempts = state["attempts"] + 1
        return {"status": "DONE" if attempts >= 2 else "PENDING", "attempts": attempts}

    return ctx.wait_for_condition(check, config=WaitForConditionConfig(
        initial_state={"status": "PENDING", "attempts": 0},
        wait_strategy=poll_until(lambda state: state["status"] == "DONE", delay=1)))


@requirement("6-10")
def wfc_null_state(event: Any, ctx: DurableContext) -> None:
    """The check returns None and the strategy stops at once."""

    def check(state: Any, step_ctx: StepContext) -> None:
        return None

    return ctx.wait_for_condition(check, config=WaitForConditionConfig(
        wait_strategy=lambda state, attempt: WaitDecision.stop()))


class _EncodedStringSerdes:
    """A string state stored as ``{"encoded": <string>}`` (6-11)."""

    def serialize(self, value: str | None) -> str | None:
        return json.dumps({"encoded": value})

    def deserialize(self, data: str | None) -> str | None:
        return None if data is None else json.loads(data)["encoded"]


@requirement("6-11")
def wfc_custom_serdes(event: Any, ctx: DurableContext) -> str:
    """The string state survives the suspension through a custom serdes: "" -> "x" -> "xx"."""

    def append(state: str, step_ctx: StepContext) -> str:
        return state + "x"

    return ctx.wait_for_condition(append, config=WaitForConditionConfig(
        initial_state="", wait_strategy=poll_until(lambda state: len(state) >= 2, delay=1),
        serdes=_EncodedStringSerdes()))


@requirement("6-12")
def wfc_then_step(event: int, ctx: DurableContext) -> int:
    """The final state (2) feeds a step that multiplies it by 10."""
    final = ctx.wait_for_condition(_increment, config=WaitForConditionConfig(
        initial_state=0, wait_strategy=_at_least(event)))

    def times_ten() -> int:
        return final * 10

    return ctx.step(times_ten)


@requirement("6-13")
def wfc_sequential(event: Any, ctx: DurableContext) -> int:
    """0 -> 2, then that result seeds a second poll 2 -> 4."""
    first = ctx.wait_for_condition(_increment, config=WaitForConditionConfig(
        initial_state=0, wait_strategy=_at_least(2)))
    return ctx.wait_for_condition(_increment, config=WaitForConditionConfig(
        initial_state=first, wait_strategy=_at_least(4)))
