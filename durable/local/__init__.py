"""The embedded runtime: SQLite store, service semantics, scheduler and worker loop."""

from .clock import Clock, RealClock, VirtualClock
from .runtime import DEFAULT_DB, ExecutionInfo, LocalRuntime

__all__ = ["DEFAULT_DB", "Clock", "ExecutionInfo", "LocalRuntime", "RealClock", "VirtualClock"]
