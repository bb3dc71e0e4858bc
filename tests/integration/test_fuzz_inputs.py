"""Bad input from outside, fuzzed (bounded, with hypothesis): every argument path of the CLI and
every endpoint of the console. Whatever arrives (lone surrogates and invalid UTF-8 in arguments,
ids and stdin, 5,000-deep JSON, NaN and Infinity, numbers out of range, unknown fields, answers of
the wrong shape), the answer is exit 2 or an HTTP 4xx with a one-line error, never a traceback, and
the store stays byte for byte as it was.

The CLI runs in-process here (``duragent.cli.main`` with an argv list, as Python hands a command
line over: invalid UTF-8 bytes arrive as lone surrogates); a few cases also go through a real
subprocess with raw bytes. The console runs as ``duragent ui`` in its own process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duragent.agents import Agent, ask_human
from duragent.agents.messages import ToolResult
from duragent.agents.models.scripted import ScriptedModel
from duragent.cli import main
from duragent.durable import DurableContext, LocalRuntime
from duragent.tools import tool

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("DURAGENT_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TRIED: dict[str, int] = {}


@tool(requires_approval=True)
def pay(to: str, amount: int) -> str:
    """Pay someone."""
    return f"paid {amount} to {to}"


def _brain(request: Any) -> Any:
    results = [b for m in request.messages for b in m.content if isinstance(b, ToolResult)]
    return ScriptedModel.tool_call("pay", {"to": "ann", "amount": 100}, "c1") if not results else "done"


def paying(event: Any, ctx: DurableContext) -> Any:
    return Agent(ScriptedModel(_brain, name="payer"), tools=[pay]).run(ctx, "pay ann").output


def asking(event: Any, ctx: DurableContext) -> int:
    return int(ask_human(ctx, "How many?", int, name="headcount"))


def plain(event: Any, ctx: DurableContext) -> Any:
    return ctx.wait_for_callback(lambda callback_id: None, name="webhook")


@dataclass
class Store:
    db: Path
    review: str
    question: str
    callback: str

    def snapshot(self) -> dict[str, bytes]:
        """The database and its write-ahead log, byte for byte (not the -shm index, whose read
        marks change whenever a reader in another process, the console, reads)."""
        return {p.name: p.read_bytes() for p in sorted(self.db.parent.glob(self.db.name + "*"))
                if not p.name.endswith("-shm")}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    db = tmp_path_factory.mktemp("fuzz") / "store.db"
    with LocalRuntime(db) as rt:
        for handler, execution_id in ((paying, "paying"), (asking, "asking"), (plain, "plain")):
            rt.start(handler, {}, execution_id=execution_id)
        rt.run_until_idle()
        ids = {e: c for e, _, c in rt.pending_callbacks()}
    return Store(db, ids["paying"], ids["asking"], ids["plain"])


def run_cli(store: Store, *argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    real_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(["--db", str(store.db), *argv])
            except SystemExit as exc:  # argparse's own refusals
                code = int(exc.code or 0)
    finally:
        sys.stdin = real_stdin
    return code, out.getvalue(), err.getvalue()


def refused(store: Store, *argv: str, stdin: bytes = b"") -> str:
    """Run a command that must be refused: exit 2, one line, nothing printed, store unchanged."""
    before = store.snapshot()
    code, out, err = run_cli(store, *argv, stdin=stdin)
    assert code == 2, (argv, code, out, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("duragent: error: "), (argv, err)
    assert "Traceback" not in err
    assert store.snapshot() == before, argv
    TRIED["cli"] = TRIED.get("cli", 0) + 1
    return err


# -- strategies ---------------------------------------------------------------------------------------
any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
with_surrogates = st.builds(lambda a, s, b: a + s + b, st.text(max_size=8),
                            st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), st.text(max_size=8))
invalid_utf8 = st.binary(min_size=1, max_size=16).filter(lambda b: not _is_utf8(b)).map(
    lambda b: b.decode("utf-8", "surrogateescape"))
text = st.one_of(st.text(any_char, max_size=40), with_surrogates, invalid_utf8)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                           | st.text(max_size=10), lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
not_json = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "[NaN]", '{"a": Infinity}', "1e400", "-1e999", "[1e400]",
                     "{", "[", "'single'", "tru", "{'a': 1}", "[1,]", "", " ", "01x", "1" * 5000,
                     '"\\ud800"', '{"a": "\\udfff"}', '["\\ud83d"]']),
    st.integers(min_value=101, max_value=6000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=101, max_value=6000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    with_surrogates.map(json.dumps),
    with_surrogates, invalid_utf8,
    json_values.map(json.dumps).map(lambda t: t + ","),  # JSON with trailing garbage
)
ids = st.one_of(text, st.text("abc-_", min_size=1, max_size=70), st.just(""), st.just("x" * 3000))


def _not_existing(value: str) -> bool:
    return value not in ("paying", "asking", "plain")


# -- the CLI ------------------------------------------------------------------------------------------
@FUZZ
@given(command=st.sampled_from(["show", "history", "stop"]), execution_id=ids.filter(_not_existing),
       json_flag=st.booleans())
def test_cli_execution_ids(store: Store, command: str, execution_id: str, json_flag: bool) -> None:
    extra = ["--json"] if json_flag and command != "stop" else []
    refused(store, command, "--", execution_id, *extra) if execution_id.startswith("-") else \
        refused(store, command, execution_id, *extra)


@FUZZ
@given(command=st.sampled_from(["approve", "reject", "answer", "succeed", "fail", "heartbeat"]), callback_id=ids)
def test_cli_callback_ids(store: Store, command: str, callback_id: str) -> None:
    args = {"approve": ["approve"], "reject": ["reject", "--feedback", "no"], "answer": ["answer"],
            "succeed": ["callback", "succeed"], "fail": ["callback", "fail"],
            "heartbeat": ["callback", "heartbeat"]}[command]
    tail = ["1"] if command == "answer" else []
    refused(store, *args, "--", callback_id, *tail) if callback_id.startswith("-") else \
        refused(store, *args, callback_id, *tail)


@FUZZ
@given(where=st.sampled_from(["result", "answer-question", "answer-callback", "edit", "input", "stdin-input",
                              "stdin-answer"]), payload=not_json)
def test_cli_json_arguments_and_stdin(store: Store, where: str, payload: str) -> None:
    data = payload.encode("utf-8", "surrogatepass")
    argv = {"result": ["callback", "succeed", store.callback, f"--result={payload}"],
            "answer-question": ["answer", "--", store.question, payload],
            "answer-callback": ["answer", "--", store.callback, payload],
            "edit": ["approve", store.review, f"--edit={payload}"],
            "input": ["run", "nowhere.py:handler", f"--input={payload}"],
            "stdin-input": ["run", "nowhere.py:handler", "--input=@-"],
            "stdin-answer": ["answer", store.question, "@-"]}[where]
    refused(store, *argv, stdin=data if where.startswith("stdin") else b"")


@FUZZ
@given(kind=st.sampled_from(["edit", "question", "feedback", "reviewer", "error"]), value=json_values, words=text)
def test_cli_answers_of_the_wrong_shape(store: Store, kind: str, value: Any, words: str) -> None:
    if kind == "edit":  # amount must be an integer, to a string, and nothing else is an argument
        edit = {"amount": value} if not _integer(value) else {"amount": str(value)}
        refused(store, "approve", store.review, "--edit", json.dumps(edit))
    elif kind == "question":  # the question takes an integer
        answer = value if not _integer(value) else str(value)
        refused(store, "answer", store.question, "--", json.dumps(answer))
    elif kind == "feedback":  # empty, blank or not UTF-8
        feedback = words if not words.strip() or not _encodes(words) else " \t"
        refused(store, "reject", store.review, "--feedback", feedback)
    elif kind == "reviewer":
        reviewer = words if not _encodes(words) else "x" * 201
        refused(store, "approve", store.review, "--reviewer", reviewer)
    else:
        message = words if not _encodes(words) else "\ud800"
        refused(store, "callback", "fail", store.callback, "--error-message", message)


def _integer(value: Any) -> bool:
    """What JSON schema's "integer" accepts (1.0 included), so the fuzzing never sends a valid answer."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@FUZZ
