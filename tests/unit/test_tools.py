"""tools: schemas from signatures, docstrings, validation for the model, durable execution of
plain and durable tools, and the built-ins (calculator, http_get, current_time)."""

import http.server
import os
import threading
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field
from tenacity import stop_after_attempt, wait_fixed

from duragent.durable import (
    DurableContext,
    Duration,
    LocalRuntime,
    RetryPolicy,
    UsageError,
    VirtualClock,
    step_context,
)
from duragent.tools import Tool, ToolError, ToolValidationError, tool
from duragent.tools.builtin import calculator, current_time, http_get
from duragent.tools.builtin.calculator import CalculatorError, evaluate
from duragent.tools.builtin.http import ALLOW_PRIVATE_ENV
from duragent.tools.tool import to_text

# -- a representative tool -------------------------------------------------------------------------

class Units(StrEnum):
    METRIC = "metric"
    IMPERIAL = "imperial"


class Place(BaseModel):
    """A place on earth."""

    city: str
    country: str | None = None


def forecast(place: Place, days: Annotated[int, Field(ge=1, le=14, description="Days ahead, 1-14.")] = 3,
             units: Units = Units.METRIC, fields: list[Literal["temp", "rain", "wind"]] | None = None,
             detailed: bool = False) -> dict[str, Any]:
    """Get the weather forecast for a place.

    Uses the national weather services.

    Args:
        place: where to forecast.
        days: ignored, because Annotated[..., Field(description=...)] wins.
        units (Units): unit system for
            temperatures and speeds.
        fields: which measurements to include; all when omitted.

    Returns:
        a forecast per day.
    """
    return {"city": place.city, "days": days, "units": units.value, "fields": fields, "detailed": detailed}


FORECAST_SCHEMA = {
    "$defs": {
        "Place": {
            "description": "A place on earth.",
            "properties": {
                "city": {"type": "string"},
                "country": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            },
            "required": ["city"],
            "type": "object",
        },
        "Units": {"enum": ["metric", "imperial"], "type": "string"},
    },
    "additionalProperties": False,
    "properties": {
        "place": {"$ref": "#/$defs/Place", "description": "where to forecast."},
        "days": {"default": 3, "description": "Days ahead, 1-14.", "maximum": 14, "minimum": 1, "type": "integer"},
        "units": {"$ref": "#/$defs/Units", "default": "metric",
                  "description": "unit system for temperatures and speeds."},
        "fields": {
            "anyOf": [{"items": {"enum": ["temp", "rain", "wind"], "type": "string"}, "type": "array"},
                      {"type": "null"}],
            "default": None,
            "description": "which measurements to include; all when omitted.",
        },
        "detailed": {"default": False, "type": "boolean"},
    },
    "required": ["place"],
    "type": "object",
}


def test_schema_snapshot_for_a_representative_function() -> None:
    t = tool(forecast)
    assert isinstance(t, Tool)
    assert t.name == "forecast"
    assert t.description == "Get the weather forecast for a place.\n\nUses the national weather services."
    assert t.parameters == FORECAST_SCHEMA
    assert not t.durable and not t.at_most_once and not t.requires_approval
    spec = t.spec()
    assert (spec.name, spec.description, spec.parameters) == ("forecast", t.description, FORECAST_SCHEMA)


def test_decorator_with_arguments_overrides_name_and_description() -> None:
    @tool(name="send-mail", description="Send an e-mail.", requires_approval=True, at_most_once=True, timeout=5)
    def send(to: str, body: str = "") -> str:
        """Ignored docstring."""
        return "sent"

    assert (send.name, send.description) == ("send-mail", "Send an e-mail.")
    assert send.requires_approval and send.at_most_once and send.timeout == 5
    assert send.parameters["required"] == ["to"]
    assert send("a@b") == "sent"  # calling the Tool calls the function


def test_no_parameters_gives_an_empty_object_schema() -> None:
    @tool
    def ping() -> str:
        """Check that the service answers."""
        return "pong"

    assert ping.parameters == {"additionalProperties": False, "properties": {}, "type": "object"}
    assert ping.validate({}) == {}
    assert ping.validate(None) == {}


