"""Pieces every operation shares: error objects and the step-scoped context variable."""

from __future__ import annotations

import builtins
import contextvars
import json
import traceback
from typing import Any

from ..errors import DurableError, DurableOperationError, UsageError
from ..log import DurableLogger
from ..model import MAX_ERROR_BYTES, ErrorObject
from ..serdes import safe_text


class StepContext:
    """What a running step may know about itself (``durable.step_context()``). Read-only."""

    __slots__ = ("_attempt", "_operation_id", "_name", "_interrupted", "_source", "_logger")

    def __init__(self, attempt: int, operation_id: str, name: str | None, logger: DurableLogger,
                 interrupted_attempts: int = 0) -> None:
        # A plain class, built once per step attempt: a frozen dataclass costs a microsecond more,
        # and the step's own logger is made only if the step logs.
        self._attempt = attempt
        self._operation_id = operation_id
        self._name = name
        self._interrupted = interrupted_attempts
        self._source = logger
        self._logger: DurableLogger | None = None

    @property
    def attempt(self) -> int:
        """1-based attempt number, counted across invocations."""
        return self._attempt

    @property
    def operation_id(self) -> str:
        return self._operation_id

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def interrupted_attempts(self) -> int:
        """How many earlier attempts of this (at-most-once) step were interrupted: started, and never
        finished because the process died. Whatever they did (a paid request) happened, unrecorded."""
        return self._interrupted

    @property
    def logger(self) -> DurableLogger:
        """The context's logger, with this step's operation id, name and attempt in every line."""
        if self._logger is None:
            self._logger = self._source.with_fields(operationId=self._operation_id, operationName=self._name,
                                                    attempt=self._attempt)
        return self._logger

    def __repr__(self) -> str:
        return (f"StepContext(attempt={self._attempt}, operation_id={self._operation_id!r}, name={self._name!r}, "
                f"interrupted_attempts={self._interrupted})")


INTERRUPTED_KEY = "interrupted_attempts"
"""ErrorData key under which a step's errors carry its count of interrupted attempts."""


def interrupted_attempts(error: ErrorObject | None) -> int:
    """The count of interrupted attempts carried by a step's last recorded error (0 if none)."""
    if error is None or not error.ErrorData or INTERRUPTED_KEY not in error.ErrorData:
        return 0
    try:
        data = json.loads(error.ErrorData)
    except ValueError:
        return 0
    count = data.get(INTERRUPTED_KEY) if isinstance(data, dict) else None
    return count if isinstance(count, int) and count > 0 else 0


def with_interrupted_attempts(error: ErrorObject, count: int) -> ErrorObject:
    """``error`` carrying ``count`` forward (only into errors that have no data of their own)."""
    if count > 0 and error.ErrorData is None:
        error.ErrorData = json.dumps({INTERRUPTED_KEY: count})
    return error


CURRENT_STEP: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar("durable_step", default=None)


def step_context() -> StepContext:
    """The context of the step running now. Raises outside a step."""
    current = CURRENT_STEP.get()
    if current is None:
        raise UsageError("durable.step_context() called outside a step; call it from the function "
                         "passed to ctx.step(...)")
    return current


def forbid_inside_step(what: str) -> None:
    if CURRENT_STEP.get() is not None:
        raise UsageError(f"ctx.{what}() called inside a step; durable operations cannot nest in a step. "
                         "Use ctx.run_in_child_context(...) to group operations instead")


def type_name(exc: BaseException) -> str:
    """The ``ErrorType`` recorded for ``exc``: builtins by name, our own errors by their stable
    ``recorded_name``, anything else by ``module.Qualname`` (AWS's convention)."""
    cls = type(exc)
    if isinstance(exc, DurableError):
        return exc.recorded_name
    if cls.__module__ == "builtins" and getattr(builtins, cls.__name__, None) is cls:
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


def error_object(exc: BaseException) -> ErrorObject:
    """The checkpointed form of an exception. A durable operation error keeps the original type
    and message, so a failure reads the same however many contexts it crossed."""
    if isinstance(exc, DurableOperationError):
        error = ErrorObject(ErrorType=exc.error_type or type_name(exc), ErrorMessage=exc.message,
                            ErrorData=exc.error_data, StackTrace=exc.stack_trace)
    else:
        stack = [line.rstrip("\n") for line in traceback.format_exception(exc)][-8:]
        error = ErrorObject(ErrorType=type_name(exc), ErrorMessage=str(exc), StackTrace=stack)
    return _fit(error)


def _fit(error: ErrorObject) -> ErrorObject:
    """Keep an error storable: valid Unicode (a lone surrogate in a message is escaped) and under
    the service's size limit, shortening the stack first."""
    error = ErrorObject(ErrorType=_safe(error.ErrorType), ErrorMessage=_safe(error.ErrorMessage),
                        ErrorData=_safe(error.ErrorData),
                        StackTrace=[safe_text(line) for line in error.StackTrace] if error.StackTrace else None)
    while len(error.model_dump_json(exclude_none=True)) > MAX_ERROR_BYTES:
        if error.StackTrace:
            error.StackTrace = error.StackTrace[1:] or None
        elif error.ErrorData and len(error.ErrorData) > 1024:
            error.ErrorData = error.ErrorData[: len(error.ErrorData) // 2]
        elif error.ErrorMessage and len(error.ErrorMessage) > 1024:
            error.ErrorMessage = error.ErrorMessage[: len(error.ErrorMessage) // 2] + "…"
        else:
            break
    return error


def _safe(text: str | None) -> str | None:
    return None if text is None else safe_text(text)


def error_dict(error: ErrorObject | None) -> dict[str, Any]:
    return error.to_wire() if error is not None else {}
