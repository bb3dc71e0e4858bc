"""OpenAI Batch for ``agents.batch.run_batch``: the requests go up as a JSONL file (Files API,
purpose ``batch``), one Chat Completions body per line, and come back in an output file (answers)
and an error file (failed, expired and cancelled requests), at half price.

The batch carries the submission key in its metadata, so ``find`` recognises a batch that an
interrupted submit created before its id was checkpointed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..batch import BatchItemOutcome, BatchProgress, OutcomeStatus
from ..messages import ModelRequest
from ._errors import translated_sdk_errors
from .openai import PROVIDER, OpenAIModel, build_params, normalize_completion

T = TypeVar("T")

ENDPOINT = "/v1/chat/completions"
KEY_FIELD = "duragent_key"
ENDED = frozenset({"completed", "expired", "cancelled", "failed"})
RETRYABLE_CODES = frozenset({"batch_expired", "batch_cancelled"})
FIND_LOOKBACK = 100


class OpenAIBatches:
    """The Batch API for one chat model (client, key and endpoint as ``OpenAIModel``)."""

    def __init__(self, name: str, *, client: Any = None, api_key: str | None = None,
                 base_url: str | None = None) -> None:
        self._model = OpenAIModel(name, client=client, api_key=api_key, base_url=base_url)
        self.name = name

    @property
    def model_id(self) -> str:
        return self._model.model_id

    def __repr__(self) -> str:
        return f"OpenAIBatches({self.name!r})"

    @property
    def _client(self) -> Any:
        return self._model._client

    def _call(self, fn: Callable[[], T]) -> T:
        with translated_sdk_errors(self._model._sdk, provider=PROVIDER):
            return fn()

    def submit(self, requests: Sequence[tuple[str, ModelRequest]], *, key: str) -> str:
        official = self._model._is_official()
        lines = [json.dumps({"custom_id": custom_id, "method": "POST", "url": ENDPOINT,
                             "body": build_params(self.name, request, official=official)})
                 for custom_id, request in requests]
        data = ("\n".join(lines) + "\n").encode()

        def send() -> str:
            upload = self._client.files.create(file=(f"{key}.jsonl", data), purpose="batch")
            batch = self._client.batches.create(input_file_id=upload.id, endpoint=ENDPOINT, completion_window="24h",
                                                metadata={KEY_FIELD: key})
            return str(batch.id)

        return self._call(send)

    def find(self, *, key: str, count: int) -> str | None:
        def search() -> str | None:
            for seen, batch in enumerate(self._client.batches.list(limit=20)):
                if seen >= FIND_LOOKBACK:
                    break
                if (batch.metadata or {}).get(KEY_FIELD) == key:
                    return str(batch.id)
            return None

        return self._call(search)

    def poll(self, batch_id: str) -> BatchProgress:
        batch = self._call(lambda: self._client.batches.retrieve(batch_id))
        counts = batch.request_counts
        return BatchProgress(ended=batch.status in ENDED, status=str(batch.status),
                             counts={"total": counts.total, "completed": counts.completed, "failed": counts.failed}
                             if counts is not None else {})

    def _lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        text = self._client.files.content(file_id).text
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def results(self, batch_id: str) -> list[BatchItemOutcome]:
        def fetch() -> list[BatchItemOutcome]:
            batch = self._client.batches.retrieve(batch_id)
            lines = self._lines(batch.output_file_id) + self._lines(batch.error_file_id)
            return [self._outcome(line) for line in lines]

        return self._call(fetch)

    def _outcome(self, line: dict[str, Any]) -> BatchItemOutcome:
        custom_id = str(line.get("custom_id"))
        response = line.get("response") or {}
        error = line.get("error")
        if error:
            code = str(error.get("code") or "error")
            status: OutcomeStatus = ("expired" if code == "batch_expired" else
                                     "canceled" if code == "batch_cancelled" else "errored")
            return BatchItemOutcome(custom_id=custom_id, status=status, error_type=code,
                                    error=str(error.get("message") or code), retryable=code in RETRYABLE_CODES)
        status_code = int(response.get("status_code") or 0)
        body = response.get("body") or {}
        if status_code == 200:
            completion = self._model._sdk.types.chat.ChatCompletion.model_validate(body)
            answer = normalize_completion(completion, self.model_id).model_copy(update={"batch": True})
            return BatchItemOutcome(custom_id=custom_id, status="succeeded", response=answer)
        detail = (body.get("error") or {}) if isinstance(body, dict) else {}
        return BatchItemOutcome(custom_id=custom_id, status="errored", error_type=str(detail.get("type") or status_code),
                                error=str(detail.get("message") or f"HTTP {status_code}"),
                                retryable=status_code == 429 or status_code >= 500)

    def cancel(self, batch_id: str) -> None:
        self._call(lambda: self._client.batches.cancel(batch_id))
