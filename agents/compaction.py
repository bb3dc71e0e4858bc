"""Compaction: when a conversation nears its model's context window, its older turns are replaced
by a summary, written by a model in a durable step.

The decision is made from checkpointed numbers (the size the model reported for the last turn's
request and answer, plus the new message), so a replay decides the same way. The summary is a
model call like any other (in the ledger, never paid twice) inside a child context named
``compaction before turn N`` whose result, a ``Compaction`` record, says what was replaced: the
console shows it in the conversation, and a replay applies it again without asking the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from duragent.durable import JsonSerdes, StepConfig, UsageError
from duragent.durable.flow import Flow

from .messages import Message, ModelRequest, ModelResponse, ModelSettings, TextBlock, ToolCall, ToolResult
from .models import infer_model
from .models.base import Model, request_async
from .usage import MODEL_CALL_SUBTYPE

if TYPE_CHECKING:
    from .agent import Agent, Context

CONTEXT_WINDOWS: dict[str, int] = {
    # Input tokens a model accepts, by model-id prefix (the longest match wins); override per session
    # with CompactionPolicy(context_window=...).
    "anthropic:claude": 200_000,
    "bedrock:anthropic.claude": 200_000,
    "openai:gpt-4.1": 1_047_576,
    "openai:gpt-4o": 128_000,
    "openai:gpt-5": 400_000,
    "openai:o": 200_000,
    "scripted": 200_000,
}
DEFAULT_CONTEXT_WINDOW = 128_000
CHARS_PER_TOKEN = 4
SUMMARY_PREFIX = "[Summary of the earlier conversation]"

DEFAULT_INSTRUCTIONS = (
    "You compress conversations. Summarize the conversation you are given so that an assistant can "
    "continue it without the original: keep the user's goals, facts and numbers they gave, decisions "
    "made, open questions, and what tools returned that still matters. Be concise; write plain prose.")


@dataclass(frozen=True)
class CompactionPolicy:
    """When and how a session compacts its conversation.

    Args:
        context_window: tokens the model accepts (default: by model id, see ``CONTEXT_WINDOWS``).
        threshold: compact once a turn would start above this fraction of the window.
        keep_turns: the most recent turns kept word for word (the rest is summarized).
        model: the model that writes summaries (default: the agent's).
        instructions: the summarizer's system prompt.
        summary_tokens: the longest summary asked for.
    """

    context_window: int | None = None
    threshold: float = 0.8
    keep_turns: int = 2
    model: str | Model | None = None
    instructions: str = DEFAULT_INSTRUCTIONS
    summary_tokens: int = 1024

    def __post_init__(self) -> None:
        if self.context_window is not None and self.context_window < 1:
            raise UsageError(f"CompactionPolicy(context_window=...) must be a positive number of tokens, got "
                             f"{self.context_window}")
        if not 0 < self.threshold <= 1:
            raise UsageError(f"CompactionPolicy(threshold=...) is a fraction of the window in (0, 1], got "
                             f"{self.threshold}")
        if self.keep_turns < 0:
            raise UsageError(f"CompactionPolicy(keep_turns=...) cannot be negative, got {self.keep_turns}")

    def window(self, model_id: str) -> int:
        if self.context_window is not None:
            return self.context_window
        best = max((p for p in CONTEXT_WINDOWS if model_id.startswith(p)), key=len, default=None)
        return CONTEXT_WINDOWS[best] if best is not None else DEFAULT_CONTEXT_WINDOW


class Compaction(BaseModel):
    """What one compaction did (the checkpointed result of its child context)."""

    before_turn: int
    summarized_messages: int
    """How many of the oldest messages the summary replaced."""
    kept_messages: int
    tokens_before: int
    """The estimated size of the conversation that triggered it."""
    window: int
    summary: str
    model: str


def estimate_tokens(messages: Sequence[Message]) -> int:
    """A rough size (four characters a token) for when no model has reported one yet."""
    return sum(len(_block_text(block)) for m in messages for block in m.content) // CHARS_PER_TOKEN


def needs_compaction(policy: CompactionPolicy, model_id: str, context_tokens: int, prompt: str) -> bool:
    return context_tokens + len(prompt) // CHARS_PER_TOKEN >= policy.threshold * policy.window(model_id)


def cut_point(messages: Sequence[Message], keep_turns: int) -> int:
    """Where the kept part starts: at the ``keep_turns``-th last turn (a user message with text),
    or the last turn when there are no more; 0 when there is nothing older to summarize."""
    starts = [i for i, m in enumerate(messages)
              if m.role == "user" and any(isinstance(b, TextBlock) for b in m.content)]
    if keep_turns == 0:
        return len(messages)
    if not starts:
        return 0
    cut = starts[-keep_turns] if keep_turns <= len(starts) else starts[0]
    if cut == 0 and len(starts) > 1:  # over the window with fewer turns than asked: keep the last one
        cut = starts[-1]
    return cut


def apply(messages: list[Message], record: Compaction) -> list[Message]:
    """The conversation after ``record``: the summary opens the first kept message."""
    kept = messages[record.summarized_messages:]
    note = TextBlock(text=f"{SUMMARY_PREFIX}\n{record.summary}")
    if kept and kept[0].role == "user":
        return [Message(role="user", content=[note, *kept[0].content]), *kept[1:]]
    return [Message(role="user", content=[note]), *kept]


def compact(ctx: Context, agent: Agent, policy: CompactionPolicy, messages: list[Message], *, before_turn: int,
            context_tokens: int) -> Flow[dict[str, Any] | None]:
    """The body of a compaction's child context: summarize the older messages in a model-call step
    and return the record (None when nothing is old enough to summarize)."""
    cut = cut_point(messages, policy.keep_turns)
    if cut == 0:
        return None
    model = infer_model(policy.model) if policy.model is not None else agent.model
    transcript = render_transcript(messages[:cut])
    request = ModelRequest(system=policy.instructions, settings=ModelSettings(max_tokens=policy.summary_tokens),
                           messages=[Message.user(f"Summarize this conversation:\n\n{transcript}")])

    def summarize() -> ModelResponse:
        return model.request(request)

    async def asummarize() -> ModelResponse:
        return await request_async(model, request)

    response: ModelResponse = yield ctx.step(asummarize if ctx.is_async else summarize, name="summarize",
                                             config=StepConfig(retry=agent.model_retry, sub_type=MODEL_CALL_SUBTYPE,
                                                               serdes=JsonSerdes(ModelResponse)))
    return Compaction(before_turn=before_turn, summarized_messages=cut, kept_messages=len(messages) - cut,
                      tokens_before=context_tokens, window=policy.window(model.model_id), summary=response.text,
                      model=response.model).model_dump(mode="json")


def render_transcript(messages: Sequence[Message]) -> str:
    """Messages as plain text for a summarizer (tool calls and results included, briefly)."""
    lines = []
    for message in messages:
        who = "User" if message.role == "user" else "Assistant"
        for block in message.content:
            if isinstance(block, ToolResult):
                lines.append(f"Tool result: {block.content[:2000]}")
            elif isinstance(block, ToolCall):
                lines.append(f"Assistant called {block.name}({block.arguments})")
            elif block.text:
                lines.append(f"{who}: {block.text}")
    return "\n".join(lines)


def _block_text(block: Any) -> str:
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, ToolResult):
        return block.content
    if isinstance(block, ToolCall):
        return f"{block.name}{block.arguments}"
    return ""


__all__ = ["CONTEXT_WINDOWS", "Compaction", "CompactionPolicy", "apply", "compact", "cut_point",
           "estimate_tokens", "needs_compaction", "render_transcript"]
