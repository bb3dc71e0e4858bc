"""duragent's durable engine: handlers that checkpoint every step, replay after any interruption,
and suspend for free. The public API, nothing else."""

from .config import (CallbackConfig, ChildConfig, CompletionConfig, Duration, InvokeConfig, LoggerConfig,
                     NestingType, StepConfig, StepSemantics)
from .context import DurableContext
from .errors import (CallbackError, CallbackTimeoutError, ChildContextError, DurableError,
                     DurableOperationError, InvokeError, NonDeterministicExecutionError, SerializationError,
                     StepError, StepInterruptedError, UsageError, WaitForConditionError)
from .local import LocalRuntime, VirtualClock
from .operations._common import StepContext, step_context
from .operations.callback import Callback
from .registry import durable_function
from .retry import RetryPolicy
from .serdes import JsonSerdes, PassThroughSerdes, Serdes

__all__ = [
    "Callback",
    "CallbackConfig",
    "CallbackError",
    "CallbackTimeoutError",
    "ChildConfig",
    "ChildContextError",
    "CompletionConfig",
    "Duration",
    "DurableContext",
    "DurableError",
    "DurableOperationError",
    "InvokeConfig",
    "InvokeError",
    "JsonSerdes",
    "LocalRuntime",
    "LoggerConfig",
    "NestingType",
    "NonDeterministicExecutionError",
    "PassThroughSerdes",
    "RetryPolicy",
    "SerializationError",
    "Serdes",
    "StepConfig",
    "StepContext",
    "StepError",
    "StepInterruptedError",
    "StepSemantics",
    "UsageError",
    "VirtualClock",
    "WaitForConditionError",
    "durable_function",
    "step_context",
]
