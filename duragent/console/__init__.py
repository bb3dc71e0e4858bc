"""The local web console (``duragent ui``): executions, timelines, invocations, conversations,
costs and an inbox of what waits for a person, served on 127.0.0.1 behind a bearer token. Its
page shell, script and stylesheet are real files in ``static/``, shipped as package data."""

from .server import DEFAULT_PORT, ConsoleServer, serve

__all__ = ["DEFAULT_PORT", "ConsoleServer", "serve"]
