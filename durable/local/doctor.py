"""``duragent doctor``: is this store intact and consistent?

Two kinds of check. SQLite's own (``PRAGMA integrity_check``: every page, index and constraint)
finds a damaged file. Ours find a store that SQLite thinks is fine but duragent cannot trust: an
ended execution without its final history event, a gap in an execution's journal rows, an
operation row that does not read back, a lease or a timer that contradicts the execution it
belongs to. The store
is opened read-only and never changed.

What no check can see: SQLite ignores a damaged write-ahead log from the first bad frame on, so the
commits after it vanish without a trace, leaving an older but consistent store (see the README).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .faults import describe_store_error
from .history import TYPES
from .rows import op_id_of, parse, unpack
from .store import POSITION_BITS, SCHEMA_NAME, SCHEMA_VERSION, open_in_this_process
from .writes import is_pending

FINAL_EVENTS = {"SUCCEEDED": "ExecutionSucceeded", "FAILED": "ExecutionFailed", "TIMED_OUT": "ExecutionTimedOut",
                "STOPPED": "ExecutionStopped"}
_MAX_FINDINGS_PER_CHECK = 50
SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass
class Finding:
    """One problem: ``damage`` (the store cannot be trusted) or ``warning`` (worth fixing)."""

    severity: str
    check: str
    message: str
    execution_id: str | None = None


@dataclass
class DoctorReport:
    path: str
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def damaged(self) -> bool:
        return any(f.severity == "damage" for f in self.findings)

    def add(self, severity: str, check: str, message: str, execution_id: str | None = None) -> None:
        self.findings.append(Finding(severity, check, message, execution_id))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "damaged": self.damaged, "counts": self.counts,
                "findings": [asdict(f) for f in self.findings]}

    def format(self) -> str:
        counted = ", ".join(f"{n} {name}" for name, n in self.counts.items())
        lines = [f"store {self.path}" + (f": {counted} checked" if counted else "")]
        lines += [f"  {f.severity.upper():<8}{f.check}: " + (f"execution {f.execution_id}: " if f.execution_id else "")
                  + f.message for f in self.findings]
        if self.damaged:
            lines.append("damage found: stop the workers, keep a copy of the damaged file, and restore the store "
                         "from a backup (then run `duragent doctor` on it)")
        else:
            lines.append("no damage found" + (" (see the warnings above)" if self.findings else ""))
        return "\n".join(lines)


def examine(path: str | Path) -> DoctorReport:
    """Check the store at ``path`` without changing it."""
    path = Path(path)
    report = DoctorReport(str(path))
    if not path.exists():
        report.add("damage", "file", f"there is no file at {path}")
        return report
    _check_permissions(report, path)
    try:
        header = SQLITE_HEADER if open_in_this_process(path) else _header(path)
    except OSError as exc:
        report.add("damage", "file", str(describe_store_error(exc, path)))
        return report
    if header != SQLITE_HEADER:
        report.add("damage", "file", "the file is not a SQLite database (its header is wrong)")
        return report
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        report.add("damage", "open", str(describe_store_error(exc, path)))
        return report
    try:
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check(100)")]
        except sqlite3.DatabaseError as exc:
            problems = [f"the integrity check itself failed: {_said(exc)}"]
        if problems != ["ok"]:
            for problem in problems:
                report.add("damage", "integrity", f"SQLite: {problem}")
        _examine(report, conn)
    except sqlite3.Error as exc:  # a read that the damage stops half-way
        report.add("damage", "read", f"reading the store failed: {_said(exc)}")
    finally:
        conn.close()
    return report


def _header(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(16)


def _said(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", "")
    return f"{exc}" + (f" [{name}]" if name else "")


def _examine(report: DoctorReport, conn: sqlite3.Connection) -> None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"meta", "executions", "journal"} <= tables:
        report.add("damage", "schema", f"not a duragent store: it has the tables {sorted(tables)[:8]}")
        return
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("schema") != SCHEMA_NAME or meta.get("version") != SCHEMA_VERSION:
        report.add("damage", "schema", f"schema {meta.get('schema')!r} version {meta.get('version')!r}; this "
                   f"duragent reads {SCHEMA_NAME!r} version {SCHEMA_VERSION!r}")
        return
    executions = {row["id"]: row for row in _rows(conn, "SELECT * FROM executions")}
    report.counts["executions"] = len(executions)
    _check_executions(report, executions)
    _check_journal(report, conn, executions)


def _rows(conn: sqlite3.Connection, sql: str, *args: Any) -> Iterator[dict[str, Any]]:
    cursor = conn.execute(sql, args)
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def _limited(report: DoctorReport, check: str) -> bool:
    """Whether ``check`` has said enough (a damaged store could yield a million findings)."""
    return sum(f.check == check for f in report.findings) >= _MAX_FINDINGS_PER_CHECK


def _check_executions(report: DoctorReport, executions: dict[str, dict[str, Any]]) -> None:
    for eid, e in executions.items():
        if _limited(report, "executions"):
            break
        status = e["status"]
        if status != "RUNNING" and status not in FINAL_EVENTS:
            report.add("damage", "executions", f"unknown status {status!r}", eid)
            continue
        if (e["ended_at"] is None) != (status == "RUNNING"):
            report.add("damage", "executions", f"{status} but ended_at is {e['ended_at']!r}", eid)
        if (e["lease_owner"] is None) != (e["lease_expires"] is None):
            report.add("damage", "leases", f"lease owner {e['lease_owner']!r} with expiry {e['lease_expires']!r}",
                       eid)
        if status == "RUNNING" and e["invocation_id"] and not e["lease_owner"]:
            report.add("damage", "leases", "an invocation is open but no worker holds the lease", eid)
        if status != "RUNNING" and e["runnable"]:
            report.add("warning", "executions", f"{status} but still marked runnable", eid)
        parent = e["parent_execution"]
        if parent is not None and parent not in executions:
            report.add("damage", "invokes", f"invoked by execution {parent}, which is not in the store", eid)
        for column in ("error", "info"):  # ours, always JSON (an input or result may be a custom serdes')
            if e[column] not in (None, ""):
                try:
                    json.loads(e[column])
                except ValueError:
                    report.add("damage", "executions", f"its {column} is not JSON", eid)


class _Journal:
    """What the scan of one execution's journal rows found (its rows are contiguous, in key order)."""

    def __init__(self, execution: dict[str, Any] | None) -> None:
        self.execution = execution
        self.position = 0
        self.types: set[str] = set()
        """The execution-level event types of its history (ExecutionStarted included)."""
        self.latest: dict[str | bytes, dict[str, Any]] = {}
        """Each operation's latest row."""
        self.has_root = False


