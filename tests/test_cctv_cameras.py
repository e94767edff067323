"""The camera lifecycle (Figures 8 and 10) through real endorsement, ordering and commit:
PENDING -> APPROVED | REJECTED, APPROVED -> DECOMMISSIONED, key rotation; every illegal
transition and every unauthorised decision is refused and leaves the ledger untouched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cctv_helpers import (
    CITY,
    NORTH,
    POLICE,
    SEGMENT_MS,
    SOUTH,
    Chain,
    World,
    b64,
    build_world,
    invoke,
    person,
    query,
    refuse,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("cameras"))
    try:
        yield built
    finally:
        built.net.close()


def camera(world: World, camera_id: str) -> dict[str, Any]:
    """The camera as a granted reader sees it (GetCamera is camera data: Algorithm 1)."""
    result: dict[str, Any] = query(world.net, world.crm_n, "GetCamera", camera_id)
    return result


def status_of(world: World, camera_id: str) -> str:
    """The status the North control room's listing shows."""
    for listed in query(world.net, world.crm_n, "ListCameras"):
        if listed["id"] == camera_id:
            status: str = listed["status"]
            return status
    raise AssertionError(f"camera {camera_id} is not listed")


def grant_crm(world: World, camera_id: str) -> None:
    invoke(world.net, world.crm_n, "GrantAccess", camera_id, "role", "CRM")


def test_figure_8_request_is_pending_until_the_crm_approves_figure_10a(world: World) -> None:
    net = world.net
    figure_8 = {
        "id": "5859",
        "ipAddress": "192.168.10.59",
        "location": "Market Square, north entrance",
        "model": "Hikvision DS-2CD2143G0-I",
        "specs": "4MP, 2.8mm, IR 30m",
    }
    requested = invoke(net, world.op_n, "RequestCamera", json.dumps(figure_8)).result
    assert requested == {
        **figure_8,
        "owner": CITY,
        "controlRoom": NORTH,
        "policy": {"mode": "normal", "rate": 1},
        "status": "PENDING",
        "requestedBy": "3690",
        "decidedBy": "",
        "closeReason": "",
        "identity": "",
        "keyVersion": 0,
    }
    pending = query(net, world.crm_n, "ListCameras", "PENDING")
    assert {"id": "5859", "status": "PENDING"}.items() <= next(
        c for c in pending if c["id"] == "5859"
    ).items()
    # Figure 10a: the CRM of the camera's control room approves it and binds its identity.
    cam = world.camera_identity("cam-5859")
    refuse(net, cam, "WhoAmI", code="WRONG_IDENTITY")  # not bound while pending
    approved = invoke(net, world.crm_n, "Approve", "5859", "cam-5859").result
    assert (approved["status"], approved["decidedBy"], approved["identity"]) == (
        "APPROVED",
        "3881",
        "cam-5859",
    )
    assert query(net, cam, "WhoAmI")["id"] == "5859"
    grant_crm(world, "5859")
    assert camera(world, "5859")["status"] == "APPROVED"
    assert all(c["id"] != "5859" for c in query(net, world.crm_n, "ListCameras", "PENDING"))


def test_a_crs_of_the_same_control_room_approves(world: World) -> None:
    net = world.net
    world.request_camera("C-2")
    approved = invoke(net, world.crs_n, "Approve", "C-2", "cam-C-2").result
    assert (approved["status"], approved["decidedBy"]) == ("APPROVED", "0454")
    # And in the south, the south's staff decide over the south's cameras.
    world.request_camera("C-2S", world.op_s)
    assert invoke(net, world.crs_s, "Approve", "C-2S", "cam-C-2S").result["decidedBy"] == "S-CRS"


def test_rejection_needs_a_close_reason_figure_10b(world: World) -> None:
    net = world.net
    world.request_camera("3386")
    for blank in ("", "   "):
        message = refuse(net, world.crm_n, "Reject", "3386", blank, code="BAD_ARGUMENT")
        assert "closeReason" in message
    rejected = invoke(net, world.crm_n, "Reject", "3386", "Camera specs are not upto mark").result
    assert rejected["status"] == "REJECTED"
    assert rejected["closeReason"] == "Camera specs are not upto mark"
    assert rejected["decidedBy"] == "3881" and rejected["identity"] == ""
    # A CRS may reject too.
    world.request_camera("C-3")
    assert invoke(net, world.crs_n, "Reject", "C-3", "wrong lens").result["decidedBy"] == "0454"


