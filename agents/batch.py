"""Batch inference as a durable operation: many model requests sent as one provider batch
(Anthropic Message Batches; OpenAI Batch over an uploaded JSONL file), at the providers' batch
price (half the list price), with every request billed exactly once however often the worker dies.

    results = run_batch(ctx, [f"Summarize:\\n{doc}" for doc in documents],
                        model="anthropic:claude-sonnet-4-6", system="You summarize documents.",
                        name="summaries", poll_every=Duration.from_minutes(1))
    summaries = [item.response.text for item in results.items if item.ok]

How it is durable:

1. **Submit** is a step whose result is the batch id. It is sent-marked (at-most-once START): if
   the worker dies between the provider creating the batch and the id being checkpointed, the
   next attempt knows a batch may exist and looks for it before creating another (OpenAI: by a
   metadata key; Anthropic: the newest batch of the same size, checked against the custom ids of
   its results), so the provider sees one batch creation.
2. **Wait** is ``ctx.wait_for_condition``: one status read per poll, the execution suspended in
   between (no process held while the provider works, up to its 24-hour window).
3. **Collect**: one step records each item's outcome (small: status and error), then one
   model-call step per answered item checkpoints its response, mapped back to its item by the
   custom id; a crash mid-collection downloads the results again (free) and carries on.
4. **Retry**: errored (transient), expired and canceled items go to a new batch of only those
   (``retry_batches`` times); the rest reach the caller as errors.

The ledger books each answered item once, at the batch rate (``ModelResponse.batch``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from duragent.durable import (
    DurableContext,
    Duration,
    JsonSerdes,
    RetryPolicy,
    StepConfig,
    WaitForConditionConfig,
    poll_until,
)

from .agent import model_retry_policy
from .errors import ModelConfigurationError, ModelError
from .inflight import lost_so_far, request_hash, sent_call_config
from .messages import Message, ModelRequest, ModelResponse, ModelSettings
from .usage import MODEL_CALL_SUBTYPE, Ledger, Price

BATCH_ITEM_OUTCOMES_SUBTYPE = "BatchResults"

OutcomeStatus = Literal["succeeded", "errored", "expired", "canceled"]


class BatchItemOutcome(BaseModel):
    """One request's outcome in a provider batch."""

    custom_id: str
    status: OutcomeStatus
    response: ModelResponse | None = None
    error: str | None = None
    error_type: str | None = None
    retryable: bool = False
    """Worth sending again in a retry batch (expired, canceled, overloaded, rate limited)."""


@dataclass(frozen=True)
class BatchProgress:
    ended: bool
    status: str
    counts: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class BatchProvider(Protocol):
    """A provider's batch API for one model (see ``agents.models.anthropic_batch``/``openai_batch``)."""

    @property
    def model_id(self) -> str: ...

    def submit(self, requests: Sequence[tuple[str, ModelRequest]], *, key: str) -> str:
        """Create one batch of ``(custom_id, request)``; return its id. ``key`` names this submission."""
        ...

    def find(self, *, key: str, count: int) -> str | None:
        """The id of a batch an interrupted ``submit`` with this key (and ``count`` requests) may
        have created, or None."""
        ...

    def poll(self, batch_id: str) -> BatchProgress: ...

    def results(self, batch_id: str) -> list[BatchItemOutcome]:
        """Every request's outcome, once the batch has ended (responses priced at the batch rate)."""
        ...

    def cancel(self, batch_id: str) -> None: ...


def batch_provider(model: str | BatchProvider) -> BatchProvider:
    """``anthropic:NAME`` or ``openai:NAME`` (or a ready ``BatchProvider``)."""
    if not isinstance(model, str):
        return model
    provider, _, name = model.partition(":")
    if provider == "anthropic" and name:
        from .models.anthropic_batch import AnthropicBatches
        return AnthropicBatches(name)
    if provider == "openai" and name:
        from .models.openai_batch import OpenAIBatches
        return OpenAIBatches(name)
    raise ModelConfigurationError(f"batch inference needs 'anthropic:NAME' or 'openai:NAME', not {model!r}: "
                                  "those are the providers with a batch API")


@dataclass
class BatchItem:
    """The result for ``requests[index]``: its response, or why it has none."""

    index: int
    response: ModelResponse | None = None
    error: str | None = None
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.response is not None


@dataclass
class BatchResult:
    items: list[BatchItem]
    ledger: Ledger
    batches: list[str]
    """The provider batch ids, one per round (the first, then retry batches)."""

    @property
    def responses(self) -> list[ModelResponse | None]:
        return [item.response for item in self.items]

    @property
    def failed(self) -> list[BatchItem]:
        return [item for item in self.items if item.response is None]


class _Outcomes(BaseModel):
    """What the collect step checkpoints: the items that did not succeed (small, whatever the
    batch's size; every other item succeeded), never the responses."""

    ours: bool = True
    failed: dict[str, BatchItemOutcome] = {}


DEFAULT_MAX_WAIT = Duration.from_hours(25)
"""Longer than the providers' 24-hour window: they end a batch (expiring what is left) first."""


