"""The ``duragent`` command: run, serve, inspect and answer durable executions, in a local store
or on AWS Lambda (``--aws``). Every command is a thin shell over ``duragent.ops``; one module per
concern: ``running`` (run, worker), ``reading`` (list, show, history), ``answering`` (callback,
approve, reject, answer, stop), ``checks`` (replay-check), ``serving`` (ui), ``common``, ``main``."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
