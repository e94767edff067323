"""The historian (Figures 12-13): every contract transaction with its time, entry type,
participant and event id, queryable by camera, participant, type and time range."""

from __future__ import annotations

from typing import Any

from cctvchain.chaincode.cctv import acl
from cctvchain.chaincode.cctv.common import (
    STATUS_NOT_FOUND,
    load,
    parse_json_object,
    require,
    require_access,
    subject_of,
)
from cctvchain.chaincode.cctv.model import (
    K_HISTORY,
    K_HISTORY_BY_CAMERA,
    K_HISTORY_BY_PARTICIPANT,
    K_HISTORY_BY_TYPE,
    HistorianRecord,
)
from cctvchain.chaincode.contract import ContractError, contract_function
from cctvchain.chaincode.stub import ChaincodeStub

MAX_RESULTS = 1000


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
        records = []
        for _, raw_tx in stub.get_state_by_partial_composite_key(index, attrs):
            record = load(stub, HistorianRecord, K_HISTORY, raw_tx.decode())
            if record is None or not start <= record.timestamp_ms <= end:
                continue
            if camera is None and record.org != subject.org:
                continue  # outside a camera's history, each organisation sees its own
            if "type" in query and record.entry_type != query["type"]:
                continue
            if "participant" in query and not (
                record.participant.startswith(f"{query['participant']} ")
                or record.participant == f"camera {query['participant']}"  # a camera's label
            ):
                continue
            records.append(record_json(record))
        records.sort(key=lambda r: (r["timestamp"], r["txId"]))
        return records[-MAX_RESULTS:]

    @contract_function(read_only=True)
    def GetHistoryRecord(self, stub: ChaincodeStub, tx_id: str) -> dict[str, Any]:
        """The detailed record of one transaction (Figure 13)."""
        subject = subject_of(stub)
        record = load(stub, HistorianRecord, K_HISTORY, tx_id)
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
