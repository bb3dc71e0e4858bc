"""One emulator per test package: started on 127.0.0.1, and a failure to start FAILS the tests
(never a skip). Our handlers' boto3 clients reach it through ``AWS_ENDPOINT_URL_LAMBDA``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .emulator import Emulator, dummy_aws_env


@pytest.fixture(scope="package")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    log = Path(tmp_path_factory.mktemp("emulator")) / "dex-local-runner.log"
    emu = Emulator(skip_time=True, log_path=log)
    with dummy_aws_env():
        emu.start()  # raises (so every test using it errors) if the emulator cannot start
        with dummy_aws_env(AWS_ENDPOINT_URL_LAMBDA=emu.url):
            try:
                yield emu
            finally:
                emu.stop()
