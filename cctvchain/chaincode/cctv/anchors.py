"""Segment anchors: a camera's signed, chained fingerprints of its video (PRODUCT §3).

Only the camera's own approved identity may anchor; the sequence must continue the
camera's chain exactly (no gap, no repeat) and link to the previous segment's hash.
Each refusal carries its own code so that the extractor and an auditor can tell a
replay from a gap from a forgery.

What one anchor writes (a camera writes one every 10 s, so every byte counts 360 times
an hour): the :class:`Anchor` (the segment, time received, late flag) and one
empty-valued key ``anchor~tx`` that finds the anchor by (a prefix of) its transaction
id. What it reads: the camera, the previous anchor (its segment gives the hash to link
to and the capture end) and the new anchor's own key, which must be absent: that read
is what makes two anchors of one sequence endorsed concurrently conflict at commit
(the second fails MVCC). No chain-head record: the head is the last anchor
(:func:`~cctvchain.chaincode.cctv.model.last_anchored`), looked for only by queries and
refusals. The anchor is its own historian entry (:func:`anchor_history`), its event
payload is a small :class:`AnchorEvent`, and the answer is empty.
Time-range queries need no index: sequences and capture times grow together (a segment
never starts before the previous one ended), so anchors in sequence order are in
capture order and a binary search over sequences finds a time.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cctvchain.chaincode.cctv import acl
from cctvchain.chaincode.cctv.common import (
    STATUS_CONFLICT,
    STATUS_FORBIDDEN,
    STATUS_NOT_FOUND,
    camera_target,
    decode_stored,
    label,
    load,
    load_camera,
    parse_int,
    require_access,
    require_transaction,
    save,
    subject_of,
)
from cctvchain.chaincode.cctv.model import (
    APPROVED,
    CAMERA_ROLE,
    DECOMMISSIONED,
    K_ANCHOR,
    K_ANCHOR_BY_TX,
    K_CAMERA,
    PENDING,
    REJECTED,
    Anchor,
    AnchorEvent,
    Camera,
    HistorianRecord,
    Segment,
    last_anchored,
    padded,
)
from cctvchain.chaincode.contract import ContractError, contract_function
from cctvchain.chaincode.stub import ChaincodeStub, KeyModification
from cctvchain.codec import CodecError
from cctvchain.crypto import HASH_SIZE
from cctvchain.tx.messages import contract_event_id

MAX_SEGMENT_BYTES = 64 * 1024
MAX_SEGMENT_SPAN_MS = 5 * 60 * 1000
MAX_FUTURE_SKEW_MS = 2 * 60 * 1000  # capture clock ahead of the transaction's time
LATE_AFTER_MS = 60 * 1000  # anchored this long after capture ended: marked late
GENESIS_SEGMENT_HASH = bytes(HASH_SIZE)
# Hex digits of the tx id in an ``anchor~tx`` key (the whole id would add 48 bytes to every
# anchor): 64 bits make a collision between two anchors practically impossible, and one
# would still be harmless (the key names the anchor, and the lookup compares the full tx
# id of each candidate's anchoring write).
TX_PREFIX_HEX = 16


def anchor_json(anchor: Anchor, written: KeyModification) -> dict[str, Any]:
    """The full anchor as GetAnchor(s) give it; ``written`` is the anchoring write."""
    segment = anchor.segment
    return {
        "camera": segment.camera_id,
        "sequence": segment.sequence,
        "captureStart": segment.capture_start_ms,
        "captureEnd": segment.capture_end_ms,
        "frameCount": segment.frame_count,
        "merkleRoot": segment.merkle_root.hex(),
        "previousHash": segment.previous_hash.hex(),
        "segmentHash": segment.hash().hex(),
        "policy": {"mode": segment.policy.mode, "rate": segment.policy.rate},
        "txId": written.tx_id,
        "received": anchor.received_ms,
        "late": anchor.late,
        "block": written.block,
        "tx": written.tx,
        "segment": base64.b64encode(segment.encode()).decode("ascii"),
    }


def _refuse(code: str, message: str, status: int = 400) -> ContractError:
    return ContractError(message, status, code=code)


def decode_segment(segment_b64: str) -> Segment:
    if len(segment_b64) > MAX_SEGMENT_BYTES * 4 // 3 + 4:
        raise _refuse("SEGMENT_TOO_LARGE", f"segment exceeds {MAX_SEGMENT_BYTES} bytes", 413)
    try:
        raw = base64.b64decode(segment_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _refuse("MALFORMED_SEGMENT", f"segment is not base64: {exc}") from exc
    if len(raw) > MAX_SEGMENT_BYTES:
        raise _refuse("SEGMENT_TOO_LARGE", f"segment exceeds {MAX_SEGMENT_BYTES} bytes", 413)
    try:
        segment = Segment.decode(raw)
    except CodecError as exc:
        raise _refuse("MALFORMED_SEGMENT", f"segment does not decode: {exc}") from exc
    if len(segment.merkle_root) != HASH_SIZE or len(segment.previous_hash) != HASH_SIZE:
        raise _refuse("MALFORMED_SEGMENT", "merkle root and previous hash must be 32 bytes")
    if segment.frame_count < 1 or segment.sequence < 0:
        raise _refuse("MALFORMED_SEGMENT", "a segment has a sequence >= 0 and at least one frame")
    span = segment.capture_end_ms - segment.capture_start_ms
    if not 0 <= span <= MAX_SEGMENT_SPAN_MS:
        raise _refuse("MALFORMED_SEGMENT", f"capture span of {span} ms is not plausible")
    return segment


def anchor_key(stub: ChaincodeStub, camera_id: str, sequence: int) -> str:
    return stub.create_composite_key(K_ANCHOR, [camera_id, padded(sequence)])


def last_sequence(stub: ChaincodeStub, camera_id: str) -> int:
    """The camera's last anchored sequence, -1 before its first. Its point reads are for
    a query or a refusal (which commits nothing), never for an accepted anchor, whose
    read set they would lengthen."""
    return last_anchored(lambda s: stub.get_state(anchor_key(stub, camera_id, s)) is not None)


def head_of(stub: ChaincodeStub, camera_id: str) -> Anchor | None:
    """The camera's last anchor, None before its first."""
    sequence = last_sequence(stub, camera_id)
    return None if sequence < 0 else load(stub, Anchor, K_ANCHOR, camera_id, padded(sequence))


