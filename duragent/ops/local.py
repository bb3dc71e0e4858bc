"""The operator API over a local SQLite store (``LocalRuntime``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from duragent.agents.review import review_request
from duragent.durable import display_name, submitter_record
from duragent.durable.errors import StoreError
from duragent.durable.local import DEFAULT_DB, ExecutionInfo, LocalRuntime
from duragent.durable.model import ErrorObject, Operation

from . import values

if TYPE_CHECKING:
    from duragent.agents.events import AgentEventStream
from .base import Operator
from .types import Execution, ExecutionSummary, Page, PendingCallback


class StoreMissingError(StoreError):
    """There is no store at the path: reading or answering needs one (only run and worker create one)."""


def store_path(db: str | os.PathLike[str] | None = None) -> Path:
    """The store a command means: ``db``, else ``$DURAGENT_DB``, else ``.duragent/duragent.db``."""
    path = Path(db or os.environ.get("DURAGENT_DB") or DEFAULT_DB)
    if "\x00" in str(path):
        raise values.InputError("the store's path holds a NUL character; pass --db with a file path")
    return path


class LocalOperator(Operator):
    """Operate the executions of one local store. ``LocalOperator.open(path)`` refuses a path where
    no store exists (a typo must not create one); ``LocalOperator(runtime)`` wraps a runtime you hold."""

    backend = "local"

    def __init__(self, runtime: LocalRuntime, *, owns_runtime: bool = False) -> None:
        self.runtime = runtime
        self._owns_runtime = owns_runtime

    @classmethod
    def open(cls, db: str | os.PathLike[str] | None = None) -> LocalOperator:
        path = store_path(db)
        if not path.exists():
            raise StoreMissingError(f"no duragent store at {path}; pass --db (or set DURAGENT_DB) to the store "
                                    "that `duragent run` or `duragent worker` used")
        return cls(LocalRuntime(db=path), owns_runtime=True)

    def close(self) -> None:
        if self._owns_runtime:
            self.runtime.close()

    # -- reading -----------------------------------------------------------------------------
    def list_executions(self, *, status: str | None = None, limit: int | str = 100,
                        cursor: str | None = None) -> Page[ExecutionSummary]:
        limit = values.page_limit(limit)
        offset = values.page_offset(0 if cursor is None else cursor, "cursor")
        status = values.execution_status(status)
        total = self.runtime.count(status=status)
        rows = self.runtime.list(status=status, limit=limit, offset=offset)
        items = [ExecutionSummary(id=r["id"], name=r["name"], function=r["function"], status=r["status"],
                                  started_at=r["started_at"], ended_at=r["ended_at"],
                                  parent_execution=r.get("parent_execution")) for r in rows]
        return _page(items, total, offset)

    def get(self, execution_id: str) -> Execution:
        return _execution(self.runtime.get(values.execution_id(execution_id)))

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        return self.runtime.history(values.execution_id(execution_id))

    def operations(self, execution_id: str) -> list[Operation]:
        return self.runtime.operations(values.execution_id(execution_id))

    def events(self, execution_id: str, *, after: int = 0, live: bool = True) -> AgentEventStream:
        from duragent.agents.events import follow

        return follow(self.runtime, values.execution_id(execution_id, "ID"), after=values.page_offset(after, "after"),
                      live=live)

    def send_message(self, execution_id: str, text: str | None = None, *, end: bool = False) -> str:
        from duragent.agents.session import Session, SessionError, is_session

        execution_id = values.execution_id(execution_id, "ID")
        if not is_session(self.runtime.operations(execution_id)):
            raise values.InputError(f"execution {execution_id} is not a chat session (agents.conversation); "
                                    "answer its callbacks instead")
        if not end and (not isinstance(text, str) or not text.strip()):
            raise values.InputError("a message must be non-empty text")
        session = Session(self.runtime, execution_id)
        inbox = session.inbox
        if inbox is None:
            raise SessionError(f"session {execution_id} is not waiting for a message now (a reply is being "
                               "written, or it has ended); send it when the reply is done")
        self.runtime.send_callback_success(inbox, json.dumps({"end": True} if end else {"text": text}))
        return inbox

    def pending(self, *, limit: int | str = 100, cursor: str | None = None,
                execution_id: str | None = None) -> Page[PendingCallback]:
        limit = values.page_limit(limit)
        offset = values.page_offset(0 if cursor is None else cursor, "cursor")
        if execution_id is not None:
            values.execution_id(execution_id)
        total = self.runtime.count_pending_callbacks(execution_id=execution_id)
        rows = self.runtime.pending_callbacks(limit=limit, offset=offset, execution_id=execution_id)
        journals: dict[str, tuple[Execution, dict[str, Operation]]] = {}
        items = []
        for owner, op, callback_id in rows:
            if owner not in journals:
                journals[owner] = (self.get(owner), {o.Id: o for o in self.runtime.operations(owner)})
            info, by_id = journals[owner]
            items.append(_pending(info, op, callback_id, by_id))
        return _page(items, total, offset)

    def pending_callback(self, callback_id: str) -> PendingCallback:
        owner, op = self.runtime.pending_callback(values.callback_id(callback_id))
        info = self.get(owner)
        by_id = {o.Id: o for o in self.runtime.operations(owner)}
        return _pending(info, by_id.get(op.Id, op), callback_id, by_id)

    # -- answering ---------------------------------------------------------------------------
    def stop(self, execution_id: str) -> Execution:
        self.runtime.stop(values.execution_id(execution_id))
        return self.get(execution_id)

    def send_callback_success(self, callback_id: str, result: str | None) -> str:
        return self.runtime.send_callback_success(values.callback_id(callback_id), result)

    def send_callback_failure(self, callback_id: str, error: ErrorObject) -> str:
        return self.runtime.send_callback_failure(values.callback_id(callback_id), error)

    def send_callback_heartbeat(self, callback_id: str) -> str:
        return self.runtime.send_callback_heartbeat(values.callback_id(callback_id))


def _page(items: list[Any], total: int, offset: int) -> Page[Any]:
    end = offset + len(items)
    return Page(items, total, str(offset) if offset else None, str(end) if end < total else None)


def _execution(info: ExecutionInfo) -> Execution:
    return Execution(id=info.id, name=info.name, function=info.function, status=info.status, result=info.result,
                     error=info.error, input=info.input, started_at=info.started_at, ended_at=info.ended_at,
                     invocations=info.invocations, parent_execution=info.parent_execution,
                     handler_version=info.handler_version, stalled=info.stalled)


def _pending(info: Execution, op: Operation, callback_id: str, by_id: dict[str, Operation]) -> PendingCallback:
    record = submitter_record(op.ParentId, by_id.values())
    request = review_request(record)
    return PendingCallback(callback_id=callback_id, execution_id=info.id, execution_name=info.name,
                           function=info.function, name=display_name(op, by_id), started_at=op.StartTimestamp,
                           request=request, asked=record if request is None else None)
