"""The SQLite store: with migrate.py (older schemas), the only module that speaks SQL.

One file, WAL mode. Durability ``full`` (synchronous=FULL) survives power loss; ``process``
(synchronous=NORMAL) survives a crashed process but may lose the last commits on power loss,
for a faster checkpoint. Every public write happens inside one ``transaction()``: one commit per
checkpoint call, never a half-applied batch.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .faults import describe_store_error
from .wal import write_ahead

SCHEMA_NAME = "duragent"
SCHEMA_VERSION = "3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    num INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    function TEXT NOT NULL,
    target TEXT,
    name TEXT NOT NULL,
    input TEXT,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    started_at REAL NOT NULL,
    ended_at REAL,
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
CREATE TABLE IF NOT EXISTS journal (
    k INTEGER PRIMARY KEY,
    op BLOB,
    inv INTEGER,
    at REAL NOT NULL,
    ev TEXT,
    type TEXT,
    status TEXT,
    pending INTEGER,
    due_at REAL,
    callback_id TEXT,
    timeout_at REAL,
    heartbeat_seconds INTEGER,
    x TEXT,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_due ON journal(due_at) WHERE due_at IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS journal_callback ON journal(callback_id) WHERE callback_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS journal_pending ON journal(k) WHERE pending = 1;
"""
"""Schema 3. ``journal`` holds one row per operation change, appended; an execution's rows are
contiguous and in order, because ``k`` is ``executions.num << 32`` plus the row's position in the
execution. A row holds the operation's state after the change (``type``, ``status``, ``data``),
the history events the change produced (``ev``, codes from history.py; the events themselves are
rebuilt from the row on read), the invocation whose checkpoint wrote it (``inv``; NULL when the
service did: a timer, a callback answer, a chained target finishing), and while it is its
operation's latest row, what the service must act on (``pending``, ``due_at``). Execution-level
events (InvocationCompleted, the execution's end) are rows with no ``op``, their ``data`` the
event. Nothing is rewritten per checkpoint: the executions row changes at claim, at the end of an
invocation, and when the service itself changes the execution."""

EXECUTION_COLUMNS = ("num", "id", "function", "target", "name", "input", "status", "result", "error", "started_at",
                     "ended_at", "runnable", "lease_owner", "lease_expires", "invocation_id", "invocation_started",
                     "invocations", "parent_execution", "parent_operation", "tenant_id", "info", "timeout_at")


_FAMILY = ("WITH RECURSIVE family(id) AS (SELECT ? UNION SELECT e.id FROM executions e JOIN family f "
           "ON e.parent_execution = f.id) SELECT id FROM family")
"""An execution and every execution it invoked, directly or not (chained invokes)."""

_LIGHT_COLUMNS = ", ".join(c for c in EXECUTION_COLUMNS if c not in ("input", "result", "error", "info"))

POSITION_BITS = 32
"""An execution's journal rows have keys ``num << 32`` + 1, 2, 3, ..."""


def key_range(num: int) -> tuple[int, int]:
    """The first and last journal key an execution's rows can have."""
    return num << POSITION_BITS, ((num + 1) << POSITION_BITS) - 1


@dataclass(slots=True)
class JournalRow:
    """One journal row (``op`` in its stored form, see rows.py; ``data`` possibly compressed)."""

    k: int
    op: str | bytes | None
    inv: int | None
    at: float
    ev: str | None
    type: str | None
    status: str | None
    pending: int | None
    due_at: float | None
    callback_id: str | None
    timeout_at: float | None
    heartbeat_seconds: int | None
    x: str | None
    data: str | bytes

    @property
    def num(self) -> int:
        return self.k >> POSITION_BITS


_ROW_COLUMNS = "k, op, inv, at, ev, type, status, pending, due_at, callback_id, timeout_at, heartbeat_seconds, x, data"
_ROW_MARKS = ", ".join("?" for _ in _ROW_COLUMNS.split(", "))
_INSERT_ROW = f"INSERT INTO journal ({_ROW_COLUMNS}) VALUES ({_ROW_MARKS})"
_NEXT_TIMER = "SELECT MIN(due_at) AS t FROM journal WHERE due_at IS NOT NULL"
"""The earliest operation timer (a wait, a retry, a callback's timeout)."""
_NEXT_TIMEOUT = ("SELECT MIN(timeout_at) FROM executions INDEXED BY executions_timeout "
                 "WHERE timeout_at IS NOT NULL AND status = 'RUNNING'")
