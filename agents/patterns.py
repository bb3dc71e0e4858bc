"""The agent patterns, each durable: every agent run is a child context, so a resumed workflow
skips finished links, branches and rounds without re-running (or re-paying for) them.

- ``chain``: prompt chaining with gates between links.
- ``route``: classify, then hand off to one specialised route.
- ``sectioning`` / ``vote``: parallelization (independent subtasks; several attempts, majority wins).
- ``orchestrator_workers``: a planner splits the task, workers run per subtask, a synthesizer joins.
- ``evaluator_optimizer``: generate, evaluate, feed the critique back, until it passes.

Each pattern is a flow (durable/flow.py): called with a DurableContext it returns its result, with
an AsyncDurableContext an awaitable of it (``await chain(ctx, links, x)``), and its agents run
with ``await`` (route handlers and gates may be plain or, for route handlers, async).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from pydantic import BaseModel

from duragent.durable import AsyncDurableContext, DurableContext, MapConfig, ParallelConfig
from duragent.durable.flow import Flow, flow_body, run_flow

from .agent import Agent, AgentError, AgentResult
from .usage import Ledger


class GateFailedError(AgentError):
    """A chain's gate rejected a link's output."""


Context = DurableContext | AsyncDurableContext


def _run(ctx: Context, agent: Agent, prompt: str, name: str) -> Flow[AgentResult]:
    """Run an agent in its own child context; the returned result is rebuilt on replay."""
    holder: dict[str, AgentResult] = {}

    def body(child: Context) -> Flow[Any]:
        result = yield from agent.flow(child, prompt)
        holder["result"] = result
        return _dump(result.output)

    output = yield ctx.run_in_child_context(flow_body(body), name=name)
    result = holder.get("result")
    if result is None:  # replayed from the child's checkpoint: only the output is known
        return AgentResult(output=_load(agent, output), messages=[], usage=Ledger().total_usage, ledger=Ledger(),
                           turns=0)
    return result


def _output(ctx: Context, agent: Agent, prompt: str) -> Flow[Any]:
    """An agent's output, JSON-ready (a map or parallel branch's result)."""
    result = yield from agent.flow(ctx, prompt)
    return _dump(result.output)


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _load(agent: Agent, value: Any) -> Any:
    adapter = agent.output_adapter
    return adapter.validate_python(value) if adapter is not None and value is not None else value


# -- prompt chaining -----------------------------------------------------------------------------
@dataclass
class Link:
    name: str
    agent: Agent
    prompt: Callable[[Any], str]
    """Builds this link's prompt from the previous output (the initial input for the first link)."""
    gate: Callable[[Any], bool] | None = None
    """Checked on this link's output; False stops the chain with GateFailedError."""


@dataclass
class ChainResult:
    output: Any
    outputs: dict[str, Any] = field(default_factory=dict)


@overload
def chain(ctx: DurableContext, links: Sequence[Link], initial: Any) -> ChainResult: ...
@overload
def chain(ctx: AsyncDurableContext, links: Sequence[Link], initial: Any) -> Awaitable[ChainResult]: ...


def chain(ctx: Any, links: Sequence[Link], initial: Any) -> Any:
    return run_flow(_chain(ctx, links, initial), ctx)


def _chain(ctx: Context, links: Sequence[Link], initial: Any) -> Flow[ChainResult]:
    value = initial
    outputs: dict[str, Any] = {}
    for link in links:
        value = (yield from _run(ctx, link.agent, link.prompt(value), name=link.name)).output
        outputs[link.name] = value
        if link.gate is not None and not link.gate(value):
            raise GateFailedError(f"gate after {link.name!r} rejected its output: {str(value)[:200]!r}")
    return ChainResult(value, outputs)


# -- routing -------------------------------------------------------------------------------------
@overload
def route(ctx: DurableContext, router: Agent, routes: Mapping[str, Callable[[DurableContext, str], Any]],
          request: str, *, default: str | None = None) -> tuple[str, Any]: ...
@overload
def route(ctx: AsyncDurableContext, router: Agent, routes: Mapping[str, Callable[[AsyncDurableContext, str], Any]],
          request: str, *, default: str | None = None) -> Awaitable[tuple[str, Any]]: ...