def run_batch(ctx: DurableContext, requests: Sequence[ModelRequest | str], *, model: str | BatchProvider,
              name: str = "batch", system: str | None = None, settings: ModelSettings | None = None,
              poll_every: Duration | float = 60, max_wait: Duration | float = DEFAULT_MAX_WAIT,
              retry_batches: int = 2, submit_retry: RetryPolicy | None = None,
              prices: dict[str, Price] | None = None) -> BatchResult:
    """Send ``requests`` (prompts or full ``ModelRequest``s; ``system``/``settings`` apply to
    prompts) as one provider batch and return every item's result, in order. See the module
    docstring for how submission, waiting and collection survive crashes."""
    provider = batch_provider(model)
    built = [r if isinstance(r, ModelRequest) else
             ModelRequest(system=system, messages=[Message.user(r)], settings=settings or ModelSettings())
             for r in requests]
    interval = Duration.of(poll_every).seconds or 1
    polls = max(1, -(-Duration.of(max_wait).seconds // interval))
    stem = hashlib.sha256(f"{ctx.execution_id}\x00{name}".encode()).hexdigest()[:12]
    ledger = Ledger(prices=prices)
    items: dict[int, BatchItem] = {}
    pending = list(range(len(built)))
    batch_ids: list[str] = []
    for round_ in range(1, retry_batches + 2):
        if not pending:
            break
        key = f"dg{stem}r{round_}"
        ids = {f"{key}-{i}": i for i in pending}
        batch_id = _submit(ctx, provider, built, ids, key=key, name=f"{name}: submit {round_}",
                           retry=submit_retry or model_retry_policy())
        batch_ids.append(batch_id)
        _wait(ctx, provider, batch_id, name=f"{name}: wait {round_}", interval=interval, polls=polls)
        downloaded: dict[str, BatchItemOutcome] = {}

        def fetch(batch_id: str = batch_id, downloaded: dict[str, BatchItemOutcome] = downloaded
                  ) -> dict[str, BatchItemOutcome]:
            if not downloaded:  # once per invocation; free to download again after a crash
                downloaded.update({o.custom_id: o for o in provider.results(batch_id)})
            return downloaded

        def index(ids: dict[str, int] = ids, fetch: Callable[[], dict[str, BatchItemOutcome]] = fetch) -> _Outcomes:
            outcomes = fetch()
            if set(outcomes) != set(ids):  # an adopted batch that was not ours after all
                return _Outcomes(ours=False)
            return _Outcomes(failed={cid: o.model_copy(update={"response": None, "error": (o.error or "")[:500]})
                                     for cid, o in outcomes.items() if o.status != "succeeded"})

        recorded = ctx.step(index, name=f"{name}: results {round_}",
                            config=StepConfig(sub_type=BATCH_ITEM_OUTCOMES_SUBTYPE, serdes=JsonSerdes(_Outcomes)))
        if not recorded.ours:
            continue  # its items stay pending: a new batch is submitted under the next key
        retry: list[int] = []
        for custom_id, position in ids.items():
            outcome = recorded.failed.get(custom_id)
            if outcome is None:
                response, replayed = _collect(ctx, provider, fetch, built[position], custom_id,
                                              name=f"{name}: item {position}")
                ledger.record(response, replayed=replayed)
                items[position] = BatchItem(index=position, response=response)
                continue
            items[position] = BatchItem(index=position, error=outcome.error or outcome.status,
                                        error_type=outcome.error_type or outcome.status)
            if outcome.retryable:
                retry.append(position)
        pending = retry
    ordered = [items.get(i) or BatchItem(index=i, error="never submitted", error_type="not_submitted")
               for i in range(len(built))]
    return BatchResult(items=ordered, ledger=ledger, batches=batch_ids)


def _submit(ctx: DurableContext, provider: BatchProvider, requests: list[ModelRequest], ids: dict[str, int], *,
            key: str, name: str, retry: RetryPolicy) -> str:
    def submit() -> str:
        if lost_so_far():  # an earlier attempt died after sending: the batch may exist already
            found = provider.find(key=key, count=len(ids))
            if found is not None:
                return found
        return provider.submit([(cid, requests[i]) for cid, i in ids.items()], key=key)

    return str(ctx.step(submit, name=name, config=sent_call_config(retry, sub_type="BatchSubmit",
                                                                    serdes=JsonSerdes(str))))


def _wait(ctx: DurableContext, provider: BatchProvider, batch_id: str, *, name: str, interval: int,
          polls: int) -> dict[str, Any]:
    def check(state: dict[str, Any], step: Any) -> dict[str, Any]:
        try:
            progress = provider.poll(batch_id)
        except ModelError as exc:
            if not exc.retryable:
                raise
            return {**state, "last_error": str(exc)[:200]}  # a hiccup: poll again later
        return {"batch_id": batch_id, "ended": progress.ended, "status": progress.status,
                "counts": progress.counts}

    config = WaitForConditionConfig(initial_state={"batch_id": batch_id, "ended": False},
                                    wait_strategy=poll_until(lambda s: bool(s.get("ended")), delay=interval,
                                                             max_attempts=polls))
    return dict(ctx.wait_for_condition(check, name=name, config=config))


def _collect(ctx: DurableContext, provider: BatchProvider, fetch: Callable[[], dict[str, BatchItemOutcome]],
             request: ModelRequest, custom_id: str, *, name: str) -> tuple[ModelResponse, bool]:
    ran: list[bool] = []

    def item() -> ModelResponse:
        ran.append(True)
        response = fetch()[custom_id].response
        if response is None:  # the index said succeeded; the provider's results say otherwise
            raise ModelError(f"batch result {custom_id} has no response")
        return response.model_copy(update={"batch": True,
                                           "request_hash": request_hash(provider.model_id, request)})

    response = ctx.step(item, name=name, config=StepConfig(sub_type=MODEL_CALL_SUBTYPE,
                                                           serdes=JsonSerdes(ModelResponse)))
    return response, not ran
