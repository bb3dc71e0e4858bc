"""The normalized, provider-neutral conversation: what every model adapter speaks and what the
journal stores. A model call's checkpoint is one ``ModelResponse`` (content, stop reason, usage),
never the whole conversation: the conversation is rebuilt on replay from these."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class TextBlock(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ToolCall(BaseModel):
    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class SubAgentSpend(BaseModel):
    """What a sub-agent run as a tool spent, carried back to its caller's ledger and budget."""

    calls: list[dict[str, Any]] = Field(default_factory=list)
    """One record per model call (model id and usage, as ``spend_record`` writes them)."""
    budget_checks: list[int] = Field(default_factory=list)
    """For each budget the caller answers to, how many budget reviews were approved by the end of
    the sub-run (its caller continues from there)."""
    invocation: str | None = None
    """Which invocation ran the sub-run: a caller in another one (a replay) books it all as reused."""


class ToolResult(BaseModel):
    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str
    content: str
    is_error: bool = False
    spend: SubAgentSpend | None = None
    """Set by an agent run as a tool (``Agent.as_tool``): its spend, for the caller's ledger. The
    caller takes it off before the result joins the conversation."""

    @model_serializer(mode="wrap")
    def _without_empty_spend(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("spend", 0) is None:
            del data["spend"]  # only sub-agent results carry one: every other result stays as it was
        return data


ContentBlock = Annotated[TextBlock | ToolCall | ToolResult, Field(discriminator="type")]
ResponseBlock = Annotated[TextBlock | ToolCall, Field(discriminator="type")]

StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "other"]


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: list[ContentBlock]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=[TextBlock(text=text)])


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(input_tokens=self.input_tokens + other.input_tokens,
                     output_tokens=self.output_tokens + other.output_tokens,
                     cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
                     cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens


class Opening(BaseModel):
    """What an agent's conversation started from: recorded with its first model call only, so
    the console can show the system prompt and the user's prompt without re-running anything."""

    system: str | None = None
    prompt: str


class ModelResponse(BaseModel):
    """One model call's outcome, normalized. This is what a model-call step checkpoints."""

    model_config = ConfigDict(protected_namespaces=())

    content: list[ResponseBlock]
    stop_reason: StopReason
    usage: Usage = Field(default_factory=Usage)
    model: str
    """The model id that answered (provider:name)."""
    prompt_hash: str | None = None
    """Content hash of the rendered system prompt, recorded so that an edited prompt is noticed."""
    tools_hash: str | None = None
    """Content hash of the tool schemas the model was offered (for upgrade checks: what changed)."""
    request_hash: str | None = None
    """Content hash of the request as sent (model, system, messages, tools, settings): an attempt
    lost in flight and its retry sent the same request."""
    lost_in_flight: int = 0
    """Earlier attempts of this call that were sent (and billed) but whose answer died with a
    crashed worker before it was checkpointed. The ledger counts them, priced like this answer."""
    batch: bool = False
    """Answered through a provider batch: priced at the batch rate."""
    opening: Opening | None = None
    """On an agent's first model call: the system prompt and the user's prompt (None on the others)."""
    toolsets: dict[str, list[ToolSpec]] | None = None
    """Tools a toolset (an MCP server) offered for this call, by toolset name, when they differ from
    what the run recorded before (agents/toolsets.py); absent otherwise (not even written)."""

    @model_serializer(mode="wrap")
    def _without_empty_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Leave out what most calls do not have: every later call would otherwise store
        ``"opening": null``, every call ``"lost_in_flight": 0``, ``"batch": false`` and
        ``"toolsets": null``."""
        data = handler(self)
        if isinstance(data, dict):
            for key, empty in (("opening", None), ("toolsets", None), ("lost_in_flight", 0), ("batch", False)):
                if key in data and data[key] == empty and type(data[key]) is type(empty):
                    del data[key]
        return data

    @property
    def text(self) -> str:
        return "".join(block.text for block in self.content if isinstance(block, TextBlock))

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [block for block in self.content if isinstance(block, ToolCall)]

    def as_message(self) -> Message:
        return Message(role="assistant", content=list(self.content))


class ToolSpec(BaseModel):
    """What a model is told about a tool."""

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON Schema of the arguments object."""


class ModelSettings(BaseModel):
    max_tokens: int = 4096
    temperature: float | None = None
    stop_sequences: list[str] | None = None


class ModelRequest(BaseModel):
    system: str | None = None
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    settings: ModelSettings = Field(default_factory=ModelSettings)


ModelResponse.model_rebuild()  # ToolSpec is defined after it
