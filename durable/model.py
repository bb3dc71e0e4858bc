"""Protocol types, field for field as AWS Lambda durable execution spells them (PROTOCOL.md §2).

Field names are the wire names on purpose: ``op.model_dump(exclude_none=True)`` *is* the wire
form, with no mapping layer to drift. Timestamps are float epoch seconds inside duragent; the
validators accept the invocation event's epoch milliseconds and boto3's ``datetime`` too.
"""



import datetime as _dt
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


class OperationType(StrEnum):
    EXECUTION = "EXECUTION"
    CONTEXT = "CONTEXT"
    STEP = "STEP"
    WAIT = "WAIT"
    CALLBACK = "CALLBACK"
    CHAINED_INVOKE = "CHAINED_INVOKE"


class OperationStatus(StrEnum):
    STARTED = "STARTED"
    PENDING = "PENDING"
    READY = "READY"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = {OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELLED,
             OperationStatus.TIMED_OUT, OperationStatus.STOPPED}


class OperationAction(StrEnum):
    START = "START"
    SUCCEED = "SUCCEED"
    FAIL = "FAIL"
    RETRY = "RETRY"
    CANCEL = "CANCEL"


class ExecutionStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"


class InvocationStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    PENDING = "PENDING"


class SubType(StrEnum):
    """The subtypes the SDKs write; free text on the wire, so users may add their own."""

    STEP = "Step"
    WAIT = "Wait"
    CALLBACK = "Callback"
    RUN_IN_CHILD_CONTEXT = "RunInChildContext"
    MAP = "Map"
    MAP_ITERATION = "MapIteration"
    PARALLEL = "Parallel"
    PARALLEL_BRANCH = "ParallelBranch"
    WAIT_FOR_CALLBACK = "WaitForCallback"
    WAIT_FOR_CONDITION = "WaitForCondition"
    CHAINED_INVOKE = "ChainedInvoke"


def to_epoch_seconds(value: Any) -> float | None:
    """Both encodings on the wire: epoch ms ints in the invocation event, seconds or datetime
    from API responses. Anything above 1e11 is milliseconds (1e11 s is the year 5138)."""
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return value.timestamp()
    number = float(value)
    return number / 1000.0 if number > 1e11 else number


Timestamp = Annotated[float | None, BeforeValidator(to_epoch_seconds)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", use_enum_values=False, frozen=False)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class ErrorObject(_Wire):
    ErrorType: str | None = None
    ErrorMessage: str | None = None
    ErrorData: str | None = None
    StackTrace: list[str] | None = None


class ExecutionDetails(_Wire):
    InputPayload: str | None = None


class ContextDetails(_Wire):
    ReplayChildren: bool | None = None
    Result: str | None = None
    Error: ErrorObject | None = None


class StepDetails(_Wire):
    Attempt: int = 0
    NextAttemptTimestamp: Timestamp = None
    Result: str | None = None
    Error: ErrorObject | None = None


class WaitDetails(_Wire):
    ScheduledEndTimestamp: Timestamp = None


class CallbackDetails(_Wire):
    CallbackId: str | None = None
    Result: str | None = None
    Error: ErrorObject | None = None


class ChainedInvokeDetails(_Wire):
    Result: str | None = None
    Error: ErrorObject | None = None


_ExecutionDetails = ExecutionDetails
_ContextDetails = ContextDetails
_StepDetails = StepDetails
_WaitDetails = WaitDetails
_CallbackDetails = CallbackDetails
_ChainedInvokeDetails = ChainedInvokeDetails


class Operation(_Wire):
    Id: str
    ParentId: str | None = None
    Name: str | None = None
    Type: OperationType
    SubType: str | None = None
    StartTimestamp: Timestamp = None
    EndTimestamp: Timestamp = None
    Status: OperationStatus
    ExecutionDetails: _ExecutionDetails | None = None
    ContextDetails: _ContextDetails | None = None
    StepDetails: _StepDetails | None = None
    WaitDetails: _WaitDetails | None = None
    CallbackDetails: _CallbackDetails | None = None
    ChainedInvokeDetails: _ChainedInvokeDetails | None = None


class ContextOptions(_Wire):
    ReplayChildren: bool | None = None


class StepOptions(_Wire):
    NextAttemptDelaySeconds: int | None = None


class WaitOptions(_Wire):
    WaitSeconds: int


class CallbackOptions(_Wire):
    TimeoutSeconds: int = 0
    HeartbeatTimeoutSeconds: int = 0


class ChainedInvokeOptions(_Wire):
    FunctionName: str
    TenantId: str | None = None
    XAmznTraceId: str | None = None


_ContextOptions = ContextOptions
_StepOptions = StepOptions
_WaitOptions = WaitOptions
_CallbackOptions = CallbackOptions
_ChainedInvokeOptions = ChainedInvokeOptions


class OperationUpdate(_Wire):
    Id: str
    ParentId: str | None = None
    Name: str | None = None
    Type: OperationType
    SubType: str | None = None
    Action: OperationAction
    Payload: str | None = None
    Error: ErrorObject | None = None
    ContextOptions: _ContextOptions | None = None
    StepOptions: _StepOptions | None = None
    WaitOptions: _WaitOptions | None = None
    CallbackOptions: _CallbackOptions | None = None
    ChainedInvokeOptions: _ChainedInvokeOptions | None = None


class InvocationOutput(_Wire):
    """What a handler invocation returns to the service (PROTOCOL.md §1)."""

    Status: InvocationStatus
    Result: str | None = None
    Error: ErrorObject | None = None


# Limits of the protocol, named once.
MAX_PAYLOAD_BYTES = 6_291_456            # OperationUpdate.Payload shape max (6 MiB)
MAX_ASYNC_PAYLOAD_BYTES = 1_048_576      # STEP/CONTEXT/CALLBACK/CHAINED_INVOKE payloads (1 MiB)
MAX_ERROR_BYTES = 32_768                 # emulator limit on one ErrorObject's JSON
CHILD_RESULT_REPLAY_THRESHOLD = 256 * 1024   # child result above this replays its children
MAX_BATCH_UPDATES = 250
MAX_BATCH_BYTES = 750 * 1024
MAX_EXECUTION_RESULT_BYTES = 6 * 1024 * 1024 - 50
MAX_WAIT_SECONDS = 31_622_400
