"""Helpers the parallel and map handlers share."""

from __future__ import annotations

from typing import Any

from duragent.durable import BatchResult


def projection(batch: BatchResult, *keys: str) -> dict[str, Any]:
    """The summary object several requirements return, built from the BatchResult."""
    every = {
        "completionReason": batch.completion_reason.value,
        "status": batch.status.value,
        "successCount": batch.success_count,
        "failureCount": batch.failure_count,
        "totalCount": batch.total_count,
    }
    return {key: every[key] for key in keys}