def test_rest_docstring_and_field_defaults() -> None:
    @tool
    def search(query: str, limit: int = Field(10, ge=1), *, site: str | None = None) -> list[str]:
        """Search the web.

        :param query: what to look for,
            in plain words.
        :param int limit: how many results.
        :param site: restrict to one site.
        :returns: result URLs.
        """
        return []

    assert search.description == "Search the web."
    assert search.parameter_descriptions == {"query": "what to look for, in plain words.",
                                             "limit": "how many results.", "site": "restrict to one site."}
    props = search.parameters["properties"]
    assert props["limit"] == {"default": 10, "description": "how many results.", "minimum": 1, "type": "integer"}
    assert props["query"] == {"description": "what to look for, in plain words.", "type": "string"}
    assert search.parameters["required"] == ["query"]


def test_parameter_names_that_clash_with_pydantic_are_kept() -> None:
    @tool
    def fetch(json: bool, model_name: str = "x", schema: str = "s") -> str:
        """Fetch."""
        return f"{json}-{model_name}-{schema}"

    assert list(fetch.parameters["properties"]) == ["json", "model_name", "schema"]
    assert fetch.validate({"json": True, "schema": "t"}) == {"json": True, "model_name": "x", "schema": "t"}
    with pytest.raises(ToolValidationError, match="arg_json"):
        fetch.validate({"arg_json": True, "json": True})


def test_validate_returns_python_values() -> None:
    t = tool(forecast)
    kwargs = t.validate({"place": {"city": "Paris"}, "units": "imperial", "fields": ["rain"]})
    assert kwargs == {"place": Place(city="Paris"), "days": 3, "units": Units.IMPERIAL, "fields": ["rain"],
                      "detailed": False}
    assert isinstance(kwargs["place"], Place) and kwargs["units"] is Units.IMPERIAL
    assert t.validate(kwargs) == kwargs  # validating validated arguments changes nothing


def test_validation_errors_are_written_for_the_model() -> None:
    t = tool(forecast)
    with pytest.raises(ToolValidationError) as info:
        t.validate({"days": "three", "units": "kelvin", "colour": "red"})
    error = info.value
    assert error.tool_name == "forecast"
    assert {e["field"]: e["type"] for e in error.errors} == {
        "place": "missing", "days": "int_parsing", "units": "enum", "colour": "extra_forbidden"}
    text = str(error)
    assert text.startswith("Invalid arguments for tool 'forecast' (4 problems); fix them and call the tool again:")
    assert "- place: missing required argument" in text
    assert "- days: Input should be a valid integer, unable to parse string as an integer (got 'three')" in text
    assert "- units: Input should be 'metric' or 'imperial' (got 'kelvin')" in text
    assert "- colour: unexpected argument; this tool takes place, days, units, fields, detailed" in text


def test_nested_validation_errors_name_the_path() -> None:
    t = tool(forecast)
    with pytest.raises(ToolValidationError) as info:
        t.validate({"place": {"city": 7}, "fields": ["temp", "snow"]})
    assert [e["field"] for e in info.value.errors] == ["place.city", "fields[1]"]
    assert "- place.city: Input should be a valid string (got 7)" in str(info.value)
    assert "- fields[1]: Input should be 'temp', 'rain' or 'wind' (got 'snow')" in str(info.value)


def test_arguments_must_be_an_object() -> None:
    with pytest.raises(ToolValidationError, match="expected a JSON object of named arguments, got str"):
        tool(forecast).validate("Paris")  # type: ignore[arg-type]


