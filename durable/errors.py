"""The exception hierarchy. Stdlib only, so every layer can import it.

    DurableError                          base of everything we raise
    ├── UsageError                        you used the API wrong (bad config, bad input)
    │   ├── SerializationError            a value could not be (de)serialized
    │   ├── PayloadTooLargeError          a payload over the protocol limit
    │   └── HandlerNotFoundError          a CLI / registry target that does not resolve
    ├── NonDeterministicExecutionError    replay met a different operation than history holds
    ├── DurableOperationError             an operation failed; carries the checkpointed ErrorObject
    │   ├── StepError                     a step failed for good (retries exhausted or not retryable)
    │   │   └── StepInterruptedError      an at-most-once step was interrupted mid-attempt
    │   ├── ChildContextError             a child context (or map/parallel branch) failed
    │   ├── CallbackError                 the outside world reported failure on a callback
    │   │   └── CallbackTimeoutError      a callback timed out (Callback.Timeout / Callback.Heartbeat)
    │   ├── WaitForConditionError         a wait_for_condition check failed or gave up
    │   └── InvokeError                   a chained invoke failed, timed out or was stopped
    ├── CheckpointError                   the backend refused or failed a checkpoint
    │   ├── RetryableCheckpointError      not now (throttled, unavailable, disk full): retry the invocation
    │   └── InvalidCheckpointTokenError   a stale token: another invocation owns the execution now
    └── StoreError                        the local store is unusable (not ours, wrong schema)
        ├── StoreAccessError                  it cannot be read or written (permissions, a read-only mount)
        ├── StoreDamagedError                 the file is damaged (SQLite's own diagnosis)
        ├── StoreUnavailableError             not now: a full disk, a lock held too long (transient)
        ├── ExecutionNotFoundError
        ├── ExecutionConflictError        `run --id` reusing an id with different input
        └── CallbackNotFoundError         unknown, or already completed, callback id

Suspension is not an error: ``SuspendExecution`` derives from BaseException so that a user's
``except Exception`` cannot swallow it.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DurableError(Exception):
    """Base of every duragent exception.

    ``recorded_name`` is what a journal records as the ``ErrorType`` of this class. Our own classes
    record ``duragent.<ClassName>``, independent of the module that defines them, so moving a module
    never changes what is written or breaks the replay of a stored execution. A user's subclass
    records its ``module.Qualname``, as any other exception does, unless it sets its own.
    """

    recorded_name: ClassVar[str] = "duragent.DurableError"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "recorded_name" not in cls.__dict__:
            ours = cls.__module__.split(".", 1)[0] == "duragent"
            cls.recorded_name = f"duragent.{cls.__name__}" if ours else f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__.split(".", 1)[0] == "duragent":
            _OURS[cls.recorded_name] = cls
            # where the class lived before the single import root (``durable.errors.StepError``...)
            _LEGACY[f"{cls.__module__.removeprefix('duragent.')}.{cls.__qualname__}"] = cls.recorded_name


_OURS: dict[str, type[DurableError]] = {}
_LEGACY: dict[str, str] = {}
_OURS[DurableError.recorded_name] = DurableError
_LEGACY["durable.errors.DurableError"] = DurableError.recorded_name


def recorded_error_type(error_type: str | None) -> str | None:
    """The stable name for a recorded ``ErrorType``: names written before a module moved map to
    the class's stable name; anything else comes back unchanged."""
    if error_type is None:
        return None
    return _LEGACY.get(error_type, error_type)


def error_class(error_type: str | None) -> type[DurableError] | None:
    """Our exception class recorded under ``error_type`` (stable or legacy name), if it is ours."""
    name = recorded_error_type(error_type)
    return _OURS.get(name) if name else None


class UsageError(DurableError):
    """The API was used wrong; the message says what would be right."""


class SerializationError(UsageError):
    """A value could not be serialized to, or rebuilt from, its checkpointed form."""


class PayloadTooLargeError(UsageError):
    """A payload exceeds what the protocol can checkpoint."""


class HandlerNotFoundError(UsageError):
    """A handler target (``file.py:func`` or ``pkg.mod:func``) does not resolve."""


