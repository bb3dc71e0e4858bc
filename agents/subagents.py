"""An agent called as a tool by another agent (``Agent.as_tool``), durably.

The sub-agent runs in a child context of the caller's (named ``agent:<name>``): its model and tool
calls are checkpointed there, and the context's result (its output and its spend) is what a
replay reads back, so a finished sub-run is never paid for twice. Its spend is booked in the
caller's ledger and counts against the caller's budget (agents/spend.py); a sub-run stopped at a
budget stops its caller too (a reviewer's "no more spending" holds for the whole run).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from duragent.durable import ChildConfig, DurableOperationError, JsonSerdes, UsageError
from duragent.durable.flow import Flow, flow_body
from duragent.tools.errors import ToolValidationError
from duragent.tools.tool import to_text

from .messages import SubAgentSpend, ToolResult, ToolSpec

if TYPE_CHECKING:
    from .agent import Agent, Context
    from .spend import BudgetScope

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
AGENT_TOOL_PREFIX = "agent:"
"""Names the child context of an agent run as a tool (``agent:researcher``)."""

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The task, with everything needed to do it."}},
    "required": ["input"],
    "additionalProperties": False,
}


class AgentTool:
    """``agent.as_tool()``: what a calling agent's model sees as one tool taking ``input``."""

    requires_approval = False

    def __init__(self, agent: Agent, *, name: str | None = None, description: str | None = None) -> None:
        self.agent = agent
        self.name: str = name or re.sub(r"[^A-Za-z0-9_-]+", "_", agent.name).strip("_")[:64] or "agent"
        if not _NAME.match(self.name):
            raise UsageError(f"tool name {self.name!r} is invalid: use 1-64 characters from A-Z a-z 0-9 _ -")
        self.description: str = description or agent.description or \
            f"Ask the {agent.name} agent to do a task; give it everything it needs in input."
        self.parameters: dict[str, Any] = INPUT_SCHEMA

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def validate(self, arguments: dict[str, Any] | None) -> dict[str, Any]:
        task = (arguments or {}).get("input")
        if not isinstance(task, str) or not task.strip():
            raise ToolValidationError(f"{self.name} needs 'input': the task as text", tool_name=self.name)
        extra = sorted(set(arguments or {}) - {"input"})
        if extra:
            raise ToolValidationError(f"{self.name} takes only 'input'; unexpected: {', '.join(extra)}",
                                      tool_name=self.name)
        return {"input": task}

    def flow(self, ctx: Context, arguments: dict[str, Any], *, call_id: str,
             budgets: Sequence[BudgetScope] = ()) -> Flow[ToolResult]:
        """Run the agent on ``arguments['input']`` in a child context; its output becomes the
        result, its spend travels with it (``ToolResult.spend``)."""
        from .agent import BudgetExceededError

        task = self.validate(arguments)["input"]

        def body(child: Context) -> Flow[dict[str, Any]]:
            result = yield from self.agent.flow(child, task, budgets=budgets)
            assert result.spend is not None
            output = result.output.model_dump(mode="json") if isinstance(result.output, BaseModel) else result.output
            return {"output": output, "spend": result.spend.handed_back(child).model_dump(mode="json")}

        try:
            outcome = yield ctx.run_in_child_context(flow_body(body), name=f"{AGENT_TOOL_PREFIX}{self.name}",
                                                     config=ChildConfig(serdes=JsonSerdes()))
        except DurableOperationError as exc:
            if exc.error_type == BudgetExceededError.recorded_name:
                raise BudgetExceededError(exc.message) from exc
            return ToolResult(tool_call_id=call_id, is_error=True, content=f"{self.name} failed: {exc.message}")
        return ToolResult(tool_call_id=call_id, content=to_text(outcome.get("output")),
                          spend=SubAgentSpend.model_validate(outcome.get("spend") or {}))

    def __repr__(self) -> str:
        return f"AgentTool({self.name!r}, agent={self.agent.name!r})"


__all__ = ["AGENT_TOOL_PREFIX", "AgentTool"]