def route(ctx: Any, router: Agent, routes: Mapping[str, Callable[[Any, str], Any]], request: str, *,
          default: str | None = None) -> Any:
    """``router`` answers with a route name (text or an output_type with a ``route`` field); that
    route's handler ``fn(child_ctx, request)`` (plain, or async in an async handler) runs in a
    child context named for it."""
    return run_flow(_route(ctx, router, routes, request, default=default), ctx)


def _route(ctx: Context, router: Agent, routes: Mapping[str, Callable[[Any, str], Any]], request: str, *,
           default: str | None) -> Flow[tuple[str, Any]]:
    prompt = f"Classify this request into one of {sorted(routes)}. Answer with the name only.\n\n{request}"
    answer = (yield from _run(ctx, router, prompt, name="route: classify")).output
    chosen = str(getattr(answer, "route", answer)).strip().strip(".").strip('"\'`').strip()
    if chosen not in routes:  # models capitalise freely: "Billing." means the "billing" route
        chosen = next((r for r in routes if r.lower() == chosen.lower()), chosen)
    if chosen not in routes:
        if default is None:
            raise AgentError(f"router answered {chosen!r}, which is not one of {sorted(routes)}")
        chosen = default
    handler = routes[chosen]
    return chosen, (yield ctx.run_in_child_context(lambda child: handler(child, request), name=f"route: {chosen}"))


# -- parallelization -----------------------------------------------------------------------------
@overload
def sectioning(ctx: DurableContext, sections: Mapping[str, tuple[Agent, str]], *,
               max_concurrency: int | None = None) -> dict[str, Any]: ...
@overload
def sectioning(ctx: AsyncDurableContext, sections: Mapping[str, tuple[Agent, str]], *,
               max_concurrency: int | None = None) -> Awaitable[dict[str, Any]]: ...


def sectioning(ctx: Any, sections: Mapping[str, tuple[Agent, str]], *, max_concurrency: int | None = None) -> Any:
    """Independent subtasks at once; results keyed by section name, in the given order."""
    return run_flow(_sectioning(ctx, sections, max_concurrency=max_concurrency), ctx)


def _sectioning(ctx: Context, sections: Mapping[str, tuple[Agent, str]], *,
                max_concurrency: int | None) -> Flow[dict[str, Any]]:
    names = list(sections)

    def branch(child: Context, name: str, index: int, items: Sequence[Any]) -> Flow[Any]:
        agent, prompt = sections[name]
        return _output(child, agent, prompt)

    batch = yield ctx.map(names, flow_body(branch), name="sectioning",
                          config=MapConfig(max_concurrency=max_concurrency, item_namer=lambda n, i: f"section: {n}"))
    batch.throw_if_error()
    return {names[item.index]: _load(sections[names[item.index]][0], item.result) for item in batch.all}


def _lowered(value: Any) -> Any:
    return str(value).strip().lower()


@overload
def vote(ctx: DurableContext, agent: Agent, prompt: str, *, voters: int = 3,
         key: Callable[[Any], Any] = _lowered) -> tuple[Any, Counter[Any]]: ...
@overload
def vote(ctx: AsyncDurableContext, agent: Agent, prompt: str, *, voters: int = 3,
         key: Callable[[Any], Any] = _lowered) -> Awaitable[tuple[Any, Counter[Any]]]: ...


def vote(ctx: Any, agent: Agent, prompt: str, *, voters: int = 3, key: Callable[[Any], Any] = _lowered) -> Any:
    """The same task several times; the most common answer (by ``key``) wins."""
    return run_flow(_vote(ctx, agent, prompt, voters=voters, key=key), ctx)


def _vote(ctx: Context, agent: Agent, prompt: str, *, voters: int,
          key: Callable[[Any], Any]) -> Flow[tuple[Any, Counter[Any]]]:
    voter = flow_body(lambda child: _output(child, agent, prompt))
    branches = [(f"voter {i + 1}", voter) for i in range(voters)]
    batch = yield ctx.parallel(branches, name="vote", config=ParallelConfig())
    answers = [_load(agent, r) for r in batch.get_results()]
    if not answers:
        batch.throw_if_error()
        raise AgentError("every voter failed")
    tally = Counter(key(a) for a in answers)
    winner_key = tally.most_common(1)[0][0]
    return next(a for a in answers if key(a) == winner_key), tally


