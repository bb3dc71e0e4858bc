"""Message histories in (agents/history.py): ours, Anthropic-style and OpenAI-style messages become
one normalized conversation; what cannot be represented is refused with a message, never dropped."""

from __future__ import annotations

import pytest

from duragent.agents import dump_messages, to_messages
from duragent.agents.messages import Message, TextBlock, ToolCall, ToolResult
from duragent.durable import UsageError


def test_plain_text_messages_of_either_provider() -> None:
    messages = to_messages([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    assert [(m.role, m.content) for m in messages] == [("user", [TextBlock(text="hi")]),
                                                        ("assistant", [TextBlock(text="hello")])]


def test_anthropic_tool_use_and_tool_result_blocks() -> None:
    messages = to_messages([
        {"role": "user", "content": [{"type": "text", "text": "add 1 and 2"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "adding"},
                                          {"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 1, "b": 2}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": [{"type": "text", "text": "3"}]}]},
    ])
    assert messages[1].content[1] == ToolCall(id="t1", name="add", arguments={"a": 1, "b": 2})
    assert messages[2].content == [ToolResult(tool_call_id="t1", content="3")]


def test_openai_tool_calls_and_consecutive_tool_messages_become_one_user_turn() -> None:
    messages = to_messages([
        {"role": "user", "content": "weather in Oslo and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "c2", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "cold"},
        {"role": "tool", "tool_call_id": "c2", "content": "warm"},
        {"role": "user", "content": "thanks; and tomorrow?"},
    ])
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    assert [c.arguments for c in messages[1].content if isinstance(c, ToolCall)] == [{"city": "Oslo"},
                                                                                     {"city": "Rome"}]
    assert messages[2].content == [ToolResult(tool_call_id="c1", content="cold"),
                                   ToolResult(tool_call_id="c2", content="warm"),
                                   TextBlock(text="thanks; and tomorrow?")]


def test_ours_round_trip_through_json() -> None:
    original = [Message.user("q"), Message(role="assistant", content=[ToolCall(id="x", name="t", arguments={"k": 1})]),
                Message(role="user", content=[ToolResult(tool_call_id="x", content="r", is_error=True)])]
    assert to_messages(dump_messages(original)) == original
    assert to_messages(original) == original


def test_a_system_message_is_accepted_only_when_it_is_the_agents_own() -> None:
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert [m.role for m in to_messages(history, system="Be brief.")] == ["user"]
    with pytest.raises(UsageError, match="system= argument"):
        to_messages(history, system="Be verbose.")


@pytest.mark.parametrize(("item", "problem"), [
    ({"role": "user", "content": [{"type": "image", "source": {}}]}, "'image'"),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}, "'image_url'"),
    ({"role": "robot", "content": "beep"}, "role must be"),
    ({"role": "tool", "content": "x"}, "tool_call_id"),
    ({"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "not json"}}]},
     "malformed"),
    ("just text", "expected a Message or a dict"),
])
def test_what_cannot_be_represented_is_refused_naming_the_item(item: object, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        to_messages([{"role": "user", "content": "first"}, item])  # type: ignore[list-item]
