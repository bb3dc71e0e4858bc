"""Durable agents: every model call and tool call is a checkpointed step; human reviews suspend
for free; a resumed job never pays twice for finished inference. Conversations are durable
sessions (``conversation``, ``Session``); agents hand over to each other or call each other as
tools; every execution can be followed as it runs (``follow``)."""

from __future__ import annotations

from importlib import import_module as _import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agent import (
        Agent,
        AgentError,
        AgentResult,
        Budget,
        BudgetExceededError,
        MaxTurnsExceededError,
        OutputValidationError,
        PromptChangedError,
        ToolsChangedError,
        model_retry_policy,
    )
    from .compaction import Compaction, CompactionPolicy
    from .events import EventReader, Progress, follow
    from .history import dump_messages, to_messages
    from .human import ApprovalDecision, ask_human, pending_reviews, request_approval
    from .messages import (
        Message,
        ModelRequest,
        ModelResponse,
        ModelSettings,
        TextBlock,
        ToolCall,
        ToolResult,
        Usage,
    )
    from .review import ReviewError, ReviewRequest
    from .session import Session, SessionError, Turn, conversation
    from .subagents import AgentTool
    from .toolsets import Toolset
    from .usage import Ledger, Price, ledger_from_history

# Each name is imported from its module on first use: the operator API and the CLI read reviews and
# ledgers (review.py, usage.py) without loading the agent loop, its tools and its model adapters.
_WHERE = {
    **dict.fromkeys(('Agent', 'AgentError', 'AgentResult', 'Budget', 'BudgetExceededError', 'MaxTurnsExceededError', 'OutputValidationError', 'PromptChangedError', 'ToolsChangedError', 'model_retry_policy'), ".agent"),
    **dict.fromkeys(('Compaction', 'CompactionPolicy'), ".compaction"),
    **dict.fromkeys(('EventReader', 'Progress', 'follow'), ".events"),
    **dict.fromkeys(('dump_messages', 'to_messages'), ".history"),
    **dict.fromkeys(('ApprovalDecision', 'ask_human', 'pending_reviews', 'request_approval'), ".human"),
    **dict.fromkeys(('Message', 'ModelRequest', 'ModelResponse', 'ModelSettings', 'TextBlock', 'ToolCall', 'ToolResult', 'Usage'), ".messages"),
    **dict.fromkeys(('ReviewError', 'ReviewRequest'), ".review"),
    **dict.fromkeys(('Session', 'SessionError', 'Turn', 'conversation'), ".session"),
    **dict.fromkeys(('AgentTool',), ".subagents"),
    **dict.fromkeys(('Toolset',), ".toolsets"),
    **dict.fromkeys(('Ledger', 'Price', 'ledger_from_history'), ".usage"),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'duragent.agents' has no attribute {name!r}")
    value = getattr(_import_module(module, __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

__all__ = [
    "Agent", "AgentError", "AgentResult", "AgentTool", "ApprovalDecision", "Budget", "BudgetExceededError",
    "Compaction", "CompactionPolicy", "EventReader", "Ledger", "MaxTurnsExceededError", "Message", "ModelRequest",
    "ModelResponse", "ModelSettings", "OutputValidationError", "Price", "Progress", "PromptChangedError",
    "ReviewError", "ReviewRequest", "Session", "SessionError", "TextBlock", "ToolCall", "ToolResult", "Toolset",
    "ToolsChangedError", "Turn", "Usage", "ask_human", "conversation", "dump_messages", "follow",
    "ledger_from_history", "model_retry_policy", "pending_reviews", "request_approval", "to_messages",
]