def test_definition_mistakes_are_usage_errors() -> None:
    def variadic(*names: str) -> str:
        return ""

    with pytest.raises(UsageError, match=r"takes \*names"):
        tool(variadic)
    with pytest.raises(UsageError, match="tool name 'no spaces' is invalid"):
        tool(name="no spaces")(forecast)

    def durable_one(ctx: DurableContext, x: int) -> int:
        return x

    with pytest.raises(UsageError, match="at_most_once=, timeout= and retry= do not apply"):
        tool(timeout=3)(durable_one)

    async def coroutine(x: int) -> int:
        """Async tools are tools too (tests/unit/test_async_agents.py runs them)."""
        return x

    assert tool(coroutine).is_async and tool(coroutine).parameters["required"] == ["x"]


def test_durable_tools_are_recognised_and_ctx_is_left_out_of_the_schema() -> None:
    @tool
    def annotated(context: DurableContext, x: int) -> int:
        """A."""
        return x

    @tool
    def named(ctx, x: int) -> int:  # noqa: ANN001 - the name is enough
        """B."""
        return x

    namespace: dict[str, Any] = {}  # a module that imports DurableContext under TYPE_CHECKING only
    exec("def forward_ref(c: 'DurableContext', x: int) -> int:\n    return x", namespace)
    forward_ref = tool(namespace["forward_ref"])

    for t in (annotated, named, forward_ref):
        assert t.durable, t
        assert list(t.parameters["properties"]) == ["x"]
    assert not tool(forecast).durable


def test_results_become_text() -> None:
    assert to_text("as is") == "as is"
    assert to_text({"a": [1, 2.5, None]}) == '{"a": [1, 2.5, null]}'
    assert to_text(Place(city="Oslo")) == '{"city":"Oslo","country":null}'
    assert to_text(None) == "null"
    assert to_text(Path("/x")) == '"/x"'

    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    assert to_text(Opaque()) == "opaque!"


# -- running durably -------------------------------------------------------------------------------

@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LocalRuntime]:
    rt = LocalRuntime(tmp_path / "t.db", clock=VirtualClock())
    yield rt
    rt.close()


def _steps(rt: LocalRuntime, execution_id: str, event_type: str) -> list[dict[str, Any]]:
    return [e for e in rt.history(execution_id) if e["EventType"] == event_type]


def test_plain_tool_runs_as_one_step_and_is_not_rerun_on_replay(runtime: LocalRuntime) -> None:
    calls: list[int] = []

    @tool
    def add(a: int, b: int) -> dict[str, int]:
        """Add two numbers."""
        calls.append(step_context().attempt)
        return {"sum": a + b}

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        result = add.run(ctx, {"a": 2, "b": 3}, call_id="call-1")
        ctx.wait(Duration.from_minutes(5), name="pause")
        return result.model_dump()

    info = runtime.run(handler, {})
    assert info.status == "SUCCEEDED" and info.invocations == 2
    assert info.result == {"type": "tool_result", "tool_call_id": "call-1", "content": '{"sum": 5}',
                           "is_error": False}
    assert calls == [1]  # the second invocation replayed the step
    started = _steps(runtime, info.id, "StepSucceeded")
    assert [e["Name"] for e in started] == ["tool:add"]


def test_tool_errors_become_error_results_and_replay_identically(runtime: LocalRuntime) -> None:
    calls: list[str] = []

    @tool
    def explode(kind: str) -> str:
        """Fail on purpose."""
        calls.append(kind)
        if kind == "tool":
            raise ToolError("the quota is used up; try tomorrow")
        raise ValueError(f"bad kind {kind}")

    def handler(event: Any, ctx: DurableContext) -> list[dict[str, Any]]:
        first = explode.run(ctx, {"kind": "tool"}, call_id="1")
        second = explode.run(ctx, {"kind": "other"}, call_id="2")
        ctx.wait(Duration.from_seconds(10))
        return [first.model_dump(), second.model_dump()]

    info = runtime.run(handler, {})
    assert info.status == "SUCCEEDED", info.error
    first, second = info.result
    assert first["is_error"] and first["content"] == "the quota is used up; try tomorrow"
    assert second["is_error"] and second["content"] == "ValueError: bad kind other"
    assert calls == ["tool", "other"]  # failed steps replay their error, they do not run again
    assert [e["Name"] for e in _steps(runtime, info.id, "StepFailed")] == ["tool:explode", "tool:explode"]


