"""Durable agents: every model call and tool call is a checkpointed step; human reviews suspend
for free; a resumed job never pays twice for finished inference. Conversations are durable
sessions (``conversation``, ``Session``); agents hand over to each other or call each other as
tools; every execution can be followed as it runs (``follow``)."""

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

__all__ = [
    "Agent", "AgentError", "AgentResult", "AgentTool", "ApprovalDecision", "Budget", "BudgetExceededError",
    "Compaction", "CompactionPolicy", "EventReader", "Ledger", "MaxTurnsExceededError", "Message", "ModelRequest",
    "ModelResponse", "ModelSettings", "OutputValidationError", "Price", "Progress", "PromptChangedError",
    "ReviewError", "ReviewRequest", "Session", "SessionError", "TextBlock", "ToolCall", "ToolResult", "Toolset",
    "ToolsChangedError", "Turn", "Usage", "ask_human", "conversation", "dump_messages", "follow",
    "ledger_from_history", "model_retry_policy", "pending_reviews", "request_approval", "to_messages",
]