def anchor_tx_key(stub: ChaincodeStub, tx_id: str, camera_id: str, sequence: int) -> str:
    # The sequence is not zero-padded: this index is only ever looked up, never ordered.
    return stub.create_composite_key(
        K_ANCHOR_BY_TX, [tx_id[:TX_PREFIX_HEX], camera_id, str(sequence)]
    )


def anchoring_write(stub: ChaincodeStub, key: str) -> KeyModification:
    """The write that stored the anchor at ``key``: its transaction and ledger position.
    An anchor is written once (AnchorSegment refuses a replay), so it is the key's first
    history entry."""
    history = stub.get_history_for_key(key)
    if not history:
        raise ContractError(
            f"the anchor at {key!r} has no history on this peer", 500, code="CORRUPT_STATE"
        )
    return history[0]


def anchor_by_tx(stub: ChaincodeStub, tx_id: str) -> Anchor | None:
    """The anchor committed by transaction ``tx_id``, if it is one."""
    for key, _ in stub.get_state_by_partial_composite_key(K_ANCHOR_BY_TX, [tx_id[:TX_PREFIX_HEX]]):
        _, (_, camera_id, sequence) = stub.split_composite_key(key)
        anchor_key = stub.create_composite_key(K_ANCHOR, [camera_id, padded(int(sequence))])
        raw = stub.get_state(anchor_key)
        if raw is not None and anchoring_write(stub, anchor_key).tx_id == tx_id:
            return decode_stored(Anchor, raw)
    return None


def anchor_history(anchor: Anchor, camera: Camera, tx_id: str) -> HistorianRecord:
    """The historian entry of the ``AnchorSegment`` transaction ``tx_id`` that stored
    ``anchor``: exactly the entry that transaction would have recorded (the camera's
    label and owner organisation, the transaction's time, its event id, sequence and
    lateness)."""
    subject = acl.Subject(camera.id, CAMERA_ROLE, camera.owner_org, camera.control_room)
    return HistorianRecord(
        tx_id=tx_id,
        event_id=contract_event_id(tx_id, 0),
        timestamp_ms=anchor.received_ms,
        entry_type="AnchorSegment",
        participant=label(subject),
        org=camera.owner_org,
        camera_id=camera.id,
        details={"sequence": str(anchor.segment.sequence), "late": str(anchor.late).lower()},
    )


def _explain_unbound_camera(stub: ChaincodeStub, segment_b64: str) -> None:
    """A camera identity bound to no approved camera may be one whose camera is not, or no
    longer, approved (bindings are made by Approve and dropped by Decommission): say so
    with that refusal's own code. Anything else stays a WRONG_IDENTITY."""
    creator = stub.get_creator()
    try:
        segment = decode_segment(segment_b64)
    except ContractError:
        return
    camera = load(stub, Camera, K_CAMERA, segment.camera_id)
    if camera is None or camera.owner_org != creator.msp_id:
        return
    if camera.status in (PENDING, REJECTED):
        raise _refuse(
            "CAMERA_NOT_APPROVED", f"camera {camera.id} is {camera.status}", STATUS_CONFLICT
        )
    if camera.status == DECOMMISSIONED and camera.identity == creator.name:
        raise _refuse(
            "CAMERA_DECOMMISSIONED", f"camera {camera.id} is {camera.status}", STATUS_CONFLICT
        )