def test_invalid_arguments_give_an_error_result_without_a_step(runtime: LocalRuntime) -> None:
    @tool
    def square(x: int) -> int:
        """Square a number."""
        return x * x

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        return square.run(ctx, {"x": "many"}, call_id="c").model_dump()

    info = runtime.run(handler, {})
    assert info.result["is_error"] is True
    assert "- x: Input should be a valid integer" in info.result["content"]
    assert _steps(runtime, info.id, "StepStarted") == []


def test_durable_tool_receives_ctx_and_runs_in_a_child_context(runtime: LocalRuntime) -> None:
    bodies: list[str] = []

    @tool
    def slow_review(ctx: DurableContext, document: str) -> str:
        """Review a document, taking a day to think.

        Args:
            document: the text to review.
        """
        draft = ctx.step(lambda: bodies.append("draft") or f"draft of {document}", name="draft")
        ctx.wait(Duration.from_days(1), name="think")
        return ctx.step(lambda: bodies.append("final") or draft.replace("draft", "review"), name="final")

    assert slow_review.durable
    assert slow_review.parameters["properties"] == {"document": {"description": "the text to review.",
                                                                  "type": "string"}}

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        return slow_review.run(ctx, {"document": "the plan"}, call_id="r1").model_dump()

    info = runtime.run(handler, {})
    assert info.status == "SUCCEEDED"
    assert info.result["content"] == "review of the plan" and not info.result["is_error"]
    assert bodies == ["draft", "final"]  # each step ran once although the handler ran twice
    assert info.invocations == 2
    contexts = _steps(runtime, info.id, "ContextSucceeded")
    assert [e["Name"] for e in contexts] == ["tool:slow_review"]
    inner = [e for e in _steps(runtime, info.id, "StepSucceeded") if e.get("ParentId") == contexts[0]["Id"]]
    assert [e["Name"] for e in inner] == ["draft", "final"]


def test_durable_tool_failure_is_an_error_result(runtime: LocalRuntime) -> None:
    @tool
    def fragile(ctx: DurableContext) -> str:
        """Fails inside a step."""
        return ctx.step(lambda: 1 / 0, name="divide")

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        return fragile.run(ctx, {}, call_id="f").model_dump()

    info = runtime.run(handler, {})
    assert info.status == "SUCCEEDED"
    assert info.result["is_error"] and info.result["content"].startswith("ZeroDivisionError: division by zero")


@pytest.mark.parametrize("at_most_once", [True, False])
def test_at_most_once_persists_the_start_before_the_body_runs(runtime: LocalRuntime, at_most_once: bool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A queued at-least-once START is flushed on its own once a step has run 0.1 s; on a loaded machine
    # the body's own history read can take that long, so hold that flush off here.
    from duragent.durable.state import ExecutionState
    monkeypatch.setattr(ExecutionState.enqueue, "__defaults__", (60.0,))
    seen_during_call: list[list[str]] = []

    @tool(at_most_once=at_most_once)
    def charge(amount: int) -> str:
        """Charge a card."""
        seen_during_call.append([e["EventType"] for e in runtime.history("pay") if e.get("Name") == "tool:charge"])
        return f"charged {amount}"

    def handler(event: Any, ctx: DurableContext) -> str:
        return charge.run(ctx, {"amount": 12}, call_id="p").content

    runtime.start(handler, {}, execution_id="pay")
    runtime.run_until_idle()
    assert runtime.get("pay").result == "charged 12"
    if at_most_once:
        assert seen_during_call == [["StepStarted"]]  # committed before the card was charged
    else:
        assert seen_during_call == [[]]  # at-least-once: START rides with the outcome
    events = [e["EventType"] for e in runtime.history("pay") if e.get("Name") == "tool:charge"]
    assert events == ["StepStarted", "StepSucceeded"]


def test_configured_retry_is_durable(runtime: LocalRuntime) -> None:
    attempts: list[int] = []

    @tool(retry=RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(30)))
    def flaky() -> str:
        """Works on the third try."""
        attempts.append(step_context().attempt)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "ok"

    def handler(event: Any, ctx: DurableContext) -> str:
        return flaky.run(ctx, {}, call_id="x").content

    info = runtime.run(handler, {})
    assert info.result == "ok" and attempts == [1, 2, 3]
    assert info.invocations == 3  # each retry was a checkpointed delay, not a sleep
    assert [e["Name"] for e in _steps(runtime, info.id, "StepSucceeded")] == ["tool:flaky"]


