"""The historian (Figures 12-13): every contract transaction with its time, entry type,
participant and event id, queryable by camera, participant, type and time range.

Two sources, one listing: the :class:`HistorianRecord` each transaction stores (with
index keys by camera, participant and type, whose last attribute is the tx id), and the
anchors. An ``AnchorSegment`` transaction stores no record: its :class:`Anchor` holds
everything its entry says (time, camera and so its label and organisation,
sequence, lateness; its tx id is that of the key's first write in the ledger's history
index), so the entry is derived from it (:func:`anchor_history`) — one
camera anchors 360 times an hour, and a record with three index keys would have cost
~1.1 KB of ledger per anchor. Every filter applies to both sources alike.
"""

from __future__ import annotations

from typing import Any

from cctvchain.chaincode.cctv import acl
from cctvchain.chaincode.cctv.anchors import anchor_by_tx, anchor_history, anchoring_write
from cctvchain.chaincode.cctv.common import (
    STATUS_NOT_FOUND,
    decode_stored,
    load,
    load_camera,
    parse_json_object,
    require,
    require_access,
    subject_of,
)
from cctvchain.chaincode.cctv.model import (
    K_ANCHOR,
    K_CAMERA,
    K_HISTORY,
    K_HISTORY_BY_CAMERA,
    K_HISTORY_BY_PARTICIPANT,
    K_HISTORY_BY_TYPE,
    Anchor,
    Camera,
    HistorianRecord,
)
from cctvchain.chaincode.contract import ContractError, contract_function
from cctvchain.chaincode.stub import ChaincodeStub

MAX_RESULTS = 1000
ANCHOR_ENTRY = "AnchorSegment"


def record_json(record: HistorianRecord) -> dict[str, Any]:
    return {
        "txId": record.tx_id,
        "eventId": record.event_id,
        "timestamp": record.timestamp_ms,
        "entryType": record.entry_type,
        "participant": record.participant,
        "org": record.org,
        "camera": record.camera_id,
        "details": record.details,
    }


def _int_field(query: dict[str, Any], name: str, default: int) -> int:
    value = query.get(name, default)
    if type(value) is not int:
        raise ContractError(
            f"{name!r} must be an integer (ms since the epoch)", code="BAD_ARGUMENT"
        )
    return value


class HistorianFunctions:
    @contract_function(read_only=True)
    def GetHistory(self, stub: ChaincodeStub, query_json: str = "{}") -> list[dict[str, Any]]:
        """Filter by one of camera / participant / type, plus an optional time range."""
        query = parse_json_object(query_json, "history query")
        known = {"camera", "participant", "type", "from", "to"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise ContractError(f"unknown filter(s) {', '.join(unknown)}", code="BAD_ARGUMENT")
        start, end = _int_field(query, "from", 0), _int_field(query, "to", 2**63 - 1)
        subject = subject_of(stub)
        camera = query.get("camera")
        if camera is not None:
            # A camera's history is camera data: Algorithm 1 decides.
            require_access(stub, str(camera))
            index, attrs = K_HISTORY_BY_CAMERA, [str(camera)]
        else:
            target = acl.Target("History", "", subject.org, subject.control_room)
            require(stub, subject, "READ", "History", "GetHistory", target)
            if "participant" in query:
                index, attrs = K_HISTORY_BY_PARTICIPANT, [str(query["participant"])]
            elif "type" in query:
                index, attrs = K_HISTORY_BY_TYPE, [str(query["type"])]
            else:
                index, attrs = K_HISTORY_BY_TYPE, []

        def wanted(record: HistorianRecord) -> bool:
            if not start <= record.timestamp_ms <= end:
                return False
            if camera is None and record.org != subject.org:
                return False  # outside a camera's history, each organisation sees its own
            if "type" in query and record.entry_type != query["type"]:
                return False
            return "participant" not in query or (
                record.participant.startswith(f"{query['participant']} ")
                or record.participant == f"camera {query['participant']}"  # a camera's label
            )

        records = []
        for key, _ in stub.get_state_by_partial_composite_key(index, attrs):
            tx_id = stub.split_composite_key(key)[1][-1]
            record = load(stub, HistorianRecord, K_HISTORY, tx_id)
            if record is not None and wanted(record):
                records.append(record_json(record))
        for owner in self._anchoring_cameras(stub, query, camera, subject.org):
            for key, raw in stub.get_state_by_partial_composite_key(K_ANCHOR, [owner.id]):
                anchor = decode_stored(Anchor, raw)
                record = anchor_history(anchor, owner, anchoring_write(stub, key).tx_id)
                if wanted(record):
                    records.append(record_json(record))
        records.sort(key=lambda r: (r["timestamp"], r["txId"]))
        return records[-MAX_RESULTS:]

    @staticmethod
    def _anchoring_cameras(
        stub: ChaincodeStub, query: dict[str, Any], camera: object, org: str
    ) -> list[Camera]:
        """The cameras whose anchors may pass the query's filters (``wanted`` still
        decides each entry): the one asked for; the camera a participant filter names
        (a camera is the participant of its anchors); else every camera of ``org``."""
        if "type" in query and query["type"] != ANCHOR_ENTRY:
            return []
        if camera is not None:
            named = load(stub, Camera, K_CAMERA, str(camera))
            return [] if named is None else [named]
        if "participant" in query:
            named = load(stub, Camera, K_CAMERA, str(query["participant"]))
            return [] if named is None or named.owner_org != org else [named]
        everyone = (
            decode_stored(Camera, raw)
            for _, raw in stub.get_state_by_partial_composite_key(K_CAMERA, [])
        )
        return [each for each in everyone if each.owner_org == org]

    @contract_function(read_only=True)
    def GetHistoryRecord(self, stub: ChaincodeStub, tx_id: str) -> dict[str, Any]:
        """The detailed record of one transaction (Figure 13)."""
        subject = subject_of(stub)
        record = load(stub, HistorianRecord, K_HISTORY, tx_id)
        if record is None:
            anchor = anchor_by_tx(stub, tx_id)
            if anchor is not None:
                camera = load_camera(stub, anchor.segment.camera_id)
                record = anchor_history(anchor, camera, tx_id)
        if record is None:
            raise ContractError(
                f"no contract transaction {tx_id}", STATUS_NOT_FOUND, code="UNKNOWN_TRANSACTION"
            )
        if record.camera_id:
            require_access(stub, record.camera_id)
        else:
            target = acl.Target("History", tx_id, record.org, "")
            require(stub, subject, "READ", "History", "GetHistoryRecord", target)
        return record_json(record)
