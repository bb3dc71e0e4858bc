"""The local web console (``duragent ui``): executions, timelines, conversations, costs and an
inbox of human reviews, served on 127.0.0.1 behind a per-start token."""

from .server import DEFAULT_PORT, ConsoleServer, serve

__all__ = ["DEFAULT_PORT", "ConsoleServer", "serve"]
