"""Anthropic Message Batches for ``agents.batch.run_batch``: the same request parameters as the
Messages adapter (prompt-cache breakpoints included), answered within 24 hours at half price.

Anthropic batches carry no metadata of ours, so ``find`` (after a submit that may have created a
batch before its id was checkpointed) takes the newest batch with the same number of requests;
``run_batch`` checks the custom ids of its results before trusting it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..batch import BatchItemOutcome, BatchProgress
from ..messages import ModelRequest
from ._errors import translated_sdk_errors
from .anthropic import PROVIDER, AnthropicModel, build_params, normalize_response
from .anthropic_cache import PromptCaching, place_cache_breakpoints

T = TypeVar("T")

RETRYABLE_ERRORS = frozenset({"api_error", "overloaded_error", "rate_limit_error", "timeout_error"})
FIND_LOOKBACK = 100
"""How many of the newest batches ``find`` looks through."""


class AnthropicBatches:
    """Message Batches for one Claude model (client, key and endpoint as ``AnthropicModel``)."""

    def __init__(self, name: str, *, client: Any = None, api_key: str | None = None, base_url: str | None = None,
                 prompt_cache: PromptCaching | bool | None = True) -> None:
        self._model = AnthropicModel(name, client=client, api_key=api_key, base_url=base_url,
                                     prompt_cache=prompt_cache)
        self.name = name

    @property
    def model_id(self) -> str:
        return self._model.model_id

    def __repr__(self) -> str:
        return f"AnthropicBatches({self.name!r})"

    def _call(self, fn: Callable[[], T]) -> T:
        with translated_sdk_errors(self._model._sdk, provider=PROVIDER):
            return fn()

    @property
    def _batches(self) -> Any:
        return self._model._client.messages.batches

    def submit(self, requests: Sequence[tuple[str, ModelRequest]], *, key: str) -> str:
        wire = [{"custom_id": custom_id,
                 "params": place_cache_breakpoints(build_params(self.name, request), self._model.prompt_cache)}
                for custom_id, request in requests]
        batch = self._call(lambda: self._batches.create(requests=wire))
        return str(batch.id)

    def find(self, *, key: str, count: int) -> str | None:
        def newest() -> str | None:
            for seen, batch in enumerate(self._batches.list(limit=20)):
                if seen >= FIND_LOOKBACK:
                    break
                counts = batch.request_counts
                total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
                if total == count and batch.cancel_initiated_at is None:
                    return str(batch.id)
            return None

        return self._call(newest)

    def poll(self, batch_id: str) -> BatchProgress:
        batch = self._call(lambda: self._batches.retrieve(batch_id))
        counts = batch.request_counts
        return BatchProgress(ended=batch.processing_status == "ended", status=str(batch.processing_status),
                             counts={"processing": counts.processing, "succeeded": counts.succeeded,
                                     "errored": counts.errored, "canceled": counts.canceled,
                                     "expired": counts.expired})

    def results(self, batch_id: str) -> list[BatchItemOutcome]:
        return self._call(lambda: [self._outcome(entry) for entry in self._batches.results(batch_id)])

    def _outcome(self, entry: Any) -> BatchItemOutcome:
        result = entry.result
        custom_id = str(entry.custom_id)
        if result.type == "succeeded":
            response = normalize_response(result.message, self.model_id).model_copy(update={"batch": True})
            return BatchItemOutcome(custom_id=custom_id, status="succeeded", response=response)
        if result.type == "errored":
            error = getattr(getattr(result, "error", None), "error", None)
            kind = str(getattr(error, "type", "api_error"))
            return BatchItemOutcome(custom_id=custom_id, status="errored", error_type=kind,
                                    error=str(getattr(error, "message", kind)), retryable=kind in RETRYABLE_ERRORS)
        return BatchItemOutcome(custom_id=custom_id, status=result.type, error_type=result.type,
                                error=f"the request was {result.type} before it was processed", retryable=True)

    def cancel(self, batch_id: str) -> None:
        self._call(lambda: self._batches.cancel(batch_id))
