"""duragent: durable functions and AI agents that survive anything.

The front door holds what a user needs first; everything else lives in the subpackages
``duragent.durable`` (the engine), ``duragent.agents``, ``duragent.tools`` and ``duragent.prompts``.

    from duragent import DurableContext, durable_function

    @durable_function
    def hello(event: dict, ctx: DurableContext) -> str:
        return ctx.step(lambda: f"hello, {event['name']}", name="greet")
"""

from __future__ import annotations

from importlib import metadata as _metadata

from .agents import Agent, AgentError, AgentResult, Budget, BudgetExceededError, ask_human
from .durable import (
    AsyncDurableContext,
    BatchResult,
    CallbackConfig,
    CallbackError,
    CallbackTimeoutError,
    ChildConfig,
    ChildContextError,
    CompletionConfig,
    DurableContext,
    DurableError,
    DurableOperationError,
    Duration,
    InvokeConfig,
    InvokeError,
    LocalRuntime,
    MapConfig,
    NestingType,
    NonDeterministicExecutionError,
    ParallelConfig,
    RetryPolicy,
    SerializationError,
    StepConfig,
    StepError,
    StepInterruptedError,
    StepSemantics,
    UsageError,
    VirtualClock,
    WaitForConditionConfig,
    WaitForConditionError,
    durable_function,
    step_context,
)
from .prompts import PromptError, render
from .tools import ToolError, tool


def _version() -> str:
    try:
        return _metadata.version("duragent")
    except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


__version__ = _version()

__all__ = [
    "Agent",
    "AgentError",
    "AgentResult",
    "AsyncDurableContext",
    "BatchResult",
    "Budget",
    "BudgetExceededError",
    "CallbackConfig",
    "CallbackError",
    "CallbackTimeoutError",
    "ChildConfig",
    "ChildContextError",
    "CompletionConfig",
    "DurableContext",
    "DurableError",
    "DurableOperationError",
    "Duration",
    "InvokeConfig",
    "InvokeError",
    "LocalRuntime",
    "MapConfig",
    "NestingType",
    "NonDeterministicExecutionError",
    "ParallelConfig",
    "PromptError",
    "RetryPolicy",
    "SerializationError",
    "StepConfig",
    "StepError",
    "StepInterruptedError",
    "StepSemantics",
    "ToolError",
    "UsageError",
    "VirtualClock",
    "WaitForConditionConfig",
    "WaitForConditionError",
    "__version__",
    "ask_human",
    "durable_function",
    "render",
    "step_context",
    "tool",
]
