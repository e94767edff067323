"""The history index holds keys only (Fabric's history database): the tx id, the value
and whether a write was a delete are read from the block. Old indexes whose entries
carry a record of both still read, verify and rebuild."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import plyvel
import pytest
from ledger_helpers import KvTx, genesis, kv_tx, next_block, sample_config, workload_block

from cctvchain.ledger import keys
from cctvchain.ledger.block import Block
from cctvchain.ledger.blockfile import encode_frame
from cctvchain.ledger.config import CONFIG_KEY, CONFIG_NAMESPACE
from cctvchain.ledger.errors import LedgerCorruptError
from cctvchain.ledger.genesis import ConfigTransaction
from cctvchain.ledger.records import HistoryEntry, HistoryRecord, Version
from cctvchain.ledger.store import INDEX_DIR, Ledger
from cctvchain.ledger.stored import store_block_bytes
from cctvchain.ledger.validation import TxValidationCode

SEED = 11
HEIGHT = 12  # genesis + 11 workload blocks: values, deletes, composite keys, invalid txs

# (namespace, key) -> [(tx_id, block, tx, value)] in commit order
Expected = dict[tuple[str, str], list[tuple[str, int, int, bytes | None]]]


def workload(height: int = HEIGHT) -> list[Block]:
    blocks = [genesis()]
    for number in range(1, height):
        blocks.append(workload_block(SEED, number, blocks[-1].hash()))
    return blocks


def expected_history(blocks: list[Block]) -> Expected:
    """What the history of every key must say, worked out from the blocks alone: each
    VALID transaction's last write of each key it writes."""
    expected: Expected = {
        (CONFIG_NAMESPACE, CONFIG_KEY): [
            (ConfigTransaction(sample_config()).tx_id, 0, 0, sample_config().encode())
        ]
    }
    for block in blocks[1:]:
        for index, data in enumerate(block.transactions):
            if block.metadata.tx_flags[index] != TxValidationCode.VALID:
                continue
            tx = KvTx.decode(data)
            last = {(w.namespace, w.key): w.value for w in tx.writes}
            for where, value in last.items():
                expected.setdefault(where, []).append((tx.tx_id, block.number, index, value))
    return expected


def as_plain(entries: list[HistoryEntry]) -> list[tuple[str, int, int, bytes | None]]:
    return [(e.tx_id, e.version.block, e.version.tx, e.value) for e in entries]


def build(path: Path, blocks: list[Block]) -> None:
    with Ledger.open(path, create=True) as led:
        for block in blocks:
            led.append_block(block)


def history_values(path: Path) -> dict[bytes, bytes]:
    db = plyvel.DB(str(path / INDEX_DIR))
    try:
        return dict(db.iterator(prefix=keys.HISTORY_PREFIX))
    finally:
        db.close()


def to_old_format(path: Path, expected: Expected, below: int) -> int:
    """Rewrite the history entries of blocks below ``below`` as an index written before
    this change held them (a record of the tx id and the value); returns how many."""
    db = plyvel.DB(str(path / INDEX_DIR))
    count = 0
    try:
        with db.write_batch(sync=True) as batch:
            for (namespace, key), writes in expected.items():
                for tx_id, block, tx, value in writes:
                    if block < below:
                        raw = HistoryRecord(tx_id, value).encode()
                        batch.put(keys.history_key(namespace, key, block, tx), raw)
                        count += 1
    finally:
        db.close()
    return count


@pytest.fixture(scope="module")
def blocks() -> list[Block]:
    return workload()


@pytest.fixture(scope="module")
def expected(blocks: list[Block]) -> Expected:
    found = expected_history(blocks)
    # The workload must exercise what history has to get right.
    entries = [entry for writes in found.values() for entry in writes]
    assert any(value is None for *_, value in entries)
    assert any(keys.is_composite_key(key) for _, key in found)
    assert any(len(writes) > 3 for writes in found.values())
    assert any(
        block.metadata.tx_flags.count(TxValidationCode.VALID) < len(block.transactions)
        for block in blocks
    )
    return found


@pytest.fixture
def ledger(tmp_path: Path, blocks: list[Block]) -> Iterator[Ledger]:
    build(tmp_path / "ledger", blocks)
    with Ledger.open(tmp_path / "ledger") as led:
        yield led


def test_history_reads_every_write_from_the_blocks(ledger: Ledger, expected: Expected) -> None:
    for (namespace, key), writes in expected.items():
        assert as_plain(ledger.get_history(namespace, key)) == writes, (namespace, key)
    with ledger.snapshot() as snap:
        for (namespace, key), writes in expected.items():
            assert as_plain(snap.get_history(namespace, key)) == writes
    namespace, key = next(w for w, writes in expected.items() if any(e[3] is None for e in writes))
    assert any(entry.is_delete for entry in ledger.get_history(namespace, key))


def test_the_history_index_holds_no_values(tmp_path: Path, blocks: list[Block]) -> None:
    build(tmp_path / "ledger", blocks)
    stored = history_values(tmp_path / "ledger")
    assert len(stored) == sum(len(w) for w in expected_history(blocks).values())
    assert {len(value) for value in stored.values()} == {0}


