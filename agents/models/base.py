"""The Model protocol every provider adapter implements, and ``infer_model`` for model strings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..messages import ModelRequest, ModelResponse

TextCallback = Callable[[str], None]


@runtime_checkable
class Model(Protocol):
    """A model that answers one normalized request. Adapters hold their client; the client and its
    key never leave the adapter (nothing of it is checkpointed)."""

    @property
    def model_id(self) -> str:
        """``provider:name``: what the journal and the ledger record."""
        ...

    def request(self, request: ModelRequest, *, on_text: TextCallback | None = None) -> ModelResponse:
        """One call, no hidden retries. ``on_text`` receives text deltas as they stream in."""
        ...
