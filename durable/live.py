"""Live events: what a running invocation says as it goes (a model's text as it is generated, a
batch's progress), delivered to whoever follows the execution at that moment and to nobody else.

Live events are not durable and arrive at most once: a follower that was not listening, or whose
buffer was full, misses them. Whatever matters is also in the journal (the durable events of
``durable.events``); a text delta lost to a crash is re-read from the checkpointed response.

Publishing costs nothing when nobody listens: ``listening`` is a dictionary lookup, refreshed from
the file system at most every ``REFRESH_SECONDS`` (one ``scandir`` of a directory that does not
exist). Followers in the process that runs the invocation subscribe in memory; followers in other
processes bind a Unix datagram socket and register it under ``.<store>-live/<execution id>/``; the
publisher sends each event to every registered socket (without blocking: a full socket drops the
event) and removes registrations whose follower is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import select
import socket
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any

log = logging.getLogger("duragent.durable.live")

REFRESH_SECONDS = 0.5
"""How long a publisher trusts its view of who listens (a new follower is noticed within this)."""
MAX_EVENT_BYTES = 60_000
"""A live event larger than this is cut (text is shortened): one datagram each."""
RECEIVE_BUFFER = 1 << 20
MAX_QUEUED = 10_000
"""Live events a follower in this process may leave unread before the oldest are dropped."""

_ABSTRACT = sys.platform.startswith("linux")


def live_directory(store_path: str) -> Path | None:
    """Where followers of a store's executions register: a hidden directory beside the store
    (``.duragent.db-live`` for ``duragent.db``, so a copy of ``duragent.db*`` leaves it out); None
    for an in-memory store."""
    if store_path in ("", ":memory:"):
        return None
    path = Path(os.path.abspath(store_path))
    return path.with_name(f".{path.name}-live")


class LiveHub:
    """The live channel of one store, shared by everything in this process that uses it."""

    def __init__(self, store_path: str) -> None:
        self.directory = live_directory(store_path)
        self._lock = threading.RLock()  # re-entered when a follower is collected while it is held
        self._local: dict[str, list[weakref.ref[LiveSubscription]]] = {}
        """In-process followers, held weakly: one its owner dropped without closing goes away."""
        self._remote: dict[str, tuple[float, list[tuple[Path, Any]]]] = {}
        self._sender: socket.socket | None = None

    # -- the publishing side ---------------------------------------------------------------------
    def listening(self, execution_id: str) -> bool:
        """Whether anyone follows ``execution_id`` now (in this process or another)."""
        if any(ref() is not None for ref in self._local.get(execution_id, ())):
            return True
        return bool(self._listeners(execution_id))

    def publish(self, execution_id: str, event: dict[str, Any]) -> None:
        """Send ``event`` (JSON-able) to every follower of ``execution_id``; never raises, never blocks."""
        local = self._local.get(execution_id)
        remote = self._listeners(execution_id)
        if not local and not remote:
            return
        for ref in list(local or ()):
            subscription = ref()
            if subscription is None:
                self._forget(execution_id, ref)
                continue
            try:
                subscription.put(event)
            except Exception:  # a follower's failure never reaches the execution
                log.debug("a live follower failed", exc_info=True)
        if remote:
            self._send(execution_id, remote, _encode(event))

    def _listeners(self, execution_id: str) -> list[tuple[Path, Any]]:
        if self.directory is None:
            return []
        now = time.monotonic()
        cached = self._remote.get(execution_id)
        if cached is not None and now - cached[0] < REFRESH_SECONDS:
            return cached[1]
        found: list[tuple[Path, Any]] = []
        own = f"{os.getpid()}-"
        try:
            with os.scandir(self.directory / execution_id) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or entry.name.startswith(own):
                        continue  # followers in this process are served in memory
                    found.append((Path(entry.path), _address(entry.name)))
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError:
            log.debug("cannot read live registrations", exc_info=True)
        self._remote[execution_id] = (now, found)
        return found

    def _send(self, execution_id: str, listeners: list[tuple[Path, Any]], data: bytes) -> None:
        with self._lock:
            if self._sender is None:
                self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sender.setblocking(False)
            sender = self._sender
        gone = []
        for registration, address in listeners:
            try:
                sender.sendto(data, address)
            except (BlockingIOError, InterruptedError):
                pass  # that follower is behind: live events may be dropped
            except (ConnectionRefusedError, FileNotFoundError):
                gone.append(registration)
            except OSError:
                log.debug("live event not delivered", exc_info=True)
        for registration in gone:  # its follower died without unregistering
            with contextlib.suppress(OSError):
                registration.unlink()
        if gone:
            self._remote.pop(execution_id, None)

    # -- the following side ----------------------------------------------------------------------
    def subscribe(self, execution_id: str, *, remote: bool | None = None) -> LiveSubscription:
        """Receive the live events of ``execution_id`` from now on. ``remote`` (default: when the
        store is a file) also registers a socket, for invocations run by other processes."""
        subscription = LiveSubscription(self, execution_id)
        with self._lock:
            ref = weakref.ref(subscription, lambda dead: self._forget(execution_id, dead))
            self._local[execution_id] = [*self._local.get(execution_id, []), ref]
        if remote if remote is not None else self.directory is not None:
            subscription.listen_remotely()
        return subscription

    def _forget(self, execution_id: str, ref: weakref.ref[LiveSubscription]) -> None:
        with self._lock:
            remaining = [r for r in self._local.get(execution_id, []) if r is not ref and r() is not None]
            if remaining:
                self._local[execution_id] = remaining
            else:
                self._local.pop(execution_id, None)


class LiveSubscription:
    """A follower's end: the live events of one execution, in arrival order. ``drain()`` takes
    what has arrived; ``wait(timeout)`` blocks until something may have (``fileno``s for select)."""

    def __init__(self, hub: LiveHub, execution_id: str) -> None:
        self.hub = hub
        self.execution_id = execution_id
        self._queue: deque[dict[str, Any]] = deque(maxlen=MAX_QUEUED)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._socket: socket.socket | None = None
        self._registration: Path | None = None
        self._closed = False
        self._finalizer = weakref.finalize(self, _release, [self._wake_read, self._wake_write], [])

    def put(self, event: dict[str, Any]) -> None:
        """Deliver an event from this process (called on the publishing thread)."""
        self._queue.append(event)
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"!")

    def filenos(self) -> list[int]:
        """Readable when an event may have arrived."""
        return [self._wake_read] + ([self._socket.fileno()] if self._socket is not None else [])

    def drain(self) -> list[dict[str, Any]]:
        """Every event that has arrived, oldest first (never blocks)."""
        with contextlib.suppress(OSError):
            while os.read(self._wake_read, 4096):
                pass
        events: list[dict[str, Any]] = []
        while self._queue:
            events.append(self._queue.popleft())
        sock = self._socket
        while sock is not None:
            try:
                data = sock.recv(MAX_EVENT_BYTES + 4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    def wait(self, timeout: float | None) -> None:
        """Block until an event may have arrived, or ``timeout`` seconds."""
        if self._closed:
            return
        with contextlib.suppress(OSError, ValueError):
            select.select(self.filenos(), [], [], timeout)

    def listen_remotely(self) -> None:
        """Bind a datagram socket and register it where publishers in other processes look."""
        directory = self.hub.directory
        if directory is None or self._socket is not None:
            return
        token = f"{os.getpid()}-{secrets.token_hex(8)}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind(_address(token))
        sock.setblocking(False)
        registration = directory / self.execution_id / token
        try:
            registration.parent.mkdir(parents=True, exist_ok=True)
            registration.touch()
        except OSError:
            sock.close()
            log.debug("cannot register a live follower in %s", directory, exc_info=True)
            return
        self._socket, self._registration = sock, registration
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _release, [self._wake_read, self._wake_write], [registration], sock)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self.hub._lock:
            remaining = [r for r in self.hub._local.get(self.execution_id, []) if r() not in (self, None)]
            if remaining:
                self.hub._local[self.execution_id] = remaining
            else:
                self.hub._local.pop(self.execution_id, None)
        self._finalizer()

    def __enter__(self) -> LiveSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LiveEvents:
    """What a context offers its code: ``ctx.live.listening`` and ``ctx.live.send(type, **data)``."""

    def __init__(self, hub: LiveHub | None, execution_id: str) -> None:
        self._hub = hub
        self.execution_id = execution_id

    @property
    def listening(self) -> bool:
        """Whether anyone follows this execution now (do expensive work for them only then)."""
        return self._hub is not None and self._hub.listening(self.execution_id)

    def send(self, type: str, **data: Any) -> None:  # noqa: A002 - the event's field name
        """Publish a live event to the execution's followers; nothing happens when nobody listens."""
        hub = self._hub
        if hub is None:
            return
        hub.publish(self.execution_id, {"type": type, "time": time.time(), **data})


