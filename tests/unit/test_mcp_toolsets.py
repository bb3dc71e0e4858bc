"""MCP toolsets without processes: names, filters and flags, results as text, argument checks,
and the run's record of what each server offered, against real ``MCPServer`` instances of the SDK
connected in-process (the SDK's own in-memory client path). Servers over stdio and HTTP, crashes
and reviews are in tests/integration/test_mcp_tools.py."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer
from mcp_types import EmbeddedResource, ImageContent, ResourceLink, TextContent, TextResourceContents

from duragent.agents import Agent
from duragent.agents.messages import ModelResponse, ToolCall, ToolResult, ToolSpec
from duragent.agents.models import ScriptedModel
from duragent.agents.toolsets import describe_change
from duragent.durable import LocalRuntime, UsageError
from duragent.durable.local.service import local_arn
from duragent.durable.replay_check import check_execution
from duragent.tools import ToolValidationError, tool
from duragent.tools.mcp import MCPServerHTTP, MCPServerStdio, MCPToolset
from duragent.tools.mcp.results import result_text
from duragent.tools.mcp.servers import _command_name
from duragent.tools.mcp.session import MCPSession
from duragent.tools.mcp.tool import MCPTool


class InProcess(MCPToolset):
    """A toolset over an ``MCPServer`` in this process (the SDK connects to it without a transport)."""

    def __init__(self, server: MCPServer, **options: Any) -> None:
        options.setdefault("name", server.name)
        super().__init__(**options)
        self.server = server

    def transport(self) -> tuple[Any, list[str]]:
        return self.server, []


def counter_server(log: list[str], *, extra: bool = False) -> MCPServer:
    server: MCPServer = MCPServer("counter")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        log.append(f"add {a} {b}")
        return a + b

    @server.tool(name="dotted.name")
    def dotted() -> str:
        """A name no model provider accepts as it is."""
        log.append("dotted")
        return "dotted ran"

    if extra:
        @server.tool()
        def extra_tool() -> str:
            """Added later."""
            return "x"

    return server


def call(name: str, arguments: dict[str, Any], call_id: str = "c1") -> ModelResponse:
    return ModelResponse(content=[ToolCall(id=call_id, name=name, arguments=arguments)], stop_reason="tool_use",
                         model="scripted:unit")


# -- configuration ---------------------------------------------------------------------------------
def test_default_names_come_from_the_command_or_the_url() -> None:
    assert _command_name("python", ["-m", "pkg.files_server", "--root", "/x"]) == "files_server"
    assert _command_name("python", ["servers/files_server.py"]) == "files_server"
    assert _command_name("npx", ["-y", "@modelcontextprotocol/server-filesystem", "/data"]) == "server-filesystem"
    assert _command_name("/usr/local/bin/my-server", []) == "my-server"
    assert MCPServerStdio("uvx", ["mcp-server-fetch"]).name == "mcp-server-fetch"
    assert MCPServerHTTP("https://tools.example.com/mcp").name == "tools.example.com"


def test_offered_names_are_prefixed_and_fit_every_provider_and_flags_follow_them() -> None:
    toolset = MCPServerStdio("srv", prefix="fs_", allow=["read", "dotted.name", "write"], deny=["write"],
                             requires_approval=["dotted.name"], at_most_once=True)
    assert toolset.offered_name("read") == "fs_read"
    assert toolset.offered_name("dotted.name") == "fs_dotted_name"
    assert toolset.offered_name("x" * 80) == ("fs_" + "x" * 80)[:64]
    assert [n for n in ("read", "write", "dotted.name", "other") if toolset.offers(n)] == ["read", "dotted.name"]
    assert toolset.approval_required("fs_dotted_name") and not toolset.approval_required("fs_read")
    assert toolset.call_at_most_once("fs_read")


@pytest.mark.parametrize("make, message", [
    (lambda: MCPServerStdio("srv", allow="read"), "allow= takes a collection"),
    (lambda: MCPServerStdio("srv", requires_approval="send"), "requires_approval= takes a collection"),
    (lambda: MCPServerStdio("srv", "--flag"), "args= takes a list"),
    (lambda: MCPServerStdio("srv", prefix="fs."), "prefix 'fs.' is invalid"),
    (lambda: MCPServerStdio("srv", timeout=0), "timeout must be positive"),
    (lambda: MCPServerStdio(""), "needs the command"),
    (lambda: MCPServerHTTP("ftp://host/mcp"), "needs an http"),
    (lambda: MCPServerHTTP("localhost:8000/mcp?token=SECRET"), "needs an http"),
])
def test_bad_configuration_is_refused_with_what_would_be_right(make: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        make()
    assert "SECRET" not in str(caught.value)


def test_two_toolsets_of_one_name_are_refused() -> None:
    with pytest.raises(UsageError, match="two toolsets are named 'srv'"):
        Agent(ScriptedModel([]), tools=[MCPServerStdio("srv"), MCPServerStdio("other", name="srv")])


def test_secrets_stay_out_of_reprs_and_messages() -> None:
    server = MCPServerHTTP("https://user:pa55word@host.example/mcp?key=QUERYSECRET",
                           headers={"Authorization": "Bearer HEADERSECRET"}, name="remote")
    assert "SECRET" not in repr(server) and "pa55word" not in repr(server)
    assert server.describe() == "MCP server 'remote' (https://host.example/mcp)"
    _, secrets = server.transport()
    assert {"Bearer HEADERSECRET", "QUERYSECRET", "pa55word"} <= set(secrets)


def test_headers_from_a_function_are_read_at_each_connection_and_scrubbed_from_messages() -> None:
    tokens = iter(["first-ROTATING-token", "second-ROTATING-token"])
    server = MCPServerHTTP("http://127.0.0.1:9/mcp", headers=lambda: {"Authorization": f"Bearer {next(tokens)}"})
    _, first = server.transport()
    _, second = server.transport()
    assert "Bearer first-ROTATING-token" in first and "Bearer second-ROTATING-token" in second
    session = MCPSession(server)
    session._secrets = second
    error = ExceptionGroup("task group", [ConnectionError("refused with second-ROTATING-token in the text")])
    assert session._explain(error) == "ConnectionError: refused with *** in the text"


# -- results ---------------------------------------------------------------------------------------
def test_text_and_structured_content_both_come_through() -> None:
    assert result_text([TextContent(text="plain")], None, False) == "plain"
    assert result_text([TextContent(text='{"a": 1}')], {"a": 1}, False) == '{"a": 1}'  # not said twice
    assert result_text([TextContent(text="7")], {"result": 7}, False) == "7"  # the SDK's wrapped return value
    assert result_text([TextContent(text="summary")], {"rows": [1, 2]}, False) == 'summary\n{"rows":[1,2]}'
    assert result_text([], {"rows": []}, False) == '{"rows":[]}'
    assert result_text([], None, True) == "the tool reported an error and said nothing more"


def test_other_content_is_named_for_the_model() -> None:
    image = ImageContent(data="aGVsbG8=", mime_type="image/png")
    embedded = EmbeddedResource(resource=TextResourceContents(uri="file:///a.txt", text="inside"))
    link = ResourceLink(uri="file:///b.csv", name="b.csv")
    text = result_text([image, embedded, link], None, False)
    assert text == "[image image/png, 5 bytes]\n[resource file:///a.txt]\ninside\n[resource link file:///b.csv: b.csv]"


def test_arguments_are_checked_against_the_servers_schema() -> None:
    toolset = MCPServerStdio("srv")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
              "required": ["a", "b"]}
    checker = MCPTool(toolset, ToolSpec(name="add", description="", parameters=schema), lambda: None)
    assert checker.validate({"a": 1, "b": 2}) == {"a": 1, "b": 2}
    with pytest.raises(ToolValidationError, match="b: 'x' is not of type 'integer'") as caught:
        checker.validate({"a": 1, "b": "x"})
    assert caught.value.errors == [{"field": "b", "message": "'x' is not of type 'integer'"}]
    with pytest.raises(ToolValidationError, match="'b' is a required property"):
        checker.validate({"a": 1})
    broken = MCPTool(toolset, ToolSpec(name="odd", description="", parameters={"type": 12}), lambda: None)
    assert broken.validate({"anything": 1}) == {"anything": 1}  # a broken schema: the server judges


def test_describe_change_names_what_was_added_removed_and_changed() -> None:
    a, b, c = (ToolSpec(name=n, description="", parameters={}) for n in "abc")
    b2 = ToolSpec(name="b", description="new", parameters={})
    assert describe_change([a, b], [b2, c]) == "added: c; removed: a; changed: b"


# -- the run's record, against in-process servers ----------------------------------------------------
def test_an_agent_runs_an_in_process_servers_tools_and_replays_them_without_the_server(tmp_path: Any) -> None:
    log: list[str] = []
    connections: list[int] = []

    class Counted(InProcess):
        def transport(self) -> tuple[Any, list[str]]:
            connections.append(1)
            return super().transport()

    script = ScriptedModel([call("c_add", {"a": 2, "b": 3}), call("c_dotted_name", {}, "c2"), "five"], by_turn=True)
    agent = Agent(script, tools=[Counted(counter_server(log), prefix="c_")], name="calc")

    def handler(event: Any, ctx: Any) -> Any:
        return [m.model_dump() for m in agent.run(ctx, "add").messages]

    with LocalRuntime(tmp_path / "u.db") as rt:
        info = rt.run(handler, {})
        operations = rt.operations(info.id)
    assert info.status == "SUCCEEDED", info.error
    assert log == ["add 2 3", "dotted"]  # the sanitized name reached the server's own tool
    results = [b["content"] for m in info.result for b in m["content"] if b["type"] == "tool_result"]
    assert results == ["5", "dotted ran"]
    assert connections == [1]

    # a replay of the whole run reads the listing and both calls from the journal: no connection
    check = check_execution(handler, info.id, "handler", local_arn("handler", info.id), operations)
    assert (check.ok, check.outcome) == (True, "completes"), check.detail
    assert connections == [1] and log == ["add 2 3", "dotted"]


def test_a_toolset_name_that_clashes_with_a_local_tool_is_refused(tmp_path: Any) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Local add."""
        return a + b

    agent = Agent(ScriptedModel(["x"]), tools=[add, InProcess(counter_server([]))], name="clash")
    with LocalRuntime(tmp_path / "c.db") as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "go").output, {})
    assert info.status == "FAILED"
    assert "counter offers a tool named 'add', like one of the agent's own tools; give the toolset a prefix=" \
        in info.error["ErrorMessage"]


def test_tool_results_of_mcp_calls_are_checkpointed_as_results(tmp_path: Any) -> None:
    log: list[str] = []
    agent = Agent(ScriptedModel([call("add", {"a": 1, "b": "x"}), "no"], by_turn=True),
                  tools=[InProcess(counter_server(log))], name="bad")
    with LocalRuntime(tmp_path / "b.db") as rt:
        info = rt.run(lambda event, ctx: [m.model_dump() for m in agent.run(ctx, "go").messages], {})
    assert info.status == "SUCCEEDED", info.error
    [result] = [ToolResult.model_validate(b) for m in info.result for b in m["content"] if b["type"] == "tool_result"]
    assert result.is_error and "b: 'x' is not of type 'integer'" in result.content
    assert log == []  # refused before the server was asked
