"""Debian's chromium driven by Playwright for the console's browser tests: the browser comes from
`apt-get install chromium` (make install), never from `playwright install`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# without the background-networking flags chromium keeps trying hosts this closed network refuses
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium(profile: Path, *, height: int = 1600) -> Iterator[BrowserContext]:
    """A headless chromium with a fresh profile, closed on exit."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": 1280, "height": height})
        try:
            yield context
        finally:
            context.close()
