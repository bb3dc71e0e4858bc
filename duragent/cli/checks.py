"""``replay-check``: a deploy gate that replays running executions against the code on disk;
``doctor``: the store's integrity and consistency."""

from __future__ import annotations

import argparse
import sys

from duragent.durable.local.doctor import examine
from duragent.durable.replay_check import replay_check
from duragent.ops import LocalOperator, values

from .common import EXIT_FAILED, EXIT_OK, db_path, print_json
from .running import import_cwd


def cmd_replay_check(args: argparse.Namespace) -> int:
    """Replay waiting executions against the current code, without side effects; exit 1 on divergence."""
    for execution_id in args.ids:
        values.execution_id(execution_id)
    import_cwd()
    with LocalOperator.open(db_path(args)) as ops:
        results = replay_check(ops.runtime, args.ids or None)
    if args.json:
        print_json([r.to_dict() for r in results])
    elif not results:
        print("no running executions to check")
    else:
        for r in results:
            print(f"{'ok  ' if r.ok else 'FAIL'} {r.execution_id}  {r.function}: {r.detail}")
    bad = [r for r in results if not r.ok]
    if bad and not args.json:
        print(f"{len(bad)} of {len(results)} execution(s) would not replay on this code", file=sys.stderr)
    return EXIT_FAILED if bad else EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the store's integrity and consistency without changing it; exit 1 on damage."""
    report = examine(db_path(args))
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.format())
    return EXIT_FAILED if report.damaged else EXIT_OK
