"""What the crash tests share: worker processes that run a SQLite store's jobs against the fake
provider server, killed with SIGKILL once a condition holds (never after a fixed sleep), a fresh
process that runs an execution to its end, and an environment free of the machine's credentials.

The fixtures these tests share (``clean_env``, ``server``) are in ``conftest.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import sys
from duragent.durable import LocalRuntime
LocalRuntime(sys.argv[1]).worker()
"""
"""A sync worker serving the store ``argv[1]`` until killed."""

SERVE = """
import asyncio, sys
from duragent.durable import LocalRuntime
asyncio.run(LocalRuntime(sys.argv[1]).serve())
"""
"""An asyncio worker serving the store ``argv[1]`` until killed."""

RUN_TO_END = """
import sys, time
from duragent.durable import LocalRuntime
rt = LocalRuntime(sys.argv[1])
deadline = time.time() + float(sys.argv[3])
while rt.get(sys.argv[2]).status == "RUNNING" and time.time() < deadline:
    if not rt.run_once():
        time.sleep(0.02)
print(rt.get(sys.argv[2]).status)
"""
"""Runs execution ``argv[2]`` of store ``argv[1]`` until it leaves RUNNING (at most ``argv[3]`` s),
then prints its status."""


def worker_env(extra: dict[str, str]) -> dict[str, str]:
    """A child process's environment: this one without provider settings, the repo importable, plus ``extra``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
    return {**clean, "PYTHONPATH": str(REPO), **extra}


def spawn(script: str, db: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``script`` (``WORKER`` or ``SERVE``) on the store ``db``, its stderr kept for the report."""
    return subprocess.Popen([sys.executable, "-c", script, str(db)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _sigkill(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)


def _killed_stderr(worker: subprocess.Popen[bytes]) -> str:
    assert worker.returncode == -signal.SIGKILL
    assert worker.stderr is not None
    text = worker.stderr.read().decode()
    worker.stderr.close()
    return text


def kill(worker: subprocess.Popen[bytes]) -> str:
    """SIGKILL ``worker`` now; what it wrote to stderr."""
    _sigkill(worker)
    return _killed_stderr(worker)


def kill_when(worker: subprocess.Popen[bytes], ready: Callable[[], bool], *, what: str, within: float,
              poll: float) -> str:
    """SIGKILL ``worker`` as soon as ``ready()`` holds (it must stay alive until then, and ``within``
    seconds is the limit, failing with ``what``); what it wrote to stderr."""
    try:
        deadline = time.monotonic() + within
        while not ready():
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            assert time.monotonic() < deadline, what
            time.sleep(poll)
    finally:
        _sigkill(worker)
    return _killed_stderr(worker)


def run_to_end(db: Path, execution_id: str, env: dict[str, str], *, within: float,
               timeout: float) -> subprocess.CompletedProcess[str]:
    """A fresh process that runs ``execution_id`` to its end (``RUN_TO_END``)."""
    return subprocess.run([sys.executable, "-c", RUN_TO_END, str(db), execution_id, str(within)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
