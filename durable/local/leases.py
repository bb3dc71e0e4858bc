"""Who holds a lease, and when another process may take it over before it lapses.

A lease names its owner process. A worker may take over a lease before it expires only when it
can prove that the owner is gone: the owner ran on this very kernel boot (boot id), in this very
PID namespace (and time namespace), and the process with the owner's PID either no longer exists
or started at another moment (its PID was reused). A hostname proves nothing: two containers
sharing a volume may share a hostname while each sees the other's live PIDs as dead. When any part
cannot be proven (another machine or container, no ``/proc``, a ``/proc`` mounted for another PID
namespace, an owner written by an older duragent), the lease is left to lapse.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from dataclasses import dataclass

_UNKNOWN = "-"


@dataclass(frozen=True)
class ProcessIdentity:
    """What tells one process apart from every other, ever, on one machine."""

    host: str
    pid: int
    boot_id: str
    """The kernel's boot id: the same machine, and the same boot of it."""
    pid_namespace: str
    time_namespace: str
    start_ticks: str
    """When the process started, in clock ticks since boot (``/proc/PID/stat`` field 22)."""

    def provable(self) -> bool:
        return _UNKNOWN not in (self.boot_id, self.pid_namespace, self.start_ticks)


def owner_id(identity: ProcessIdentity | None = None) -> str:
    """A lease owner: ``host:pid:nonce:boot_id:pid_ns:time_ns:start_ticks`` (readable in ``show``)."""
    me = identity or current_identity()
    return ":".join((me.host, str(me.pid), uuid.uuid4().hex[:8], me.boot_id, me.pid_namespace,
                     me.time_namespace, me.start_ticks))


def parse_owner(owner: str) -> ProcessIdentity | None:
    """The identity recorded in a lease owner; None for an owner this version cannot read."""
    parts = owner.split(":")
    if len(parts) != 7 or not parts[1].isdigit():
        return None
    host, pid, _nonce, boot_id, pid_ns, time_ns, start = parts
    return ProcessIdentity(host, int(pid), boot_id, pid_ns, time_ns, start)


def owner_is_gone(owner: str) -> bool:
    """True only when the lease's owner process provably no longer runs (see the module doc)."""
    theirs = parse_owner(owner)
    me = current_identity()
    if theirs is None or not theirs.provable() or not me.provable() or not _proc_is_ours():
        return False
    if (theirs.boot_id, theirs.pid_namespace, theirs.time_namespace) != \
            (me.boot_id, me.pid_namespace, me.time_namespace):
        return False  # another machine, boot or container: its processes cannot be seen from here
    if theirs.pid == me.pid:
        return theirs.start_ticks != me.start_ticks  # this process: a lease of ours is never "gone"
    try:
        stat = _stat(theirs.pid)
    except OSError:
        return False
    if stat is None:
        return True  # no such process in this namespace
    state, start_ticks = stat
    return start_ticks != theirs.start_ticks or state in ("Z", "X")


def current_identity() -> ProcessIdentity:
    return _identity(os.getpid())


@functools.lru_cache(maxsize=4)
def _identity(pid: int) -> ProcessIdentity:
    """Read once per process (the pid is the key, so a forked child reads its own)."""
    try:
        stat = _stat(pid) if _proc_is_ours() else None
    except OSError:
        stat = None
    return ProcessIdentity(host=socket.gethostname().replace(":", "_"), pid=pid,
                           boot_id=_read("/proc/sys/kernel/random/boot_id"),
                           pid_namespace=_namespace("pid"), time_namespace=_namespace("time"),
                           start_ticks=stat[1] if stat else _UNKNOWN)


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip().replace(":", "_") or _UNKNOWN
    except OSError:
        return _UNKNOWN


def _namespace(kind: str) -> str:
    try:
        st = os.stat(f"/proc/self/ns/{kind}")
    except OSError:
        # no time namespaces before Linux 5.6: the same for every process of this kernel
        return "none" if kind == "time" and os.path.isdir("/proc/self/ns") else _UNKNOWN
    return f"{st.st_dev}-{st.st_ino}"


def _proc_is_ours() -> bool:
    """Whether ``/proc`` shows this process's own PID namespace (``unshare --pid`` without a new
    ``/proc`` mount leaves the parent's): PIDs looked up there must mean what they mean to us."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return line.split()[1:] == [str(os.getpid())]
        return os.readlink("/proc/self") == str(os.getpid())
    except OSError:
        return False


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in ticks) of ``pid``, or None when there is no such process. Raises
    OSError when it cannot be told (``/proc`` hides other users' processes, say)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    if len(fields) < 20:
        raise OSError(f"unexpected /proc/{pid}/stat: {text[:80]!r}")
    return fields[0], fields[19]