def _check_journal(report: DoctorReport, conn: sqlite3.Connection, executions: dict[str, dict[str, Any]]) -> None:
    """Every row reads back; an execution's rows are numbered 1, 2, 3... with no gap; every ended
    execution has its final event; only an operation's latest row is pending or has a timer; a
    waiting operation has the timer or callback id that ends it."""
    by_num = {int(e["num"]): e for e in executions.values()}
    scans: dict[int, _Journal] = {}
    total = events = 0
    for row in _rows(conn, "SELECT * FROM journal ORDER BY k"):
        total += 1
        num, position = row["k"] >> POSITION_BITS, row["k"] & ((1 << POSITION_BITS) - 1)
        scan = scans.get(num)
        if scan is None:
            scan = scans[num] = _Journal(by_num.get(num))
            if scan.execution is None:
                report.add("damage", "journal", f"journal rows of execution number {num}, which is not in the store")
        if scan.execution is None:
            continue
        eid = scan.execution["id"]
        if position != scan.position + 1 and not _limited(report, "journal"):
            report.add("damage", "journal", f"rows {scan.position + 1}..{position - 1} are missing: history has "
                       "a gap", eid)
        scan.position = position
        if row["op"] is None:
            events += 1
            try:
                event = json.loads(unpack(row["data"]))
                scan.types.add(str(event.get("EventType")))
            except (ValueError, AttributeError, zlib.error):
                report.add("damage", "journal", f"history event {position} does not read back", eid)
            continue
        codes = row["ev"] or ""
        events += len(codes)
        unknown = set(codes) - TYPES.keys()
        if unknown:
            report.add("damage", "journal", f"row {position} has unknown event codes {''.join(sorted(unknown))!r}",
                       eid)
        if "E" in codes:
            scan.types.add("ExecutionStarted")
        if op_id_of(row["op"]) == eid:
            scan.has_root = True
        previous = scan.latest.get(row["op"])
        if previous is not None and (previous["pending"] or previous["due_at"] is not None) \
                and not _limited(report, "timers"):
            report.add("damage", "timers", f"row {previous['k'] & ((1 << POSITION_BITS) - 1)} is no longer its "
                       "operation's latest but is still pending or has a timer", eid)
        scan.latest[row["op"]] = row
    report.counts["journal rows"] = total
    report.counts["events"] = events
    for eid, e in executions.items():
        scan = scans.get(int(e["num"]))
        if scan is None:
            report.add("damage", "journal", "the execution has no history events at all", eid)
            continue
        _check_ends(report, e, scan)
        for row in scan.latest.values():
            _check_operation(report, e, row)


