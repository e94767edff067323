"""What every CCTV contract function shares: records in state, who is asking, the ACL,
Algorithm 1 over state, and the historian entry each transaction leaves."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from cctvchain.chaincode.cctv import acl
from cctvchain.chaincode.cctv.access import AccessDecision, access
from cctvchain.chaincode.cctv.model import (
    CAMERA_ROLE,
    K_CAMERA,
    K_CAMERA_BY_IDENTITY,
    K_GRANT,
    K_HISTORY,
    K_HISTORY_BY_CAMERA,
    K_HISTORY_BY_PARTICIPANT,
    K_HISTORY_BY_TYPE,
    K_PARTICIPANT_BY_IDENTITY,
    NETWORK_ADMIN,
    AccessGrant,
    Camera,
    HistorianRecord,
    Participant,
    padded,
)
from cctvchain.chaincode.contract import ContractError
from cctvchain.chaincode.stub import ChaincodeStub
from cctvchain.codec import CodecError, Message
from cctvchain.tx.messages import contract_event_id

M = TypeVar("M", bound=Message)

STATUS_FORBIDDEN = 403
STATUS_NOT_FOUND = 404
STATUS_CONFLICT = 409


# -- records ---------------------------------------------------------------------------------


def decode_stored(cls: type[M], raw: bytes) -> M:
    try:
        return cls.decode(raw)
    except CodecError as exc:
        raise ContractError(
            f"stored {cls.TYPE} is damaged: {exc}", 500, code="CORRUPT_STATE"
        ) from exc


def load(stub: ChaincodeStub, cls: type[M], object_type: str, *attrs: str) -> M | None:
    raw = stub.get_state(stub.create_composite_key(object_type, attrs))
    return None if raw is None else decode_stored(cls, raw)


def save(stub: ChaincodeStub, record: Message, object_type: str, *attrs: str) -> None:
    stub.put_state(stub.create_composite_key(object_type, attrs), record.encode())


def delete(stub: ChaincodeStub, object_type: str, *attrs: str) -> None:
    stub.del_state(stub.create_composite_key(object_type, attrs))


def load_camera(stub: ChaincodeStub, camera_id: str) -> Camera:
    camera = load(stub, Camera, K_CAMERA, camera_id)
    if camera is None:
        raise ContractError(
            f"camera {camera_id} does not exist", STATUS_NOT_FOUND, code="UNKNOWN_CAMERA"
        )
    return camera


def grants_of(stub: ChaincodeStub, camera_id: str) -> list[AccessGrant]:
    return [
        AccessGrant.decode(raw)
        for _, raw in stub.get_state_by_partial_composite_key(K_GRANT, [camera_id])
    ]


# -- arguments -------------------------------------------------------------------------------


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"{what} is not valid JSON: {exc}", code="BAD_ARGUMENT") from exc
    if not isinstance(value, dict):
        raise ContractError(f"{what} must be a JSON object", code="BAD_ARGUMENT")
    return value


def field(data: Mapping[str, Any], name: str, kind: type, *, default: Any = None) -> Any:
    value = data.get(name, default)
    if value is None or type(value) is not kind:
        raise ContractError(f"field {name!r} must be {kind.__name__}", code="BAD_ARGUMENT")
    if kind is str and not value:
        raise ContractError(f"field {name!r} must not be empty", code="BAD_ARGUMENT")
    return value


def parse_int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise ContractError(
            f"{what} must be an integer, got {text!r}", code="BAD_ARGUMENT"
        ) from exc


# -- who is asking ---------------------------------------------------------------------------


def participant_of(stub: ChaincodeStub) -> Participant | None:
    """The registered participant bound to the creator's certificate, if any."""
    creator = stub.get_creator()
    return load(stub, Participant, K_PARTICIPANT_BY_IDENTITY, creator.msp_id, creator.name)


def subject_of(stub: ChaincodeStub) -> acl.Subject:
    """``p`` for the ACL: an org admin, a camera, or a registered participant."""
    creator = stub.get_creator()
    if creator.id_type == "admin":
        return acl.Subject(creator.name, NETWORK_ADMIN, creator.msp_id, "")
    if creator.id_type == "camera":
        raw = stub.get_state(
            stub.create_composite_key(K_CAMERA_BY_IDENTITY, [creator.msp_id, creator.name])
        )
        if raw is None:
            raise ContractError(
                f"camera identity {creator.name} of {creator.msp_id} is not bound to an "
                "approved camera",
                STATUS_FORBIDDEN,
                code="WRONG_IDENTITY",
            )
        camera = load_camera(stub, raw.decode())
        return acl.Subject(camera.id, CAMERA_ROLE, camera.owner_org, camera.control_room)
    participant = participant_of(stub)
    if participant is None:
        raise ContractError(
            f"{creator.name} of {creator.msp_id} is not a registered participant",
            STATUS_FORBIDDEN,
            code="NOT_A_PARTICIPANT",
        )
    certified = creator.attribute("role")
    if certified != participant.role:
        raise ContractError(
            f"{creator.name}'s certificate carries role {certified!r}, but participant "
            f"{participant.id} is a {participant.role}",
            STATUS_FORBIDDEN,
            code="ROLE_MISMATCH",
        )
    return acl.Subject(
        participant.id, participant.role, participant.msp_id, participant.control_room
    )


