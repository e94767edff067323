"""Segment anchors: a camera's signed, chained fingerprints of its video (PRODUCT §3).

Only the camera's own approved identity may anchor; the sequence must continue the
camera's chain exactly (no gap, no repeat) and link to the previous segment's hash.
Each refusal carries its own code so that the extractor and an auditor can tell a
replay from a gap from a forgery.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cctvchain.chaincode.cctv.common import (
    STATUS_CONFLICT,
    STATUS_FORBIDDEN,
    STATUS_NOT_FOUND,
    camera_target,
    load,
    load_camera,
    parse_int,
    record_history,
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
    K_ANCHOR_BY_TIME,
    K_ANCHOR_HEAD,
    K_CAMERA,
    PENDING,
    REJECTED,
    Anchor,
    AnchorHead,
    Camera,
    Segment,
    padded,
)
from cctvchain.chaincode.contract import ContractError, contract_function
from cctvchain.chaincode.stub import ChaincodeStub
from cctvchain.codec import CodecError
from cctvchain.crypto import HASH_SIZE

MAX_SEGMENT_BYTES = 64 * 1024
MAX_SEGMENT_SPAN_MS = 5 * 60 * 1000
MAX_FUTURE_SKEW_MS = 2 * 60 * 1000  # capture clock ahead of the transaction's time
LATE_AFTER_MS = 60 * 1000  # anchored this long after capture ended: marked late
GENESIS_SEGMENT_HASH = bytes(HASH_SIZE)


def anchor_json(anchor: Anchor, block: int | None = None, tx: int | None = None) -> dict[str, Any]:
    segment = anchor.segment
    return {
        "camera": segment.camera_id,
        "sequence": segment.sequence,
        "captureStart": segment.capture_start_ms,
        "captureEnd": segment.capture_end_ms,
        "frameCount": segment.frame_count,
        "merkleRoot": segment.merkle_root.hex(),
        "previousHash": segment.previous_hash.hex(),
        "segmentHash": anchor.segment_hash.hex(),
        "policy": {"mode": segment.policy.mode, "rate": segment.policy.rate},
        "sampled": len(segment.perceptual),
        "txId": anchor.tx_id,
        "received": anchor.received_ms,
        "late": anchor.late,
        "block": block,
        "tx": tx,
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
    if any(not 0 <= p.frame_index < segment.frame_count for p in segment.perceptual):
        raise _refuse("MALFORMED_SEGMENT", "a perceptual fingerprint points outside the segment")
    return segment


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


class AnchorFunctions:
    @contract_function
    def AnchorSegment(self, stub: ChaincodeStub, segment_b64: str) -> dict[str, Any]:
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
                "CAMERA_DECOMMISSIONED"
                if camera.status == "DECOMMISSIONED"
                else "CAMERA_NOT_APPROVED"
            )
            raise _refuse(code, f"camera {camera.id} is {camera.status}", STATUS_CONFLICT)
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
        head = load(stub, AnchorHead, K_ANCHOR_HEAD, camera.id)
        expected = 0 if head is None else head.sequence + 1
        if segment.sequence < expected:
            raise _refuse(
                "SEQUENCE_REPLAY",
                f"segment {segment.sequence} of camera {camera.id} was already anchored "
                f"(next is {expected})",
                STATUS_CONFLICT,
            )
        if segment.sequence > expected:
            raise _refuse(
                "SEQUENCE_GAP",
                f"segment {segment.sequence} of camera {camera.id} skips "
                f"{segment.sequence - expected} segment(s) (next is {expected})",
                STATUS_CONFLICT,
            )
        previous = GENESIS_SEGMENT_HASH if head is None else head.segment_hash
        if segment.previous_hash != previous:
            raise _refuse(
                "BROKEN_CHAIN",
                f"segment {segment.sequence} links to {segment.previous_hash.hex()[:16]}…, the "
                f"camera's previous segment is {previous.hex()[:16]}…",
                STATUS_CONFLICT,
            )
        if head is not None and segment.capture_start_ms < head.capture_end_ms:
            raise _refuse(
                "CAPTURE_OVERLAP",
                f"segment {segment.sequence} starts before the previous one ended",
                STATUS_CONFLICT,
            )
        segment_hash = segment.hash()
        anchor = Anchor(
            segment=segment,
            segment_hash=segment_hash,
            tx_id=stub.get_tx_id(),
            received_ms=now,
            late=now - segment.capture_end_ms > LATE_AFTER_MS,
        )
        seq = padded(segment.sequence)
        save(stub, anchor, K_ANCHOR, camera.id, seq)
        save(
            stub,
            AnchorHead(segment.sequence, segment_hash, segment.capture_end_ms),
            K_ANCHOR_HEAD,
            camera.id,
        )
        stub.put_state(
            stub.create_composite_key(
                K_ANCHOR_BY_TIME, [camera.id, padded(segment.capture_start_ms), seq]
            ),
            seq.encode(),
        )
        record_history(
            stub,
            "AnchorSegment",
            subject,
            camera.id,
            {"sequence": str(segment.sequence), "late": str(anchor.late).lower()},
        )
        result = anchor_json(anchor)
        del result["segment"]
        return result

    @contract_function(read_only=True)
    def GetAnchors(
        self, stub: ChaincodeStub, camera_id: str, from_ms: str, to_ms: str
    ) -> list[dict[str, Any]]:
        """Anchors whose capture overlaps [from, to], with their ledger positions."""
        require_access(stub, camera_id)
        start, end = parse_int(from_ms, "from"), parse_int(to_ms, "to")
        if end < start:
            raise ContractError("the time range ends before it starts", code="BAD_ARGUMENT")
        found = []
        for _, raw_seq in stub.get_state_by_partial_composite_key(K_ANCHOR_BY_TIME, [camera_id]):
            anchor = self._anchor(stub, camera_id, raw_seq.decode())
            segment = anchor.segment
            if segment.capture_start_ms > end or segment.capture_end_ms < start:
                continue
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
        head = load(stub, AnchorHead, K_ANCHOR_HEAD, camera_id)
        if head is None:
            return {"camera": camera_id, "sequence": -1, "segmentHash": GENESIS_SEGMENT_HASH.hex()}
        return {
            "camera": camera_id,
            "sequence": head.sequence,
            "segmentHash": head.segment_hash.hex(),
            "captureEnd": head.capture_end_ms,
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
        key = stub.create_composite_key(K_ANCHOR, [camera_id, padded(anchor.segment.sequence)])
        history = stub.get_history_for_key(key)
        first = history[0] if history else None
        return anchor_json(anchor, first.block if first else None, first.tx if first else None)