def _is_the_camera(stub: ChaincodeStub, camera_id: str) -> bool:
    if stub.get_creator().id_type != "camera":
        return False
    try:
        subject = subject_of(stub)
    except ContractError:
        return False
    return subject.role == CAMERA_ROLE and subject.id == camera_id


def _bound_camera(stub: ChaincodeStub, segment_b64: str) -> tuple[Segment, Camera] | None:
    """The segment and its camera when the creator is that camera's bound identity.

    The same answer as looking the creator up in ``camera~identity`` (Approve and
    RotateCameraKey bind exactly an approved camera's ``identity`` in its owner
    organisation, Decommission and RotateCameraKey unbind it), without reading that key:
    every anchor's read set is on the ledger, and the camera's record, read anyway,
    already changes whenever its binding does. None sends the caller the long way
    round, which says precisely why the anchor is refused."""
    creator = stub.get_creator()
    if creator.id_type != "camera":
        return None
    try:
        segment = decode_segment(segment_b64)
    except ContractError:
        return None
    camera = load(stub, Camera, K_CAMERA, segment.camera_id)
    if (
        camera is None
        or camera.status != APPROVED
        or (camera.owner_org, camera.identity) != (creator.msp_id, creator.name)
    ):
        return None
    return segment, camera


def _identify(stub: ChaincodeStub, segment_b64: str) -> tuple[Segment, Camera]:
    """The segment and its camera, or the refusal that says why this creator may not
    anchor it."""
    bound = _bound_camera(stub, segment_b64)
    if bound is not None:
        return bound
    try:
        subject = subject_of(stub)
    except ContractError as exc:
        if exc.code == "WRONG_IDENTITY":
            _explain_unbound_camera(stub, segment_b64)
        raise
    if subject.role != CAMERA_ROLE:
        raise _refuse(
            "WRONG_IDENTITY",
            f"{subject.id} ({subject.role}) is not a camera; only a camera's own "
            "identity anchors its segments",
            STATUS_FORBIDDEN,
        )
    segment = decode_segment(segment_b64)
    if segment.camera_id != subject.id:
        raise _refuse(
            "WRONG_IDENTITY",
            f"camera {subject.id} cannot anchor segments of camera {segment.camera_id}",
            STATUS_FORBIDDEN,
        )
    camera = load_camera(stub, segment.camera_id)
    if camera.status != APPROVED:
        code = (
            "CAMERA_DECOMMISSIONED" if camera.status == "DECOMMISSIONED" else "CAMERA_NOT_APPROVED"
        )
        raise _refuse(code, f"camera {camera.id} is {camera.status}", STATUS_CONFLICT)
    return segment, camera