def test_decommissioning_is_for_the_crm_only(world: World) -> None:
    net = world.net
    cam = world.approved_camera("C-4")
    for client in (world.crs_n, world.op_n, world.crm_s, world.crs_s, world.po, world.city_admin):
        refuse(net, client, "Decommission", "C-4", "end of life", code="ACCESS_DENIED", status=403)
    retired = invoke(net, world.crm_n, "Decommission", "C-4", "end of life").result
    assert (retired["status"], retired["closeReason"]) == ("DECOMMISSIONED", "end of life")
    # The camera's identity is no longer bound to an approved camera.
    refuse(net, cam, "WhoAmI", code="WRONG_IDENTITY")
    grant_refused = refuse(
        net, world.crm_n, "GrantAccess", "C-4", "role", "PO", code="INVALID_TRANSITION"
    )
    assert "DECOMMISSIONED" in grant_refused


def test_rotating_a_camera_key_moves_anchoring_to_the_new_identity(world: World) -> None:
    net = world.net
    old = world.approved_camera("C-5")
    chain = Chain("C-5", net.clock.now_ms - SEGMENT_MS)
    segment = chain.next()
    invoke(net, old, "AnchorSegment", b64(segment))
    chain.accept(segment)
    new = world.camera_identity("cam-C-5-v2")
    for client in (world.op_n, world.crm_s, world.crs_s, world.po):
        refuse(net, client, "RotateCameraKey", "C-5", new.name, code="ACCESS_DENIED")
    refuse(net, world.crm_n, "RotateCameraKey", "C-5", "cam-C-5", code="BAD_ARGUMENT")
    refuse(net, world.crm_n, "RotateCameraKey", "C-5", "", code="BAD_ARGUMENT")
    other = world.approved_camera("C-5B")
    refuse(net, world.crm_n, "RotateCameraKey", "C-5", other.name, code="IDENTITY_IN_USE")
    rotated = invoke(net, world.crm_n, "RotateCameraKey", "C-5", new.name).result
    assert (rotated["identity"], rotated["keyVersion"]) == (new.name, 1)
    net.clock.advance(SEGMENT_MS)
    following = chain.next()
    refuse(net, old, "AnchorSegment", b64(following), code="WRONG_IDENTITY")
    invoke(net, new, "AnchorSegment", b64(following))
    # A CRS of the control room may rotate too.
    newer = world.camera_identity("cam-C-5-v3")
    assert invoke(net, world.crs_n, "RotateCameraKey", "C-5", newer.name).result["keyVersion"] == 2
    refuse(net, new, "WhoAmI", code="WRONG_IDENTITY")


@pytest.fixture(scope="module")
def every_state(world: World) -> dict[str, str]:
    """One camera in each state: PENDING, APPROVED, REJECTED, DECOMMISSIONED."""
    world.request_camera("S-PEND")
    world.approved_camera("S-APPR")
    world.request_camera("S-REJ")
    invoke(world.net, world.crm_n, "Reject", "S-REJ", "not needed")
    world.approved_camera("S-DECO")
    invoke(world.net, world.crm_n, "Decommission", "S-DECO", "moved")
    return {
        "PENDING": "S-PEND",
        "APPROVED": "S-APPR",
        "REJECTED": "S-REJ",
        "DECOMMISSIONED": "S-DECO",
    }


# (action, its arguments after the camera id, the states it is legal in)
ACTIONS: dict[str, tuple[tuple[str, ...], set[str]]] = {
    "Approve": (("cam-new",), {"PENDING"}),
    "Reject": (("too late",), {"PENDING"}),
    "Decommission": (("retire",), {"APPROVED"}),
    "RotateCameraKey": (("cam-rotated",), {"APPROVED"}),
    "GrantAccess": (("role", "PO"), {"APPROVED"}),
}
ILLEGAL = [
    (action, state)
    for action, (_, legal) in ACTIONS.items()
    for state in ("PENDING", "APPROVED", "REJECTED", "DECOMMISSIONED")
    if state not in legal
]


@pytest.mark.parametrize(("action", "state"), ILLEGAL)
def test_every_illegal_transition_is_refused(
    world: World, every_state: dict[str, str], action: str, state: str
) -> None:
    camera_id = every_state[state]
    args, _ = ACTIONS[action]
    message = refuse(
        world.net, world.crm_n, action, camera_id, *args, code="INVALID_TRANSITION", status=409
    )
    assert f"is {state}" in message
    assert status_of(world, camera_id) == state


def test_the_control_room_of_another_room_cannot_decide(world: World) -> None:
    net = world.net
    world.request_camera("C-6")  # a CR-North camera
    for client in (world.crm_s, world.crs_s):
        message = refuse(net, client, "Approve", "C-6", "cam-C-6", code="ACCESS_DENIED", status=403)
        assert "default deny" in message  # same_control_room failed for every rule
        refuse(net, client, "Reject", "C-6", "not ours", code="ACCESS_DENIED")
    # Nor can anyone of another organisation or role.
    for client in (world.po, world.pcro, world.las, world.city_admin, world.police_admin):
        refuse(net, client, "Approve", "C-6", "cam-C-6", code="ACCESS_DENIED")
        refuse(net, client, "Reject", "C-6", "no", code="ACCESS_DENIED")
    assert invoke(net, world.crm_n, "Approve", "C-6", "cam-C-6").result["status"] == "APPROVED"


