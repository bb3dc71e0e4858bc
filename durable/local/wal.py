"""Keep the write-ahead log's file ahead of what SQLite writes into it.

Why: with ``synchronous=FULL`` each commit ends in an ``fdatasync`` of the WAL. While the WAL file
grows, that sync must also make the file's new size durable (on ext4, a journal commit of its
own): on the development VM a growing WAL synced in 165-185 µs, an overwrite in place in 82-97.
SQLite writes its WAL from the start again after each checkpoint, so a long-lived store settles
into overwriting in place; but the WAL is deleted when the last connection closes, so every new
process and every new store grows it again, commit by commit. Writing zeros ahead of SQLite, a
quarter MiB at a time, makes the file's size change once per chunk instead of once per commit.

Safe by the WAL format: a reader recovers frames from the start and stops at the first frame whose
salt or checksum does not match, so bytes past the last valid frame are ignored (SQLite itself
leaves stale frames there after each restart of the log). Zeros are written only while the caller
holds the write lock, and only past the file's current end, so they never land on a frame.
"""

from __future__ import annotations

import os

CHUNK = 256 * 1024
"""How far ahead the file is extended at a time: about 60 frames of 4 KiB pages."""


def write_ahead(wal: str) -> None:
    """Extend ``wal`` with zeros to a chunk boundary and one chunk more, unless it already ends on a
    boundary (then the zeros written last time are still ahead of SQLite). Call it inside a write
    transaction, before ``COMMIT``. Best effort: a full disk or a read-only directory only means the
    commit grows the file itself."""
    try:
        size = os.stat(wal).st_size
        if size % CHUNK == 0:
            return
        end = (size // CHUNK + 2) * CHUNK
        fd = os.open(wal, os.O_WRONLY)
        try:
            os.pwrite(fd, bytes(end - size), size)
        finally:
            os.close(fd)
    except OSError:
        return
