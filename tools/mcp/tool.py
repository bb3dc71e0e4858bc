"""One tool of an MCP server, as the agent runs it: arguments checked against the server's JSON
schema, the call a durable step (its result checkpointed, so a replay never calls the server
again), approval and at-most-once as the toolset says, failures as results the model reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from duragent.agents.messages import ToolResult, ToolSpec
from duragent.agents.toolsets import run_on_session_loop
from duragent.durable import JsonSerdes, RetryPolicy, StepConfig, StepSemantics
from duragent.durable.errors import DurableOperationError
from duragent.durable.flow import Flow
from duragent.tools.errors import ToolValidationError
from duragent.tools.tool import error_text

from .results import result_text
from .session import MCPSession, Refused

if TYPE_CHECKING:
    from .servers import MCPToolset

_RESULT: JsonSerdes[ToolResult] = JsonSerdes(ToolResult)


class MCPTool:
    """A server tool bound to one agent run (its session is that run's, opened on first call)."""

    def __init__(self, toolset: MCPToolset, spec: ToolSpec, session: Callable[[], Any]) -> None:
        self.toolset = toolset
        self.name = spec.name
        self.description = spec.description
        self.parameters = spec.parameters
        self._session = session
        self._checker: Any = None
        self.requires_approval = toolset.approval_required(spec.name)
        self.at_most_once = toolset.call_at_most_once(spec.name)

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def validate(self, arguments: dict[str, Any] | None) -> dict[str, Any]:
        """The arguments if they fit the server's JSON schema, else ToolValidationError (for the model)."""
        arguments = dict(arguments or {})
        validator = self._validator()
        if validator is None:  # the server's schema is broken: let the server judge
            return arguments
        problems = sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path])
        if problems:
            listed = [{"field": ".".join(str(p) for p in e.absolute_path) or "(arguments)", "message": e.message}
                      for e in problems[:5]]
            details = "; ".join(f"{p['field']}: {p['message']}" for p in listed)
            raise ToolValidationError(f"invalid arguments for tool {self.name}: {details}. Fix them and call "
                                      "the tool again.", tool_name=self.name, errors=listed)
        return arguments

    def _validator(self) -> Any:
        if self._checker is None:
            from jsonschema import exceptions, validators  # imported when a call is checked (cold starts)

            cls = validators.validator_for(self.parameters)
            try:
                cls.check_schema(self.parameters)
                self._checker = cls(self.parameters)
            except exceptions.SchemaError:
                self._checker = False
        return self._checker or None

    def flow(self, ctx: Any, arguments: dict[str, Any] | None, *, call_id: str) -> Flow[ToolResult]:
        """One call as a durable step; every outcome is a ToolResult for the model."""
        try:
            checked = self.validate(arguments)
        except ToolValidationError as exc:
            return ToolResult(tool_call_id=call_id, content=str(exc), is_error=True)
        semantics = StepSemantics.AT_MOST_ONCE_PER_RETRY if self.at_most_once else StepSemantics.AT_LEAST_ONCE_PER_RETRY
        config = StepConfig(retry=self.toolset.retry or RetryPolicy.no_retry(), semantics=semantics, serdes=_RESULT)

        async def call() -> ToolResult:
            session: MCPSession = self._session()
            outcome = await session.call(self.name, checked)
            return _as_result(outcome, call_id, self.name, self.toolset)

        body: Any = call if ctx.is_async else (lambda: run_on_session_loop(call()))
        try:
            result: ToolResult = yield ctx.step(body, name=f"tool:{self.name}", config=config)
        except DurableOperationError as exc:  # down, silent, interrupted: the model is told
            return ToolResult(tool_call_id=call_id, content=error_text(exc.error_type, exc.message), is_error=True)
        return result

    def __repr__(self) -> str:
        flags = [f for f, on in (("at_most_once", self.at_most_once), ("requires_approval", self.requires_approval))
                 if on]
        return f"MCPTool({self.name!r} of {self.toolset.name!r}{', ' if flags else ''}{', '.join(flags)})"


def _as_result(outcome: Any, call_id: str, name: str, toolset: MCPToolset) -> ToolResult:
    if outcome is None:
        return ToolResult(tool_call_id=call_id, is_error=True,
                          content=f"{toolset.describe()} no longer offers the tool {name}; it was not run")
    if isinstance(outcome, Refused):
        return ToolResult(tool_call_id=call_id, is_error=True, content=f"the server refused the call: {outcome.message}")
    text = result_text(list(outcome.content), outcome.structured_content, bool(outcome.is_error))
    return ToolResult(tool_call_id=call_id, content=text, is_error=bool(outcome.is_error))


__all__ = ["MCPTool"]
