"""The granted list of each camera and Algorithm 1 as callable functions."""

from __future__ import annotations

from typing import Any

from cctvchain.chaincode.cctv import acl
from cctvchain.chaincode.cctv.access import is_valid_camera_id
from cctvchain.chaincode.cctv.common import (
    STATUS_CONFLICT,
    STATUS_NOT_FOUND,
    decide_access,
    grants_of,
    load,
    load_camera,
    parse_int,
    record_history,
    require,
    require_transaction,
    save,
    subject_of,
)
from cctvchain.chaincode.cctv.model import (
    APPROVED,
    K_CAMERA,
    K_GRANT,
    K_PARTICIPANT,
    PARTICIPANT_ROLES,
    AccessGrant,
    Camera,
    Participant,
)
from cctvchain.chaincode.contract import ContractError, contract_function
from cctvchain.chaincode.stub import ChaincodeStub

SUBJECT_KINDS = ("user", "role")


def grant_json(grant: AccessGrant) -> dict[str, Any]:
    return {
        "camera": grant.camera_id,
        "kind": grant.subject_kind,
        "subject": grant.subject,
        "grantedBy": grant.granted_by,
        "grantedAt": grant.granted_at_ms,
        "expires": grant.expires_ms,
    }


def _grant_target(stub: ChaincodeStub, camera_id: str) -> acl.Target:
    camera = load_camera(stub, camera_id)
    return acl.Target("AccessGrant", camera.id, camera.owner_org, camera.control_room)


def _check_subject(stub: ChaincodeStub, kind: str, subject: str) -> None:
    if kind not in SUBJECT_KINDS:
        raise ContractError(f"grant kind must be user or role, got {kind!r}", code="BAD_ARGUMENT")
    if kind == "role" and subject not in PARTICIPANT_ROLES:
        raise ContractError(
            f"role must be one of {', '.join(PARTICIPANT_ROLES)}, got {subject!r}",
            code="BAD_ARGUMENT",
        )
    if kind == "user" and load(stub, Participant, K_PARTICIPANT, subject) is None:
        raise ContractError(
            f"participant {subject} does not exist", STATUS_NOT_FOUND, code="UNKNOWN_PARTICIPANT"
        )


class GrantFunctions:
    @contract_function
    def GrantAccess(
        self,
        stub: ChaincodeStub,
        camera_id: str,
        kind: str,
        subject_name: str,
        expires_ms: str = "0",
    ) -> dict[str, Any]:
        """Put a user or a role on the camera's granted list (optionally until a time)."""
        subject = subject_of(stub)
        target = _grant_target(stub, camera_id)
        require_transaction(stub, subject, "GrantAccess", "CREATE", "AccessGrant", target)
        camera = load_camera(stub, camera_id)
        if camera.status != APPROVED:
            raise ContractError(
                f"camera {camera_id} is {camera.status}; only approved cameras are granted",
                STATUS_CONFLICT,
                code="INVALID_TRANSITION",
            )
        _check_subject(stub, kind, subject_name)
        expires = parse_int(expires_ms, "expiry")
        now = stub.get_tx_timestamp()
        if expires and expires <= now:
            raise ContractError("the expiry is in the past", code="BAD_ARGUMENT")
        grant = AccessGrant(camera_id, kind, subject_name, subject.id, now, expires)
        save(stub, grant, K_GRANT, camera_id, kind, subject_name)
        record_history(
            stub,
            "GrantAccess",
            subject,
            camera_id,
            {"kind": kind, "subject": subject_name, "expires": str(expires)},
        )
        return grant_json(grant)

    @contract_function
    def RevokeAccess(
        self, stub: ChaincodeStub, camera_id: str, kind: str, subject_name: str
    ) -> str:
        subject = subject_of(stub)
        target = _grant_target(stub, camera_id)
        require_transaction(stub, subject, "RevokeAccess", "DELETE", "AccessGrant", target)
        if load(stub, AccessGrant, K_GRANT, camera_id, kind, subject_name) is None:
            raise ContractError(
                f"{kind} {subject_name} holds no grant on camera {camera_id}",
                STATUS_NOT_FOUND,
                code="UNKNOWN_GRANT",
            )
        stub.del_state(stub.create_composite_key(K_GRANT, [camera_id, kind, subject_name]))
        record_history(
            stub, "RevokeAccess", subject, camera_id, {"kind": kind, "subject": subject_name}
        )
        return "revoked"

    @contract_function(read_only=True)
    def ListGrants(self, stub: ChaincodeStub, camera_id: str) -> list[dict[str, Any]]:
        subject = subject_of(stub)
        target = _grant_target(stub, camera_id)
        require(stub, subject, "READ", "AccessGrant", "ListGrants", target)
        return [grant_json(g) for g in grants_of(stub, camera_id)]

    @contract_function(read_only=True)
    def CheckAccess(self, stub: ChaincodeStub, camera_id: str) -> dict[str, Any]:
        """Algorithm 1 for the caller, answered (not recorded): granted or denied, and why."""
        decision = decide_access(stub, camera_id)
        return {"camera": camera_id, "decision": decision.decision, "reason": decision.reason}

    @contract_function
    def RequestAccess(self, stub: ChaincodeStub, camera_id: str, purpose: str) -> dict[str, Any]:
        """Algorithm 1 with an audit trail: the decision, granted or denied, is recorded."""
        decision = decide_access(stub, camera_id)
        try:
            subject = subject_of(stub)
        except ContractError:
            creator = stub.get_creator()
            subject = acl.Subject(creator.name, "unregistered", creator.msp_id, "")
        # Filed under the camera whenever it exists, whoever asked (an unregistered
        # identity probing a camera belongs in that camera's history).
        known = (
            is_valid_camera_id(camera_id) and load(stub, Camera, K_CAMERA, camera_id) is not None
        )
        record_history(
            stub,
            "AccessDecision",
            subject,
            camera_id if known else "",
            {"decision": decision.decision, "reason": decision.reason, "purpose": purpose},
        )
        return {"camera": camera_id, "decision": decision.decision, "reason": decision.reason}
