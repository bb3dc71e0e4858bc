"""Conformance handlers: the child suite."""

from __future__ import annotations

from ..driver import requirement  # noqa: F401
