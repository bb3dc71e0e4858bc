"""Issue 9 through the ``duragent`` command, run for real as subprocesses on a store in tmp_path:

- hole 1: an answer that is not JSON text in UTF-8 is refused (exit 2, one line, store unchanged),
  and a ``duragent worker`` keeps serving whatever a handler returns;
- hole 3: a handler that cannot be imported (a SyntaxError mid-deploy, a module raising on import,
  a worker in the wrong directory) leaves its execution RUNNING with the reason shown, and a fixed
  deploy resumes it; ``duragent run X`` drives only X and what X invokes;
- hole 8: storage faults are named (permission denied, read-only file system, a damaged file, a lost
  write-ahead log), a worker on a read-only store says why it stops, and ``duragent doctor`` finds
  damage that every other command misses;
- hole 9: a new store is private (directory 0700, files 0600) whatever the umask.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

JOBS = '''
from duragent.durable import durable_function

VERSION = {version}


def job(event, ctx):
    answer = ctx.wait_for_callback(lambda callback_id: None, name="go")
    return {{"answer": answer, "version": VERSION}}
'''

LISTING = '''
import os


def listing(event, ctx):
    names = ctx.step(lambda: sorted(os.listdir(event["folder"])), name="list")
    return {"names": names}


def plain(event, ctx):
    return ctx.step(lambda: event["n"] + 1, name="add")
'''

FAMILY = '''
from duragent.durable import durable_function


@durable_function(name="family-child")
def child(event, ctx):
    return ctx.step(lambda: event["n"] * 10, name="times-ten")


def parent(event, ctx):
    return {"child": ctx.invoke("family-child", {"n": event["n"]}, name="call-child")}
'''

AGENT_JOB = '''
from duragent import Agent, tool
from duragent.agents.models import ScriptedModel


@tool(requires_approval=True)
def refund(order: str) -> str:
    """Refund an order.

    Args:
        order: the order id.
    """
    return f"refunded {order}"


agent = Agent(ScriptedModel([ScriptedModel.tool_call("refund", {"order": "A-1"}, "c1"), "done"]), tools=[refund])


def job(event, ctx):
    return agent.run(ctx, "refund A-1").output
'''

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DURAGENT_DB"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **extra}


def _cli_for(db: Path, cwd: Path) -> Cli:
    def run(*args: str | bytes, cwd: Path = cwd, prefix: tuple[str, ...] = (), umask: int | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        def preexec() -> None:
            if umask is not None:
                os.umask(umask)

        return subprocess.run([*prefix, sys.executable, "-m", "duragent", "--db", str(db), *args], cwd=cwd,
                              env=_env(), capture_output=True, text=True, errors="backslashreplace",
                              timeout=timeout, preexec_fn=preexec)

    return run


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _snapshot(db: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(db.parent.glob(db.name + "*"))}


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str, code: int = 2) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    # one line (a worker logs with a time in front before it stops: those lines are its log)
    lines = [line for line in result.stderr.strip().splitlines() if not re.match(r"\d\d:\d\d:\d\d ", line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("duragent: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _pending(cli: Cli) -> list[str]:
    return [item["callback_id"] for item in _json(cli("list", "--pending", "--json"))["pending"]]


# -- hole 1: at the door, and a worker that keeps serving --------------------------------------------
@pytest.mark.parametrize("answer", ['"\\ud800"', '{"x": NaN}', "1e400", '{"a": -Infinity}'])
def test_a_bad_answer_on_the_command_line_is_refused_and_changes_nothing(tmp_path: Path, answer: str) -> None:
    (tmp_path / "jobs.py").write_text(JOBS.format(version=1))
    db = tmp_path / "store.db"
    cli = _cli_for(db, tmp_path)
    assert cli("run", "jobs.py:job", "--id", "j1").returncode == 0
    [callback_id] = _pending(cli)
    before = _snapshot(db)
    _one_line_error(cli("callback", "succeed", callback_id, "--result", answer), "--result")
    assert _snapshot(db) == before
    assert _pending(cli) == [callback_id]


def test_review_answers_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    (tmp_path / "agent_job.py").write_text(AGENT_JOB)
    db = tmp_path / "store.db"
    cli = _cli_for(db, tmp_path)
    assert cli("run", "agent_job.py:job", "--id", "a1").returncode == 0
    [callback_id] = _pending(cli)
    before = _snapshot(db)
    _one_line_error(cli("reject", callback_id, "--feedback", b"caf\xe9 is closed"), "surrogate")
    _one_line_error(cli("approve", callback_id, "--reviewer", b"\xffbob"), "surrogate")
    _one_line_error(cli("callback", "fail", callback_id, "--error-message", b"\xff\xfe"), "not valid UTF-8")
    assert _snapshot(db) == before
    assert _pending(cli) == [callback_id]


def test_a_worker_serves_a_handler_that_returns_undecodable_file_names_and_the_rest(tmp_path: Path) -> None:
    (tmp_path / "listing.py").write_text(LISTING)
    folder = tmp_path / "files"
    folder.mkdir()
    with open(os.fsencode(folder) + b"/na\xefve.txt", "wb"):  # a Latin-1 file name: not UTF-8
        pass
    db = tmp_path / "store.db"
    cli = _cli_for(db, tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        from duragent.durable import LocalRuntime

        with LocalRuntime(db) as rt:  # started, not run: the worker meets them
            first = rt.start("listing", {"folder": str(folder)}, target=f"{tmp_path / 'listing.py'}:listing")
            second = rt.start("plain", {"n": 1}, target=f"{tmp_path / 'listing.py'}:plain")
    finally:
        sys.path.remove(str(tmp_path))
    worker = cli("worker", "--until-idle")
    assert worker.returncode == 0, worker.stderr
    assert "Traceback" not in worker.stderr
    with LocalRuntime(db) as rt:
        listed, added = rt.get(first), rt.get(second)
    assert listed.status == "SUCCEEDED", listed.error
    assert listed.result == {"names": ["na\udcefve.txt"]}  # the same str Python gave the handler
    assert added.result == 2


# -- hole 3: a handler that cannot be imported right now ---------------------------------------------
BREAKAGES = {
    "syntax-error": ("def job(event, ctx):\n    return (\n", "SyntaxError"),
    "raises-on-import": ("raise RuntimeError('the config is not deployed yet')\n", "the config is not deployed yet"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_deploy_leaves_the_execution_waiting_and_a_fixed_one_resumes_it(tmp_path: Path,
                                                                                 breakage: str) -> None:
    jobs = tmp_path / "jobs.py"
    jobs.write_text(JOBS.format(version=1))
    db = tmp_path / "store.db"
    cli = _cli_for(db, tmp_path)
    assert cli("run", "jobs.py:job", "--id", "j1").returncode == 0
    [callback_id] = _pending(cli)
    assert cli("callback", "succeed", callback_id, "--result", '"go"').returncode == 0

    broken, reason = BREAKAGES[breakage]
    jobs.write_text(broken)  # the deploy is half-way when the worker looks
    for _ in range(2):  # every worker that meets it leaves it waiting, with the reason
        worker = cli("worker", "--until-idle")
        assert worker.returncode == 0, worker.stderr
        assert "cannot run" in worker.stderr and reason in worker.stderr
    shown = _json(cli("show", "j1", "--json"))
    assert shown["status"] == "RUNNING"
    assert reason in shown["stalled"]["reason"] and shown["stalled"]["attempts"] == 2
    text = cli("show", "j1")
    assert text.returncode == 0 and "cannot run:" in text.stdout and reason in text.stdout
    abandoned = [e for e in _json(cli("history", "j1", "--json")) if e["EventType"] == "InvocationCompleted"
                 and "Error" in e["InvocationCompletedDetails"]]
    assert len(abandoned) == 2 and reason in abandoned[-1]["InvocationCompletedDetails"]["Error"]["Payload"][
        "ErrorMessage"] + abandoned[-1]["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"]

    jobs.write_text(JOBS.format(version=2))  # the deploy completes
    worker = cli("worker", "--until-idle")
    assert worker.returncode == 0, worker.stderr
    done = _json(cli("show", "j1", "--json"))
    assert done["status"] == "SUCCEEDED" and done["result"] == {"answer": "go", "version": 2}
    assert done["stalled"] is None


def test_a_worker_in_the_wrong_directory_leaves_the_execution_for_one_in_the_right_one(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "jobs.py").write_text(JOBS.format(version=1))
    db = tmp_path / "store.db"
    cli = _cli_for(db, project)
    assert cli("run", "jobs:job", "--id", "j1").returncode == 0  # a module target: found from the cwd
    [callback_id] = _pending(cli)
    assert cli("callback", "succeed", callback_id, "--result", '"go"').returncode == 0

    lost = cli("worker", "--until-idle", cwd=elsewhere)
    assert lost.returncode == 0 and "cannot import module 'jobs'" in lost.stderr
    assert _json(cli("show", "j1", "--json"))["status"] == "RUNNING"

    right = cli("worker", "--until-idle", cwd=project)
    assert right.returncode == 0, right.stderr
    assert _json(cli("show", "j1", "--json"))["result"] == {"answer": "go", "version": 1}


def test_run_drives_only_its_own_execution_and_what_it_invokes(tmp_path: Path) -> None:
    project, other = tmp_path / "project", tmp_path / "other"
    project.mkdir()
    other.mkdir()
    (project / "jobs.py").write_text(JOBS.format(version=1))
    (other / "family.py").write_text(FAMILY)
    db = tmp_path / "store.db"
    cli = _cli_for(db, project)
    assert cli("run", "jobs:job", "--id", "someone-elses").returncode == 0
    [callback_id] = _pending(cli)
    assert cli("callback", "succeed", callback_id, "--result", '"go"').returncode == 0  # runnable now
    before = _json(cli("history", "someone-elses", "--json"))

    run = cli("run", "family.py:parent", "--id", "mine", "--input", '{"n": 4}', cwd=other)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"child": 40}  # its chained invoke was driven too

    assert _json(cli("history", "someone-elses", "--json")) == before  # not touched: not even tried
    shown = _json(cli("show", "someone-elses", "--json"))
    assert shown["status"] == "RUNNING" and shown["stalled"] is None


# -- hole 8: storage faults said right; doctor ----------------------------------------------------
def _store_with_work(tmp_path: Path) -> tuple[Path, Cli]:
    (tmp_path / "jobs.py").write_text(JOBS.format(version=1))
    db = tmp_path / "data" / "store.db"
    cli = _cli_for(db, tmp_path)
    for i in range(3):
        assert cli("run", "jobs.py:job", "--id", f"j{i}").returncode == 0
    return db, cli


NO_DAC = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")
"""Run as root without the capabilities that ignore file permissions, so that they apply."""


def _needs(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} (util-linux) is not installed")


def test_a_read_only_file_says_permission_denied(tmp_path: Path) -> None:
    _needs("setpriv")
    db, cli = _store_with_work(tmp_path)
    os.chmod(db, 0o400)
    prefix = NO_DAC if os.geteuid() == 0 else ()
    line = _one_line_error(cli("stop", "j0", prefix=prefix), "permission denied", str(db))
    assert "is not a duragent database" not in line
    worker = cli("worker", prefix=prefix, timeout=30)  # would retry forever: it must say why and stop
    _one_line_error(worker, "permission denied", "cannot write the store")


def test_a_read_only_directory_says_so(tmp_path: Path) -> None:
    _needs("setpriv")
    db, cli = _store_with_work(tmp_path)
    os.chmod(db.parent, 0o500)
    try:
        prefix = NO_DAC if os.geteuid() == 0 else ()
        _one_line_error(cli("list", prefix=prefix), "its directory", "is not writable", "-wal")
    finally:
        os.chmod(db.parent, 0o700)


def test_a_read_only_mount_says_read_only_file_system(tmp_path: Path) -> None:
    _needs("unshare")
    db, cli = _store_with_work(tmp_path)
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode().strip()}")
    data = str(db.parent)
    # a private mount namespace in which the store's directory is a read-only bind mount
    wrapper = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
               f'mount --bind "{data}" "{data}" && mount -o remount,bind,ro "{data}" && exec "$@"', "sh")
    line = _one_line_error(cli("worker", prefix=wrapper, timeout=30), "read-only file system")
    assert "is not a duragent database" not in line


def test_a_deleted_write_ahead_log_is_named(tmp_path: Path) -> None:
    from duragent.durable import LocalRuntime

    db, cli = _store_with_work(tmp_path)
    holder = LocalRuntime(db)  # a process holds the store open, with commits in its WAL
    try:
        holder.stop("j1")
        Path(f"{db}-wal").unlink()  # someone "cleans up"
        _one_line_error(cli("list"), "lost its write-ahead log", "store.db-wal is missing")
    finally:
        holder.close()


def test_a_garbage_page_is_found_by_doctor_with_sqlites_diagnosis(tmp_path: Path) -> None:
    db, cli = _store_with_work(tmp_path)
    healthy = cli("doctor")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "no damage found" in healthy.stdout and "3 executions" in healthy.stdout
    page = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as fh:  # overwrite a page of the executions table's index with noise
        fh.seek(page * 2)
        fh.write(bytes(range(256)) * (page // 256))
    report = cli("doctor", "--json")
    assert report.returncode == 1
    found = json.loads(report.stdout)
    assert found["damaged"] is True
    assert any(f["check"] == "integrity" and "SQLite" in f["message"] for f in found["findings"]), found
    worker = cli("worker", "--until-idle")
    if worker.returncode != 0:  # reading the damaged page names the damage too
        _one_line_error(worker, "is damaged", "doctor")


def test_doctor_finds_what_sqlite_cannot(tmp_path: Path) -> None:
    db, cli = _store_with_work(tmp_path)
    assert cli("stop", "j2").returncode == 0
    with sqlite3.connect(db) as conn:  # consistent pages, inconsistent store
        conn.execute("DELETE FROM journal WHERE (k >> 32) = (SELECT num FROM executions WHERE id = 'j2') "
                     "AND op IS NULL AND data LIKE '%ExecutionStopped%'")
        conn.execute("UPDATE executions SET lease_owner = 'x', lease_expires = NULL WHERE id = 'j0'")
        conn.execute("UPDATE journal SET callback_id = NULL WHERE (k >> 32) = (SELECT num FROM executions "
                     "WHERE id = 'j1') AND type = 'CALLBACK' AND pending = 1")
    report = cli("doctor")
    assert report.returncode == 1
    out = report.stdout
    assert "j2" in out and "no ExecutionStopped event" in out
    assert "lease owner 'x' with expiry None" in out
    assert "awaits an answer but has no callback id" in out
    assert "damage found" in out


# -- hole 9: private files ------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_a_new_store_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    (tmp_path / "jobs.py").write_text(JOBS.format(version=1))
    cli = _cli_for(tmp_path / "nested" / ".duragent" / "duragent.db", tmp_path)
    assert cli("run", "jobs.py:job", umask=umask).returncode == 0
    from duragent.durable import LocalRuntime

    store = tmp_path / "nested" / ".duragent"
    with LocalRuntime(store / "duragent.db"):  # an open store has its -wal and -shm beside it
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (store, *store.iterdir())}
    assert modes[".duragent"] == 0o700
    assert stat.S_IMODE((tmp_path / "nested").stat().st_mode) == 0o700  # created for the store
    assert {"duragent.db", "duragent.db-wal", "duragent.db-shm"} <= set(modes)
    assert {name: mode for name, mode in modes.items() if name != ".duragent"} == \
        {name: 0o600 for name in modes if name != ".duragent"}