def test_history_queries_read_each_block_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    with Ledger.open(path, create=True) as led:
        led.append_block(genesis())
        many = [(f"ns{i % 2}", f"k{i}", bytes([i]) * 5) for i in range(6)]
        led.append_block(next_block(led, [kv_tx("t1", *many[:3]), kv_tx("t2", *many[3:])]))
    with Ledger.open(path) as led:
        resolver = led._history_resolver()
        assert resolver.blocks_read == 0
        for namespace, key, value in many:
            assert as_plain(led.get_history(namespace, key)) == [
                ("t1" if key < "k3" else "t2", 1, 0 if key < "k3" else 1, value)
            ]
        assert resolver.blocks_read == 1  # six entries, two transactions, one block
    with Ledger.open(path) as led:
        # Versions alone read nothing; an entry reads its block when its value is used.
        resolver = led._history_resolver()
        deferred = led.get_history("ns0", "k0", values=False)
        assert [e.version for e in deferred] == [Version(1, 0)]
        assert resolver.blocks_read == 0
        assert deferred[0].value == b"\x00" * 5 and deferred[0].tx_id == "t1"
        assert resolver.blocks_read == 1
        assert deferred == led.get_history("ns0", "k0")


def test_a_snapshot_sees_the_history_of_its_height(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "ledger", create=True) as led:
        led.append_block(genesis())
        led.append_block(next_block(led, [kv_tx("w1", ("ns", "k", b"one"))]))
        with led.snapshot() as snap:
            led.append_block(next_block(led, [kv_tx("w2", ("ns", "k", None))]))
            assert as_plain(snap.get_history("ns", "k")) == [("w1", 1, 0, b"one")]
        assert as_plain(led.get_history("ns", "k")) == [
            ("w1", 1, 0, b"one"),
            ("w2", 2, 0, None),
        ]


def test_an_old_format_index_still_answers_and_verifies(
    tmp_path: Path, blocks: list[Block], expected: Expected
) -> None:
    path = tmp_path / "ledger"
    build(path, blocks[:8])
    old = to_old_format(path, expected, below=8)
    assert old > 0
    with Ledger.open(path) as led:
        # Old entries answer from the index alone: no block is read for them.
        for (namespace, key), writes in expected.items():
            old_writes = [w for w in writes if w[1] < 8]
            assert as_plain(led.get_history(namespace, key)) == old_writes
        assert led._history_resolver().blocks_read == 0
        # The rest commits in the new form beside the old entries.
        for block in blocks[8:]:
            led.append_block(block)
        for (namespace, key), writes in expected.items():
            assert as_plain(led.get_history(namespace, key)) == writes
        assert led.verify_chain().height == HEIGHT
    stored = history_values(path)
    assert sum(1 for value in stored.values() if value) == old
    assert any(value == b"" for value in stored.values())
    # A rebuild writes every entry in the new form, and answers the same.
    with Ledger.rebuild(path) as rebuilt:
        for (namespace, key), writes in expected.items():
            assert as_plain(rebuilt.get_history(namespace, key)) == writes
    assert {len(value) for value in history_values(path).values()} == {0}


def test_verify_chain_checks_the_history_index(
    tmp_path: Path, blocks: list[Block], expected: Expected
) -> None:
    path = tmp_path / "ledger"
    build(path, blocks)
    (namespace, key), writes = next((w, e) for w, e in expected.items() if w[0] != "_config")
    tx_id, block, tx, value = writes[0]
    entry = keys.history_key(namespace, key, block, tx)

    def verify_after(change: dict[bytes, bytes | None]) -> None:
        db = plyvel.DB(str(path / INDEX_DIR))
        for raw_key, raw_value in change.items():
            if raw_value is None:
                db.delete(raw_key)
            else:
                db.put(raw_key, raw_value)
        db.close()
        with Ledger.open(path) as led:
            led.verify_chain()

    verify_after({entry: HistoryRecord(tx_id, value).encode()})  # the old form is fine
    with pytest.raises(LedgerCorruptError, match="another tx id or value in the history"):
        verify_after({entry: HistoryRecord(tx_id, b"forged").encode()})
    with pytest.raises(LedgerCorruptError, match="is not in the history index"):
        verify_after({entry: None})
    with pytest.raises(LedgerCorruptError, match=r"history index holds \d+ entries but"):
        verify_after({entry: b"", keys.history_key(namespace, key, 999, 0): b""})


def test_replay_and_rebuild_write_the_same_index(tmp_path: Path, blocks: list[Block]) -> None:
    """A crash after the block files' append but before the index batch: reopening
    replays the frames and writes the same index (history keys only) as the commits."""
    committed = tmp_path / "committed"
    build(committed, blocks)
    with Ledger.open(committed) as led:
        index = led.dump_index()
    crashed = tmp_path / "crashed"
    build(crashed, blocks[:5])
    with (crashed / "blocks" / "blockfile_000000").open("ab") as f:
        for block in blocks[5:]:
            f.write(encode_frame(store_block_bytes(block.encode())))
    with Ledger.open(crashed) as led:
        assert led.height == HEIGHT
        assert led.dump_index() == index
    copy = tmp_path / "copy"
    shutil.copytree(committed / "blocks", copy / "blocks")
    with Ledger.rebuild(copy) as rebuilt:
        assert rebuilt.dump_index() == index
        assert rebuilt.verify_chain().height == HEIGHT
