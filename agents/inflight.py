"""Model calls in flight: what makes the ledger match the provider's bill, and what lets a resumed
execution pick up an answer the provider kept instead of paying for it again.

- **The sent marker.** A model-call step is at-most-once: its START is checkpointed before the
  request goes out (one SQLite commit, next to a network call that takes seconds). A worker that
  dies mid-call leaves the step started and unfinished; the next invocation knows that request was
  sent (and billed), records the attempt as interrupted and sends the call again at once. The
  answer carries the count (``ModelResponse.lost_in_flight``), so the ledger books those attempts
  as "paid, lost in flight", estimated at the retry's usage.
- **Recoverable calls.** A model whose provider keeps the answer under an id (OpenAI's Responses
  API in background mode) is called in two steps: one starts the call and checkpoints the id, the
  next waits for the answer. A worker killed while waiting costs nothing: the resumed invocation
  retrieves the stored answer by id.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from duragent.durable import (
    JsonSerdes,
    RetryPolicy,
    StepConfig,
    StepError,
    StepInterruptedError,
    StepSemantics,
    step_context,
)
from duragent.durable.flow import Flow

from .errors import ModelCallAbandonedError
from .messages import ModelRequest, ModelResponse
from .models.base import Model, TextCallback, request_in_thread
from .telemetry import record_model_call_span
from .usage import MODEL_CALL_START_SUBTYPE, MODEL_CALL_SUBTYPE

MAX_INTERRUPTED_ATTEMPTS = 20
"""A call interrupted this many times in a row is given up (a crash loop must not pay forever)."""


def request_hash(model_id: str, request: ModelRequest) -> str:
    """A content hash of a request as sent: equal hashes, equal requests (and equal bills). The
    request's JSON comes from pydantic's serializer (fields in declaration order, mappings in their
    own order): a whole conversation is serialized every turn, so this stays off Python's encoder."""
    digest = hashlib.sha256(model_id.encode())
    digest.update(b"\0")
    digest.update(request.model_dump_json().encode())
    return digest.hexdigest()[:16]


def _interrupted(retry_state: Any) -> bool:
    outcome = retry_state.outcome
    return outcome is not None and isinstance(outcome.exception(), StepInterruptedError)


class _retry_interrupted(retry_base):  # noqa: N801 - tenacity's naming
    def __init__(self, inner: retry_base) -> None:
        self.inner = inner

    def __call__(self, retry_state: Any) -> bool:
        return _interrupted(retry_state) or bool(self.inner(retry_state))


class _stop_interrupted(stop_base):  # noqa: N801 - tenacity's naming
    def __init__(self, inner: stop_base) -> None:
        self.inner = inner

    def __call__(self, retry_state: Any) -> bool:
        if _interrupted(retry_state):
            return bool(retry_state.attempt_number >= MAX_INTERRUPTED_ATTEMPTS)
        return bool(self.inner(retry_state))


class _wait_interrupted(wait_base):  # noqa: N801 - tenacity's naming
    def __init__(self, inner: wait_base) -> None:
        self.inner = inner

    def __call__(self, retry_state: Any) -> float:
        return 0.0 if _interrupted(retry_state) else float(self.inner(retry_state))


def resume_interrupted(policy: RetryPolicy) -> RetryPolicy:
    """``policy``, except that an attempt interrupted by a crash is always tried again, at once
    (the shortest durable delay): the call was lost, not refused."""
    return RetryPolicy(stop=_stop_interrupted(policy.stop), wait=_wait_interrupted(policy.wait),
                       retry=_retry_interrupted(policy.retry))


def sent_call_config(policy: RetryPolicy, *, sub_type: str = MODEL_CALL_SUBTYPE,
                     serdes: Any = None) -> StepConfig:
    """The step configuration of a model call whose sending is recorded (the START marker)."""
    return StepConfig(retry=resume_interrupted(policy), semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
                      sub_type=sub_type, serdes=serdes or JsonSerdes(ModelResponse))


