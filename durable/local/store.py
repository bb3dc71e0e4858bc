"""The SQLite store: the only module that speaks SQL.

One file, WAL mode. Durability ``full`` (synchronous=FULL) survives power loss; ``process``
(synchronous=NORMAL) survives a crashed process but may lose the last commits on power loss,
for a faster checkpoint. Every public write happens inside one ``transaction()``: one commit per
checkpoint call, never a half-applied batch.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .faults import describe_store_error

SCHEMA_NAME = "duragent"
SCHEMA_VERSION = "2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    target TEXT,
    name TEXT NOT NULL,
    input TEXT,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    started_at REAL NOT NULL,
    ended_at REAL,
    token_seq INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    async_version INTEGER NOT NULL DEFAULT 0,
    event_seq INTEGER NOT NULL DEFAULT 0,
    op_seq INTEGER NOT NULL DEFAULT 0,
    runnable INTEGER NOT NULL DEFAULT 1,
    lease_owner TEXT,
    lease_expires REAL,
    invocation_id TEXT,
    invocation_started REAL,
    invocations INTEGER NOT NULL DEFAULT 0,
    parent_execution TEXT,
    parent_operation TEXT,
    tenant_id TEXT,
    info TEXT,
    timeout_at REAL
);
CREATE INDEX IF NOT EXISTS executions_runnable ON executions(started_at) WHERE runnable = 1 AND status = 'RUNNING';
CREATE INDEX IF NOT EXISTS executions_leased ON executions(lease_expires) WHERE lease_owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS executions_status ON executions(status, started_at);
CREATE INDEX IF NOT EXISTS executions_timeout ON executions(timeout_at) WHERE timeout_at IS NOT NULL AND status = 'RUNNING';
CREATE TABLE IF NOT EXISTS operations (
    execution_id TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    due_at REAL,
    callback_id TEXT,
    timeout_at REAL,
    heartbeat_seconds INTEGER,
    data TEXT NOT NULL,
    PRIMARY KEY (execution_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS operations_due ON operations(due_at) WHERE due_at IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS operations_callback ON operations(callback_id) WHERE callback_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    execution_id TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (execution_id, event_id)
) WITHOUT ROWID;
"""

EXECUTION_COLUMNS = ("id", "function", "target", "name", "input", "status", "result", "error", "started_at",
                     "ended_at", "token_seq", "version", "async_version", "event_seq", "op_seq", "runnable",
                     "lease_owner", "lease_expires", "invocation_id", "invocation_started", "invocations",
                     "parent_execution", "parent_operation", "tenant_id", "info", "timeout_at")


_FAMILY = ("WITH RECURSIVE family(id) AS (SELECT ? UNION SELECT e.id FROM executions e JOIN family f "
           "ON e.parent_execution = f.id) SELECT id FROM family")
"""An execution and every execution it invoked, directly or not (chained invokes)."""

_LIGHT_COLUMNS = ", ".join(c for c in EXECUTION_COLUMNS if c not in ("input", "result", "error", "info"))


@dataclass
class OpRow:
    execution_id: str
    id: str
    seq: int
    version: int
    type: str
    status: str
    due_at: float | None
    callback_id: str | None
    timeout_at: float | None
    heartbeat_seconds: int | None
    data: str


_OP_COLUMNS = "execution_id, id, seq, version, type, status, due_at, callback_id, timeout_at, heartbeat_seconds, data"


