"""The README's hello world runs as printed, from a fresh directory, on the installed package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _block_after(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


def test_hello_world_runs_as_printed(tmp_path: Path) -> None:
    code = _block_after("## Hello, durable world")
    assert len([line for line in code.splitlines() if line.strip()]) <= 8, "the hello world stays short"
    (tmp_path / "hello.py").write_text(code)
    done = subprocess.run([sys.executable, "hello.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello, Ada"
    again = subprocess.run([sys.executable, "-m", "duragent", "--db", "hello.db", "list", "--json"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and '"SUCCEEDED"' in again.stdout, again.stdout + again.stderr


def test_readme_links_stay_inside_the_repository() -> None:
    text = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if target.startswith(("http://", "https://", "#")):
            continue
        assert not target.startswith(("/", "..")), target
        assert (REPO / target).exists(), f"README links to {target}, which is not in the repository"
    assert "ROADMAP" not in text and "../shared" not in text