def label(subject: acl.Subject) -> str:
    if subject.role == CAMERA_ROLE:
        return f"camera {subject.id}"
    return f"{subject.id} ({subject.role})"


# -- ACL and Algorithm 1 -------------------------------------------------------------------


def require(
    stub: ChaincodeStub,
    subject: acl.Subject,
    operation: str,
    resource: str,
    transaction: str,
    target: acl.Target,
) -> None:
    rules = stub.get_channel_config().acl_rules
    decision = acl.decide(rules, subject, operation, resource, transaction, target)
    if not decision.allowed:
        raise ContractError(
            f"{label(subject)} may not {operation} {resource} via {transaction}: {decision.reason}",
            STATUS_FORBIDDEN,
            code="ACCESS_DENIED",
        )


def require_transaction(
    stub: ChaincodeStub,
    subject: acl.Subject,
    transaction: str,
    operation: str,
    resource: str,
    target: acl.Target,
) -> None:
    """Composer's two permissions: submit ``transaction``, and its effect on ``resource``."""
    require(stub, subject, "CREATE", transaction, transaction, target)
    require(stub, subject, operation, resource, transaction, target)


def camera_target(camera: Camera) -> acl.Target:
    return acl.Target("CCTV", camera.id, camera.owner_org, camera.control_room)


def decide_access(stub: ChaincodeStub, camera_id: str) -> AccessDecision:
    """Algorithm 1 over the committed state, for the creator."""
    try:
        user = participant_of(stub)
    except ContractError:
        user = None
    certified = stub.get_creator().attribute("role")
    if user is not None and certified != user.role:
        # As everywhere else (ROLE_MISMATCH), a certificate that disagrees with the
        # registration is no valid requester: neither role may open camera data.
        return AccessDecision(
            False,
            f"the requester's certificate carries role {certified!r}, but participant "
            f"{user.id} is a {user.role}",
            "query",
        )
    camera = load(stub, Camera, K_CAMERA, camera_id) if camera_id else None
    grants = grants_of(stub, camera_id) if camera is not None else []
    return access(user, camera_id, camera, grants, stub.get_tx_timestamp())


def require_access(stub: ChaincodeStub, camera_id: str) -> None:
    decision = decide_access(stub, camera_id)
    if not decision.granted:
        raise ContractError(
            f"access to camera {camera_id} denied: {decision.reason}",
            STATUS_FORBIDDEN,
            code="ACCESS_DENIED",
        )


# -- the historian ---------------------------------------------------------------------------


def record_history(
    stub: ChaincodeStub,
    entry_type: str,
    subject: acl.Subject,
    camera_id: str = "",
    details: Mapping[str, str] | None = None,
) -> HistorianRecord:
    """Leave the transaction's entry in the historian and emit its event (one per tx).

    ``AnchorSegment`` does not call this: its anchor is its entry (see
    :func:`cctvchain.chaincode.cctv.anchors.anchor_history`)."""
    tx_id = stub.get_tx_id()
    record = HistorianRecord(
        tx_id=tx_id,
        event_id=contract_event_id(tx_id, 0),
        timestamp_ms=stub.get_tx_timestamp(),
        entry_type=entry_type,
        participant=label(subject),
        org=subject.org,
        camera_id=camera_id,
        details=dict(details or {}),
    )
    encoded = record.encode()
    stamp = padded(record.timestamp_ms)
    stub.put_state(stub.create_composite_key(K_HISTORY, [tx_id]), encoded)
    marker = b""  # the tx id is the index key's last attribute already
    if camera_id:
        stub.put_state(
            stub.create_composite_key(K_HISTORY_BY_CAMERA, [camera_id, stamp, tx_id]), marker
        )
    stub.put_state(
        stub.create_composite_key(K_HISTORY_BY_PARTICIPANT, [subject.id, stamp, tx_id]), marker
    )
    stub.put_state(stub.create_composite_key(K_HISTORY_BY_TYPE, [entry_type, stamp, tx_id]), marker)
    stub.set_event(entry_type, encoded)
    return record
