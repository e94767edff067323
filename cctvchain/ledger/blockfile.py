"""Append-only block segment files with checksummed frames.

Blocks are appended to ``blockfile_000000``, ``blockfile_000001``, ... in one directory;
a new file is started when the next frame would push the current one past
``max_file_size`` (a block larger than that gets a file of its own). Each block is one
frame::

    u32 payload length | u32 crc32(payload) | u32 crc32(the previous 8 bytes) | payload

What a payload holds is the caller's: the ledger stores each block compressed or as its
canonical bytes (:mod:`cctvchain.ledger.stored`), the orderer's Raft WAL its records.

The header checksum is an addition to a plain length+crc frame: without it a flipped
bit in a length field that makes the frame look longer than the file is
indistinguishable from a write torn by a crash, and recovery would truncate every
block after it. With it, a frame whose header is intact but whose payload runs past
the end of the file can only be a torn write.

Every append is written, flushed and fsynced before it returns (and the directory is
fsynced when a file is created), so a returned location survives a crash. The scanner
classifies what it finds: good frames, a torn tail (the crash case, safe to truncate),
or damage (anything else, which must never be silently dropped).
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

FILE_PREFIX = "blockfile_"
_FILE_RE = re.compile(r"^blockfile_(\d{6})$")
DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024
MAX_PAYLOAD = 1 << 31
_HEADER = struct.Struct(">III")
HEADER_SIZE = _HEADER.size
_ZERO_CHUNK = 1 << 16


def file_name(number: int) -> str:
    return f"{FILE_PREFIX}{number:06d}"


def encode_frame(payload: bytes) -> bytes:
    if not payload:
        raise ValueError("a frame payload must not be empty")
    if len(payload) >= MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is too large for one frame")
    head = struct.pack(">II", len(payload), zlib.crc32(payload))
    return head + struct.pack(">I", zlib.crc32(head)) + payload


def _parse_header(raw: bytes) -> tuple[int, int] | None:
    """(payload length, payload crc), or None if the header checksum fails."""
    length, payload_crc, header_crc = _HEADER.unpack(raw)
    if zlib.crc32(raw[:8]) != header_crc:
        return None
    return length, payload_crc


class BlockFileError(Exception):
    """A frame cannot be read where the index says it is."""

    def __init__(self, file: int, offset: int, reason: str) -> None:
        super().__init__(f"{file_name(file)} at offset {offset}: {reason}")
        self.file = file
        self.offset = offset
        self.reason = reason


@dataclass(frozen=True)
class FrameLocation:
    file: int
    offset: int  # where the frame (its header) starts
    length: int  # of the payload

    @property
    def end(self) -> int:
        return self.offset + HEADER_SIZE + self.length


@dataclass(frozen=True)
class GoodFrame:
    location: FrameLocation
    payload: bytes


@dataclass(frozen=True)
class TornTail:
    """An incomplete or unreadable frame at the very end of the last file: what a crash
    in the middle of an append leaves. Truncating at ``offset`` removes it."""

    file: int
    offset: int
    reason: str


@dataclass(frozen=True)
class DamagedFrame:
    """A frame that cannot be read and is not a torn tail: data is damaged."""

    file: int
    offset: int
    reason: str


ScanItem = GoodFrame | TornTail | DamagedFrame


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlockFiles:
    """The segment files of one ledger. Not thread-safe: the ledger serialises appends."""

    def __init__(self, directory: Path, *, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> None:
        if max_file_size < 1:
            raise ValueError("max_file_size must be positive")
        self.directory = directory
        self.max_file_size = max_file_size
        self._writer: BinaryIO | None = None
        self._writer_file = -1
        self._writer_size = 0

    # -- files -----------------------------------------------------------------------------

    def path(self, number: int) -> Path:
        return self.directory / file_name(number)

    def file_numbers(self) -> list[int]:
        """The numbers of the block files, which must be 0, 1, 2, ... without gaps."""
        numbers = sorted(
            int(match.group(1))
            for name in os.listdir(self.directory)
            if (match := _FILE_RE.match(name))
        )
        for expected, number in enumerate(numbers):
            if number != expected:
                raise BlockFileError(expected, 0, "block file is missing")
        return numbers

    def size(self, number: int) -> int:
        try:
            return self.path(number).stat().st_size
        except FileNotFoundError:
            raise BlockFileError(number, 0, "block file is missing") from None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._writer_file = -1

    # -- appending -------------------------------------------------------------------------

    def _open_writer(self, number: int) -> None:
        self.close()
        path = self.path(number)
        created = not path.exists()
        self._writer = open(path, "ab")  # noqa: SIM115 - kept open across appends
        self._writer_file = number
        self._writer_size = self._writer.tell()
        if created:
            # The new file's directory entry must survive a crash as well as its data.
            _fsync_dir(self.directory)

    def append(self, payload: bytes) -> FrameLocation:
        """Append one frame; durable (fsynced) when this returns."""
        frame = encode_frame(payload)
        if self._writer is None:
            numbers = self.file_numbers()
            self._open_writer(numbers[-1] if numbers else 0)
        if self._writer_size > 0 and self._writer_size + len(frame) > self.max_file_size:
            self._open_writer(self._writer_file + 1)
        location = FrameLocation(self._writer_file, self._writer_size, len(payload))
        self._write(frame)
        self._writer_size += len(frame)
        return location

    def _write(self, frame: bytes) -> None:
        assert self._writer is not None
        self._writer.write(frame)
        self._writer.flush()
        os.fsync(self._writer.fileno())

    def truncate(self, number: int, offset: int) -> None:
        """Cut file ``number`` at ``offset`` (removing a torn tail), durably."""
        self.close()
        with open(self.path(number), "r+b") as handle:
            handle.truncate(offset)
            handle.flush()
            os.fsync(handle.fileno())

    # -- reading ---------------------------------------------------------------------------

    def read(self, location: FrameLocation) -> bytes:
        """The payload at ``location``, after checking the frame's checksums."""
        file, offset = location.file, location.offset
        try:
            handle = open(self.path(file), "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise BlockFileError(file, offset, "block file is missing") from None
        with handle:
            handle.seek(offset)
            raw = handle.read(HEADER_SIZE + location.length)
        if len(raw) < HEADER_SIZE + location.length:
            raise BlockFileError(file, offset, "block file ends inside the frame")
        header = _parse_header(raw[:HEADER_SIZE])
        if header is None:
            raise BlockFileError(file, offset, "frame header checksum mismatch")
        length, crc = header
        if length != location.length:
            raise BlockFileError(
                file, offset, f"frame length {length} differs from the indexed {location.length}"
            )
        payload = raw[HEADER_SIZE:]
        if zlib.crc32(payload) != crc:
            raise BlockFileError(file, offset, "frame payload checksum mismatch")
        return payload

    def scan(self, file: int = 0, offset: int = 0) -> Iterator[ScanItem]:
        """Frames from ``(file, offset)`` to the end of the last file, in order.

        Stops after the first :class:`TornTail` or :class:`DamagedFrame`.
        """
        numbers = self.file_numbers()
        last = numbers[-1] if numbers else -1
        for number in range(file, last + 1):
            start = offset if number == file else 0
            with open(self.path(number), "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if start > size:
                    yield DamagedFrame(number, start, f"file is only {size} bytes")
                    return
                for item in _scan_file(handle, number, start, size, is_last=number == last):
                    yield item
                    if not isinstance(item, GoodFrame):
                        return

    def end(self) -> tuple[int, int]:
        """(last file, its size): where the next frame goes (before any roll-over)."""
        numbers = self.file_numbers()
        if not numbers:
            return 0, 0
        return numbers[-1], self.size(numbers[-1])


def _rest_is_zero(handle: BinaryIO, start: int) -> bool:
    handle.seek(start)
    while chunk := handle.read(_ZERO_CHUNK):
        if chunk.count(0) != len(chunk):
            return False
    return True


def _scan_file(
    handle: BinaryIO, number: int, start: int, size: int, *, is_last: bool
) -> Iterator[ScanItem]:
    pos = start
    while pos < size:
        result = _read_frame_at(handle, number, pos, size)
        if isinstance(result, GoodFrame):
            yield result
            pos = result.location.end
            continue
        reason, torn = result
        # Only the end of the last file can hold a torn write: every earlier frame was
        # fsynced before the next append began.
        yield (
            TornTail(number, pos, reason) if torn and is_last else DamagedFrame(number, pos, reason)
        )
        return


def _read_frame_at(
    handle: BinaryIO, number: int, pos: int, size: int
) -> GoodFrame | tuple[str, bool]:
    """The frame at ``pos``, or (what is wrong, whether it looks like a torn write)."""
    handle.seek(pos)
    raw = handle.read(HEADER_SIZE)
    if len(raw) < HEADER_SIZE:
        return f"incomplete frame header ({len(raw)} bytes)", True
    header = _parse_header(raw)
    if header is None:
        # A crash on a filesystem that extends a file before writing its data can leave
        # zeros there; anything else in a header is damage.
        return "frame header checksum mismatch", _rest_is_zero(handle, pos)
    length, crc = header
    if length == 0:
        return "empty frame", False
    end = pos + HEADER_SIZE + length
    if end > size:
        return f"incomplete frame ({size - pos} of {end - pos} bytes)", True
    payload = handle.read(length)
    if zlib.crc32(payload) != crc:
        return "frame payload checksum mismatch", end == size
    return GoodFrame(FrameLocation(number, pos, length), payload)
