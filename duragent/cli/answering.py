"""``callback``, ``approve``, ``reject``, ``answer`` and ``stop``: answering what waits, through
the operator API, which checks every answer against what was asked before anything is recorded."""

from __future__ import annotations

import argparse

from duragent.durable.model import ErrorObject

from .common import EXIT_OK, CliError, command, is_aws, operator, read_json, read_json_text


def _resumes(args: argparse.Namespace, execution_id: str) -> str:
    if is_aws(args):
        return "Lambda resumes the execution"
    return f"execution {execution_id}; resume it with: {command(args, 'worker --until-idle')}"


def cmd_callback(args: argparse.Namespace) -> int:
    """Answer a plain callback as the outside world would; a worker then resumes the execution."""
    with operator(args) as ops:
        if args.action == "succeed":
            result = None if args.result is None else read_json_text(args.result, "--result", "'{\"ok\": true}'")
            done = ops.succeed_callback(args.callback_id, result)
        elif args.action == "fail":
            error = ErrorObject(ErrorType=args.error_type, ErrorMessage=args.error_message, ErrorData=args.error_data)
            done = ops.fail_callback(args.callback_id, error)
        else:
            done = ops.heartbeat_callback(args.callback_id)
    verb = {"succeed": "succeeded", "fail": "failed", "heartbeat": "heartbeat recorded"}[args.action]
    if args.action == "heartbeat":
        print(f"callback {verb}" + (f" (execution {done.execution_id})" if done.execution_id else ""))
    else:
        print(f"callback {verb}; {_resumes(args, done.execution_id)}")
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    """Approve a tool or budget review, optionally changing some of the tool's arguments."""
    edits = None
    if args.edit is not None:
        edits = read_json(args.edit, "--edit", "'{\"amount\": 10}'")
        if not isinstance(edits, dict):
            raise CliError("--edit must be a JSON object naming the arguments to change, e.g. '{\"amount\": 10}'")
    with operator(args) as ops:
        done = ops.approve(args.callback_id, edits=edits, reviewer=args.reviewer)
    changed = f" with {', '.join(sorted(edits))} changed" if edits else ""
    print(f"review approved{changed}; {_resumes(args, done.execution_id)}")
    return EXIT_OK


def cmd_reject(args: argparse.Namespace) -> int:
    """Reject a tool or budget review: the tool never runs, and the model reads the feedback."""
    with operator(args) as ops:
        done = ops.reject(args.callback_id, args.feedback, reviewer=args.reviewer)
    print(f"review rejected; {_resumes(args, done.execution_id)}")
    return EXIT_OK


def cmd_answer(args: argparse.Namespace) -> int:
    """Answer a question (the JSON must fit its schema), or any plain callback."""
    value = read_json(args.json_answer, "the answer", "'\"yes\"' or '{\"city\": \"Oslo\"}'")
    with operator(args) as ops:
        done = ops.answer(args.callback_id, value)
    print(f"answered; {_resumes(args, done.execution_id)}")
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop a running execution for good."""
    with operator(args) as ops:
        info = ops.stop(args.id)
    print(f"execution {info.id} {info.status}")
    return EXIT_OK
