"""Cameras (Figure 8): requested by an operator, approved or rejected by the control room
(Figure 10), decommissioned, and re-keyed; approval binds the camera's own identity."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from cctvchain.chaincode.cctv import acl
from cctvchain.chaincode.cctv.access import is_valid_camera_id
from cctvchain.chaincode.cctv.common import (
    STATUS_CONFLICT,
    camera_target,
    field,
    load,
    load_camera,
    parse_json_object,
    record_history,
    require,
    require_access,
    require_transaction,
    save,
    subject_of,
)
from cctvchain.chaincode.cctv.model import (
    APPROVED,
    DECOMMISSIONED,
    K_CAMERA,
    K_CAMERA_BY_IDENTITY,
    PENDING,
    POLICY_HIGH,
    POLICY_NORMAL,
    REJECTED,
    Camera,
    SamplingPolicy,
)
from cctvchain.chaincode.contract import ContractError, contract_function
from cctvchain.chaincode.stub import ChaincodeStub

_IPV4 = re.compile(r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")


def policy_json(policy: SamplingPolicy) -> dict[str, Any]:
    return {"mode": policy.mode, "rate": policy.rate}


def camera_json(camera: Camera) -> dict[str, Any]:
    return {
        "id": camera.id,
        "ipAddress": camera.ip_address,
        "location": camera.location,
        "model": camera.model,
        "specs": camera.specs,
        "owner": camera.owner_org,
        "controlRoom": camera.control_room,
        "policy": policy_json(camera.policy),
        "status": camera.status,
        "requestedBy": camera.requested_by,
        "decidedBy": camera.decided_by,
        "closeReason": camera.close_reason,
        "identity": camera.identity,
        "keyVersion": camera.key_version,
    }


def parse_policy(data: Any) -> SamplingPolicy:
    if data is None:
        return SamplingPolicy(POLICY_NORMAL, 1)
    if isinstance(data, str):
        data = {"mode": data}
    if not isinstance(data, dict):
        raise ContractError("policy must be an object or a mode name", code="BAD_ARGUMENT")
    mode = data.get("mode", POLICY_NORMAL)
    default_rate = {POLICY_NORMAL: 1, POLICY_HIGH: 5}.get(mode, 0)
    rate = data.get("rate", default_rate)
    try:
        return SamplingPolicy(str(mode), int(rate))
    except (TypeError, ValueError) as exc:
        raise ContractError(f"bad sampling policy: {exc}", code="BAD_ARGUMENT") from exc


def _transition(camera: Camera, expected: str, transaction: str) -> None:
    if camera.status != expected:
        raise ContractError(
            f"{transaction} needs a {expected} camera; camera {camera.id} is {camera.status}",
            STATUS_CONFLICT,
            code="INVALID_TRANSITION",
        )


def _bind(stub: ChaincodeStub, camera: Camera, identity: str) -> None:
    key = stub.create_composite_key(K_CAMERA_BY_IDENTITY, [camera.owner_org, identity])
    bound = stub.get_state(key)
    if bound is not None and bound.decode() != camera.id:
        raise ContractError(
            f"camera identity {identity} is already bound to camera {bound.decode()}",
            STATUS_CONFLICT,
            code="IDENTITY_IN_USE",
        )
    stub.put_state(key, camera.id.encode())


def _unbind(stub: ChaincodeStub, camera: Camera) -> None:
    if camera.identity:
        stub.del_state(
            stub.create_composite_key(K_CAMERA_BY_IDENTITY, [camera.owner_org, camera.identity])
        )


class CameraFunctions:
    @contract_function
    def RequestCamera(self, stub: ChaincodeStub, camera_json_text: str) -> dict[str, Any]:
        """An operator adds a device; it waits for the control room's approval."""
        subject = subject_of(stub)
        data = parse_json_object(camera_json_text, "camera")
        camera_id = field(data, "id", str)
        if not is_valid_camera_id(camera_id):
            raise ContractError(f"{camera_id!r} is not a valid camera id", code="BAD_ARGUMENT")
        ip_address = field(data, "ipAddress", str)
        if not _IPV4.fullmatch(ip_address):
            raise ContractError(f"{ip_address!r} is not an IPv4 address", code="BAD_ARGUMENT")
        camera = Camera(
            id=camera_id,
            ip_address=ip_address,
            location=field(data, "location", str),
            model=field(data, "model", str),
            specs=str(data.get("specs", "")),
            owner_org=subject.org,
            control_room=subject.control_room,
            policy=parse_policy(data.get("policy")),
            status=PENDING,
            requested_by=subject.id,
            decided_by="",
            close_reason="",
            identity="",
            key_version=0,
        )
        require_transaction(stub, subject, "RequestCamera", "CREATE", "CCTV", camera_target(camera))
        if load(stub, Camera, K_CAMERA, camera_id) is not None:
            raise ContractError(
                f"camera {camera_id} already exists", STATUS_CONFLICT, code="CAMERA_EXISTS"
            )
        save(stub, camera, K_CAMERA, camera_id)
        record_history(stub, "RequestCamera", subject, camera_id, {"status": PENDING})
        return camera_json(camera)

    @contract_function
    def Approve(self, stub: ChaincodeStub, camera_id: str, camera_identity: str) -> dict[str, Any]:
        """A CRM or CRS of the camera's control room approves it and binds the camera's
        enrolled identity (certificate of type camera, CN ``camera_identity``)."""
        subject = subject_of(stub)
        camera = load_camera(stub, camera_id)
        require_transaction(stub, subject, "Approve", "UPDATE", "CCTV", camera_target(camera))
        _transition(camera, PENDING, "Approve")
        if not camera_identity:
            raise ContractError("the camera's identity name is required", code="BAD_ARGUMENT")
        approved = replace(camera, status=APPROVED, decided_by=subject.id, identity=camera_identity)
        _bind(stub, approved, camera_identity)
        save(stub, approved, K_CAMERA, camera_id)
        record_history(
            stub, "Approve", subject, camera_id, {"status": APPROVED, "identity": camera_identity}
        )
        return camera_json(approved)

    @contract_function
    def Reject(self, stub: ChaincodeStub, camera_id: str, close_reason: str) -> dict[str, Any]:
        subject = subject_of(stub)
        camera = load_camera(stub, camera_id)
        require_transaction(stub, subject, "Reject", "UPDATE", "CCTV", camera_target(camera))
        _transition(camera, PENDING, "Reject")
        if not close_reason.strip():
            raise ContractError("a closeReason is required to reject", code="BAD_ARGUMENT")
        rejected = replace(
            camera, status=REJECTED, decided_by=subject.id, close_reason=close_reason
        )
        save(stub, rejected, K_CAMERA, camera_id)
        record_history(
            stub, "Reject", subject, camera_id, {"status": REJECTED, "closeReason": close_reason}
        )
        return camera_json(rejected)

    @contract_function
    def Decommission(self, stub: ChaincodeStub, camera_id: str, reason: str) -> dict[str, Any]:
        subject = subject_of(stub)
        camera = load_camera(stub, camera_id)
        require_transaction(stub, subject, "Decommission", "UPDATE", "CCTV", camera_target(camera))
        _transition(camera, APPROVED, "Decommission")
        _unbind(stub, camera)
        retired = replace(camera, status=DECOMMISSIONED, close_reason=reason)
        save(stub, retired, K_CAMERA, camera_id)
        record_history(
            stub, "Decommission", subject, camera_id, {"status": DECOMMISSIONED, "reason": reason}
        )
        return camera_json(retired)

    @contract_function
    def RotateCameraKey(
        self, stub: ChaincodeStub, camera_id: str, new_identity: str
    ) -> dict[str, Any]:
        """Bind a newly enrolled camera identity (the old certificate should be revoked)."""
        subject = subject_of(stub)
        camera = load_camera(stub, camera_id)
        require_transaction(
            stub, subject, "RotateCameraKey", "UPDATE", "CCTV", camera_target(camera)
        )
        _transition(camera, APPROVED, "RotateCameraKey")
        if not new_identity or new_identity == camera.identity:
            raise ContractError("RotateCameraKey needs a new camera identity", code="BAD_ARGUMENT")
        _unbind(stub, camera)
        rotated = replace(camera, identity=new_identity, key_version=camera.key_version + 1)
        _bind(stub, rotated, new_identity)
        save(stub, rotated, K_CAMERA, camera_id)
        record_history(
            stub,
            "RotateCameraKey",
            subject,
            camera_id,
            {"identity": new_identity, "keyVersion": str(rotated.key_version)},
        )
        return camera_json(rotated)

    @contract_function(read_only=True)
    def GetCamera(self, stub: ChaincodeStub, camera_id: str) -> dict[str, Any]:
        """Camera metadata: camera data, so Algorithm 1 decides."""
        require_access(stub, camera_id)
        return camera_json(load_camera(stub, camera_id))

    @contract_function(read_only=True)
    def ListCameras(self, stub: ChaincodeStub, status: str = "") -> list[dict[str, Any]]:
        """The control room's view of its cameras (for approvals), per the ACL."""
        subject = subject_of(stub)
        listed = []
        for _, raw in stub.get_state_by_partial_composite_key(K_CAMERA, []):
            camera = Camera.decode(raw)
            if status and camera.status != status:
                continue
            target = acl.Target("CCTV", camera.id, camera.owner_org, camera.control_room)
            rules = stub.get_channel_config().acl_rules
            if acl.decide(rules, subject, "READ", "CCTV", "ListCameras", target).allowed:
                listed.append(
                    {
                        "id": camera.id,
                        "status": camera.status,
                        "location": camera.location,
                        "controlRoom": camera.control_room,
                        "requestedBy": camera.requested_by,
                    }
                )
        if not listed:
            require(
                stub,
                subject,
                "READ",
                "CCTV",
                "ListCameras",
                acl.Target("CCTV", "", subject.org, subject.control_room),
            )
        return listed
