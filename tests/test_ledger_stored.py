"""Blocks stored compressed in the block files: the stored-block format, anchoring blocks
on a real in-process network, damage inside a compressed frame, and ledgers written
before compression (plain canonical payloads)."""

from __future__ import annotations

import shutil
import tracemalloc
import zlib
from pathlib import Path

import pytest
from cctv_helpers import Chain, b64, build_world, invoke
from ledger_helpers import genesis, kv_tx, next_block, workload_block

from cctvchain.ledger import store as store_module
from cctvchain.ledger import stored
from cctvchain.ledger.block import Block
from cctvchain.ledger.blockfile import BlockFiles, GoodFrame, encode_frame
from cctvchain.ledger.errors import BlockCorruptError
from cctvchain.ledger.store import Ledger
from cctvchain.ledger.stored import (
    COMPRESSED,
    StoredBlockError,
    decode_stored_block,
    load_block_bytes,
    store_block_bytes,
)

# -- the stored-block format ----------------------------------------------------------------


def test_a_block_round_trips_compressed() -> None:
    block = workload_block(1, 1, genesis().hash())
    canonical = block.encode()
    payload = store_block_bytes(canonical)
    assert payload[0] == COMPRESSED and len(payload) < len(canonical)
    assert zlib.decompress(payload[1:]) == canonical  # plain zlib after the marker
    assert load_block_bytes(payload) == canonical
    assert decode_stored_block(payload) == block
    assert decode_stored_block(payload).hash() == block.hash()


def test_canonical_bytes_pass_through() -> None:
    # Every payload written before compression is a canonical block: a CBOR map.
    canonical = genesis().encode()
    assert 0xA0 <= canonical[0] <= 0xBF
    assert load_block_bytes(canonical) is canonical
    assert decode_stored_block(canonical) == genesis()
    # Bytes that compression would not shrink are stored as they are.
    tiny = b"\xa1\x61a\x01"
    assert store_block_bytes(tiny) == tiny
    assert load_block_bytes(tiny) == tiny


def test_only_canonical_blocks_are_stored() -> None:
    for bad in (b"", b"\x01\x02", b"\x80"):
        with pytest.raises(StoredBlockError, match="must begin with a CBOR map head"):
            store_block_bytes(bad)


def test_a_block_beyond_the_inflate_limit_is_stored_uncompressed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    canonical = workload_block(1, 1, genesis().hash()).encode()
    monkeypatch.setattr(stored, "MAX_BLOCK_BYTES", len(canonical) - 1)
    # Compressed, it could never be read back under the limit; plain, it always can.
    assert store_block_bytes(canonical) == canonical


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", "empty stored block"),
        (b"\x00" + zlib.compress(b"\xa0"), "unknown stored-block marker 0x00"),
        (b"\x02" + zlib.compress(b"\xa0"), "unknown stored-block marker 0x02"),
        (b"\x81\x01", "unknown stored-block marker 0x81"),  # a CBOR array, not a map
        (b"\x01", "compressed block is truncated"),
        (b"\x01" + zlib.compress(b"\xa0" * 500)[:-6], "compressed block is truncated"),
        (b"\x01\x78\x9c\xff\xff", "compressed block does not inflate: "),
        (b"\x01" + zlib.compress(b"\xa0" * 500) + b"xy", "2 bytes after the end"),
        (b"\x01" + zlib.compress(b"\x01" + bytes(500)), "does not hold a CBOR map"),
        (b"\x01" + zlib.compress(b""), "does not hold a CBOR map"),
    ],
)
def test_bad_stored_blocks_are_refused(payload: bytes, error: str) -> None:
    with pytest.raises(StoredBlockError, match=error):
        load_block_bytes(payload)