def lost_so_far() -> int:
    """Inside a model-call step: how many earlier attempts of it were lost in flight."""
    return step_context().interrupted_attempts


# -- recoverable calls -------------------------------------------------------------------------
@runtime_checkable
class RecoverableModel(Protocol):
    """A model whose provider keeps each answer under an id until it is fetched."""

    @property
    def model_id(self) -> str: ...

    @property
    def recoverable(self) -> bool:
        """True when calls should go through ``start``/``finish`` (e.g. background mode is on)."""
        ...

    def start(self, request: ModelRequest) -> str:
        """Send the call; return the provider's id for it at once, before the answer is ready."""
        ...

    def finish(self, call_id: str, *, on_text: TextCallback | None = None) -> ModelResponse:
        """Wait for the answer kept under ``call_id`` (streaming text when asked) and return it.
        Raises ``ModelCallAbandonedError`` when the provider gave up on it or it was cancelled."""
        ...

    def cancel(self, call_id: str) -> None:
        """Ask the provider to stop working on (and billing) a call nobody will collect."""
        ...


class StartedCall(BaseModel):
    """What the start step checkpoints: the provider's id for the call, before any waiting."""

    call_id: str
    model: str
    request_hash: str
    lost_in_flight: int = 0


def is_recoverable(model: Model) -> bool:
    return isinstance(model, RecoverableModel) and bool(model.recoverable)


def call_recoverable(ctx: Any, model: RecoverableModel, request: ModelRequest, *, name: str, retry: RetryPolicy,
                     on_text: Any, stamp: dict[str, Any], max_starts: int = 3) -> Flow[tuple[ModelResponse, bool]]:
    """Start the call (a sent-marked step checkpointing the provider's id), then wait for its answer
    in a second step that a resumed invocation simply runs again: it fetches the kept answer by id.
    A flow (sync or async handlers; in async ones the blocking calls run in a worker thread).
    Returns the answer and whether it was replayed from the journal."""
    ran: list[bool] = []
    lost = 0
    for round_ in range(1, max_starts + 1):
        suffix = "" if round_ == 1 else f" (start {round_})"

        def start() -> StartedCall:
            ran.append(True)
            digest = request_hash(model.model_id, request)
            return StartedCall(call_id=model.start(request), model=model.model_id, request_hash=digest,
                               lost_in_flight=lost_so_far())

        async def astart() -> StartedCall:
            lost = lost_so_far()  # the step's context stays on the loop; the call goes to a thread
            started: StartedCall = await asyncio.to_thread(start)
            return started.model_copy(update={"lost_in_flight": lost})

        started = yield ctx.step(astart if ctx.is_async else start, name=f"{name} start{suffix}",
                                 config=sent_call_config(retry, sub_type=MODEL_CALL_START_SUBTYPE,
                                                         serdes=JsonSerdes(StartedCall)))
        lost += started.lost_in_flight

        def stamped(response: ModelResponse, started: StartedCall = started, lost: int = lost) -> ModelResponse:
            ran.append(True)
            response = response.model_copy(update={**stamp, "request_hash": started.request_hash,
                                                   "lost_in_flight": lost})
            record_model_call_span(response)
            return response

        def finish(started: StartedCall = started) -> ModelResponse:
            return stamped(model.finish(started.call_id, on_text=on_text))

        async def afinish(started: StartedCall = started) -> ModelResponse:
            def collect(_request: ModelRequest, on_text: TextCallback | None = None) -> ModelResponse:
                return model.finish(started.call_id, on_text=on_text)

            return stamped(await request_in_thread(collect, request, on_text=on_text))

        try:
            response = yield ctx.step(afinish if ctx.is_async else finish, name=f"{name}{suffix}",
                                      config=StepConfig(retry=retry, sub_type=MODEL_CALL_SUBTYPE,
                                                        serdes=JsonSerdes(ModelResponse)))
        except StepError as exc:
            if round_ < max_starts and (exc.error_type or "").endswith(ModelCallAbandonedError.__name__):
                continue
            raise
        return response, not ran
    raise AssertionError("unreachable")  # pragma: no cover
