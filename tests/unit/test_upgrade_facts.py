"""Facts recorded from the start for safe upgrades: the handler version an execution began on, and
per model call the prompt hash, tool-schema hash and model id."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from duragent.agents import Agent
from duragent.agents.agent import tools_hash
from duragent.agents.models import ScriptedModel
from duragent.durable import LocalRuntime, VirtualClock
from duragent.durable.registry import resolve_target
from duragent.tools import tool


def _module(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return f"{path}:handler"


def test_each_execution_records_the_version_of_the_code_it_started_on(tmp_path: Path) -> None:
    old = resolve_target(_module(tmp_path, "v1", """
        def handler(event, ctx):
            return ctx.step(lambda: 1, name="one")
    """))
    new = resolve_target(_module(tmp_path, "v2", """
        def handler(event, ctx):
            return ctx.step(lambda: 2, name="one")
    """))
    rt = LocalRuntime(tmp_path / "v.db", clock=VirtualClock())
    first = rt.start(old, {}, name="on-v1")
    again = rt.start(old, {}, name="on-v1-again")
    second = rt.start(new, {}, name="on-v2")
    versions = [rt.get(e).handler_version for e in (first, again, second)]
    assert versions[0] and len(versions[0]) == 16
    assert versions[0] == versions[1] != versions[2]
    assert rt.get(first).to_dict()["handler_version"] == versions[0]


def test_each_model_call_records_prompt_tools_and_model(tmp_path: Path) -> None:
    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        return q.upper()

    model = ScriptedModel([ScriptedModel.tool_call("lookup", {"q": "x"}), "done"], name="m")
    agent = Agent(model, tools=[lookup], system="Be brief.")

    def handler(event: dict, ctx) -> str:  # type: ignore[no-untyped-def]
        return str(agent.run(ctx, "go").output)

    rt = LocalRuntime(tmp_path / "m.db", clock=VirtualClock())
    execution_id = rt.start(handler, {})
    rt.run_until_idle()
    calls = [json.loads(op.StepDetails.Result) for op in rt.operations(execution_id)
             if op.SubType == "ModelCall" and op.StepDetails and op.StepDetails.Result]
    assert len(calls) == 2
    assert {c["model"] for c in calls} == {"scripted:m"}
    assert len({c["prompt_hash"] for c in calls}) == 1 and calls[0]["prompt_hash"]
    assert len({c["tools_hash"] for c in calls}) == 1 and calls[0]["tools_hash"]
    assert tools_hash([lookup.spec()]) == calls[0]["tools_hash"]  # the schemas the model was offered
    assert tools_hash([]) is None