"""The earliest execution timeout (named index: the planner would otherwise walk every RUNNING execution)."""
_INSERT_OWNED = (f"INSERT INTO journal ({_ROW_COLUMNS}) SELECT {_ROW_MARKS} WHERE EXISTS (SELECT 1 FROM executions "
                 "WHERE num = ? AND status = 'RUNNING' AND invocations = ? AND invocation_id IS NOT NULL)")
_JOURNAL_COLUMNS = ", ".join(f"j.{c}" for c in _ROW_COLUMNS.split(", "))


class Store:
    def __init__(self, path: str | Path, *, durability: str = "full") -> None:
        if durability not in ("full", "process"):
            raise StoreError(f"durability must be 'full' (survives power loss) or 'process' (survives a "
                             f"crashed process), got {durability!r}")
        self.path = str(path)
        self.durability = durability
        self._wal = self.path + "-wal" if self.path != ":memory:" and durability == "full" else None
        """Kept written ahead of SQLite (wal.py): each commit's fsync then overwrites in place."""
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
            version = self._check_schema()
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
            self._conn.execute("PRAGMA busy_timeout=30000")
            # Fold the WAL into the file every 4,000 pages rather than SQLite's 1,000: a quarter of
            # the checkpoint stalls (each syncs the file) inside a step's commit.
            self._conn.execute("PRAGMA wal_autocheckpoint=4000")
            self._conn.execute("PRAGMA foreign_keys=OFF")
            if version is None:
                self._create_schema()
            elif version != SCHEMA_VERSION:
                self._migrate(version)
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

    def _check_schema(self) -> str | None:
        """Refuse a database that is not ours without writing to it. Its schema version, None when
        it is empty (new)."""
        with self.transaction(write=False) as tx:
            tables = {r[0] for r in tx.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            meta = dict(tx.conn.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
        if not tables:
            return None
        if "meta" not in tables:
            raise StoreError(f"{self.path} is a SQLite database but not a duragent store (it has tables "
                             f"{sorted(tables)[:5]}); pass --db with a new file name")
        # The schema and its meta rows are created in one transaction, so tables without our meta
        # rows mean a foreign database that happens to have a "meta" table.
        if meta.get("schema") != SCHEMA_NAME:
            raise StoreError(f"{self.path} is a SQLite database but not a duragent store; pass --db "
                             "with a new file name")
        version = str(meta.get("version"))
        if version not in MIGRATABLE and version != SCHEMA_VERSION:
            raise StoreError(f"{self.path} has duragent schema version {meta.get('version')}, this "
                             f"duragent reads versions {', '.join(MIGRATABLE)} and {SCHEMA_VERSION}; "
                             "use a matching duragent")
        return version

    def _create_schema(self) -> None:
        with self._lock:
            self._conn.executescript(
                "BEGIN IMMEDIATE;" + _SCHEMA +
                f"INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '{SCHEMA_NAME}'), "
                f"('version', '{SCHEMA_VERSION}');COMMIT;")

    def _migrate(self, version: str) -> None:
        """Bring an older store to this schema in one transaction (all or nothing)."""
        from .migrate import MIGRATIONS

        with self.transaction() as tx:
            current = dict(tx.conn.execute("SELECT key, value FROM meta").fetchall()).get("version")
            while current != SCHEMA_VERSION:  # another process may have migrated it meanwhile
                current = MIGRATIONS[str(current)](tx.conn)
                tx.conn.execute("UPDATE meta SET value = ? WHERE key = 'version'", (current,))

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

    def transaction(self, write: bool = True, *, durable: bool = True) -> Transaction:
        """One atomic unit: ``with store.transaction() as tx``. ``BEGIN IMMEDIATE`` takes the write
        lock up front, so two processes never interleave a read-modify-write of the same execution.

        ``durable=False``: bookkeeping that replay can recompute (a claim, the end of an invocation)
        commits without its own fsync; the next durable commit's fsync covers it, and a power loss
        before that only loses the bookkeeping (the lease lapses, the execution runs again)."""
        return Transaction(self, write, write and not durable and self.durability == "full")

    @contextlib.contextmanager
    def reading(self) -> Iterator[Tx]:
        """Reads outside a transaction: each statement sees the latest commit (for reads that are one
        statement, or that need no snapshot across statements)."""
        with self._lock:
            yield Tx(self._conn)


class Transaction:
    """The context manager ``Store.transaction`` returns (a class, not a generator: it runs once per
    checkpoint)."""

    __slots__ = ("_store", "_write", "_relax")

    def __init__(self, store: Store, write: bool, relax: bool) -> None:
        self._store, self._write, self._relax = store, write, relax

    def __enter__(self) -> Tx:
        store = self._store
        store._lock.acquire()
        conn = store._conn
        try:
            if self._relax:
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
        except BaseException:
            self._restore()
            raise
        return Tx(conn)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        conn = self._store._conn
        try:
            if kind is None:
                try:
                    if self._write and self._store._wal is not None:
                        write_ahead(self._store._wal)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            # SQLite may already have rolled back (a full disk does): only undo what is open, so
            # the original error is the one that surfaces.
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            self._restore()

    def _restore(self) -> None:
        try:
            if self._relax:
                self._store._conn.execute("PRAGMA synchronous=FULL")
        finally:
            self._store._lock.release()


@functools.lru_cache(maxsize=64)
def _insert_execution_sql(columns: tuple[str, ...]) -> str:
    """The statement for these columns, built once (a few shapes: a start, a chained start...)."""
    return f"INSERT INTO executions ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


@functools.lru_cache(maxsize=64)
def _update_execution_sql(columns: tuple[str, ...]) -> str:
    return f"UPDATE executions SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"


MIGRATABLE = ("2",)
"""Schema versions this code migrates on open (durable/local/migrate.py)."""


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

    def postpone_due(self, num: int, now: float, until: float) -> None:
        lo, hi = key_range(num)
        self.conn.execute("UPDATE journal SET due_at = ? WHERE k > ? AND k <= ? AND due_at IS NOT NULL "
                          "AND due_at <= ?", (until, lo, hi, now))

    # -- executions ---------------------------------------------------------------------------
    def insert_execution(self, row: dict[str, Any]) -> int:
        """Insert an execution; returns its number (the prefix of its journal keys)."""
        cur = self.conn.execute(_insert_execution_sql(tuple(row)), tuple(row.values()))
        return int(cur.lastrowid or 0)

    def execution(self, execution_id: str, *, light: bool = False) -> dict[str, Any] | None:
        """The execution row; ``light`` leaves out the (possibly large) input, result and error."""
        columns = _LIGHT_COLUMNS if light else "*"
        row = self.conn.execute(f"SELECT {columns} FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return dict(row) if row is not None else None

    def execution_by_num(self, num: int, *, light: bool = False) -> dict[str, Any] | None:
        columns = _LIGHT_COLUMNS if light else "*"
        row = self.conn.execute(f"SELECT {columns} FROM executions WHERE num = ?", (num,)).fetchone()
        return dict(row) if row is not None else None

    def execution_id(self, num: int) -> str | None:
        row = self.conn.execute("SELECT id FROM executions WHERE num = ?", (num,)).fetchone()
        return None if row is None else str(row[0])

    def checkpoint_view(self, num: int, after: int) -> tuple[tuple[str, str, int, str | None] | None,
                                                             list[JournalRow]]:
        """What a checkpoint reads about its execution, in one statement: (id, status, invocations,
        invocation_id) of execution ``num``, and its journal rows after key ``after`` (usually none)."""
        hi = key_range(num)[1]
        rows = self.conn.execute(f"SELECT e.id, e.status, e.invocations, e.invocation_id, {_JOURNAL_COLUMNS} "
                                 "FROM executions e LEFT JOIN journal j ON j.k > ? AND j.k <= ? WHERE e.num = ? "
                                 "ORDER BY j.k", (after, hi, num)).fetchall()
        if not rows:
            return None, []
        first = rows[0]
        return (first[0], first[1], first[2], first[3]), [JournalRow(*r[4:]) for r in rows if r[4] is not None]

    def update_execution(self, execution_id: str, **fields: Any) -> None:
        self.conn.execute(_update_execution_sql(tuple(fields)), (*fields.values(), execution_id))

    def list_executions(self, *, status: str | None = None, function: str | None = None,
                        limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first; ``offset`` skips that many (pages of a listing)."""
        clause, args = _execution_filter(status, function)
        rows = self.conn.execute(
            f"SELECT id, function, name, status, started_at, ended_at, parent_execution FROM executions {clause} "
            "ORDER BY started_at DESC, num DESC LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        return [dict(r) for r in rows]

    def count_executions(self, *, status: str | None = None, function: str | None = None) -> int:
        clause, args = _execution_filter(status, function)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM executions {clause}", args).fetchone()[0])

    def claimable(self, now: float, *, family: str | None = None) -> str | None:
        """One execution that needs an invocation: runnable and not leased, or leased by an owner
        whose lease lapsed (a crashed invocation). ``family``: only that execution or one it
        invoked, directly or not."""
        scope, args = ("", ()) if family is None else (f"AND id IN ({_FAMILY}) ", (family,))
        row = self.conn.execute(
            "SELECT id FROM executions INDEXED BY executions_runnable WHERE status = 'RUNNING' AND runnable = 1 "
            f"AND (lease_owner IS NULL OR lease_expires < ?) {scope}ORDER BY started_at LIMIT 1",
            (now, *args)).fetchone()
        if row is None:
            row = self.conn.execute(
                "SELECT id FROM executions INDEXED BY executions_leased WHERE lease_owner IS NOT NULL "
                f"AND lease_expires < ? AND status = 'RUNNING' {scope}ORDER BY lease_expires LIMIT 1",
                (now, *args)).fetchone()
        return None if row is None else str(row[0])

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

    def timed_out_executions(self, now: float) -> list[str]:
        rows = self.conn.execute("SELECT id FROM executions INDEXED BY executions_timeout WHERE timeout_at IS NOT NULL "
                                 "AND status = 'RUNNING' AND timeout_at <= ?", (now,)).fetchall()
        return [str(r[0]) for r in rows]

    # -- the journal --------------------------------------------------------------------------
    def journal(self, num: int, after: int | None = None) -> list[JournalRow]:
        """An execution's rows in order (those after key ``after`` only, when given)."""
        lo, hi = key_range(num)
        rows = self.conn.execute(f"SELECT {_ROW_COLUMNS} FROM journal WHERE k > ? AND k <= ? ORDER BY k",
                                 (lo if after is None else after, hi)).fetchall()
        return [JournalRow(*r) for r in rows]

    def operation_rows(self, num: int) -> Iterator[tuple[int, str | bytes, str, str, str | bytes]]:
        """(k, op, type, status, data) of an execution's operation rows, in order: what replay loads
        (streamed, not fetched into one list: 100,000 rows are read one at a time)."""
        lo, hi = key_range(num)
        return iter(self.conn.execute("SELECT k, op, type, status, data FROM journal WHERE k > ? AND k <= ? "
                                      "AND op IS NOT NULL ORDER BY k", (lo, hi)))

    def rows(self, keys: Sequence[int]) -> list[JournalRow]:
        """These rows, by key."""
        if len(keys) == 1:
            row = self.conn.execute(f"SELECT {_ROW_COLUMNS} FROM journal WHERE k = ?", (keys[0],)).fetchone()
            return [] if row is None else [JournalRow(*row)]
        marks = ", ".join("?" for _ in keys)
        return [JournalRow(*r) for r in self.conn.execute(f"SELECT {_ROW_COLUMNS} FROM journal WHERE k IN ({marks})",
                                                          tuple(keys))]

    def last_key(self, num: int) -> int:
        lo, hi = key_range(num)
        row = self.conn.execute("SELECT k FROM journal WHERE k > ? AND k <= ? ORDER BY k DESC LIMIT 1",
                                (lo, hi)).fetchone()
        return int(row[0]) if row is not None else lo

    def latest_rows(self, num: int, keys: Sequence[str | bytes]) -> dict[str | bytes, JournalRow]:
        """The latest row of each of these operations (by stored op key). A scan of the execution's
        rows (there is no index on operation ids: the service keeps one in memory for the
        invocations it runs, see ``LocalService._known``); for the paths that are not a checkpoint."""
        if not keys:
            return {}
        lo, hi = key_range(num)
        if len(keys) == 1:
            row = self.conn.execute(f"SELECT {_ROW_COLUMNS} FROM journal WHERE op = ? AND k > ? AND k <= ? "
                                    "ORDER BY k DESC LIMIT 1", (keys[0], lo, hi)).fetchone()
            return {} if row is None else {row[1]: JournalRow(*row)}
        marks = ", ".join("?" for _ in keys)
        latest: dict[str | bytes, JournalRow] = {}
        for r in self.conn.execute(f"SELECT {_ROW_COLUMNS} FROM journal WHERE op IN ({marks}) AND k > ? AND k <= ? "
                                   "ORDER BY k", (*keys, lo, hi)):
            latest[r[1]] = JournalRow(*r)
        return latest

    def append(self, rows: Sequence[JournalRow]) -> None:
        values = [(r.k, r.op, r.inv, r.at, r.ev, r.type, r.status, r.pending, r.due_at, r.callback_id,
                   r.timeout_at, r.heartbeat_seconds, r.x, r.data) for r in rows]
        if len(values) == 1:
            self.conn.execute(_INSERT_ROW, values[0])
        else:
            self.conn.executemany(_INSERT_ROW, values)

    def append_if_owned(self, row: JournalRow, num: int, invocation: int) -> bool:
        """Append ``row`` only while invocation ``invocation`` of execution ``num`` runs; False if
        it does not (its lease was taken over, or the execution ended). A taken key raises
        ``sqlite3.IntegrityError``."""
        cur = self.conn.execute(_INSERT_OWNED, (row.k, row.op, row.inv, row.at, row.ev, row.type, row.status,
                                                row.pending, row.due_at, row.callback_id, row.timeout_at,
                                                row.heartbeat_seconds, row.x, row.data, num, invocation))
        return cur.rowcount == 1

    def retire(self, keys: Sequence[int]) -> None:
        """These rows are no longer their operation's latest: nothing is pending on them any more."""
        self.conn.executemany("UPDATE journal SET pending = NULL, due_at = NULL WHERE k = ?", [(k,) for k in keys])

    def set_due(self, k: int, due_at: float | None) -> None:
        self.conn.execute("UPDATE journal SET due_at = ? WHERE k = ?", (due_at, k))

    def has_pending_work(self, num: int) -> bool:
        """Something the service will complete later: a step retry, a wait, a callback, an invoke."""
        lo, hi = key_range(num)
        row = self.conn.execute("SELECT EXISTS (SELECT 1 FROM journal WHERE k > ? AND k <= ? AND pending = 1)",
                                (lo, hi)).fetchone()  # the partial index journal_pending
        return bool(row[0])

    def row_by_callback(self, callback_id: str) -> JournalRow | None:
        row = self.conn.execute(f"SELECT {_ROW_COLUMNS} FROM journal WHERE callback_id = ?", (callback_id,)).fetchone()
        return JournalRow(*row) if row is not None else None

    def due_rows(self, now: float, limit: int = 200) -> list[JournalRow]:
        rows = self.conn.execute(f"SELECT {_ROW_COLUMNS} FROM journal WHERE due_at IS NOT NULL AND due_at <= ? "
                                 "ORDER BY due_at LIMIT ?", (now, limit)).fetchall()
        return [JournalRow(*r) for r in rows]

    def idle(self, now: float) -> bool:
        """Nothing for a claim to do, in one read: no timer due, no runnable execution and no lease
        (a lapsed one to take over, a live one whose owner may be gone). Anything else: look closer."""
        due, timeout, runnable, leased = self.conn.execute(
            f"SELECT ({_NEXT_TIMER}), ({_NEXT_TIMEOUT}), "
            "EXISTS (SELECT 1 FROM executions INDEXED BY executions_runnable WHERE runnable = 1 AND status = 'RUNNING'), "
            "EXISTS (SELECT 1 FROM executions INDEXED BY executions_leased WHERE lease_owner IS NOT NULL)").fetchone()
        return not runnable and not leased and (due is None or due > now) and (timeout is None or timeout > now)

    def next_due(self) -> float | None:
        """The earliest timer: an operation's (wait, retry, callback timeout) or an execution timeout."""
        row = self.conn.execute(f"SELECT MIN(t) FROM ({_NEXT_TIMER} UNION ALL {_NEXT_TIMEOUT})").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def pending_callbacks(self, limit: int | None = None, offset: int = 0,
                          execution_id: str | None = None) -> list[JournalRow]:
        """Callbacks awaiting an answer, oldest execution first and in checkpoint order within one
        (a stable order, so pages of it neither skip nor repeat). Only executions still RUNNING
        await answers: a stopped or failed one keeps its callback rows pending, but answering them
        is refused."""
        clause, args = _pending_filter(execution_id)
        rows = self.conn.execute(f"SELECT {_JOURNAL_COLUMNS} FROM journal j JOIN executions e "
                                 f"ON e.num = (j.k >> {POSITION_BITS}) {clause} ORDER BY e.started_at, e.num, j.k "
                                 "LIMIT ? OFFSET ?", (*args, -1 if limit is None else limit, offset)).fetchall()
        return [JournalRow(*r) for r in rows]

    def count_pending_callbacks(self, execution_id: str | None = None) -> int:
        clause, args = _pending_filter(execution_id)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM journal j JOIN executions e ON e.num = "
                                     f"(j.k >> {POSITION_BITS}) {clause}", args).fetchone()[0])

    def clear_due(self, num: int) -> None:
        lo, hi = key_range(num)
        self.conn.execute("UPDATE journal SET due_at = NULL WHERE k > ? AND k <= ? AND due_at IS NOT NULL", (lo, hi))


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
    clause = "WHERE j.callback_id IS NOT NULL AND j.pending = 1 AND e.status = 'RUNNING'"
    if execution_id is None:
        return clause, []
    return clause + " AND e.id = ?", [execution_id]
