"""Block segment files: framing, roll-over, checked reads, and the scanner's verdicts."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from cctvchain.ledger.blockfile import (
    HEADER_SIZE,
    BlockFileError,
    BlockFiles,
    DamagedFrame,
    FrameLocation,
    GoodFrame,
    TornTail,
    encode_frame,
)


def payloads(n: int, size: int = 100) -> list[bytes]:
    return [bytes([i % 251 + 1]) * size for i in range(n)]


def filled(
    tmp_path: Path, n: int = 5, max_file_size: int = 1 << 20
) -> tuple[BlockFiles, list[FrameLocation]]:
    files = BlockFiles(tmp_path, max_file_size=max_file_size)
    locations = [files.append(p) for p in payloads(n)]
    return files, locations


def test_append_read_and_scan(tmp_path: Path) -> None:
    files, locations = filled(tmp_path)
    assert [loc.offset for loc in locations] == [i * (HEADER_SIZE + 100) for i in range(5)]
    assert [files.read(loc) for loc in locations] == payloads(5)
    scanned = list(files.scan())
    assert all(isinstance(item, GoodFrame) for item in scanned)
    assert [item.payload for item in scanned if isinstance(item, GoodFrame)] == payloads(5)
    # Scanning from a frame boundary yields the rest.
    rest = list(files.scan(0, locations[3].offset))
    assert [item.location for item in rest if isinstance(item, GoodFrame)] == locations[3:]
    files.close()
    # A new handle appends after the existing frames.
    again = BlockFiles(tmp_path)
    assert again.append(b"more").offset == locations[-1].end


def test_frame_layout() -> None:
    frame = encode_frame(b"abc")
    length, _crc, _header_crc = struct.unpack(">III", frame[:HEADER_SIZE])
    assert length == 3 and frame[HEADER_SIZE:] == b"abc"
    with pytest.raises(ValueError, match="must not be empty"):
        encode_frame(b"")


def test_roll_over_to_new_files(tmp_path: Path) -> None:
    files, locations = filled(tmp_path, n=7, max_file_size=3 * (HEADER_SIZE + 100))
    assert [loc.file for loc in locations] == [0, 0, 0, 1, 1, 1, 2]
    assert files.file_numbers() == [0, 1, 2]
    big = files.append(b"x" * 1000)  # larger than a whole file: gets one of its own
    assert (big.file, big.offset) == (3, 0)
    assert files.append(b"y").file == 4
    goods = [item for item in files.scan() if isinstance(item, GoodFrame)]
    assert len(goods) == 9


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_read_detects_flipped_bytes_anywhere_in_the_frame(tmp_path: Path) -> None:
    files, locations = filled(tmp_path)
    loc = locations[2]
    for position, reason in [
        (0, "header checksum"),
        (5, "header checksum"),
        (9, "header checksum"),
        (HEADER_SIZE + 50, "payload checksum"),
    ]:
        flip(files.path(0), loc.offset + position)
        with pytest.raises(BlockFileError, match=reason) as info:
            files.read(loc)
        assert "blockfile_000000 at offset" in str(info.value)
        flip(files.path(0), loc.offset + position)  # restore
        assert files.read(loc) == payloads(5)[2]


def test_read_refuses_a_wrong_location(tmp_path: Path) -> None:
    files, locations = filled(tmp_path)
    with pytest.raises(BlockFileError, match="differs from the indexed"):
        files.read(FrameLocation(0, locations[1].offset, 99))
    with pytest.raises(BlockFileError, match="missing"):
        files.read(FrameLocation(7, 0, 100))
    with pytest.raises(BlockFileError, match="ends inside the frame"):
        files.read(FrameLocation(0, locations[4].offset + 50, 100))


def last_item(files: BlockFiles) -> object:
    return list(files.scan())[-1]


def test_scan_torn_tails(tmp_path: Path) -> None:
    files, locations = filled(tmp_path)
    path = files.path(0)
    end = locations[-1].end
    frame = encode_frame(b"z" * 100)
    for partial in (frame[:5], frame[: HEADER_SIZE + 40], b"\x00" * 300):
        path.write_bytes(path.read_bytes()[:end] + partial)
        item = last_item(files)
        assert isinstance(item, TornTail), partial[:20]
        assert (item.file, item.offset) == (0, end)
    # A complete frame with a bad payload at the very end is a torn write too.
    bad = bytearray(frame)
    bad[-1] ^= 1
    path.write_bytes(path.read_bytes()[:end] + bytes(bad))
    assert isinstance(last_item(files), TornTail)
    files.truncate(0, end)
    assert path.stat().st_size == end
    assert all(isinstance(item, GoodFrame) for item in files.scan())


def test_scan_damage_is_not_a_torn_tail(tmp_path: Path) -> None:
    files, locations = filled(tmp_path)
    path = files.path(0)
    # A bad payload followed by more frames is damage.
    flip(path, locations[1].offset + HEADER_SIZE + 3)
    item = last_item(files)
    assert isinstance(item, DamagedFrame) and item.offset == locations[1].offset
    assert "payload checksum" in item.reason
    flip(path, locations[1].offset + HEADER_SIZE + 3)
    # A corrupted length field must not pass for a torn write (which would be
    # truncated, losing every later frame): the header checksum catches it.
    flip(path, locations[2].offset + 1)
    item = last_item(files)
    assert isinstance(item, DamagedFrame) and item.offset == locations[2].offset
    assert "header checksum" in item.reason


def test_only_the_last_file_can_have_a_torn_tail(tmp_path: Path) -> None:
    files, _ = filled(tmp_path, n=4, max_file_size=2 * (HEADER_SIZE + 100))
    first = files.path(0)
    first.write_bytes(first.read_bytes()[:-30])  # file 0 cut short, file 1 follows
    item = last_item(files)
    assert isinstance(item, DamagedFrame) and item.file == 0


def test_missing_file_in_the_sequence(tmp_path: Path) -> None:
    files, _ = filled(tmp_path, n=6, max_file_size=2 * (HEADER_SIZE + 100))
    files.path(1).unlink()
    with pytest.raises(BlockFileError, match="blockfile_000001 at offset 0: block file is missing"):
        files.file_numbers()
