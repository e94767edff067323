"""Segment anchors through real endorsement, ordering and commit: a camera's chained
segments are accepted; every other anchor is refused with its own code and leaves no
trace on the ledger."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from cctv_helpers import (
    CITY,
    HIGH,
    NORMAL,
    POLICE,
    SEGMENT_MS,
    ZERO_HASH,
    Chain,
    World,
    b64,
    build_world,
    call,
    commit_config,
    config_tx,
    current_config,
    fingerprint,
    inject,
    invoke,
    majority,
    make_segment,
    query,
    refuse,
    tx_id_of,
)

from cctvchain.chaincode.cctv.anchors import (
    LATE_AFTER_MS,
    MAX_FUTURE_SKEW_MS,
    MAX_SEGMENT_BYTES,
    MAX_SEGMENT_SPAN_MS,
)
from cctvchain.chaincode.cctv.model import Anchor, AnchorEvent, Segment, last_anchored
from cctvchain.client.transaction import ClientIdentity, EndorsementError
from cctvchain.codec import CodecError, encode
from cctvchain.crypto import sha256
from cctvchain.ledger.keys import create_composite_key, split_composite_key
from cctvchain.ledger.records import Version
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.ordering.orderer import BroadcastRefused
from cctvchain.tx.messages import Envelope, contract_event_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("anchors"))
    try:
        yield built
    finally:
        built.net.close()


def open_camera(world: World, camera_id: str, **fields: Any) -> tuple[Chain, ClientIdentity]:
    """An approved camera whose data police officers may read, and its identity."""
    identity = world.approved_camera(camera_id, **fields)
    invoke(world.net, world.crm_n, "GrantAccess", camera_id, "role", "PO")
    return Chain(camera_id, world.net.clock.now_ms - SEGMENT_MS), identity


def anchor(
    world: World, chain: Chain, identity: ClientIdentity, segment: Segment
) -> dict[str, Any]:
    """Anchor ``segment``: the committed anchor as GetAnchor gives it, and its tx id
    (``_tx``). The transaction itself answers nothing (it is in every anchor)."""
    committed = invoke(world.net, identity, "AnchorSegment", b64(segment))
    assert committed.raw == b""
    chain.accept(segment)
    stored = query(world.net, world.po, "GetAnchor", segment.camera_id, str(segment.sequence))
    assert stored["txId"] == committed.event.tx_id
    result: dict[str, Any] = {**stored, "_tx": committed.event.tx_id}
    return result


def test_a_chain_of_segments_is_anchored_and_read_back_with_ledger_positions(
    world: World,
) -> None:
    net = world.net
    chain, cam = open_camera(world, "A-1")
    anchored = []
    for _ in range(3):
        segment = chain.next()
        net.clock.advance(SEGMENT_MS)
        anchored.append(anchor(world, chain, cam, segment))
        net.clock.advance(1_000)
    for i, result in enumerate(anchored):
        assert (result["sequence"], result["late"]) == (i, False)
    head = query(net, world.po, "GetAnchorHead", "A-1")
    assert head == {
        "camera": "A-1",
        "sequence": 2,
        "segmentHash": chain.anchored[2].hash().hex(),
        "captureEnd": chain.anchored[2].capture_end_ms,
    }
    first, last = chain.anchored[0], chain.anchored[2]
    everything = query(
        net, world.po, "GetAnchors", "A-1", str(first.capture_start_ms), str(last.capture_end_ms)
    )
    assert [a["sequence"] for a in everything] == [0, 1, 2]
    for i, (found, result, segment) in enumerate(
        zip(everything, anchored, chain.anchored, strict=True)
    ):
        assert found["txId"] == result["_tx"]
        assert found["segment"] == b64(segment)  # the exact bytes the camera signed
        assert found["merkleRoot"] == segment.merkle_root.hex()
        assert found["segmentHash"] == segment.hash().hex()
        assert (
            found["previousHash"] == (ZERO_HASH if i == 0 else chain.anchored[i - 1].hash()).hex()
        )
        assert (found["camera"], found["late"], found["frameCount"]) == ("A-1", False, 250)
        assert (found["captureStart"], found["captureEnd"]) == (
            segment.capture_start_ms,
            segment.capture_end_ms,
        )
        for peer in net.peers:
            record = peer.ledger.get_tx(found["txId"])
            assert record is not None
            assert (record.block_number, record.tx_number) == (found["block"], found["tx"])
            assert record.validation_code == TxValidationCode.VALID
    # A time range selects the segments whose capture overlaps it.
    middle = chain.anchored[1]
    inside = query(
        net,
        world.po,
        "GetAnchors",
        "A-1",
        str(middle.capture_start_ms + 1),
        str(middle.capture_end_ms - 1),
    )
    assert [a["sequence"] for a in inside] == [1]
    later = query(
        net,
        world.po,
        "GetAnchors",
        "A-1",
        str(last.capture_end_ms + 1),
        str(last.capture_end_ms + 10**6),
    )
    assert later == []
    one = query(net, world.po, "GetAnchor", "A-1", "1")
    assert one["segmentHash"] == middle.hash().hex() and one["block"] == everything[1]["block"]
    refuse(net, world.po, "GetAnchor", "A-1", "3", code="UNKNOWN_ANCHOR", status=404)
    refuse(net, world.po, "GetAnchors", "A-1", "10", "5", code="BAD_ARGUMENT")
    refuse(net, world.po, "GetAnchors", "A-1", "x", "5", code="BAD_ARGUMENT")


def test_an_empty_chain_has_head_minus_one_and_a_high_policy_segment_is_kept(
    world: World,
) -> None:
    net = world.net
    chain, cam = open_camera(world, "A-2", policy={"mode": "high", "rate": 5})
    assert query(net, world.po, "GetAnchorHead", "A-2") == {
        "camera": "A-2",
        "sequence": -1,
        "segmentHash": ZERO_HASH.hex(),
    }
    segment = chain.next(policy=HIGH)
    refuse(net, cam, "AnchorSegment", b64(chain.next()), code="POLICY_MISMATCH")
    assert anchor(world, chain, cam, segment)["sequence"] == 0
    [found] = query(net, world.po, "GetAnchors", "A-2", "0", str(2**62))
    assert found["policy"] == {"mode": "high", "rate": 5} and found["segment"] == b64(segment)


def test_anchors_from_a_wrong_identity_are_refused(world: World) -> None:
    net = world.net
    chain, cam = open_camera(world, "A-3")
    _, other_cam = open_camera(world, "A-4")
    segment = chain.next()
    # Clients, whatever their role, and administrators are no cameras.
    for client in (world.crm_n, world.op_n, world.po, world.city_admin):
        message = refuse(
            net, client, "AnchorSegment", b64(segment), code="WRONG_IDENTITY", status=403
        )
        assert "not a camera" in message
    # Another camera's own identity cannot anchor this camera's segments.
    message = refuse(net, other_cam, "AnchorSegment", b64(segment), code="WRONG_IDENTITY")
    assert "cannot anchor segments of camera A-3" in message
    # A camera certificate of another organisation with the same name is not bound.
    impostor = world.camera_identity("cam-A-3", POLICE)
    refuse(net, impostor, "AnchorSegment", b64(segment), code="WRONG_IDENTITY")
    # Nor is an enrolled camera identity of the right organisation that was never bound.
    unbound = world.camera_identity("cam-A-3-spare")
    refuse(net, unbound, "AnchorSegment", b64(segment), code="WRONG_IDENTITY")
    # A client that is not a participant at all is refused before anything else.
    refuse(net, world.stranger, "AnchorSegment", b64(segment), code="NOT_A_PARTICIPANT")
    # The camera's own identity still anchors: nothing above was written.
    assert anchor(world, chain, cam, segment)["sequence"] == 0


def test_out_of_sequence_replayed_and_unchained_segments_are_refused(world: World) -> None:
    net = world.net
    chain, cam = open_camera(world, "A-5")
    fresh = Chain("A-5", chain.next_start)
    refuse(net, cam, "AnchorSegment", b64(fresh.next(previous=sha256(b"x"))), code="BROKEN_CHAIN")
    refuse(net, cam, "AnchorSegment", b64(replace(fresh.next(), sequence=1)), code="SEQUENCE_GAP")
    seg0 = chain.next()
    anchor(world, chain, cam, seg0)
    net.clock.advance(SEGMENT_MS)
    seg1 = chain.next()
    anchor(world, chain, cam, seg1)
    codes = {}
    # The same segment again, and an older one: replays.
    codes["replay-last"] = refuse(
        net, cam, "AnchorSegment", b64(seg1), code="SEQUENCE_REPLAY", status=409
    )
    codes["replay-first"] = refuse(net, cam, "AnchorSegment", b64(seg0), code="SEQUENCE_REPLAY")
    # A different segment claiming an anchored sequence number is a replay too.
    forged = replace(seg1, merkle_root=sha256(b"forged"))
    codes["rewrite"] = refuse(net, cam, "AnchorSegment", b64(forged), code="SEQUENCE_REPLAY")
    # Skipping a segment.
    seg2 = chain.next()
    codes["gap"] = refuse(
        net, cam, "AnchorSegment", b64(replace(seg2, sequence=3)), code="SEQUENCE_GAP", status=409
    )
    # The right sequence number, linked to the wrong predecessor.
    codes["broken"] = refuse(
        net,
        cam,
        "AnchorSegment",
        b64(replace(seg2, previous_hash=seg0.hash())),
        code="BROKEN_CHAIN",
    )
    refuse(
        net, cam, "AnchorSegment", b64(replace(seg2, previous_hash=ZERO_HASH)), code="BROKEN_CHAIN"
    )
    # Capture that starts before the previous segment ended.
    overlap = replace(seg2, capture_start_ms=seg1.capture_end_ms - 1)
    codes["overlap"] = refuse(net, cam, "AnchorSegment", b64(overlap), code="CAPTURE_OVERLAP")
    assert len({message.split(":")[0] for message in codes.values()}) == 4
    net.clock.advance(SEGMENT_MS)
    assert anchor(world, chain, cam, seg2)["sequence"] == 2
    assert query(net, world.po, "GetAnchorHead", "A-5")["segmentHash"] == seg2.hash().hex()


def test_a_replayed_transaction_and_a_racing_fork_are_invalidated_at_commit(world: World) -> None:
    net = world.net
    chain, cam = open_camera(world, "A-6")
    # Two different first segments endorsed before either commits, ordered together:
    # nothing precedes them, so only the read of the (absent) new anchor's key tells
    # them apart at commit.
    envelope = net.prepare(cam, "cctv", "AnchorSegment", [b64(chain.next())])
    rival = net.prepare(
        cam, "cctv", "AnchorSegment", [b64(chain.next(merkle_root=sha256(b"rival")))]
    )
    net.broadcast(envelope)
    net.broadcast(rival)
    net.cut()
    [event] = net.deliver()
    assert [(t.tx_id, t.code) for t in event.transactions] == [
        (tx_id_of(envelope), TxValidationCode.VALID),
        (tx_id_of(rival), TxValidationCode.MVCC_READ_CONFLICT),
    ]
    chain.accept(chain.next())
    assert query(net, world.po, "GetAnchor", "A-6", "0")["segment"] == b64(chain.anchored[0])
    before = fingerprint(net)[3]
    # The very same envelope broadcast again: a duplicate, flagged and not applied.
    net.broadcast(envelope)
    net.cut()
    [event] = net.deliver()
    assert [t.code for t in event.transactions] == [TxValidationCode.DUPLICATE_TXID]
    # Two different segments 1, endorsed against the same chain and ordered together:
    # the chain cannot fork, the second one fails its read of the new anchor's key.
    net.clock.advance(SEGMENT_MS)
    first = net.prepare(cam, "cctv", "AnchorSegment", [b64(chain.next())])
    second = net.prepare(
        cam, "cctv", "AnchorSegment", [b64(chain.next(merkle_root=sha256(b"fork")))]
    )
    net.broadcast(first)
    net.broadcast(second)
    net.cut()
    [event] = net.deliver()
    assert [t.code for t in event.transactions] == [
        TxValidationCode.VALID,
        TxValidationCode.MVCC_READ_CONFLICT,
    ]
    assert before != fingerprint(net)[3]
    head = query(net, world.po, "GetAnchorHead", "A-6")
    assert head["sequence"] == 1 and head["segmentHash"] == chain.next().hash().hex()


def test_the_last_anchored_sequence_is_found_with_few_reads() -> None:
    for head in [-1, 0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 100, 1023, 1024, 8639, 10**6]:
        asked: list[int] = []

        def is_anchored(sequence: int, head: int = head, asked: list[int] = asked) -> bool:
            asked.append(sequence)
            return sequence <= head

        assert last_anchored(is_anchored) == head
        assert len(asked) <= 2 * max(head, 1).bit_length() + 2, (head, asked)


def test_anchors_and_anchor_events_are_compact_and_earlier_typed_ones_still_read() -> None:
    segment = make_segment("L-1", 4, 1_700_000_000_000)
    anchor = Anchor(segment, 1_700_000_011_000, True)
    # Stored: [segment as signed, time received, lateness]; no type tag or field names.
    assert anchor.encode() == encode([segment.to_wire(), 1_700_000_011_000, True])
    assert Anchor.decode(anchor.encode()) == anchor
    assert Anchor.decode(anchor.encode()).segment.encode() == segment.encode()
    assert AnchorEvent.decode(AnchorEvent("L-1", 4).encode()) == AnchorEvent("L-1", 4)
    # Ledgers written before: a typed cctv.anchor v2 map and cctv.anchor_event v1 map.
    assert Anchor.decode(encode(anchor.to_wire())) == anchor
    legacy_event = {"_t": "cctv.anchor_event", "_v": 1, "camera_id": "L-1", "sequence": 4}
    assert AnchorEvent.decode(encode({**legacy_event, "late": True})) == AnchorEvent("L-1", 4)
    # Anything else is a precise decode error.
    wire = segment.to_wire()
    for bad in (
        [wire, 1, True, 0],
        [wire, "1", True],
        [wire, 1, 1],
        [{**wire, "sequence": "4"}, 1, True],
        {"_t": "cctv.segment"},
        "anchor",
    ):
        with pytest.raises(CodecError):
            Anchor.decode(encode(bad))
    for bad_event in (["L-1"], ["L-1", -1], ["L-1", True], [4, "L-1"], {"_t": "x"}, ["L-1", 4, 0]):
        with pytest.raises(CodecError):
            AnchorEvent.decode(encode(bad_event))


def test_the_head_is_the_last_anchor_through_refusals_and_a_resumed_chain(world: World) -> None:
    """No head record: GetAnchorHead finds the last anchor, after any number of anchors,
    after refusals (which leave nothing), and an extractor resuming from it (a new
    process that knows only what GetAnchorHead says) continues the chain."""
    net = world.net
    chain, cam = open_camera(world, "A-13")
    for sequence in range(6):
        net.clock.advance(SEGMENT_MS)
        anchor(world, chain, cam, chain.next())
        last = chain.anchored[-1]
        assert query(net, cam, "GetAnchorHead", "A-13") == {
            "camera": "A-13",
            "sequence": sequence,
            "segmentHash": last.hash().hex(),
            "captureEnd": last.capture_end_ms,
        }
    net.clock.advance(SEGMENT_MS)
    message = refuse(
        net, cam, "AnchorSegment", b64(replace(chain.next(), sequence=9)), code="SEQUENCE_GAP"
    )
    assert message.endswith("skips 3 segment(s) (next is 6)")
    message = refuse(net, cam, "AnchorSegment", b64(chain.anchored[2]), code="SEQUENCE_REPLAY")
    assert message.endswith("was already anchored (next is 6)")
    head = query(net, cam, "GetAnchorHead", "A-13")
    assert head["sequence"] == 5 and head["segmentHash"] == chain.anchored[5].hash().hex()
    # A restarted extractor: its chain is rebuilt from the head alone.
    resumed = Chain("A-13", head["captureEnd"])
    resumed.sequence = head["sequence"] + 1
    resumed.previous = bytes.fromhex(head["segmentHash"])
    for _ in range(3):
        net.clock.advance(SEGMENT_MS)
        anchor(world, resumed, cam, resumed.next())
    head = query(net, world.po, "GetAnchorHead", "A-13")
    assert head["sequence"] == 8 and head["segmentHash"] == resumed.anchored[-1].hash().hex()
    listed = query(net, world.po, "GetAnchors", "A-13", "0", str(2**62))
    assert [a["sequence"] for a in listed] == list(range(9))
    assert [a["previousHash"] for a in listed[1:]] == [a["segmentHash"] for a in listed[:-1]]


def test_cameras_that_are_not_approved_cannot_anchor(world: World) -> None:
    net = world.net
    # Pending: the device is installed (its identity enrolled) but not yet approved.
    world.request_camera("A-7")
    pending_cam = world.camera_identity("cam-A-7")
    segment = make_segment("A-7", 0, net.clock.now_ms - SEGMENT_MS)
    message = refuse(
        net, pending_cam, "AnchorSegment", b64(segment), code="CAMERA_NOT_APPROVED", status=409
    )
    assert "PENDING" in message
    # A camera of another organisation claiming it is still a wrong identity.
    refuse(
        net,
        world.camera_identity("cam-A-7", POLICE),
        "AnchorSegment",
        b64(segment),
        code="WRONG_IDENTITY",
    )
    # Rejected: never approved.
    invoke(net, world.crm_n, "Reject", "A-7", "Camera specs are not upto mark")
    message = refuse(net, pending_cam, "AnchorSegment", b64(segment), code="CAMERA_NOT_APPROVED")
    assert "REJECTED" in message
    # Decommissioned: its former identity is refused with its own code.
    chain, cam = open_camera(world, "A-8")
    anchor(world, chain, cam, chain.next())
    invoke(net, world.crm_n, "Decommission", "A-8", "replaced by a newer model")
    net.clock.advance(SEGMENT_MS)
    message = refuse(
        net, cam, "AnchorSegment", b64(chain.next()), code="CAMERA_DECOMMISSIONED", status=409
    )
    assert "DECOMMISSIONED" in message
    # Its anchors remain readable evidence.
    assert query(net, world.po, "GetAnchorHead", "A-8")["sequence"] == 0


def _huge_segment(camera_id: str, start: int, size: int) -> Segment:
    """A segment whose encoding is exactly ``size`` bytes (a long camera id: the size is
    checked before anything else)."""
    base = make_segment(camera_id, 0, start)
    fill = size - len(base.encode())
    extra = len(replace(base, camera_id=camera_id + "x" * fill).encode()) - size
    return replace(base, camera_id=camera_id + "x" * (fill - extra))


def test_future_oversized_malformed_and_mismatched_segments_are_refused(world: World) -> None:
    net = world.net
    chain, cam = open_camera(world, "A-9")
    now = net.clock.now_ms
    good = chain.next()

    def refused(segment_b64: str, code: str, status: int = 400) -> str:
        return refuse(net, cam, "AnchorSegment", segment_b64, code=code, status=status)

    # Capture ending beyond the allowed clock skew from the transaction's time.
    future = replace(good, capture_start_ms=now, capture_end_ms=now + MAX_FUTURE_SKEW_MS + 1_000)
    assert "after the transaction time" in refused(b64(future), "CAPTURE_IN_FUTURE")
    # Too large: a segment over the limit, and one a byte over it once decoded.
    big = _huge_segment("A-9", good.capture_start_ms, MAX_SEGMENT_BYTES + 1)
    assert len(big.encode()) == MAX_SEGMENT_BYTES + 1
    refused(b64(big), "SEGMENT_TOO_LARGE", 413)
    refused(
        b64(_huge_segment("A-9", good.capture_start_ms, 2 * MAX_SEGMENT_BYTES)),
        "SEGMENT_TOO_LARGE",
        413,
    )
    # Malformed in every way the contract checks.
    malformed = {
        "not base64": "%%% not base64 %%%",
        "not a segment": b64_raw(NORMAL.encode()),
        "garbage": b64_raw(b"\x00\x01garbage"),
        "short merkle root": b64(replace(good, merkle_root=bytes(31))),
        "long previous hash": b64(replace(good, previous_hash=bytes(33))),
        "no frames": b64(replace(good, frame_count=0)),
        "negative sequence": b64(replace(good, sequence=-1)),
        "ends before it starts": b64(replace(good, capture_end_ms=good.capture_start_ms - 1)),
        "too long": b64(
            replace(good, capture_end_ms=good.capture_start_ms + MAX_SEGMENT_SPAN_MS + 1)
        ),
        # Version 1 carried perceptual fingerprints on-chain; it is not accepted any more.
        "version 1": b64_raw(encode({**good.to_wire(), "_v": 1, "perceptual": []})),
    }
    for what, text in malformed.items():
        assert refused(text, "MALFORMED_SEGMENT"), what
    # Sampled with a policy the camera does not have.
    message = refused(b64(replace(good, policy=HIGH)), "POLICY_MISMATCH")
    assert "high/5" in message and "normal/1" in message
    # None of it was written: the camera's chain starts at 0 with the good segment, and a
    # segment ending exactly at the skew limit is accepted.
    edge = replace(good, capture_end_ms=net.clock.now_ms + MAX_FUTURE_SKEW_MS)
    assert anchor(world, chain, cam, edge)["sequence"] == 0


def b64_raw(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_a_late_segment_is_accepted_and_marked_late(world: World) -> None:
    net = world.net
    chain, cam = open_camera(world, "A-10")
    now = net.clock.now_ms
    # Drained from a spool ten minutes after capture ended.
    late = make_segment("A-10", 0, now - 10 * 60_000 - SEGMENT_MS, now - 10 * 60_000)
    result = anchor(world, chain, cam, late)
    assert result["late"] is True
    stored = query(net, world.po, "GetAnchor", "A-10", "0")
    assert stored["late"] is True and stored["received"] - late.capture_end_ms > LATE_AFTER_MS
    # One anchored within the minute is not late.
    on_time = chain.next()
    on_time = replace(on_time, capture_end_ms=net.clock.now_ms - 1_000)
    on_time = replace(on_time, capture_start_ms=on_time.capture_end_ms - SEGMENT_MS)
    assert anchor(world, chain, cam, on_time)["late"] is False
    listed = query(net, world.po, "GetAnchors", "A-10", "0", str(2**62))
    assert [a["late"] for a in listed] == [True, False]
    history = query(
        net, world.po, "GetHistory", json.dumps({"camera": "A-10", "type": "AnchorSegment"})
    )
    assert [h["details"]["late"] for h in history] == ["true", "false"]


def test_reading_anchors_needs_access(world: World) -> None:
    net = world.net
    chain, cam = open_camera(world, "A-11")
    anchor(world, chain, cam, chain.next())
    for client in (world.las, world.op_n, world.stranger, world.city_admin):
        for function, args in (
            ("GetAnchors", ("A-11", "0", str(2**62))),
            ("GetAnchorHead", ("A-11",)),
            ("GetAnchor", ("A-11", "0")),
        ):
            refuse(net, client, function, *args, code="ACCESS_DENIED", status=403)
    refuse(net, world.po, "GetAnchors", "NOPE", "0", "1", code="ACCESS_DENIED")


def test_a_revoked_camera_certificate_is_refused_by_endorsers_orderer_and_validators(
    world: World,
) -> None:
    net = world.net
    chain, cam = open_camera(world, "R-1")
    anchor(world, chain, cam, chain.next())
    net.clock.advance(SEGMENT_MS)
    seg1 = chain.next()
    # Endorsed (for real) before the revocation, not yet ordered.
    pending = net.prepare(cam, "cctv", "AnchorSegment", [b64(seg1)])
    # The CA revokes the camera's certificate; a majority of admins put its CRL into
    # the channel configuration.
    city = net.orgs[CITY]
    city.revoke(name=cam.name, now=net.clock.now, reason="keyCompromise")
    organizations = tuple(
        city.organization_config(crls=[city.crl(net.clock.now)])
        if org.msp_id == city.msp_id
        else org
        for org in current_config(net).organizations
    )
    commit_config(net, config_tx(net, majority(net), organizations=organizations))
    before = fingerprint(net)
    # Endorsers refuse the camera before the contract runs.
    response = call(net, cam, "AnchorSegment", b64(seg1))
    assert response.status == 403 and "certificate_revoked" in response.message
    with pytest.raises(EndorsementError, match="certificate_revoked"):
        net.submit(cam, "cctv", "AnchorSegment", [b64(seg1)])
    # The orderer refuses the envelope endorsed before the revocation ...
    with pytest.raises(BroadcastRefused, match="revoked") as refused:
        net.broadcast(pending)
    assert refused.value.status == 403
    assert fingerprint(net) == before
    # ... and had it been ordered already, every peer flags it at validation.
    event = inject(net, [pending])
    assert [t.code for t in event.transactions] == [TxValidationCode.EXPIRED_OR_REVOKED_IDENTITY]
    assert "revoked" in event.transactions[0].reason
    for peer in net.peers:
        record = peer.ledger.get_tx(tx_id_of(pending))
        assert record is not None
        assert record.validation_code == TxValidationCode.EXPIRED_OR_REVOKED_IDENTITY
    assert fingerprint(net)[3] == before[3]  # no state change
    assert query(net, world.po, "GetAnchorHead", "R-1")["sequence"] == 0
    # The control room re-keys the camera; the new identity continues the chain.
    new_cam = world.camera_identity("cam-R-1-v2")
    invoke(net, world.crm_n, "RotateCameraKey", "R-1", new_cam.name)
    assert anchor(world, chain, new_cam, seg1)["sequence"] == 1


# What the contract makes of one anchor transaction: its response payload (read-write
# set, event, answer; issue #7 allows 1 MB of ledger per camera-hour, 360 anchors, so
# 2,777 bytes per anchor block). Measured: 1,144 bytes for a 4-character camera id and
# sequence 1: the reads of the camera, of the previous anchor, of the new anchor's
# (absent) key and of the channel configuration (ACL), ~390 bytes with their framing;
# the anchor (the ~260-byte segment, time received, lateness) ~350 with its key; the
# tx-id index key ~80; the event ~60; the empty answer ~50; the proposal hash and
# message framing the rest. Each key written or read once more would cost ~70 bytes.
ANCHOR_RESPONSE_PAYLOAD_BYTES = 1_170


def _kind_and_attributes(key: str) -> tuple[str, tuple[str, ...]]:
    kind, attributes = split_composite_key(key)
    return kind, tuple(attributes)


def test_an_anchor_transaction_is_small_and_its_anchor_is_its_history_entry(
    world: World,
) -> None:
    net = world.net
    chain, cam = open_camera(world, "A-12")
    first = chain.next()
    first_tx = anchor(world, chain, cam, first)
    net.clock.advance(SEGMENT_MS)
    segment = chain.next()
    tx_id = anchor(world, chain, cam, segment)["_tx"]
    stored = net.peers[0].ledger.get_tx(tx_id)
    assert stored is not None and stored.validation_code == TxValidationCode.VALID
    envelope = Envelope.decode(stored.data)
    raw = envelope.transaction.response_payload
    payload = envelope.response_payload
    [ns] = [n for n in payload.results.namespaces if n.namespace == "cctv"]
    print(
        f"anchor tx {len(stored.data)} bytes; response payload {len(raw)}: rwset "
        f"{len(payload.results.encode())}, events {sum(len(e.encode()) for e in payload.events)}"
        f", answer {len(payload.response.encode())}"
    )
    assert len(raw) <= ANCHOR_RESPONSE_PAYLOAD_BYTES
    # Written: the anchor and the tx-id index; no chain head, no historian record.
    written = {split_composite_key(w.key)[0]: w for w in ns.writes}
    assert sorted(written) == ["anchor", "anchor~tx"]
    assert split_composite_key(written["anchor"].key)[1] == ["A-12", f"{1:020d}"]
    assert Anchor.decode(written["anchor"].value) == Anchor(
        segment, envelope.proposal.timestamp_ms, False
    )
    assert written["anchor~tx"].value == b""
    # Read (and checked at commit): the camera, the previous anchor (at the version its
    # transaction wrote) and the new anchor's key, absent (a second anchor of sequence 1
    # endorsed meanwhile fails this read). Nothing else: no range query.
    assert not ns.range_queries
    reads = {_kind_and_attributes(r.key): r.version for r in ns.reads}
    camera = net.peers[0].ledger.dump_state()[("cctv", create_composite_key("camera", ["A-12"]))]
    assert reads == {
        ("camera", ("A-12",)): camera.version,
        ("anchor", ("A-12", f"{0:020d}")): Version(first_tx["block"], first_tx["tx"]),
        ("anchor", ("A-12", f"{1:020d}")): None,
    }
    [event] = payload.events
    assert (event.name, AnchorEvent.decode(event.payload)) == (
        "AnchorSegment",
        AnchorEvent("A-12", 1),
    )
    assert event.payload == encode(["A-12", 1])  # no type tag, no lateness
    assert payload.response.payload == b""  # no answer
    # The historian still lists it, with every field of an entry.
    stamp = envelope.proposal.timestamp_ms
    entry = {
        "txId": tx_id,
        "eventId": contract_event_id(tx_id, 0),
        "timestamp": stamp,
        "entryType": "AnchorSegment",
        "participant": "camera A-12",
        "org": CITY,
        "camera": "A-12",
        "details": {"sequence": "1", "late": "false"},
    }
    assert query(net, world.po, "GetHistoryRecord", tx_id) == entry
    by_camera = {"camera": "A-12"}
    assert query(net, world.po, "GetHistory", json.dumps(by_camera))[-1] == entry
    for who, filters in (
        (world.po, {**by_camera, "type": "AnchorSegment", "from": stamp, "to": stamp}),
        (world.po, {**by_camera, "participant": "A-12"}),
        (world.city_admin, {"participant": "A-12"}),
        (world.city_admin, {"type": "AnchorSegment", "from": stamp}),
        (world.city_admin, {}),
    ):
        listed = query(net, who, "GetHistory", json.dumps(filters))
        assert [h for h in listed if h["txId"] == tx_id] == [entry], filters
    for who, filters in (
        (world.po, {**by_camera, "from": stamp + 1}),
        (world.po, {**by_camera, "to": stamp - 1}),
        (world.po, {**by_camera, "type": "GrantAccess"}),
        (world.po, {**by_camera, "participant": "3881"}),
        (world.city_admin, {"participant": "A-1"}),
        (world.city_admin, {"type": "Approve"}),
        (world.police_admin, {}),  # another organisation's camera
        (world.police_admin, {"type": "AnchorSegment"}),
    ):
        listed = query(net, who, "GetHistory", json.dumps(filters))
        assert tx_id not in [h["txId"] for h in listed], filters
    # An unknown id whose prefix is an anchor's is no anchor's transaction.
    impostor = tx_id[:16] + "0" * 48
    refuse(net, world.po, "GetHistoryRecord", impostor, code="UNKNOWN_TRANSACTION", status=404)
