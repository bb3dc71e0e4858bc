"""Fixtures for engine unit tests: a real SQLite file per test, time on a virtual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from duragent.durable import LocalRuntime, VirtualClock

Events = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def rt(tmp_path: Path, clock: VirtualClock) -> Iterator[LocalRuntime]:
    runtime = LocalRuntime(tmp_path / "x.db", clock=clock)
    yield runtime
    runtime.close()


@pytest.fixture
def events(rt: LocalRuntime) -> Events:
    """``events(execution_id, event_type=None, name=None)``: history events, filtered."""

    def select(execution_id: str, event_type: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        return [e for e in rt.history(execution_id)
                if (event_type is None or e["EventType"] == event_type) and (name is None or e.get("Name") == name)]

    return select