def _check_ends(report: DoctorReport, e: dict[str, Any], scan: _Journal) -> None:
    eid = e["id"]
    if _limited(report, "final events"):
        return
    if not scan.has_root:
        report.add("damage", "journal", "its EXECUTION operation (the input) is missing", eid)
    if "ExecutionStarted" not in scan.types:
        report.add("damage", "final events", "no ExecutionStarted event", eid)
    final = FINAL_EVENTS.get(e["status"])
    ended = scan.types & set(FINAL_EVENTS.values())
    if final is not None and final not in scan.types:
        report.add("damage", "final events", f"{e['status']} but its history has no {final} event", eid)
    elif final is None and ended:
        report.add("damage", "final events", f"RUNNING but its history ended it ({', '.join(sorted(ended))})", eid)


def _check_operation(report: DoctorReport, execution: dict[str, Any], row: dict[str, Any]) -> None:
    """An operation's latest row reads back, is pending exactly when its state awaits the service,
    and a waiting operation of a running execution has the timer that will complete it."""
    eid = execution["id"]
    op_id = op_id_of(row["op"])
    try:
        op = parse(op_id, str(row["type"]), str(row["status"]), unpack(row["data"]))
    except (ValidationError, ValueError, zlib.error) as exc:
        if not _limited(report, "operations"):
            report.add("damage", "operations", f"operation {op_id[:16]}… does not read back "
                       f"({str(exc).splitlines()[0]})", eid)
        return
    name = f"{op.Type.value} {op.Name or op_id[:16]!r}"
    running = execution["status"] == "RUNNING"
    if running and bool(row["pending"]) != is_pending(op.Type.value, op.Status.value) \
            and not _limited(report, "operations"):
        report.add("damage", "operations", f"{name} is {op.Status.value} but "
                   f"{'marked' if row['pending'] else 'not marked'} pending", eid)
    if _limited(report, "timers"):
        return
    due = row["due_at"]
    if not running:
        if due is not None:
            report.add("warning", "timers", f"{name} of an ended execution still has a timer", eid)
        return
    if op.Type.value == "WAIT" and op.Status.value == "STARTED" and due is None:
        report.add("damage", "timers", f"{name} is waiting but has no timer: it would never end", eid)
    elif op.Type.value == "STEP" and op.Status.value == "PENDING" and due is None:
        report.add("damage", "timers", f"{name} awaits a retry but has no timer: it would never be retried", eid)
    elif op.Type.value == "CALLBACK" and op.Status.value == "STARTED":
        if not row["callback_id"]:
            report.add("damage", "callbacks", f"{name} awaits an answer but has no callback id", eid)
        if (row["timeout_at"] is not None or row["heartbeat_seconds"]) and due is None:
            report.add("damage", "timers", f"{name} has a timeout but no timer: it would never time out", eid)


def _check_permissions(report: DoctorReport, path: Path) -> None:
    """Journals hold prompts, tool arguments and answers: nobody else should read them."""
    for item in (path.parent, path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(os.stat(item).st_mode)
        except OSError:
            continue
        if mode & 0o077 and (item != path.parent or path.parent.name == ".duragent"):
            wanted = "700" if item.is_dir() else "600"
            report.add("warning", "permissions", f"{item} is open to other users (mode {mode:o}); "
                       f"`chmod {wanted} {item}`")