def test_timeout_fails_the_call(runtime: LocalRuntime) -> None:
    release = threading.Event()

    @tool(timeout=0.2)
    def hang() -> str:
        """Never answers in time."""
        release.wait(5)
        return "late"

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        return hang.run(ctx, {}, call_id="h").model_dump()

    started = time.monotonic()
    try:
        info = runtime.run(handler, {})
    finally:
        release.set()
    assert time.monotonic() - started < 3
    assert info.result["is_error"] and info.result["content"] == "tool 'hang' did not finish within 0.2 s"


# -- calculator ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("expression", "expected"), [
    ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20), ("7 / 2", 3.5), ("7 // 2", 3), ("7 % 3", 1), ("-2 ** 2", -4),
    ("2 ** -1", 0.5), ("+5 - -5", 10), ("sqrt(16) + abs(-2)", 6.0), ("round(2.567, 2)", 2.57),
    ("max(1, 5, 3) - min(4, 2)", 3), ("log(e)", 1.0), ("log(8, 2)", 3.0), ("cos(pi)", -1.0),
    ("2 ** 100", 2 ** 100), ("1.5e3", 1500.0), ("factorial(10)", 3628800),
])
def test_calculator_computes(expression: str, expected: float) -> None:
    assert evaluate(expression) == pytest.approx(expected)
    assert calculator(expression) == pytest.approx(expected)


