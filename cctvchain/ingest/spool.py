"""The durable spool: sealed segments wait on disk, in order, until they are committed.

A spool is one directory per camera. Each pending segment is one file named by its
sequence number (``00000000000000000042.seg``) holding the :class:`Segment` and its
frame records::

    "CCTVSPL1" | u32 big-endian length N | N bytes SpoolEntry (canonical) | SHA-256 of them

* :meth:`Spool.put` writes the file under a temporary name, fsyncs it, renames it into
  place and fsyncs the directory, so after ``put`` returns the segment survives a crash
  or power loss, and a crash during ``put`` leaves either nothing or the whole file.
* :meth:`Spool.peek` gives the oldest pending segment; :meth:`Spool.ack` — called only
  after the anchor transaction committed — first records the acknowledged segment as
  the chain head (an atomic, fsynced ``head`` file), then removes its file. A segment
  acknowledged but still present after a crash is removed when the spool is opened;
  nothing is ever submitted twice from one spool.
* Opening a spool removes leftover temporary files and sets aside (``*.torn``) any
  entry that does not decode or fails its checksum; such files are never served.
* :meth:`Spool.head` is where the extractor resumes its chain after a restart: the
  newest segment written (pending or acknowledged).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cctvchain.chaincode.cctv.model import Segment
from cctvchain.codec import CodecError, Message
from cctvchain.crypto import HASH_SIZE
from cctvchain.ingest.fingerprint import FrameRecord
from cctvchain.ingest.segment import SealedSegment

MAGIC = b"CCTVSPL1"
_LENGTH = struct.Struct(">I")
ENTRY_SUFFIX = ".seg"
TORN_SUFFIX = ".torn"
TMP_PREFIX = ".tmp-"
HEAD_FILE = "head"
_NAME_DIGITS = 20


class SpoolError(Exception):
    """A spool operation that would lose, reorder or duplicate a segment."""


@dataclass(frozen=True)
class SpoolEntry(Message):
    TYPE = "ingest.spool_entry"
    segment: Segment
    records: tuple[FrameRecord, ...]


@dataclass(frozen=True)
class ChainHead(Message):
    """The newest segment a camera produced: where its chain continues."""

    TYPE = "ingest.chain_head"
    camera_id: str
    sequence: int
    segment_hash: bytes
    capture_end_ms: int

    @classmethod
    def of(cls, segment: Segment) -> ChainHead:
        return cls(segment.camera_id, segment.sequence, segment.hash(), segment.capture_end_ms)


def _frame(payload: bytes) -> bytes:
    body = MAGIC + _LENGTH.pack(len(payload)) + payload
    return body + hashlib.sha256(body).digest()


def _unframe(data: bytes) -> bytes:
    header = len(MAGIC) + _LENGTH.size
    if len(data) < header + HASH_SIZE or not data.startswith(MAGIC):
        raise SpoolError("not a spool file, or cut short")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    if len(data) != header + length + HASH_SIZE:
        raise SpoolError(f"spool file of {len(data)} bytes, its header says {length}")
    body, digest = data[: header + length], data[header + length :]
    if hashlib.sha256(body).digest() != digest:
        raise SpoolError("spool file checksum mismatch")
    return body[header:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(directory: Path, name: str, data: bytes) -> None:
    tmp = directory / f"{TMP_PREFIX}{name}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / name)
    _fsync_dir(directory)


def _entry_name(sequence: int) -> str:
    return f"{sequence:0{_NAME_DIGITS}d}{ENTRY_SUFFIX}"


class Spool:
    """A durable FIFO of one camera's sealed segments awaiting commit."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.torn: list[Path] = []
        self._acked = self._read_head()
        self._pending: list[int] = []
        self._recover()

    # -- opening -------------------------------------------------------------------------

    def _read_head(self) -> ChainHead | None:
        path = self.directory / HEAD_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return ChainHead.decode(_unframe(data))
        except (SpoolError, CodecError) as exc:
            # Written atomically, so only outside damage gets here: refuse to guess.
            raise SpoolError(f"{path}: unreadable chain head ({exc})") from exc

    def _recover(self) -> None:
        changed = False
        for path in sorted(self.directory.iterdir()):
            name = path.name
            if name.startswith(TMP_PREFIX):
                path.unlink()  # an interrupted put or ack: never renamed into place
                changed = True
                continue
            if not name.endswith(ENTRY_SUFFIX):
                continue
            stem = name[: -len(ENTRY_SUFFIX)]
            if len(stem) != _NAME_DIGITS or not stem.isdigit():
                continue
            sequence = int(stem)
            try:
                entry = self._load(sequence)
            except SpoolError:
                torn = path.with_name(name + TORN_SUFFIX)
                os.replace(path, torn)
                self.torn.append(torn)
                changed = True
                continue
            if self._acked is not None and sequence <= self._acked.sequence:
                path.unlink()  # acknowledged, removal interrupted
                changed = True
                continue
            if entry.segment.sequence != sequence:
                raise SpoolError(f"{path} holds segment {entry.segment.sequence}")
            self._pending.append(sequence)
        if changed:
            _fsync_dir(self.directory)

    def _load(self, sequence: int) -> SealedSegment:
        path = self.directory / _entry_name(sequence)
        try:
            entry = SpoolEntry.decode(_unframe(path.read_bytes()))
            return SealedSegment.build(entry.segment, entry.records)
        except (CodecError, ValueError) as exc:
            raise SpoolError(f"{path}: {exc}") from exc

    # -- the queue -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self) -> list[int]:
        """Sequence numbers waiting for commit, oldest first."""
        return list(self._pending)

    def head(self) -> ChainHead | None:
        """The newest segment written to this spool, pending or acknowledged."""
        if self._pending:
            return ChainHead.of(self._load(self._pending[-1]).segment)
        return self._acked

    def put(self, sealed: SealedSegment) -> None:
        """Store a sealed segment durably; it must continue the spool's chain."""
        segment = sealed.segment
        head = self.head()
        if head is not None:
            if segment.camera_id != head.camera_id:
                raise SpoolError(f"spool of camera {head.camera_id}, got {segment.camera_id}")
            if segment.sequence != head.sequence + 1 or segment.previous_hash != head.segment_hash:
                raise SpoolError(
                    f"segment {segment.sequence} does not continue the spooled chain "
                    f"(head is segment {head.sequence})"
                )
        entry = SpoolEntry(segment, sealed.records)
        _write_atomic(self.directory, _entry_name(segment.sequence), _frame(entry.encode()))
        self._pending.append(segment.sequence)

    def peek(self) -> SealedSegment | None:
        """The oldest pending segment (None when the spool is drained)."""
        return self._load(self._pending[0]) if self._pending else None

    def get(self, sequence: int) -> SealedSegment:
        if sequence not in self._pending:
            raise KeyError(sequence)
        return self._load(sequence)

    def ack(self, sequence: int) -> None:
        """The oldest pending segment was committed: remove it for good."""
        if not self._pending or self._pending[0] != sequence:
            oldest = self._pending[0] if self._pending else None
            raise SpoolError(f"ack of segment {sequence}, the oldest pending is {oldest}")
        sealed = self._load(sequence)
        head = ChainHead.of(sealed.segment)
        if self._acked is None or head.sequence > self._acked.sequence:
            _write_atomic(self.directory, HEAD_FILE, _frame(head.encode()))
            self._acked = head
        (self.directory / _entry_name(sequence)).unlink()
        _fsync_dir(self.directory)
        self._pending.pop(0)
