"""duragent: durable functions and AI agents that survive anything.

The front door holds what a user needs first; everything else lives in the subpackages
``duragent.durable`` (the engine), ``duragent.agents``, ``duragent.tools`` and ``duragent.prompts``.

    from duragent import DurableContext, durable_function

    @durable_function
    def hello(event: dict, ctx: DurableContext) -> str:
        return ctx.step(lambda: f"hello, {event['name']}", name="greet")
"""

from __future__ import annotations

from importlib import import_module as _import_module
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .agents import Agent, AgentError, AgentResult, Budget, BudgetExceededError, ask_human
    from .prompts import PromptError, render
    from .tools import ToolError, tool

    __version__: str

# The engine above is what every command needs. Agents, tools and prompts are imported on first use
# of one of their names (``from duragent import Agent`` works as ever): a CLI command or a worker
# that runs no agent does not pay for them (about 70 ms of imports), nor for reading the version.
_LAZY = {
    **dict.fromkeys(("Agent", "AgentError", "AgentResult", "Budget", "BudgetExceededError", "ask_human"), ".agents"),
    **dict.fromkeys(("PromptError", "render"), ".prompts"),
    **dict.fromkeys(("ToolError", "tool"), ".tools"),
}


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("duragent")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _LAZY:
        value = getattr(_import_module(_LAZY[name], __name__), name)
    else:
        raise AttributeError(f"module 'duragent' has no attribute {name!r}")
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