def test_a_corrupt_compressed_block_fails_its_checksum() -> None:
    payload = bytearray(store_block_bytes(workload_block(1, 1, genesis().hash()).encode()))
    payload[len(payload) // 2] ^= 0x10
    with pytest.raises(StoredBlockError, match="compressed block does not inflate: "):
        load_block_bytes(bytes(payload))


def test_a_size_bomb_is_refused_without_inflating_it() -> None:
    deflater = zlib.compressobj(9)
    parts = [b"\x01", deflater.compress(b"\xa0")]
    zeros = bytes(1 << 20)
    parts += [deflater.compress(zeros) for _ in range(64)]  # 64 MiB inflated
    bomb = b"".join(parts) + deflater.flush()
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(StoredBlockError, match="inflates beyond the 1048576-byte limit"):
            load_block_bytes(bomb, limit=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # never near the 64 MiB the payload inflates to
    # Exactly at the limit is fine.
    exact = b"\x01" + zlib.compress(b"\xa0" + bytes((1 << 20) - 1))
    assert len(load_block_bytes(exact, limit=1 << 20)) == 1 << 20
    with pytest.raises(StoredBlockError, match="inflates beyond the 1048575-byte limit"):
        load_block_bytes(exact, limit=(1 << 20) - 1)


# -- anchoring blocks on a real network ------------------------------------------------------


def test_an_anchor_block_is_stored_smaller_and_reads_back_identical(tmp_path: Path) -> None:
    world = build_world(tmp_path / "net")
    net = world.net
    try:
        camera = world.approved_camera("Z-1")
        chain = Chain("Z-1", net.clock.now_ms - 10_000)
        numbers = []
        for _ in range(2):
            segment = chain.next()
            net.clock.advance(10_000)
            committed = invoke(net, camera, "AnchorSegment", b64(segment))
            chain.accept(segment)
            numbers.append(committed.event.block)
        for ledger in (net.peers[0].ledger, net.orderer_ledger):
            frames = good_frames(ledger.path)  # frame n holds block n
            for number in numbers:
                canonical = ledger.get_block(number).encode()
                payload = frames[number].payload
                assert payload[0] == COMPRESSED
                assert len(payload) < 0.8 * len(canonical), (len(payload), len(canonical))
                # Decoded without the ledger's read path: the canonical bytes, same hash.
                independent = Block.decode(zlib.decompress(payload[1:]))
                assert independent.encode() == canonical
                assert independent.hash() == ledger.get_block_hash(number)
                cut = net.orderer_ledger.get_block(number)  # as the orderer cut it
                assert (independent.hash(), independent.transactions) == (
                    cut.hash(),
                    cut.transactions,
                )
            assert ledger.verify_chain().height == ledger.height
    finally:
        net.close()


# -- damage inside a compressed frame ----------------------------------------------------------


def build(path: Path, height: int) -> dict[bytes, bytes]:
    with Ledger.open(path, create=True) as led:
        if led.height == 0:
            led.append_block(genesis())
        while led.height < height:
            led.append_block(workload_block(1, led.height, led.head_hash))
        return led.dump_index()


def good_frames(path: Path) -> list[GoodFrame]:
    items = list(BlockFiles(path / "blocks").scan())
    assert all(isinstance(item, GoodFrame) for item in items)
    return items  # type: ignore[return-value]


def reframe(path: Path, number: int, payload: bytes) -> int:
    """Replace block ``number``'s payload with one of the same length under a *valid*
    frame checksum (damage the CRC cannot see); return the frame's offset."""
    location = good_frames(path)[number].location
    assert len(payload) == location.length
    file = path / "blocks" / f"blockfile_{location.file:06d}"
    data = bytearray(file.read_bytes())
    data[location.offset : location.end] = encode_frame(payload)
    file.write_bytes(bytes(data))
    return location.offset


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("deflate", "does not decode: compressed block does not inflate"),
        ("marker", "does not decode: unknown stored-block marker 0x02"),
        ("cbor", "does not decode: .*trailing bytes after the value"),
    ],
)
def test_a_compressed_payload_that_does_not_inflate_is_damage_named_by_block(
    tmp_path: Path, change: str, reason: str
) -> None:
    path = tmp_path / "ledger"
    build(path, 4)
    old_index = tmp_path / "index-at-4"
    shutil.copytree(path / "index", old_index)
    build(path, 8)
    payload = bytearray(good_frames(path)[5].payload)
    assert payload[0] == COMPRESSED
    if change == "deflate":
        payload[len(payload) // 2] ^= 0x10
    elif change == "marker":
        payload[0] = 0x02
    else:
        # A valid zlib stream (level 0: 11 bytes of overhead) of exactly the frame's
        # length whose bytes are an empty CBOR map and then zeros: not a block.
        inner = b"\xa0" + bytes(len(payload) - 1 - 11 - 1)
        payload = bytearray(b"\x01" + zlib.compress(inner, 0))
        assert len(payload) == good_frames(path)[5].location.length
    offset = reframe(path, 5, bytes(payload))
    where = f"block 5 in blockfile_000000 at offset {offset} {reason}"
    with Ledger.open(path) as led:  # below the savepoint: found when read
        assert led.get_block(4).number == 4 and led.get_block(6).number == 6
        with pytest.raises(BlockCorruptError, match=where) as info:
            led.get_block(5)
        assert (info.value.block_number, info.value.file) == (5, "blockfile_000000")
        with pytest.raises(BlockCorruptError, match=where):
            led.verify_chain()
    with pytest.raises(BlockCorruptError, match=where):
        Ledger.rebuild(path)
    # After the savepoint: replaying refuses to open, never truncates.
    shutil.rmtree(path / "index")
    shutil.copytree(old_index, path / "index")
    size = (path / "blocks" / "blockfile_000000").stat().st_size
    with pytest.raises(BlockCorruptError, match=where):
        Ledger.open(path)
    assert (path / "blocks" / "blockfile_000000").stat().st_size == size


# -- ledgers written before compression ---------------------------------------------------------


def test_a_ledger_written_before_compression_opens_replays_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger"
    with monkeypatch.context() as patch:
        # What the ledger wrote before: the canonical bytes as the frame payload.
        patch.setattr(store_module, "store_block_bytes", lambda canonical: canonical)
        old_index = build(path, 6)
    old_files = (path / "blocks" / "blockfile_000000").read_bytes()
    plain = good_frames(path)
    assert all(0xA0 <= f.payload[0] <= 0xBF for f in plain)
    assert [Block.decode(f.payload).number for f in plain] == list(range(6))

    with Ledger.open(path) as led:
        assert led.dump_index() == old_index
        assert [led.get_block(n).number for n in range(6)] == list(range(6))
        assert led.verify_chain().height == 6
        # New blocks go in compressed, after the plain ones, in the same file.
        led.append_block(workload_block(1, 6, led.head_hash))
        led.append_block(next_block(led, [kv_tx("after-upgrade", ("ns", "k", b"v"))]))
        assert led.verify_chain().height == 8
        mixed_index = led.dump_index()
        heads = [led.get_block_hash(n) for n in range(8)]
    assert (path / "blocks" / "blockfile_000000").read_bytes().startswith(old_files)
    frames = good_frames(path)
    assert [f.payload[0] == COMPRESSED for f in frames] == [False] * 6 + [True] * 2

    # Replayed from the block files alone (index lost), and rebuilt: the same index.
    shutil.rmtree(path / "index")
    with Ledger.open(path) as led:
        assert led.dump_index() == mixed_index
        assert [led.get_block_hash(n) for n in range(8)] == heads
    with Ledger.rebuild(path) as led:
        assert led.dump_index() == mixed_index
        assert led.verify_chain().height == 8