@given(option=st.sampled_from(["--limit", "--cursor", "--status", "--timeout", "--port", "--db"]),
       value=st.one_of(text, st.integers().map(str), st.just(str(10**20)), st.just("-1"), st.just("0"),
                       st.just("1001"), st.just("1e3"), st.just("NaN")), pending=st.booleans())
def test_cli_options_out_of_range(store: Store, option: str, value: str, pending: bool) -> None:
    if option in ("--limit", "--cursor", "--status"):
        if option == "--limit" and value.strip().lstrip("+").isdigit() and 1 <= int(value) <= 1000:
            value = "0"
        if option == "--cursor" and value.strip().lstrip("+").isdigit() and len(value.strip()) <= 9:
            value = f"-{int(value) + 1}"
        if option == "--status" and value.strip().upper() in ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT",
                                                              "STOPPED"):
            value = value + "!"
        refused(store, "list", *(["--pending"] if pending else []), f"{option}={value}")
    elif option == "--timeout":
        if value.strip().isdigit() and 1 <= int(value) <= 366 * 24 * 3600:
            value = "0"
        refused(store, "run", "nowhere.py:handler", f"--timeout={value}")
    elif option == "--port":
        if re.fullmatch(r"-?[0-9]+", value.strip()) and 0 <= int(value) <= 65535:
            value = "65536"
        refused(store, "ui", f"--port={value}")
    else:  # a store that does not exist is never created by a reading command
        code, out, err = run_cli(store, "list", "--db", str(store.db.parent / f"missing-{value}.db"))
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert sorted(p.name for p in store.db.parent.iterdir()) == sorted(
            p.name for p in store.db.parent.glob(store.db.name + "*"))
        TRIED["cli"] = TRIED.get("cli", 0) + 1


