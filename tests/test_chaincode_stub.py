"""The contract stub over a real ledger snapshot: what it reads, records and refuses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ledger_helpers import genesis, kv_tx, next_block, sample_config

from cctvchain.chaincode import (
    ChaincodeStub,
    ContractError,
    Creator,
    KeyModification,
    SimulationLimits,
    TxContext,
)
from cctvchain.ledger.config import CONFIG_KEY, CONFIG_NAMESPACE
from cctvchain.ledger.keys import create_composite_key
from cctvchain.ledger.reader import LedgerSnapshot
from cctvchain.ledger.records import Version
from cctvchain.ledger.store import Ledger
from cctvchain.msp.testing import InMemoryOrg
from cctvchain.tx.rwset import KVRead, KVWriteEntry, NamespaceRWSet, RangeQueryInfo

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NS = "registry"
CAM_1_1 = create_composite_key("cam", ["c1", "s1"])
CAM_1_2 = create_composite_key("cam", ["c1", "s2"])
CAM_2_1 = create_composite_key("cam", ["c2", "s1"])
TX_ID = "ab" * 32


@pytest.fixture(scope="module")
def creator() -> Creator:
    org = InMemoryOrg("CityCCTV", "CityCCTVMSP", NOW)
    alice = org.new_identity("alice", "client", attributes={"role": "CRM"})
    identity = org.msp().validate(alice.cert_pem, NOW)
    return Creator(
        msp_id=identity.msp_id,
        name=identity.name,
        id_type=identity.id_type,
        attributes=dict(identity.attributes),
        cert=alice.cert_pem,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """Genesis, then block 1 (tx 0: a, b, c and composite keys; tx 1: d and another
    namespace), then block 2 (tx 0: a updated, c deleted)."""
    led = Ledger.open(tmp_path / "ledger", create=True)
    led.append_block(genesis())
    led.append_block(
        next_block(
            led,
            [
                kv_tx(
                    "tx-1-0",
                    (NS, "a", b"1"),
                    (NS, "b", b"2"),
                    (NS, "c", b"3"),
                    (NS, CAM_1_1, b"x"),
                    (NS, CAM_1_2, b"y"),
                    (NS, CAM_2_1, b"z"),
                ),
                kv_tx("tx-1-1", (NS, "d", b"4"), ("other", "a", b"elsewhere")),
            ],
        )
    )
    led.append_block(next_block(led, [kv_tx("tx-2-0", (NS, "a", b"A2"), (NS, "c", None))]))
    yield led
    led.close()


@pytest.fixture
def snapshot(ledger: Ledger) -> Iterator[LedgerSnapshot]:
    with ledger.snapshot() as snap:
        yield snap


def make_stub(
    reader: LedgerSnapshot,
    creator: Creator,
    limits: SimulationLimits | None = None,
    namespace: str = NS,
) -> ChaincodeStub:
    context = TxContext("cctv", TX_ID, 1_767_225_600_123, creator)
    return ChaincodeStub(namespace, reader, context, limits or SimulationLimits())


def only_ns(stub: ChaincodeStub) -> NamespaceRWSet:
    (ns,) = stub.rwset().namespaces
    assert ns.namespace == stub.namespace
    return ns


# -- reads ----------------------------------------------------------------------------------


def test_get_state_records_the_committed_version(
    snapshot: LedgerSnapshot, creator: Creator
) -> None:
    stub = make_stub(snapshot, creator)
    assert stub.get_state("a") == b"A2"
    assert stub.get_state("b") == b"2"
    assert stub.get_state("d") == b"4"
    assert stub.get_state("c") is None  # deleted in block 2
    assert stub.get_state("never") is None
    assert stub.get_state("a") == b"A2"  # a second read records nothing new
    assert only_ns(stub).reads == (
        KVRead("a", Version(2, 0)),
        KVRead("b", Version(1, 0)),
        KVRead("c", None),
        KVRead("d", Version(1, 1)),
        KVRead("never", None),
    )
    assert only_ns(stub).writes == ()


def test_namespaces_are_separate(snapshot: LedgerSnapshot, creator: Creator) -> None:
    other = make_stub(snapshot, creator, namespace="other")
    assert other.get_state("a") == b"elsewhere"
    assert other.get_state("b") is None
    assert only_ns(other).reads == (KVRead("a", Version(1, 1)), KVRead("b", None))


def test_reads_never_see_the_transactions_own_writes(
    snapshot: LedgerSnapshot, creator: Creator
) -> None:
    stub = make_stub(snapshot, creator)
    stub.put_state("a", b"mine")
    stub.put_state("new", b"fresh")
    stub.del_state("b")
    # Fabric's semantics: reads describe committed state only.
    assert stub.get_state("a") == b"A2"
    assert stub.get_state("new") is None
    assert stub.get_state("b") == b"2"
    ns = only_ns(stub)
    assert ns.reads == (
        KVRead("a", Version(2, 0)),
        KVRead("b", Version(1, 0)),
        KVRead("new", None),
    )
    assert [w.key for w in ns.writes] == ["a", "b", "new"]


def test_snapshot_isolates_simulation_from_a_block_committed_meanwhile(
    ledger: Ledger, creator: Creator
) -> None:
    with ledger.snapshot() as snap:
        stub = make_stub(snap, creator)
        assert stub.get_state("a") == b"A2"
        ledger.append_block(
            next_block(ledger, [kv_tx("tx-3-0", (NS, "a", b"A3"), (NS, "e", b"5"))])
        )
        # The committed state moved on; the simulation still sees its snapshot.
        committed = ledger.get_state(NS, "a")
        assert committed is not None and committed.version == Version(3, 0)
        assert stub.get_state("a") == b"A2"
        assert stub.get_state("e") is None
        assert [k for k, _ in stub.get_state_by_range("a", "")] == ["a", "b", "d"]
        assert only_ns(stub).reads == (KVRead("a", Version(2, 0)), KVRead("e", None))


# -- writes ---------------------------------------------------------------------------------


def test_writes_are_recorded_last_one_wins_sorted_by_key(
    snapshot: LedgerSnapshot, creator: Creator
) -> None:
    stub = make_stub(snapshot, creator)
    stub.put_state("z", b"1")
    stub.put_state("m", b"first")
    stub.del_state("m")  # put then delete: a delete
    stub.del_state("k")
    stub.put_state("k", b"back")  # delete then put: a put
    stub.put_state("a", b"one")
    stub.put_state("a", b"two")
    stub.put_state(CAM_1_1, b"composite")
    assert only_ns(stub).writes == (
        KVWriteEntry(CAM_1_1, False, b"composite"),  # NUL sorts first
        KVWriteEntry("a", False, b"two"),
        KVWriteEntry("k", False, b"back"),
        KVWriteEntry("m", True, b""),
        KVWriteEntry("z", False, b"1"),
    )
    assert only_ns(stub).reads == ()


def test_an_empty_simulation_has_an_empty_rwset(snapshot: LedgerSnapshot, creator: Creator) -> None:
    stub = make_stub(snapshot, creator)
    stub.get_history_for_key("a")  # history reads are not recorded
    assert stub.rwset().namespaces == ()


def test_write_set_size_counts_only_the_last_write_of_a_key(
    snapshot: LedgerSnapshot, creator: Creator
) -> None:
    stub = make_stub(snapshot, creator, SimulationLimits(max_write_set_bytes=100))
    for _ in range(10):
        stub.put_state("k", b"v" * 90)  # 91 bytes each time, not 910
    stub.put_state("j", b"")  # 92 in all
    with pytest.raises(ContractError, match="write set exceeds 100 bytes") as info:
        stub.put_state("x", b"123456789")
    assert info.value.status == 413
    # The refused write was not recorded and did not count: the contract may go on.
    stub.put_state("x", b"1234567")
    assert [w.key for w in only_ns(stub).writes] == ["j", "k", "x"]
    with pytest.raises(ContractError, match="write set exceeds"):
        stub.put_state("y", b"")


def test_value_checks(snapshot: LedgerSnapshot, creator: Creator) -> None:
    stub = make_stub(snapshot, creator, SimulationLimits(max_value_bytes=8))
    stub.put_state("ok", b"12345678")
    with pytest.raises(ContractError, match="exceeds 8 bytes") as info:
        stub.put_state("big", b"123456789")
    assert info.value.status == 400
    with pytest.raises(ContractError, match="must be bytes, got str"):
        stub.put_state("text", "not bytes")  # type: ignore[arg-type]
    with pytest.raises(ContractError, match="must be bytes, got bytearray"):
        stub.put_state("ba", bytearray(b"x"))  # type: ignore[arg-type]
    assert [w.key for w in only_ns(stub).writes] == ["ok"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "key must not be empty"),
        ("\ud800", "not valid Unicode"),
        (b"bytes", "key must be text, got bytes"),
        ("k" * 33, "key longer than 32 bytes"),
        ("é" * 17, "key longer than 32 bytes"),  # 34 UTF-8 bytes
    ],
)
def test_key_validation(
    snapshot: LedgerSnapshot, creator: Creator, key: object, message: str
) -> None:
    stub = make_stub(snapshot, creator, SimulationLimits(max_key_bytes=32))
    for call in (
        lambda: stub.get_state(key),  # type: ignore[arg-type]
        lambda: stub.put_state(key, b"v"),  # type: ignore[arg-type]
        lambda: stub.del_state(key),  # type: ignore[arg-type]
        lambda: stub.get_history_for_key(key),  # type: ignore[arg-type]
    ):
        with pytest.raises(ContractError, match=message) as info:
            call()
        assert info.value.status == 400
    assert stub.rwset().namespaces == ()
    stub.put_state("k" * 32, b"v")  # exactly the limit is fine


# -- range queries --------------------------------------------------------------------------


def test_range_excludes_composite_keys_and_records_what_it_saw(
    snapshot: LedgerSnapshot, creator: Creator
) -> None:
    stub = make_stub(snapshot, creator)
    assert stub.get_state_by_range("", "") == [("a", b"A2"), ("b", b"2"), ("d", b"4")]
    assert stub.get_state_by_range("b", "d") == [("b", b"2")]  # end excluded
    assert stub.get_state_by_range("e", "") == []
    ns = only_ns(stub)
    assert ns.range_queries == (
        RangeQueryInfo(
            "",
            "",
            True,
            (KVRead("a", Version(2, 0)), KVRead("b", Version(1, 0)), KVRead("d", Version(1, 1))),
        ),
        RangeQueryInfo("b", "d", True, (KVRead("b", Version(1, 0)),)),
        RangeQueryInfo("e", "", True, ()),
    )
    assert ns.reads == ()  # range reads are not point reads


def test_range_bounds_must_be_simple_keys(snapshot: LedgerSnapshot, creator: Creator) -> None:
    stub = make_stub(snapshot, creator)
    with pytest.raises(ContractError, match="simple keys must not start with NUL"):
        stub.get_state_by_range(CAM_1_1, "")
    with pytest.raises(ContractError, match="simple keys must not start with NUL"):
        stub.get_state_by_range("a", "\x00")
    with pytest.raises(ContractError, match="not valid Unicode"):
        stub.get_state_by_range("\udfff", "")
    assert stub.rwset().namespaces == ()


def test_too_many_range_results(snapshot: LedgerSnapshot, creator: Creator) -> None:
    stub = make_stub(snapshot, creator, SimulationLimits(max_range_results=2))
    assert len(stub.get_state_by_range("b", "")) == 2  # composite keys do not count
    with pytest.raises(ContractError, match="more than 2 results") as info:
        stub.get_state_by_range("", "")
    assert info.value.status == 413
    with pytest.raises(ContractError, match="more than 2 results"):
        stub.get_state_by_partial_composite_key("cam")


def test_partial_composite_key_query(snapshot: LedgerSnapshot, creator: Creator) -> None:
    stub = make_stub(snapshot, creator)
    assert stub.get_state_by_partial_composite_key("cam", ["c1"]) == [
        (CAM_1_1, b"x"),
        (CAM_1_2, b"y"),
    ]
    assert [k for k, _ in stub.get_state_by_partial_composite_key("cam")] == [
        CAM_1_1,
        CAM_1_2,
        CAM_2_1,
    ]
    assert stub.get_state_by_partial_composite_key("cam", ["c3"]) == []
    assert stub.get_state_by_partial_composite_key("ca") == []  # no prefix match on type
    queries = only_ns(stub).range_queries
    prefix = create_composite_key("cam", ["c1"])
    assert queries[0] == RangeQueryInfo(
        prefix,
        prefix + "\U0010ffff",
        True,
        (KVRead(CAM_1_1, Version(1, 0)), KVRead(CAM_1_2, Version(1, 0))),
    )
    assert [len(q.reads) for q in queries] == [2, 3, 0, 0]
    with pytest.raises(ContractError, match="contains U\\+0000"):
        stub.get_state_by_partial_composite_key("cam", ["bad\x00part"])


def test_composite_key_helpers() -> None:
    key = ChaincodeStub.create_composite_key("segment", ["cam-7", "2026-01-01T00:00"])
    assert key == "\x00segment\x00cam-7\x002026-01-01T00:00\x00"
    assert ChaincodeStub.split_composite_key(key) == ("segment", ["cam-7", "2026-01-01T00:00"])
    assert ChaincodeStub.split_composite_key(ChaincodeStub.create_composite_key("t", [])) == (
        "t",
        [],
    )
    with pytest.raises(ContractError, match="contains U\\+0000 or U\\+10FFFF"):
        ChaincodeStub.create_composite_key("t", ["\U0010ffff"])
    with pytest.raises(ContractError, match="contains U\\+0000"):
        ChaincodeStub.create_composite_key("a\x00b", [])
    with pytest.raises(ContractError, match="is not a composite key"):
        ChaincodeStub.split_composite_key("plain")


# -- history, context, events ---------------------------------------------------------------


def test_history_for_key(snapshot: LedgerSnapshot, creator: Creator) -> None:
    stub = make_stub(snapshot, creator)
    history = stub.get_history_for_key("c")
    assert history == [
        KeyModification("tx-1-0", 1, 0, b"3"),
        KeyModification("tx-2-0", 2, 0, None),
    ]
    assert [m.is_delete for m in history] == [False, True]
    assert [m.value for m in stub.get_history_for_key("a")] == [b"1", b"A2"]
    assert stub.get_history_for_key("never") == []
    # Only the key itself, not composite keys or keys that extend it.
    assert len(stub.get_history_for_key(CAM_1_1)) == 1
    assert stub.rwset().namespaces == ()


def test_creator_and_transaction_context(snapshot: LedgerSnapshot, creator: Creator) -> None:
    stub = make_stub(snapshot, creator)
    who = stub.get_creator()
    assert (who.msp_id, who.name, who.id_type) == ("CityCCTVMSP", "alice", "client")
    assert who.attribute("role") == "CRM"
    assert who.attribute("missing") is None
    assert who.cert.startswith(b"-----BEGIN CERTIFICATE-----")
    assert stub.get_tx_id() == TX_ID
    assert stub.get_tx_timestamp() == 1_767_225_600_123
    assert stub.get_channel_id() == "cctv"


def test_channel_config_read_is_recorded(snapshot: LedgerSnapshot, creator: Creator) -> None:
    stub = make_stub(snapshot, creator)
    assert stub.get_channel_config() == sample_config()
    (config_ns,) = stub.rwset().namespaces
    assert config_ns == NamespaceRWSet(
        CONFIG_NAMESPACE, (KVRead(CONFIG_KEY, Version(0, 0)),), (), ()
    )


def test_events_and_their_limits(snapshot: LedgerSnapshot, creator: Creator) -> None:
    stub = make_stub(snapshot, creator, SimulationLimits(max_events=2, max_event_bytes=4))
    with pytest.raises(ContractError, match="event name must be non-empty"):
        stub.set_event("", b"")
    with pytest.raises(ContractError, match="event payload exceeds 4 bytes"):
        stub.set_event("big", b"12345")
    with pytest.raises(ContractError, match="event payload must be bytes, got str"):
        stub.set_event("text", "abc")  # type: ignore[arg-type]
    stub.set_event("first", b"1234")
    stub.set_event("second", b"")
    with pytest.raises(ContractError, match="more than 2 events"):
        stub.set_event("third", b"")
    assert stub.events == [("first", b"1234"), ("second", b"")]
    stub.events.clear()  # a copy: the recorded events are not the caller's to change
    assert len(stub.events) == 2