def test_operators_never_approve_or_reject_their_deny_rule_decides(world: World) -> None:
    net = world.net
    world.request_camera("C-7")
    for client in (world.op_n, world.op_s):
        for action, argument in (("Approve", "cam-C-7"), ("Reject", "no")):
            message = refuse(net, client, action, "C-7", argument, code="ACCESS_DENIED")
            assert "rule OperatorsNeverDecide denies it" in message


def test_only_operators_of_a_control_room_request_cameras(world: World) -> None:
    net = world.net
    request = json.dumps(
        {"id": "C-8", "ipAddress": "10.1.2.3", "location": "Bridge", "model": "Axis"}
    )
    for client in (world.crm_n, world.crs_n, world.po, world.las, world.city_admin):
        refuse(net, client, "RequestCamera", request, code="ACCESS_DENIED", status=403)
    # An operator with no control room has none to add the device to.
    roomless_data = person("3907", "Operator", "roomless")
    invoke(net, world.city_admin, "AddParticipant", json.dumps(roomless_data))
    roomless = net.client(CITY, "roomless", role="Operator")
    refuse(net, roomless, "RequestCamera", request, code="ACCESS_DENIED")
    created = invoke(net, world.op_s, "RequestCamera", request).result
    assert (created["controlRoom"], created["requestedBy"]) == (SOUTH, "S-OP")
    refuse(net, world.op_n, "RequestCamera", request, code="CAMERA_EXISTS", status=409)


BAD_REQUESTS: dict[str, dict[str, Any] | str] = {
    "not JSON": "{",
    "not an object": "[]",
    "id with a space": {"id": "bad id"},
    "id starting with a dash": {"id": "-x"},
    "empty id": {"id": ""},
    "id too long": {"id": "x" * 65},
    "id as a number": {"id": 5859},
    "ip out of range": {"ipAddress": "300.1.1.1"},
    "ip too short": {"ipAddress": "10.0.0"},
    "ip as a host name": {"ipAddress": "cam.example.org"},
    "no location": {"location": None},
    "empty model": {"model": ""},
    "unknown policy": {"policy": "sometimes"},
    "high policy too fast": {"policy": {"mode": "high", "rate": 500}},
    "normal policy with a rate": {"policy": {"mode": "normal", "rate": 3}},
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_malformed_camera_requests_are_refused(world: World, case: str) -> None:
    change = BAD_REQUESTS[case]
    if isinstance(change, str):
        text = change
    else:
        data = {"id": "C-9", "ipAddress": "10.0.0.9", "location": "Dock", "model": "Axis"}
        data.update(change)
        text = json.dumps({k: v for k, v in data.items() if v is not None})
    refuse(world.net, world.op_n, "RequestCamera", text, code="BAD_ARGUMENT", status=400)


def test_decisions_about_unknown_cameras_or_without_identity_are_refused(world: World) -> None:
    net = world.net
    refuse(net, world.crm_n, "Approve", "NOPE", "cam-x", code="UNKNOWN_CAMERA", status=404)
    refuse(net, world.crm_n, "Reject", "NOPE", "x", code="UNKNOWN_CAMERA")
    refuse(net, world.crm_n, "Decommission", "NOPE", "x", code="UNKNOWN_CAMERA")
    world.request_camera("C-10")
    refuse(net, world.crm_n, "Approve", "C-10", "", code="BAD_ARGUMENT")
    taken = world.approved_camera("C-11")
    message = refuse(net, world.crm_n, "Approve", "C-10", taken.name, code="IDENTITY_IN_USE")
    assert "already bound to camera C-11" in message
    # Camera names are bound per organisation: Police's cam-C-10 is not CityCCTV's.
    assert invoke(net, world.crm_n, "Approve", "C-10", "cam-C-10").result["status"] == "APPROVED"
    assert query(net, world.camera_identity("cam-C-10"), "WhoAmI")["id"] == "C-10"
    refuse(net, world.camera_identity("cam-C-10", POLICE), "WhoAmI", code="WRONG_IDENTITY")


def test_control_rooms_list_their_own_cameras(world: World) -> None:
    net = world.net
    world.request_camera("C-12")
    world.request_camera("C-12S", world.op_s)
    north = {c["id"]: c for c in query(net, world.crs_n, "ListCameras")}
    south = {c["id"]: c for c in query(net, world.op_s, "ListCameras")}
    assert "C-12" in north and "C-12S" not in north
    assert "C-12S" in south and "C-12" not in south
    assert all(c["controlRoom"] == NORTH for c in north.values())
    assert all(c["status"] == "PENDING" for c in query(net, world.crm_n, "ListCameras", "PENDING"))
    for client in (world.po, world.las, world.city_admin):
        refuse(net, client, "ListCameras", code="ACCESS_DENIED")
