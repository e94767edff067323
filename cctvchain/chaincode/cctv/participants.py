"""Participants (Table 3, Figure 9): added, updated and removed by an org's NetworkAdmin."""

from __future__ import annotations

from typing import Any

from cctvchain.chaincode.cctv import acl
from cctvchain.chaincode.cctv.common import (
    STATUS_CONFLICT,
    STATUS_NOT_FOUND,
    field,
    load,
    parse_json_object,
    record_history,
    require,
    require_transaction,
    subject_of,
)
from cctvchain.chaincode.cctv.model import (
    K_PARTICIPANT,
    K_PARTICIPANT_BY_IDENTITY,
    PARTICIPANT_ROLES,
    Participant,
)
from cctvchain.chaincode.contract import ContractError, contract_function
from cctvchain.chaincode.stub import ChaincodeStub

RESOURCE = "Participant"


def participant_json(p: Participant) -> dict[str, Any]:
    return {
        "id": p.id,
        "personId": p.person_id,
        "name": p.name,
        "department": p.department,
        "age": p.age,
        "gender": p.gender,
        "role": p.role,
        "org": p.msp_id,
        "identity": p.identity,
        "controlRoom": p.control_room,
    }


def _target(p: Participant) -> acl.Target:
    return acl.Target(RESOURCE, p.id, p.msp_id, p.control_room)


def _load(stub: ChaincodeStub, participant_id: str) -> Participant:
    found = load(stub, Participant, K_PARTICIPANT, participant_id)
    if found is None:
        raise ContractError(
            f"participant {participant_id} does not exist",
            STATUS_NOT_FOUND,
            code="UNKNOWN_PARTICIPANT",
        )
    return found


def _bind_identity(stub: ChaincodeStub, participant: Participant) -> None:
    key = stub.create_composite_key(
        K_PARTICIPANT_BY_IDENTITY, [participant.msp_id, participant.identity]
    )
    bound = stub.get_state(key)
    if bound is not None and Participant.decode(bound).id != participant.id:
        raise ContractError(
            f"identity {participant.identity} of {participant.msp_id} is already bound to "
            f"participant {Participant.decode(bound).id}",
            STATUS_CONFLICT,
            code="IDENTITY_IN_USE",
        )
    stub.put_state(key, participant.encode())


def _control_room(data: dict[str, Any]) -> str:
    """Optional (police and local-authority staff sit in no control room), but text."""
    value = data.get("controlRoom", "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ContractError("field 'controlRoom' must be str", code="BAD_ARGUMENT")
    return value


def _from_json(data: dict[str, Any], msp_id: str) -> Participant:
    role = field(data, "role", str)
    if role not in PARTICIPANT_ROLES:
        raise ContractError(
            f"role must be one of {', '.join(PARTICIPANT_ROLES)}, got {role!r}",
            code="BAD_ARGUMENT",
        )
    age = field(data, "age", int)
    if not 16 <= age <= 100:
        raise ContractError(f"age {age} is out of range", code="BAD_ARGUMENT")
    return Participant(
        id=field(data, "id", str),
        person_id=field(data, "personId", str),
        name=field(data, "name", str),
        department=field(data, "department", str),
        age=age,
        gender=field(data, "gender", str),
        role=role,
        msp_id=msp_id,
        identity=field(data, "identity", str),
        control_room=_control_room(data),
    )


class ParticipantFunctions:
    @contract_function
    def AddParticipant(self, stub: ChaincodeStub, participant_json_text: str) -> dict[str, Any]:
        subject = subject_of(stub)
        participant = _from_json(
            parse_json_object(participant_json_text, "participant"), subject.org
        )
        require_transaction(
            stub, subject, "AddParticipant", "CREATE", RESOURCE, _target(participant)
        )
        if load(stub, Participant, K_PARTICIPANT, participant.id) is not None:
            raise ContractError(
                f"participant {participant.id} already exists",
                STATUS_CONFLICT,
                code="PARTICIPANT_EXISTS",
            )
        stub.put_state(
            stub.create_composite_key(K_PARTICIPANT, [participant.id]), participant.encode()
        )
        _bind_identity(stub, participant)
        record_history(stub, "AddParticipant", subject, details={"participant": participant.id})
        return participant_json(participant)

    @contract_function
    def UpdateParticipant(self, stub: ChaincodeStub, changes_json: str) -> dict[str, Any]:
        subject = subject_of(stub)
        changes = parse_json_object(changes_json, "changes")
        current = _load(stub, field(changes, "id", str))
        require_transaction(
            stub, subject, "UpdateParticipant", "UPDATE", RESOURCE, _target(current)
        )
        merged = {**participant_json(current), **changes}
        updated = _from_json(merged, current.msp_id)
        if updated.identity != current.identity:
            stub.del_state(
                stub.create_composite_key(
                    K_PARTICIPANT_BY_IDENTITY, [current.msp_id, current.identity]
                )
            )
        stub.put_state(stub.create_composite_key(K_PARTICIPANT, [updated.id]), updated.encode())
        _bind_identity(stub, updated)
        record_history(stub, "UpdateParticipant", subject, details={"participant": updated.id})
        return participant_json(updated)

    @contract_function
    def RemoveParticipant(self, stub: ChaincodeStub, participant_id: str) -> str:
        subject = subject_of(stub)
        current = _load(stub, participant_id)
        require_transaction(
            stub, subject, "RemoveParticipant", "DELETE", RESOURCE, _target(current)
        )
        stub.del_state(stub.create_composite_key(K_PARTICIPANT, [participant_id]))
        stub.del_state(
            stub.create_composite_key(K_PARTICIPANT_BY_IDENTITY, [current.msp_id, current.identity])
        )
        record_history(stub, "RemoveParticipant", subject, details={"participant": participant_id})
        return participant_id

    @contract_function(read_only=True)
    def GetParticipant(self, stub: ChaincodeStub, participant_id: str) -> dict[str, Any]:
        subject = subject_of(stub)
        current = _load(stub, participant_id)
        require(stub, subject, "READ", RESOURCE, "GetParticipant", _target(current))
        return participant_json(current)

    @contract_function(read_only=True)
    def WhoAmI(self, stub: ChaincodeStub) -> dict[str, Any]:
        subject = subject_of(stub)
        return {
            "id": subject.id,
            "role": subject.role,
            "org": subject.org,
            "controlRoom": subject.control_room,
        }
