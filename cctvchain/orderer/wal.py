"""Durable Raft storage: a write-ahead log of what each Ready asked to persist.

Each ``save`` appends one checksummed frame (the ledger's segment-file format) holding
the snapshot, entries and hard state of one Ready, and fsyncs before returning — so a
vote or an acknowledgement is never sent for state a crash could lose. On open the log
is replayed through :class:`MemoryStorage`, the reference semantics; a torn final frame
(a crash mid-append) is cut off, damage anywhere else refuses to open. A new snapshot
rewrites the log (atomically: a new directory swapped in) so it does not grow forever.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cctvchain.codec import CodecError, Message
from cctvchain.ledger.blockfile import BlockFiles, DamagedFrame, GoodFrame, TornTail
from cctvchain.ordering.raft.messages import Entry, HardState, Snapshot
from cctvchain.ordering.raft.ready import RaftState
from cctvchain.ordering.raft.storage import MemoryStorage

log = logging.getLogger(__name__)

WAL_DIR = "wal"
_NEW_SUFFIX = ".new"
_OLD_SUFFIX = ".old"


class WalCorruptError(Exception):
    """The Raft log on disk is damaged somewhere other than a torn last write."""


@dataclass(frozen=True)
class WalRecord(Message):
    TYPE = "raft.wal_record"
    snapshot: Snapshot | None
    entries: tuple[Entry, ...]
    hard_state: HardState | None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DurableRaftStorage:
    """A :class:`~cctvchain.ordering.raft.storage.RaftStorage` on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._recover_swap()
        self._wal_path = directory / WAL_DIR
        self._wal_path.mkdir(exist_ok=True)
        self._memory = MemoryStorage()
        self._files = BlockFiles(self._wal_path)
        self.records = self._replay()

    # -- recovery ------------------------------------------------------------------------

    def _recover_swap(self) -> None:
        """Finish or undo a compaction that a crash interrupted."""
        current = self.directory / WAL_DIR
        new = self.directory / (WAL_DIR + _NEW_SUFFIX)
        old = self.directory / (WAL_DIR + _OLD_SUFFIX)
        if old.exists() and not current.exists() and new.exists():
            new.rename(current)  # the crash fell between the two renames
        if new.exists():
            shutil.rmtree(new)  # an unfinished rewrite: the current log is still whole
        if old.exists():
            shutil.rmtree(old)

    def _replay(self) -> int:
        count = 0
        for item in self._files.scan():
            if isinstance(item, GoodFrame):
                try:
                    record = WalRecord.decode(item.payload)
                except CodecError as exc:
                    raise WalCorruptError(
                        f"Raft log record {count} in {self._wal_path} does not decode: {exc}"
                    ) from exc
                self._memory.save(record.snapshot, record.entries, record.hard_state)
                count += 1
            elif isinstance(item, TornTail):
                log.warning(
                    "Raft log %s: cutting a torn final write at file %d offset %d",
                    self._wal_path,
                    item.file,
                    item.offset,
                )
                self._files.truncate(item.file, item.offset)
            elif isinstance(item, DamagedFrame):
                raise WalCorruptError(
                    f"Raft log {self._wal_path} is damaged at file {item.file} offset "
                    f"{item.offset}: {item.reason}"
                )
        return count

    # -- the storage interface ------------------------------------------------------------

    def load(self) -> RaftState:
        return self._memory.load()

    def save(
        self, snapshot: Snapshot | None, entries: Sequence[Entry], hard_state: HardState | None
    ) -> None:
        # The in-memory model validates first: an inconsistent save writes nothing.
        self._memory.save(snapshot, entries, hard_state)
        if snapshot is not None:
            self._rewrite()
        else:
            self._files.append(WalRecord(None, tuple(entries), hard_state).encode())
        self.records += 1

    def _rewrite(self) -> None:
        """Replace the log by one record holding the whole current state."""
        state = self._memory.load()
        new = self.directory / (WAL_DIR + _NEW_SUFFIX)
        old = self.directory / (WAL_DIR + _OLD_SUFFIX)
        if new.exists():
            shutil.rmtree(new)
        new.mkdir()
        files = BlockFiles(new)
        files.append(WalRecord(state.snapshot, state.entries, state.hard_state).encode())
        files.close()
        _fsync_dir(new)
        self._files.close()
        self._wal_path.rename(old)
        new.rename(self._wal_path)
        _fsync_dir(self.directory)
        shutil.rmtree(old)
        self._files = BlockFiles(self._wal_path)

    def close(self) -> None:
        self._files.close()