class Store:
    def __init__(self, path: str | Path, *, durability: str = "full") -> None:
        if durability not in ("full", "process"):
            raise StoreError(f"durability must be 'full' (survives power loss) or 'process' (survives a "
                             f"crashed process), got {durability!r}")
        self.path = str(path)
        if self.path != ":memory:":
            try:
                _create_private(Path(self.path))
                _check_is_ours(self.path)
            except OSError as exc:
                raise describe_store_error(exc, self.path) from None
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise describe_store_error(exc, self.path) from None
        self._conn.row_factory = sqlite3.Row
        try:
            # Read-only ownership check first: PRAGMA journal_mode=WAL rewrites the file header, so it
            # must never run on somebody else's database.
            fresh = self._check_schema()
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.execute("PRAGMA foreign_keys=OFF")
            if fresh:
                self._create_schema()
        except sqlite3.Error as exc:
            self._conn.close()
            raise describe_store_error(exc, self.path) from None
        except StoreError:
            self._conn.close()
            raise
        self._key = _file_key(self.path) if self.path != ":memory:" else None
        if self._key is not None:
            with _OPEN_LOCK:
                _OPEN_HERE[self._key] = _OPEN_HERE.get(self._key, 0) + 1

    def _check_schema(self) -> bool:
        """Refuse a database that is not ours without writing to it. True when it is empty (new)."""
        with self.transaction(write=False) as tx:
            tables = {r[0] for r in tx.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            meta = dict(tx.conn.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
        if not tables:
            return True
        if "meta" not in tables:
            raise StoreError(f"{self.path} is a SQLite database but not a duragent store (it has tables "
                             f"{sorted(tables)[:5]}); pass --db with a new file name")
        # The schema and its meta rows are created in one transaction, so tables without our meta
        # rows mean a foreign database that happens to have a "meta" table.
        if meta.get("schema") != SCHEMA_NAME:
            raise StoreError(f"{self.path} is a SQLite database but not a duragent store; pass --db "
                             "with a new file name")
        if meta.get("version") != SCHEMA_VERSION:
            raise StoreError(f"{self.path} has duragent schema version {meta.get('version')}, this "
                             f"duragent reads version {SCHEMA_VERSION}; use a matching duragent")
        return False

    def _create_schema(self) -> None:
        with self._lock:
            self._conn.executescript(
                "BEGIN IMMEDIATE;" + _SCHEMA +
                f"INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '{SCHEMA_NAME}'), "
                f"('version', '{SCHEMA_VERSION}');COMMIT;")

    def check_writable(self) -> None:
        """Raise the ``StoreError`` that says why the store cannot take a write, if it cannot (a
        read-only file, directory or mount is found only by writing; reads work)."""
        try:
            with self.transaction() as tx:
                tx.conn.execute("UPDATE meta SET value = value WHERE key = 'schema'")
        except sqlite3.Error as exc:
            raise describe_store_error(exc, self.path) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            key, self._key = self._key, None
        if key is not None:
            with _OPEN_LOCK:
                _OPEN_HERE[key] -= 1
                if not _OPEN_HERE[key]:
                    del _OPEN_HERE[key]

    @contextlib.contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        """One atomic unit. ``BEGIN IMMEDIATE`` takes the write lock up front, so two processes
        never interleave a read-modify-write of the same execution."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield Tx(conn)
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may already have rolled back (a full disk does): only undo what is open,
                # so the original error is the one that surfaces.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


_OPEN_HERE: dict[tuple[int, int], int] = {}
"""(device, inode) of the store files this process holds a connection to, and how many."""
_OPEN_LOCK = threading.Lock()


def _file_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def open_in_this_process(path: str | Path) -> bool:
    """Whether this process holds a Store connection to the file at ``path``: then the file must
    not be opened and closed by other means (that would drop SQLite's locks on it)."""
    with _OPEN_LOCK:
        return _file_key(str(path)) in _OPEN_HERE


def _create_private(path: Path) -> None:
    """A new store is private whatever the umask: the directories created for it 0700, the file
    0600 (SQLite gives its -wal and -shm files the main file's mode). Journals hold prompts, tool
    arguments and answers. An existing file or directory is left as it is (``duragent doctor``
    warns when it is readable by others)."""
    missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process created it meanwhile
            directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _check_is_ours(path: str) -> None:
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return
    if open_in_this_process(path):
        # Already open (and checked) in this process. Opening and closing the file here would
        # release every POSIX lock this process holds on it, SQLite's included: another process
        # closing its connection could then delete the WAL and shared-memory files under ours.
        return
    with open(p, "rb") as fh:
        header = fh.read(16)
    if header != b"SQLite format 3\x00":
        raise StoreError(f"{path} is not a duragent database (not even SQLite); pass --db with a new file "
                         "name or the path of an existing duragent store")


class Savepoint:
    """Whether the block of a ``Tx.savepoint()`` went through (truthy), or the error that undid it."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    def __bool__(self) -> bool:
        return self.error is None


class Tx:
    """Typed statements over one connection (inside a transaction when writing)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[Savepoint]:
        """A part of the transaction that is undone alone when it raises anything but a store error
        (a row that does not read back): the rest of the transaction still commits."""
        outcome = Savepoint()
        self.conn.execute("SAVEPOINT part")
        try:
            yield outcome
        except sqlite3.Error:
            raise
        except Exception as exc:
            outcome.error = exc
            self.conn.execute("ROLLBACK TO part")
        self.conn.execute("RELEASE part")

    def postpone_due(self, execution_id: str, now: float, until: float) -> None:
        self.conn.execute("UPDATE operations SET due_at = ? WHERE execution_id = ? AND due_at IS NOT NULL "
                          "AND due_at <= ?", (until, execution_id, now))

    # -- executions ---------------------------------------------------------------------------
    def insert_execution(self, row: dict[str, Any]) -> None:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.conn.execute(f"INSERT INTO executions ({cols}) VALUES ({marks})", tuple(row.values()))

    def execution(self, execution_id: str, *, light: bool = False) -> dict[str, Any] | None:
        """The execution row; ``light`` leaves out the (possibly large) input, result and error,
        which the checkpoint path never reads."""
        columns = _LIGHT_COLUMNS if light else "*"
        row = self.conn.execute(f"SELECT {columns} FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return dict(row) if row is not None else None

    def update_execution(self, execution_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{key} = ?" for key in fields)
        self.conn.execute(f"UPDATE executions SET {sets} WHERE id = ?", (*fields.values(), execution_id))

    def mark_runnable(self, execution_id: str, version: int) -> None:
        self.conn.execute("UPDATE executions SET runnable = 1, async_version = ?, version = ? "
                          "WHERE id = ? AND status = 'RUNNING'", (version, version, execution_id))

    def list_executions(self, *, status: str | None = None, function: str | None = None,
                        limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first; ``offset`` skips that many (pages of a listing)."""
        clause, args = _execution_filter(status, function)
        rows = self.conn.execute(
            f"SELECT id, function, name, status, started_at, ended_at, parent_execution FROM executions {clause} "
            "ORDER BY started_at DESC, rowid DESC LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        return [dict(r) for r in rows]

    def count_executions(self, *, status: str | None = None, function: str | None = None) -> int:
        clause, args = _execution_filter(status, function)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM executions {clause}", args).fetchone()[0])

    def claim_runnable(self, owner: str, now: float, lease_seconds: float, *,
                       family: str | None = None) -> str | None:
        """Take one execution that needs an invocation: runnable and not leased, or leased by an
        owner whose lease lapsed (a crashed invocation). ``family``: only that execution or one
        it invoked, directly or not."""
        scope, args = ("", ()) if family is None else (f"AND id IN ({_FAMILY}) ", (family,))
        row = self.conn.execute(
            "SELECT id FROM executions WHERE status = 'RUNNING' AND runnable = 1 "
            f"AND (lease_owner IS NULL OR lease_expires < ?) {scope}ORDER BY started_at LIMIT 1",
            (now, *args)).fetchone()
        if row is None:
            row = self.conn.execute(
                "SELECT id FROM executions WHERE lease_owner IS NOT NULL AND lease_expires < ? "
                f"AND status = 'RUNNING' {scope}ORDER BY lease_expires LIMIT 1", (now, *args)).fetchone()
        if row is None:
            return None
        self.conn.execute("UPDATE executions SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                          (owner, now + lease_seconds, row[0]))
        return str(row[0])

    def leases(self, now: float) -> list[tuple[str, str]]:
        rows = self.conn.execute("SELECT id, lease_owner FROM executions WHERE lease_owner IS NOT NULL "
                                 "AND lease_expires >= ?", (now,)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def expire_lease(self, execution_id: str, owner: str) -> None:
        self.conn.execute("UPDATE executions SET lease_expires = 0 WHERE id = ? AND lease_owner = ?",
                          (execution_id, owner))

    def hold_lease(self, execution_id: str, owner: str, until: float) -> None:
        self.conn.execute("UPDATE executions SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                          (owner, until, execution_id))

    def renew_lease(self, execution_id: str, owner: str, until: float) -> bool:
        cur = self.conn.execute("UPDATE executions SET lease_expires = ? WHERE id = ? AND lease_owner = ?",
                                (until, execution_id, owner))
        return cur.rowcount == 1

    def runnable_count(self, now: float) -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) FROM executions WHERE status = 'RUNNING' AND ((runnable = 1 AND "
            "(lease_owner IS NULL OR lease_expires < ?)) OR (lease_owner IS NOT NULL AND lease_expires < ?))",
            (now, now)).fetchone()
        return int(row[0])

    # -- operations ---------------------------------------------------------------------------
    def operations(self, execution_id: str) -> list[OpRow]:
        rows = self.conn.execute(f"SELECT {_OP_COLUMNS} FROM operations WHERE execution_id = ? ORDER BY seq",
                                 (execution_id,)).fetchall()
        return [OpRow(*r) for r in rows]

    def has_pending_work(self, execution_id: str) -> bool:
        """Something the service will complete later: a step retry, a wait, a callback, an invoke."""
        row = self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM operations WHERE execution_id = ? AND ("
            "(type = 'STEP' AND status IN ('PENDING', 'READY')) OR "
            "(type IN ('WAIT', 'CALLBACK', 'CHAINED_INVOKE') AND status = 'STARTED')))", (execution_id,)).fetchone()
        return bool(row[0])

    def operations_by_id(self, execution_id: str, ids: Sequence[str]) -> dict[str, OpRow]:
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        rows = self.conn.execute(f"SELECT {_OP_COLUMNS} FROM operations WHERE execution_id = ? AND id IN ({marks})",
                                 (execution_id, *ids)).fetchall()
        return {r[1]: OpRow(*r) for r in rows}

    def operations_since(self, execution_id: str, version: int) -> list[OpRow]:
        rows = self.conn.execute(f"SELECT {_OP_COLUMNS} FROM operations WHERE execution_id = ? AND version > ? "
                                 "ORDER BY seq", (execution_id, version)).fetchall()
        return [OpRow(*r) for r in rows]

    def put_operations(self, rows: Sequence[OpRow]) -> None:
        self.conn.executemany(
            f"INSERT OR REPLACE INTO operations ({_OP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.execution_id, r.id, r.seq, r.version, r.type, r.status, r.due_at, r.callback_id, r.timeout_at,
              r.heartbeat_seconds, r.data) for r in rows])

    def operation_by_callback(self, callback_id: str) -> OpRow | None:
        row = self.conn.execute(f"SELECT {_OP_COLUMNS} FROM operations WHERE callback_id = ?",
                                (callback_id,)).fetchone()
        return OpRow(*row) if row is not None else None

    def due_operations(self, now: float, limit: int = 200) -> list[OpRow]:
        rows = self.conn.execute(f"SELECT {_OP_COLUMNS} FROM operations WHERE due_at IS NOT NULL AND due_at <= ? "
                                 "ORDER BY due_at LIMIT ?", (now, limit)).fetchall()
        return [OpRow(*r) for r in rows]

    def next_due(self) -> float | None:
        """The earliest timer: an operation's (wait, retry, callback timeout) or an execution timeout."""
        row = self.conn.execute(
            "SELECT MIN(t) FROM (SELECT MIN(due_at) AS t FROM operations WHERE due_at IS NOT NULL UNION ALL "
            "SELECT MIN(timeout_at) FROM executions WHERE timeout_at IS NOT NULL AND status = 'RUNNING')").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def timed_out_executions(self, now: float) -> list[str]:
        rows = self.conn.execute("SELECT id FROM executions WHERE timeout_at IS NOT NULL AND status = 'RUNNING' "
                                 "AND timeout_at <= ?", (now,)).fetchall()
        return [str(r[0]) for r in rows]

    def pending_callbacks(self, limit: int | None = None, offset: int = 0,
                          execution_id: str | None = None) -> list[OpRow]:
        """Callbacks awaiting an answer, oldest execution first and in checkpoint order within one
        (a stable order, so pages of it neither skip nor repeat). Only executions still RUNNING
        await answers: a stopped or failed one keeps its callback rows STARTED, but answering them
        is refused."""
        clause, args = _pending_filter(execution_id)
        columns = ", ".join(f"o.{c.strip()}" for c in _OP_COLUMNS.split(","))
        rows = self.conn.execute(f"SELECT {columns} FROM operations o JOIN executions e ON e.id = o.execution_id "
                                 f"{clause} ORDER BY e.started_at, e.rowid, o.seq LIMIT ? OFFSET ?",
                                 (*args, -1 if limit is None else limit, offset)).fetchall()
        return [OpRow(*r) for r in rows]

    def count_pending_callbacks(self, execution_id: str | None = None) -> int:
        clause, args = _pending_filter(execution_id)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM operations o JOIN executions e ON e.id = o.execution_id "
                                     f"{clause}", args).fetchone()[0])

    def clear_due(self, execution_id: str) -> None:
        self.conn.execute("UPDATE operations SET due_at = NULL WHERE execution_id = ? AND due_at IS NOT NULL",
                          (execution_id,))

    # -- events -------------------------------------------------------------------------------
    def add_events(self, execution_id: str, events: Sequence[tuple[int, dict[str, Any]]]) -> None:
        self.conn.executemany("INSERT INTO events (execution_id, event_id, data) VALUES (?, ?, ?)",
                              [(execution_id, eid, json.dumps(data, separators=(",", ":"))) for eid, data in events])

    def events_after(self, execution_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` stored events with an id above ``after``, in order (a follower's page)."""
        rows = self.conn.execute("SELECT data FROM events WHERE execution_id = ? AND event_id > ? "
                                 "ORDER BY event_id LIMIT ?", (execution_id, after, limit)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def operations_by_seq(self, execution_id: str, seqs: Sequence[int]) -> list[OpRow]:
        if not seqs:
            return []
        marks = ", ".join("?" for _ in seqs)
        rows = self.conn.execute(f"SELECT {_OP_COLUMNS} FROM operations WHERE execution_id = ? AND seq IN ({marks})",
                                 (execution_id, *seqs)).fetchall()
        return [OpRow(*r) for r in rows]

    def events(self, execution_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT data FROM events WHERE execution_id = ? ORDER BY event_id",
                                 (execution_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]


def _execution_filter(status: str | None, function: str | None) -> tuple[str, list[Any]]:
    where, args = [], []
    if status:
        where.append("status = ?")
        args.append(status)
    if function:
        where.append("function = ?")
        args.append(function)
    return (f"WHERE {' AND '.join(where)}" if where else ""), args


def _pending_filter(execution_id: str | None) -> tuple[str, list[Any]]:
    clause = "WHERE o.callback_id IS NOT NULL AND o.status = 'STARTED' AND e.status = 'RUNNING'"
    if execution_id is None:
        return clause, []
    return clause + " AND o.execution_id = ?", [execution_id]
