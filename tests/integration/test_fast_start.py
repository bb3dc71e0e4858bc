"""Fast start: the operator commands (``duragent --help``, ``list``, ``show``) import no provider SDK,
and a worker imports one only when a model call needs it (not when the handler's module merely
builds an agent, nor when the agent's calls all replay from the journal). Checked by the modules
the process really imported, not by timing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.provider_server import ProviderServer, Reply

PROVIDER_SDKS = {"anthropic", "openai", "boto3", "botocore"}

RUN_AND_REPORT = textwrap.dedent("""
    import json, runpy, sys
    report, sys.argv = sys.argv[1], ["duragent", *sys.argv[2:]]
    try:
        runpy.run_module("duragent", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    with open(report, "w") as fh:
        json.dump({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}, fh)
""")

HANDLERS = textwrap.dedent("""
    from duragent import Agent
    from duragent.agents.models.anthropic import AnthropicModel

    AGENT = Agent(AnthropicModel("claude-fake"), name="helper")   # built when the module is imported

    def ask(event, ctx):
        if event.get("skip"):
            return ctx.step(lambda: "no model needed", name="plain")
        return AGENT.run(ctx, "Say hi.").output

    def ask_then_approve(event, ctx):
        answer = AGENT.run(ctx, "Say hi.").output
        return {"answer": answer, "approval": ctx.wait_for_callback(lambda callback_id: None, name="approve")}
""")


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as fake:
        yield fake


def duragent(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, set[str]]:
    """Run the ``duragent`` command in a fresh interpreter; its exit code and imported top-level modules."""
    code, modules, _ = duragent_output(tmp_path, env, *args)
    return code, modules


def duragent_output(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, set[str], str]:
    report = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", RUN_AND_REPORT, str(report), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert report.exists(), done.stderr
    data = json.loads(report.read_text())
    return int(data["code"] or 0), set(data["modules"]), done.stdout


def test_operator_commands_import_no_provider_sdk(tmp_path: Path, server: ProviderServer) -> None:
    (tmp_path / "jobs.py").write_text(HANDLERS)
    env = {**os.environ, "DURAGENT_DB": str(tmp_path / "store.db"), "ANTHROPIC_BASE_URL": server.url,
           "ANTHROPIC_API_KEY": "test-key", "NO_PROXY": "127.0.0.1,localhost"}
    server.enqueue(Reply(text="hi"))
    code, modules = duragent(tmp_path, env, "run", "jobs.py:ask", "--input", "{}", "--id", "asked")
    assert code == 0 and "anthropic" in modules  # a model call was needed: the SDK came in for it
    for args in (["--help"], ["list"], ["show", "asked"], ["history", "asked"]):
        code, modules = duragent(tmp_path, env, *args)
        assert code == 0, args
        assert not modules & PROVIDER_SDKS, (args, modules & PROVIDER_SDKS)


def test_a_worker_imports_a_provider_sdk_only_for_a_model_call(tmp_path: Path, server: ProviderServer) -> None:
    (tmp_path / "jobs.py").write_text(HANDLERS)
    env = {**os.environ, "DURAGENT_DB": str(tmp_path / "store.db"), "ANTHROPIC_BASE_URL": server.url,
           "ANTHROPIC_API_KEY": "test-key", "NO_PROXY": "127.0.0.1,localhost"}
    code, modules = duragent(tmp_path, env, "run", "jobs.py:ask", "--input", '{"skip": true}')
    assert code == 0
    assert not modules & PROVIDER_SDKS  # the module built an Anthropic agent, but no model was called
    assert server.request_count == 0


def test_a_worker_replaying_journaled_model_calls_imports_no_provider_sdk(tmp_path: Path,
                                                                         server: ProviderServer) -> None:
    (tmp_path / "jobs.py").write_text(HANDLERS)
    env = {**os.environ, "DURAGENT_DB": str(tmp_path / "store.db"), "ANTHROPIC_BASE_URL": server.url,
           "ANTHROPIC_API_KEY": "test-key", "NO_PROXY": "127.0.0.1,localhost"}
    server.enqueue(Reply(text="hi"))
    code, modules = duragent(tmp_path, env, "run", "jobs.py:ask_then_approve", "--input", "{}", "--id", "asked")
    assert code == 0 and "anthropic" in modules  # the first invocation called the model, then suspended
    code, modules, out = duragent_output(tmp_path, env, "list", "--pending", "--json")
    assert code == 0 and not modules & PROVIDER_SDKS
    [pending] = json.loads(out)["pending"]
    code, modules = duragent(tmp_path, env, "callback", "succeed", pending["callback_id"], "--result", '"yes"')
    assert code == 0 and not modules & PROVIDER_SDKS
    code, modules = duragent(tmp_path, env, "worker", "--until-idle")
    assert code == 0
    assert not modules & PROVIDER_SDKS  # the model call replayed from the journal: no SDK needed
    code, _, out = duragent_output(tmp_path, env, "show", "asked", "--json")
    assert json.loads(out)["result"] == {"answer": "hi", "approval": "yes"}
    assert server.request_count == 1
