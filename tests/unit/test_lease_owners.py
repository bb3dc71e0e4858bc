"""Issue 9, hole 2, piece by piece: a lease is taken over before it lapses only when its owner is
provably gone: same kernel boot, same PID (and time) namespace, and the owner's PID names no process
or one that started at another moment. Real processes, real ``/proc``."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace

import pytest

from duragent.durable.local import leases as L

pytestmark = pytest.mark.skipif(not L.current_identity().provable(), reason="no Linux /proc here")


def _owner_of(pid: int, **changes: str) -> str:
    stat = L._stat(pid)
    assert stat is not None
    return L.owner_id(replace(L.current_identity(), pid=pid, start_ticks=stat[1], **changes))


def test_an_owner_reads_back() -> None:
    me = L.current_identity()
    owner = L.owner_id()
    assert L.parse_owner(owner) == me
    assert owner.startswith(f"{me.host}:{me.pid}:")


def test_a_live_process_keeps_its_lease_and_a_reaped_one_loses_it() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    owner = _owner_of(child.pid)
    assert L.owner_is_gone(owner) is False
    assert child.stdin is not None
    child.stdin.close()
    child.wait()
    assert L.owner_is_gone(owner) is True


def test_a_zombie_has_lost_its_lease() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = _owner_of(child.pid)
    deadline = time.monotonic() + 10
    while (L._stat(child.pid) or ("?",))[0] != "Z":  # exited but not reaped: a zombie
        assert time.monotonic() < deadline, "the child never became a zombie"
        time.sleep(0.001)
    assert L.owner_is_gone(owner) is True
    child.wait()


def test_a_reused_pid_is_not_the_owner() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        stat = L._stat(child.pid)
        assert stat is not None
        # the same PID, but the process that held the lease started at another moment
        earlier = L.owner_id(replace(L.current_identity(), pid=child.pid, start_ticks=str(int(stat[1]) - 1)))
        assert L.owner_is_gone(earlier) is True
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()


@pytest.mark.parametrize("field", ["boot_id", "pid_namespace", "time_namespace"])
def test_an_owner_elsewhere_is_never_declared_gone(field: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its PID names nothing here now; but the owner did not live here
    other = {"boot_id": "0a0b0c0d-0000-4000-8000-000000000000", "pid_namespace": "4-1", "time_namespace": "4-2"}
    owner = L.owner_id(replace(L.current_identity(), pid=child.pid, start_ticks="12345", **{field: other[field]}))
    assert L.owner_is_gone(owner) is False


@pytest.mark.parametrize("owner", ["vm:123:abcdef12",  # written by an older duragent: hostname and PID only
                                   "vm:notapid:x:b:n:t:s", "", "a:b:c:d:e:f:g:h", "vm:99999999:n:-:-:-:-"])
def test_an_owner_that_proves_nothing_keeps_its_lease(owner: str) -> None:
    assert L.owner_is_gone(owner) is False


def test_this_process_never_declares_itself_gone() -> None:
    assert L.owner_is_gone(L.owner_id()) is False
