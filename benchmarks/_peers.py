"""The peers' virtualenv (``.venv-peers``, made by ``make bench-peers``) seen from our benchmarks:
whether it is there, and one measurement run in it (a fresh interpreter per measurement)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ._common import REPO, scratch_root

VENV = Path(os.environ.get("BENCH_PEERS_VENV") or REPO / ".venv-peers")
SCRIPT = REPO / "benchmarks" / "peers" / "run_peer.py"
MISSING = "not measured: `make bench-peers` installs the peers (DBOS, LangGraph, AWS's testing runner)"


def python() -> Path:
    return VENV / "bin" / "python"


def available() -> bool:
    return python().exists()


def measure(command: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one peer measurement in a fresh interpreter of the peers' virtualenv, in a fresh directory."""
    scratch = Path(tempfile.mkdtemp(prefix=f"peer-{command}-", dir=scratch_root()))
    try:
        proc = subprocess.run([str(python()), str(SCRIPT), command, json.dumps(args), str(scratch)], cwd=scratch,
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"peer {command} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
