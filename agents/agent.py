"""Agent: a tool-calling loop where every model call and every tool call is a durable step.

The loop is ordinary Python over checkpointed results: on replay each model call returns its
stored ``ModelResponse`` (nothing is paid twice) and the conversation is rebuilt from those, so
the journal grows with each response, never with the square of the conversation.

One loop serves both kinds of handler: it is a flow (durable/flow.py), so ``agent.run(ctx, prompt)``
runs it now in a sync handler and returns an awaitable in an async one (``await agent.run(ctx,
prompt)``), where model calls use the async SDK clients and parallel tool calls run as tasks.

A run may continue a conversation (``history=``, see agents/history.py), hand it to another agent
(``handoffs=``: the loop goes on with that agent's instructions and tools, the conversation
unchanged) and call other agents as tools (``as_tool``, whose spend is booked here and counts
against this agent's ``Budget``). While a model answers, its text goes live to whoever follows the
execution (``ctx.live``), and only then: with nobody listening the request is not even streamed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

from pydantic import TypeAdapter, ValidationError
from tenacity import stop_after_attempt, wait_random_exponential
from tenacity.retry import retry_if_exception
from tenacity.wait import wait_base

from duragent.durable import (
    AsyncDurableContext,
    DurableContext,
    DurableError,
    Duration,
    JsonSerdes,
    MapConfig,
    NestingType,
    RetryPolicy,
    UsageError,
    step_context,
)
from duragent.durable.flow import Flow, emit, flow_body, run_flow

from .errors import ModelError
from .history import to_messages
from .human import DEFAULT_REVIEW_TIMEOUT, ApprovalDecision, approval_flow
from .inflight import call_recoverable, is_recoverable, lost_so_far, request_hash, sent_call_config
from .messages import (
    ContentBlock,
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
from .spend import BudgetScope, RunSpend, check_budgets, invocation_mark
from .telemetry import record_ledger_span, record_model_call_span
from .toolsets import Toolbox, split_tools
from .usage import Ledger, Price

if TYPE_CHECKING:
    from .subagents import AgentTool

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
    """The whole conversation: the history the run was given, then what it added."""
    usage: Usage
    ledger: Ledger
    turns: int
    warnings: list[str] = field(default_factory=list)
    last_agent: Agent | None = None
    """The agent that gave the final answer (another than the one run, after a handoff)."""
    history_length: int = 0
    """How many of ``messages`` came from the history passed in."""
    spend: RunSpend | None = field(default=None, repr=False)

    @property
    def new_messages(self) -> list[Message]:
        """What this run added: the prompt, the model's answers and the tool results. Pass
        ``history + new_messages`` (or ``messages``) as the next run's history."""
        return self.messages[self.history_length:]

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
    in an async one; ``agent.run_sync(prompt)`` to try it outside a durable function.

    ``handoffs``: agents this one may hand the conversation to (the model sees a
    ``transfer_to_<name>`` tool per agent, described by that agent's ``description``).
    """

    def __init__(self, model: str | Model, *, tools: Sequence[Any] = (), system: Any = None,
                 output_type: Any = None, name: str = "agent", max_turns: int = 25,
                 settings: ModelSettings | None = None, model_retry: RetryPolicy | None = None,
                 output_retries: int = 2, prices: dict[str, Price] | None = None, budget: Budget | None = None,
                 approval_timeout: Duration | None = DEFAULT_REVIEW_TIMEOUT, max_parallel_tools: int = 8,
                 on_prompt_change: Literal["fail", "warn"] = "fail", handoffs: Sequence[Agent] = (),
                 description: str | None = None) -> None:
        self._model_spec = model
        self._model: Model | None = model if not isinstance(model, str) else None
        self.tools, self.toolsets = split_tools(tools)  # toolsets: MCP servers, listed at run time
        self.system = system
        self.output_type = output_type
        self.name = name
        self.description = description
        """What this agent does: told to models that may hand over to it or call it as a tool."""
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
        self.handoffs: dict[str, Agent] = {}
        """The agents this one may hand over to, by the name of the tool the model calls."""
        for target in handoffs:
            tool_name = handoff_tool_name(target)
            if tool_name in self.tools or tool_name == FINAL_RESULT_TOOL or tool_name in self.handoffs:
                raise UsageError(f"{name}: the handoff to {target.name!r} would be the tool {tool_name!r}, a name "
                                 "already taken; give that agent another name")
            self.handoffs[tool_name] = target

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

    def as_tool(self, name: str | None = None, description: str | None = None) -> AgentTool:
        """This agent as a tool another agent can call: the model passes ``input`` (the task); the
        run is durable (a child context of the caller's), its output is the tool's result, and its
        spend is booked in the caller's ledger and counts against the caller's budget."""
        from .subagents import AgentTool

        return AgentTool(self, name=name, description=description)

    def __durable_function__(self) -> Any:
        """An Agent named as a target (``duragent chat app.py:agent``, a worker resuming its
        sessions) runs as a chat session with it (``agents.conversation``), the same one each time."""
        made = self.__dict__.get("_conversation")
        if made is None:
            from .session import conversation

            made = self.__dict__["_conversation"] = conversation(self)
        return made

    def agents(self) -> dict[str, Agent]:
        """This agent and every agent reachable through handoffs, by name."""
        found: dict[str, Agent] = {}
        pending = [self]
        while pending:
            agent = pending.pop()
            if agent.name in found:
                continue
            found[agent.name] = agent
            pending.extend(agent.handoffs.values())
        return found

    # -- the loop --------------------------------------------------------------------------------
    @overload
    def run(self, ctx: DurableContext, prompt: str | None = None, *,
            history: Sequence[Message | Mapping[str, Any]] | None = None,
            on_text: TextCallback | None = None) -> AgentResult: ...
    @overload
    def run(self, ctx: AsyncDurableContext, prompt: str | None = None, *,
            history: Sequence[Message | Mapping[str, Any]] | None = None,
            on_text: AsyncTextCallback | None = None) -> Awaitable[AgentResult]: ...
    @overload
    def run(self, ctx: None, prompt: str | None = None, *,
            history: Sequence[Message | Mapping[str, Any]] | None = None,
            on_text: TextCallback | None = None) -> Any: ...

    def run(self, ctx: Any, prompt: str | None = None, *, history: Sequence[Message | Mapping[str, Any]] | None = None,
            on_text: Any = None) -> Any:
        """Run the tool loop to a final answer. In a sync handler (DurableContext) it returns the
        AgentResult; in an async handler (AsyncDurableContext) it returns an awaitable of it:
        ``await agent.run(ctx, prompt)``, with model calls on the async SDK clients, parallel tool
        calls as concurrent tasks and ``on_text`` free to be an async function.

        ``history``: the conversation so far (ours or provider-style messages, see
        agents/history.py); ``prompt`` is appended as the next user message. ``ctx=None`` is a
        quick run outside any durable function (see ``run_sync``): the AgentResult, or an awaitable
        of it when called on a running event loop."""
        if ctx is None:
            from .quick import quick_run

            return quick_run(self, prompt, history=history, on_text=on_text)
        if not hasattr(ctx, "state"):
            raise UsageError(f"agent.run(ctx, prompt) takes the durable context first, got {type(ctx).__name__}; "
                             "outside a durable function use agent.run_sync(prompt) (or agent.run(None, prompt))")
        return run_flow(self.flow(ctx, prompt, history=history, on_text=on_text), ctx)

    def run_sync(self, prompt: str | None = None, *, history: Sequence[Message | Mapping[str, Any]] | None = None,
                 on_text: TextCallback | None = None) -> AgentResult:
        """Run the agent here and now, outside any durable function: for trying things out.

        The run is durable only in name: it uses a throwaway in-memory store that is gone when this
        returns (nothing survives a crash; nothing is recorded). A tool that needs a person's review
        cannot be answered here: the run stops with AgentError naming it. Use ``agent.run(ctx,
        ...)`` inside a durable function for everything else."""
        from .quick import run_sync

        return run_sync(self, prompt, history=history, on_text=on_text)

    def flow(self, ctx: Context, prompt: str | None = None, *,
             history: Sequence[Message | Mapping[str, Any]] | None = None, on_text: Any = None,
             budgets: Sequence[BudgetScope] = ()) -> Flow[AgentResult]:
        """``run`` as a flow (durable/flow.py), for callers that are flows themselves. ``budgets``:
        a caller's budgets this run also answers to (see agents/spend.py)."""
        boxes = {name: Toolbox(agent.tools, agent.toolsets, agent=name, on_change=agent.on_prompt_change)
                 for name, agent in self.agents().items()}  # one per agent a handoff may reach
        loop = self._loop(ctx, prompt, history, on_text, budgets, boxes)
        for box in boxes.values():  # each closes its sessions whenever the run stops here
            loop = box.around(ctx, loop)
        return (yield from loop)

    def _loop(self, ctx: Context, prompt: str | None, history: Sequence[Message | Mapping[str, Any]] | None,
              on_text: Any, budgets: Sequence[BudgetScope], boxes: dict[str, Toolbox]) -> Flow[AgentResult]:
        base = to_messages(history, system=_system_text(self.system))
        messages = list(base)
        if prompt is not None:
            messages = to_messages([*messages, Message.user(prompt)])  # after a user message: one turn
        if not messages or messages[-1].role != "user":
            raise UsageError(f"{self.name}: nothing to answer; pass a prompt, or a history that ends with a user "
                             "message")
        scopes = ([BudgetScope(self.budget, self.name)] if self.budget is not None else []) + list(budgets)
        spend = RunSpend(Ledger(prices=self.prices), scopes)
        warnings: list[str] = []
        output_failures = 0
        current = self
        box = boxes[self.name]
        opening: Literal["prompt", "system", None] = "system" if not base else "prompt"
        yield from box.start(ctx)
        for turn in range(1, self.max_turns + 1):
            yield from check_budgets(ctx, spend, current.name, self.approval_timeout)
            system = _system_text(current.system)
            expected_hash = prompt_hash(system)
            offered = yield from box.offer(ctx)
            request = ModelRequest(system=system, messages=messages, tools=current.specs() + offered,
                                   settings=current.settings)
            response, replayed = yield from current._call_model(ctx, request, turn, on_text, expected_hash, box,
                                                                 opening=opening)
            warnings.extend(box.seen(response))
            opening = None
            if replayed and response.prompt_hash != expected_hash:
                message = (f"{current.name}: model call #{turn} was made with a different system prompt "
                           f"(hash {response.prompt_hash}, now {expected_hash}); the prompt was edited while "
                           "this execution was suspended")
                if current.on_prompt_change == "fail":
                    raise PromptChangedError(message + "; pass on_prompt_change='warn' to continue anyway")
                log.warning("%s; continuing (on_prompt_change='warn')", message)
                warnings.append(message)
            spend.record(response, replayed=replayed)
            messages.append(response.as_message())
            calls = response.tool_calls
            adapter = current._output_adapter
            final = [c for c in calls if c.name == FINAL_RESULT_TOOL]
            if final and adapter is not None:
                try:
                    output = adapter.validate_python(final[0].arguments)
                except ValidationError as exc:
                    output_failures = current._output_failure(output_failures, exc)
                    results = [ToolResult(tool_call_id=c.id, content=_validation_feedback(exc) if c is final[0]
                                          else "not run: final_result was invalid", is_error=True) for c in calls]
                    messages.append(Message(role="user", content=list(results)))
                    continue
                return self._result(output, messages, spend, turn, warnings, current, len(base))
            if calls:
                handoff = next((c for c in calls if c.name in current.handoffs), None)
                others = [c for c in calls if c.name not in current.handoffs]
                done: list[ToolResult] = []
                if others:
                    done = yield from current._run_tools(ctx, others, turn, spend, box)
                ran = iter(done)  # in the order of ``others``
                blocks: list[ContentBlock] = []
                for call in calls:
                    if call.name not in current.handoffs:
                        blocks.append(next(ran))
                    elif call is handoff:
                        target = current.handoffs[call.name]
                        blocks.append(ToolResult(tool_call_id=call.id, content=f"Transferred to {target.name}; "
                                                  f"{target.name} continues the conversation."))
                    else:
                        blocks.append(ToolResult(tool_call_id=call.id, is_error=True,
                                                 content=f"Not transferred: {handoff.name if handoff else ''} was "
                                                          "chosen first (one handoff per answer)."))
                messages.append(Message(role="user", content=blocks))
                if handoff is not None:
                    current = current.handoffs[handoff.name]
                    output_failures = 0
                    opening = "system"  # the agent taking over: its instructions and the question it got
                    box = boxes[current.name]
                    yield from box.start(ctx)
                continue
            if adapter is None:
                return self._result(response.text, messages, spend, turn, warnings, current, len(base))
            try:
                output = adapter.validate_json(response.text)
            except ValidationError as exc:
                output_failures = current._output_failure(output_failures, exc)
                messages.append(Message.user(f"{_validation_feedback(exc)}\nCall the {FINAL_RESULT_TOOL} tool "
                                             "with your final answer."))
                continue
            return self._result(output, messages, spend, turn, warnings, current, len(base))
        raise MaxTurnsExceededError(f"{self.name} did not finish within {self.max_turns} turns; raise "
                                    "max_turns or give the model a clearer stopping point")

    def specs(self) -> list[ToolSpec]:
        """What the model is told about this agent's tools (handoffs and final_result included)."""
        specs = [t.spec() for t in self.tools.values()]
        specs.extend(ToolSpec(name=tool_name, description=target.description or
                              f"Hand the conversation over to {target.name}.", parameters=_NO_ARGUMENTS)
                     for tool_name, target in self.handoffs.items())
        if self._output_adapter is not None:
            specs.append(ToolSpec(name=FINAL_RESULT_TOOL, description="Call this once with your final answer.",
                                  parameters=self._output_adapter.json_schema()))
        return specs

    def _result(self, output: Any, messages: list[Message], spend: RunSpend, turns: int, warnings: list[str],
                last: Agent, history_length: int) -> AgentResult:
        ledger = spend.ledger
        record_ledger_span(self.name, ledger)
        return AgentResult(output=output, messages=messages, usage=ledger.total_usage, ledger=ledger, turns=turns,
                           warnings=warnings, last_agent=last, history_length=history_length, spend=spend)

    def _output_failure(self, failures: int, exc: ValidationError) -> int:
        failures += 1
        if failures > self.output_retries:
            raise OutputValidationError(f"{self.name}: the model's output failed validation {failures} times; "
                                        f"last error: {exc.errors()[0]['msg']}") from exc
        return failures

    def _call_model(self, ctx: Context, request: ModelRequest, turn: int, on_text: Any,
                    expected_hash: str | None, box: Toolbox, *,
                    opening: Literal["prompt", "system", None] = None) -> Flow[tuple[ModelResponse, bool]]:
        """One model call as a step. ``opening``: record what this agent's part of the run began
        from with the answer (the prompt, and its system prompt with "system"), for the console."""
        ran: list[bool] = []
        model = self.model
        name = f"{self.name}: model call {turn}"
        stamp = {"prompt_hash": expected_hash, "tools_hash": tools_hash(request.tools),
                 "opening": _opening(request, opening == "system") if opening else None, "toolsets": box.stamp()}
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
            return stamped(model.request(request, on_text=_live_text(ctx, on_text, self.name, name)))

        async def amodel_call() -> ModelResponse:
            return stamped(await request_async(model, request, on_text=_alive_text(ctx, on_text, self.name, name)))

        # at-most-once: the START is the record that the request was sent (see agents.inflight)
        response = yield ctx.step(amodel_call if ctx.is_async else model_call, name=name,
                                  config=sent_call_config(self.model_retry))
        return response, not ran

    # -- tools ---------------------------------------------------------------------------------
    def _run_tools(self, ctx: Context, calls: list[ToolCall], turn: int, spend: RunSpend,
                   box: Toolbox) -> Flow[list[ToolResult]]:
        """Run the calls (several at once as a map) and book what sub-agents among them spent."""
        inherited = spend.for_sub_run()
        if len(calls) == 1:
            results = [(yield from self._run_tool(ctx, calls[0], box, inherited))]
        else:
            def branch(child: Context, call: ToolCall, index: int, items: Sequence[Any]) -> Flow[ToolResult]:
                return self._run_tool(child, call, box, inherited)

            batch = yield ctx.map(calls, flow_body(branch), name=f"{self.name}: tools {turn}",
                                  config=MapConfig(max_concurrency=self.max_parallel_tools,
                                                   nesting_type=NestingType.FLAT, item_serdes=JsonSerdes(ToolResult)))
            by_index = {item.index: item for item in batch.all}
            results = []
            for index, call in enumerate(calls):
                item = by_index.get(index)
                if item is not None and item.result is not None:
                    results.append(item.result)
                else:
                    error = item.error if item is not None else None
                    if error is not None and error.error_type == BudgetExceededError.recorded_name:
                        raise BudgetExceededError(error.message) from error  # a sub-agent stopped at a budget
                    results.append(ToolResult(tool_call_id=call.id, content=f"tool failed: {error}", is_error=True))
        out = []
        for result in results:
            if result.spend is not None:
                spend.absorb(result.spend, replayed=result.spend.invocation != invocation_mark(ctx),
                             inherited=spend.scopes)
                result = result.model_copy(update={"spend": None})
            out.append(result)
        return out

    def _run_tool(self, ctx: Context, call: ToolCall, box: Toolbox,
                  budgets: Sequence[BudgetScope] = ()) -> Flow[ToolResult]:
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
                result = yield from _tool_flow(tool, ctx, arguments, call.id, budgets)
                return result.model_copy(update={"content": f"{decision.changes}\n{result.content}"})
        return (yield from _tool_flow(tool, ctx, arguments, call.id, budgets))


_NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


def handoff_tool_name(agent: Agent) -> str:
    """The tool a model calls to hand the conversation to ``agent``: ``transfer_to_<name>``."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", agent.name).strip("_") or "agent"
    return f"transfer_to_{slug}"[:64]


def _live_text(ctx: Context, on_text: Any, agent: str, name: str) -> Any:
    """The text callback of one model-call attempt: the caller's, plus the execution's followers
    when anyone listens (None when nobody wants the text: the request is then not streamed)."""
    live = ctx.live
    if not live.listening:
        return on_text
    current = step_context()

    def deliver(delta: str) -> None:
        live.send("text_delta", text=delta, agent=agent, name=name, operation_id=current.operation_id,
                  attempt=current.attempt)
        if on_text is not None:
            on_text(delta)

    return deliver


def _alive_text(ctx: Context, on_text: Any, agent: str, name: str) -> Any:
    """``_live_text`` for an async handler (``on_text`` may be async)."""
    live = ctx.live
    if not live.listening:
        return on_text
    current = step_context()

    async def deliver(delta: str) -> None:
        live.send("text_delta", text=delta, agent=agent, name=name, operation_id=current.operation_id,
                  attempt=current.attempt)
        if on_text is not None:
            await emit(on_text, delta)

    return deliver


def _tool_flow(tool: Any, ctx: Context, arguments: dict[str, Any], call_id: str,
               budgets: Sequence[BudgetScope] = ()) -> Flow[ToolResult]:
    """One tool call under either surface: a Tool's own flow, or a tool-like object's run()."""
    from .subagents import AgentTool

    flow = getattr(tool, "flow", None)
    if isinstance(tool, AgentTool):
        result = yield from tool.flow(ctx, arguments, call_id=call_id, budgets=budgets)
    elif flow is not None:
        result = yield from flow(ctx, arguments, call_id=call_id)
    else:
        result = yield tool.run(ctx, arguments, call_id=call_id)
    return _as_tool_result(result, call_id)


def _opening(request: ModelRequest, with_system: bool) -> Opening | None:
    """The user's latest prompt (and the system prompt), recorded with an agent's first model call
    in a run. A run that continues a conversation records its prompt only: a session's turns do not
    each store the same instructions again."""
    said = next((m for m in reversed(request.messages) if m.role == "user"
                 and any(isinstance(b, TextBlock) for b in m.content)), None)
    if said is None:
        return None
    text = "".join(b.text for b in said.content if isinstance(b, TextBlock))
    return Opening(system=request.system if with_system else None, prompt=text)


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

