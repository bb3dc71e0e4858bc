"""Cost truth under SIGKILL: the ledger matches the provider's bill, and work the provider keeps is
never paid twice. Worker processes run real jobs (tests/integration/cost_jobs.py) through the real
anthropic/openai SDKs against the fake provider server, which keeps the bill; the test kills the
workers with SIGKILL at random points, each time waiting on a condition (the server holding calls
in flight and the store showing exactly those calls started), never on a fixed sleep.

- Interactive: one model call per document, four at a time, then a summary. Every kill lands with
  calls truly in flight (held by the server, billed, unanswered). The ledger's paid + lost counts
  equal the server's request count, and its dollars the server's bill.
- Batch: every document in one provider batch; kills during the submission (after the provider
  created the batch, before its id was checkpointed), while polling, during the collection of
  results and during the summary call. The server sees one batch creation and bills each document
  once, at the batch rate; the ledger equals the bill.
- OpenAI background mode: an agent killed while waiting for its response resumes by retrieving
  it: one creation, one bill.
- Prompt caching: a conversation resumed after a kill reads its prefix from the provider's cache.

Sizes: ``make test`` runs small jobs (``DURAGENT_COST_DOCS`` documents, default 24, and
``DURAGENT_COST_KILLS`` kills, default 2); ``make soak`` runs the issue's proof: 200 documents and
5 kills in each mode.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from duragent.agents.usage import DEFAULT_PRICES, Price, price_for
from duragent.durable import LocalRuntime
from duragent.durable.local.rows import unpack
from duragent.durable.local.store import key_range
from tests.fakes.provider_server import (
    Expired,
    FakeError,
    FakeToolCall,
    FakeUsage,
    Item,
    ProviderServer,
    RecordedRequest,
    Reply,
)
from tests.integration import cost_jobs
from tests.integration.crash_helpers import REPO, WORKER, kill, run_to_end, spawn, worker_env

DOCS = int(os.environ.get("DURAGENT_COST_DOCS", "24"))
KILLS = int(os.environ.get("DURAGENT_COST_KILLS", "2"))
SEED = int(os.environ.get("DURAGENT_COST_SEED", str(random.randrange(1 << 30))))
MODEL = "claude-sonnet-4-test"  # priced as anthropic:claude-sonnet-4
DEADLINE = 120.0

pytestmark = pytest.mark.usefixtures("clean_env")


# -- fixtures and helpers -------------------------------------------------------------------------------
def documents(n: int) -> list[str]:
    return [f"Document {i}: " + " ".join(f"fact-{i}-{j}" for j in range(30)) for i in range(n)]


def answer(request: RecordedRequest) -> Item:
    """The same answer (and usage) for the same request, whichever attempt sends it."""
    body = request.body if isinstance(request.body, dict) else {}
    text = json.dumps(body.get("messages") or body.get("input") or body, sort_keys=True)
    doc = text.split("Document ", 1)[1].split(":", 1)[0] if "Document " in text else "all"
    return Reply(text=f"Summary of document {doc}.", usage=FakeUsage(input_tokens=len(text) // 4, output_tokens=12))


def env_for(server: ProviderServer) -> dict[str, str]:
    return worker_env({"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "test-key",
                       "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "test-key"})


class Job:
    """One execution in a SQLite store, driven by worker processes that the test kills."""

    def __init__(self, tmp_path: Path, server: ProviderServer, target: Callable[..., Any],
                 event: dict[str, Any]) -> None:
        self.db = tmp_path / "cost.db"
        self.server = server
        self.env = env_for(server)
        with LocalRuntime(self.db) as rt:
            self.id = rt.start(target, event, execution_id="cost-job")
        self.kills = 0

    def spawn(self) -> subprocess.Popen[bytes]:
        return spawn(WORKER, self.db, self.env)

    def kill(self, worker: subprocess.Popen[bytes]) -> None:
        kill(worker)
        self.kills += 1

    def ops(self, status: str | None = None) -> list[dict[str, Any]]:
        """Each operation's latest state, read from the journal without disturbing the worker."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as conn:
            num = conn.execute("SELECT num FROM executions WHERE id = ?", (self.id,)).fetchone()[0]
            rows = conn.execute("SELECT op, status, data FROM journal WHERE k > ? AND k <= ? AND op IS NOT NULL "
                                "ORDER BY k", key_range(num)).fetchall()
        conn.close()
        latest = {op: {**json.loads(unpack(data)), "Status": op_status} for op, op_status, data in rows}
        return [op for op in latest.values() if status is None or op.get("Status") == status]

    def started_calls(self) -> int:
        return sum(1 for op in self.ops("STARTED") if op.get("SubType") in ("ModelCall", "ModelCallStart",
                                                                            "BatchSubmit"))

    def status(self) -> str:
        with LocalRuntime(self.db) as rt:
            return str(rt.get(self.id).status)

    def finish(self) -> dict[str, Any]:
        done = run_to_end(self.db, self.id, self.env, within=120, timeout=300)
        assert done.returncode == 0, done.stderr
        with LocalRuntime(self.db) as rt:
            info = rt.get(self.id)
        assert info.status == "SUCCEEDED", (info.error, done.stderr[-3000:])
        return dict(info.result)

    def show(self) -> dict[str, Any]:
        shown = subprocess.run([sys.executable, "-m", "duragent", "--db", str(self.db), "show", self.id,
                                "--json"], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        return dict(json.loads(shown.stdout)["ledger"])


def wait_until(condition: Callable[[], bool], worker: subprocess.Popen[bytes] | None, what: str,
               stable: int = 1) -> bool:
    """Poll ``condition`` until it has held ``stable`` reads in a row; False if the worker exited."""
    deadline = time.monotonic() + DEADLINE
    streak = 0
    while True:
        if worker is not None and worker.poll() is not None:
            return False
        streak = streak + 1 if condition() else 0
        if streak >= stable:
            return True
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def bill_usd(server: ProviderServer, prices: dict[str, Price] | None = None) -> float:
    total = 0.0
    for bill in server.billed():
        provider = "openai" if bill.endpoint.startswith(("POST /v1/responses", "POST /v1/chat", "batch /v1/chat")) \
            else "anthropic"
        price = price_for(f"{provider}:{bill.model}", prices)
        assert price is not None
        from duragent.agents.messages import Usage

        usage = Usage(input_tokens=bill.usage.input_tokens, output_tokens=bill.usage.output_tokens,
                      cache_read_tokens=bill.usage.cache_read_tokens, cache_write_tokens=bill.usage.cache_write_tokens)
        total += price.cost(usage, batch=bill.batch)
    return total


# -- interactive ----------------------------------------------------------------------------------------
CONCURRENCY = 4


def settled_in_flight(job: Job, server: ProviderServer, seen: list[int]) -> bool:
    """Every call the worker can have running is held at the server and started in the store: all
    four map slots (or as many documents as are left, or the summary call). Then no call can be
    between its START and its request, and a kill loses exactly the held calls."""
    held = server.held
    calls = [op for op in job.ops() if op.get("SubType") == "ModelCall"]
    started = sum(1 for op in calls if op["Status"] == "STARTED")
    waiting = sum(1 for op in calls if op["Status"] in ("PENDING", "READY")  # a retry not yet due: not running
                  and str(op.get("Name", "")).startswith("doc "))
    answered = sum(1 for op in calls if op["Status"] == "SUCCEEDED" and str(op.get("Name", "")).startswith("doc "))
    left = DOCS - answered
    expected = min(CONCURRENCY, left - waiting) if left else 1
    if expected >= 1 and held == started == expected and server.held == held:
        seen.append(held)
        return True
    return False


def test_interactive_ledger_matches_the_bill_through_kills_with_calls_in_flight(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    with ProviderServer(responder=answer) as server:
        job = Job(tmp_path, server, cost_jobs.documents_interactive,
                  {"model": f"anthropic:{MODEL}", "docs": documents(DOCS), "concurrency": CONCURRENCY})
        lost_at_kills = 0
        hits = 0
        for _ in range(KILLS):
            # hold the calls from a random one on: the worker is killed with them in flight
            ahead = max(1, DOCS + 1 - (server.model_request_count - lost_at_kills))
            server.hold(after=server.model_request_count + rng.randrange(ahead))
            worker = job.spawn()
            seen: list[int] = []
            try:
                in_flight = wait_until(lambda seen=seen: settled_in_flight(job, server, seen),  # type: ignore[misc]
                                       worker, "every running call held in flight", stable=3)
                held = seen[-1] if seen else 0
            finally:
                job.kill(worker)
                server.release()
            if not in_flight:
                break  # the job finished before the held call: nothing left in flight
            hits += 1
            lost_at_kills += held
        result = job.finish()
        ledger = job.show()

    requests = server.model_request_count
    assert result["documents"] == DOCS
    assert result["paid"] == DOCS + 1  # each answered call once
    assert hits == KILLS, SEED  # every kill landed with calls in flight
    assert result["lost"] == lost_at_kills >= KILLS, SEED
    assert result["paid"] + result["lost"] == requests == len(server.billed()), SEED
    calls = ledger["calls"]
    assert (calls["paid"], calls["lost_in_flight"]) == (DOCS + 1, lost_at_kills)
    assert calls["paid"] + calls["lost_in_flight"] == requests
    assert calls["reused"] > 0  # the answers a resumed worker did not pay again
    # the lost calls are estimated from their retries' usage; here that is exactly what was billed
    assert ledger["total_usd"] == pytest.approx(bill_usd(server), rel=1e-6, abs=1e-6)


# -- batch ----------------------------------------------------------------------------------------------
PHASES = ("submit", "poll", "collect", "summary")


def batch_kill_plan(rng: random.Random, kills: int, docs: int) -> list[tuple[str, int]]:
    """Kill points in the order the job reaches them: at most one per phase, except collect."""
    if kills >= 5:
        chosen = ["submit", "poll", "collect", "collect", "summary"] + ["collect"] * (kills - 5)
    else:
        chosen = sorted(rng.sample(["submit", "poll", "collect", "summary"], k=min(kills, 4)), key=PHASES.index)
    marks = sorted(rng.sample(range(1, max(2, docs)), k=chosen.count("collect")))
    plan: list[tuple[str, int]] = []
    for phase in chosen:
        plan.append((phase, marks.pop(0) if phase == "collect" else 0))
    return plan


def kill_batch_job(job: Job, server: ProviderServer, plan: list[tuple[str, int]], created: str) -> int:
    """Kill the worker at each planned point; returns the summary calls lost in flight."""
    lost = 0
    for phase, mark in plan:
        if phase == "submit":
            server.hold_creations()  # the creation's answer waits: the batch exists, its id is not saved
        elif phase in ("summary", "collect"):
            # collect: the summary call after the results is held, so the kill has a stable point
            server.hold(after=server.model_request_count)
        worker = job.spawn()
        try:
            if phase == "submit":
                reached = wait_until(lambda: server.counts[created] == 1 and server.held == 1, worker,
                                     "the batch created and its answer held")
            elif phase == "poll":
                reached = wait_until(lambda: any(op.get("SubType") == "WaitForCondition" and op["Status"] == "PENDING"
                                                 for op in job.ops()), worker, "a poll of the batch")
            elif phase == "collect":
                reached = wait_until(lambda mark=mark: sum(1 for op in job.ops("SUCCEEDED")  # type: ignore[misc]
                                                           if op.get("SubType") == "ModelCall") >= mark,
                                     worker, f"{mark} results collected")
                # the results are read in milliseconds, so a kill right here could land between the
                # summary call's sent marker and its request; kill once the summary call is held at
                # the server instead, where the worker cannot go further (deterministic: it is lost)
                if reached:
                    reached = wait_until(lambda: server.held == 1 and job.started_calls() == 1, worker,
                                         "the summary call sent after the collected results", stable=3)
                    lost += 1 if reached else 0
            else:
                reached = wait_until(lambda: server.held == 1 and job.started_calls() == 1, worker,
                                     "the summary call in flight", stable=3)
                lost += 1 if reached else 0
        finally:
            job.kill(worker)
            server.release()
        assert reached, f"the job ended before the {phase} kill"
    return lost


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_batch_mode_bills_each_document_once_through_kills(provider: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    docs = DOCS if provider == "anthropic" else min(DOCS, 12)
    kills = KILLS if provider == "anthropic" else min(KILLS, 3)
    with ProviderServer(responder=answer, batch_polls=3) as server:
        job = Job(tmp_path, server, cost_jobs.documents_batch,
                  {"model": f"{provider}:{MODEL if provider == 'anthropic' else 'gpt-4.1-test'}",
                   "docs": documents(docs), "poll_every": 1})
        created = "POST /v1/messages/batches" if provider == "anthropic" else "POST /v1/batches"
        plan = batch_kill_plan(rng, kills, docs) if provider == "anthropic" else [("submit", 0), ("collect", 2)][:kills]
        lost = kill_batch_job(job, server, plan, created)
        result = job.finish()
        ledger = job.show()

    assert server.counts[created] == 1, (plan, SEED)  # one batch, whatever the kills
    batch_bills = server.billed(batch=True)
    per_document = Counter(b.custom_id for b in batch_bills)
    assert len(per_document) == docs and set(per_document.values()) == {1}, (plan, SEED)  # each billed once
    assert result["documents"] == docs and result["failed"] == 0 and len(result["batches"]) == 1
    assert result["batch_paid"] == docs
    interactive = server.billed(batch=False)
    assert len(interactive) == 1 + lost  # the summary, and its attempt killed in flight
    calls = ledger["calls"]
    assert calls["paid"] == docs + 1 and calls["lost_in_flight"] == lost
    assert calls["paid"] + calls["lost_in_flight"] == len(server.billed())
    assert sum(line.get("batch_calls", 0) for line in ledger["paid"].values()) == docs
    prices = {"openai:gpt-4.1-test": DEFAULT_PRICES["openai:gpt-4.1"]}
    assert ledger["total_usd"] == pytest.approx(bill_usd(server, prices), rel=1e-6, abs=1e-6)
    batch_usd = sum(price_for(f"{provider}:{b.model}", prices).cost(  # type: ignore[union-attr]
        _usage(b.usage), batch=True) for b in batch_bills)
    assert result["batch_usd"] == pytest.approx(batch_usd, rel=1e-6)
    full = sum(price_for(f"{provider}:{b.model}", prices).cost(_usage(b.usage)) for b in batch_bills)  # type: ignore[union-attr]
    assert batch_usd == pytest.approx(full / 2)  # the batch rate: half


def _usage(u: FakeUsage) -> Any:
    from duragent.agents.messages import Usage

    return Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens, cache_read_tokens=u.cache_read_tokens,
                 cache_write_tokens=u.cache_write_tokens)


def test_failed_and_expired_items_go_to_a_retry_batch_of_only_those(tmp_path: Path) -> None:
    docs = 10
    flaky = {2: FakeError(529, "overloaded"), 5: Expired(), 7: FakeError(400, "bad request")}

    def first_round_fails(request: RecordedRequest) -> Item:
        custom_id = request.body.get("custom_id")
        if custom_id is None:  # the summary call
            return answer(request)
        index = int(custom_id.rsplit("-", 1)[1])
        if custom_id.split("-")[0].endswith("r1") and index in flaky:
            return flaky[index]
        return answer(request)

    with ProviderServer(responder=first_round_fails, batch_polls=2) as server:
        job = Job(tmp_path, server, cost_jobs.documents_batch,
                  {"model": f"anthropic:{MODEL}", "docs": documents(docs), "poll_every": 1})
        result = job.finish()
        ledger = job.show()
    assert server.counts["POST /v1/messages/batches"] == 2  # the first, and one retry batch
    second = [b for b in server.batches.values()][1]
    assert sorted(int(r["custom_id"].rsplit("-", 1)[1]) for r in second.requests) == [2, 5]  # retryable only
    assert result["failed"] == 1 and len(result["batches"]) == 2  # the 400 reaches the caller as an error
    per_document = Counter(b.custom_id.rsplit("-", 1)[1] for b in server.billed(batch=True))
    assert len(per_document) == docs - 1 and set(per_document.values()) == {1}
    assert ledger["calls"]["paid"] == docs - 1 + 1


# -- OpenAI background mode -------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_a_background_agent_killed_mid_call_retrieves_its_response(stream: bool, tmp_path: Path) -> None:
    with ProviderServer() as server:
        server.enqueue(Reply(text="The answer, after long thought, is 42.", usage=FakeUsage(400, 60)))
        job = Job(tmp_path, server, cost_jobs.background_agent,
                  {"name": "gpt-4.1-test", "question": "What is the answer?", "stream": stream})
        server.hold()  # the model is "thinking": the response stays in progress
        worker = job.spawn()
        try:
            waiting = wait_until(lambda: server.counts["GET /v1/responses/{id}"] >= 1, worker,
                                 "the worker waiting for its response")
        finally:
            job.kill(worker)
        assert waiting
        assert server.counts["POST /v1/responses"] == 1
        [started] = [op for op in job.ops("SUCCEEDED") if op.get("SubType") == "ModelCallStart"]
        response_id = json.loads(started["StepDetails"]["Result"])["call_id"]  # checkpointed before waiting
        assert server.responses[response_id].status == "in_progress"
        server.release()
        result = job.finish()
        ledger = job.show()
    assert result["output"] == "The answer, after long thought, is 42."
    assert server.counts["POST /v1/responses"] == 1  # no second creation: the kept response was retrieved
    assert len(server.billed()) == 1
    assert (result["paid"], result["lost"]) == (1, 0)
    assert (ledger["calls"]["paid"], ledger["calls"]["lost_in_flight"]) == (1, 0)
    if stream:
        assert result["streamed"] == result["output"]


# -- prompt caching -------------------------------------------------------------------------------------------
def test_a_resumed_conversation_reads_its_prefix_from_the_cache(tmp_path: Path) -> None:
    with ProviderServer(prompt_cache=True) as server:
        server.enqueue(*[Reply(tool_calls=[FakeToolCall("read_chapter", {"number": n})], usage=FakeUsage(0, 15))
                         for n in (1, 2, 3)], Reply(text="Boats fill the harbour at high tide.", usage=FakeUsage(0, 20)))
        job = Job(tmp_path, server, cost_jobs.cached_conversation,
                  {"model": f"anthropic:{MODEL}", "directory": str(tmp_path)})
        server.hold(after=3)  # the fourth call (after three chapters) is in flight at the kill
        worker = job.spawn()
        try:
            assert wait_until(lambda: server.held == 1 and job.started_calls() == 1, worker, "the last call in flight")
        finally:
            job.kill(worker)
            server.release()
        server.enqueue(Reply(text="Boats fill the harbour at high tide.", usage=FakeUsage(0, 20)))
        result = job.finish()
        ledger = job.show()
    bills = server.billed()
    assert len(bills) == 5 and (result["paid"], result["lost"]) == (4, 1)
    killed, resumed = server.requests[-2].body, server.requests[-1].body
    assert killed == resumed  # the conversation was rebuilt byte for byte from the journal
    first, _, _, lost, retry = (b.usage for b in bills)
    assert first.cache_write_tokens > 0 and first.cache_read_tokens == 0  # system prompt written once
    assert lost.cache_write_tokens > 0  # the killed call wrote its prefix to the cache...
    assert retry.cache_write_tokens == 0 and retry.cache_read_tokens == lost.cache_read_tokens + \
        lost.cache_write_tokens  # ...and the resumed call read all of it
    assert retry.input_tokens < retry.cache_read_tokens / 10
    paid = ledger["paid"][f"anthropic:{MODEL}"]
    answered = [b.usage for i, b in enumerate(bills) if i != 3]
    assert paid["cache_read_tokens"] == sum(u.cache_read_tokens for u in answered)
    assert paid["cache_write_tokens"] == sum(u.cache_write_tokens for u in answered)
    assert paid["cost_usd"] == pytest.approx(bill_usd_of(answered), abs=1e-6)  # writes and reads at their own rates


def bill_usd_of(usages: list[FakeUsage]) -> float:
    price = DEFAULT_PRICES["anthropic:claude-sonnet-4"]
    return sum(price.cost(_usage(u)) for u in usages)
