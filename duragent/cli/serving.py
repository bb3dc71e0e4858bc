"""``ui``: the local web console over one store (see ``duragent.console``)."""

from __future__ import annotations

import argparse

from duragent.ops import LocalOperator

from .common import CliError, db_path


def cmd_ui(args: argparse.Namespace) -> int:
    """Serve the console until Ctrl-C; it prints the URL to open, token included."""
    from duragent.console import serve

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not a port; use 1-65535, or 0 for a free one")
    with LocalOperator.open(db_path(args)) as ops:
        try:
            return serve(ops, port=args.port)
        except OSError as exc:
            raise CliError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc}); "
                           "pass --port 0 to pick a free port") from None
