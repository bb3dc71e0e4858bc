"""Durable agents: every model call and tool call is a checkpointed step; human reviews suspend
for free; a resumed job never pays twice for finished inference."""

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
from .toolsets import Toolset
from .usage import Ledger, Price, ledger_from_history

__all__ = [
    "Agent", "AgentError", "AgentResult", "ApprovalDecision", "Budget", "BudgetExceededError", "Ledger",
    "MaxTurnsExceededError", "Message", "ModelRequest", "ModelResponse", "ModelSettings", "OutputValidationError",
    "Price", "PromptChangedError", "ReviewError", "ReviewRequest", "TextBlock", "ToolCall", "ToolResult",
    "Toolset", "ToolsChangedError", "Usage",
    "ask_human", "ledger_from_history", "model_retry_policy", "pending_reviews", "request_approval",
]
