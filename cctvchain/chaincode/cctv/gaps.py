"""Gaps in a camera's video: spans for which its extractor has no frames (PRODUCT §3).

The frame extractor reports every gap it sees — the RTSP source was lost and came
back, the extractor itself was stopped or killed, the stream's timestamps jumped — with
``ReportGap``, signed by the camera's own identity like its anchors. A gap runs from
the capture time of the last frame before it (``from``) to that of the first frame
after it (``to``) on the camera's clock, names the last segment sealed before it
(``afterSequence``, -1 before the first) and says why in one line. A verifier asked
about a clip that falls into a gap can then say that the camera's own extractor
recorded the outage, instead of only seeing a hole between two anchored segments.

Reporting the same gap twice (the extractor retries after a lost answer) is refused
as ``GAP_REPLAY``; a different gap starting at the same time as ``GAP_CONFLICT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cctvchain.chaincode.cctv.common import (
    STATUS_CONFLICT,
    STATUS_FORBIDDEN,
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
from cctvchain.chaincode.cctv.model import APPROVED, CAMERA_ROLE, padded
from cctvchain.chaincode.contract import ContractError, contract_function
from cctvchain.chaincode.stub import ChaincodeStub
from cctvchain.codec import Message

K_GAP = "gap"
MAX_REASON_CHARS = 200
MAX_FUTURE_SKEW_MS = 2 * 60 * 1000  # as for anchors: the camera clock may run a bit ahead
MAX_GAP_RESULTS = 1000


@dataclass(frozen=True)
class Gap(Message):
    """A span of capture time the camera's extractor has no frames for."""

    TYPE = "cctv.gap"
    camera_id: str
    from_ms: int  # capture time of the last frame before the gap
    to_ms: int  # capture time of the first frame after it
    after_sequence: int  # the last segment sealed before the gap; -1 before the first
    reason: str
    tx_id: str
    received_ms: int


def gap_json(gap: Gap) -> dict[str, Any]:
    return {
        "camera": gap.camera_id,
        "from": gap.from_ms,
        "to": gap.to_ms,
        "durationMs": gap.to_ms - gap.from_ms,
        "afterSequence": gap.after_sequence,
        "reason": gap.reason,
        "txId": gap.tx_id,
        "received": gap.received_ms,
    }


def _refuse(code: str, message: str, status: int = 400) -> ContractError:
    return ContractError(message, status, code=code)


class GapFunctions:
    @contract_function
    def ReportGap(
        self,
        stub: ChaincodeStub,
        camera_id: str,
        from_ms: str,
        to_ms: str,
        after_sequence: str,
        reason: str,
    ) -> dict[str, Any]:
        subject = subject_of(stub)
        if subject.role != CAMERA_ROLE or subject.id != camera_id:
            raise _refuse(
                "WRONG_IDENTITY",
                f"{subject.id} ({subject.role}) cannot report gaps of camera {camera_id}; "
                "only the camera's own identity does",
                STATUS_FORBIDDEN,
            )
        camera = load_camera(stub, camera_id)
        if camera.status != APPROVED:
            raise _refuse(
                "CAMERA_NOT_APPROVED", f"camera {camera.id} is {camera.status}", STATUS_CONFLICT
            )
        require_transaction(stub, subject, "ReportGap", "CREATE", "Gap", camera_target(camera))
        start, end = parse_int(from_ms, "from"), parse_int(to_ms, "to")
        after = parse_int(after_sequence, "afterSequence")
        if not 0 <= start < end:
            raise _refuse("BAD_ARGUMENT", f"a gap runs forwards in time, got {start}..{end}")
        if after < -1:
            raise _refuse("BAD_ARGUMENT", "afterSequence is a segment sequence or -1")
        text = reason.strip()
        if not text or len(text) > MAX_REASON_CHARS or not text.isprintable():
            raise _refuse(
                "BAD_ARGUMENT", f"the reason is one printable line of 1..{MAX_REASON_CHARS} chars"
            )
        now = stub.get_tx_timestamp()
        if end > now + MAX_FUTURE_SKEW_MS:
            raise _refuse(
                "CAPTURE_IN_FUTURE",
                f"the gap ends {end - now} ms after the transaction time "
                f"(allowed skew {MAX_FUTURE_SKEW_MS} ms)",
            )
        existing = load(stub, Gap, K_GAP, camera_id, padded(start))
        if existing is not None:
            same = (existing.to_ms, existing.after_sequence, existing.reason) == (end, after, text)
            raise _refuse(
                "GAP_REPLAY" if same else "GAP_CONFLICT",
                f"camera {camera_id} already reported a gap from {start} "
                f"(transaction {existing.tx_id})",
                STATUS_CONFLICT,
            )
        gap = Gap(camera_id, start, end, after, text, stub.get_tx_id(), now)
        save(stub, gap, K_GAP, camera_id, padded(start))
        record_history(
            stub,
            "ReportGap",
            subject,
            camera_id,
            {"from": str(start), "to": str(end), "afterSequence": str(after), "reason": text},
        )
        return gap_json(gap)

    @contract_function(read_only=True)
    def GetGaps(
        self, stub: ChaincodeStub, camera_id: str, from_ms: str = "0", to_ms: str = ""
    ) -> list[dict[str, Any]]:
        """The camera's reported gaps overlapping [from, to] (camera data: Algorithm 1)."""
        require_access(stub, camera_id)
        start = parse_int(from_ms, "from")
        end = parse_int(to_ms, "to") if to_ms else 2**63 - 1
        if end < start:
            raise ContractError("the time range ends before it starts", code="BAD_ARGUMENT")
        found: list[dict[str, Any]] = []
        for _, raw in stub.get_state_by_partial_composite_key(K_GAP, [camera_id]):
            gap = Gap.decode(raw)
            if gap.from_ms > end or gap.to_ms < start:
                continue
            found.append(gap_json(gap))
            if len(found) >= MAX_GAP_RESULTS:
                break
        return found