@pytest.mark.parametrize(("expression", "message"), [
    ("x + 1", "unknown name 'x'"),
    ("__import__('os').system('true')", "only calls of plain function names"),
    ("__import__('os')", "function '__import__' is not allowed"),
    ("(1).__class__", "attribute access is not allowed"),
    ("open('/etc/passwd')", "function 'open' is not allowed"),
    ("sqrt.__call__(4)", "only calls of plain function names"),
    ("'a' * 3", "only numbers are allowed"),
    ("True + 1", "only numbers are allowed"),
    ("[1, 2]", "List is not allowed"),
    ("lambda: 1", "Lambda is not allowed"),
    ("1 << 64", "operator LShift is not allowed"),
    ("2 ** 10 ** 10", "too large"),
    ("9 ** 9 ** 9", "too large"),
    ("10.0 ** 400", "too large"),
    ("1e308 * 10", "not a finite number"),
    ("1 / 0", "division by zero"),
    ("sqrt(-1)", "math domain error"),
    ("(-8) ** (1 / 3)", "not a real number"),
    ("round(x=1)", "round() takes positional arguments only"),
    ("2 +", "not a valid expression"),
])
def test_calculator_refuses(expression: str, message: str) -> None:
    with pytest.raises(CalculatorError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(expression)


def test_calculator_is_a_checkpointed_plain_tool(runtime: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> list[dict[str, Any]]:
        return [calculator.run(ctx, {"expression": e}, call_id=str(i)).model_dump()
                for i, e in enumerate(["6 * 7", "import os"])]

    info = runtime.run(handler, {})
    ok, refused = info.result
    assert (ok["content"], ok["is_error"]) == ("42", False)
    assert refused["is_error"] and refused["content"].startswith("not a valid expression")
    assert calculator.spec().parameters["required"] == ["expression"]


def test_current_time() -> None:
    text = current_time()
    assert text.endswith(", UTC)") and "T" in text
    assert "+01:00" in current_time("Europe/Paris") or "+02:00" in current_time("Europe/Paris")
    with pytest.raises(ToolError, match="unknown time zone 'Mars/Olympus'"):
        current_time("Mars/Olympus")


# -- http_get against a local server ---------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
              **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/hello":
            self._send(200, "héllo wörld".encode())
        elif self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()  # no length: the client must stop reading by itself
            try:
                for _ in range(1000):
                    self.wfile.write(b"x" * 10_000)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif self.path == "/slow":
            time.sleep(2)
            self._send(200, b"too late")
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                for _ in range(30):
                    self.wfile.write(b"drop ")
                    self.wfile.flush()
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif self.path == "/missing":
            self._send(404, b"no such page")
        elif self.path == "/to-file":
            self._send(302, b"", Location="file:///etc/passwd")
        elif self.path == "/to-hello":
            self._send(301, b"", Location="/hello")
        elif self.path == "/image":
            self._send(200, b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png")
        else:
            self._send(500, b"?")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    os.environ[ALLOW_PRIVATE_ENV] = "1"  # the test server is on 127.0.0.1
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        os.environ.pop(ALLOW_PRIVATE_ENV, None)
    httpd.shutdown()
    httpd.server_close()


def test_http_get_returns_status_type_and_text(server: str) -> None:
    page = http_get(f"{server}/hello")
    assert page == {"url": f"{server}/hello", "status": 200, "content_type": "text/plain; charset=utf-8",
                    "text": "héllo wörld", "truncated": False, "bytes_read": len("héllo wörld".encode())}


def test_http_get_follows_http_redirects_and_reports_error_statuses(server: str) -> None:
    assert http_get(f"{server}/to-hello")["url"] == f"{server}/hello"
    missing = http_get(f"{server}/missing")
    assert (missing["status"], missing["text"]) == (404, "no such page")


def test_http_get_enforces_the_size_limit_while_streaming(server: str) -> None:
    page = http_get(f"{server}/big", max_bytes=25_000)
    assert page["truncated"] is True
    assert page["bytes_read"] == 25_000 and page["text"] == "x" * 25_000
    with pytest.raises(ToolValidationError, match="max_bytes: Input should be less than or equal to 500000"):
        http_get.validate({"url": f"{server}/big", "max_bytes": 10_000_000})


def test_http_get_times_out(server: str) -> None:
    started = time.monotonic()
    with pytest.raises(ToolError, match="timed out after 0.5 s"):
        http_get(f"{server}/slow", timeout_s=0.5)
    with pytest.raises(ToolError, match="timed out after 1 s"):
        http_get(f"{server}/drip", timeout_s=1)  # each read is quick, the whole body is not
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://h/", "/relative",
                                 "javascript:alert(1)"])
def test_http_get_refuses_other_schemes(url: str) -> None:
    with pytest.raises(ToolError, match="only http and https URLs can be fetched"):
        http_get(url)


def test_http_get_refuses_redirects_to_other_schemes(server: str) -> None:
    with pytest.raises(ToolError, match="only http and https URLs can be fetched, not 'file'"):
        http_get(f"{server}/to-file")


def test_http_get_hides_binary_bodies(server: str) -> None:
    page = http_get(f"{server}/image")
    assert page["text"] == "[108 bytes of image/png not shown]" and page["content_type"] == "image/png"


def test_http_get_through_the_runtime_gives_an_error_result(runtime: LocalRuntime, server: str) -> None:
    def handler(event: Any, ctx: DurableContext) -> list[dict[str, Any]]:
        return [http_get.run(ctx, {"url": u}, call_id=u).model_dump()
                for u in (f"{server}/hello", "file:///etc/passwd")]

    info = runtime.run(handler, {})
    ok, refused = info.result
    assert not ok["is_error"] and '"text": "héllo wörld"' in ok["content"]
    assert refused["is_error"] and refused["content"].startswith("only http and https URLs can be fetched")


def test_http_get_refuses_private_addresses_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    for url in ("http://127.0.0.1:9/", "http://localhost/", "http://169.254.169.254/latest/meta-data/",
                "http://10.0.0.1/", "http://[::1]/"):
        with pytest.raises(ToolError, match="non-public address"):
            http_get(url)
