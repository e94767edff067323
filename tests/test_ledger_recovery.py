"""Damage detection and repair: flipped bytes, broken hash chains, torn tails."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from ledger_helpers import genesis, kv_tx, next_block, workload_block

from cctvchain.ledger.blockfile import BlockFiles, GoodFrame, encode_frame
from cctvchain.ledger.errors import BlockCorruptError, BrokenHashChainError, LedgerCorruptError
from cctvchain.ledger.store import Ledger
from cctvchain.ledger.stored import decode_stored_block, store_block_bytes


def build(
    path: Path, height: int, seed: int = 1, max_file_size: int = 1 << 26
) -> dict[bytes, bytes]:
    with Ledger.open(path, create=True, max_file_size=max_file_size) as led:
        if led.height == 0:
            led.append_block(genesis())
        while led.height < height:
            led.append_block(workload_block(seed, led.height, led.head_hash))
        return led.dump_index()


def frames(path: Path) -> list[GoodFrame]:
    items = list(BlockFiles(path / "blocks").scan())
    assert all(isinstance(item, GoodFrame) for item in items)
    return items  # type: ignore[return-value]


def flip_inside(path: Path, number: int) -> None:
    """Flip one byte in the middle of block ``number``'s frame payload."""
    location = frames(path)[number].location
    file = path / "blocks" / f"blockfile_{location.file:06d}"
    data = bytearray(file.read_bytes())
    data[location.offset + 12 + location.length // 2] ^= 0x01
    file.write_bytes(bytes(data))


def test_flipped_byte_in_a_committed_block(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    build(path, 10)
    record_in_5 = "tx-5-0"
    flip_inside(path, 5)
    with Ledger.open(path) as led:  # block 5 is below the savepoint: open is cheap
        assert led.get_block(4).number == 4 and led.get_block(6).number == 6
        with pytest.raises(
            BlockCorruptError, match="block 5 in blockfile_000000 at offset"
        ) as info:
            led.get_block(5)
        assert info.value.block_number == 5 and info.value.file == "blockfile_000000"
        assert "checksum mismatch" in str(info.value)
        with pytest.raises(BlockCorruptError, match="block 5 "):
            led.get_tx(record_in_5)
        with pytest.raises(BlockCorruptError, match="block 5 in blockfile_000000") as info:
            led.verify_chain()
        assert info.value.block_number == 5
    # A rebuild cannot get past block 5 either; it leaves the existing index in place.
    with pytest.raises(BlockCorruptError, match="block 5 in blockfile_000000"):
        Ledger.rebuild(path)
    with Ledger.open(path) as led:
        assert (led.height, led.get_block(9).number) == (10, 9)
    assert not (path / "index.rebuild").exists()


def test_flipped_byte_after_the_savepoint_refuses_open(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    build(path, 6)
    old_index = tmp_path / "old-index"
    shutil.copytree(path / "index", old_index)  # the index as it was at height 6
    full = build(path, 12)
    # With the old index back, blocks 6..11 are after its savepoint: they are replayed,
    # and the result is the index the live commits had built.
    shutil.rmtree(path / "index")
    shutil.copytree(old_index, path / "index")
    with Ledger.open(path) as led:
        assert led.dump_index() == full
    shutil.rmtree(path / "index")
    shutil.copytree(old_index, path / "index")
    flip_inside(path, 8)
    with pytest.raises(BlockCorruptError, match="block 8 in blockfile_000000 at offset") as info:
        Ledger.open(path)
    assert info.value.block_number == 8
    with pytest.raises(BlockCorruptError, match="block 8 in blockfile_000000"):
        Ledger.rebuild(path)


def test_broken_hash_chain_from_a_spliced_block_file(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    build(ours, 8, seed=1)
    build(theirs, 8, seed=2)  # same genesis, different blocks 1..7
    our_frames, their_frames = frames(ours), frames(theirs)
    assert our_frames[0].payload == their_frames[0].payload
    spliced = tmp_path / "spliced"
    (spliced / "blocks").mkdir(parents=True)
    data = b"".join(encode_frame(f.payload) for f in our_frames[:4] + their_frames[4:])
    (spliced / "blocks" / "blockfile_000000").write_bytes(data)
    with pytest.raises(
        BrokenHashChainError, match="broken hash chain at block 4 in blockfile_000000"
    ) as info:
        Ledger.open(spliced)
    assert (info.value.block_number, info.value.file) == (4, "blockfile_000000")
    with pytest.raises(BrokenHashChainError, match="block 4"):
        Ledger.rebuild(spliced)


def test_foreign_blocks_appended_after_the_savepoint_are_refused(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    build(ours, 5, seed=1)
    build(theirs, 8, seed=2)
    with (ours / "blocks" / "blockfile_000000").open("ab") as f:
        for frame in frames(theirs)[5:]:
            f.write(encode_frame(frame.payload))
    with pytest.raises(BrokenHashChainError, match="block 5 in blockfile_000000"):
        Ledger.open(ours)


def test_block_files_swapped_under_the_index_are_detected_on_open(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    build(ours, 6, seed=1)
    build(theirs, 6, seed=2)
    shutil.copy(theirs / "blocks" / "blockfile_000000", ours / "blocks" / "blockfile_000000")
    with pytest.raises(BlockCorruptError, match="block 5 in blockfile_000000"):
        Ledger.open(ours)


def test_torn_tail_is_truncated_and_the_ledger_continues(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger"
    index = build(path, 6)
    file = path / "blocks" / "blockfile_000000"
    size = file.stat().st_size
    next_one = workload_block(1, 6, decode_stored_block(frames(path)[-1].payload).hash())
    frame = encode_frame(store_block_bytes(next_one.encode()))
    with file.open("ab") as f:
        f.write(frame[: len(frame) // 2])
    with (
        caplog.at_level(logging.WARNING, logger="cctvchain.ledger.store"),
        Ledger.open(path) as led,
    ):
        assert "truncating a torn write at the end of blockfile_000000" in caplog.text
        assert file.stat().st_size == size
        assert (led.height, led.dump_index()) == (6, index)
        led.append_block(next_one)
        led.append_block(next_block(led, [kv_tx("after-torn", ("ns", "k", b"v"))]))
        assert led.verify_chain().height == 8


def test_block_files_shorter_than_the_savepoint_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    build(path, 6)
    file = path / "blocks" / "blockfile_000000"
    original = file.read_bytes()
    file.write_bytes(original[:-10])
    with pytest.raises(
        LedgerCorruptError,
        match=r"blockfile_000000 is .* shorter than the .* bytes the index has committed",
    ):
        Ledger.open(path)
    file.unlink()
    with pytest.raises(LedgerCorruptError, match="blockfile_000000 is missing"):
        Ledger.open(path)
    file.write_bytes(original)
    with Ledger.open(path) as led:
        assert led.height == 6
