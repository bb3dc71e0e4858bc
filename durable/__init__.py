"""duragent's durable engine: handlers that checkpoint every step, replay after any interruption,
and suspend for free. The public API, nothing else."""

from .async_context import AsyncDurableContext
from .config import (
                     CallbackConfig,
                     ChildConfig,
                     CompletionConfig,
                     Duration,
                     InvokeConfig,
                     LoggerConfig,
                     MapConfig,
                     NestingType,
                     ParallelConfig,
                     StepConfig,
                     StepSemantics,
                     WaitForConditionConfig,
)
from .context import DurableContext
from .errors import (
                     CallbackError,
                     CallbackTimeoutError,
                     ChildContextError,
                     DurableError,
                     DurableOperationError,
                     InvokeError,
                     NonDeterministicExecutionError,
                     SerializationError,
                     StepError,
                     StepInterruptedError,
                     UsageError,
                     WaitForConditionError,
)
from .events import EventStream, ExecutionEvent
from .live import LiveEvents
from .local import LocalRuntime, VirtualClock
from .operations._common import StepContext, step_context
from .operations.batch import BatchResult
from .operations.callback import AsyncCallback, Callback, submitter_record
from .operations.condition import WaitDecision, poll_until
from .plugins import AttemptInfo, InvocationInfo, OperationInfo, Plugin
from .registry import durable_function
from .retry import RetryPolicy
from .serdes import JsonSerdes, PassThroughSerdes, Serdes
from .tree import display_name

__all__ = [
    "AsyncCallback",
    "AsyncDurableContext",
    "AttemptInfo",
    "BatchResult",
    "Callback",
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
    "EventStream",
    "ExecutionEvent",
    "InvocationInfo",
    "InvokeConfig",
    "InvokeError",
    "JsonSerdes",
    "LiveEvents",
    "LocalRuntime",
    "LoggerConfig",
    "MapConfig",
    "NestingType",
    "NonDeterministicExecutionError",
    "OperationInfo",
    "ParallelConfig",
    "PassThroughSerdes",
    "Plugin",
    "RetryPolicy",
    "Serdes",
    "SerializationError",
    "StepConfig",
    "StepContext",
    "StepError",
    "StepInterruptedError",
    "StepSemantics",
    "UsageError",
    "VirtualClock",
    "WaitDecision",
    "WaitForConditionConfig",
    "WaitForConditionError",
    "display_name",
    "durable_function",
    "poll_until",
    "step_context",
    "submitter_record",
]