@FUZZ
@given(argv=st.lists(st.one_of(st.sampled_from(["list", "show", "history", "callback", "succeed", "fail",
                                                 "heartbeat", "approve", "reject", "answer", "stop", "--json",
                                                 "--pending", "--aws", "--function", "--limit", "--cursor",
                                                 "--edit", "--result", "--feedback", "--reviewer", "--status",
                                                 "-h", "--version"]), text), min_size=1, max_size=6))
def test_cli_any_command_line_never_crashes(store: Store, argv: list[str]) -> None:
    """Random command lines (no run, worker or ui, which would run or serve): whatever they mean,
    nothing escapes as a traceback, a refusal is one line, and nothing can be answered (the ids
    are random), so the store is untouched."""
    if "--aws" in argv or "--function" in argv:
        argv = [a for a in argv if a not in ("--aws", "--function")]  # no network: AWS is not reachable here
    before = store.snapshot()
    code, out, err = run_cli(store, *argv)
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("duragent: error: "), (argv, err)
    assert store.snapshot() == before, argv
    TRIED["cli"] = TRIED.get("cli", 0) + 1


# -- the CLI in a real process: bytes as the OS hands them over ---------------------------------------
RAW_CASES: list[tuple[list[bytes], bytes, str]] = [
    ([b"show", b"\xff\xfe"], b"", "UTF-8"),
    ([b"history", b"caf\xe9"], b"", "UTF-8"),
    ([b"answer", b"\xed\xa0\x80", b"1"], b"", "UTF-8"),
    ([b"callback", b"succeed", b"CALLBACK", b"--result", b'"\xff"'], b"", "UTF-8"),
    ([b"answer", b"QUESTION", b"@-"], b'"\xff\xfe"', "UTF-8"),
    ([b"answer", b"QUESTION", b"@-"], b"[" * 5000 + b"]" * 5000, "deeper than"),
    ([b"list", b"--limit", str(10**20).encode()], b"", "out of range"),
    ([b"answer", b"CALLBACK", b"NaN"], b"", "not JSON"),
    ([b"answer", b"CALLBACK", b"[Infinity]"], b"", "not JSON"),
    ([b"reject", b"REVIEW", b"--feedback", b"\xc3\x28"], b"", "UTF-8"),
]


