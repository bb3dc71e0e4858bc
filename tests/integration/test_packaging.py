"""One import root (issue: `duragent` installs beside the rest of the Python ecosystem).

The wheel and the sdist are built from a copy of the repository, installed into fresh virtualenvs
beside the real ``openai-agents`` (which owns the top-level ``agents`` package) and throwaway
distributions that own top-level ``durable``, ``tools`` and ``prompts`` (as ``durable-rules`` and the
PyPI ``tools`` package do), in both install orders. Everything is installed offline from the
wheelhouse that ``make install`` fills (tests send no traffic beyond loopback).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("DURAGENT_WHEELHOUSE", REPO / ".venv" / "wheelhouse"))

pytestmark = pytest.mark.skipif(
    not any(WHEELHOUSE.glob("openai_agents-*.whl")) and not os.environ.get("CI"),
    reason=f"no wheelhouse at {WHEELHOUSE}; `make install` fills it")


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _copy_repo(dest: Path) -> Path:
    """The files git tracks (symbolic links kept as links), as a clean clone would have them."""
    files = _run(["git", "ls-files", "-z"], cwd=REPO).split("\0")
    for name in filter(None, files):
        source, target = REPO / name, dest / name
        if not source.exists() and not source.is_symlink():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    for name in ("duragent/__init__.py", "duragent/py.typed"):  # new files not yet committed count too
        if not (dest / name).exists():
            shutil.copy2(REPO / name, dest / name)
    for link in ("durable", "agents", "tools", "prompts"):
        if not (dest / "duragent" / link).is_symlink():
            (dest / "duragent" / link).symlink_to(f"../{link}")
    return dest


def _throwaway_wheel(out: Path, dist: str, package: str, marker: str) -> Path:
    """A minimal wheel that installs a top-level ``package`` (what durable-rules or PyPI's tools do)."""
    files = {
        f"{package}/__init__.py": f"MARKER = {marker!r}\n",
        f"{dist}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n",
        f"{dist}-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}-1.0.dist-info/top_level.txt": f"{package}\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}-1.0.dist-info/RECORD,,")
    files[f"{dist}-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    path = out / f"{dist}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("packaging")
    source = _copy_repo(work / "src")
    dist = work / "dist"
    dist.mkdir()
    build = [sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
             "print(getattr(b, sys.argv[1])(sys.argv[2]))"]
    sdist = dist / _run([*build, "build_sdist", str(dist)], cwd=source).strip().splitlines()[-1]
    with tarfile.open(sdist) as archive:
        archive.extractall(work / "unpacked", filter="data")
    unpacked = next((work / "unpacked").iterdir())
    from_sdist = work / "from-sdist"
    from_sdist.mkdir()
    wheel = from_sdist / _run([*build, "build_wheel", str(from_sdist)], cwd=unpacked).strip().splitlines()[-1]
    direct = work / "direct"
    direct.mkdir()
    direct_wheel = direct / _run([*build, "build_wheel", str(direct)], cwd=source).strip().splitlines()[-1]
    throwaways = work / "throwaway"
    throwaways.mkdir()
    return {
        "work": work, "wheel": wheel, "direct_wheel": direct_wheel, "sdist": sdist,
        "durable": _throwaway_wheel(throwaways, "durable_lookalike", "durable", "rules"),
        "tools": _throwaway_wheel(throwaways, "tools_lookalike", "tools", "pypi-tools"),
        "prompts": _throwaway_wheel(throwaways, "prompts_lookalike", "prompts", "other-prompts"),
    }


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {n for n in archive.namelist() if ".dist-info/" not in n}


def test_the_wheel_installs_one_top_level_package(built: dict[str, Path]) -> None:
    names = _names(built["wheel"])
    assert {n.split("/", 1)[0] for n in names} == {"duragent"}
    assert _names(built["direct_wheel"]) == names, "a wheel built from the sdist differs from one built directly"
    for must in ("duragent/__init__.py", "duragent/py.typed", "duragent/cli/main.py", "duragent/ops/base.py",
                 "duragent/console/server.py", "duragent/console/static/app.js",
                 "duragent/console/static/app.css", "duragent/console/static/index.html",
                 "duragent/agents/agent.py", "duragent/tools/tool.py", "duragent/prompts/__init__.py",
                 "duragent/prompts/research_summarizer.md", "duragent/agents/toolsets.py",
                 "duragent/tools/mcp/session.py", "duragent/cli/mcp_server.py"):
        assert must in names, must
    with zipfile.ZipFile(built["wheel"]) as archive:
        info = next(n for n in archive.namelist() if n.endswith(".dist-info/top_level.txt") or
                    n.endswith(".dist-info/RECORD"))
        assert info
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith("METADATA"))
        assert "License-File: LICENSE" in metadata or "License-Expression: Apache-2.0" in metadata
        entry = next(archive.read(n).decode() for n in archive.namelist() if n.endswith("entry_points.txt"))
        assert "duragent = duragent.cli:main" in entry


CHECK = textwrap.dedent("""
    import sys
    from agents import Runner, Agent as OpenAIAgent      # openai-agents keeps its names
    import durable, tools, prompts                       # so do the throwaway top-level packages
    assert (durable.MARKER, tools.MARKER, prompts.MARKER) == ("rules", "pypi-tools", "other-prompts")
    from duragent import Agent, LocalRuntime, VirtualClock, durable_function, tool, render
    assert Agent is not OpenAIAgent
    sys.path.insert(0, sys.argv[1])
    import prompt_chain
    rt = LocalRuntime(sys.argv[2], clock=VirtualClock())
    info = rt.run(prompt_chain.prompt_chain, {"topic": "durable execution"})
    assert info.status == "SUCCEEDED", info.error
    print("OK", Runner.__name__, str(info.result)[:40])
""")


@pytest.mark.parametrize("order", ["duragent-first", "others-first"])
def test_installs_beside_openai_agents_and_lookalikes(built: dict[str, Path], order: str) -> None:
    venv = built["work"] / f"venv-{order}"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(WHEELHOUSE)]
    ours = [str(built["wheel"])]
    theirs = ["openai-agents", str(built["durable"]), str(built["tools"]), str(built["prompts"])]
    for group in ([ours, theirs] if order == "duragent-first" else [theirs, ours]):
        _run([*pip, *group])
    offline = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}  # the scripted model
    out = _run([python, "-c", CHECK, str(REPO / "examples"), str(built["work"] / f"{order}.db")],
               cwd=built["work"], env=offline)
    assert out.startswith("OK Runner"), out
    assert "No broken requirements found" in _run([python, "-m", "pip", "check"], cwd=built["work"])
    version = _run([str(venv / "bin" / "duragent"), "--version"])
    assert version.startswith("duragent "), version
    # the installed RECORD lists exactly one top-level package
    record = next((venv / "lib").glob("python3*/site-packages/duragent-*.dist-info/RECORD")).read_text()
    tops = {line.split(",", 1)[0].split("/", 1)[0] for line in record.splitlines() if line}
    tops = {t for t in tops if not t.endswith(".dist-info") and t not in ("..", "")}
    assert tops == {"duragent"}, tops
    # uninstalling ours leaves theirs whole
    _run([python, "-m", "pip", "uninstall", "-q", "-y", "duragent"])
    _run([python, "-c", "from agents import Runner; import durable, tools, prompts; assert tools.MARKER"],
         cwd=built["work"])
