"""Fetch and parse the AWS durable-execution conformance requirements (YAML test data).

The requirements ship inside the PyPI wheel ``aws-durable-execution-conformance-tests``. The
package declares Python 3.14, so it cannot be installed here; instead its wheel is downloaded
with ``pip download --python-version 3.14`` and unzipped into ``<repo>/.cache/conformance/``
(gitignored). The YAML is never vendored: it is fetched on first use and read as data only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PACKAGE_NAME = "aws-durable-execution-conformance-tests"
PACKAGE_VERSION = "1.0.0"
# sha256 of aws_durable_execution_conformance_tests-1.0.0-py3-none-any.whl as served by PyPI;
# checked so that a tampered or different artifact is never used as the test oracle.
WHEEL_SHA256 = "59b46cda93c0cbfed6a80f342ab0b93542ad8841196200a15fc716ebaa619c30"
ENV_OVERRIDE = "DURAGENT_CONFORMANCE_DIR"

_IMPORT_NAME = "aws_durable_execution_conformance_tests"
_REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = _REPO_ROOT / ".cache" / "conformance"

# Suite directory per requirement major number ("4-5" lives in callback/).
SUITES: dict[int, str] = {
    1: "step",
    2: "wait",
    3: "child",
    4: "callback",
    5: "invoke",
    6: "wait_for_condition",
    7: "wait_for_callback",
    8: "parallel",
    9: "map",
    10: "plugin",
}
_SUITE_NUMBERS: dict[str, int] = {name: num for num, name in SUITES.items()}
_ID_RE = re.compile(r"^(\d+)-(\d+)$")

# Runner defaults for AsyncConfig (CONFORMANCE.md §1.2).
DEFAULT_ASYNC_CONFIG: dict[str, Any] = {"PollIntervalSeconds": 2, "NoProgressTimeoutSeconds": 30}


@dataclass
class Requirement:
    """One parsed requirement file; field names follow CONFORMANCE.md §1.2."""

    id: str
    suite: str
    description: str
    handler: str
    input: Any
    variables: dict[str, Any]
    async_invoke: bool
    async_config: dict[str, Any]
    callback_actions: list[dict[str, Any]]
    expected_history: list[dict[str, Any]]
    expected_result: dict[str, Any] | None
    expected_logs: list[dict[str, Any]] | None
    optional: bool
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_yaml(cls, req_id: str, suite: str, data: dict[str, Any]) -> Requirement:
        """Build from a YAML mapping; only the keys the runner consumes are interpreted."""
        expected_logs = data.get("ExpectedLogs")
        return cls(
            id=req_id,
            suite=suite,
            description=str(data.get("description") or ""),
            handler=str(data.get("handler") or ""),
            input=data.get("Input"),
            variables=dict(data.get("Variables") or {}),
            # Only the capitalised key counts; lowercase `async: true` is prose (§1.2).
            async_invoke=data.get("AsyncInvoke") is True,
            async_config={**DEFAULT_ASYNC_CONFIG, **(data.get("AsyncConfig") or {})},
            callback_actions=list(data.get("CallbackActions") or []),
            expected_history=list(data.get("ExpectedExecutionHistory") or []),
            expected_result=data.get("ExpectedResult"),
            expected_logs=list(expected_logs) if expected_logs is not None else None,
            optional=data.get("optional") is True,
            raw=data,
        )


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Serialise the one-time fetch across processes (pytest-xdist workers, parallel runs)."""
    try:
        import fcntl
    except ImportError:  # non-POSIX: rely on the atomic rename alone
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _download_wheel(dest: Path) -> Path:
    """Run ``pip download`` for the pinned wheel and return its path (hash-checked)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.14",
        f"{PACKAGE_NAME}=={PACKAGE_VERSION}",
        "-d",
        str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"pip download of {PACKAGE_NAME}=={PACKAGE_VERSION} failed (rc={proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}\n"
            f"Set {ENV_OVERRIDE} to an unpacked test_requirements directory to work offline."
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected exactly one wheel in {dest}, found {[w.name for w in wheels]}")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{wheels[0].name}: sha256 {digest} does not match pinned {WHEEL_SHA256}")
    return wheels[0]


def _fetch_into(target: Path) -> None:
    """Download and unpack into a private staging dir, then atomically rename it to ``target``."""
    staging = Path(tempfile.mkdtemp(prefix=f".{PACKAGE_VERSION}-staging-", dir=target.parent))
    try:
        wheel = _download_wheel(staging / "wheel")
        tree = staging / "tree"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tree)
        if not (tree / _IMPORT_NAME / "test_requirements").is_dir():
            raise RuntimeError(f"{wheel.name} has no {_IMPORT_NAME}/test_requirements directory")
        try:
            os.rename(tree, target)
        except OSError:
            # Another process won the race without the lock (e.g. no fcntl); its copy is identical.
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@lru_cache(maxsize=1)
def _cached_requirements_dir() -> Path:
    target = CACHE_ROOT / PACKAGE_VERSION
    reqs = target / _IMPORT_NAME / "test_requirements"
    if reqs.is_dir():
        return reqs
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(CACHE_ROOT / f"{PACKAGE_VERSION}.lock"):
        if not reqs.is_dir():
            _fetch_into(target)
    return reqs


def requirements_dir() -> Path:
    """Return the ``test_requirements`` directory, fetching the pinned wheel on first use.

    ``$DURAGENT_CONFORMANCE_DIR`` overrides the location (offline runs, or trying another version).
    """
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{ENV_OVERRIDE}={override} is not a directory")
        return path
    return _cached_requirements_dir()


def _parse_id(req_id: str) -> tuple[int, int]:
    match = _ID_RE.match(req_id)
    if match is None:
        raise ValueError(f"requirement id must look like '4-5', got {req_id!r}")
    return int(match.group(1)), int(match.group(2))


def suite_of(req_id: str) -> str:
    """Suite directory name for a requirement id ('4-5' -> 'callback')."""
    major, _ = _parse_id(req_id)
    if major not in SUITES:
        raise ValueError(f"unknown suite number {major} in {req_id!r}")
    return SUITES[major]


def load_requirement(req_id: str) -> Requirement:
    """Parse ``<suite>/<req_id>.yaml`` with ``yaml.safe_load``."""
    suite = suite_of(req_id)
    path = requirements_dir() / suite / f"{req_id}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no requirement {req_id} at {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level is not a mapping")
    return Requirement.from_yaml(req_id, suite, data)


def all_requirement_ids(suite: str | None = None) -> list[str]:
    """Requirement ids of one suite (or of all suites when None), sorted numerically (1-2 < 1-10)."""
    if suite is None:
        return [req_id for name in SUITES.values() for req_id in all_requirement_ids(name)]
    if suite not in _SUITE_NUMBERS:
        raise ValueError(f"unknown suite {suite!r}; expected one of {sorted(_SUITE_NUMBERS)}")
    ids = [p.stem for p in (requirements_dir() / suite).glob("*.yaml") if _ID_RE.match(p.stem)]
    return sorted(ids, key=_parse_id)
