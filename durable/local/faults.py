"""What is wrong with a store that SQLite refuses, said in words: permission denied, a read-only
file system, a damaged file (with SQLite's own diagnosis), a deleted write-ahead log, a full disk.
Every message names the file and says what would fix it."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from ..errors import StoreAccessError, StoreDamagedError, StoreError, StoreUnavailableError


def describe_store_error(exc: BaseException, path: str | Path) -> StoreError:
    """The ``StoreError`` that says what an ``sqlite3.Error`` (or ``OSError``) on ``path`` means."""
    if isinstance(exc, StoreError):
        return exc
    path = Path(path)
    name = getattr(exc, "sqlite_errorname", "") or ""
    said = f"SQLite: {exc}" + (f" [{name}]" if name else "") if isinstance(exc, sqlite3.Error) else str(exc)
    doctor = f"`duragent doctor --db {path}`"
    if isinstance(exc, IsADirectoryError):
        return StoreAccessError(f"{path} is a directory, not a store file; pass --db with a file path such "
                                f"as {path / 'duragent.db'}")
    if isinstance(exc, OSError) and not isinstance(exc, PermissionError) and exc.errno != errno.EROFS:
        return StoreAccessError(f"cannot open the store at {path} ({exc.strerror or exc}); pass --db with the "
                                "path of a readable and writable file")
    if isinstance(exc, OSError) or name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM",
                                                            "SQLITE_AUTH")):
        why = why_not_writable(path, directory_first=name == "SQLITE_READONLY_DIRECTORY")
        if why is None and name.startswith("SQLITE_CANTOPEN"):
            return StoreAccessError(f"cannot open the store at {path} ({said}); check that the path and its "
                                    "directory exist and are readable and writable by this user")
        if path.exists() and not os.access(path, os.R_OK):
            return StoreAccessError(f"cannot read the store at {path}: {why} ({said}); run as the user that "
                                    "owns it, or fix its permissions")
        return StoreAccessError(f"cannot write the store at {path}: {why or 'SQLite opened it read-only'} "
                                f"({said}); a worker and every command that changes the store need to write it: "
                                "fix the permissions or mount, or pass --db with a writable copy")
    if name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB":
        return StoreDamagedError(f"the store at {path} is damaged ({said}); run {doctor} for the details, and "
                                 "restore the file from a backup")
    if name.startswith("SQLITE_IOERR"):
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        if shm.exists() and (not wal.exists() or (name == "SQLITE_IOERR_SHORT_READ" and wal.stat().st_size == 0)):
            return StoreDamagedError(
                f"the store at {path} has lost its write-ahead log: {wal.name} is missing or empty while {shm.name} "
                f"remains ({said}); the commits the log held are lost. Stop every process using the store, "
                f"restore it from a backup (or remove {shm.name} to open what {path.name} alone holds), then run "
                f"{doctor}")
        return StoreUnavailableError(f"an I/O error on the store at {path} ({said}); check the disk, then "
                                     f"run {doctor}")
    if name.startswith("SQLITE_FULL"):
        return StoreUnavailableError(f"the disk holding the store at {path} is full ({said}); free some space")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreUnavailableError(f"the store at {path} stayed locked by another process ({said}); "
                                     "retry when it is done")
    return StoreUnavailableError(f"cannot use the store at {path} ({said})")


def why_not_writable(path: Path, *, directory_first: bool = False) -> str | None:
    """The first reason found that ``path`` (and the -wal and -shm files SQLite keeps beside it)
    cannot be written, or None when none is visible from here."""
    directory = path.parent
    if directory_first and directory.exists() and not os.access(directory, os.W_OK | os.X_OK):
        return _directory_reason(path)
    if not directory.exists():
        return f"its directory {directory} does not exist"
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return f"it is on a read-only file system (the mount holding {directory})"
    except OSError:
        pass
    if path.exists() and not os.access(path, os.R_OK):
        return f"permission denied: {path} is not readable by this user (uid {os.getuid()})"
    if path.exists() and not os.access(path, os.W_OK):
        return f"permission denied: {path} is read-only for this user (uid {os.getuid()})"
    for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if side.exists() and not os.access(side, os.W_OK):
            return f"permission denied: {side} is read-only for this user (uid {os.getuid()})"
    if not os.access(directory, os.W_OK | os.X_OK):
        return _directory_reason(path)
    return None


def _directory_reason(path: Path) -> str:
    return (f"permission denied: its directory {path.parent} is not writable by this user (uid {os.getuid()}), "
            f"and SQLite creates {path.name}-wal and {path.name}-shm there")