# -- orchestrator-workers --------------------------------------------------------------------------
class Subtask(BaseModel):
    title: str
    instructions: str


class Plan(BaseModel):
    subtasks: list[Subtask]


def orchestrator_workers(ctx: Any, orchestrator: Agent, worker: Agent, task: str, *,
                         synthesizer: Agent | None = None, max_concurrency: int | None = 4) -> Any:
    """``orchestrator`` (output_type=Plan) splits the task; one ``worker`` run per subtask, in
    parallel; ``synthesizer`` (or a plain join) combines their outputs. Awaitable under an
    AsyncDurableContext."""
    return run_flow(_orchestrator_workers(ctx, orchestrator, worker, task, synthesizer=synthesizer,
                                          max_concurrency=max_concurrency), ctx)


def _orchestrator_workers(ctx: Context, orchestrator: Agent, worker: Agent, task: str, *,
                          synthesizer: Agent | None, max_concurrency: int | None) -> Flow[Any]:
    plan = (yield from _run(ctx, orchestrator, f"Break this task into independent subtasks:\n\n{task}",
                            name="orchestrate")).output
    if not isinstance(plan, Plan):
        plan = Plan.model_validate(plan)

    def work(child: Context, subtask: Any, index: int, items: Sequence[Any]) -> Flow[Any]:
        item = subtask if isinstance(subtask, Subtask) else Subtask.model_validate(subtask)
        return _output(child, worker, f"{item.title}\n\n{item.instructions}")

    batch = yield ctx.map([s.model_dump() for s in plan.subtasks], flow_body(work), name="workers",
                          config=MapConfig(max_concurrency=max_concurrency,
                                           item_namer=lambda s, i: f"worker: {s['title'][:60]}"))
    batch.throw_if_error()
    pieces = batch.get_results()
    if synthesizer is None:
        return pieces
    joined = "\n\n".join(f"## {s.title}\n{p}" for s, p in zip(plan.subtasks, pieces, strict=True))
    return (yield from _run(ctx, synthesizer, f"Combine these results for the task:\n{task}\n\n{joined}",
                            name="synthesize")).output


# -- evaluator-optimizer ---------------------------------------------------------------------------
class Evaluation(BaseModel):
    passed: bool
    feedback: str = ""


@dataclass
class OptimizeResult:
    output: Any
    rounds: int
    evaluations: list[Evaluation]


@overload
def evaluator_optimizer(ctx: DurableContext, generator: Agent, evaluator: Agent, task: str, *,
                        max_rounds: int = 3) -> OptimizeResult: ...
@overload
def evaluator_optimizer(ctx: AsyncDurableContext, generator: Agent, evaluator: Agent, task: str, *,
                        max_rounds: int = 3) -> Awaitable[OptimizeResult]: ...


def evaluator_optimizer(ctx: Any, generator: Agent, evaluator: Agent, task: str, *, max_rounds: int = 3) -> Any:
    """Generate; ``evaluator`` (output_type=Evaluation) judges; its feedback drives the next draft."""
    return run_flow(_evaluator_optimizer(ctx, generator, evaluator, task, max_rounds=max_rounds), ctx)


def _evaluator_optimizer(ctx: Context, generator: Agent, evaluator: Agent, task: str, *,
                         max_rounds: int) -> Flow[OptimizeResult]:
    evaluations: list[Evaluation] = []
    prompt = task
    draft: Any = None
    for round_no in range(1, max_rounds + 1):
        draft = (yield from _run(ctx, generator, prompt, name=f"generate {round_no}")).output
        verdict = (yield from _run(ctx, evaluator,
                                   f"Task:\n{task}\n\nCandidate:\n{draft}\n\nDoes it pass? Give feedback.",
                                   name=f"evaluate {round_no}")).output
        evaluation = verdict if isinstance(verdict, Evaluation) else Evaluation.model_validate(verdict)
        evaluations.append(evaluation)
        if evaluation.passed:
            return OptimizeResult(draft, round_no, evaluations)
        prompt = f"{task}\n\nYour previous attempt:\n{draft}\n\nReviewer feedback:\n{evaluation.feedback}\n\nImprove it."
    return OptimizeResult(draft, max_rounds, evaluations)