def _release(fds: list[int], registrations: list[Path], sock: socket.socket | None = None) -> None:
    """Give back what a subscription holds (on close, or when it is garbage collected unclosed)."""
    for registration in registrations:
        with contextlib.suppress(OSError):
            registration.unlink()
        with contextlib.suppress(OSError):
            registration.parent.rmdir()  # only when no other follower is registered
        if not _ABSTRACT:
            with contextlib.suppress(OSError):
                os.unlink(str(_address(registration.name)))
    if sock is not None:
        sock.close()
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


_HUBS: dict[str, LiveHub] = {}
_HUBS_LOCK = threading.Lock()


def hub_for(store_path: str) -> LiveHub:
    """The process's live hub of a store file (shared by every runtime on it); an in-memory store
    gets a hub of its own."""
    if live_directory(store_path) is None:
        return LiveHub(store_path)
    key = os.path.abspath(store_path)
    with _HUBS_LOCK:
        hub = _HUBS.get(key)
        if hub is None:
            hub = _HUBS[key] = LiveHub(store_path)
        return hub


def _address(token: str) -> Any:
    if _ABSTRACT:
        return f"\0duragent-live-{token}"
    return os.path.join(tempfile.gettempdir(), f"duragent-live-{token}.sock")


def _encode(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, separators=(",", ":"), default=str).encode()
    if len(data) <= MAX_EVENT_BYTES:
        return data
    text = event.get("text")
    if isinstance(text, str):
        cut = {**event, "text": text[: MAX_EVENT_BYTES // 2], "truncated": True}
        return json.dumps(cut, separators=(",", ":"), default=str).encode()[:MAX_EVENT_BYTES]
    return json.dumps({"type": event.get("type"), "truncated": True}).encode()


__all__ = ["LiveEvents", "LiveHub", "LiveSubscription", "hub_for", "live_directory"]
