"""Agent: a tool-calling loop where every model call and every tool call is a durable step.

The loop is ordinary Python over checkpointed results: on replay each model call returns its
stored ``ModelResponse`` (nothing is paid twice) and the conversation is rebuilt from those, so
the journal grows with each response, never with the square of the conversation.

One loop serves both kinds of handler: it is a flow (durable/flow.py), so ``agent.run(ctx, prompt)``
runs it now in a sync handler and returns an awaitable in an async one (``await agent.run(ctx,
prompt)``), where model calls use the async SDK clients and parallel tool calls run as tasks.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from pydantic import TypeAdapter, ValidationError
from tenacity import stop_after_attempt, wait_random_exponential
from tenacity.retry import retry_if_exception
from tenacity.wait import wait_base

from duragent.durable import (
    AsyncDurableContext,
    CallbackTimeoutError,
    DurableContext,
    DurableError,
    Duration,
    JsonSerdes,
    MapConfig,
    NestingType,
    RetryPolicy,
)
from duragent.durable.flow import Flow, flow_body, run_flow

from .errors import ModelError
from .human import DEFAULT_REVIEW_TIMEOUT, ApprovalDecision, approval_flow, decision_flow
from .inflight import call_recoverable, is_recoverable, lost_so_far, request_hash, sent_call_config
from .messages import (
    Message,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    Opening,
    TextBlock,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from .models import infer_model
from .models.base import AsyncTextCallback, Model, TextCallback, request_async
from .review import Reject, ReviewError, ReviewRequest
from .telemetry import record_ledger_span, record_model_call_span
from .toolsets import Toolbox, split_tools
from .usage import Ledger, Price

FINAL_RESULT_TOOL = "final_result"

log = logging.getLogger("agents")


class AgentError(DurableError):
    """The agent could not finish."""


class MaxTurnsExceededError(AgentError):
    pass


class OutputValidationError(AgentError):
    pass


class PromptChangedError(AgentError):
    """The system prompt differs from the one recorded with a replayed model call."""


class ToolsChangedError(PromptChangedError):
    """A toolset (an MCP server) offers other tools than the run recorded (agents/toolsets.py)."""


class BudgetExceededError(AgentError):
    pass


class wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming
    """Honour a provider's Retry-After; otherwise back off with ``fallback``."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: Any) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return float(self.fallback(retry_state))


def model_retry_policy(max_attempts: int = 6) -> RetryPolicy:
    """Retry rate limits, overloads and malformed responses durably (Retry-After honoured)."""
    return RetryPolicy(stop=stop_after_attempt(max_attempts),
                       wait=wait_retry_after(wait_random_exponential(multiplier=2, max=60)),
                       retry=retry_if_exception(lambda e: isinstance(e, ModelError) and e.retryable))


@dataclass(frozen=True)
class Budget:
    """When reached, the agent asks a human whether to go on (it suspends; it does not fail)."""

    max_usd: float | None = None
    max_tokens: int | None = None


@dataclass
class AgentResult:
    output: Any
    messages: list[Message]
    usage: Usage
    ledger: Ledger
    turns: int
    warnings: list[str] = field(default_factory=list)

    @property
    def cost_usd(self) -> float:
        return self.ledger.total_cost


