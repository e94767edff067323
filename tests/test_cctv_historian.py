"""The historian (Figures 11-13) over real endorsement, ordering and commit: every committed
contract transaction is listed with its time, entry type, participant and the id of the
event the committer's EventHub delivered for it; queries by camera (Algorithm 1),
participant, type and time range; each organisation sees its own history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cctv_helpers import (
    CITY,
    LA,
    NORTH,
    POLICE,
    SEGMENT_MS,
    Chain,
    World,
    b64,
    build_world,
    invoke,
    person,
    query,
    refuse,
    tx_id_of,
)

from cctvchain.chaincode.cctv.model import AnchorEvent, HistorianRecord
from cctvchain.codec import CodecError
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.peer.events import BlockEvent, ContractEvent
from cctvchain.tx.messages import Envelope, contract_event_id


@dataclass
class Story:
    """A world, what every peer's EventHub delivered, and the transactions of a day in
    the control room (tx id -> (entry type, participant label, org, camera))."""

    world: World
    delivered: list[list[ContractEvent]]
    expected: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def did(
        self,
        who: Any,
        function: str,
        *args: str,
        label: str,
        org: str,
        camera: str = "",
        entry: str = "",
    ) -> str:
        committed = invoke(self.world.net, who, function, *args)
        tx_id = committed.event.tx_id
        assert tx_id is not None
        self.expected[tx_id] = (entry or function, label, org, camera)
        self.order.append(tx_id)
        return tx_id


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    world = build_world(tmp_path_factory.mktemp("historian"))
    net = world.net
    delivered: list[list[ContractEvent]] = [[] for _ in net.peers]
    for index, peer in enumerate(net.peers):

        def collect(event: BlockEvent, sink: list[ContractEvent] = delivered[index]) -> None:
            sink.extend(event.contract_events)

        peer.committer.hub.subscribe(collect)
    s = Story(world, delivered)
    admin = "netadmin (NetworkAdmin)"
    s.did(
        world.city_admin,
        "AddParticipant",
        json.dumps(person("H-OP", "Operator", "h-op", NORTH)),
        label=admin,
        org=CITY,
    )
    h_op = net.client(CITY, "h-op", role="Operator")
    request = {"id": "H-1", "ipAddress": "10.0.0.1", "location": "Quay", "model": "Axis"}
    s.did(
        h_op, "RequestCamera", json.dumps(request), label="H-OP (Operator)", org=CITY, camera="H-1"
    )
    cam = world.camera_identity("cam-H-1")
    s.did(world.crm_n, "Approve", "H-1", cam.name, label="3881 (CRM)", org=CITY, camera="H-1")
    s.did(
        world.crs_n, "GrantAccess", "H-1", "role", "PO", label="0454 (CRS)", org=CITY, camera="H-1"
    )
    chain = Chain("H-1", net.clock.now_ms - SEGMENT_MS)
    for _ in range(2):
        segment = chain.next()
        s.did(cam, "AnchorSegment", b64(segment), label="camera H-1", org=CITY, camera="H-1")
        chain.accept(segment)
        net.clock.advance(SEGMENT_MS)
    for who, label, org, purpose in (
        (world.po, "P-77 (PO)", POLICE, "incident 42"),  # granted
        (world.las, "L-11 (LAS)", LA, "incident 43"),  # denied
    ):
        s.did(
            who,
            "RequestAccess",
            "H-1",
            purpose,
            label=label,
            org=org,
            camera="H-1",
            entry="AccessDecision",
        )
    request = {**request, "id": "H-2"}
    s.did(
        h_op, "RequestCamera", json.dumps(request), label="H-OP (Operator)", org=CITY, camera="H-2"
    )
    s.did(world.crm_n, "Reject", "H-2", "duplicate", label="3881 (CRM)", org=CITY, camera="H-2")
    s.did(
        world.crm_n, "RevokeAccess", "H-1", "role", "PO", label="3881 (CRM)", org=CITY, camera="H-1"
    )
    s.did(
        world.police_admin,
        "AddParticipant",
        json.dumps(person("H-PO", "PO", "h-po")),
        label="poladmin (NetworkAdmin)",
        org=POLICE,
    )
    s.did(
        world.city_admin,
        "UpdateParticipant",
        json.dumps({"id": "H-OP", "department": "Quay"}),
        label=admin,
        org=CITY,
    )
    s.did(world.city_admin, "RemoveParticipant", "H-OP", label=admin, org=CITY)
    # Outside the story: someone who may read H-1's records whatever the tests change
    # (the police officer's access is revoked, then granted again).
    invoke(net, world.crm_n, "GrantAccess", "H-1", "user", "L-11")
    try:
        yield s
    finally:
        net.close()


def ledger_timestamp(world: World, tx_id: str) -> int:
    record = world.net.peers[0].ledger.get_tx(tx_id)
    assert record is not None and record.validation_code == TxValidationCode.VALID
    return Envelope.decode(record.data).proposal.timestamp_ms


def test_every_transaction_has_its_entry_and_the_event_id_the_eventhub_delivered(
    story: Story,
) -> None:
    world = story.world
    net = world.net
    # Every peer delivered the same contract events; one per transaction of the contract.
    first, *others = story.delivered
    assert all([e.event_id for e in other] == [e.event_id for e in first] for other in others)
    events = {e.tx_id: e for e in first}
    for tx_id, (entry_type, label, org, camera) in story.expected.items():
        event = events[tx_id]
        assert event.event_id == contract_event_id(tx_id, 0)
        assert (event.contract, event.name) == ("cctv", entry_type)
        if entry_type == "AnchorSegment":
            # An anchor's event is small (one per camera every 10 s): which segment. Its
            # historian entry is derived from the anchor, and must be the full one.
            anchored = AnchorEvent.decode(event.payload)
            entry = query(net, world.las, "GetHistoryRecord", tx_id)
            record = HistorianRecord(
                entry["txId"],
                entry["eventId"],
                entry["timestamp"],
                entry["entryType"],
                entry["participant"],
                entry["org"],
                entry["camera"],
                entry["details"],
            )
            assert anchored.camera_id == camera
            assert record.details == {"sequence": str(anchored.sequence), "late": "false"}
        else:
            record = HistorianRecord.decode(event.payload)
        assert (record.tx_id, record.event_id) == (tx_id, event.event_id)
        assert (record.entry_type, record.participant, record.org, record.camera_id) == (
            entry_type,
            label,
            org,
            camera,
        )
        assert record.timestamp_ms == ledger_timestamp(world, tx_id)
        # Figure 13: the detailed record of one transaction, for whoever may read it.
        reader = _reader(world, org, camera)
        if reader is not None:
            detail = query(net, reader, "GetHistoryRecord", tx_id)
            assert detail["eventId"] == event.event_id
            assert detail["timestamp"] == record.timestamp_ms
            assert (detail["entryType"], detail["participant"]) == (entry_type, label)
    # Each event id is unique.
    assert len({e.event_id for e in first}) == len(first)


def _reader(world: World, org: str, camera: str) -> Any:
    if camera:
        return None  # camera records: Algorithm 1 decides (see the camera tests below)
    return {CITY: world.city_admin, POLICE: world.police_admin, LA: world.la_admin}[org]


def test_the_transaction_list_of_figure_12(story: Story) -> None:
    world = story.world
    listed = query(world.net, world.city_admin, "GetHistory", "{}")
    assert [h["timestamp"] for h in listed] == sorted(h["timestamp"] for h in listed)
    mine = [h for h in listed if h["txId"] in story.expected]
    assert [h["txId"] for h in mine] == [t for t in story.order if story.expected[t][2] == CITY]
    adds = [h for h in listed if h["entryType"] == "AddParticipant"]
    assert adds and all(h["participant"] == "netadmin (NetworkAdmin)" for h in adds)


def test_every_valid_contract_transaction_and_nothing_else_is_in_the_historian(
    story: Story,
) -> None:
    world = story.world
    net = world.net
    # A transaction invalidated at commit leaves no entry: two approvals of one camera
    # endorsed against the same state, ordered together.
    world.request_camera("H-3")
    first = net.prepare(world.crm_n, "cctv", "Approve", ["H-3", "cam-H-3"])
    second = net.prepare(world.crs_n, "cctv", "Approve", ["H-3", "cam-H-3"])
    net.broadcast(first)
    net.broadcast(second)
    net.cut()
    [event] = net.deliver()
    assert [t.code for t in event.transactions] == [
        TxValidationCode.VALID,
        TxValidationCode.MVCC_READ_CONFLICT,
    ]
    # A refused proposal leaves none either.
    refuse(net, world.crm_n, "Approve", "H-3", "cam-H-3", code="INVALID_TRANSITION")
    valid = set()
    for block in net.peers[0].ledger.iter_blocks(1):
        for index, data in enumerate(block.transactions):
            if block.metadata.tx_flags[index] == TxValidationCode.VALID:
                try:
                    valid.add(Envelope.decode(data).tx_id)
                except CodecError:
                    continue
    listed: dict[str, dict[str, Any]] = {}
    for admin in (world.city_admin, world.police_admin, world.la_admin):
        for entry in query(net, admin, "GetHistory", "{}"):
            listed[entry["txId"]] = entry
    assert set(listed) == valid
    assert tx_id_of(first) in listed and tx_id_of(second) not in listed


def test_queries_by_camera_apply_algorithm_1(story: Story) -> None:
    world = story.world
    net = world.net
    camera_txs = [t for t in story.order if story.expected[t][3] == "H-1"]
    # The role grant for PO was revoked: the police officer sees nothing now.
    refuse(net, world.po, "GetHistory", json.dumps({"camera": "H-1"}), code="ACCESS_DENIED")
    refuse(net, world.city_admin, "GetHistory", json.dumps({"camera": "H-1"}), code="ACCESS_DENIED")
    invoke(net, world.crm_n, "GrantAccess", "H-1", "user", "P-77")
    by_camera = query(net, world.po, "GetHistory", json.dumps({"camera": "H-1"}))
    ids = [h["txId"] for h in by_camera]
    assert ids[: len(camera_txs)] == camera_txs
    # The camera's history is not limited to one organisation: a police request is in it.
    assert {h["org"] for h in by_camera} == {CITY, POLICE, LA}
    anchors = query(
        net, world.po, "GetHistory", json.dumps({"camera": "H-1", "type": "AnchorSegment"})
    )
    assert [h["details"]["sequence"] for h in anchors] == ["0", "1"]
    # Records of the camera, one by one, for the granted officer only.
    for tx_id in camera_txs:
        assert query(net, world.po, "GetHistoryRecord", tx_id)["camera"] == "H-1"
        refuse(net, world.pcro, "GetHistoryRecord", tx_id, code="ACCESS_DENIED")
    refuse(net, world.po, "GetHistory", json.dumps({"camera": "H-2"}), code="ACCESS_DENIED")
    refuse(net, world.po, "GetHistoryRecord", "0" * 64, code="UNKNOWN_TRANSACTION", status=404)


def test_queries_by_participant_type_and_time(story: Story) -> None:
    world = story.world
    net = world.net

    def history(**filters: Any) -> list[str]:
        return [h["txId"] for h in query(net, world.city_admin, "GetHistory", json.dumps(filters))]

    def expected(predicate: Any) -> list[str]:
        return [
            t for t in story.order if story.expected[t][2] == CITY and predicate(story.expected[t])
        ]

    assert [t for t in history(participant="3881") if t in story.expected] == expected(
        lambda e: e[1] == "3881 (CRM)"
    )
    assert [t for t in history(participant="netadmin") if t in story.expected] == expected(
        lambda e: e[1] == "netadmin (NetworkAdmin)"
    )
    assert history(participant="H-1") == expected(lambda e: e[1] == "camera H-1")
    assert [t for t in history(type="Reject") if t in story.expected] == expected(
        lambda e: e[0] == "Reject"
    )
    assert history(type="NoSuchType") == []
    # Time ranges are inclusive at both ends.
    stamps = {t: ledger_timestamp(world, t) for t in story.order}
    anchors = [t for t in story.order if story.expected[t][0] == "AnchorSegment"]
    first, last = stamps[anchors[0]], stamps[anchors[-1]]
    assert history(type="AnchorSegment", **{"from": first, "to": last}) == anchors
    assert history(type="AnchorSegment", **{"from": first + 1}) == anchors[1:]
    assert history(type="AnchorSegment", to=last - 1) == anchors[:1]
    window = [t for t in story.order if first <= stamps[t] <= last and story.expected[t][2] == CITY]
    assert [t for t in history(**{"from": first, "to": last})] == window
    combined = history(
        participant="3881", **{"from": stamps[story.order[2]], "to": stamps[story.order[2]]}
    )
    assert combined == [story.order[2]]
    for bad in ('{"colour": "red"}', '{"from": "yesterday"}', "[]", "{", '{"to": 1.5}'):
        refuse(net, world.city_admin, "GetHistory", bad, code="BAD_ARGUMENT")


def test_each_organisation_sees_its_own_history(story: Story) -> None:
    world = story.world
    net = world.net
    for admin, org in (
        (world.city_admin, CITY),
        (world.police_admin, POLICE),
        (world.la_admin, LA),
    ):
        listed = query(net, admin, "GetHistory", "{}")
        assert listed and {h["org"] for h in listed} == {org}
    # CityCCTV's people are invisible to the police administrator ...
    assert query(net, world.police_admin, "GetHistory", json.dumps({"participant": "3881"})) == []
    assert query(net, world.police_admin, "GetHistory", json.dumps({"type": "Approve"})) == []
    city_only = [
        t for t in story.order if story.expected[t][2] == CITY and not story.expected[t][3]
    ]
    for tx_id in city_only:
        refuse(net, world.police_admin, "GetHistoryRecord", tx_id, code="ACCESS_DENIED")
    # ... except through a camera, where Algorithm 1 decides (an admin is no participant).
    refuse(
        net, world.police_admin, "GetHistory", json.dumps({"camera": "H-1"}), code="ACCESS_DENIED"
    )
    # Staff outside management do not read the organisation's history.
    for client in (world.op_n, world.po, world.pcro, world.las):
        refuse(net, client, "GetHistory", "{}", code="ACCESS_DENIED", status=403)
        refuse(net, client, "GetHistory", json.dumps({"type": "Approve"}), code="ACCESS_DENIED")
    refuse(net, world.stranger, "GetHistory", "{}", code="NOT_A_PARTICIPANT")
    assert query(net, world.crs_n, "GetHistory", json.dumps({"type": "Approve"}))
