"""The LevelDB-backed ledger: commit, state, history, tx index, snapshots, reopen."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from ledger_helpers import genesis, kv_tx, next_block, sample_config

from cctvchain.ledger.block import make_block
from cctvchain.ledger.config import CONFIG_KEY, CONFIG_NAMESPACE
from cctvchain.ledger.errors import (
    BlockNotFoundError,
    BlockRejectedError,
    LedgerClosedError,
    LedgerInUseError,
    LedgerNotFoundError,
)
from cctvchain.ledger.genesis import ConfigTransaction, make_config_block
from cctvchain.ledger.keys import create_composite_key
from cctvchain.ledger.records import HistoryEntry, Version, VersionedValue
from cctvchain.ledger.store import Ledger
from cctvchain.ledger.validation import TxValidationCode

V = TxValidationCode


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger.open(tmp_path / "ledger", create=True)
    led.append_block(genesis())
    yield led
    led.close()


def test_open_requires_a_ledger(tmp_path: Path) -> None:
    with pytest.raises(LedgerNotFoundError, match="no ledger at"):
        Ledger.open(tmp_path / "missing")
    with Ledger.open(tmp_path / "new", create=True) as led:
        assert led.height == 0
        assert led.head_hash == bytes(32)
        with pytest.raises(BlockNotFoundError, match="the ledger is empty"):
            led.get_block(0)


def test_genesis_and_channel_config(ledger: Ledger) -> None:
    block = genesis()
    assert ledger.height == 1
    assert ledger.head_hash == block.hash()
    assert ledger.get_block(0) == block
    assert ledger.get_block_by_hash(block.hash()) == block
    assert ledger.get_block_by_hash(b"\x01" * 32) is None
    assert ledger.channel_config() == sample_config()
    tx_id = ConfigTransaction(sample_config()).tx_id
    record = ledger.get_tx(tx_id)
    assert record is not None
    assert (record.block_number, record.tx_number, record.validation_code) == (0, 0, V.VALID)
    assert record.data == block.transactions[0]
    assert ledger.get_state(CONFIG_NAMESPACE, CONFIG_KEY) == VersionedValue(
        sample_config().encode(), Version(0, 0)
    )


def test_state_versions_deletes_and_history(ledger: Ledger) -> None:
    ledger.append_block(
        next_block(
            ledger,
            [
                kv_tx("a", ("ns", "k1", b"v1"), ("ns", "k2", b"v2")),
                kv_tx("b", ("ns", "k1", b"v1b")),
            ],
        )
    )
    ledger.append_block(next_block(ledger, [kv_tx("c", ("ns", "k2", None), ("ns", "k3", b"v3"))]))
    assert ledger.height == 3
    assert ledger.get_state("ns", "k1") == VersionedValue(b"v1b", Version(1, 1))
    assert ledger.get_state("ns", "k2") is None
    assert ledger.get_state("ns", "k3") == VersionedValue(b"v3", Version(2, 0))
    assert ledger.get_state("other", "k1") is None
    assert ledger.get_history("ns", "k1") == [
        HistoryEntry("a", Version(1, 0), b"v1"),
        HistoryEntry("b", Version(1, 1), b"v1b"),
    ]
    history = ledger.get_history("ns", "k2")
    assert history == [
        HistoryEntry("a", Version(1, 0), b"v2"),
        HistoryEntry("c", Version(2, 0), None),
    ]
    assert history[1].is_delete
    # Rewriting a deleted key starts a new version and extends the history.
    ledger.append_block(next_block(ledger, [kv_tx("d", ("ns", "k2", b"again"))]))
    assert ledger.get_state("ns", "k2") == VersionedValue(b"again", Version(3, 0))
    assert [e.tx_id for e in ledger.get_history("ns", "k2")] == ["a", "c", "d"]
    assert ledger.get_history("ns", "never") == []


def test_invalid_transactions_are_indexed_but_change_nothing(ledger: Ledger) -> None:
    ledger.append_block(next_block(ledger, [kv_tx("w", ("ns", "k", b"old"))]))
    block = next_block(
        ledger,
        [
            kv_tx("conflict", ("ns", "k", b"new"), ("ns", "fresh", b"x")),
            b"\xa0 not a message",
            kv_tx("ok", ("ns", "k2", b"y")),
        ],
        [V.MVCC_READ_CONFLICT, V.BAD_PAYLOAD, V.VALID],
    )
    ledger.append_block(block)
    assert ledger.get_state("ns", "k") == VersionedValue(b"old", Version(1, 0))
    assert ledger.get_state("ns", "fresh") is None
    assert [e.tx_id for e in ledger.get_history("ns", "k")] == ["w"]
    assert ledger.get_history("ns", "fresh") == []
    record = ledger.get_tx("conflict")
    assert record is not None
    assert (record.block_number, record.tx_number) == (2, 0)
    assert record.validation_code_name == "MVCC_READ_CONFLICT"
    ok = ledger.get_tx("ok")
    assert ok is not None and (ok.tx_number, ok.validation_code) == (2, V.VALID)
    assert ledger.get_state("ns", "k2") == VersionedValue(b"y", Version(2, 2))
    assert ledger.get_block(2).metadata.tx_flags == bytes([11, 2, 0])


def test_duplicate_tx_ids_keep_the_first(ledger: Ledger) -> None:
    ledger.append_block(next_block(ledger, [kv_tx("dup", ("ns", "x", b"1"))], [V.VALID]))
    ledger.append_block(
        next_block(
            ledger,
            [
                kv_tx("dup", ("ns", "x", b"2")),
                kv_tx("new", ("ns", "y", b"1")),
                kv_tx("new", ("ns", "y", b"2")),
            ],
            [V.DUPLICATE_TXID, V.VALID, V.DUPLICATE_TXID],
        )
    )
    first = ledger.get_tx("dup")
    assert first is not None and (first.block_number, first.tx_number, first.validation_code) == (
        1,
        0,
        V.VALID,
    )
    new = ledger.get_tx("new")
    assert new is not None and (new.block_number, new.tx_number) == (2, 1)
    assert ledger.get_state("ns", "x") == VersionedValue(b"1", Version(1, 0))
    assert ledger.get_state("ns", "y") == VersionedValue(b"1", Version(2, 1))
    # A first occurrence is indexed whatever its flag.
    ledger.append_block(next_block(ledger, [kv_tx("late", ("ns", "z", b"1"))], [V.DUPLICATE_TXID]))
    late = ledger.get_tx("late")
    assert late is not None and late.validation_code == V.DUPLICATE_TXID
    assert ledger.get_state("ns", "z") is None


def test_append_refuses_bad_blocks_and_writes_nothing(ledger: Ledger) -> None:
    ledger.append_block(next_block(ledger, [kv_tx("seen", ("ns", "k", b"v"))]))
    before = (ledger.height, ledger.head_hash, ledger.dump_index())
    blocks_file = ledger.path / "blocks" / "blockfile_000000"
    size = blocks_file.stat().st_size
    cases = [
        (make_block(5, ledger.head_hash, [kv_tx("x")], [V.VALID]), "expected block number 2"),
        (
            make_block(2, b"\x07" * 32, [kv_tx("x")], [V.VALID]),
            "does not match the hash of block 1",
        ),
        (next_block(ledger, [b"\xa0"]), "transaction 0 is flagged VALID but does not decode"),
        (
            next_block(ledger, [sample_config().encode()]),
            "flagged VALID but config.channel has no tx id",
        ),
        (next_block(ledger, [kv_tx("seen")]), "tx id seen was already used"),
        (next_block(ledger, [kv_tx("twice"), kv_tx("twice")]), "tx id twice was already used"),
        (next_block(ledger, [kv_tx("bad", ("a\x00b", "k", b"v"))]), "contains a NUL"),
        (next_block(ledger, [kv_tx("bad", ("ns", "", b"v"))]), "key must not be empty"),
    ]
    for block, message in cases:
        with pytest.raises(BlockRejectedError, match=message):
            ledger.append_block(block)
        assert (ledger.height, ledger.head_hash, ledger.dump_index()) == before
        assert blocks_file.stat().st_size == size
    ledger.append_block(next_block(ledger, [kv_tx("fine", ("ns", "k", b"w"))]))
    assert ledger.height == 3


def keys_in(items: Iterable[tuple[str, VersionedValue]]) -> list[str]:
    return [key for key, _ in items]


def test_range_scans_and_composite_keys(ledger: Ledger) -> None:
    cam = [
        create_composite_key("camera", [org, cid])
        for org, cid in [("City", "1"), ("City", "2"), ("Police", "1")]
    ]
    other = create_composite_key("cameraX", ["City"])
    writes = [("ns", k, k.encode()) for k in ["a", "b", "ba", "c", "d\x00e"]]
    writes += [("ns", k, b"cam") for k in [*cam, other]] + [("ns2", "b", b"other ns")]
    ledger.append_block(next_block(ledger, [kv_tx("w", *writes)]))
    assert keys_in(ledger.get_state_range("ns", "b", "c")) == ["b", "ba"]
    assert keys_in(ledger.get_state_range("ns", "b")) == ["b", "ba", "c", "d\x00e"]
    assert keys_in(ledger.get_state_range("ns", "", "b")) == [*sorted([*cam, other]), "a"]
    assert keys_in(ledger.get_state_range("ns2")) == ["b"]
    values = dict(ledger.get_state_range("ns", "c", "d\x01"))
    assert values == {
        "c": VersionedValue(b"c", Version(1, 0)),
        "d\x00e": VersionedValue(b"d\x00e", Version(1, 0)),
    }
    assert keys_in(ledger.get_state_by_partial_composite_key("ns", "camera", ["City"])) == cam[:2]
    assert keys_in(ledger.get_state_by_partial_composite_key("ns", "camera")) == cam
    assert keys_in(ledger.get_state_by_partial_composite_key("ns2", "camera")) == []


def test_history_of_keys_with_nul_does_not_collide(ledger: Ledger) -> None:
    ledger.append_block(
        next_block(ledger, [kv_tx("t1", ("ns", "a", b"1"), ("ns", "a\x00b", b"2"))])
    )
    ledger.append_block(
        next_block(ledger, [kv_tx("t2", ("ns", "a\x00b", b"3"), ("ns", "a\x00", b"4"))])
    )
    assert [e.value for e in ledger.get_history("ns", "a")] == [b"1"]
    assert [e.value for e in ledger.get_history("ns", "a\x00b")] == [b"2", b"3"]
    assert [e.value for e in ledger.get_history("ns", "a\x00")] == [b"4"]


def test_snapshot_is_a_consistent_view(ledger: Ledger) -> None:
    ledger.append_block(next_block(ledger, [kv_tx("t1", ("ns", "k", b"1"), ("ns", "j", b"1"))]))
    with ledger.snapshot() as snap:
        assert (snap.height, snap.head_hash) == (2, ledger.head_hash)
        ledger.append_block(next_block(ledger, [kv_tx("t2", ("ns", "k", b"2"), ("ns", "j", None))]))
        assert snap.get_state("ns", "k") == VersionedValue(b"1", Version(1, 0))
        assert [k for k, _ in snap.get_state_range("ns")] == ["j", "k"]
        assert len(snap.get_history("ns", "k")) == 1
        assert snap.height == 2
        assert not snap.has_tx("t2") and snap.has_tx("t1")
    assert ledger.get_state("ns", "k") == VersionedValue(b"2", Version(2, 0))
    assert [k for k, _ in ledger.get_state_range("ns")] == ["k"]


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    with Ledger.open(path, create=True, max_file_size=4096) as led:
        led.append_block(genesis())
        for n in range(1, 30):
            led.append_block(next_block(led, [kv_tx(f"t{n}", ("ns", f"k{n % 7}", b"x" * 300))]))
        index, head = led.dump_index(), led.head_hash
        assert len(list((path / "blocks").iterdir())) > 2  # rolled over
    with Ledger.open(path) as led:
        assert (led.height, led.head_hash) == (30, head)
        assert led.dump_index() == index
        assert led.get_block(17).number == 17
        assert led.channel_config() == sample_config()
        led.append_block(next_block(led, [kv_tx("after", ("ns", "k0", b"y"))]))
        assert led.verify_chain().height == 31


def test_config_update_changes_the_channel_config(ledger: Ledger) -> None:
    updated = sample_config(sequence=1)
    ledger.append_block(
        make_config_block(1, ledger.head_hash, ConfigTransaction(updated), [V.VALID])
    )
    assert ledger.channel_config() == updated
    assert len(ledger.get_history(CONFIG_NAMESPACE, CONFIG_KEY)) == 2


def test_errors_for_missing_things_and_closed_ledger(ledger: Ledger) -> None:
    with pytest.raises(BlockNotFoundError, match="block 1 does not exist"):
        ledger.get_block(1)
    with pytest.raises(BlockNotFoundError):
        ledger.get_block(-1)
    assert ledger.get_tx("nope") is None
    ledger.close()
    with pytest.raises(LedgerClosedError):
        ledger.get_state("ns", "k")
    with pytest.raises(LedgerClosedError):
        ledger.append_block(genesis())


def test_ledger_in_use_by_this_or_another_process(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    with Ledger.open(path, create=True):
        with pytest.raises(LedgerInUseError, match="in use by another process"):
            Ledger.open(path)
        code = (
            "import sys\n"
            "from cctvchain.ledger.store import Ledger\n"
            "from cctvchain.ledger.errors import LedgerInUseError\n"
            "try:\n"
            f"    Ledger.open({str(path)!r})\n"
            "except LedgerInUseError as e:\n"
            "    print('in use:', e); sys.exit(3)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 3, result.stderr
        assert "in use by another process" in result.stdout
    with Ledger.open(path) as led:  # released on close
        assert led.height == 0


def test_failed_index_write_requires_reopen_which_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger"
    led = Ledger.open(path, create=True)
    led.append_block(genesis())
    block = next_block(led, [kv_tx("t", ("ns", "k", b"v"))])

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(led, "_apply", fail)
    with pytest.raises(OSError, match="disk full"):
        led.append_block(block)
    monkeypatch.undo()
    with pytest.raises(LedgerClosedError, match="must be reopened"):
        led.append_block(block)
    led.close()
    with Ledger.open(path) as again:  # the frame was durable: replayed
        assert again.height == 2
        assert again.get_state("ns", "k") == VersionedValue(b"v", Version(1, 0))


def test_verify_chain_and_rebuild_agree(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    with Ledger.open(path, create=True, max_file_size=2048) as led:
        led.append_block(genesis())
        for n in range(1, 20):
            led.append_block(
                next_block(
                    led,
                    [kv_tx(f"t{n}", ("ns", f"k{n % 5}", bytes([n]) * 200)), kv_tx("t1")],
                    [V.VALID, V.DUPLICATE_TXID],
                )
            )
        report = led.verify_chain()
        assert (report.height, report.head_hash, report.transactions) == (20, led.head_hash, 39)
        assert report.files > 1
        index = led.dump_index()
    with Ledger.rebuild(path) as rebuilt:
        assert rebuilt.dump_index() == index