def tools_hash(specs: Sequence[ToolSpec]) -> str | None:
    """A stable digest of the tool schemas offered to the model (name, description, parameters)."""
    if not specs:
        return None
    text = json.dumps([s.model_dump() for s in specs], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prompt_hash(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()[:16]


def _system_text(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return system
    return str(getattr(system, "text", system))


Context = DurableContext | AsyncDurableContext


class Agent:
    """``Agent(model="anthropic:claude-sonnet-4-6", tools=[...], system=..., output_type=Model)``;
    ``agent.run(ctx, prompt) -> AgentResult`` in a sync handler, ``await agent.run(ctx, prompt)``
    in an async one."""

    def __init__(self, model: str | Model, *, tools: Sequence[Any] = (), system: Any = None,
                 output_type: Any = None, name: str = "agent", max_turns: int = 25,
                 settings: ModelSettings | None = None, model_retry: RetryPolicy | None = None,
                 output_retries: int = 2, prices: dict[str, Price] | None = None, budget: Budget | None = None,
                 approval_timeout: Duration | None = DEFAULT_REVIEW_TIMEOUT, max_parallel_tools: int = 8,
                 on_prompt_change: Literal["fail", "warn"] = "fail") -> None:
        self._model_spec = model
        self._model: Model | None = model if not isinstance(model, str) else None
        self.tools, self.toolsets = split_tools(tools)  # toolsets: MCP servers, listed at run time
        self.system = system
        self.output_type = output_type
        self.name = name
        self.max_turns = max_turns
        self.settings = settings or ModelSettings()
        self.model_retry = model_retry or model_retry_policy()
        self.output_retries = output_retries
        self.prices = prices
        self.budget = budget
        self.approval_timeout = approval_timeout
        self.max_parallel_tools = max_parallel_tools
        self.on_prompt_change = on_prompt_change
        self._output_adapter: TypeAdapter[Any] | None = TypeAdapter(output_type) if output_type is not None else None

    @property
    def output_adapter(self) -> TypeAdapter[Any] | None:
        """Validates a value into ``output_type`` (None without one): a checkpointed output is
        revalidated with it (see ``agents.patterns``)."""
        return self._output_adapter

    @property
    def model(self) -> Model:
        if self._model is None:
            self._model = infer_model(self._model_spec)
        return self._model

    def override(self, *, model: str | Model | None = None) -> Agent:
        """A copy with another model (tests swap in a scripted model without touching call sites)."""
        clone = Agent.__new__(Agent)
        clone.__dict__.update(self.__dict__)
        if model is not None:
            clone._model_spec = model
            clone._model = model if not isinstance(model, str) else None
        return clone

    # -- the loop --------------------------------------------------------------------------------
    @overload
    def run(self, ctx: DurableContext, prompt: str, *, on_text: TextCallback | None = None) -> AgentResult: ...
    @overload
    def run(self, ctx: AsyncDurableContext, prompt: str, *,
            on_text: AsyncTextCallback | None = None) -> Awaitable[AgentResult]: ...

    def run(self, ctx: Any, prompt: str, *, on_text: Any = None) -> Any:
        """Run the tool loop to a final answer. In a sync handler (DurableContext) it returns the
        AgentResult; in an async handler (AsyncDurableContext) it returns an awaitable of it:
        ``await agent.run(ctx, prompt)``, with model calls on the async SDK clients, parallel tool
        calls as concurrent tasks and ``on_text`` free to be an async function."""
        return run_flow(self.flow(ctx, prompt, on_text=on_text), ctx)

    def flow(self, ctx: Context, prompt: str, *, on_text: Any = None) -> Flow[AgentResult]:
        """``run`` as a flow (durable/flow.py), for callers that are flows themselves."""
        box = Toolbox(self.tools, self.toolsets, agent=self.name, on_change=self.on_prompt_change)
        return (yield from box.around(ctx, self._loop(ctx, prompt, on_text, box)))

    def _loop(self, ctx: Context, prompt: str, on_text: Any, box: Toolbox) -> Flow[AgentResult]:
        system = _system_text(self.system)
        expected_hash = prompt_hash(system)
        specs = [t.spec() for t in self.tools.values()]
        if self._output_adapter is not None:
            specs.append(ToolSpec(name=FINAL_RESULT_TOOL, description="Call this once with your final answer.",
                                  parameters=self._output_adapter.json_schema()))
        messages: list[Message] = [Message.user(prompt)]
        ledger = Ledger(prices=self.prices)
        warnings: list[str] = []
        output_failures = 0
        budget_checks = 0
        yield from box.start(ctx)
        for turn in range(1, self.max_turns + 1):
            budget_checks = yield from self._check_budget(ctx, ledger, budget_checks)
            offered = yield from box.offer(ctx)
            request = ModelRequest(system=system, messages=messages, tools=specs + offered, settings=self.settings)
            response, replayed = yield from self._call_model(ctx, request, turn, on_text, expected_hash, box)
            warnings.extend(box.seen(response))
            if replayed and response.prompt_hash != expected_hash:
                message = (f"{self.name}: model call #{turn} was made with a different system prompt "
                           f"(hash {response.prompt_hash}, now {expected_hash}); the prompt was edited while "
                           "this execution was suspended")
                if self.on_prompt_change == "fail":
                    raise PromptChangedError(message + "; pass on_prompt_change='warn' to continue anyway")
                log.warning("%s; continuing (on_prompt_change='warn')", message)
                warnings.append(message)
            ledger.record(response, replayed=replayed)
            messages.append(response.as_message())
            calls = response.tool_calls
            final = [c for c in calls if c.name == FINAL_RESULT_TOOL]
            if final and self._output_adapter is not None:
                try:
                    output = self._output_adapter.validate_python(final[0].arguments)
                except ValidationError as exc:
                    output_failures = self._output_failure(output_failures, exc)
                    results = [ToolResult(tool_call_id=c.id, content=_validation_feedback(exc) if c is final[0]
                                          else "not run: final_result was invalid", is_error=True) for c in calls]
                    messages.append(Message(role="user", content=list(results)))
                    continue
                return self._result(output, messages, ledger, turn, warnings)
            if calls:
                results = yield from self._run_tools(ctx, calls, turn, box)
                messages.append(Message(role="user", content=list(results)))
                continue
            if self._output_adapter is None:
                return self._result(response.text, messages, ledger, turn, warnings)
            try:
                output = self._output_adapter.validate_json(response.text)
            except ValidationError as exc:
                output_failures = self._output_failure(output_failures, exc)
                messages.append(Message.user(f"{_validation_feedback(exc)}\nCall the {FINAL_RESULT_TOOL} tool "
                                             "with your final answer."))
                continue
            return self._result(output, messages, ledger, turn, warnings)
        raise MaxTurnsExceededError(f"{self.name} did not finish within {self.max_turns} turns; raise "
                                    "max_turns or give the model a clearer stopping point")

    def _result(self, output: Any, messages: list[Message], ledger: Ledger, turns: int,
                warnings: list[str]) -> AgentResult:
        record_ledger_span(self.name, ledger)
        return AgentResult(output=output, messages=messages, usage=ledger.total_usage, ledger=ledger, turns=turns,
                           warnings=warnings)

    def _output_failure(self, failures: int, exc: ValidationError) -> int:
        failures += 1
        if failures > self.output_retries:
            raise OutputValidationError(f"{self.name}: the model's output failed validation {failures} times; "
                                        f"last error: {exc.errors()[0]['msg']}") from exc
        return failures

    def _call_model(self, ctx: Context, request: ModelRequest, turn: int, on_text: Any,
                    expected_hash: str | None, box: Toolbox) -> Flow[tuple[ModelResponse, bool]]:
        ran: list[bool] = []
        model = self.model
        name = f"{self.name}: model call {turn}"
        stamp = {"prompt_hash": expected_hash, "tools_hash": tools_hash(request.tools),
                 "opening": _opening(request) if turn == 1 else None, "toolsets": box.stamp()}
        if is_recoverable(model):  # the provider keeps the answer: its id is checkpointed first
            return (yield from call_recoverable(ctx, model, request, name=name,  # type: ignore[arg-type]
                                                retry=self.model_retry, on_text=on_text, stamp=stamp))

        def stamped(response: ModelResponse) -> ModelResponse:
            ran.append(True)
            response = response.model_copy(update={**stamp, "request_hash": request_hash(model.model_id, request),
                                                   "lost_in_flight": lost_so_far()})
            record_model_call_span(response, self.prices)
            return response

        def model_call() -> ModelResponse:
            return stamped(model.request(request, on_text=on_text))

        async def amodel_call() -> ModelResponse:
            return stamped(await request_async(model, request, on_text=on_text))

        # at-most-once: the START is the record that the request was sent (see agents.inflight)
        response = yield ctx.step(amodel_call if ctx.is_async else model_call, name=name,
                                  config=sent_call_config(self.model_retry))
        return response, not ran

    # -- tools ---------------------------------------------------------------------------------
    def _run_tools(self, ctx: Context, calls: list[ToolCall], turn: int, box: Toolbox) -> Flow[list[ToolResult]]:
        if len(calls) == 1:
            return [(yield from self._run_tool(ctx, calls[0], box))]

        def branch(child: Context, call: ToolCall, index: int, items: Sequence[Any]) -> Flow[ToolResult]:
            return self._run_tool(child, call, box)

        batch = yield ctx.map(calls, flow_body(branch), name=f"{self.name}: tools {turn}",
                              config=MapConfig(max_concurrency=self.max_parallel_tools,
                                               nesting_type=NestingType.FLAT, item_serdes=JsonSerdes(ToolResult)))
        by_index = {item.index: item for item in batch.all}
        results: list[ToolResult] = []
        for index, call in enumerate(calls):
            item = by_index.get(index)
            if item is not None and item.result is not None:
                results.append(item.result)
            else:
                error = item.error if item is not None else None
                results.append(ToolResult(tool_call_id=call.id, content=f"tool failed: {error}", is_error=True))
        return results

    def _run_tool(self, ctx: Context, call: ToolCall, box: Toolbox) -> Flow[ToolResult]:
        tool = box.get(call.name)
        if tool is None:
            return ToolResult(tool_call_id=call.id, is_error=True,
                              content=f"unknown tool {call.name!r}; available: {box.names()}")
        # Validate up front (a reviewer is never asked about a call that cannot run), but hand the
        # tool the raw JSON arguments: Tool.run validates them itself, and validating already
        # validated values again breaks non-idempotent validators (e.g. a "a,b" -> list parser).
        arguments = call.arguments
        try:
            tool.validate(arguments)
        except Exception as exc:  # validation errors go back to the model
            return ToolResult(tool_call_id=call.id, content=str(exc), is_error=True)
        if getattr(tool, "requires_approval", False):
            # the schema goes with the request so an operator can check an edit before sending it;
            # tool.validate checks the merged arguments again here (an edit it refuses is asked again)
            decision: ApprovalDecision = yield from approval_flow(
                ctx, tool=tool.name, arguments=call.arguments, name=f"approval:{tool.name}",
                timeout=self.approval_timeout, argument_schema=getattr(tool, "parameters", None),
                validate=tool.validate, tool_call_id=call.id)
            if not decision.approved:
                feedback = decision.feedback or "no reason given"
                content = (f"The reviewer rejected this call; it was not run. Feedback: {feedback}"
                           if decision.outcome == "rejected" else f"This call was not run: {feedback}.")
                return ToolResult(tool_call_id=call.id, is_error=True, content=content)
            if decision.arguments is not None:
                arguments = decision.arguments
            if decision.changes:  # the conversation holds the model's call: say what ran instead
                result = yield from _tool_flow(tool, ctx, arguments, call.id)
                return result.model_copy(update={"content": f"{decision.changes}\n{result.content}"})
        return (yield from _tool_flow(tool, ctx, arguments, call.id))

    # -- budget ----------------------------------------------------------------------------------
    def _check_budget(self, ctx: Context, ledger: Ledger, checks: int) -> Flow[int]:
        budget = self.budget
        if budget is None:
            return checks
        while True:
            usd_limit = budget.max_usd * (checks + 1) if budget.max_usd is not None else None
            token_limit = budget.max_tokens * (checks + 1) if budget.max_tokens is not None else None
            over = (usd_limit is not None and ledger.total_cost >= usd_limit) or \
                (token_limit is not None and ledger.total_usage.total_tokens >= token_limit)
            if not over:
                return checks
            checks += 1
            spent = f"${ledger.total_cost:.4f}, {ledger.total_usage.total_tokens} tokens"
            request = ReviewRequest(kind="budget", title=f"{self.name} reached its budget ({spent}). Continue?",
                                    question=f"Spent {spent}; approve to allow another budget's worth.")

            try:
                decision = yield from decision_flow(ctx, request, name=f"{self.name}: budget {checks}",
                                                    timeout=self.approval_timeout)
            except CallbackTimeoutError as exc:  # nobody answered: as with approvals, that is a no
                raise BudgetExceededError(f"{self.name} stopped at its budget ({spent}); no reviewer answered "
                                          "before the budget review timed out") from exc
            except ReviewError as exc:  # answers that never fit: no usable yes either
                raise BudgetExceededError(f"{self.name} stopped at its budget ({spent}); no usable answer to the "
                                          f"budget review arrived ({exc.problem})") from exc
            if isinstance(decision, Reject):
                raise BudgetExceededError(f"{self.name} stopped at its budget ({spent}); the reviewer declined "
                                          f"to continue: {decision.feedback}")


def _tool_flow(tool: Any, ctx: Context, arguments: dict[str, Any], call_id: str) -> Flow[ToolResult]:
    """One tool call under either surface: a Tool's own flow, or a tool-like object's run()."""
    flow = getattr(tool, "flow", None)
    if flow is not None:
        result = yield from flow(ctx, arguments, call_id=call_id)
    else:
        result = yield tool.run(ctx, arguments, call_id=call_id)
    return _as_tool_result(result, call_id)


def _opening(request: ModelRequest) -> Opening | None:
    """The system prompt and the user's first prompt, recorded with the first model call."""
    first = request.messages[0] if request.messages else None
    if first is None or first.role != "user":
        return None
    text = "".join(b.text for b in first.content if isinstance(b, TextBlock))
    return Opening(system=request.system, prompt=text)


def _as_tool_result(value: Any, call_id: str) -> ToolResult:
    if isinstance(value, ToolResult):
        return value
    if hasattr(value, "content") and hasattr(value, "is_error"):
        return ToolResult(tool_call_id=call_id, content=str(value.content), is_error=bool(value.is_error))
    if isinstance(value, str):
        return ToolResult(tool_call_id=call_id, content=value)
    return ToolResult(tool_call_id=call_id, content=json.dumps(value, default=str))


def _validation_feedback(exc: ValidationError) -> str:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()[:5])
    return f"Your output did not match the required schema: {problems}"

