"""Algorithm 1 (paper §3.1.4), branch by branch: as a pure function, and through the
contract (CheckAccess, RequestAccess, GetCamera, GetAnchors) over real endorsement,
ordering and commit; RequestAccess leaves every decision, granted or denied, in the
historian."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cctv_helpers import (
    NORMAL,
    POLICE,
    SEGMENT_MS,
    Chain,
    World,
    b64,
    build_world,
    call,
    invoke,
    query,
    refuse,
)

from cctvchain.chaincode.cctv.access import access, is_valid_camera_id
from cctvchain.chaincode.cctv.model import AccessGrant, Camera, Participant
from cctvchain.client.transaction import ClientIdentity

# -- the pure function ----------------------------------------------------------------------

T0 = 1_767_225_600_000
USER = Participant("P-77", "p", "n", "Traffic", 35, "male", "PO", "Police", "po1", "")
CAMERA = Camera(
    "5859", "10.0.0.7", "Main St", "Axis", "", "CityCCTV", "CR-North", NORMAL,
    "APPROVED", "3690", "3881", "", "cam-5859", 0,
)  # fmt: skip


def grant(kind: str, subject: str, expires: int = 0) -> AccessGrant:
    return AccessGrant("5859", kind, subject, "3881", T0 - 1, expires)


def test_pure_unregistered_requester_is_denied_first() -> None:
    decision = access(None, "5859", CAMERA, [grant("role", "PO")], T0)
    assert (decision.granted, decision.branch, decision.decision) == (False, "query", "denied")
    assert "not a registered participant" in decision.reason
    # Even for an invalid id: the requester is checked before the query.
    assert access(None, "bad id", None, [], T0).reason == decision.reason


@pytest.mark.parametrize("camera_id", ["", "bad id", "-x", "x" * 65, "a/b", "ü"])
def test_pure_invalid_camera_id_is_denied(camera_id: str) -> None:
    assert not is_valid_camera_id(camera_id)
    decision = access(USER, camera_id, CAMERA, [grant("role", "PO")], T0)
    assert (decision.granted, decision.branch) == (False, "query")
    assert "not a valid camera id" in decision.reason


def test_pure_valid_camera_ids() -> None:
    for camera_id in ("5859", "cam.north-1_a", "A", "x" * 64):
        assert is_valid_camera_id(camera_id)


def test_pure_unknown_camera_is_denied() -> None:
    decision = access(USER, "5860", None, [grant("role", "PO")], T0)
    assert (decision.granted, decision.branch) == (False, "exists")
    assert "does not exist" in decision.reason


def test_pure_camera_not_on_the_granted_list_is_denied() -> None:
    decision = access(USER, "5859", CAMERA, [], T0)
    assert (decision.granted, decision.branch) == (False, "granted_list")
    assert decision.reason == "camera 5859 is not on the granted list"


def test_pure_only_expired_grants_is_not_on_the_granted_list() -> None:
    decision = access(
        USER, "5859", CAMERA, [grant("user", "P-77", T0), grant("role", "PO", T0 - 1)], T0
    )
    assert (decision.granted, decision.branch) == (False, "granted_list")
    assert "(all grants have expired)" in decision.reason
    # A grant is valid strictly before its expiry, and 0 means none.
    assert access(USER, "5859", CAMERA, [grant("user", "P-77", T0 + 1)], T0).granted
    assert access(USER, "5859", CAMERA, [grant("user", "P-77", 0)], T0 + 10**12).granted


def test_pure_user_grant_and_role_grant_are_granted() -> None:
    by_user = access(USER, "5859", CAMERA, [grant("role", "LAS"), grant("user", "P-77")], T0)
    assert (by_user.granted, by_user.branch, by_user.decision) == (True, "role", "granted")
    assert "user P-77" in by_user.reason
    by_role = access(USER, "5859", CAMERA, [grant("user", "P-88"), grant("role", "PO")], T0)
    assert by_role.granted and "role PO" in by_role.reason


def test_pure_other_users_and_roles_are_denied() -> None:
    grants = [
        grant("user", "P-88"),
        grant("role", "LAS"),
        grant("user", "PO"),  # a user named like the requester's role
        grant("role", "P-77"),  # a role named like the requester
    ]
    decision = access(USER, "5859", CAMERA, grants, T0)
    assert (decision.granted, decision.branch) == (False, "role")
    assert "neither user P-77 nor role PO" in decision.reason
    # An expired grant for the user does not count next to active grants for others.
    decision = access(USER, "5859", CAMERA, [grant("user", "P-77", T0), grant("role", "LAS")], T0)
    assert not decision.granted and decision.branch == "role"


# -- through the contract ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("access"))
    try:
        yield built
    finally:
        built.net.close()


def anchored_camera(world: World, camera_id: str) -> None:
    """An approved camera with one anchored segment."""
    cam = world.approved_camera(camera_id)
    chain = Chain(camera_id, world.net.clock.now_ms - SEGMENT_MS)
    invoke(world.net, cam, "AnchorSegment", b64(chain.next()))


def decide(world: World, client: ClientIdentity, camera_id: str, purpose: str) -> dict[str, Any]:
    """Algorithm 1 for ``client`` by every route; all routes must agree. Returns the
    decision RequestAccess committed, with its transaction id."""
    net = world.net
    checked = query(net, client, "CheckAccess", camera_id)
    assert checked["camera"] == camera_id
    granted = checked["decision"] == "granted"
    for function, args in (
        ("GetCamera", (camera_id,)),
        ("GetAnchors", (camera_id, "0", str(2**62))),
        ("GetAnchorHead", (camera_id,)),
    ):
        if granted:
            assert call(net, client, function, *args).status == 200
        else:
            message = refuse(net, client, function, *args, code="ACCESS_DENIED", status=403)
            assert message.endswith(checked["reason"])
    committed = invoke(net, client, "RequestAccess", camera_id, purpose)
    assert committed.result == checked
    return {**committed.result, "txId": committed.event.tx_id, "purpose": purpose}


def test_algorithm_1_branch_by_branch_through_the_contract(world: World) -> None:
    net = world.net
    anchored_camera(world, "G-1")
    decisions: list[tuple[ClientIdentity, dict[str, Any]]] = []

    def expect(client: ClientIdentity, camera_id: str, granted: bool, reason: str) -> None:
        decision = decide(world, client, camera_id, f"case {len(decisions)}")
        assert decision["decision"] == ("granted" if granted else "denied"), decision
        assert reason in decision["reason"], decision
        decisions.append((client, decision))

    # Unregistered requesters: a client with no participant, an admin, a camera.
    expect(world.stranger, "G-1", False, "not a registered participant")
    expect(world.city_admin, "G-1", False, "not a registered participant")
    # An invalid query, and a camera that does not exist.
    expect(world.po, "bad id!", False, "not a valid camera id")
    expect(world.po, "NOPE-1", False, "camera NOPE-1 does not exist")
    # The camera is not on the granted list.
    expect(world.po, "G-1", False, "camera G-1 is not on the granted list")
    # Only expired grants.
    expires = net.clock.now_ms + 2_000
    invoke(net, world.crm_n, "GrantAccess", "G-1", "role", "PO", str(expires))
    expect(world.po, "G-1", True, "role PO holds access to G-1")
    net.clock.advance(2_000)
    expect(world.po, "G-1", False, "(all grants have expired)")
    # A user grant.
    invoke(net, world.crm_n, "GrantAccess", "G-1", "user", "P-77")
    expect(world.po, "G-1", True, "user P-77 holds access to G-1")
    # Another role is denied, until its role is granted.
    expect(world.pcro, "G-1", False, "neither user P-88 nor role PCRO holds access")
    invoke(net, world.crs_n, "GrantAccess", "G-1", "role", "PCRO")
    expect(world.pcro, "G-1", True, "role PCRO holds access to G-1")
    expect(world.las, "G-1", False, "neither user L-11 nor role LAS")
    # Revoked: denied again.
    invoke(net, world.crm_n, "RevokeAccess", "G-1", "user", "P-77")
    expect(world.po, "G-1", False, "neither user P-77 nor role PO")
    # A time-limited grant expires while other grants stay active.
    until = net.clock.now_ms + 5_000
    invoke(net, world.crm_n, "GrantAccess", "G-1", "role", "LAS", str(until))
    expect(world.las, "G-1", True, "role LAS holds access")
    net.clock.advance(5_000)
    expect(world.las, "G-1", False, "neither user L-11 nor role LAS")
    expect(world.pcro, "G-1", True, "role PCRO holds access")

    # Every decision is in the historian, as its own transaction.
    police_view = query(
        net, world.police_admin, "GetHistory", json.dumps({"type": "AccessDecision"})
    )
    city_view = query(net, world.crm_n, "GetHistory", json.dumps({"type": "AccessDecision"}))
    la_view = query(net, world.la_admin, "GetHistory", json.dumps({"type": "AccessDecision"}))
    recorded = {h["txId"]: h for h in police_view + city_view + la_view}
    for client, decision in decisions:
        entry = recorded[decision["txId"]]
        assert entry["entryType"] == "AccessDecision"
        assert entry["org"] == client.msp_id
        assert entry["details"]["decision"] == decision["decision"]
        assert entry["details"]["reason"] == decision["reason"]
        assert entry["details"]["purpose"] == decision["purpose"]
    assert {h["details"]["decision"] for h in recorded.values()} == {"granted", "denied"}
    assert len(recorded) == len(decisions)
    stranger_entry = recorded[decisions[0][1]["txId"]]
    assert stranger_entry["participant"] == "stranger (unregistered)"
    assert stranger_entry["camera"] == "G-1"  # a probe belongs in the camera's history
    # Decisions about invalid or unknown cameras are not filed under a camera.
    assert recorded[decisions[2][1]["txId"]]["camera"] == ""
    assert recorded[decisions[3][1]["txId"]]["camera"] == ""
    # With access, the camera's own history shows the decisions about it (Algorithm 1).
    camera_view = query(
        net, world.pcro, "GetHistory", json.dumps({"camera": "G-1", "type": "AccessDecision"})
    )
    assert {h["txId"] for h in camera_view} == {
        d["txId"] for _, d in decisions if recorded[d["txId"]]["camera"] == "G-1"
    }


def test_a_certificate_role_that_disagrees_with_the_registration_gets_no_access(
    world: World,
) -> None:
    net = world.net
    anchored_camera(world, "G-2")
    invoke(net, world.crm_n, "GrantAccess", "G-2", "role", "PO")
    invoke(net, world.crm_n, "GrantAccess", "G-2", "role", "LAS")
    # Registered as PO, certified as LAS: neither role opens the camera's data.
    checked = query(net, world.mismatch, "CheckAccess", "G-2")
    assert checked["decision"] == "denied" and "role" in checked["reason"]
    refuse(net, world.mismatch, "GetAnchors", "G-2", "0", str(2**62), code="ACCESS_DENIED")
    refuse(net, world.mismatch, "GetCamera", "G-2", code="ACCESS_DENIED")
    refuse(net, world.mismatch, "GetHistory", json.dumps({"camera": "G-2"}), code="ROLE_MISMATCH")
    assert query(net, world.po, "CheckAccess", "G-2")["decision"] == "granted"


def test_granted_lists_are_managed_by_the_control_room_only(world: World) -> None:
    net = world.net
    world.approved_camera("G-3")
    for client in (
        world.op_n,
        world.po,
        world.crm_s,
        world.crs_s,
        world.city_admin,
        world.police_admin,
    ):
        refuse(net, client, "GrantAccess", "G-3", "role", "PO", code="ACCESS_DENIED", status=403)
        refuse(net, client, "ListGrants", "G-3", code="ACCESS_DENIED")
    invoke(net, world.crs_n, "GrantAccess", "G-3", "user", "P-77")
    for client in (world.op_n, world.po, world.crm_s):
        refuse(net, client, "RevokeAccess", "G-3", "user", "P-77", code="ACCESS_DENIED")
    until = net.clock.now_ms + 60_000
    invoke(net, world.crm_n, "GrantAccess", "G-3", "role", "LAS", str(until))
    grants = query(net, world.crm_n, "ListGrants", "G-3")
    assert [(g["kind"], g["subject"], g["grantedBy"], g["expires"]) for g in grants] == [
        ("role", "LAS", "3881", until),
        ("user", "P-77", "0454", 0),
    ]
    # Granting again replaces the entry (here: lifts the expiry).
    invoke(net, world.crm_n, "GrantAccess", "G-3", "role", "LAS")
    assert [g["expires"] for g in query(net, world.crs_n, "ListGrants", "G-3")] == [0, 0]
    assert invoke(net, world.crm_n, "RevokeAccess", "G-3", "role", "LAS").raw == b"revoked"
    assert [g["subject"] for g in query(net, world.crm_n, "ListGrants", "G-3")] == ["P-77"]


def test_malformed_grants_are_refused(world: World) -> None:
    net = world.net
    world.approved_camera("G-4")
    now = net.clock.now_ms
    cases: list[tuple[tuple[str, ...], str]] = [
        (("G-4", "group", "PO"), "BAD_ARGUMENT"),
        (("G-4", "role", "Boss"), "BAD_ARGUMENT"),
        (("G-4", "role", "NetworkAdmin"), "BAD_ARGUMENT"),
        (("G-4", "user", "nobody"), "UNKNOWN_PARTICIPANT"),
        (("G-4", "role", "PO", "soon"), "BAD_ARGUMENT"),
        (("G-4", "role", "PO", str(now - 1)), "BAD_ARGUMENT"),
        (("G-4", "role", "PO", str(now)), "BAD_ARGUMENT"),
        (("NOPE", "role", "PO"), "UNKNOWN_CAMERA"),
    ]
    for args, code in cases:
        refuse(net, world.crm_n, "GrantAccess", *args, code=code)
    refuse(net, world.crm_n, "RevokeAccess", "G-4", "role", "PO", code="UNKNOWN_GRANT", status=404)
    refuse(net, world.crm_n, "RevokeAccess", "NOPE", "role", "PO", code="UNKNOWN_CAMERA")
    assert query(net, world.crm_n, "ListGrants", "G-4") == []


def test_a_police_camera_is_not_a_city_camera(world: World) -> None:
    """Grants are per camera: access to one camera opens no other."""
    net = world.net
    anchored_camera(world, "G-5")
    anchored_camera(world, "G-6")
    invoke(net, world.crm_n, "GrantAccess", "G-5", "role", "PO")
    assert query(net, world.po, "CheckAccess", "G-5")["decision"] == "granted"
    assert query(net, world.po, "CheckAccess", "G-6")["decision"] == "denied"
    # A police identity named like a CityCCTV participant is not that participant.
    impostor = net.client(POLICE, "crm-n", role="CRM")
    invoke(net, world.crm_n, "GrantAccess", "G-6", "user", "3881")
    assert query(net, world.crm_n, "CheckAccess", "G-6")["decision"] == "granted"
    assert query(net, impostor, "CheckAccess", "G-6")["decision"] == "denied"
