"""LocalRuntime: the embedded default. A SQLite file, a scheduler and a worker loop in-process.

Nothing sleeps per execution: a suspended execution is rows in SQLite. The worker loop fires due
timers, claims runnable executions under a lease, runs one invocation each, and otherwise sleeps
until the next due timer (or until poked).
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import inspect
import json
import logging
import sqlite3
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Duration
from ..errors import (
    HandlerNotFoundError,
    InvalidCheckpointTokenError,
    RetryableCheckpointError,
    SerializationError,
    StoreError,
    UnreadableOperation,
    UsageError,
)
from ..events import EventStream
from ..execution import run_invocation
from ..jsontext import check_json_text
from ..live import hub_for
from ..model import ErrorObject, InvocationOutput, InvocationStatus, Operation
from ..operations._common import error_object
from ..plugins import Hooks
from ..registry import DurableFunction, function_name, registered, resolve_target
from ..serdes import dumps
from .aio import AsyncRuntime, WakeSignal
from .clock import Clock, RealClock, VirtualClock
from .faults import describe_store_error
from .leases import owner_id, owner_is_gone
from .service import (
    STALLED,
    UNREADABLE_RETRY_SECONDS,
    Invocation,
    LocalService,
    UnreadableExecutionError,
    read_info,
)
from .store import Store

log = logging.getLogger("duragent.durable.local")

DEFAULT_DB = ".duragent/duragent.db"


@dataclass
class ExecutionInfo:
    """What ``LocalRuntime.get`` reports about one execution."""

    id: str
    function: str
    name: str
    status: str
    """AWS ExecutionStatus: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, STOPPED."""
    result: Any
    """The decoded JSON result (None until SUCCEEDED)."""
    error: dict[str, Any] | None
    input: Any
    started_at: float
    ended_at: float | None
    invocations: int
    parent_execution: str | None = None
    handler_version: str | None = None
    """Content hash of the handler's source when the execution started (what code it began on)."""
    stalled: dict[str, Any] | None = None
    """Why a RUNNING execution cannot run now, while it waits for a retry: its handler does not
    import (a worker in the wrong directory, a half-written deploy...). ``reason``, ``error`` (the
    ErrorObject), ``attempts``, ``since``, ``at`` and ``retry_at`` (epoch seconds). None once an
    invocation runs again."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _once_per_function(compute: Callable[[Callable[..., Any]], str | None]) -> Callable[[Callable[..., Any]], str | None]:
    """Remember ``compute(fn)`` per function (a bounded number of them; unhashable callables are
    simply computed each time)."""
    cache: dict[Callable[..., Any], str | None] = {}

    @functools.wraps(compute)
    def remembered(fn: Callable[..., Any]) -> str | None:
        try:
            return cache[fn]
        except KeyError:
            value = compute(fn)
            if len(cache) < 1024:
                cache[fn] = value
            return value
        except TypeError:
            return compute(fn)

    return remembered


@_once_per_function
def handler_target(fn: Callable[..., Any]) -> str | None:
    """An import reference another process can load: ``module:qualname`` or ``file.py:name``
    (worked out once per function: it may read the file system)."""
    inner = fn.fn if isinstance(fn, DurableFunction) else fn
    module = getattr(inner, "__module__", None)
    qualname = getattr(inner, "__qualname__", "")
    attr = fn.__name__ if isinstance(fn, DurableFunction) else qualname
    if "<" in qualname:
        return None
    loaded = sys.modules.get(module) if module else None
    if loaded is not None and getattr(loaded, attr, None) is not fn:
        # a function made by a factory (agents.conversation): found under the name it was bound to
        attr = next((key for key, value in vars(loaded).items() if value is fn), attr)
    if module and module != "__main__" and not module.startswith("_duragent_target_"):
        return f"{module}:{attr}"
    path = getattr(loaded, "__file__", None)
    if path is None:
        try:
            path = inspect.getfile(inner)
        except TypeError:
            return None
    return f"{Path(path).resolve()}:{attr}"


@_once_per_function
def handler_version(fn: Callable[..., Any]) -> str | None:
    """A content hash of the handler's module source, recorded with each execution so that the
    code an execution started on can be told apart from the code now deployed (hashed once per
    function and process: the source of loaded code does not change under it)."""
    inner = fn.fn if isinstance(fn, DurableFunction) else fn
    try:
        source = inspect.getsource(inspect.getmodule(inner) or inner)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()[:16]


class LocalRuntime(AsyncRuntime):
    """Run durable functions on a SQLite file.

    ``LocalRuntime(db="app.db")`` persists; ``clock=VirtualClock()`` makes time skip for tests;
    ``durability="process"`` trades power-loss safety for faster checkpoints. From asyncio code,
    ``await runtime.serve()`` and the ``a``-prefixed methods (aio.py) never block the loop.
    """

    def __init__(self, db: str | Path = DEFAULT_DB, *, clock: Clock | None = None, durability: str = "full",
                 functions: dict[str, Callable[..., Any]] | list[Callable[..., Any]] | None = None,
                 lease_seconds: float = 30.0, plugins: list[Any] | None = None) -> None:
        self.clock: Clock = clock or RealClock()
        self.store = Store(db, durability=durability)
        self.service = LocalService(self.store, self.clock.now)
        self.service.live = self.live = hub_for(str(db))
        self.lease_seconds = lease_seconds
        self.owner = owner_id()
        self.plugins = list(plugins or [])
        self._lease_renewer: _LeaseRenewer | None = None
        self.retry_delay = 2.0
        """Seconds before an invocation that could not checkpoint (the store was unusable) is retried."""
        self.service.resolve_function = self._resolvable
        self._functions: dict[str, Callable[..., Any]] = {}
        self._targets: dict[str, Callable[..., Any]] = {}
        self._wake = WakeSignal()
        for name, fn in (functions.items() if isinstance(functions, dict) else
                         ((function_name(f), f) for f in functions or [])):
            self.register(fn, name)

    # -- functions ----------------------------------------------------------------------------
    def register(self, fn: Callable[..., Any], name: str | None = None) -> str:
        name = name or function_name(fn)
        self._functions[name] = fn
        return name

    def _resolvable(self, function: str) -> tuple[str, str | None] | None:
        """For chained invoke: (name, import target) of a function this runtime can run, or None."""
        fn = self._functions.get(function) or registered(function)
        if fn is None:
            return None
        return function, handler_target(fn)

    def _handler(self, function: str, target: str | None) -> Callable[..., Any]:
        fn = self._functions.get(function) or registered(function)
        if fn is not None:
            return fn
        if target:
            fn = self._targets.get(target)
            if fn is None:
                fn = self._targets[target] = resolve_target(target)  # imported once, not per invocation
            return fn
        raise HandlerNotFoundError(f"no handler registered for function {function!r}; register it with "
                                   "LocalRuntime(functions=[...]) or @durable_function")

    # -- executions ---------------------------------------------------------------------------
    def start(self, fn_or_name: Callable[..., Any] | str, input: Any = None, execution_id: str | None = None,
              *, name: str | None = None, target: str | None = None,
              timeout: Duration | float | None = None) -> str:
        """Create an execution (nothing runs until a worker or ``run_until_idle`` picks it up).
        ``timeout``: the execution ends TIMED_OUT if it has not finished by then."""
        return self._start(fn_or_name, input, execution_id, name=name, target=target, timeout=timeout)[0]

    def _start(self, fn_or_name: Callable[..., Any] | str, input: Any = None, execution_id: str | None = None,
               *, name: str | None = None, target: str | None = None, timeout: Duration | float | None = None,
               claim: bool = False) -> tuple[str, Invocation | None]:
        """``start``; with ``claim``, a new execution is created leased to this runtime with its first
        invocation open (returned), to be run here at once."""
        if isinstance(fn_or_name, str):
            function = fn_or_name
            if function not in self._functions and registered(function) is None and target is None:
                raise HandlerNotFoundError(f"unknown function {function!r}; pass the function itself or "
                                           "register it first")
        else:
            function = self.register(fn_or_name)
            target = target or handler_target(fn_or_name)
        if execution_id is not None:
            _check_execution_id(execution_id)
        try:
            input_json = dumps(input)
        except SerializationError as exc:
            raise UsageError(f"execution input must be JSON: {exc}") from None
        timeout_seconds = Duration.of(timeout).seconds if timeout is not None else None
        version = handler_version(fn_or_name) if not isinstance(fn_or_name, str) else None
        execution_id, _, invocation = self.service.start_and_claim(
            function=function, target=target, input_json=input_json, execution_id=execution_id, name=name,
            timeout_seconds=timeout_seconds, info={"handler_version": version} if version else None,
            claim=(self.owner, self.lease_seconds) if claim else None)
        self._wake.set()
        return execution_id, invocation

    def get(self, execution_id: str) -> ExecutionInfo:
        row = self.service.execution(execution_id)
        return _info(row)

    def history(self, execution_id: str) -> builtins.list[dict[str, Any]]:
        return self.service.history(execution_id)

    def operations(self, execution_id: str) -> builtins.list[Operation]:
        return self.service.operations(execution_id)

    def events(self, execution_id: str, *, after: int = 0, live: bool = True, poll: float = 0.05,
               timeout: float | None = None) -> EventStream:
        """Follow an execution: its durable events from ``after`` (a cursor) on, and its live events
        (text as it is generated) while ``live``; ``for`` or ``async for`` over it. It ends after the
        execution ends. Works from any process: a worker elsewhere may be running the execution."""
        self.service.execution(execution_id)  # an unknown id fails now, not on first iteration
        return EventStream(self.service, execution_id, hub=self.live if live else None, after=after, poll=poll,
                           timeout=timeout)

    def list(self, *, status: str | None = None, function: str | None = None, limit: int = 100,
             offset: int = 0) -> list[dict[str, Any]]:
        """Executions, newest first: ``limit`` of them after skipping ``offset`` (``count`` gives the total)."""
        return self.service.list_executions(status=status, function=function, limit=limit, offset=offset)

    def count(self, *, status: str | None = None, function: str | None = None) -> int:
        """How many executions ``list`` would page through with the same filters."""
        return self.service.count_executions(status=status, function=function)

    def stop(self, execution_id: str, error: ErrorObject | None = None) -> None:
        self.service.stop(execution_id, error)

    # -- callbacks ----------------------------------------------------------------------------
    def send_callback_success(self, callback_id: str, result: str | bytes | None = None) -> str:
        """Answer a callback. ``result`` is the JSON text the outside world sent (stored verbatim);
        text that is not strict JSON in UTF-8 is refused with ``SerializationError``."""
        if isinstance(result, bytes):
            result = check_json_text(result, "the callback result")
        execution_id = self.service.complete_callback(callback_id, result=result)
        self._wake.set()
        return execution_id

    def send_callback_failure(self, callback_id: str, error: ErrorObject | dict[str, Any] | str | None = None) -> str:
        if isinstance(error, str) or error is None:
            error = ErrorObject(ErrorType="CallbackFailure", ErrorMessage=error or "callback failed")
        elif isinstance(error, dict):
            error = ErrorObject.model_validate(error)
        execution_id = self.service.complete_callback(callback_id, error=error)
        self._wake.set()
        return execution_id

    def send_callback_heartbeat(self, callback_id: str) -> str:
        return self.service.heartbeat_callback(callback_id)

    def pending_callbacks(self, *, limit: int | None = None, offset: int = 0,
                          execution_id: str | None = None) -> builtins.list[tuple[str, Operation, str]]:
        """(execution id, callback operation, callback id) of callbacks awaiting an answer, oldest
        execution first: all of them, or a page (``limit`` after ``offset``)."""
        return self.service.pending_callbacks(limit, offset, execution_id)

    def count_pending_callbacks(self, *, execution_id: str | None = None) -> int:
        return self.service.count_pending_callbacks(execution_id)

    def pending_callback(self, callback_id: str) -> tuple[str, Operation]:
        """(execution id, callback operation) of a callback that awaits an answer; otherwise the
        CallbackNotFoundError that answering it would raise (unknown, answered, execution ended)."""
        return self.service.pending_callback(callback_id)

    # -- running ------------------------------------------------------------------------------
    def wake(self) -> None:
        """Wake a sleeping ``worker`` loop at once (to notice new work, or that it should stop)."""
        self._wake.set()

    def run_once(self, execution_id: str | None = None) -> bool:
        """Fire due timers and run one invocation if any execution is runnable (with
        ``execution_id``: only that execution or one it invoked, directly or not)."""
        invocation = self._claim(family=execution_id)
        if invocation is None:
            return False
        self._invoke(invocation)
        return True

    def drive(self, execution_id: str, stop: threading.Event | None = None, *, max_sleep: float = 1.0) -> int:
        """Run one execution's invocations (and those of the executions it invokes) as it becomes
        runnable (timers, retries, answers) until it ends or ``stop`` is set; other executions in
        the store are left to workers. Returns how many invocations ran. For a foreground program
        attached to one execution (``duragent chat``)."""
        stop = stop or threading.Event()
        count = 0
        while not stop.is_set():
            try:
                ran = self.run_once(execution_id)
            except sqlite3.Error as exc:
                fault = describe_store_error(exc, self.store.path)
                if not fault.transient:
                    raise fault from None  # read-only, damaged: retrying cannot help
                log.warning("%s; retrying in %.0f s", fault, self.retry_delay)
                self.clock.sleep(self.retry_delay, stop)
                continue
            if ran:
                count += 1
                continue
            if self.service.execution(execution_id)["status"] != "RUNNING":
                break
            due = self.service.next_due()
            delay = max_sleep if due is None else min(max_sleep, max(0.0, due - self.clock.now()))
            self._wake.clear()
            if self.clock.virtual:  # virtual time moves only when a test says so: wait for a poke
                self._wake.wait(min(delay, 0.05) or 0.05)
            else:
                self.clock.sleep(delay, self._wake)
        return count

    def _claim(self, *, family: str | None = None) -> Invocation | None:
        """Fire due timers and claim a runnable execution (after freeing the leases of owners that
        are provably gone, if there is none). An execution whose stored state does not read back
        is set aside, with the reason, and the next one is tried."""
        if self.service.idle():
            return None
        self.service.fire_due()
        for _ in range(_SET_ASIDE_PER_CLAIM):
            try:
                invocation = self.service.claim(self.owner, self.lease_seconds, family=family)
                if invocation is None and self.service.release_dead_leases(owner_is_gone):
                    invocation = self.service.claim(self.owner, self.lease_seconds, family=family)
                return invocation
            except UnreadableExecutionError as exc:
                self._set_aside(exc.execution_id, exc.cause)
        return None

    def run_until_idle(self, *, skip_time: bool | None = None, until: float | None = None,
                       max_invocations: int = 100_000, execution_id: str | None = None) -> int:
        """Run invocations until nothing is runnable. With a virtual clock (or ``skip_time=True``
        on one) time jumps to the next due timer, so waits finish at once; ``until`` caps that.
        ``execution_id`` drives only that execution and the executions it invokes."""
        skip = self.clock.virtual if skip_time is None else skip_time
        count = 0
        while count < max_invocations:
            if self.run_once(execution_id=execution_id):
                count += 1
                continue
            if not skip or not isinstance(self.clock, VirtualClock):
                break
            due = self.service.next_due()
            if due is None or (until is not None and due > until):
                if until is not None:
                    self.clock.advance_to(until)
                break
            self.clock.advance_to(due)
        return count

    def run(self, fn_or_name: Callable[..., Any] | str, input: Any = None, execution_id: str | None = None) -> ExecutionInfo:
        """Start and drive to completion or suspension: handy in scripts and tests. A new execution's
        first invocation is opened by the start itself (one commit fewer than a separate claim)."""
        execution_id, invocation = self._start(fn_or_name, input, execution_id, claim=True)
        ended = self._invoke(invocation) if invocation is not None else None
        if self.run_until_idle() or ended is None:
            return self.get(execution_id)
        return _info(ended)  # it ended in that invocation and nothing ran since: its row as written

    def worker(self, stop: threading.Event | None = None, *, idle_exit: bool = False, max_sleep: float = 1.0) -> int:
        """Serve every execution in the store until ``stop`` is set (or, with ``idle_exit``,
        until nothing is runnable now). Sleeps until the next due timer, never polls hard."""
        stop = stop or threading.Event()
        count = 0
        fault = self._write_fault()
        if fault is not None:
            raise fault  # a worker must write (claims, timers): say why it cannot, rather than idle
        while not stop.is_set():
            try:
                ran = self.run_once()
            except sqlite3.Error as exc:  # a full disk or a locked file: wait and try again
                fault = describe_store_error(exc, self.store.path)
                if not fault.transient:
                    raise fault from None  # read-only, damaged: retrying cannot help; say why and stop
                log.warning("%s; retrying in %.0f s", fault, self.retry_delay)
                self.clock.sleep(self.retry_delay, stop)
                continue
            except Exception:  # a bug of ours: log it, never let it end the worker
                log.exception("the worker loop met an unexpected error; retrying in %.0f s", self.retry_delay)
                self.clock.sleep(self.retry_delay, stop)
                continue
            if ran:
                count += 1
                continue
            if idle_exit:
                break
            due = self.service.next_due()
            delay = max_sleep if due is None else min(max_sleep, max(0.0, due - self.clock.now()))
            self._wake.clear()
            self.clock.sleep(delay, self._wake)
        return count

    def _write_fault(self) -> StoreError | None:
        try:
            self.store.check_writable()
        except StoreError as exc:
            return None if exc.transient else exc
        return None

    def _invoke(self, invocation: Invocation) -> dict[str, Any] | None:
        """Run one invocation; returns the execution's row as written if it ended the execution."""
        try:
            handler = self._handler(invocation.function, invocation.target)
        except (Exception, SystemExit) as exc:  # not importable now (wrong directory, a deploy half-written...)
            self._stall(invocation, exc)
            return None
        renewer = self._renewer()
        if renewer is not None:
            renewer.hold(invocation.execution_id)
        try:
            plugins = [*getattr(handler, "plugins", []), *self.plugins]
            output = run_invocation(handler, invocation.input, self.service, now=self.clock.now,
                                    hooks=Hooks(plugins) if plugins else None)
        except InvalidCheckpointTokenError:
            log.warning("invocation of %s lost its lease to another worker; abandoning it", invocation.execution_id)
            return None
        except UnreadableOperation as exc:  # replay reached a damaged row: set aside, never failed
            self._stall(invocation, exc.cause)
            return None
        except RetryableCheckpointError as exc:
            log.warning("invocation of %s could not checkpoint (%s); it will be retried", invocation.execution_id,
                        exc)
            self._abandon(invocation)
            return None
        except Exception as exc:  # a bug below the handler: report it as a failed invocation
            log.exception("invocation of %s crashed", invocation.execution_id)
            output = InvocationOutput(Status=InvocationStatus.FAILED, Error=error_object(exc))
        finally:
            if renewer is not None:
                renewer.release(invocation.execution_id)
        return self._end(invocation, output)

    def _end(self, invocation: Invocation, output: InvocationOutput) -> dict[str, Any] | None:
        """Record the invocation's outcome (returns the execution's row as written if it ended). An
        outcome the store cannot take fails the execution with the reason; nothing that happens here
        ends the worker."""
        try:
            return self.service.end_invocation(invocation, output, self.owner)
        except sqlite3.Error as exc:  # the outcome will be recomputed by replay when the store is back
            log.warning("could not record the end of %s's invocation (%s); it will be retried",
                        invocation.execution_id, exc)
            self._abandon(invocation)
            return None
        except Exception as exc:
            log.exception("could not record the outcome of %s's invocation; failing the execution",
                          invocation.execution_id)
            failed = InvocationOutput(Status=InvocationStatus.FAILED, Error=error_object(SerializationError(
                f"the invocation's outcome could not be stored ({type(exc).__name__}: {exc})")))
        try:
            return self.service.end_invocation(invocation, failed, self.owner)
        except Exception as exc:
            log.exception("could not record the failure of %s either; setting it aside", invocation.execution_id)
            self._stall(invocation, exc)
            return None

    def _stall(self, invocation: Invocation, exc: BaseException) -> None:
        """The invocation cannot run now: close it with the reason, keep the execution waiting,
        and let it be claimed again after a backoff (so a fixed deploy resumes it)."""
        error = error_object(exc)
        try:
            stalled = self.service.stall(invocation.execution_id, self.owner, error, base_delay=self.retry_delay,
                                         invocation_id=invocation.invocation_id)
        except sqlite3.Error as store_error:  # the store is down: retry soon, as any abandoned invocation
            log.warning("could not record why %s cannot run (%s: %s): %s", invocation.execution_id,
                        error.ErrorType, error.ErrorMessage, store_error)
            self._abandon(invocation)
            return
        except Exception:
            log.warning("could not record why %s cannot run (%s: %s); holding it for %.0f s",
                        invocation.execution_id, error.ErrorType, error.ErrorMessage, UNREADABLE_RETRY_SECONDS,
                        exc_info=True)
            self._hold(invocation.execution_id)
            return
        if stalled is not None:
            log.error("%s cannot run: %s: %s; it stays RUNNING and is retried in %.0f s (attempt %d)",
                      invocation.execution_id, error.ErrorType, error.ErrorMessage,
                      stalled["retry_at"] - stalled["at"], stalled["attempts"])

    def _set_aside(self, execution_id: str, exc: BaseException) -> None:
        """An execution whose stored state cannot be read: retried later, never a worker crash."""
        log.error("cannot start an invocation of %s (%s: %s); setting it aside", execution_id,
                  type(exc).__name__, exc, exc_info=exc)
        try:
            self.service.stall(execution_id, self.owner, error_object(exc), base_delay=self.retry_delay)
        except Exception:
            log.warning("could not record why %s cannot run; holding it for %.0f s", execution_id,
                        UNREADABLE_RETRY_SECONDS, exc_info=True)
            self._hold(execution_id)

    def _hold(self, execution_id: str) -> None:
        """Last resort for a row nothing else can parse: only take the lease, so that it is not
        claimed again at once (a hot loop), and retry later."""
        try:
            self.service.hold(execution_id, self.owner, self.clock.now() + UNREADABLE_RETRY_SECONDS)
        except sqlite3.Error:
            log.debug("could not hold %s", execution_id, exc_info=True)

    def _abandon(self, invocation: Invocation) -> None:
        """Let the execution be claimed again once its lease lapses (best effort: the store may be down)."""
        try:
            self.service.renew(invocation.execution_id, self.owner, self.clock.now() + self.retry_delay)
        except sqlite3.Error:
            log.debug("could not shorten the lease of %s", invocation.execution_id, exc_info=True)

    def _renewer(self) -> _LeaseRenewer | None:
        """One renewal thread per runtime (not per invocation), started on first need."""
        if self.clock.virtual:
            return None
        if self._lease_renewer is None:
            self._lease_renewer = _LeaseRenewer(self)
        return self._lease_renewer

    def close(self) -> None:
        if self._lease_renewer is not None:
            self._lease_renewer.stop()
        self.store.close()

    def __enter__(self) -> LocalRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LeaseRenewer:
    """Keeps the leases of running invocations alive from one side thread."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self._runtime = runtime
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="duragent-lease")
        self._thread.start()

    def hold(self, execution_id: str) -> None:
        with self._lock:
            self._held.add(execution_id)

    def release(self, execution_id: str) -> None:
        with self._lock:
            self._held.discard(execution_id)

    def _run(self) -> None:
        interval = self._runtime.lease_seconds / 3
        while not self._stop.wait(interval):
            with self._lock:
                held = list(self._held)
            until = self._runtime.clock.now() + self._runtime.lease_seconds
            for execution_id in held:
                try:
                    self._runtime.service.renew(execution_id, self._runtime.owner, until)
                except Exception:  # pragma: no cover - the next checkpoint will notice a lost lease
                    log.debug("lease renewal failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()


_SET_ASIDE_PER_CLAIM = 20
"""At most this many unreadable executions are set aside in one claim before it gives up for now."""


def _check_execution_id(execution_id: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", execution_id):
        raise UsageError(f"execution id {execution_id!r} is invalid: use 1-64 characters from "
                         "A-Z a-z 0-9 - _")


def _info(row: dict[str, Any]) -> ExecutionInfo:
    result = None
    if row["result"] not in (None, ""):
        try:
            result = json.loads(row["result"])
        except json.JSONDecodeError:
            result = row["result"]
    error = json.loads(row["error"]) if row["error"] else None
    try:
        input_value = json.loads(row["input"]) if row["input"] else None
    except json.JSONDecodeError:
        input_value = row["input"]
    info = read_info(row.get("info"))
    return ExecutionInfo(id=row["id"], function=row["function"], name=row["name"], status=row["status"],
                         result=result, error=error, input=input_value, started_at=row["started_at"],
                         ended_at=row["ended_at"], invocations=row["invocations"],
                         parent_execution=row.get("parent_execution"),
                         handler_version=info.get("handler_version"),
                         stalled=info.get(STALLED) if row["status"] == "RUNNING" else None)