@pytest.mark.parametrize(("argv", "stdin", "needle"), RAW_CASES, ids=[repr(a)[:40] for a, _, _ in RAW_CASES])
def test_raw_bytes_from_the_os(store: Store, argv: list[bytes], stdin: bytes, needle: str) -> None:
    ids = {b"CALLBACK": store.callback.encode(), b"QUESTION": store.question.encode(), b"REVIEW": store.review.encode()}
    before = store.snapshot()
    done = subprocess.run([sys.executable.encode(), b"-m", b"duragent", b"--db", str(store.db).encode(),
                           *[ids.get(a, a) for a in argv]], input=stdin, capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2 and done.stdout == b"", err
    assert err.count("\n") == 1 and err.startswith("duragent: error: ") and needle in err, err
    assert store.snapshot() == before
    TRIED["cli"] = TRIED.get("cli", 0) + 1


# -- the console --------------------------------------------------------------------------------------
@dataclass
class Console:
    base: str
    token: str
    port: int


@pytest.fixture(scope="module")
def console(store: Store) -> Iterator[Console]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "duragent", "--db", str(store.db), "ui", "--port", "0"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(timeout=30)
    match = re.fullmatch(r"duragent console: (http://127\.0\.0\.1:(\d+)/)#token=([\w-]+)\n", lines[0] if lines else "")
    try:
        assert match, lines
        yield Console(match.group(1), match.group(3), int(match.group(2)))
    finally:
        process.terminate()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def http(console: Console, method: str, path: str, body: bytes | None = None,
         content_type: str = "application/json") -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {console.token}"}
    if body is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(console.base + path.lstrip("/"), data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def refused_http(store: Store, console: Console, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
    before = store.snapshot()
    status, answer = http(console, method, path, body)
    assert 400 <= status < 500, (method, path, body, status, answer)
    assert isinstance(answer, dict) and isinstance(answer.get("error"), str) and "\n" not in answer["error"]
    assert store.snapshot() == before, (method, path, body)
    TRIED["console"] = TRIED.get("console", 0) + 1
    return answer


def _quote(value: str) -> str:
    return urllib.request.quote(value.encode("utf-8", "surrogatepass"), safe="")


@FUZZ
@given(resource=st.sampled_from(["executions", "executions/{id}", "executions/{id}/history", "reviews/{id}",
                                 "reviews/{id}/approve", "nothing/{id}"]), ident=ids.filter(_not_existing),
       raw_bytes=st.binary(min_size=1, max_size=8))
def test_console_paths(store: Store, console: Console, resource: str, ident: str, raw_bytes: bytes) -> None:
    path = "/api/" + resource.replace("{id}", _quote(ident) or "%FF")
    if resource == "executions":
        path += "/" + urllib.request.quote(raw_bytes, safe="")
    method = "POST" if resource.endswith("approve") else "GET"
    refused_http(store, console, method, path, b"{}" if method == "POST" else None)


@FUZZ
@given(path=st.sampled_from(["/api/executions", "/api/reviews"]),
       query=st.lists(st.tuples(st.sampled_from(["limit", "cursor", "status", "token", "x", ""]),
                                st.one_of(text, st.integers().map(str), st.just(str(10**20)))), min_size=1, max_size=3))
def test_console_query_parameters(store: Store, console: Console, path: str, query: list[tuple[str, str]]) -> None:
    def bad(key: str, value: str) -> bool:
        if key == "limit":
            return not (value.strip().isdigit() and 1 <= int(value) <= 1000)
        if key == "cursor":
            return not (value.strip().isdigit() and int(value) <= 10**9)
        if key == "status":
            return path == "/api/reviews" or value.strip().upper() not in (
                "", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED") or not _encodes(value)
        return True
    keys = [k for k, _ in query]
    if not (len(set(keys)) < len(keys) or any(bad(k, v) or not _encodes(v) for k, v in query)):
        query = [*query, ("x", "1")]
    encoded = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in query)
    refused_http(store, console, "GET", f"{path}?{encoded}")


@FUZZ
@given(action=st.sampled_from(["approve", "reject", "answer"]), target=st.sampled_from(["review", "question",
                                                                                       "callback"]),
       body=st.one_of(st.binary(max_size=64), not_json.map(lambda t: t.encode("utf-8", "surrogatepass")),
                      json_values.map(lambda v: json.dumps(v).encode())))
def test_console_bodies(store: Store, console: Console, action: str, target: str, body: bytes) -> None:
    """Bodies of every kind to every answer; those that could be a valid answer are made invalid
    by an unknown field (which is always refused)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # the test's own parser gives up on 5,000-deep JSON
        value = None
    if not body.strip():  # an empty body is an approval with nothing changed: a valid answer
        value = {}
    if isinstance(value, dict):
        value = {**value, "unexpected": True}
        body = json.dumps(value).encode()
    callback_id = {"review": store.review, "question": store.question, "callback": store.callback}[target]
    refused_http(store, console, "POST", f"/api/reviews/{_quote(callback_id)}/{action}", body)


@FUZZ
@given(target=st.sampled_from(["review", "question"]), value=json_values, words=text)
def test_console_answers_of_the_wrong_shape(store: Store, console: Console, target: str, value: Any,
                                            words: str) -> None:
    if target == "review":
        edit = {"amount": value} if not _integer(value) else {"to": value}
        refused_http(store, console, "POST", f"/api/reviews/{_quote(store.review)}/approve",
                     json.dumps({"edits": edit}).encode())
        feedback = words if not words.strip() or not _encodes(words) else "   "
        refused_http(store, console, "POST", f"/api/reviews/{_quote(store.review)}/reject",
                     json.dumps({"feedback": feedback}).encode("utf-8", "surrogatepass"))
    else:
        answer = value if not _integer(value) else [value]
        refused_http(store, console, "POST", f"/api/reviews/{_quote(store.question)}/answer",
                     json.dumps({"answer": answer}).encode())


def test_the_fuzzing_ran_and_the_inputs_were_counted(store: Store) -> None:
    """Last in this module: the store still holds the three waits, unanswered, after every input tried."""
    with LocalRuntime(store.db) as rt:
        assert sorted(e for e, _, _ in rt.pending_callbacks()) == ["asking", "paying", "plain"]
    total = sum(TRIED.values())
    print(f"\nfuzzed inputs refused cleanly: {TRIED} ({total} in all)")
    assert total >= 10 * EXAMPLES
