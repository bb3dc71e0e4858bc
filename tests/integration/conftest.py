"""Each test's outcome on its item (``item.rep_call``), so a fixture's teardown can tell that the
test failed (the browser tests then save a screenshot); and the fixtures of the tests that drive the
real SDKs against the fake provider server."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tests.fakes.provider_server import ProviderServer


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real credentials, endpoints or proxies from the machine (a module opts in with
    ``pytestmark = pytest.mark.usefixtures("clean_env")``)."""
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "OPENAI_")) or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    """The fake provider server on 127.0.0.1."""
    with ProviderServer() as fake:
        yield fake