class NonDeterministicExecutionError(DurableError):
    """Replay met an operation that differs from what history holds at the same position."""

    def __init__(self, message: str, *, position: str, operation_id: str, history: dict[str, Any],
                 code: dict[str, Any]) -> None:
        super().__init__(message)
        self.position = position
        self.operation_id = operation_id
        self.history = history
        self.code = code


class DurableOperationError(DurableError):
    """An operation failed. Built from the checkpointed ErrorObject, so the first run and every
    replay raise the same thing."""

    def __init__(self, message: str, *, error_type: str | None = None, error_data: str | None = None,
                 stack_trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.error_data = error_data
        self.stack_trace = stack_trace

    @classmethod
    def from_error_object(cls, error: dict[str, Any] | None) -> DurableOperationError:
        error = error or {}
        return cls(str(error.get("ErrorMessage") or ""), error_type=error.get("ErrorType"),
                   error_data=error.get("ErrorData"), stack_trace=error.get("StackTrace"))

    def __str__(self) -> str:
        if self.error_type and self.message:
            return f"{self.error_type}: {self.message}"
        return self.message or self.error_type or type(self).__name__


class StepError(DurableOperationError):
    """A step failed for good."""


class StepInterruptedError(StepError):
    """An at-most-once step was found started but unfinished: it may or may not have run."""


class ChildContextError(DurableOperationError):
    """A child context failed."""


class CallbackError(DurableOperationError):
    """The outside world reported failure for a callback."""


class CallbackTimeoutError(CallbackError):
    """A callback timed out, overall or for lack of heartbeats."""


class WaitForConditionError(DurableOperationError):
    """A wait_for_condition check raised or its strategy gave up."""


class InvokeError(DurableOperationError):
    """A chained invoke ended in failure, timeout or stop."""


class CheckpointError(DurableError):
    """The backend refused a checkpoint."""

    retryable: bool = False


class RetryableCheckpointError(CheckpointError):
    """The backend could not take the checkpoint now (throttled, unavailable, the disk is full):
    the invocation is abandoned and retried later, never turned into a failed execution."""

    retryable = True


class InvalidCheckpointTokenError(CheckpointError):
    """The checkpoint token is stale: another invocation has taken over this execution."""

    retryable = True


class StoreError(DurableError):
    """The local store cannot be used as asked."""

    transient: ClassVar[bool] = False
    """Whether waiting may cure it (a worker retries a transient fault and stops on any other)."""


class StoreAccessError(StoreError):
    """The store cannot be read or written: permission denied, a read-only file, directory or mount."""


class StoreDamagedError(StoreError):
    """The store file is damaged; the message carries SQLite's own diagnosis."""


class StoreUnavailableError(StoreError):
    """The store cannot take a write right now (a full disk, a lock held too long, an I/O error)."""

    transient = True


class ExecutionNotFoundError(StoreError):
    """No execution with that id."""


class ExecutionConflictError(StoreError):
    """An execution id is already taken by an execution with a different function or input."""


class CallbackNotFoundError(StoreError):
    """The callback id is unknown or the callback has already completed."""


class ReplayFrontier(BaseException):  # noqa: N818 - a signal, not an error
    """A read-only replay (``duragent replay-check``) reached work history does not hold yet. Not an
    Exception, so user code cannot swallow it."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class UnreadableOperation(BaseException):  # noqa: N818 - a signal, not an error
    """A stored operation that replay reached does not read back (a damaged row). Not an
    Exception, so that neither user code nor the failure path turns it into a failed execution:
    the runtime sets the execution aside with the reason (``cause``) and retries it later."""

    def __init__(self, op_id: str, cause: BaseException) -> None:
        super().__init__(f"operation {op_id[:16]}… does not read back: {type(cause).__name__}: {cause}")
        self.cause = cause


class SuspendExecution(BaseException):  # noqa: N818 - a signal, not an error
    """Raised to end the invocation with PENDING. Not an Exception on purpose."""

    def __init__(self, reason: str = "", wake_at: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wake_at = wake_at
