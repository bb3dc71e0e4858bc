"""The agent patterns (agents/patterns.py): each one gives the right answer, and each one is durable.

Every test suspends its workflow in the middle (an agent calls a durable ``pause`` tool that waits
on the virtual clock), so the handler is replayed from the top at least once; per-agent model call
counters then show that agent runs which had finished were not run (nor paid for) again.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

from duragent.agents import Agent, AgentError
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock, ToolResult
from duragent.agents.models import FunctionModel, ScriptedModel
from duragent.agents.patterns import (
    Evaluation,
    GateFailedError,
    Link,
    Plan,
    Subtask,
    chain,
    evaluator_optimizer,
    orchestrator_workers,
    route,
    sectioning,
    vote,
)
from duragent.durable import DurableContext, Duration, LocalRuntime
from duragent.tools import tool


@tool
def pause(ctx: DurableContext, minutes: int) -> str:
    """Wait a few minutes (a rate limit, say) before going on.

    Args:
        minutes: how long.
    """
    ctx.wait(Duration.from_minutes(minutes), name="pause")
    return f"waited {minutes} minutes"


def prompt_of(request: ModelRequest) -> str:
    return "".join(b.text for b in request.messages[0].content if isinstance(b, TextBlock))


def tool_results(request: ModelRequest) -> list[ToolResult]:
    return [b for m in request.messages for b in m.content if isinstance(b, ToolResult)]


def pausing(answer: Any) -> Any:
    """A model brain that first calls ``pause`` (the workflow suspends), then answers ``answer(request)``."""

    def brain(request: ModelRequest) -> ModelResponse | str:
        if not tool_results(request):
            return ScriptedModel.tool_call("pause", {"minutes": 5})
        return answer(request)  # type: ignore[no-any-return]

    return brain


class Runner:
    """Runs a handler on the virtual-clock runtime, counting its invocations (replays)."""

    def __init__(self, rt: LocalRuntime) -> None:
        self.rt = rt
        self.invocations = 0

    def run(self, body: Any) -> Any:
        def handler(event: Any, ctx: DurableContext) -> Any:
            self.invocations += 1
            return body(ctx)

        info = self.rt.run(handler, {})
        self.info = info
        return info


# -- chain -----------------------------------------------------------------------------------------
def _chain_links(outline_gate: Any) -> tuple[list[Link], dict[str, FunctionModel]]:
    models = {
        "outline": FunctionModel(lambda r: "1. Why\n2. How\n3. So what", name="outline"),
        "draft": FunctionModel(pausing(lambda r: "Draft following: " + prompt_of(r).split("\n", 1)[1]),
                               name="draft"),
        "polish": FunctionModel(lambda r: prompt_of(r).removeprefix("Polish: ").upper(), name="polish"),
    }
    links = [
        Link("outline", Agent(models["outline"], name="outliner"), lambda topic: f"Outline an essay on {topic}",
             gate=outline_gate),
        Link("draft", Agent(models["draft"], tools=[pause], name="drafter"), lambda outline: f"Draft:\n{outline}"),
        Link("polish", Agent(models["polish"], name="polisher"), lambda draft: f"Polish: {draft}",
             gate=lambda text: text.isupper()),
    ]
    return links, models


def test_chain_runs_links_in_order_through_gates_and_resumes_without_rerunning(rt: LocalRuntime) -> None:
    links, models = _chain_links(outline_gate=lambda outline: outline.count("\n") >= 2)
    runner = Runner(rt)
    info = runner.run(lambda ctx: (lambda r: {"output": r.output, "outputs": r.outputs})(
        chain(ctx, links, "durable agents")))
    assert info.status == "SUCCEEDED", info.error
    assert info.result["output"] == "DRAFT FOLLOWING: 1. WHY\n2. HOW\n3. SO WHAT"
    assert list(info.result["outputs"]) == ["outline", "draft", "polish"]
    assert info.result["outputs"]["outline"] == "1. Why\n2. How\n3. So what"
    assert prompt_of(models["outline"].requests[0]) == "Outline an essay on durable agents"
    assert runner.invocations == 2  # the drafter's pause suspended the chain once
    assert {k: m.calls for k, m in models.items()} == {"outline": 1, "draft": 2, "polish": 1}


def test_chain_stops_when_a_gate_fails(rt: LocalRuntime) -> None:
    links, models = _chain_links(outline_gate=lambda outline: "Conclusion" in outline)
    info = Runner(rt).run(lambda ctx: chain(ctx, links, "durable agents").output)
    assert info.status == "FAILED"
    assert info.error["ErrorType"].endswith("GateFailedError")
    assert "gate after 'outline' rejected its output" in info.error["ErrorMessage"]
    assert {k: m.calls for k, m in models.items()} == {"outline": 1, "draft": 0, "polish": 0}
    assert issubclass(GateFailedError, AgentError)


# -- routing ---------------------------------------------------------------------------------------
def _routes(calls: Counter[str]) -> dict[str, Any]:
    specialist = FunctionModel(pausing(lambda r: f"refund issued for: {prompt_of(r)}"), name="billing")

    def billing(ctx: DurableContext, request: str) -> str:
        calls["billing"] += 1
        return str(Agent(specialist, tools=[pause], name="billing").run(ctx, request).output)

    def general(ctx: DurableContext, request: str) -> str:
        calls["general"] += 1
        return f"general help for: {request}"

    return {"billing": billing, "general": general, "_model": specialist}


@pytest.mark.parametrize(("says", "chosen"), [("billing", "billing"), (" Billing.", "billing"),
                                              ("weather", "general")])
def test_route_hands_the_request_to_the_chosen_route(rt: LocalRuntime, says: str, chosen: str) -> None:
    calls: Counter[str] = Counter()
    routes = _routes(calls)
    specialist = routes.pop("_model")
    router_model = ScriptedModel([says], name="router")
    router = Agent(router_model, name="router")
    runner = Runner(rt)

    def body(ctx: DurableContext) -> list[Any]:
        chosen_route = route(ctx, router, routes, "Please refund invoice 7", default="general")
        ctx.wait(Duration.from_minutes(1), name="after the route")  # a finished route is not re-entered
        return list(chosen_route)

    info = runner.run(body)
    assert info.status == "SUCCEEDED", info.error
    assert router_model.calls == 1
    assert "billing" in prompt_of(router_model.requests[0]) and "general" in prompt_of(router_model.requests[0])
    if chosen == "billing":
        assert info.result == ["billing", "refund issued for: Please refund invoice 7"]
        assert runner.invocations == 3 and specialist.calls == 2  # paused twice, no model call re-run
        assert calls == Counter(billing=2)  # entered, replayed once while unfinished, then never again
    else:
        assert info.result == ["general", "general help for: Please refund invoice 7"]
        assert runner.invocations == 2 and calls == Counter(general=1)


def test_route_without_a_default_fails_on_an_unknown_answer(rt: LocalRuntime) -> None:
    routes = _routes(Counter())
    routes.pop("_model")
    router = Agent(ScriptedModel(["astrology"]), name="router")
    info = Runner(rt).run(lambda ctx: route(ctx, router, routes, "what is my sign"))
    assert info.status == "FAILED" and "'astrology', which is not one of" in info.error["ErrorMessage"]


# -- parallelization -------------------------------------------------------------------------------
class Score(BaseModel):
    value: int


def test_sectioning_returns_results_keyed_by_section(rt: LocalRuntime) -> None:
    pros = FunctionModel(pausing(lambda r: "fast, cheap"), name="pros")
    cons = FunctionModel(lambda r: "new", name="cons")
    score = FunctionModel(lambda r: ScriptedModel.tool_call("final_result", {"value": 7}), name="score")
    sections = {
        "pros": (Agent(pros, tools=[pause], name="pros"), "List the pros of SQLite."),
        "cons": (Agent(cons, name="cons"), "List the cons of SQLite."),
        "score": (Agent(score, output_type=Score, name="score"), "Score SQLite from 1 to 10."),
    }
    seen: list[dict[str, Any]] = []

    def body(ctx: DurableContext) -> dict[str, Any]:
        results = sectioning(ctx, sections, max_concurrency=2)
        seen.append(results)
        return {k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in results.items()}

    runner = Runner(rt)
    info = runner.run(body)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"pros": "fast, cheap", "cons": "new", "score": {"value": 7}}
    assert list(info.result) == ["pros", "cons", "score"]
    assert isinstance(seen[-1]["score"], Score)  # structured sections come back as their type
    assert runner.invocations >= 2
    assert (pros.calls, cons.calls, score.calls) == (2, 1, 1)


def test_vote_takes_the_majority(rt: LocalRuntime) -> None:
    answers = iter(["Yes", "no", "yes "])
    lock = threading.Lock()

    def answer(request: ModelRequest) -> str:
        with lock:
            return next(answers)

    model = FunctionModel(pausing(answer), name="voter")
    agent = Agent(model, tools=[pause], name="voter")

    def body(ctx: DurableContext) -> dict[str, Any]:
        winner, tally = vote(ctx, agent, "Is SQLite a good default?", voters=3)
        return {"winner": winner, "tally": dict(tally)}

    runner = Runner(rt)
    info = runner.run(body)
    assert info.status == "SUCCEEDED", info.error
    assert info.result["winner"].strip().lower() == "yes"
    assert info.result["tally"] == {"yes": 2, "no": 1}
    assert runner.invocations >= 2 and model.calls == 6  # 3 voters x (pause, answer), none repeated


# -- orchestrator-workers ----------------------------------------------------------------------------
PLAN = Plan(subtasks=[Subtask(title="storage", instructions="Describe the store."),
                      Subtask(title="replay", instructions="Describe replay."),
                      Subtask(title="review", instructions="Describe human review.")])


def _worker_brain(request: ModelRequest) -> ModelResponse | str:
    title = prompt_of(request).split("\n", 1)[0]
    if title == "replay" and not tool_results(request):
        return ScriptedModel.tool_call("pause", {"minutes": 1})
    return f"notes on {title}"


@pytest.mark.parametrize("synthesize", [True, False])
def test_orchestrator_workers_plans_fans_out_and_synthesizes(rt: LocalRuntime, synthesize: bool) -> None:
    orchestrator_model = ScriptedModel([ScriptedModel.tool_call("final_result", PLAN.model_dump())],
                                       name="orchestrator")
    worker_model = FunctionModel(_worker_brain, name="worker")
    synth_model = FunctionModel(lambda r: "REPORT\n" + prompt_of(r).split("\n\n", 1)[1], name="synth")
    orchestrator = Agent(orchestrator_model, output_type=Plan, name="orchestrator")
    worker = Agent(worker_model, tools=[pause], name="worker")
    synthesizer = Agent(synth_model, name="synthesizer") if synthesize else None
    runner = Runner(rt)
    info = runner.run(lambda ctx: orchestrator_workers(ctx, orchestrator, worker, "Explain duragent",
                                                       synthesizer=synthesizer))
    assert info.status == "SUCCEEDED", info.error
    if synthesize:
        assert info.result.startswith("REPORT\n")
        for title in ("storage", "replay", "review"):
            assert f"## {title}\nnotes on {title}" in info.result
        assert synth_model.calls == 1
    else:
        assert info.result == ["notes on storage", "notes on replay", "notes on review"]
    assert "Explain duragent" in prompt_of(orchestrator_model.requests[0])
    assert runner.invocations == 2
    assert orchestrator_model.calls == 1  # the plan is not made again after the pause
    assert worker_model.calls == 4  # one per subtask, plus the pause of the "replay" worker


# -- evaluator-optimizer ------------------------------------------------------------------------------
def test_evaluator_optimizer_revises_until_the_evaluation_passes(rt: LocalRuntime) -> None:
    def generate(request: ModelRequest) -> str:
        return "haiku v2, with a season word" if "Reviewer feedback" in prompt_of(request) else "haiku v1"

    def evaluate(request: ModelRequest) -> ModelResponse:
        good = "season word" in prompt_of(request)
        verdict = Evaluation(passed=good, feedback="" if good else "add a season word")
        return ScriptedModel.tool_call("final_result", verdict.model_dump())

    generator_model = FunctionModel(generate, name="generator")
    evaluator_model = FunctionModel(pausing(evaluate), name="evaluator")
    generator = Agent(generator_model, name="generator")
    evaluator = Agent(evaluator_model, tools=[pause], output_type=Evaluation, name="evaluator")

    def body(ctx: DurableContext) -> dict[str, Any]:
        result = evaluator_optimizer(ctx, generator, evaluator, "Write a haiku about SQLite", max_rounds=3)
        return {"output": result.output, "rounds": result.rounds,
                "evaluations": [e.model_dump() for e in result.evaluations]}

    runner = Runner(rt)
    info = runner.run(body)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"output": "haiku v2, with a season word", "rounds": 2, "evaluations": [
        {"passed": False, "feedback": "add a season word"}, {"passed": True, "feedback": ""}]}
    second = prompt_of(generator_model.requests[1])
    assert "haiku v1" in second and "add a season word" in second
    assert runner.invocations == 3  # each evaluation paused once
    assert generator_model.calls == 2 and evaluator_model.calls == 4


def test_evaluator_optimizer_stops_after_max_rounds(rt: LocalRuntime) -> None:
    generator = Agent(FunctionModel(lambda r: "draft", name="g"), name="generator")
    never = FunctionModel(lambda r: ScriptedModel.tool_call("final_result", {"passed": False, "feedback": "no"}),
                          name="e")
    evaluator = Agent(never, output_type=Evaluation, name="evaluator")
    info = Runner(rt).run(lambda ctx: evaluator_optimizer(ctx, generator, evaluator, "task", max_rounds=2).rounds)
    assert info.status == "SUCCEEDED" and info.result == 2 and never.calls == 2
