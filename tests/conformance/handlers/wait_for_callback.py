"""Conformance handlers: the wait_for_callback suite."""

from __future__ import annotations

from ..driver import requirement  # noqa: F401
