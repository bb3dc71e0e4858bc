"""A worker process for the throughput benchmark: load, say ready, wait for "go" on stdin, serve
until nothing is runnable, print {count, t0, t1} as JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time

from duragent.durable import LocalRuntime

from ._handlers import short


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--durability", default="full")
    args = parser.parse_args()
    with LocalRuntime(args.db, durability=args.durability, functions=[short]) as rt:
        print("ready", flush=True)
        sys.stdin.readline()
        t0 = time.time()
        count = rt.worker(idle_exit=True)
        t1 = time.time()
    print(json.dumps({"count": count, "t0": t0, "t1": t1}), flush=True)


if __name__ == "__main__":
    main()
