"""The agent patterns, each durable: every agent run is a child context, so a resumed workflow
skips finished links, branches and rounds without re-running (or re-paying for) them.

- ``chain``: prompt chaining with gates between links.
- ``route``: classify, then hand off to one specialised route.
- ``sectioning`` / ``vote``: parallelization (independent subtasks; several attempts, majority wins).
- ``orchestrator_workers``: a planner splits the task, workers run per subtask, a synthesizer joins.
- ``evaluator_optimizer``: generate, evaluate, feed the critique back, until it passes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from duragent.durable import DurableContext, MapConfig, ParallelConfig

from .agent import Agent, AgentError, AgentResult
from .usage import Ledger


class GateFailedError(AgentError):
    """A chain's gate rejected a link's output."""


def _run(ctx: DurableContext, agent: Agent, prompt: str, name: str) -> AgentResult:
    """Run an agent in its own child context; the returned result is rebuilt on replay."""
    holder: dict[str, AgentResult] = {}

    def body(child: DurableContext) -> Any:
        result = agent.run(child, prompt)
        holder["result"] = result
        return _dump(result.output)

    output = ctx.run_in_child_context(body, name=name)
    result = holder.get("result")
    if result is None:  # replayed from the child's checkpoint: only the output is known
        return AgentResult(output=_load(agent, output), messages=[], usage=Ledger().total_usage, ledger=Ledger(),
                           turns=0)
    return result


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


def chain(ctx: DurableContext, links: Sequence[Link], initial: Any) -> ChainResult:
    value = initial
    outputs: dict[str, Any] = {}
    for link in links:
        value = _run(ctx, link.agent, link.prompt(value), name=link.name).output
        outputs[link.name] = value
        if link.gate is not None and not link.gate(value):
            raise GateFailedError(f"gate after {link.name!r} rejected its output: {str(value)[:200]!r}")
    return ChainResult(value, outputs)


# -- routing -------------------------------------------------------------------------------------
def route(ctx: DurableContext, router: Agent, routes: Mapping[str, Callable[[DurableContext, str], Any]],
          request: str, *, default: str | None = None) -> tuple[str, Any]:
    """``router`` answers with a route name (text or an output_type with a ``route`` field); that
    route's handler ``fn(child_ctx, request)`` runs in a child context named for it."""
    prompt = f"Classify this request into one of {sorted(routes)}. Answer with the name only.\n\n{request}"
    answer = _run(ctx, router, prompt, name="route: classify").output
    chosen = str(getattr(answer, "route", answer)).strip().strip(".").strip('"\'`').strip()
    if chosen not in routes:  # models capitalise freely: "Billing." means the "billing" route
        chosen = next((r for r in routes if r.lower() == chosen.lower()), chosen)
    if chosen not in routes:
        if default is None:
            raise AgentError(f"router answered {chosen!r}, which is not one of {sorted(routes)}")
        chosen = default
    handler = routes[chosen]
    return chosen, ctx.run_in_child_context(lambda child: handler(child, request), name=f"route: {chosen}")


# -- parallelization -----------------------------------------------------------------------------
def sectioning(ctx: DurableContext, sections: Mapping[str, tuple[Agent, str]], *,
               max_concurrency: int | None = None) -> dict[str, Any]:
    """Independent subtasks at once; results keyed by section name, in the given order."""
    names = list(sections)

    def branch(child: DurableContext, name: str, index: int, items: Sequence[Any]) -> Any:
        agent, prompt = sections[name]
        return _dump(agent.run(child, prompt).output)

    batch = ctx.map(names, branch, name="sectioning",
                    config=MapConfig(max_concurrency=max_concurrency, item_namer=lambda n, i: f"section: {n}"))
    batch.throw_if_error()
    return {names[item.index]: _load(sections[names[item.index]][0], item.result) for item in batch.all}


def vote(ctx: DurableContext, agent: Agent, prompt: str, *, voters: int = 3,
         key: Callable[[Any], Any] = lambda v: str(v).strip().lower()) -> tuple[Any, Counter[Any]]:
    """The same task several times; the most common answer (by ``key``) wins."""
    branches = [(f"voter {i + 1}", (lambda child, i=i: _dump(agent.run(child, prompt).output)))
                for i in range(voters)]
    batch = ctx.parallel(branches, name="vote", config=ParallelConfig())
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


def orchestrator_workers(ctx: DurableContext, orchestrator: Agent, worker: Agent, task: str, *,
                         synthesizer: Agent | None = None, max_concurrency: int | None = 4) -> Any:
    """``orchestrator`` (output_type=Plan) splits the task; one ``worker`` run per subtask, in
    parallel; ``synthesizer`` (or a plain join) combines their outputs."""
    plan = _run(ctx, orchestrator, f"Break this task into independent subtasks:\n\n{task}", name="orchestrate").output
    if not isinstance(plan, Plan):
        plan = Plan.model_validate(plan)

    def work(child: DurableContext, subtask: Any, index: int, items: Sequence[Any]) -> Any:
        item = subtask if isinstance(subtask, Subtask) else Subtask.model_validate(subtask)
        return _dump(worker.run(child, f"{item.title}\n\n{item.instructions}").output)

    batch = ctx.map([s.model_dump() for s in plan.subtasks], work, name="workers",
                    config=MapConfig(max_concurrency=max_concurrency,
                                     item_namer=lambda s, i: f"worker: {s['title'][:60]}"))
    batch.throw_if_error()
    pieces = batch.get_results()
    if synthesizer is None:
        return pieces
    joined = "\n\n".join(f"## {s.title}\n{p}" for s, p in zip(plan.subtasks, pieces, strict=True))
    return _run(ctx, synthesizer, f"Combine these results for the task:\n{task}\n\n{joined}", name="synthesize").output


# -- evaluator-optimizer ---------------------------------------------------------------------------
class Evaluation(BaseModel):
    passed: bool
    feedback: str = ""


@dataclass
class OptimizeResult:
    output: Any
    rounds: int
    evaluations: list[Evaluation]


def evaluator_optimizer(ctx: DurableContext, generator: Agent, evaluator: Agent, task: str, *,
                        max_rounds: int = 3) -> OptimizeResult:
    """Generate; ``evaluator`` (output_type=Evaluation) judges; its feedback drives the next draft."""
    evaluations: list[Evaluation] = []
    prompt = task
    draft: Any = None
    for round_no in range(1, max_rounds + 1):
        draft = _run(ctx, generator, prompt, name=f"generate {round_no}").output
        verdict = _run(ctx, evaluator, f"Task:\n{task}\n\nCandidate:\n{draft}\n\nDoes it pass? Give feedback.",
                       name=f"evaluate {round_no}").output
        evaluation = verdict if isinstance(verdict, Evaluation) else Evaluation.model_validate(verdict)
        evaluations.append(evaluation)
        if evaluation.passed:
            return OptimizeResult(draft, round_no, evaluations)
        prompt = f"{task}\n\nYour previous attempt:\n{draft}\n\nReviewer feedback:\n{evaluation.feedback}\n\nImprove it."
    return OptimizeResult(draft, max_rounds, evaluations)
