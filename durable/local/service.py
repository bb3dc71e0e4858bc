"""The embedded durable execution service: the semantics AWS runs, persisted in SQLite.

It answers the same two calls as AWS (``checkpoint``, ``get_state``), applies the same state
transitions and validity rules (PROTOCOL.md §2), writes the same history (§5), and adds what the
AWS service does on its own: timers, callback answers and timeouts, invocation bookkeeping.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import logging
import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..backend import CheckpointResponse, InvocationInput, StateResponse
from ..errors import (
    CallbackNotFoundError,
    ExecutionConflictError,
    ExecutionNotFoundError,
    InvalidCheckpointTokenError,
    RetryableCheckpointError,
    UsageError,
)
from ..jsontext import check_error_text, check_json_text
from ..live import LiveHub
from ..model import (
    CallbackDetails,
    ChainedInvokeDetails,
    ErrorObject,
    ExecutionDetails,
    ExecutionStatus,
    InvocationOutput,
    InvocationStatus,
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from . import history as H
from .rows import StoredOperation, op_id_of, op_key, unpack
from .store import JournalRow, Store, Tx, key_range
from .transitions import apply_update, callback_due, merged_start, succeed_step
from .validation import check_texts, is_new_step, validate_batch
from .writes import Batch, load_operation, stored_operation

_RUNNING = ExecutionStatus.RUNNING.value
_new_tuple = tuple.__new__

log = logging.getLogger("duragent.durable.local")


_ISSUED: OrderedDict[str, tuple[str, int, int, int]] = OrderedDict()
"""The last tokens this process issued, decoded: the checkpoint that uses one need not decode it."""


def encode_token(execution_id: str, num: int, invocation: int, key: int) -> str:
    """Opaque to clients (base64, as AWS's); inside: which execution, which invocation, and the last
    journal row the invocation has seen (its own last write, or the journal's end at claim)."""
    token = base64.b64encode(f"{execution_id}:{num}:{invocation}:{key}".encode()).decode()
    _ISSUED[token] = (execution_id, num, invocation, key)
    if len(_ISSUED) > 256:
        try:
            _ISSUED.popitem(last=False)
        except KeyError:  # another thread emptied it meanwhile
            pass
    return token


def decode_token(token: str) -> tuple[str, int, int, int]:
    """(execution id, execution number, invocation, last journal key seen)."""
    known = _ISSUED.get(token)
    if known is not None:
        return known
    try:
        execution_id, num, invocation, key = base64.b64decode(token.encode(), validate=True).decode().split(":")
        return execution_id, int(num), int(invocation), int(key)
    except Exception:
        raise InvalidCheckpointTokenError(f"Invalid checkpoint token: {token[:40]!r}") from None


def local_arn(function: str, execution_id: str) -> str:
    return f"duragent:local:{function}/{execution_id}"


def execution_id_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


STALLED = "stalled"
"""Key of the record, in an execution's ``info``, of why it cannot run now (see ``stall``)."""

UNREADABLE_RETRY_SECONDS = 60.0
"""How long the due timers of an execution whose rows do not read back wait before another try."""

MAX_STALL_SECONDS = 300.0
"""The longest wait between two tries of an execution that cannot run (its handler does not import)."""


def read_info(text: str | None) -> dict[str, Any]:
    """An execution's ``info`` record; one that does not read back (a damaged row) counts as empty
    rather than stopping the execution's invocations."""
    if not text:
        return {}
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


class UnreadableExecutionError(Exception):
    """An invocation could not be opened because the execution's stored state does not read back."""

    def __init__(self, execution_id: str, cause: BaseException) -> None:
        super().__init__(f"execution {execution_id}: {type(cause).__name__}: {cause}")
        self.execution_id = execution_id
        self.cause = cause


@dataclass
class Invocation:
    execution_id: str
    invocation_id: str
    function: str
    target: str | None
    input: InvocationInput
    started_at: float
    num: int = 0
    """The execution's number in the store (its journal keys' prefix)."""
    number: int = 0
    """Which invocation of the execution this is (1, 2, ...)."""


_KNOWN_LIMIT = 64
"""Invocations whose operation index a service keeps at most (one per invocation running, normally)."""


class LocalService:
    def __init__(self, store: Store, now: Callable[[], float]) -> None:
        self.store = store
        self.now = now
        self.resolve_function: Callable[[str], tuple[str, str | None] | None] | None = None
        """Set by the runtime: which functions a chained invoke can start."""
        self.live: LiveHub | None = None
        """Set by the runtime: the live channel to this store's followers (durable/live.py)."""
        self._known_lock = threading.Lock()
        self._known: dict[tuple[int, int], dict[str, StoredOperation | int]] = {}
        """Per invocation claimed here ((execution number, invocation number)): each operation's id ->
        the key of its latest journal row (or that row as loaded, which carries its key). Read at claim, kept current by the invocation's own
        checkpoints and by the rows others append (each checkpoint reads those first), so a
        checkpoint finds the operations it touches without an index on operation ids: a new step
        costs no lookup at all, and the journal no index page per row."""

    # -- executions ---------------------------------------------------------------------------
    def start_execution(self, *, function: str, target: str | None, input_json: str, execution_id: str | None,
                        name: str | None = None, parent: tuple[str, str] | None = None,
                        tenant_id: str | None = None, timeout_seconds: int | None = None,
                        info: dict[str, Any] | None = None) -> tuple[str, bool]:
        """Create an execution. Returns (id, created); an existing id with the same function and input
        is returned as is (idempotent start), a different one is a conflict."""
        execution_id, created, _ = self.start_and_claim(
            function=function, target=target, input_json=input_json, execution_id=execution_id, name=name,
            parent=parent, tenant_id=tenant_id, timeout_seconds=timeout_seconds, info=info)
        return execution_id, created

    def start_and_claim(self, *, function: str, target: str | None, input_json: str, execution_id: str | None,
                        name: str | None = None, parent: tuple[str, str] | None = None,
                        tenant_id: str | None = None, timeout_seconds: int | None = None,
                        info: dict[str, Any] | None = None,
                        claim: tuple[str, float] | None = None) -> tuple[str, bool, Invocation | None]:
        """``start_execution``, and with ``claim`` = (owner, lease seconds) a new execution is created
        leased to that owner with its first invocation open, in the same commit: what a caller that
        runs the execution itself at once (``LocalRuntime.run``) would otherwise do in a claim of its
        own. Returns (id, created, the invocation or None)."""
        generated = execution_id is None
        execution_id = execution_id or uuid.uuid4().hex
        check_json_text(input_json, "the execution input")
        with self.store.transaction() as tx:
            existing = None if generated else tx.execution(execution_id)  # a fresh uuid names nothing yet
            if existing is not None:
                if existing["function"] != function or existing["input"] != input_json:
                    raise ExecutionConflictError(
                        f"execution id {execution_id!r} is already used by a {existing['function']!r} execution "
                        "with a different input; choose a new --id, or repeat the original input to attach to it")
                return execution_id, False, None
            now = self.now()
            opened: dict[str, Any] | None = None
            if claim is not None:
                opened = {"runnable": 0, "invocation_id": uuid.uuid4().hex, "invocation_started": now,
                          "invocations": 1, "lease_owner": claim[0], "lease_expires": now + claim[1]}
            execution, batch = self._insert_execution(
                tx, now, function=function, target=target, input_json=input_json, execution_id=execution_id,
                name=name, parent=parent, tenant_id=tenant_id, timeout_seconds=timeout_seconds, info=info,
                opened=opened)
        if opened is None:
            return execution_id, True, None
        # The execution was inserted with its first invocation open: what a claim would read back
        # (its one operation, the last key) is at hand.
        num = int(execution["num"])
        token = encode_token(execution_id, num, 1, batch.last_key)
        invocation = Invocation(execution_id, opened["invocation_id"], function, target,
                                InvocationInput(arn=local_arn(function, execution_id), token=token, operations=[]),
                                now, num, 1)
        self._register(invocation, {op_id: stored_operation(row) for op_id, row in batch.latest.items()})
        return execution_id, True, invocation

    def _insert_execution(self, tx: Tx, now: float, *, function: str, target: str | None, input_json: str,
                          execution_id: str, name: str | None, parent: tuple[str, str] | None,
                          tenant_id: str | None, timeout_seconds: int | None = None,
                          info: dict[str, Any] | None = None,
                          opened: dict[str, Any] | None = None) -> tuple[dict[str, Any], Batch]:
        """Insert the execution and its EXECUTION operation (``opened``: the columns of a first
        invocation already open). Returns the execution's row as written and the batch that wrote it."""
        name = name or execution_id
        op = Operation(Id=execution_id, Name=name, Type=OperationType.EXECUTION, Status=OperationStatus.STARTED,
                       StartTimestamp=now, ExecutionDetails=ExecutionDetails(InputPayload=input_json))
        execution: dict[str, Any] = {"id": execution_id, "function": function, "target": target, "name": name,
                     "input": input_json, "status": ExecutionStatus.RUNNING.value, "started_at": now, "runnable": 1,
                     "parent_execution": parent[0] if parent else None,
                     "parent_operation": parent[1] if parent else None, "tenant_id": tenant_id,
                     "timeout_at": now + timeout_seconds if timeout_seconds else None,
                     "info": json.dumps(info) if info else None, **(opened or {})}
        execution["num"] = tx.insert_execution(execution)
        batch = Batch(tx, execution, now, key_range(execution["num"])[0])
        extra = {"ExecutionStarted": {"ExecutionTimeout": timeout_seconds}} if timeout_seconds else None
        batch.put(op, None, H.codes("ExecutionStarted"), extra=extra)
        batch.flush()
        return execution, batch

    def execution(self, execution_id: str) -> dict[str, Any]:
        with self.store.reading() as tx:
            row = tx.execution(execution_id)
        if row is None:
            raise ExecutionNotFoundError(f"no execution {execution_id!r} in {self.store.path}; "
                                         "`duragent list` shows the ids")
        return row

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        """Events as GetDurableExecutionHistory returns them, rebuilt from the journal."""
        return self.history_after(execution_id, 0, None)[0]

    def history_after(self, execution_id: str, after: int,
                      limit: int | None = 500) -> tuple[list[dict[str, Any]], str]:
        """The history events after event id ``after`` (up to ``limit``, in the API shape, as
        ``history`` gives them) and the execution's status, read in one snapshot: what a follower
        reads. Event ids are positions in the history rebuilt from the journal; the rows of the
        events up to ``after`` are read but only their codes are counted, not their payloads."""
        with self.store.transaction(write=False) as tx:
            execution = tx.execution(execution_id)
            if execution is None:
                raise ExecutionNotFoundError(f"no execution {execution_id!r} in {self.store.path}; "
                                             "`duragent list` shows the ids")
            rows = tx.journal(int(execution["num"]))
        events: list[dict[str, Any]] = []
        seen = 0
        for row in rows:
            if limit is not None and len(events) >= limit:
                break
            if row.op is None:
                seen += 1
                if seen > after:
                    events.append(H.materialize(json.loads(unpack(row.data)), execution.get("result")))
                    events[-1]["EventId"] = seen
            elif row.ev:
                count = len(row.ev)
                if seen + count <= after:
                    seen += count
                    continue
                built = H.operation_events(row.ev, load_operation(row), row.at, row.x, row.timeout_at,
                                           row.heartbeat_seconds)
                for event in built:
                    seen += 1
                    if seen > after and (limit is None or len(events) < limit):
                        event["EventId"] = seen
                        events.append(event)
        return events, str(execution["status"])

    def operations(self, execution_id: str) -> list[Operation]:
        return [op.load() for op in self.stored_operations(int(self.execution(execution_id)["num"])).values()]

    def stored_operations(self, num: int) -> dict[str, StoredOperation]:
        """Each operation's latest state by id, in the order the operations began, parsed on demand
        (each carries its latest row key: the index a running invocation's checkpoints use)."""
        latest: dict[str, StoredOperation] = {}
        collecting = gc.isenabled()
        if collecting:  # nothing here makes cycles; collections would only walk the growing dict again and again
            gc.disable()
        try:
            with self.store.reading() as tx:
                for k, key, type_, status, data in tx.operation_rows(num):
                    op_id: str = key.hex() if key.__class__ is bytes else key  # type: ignore[union-attr,assignment]
                    # a later row replaces an earlier; tuple.__new__ skips the named tuple's Python __new__
                    latest[op_id] = _new_tuple(StoredOperation, (op_id, type_, status, data, k))
        finally:
            if collecting:
                gc.enable()
        return latest

    def list_executions(self, **filters: Any) -> list[dict[str, Any]]:
        with self.store.reading() as tx:
            return tx.list_executions(**filters)

    def count_executions(self, **filters: Any) -> int:
        with self.store.transaction(write=False) as tx:
            return tx.count_executions(**filters)

    def pending_callbacks(self, limit: int | None = None, offset: int = 0,
                          execution_id: str | None = None) -> list[tuple[str, Operation, str]]:
        """(execution id, operation, callback id) for callbacks awaiting an answer, in a stable order."""
        with self.store.transaction(write=False) as tx:
            rows = tx.pending_callbacks(limit, offset, execution_id)
            ids = {num: tx.execution_id(num) for num in {r.num for r in rows}}
        return [(ids[r.num] or "", load_operation(r), r.callback_id or "") for r in rows]

    def count_pending_callbacks(self, execution_id: str | None = None) -> int:
        with self.store.transaction(write=False) as tx:
            return tx.count_pending_callbacks(execution_id)

    # -- invocations --------------------------------------------------------------------------
    def claim(self, owner: str, lease_seconds: float, family: str | None = None) -> Invocation | None:
        """Lease one execution that needs an invocation and open the invocation, in one commit
        (without an fsync of its own: a claim lost to a power cut is simply made again).
        ``family``: only that execution or one it invoked (directly or not). An execution whose
        stored state does not read back raises ``UnreadableExecutionError`` (contained to it)."""
        now = self.now()
        with self.store.reading() as tx:
            if tx.claimable(now, family=family) is None:
                return None  # the idle loop's common case: one read, no write transaction
        execution_id: str | None = None
        try:
            with self.store.transaction(durable=False) as tx:
                execution_id = tx.claimable(now, family=family)
                if execution_id is None:
                    return None
                invocation = self._begin(tx, execution_id, now, lease=(owner, now + lease_seconds))
        except sqlite3.Error:
            raise
        except Exception as exc:  # its stored state does not read back: contain it to that execution
            if execution_id is None:
                raise
            raise UnreadableExecutionError(execution_id, exc) from exc
        self._open(invocation)
        return invocation

    def _open(self, invocation: Invocation) -> None:
        """Hand the claimed invocation its operations and keep their index for its checkpoints. Read
        after the claim commits: under the lease, only the service itself (a timer, a callback
        answer) can change these rows meanwhile, and those are seen either way."""
        try:
            known: dict[str, Any] = self.stored_operations(invocation.num)
        except sqlite3.Error:
            raise
        except Exception as exc:  # its stored state does not read back: contain it to that execution
            raise UnreadableExecutionError(invocation.execution_id, exc) from exc
        self._register(invocation, known)

    def _register(self, invocation: Invocation, known: dict[str, Any]) -> None:
        """Give the invocation its operations (a mapping by id: ExecutionState takes it as is) and
        keep them as the index its checkpoints use."""
        invocation.input.operations = known  # type: ignore[assignment]
        with self._known_lock:
            while len(self._known) >= _KNOWN_LIMIT:
                self._known.pop(next(iter(self._known)))
            self._known[(invocation.num, invocation.number)] = known

    def _begin(self, tx: Tx, execution_id: str, now: float, *, lease: tuple[str, float]) -> Invocation:
        """Open the execution's next invocation, leased to ``lease`` = (owner, until)."""
        execution = tx.execution(execution_id, light=True)
        assert execution is not None
        num = int(execution["num"])
        batch = Batch(tx, execution, now, tx.last_key(num))
        if execution["invocation_id"]:
            # The previous invocation never reported back: its process died.
            crash = H.with_details(H.base_event("InvocationCompleted", None, now), {
                "StartTimestamp": execution["invocation_started"], "EndTimestamp": now,
                "RequestId": execution["invocation_id"],
                "Error": H.error_payload({"ErrorType": "Runtime.ExitError",
                                          "ErrorMessage": "the invocation ended without reporting back (its process exited, or it could not reach the store)"})})
            batch.event(crash)
        invocation_id = uuid.uuid4().hex
        invocations = int(execution["invocations"]) + 1
        batch.flush(runnable=0, invocation_id=invocation_id, invocation_started=now, invocations=invocations,
                    lease_owner=lease[0], lease_expires=lease[1])
        token = encode_token(execution_id, num, invocations, batch.last_key)
        arn = local_arn(execution["function"], execution_id)
        return Invocation(execution_id, invocation_id, execution["function"], execution["target"],
                          InvocationInput(arn=arn, token=token, operations=[]), now, num, invocations)

    def renew(self, execution_id: str, owner: str, until: float) -> bool:
        with self.store.transaction(durable=False) as tx:
            return tx.renew_lease(execution_id, owner, until)

    def idle(self) -> bool:
        """True when a claim would find nothing to do (no timer due, nothing runnable, no lease to
        look at): what a worker's idle loop and the end of ``run()`` usually meet, in one read."""
        with self.store.reading() as tx:
            return tx.idle(self.now())

    def release_dead_leases(self, is_dead: Callable[[str], bool]) -> int:
        """Expire leases whose owner process is known to be gone, so work resumes at once."""
        now = self.now()
        with self.store.reading() as tx:
            leases = tx.leases(now)
        dead = [(eid, owner) for eid, owner in leases if is_dead(owner)]
        if dead:
            with self.store.transaction(durable=False) as tx:
                for eid, owner in dead:
                    tx.expire_lease(eid, owner)
        return len(dead)

    def stall(self, execution_id: str, owner: str, error: ErrorObject, *, base_delay: float,
              invocation_id: str | None = None) -> dict[str, Any] | None:
        """The execution cannot run now (its handler does not import, its state does not read
        back): close the open invocation with the reason, keep the execution RUNNING, and hold it
        under ``owner``'s lease until a retry with exponential backoff. The reason is kept in
        the execution's ``stalled`` record (``LocalRuntime.get(...).stalled``) until an invocation
        runs again. Returns that record, or None when another worker owns the execution now."""
        now = self.now()
        with self.store.transaction() as tx:
            execution = tx.execution(execution_id)
            if execution is None or execution["status"] != ExecutionStatus.RUNNING.value:
                return None
            if invocation_id is not None and execution["invocation_id"] != invocation_id:
                return None  # someone else took over meanwhile
            if invocation_id is None and execution["lease_owner"] not in (None, owner) and \
                    (execution["lease_expires"] or 0) >= now:
                return None
            info = read_info(execution["info"])
            attempts = int((info.get(STALLED) or {}).get("attempts", 0)) + 1
            delay = min(base_delay * 2 ** min(attempts - 1, 16), MAX_STALL_SECONDS)
            record = {"reason": f"{error.ErrorType}: {error.ErrorMessage}", "error": error.to_wire(),
                      "attempts": attempts, "since": (info.get(STALLED) or {}).get("since", now), "at": now,
                      "retry_at": now + delay}
            info[STALLED] = record
            batch = Batch(tx, execution, now, tx.last_key(int(execution["num"])))
            if invocation_id is not None:
                batch.event(H.with_details(H.base_event("InvocationCompleted", None, now), {
                    "StartTimestamp": execution["invocation_started"], "EndTimestamp": now,
                    "RequestId": invocation_id, "Error": H.error_payload(error)}))
            batch.flush(invocation_id=None, invocation_started=None, lease_owner=owner, lease_expires=now + delay,
                        runnable=1, info=json.dumps(info))
            return record

    def hold(self, execution_id: str, owner: str, until: float) -> None:
        """Take the lease of an execution until ``until`` without reading its row (which may not
        read back): it is left alone until then."""
        with self.store.transaction() as tx:
            tx.hold_lease(execution_id, owner, until)

    def end_invocation(self, invocation: Invocation, output: InvocationOutput,
                       owner: str) -> dict[str, Any] | None:
        """Record how the invocation ended. Not fsynced on its own: replay recomputes it if a power
        cut takes it (the lease lapses and the execution runs again to the same end). Returns the
        execution's row as written when this ended the execution (what a caller waiting on it would
        read back next), else None."""
        with self._known_lock:
            self._known.pop((invocation.num, invocation.number), None)
        now = self.now()
        with self.store.transaction(durable=False) as tx:
            execution = tx.execution(invocation.execution_id)
            if execution is None or execution["invocation_id"] != invocation.invocation_id:
                return None  # a zombie: someone else took over; its report is void
            num = int(execution["num"])
            batch = Batch(tx, execution, now, tx.last_key(num))
            done = H.with_details(H.base_event("InvocationCompleted", None, now), {
                "StartTimestamp": invocation.started_at, "EndTimestamp": now, "RequestId": invocation.invocation_id})
            batch.event(done)
            fields: dict[str, Any] = {"invocation_id": None, "invocation_started": None, "lease_owner": None,
                                      "lease_expires": None}
            if execution["info"] and STALLED in execution["info"]:
                info = read_info(execution["info"])
                if info.pop(STALLED, None) is not None:  # it ran again: whatever held it back is fixed
                    fields["info"] = json.dumps(info) if info else None
            if execution["status"] != ExecutionStatus.RUNNING.value:
                batch.flush(**fields)  # stopped (or completed through an EXECUTION update) meanwhile
                return None
            # An operation that completed while this invocation ran (a timer, a callback answer, a
            # chained target finishing) marked the execution runnable: PENDING is right, it re-runs.
            if output.Status == InvocationStatus.PENDING and not execution["runnable"] and \
                    not tx.has_pending_work(num):
                output = InvocationOutput(Status=InvocationStatus.FAILED, Error=ErrorObject(
                    ErrorType="InvalidParameterValueException",
                    ErrorMessage="Cannot return PENDING status with no pending operations."))
            if output.Status == InvocationStatus.SUCCEEDED:
                return self._finish(batch, ExecutionStatus.SUCCEEDED, result=output.Result, fields=fields)
            if output.Status == InvocationStatus.FAILED:
                return self._finish(batch, ExecutionStatus.FAILED, error=output.Error or ErrorObject(), fields=fields)
            batch.flush(**fields)
            return None

    def _finish(self, batch: Batch, status: ExecutionStatus, *, result: str | None = None,
                error: ErrorObject | None = None, fields: dict[str, Any]) -> dict[str, Any]:
        """End the execution; returns its row as written."""
        execution = batch.execution
        if status == ExecutionStatus.SUCCEEDED:
            if result == "" and execution.get("result"):
                result = execution["result"]  # large result checkpointed through EXECUTION SUCCEED
            event = H.with_details(H.base_event("ExecutionSucceeded", None, batch.now),
                                   {"Result": H.stored_payload(result, "execution")})
        elif status == ExecutionStatus.STOPPED:
            event = H.with_details(H.base_event("ExecutionStopped", None, batch.now), {"Error": H.error_payload(error)})
        elif status == ExecutionStatus.TIMED_OUT:
            event = H.with_details(H.base_event("ExecutionTimedOut", None, batch.now), {"Error": H.error_payload(error)})
        else:
            event = H.with_details(H.base_event("ExecutionFailed", None, batch.now), {"Error": H.error_payload(error)})
        event.update({"Id": execution["id"], "Name": execution["name"]})
        batch.event(event)
        batch.tx.clear_due(batch.num)
        written = dict(status=status.value, result=result,
                       error=error.model_dump_json(exclude_none=True) if error is not None else None,
                       ended_at=batch.now, runnable=0, **fields)
        batch.flush(**written)
        if execution.get("parent_execution"):
            self._complete_parent_invoke(batch.tx, execution, status, result, error)
        return {**execution, **written}

    def _complete_parent_invoke(self, tx: Tx, execution: dict[str, Any], status: ExecutionStatus,
                                result: str | None, error: ErrorObject | None) -> None:
        """Chained invoke: the caller's CHAINED_INVOKE operation completes with the target's outcome."""
        parent = tx.execution(execution["parent_execution"], light=True)
        if parent is None or parent["status"] != ExecutionStatus.RUNNING.value:
            return
        num = int(parent["num"])
        key = op_key(execution["parent_operation"])
        row = tx.latest_rows(num, [key]).get(key)
        if row is None or row.status != OperationStatus.STARTED.value:
            return
        batch = Batch(tx, parent, self.now(), tx.last_key(num))
        op = load_operation(row)
        outcome = {ExecutionStatus.SUCCEEDED: (OperationStatus.SUCCEEDED, "ChainedInvokeSucceeded"),
                   ExecutionStatus.FAILED: (OperationStatus.FAILED, "ChainedInvokeFailed"),
                   ExecutionStatus.TIMED_OUT: (OperationStatus.TIMED_OUT, "ChainedInvokeTimedOut"),
                   ExecutionStatus.STOPPED: (OperationStatus.STOPPED, "ChainedInvokeStopped")}[status]
        ok = status == ExecutionStatus.SUCCEEDED
        details = ChainedInvokeDetails(Result=result if ok else None, Error=None if ok else error)
        batch.put(op.model_copy(update={"Status": outcome[0], "EndTimestamp": batch.now,
                                        "ChainedInvokeDetails": details}), row, H.codes(outcome[1]))
        batch.flush(runnable=1)

    def _start_chained_invoke(self, batch: Batch, update: OperationUpdate, row: JournalRow | None) -> None:
        """Start the target as an execution of its own in this store (its own history, listed by
        ``duragent list``); the caller's operation completes when it finishes."""
        assert update.ChainedInvokeOptions is not None
        options = update.ChainedInvokeOptions
        now = batch.now
        caller = batch.execution["id"]
        child_id = hashlib.blake2b(f"{caller}-{update.Id}".encode()).hexdigest()[:32]
        resolved = self.resolve_function(options.FunctionName) if self.resolve_function else None
        base: dict[str, Any] = dict(Id=update.Id, ParentId=update.ParentId, Name=update.Name, Type=update.Type,
                    SubType=update.SubType)
        started: dict[str, Any] = {"FunctionName": options.FunctionName, "Input": H.payload(update.Payload)}
        if options.TenantId:
            started["TenantId"] = options.TenantId
        if resolved is None:
            error = ErrorObject(ErrorType="ResourceNotFoundException",
                                ErrorMessage=f"function {options.FunctionName!r} is not registered with this runtime")
            op = Operation(**base, Status=OperationStatus.FAILED, StartTimestamp=now, EndTimestamp=now,
                           ChainedInvokeDetails=ChainedInvokeDetails(Error=error))
            batch.put(op, row, H.codes("ChainedInvokeStarted", "ChainedInvokeFailed"),
                      extra={"ChainedInvokeStarted": started})
            return
        function, target = resolved
        self._insert_execution(batch.tx, now, function=function, target=target, input_json=update.Payload or "null",
                               execution_id=child_id, name=f"{update.Name or function}-{child_id[:8]}",
                               parent=(caller, update.Id), tenant_id=options.TenantId)
        started.update({"ExecutedVersion": "$LATEST", "DurableExecutionArn": local_arn(function, child_id)})
        op = Operation(**base, Status=OperationStatus.STARTED, StartTimestamp=now,
                       ChainedInvokeDetails=ChainedInvokeDetails())
        batch.put(op, row, H.codes("ChainedInvokeStarted"), extra={"ChainedInvokeStarted": started})

    def stop(self, execution_id: str, error: ErrorObject | None = None) -> None:
        now = self.now()
        with self.store.transaction() as tx:
            execution = tx.execution(execution_id)
            if execution is None:
                raise ExecutionNotFoundError(f"no execution {execution_id!r}; `duragent list` shows the ids")
            if execution["status"] != ExecutionStatus.RUNNING.value:
                raise UsageError(f"execution {execution_id} is already {execution['status']}; only a RUNNING "
                                 "execution can be stopped")
            batch = Batch(tx, execution, now, tx.last_key(int(execution["num"])))
            self._finish(batch, ExecutionStatus.STOPPED,
                         error=error or ErrorObject(ErrorType="ExecutionStopped", ErrorMessage="stopped by request"),
                         fields={"invocation_id": None, "lease_owner": None, "lease_expires": None})

    # -- the checkpoint API ---------------------------------------------------------------------
    def get_state(self, arn: str, token: str, marker: str | None) -> StateResponse:
        _, num, _, _ = decode_token(token)
        return StateResponse(list(self.stored_operations(num).values()), None)  # type: ignore[arg-type]

    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        try:
            return self._checkpoint(arn, token, updates)
        except sqlite3.Error as exc:  # rolled back whole: nothing half-written, nothing lost
            raise RetryableCheckpointError(f"the store could not take the checkpoint ({exc}); the "
                                           "invocation will be retried") from exc

    def _checkpoint(self, arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        execution_id, num, invocation, seen = decode_token(token)
        lo, hi = key_range(num)
        if execution_id != execution_id_of(arn) or not lo < seen <= hi:
            raise InvalidCheckpointTokenError("Invalid checkpoint token: it belongs to another execution")
        now = self.now()
        known = self._known.get((num, invocation))
        if known is not None and len(updates) == 2 and is_new_step(updates, known):
            response = self._new_step(execution_id, num, invocation, seen, now, updates, known)
            if response is not None:
                return response
        with self.store.transaction() as tx:
            # Rows after the token: the service's own changes meanwhile (a timer, a callback answer),
            # to report; a row of this invocation there means the token was used already.
            view, since = tx.checkpoint_view(num, seen)
            if view is None or view[0] != execution_id or view[1] != _RUNNING or \
                    view[2] != invocation or view[3] is None:
                raise InvalidCheckpointTokenError(
                    "Invalid checkpoint token: a newer invocation owns this execution, or it has ended")
            if any(r.inv == invocation for r in since):
                raise InvalidCheckpointTokenError("Invalid checkpoint token: it was used already; each "
                                                  "checkpoint returns the token for the next")
            batch = Batch(tx, {"id": execution_id, "num": num}, now, since[-1].k if since else seen,
                          invocation=invocation)
            if known is not None:
                for change in since:  # the service's changes meanwhile: the index learns them first
                    if change.op is not None and change.type is not None:
                        known[op_id_of(change.op)] = change.k
            existing = self._existing(tx, num, updates, known)
            validate_batch(updates, existing)
            merged = False
            for index, update in enumerate(updates):
                if merged:
                    merged = False
                    continue
                if update.Type == OperationType.EXECUTION:
                    batch.execution = tx.execution(execution_id) or batch.execution
                    self._execution_update(batch, update)
                    return CheckpointResponse(token=None, operations=[])
                row = batch.latest.get(update.Id) or existing.get(update.Id)
                if merged_start(updates, index):
                    succeed_step(batch, updates[index + 1], row, started=True)
                    merged = True
                    continue
                apply_update(batch, update, row, self._start_chained_invoke)
            changed: list[Any] = list(batch.ops.values())
            if since:
                mine = set(batch.ops)
                outside: dict[str | bytes, JournalRow] = {r.op: r for r in since if r.op is not None}
                changed.extend(stored_operation(r) for r in outside.values() if op_id_of(r.op or "") not in mine)
            batch.flush()
        if known is not None:  # committed: the index learns this batch's rows
            for op_id, row in batch.latest.items():
                known[op_id] = row.k
        return CheckpointResponse(token=encode_token(execution_id, num, invocation, batch.last_key), operations=changed)

    def _new_step(self, execution_id: str, num: int, invocation: int, seen: int, now: float,
                  updates: list[OperationUpdate], known: dict[str, Any]) -> CheckpointResponse | None:
        """A new step's START and SUCCEED (most checkpoints): one guarded INSERT, no read first. The
        row takes the key right after the token's; if the service appended anything meanwhile (a
        timer, a callback answer, or this very token's earlier use) that key is taken, and None
        sends the batch down the full path, which reads those rows. The INSERT happens only while
        this invocation still owns the execution."""
        check_texts(updates)
        try:
            with self.store.transaction() as tx:
                batch = Batch(tx, {"id": execution_id, "num": num}, now, seen, invocation=invocation)
                succeed_step(batch, updates[1], None, started=True)
                row = batch.rows[0]
                if not tx.append_if_owned(row, num, invocation):
                    raise InvalidCheckpointTokenError(
                        "Invalid checkpoint token: a newer invocation owns this execution, or it has ended")
        except sqlite3.IntegrityError:
            return None
        known[updates[1].Id] = row.k
        changed: list[Any] = list(batch.ops.values())
        return CheckpointResponse(token=encode_token(execution_id, num, invocation, row.k), operations=changed)

    def _existing(self, tx: Tx, num: int, updates: list[OperationUpdate],
                  known: dict[str, StoredOperation | int] | None) -> dict[str, JournalRow]:
        """The latest row of each operation the updates name (themselves and their parents)."""
        wanted: set[str] = set()
        for update in updates:
            wanted.add(update.Id)
            if update.ParentId:
                wanted.add(update.ParentId)
        if known is None:  # not claimed through this service: look them up in the journal
            keys = {op_key(i): i for i in wanted}
            return {keys[k]: r for k, r in tx.latest_rows(num, list(keys)).items()}
        found = [_row_key(known[i]) for i in wanted if i in known]
        return {op_id_of(r.op or ""): r for r in tx.rows(found)} if found else {}

    def _execution_update(self, batch: Batch, update: OperationUpdate) -> None:
        fields = {"invocation_id": batch.execution["invocation_id"]}
        if update.Action == OperationAction.SUCCEED:
            self._finish(batch, ExecutionStatus.SUCCEEDED, result=update.Payload, fields=fields)
        else:
            self._finish(batch, ExecutionStatus.FAILED, error=update.Error or ErrorObject(), fields=fields)

    # -- the outside world --------------------------------------------------------------------
    def _callback_row(self, tx: Tx, callback_id: str) -> JournalRow:
        row = tx.row_by_callback(callback_id)
        if row is None:
            raise CallbackNotFoundError(f"unknown callback id {callback_id!r}; `duragent list --pending` shows "
                                        "the callbacks that await an answer")
        if not row.pending:
            assert row.op is not None
            latest = tx.latest_rows(row.num, [row.op]).get(row.op, row)
            raise CallbackNotFoundError(f"callback {callback_id[:24]}… has already completed ({latest.status}); "
                                        "it cannot be answered again")
        return row

    def _answerable(self, tx: Tx, callback_id: str) -> tuple[JournalRow, dict[str, Any]]:
        row = self._callback_row(tx, callback_id)
        execution = tx.execution_by_num(row.num)
        assert execution is not None
        if execution["status"] != ExecutionStatus.RUNNING.value:
            raise CallbackNotFoundError(f"callback {callback_id[:24]}… belongs to execution "
                                        f"{execution['id']}, which is {execution['status']}")
        return row, execution

    def pending_callback(self, callback_id: str) -> tuple[str, Operation]:
        """(execution id, operation) of a callback that can be answered now; otherwise the
        CallbackNotFoundError that answering it would raise. Nothing is written."""
        with self.store.transaction(write=False) as tx:
            row, execution = self._answerable(tx, callback_id)
            return str(execution["id"]), load_operation(row)

    def complete_callback(self, callback_id: str, *, result: str | None = None,
                          error: ErrorObject | None = None) -> str:
        """Answer a callback (success when ``error`` is None). Returns the execution id. The answer
        is checked first: the result must be strict JSON in UTF-8, the error valid text."""
        if error is None and result is not None:
            check_json_text(result, "the callback result")
        if error is not None:
            check_error_text(error, "the callback error")
        now = self.now()
        with self.store.transaction() as tx:
            row, execution = self._answerable(tx, callback_id)
            batch = Batch(tx, execution, now, tx.last_key(row.num))
            current = load_operation(row)
            details = CallbackDetails(CallbackId=callback_id, Result=result if error is None else None, Error=error)
            status = OperationStatus.SUCCEEDED if error is None else OperationStatus.FAILED
            op = current.model_copy(update={"Status": status, "EndTimestamp": now, "CallbackDetails": details})
            batch.put(op, row, H.codes("CallbackSucceeded" if error is None else "CallbackFailed"))
            batch.flush(runnable=1)
            return str(execution["id"])

    def heartbeat_callback(self, callback_id: str) -> str:
        now = self.now()
        with self.store.transaction() as tx:
            row = self._callback_row(tx, callback_id)
            if row.heartbeat_seconds:
                tx.set_due(row.k, callback_due(row.timeout_at, row.heartbeat_seconds, now))
            return tx.execution_id(row.num) or ""

    # -- timers -------------------------------------------------------------------------------
    def fire_due(self) -> int:
        """Complete every timer that is due: waits end, retries become READY, callbacks time out.
        Not fsynced on its own: a timer whose firing a power cut takes fires again."""
        now = self.now()
        fired = 0
        due = self.next_due()
        if due is None or due > now:
            return 0  # the common case costs one indexed read, not a write transaction
        with self.store.transaction(durable=False) as tx:
            rows = tx.due_rows(now)
            by_execution: dict[int, list[JournalRow]] = {}
            for row in rows:
                by_execution.setdefault(row.num, []).append(row)
            for num, op_rows in by_execution.items():
                execution = tx.execution_by_num(num, light=True)
                if execution is None or execution["status"] != ExecutionStatus.RUNNING.value:
                    tx.clear_due(num)
                    continue
                with tx.savepoint() as ok:
                    batch = Batch(tx, execution, now, tx.last_key(num))
                    for row in op_rows:
                        self._fire(batch, row)
                    batch.flush(runnable=1)
                if ok:
                    fired += len(op_rows)
                else:  # a row that does not read back: the others' timers still fire
                    log.error("the timers of %s cannot fire (%s); they are tried again in %.0f s",
                              execution["id"], ok.error, UNREADABLE_RETRY_SECONDS)
                    tx.postpone_due(num, now, now + UNREADABLE_RETRY_SECONDS)
            for execution_id in tx.timed_out_executions(now):
                execution = tx.execution(execution_id)
                assert execution is not None
                batch = Batch(tx, execution, now, tx.last_key(int(execution["num"])))
                error = ErrorObject(ErrorType="Execution.TimedOut",
                                    ErrorMessage="the execution ran past its timeout")
                self._finish(batch, ExecutionStatus.TIMED_OUT, error=error,
                             fields={"invocation_id": None, "lease_owner": None, "lease_expires": None})
                fired += 1
        return fired

    def _fire(self, batch: Batch, row: JournalRow) -> None:
        op = load_operation(row)
        now = batch.now
        if op.Type == OperationType.WAIT and op.Status == OperationStatus.STARTED:
            done = op.model_copy(update={"Status": OperationStatus.SUCCEEDED, "EndTimestamp": now})
            batch.put(done, row, H.codes("WaitSucceeded"))
        elif op.Type == OperationType.STEP and op.Status == OperationStatus.PENDING:
            batch.put(op.model_copy(update={"Status": OperationStatus.READY}), row)
        elif op.Type == OperationType.CALLBACK and op.Status == OperationStatus.STARTED:
            # The deadline that came due first decides the error, even when the timer fires late.
            deadline = row.due_at if row.due_at is not None else now
            timed_out = row.timeout_at is not None and row.timeout_at <= deadline + 1e-9
            kind = "Callback.Timeout" if timed_out else "Callback.Heartbeat"
            message = "Callback timed out" if timed_out else "Callback timed out on heartbeat"
            error = ErrorObject(ErrorType=kind, ErrorMessage=message)
            details = CallbackDetails(CallbackId=row.callback_id, Error=error)
            batch.put(op.model_copy(update={"Status": OperationStatus.TIMED_OUT, "EndTimestamp": now,
                                            "CallbackDetails": details}), row, H.codes("CallbackTimedOut"))
        else:
            batch.tx.set_due(row.k, None)

    def next_due(self) -> float | None:
        with self.store.reading() as tx:
            return tx.next_due()


def _row_key(entry: StoredOperation | int) -> int:
    """The journal key of an operation's latest row, from the service's index of a running invocation."""
    return entry if entry.__class__ is int else entry.k  # type: ignore[return-value,union-attr]
