"""Handlers the end-to-end tests run in real worker processes (imported there as
``tests.e2e.handlers:NAME``, the target stored with each execution).

Each step appends ``<execution_id> <step> <attempt> <pid> begin|done`` to a side-effect log
(O_APPEND, fsync) around its work, so the test can tell which process ran which attempt of which
step, and whether it finished.
"""

from __future__ import annotations

import os
import time
from typing import Any

from duragent.durable import (
    DurableContext,
    RetryPolicy,
    StepConfig,
    StepSemantics,
    durable_function,
    step_context,
)

STEPS = 20
AMO_STEP = 10
"""Step 10 is at-most-once per retry: an attempt interrupted by a crash is never run again."""
SLOW_STEP = 15
"""Step 15 is at-least-once and slow enough (longer than START_FLUSH_DELAY) for its START to be
committed while the body still runs, so a crash in it leaves a STARTED step behind."""

AMO_CONFIG = StepConfig(semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
                        retry=RetryPolicy.exponential(max_attempts=3, initial_delay=1, jitter=False))


def expected_total() -> int:
    return sum(i * i for i in range(1, STEPS + 1))


def append_line(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def work(log: str, execution_id: str, step: int, seconds: float) -> int:
    attempt = step_context().attempt
    append_line(log, f"{execution_id} {step} {attempt} {os.getpid()} begin\n")
    time.sleep(seconds)
    append_line(log, f"{execution_id} {step} {attempt} {os.getpid()} done\n")
    return step * step


@durable_function
def crash20(event: dict[str, Any], ctx: DurableContext) -> dict[str, int]:
    total = 0
    for i in range(1, STEPS + 1):
        if i == AMO_STEP:
            seconds, config = event["amo_seconds"], AMO_CONFIG
        elif i == SLOW_STEP:
            seconds, config = event["slow_seconds"], None
        else:
            seconds, config = event["step_seconds"], None
        total += ctx.step(work, event["log"], ctx.execution_id, i, seconds, name=f"s{i}", config=config)
    return {"total": total, "steps": STEPS}


@durable_function
def steps_and_waits(event: dict[str, Any], ctx: DurableContext) -> int:
    """Three steps with a 1 s wait between each: three invocations, which any worker may pick up."""
    total = 0
    for i in range(1, 4):
        total += ctx.step(work, event["log"], ctx.execution_id, i, event["step_seconds"], name=f"s{i}")
        if i < 3:
            ctx.wait(1, name=f"w{i}")
    return total


@durable_function
def guarded_charge(event: dict[str, Any], ctx: DurableContext) -> int:
    """A quick step, then a slow at-most-once step (a payment, say): the step that two workers
    must never both run."""
    before = ctx.step(work, event["log"], ctx.execution_id, 1, 0.0, name="prepare")
    charged = ctx.step(work, event["log"], ctx.execution_id, 2, event["amo_seconds"], name="charge",
                       config=AMO_CONFIG)
    return before + charged


DEPLOYED = '''
from tests.e2e.handlers import work

VERSION = {version}


def deployed(event, ctx):
    """Deployed again and again while executions wait in it (tests/e2e/test_deploys.py)."""
    total = 0
    for i in range(1, event["steps"] + 1):
        total += ctx.step(work, event["log"], ctx.execution_id, i, 0.0, name=f"s{{i}}")
        if i < event["steps"]:
            ctx.wait(1, name=f"nap{{i}}")
    return {{"total": total, "version": VERSION}}
'''
"""The source of a handler module that tests/e2e/test_deploys.py rewrites, a version at a time."""
