"""Participants (Table 3, Figure 9) through real endorsement, ordering and commit: each
organisation's NetworkAdmin manages its own people; everyone else is refused, and every
refusal leaves the ledger untouched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cctv_helpers import (
    CITY,
    LA,
    NORTH,
    POLICE,
    World,
    build_world,
    call,
    invoke,
    person,
    query,
    refuse,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("participants"))
    try:
        yield built
    finally:
        built.net.close()


def test_figure_9_participants_are_added_by_the_network_admin_and_bound_to_identities(
    world: World,
) -> None:
    net = world.net
    # Figure 9b's supervisor, bound to a freshly enrolled identity of CityCCTV.
    figure_9b = {
        "id": "0455",
        "personId": "hoi237",
        "name": "brynt",
        "department": "Head",
        "age": 50,
        "gender": "male",
        "role": "CRS",
        "identity": "brynt",
        "controlRoom": NORTH,
    }
    brynt = net.client(CITY, "brynt", role="CRS")
    refuse(net, brynt, "WhoAmI", code="NOT_A_PARTICIPANT", status=403)
    added = invoke(net, world.city_admin, "AddParticipant", json.dumps(figure_9b)).result
    expected = {**figure_9b, "org": CITY}
    assert added == expected
    assert query(net, world.city_admin, "GetParticipant", "0455") == expected
    assert query(net, brynt, "WhoAmI") == {
        "id": "0455",
        "role": "CRS",
        "org": CITY,
        "controlRoom": NORTH,
    }
    # Figure 9a's operator (set up with the world) reads as the paper shows it.
    veronica = query(net, world.crm_n, "GetParticipant", "3690")
    assert (veronica["role"], veronica["department"], veronica["org"]) == (
        "Operator",
        "South block",
        CITY,
    )
    # Another organisation's admin adds people to its own organisation only.
    officer = person("P-90", "PO", "po90")
    added = invoke(net, world.police_admin, "AddParticipant", json.dumps(officer)).result
    assert added["org"] == POLICE
    assert query(net, net.client(POLICE, "po90", role="PO"), "WhoAmI")["org"] == POLICE


def test_administrators_and_cameras_know_who_they_are(world: World) -> None:
    net = world.net
    assert query(net, world.city_admin, "WhoAmI") == {
        "id": "netadmin",
        "role": "NetworkAdmin",
        "org": CITY,
        "controlRoom": "",
    }
    assert query(net, world.la_admin, "WhoAmI")["org"] == LA
    cam = world.approved_camera("P-CAM-1")
    assert query(net, cam, "WhoAmI") == {
        "id": "P-CAM-1",
        "role": "Camera",
        "org": CITY,
        "controlRoom": NORTH,
    }


def test_only_the_own_network_admin_manages_participants(world: World) -> None:
    net = world.net
    newcomer = json.dumps(person("3901", "Operator", "newcomer", NORTH))
    # Control room staff, officers and cameras cannot add participants.
    for client in (world.crm_n, world.crs_n, world.op_n, world.po, world.las):
        message = refuse(net, client, "AddParticipant", newcomer, code="ACCESS_DENIED", status=403)
        assert "default deny" in message
    # Another organisation's admin can neither change nor remove nor read CityCCTV's people.
    change = json.dumps({"id": "3690", "department": "North block"})
    for client in (world.police_admin, world.la_admin):
        refuse(net, client, "UpdateParticipant", change, code="ACCESS_DENIED")
        refuse(net, client, "RemoveParticipant", "3690", code="ACCESS_DENIED")
        refuse(net, client, "GetParticipant", "3690", code="ACCESS_DENIED")
    # Nor can CityCCTV's own staff.
    refuse(net, world.crm_n, "UpdateParticipant", change, code="ACCESS_DENIED")
    refuse(net, world.crm_n, "RemoveParticipant", "3690", code="ACCESS_DENIED")
    # The organisation's own admin can.
    updated = invoke(net, world.city_admin, "UpdateParticipant", change).result
    assert updated["department"] == "North block"
    assert query(net, world.crm_n, "GetParticipant", "3690")["department"] == "North block"


def test_duplicate_ids_and_identities_already_bound_are_refused(world: World) -> None:
    net = world.net
    again = person("3881", "CRM", "someone-else", NORTH)
    message = refuse(
        net,
        world.city_admin,
        "AddParticipant",
        json.dumps(again),
        code="PARTICIPANT_EXISTS",
        status=409,
    )
    assert "3881" in message
    # Participant ids are unique across organisations.
    refuse(net, world.police_admin, "AddParticipant", json.dumps(again), code="PARTICIPANT_EXISTS")
    # One identity, one participant.
    taken = person("3902", "Operator", "crm-n", NORTH)
    message = refuse(
        net,
        world.city_admin,
        "AddParticipant",
        json.dumps(taken),
        code="IDENTITY_IN_USE",
        status=409,
    )
    assert "already bound to participant 3881" in message
    # The same name in another organisation is another identity.
    elsewhere = person("P-91", "PO", "crm-n")
    assert (
        invoke(net, world.police_admin, "AddParticipant", json.dumps(elsewhere)).result["org"]
        == POLICE
    )
    # The original binding is untouched.
    assert query(net, world.crm_n, "WhoAmI")["id"] == "3881"


BAD_PARTICIPANTS: dict[str, str] = {
    "not JSON": "{id: 1",
    "not an object": json.dumps([person("X-1", "CRM", "x1")]),
    "unknown role": json.dumps(person("X-1", "Boss", "x1")),
    "role in lower case": json.dumps(person("X-1", "crm", "x1")),
    "too young": json.dumps({**person("X-1", "CRM", "x1"), "age": 15}),
    "too old": json.dumps({**person("X-1", "CRM", "x1"), "age": 101}),
    "age as text": json.dumps({**person("X-1", "CRM", "x1"), "age": "30"}),
    "age as boolean": json.dumps({**person("X-1", "CRM", "x1"), "age": True}),
    "age as float": json.dumps({**person("X-1", "CRM", "x1"), "age": 30.5}),
    "no name": json.dumps({k: v for k, v in person("X-1", "CRM", "x1").items() if k != "name"}),
    "empty id": json.dumps(person("", "CRM", "x1")),
    "no identity": json.dumps({**person("X-1", "CRM", "x1"), "identity": ""}),
}


@pytest.mark.parametrize("case", sorted(BAD_PARTICIPANTS))
def test_malformed_participants_are_refused(world: World, case: str) -> None:
    message = refuse(
        world.net,
        world.city_admin,
        "AddParticipant",
        BAD_PARTICIPANTS[case],
        code="BAD_ARGUMENT",
        status=400,
    )
    assert message


def test_update_rebinds_identities_and_changes_roles(world: World) -> None:
    net = world.net
    invoke(
        net, world.city_admin, "AddParticipant", json.dumps(person("3903", "Operator", "u1", NORTH))
    )
    u1 = net.client(CITY, "u1", role="Operator")
    u2 = net.client(CITY, "u2", role="Operator")
    assert query(net, u1, "WhoAmI")["id"] == "3903"
    # Rebinding to another identity: the old one is no participant any more.
    invoke(net, world.city_admin, "UpdateParticipant", json.dumps({"id": "3903", "identity": "u2"}))
    refuse(net, u1, "WhoAmI", code="NOT_A_PARTICIPANT")
    assert query(net, u2, "WhoAmI")["id"] == "3903"
    # A new role must match the certificate: the operator's certificate now disagrees.
    invoke(net, world.city_admin, "UpdateParticipant", json.dumps({"id": "3903", "role": "CRS"}))
    message = refuse(net, u2, "WhoAmI", code="ROLE_MISMATCH", status=403)
    assert "'Operator'" in message and "CRS" in message
    # Refused updates change nothing.
    refuse(
        net,
        world.city_admin,
        "UpdateParticipant",
        json.dumps({"id": "3903", "identity": "op-n"}),
        code="IDENTITY_IN_USE",
    )
    refuse(
        net,
        world.city_admin,
        "UpdateParticipant",
        json.dumps({"id": "3903", "age": 5}),
        code="BAD_ARGUMENT",
    )
    refuse(
        net,
        world.city_admin,
        "UpdateParticipant",
        json.dumps({"id": "3903", "role": "Boss"}),
        code="BAD_ARGUMENT",
    )
    refuse(
        net,
        world.city_admin,
        "UpdateParticipant",
        json.dumps({"id": "nobody"}),
        code="UNKNOWN_PARTICIPANT",
        status=404,
    )
    refuse(net, world.city_admin, "UpdateParticipant", "[]", code="BAD_ARGUMENT")
    current: dict[str, Any] = query(net, world.city_admin, "GetParticipant", "3903")
    assert (current["identity"], current["role"], current["age"]) == ("u2", "CRS", 30)
    # The participant's organisation is not something an update can change.
    moved = invoke(
        net, world.city_admin, "UpdateParticipant", json.dumps({"id": "3903", "org": POLICE})
    ).result
    assert moved["org"] == CITY


def test_removed_participants_lose_their_access_and_free_their_identity(world: World) -> None:
    net = world.net
    invoke(net, world.city_admin, "AddParticipant", json.dumps(person("3904", "CRS", "r1", NORTH)))
    r1 = net.client(CITY, "r1", role="CRS")
    assert query(net, r1, "WhoAmI")["id"] == "3904"
    assert invoke(net, world.city_admin, "RemoveParticipant", "3904").raw == b"3904"
    refuse(net, r1, "WhoAmI", code="NOT_A_PARTICIPANT")
    refuse(net, world.city_admin, "GetParticipant", "3904", code="UNKNOWN_PARTICIPANT", status=404)
    refuse(net, world.city_admin, "RemoveParticipant", "3904", code="UNKNOWN_PARTICIPANT")
    # The identity may be bound again.
    invoke(net, world.city_admin, "AddParticipant", json.dumps(person("3905", "CRS", "r1", NORTH)))
    assert query(net, r1, "WhoAmI")["id"] == "3905"


def test_unregistered_clients_and_role_mismatches_are_refused(world: World) -> None:
    net = world.net
    message = refuse(net, world.stranger, "WhoAmI", code="NOT_A_PARTICIPANT", status=403)
    assert "stranger of CityCCTV" in message
    refuse(net, world.stranger, "GetParticipant", "3881", code="NOT_A_PARTICIPANT")
    # The certificate says LAS, the participant registry says PO.
    message = refuse(net, world.mismatch, "WhoAmI", code="ROLE_MISMATCH", status=403)
    assert "'LAS'" in message and "is a PO" in message
    refuse(net, world.mismatch, "GetParticipant", "3881", code="ROLE_MISMATCH")
    # A client certificate without any role attribute is no participant's either.
    invoke(net, world.city_admin, "AddParticipant", json.dumps(person("3906", "PO", "norole")))
    refuse(net, net.client(CITY, "norole"), "WhoAmI", code="ROLE_MISMATCH")
    # An identity of another organisation with a bound name is not that participant.
    refuse(net, net.client(POLICE, "op-n", role="Operator"), "WhoAmI", code="NOT_A_PARTICIPANT")


def test_participants_read_their_own_organisation_only(world: World) -> None:
    net = world.net
    assert query(net, world.op_n, "GetParticipant", "3881")["role"] == "CRM"
    assert query(net, world.po, "GetParticipant", "P-88")["role"] == "PCRO"
    for client, other in ((world.po, "3881"), (world.crm_n, "P-77"), (world.las, "P-77")):
        message = refuse(net, client, "GetParticipant", other, code="ACCESS_DENIED")
        assert "default deny" in message
    response = call(net, world.crm_n, "GetParticipant", "nobody")
    assert response.status == 404 and response.message.startswith("UNKNOWN_PARTICIPANT: ")
