"""The ``duragent`` command's parser and entry point: parse, run one command, map errors to the
exit-code contract (0 success or suspended, 1 the execution failed, 2 bad usage or input, with one
line on stderr saying what was wrong and what would be right)."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from duragent.durable.errors import DurableError
from duragent.durable.local import DEFAULT_DB
from duragent.durable.local.faults import describe_store_error

from .answering import cmd_answer, cmd_approve, cmd_callback, cmd_reject, cmd_stop
from .checks import cmd_doctor, cmd_replay_check
from .common import (
    AWS_COMMANDS,
    EXIT_CLOSED_PIPE,
    EXIT_USAGE,
    CliError,
    db_path,
    error_line,
)
from .mcp_server import add_parser as add_mcp_parser
from .reading import cmd_history, cmd_list, cmd_show
from .running import cmd_run, cmd_worker
from .serving import cmd_ui


def cmd_chat(args: argparse.Namespace) -> int:
    """``duragent chat`` (its module, which loads the agent loop, is imported only for this command)."""
    from .chatting import cmd_chat as chat

    return chat(args)


def cmd_follow(args: argparse.Namespace) -> int:
    """``duragent follow`` (imported only for this command, like chat)."""
    from .following import cmd_follow as follow

    return follow(args)

MAX_TIMEOUT = 366 * 24 * 3600  # Lambda's longest execution timeout: a year


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line like every other bad input."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        self.exit(EXIT_USAGE, f"duragent: error: {message}; see `{self.prog} --help`\n")


def _status(text: str) -> str:
    from duragent.ops.values import STATUSES

    value = text.strip().upper()
    if value not in STATUSES:
        raise argparse.ArgumentTypeError(f"unknown status {text[:40]!r} (one of {', '.join(STATUSES)})")
    return value


def _timeout(text: str) -> int:
    try:
        value = int(text) if text.strip().isdigit() and len(text.strip()) <= 12 else 0
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"--timeout takes a whole number of seconds from 1 to {MAX_TIMEOUT} "
                                         f"(a year), got {text[:40]!r}")
    return value


def _installed_version() -> str:
    from duragent import __version__

    return __version__


def _aws_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    group = parser.add_argument_group("AWS Lambda (instead of the local store)")
    group.add_argument("--aws", action="store_true", default=default,
                       help="work on AWS Lambda durable executions through boto3")
    group.add_argument("--function", metavar="NAME", default=default,
                       help="the Lambda function (to list, find a callback, or name an execution)")
    group.add_argument("--endpoint-url", metavar="URL", default=default,
                       help="Lambda API endpoint (default: boto3's, e.g. $AWS_ENDPOINT_URL_LAMBDA)")
    group.add_argument("--region", default=default, help="AWS region (default: boto3's)")


def build_parser() -> argparse.ArgumentParser:
    db_help = f"the SQLite store (default: $DURAGENT_DB or {DEFAULT_DB})"
    parser = _Parser(prog="duragent", description="Run, inspect and answer durable executions: in a local "
                                                  "store, or on AWS Lambda with --aws.")
    parser.add_argument("--db", help=db_help)
    parser.add_argument("--version", action="version", version=f"duragent {_installed_version()}")
    _aws_options(parser, default=None)
    local = _Parser(add_help=False)
    local.add_argument("--db", default=argparse.SUPPRESS, help=db_help)
    either = _Parser(add_help=False, parents=[local])
    _aws_options(either, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help: str, *, aws: bool = False,
                into: Any = sub) -> argparse.ArgumentParser:
        p = into.add_parser(name, parents=[either if aws else local], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = command("run", cmd_run, "start an execution and drive it until it completes or suspends")
    p.add_argument("target", metavar="TARGET", help="path/to/file.py:func or package.module:func")
    p.add_argument("--input", metavar="JSON|@FILE", help="the event: JSON text, @file.json or @- (stdin)")
    p.add_argument("--id", help="execution id (idempotent: the same id and input attach to it)")
    p.add_argument("--timeout", type=_timeout, metavar="SECONDS",
                   help="end the execution TIMED_OUT if it has not finished by then")

    p = command("chat", cmd_chat, "talk to a durable chat session (an Agent, or agents.conversation(agent))")
    p.add_argument("target", metavar="TARGET", help="path/to/file.py:agent or package.module:agent")
    p.add_argument("--session", metavar="ID", help="reopen this session (or start one under this id)")

    p = command("follow", cmd_follow, "print an execution's events as they happen, until it ends")
    p.add_argument("id", metavar="ID", help="execution id")
    p.add_argument("--after", default="0", metavar="CURSOR", help="only the events after this cursor (resume)")
    p.add_argument("--json", action="store_true", help="one JSON object per event, with its cursor")

    p = command("worker", cmd_worker, "serve every execution in the store until stopped")
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is runnable now")

    p = command("list", cmd_list, "list executions, or with --pending what waits for an answer", aws=True)
    p.add_argument("--json", action="store_true", help="print JSON (with the total and the next page's cursor)")
    p.add_argument("--status", type=_status, help="only executions with this status")
    p.add_argument("--pending", action="store_true", help="what waits for an answer, with the command for each")
    p.add_argument("--limit", default="100", metavar="N", help="at most N per page (1-1000, default 100)")
    p.add_argument("--cursor", metavar="CURSOR", help="the page after the previous one (it prints its cursor)")

    for name, handler, text in (("show", cmd_show, "one execution: what it waits for, its operations and cost"),
                                ("history", cmd_history, "the history events of one execution")):
        p = command(name, handler, text, aws=True)
        p.add_argument("id", metavar="ID", help="execution id (on AWS: its ARN, or its name with --function)")
        p.add_argument("--json", action="store_true", help="print JSON")

    p = command("callback", cmd_callback, "answer a plain callback: succeed, fail or heartbeat")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = command("succeed", cmd_callback, "complete the callback with a result", aws=True, into=actions)
    a.add_argument("callback_id", metavar="CALLBACK_ID")
    a.add_argument("--result", metavar="JSON|@FILE", help="the result: JSON text (stored verbatim), @file or @-")
    a = command("fail", cmd_callback, "fail the callback", aws=True, into=actions)
    a.add_argument("callback_id", metavar="CALLBACK_ID")
    a.add_argument("--error-type", default="CallbackFailure")
    a.add_argument("--error-message", default="callback failed")
    a.add_argument("--error-data", default=None)
    a = command("heartbeat", cmd_callback, "keep a callback with a heartbeat timeout alive", aws=True, into=actions)
    a.add_argument("callback_id", metavar="CALLBACK_ID")

    p = command("approve", cmd_approve, "approve a tool or budget review (optionally changing some arguments)",
                aws=True)
    p.add_argument("callback_id", metavar="CALLBACK_ID")
    p.add_argument("--edit", metavar="JSON|@FILE", help="the arguments to change, e.g. '{\"amount\": 10}' (the "
                                                        "others stay as proposed); checked against the tool's schema")
    p.add_argument("--reviewer", help="who answered (recorded with the answer)")
    p = command("reject", cmd_reject, "reject a tool or budget review; the tool never runs and the model sees why",
                aws=True)
    p.add_argument("callback_id", metavar="CALLBACK_ID")
    p.add_argument("--feedback", required=True, metavar="TEXT", help="why: the model reads this (not empty)")
    p.add_argument("--reviewer", help="who answered (recorded with the answer)")
    p = command("answer", cmd_answer, "answer a question (JSON fitting its schema) or a plain callback", aws=True)
    p.add_argument("callback_id", metavar="CALLBACK_ID")
    p.add_argument("json_answer", metavar="JSON", help="the answer: JSON text ('\"Oslo\"' for text), @file or @-")

    p = command("replay-check", cmd_replay_check,
                "replay running executions against the current code (no side effects); exit 1 on divergence")
    p.add_argument("ids", nargs="*", metavar="ID", help="only these executions (default: every running one)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("doctor", cmd_doctor, "check the store for damage and inconsistencies; exit 1 on damage")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("stop", cmd_stop, "stop a running execution", aws=True)
    p.add_argument("id", metavar="ID")

    p = command("ui", cmd_ui, "serve the local web console; prints the URL to open, token included")
    p.add_argument("--port", type=int, default=8321, help="port on 127.0.0.1 (default 8321; 0 picks a free port)")

    add_mcp_parser(command)
    return parser


def _check_aws(args: argparse.Namespace) -> None:
    uses_aws_options = any(getattr(args, name, None) for name in ("function", "endpoint_url", "region"))
    if args.command not in AWS_COMMANDS and (args.aws or uses_aws_options):
        raise CliError(f"`duragent {args.command}` works on the local store only; drop --aws (commands that "
                       f"work on AWS: {', '.join(AWS_COMMANDS)})")
    if uses_aws_options and not args.aws:
        raise CliError("--function, --endpoint-url and --region are for AWS; add --aws")


def _quiet_closed_pipe() -> int:
    """The reader went away (``show ID | head``): stop quietly, as Unix tools do."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_CLOSED_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # text from a store or a command line never crashes a print
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        _check_aws(args)
        code = int(args.handler(args))
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _quiet_closed_pipe()
    except DurableError as exc:
        print(error_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.Error as exc:
        print(error_line(describe_store_error(exc, db_path(args))), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
