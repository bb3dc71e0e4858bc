"""ScriptedModel and FunctionModel: the offline, deterministic models tests and demos run on."""

from __future__ import annotations

import threading

import pytest

from duragent.agents.errors import ModelConfigurationError
from duragent.agents.messages import (
    Message,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from duragent.agents.models import FunctionModel, Model, ScriptedModel, infer_model
from duragent.agents.models.scripted import text_chunks


def ask(text: str = "hello there", history: list[Message] | None = None) -> ModelRequest:
    return ModelRequest(system="Be brief.", messages=[*(history or []), Message.user(text)])


def test_replies_in_order_with_text_shorthand() -> None:
    model = ScriptedModel(["first", ScriptedModel.reply("second", stop_reason="max_tokens")], name="demo")
    one, two = model.request(ask()), model.request(ask())
    assert (one.text, one.stop_reason) == ("first", "end_turn")
    assert (two.text, two.stop_reason) == ("second", "max_tokens")
    assert one.model == two.model == model.model_id == "scripted:demo"
    assert model.calls == 2 and model.requests[0] == ask()
    assert isinstance(model, Model)


def test_usage_is_estimated_unless_given() -> None:
    given = Usage(input_tokens=7, output_tokens=3, cache_read_tokens=1)
    model = ScriptedModel(["x" * 400, ScriptedModel.reply("y", usage=given)])
    estimated = model.request(ask("z" * 800)).usage
    assert estimated.output_tokens == 100
    assert estimated.input_tokens == (len("Be brief.") + 800) // 4
    assert model.request(ask()).usage == given
    assert ScriptedModel([""]).request(ask()).usage.output_tokens == 1  # never zero: ledgers show a call


def test_exhausted_script_raises_or_uses_default() -> None:
    model = ScriptedModel(["only"], name="short")
    model.request(ask())
    with pytest.raises(ModelConfigurationError, match=r"scripted:short has no reply for call #2"):
        model.request(ask())
    fallback = ScriptedModel([], default="again")
    assert [fallback.request(ask()).text for _ in range(3)] == ["again"] * 3


def test_callable_items_and_function_scripts_see_the_request() -> None:
    model = ScriptedModel([lambda request: f"you said {request.messages[-1].content[0].text}", "then this"])
    assert model.request(ask("hi")).text == "you said hi"
    assert model.request(ask()).text == "then this"

    def shout(request: ModelRequest) -> str:
        return request.messages[-1].content[0].text.upper()

    function = FunctionModel(shout)
    assert function.model_id == "scripted:shout"
    assert [function.request(ask(w)).text for w in ("a", "b")] == ["A", "B"]
    assert ScriptedModel(shout, name="s").request(ask("c")).text == "C"


def test_tool_call_helpers_make_deterministic_ids() -> None:
    model = ScriptedModel([
        ScriptedModel.tool_call("add", {"a": 1}),
        ScriptedModel.tool_call("add", {"a": 2}, id="mine", text="Adding."),
        ScriptedModel.tool_calls(("add", {"a": 3}), ("mul", {"b": 4}), ToolCall(id="t", name="neg", arguments={})),
    ])
    first, second, third = (model.request(ask()) for _ in range(3))
    assert first.stop_reason == "tool_use"
    assert first.tool_calls == [ToolCall(id="call_1_0", name="add", arguments={"a": 1})]
    assert second.text == "Adding." and second.tool_calls[0].id == "mine"
    assert [(c.id, c.name) for c in third.tool_calls] == [("call_3_0", "add"), ("call_3_1", "mul"), ("t", "neg")]
    again = ScriptedModel([ScriptedModel.tool_call("add", {"a": 1})]).request(ask())
    assert again.tool_calls == first.tool_calls  # same script, same ids: replay-friendly


def test_on_text_streams_a_few_chunks() -> None:
    deltas: list[str] = []
    response = ScriptedModel(["The quick brown fox jumps over the lazy dog"]).request(ask(), on_text=deltas.append)
    assert "".join(deltas) == response.text
    assert 1 < len(deltas) <= 3
    silent: list[str] = []
    ScriptedModel([ScriptedModel.tool_call("add", {})]).request(ask(), on_text=silent.append)
    assert silent == []
    assert text_chunks("one") == ["one"] and text_chunks("") == []


def test_by_turn_survives_a_restart_mid_conversation() -> None:
    script = [ScriptedModel.tool_call("lookup", {"q": "x"}, id="c1"), "done"]
    history = [Message.user("find x"), Message(role="assistant", content=[ToolCall(id="c1", name="lookup")]),
               Message(role="user", content=[ToolResult(tool_call_id="c1", content="found")])]
    fresh = ScriptedModel(script, by_turn=True)  # a new process: no calls made yet
    request = ModelRequest(messages=history)
    assert fresh.request(request).text == "done"


def test_explicit_model_is_kept_and_bad_replies_are_refused() -> None:
    reply = ModelResponse(content=[TextBlock(text="x")], stop_reason="end_turn", model="anthropic:claude-test")
    assert ScriptedModel([reply]).request(ask()).model == "anthropic:claude-test"
    with pytest.raises(TypeError, match="ModelResponse or str"):
        ScriptedModel([42]).request(ask())  # type: ignore[list-item]


def test_thread_safe_call_order() -> None:
    model = ScriptedModel([str(i) for i in range(50)])
    seen: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        text = model.request(ask()).text
        with lock:
            seen.append(text)

    threads = [threading.Thread(target=call) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen, key=int) == [str(i) for i in range(50)]


def test_scripted_model_string_echoes() -> None:
    model = infer_model("scripted:echo")
    assert model.request(ask("ping")).text == "ping"
    tools = ModelRequest(messages=[Message(role="user", content=[ToolResult(tool_call_id="a", content="42")])],
                         tools=[ToolSpec(name="t", description="d", parameters={})])
    assert model.request(tools).text == "42"
