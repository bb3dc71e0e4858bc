"""The ``duragent`` command, run for real as a subprocess against a store in tmp_path.

The exit codes and the one-line errors are a contract (ARCHITECTURE.md §3), and a bad input must
never change the store, so those cases compare the store's bytes before and after.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

HANDLERS = '''
from pydantic import BaseModel

from duragent.agents import Agent, ask_human
from duragent.agents.messages import ToolResult
from duragent.agents.models import ScriptedModel
from duragent.durable import Duration
from duragent.tools import tool


def greet(event, ctx):
    doubled = ctx.step(lambda: event["n"] * 2, name="double")
    return {"doubled": doubled}


def pause(event, ctx):
    ctx.wait(Duration.from_seconds(1), name="nap")
    return "woke"


def review(event, ctx):
    return {"answer": ctx.wait_for_callback(lambda callback_id: None, name="review")}


def boom(event, ctx):
    raise ValueError("kaboom")


def many(event, ctx):
    return [ctx.step(lambda i=i: "x" * 200, name=f"step {i}") for i in range(event.get("n", 300))]


@tool(requires_approval=True)
def pay(to: str, amount: int) -> str:
    """Pay someone."""
    return f"paid {amount} to {to}"


def _brain(request):
    results = [b for m in request.messages for b in m.content if isinstance(b, ToolResult)]
    if not results:
        return ScriptedModel.tool_call("pay", {"to": "ann", "amount": 100}, "call-1")
    return "Outcome: " + results[-1].content


def paying(event, ctx):
    return Agent(ScriptedModel(_brain, name="payer"), tools=[pay]).run(ctx, "pay ann").output


class Headcount(BaseModel):
    people: int


def asking(event, ctx):
    return ask_human(ctx, "How many?", Headcount, name="headcount").people
'''

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DURAGENT_DB"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _cli_for(db: Path, cwd: Path) -> Cli:
    def run(*args: str, cwd: Path = cwd, db: Path = db) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), *args], cwd=cwd,
                              env=_env(), capture_output=True, text=True, timeout=60)

    return run


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "handlers.py").write_text(HANDLERS)
    return _cli_for(tmp_path / "store.db", tmp_path)


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _pending_ids(cli: Cli) -> list[str]:
    return [item["callback_id"] for item in _json(cli("list", "--pending", "--json"))["pending"]]


def _executions(cli: Cli, *args: str) -> list[dict[str, Any]]:
    return list(_json(cli("list", "--json", *args))["executions"])


def _snapshot(db: Path) -> dict[str, bytes]:
    """Every file of the store (the db and any -wal/-shm beside it), byte for byte."""
    return {p.name: p.read_bytes() for p in sorted(db.parent.glob(db.name + "*"))}


def _assert_usage_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("duragent: error: ") and ";" in lines[0], lines[0]
    assert needle in lines[0], lines[0]
    assert result.stdout == ""


# -- running --------------------------------------------------------------------------------------
def test_run_prints_the_result_json(cli: Cli) -> None:
    result = cli("run", "handlers.py:greet", "--input", '{"n": 21}', "--id", "g1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"doubled": 42}
    shown = _json(cli("show", "g1", "--json"))
    assert shown["status"] == "SUCCEEDED" and shown["function"] == "greet"
    assert shown["result"] == {"doubled": 42} and shown["input"] == {"n": 21} and shown["error"] is None
    assert [op["Type"] for op in shown["operations"]] == ["EXECUTION", "STEP"]


def test_run_with_input_file_and_same_id_again_attaches(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "event.json").write_text('{"n": 2}')
    assert json.loads(cli("run", "handlers.py:greet", "--input", "@event.json", "--id", "g2").stdout) == {"doubled": 4}
    again = cli("run", "handlers.py:greet", "--input", '{"n": 2}', "--id", "g2")
    assert again.returncode == 0 and json.loads(again.stdout) == {"doubled": 4}
    assert len(_executions(cli)) == 1


def test_run_of_a_module_target(cli: Cli, tmp_path: Path) -> None:
    package = tmp_path / "flowpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text(HANDLERS)
    result = cli("run", "flowpkg.flows:greet", "--input", '{"n": 1}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"doubled": 2}


def test_run_of_a_failing_handler_exits_1_and_show_exits_0(cli: Cli) -> None:
    result = cli("run", "handlers.py:boom", "--id", "b1")
    assert result.returncode == 1
    assert "FAILED" in result.stderr and "ValueError: kaboom" in result.stderr
    shown = cli("show", "b1")
    assert shown.returncode == 0 and "FAILED" in shown.stdout and "kaboom" in shown.stdout
    assert _json(cli("show", "b1", "--json"))["error"]["ErrorMessage"] == "kaboom"


def test_wait_suspends_and_a_worker_elsewhere_finishes_it(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", "handlers.py:pause", "--id", "w1")
    assert result.returncode == 0, result.stderr
    assert "RUNNING" in result.stdout and "wait 'nap' until" in result.stdout
    assert _json(cli("show", "w1", "--json"))["status"] == "RUNNING"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # the stored target must be absolute for this worker to import it
    deadline = time.monotonic() + 60
    while True:  # the wait is a real second: run the worker until the execution is done (a condition)
        worker = cli("worker", "--until-idle", cwd=elsewhere)
        assert worker.returncode == 0, worker.stderr
        shown = _json(cli("show", "w1", "--json"))
        if shown["status"] != "RUNNING" or time.monotonic() > deadline:
            break
    assert (shown["status"], shown["result"]) == ("SUCCEEDED", "woke")


def test_callback_succeed_resumes_with_the_decoded_answer(cli: Cli) -> None:
    result = cli("run", "handlers.py:review", "--id", "r1")
    assert result.returncode == 0, result.stderr
    [callback_id] = _pending_ids(cli)
    assert callback_id in result.stdout
    assert f"callback succeed {callback_id} --result JSON" in result.stdout  # the command for a plain callback
    pending = cli("list", "--pending")
    assert pending.returncode == 0 and callback_id in pending.stdout and "review" in pending.stdout
    assert f"callback succeed {callback_id} --result JSON" in pending.stdout

    answered = cli("callback", "succeed", callback_id, "--result", '{"ok":  true}')
    assert answered.returncode == 0, answered.stderr
    assert cli("worker", "--until-idle").returncode == 0
    shown = _json(cli("show", "r1", "--json"))
    assert (shown["status"], shown["result"]) == ("SUCCEEDED", {"answer": {"ok": True}})
    events = _json(cli("history", "r1", "--json"))
    [succeeded] = [e for e in events if e["EventType"] == "CallbackSucceeded"]
    assert succeeded["CallbackSucceededDetails"]["Result"]["Payload"] == '{"ok":  true}'  # verbatim
    assert _pending_ids(cli) == []


def test_callback_fail_fails_the_execution(cli: Cli) -> None:
    cli("run", "handlers.py:review", "--id", "r2")
    [callback_id] = _pending_ids(cli)
    assert cli("callback", "heartbeat", callback_id).returncode == 0
    failed = cli("callback", "fail", callback_id, "--error-type", "Rejected", "--error-message", "not today")
    assert failed.returncode == 0, failed.stderr
    assert cli("worker", "--until-idle").returncode == 0
    shown = cli("show", "r2", "--json")
    assert shown.returncode == 0
    info = json.loads(shown.stdout)
    assert info["status"] == "FAILED" and info["error"]["ErrorMessage"] == "not today"


def test_history_lists_events_from_1(cli: Cli) -> None:
    cli("run", "handlers.py:greet", "--input", '{"n": 1}', "--id", "h1")
    events = _json(cli("history", "h1", "--json"))
    assert [e["EventId"] for e in events] == list(range(1, len(events) + 1))
    types = [e["EventType"] for e in events]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert "InvocationCompleted" in types
    text = cli("history", "h1")
    assert text.returncode == 0 and "StepSucceeded" in text.stdout and "double" in text.stdout


def test_show_text_has_header_and_operation_tree(cli: Cli) -> None:
    cli("run", "handlers.py:review", "--id", "t1")
    shown = cli("show", "t1")
    assert shown.returncode == 0
    assert "status:      RUNNING" in shown.stdout and "invocations: 1" in shown.stdout
    lines = shown.stdout.splitlines()
    context = next(i for i, line in enumerate(lines) if line.startswith("CONTEXT/WaitForCallback"))
    assert any(line.startswith("  CALLBACK") for line in lines[context + 1:])


def test_stop_and_list(cli: Cli) -> None:
    cli("run", "handlers.py:review", "--id", "s1")
    cli("run", "handlers.py:greet", "--input", '{"n": 1}', "--id", "s2")
    stopped = cli("stop", "s1")
    assert stopped.returncode == 0 and "STOPPED" in stopped.stdout
    assert _json(cli("show", "s1", "--json"))["status"] == "STOPPED"
    assert _pending_ids(cli) == []  # a stopped execution's callback can no longer be answered
    table = cli("list")
    assert table.returncode == 0 and "s1" in table.stdout and "STOPPED" in table.stdout
    assert [r["id"] for r in _executions(cli, "--status", "succeeded")] == ["s2"]


def test_duragent_db_env_names_the_store(cli: Cli, tmp_path: Path) -> None:
    env = {**_env(), "DURAGENT_DB": str(tmp_path / "from-env.db")}
    result = subprocess.run([sys.executable, "-m", "duragent", "run", "handlers.py:greet", "--input", '{"n": 3}',
                             "--id", "env1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert _json(cli("show", "env1", "--json", db=tmp_path / "from-env.db"))["result"] == {"doubled": 6}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_worker_stops_gracefully_on_a_signal(cli: Cli, tmp_path: Path, signum: int) -> None:
    process = subprocess.Popen([sys.executable, "-m", "duragent", "--db", str(tmp_path / "store.db"), "worker"],
                               cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while not any("worker serving" in line for line in seen):  # its signal handlers are in place
        line = process.stderr.readline()
        assert line and time.monotonic() < deadline, (seen, process.poll())
        seen.append(line)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "stopped" in stderr
    assert any("created a new store" in line for line in seen)  # a mistyped --db does not pass unnoticed


# -- bad input: exit 2, one line, store unchanged -----------------------------------------------------
@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, Path, dict[str, str]]:
    """A store with a finished execution, an answered callback and a pending one."""
    root = tmp_path_factory.mktemp("seeded")
    (root / "handlers.py").write_text(HANDLERS)
    db = root / "store.db"
    cli = _cli_for(db, root)
    cli("run", "handlers.py:greet", "--input", '{"n": 1}', "--id", "seed")
    cli("run", "handlers.py:review", "--id", "answered")
    [done] = _pending_ids(cli)
    cli("callback", "succeed", done, "--result", "1")
    cli("run", "handlers.py:review", "--id", "waiting")
    [pending] = _pending_ids(cli)
    return cli, db, {"<done>": done, "<pending>": pending}


BAD_INPUTS = [
    (["run", "handlers.py:greet", "--input", "{bad"], "--input is not JSON"),
    (["run", "handlers.py:greet", "--input", "@missing.json"], "missing.json"),
    (["run", "nowhere.py:greet"], "nowhere.py"),
    (["run", "no_such_module_xyz.flows:greet"], "no_such_module_xyz"),
    (["run", "handlers.py:absent"], "absent"),
    (["run", "handlers"], "handlers"),
    (["run", "handlers.py:greet", "--id", "bad id!"], "--id"),
    (["run", "handlers.py:greet", "--id", "seed", "--input", '{"n": 99}'], "seed"),
    (["callback", "succeed", "no-such-callback"], "no-such-callback"),
    (["callback", "succeed", "<done>", "--result", "2"], "already completed"),
    (["callback", "fail", "<done>"], "already completed"),
    (["callback", "succeed", "<pending>", "--result", "not json"], "--result is not JSON"),
    (["show", "no-such-id"], "no-such-id"),
    (["history", "no-such-id", "--json"], "no-such-id"),
    (["stop", "seed"], "already SUCCEEDED"),
    (["stop", "no-such-id"], "no-such-id"),
    (["frobnicate"], "frobnicate"),
    (["run"], "TARGET"),
    (["list", "--status", "sleeping"], "sleeping"),
]


@pytest.mark.parametrize(("args", "needle"), BAD_INPUTS, ids=[" ".join(a)[:40] for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_and_leaves_the_store_unchanged(seeded: tuple[Cli, Path, dict[str, str]],
                                                          args: list[str], needle: str) -> None:
    cli, db, ids = seeded
    before = _snapshot(db)
    result = cli(*[ids.get(arg, arg) for arg in args])
    _assert_usage_error(result, needle)
    assert _snapshot(db) == before


def _text_file(path: Path) -> None:
    path.write_text("these are my notes, not a database\n")


def _foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()


def _foreign_sqlite_with_meta(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.close()


@pytest.mark.parametrize("make", [_text_file, _foreign_sqlite, _foreign_sqlite_with_meta])
@pytest.mark.parametrize("args", [["list"], ["run", "handlers.py:greet", "--input", '{"n": 1}'],
                                  ["worker", "--until-idle"], ["show", "x"], ["callback", "succeed", "x"]])
def test_a_db_that_is_not_ours_is_refused_untouched(cli: Cli, tmp_path: Path, make: Callable[[Path], None],
                                                    args: list[str]) -> None:
    foreign = tmp_path / "theirs.db"
    make(foreign)
    before = _snapshot(foreign)
    result = cli(*args, db=foreign)
    _assert_usage_error(result, "not a duragent")
    assert _snapshot(foreign) == before


@pytest.mark.parametrize("args", [["show", "x"], ["list"], ["list", "--pending", "--json"], ["history", "x"],
                                  ["approve", "x"], ["reject", "x", "--feedback", "no"], ["answer", "x", "1"],
                                  ["callback", "succeed", "x"], ["callback", "heartbeat", "x"], ["stop", "x"],
                                  ["replay-check"], ["ui", "--port", "0"]])
def test_commands_that_read_or_answer_refuse_a_missing_store(cli: Cli, tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "typo" / "store.db"
    _assert_usage_error(cli(*args, db=missing), "no duragent store")
    assert not missing.parent.exists()  # not even the directory


def test_worker_on_a_new_store_says_so(cli: Cli, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh" / "store.db"
    done = cli("worker", "--until-idle", db=fresh)
    assert done.returncode == 0 and f"created a new store at {fresh}" in done.stderr
    again = cli("worker", "--until-idle", db=fresh)
    assert again.returncode == 0 and "created a new store" not in again.stderr


def test_a_closed_pipe_ends_quietly(cli: Cli, tmp_path: Path) -> None:
    assert cli("run", "handlers.py:many", "--id", "big").returncode == 0
    for command in ("history big --json", "show big", "show big --json"):
        shell = f"{shlex.quote(sys.executable)} -m duragent --db {tmp_path / 'store.db'} {command} | head -1"
        done = subprocess.run(["sh", "-c", shell], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert len(done.stdout.splitlines()) == 1


# -- paging: a total, and the next page: never a silent cap ------------------------------------------
def test_list_pages_with_a_total(cli: Cli) -> None:
    for n in range(5):
        assert cli("run", "handlers.py:review", "--id", f"r{n}").returncode == 0
    first = _json(cli("list", "--json", "--limit", "2"))
    assert first["total"] == 5 and len(first["executions"]) == 2 and first["next_cursor"] == "2"
    second = _json(cli("list", "--json", "--limit", "2", "--cursor", first["next_cursor"]))
    last = _json(cli("list", "--json", "--limit", "2", "--cursor", second["next_cursor"]))
    ids = [r["id"] for page in (first, second, last) for r in page["executions"]]
    assert sorted(ids) == [f"r{n}" for n in range(5)] and last["next_cursor"] is None
    text = cli("list", "--limit", "2")
    assert "showing executions 1-2 of 5; next page: duragent --db" in text.stdout and "--cursor 2" in text.stdout

    pending = _json(cli("list", "--pending", "--json", "--limit", "3"))
    assert pending["total"] == 5 and len(pending["pending"]) == 3 and pending["next_cursor"] == "3"
    rest = _json(cli("list", "--pending", "--json", "--limit", "3", "--cursor", "3"))
    assert len(rest["pending"]) == 2 and rest["next_cursor"] is None
    every = [p["callback_id"] for p in pending["pending"] + rest["pending"]]
    assert len(set(every)) == 5
    # the last one on the last page is answered by its id like any other
    assert cli("callback", "succeed", every[-1], "--result", '"ok"').returncode == 0
    assert _json(cli("list", "--pending", "--json"))["total"] == 4
    text = cli("list", "--pending", "--limit", "3")
    assert "showing callbacks 1-3 of 4" in text.stdout


# -- what each pause asks for, and the commands that answer it ---------------------------------------
def test_each_pause_prints_the_command_that_answers_it(cli: Cli, tmp_path: Path) -> None:
    db = f"--db {tmp_path / 'store.db'}"
    paying = cli("run", "handlers.py:paying", "--id", "pay")
    assert paying.returncode == 0, paying.stderr
    asking = cli("run", "handlers.py:asking", "--id", "ask")
    assert asking.returncode == 0, asking.stderr
    items = {p["execution_id"]: p for p in _json(cli("list", "--pending", "--json"))["pending"]}
    review, question = items["pay"], items["ask"]
    assert review["kind"] == "tool_approval" and review["arguments"] == {"to": "ann", "amount": 100}
    assert question["kind"] == "question" and question["response_schema"]["properties"]["people"]["type"] == "integer"
    for text in (paying.stdout, cli("list", "--pending").stdout, cli("show", "pay").stdout):
        assert f"duragent {db} approve {review['callback_id']}" in text, text
        assert f"duragent {db} reject {review['callback_id']} --feedback TEXT" in text
    for text in (asking.stdout, cli("list", "--pending").stdout):
        assert f"duragent {db} answer {question['callback_id']} JSON" in text and '"people"' in text
    assert "callback succeed" not in paying.stdout  # a review is not answered with a raw callback

    # the wrong command for the kind is refused, with nothing recorded
    before = _snapshot(tmp_path / "store.db")
    _assert_usage_error(cli("approve", question["callback_id"]), "question")
    _assert_usage_error(cli("answer", review["callback_id"], "1"), "approve or reject")
    _assert_usage_error(cli("answer", question["callback_id"], '{"people": "four"}'), "'four' is not of type 'integer'")
    _assert_usage_error(cli("approve", review["callback_id"], "--edit", '{"amount": "ten"}'),
                        "'ten' is not of type 'integer'")
    _assert_usage_error(cli("reject", review["callback_id"], "--feedback", " "), "feedback")
    assert _snapshot(tmp_path / "store.db") == before

    assert cli("answer", question["callback_id"], '{"people": 4}').returncode == 0
    done = cli("approve", review["callback_id"], "--edit", '{"amount": 10}')
    assert done.returncode == 0 and "review approved with amount changed" in done.stdout, done.stderr
    assert cli("worker", "--until-idle").returncode == 0
    assert _json(cli("show", "ask", "--json"))["result"] == 4
    paid = _json(cli("show", "pay", "--json"))
    assert paid["status"] == "SUCCEEDED" and paid["result"].endswith("paid 10 to ann")
    assert paid["ledger"]["paid_calls"] == 2 and paid["ledger"]["reused_calls"] == 1  # call 1 replayed after the wait
    shown = cli("show", "pay").stdout
    assert "paid $" in shown and "reused 1 of them from the journal" in shown
