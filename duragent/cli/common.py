"""What every command shares: exit codes, the one-line error, output helpers for people, reading
JSON arguments, and the operator a command works on (the local store, or AWS with ``--aws``)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from duragent.durable.errors import (
    CallbackNotFoundError,
    DurableError,
    ExecutionNotFoundError,
    HandlerNotFoundError,
    StoreError,
)
from duragent.ops import AwsOperator, LocalOperator, Operator, store_path, values
from duragent.ops.values import InputError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CLOSED_PIPE = 141  # what a shell reports for a program ended by SIGPIPE

TARGET_HINT = "TARGET is path/to/file.py:func or package.module:func"
AWS_COMMANDS = ("list", "show", "history", "callback", "approve", "reject", "answer", "stop")
_HINTS: list[tuple[type[Exception], str]] = [
    (CallbackNotFoundError, "`duragent list --pending` shows the callbacks that await an answer"),
    (ExecutionNotFoundError, "`duragent list` shows the execution ids"),
    (HandlerNotFoundError, TARGET_HINT),
    (StoreError, "pass --db with the path of a duragent store or a new file name"),
    (DurableError, "see `duragent --help`"),
]


class CliError(InputError):
    """Bad input found by the CLI itself; the message already says what would be right."""


def error_line(exc: BaseException) -> str:
    """One line: what was wrong; what would be right (a hint is added when the message has none)."""
    message = " ".join(str(exc).split())
    if ";" not in message:
        hint = next((text for kind, text in _HINTS if isinstance(exc, kind)), "see `duragent --help`")
        message = f"{message}; {hint}"
    return f"duragent: error: {message}"


# -- output for people ------------------------------------------------------------------------------
def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def when(ts: float | None) -> str:
    """Local wall-clock time for people; '-' when there is none."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def span(seconds: float | None) -> str:
    """A short human duration: 12ms, 3.4s, 5m07s, 2h03m, 4d05h."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def short(text: Any, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=False)).rstrip()
                     for line in [headers, *rows])


def error_text(error: dict[str, Any] | None) -> str:
    if not error:
        return "-"
    kind, message = error.get("ErrorType"), error.get("ErrorMessage")
    return ": ".join(str(part) for part in (kind, message) if part) or "(no details)"


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


# -- the store or AWS -------------------------------------------------------------------------------
def db_path(args: argparse.Namespace) -> Path:
    return store_path(getattr(args, "db", None))


def is_aws(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "aws", False))


def command(args: argparse.Namespace, rest: str) -> str:
    """A copy-pasteable command line that works on the same store (or AWS function) as this one."""
    if is_aws(args):
        options = ["--aws"] + [f"{flag} {shlex.quote(value)}" for flag, value in
                               (("--function", args.function), ("--endpoint-url", args.endpoint_url),
                                ("--region", args.region)) if value]
        return f"duragent {' '.join(options)} {rest}"
    db = f"--db {shlex.quote(str(args.db))} " if getattr(args, "db", None) else ""
    return f"duragent {db}{rest}"


def operator(args: argparse.Namespace) -> Operator:
    """What a reading or answering command works on: an existing local store (a missing one is
    refused, never created), or AWS Lambda with ``--aws``."""
    if is_aws(args):
        return AwsOperator(function=args.function, endpoint_url=args.endpoint_url, region=args.region)
    return LocalOperator.open(db_path(args))


# -- reading arguments --------------------------------------------------------------------------------
def read_json(spec: str, what: str, example: str) -> Any:
    """JSON text, ``@path`` to a JSON file, or ``@-`` for stdin: strict JSON in UTF-8."""
    values.check_text(spec, what)
    if not spec.startswith("@"):
        return values.parse_json(spec, what, example)
    source = spec[1:]
    if source == "-":
        return values.parse_json(values.decode_utf8(sys.stdin.buffer.read(), f"{what} from stdin"),
                                 f"{what} from stdin", example)
    try:
        data = Path(source).read_bytes()
    except FileNotFoundError:
        raise CliError(f"{what} file {source!r} does not exist; pass @path/to/an/existing.json or the JSON "
                       "itself") from None
    except OSError as exc:
        raise CliError(f"cannot read {what} file {source!r} ({exc.strerror or exc}); pass a readable UTF-8 "
                       "JSON file") from None
    return values.parse_json(values.decode_utf8(data, f"{what} file {source!r}"), f"{what} file {source!r}", example)


def read_json_text(spec: str, what: str, example: str) -> str:
    """Like ``read_json``, but the checked JSON text itself (stored verbatim)."""
    if spec.startswith("@"):
        return values.to_json(read_json(spec, what, example), what)
    values.parse_json(spec, what, example)
    return spec