class AnchorFunctions:
    @contract_function
    def AnchorSegment(self, stub: ChaincodeStub, segment_b64: str) -> None:
        segment, camera = _identify(stub, segment_b64)
        subject = acl.Subject(camera.id, CAMERA_ROLE, camera.owner_org, camera.control_room)
        require_transaction(
            stub, subject, "AnchorSegment", "CREATE", "Anchor", camera_target(camera)
        )
        if segment.policy != camera.policy:
            raise _refuse(
                "POLICY_MISMATCH",
                f"segment sampled with {segment.policy.mode}/{segment.policy.rate}, camera "
                f"policy is {camera.policy.mode}/{camera.policy.rate}",
            )
        now = stub.get_tx_timestamp()
        if segment.capture_end_ms > now + MAX_FUTURE_SKEW_MS:
            raise _refuse(
                "CAPTURE_IN_FUTURE",
                f"capture ends {segment.capture_end_ms - now} ms after the transaction time "
                f"(allowed skew {MAX_FUTURE_SKEW_MS} ms)",
            )
        # The new anchor's key must be absent and the previous one's present. These two
        # reads are all the read set holds of the chain: when either check fails the
        # transaction is refused (nothing commits), and only then is the head looked for,
        # to say where the chain stands.
        sequence = segment.sequence
        if stub.get_state(anchor_key(stub, camera.id, sequence)) is not None:
            expected = last_sequence(stub, camera.id) + 1
            raise _refuse(
                "SEQUENCE_REPLAY",
                f"segment {sequence} of camera {camera.id} was already anchored "
                f"(next is {expected})",
                STATUS_CONFLICT,
            )
        previous = None
        if sequence > 0:
            previous = load(stub, Anchor, K_ANCHOR, camera.id, padded(sequence - 1))
            if previous is None:
                expected = last_sequence(stub, camera.id) + 1
                raise _refuse(
                    "SEQUENCE_GAP",
                    f"segment {sequence} of camera {camera.id} skips "
                    f"{sequence - expected} segment(s) (next is {expected})",
                    STATUS_CONFLICT,
                )
        previous_hash = GENESIS_SEGMENT_HASH if previous is None else previous.segment.hash()
        if segment.previous_hash != previous_hash:
            raise _refuse(
                "BROKEN_CHAIN",
                f"segment {sequence} links to {segment.previous_hash.hex()[:16]}…, the "
                f"camera's previous segment is {previous_hash.hex()[:16]}…",
                STATUS_CONFLICT,
            )
        if previous is not None and segment.capture_start_ms < previous.segment.capture_end_ms:
            raise _refuse(
                "CAPTURE_OVERLAP",
                f"segment {sequence} starts before the previous one ended",
                STATUS_CONFLICT,
            )
        anchor = Anchor(
            segment=segment,
            received_ms=now,
            late=now - segment.capture_end_ms > LATE_AFTER_MS,
        )
        save(stub, anchor, K_ANCHOR, camera.id, padded(sequence))
        # The tx id is the key; the value would only repeat it.
        stub.put_state(anchor_tx_key(stub, stub.get_tx_id(), camera.id, sequence), b"")
        stub.set_event("AnchorSegment", AnchorEvent(camera.id, sequence).encode())
        # No answer: it would be in every anchor transaction, and the submitter needs
        # none (its segment is its own, the tx id is in its proposal, the extractor reads
        # only the commit status: block and validation code). GetAnchor has the record.
        return None

    @contract_function(read_only=True)
    def GetAnchors(
        self, stub: ChaincodeStub, camera_id: str, from_ms: str, to_ms: str
    ) -> list[dict[str, Any]]:
        """Anchors whose capture overlaps [from, to], with their ledger positions."""
        require_access(stub, camera_id)
        start, end = parse_int(from_ms, "from"), parse_int(to_ms, "to")
        if end < start:
            raise ContractError("the time range ends before it starts", code="BAD_ARGUMENT")
        head = last_sequence(stub, camera_id)
        if head < 0:
            return []
        # Capture start and end never decrease along the sequence (CAPTURE_OVERLAP), so
        # the overlapping anchors are consecutive: find the first one whose capture ends
        # at or after ``start`` by bisection, then walk on until one starts after ``end``.
        low, high = 0, head + 1
        while low < high:
            middle = (low + high) // 2
            if self._anchor(stub, camera_id, padded(middle)).segment.capture_end_ms < start:
                low = middle + 1
            else:
                high = middle
        found = []
        for sequence in range(low, head + 1):
            anchor = self._anchor(stub, camera_id, padded(sequence))
            if anchor.segment.capture_start_ms > end:
                break
            found.append(self._positioned(stub, camera_id, anchor))
        return found

    @contract_function(read_only=True)
    def GetAnchor(self, stub: ChaincodeStub, camera_id: str, sequence: str) -> dict[str, Any]:
        require_access(stub, camera_id)
        seq = padded(parse_int(sequence, "sequence"))
        return self._positioned(stub, camera_id, self._anchor(stub, camera_id, seq))

    @contract_function(read_only=True)
    def GetAnchorHead(self, stub: ChaincodeStub, camera_id: str) -> dict[str, Any]:
        """Where the camera's chain stands: for the camera itself (its extractor resumes
        from it), otherwise camera data under Algorithm 1."""
        if not _is_the_camera(stub, camera_id):
            require_access(stub, camera_id)
        head = head_of(stub, camera_id)
        if head is None:
            return {"camera": camera_id, "sequence": -1, "segmentHash": GENESIS_SEGMENT_HASH.hex()}
        return {
            "camera": camera_id,
            "sequence": head.segment.sequence,
            "segmentHash": head.segment.hash().hex(),
            "captureEnd": head.segment.capture_end_ms,
        }

    @staticmethod
    def _anchor(stub: ChaincodeStub, camera_id: str, seq: str) -> Anchor:
        anchor = load(stub, Anchor, K_ANCHOR, camera_id, seq)
        if anchor is None:
            raise ContractError(
                f"camera {camera_id} has no segment {int(seq)}",
                STATUS_NOT_FOUND,
                code="UNKNOWN_ANCHOR",
            )
        return anchor

    @staticmethod
    def _positioned(stub: ChaincodeStub, camera_id: str, anchor: Anchor) -> dict[str, Any]:
        key = anchor_key(stub, camera_id, anchor.segment.sequence)
        return anchor_json(anchor, anchoring_write(stub, key))
