"""The fake provider server in a process of its own, so its request parsing and threads do not
share the measured process's CPU and GIL (a real provider is remote, too).

Prints its URL, then obeys one command per stdin line:
    script         enqueue the agent benchmark's 200 replies
    bodies PATH    write the bodies of the last 200 requests to PATH (JSON), then forget all requests
    forget         forget the recorded requests
    quit
Every command is answered with "ok" (or "error ...")."""

from __future__ import annotations

import json
import sys

from tests.fakes.provider_server import ProviderServer

from .bench_agent import TURNS, script


def main() -> None:
    with ProviderServer() as server:
        print(server.url, flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            try:
                if command == "script":
                    server.enqueue(*script())
                elif command == "bodies":
                    with open(arg, "w") as fh:
                        json.dump([r.body for r in server.requests[-TURNS:]], fh)
                    server.requests.clear()
                elif command == "forget":
                    server.requests.clear()
                elif command == "quit":
                    print("ok", flush=True)
                    return
                else:
                    raise ValueError(f"unknown command {command!r}")
            except Exception as exc:  # report and go on
                print(f"error {exc!r}", flush=True)
                continue
            print("ok", flush=True)


if __name__ == "__main__":
    main()
