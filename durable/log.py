"""Loggers that know where they are in an execution and stay quiet on replay.

Records go through the stdlib logger ``durable.user`` with a ``durable`` attribute holding the
structured fields (execution, operation, attempt), so any logging setup works and
``JsonFormatter`` renders the JSON lines Lambda and CloudWatch expect.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

USER_LOGGER = logging.getLogger("duragent.durable.user")


class DurableLogger:
    """A logger whose lines are written once per execution, not once per replay."""

    def __init__(self, fields: dict[str, Any], is_replaying: Callable[[], bool] | None = None,
                 replay_logging: bool = False, base: logging.Logger = USER_LOGGER) -> None:
        self.fields = fields
        self._is_replaying = is_replaying
        self.replay_logging = replay_logging
        self._base = base

    def with_fields(self, **fields: Any) -> DurableLogger:
        return DurableLogger({**self.fields, **fields}, self._is_replaying, self.replay_logging, self._base)

    def _log(self, level: int, msg: str, args: tuple[Any, ...], extra: dict[str, Any] | None,
             exc_info: Any = None) -> None:
        if not self.replay_logging and self._is_replaying is not None and self._is_replaying():
            return
        if not self._base.isEnabledFor(level):
            return
        fields = {**self.fields, **extra} if extra else self.fields
        self._base.log(level, msg, *args, extra={"durable": fields}, exc_info=exc_info, stacklevel=3)

    def debug(self, msg: str, *args: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.DEBUG, msg, args, extra)

    def info(self, msg: str, *args: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.INFO, msg, args, extra)

    def warning(self, msg: str, *args: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.WARNING, msg, args, extra)

    def error(self, msg: str, *args: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.ERROR, msg, args, extra)

    def exception(self, msg: str, *args: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.ERROR, msg, args, extra, exc_info=True)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """One record as the flat JSON object a log line carries."""
    data: dict[str, Any] = {"timestamp": record.created, "level": record.levelname,
                            "message": record.getMessage(), "logger": record.name}
    data.update(getattr(record, "durable", None) or {})
    return data


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = record_fields(record)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)
