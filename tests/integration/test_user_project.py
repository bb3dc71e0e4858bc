"""A user's project with its own ``agents/``, ``tools/``, ``prompts/`` packages and a ``tools.py``
module runs under ``duragent run`` and ``duragent worker``: the user's directory serves the user's
own imports and can never replace a ``duragent.*`` module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

HANDLER = textwrap.dedent('''
    import agents, prompts, tools                    # the user's own packages, not ours
    from duragent import Agent, DurableContext, durable_function, tool
    from duragent.agents.models.scripted import ScriptedModel

    @tool
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    AGENT = Agent(model=ScriptedModel([ScriptedModel.tool_call("shout", {"text": tools.word()}), "done"]),
                  tools=[shout])

    @durable_function
    def handler(event: dict, ctx: DurableContext) -> dict:
        answer = ctx.wait_for_callback(lambda callback_id: None, name="go-ahead")
        result = AGENT.run(ctx, prompts.PROMPT)
        shouted = [m for m in result.messages if m.role == "user"][-1]
        return {"agents": agents.NAME, "answer": answer, "output": result.output,
                "tool_result": shouted.content[0].content}
''')

FILE_HANDLER = textwrap.dedent('''
    import tools                                     # jobs/tools.py, beside this file
    from duragent import DurableContext, durable_function

    @durable_function
    def job(event: dict, ctx: DurableContext) -> str:
        return ctx.step(tools.helper, name="helper")
''')


def _project(root: Path) -> Path:
    for package, text in {"agents": "NAME = 'user agents'\n",
                          "tools": "def word() -> str:\n    return 'user tools'\n",
                          "prompts": "PROMPT = 'user prompt'\n"}.items():
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text(text)
    (root / "its_module.py").write_text(HANDLER)
    (root / "jobs").mkdir()
    (root / "jobs" / "tools.py").write_text("def helper() -> str:\n    return 'from jobs/tools.py'\n")
    (root / "jobs" / "flow.py").write_text(FILE_HANDLER)
    return root


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    duragent = Path(sys.executable).with_name("duragent")
    return subprocess.run([str(duragent), "--db", str(root / "store.db"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_user_packages_named_like_ours_do_not_shadow_duragent(tmp_path: Path) -> None:
    root = _project(tmp_path / "project")
    started = _cli(root, "run", "its_module:handler", "--id", "user-job")
    assert started.returncode == 0, started.stderr
    pending = json.loads(_cli(root, "list", "--pending", "--json").stdout)["pending"]
    assert [p["execution_id"] for p in pending] == ["user-job"]
    answered = _cli(root, "callback", "succeed", pending[0]["callback_id"], "--result", '"yes"')
    assert answered.returncode == 0, answered.stderr
    served = _cli(root, "worker", "--until-idle")
    assert served.returncode == 0, served.stderr
    shown = json.loads(_cli(root, "show", "user-job", "--json").stdout)
    assert shown["status"] == "SUCCEEDED", shown
    assert shown["result"] == {"agents": "user agents", "answer": "yes", "output": "done",
                               "tool_result": "USER TOOLS"}


def test_a_file_target_imports_its_neighbours(tmp_path: Path) -> None:
    root = _project(tmp_path / "project")
    done = _cli(root, "run", "jobs/flow.py:job")
    assert done.returncode == 0, done.stderr
    listed = json.loads(_cli(root, "list", "--json").stdout)["executions"]
    assert listed[0]["status"] == "SUCCEEDED"
    shown = json.loads(_cli(root, "show", listed[0]["id"], "--json").stdout)
    assert shown["result"] == "from jobs/tools.py"
