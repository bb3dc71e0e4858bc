"""One emulator per test package: started on 127.0.0.1, and a failure to start FAILS the tests
(never a skip). Our handlers' boto3 clients reach it through ``AWS_ENDPOINT_URL_LAMBDA``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.driver import EXTRA_FUNCTIONS, _load_handlers

from .compare import MET, QUIRKS
from .emulator import Emulator, dummy_aws_env

_load_handlers()

# Chained-invoke targets must be declared to the emulator; durable ones carry a DurableConfig.
FUNCTION_CONFIGS = {name: {"DurableConfig": {"ExecutionTimeout": 300, "RetentionPeriodInDays": 1}}
                    for name in EXTRA_FUNCTIONS}


@pytest.fixture(scope="package")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    log = Path(tmp_path_factory.mktemp("emulator")) / "dex-local-runner.log"
    emu = Emulator(log_path=log, function_configs=FUNCTION_CONFIGS)
    with dummy_aws_env():
        emu.start()  # raises (so every test using it errors) if the emulator cannot start
        with dummy_aws_env(AWS_ENDPOINT_URL_LAMBDA=emu.url):
            try:
                yield emu
            finally:
                emu.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Which emulator quirks the conformance comparison tolerated, by name, and where."""
    if not MET:
        return
    terminalreporter.section("emulator quirks tolerated (tests/aws/compare.py)")
    for name in sorted(MET):
        ids = sorted(MET[name], key=lambda i: tuple(int(n) for n in i.split("-")))
        shown = ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
        terminalreporter.write_line(f"{name} ({len(ids)}): {QUIRKS[name]} [{shown}]")
